package gigpay

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"strconv"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// TokenMinLength is the shortest token string the FSM accepts: a kind letter, four hex digits of
// slot and 22 base64url characters (132 random bits).
const TokenMinLength = 1 + 4 + 22

// TokenHash is the SHA-256 of a token string, under which the token is found.
func TokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// PaymentIDOfToken is the ID of the transfer payment a claimed token makes: the token's ID with
// the payment kind letter (same slot, so it routes to the same shard).
func PaymentIDOfToken(tokenID string) string { return "y" + tokenID[1:] }

func (f *Family) state(b *fsm.Batch) *state { return b.Module(f.module).(*state) }

// ToMinor scales a decimal amount to the smallest unit of an asset with scale decimals: too many
// decimals, zero or more than 2^128−1 units is a rejection.
func ToMinor(v Decimal, scale int) (fsm.Amount, *fsm.Error) {
	if int(v.Scale) > scale {
		return fsm.Amount{}, fsm.Rejectf(CodeTooPrecise, "the amount has %d decimals; the asset has %d", v.Scale, scale)
	}
	if v.Units.IsZero() {
		return fsm.Amount{}, fsm.Rejectf(fsm.CodeInvalidArgument, "the amount must be positive")
	}
	n := v.Units.Big()
	n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-int(v.Scale))), nil))
	a, err := fsm.AmountFromBig(n)
	if err != nil {
		return fsm.Amount{}, fsm.Rejectf(fsm.CodeInvalidArgument, "the amount is too large")
	}
	return a, nil
}

func (s *state) token(b *fsm.Batch, projectID, tokenID string) *Token {
	k := tokenKey(projectID, tokenID)
	if t := s.tokens[string(k)]; t != nil {
		return t
	}
	v, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigpay: read token: %v", err)) // the store failed
	}
	if v == nil {
		return nil
	}
	d := fsm.NewDecoder(v)
	t := ReadToken(d)
	if err := d.Finish("token"); err != nil {
		panic(fmt.Sprintf("gigpay: token %q: %v", k, err)) // corruption
	}
	return t
}

// tokenByString finds a token of the project by its bearer string, through its hash.
func (s *state) tokenByString(b *fsm.Batch, projectID, token string) *Token {
	h := TokenHash(token)
	id, ok := s.hashes[h]
	if !ok {
		v, err := b.Get(tokenHashKey(h))
		if err != nil {
			panic(fmt.Sprintf("gigpay: read token hash: %v", err))
		}
		if v == nil {
			return nil
		}
		id = string(v)
	}
	t := s.token(b, projectID, id)
	if t == nil || t.Token != token {
		return nil // another project's token (or a hash collision, which SHA-256 makes moot)
	}
	return t
}

func (s *state) putToken(b *fsm.Batch, t *Token) {
	k := tokenKey(t.ProjectID, t.ID)
	e := fsm.Encoder{Buf: make([]byte, 0, 256)}
	t.Encode(&e)
	b.Set(k, e.Buf)
	s.tokens[string(k)] = t
}

func (s *state) payment(b *fsm.Batch, projectID, paymentID string) *Payment {
	k := paymentKey(projectID, paymentID)
	if p := s.payments[string(k)]; p != nil {
		return p
	}
	v, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigpay: read payment: %v", err))
	}
	if v == nil {
		return nil
	}
	d := fsm.NewDecoder(v)
	p := ReadPayment(d)
	if err := d.Finish("payment"); err != nil {
		panic(fmt.Sprintf("gigpay: payment %q: %v", k, err))
	}
	return p
}

// putPayment stores a payment; a new one gets its index entries (their keys never change: the
// creation time, the amount and the wallets are fixed).
func (s *state) putPayment(b *fsm.Batch, p *Payment, isNew bool) {
	k := paymentKey(p.ProjectID, p.ID)
	e := fsm.Encoder{Buf: make([]byte, 0, 256)}
	p.Encode(&e)
	b.Set(k, e.Buf)
	s.payments[string(k)] = p
	if isNew {
		b.Set(paymentTimeKey(p), nil)
		b.Set(paymentAmountKey(p), nil)
		for _, w := range []string{p.Source.WalletID, p.Destination.WalletID} {
			if w != "" {
				b.Set(walletPaymentKey(p, w), nil)
			}
		}
	}
}

// clientRef returns the ID recorded under a client reference ("" for none).
func (s *state) clientRef(b *fsm.Batch, k []byte) string {
	if id, ok := s.refs[string(k)]; ok {
		return id
	}
	v, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigpay: read client reference: %v", err))
	}
	return string(v)
}

func (s *state) putClientRef(b *fsm.Batch, k []byte, id string) {
	b.Set(k, []byte(id))
	s.refs[string(k)] = id
}

func emitToken(b *fsm.Batch, eventType string, t *Token) {
	e := fsm.Encoder{Buf: make([]byte, 0, 256)}
	t.Encode(&e)
	b.Emit(eventType, e.Buf)
}

func emitPayment(b *fsm.Batch, eventType string, p *Payment) {
	e := fsm.Encoder{Buf: make([]byte, 0, 256)}
	p.Encode(&e)
	b.Emit(eventType, e.Buf)
}

// usableWallet answers why a wallet cannot take part in a payment now.
func usableWallet(w *ledger.Wallet) *fsm.Error {
	switch w.Status {
	case ledger.WalletSuspendedStatus:
		return fsm.Rejectf(ledger.CodeWalletSuspended, "wallet %q is suspended", w.ID)
	case ledger.WalletClosed:
		return fsm.Rejectf(ledger.CodeWalletClosed, "wallet %q is closed", w.ID)
	}
	return nil
}

// amountOf checks a wallet's asset against the request's and scales the amount to it.
func amountOf(core *ledger.Ledger, w *ledger.Wallet, assetID string, v Decimal) (fsm.Amount, uint64, *fsm.Error) {
	if w.AssetID != assetID {
		return fsm.Amount{}, 0, fsm.Rejectf(ledger.CodeAssetMismatch, "wallet %q holds %q, not %q", w.ID, w.AssetID, assetID)
	}
	as := core.Asset(w.ProjectID, assetID)
	if as == nil {
		return fsm.Amount{}, 0, fsm.Rejectf(ledger.CodeAssetNotFound, "asset %q not found", assetID)
	}
	scale := scaleOf(as.Fractions)
	if scale < 0 {
		return fsm.Amount{}, 0, fsm.Rejectf(CodeUnsupportedAsset, "asset %q has %d fractions; GigPay needs a power of ten", assetID, as.Fractions)
	}
	amount, err := ToMinor(v, scale)
	return amount, as.Fractions, err
}

func (f *Family) createTokens(b *fsm.Batch, c *CreateTokens) *fsm.Result {
	if len(c.Items) == 0 || len(c.Items) > BatchMaxItems {
		return fsm.Invalid("a batch holds 1..%d tokens", BatchMaxItems)
	}
	core := f.ledger.In(b)
	s := f.state(b)
	out := &TokenResults{Items: make([]TokenResult, len(c.Items))}
	for i := range c.Items {
		t, replayed, err := f.createToken(b, s, core, c.ProjectID, &c.Items[i])
		if t != nil {
			copied := *t
			t = &copied
		}
		out.Items[i] = TokenResult{Token: t, Err: err, Replayed: replayed}
	}
	return &fsm.Result{Value: out}
}

func (f *Family) createToken(b *fsm.Batch, s *state, core *ledger.Ledger, projectID string, it *TokenSpec) (*Token, bool, *fsm.Error) {
	switch {
	case !fsm.ValidID(it.ID, fsm.GeneratedIDMaxLength) || len(it.ID) < 2:
		return nil, false, fsm.Rejectf(fsm.CodeInvalidArgument, "token id must be 2..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
	case !fsm.ValidID(it.Token, fsm.GeneratedIDMaxLength) || len(it.Token) < TokenMinLength:
		return nil, false, fsm.Rejectf(fsm.CodeInvalidArgument, "token must be %d..%d of [A-Za-z0-9_.-]", TokenMinLength, fsm.GeneratedIDMaxLength)
	case !fsm.ValidText(it.Memo, MemoMaxLength):
		return nil, false, fsm.Rejectf(fsm.CodeInvalidArgument, "memo must be at most %d printable characters", MemoMaxLength)
	case !fsm.ValidText(it.ClientReference, ClientReferenceMaxLength):
		return nil, false, fsm.Rejectf(fsm.CodeInvalidArgument, "clientReference must be at most %d printable characters", ClientReferenceMaxLength)
	}
	w := core.Wallet(projectID, it.SourceWalletID)
	if w == nil {
		return nil, false, fsm.Rejectf(ledger.CodeWalletNotFound, "source account %q not found", it.SourceWalletID)
	}
	amount, fractions, err := amountOf(core, w, it.AssetID, it.Amount)
	if err != nil {
		return nil, false, err
	}
	var refKey []byte
	if it.ClientReference != "" {
		refKey = clientRefKey(projectID, it.SourceWalletID, "t:"+it.ClientReference)
		if id := s.clientRef(b, refKey); id != "" {
			prior := s.token(b, projectID, id)
			if prior == nil {
				panic(fmt.Sprintf("gigpay: client reference names missing token %s", id)) // corruption
			}
			if prior.AssetID != it.AssetID || prior.Amount != amount || prior.ExpiresAt != it.ExpiresAt || prior.Memo != it.Memo {
				return nil, false, fsm.Rejectf(CodeClientReferenceMismatch,
					"clientReference %q was used by token %s with different fields", it.ClientReference, prior.ID)
			}
			return prior, true, nil
		}
	}
	switch {
	case it.ExpiresAt <= b.Now:
		return nil, false, fsm.Rejectf(CodeExpiryInvalid, "expiresAtUtc must be in the future")
	case it.ExpiresAt-b.Now > TokenLifetimeMaxMs:
		return nil, false, fsm.Rejectf(CodeExpiryInvalid, "expiresAtUtc must be at most 366 days ahead")
	}
	if s.token(b, projectID, it.ID) != nil || s.tokenByString(b, projectID, it.Token) != nil {
		return nil, false, fsm.Rejectf(CodeTokenExists, "token %q exists", it.ID)
	}
	if err := usableWallet(w); err != nil {
		return nil, false, err
	}
	if available := core.Available(projectID, w.ID); available.Cmp(amount) < 0 {
		return nil, false, fsm.Rejectf(ledger.CodeInsufficientFunds, "account %q has %s available in the smallest unit; the token needs %s", w.ID, available, amount)
	}
	holdID, err := core.Hold(projectID, w.ID, "gigpay:token:"+it.ID, amount)
	if err != nil {
		return nil, false, err
	}
	t := &Token{ID: it.ID, Token: it.Token, ProjectID: projectID, AssetID: it.AssetID, Fractions: fractions, Amount: amount,
		SourceWalletID: w.ID, SourceCustomerID: w.CustomerID, ExpiresAt: it.ExpiresAt, Memo: it.Memo,
		ClientReference: it.ClientReference, Status: TokenActive, HoldID: holdID, CreatedAt: b.Now, ModifiedAt: b.Now}
	s.putToken(b, t)
	h := TokenHash(t.Token)
	b.Set(tokenHashKey(h), []byte(t.ID))
	s.hashes[h] = t.ID
	b.Set(tokenExpiryKey(t), nil)
	s.noteExpiry(t.ExpiresAt)
	if refKey != nil {
		s.putClientRef(b, refKey, t.ID)
	}
	emitToken(b, EventTokenCreated, t)
	return t, false, nil
}

// notActive is the refusal of a token that is no longer active, with the token.
func notActive(t *Token, what string) *fsm.Result {
	out := *t
	return &fsm.Result{Err: fsm.Rejectf(CodeTokenNotActive, "cannot %s: the token is %s", what, t.Status), Value: &out}
}

// activeToken finds a token by its string; one whose time has come expires here first.
func (f *Family) activeToken(b *fsm.Batch, s *state, core *ledger.Ledger, projectID, token, what string) (*Token, *fsm.Result) {
	t := s.tokenByString(b, projectID, token)
	if t == nil {
		return nil, fsm.Fail(fsm.Rejectf(CodeTokenNotFound, "token not found"))
	}
	if t.ClaimTransactionID != "" {
		return nil, claimInProgress(t, what)
	}
	if t.Status == TokenActive && t.ExpiresAt <= b.Now {
		f.expire(b, s, core, t)
	}
	if t.Status != TokenActive {
		return nil, notActive(t, what)
	}
	return t, nil
}

func (f *Family) claimToken(b *fsm.Batch, c *ClaimToken) *fsm.Result {
	core := f.ledger.In(b)
	s := f.state(b)
	t, r := f.activeToken(b, s, core, c.ProjectID, c.Token, "claim")
	if r != nil {
		return r
	}
	fail := func(err *fsm.Error) *fsm.Result {
		out := *t
		return &fsm.Result{Err: err, Value: &out}
	}
	dest := core.Wallet(c.ProjectID, c.DestinationWalletID)
	source := core.Wallet(c.ProjectID, t.SourceWalletID)
	switch {
	case source == nil:
		panic(fmt.Sprintf("gigpay: token %s names missing wallet %s", t.ID, t.SourceWalletID)) // corruption
	case dest == nil:
		return fail(fsm.Rejectf(ledger.CodeWalletNotFound, "destination account %q not found", c.DestinationWalletID))
	case dest.ID == source.ID:
		return fail(fsm.Rejectf(fsm.CodeInvalidArgument, "the destination is the token's source account"))
	case dest.AssetID != t.AssetID:
		return fail(fsm.Rejectf(ledger.CodeAssetMismatch, "destination account %q holds %q, the token %q", dest.ID, dest.AssetID, t.AssetID))
	}
	if err := usableWallet(source); err != nil {
		return fail(err)
	}
	if err := usableWallet(dest); err != nil {
		return fail(err)
	}
	tx, err := retrying(b, "gigpay:claim:"+t.ID, func(reference string) (*ledger.Transaction, *fsm.Error) {
		return core.CaptureHoldTo(c.ProjectID, t.HoldID, dest.ID, reference)
	})
	if err != nil {
		return fail(err)
	}
	p := &Payment{ID: PaymentIDOfToken(t.ID), ProjectID: t.ProjectID, Type: PaymentTransfer, Status: PaymentCompleted,
		AssetID: t.AssetID, Fractions: t.Fractions, Amount: t.Amount,
		Source:      Party{WalletID: source.ID, CustomerID: source.CustomerID},
		Destination: Party{WalletID: dest.ID, CustomerID: dest.CustomerID},
		TokenID:     t.ID, TransactionID: tx.ID, CreatedAt: b.Now, ModifiedAt: b.Now}
	s.putPayment(b, p, true)
	f.finish(b, s, t, TokenSucceeded)
	t.DestinationWalletID, t.DestinationCustomerID = dest.ID, dest.CustomerID
	t.PaymentID, t.TransactionID = p.ID, tx.ID
	s.putToken(b, t)
	emitToken(b, EventTokenSucceeded, t)
	emitPayment(b, EventPaymentCreated, p)
	out := *t
	return &fsm.Result{Value: &out}
}

func (f *Family) rejectToken(b *fsm.Batch, c *RejectToken) *fsm.Result {
	core := f.ledger.In(b)
	s := f.state(b)
	t, r := f.activeToken(b, s, core, c.ProjectID, c.Token, "reject")
	if r != nil {
		return r
	}
	if err := releaseTokenHold(core, t); err != nil {
		out := *t
		return &fsm.Result{Err: err, Value: &out}
	}
	f.finish(b, s, t, TokenRejected)
	s.putToken(b, t)
	emitToken(b, EventTokenRejected, t)
	out := *t
	return &fsm.Result{Value: &out}
}

// finish ends an active token's life: out of the expiry index, its status set.
func (f *Family) finish(b *fsm.Batch, s *state, t *Token, status TokenStatus) {
	b.Delete(tokenExpiryKey(t))
	t.Status = status
	t.ModifiedAt = b.Now
}

// releaseTokenHold releases an active token's hold. The accounting API reaches the same holds
// (a project's holds are one set): a hold it resolved already is gone and the token ends
// without it; one it is capturing across shards (CrossShardHold) cannot be released until that
// capture's outcome, which the caller answers or waits for. Never a crash: that is input.
func releaseTokenHold(core *ledger.Ledger, t *Token) *fsm.Error {
	if err := core.ReleaseHold(t.ProjectID, t.HoldID); err != nil && err.Code != ledger.CodeHoldResolved {
		return err
	}
	return nil
}

// expire releases an active token's hold at its expiry; false when the hold is being captured
// by a cross-shard capture of the accounting API (releaseTokenHold): the token stays Active,
// due, and expires at a batch after that capture's outcome.
func (f *Family) expire(b *fsm.Batch, s *state, core *ledger.Ledger, t *Token) bool {
	if releaseTokenHold(core, t) != nil {
		s.noteExpiry(t.ExpiresAt)
		return false
	}
	f.finish(b, s, t, TokenExpired)
	s.putToken(b, t)
	emitToken(b, EventTokenExpired, t)
	return true
}

// expireTokens expires, at the start of a batch, the active tokens whose time has come, oldest
// first and at most tokenExpiriesPerBatch (the rest wait for the next batch; a claim or a
// reject of one of them expires it first).
func (f *Family) expireTokens(b *fsm.Batch, s *state) {
	if s.nextExpiryMs == 0 || s.nextExpiryMs > b.Now {
		return
	}
	it, err := s.store.NewIter([]byte{prefixTokenExpiry}, []byte{prefixTokenExpiry + 1})
	if err != nil {
		panic(fmt.Sprintf("gigpay: token expiries: %v", err))
	}
	var due [][2]string
	s.nextExpiryMs = 0
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if expiresAt := int64(binary.BigEndian.Uint64(k[1:9])); expiresAt > b.Now || len(due) == tokenExpiriesPerBatch {
			s.nextExpiryMs = expiresAt
			break
		}
		rest := k[9:]
		for i, ch := range rest {
			if ch == 0 {
				due = append(due, [2]string{string(rest[:i]), string(rest[i+1:])})
				break
			}
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("gigpay: token expiries: %v", err))
	}
	it.Close()
	if len(due) == 0 {
		return
	}
	core := f.ledger.In(b)
	for _, d := range due {
		t := s.token(b, d[0], d[1])
		if t == nil || t.Status != TokenActive {
			panic(fmt.Sprintf("gigpay: expiry index names token %s/%s that is not active", d[0], d[1])) // corruption
		}
		f.expire(b, s, core, t)
	}
}

// earliestExpiry is the first active token's expiry in the store (0: none).
func earliestExpiry(store *fsm.Store) (int64, error) {
	var due int64
	err := store.Read(func() error {
		it, err := store.NewIter([]byte{prefixTokenExpiry}, []byte{prefixTokenExpiry + 1})
		if err != nil {
			return err
		}
		if it.First() {
			due = int64(binary.BigEndian.Uint64(it.Key()[1:9]))
		}
		if err := it.Error(); err != nil {
			it.Close()
			return err
		}
		return it.Close()
	})
	return due, err
}

func (f *Family) closeToken(b *fsm.Batch, c *CloseToken) *fsm.Result {
	if !fsm.ValidText(c.Reason, ReasonMaxLength) {
		return fsm.Invalid("reason must be at most %d printable characters", ReasonMaxLength)
	}
	core := f.ledger.In(b)
	s := f.state(b)
	t := s.token(b, c.ProjectID, c.TokenID)
	if t == nil {
		return fsm.Fail(fsm.Rejectf(CodeTokenNotFound, "token %q not found", c.TokenID))
	}
	if t.CloseTransactionID != "" {
		return closeInProgress(t)
	}
	if t.Status != TokenSucceeded {
		return notClosable(t)
	}
	fail := func(err *fsm.Error) *fsm.Result {
		out := *t
		return &fsm.Result{Err: err, Value: &out}
	}
	dest := core.Wallet(c.ProjectID, t.DestinationWalletID)
	source := core.Wallet(c.ProjectID, t.SourceWalletID)
	p := s.payment(b, c.ProjectID, t.PaymentID)
	if dest == nil && source != nil && p != nil {
		// Claimed across shards (wallets are never deleted): the payee's account lives on
		// another shard. The router runs that close as a cross-shard transaction
		// (closeacross.go); this command, sent to the token's shard alone, cannot move it.
		return fail(fsm.Rejectf(ledger.CodeCrossShardTransaction, "the payee's account %q lives on another shard than the payer's; its close runs across shards through the router", t.DestinationWalletID))
	}
	if dest == nil || source == nil || p == nil {
		panic(fmt.Sprintf("gigpay: succeeded token %s lacks its wallets or payment", t.ID)) // corruption
	}
	if err := usableWallet(dest); err != nil {
		return fail(err)
	}
	if source.Status == ledger.WalletClosed {
		return fail(fsm.Rejectf(ledger.CodeWalletClosed, "wallet %q is closed", source.ID))
	}
	if available := core.Available(c.ProjectID, dest.ID); available.Cmp(t.Amount) < 0 {
		return fail(fsm.Rejectf(ledger.CodeInsufficientFunds, "the payee's account %q has %s available in the smallest unit; the reversal needs %s", dest.ID, available, t.Amount))
	}
	tx, err := retrying(b, "gigpay:close:"+t.ID, func(reference string) (*ledger.Transaction, *fsm.Error) {
		return core.Transfer(c.ProjectID, dest.ID, source.ID, reference, t.Amount)
	})
	if err != nil {
		return fail(err)
	}
	t.Status, t.ModifiedAt, t.ReversalTransactionID, t.Reason = TokenClosed, b.Now, tx.ID, c.Reason
	s.putToken(b, t)
	p.Status, p.ModifiedAt, p.ReversalTransactionID, p.Reason = PaymentCanceled, b.Now, tx.ID, c.Reason
	s.putPayment(b, p, false)
	emitToken(b, EventTokenClosed, t)
	emitPayment(b, EventPaymentUpdated, p)
	out := *t
	return &fsm.Result{Value: &out}
}

func (f *Family) createPayment(b *fsm.Batch, c *CreatePayment) *fsm.Result {
	switch {
	case c.Type != PaymentDeposit && c.Type != PaymentWithdrawal:
		return fsm.Invalid("an admin payment is a deposit or a withdrawal")
	case !fsm.ValidID(c.PaymentID, fsm.GeneratedIDMaxLength):
		return fsm.Invalid("payment id must be 1..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
	case !fsm.ValidText(c.ExternalStorage, ExternalStorageMaxLength):
		return fsm.Invalid("externalStorage must be at most %d printable characters", ExternalStorageMaxLength)
	case !fsm.ValidText(c.ClientReference, ClientReferenceMaxLength):
		return fsm.Invalid("clientReference must be at most %d printable characters", ClientReferenceMaxLength)
	}
	core := f.ledger.In(b)
	s := f.state(b)
	w := core.Wallet(c.ProjectID, c.WalletID)
	if w == nil {
		return fsm.Fail(fsm.Rejectf(ledger.CodeWalletNotFound, "account %q not found", c.WalletID))
	}
	amount, fractions, err := amountOf(core, w, c.AssetID, c.Amount)
	if err != nil {
		return fsm.Fail(err)
	}
	var refKey []byte
	if c.ClientReference != "" {
		refKey = clientRefKey(c.ProjectID, c.WalletID, "p:"+c.ClientReference)
		if id := s.clientRef(b, refKey); id != "" {
			prior := s.payment(b, c.ProjectID, id)
			if prior == nil {
				panic(fmt.Sprintf("gigpay: client reference names missing payment %s", id)) // corruption
			}
			if prior.Type != c.Type || prior.AssetID != c.AssetID || prior.Amount != amount || externalOf(prior) != c.ExternalStorage {
				return fsm.Fail(fsm.Rejectf(CodeClientReferenceMismatch,
					"clientReference %q was used by payment %s with different fields", c.ClientReference, prior.ID))
			}
			out := *prior
			return &fsm.Result{Value: &out, Replayed: true}
		}
	}
	if s.payment(b, c.ProjectID, c.PaymentID) != nil {
		return fsm.Fail(fsm.Rejectf(CodePaymentExists, "payment %q exists", c.PaymentID))
	}
	if err := usableWallet(w); err != nil {
		return fsm.Fail(err)
	}
	p := &Payment{ID: c.PaymentID, ProjectID: c.ProjectID, Type: c.Type, Status: PaymentPending, AssetID: c.AssetID,
		Fractions: fractions, Amount: amount, ClientReference: c.ClientReference, CreatedAt: b.Now, ModifiedAt: b.Now}
	own := Party{WalletID: w.ID, CustomerID: w.CustomerID}
	if c.Type == PaymentDeposit {
		p.Source, p.Destination = Party{ExternalStorage: c.ExternalStorage}, own
	} else {
		p.Source, p.Destination = own, Party{ExternalStorage: c.ExternalStorage}
		if available := core.Available(c.ProjectID, w.ID); available.Cmp(amount) < 0 {
			return fsm.Fail(fsm.Rejectf(ledger.CodeInsufficientFunds, "account %q has %s available in the smallest unit; the withdrawal needs %s", w.ID, available, amount))
		}
		holdID, err := core.Hold(c.ProjectID, w.ID, "gigpay:withdrawal:"+p.ID, amount)
		if err != nil {
			return fsm.Fail(err)
		}
		p.HoldID = holdID
	}
	s.putPayment(b, p, true)
	if refKey != nil {
		s.putClientRef(b, refKey, p.ID)
	}
	emitPayment(b, EventPaymentCreated, p)
	out := *p
	return &fsm.Result{Value: &out}
}

// externalOf is the outside party of an admin payment.
func externalOf(p *Payment) string {
	if p.Type == PaymentDeposit {
		return p.Source.ExternalStorage
	}
	return p.Destination.ExternalStorage
}

// RulesPaymentRetry is the rules version from which a deposit's or withdrawal's completion, a
// token's claim or its close, whose attempt failed in the ledger (an account suspended, a
// balance overflow), succeeds once the cause is gone. The failed attempt's transaction keeps
// the reference GigPay derives from the payment or token, so before it every later attempt
// answered DuplicateReferenceId: a payment could then only be canceled or failed, a token only
// rejected or left to expire, a claimed token never closed.
const RulesPaymentRetry uint32 = 5

// retrying runs a ledger write under reference and, from RulesPaymentRetry, while an earlier
// attempt's failed transaction holds the reference it tried, under the next one (…:2, …:3):
// each attempt after a failed one gets a reference of its own. The payment or token the write
// belongs to resolves once, so it still happens at most once.
func retrying(b *fsm.Batch, reference string, run func(reference string) (*ledger.Transaction, *fsm.Error)) (*ledger.Transaction, *fsm.Error) {
	tx, err := run(reference)
	for attempt := 2; err != nil && err.Code == ledger.CodeDuplicateReferenceID && tx != nil &&
		tx.Status == ledger.TransactionFailed && b.Rules() >= RulesPaymentRetry; attempt++ {
		tx, err = run(reference + ":" + strconv.Itoa(attempt))
	}
	return tx, err
}

func (f *Family) updatePayment(b *fsm.Batch, c *UpdatePayment) *fsm.Result {
	if !fsm.ValidText(c.Reason, ReasonMaxLength) {
		return fsm.Invalid("reason must be at most %d printable characters", ReasonMaxLength)
	}
	core := f.ledger.In(b)
	s := f.state(b)
	p := s.payment(b, c.ProjectID, c.PaymentID)
	if p == nil {
		return fsm.Fail(fsm.Rejectf(CodePaymentNotFound, "payment %q not found", c.PaymentID))
	}
	refuse := func(format string, args ...any) *fsm.Result {
		out := *p
		return &fsm.Result{Err: fsm.Rejectf(ledger.CodeInvalidStatusTransition, format, args...), Value: &out}
	}
	switch {
	case p.Type == PaymentTransfer:
		return refuse("a transfer changes only through its token (close the token)")
	case c.Status == p.Status:
		out := *p // a retry of the same update: nothing to do
		return &fsm.Result{Value: &out, Replayed: true}
	case c.Status != PaymentProcessing && c.Status != PaymentCompleted && c.Status != PaymentCanceled && c.Status != PaymentFailed:
		return refuse("a payment moves to processing, completed, canceled or failed")
	case p.Status.Final():
		return refuse("the payment is %s", p.Status)
	}
	if c.Status == PaymentCompleted {
		var complete func(reference string) (*ledger.Transaction, *fsm.Error)
		var reference string
		if p.Type == PaymentDeposit {
			w := core.Wallet(c.ProjectID, p.Destination.WalletID)
			if w == nil {
				panic(fmt.Sprintf("gigpay: deposit %s names missing wallet %s", p.ID, p.Destination.WalletID)) // corruption
			}
			if w.Status == ledger.WalletClosed {
				out := *p
				return &fsm.Result{Err: fsm.Rejectf(ledger.CodeWalletClosed, "wallet %q is closed", w.ID), Value: &out}
			}
			reference = "gigpay:deposit:" + p.ID
			complete = func(reference string) (*ledger.Transaction, *fsm.Error) {
				return core.Issue(c.ProjectID, w.ID, reference, p.Amount)
			}
		} else {
			reference = "gigpay:withdrawal:" + p.ID + ":completed"
			complete = func(reference string) (*ledger.Transaction, *fsm.Error) {
				return core.RedeemHold(c.ProjectID, p.HoldID, reference)
			}
		}
		tx, err := retrying(b, reference, complete)
		if err != nil {
			out := *p
			return &fsm.Result{Err: err, Value: &out}
		}
		p.TransactionID = tx.ID
	} else if (c.Status == PaymentCanceled || c.Status == PaymentFailed) && p.Type == PaymentWithdrawal {
		if err := core.ReleaseHold(c.ProjectID, p.HoldID); err != nil && err.Code != ledger.CodeHoldResolved {
			// Being captured across shards through the accounting API (see releaseTokenHold).
			out := *p
			return &fsm.Result{Err: err, Value: &out}
		}
	}
	p.Status, p.ModifiedAt = c.Status, b.Now
	if c.Reason != "" {
		p.Reason = c.Reason
	}
	s.putPayment(b, p, false)
	emitPayment(b, EventPaymentUpdated, p)
	out := *p
	return &fsm.Result{Value: &out}
}
