package ledger

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/fsm"
)

// touchedWallet is a wallet's working balance while a transaction's operations run; nothing
// reaches the wallet itself until every operation has passed.
type touchedWallet struct {
	wallet       *Wallet
	balance      Amount
	held         Amount // the wallet's held amount with this transaction's holds (and a capture's release)
	entryCount   uint64
	startBalance Amount
	lastPosted   Amount // balance after the last entry posted for this wallet
}

// touchedAsset is an asset's working supply while a transaction's operations run: the stored
// supply plus what the operations so far issued, minus what they redeemed. It is never a gross
// total of issues or redeems, which may pass 2^128−1 in a transaction whose every state fits
// (issue the maximum, redeem it, issue it again).
type touchedAsset struct {
	asset  *Asset
	supply Amount
}

// step is one operation's wallets and asset, as indexes into the transaction's working sets
// (-1: the operation has no such side).
type step struct{ from, to, asset int }

func (l *Ledger) transact(c *Transact) *fsm.Result { return l.runTransaction(c, nil) }

// runTransaction applies a transaction. A capture passes the hold it captures as release: its
// amount no longer counts as held while the operations run, and is held again if they fail.
func (l *Ledger) runTransaction(c *Transact, release *Hold) *fsm.Result {
	if r := validateTransaction(c); r != nil {
		return r
	}
	referenceKey := c.ProjectID + "\x00" + c.ReferenceID
	prior, err := l.transactionByReference(c.ProjectID, c.ReferenceID, referenceKey)
	if err != nil {
		// A store read failed or the reference names a record that is not there: a broken
		// store, not a request's doing.
		panic(fmt.Sprintf("fsm: reference lookup: %v", err))
	}
	if prior != nil {
		if !sameOperations(prior.Operations, c.Operations) {
			return &fsm.Result{Err: rejectf(CodeReferenceIDMismatch,
				"reference id %q was used by transaction %s with different operations", c.ReferenceID, prior.ID),
				Value: prior}
		}
		return &fsm.Result{Err: rejectf(CodeDuplicateReferenceID,
			"reference id %q was already used by transaction %s", c.ReferenceID, prior.ID), Value: prior}
	}
	// Structural checks reject the request without recording anything: the wallets must exist
	// in this project, and a transfer must stay within one asset.
	wallets := make([]touchedWallet, 0, 2*len(c.Operations))
	assets := make([]touchedAsset, 0, 1)
	touch := func(id string) (int, *fsm.Result) {
		for i := range wallets {
			if wallets[i].wallet.ID == id {
				return i, nil
			}
		}
		w, r := l.findWallet(c.ProjectID, id)
		if r != nil {
			return 0, r
		}
		held := w.Held
		if release != nil && release.WalletID == w.ID {
			// The hold is part of w.Held while it is active: this cannot go below zero.
			held = mustSub(held, release.Amount)
		}
		wallets = append(wallets, touchedWallet{wallet: w, balance: w.Balance, held: held, startBalance: w.Balance, entryCount: w.EntryCount})
		return len(wallets) - 1, nil
	}
	touchAsset := func(assetID string) int {
		for i := range assets {
			if assets[i].asset.ID == assetID {
				return i
			}
		}
		as := l.assets[assetKey(c.ProjectID, assetID)]
		if as == nil {
			// Corruption only: a wallet is created with its asset (recorded on this shard
			// first if needed) and marks it used, and a used asset cannot be deleted.
			panic(fmt.Sprintf("fsm: wallet uses missing asset %q", assetID))
		}
		assets = append(assets, touchedAsset{asset: as, supply: as.Supply})
		return len(assets) - 1
	}
	steps := make([]step, len(c.Operations))
	for i, op := range c.Operations {
		s := step{from: -1, to: -1}
		var r *fsm.Result
		if op.From != "" {
			if s.from, r = touch(op.From); r != nil {
				return r
			}
		}
		if op.To != "" {
			if s.to, r = touch(op.To); r != nil {
				return r
			}
		}
		if op.Type == OperationHold && op.ExpiresAt != 0 && op.ExpiresAt <= l.b.Now {
			return invalid("operation %d: a hold must expire after the batch time %d (expiresAt %d)", i, l.b.Now, op.ExpiresAt)
		}
		if s.from >= 0 && s.to >= 0 && wallets[s.from].wallet.AssetID != wallets[s.to].wallet.AssetID {
			return fail(rejectf(CodeAssetMismatch, "operation %d: wallet %q holds %q and wallet %q holds %q",
				i, op.From, wallets[s.from].wallet.AssetID, op.To, wallets[s.to].wallet.AssetID))
		}
		if s.from >= 0 {
			s.asset = touchAsset(wallets[s.from].wallet.AssetID)
		} else {
			s.asset = touchAsset(wallets[s.to].wallet.AssetID)
		}
		steps[i] = s
	}

	// A uint64 counter of log commands, like the wallet sequence: it cannot wrap in practice.
	sequence := l.b.Next(l.family.transactionSequence)
	t := &Transaction{ID: transactionID(c.IDPrefix, sequence), ProjectID: c.ProjectID, ReferenceID: c.ReferenceID,
		Operations: c.Operations, CreatedAt: l.b.Now, Sequence: sequence, FailedOperationIndex: -1}

	// Run the operations in order on working balances. After each one the available balance
	// of the wallet it debited must still be ≥ 0 (the seed's rule), and no balance or supply
	// may pass 2^128−1: limits are business rules, failures that every replica records alike,
	// checked on the state after each operation and never on a sum of the operations.
	for i, op := range c.Operations {
		s := steps[i]
		if failure := l.checkUsable(wallets, s.from, s.to); failure != nil {
			return l.recordFailure(t, i, failure)
		}
		if s.from >= 0 {
			from := &wallets[s.from]
			available := mustSub(from.balance, from.held) // held ≤ balance after every operation
			if available.Cmp(op.Amount) < 0 {
				return l.recordFailure(t, i, rejectf(CodeInsufficientFunds,
					"operation %d: wallet %q has %s available, needs %s", i, from.wallet.ID, available, op.Amount))
			}
			if op.Type == OperationHold {
				// held + amount ≤ held + available = balance: no overflow, held ≤ balance.
				from.held = mustAdd(from.held, op.Amount)
				continue
			}
			// available ≥ amount, and balance ≥ available: this cannot go below zero.
			from.balance = mustSub(from.balance, op.Amount)
		}
		switch op.Type {
		case OperationIssue:
			supply, err := assets[s.asset].supply.Add(op.Amount)
			if err != nil {
				return l.recordFailure(t, i, rejectf(CodeBalanceOverflow, "operation %d: issuing %s overflows the asset supply", i, op.Amount))
			}
			assets[s.asset].supply = supply
		case OperationRedeem:
			// The wallet just debited held the amount, and the supply is the sum of the
			// asset's balances (this transaction's working ones included): only a corrupt
			// store can make the supply smaller than one of them.
			assets[s.asset].supply = mustSub(assets[s.asset].supply, op.Amount)
		}
		if s.to >= 0 {
			to := &wallets[s.to]
			balance, err := to.balance.Add(op.Amount)
			if err != nil {
				return l.recordFailure(t, i, rejectf(CodeBalanceOverflow, "operation %d: wallet %q balance would overflow", i, to.wallet.ID))
			}
			to.balance = balance
		}
	}

	// Every operation passed: post the entries, then the balances.
	t.Status = TransactionCompleted
	for i, op := range c.Operations {
		s := steps[i]
		switch op.Type {
		case OperationTransfer:
			l.postEntry(t, i, &wallets[s.from], EntryDebit, op.Amount)
			l.postEntry(t, i, &wallets[s.to], EntryCredit, op.Amount)
		case OperationIssue:
			l.postEntry(t, i, &wallets[s.to], EntryIssue, op.Amount)
		case OperationRedeem:
			l.postEntry(t, i, &wallets[s.from], EntryRedeem, op.Amount)
		case OperationHold:
			l.placeHold(t, i, wallets[s.from].wallet, op)
		}
	}
	l.checkConservation(t, wallets, assets)
	for i := range wallets {
		tw := &wallets[i]
		// Corruption only (a bug in this function): postEntry posts one entry per side.
		if tw.entryCount != tw.wallet.EntryCount+countEntries(c.Operations, steps, i) {
			panic(fmt.Sprintf("fsm: transaction %s: wallet %s entry count mismatch", t.ID, tw.wallet.ID))
		}
		// Only entries posted, nothing held or released: the chain record holds all the
		// change, and a wallet epoch may defer the record (epochs.go).
		balanceOnly := tw.entryCount > tw.wallet.EntryCount && tw.held == tw.wallet.Held
		tw.wallet.Balance = tw.balance
		tw.wallet.Held = tw.held
		tw.wallet.EntryCount = tw.entryCount
		// Corruption only: every debit above checked the available balance (balance − held).
		if tw.wallet.Held.Cmp(tw.wallet.Balance) > 0 {
			panic(fmt.Sprintf("fsm: transaction %s left wallet %s with held > balance", t.ID, tw.wallet.ID))
		}
		if balanceOnly {
			l.putWalletBalance(tw.wallet)
		} else {
			l.putWallet(tw.wallet)
		}
	}
	for i := range assets {
		if assets[i].asset.Supply != assets[i].supply {
			assets[i].asset.Supply = assets[i].supply
			l.putAsset(assets[i].asset)
		}
	}
	l.putTransaction(t)
	return &fsm.Result{Value: t}
}

// checkUsable fails an operation whose wallets cannot take part: suspended or closed.
func (l *Ledger) checkUsable(wallets []touchedWallet, indexes ...int) *fsm.Error {
	for _, i := range indexes {
		if i < 0 {
			continue
		}
		w := wallets[i].wallet
		switch w.Status {
		case WalletSuspendedStatus:
			return rejectf(CodeWalletSuspended, "wallet %q is suspended", w.ID)
		case WalletClosed:
			return rejectf(CodeWalletClosed, "wallet %q is closed", w.ID)
		}
	}
	return nil
}

// checkConservation asserts, per asset, that the balances the transaction touched moved by
// exactly as much as the asset's supply: issues and redeems change both alike, transfers
// neither. A mismatch is a bug in apply: panic.
//
// It compares signed changes, so no sum passes 2^128−1 where the final state does not (the
// old form, after + redeemed = before + issued, overflowed on a wallet at the maximum that
// redeemed 1 and got it back). The sums of balances fit: the touched wallets of an asset hold
// part of its supply, itself at most 2^128−1, before and after; an overflow there means the
// stored balances and supply disagree already, which no request can cause.
func (l *Ledger) checkConservation(t *Transaction, wallets []touchedWallet, assets []touchedAsset) {
	for _, as := range assets {
		var before, after Amount
		for _, tw := range wallets {
			if tw.wallet.AssetID == as.asset.ID {
				before = mustAdd(before, tw.startBalance)
				after = mustAdd(after, tw.balance)
			}
		}
		if fsm.ChangeOf(before, after) != fsm.ChangeOf(as.asset.Supply, as.supply) {
			panic(fmt.Sprintf("fsm: transaction %s breaks conservation of asset %s", t.ID, as.asset.ID))
		}
	}
}

func countEntries(ops []Operation, steps []step, wallet int) uint64 {
	var n uint64
	for i := range ops {
		if steps[i].from == wallet && ops[i].Type != OperationHold {
			n++
		}
		if steps[i].to == wallet {
			n++
		}
	}
	return n
}

func (l *Ledger) postEntry(t *Transaction, operationIndex int, tw *touchedWallet, entryType EntryType, amount Amount) {
	// Entries show the balance after each operation in order, so recompute it from the start.
	var balance Amount
	if tw.entryCount == tw.wallet.EntryCount {
		balance = tw.startBalance
	} else {
		balance = tw.lastPosted
	}
	// The replay passes through the same working balances the operations checked above (each
	// within 0..2^128−1), so a failure here is a bug in apply, not a request's doing.
	switch entryType {
	case EntryIssue, EntryCredit:
		balance = mustAdd(balance, amount)
	default:
		balance = mustSub(balance, amount)
	}
	tw.lastPosted = balance
	e := Entry{WalletID: tw.wallet.ID, Sequence: tw.entryCount, TransactionID: t.ID,
		OperationIndex: operationIndex, Type: entryType, Amount: amount, BalanceAfter: balance,
		CreatedAt: t.CreatedAt}
	tw.entryCount++
	if l.entriesAppended() {
		l.appendEntry(tw.wallet, &e)
		return
	}
	if !l.legacyEntries.Load() {
		l.legacyEntries.Store(true)
	}
	k := appendTimeSequence(prefixOf(prefixEntry, tw.wallet.ID), e.CreatedAt, e.Sequence)
	l.set(k, l.encodeStoredEntry(&e))
}

func (l *Ledger) recordFailure(t *Transaction, operationIndex int, reason *fsm.Error) *fsm.Result {
	t.Status = TransactionFailed
	t.FailedOperationIndex = operationIndex
	t.FailureReason = reason.Code
	t.FailureMessage = reason.Message
	l.putTransaction(t)
	return &fsm.Result{Err: reason, Value: t}
}

// putTransaction stores a transaction under its sequence — keys that only grow, and in time
// order — and claims its reference ID.
func (l *Ledger) putTransaction(t *Transaction) {
	l.writeTransaction(t, false)
	// Set copies key and value (a scratch key, and the sequence on the stack).
	var sequence [8]byte
	binary.BigEndian.PutUint64(sequence[:], t.Sequence)
	l.keyScratch = appendKey(l.keyScratch[:0], prefixReference, t.ProjectID, t.ReferenceID)
	l.set(l.keyScratch, sequence[:])
	l.pendingReferences[t.ProjectID+"\x00"+t.ReferenceID] = t
	l.emitTransaction(t)
}

func transactionKey(projectID string, sequence uint64) []byte {
	return idSequenceKey(prefixTransaction, projectID, sequence)
}

// transactionIDDigits is the width of the sequence part of a transaction ID: fixed, so that
// IDs of one prefix sort in sequence order.
const transactionIDDigits = 16

// transactionID is the proposer's prefix and the shard's transaction sequence in hex.
func transactionID(prefix string, sequence uint64) string {
	// fmt.Sprintf("%s%016x") without fmt: this runs for every transaction applied.
	const hex = "0123456789abcdef"
	var digits [transactionIDDigits]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = hex[sequence&0xf]
		sequence >>= 4
	}
	var b strings.Builder
	b.Grow(len(prefix) + transactionIDDigits)
	b.WriteString(prefix)
	b.Write(digits[:])
	return b.String()
}

// transactionSequence recovers the sequence from a transaction ID.
func transactionSequence(id string) (uint64, bool) {
	if len(id) <= transactionIDDigits {
		return 0, false
	}
	v, err := strconv.ParseUint(id[len(id)-transactionIDDigits:], 16, 64)
	return v, err == nil
}

// transactionByReference finds the transaction that used a reference ID, in this batch or in
// the store.
func (l *Ledger) transactionByReference(projectID, referenceID, referenceKey string) (*Transaction, error) {
	k := appendKey(l.keyScratch[:0], prefixReference, projectID, referenceID)
	l.keyScratch = k
	if l.refs.absent(k) {
		// Certain: every stored reference key is in the filter (refindex.go), and so is every
		// one this batch claimed (set adds it before pendingReferences holds it). A new
		// reference, nearly every one, costs no map lookup: in a batch of thousands of
		// transactions that map's misses were 2 % of apply.
		return nil, nil
	}
	if t := l.pendingReferences[referenceKey]; t != nil {
		return t, nil
	}
	sequence, err := l.get(k)
	if err != nil || sequence == nil {
		return nil, err
	}
	if len(sequence) != 8 {
		return nil, fmt.Errorf("reference %q: bad value %x", referenceID, sequence)
	}
	v, err := l.transactionRecord(projectID, binary.BigEndian.Uint64(sequence))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("reference %q names missing transaction %x", referenceID, sequence)
	}
	return decodeTransaction(v)
}

func validateTransaction(c *Transact) *fsm.Result {
	switch {
	case !fsm.ValidID(c.IDPrefix, fsm.TransactionIDPrefixMaxLength):
		return invalid("transaction id prefix must be 1..%d of [A-Za-z0-9_.-]", fsm.TransactionIDPrefixMaxLength)
	case c.ReferenceID == "" || !fsm.ValidText(c.ReferenceID, fsm.ReferenceIDMaxLength):
		return invalid("referenceId must be 1..%d printable characters", fsm.ReferenceIDMaxLength)
	case len(c.Operations) == 0 || len(c.Operations) > fsm.OperationsMaxCount:
		return invalid("a transaction has 1..%d operations", fsm.OperationsMaxCount)
	}
	for i, op := range c.Operations {
		if op.Amount.IsZero() {
			return invalid("operation %d: amount must be positive", i)
		}
		switch op.Type {
		case OperationTransfer:
			if op.From == "" || op.To == "" || op.From == op.To {
				return invalid("operation %d: a transfer needs two different wallets, from and to", i)
			}
		case OperationIssue:
			if op.To == "" || op.From != "" {
				return invalid("operation %d: an issue names only the wallet it credits, to", i)
			}
		case OperationRedeem:
			if op.From == "" || op.To != "" {
				return invalid("operation %d: a redeem names only the wallet it debits, from", i)
			}
		case OperationHold:
			if op.From == "" || op.To != "" {
				return invalid("operation %d: a hold names only the wallet it reserves funds of, from", i)
			}
			if op.ExpiresAt < 0 {
				return invalid("operation %d: expiresAt must be a time in Unix milliseconds", i)
			}
		default:
			return invalid("operation %d: type must be transfer, issue, redeem or hold", i)
		}
		if op.Type != OperationHold && op.ExpiresAt != 0 {
			return invalid("operation %d: only a hold expires", i)
		}
	}
	return nil
}

func sameOperations(a, b []Operation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// mustAdd and mustSub are for sums that the checks before them have bounded: a failure is a
// bug or a corrupt store (divergence), never a request's doing. A limit that a request can
// reach is checked with Add or Sub and answered with a rejection instead.
func mustAdd(a, b Amount) Amount {
	s, err := a.Add(b)
	if err != nil {
		panic(fmt.Sprintf("fsm: %s + %s: %v", a, b, err))
	}
	return s
}

func mustSub(a, b Amount) Amount {
	s, err := a.Sub(b)
	if err != nil {
		panic(fmt.Sprintf("fsm: %s - %s: %v", a, b, err))
	}
	return s
}
