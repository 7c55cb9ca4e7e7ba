package gigpay

import (
	"fmt"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Op codes 300–399 belong to this family (fsm/DESIGN.md): append only, never reuse.
const (
	OpCreateTokens  fsm.Op = 300
	OpClaimToken    fsm.Op = 301
	OpRejectToken   fsm.Op = 302
	OpCloseToken    fsm.Op = 303
	OpCreatePayment fsm.Op = 304
	OpUpdatePayment fsm.Op = 305
)

// Rejections of this family.
const (
	CodeTokenNotFound   fsm.ErrorCode = "TokenNotFound"
	CodeTokenNotActive  fsm.ErrorCode = "TokenNotActive"
	CodeTokenExists     fsm.ErrorCode = "TokenExists"
	CodePaymentNotFound fsm.ErrorCode = "PaymentNotFound"
	CodePaymentExists   fsm.ErrorCode = "PaymentExists"
	// CodeClientReferenceMismatch: the client reference was used for a different request.
	CodeClientReferenceMismatch fsm.ErrorCode = "ClientReferenceMismatch"
	// CodeUnsupportedAsset: the asset's fractions is not a power of ten.
	CodeUnsupportedAsset fsm.ErrorCode = "UnsupportedAsset"
	CodeTooPrecise       fsm.ErrorCode = "AmountTooPrecise"
	CodeExpiryInvalid    fsm.ErrorCode = "ExpiryInvalid"
	// CodeClaimInProgress: a claim of the token whose payee lives on another shard is under
	// way; it ends Succeeded or Active again (retry then: TokenNotActive, or the claim).
	CodeClaimInProgress fsm.ErrorCode = "TokenClaimInProgress"
	// CodeCloseInProgress: a close of the token whose payee lives on another shard is under
	// way; it ends Closed or Succeeded again (retry then: InvalidStatusTransition, or the close).
	CodeCloseInProgress fsm.ErrorCode = "TokenCloseInProgress"
)

// Events into the outbox: the token or the payment record after the change.
const (
	EventTokenCreated     = "GIGPAY_TOKEN_CREATED"
	EventTokenSucceeded   = "GIGPAY_TOKEN_SUCCEEDED"
	EventTokenRejected    = "GIGPAY_TOKEN_REJECTED"
	EventTokenExpired     = "GIGPAY_TOKEN_EXPIRED"
	EventTokenClosed      = "GIGPAY_TOKEN_CLOSED"
	EventPaymentCreated   = "GIGPAY_PAYMENT_CREATED"
	EventPaymentUpdated   = "GIGPAY_PAYMENT_UPDATED"
	tokenExpiriesPerBatch = 1000
)

// Decimal is an amount as the client wrote it: Units × 10^-Scale. The FSM scales it to the
// asset's smallest unit, so the proposer needs no asset read.
type Decimal struct {
	Units fsm.Amount
	Scale uint8
}

func (v Decimal) encode(e *fsm.Encoder) {
	e.Amount(v.Units)
	e.Byte(v.Scale)
}

func readDecimal(d *fsm.Decoder) Decimal { return Decimal{Units: d.Amount(), Scale: d.Byte()} }

// TokenSpec is one token to create.
type TokenSpec struct {
	ID, Token       string
	SourceWalletID  string
	AssetID         string
	Amount          Decimal
	ExpiresAt       int64
	Memo            string
	ClientReference string
}

// CreateTokens creates payment tokens, each on its own: an item that cannot be created (its
// reason in its result) does not stop the others. All items live on one shard (the proposer
// splits a batch by shard).
type CreateTokens struct {
	ProjectID string
	Items     []TokenSpec
}

// Op implements fsm.Command.
func (*CreateTokens) Op() fsm.Op { return OpCreateTokens }

// Route implements fsm.Command: the tokens' IDs carry their source wallets' slot.
func (c *CreateTokens) Route() fsm.Route {
	ids := make([]string, 0, 2*len(c.Items))
	for _, it := range c.Items {
		ids = append(ids, it.ID, it.SourceWalletID)
	}
	return fsm.Route{ProjectID: c.ProjectID, IDs: ids}
}

// Encode implements fsm.Command.
func (c *CreateTokens) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.Uvarint(uint64(len(c.Items)))
	for _, it := range c.Items {
		e.String(it.ID)
		e.String(it.Token)
		e.String(it.SourceWalletID)
		e.String(it.AssetID)
		it.Amount.encode(e)
		e.Varint(it.ExpiresAt)
		e.String(it.Memo)
		e.String(it.ClientReference)
	}
}

func decodeCreateTokens(d *fsm.Decoder) fsm.Command {
	c := &CreateTokens{ProjectID: d.String()}
	n := d.Count("tokens")
	for i := 0; i < n && d.Err() == nil; i++ {
		it := TokenSpec{ID: d.String(), Token: d.String(), SourceWalletID: d.String(), AssetID: d.String()}
		it.Amount = readDecimal(d)
		it.ExpiresAt = d.Varint()
		it.Memo, it.ClientReference = d.String(), d.String()
		c.Items = append(c.Items, it)
	}
	return c
}

// TokenResult is one item's outcome: the token (created now, or, Replayed, earlier under the
// same client reference), or why not.
type TokenResult struct {
	Token    *Token
	Err      *fsm.Error
	Replayed bool
}

// TokenResults is CreateTokens's value: one result per item, in order.
type TokenResults struct{ Items []TokenResult }

// Encode implements fsm.Value.
func (r *TokenResults) Encode(e *fsm.Encoder) {
	e.Uvarint(uint64(len(r.Items)))
	for _, it := range r.Items {
		e.Bool(it.Err != nil)
		if it.Err != nil {
			e.String(string(it.Err.Code))
			e.String(it.Err.Message)
		}
		e.Bool(it.Token != nil)
		if it.Token != nil {
			it.Token.Encode(e)
		}
		e.Bool(it.Replayed)
	}
}

// ReadTokenResults reads what Encode wrote.
func ReadTokenResults(d *fsm.Decoder) *TokenResults {
	r := &TokenResults{}
	n := d.Count("token results")
	for i := 0; i < n && d.Err() == nil; i++ {
		var it TokenResult
		if d.Bool() {
			it.Err = &fsm.Error{Code: fsm.ErrorCode(d.String()), Message: d.String()}
		}
		if d.Bool() {
			it.Token = ReadToken(d)
		}
		it.Replayed = d.Bool()
		r.Items = append(r.Items, it)
	}
	return r
}

// ClaimToken claims an active token for a wallet of the project: the hold is captured into a
// transfer to it, and the token succeeds with a transfer payment.
type ClaimToken struct {
	ProjectID, Token, DestinationWalletID string
}

// Op implements fsm.Command.
func (*ClaimToken) Op() fsm.Op { return OpClaimToken }

// Route implements fsm.Command: the token string and the destination carry their slots; two
// shards are a cross-shard claim, which the router refuses.
func (c *ClaimToken) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.Token, c.DestinationWalletID}}
}

// Encode implements fsm.Command.
func (c *ClaimToken) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.Token)
	e.String(c.DestinationWalletID)
}

func decodeClaimToken(d *fsm.Decoder) fsm.Command {
	return &ClaimToken{ProjectID: d.String(), Token: d.String(), DestinationWalletID: d.String()}
}

// RejectToken rejects an active token: its hold is released.
type RejectToken struct{ ProjectID, Token string }

// Op implements fsm.Command.
func (*RejectToken) Op() fsm.Op { return OpRejectToken }

// Route implements fsm.Command.
func (c *RejectToken) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.Token}}
}

// Encode implements fsm.Command.
func (c *RejectToken) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.Token)
}

func decodeRejectToken(d *fsm.Decoder) fsm.Command {
	return &RejectToken{ProjectID: d.String(), Token: d.String()}
}

// CloseToken closes a succeeded token whose payment failed downstream (Masspay): a compensating
// transfer gives the amount back from the payee to the payer, and the payment is canceled.
type CloseToken struct{ ProjectID, TokenID, Reason string }

// Op implements fsm.Command.
func (*CloseToken) Op() fsm.Op { return OpCloseToken }

// Route implements fsm.Command.
func (c *CloseToken) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.TokenID}}
}

// Encode implements fsm.Command.
func (c *CloseToken) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.TokenID)
	e.String(c.Reason)
}

func decodeCloseToken(d *fsm.Decoder) fsm.Command {
	return &CloseToken{ProjectID: d.String(), TokenID: d.String(), Reason: d.String()}
}

// CreatePayment creates an admin payment: a deposit into WalletID from ExternalStorage, or a
// withdrawal from WalletID to ExternalStorage, which holds its amount at once. Both start
// pending.
type CreatePayment struct {
	ProjectID, PaymentID string
	Type                 PaymentType
	WalletID, AssetID    string
	Amount               Decimal
	ExternalStorage      string
	ClientReference      string
}

// Op implements fsm.Command.
func (*CreatePayment) Op() fsm.Op { return OpCreatePayment }

// Route implements fsm.Command.
func (c *CreatePayment) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.PaymentID, c.WalletID}}
}

// Encode implements fsm.Command.
func (c *CreatePayment) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.PaymentID)
	e.Byte(byte(c.Type))
	e.String(c.WalletID)
	e.String(c.AssetID)
	c.Amount.encode(e)
	e.String(c.ExternalStorage)
	e.String(c.ClientReference)
}

func decodeCreatePayment(d *fsm.Decoder) fsm.Command {
	c := &CreatePayment{ProjectID: d.String(), PaymentID: d.String(), Type: PaymentType(d.Byte()),
		WalletID: d.String(), AssetID: d.String()}
	c.Amount = readDecimal(d)
	c.ExternalStorage, c.ClientReference = d.String(), d.String()
	return c
}

// UpdatePayment moves an admin payment to a status: a deposit completes by issuing its amount
// into its wallet; a withdrawal completes by redeeming its hold, or fails or is canceled by
// releasing it.
type UpdatePayment struct {
	ProjectID, PaymentID string
	Status               PaymentStatus
	Reason               string
}

// Op implements fsm.Command.
func (*UpdatePayment) Op() fsm.Op { return OpUpdatePayment }

// Route implements fsm.Command.
func (c *UpdatePayment) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.PaymentID}}
}

// Encode implements fsm.Command.
func (c *UpdatePayment) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.PaymentID)
	e.Byte(byte(c.Status))
	e.String(c.Reason)
}

func decodeUpdatePayment(d *fsm.Decoder) fsm.Command {
	return &UpdatePayment{ProjectID: d.String(), PaymentID: d.String(), Status: PaymentStatus(d.Byte()), Reason: d.String()}
}

// Family is the GigPay family registered in one fsm.Registry.
type Family struct {
	module fsm.ModuleID
	ledger *ledger.Family
}

// Register adds the family to reg, on the accounting core registered there.
func Register(reg *fsm.Registry, core *ledger.Family) *Family {
	f := &Family{ledger: core}
	core.RegisterCrossHook(ClaimHook, &claimHook{f: f})
	core.RegisterCrossHook(CloseHook, &closeHook{f: f})
	reg.ClaimPrefix(prefixToken, "gigpay: tokens")
	reg.ClaimPrefix(prefixTokenHash, "gigpay: tokens by hash")
	reg.ClaimPrefix(prefixTokenExpiry, "gigpay: active tokens by expiry")
	reg.ClaimPrefix(prefixClientRef, "gigpay: client references")
	reg.ClaimPrefix(prefixPayment, "gigpay: payments")
	reg.ClaimPrefix(prefixPaymentTime, "gigpay: payments by time")
	reg.ClaimPrefix(prefixPaymentAmount, "gigpay: payments by amount")
	reg.ClaimPrefix(prefixWalletPayment, "gigpay: payments by wallet")
	f.module = reg.AddModule(func(s *fsm.Store) fsm.Module { return &state{store: s, family: f} })
	tokenValue := func(d *fsm.Decoder) fsm.Value { return ReadToken(d) }
	paymentValue := func(d *fsm.Decoder) fsm.Value { return ReadPayment(d) }
	reg.Add(fsm.OpSpec{Op: OpCreateTokens, Name: "CreateTokens", Decode: decodeCreateTokens,
		Example: &CreateTokens{ProjectID: "p", Items: []TokenSpec{{ID: "k0001x", Token: "g0001y", SourceWalletID: "w0001z",
			AssetID: "usd", Amount: Decimal{Units: fsm.AmountFromUint64(150), Scale: 2}, ExpiresAt: 7, Memo: "tea", ClientReference: "r1"}}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.createTokens(b, c.(*CreateTokens))
		},
		DecodeValue: func(d *fsm.Decoder) fsm.Value { return ReadTokenResults(d) }})
	reg.Add(fsm.OpSpec{Op: OpClaimToken, Name: "ClaimToken", Decode: decodeClaimToken,
		Example: &ClaimToken{ProjectID: "p", Token: "g0001y", DestinationWalletID: "w0001q"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.claimToken(b, c.(*ClaimToken))
		},
		DecodeValue: tokenValue})
	reg.Add(fsm.OpSpec{Op: OpRejectToken, Name: "RejectToken", Decode: decodeRejectToken,
		Example: &RejectToken{ProjectID: "p", Token: "g0001y"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.rejectToken(b, c.(*RejectToken))
		},
		DecodeValue: tokenValue})
	reg.Add(fsm.OpSpec{Op: OpCloseToken, Name: "CloseToken", Decode: decodeCloseToken,
		Example: &CloseToken{ProjectID: "p", TokenID: "k0001x", Reason: "masspay: account closed"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.closeToken(b, c.(*CloseToken))
		},
		DecodeValue: tokenValue})
	reg.Add(fsm.OpSpec{Op: OpCreatePayment, Name: "CreatePayment", Decode: decodeCreatePayment,
		Example: &CreatePayment{ProjectID: "p", PaymentID: "y0001a", Type: PaymentDeposit, WalletID: "w0001z", AssetID: "usd",
			Amount: Decimal{Units: fsm.AmountFromUint64(5)}, ExternalStorage: "wire:123", ClientReference: "d1"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.createPayment(b, c.(*CreatePayment))
		},
		DecodeValue: paymentValue})
	reg.Add(fsm.OpSpec{Op: OpUpdatePayment, Name: "UpdatePayment", Decode: decodeUpdatePayment,
		Example: &UpdatePayment{ProjectID: "p", PaymentID: "y0001a", Status: PaymentCompleted},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.updatePayment(b, c.(*UpdatePayment))
		},
		DecodeValue: paymentValue})
	return f
}

// state is the family's per-shard memory: the records the batch being applied wrote (the store
// shows them only once the batch commits), and the earliest token expiry.
type state struct {
	store    *fsm.Store
	family   *Family
	tokens   map[string]*Token   // by tokenKey
	payments map[string]*Payment // by paymentKey
	refs     map[string]string   // by clientRefKey
	hashes   map[[32]byte]string // token hash → ID
	// nextExpiryMs is the earliest expiry of an active token (0: none); dueMs its copy for
	// other goroutines (fsm.Timed).
	nextExpiryMs int64
	dueMs        atomic.Int64
}

func (s *state) Load() error {
	s.tokens = map[string]*Token{}
	s.payments = map[string]*Payment{}
	s.refs = map[string]string{}
	s.hashes = map[[32]byte]string{}
	due, err := earliestExpiry(s.store)
	if err != nil {
		return fmt.Errorf("load gigpay: %w", err)
	}
	s.nextExpiryMs = due
	s.dueMs.Store(due)
	return nil
}

// NextDueMs is the earliest expiry of an active token, 0 for none (fsm.Timed).
func (s *state) NextDueMs() int64 { return s.dueMs.Load() }

// BeginBatch expires the tokens whose time has come (fsm.Module). The accounting core's module
// is registered first, so its batch has begun.
func (s *state) BeginBatch(b *fsm.Batch) { s.family.expireTokens(b, s) }

func (s *state) EndBatch(*fsm.Batch) {
	s.dueMs.Store(s.nextExpiryMs)
	clear(s.tokens)
	clear(s.payments)
	clear(s.refs)
	clear(s.hashes)
}

func (s *state) noteExpiry(expiresAt int64) {
	if s.nextExpiryMs == 0 || expiresAt < s.nextExpiryMs {
		s.nextExpiryMs = expiresAt
	}
}
