package ledger

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/gigaledger/gigaledger/fsm"
)

// Holds are two-phase transfers (TigerBeetle's pending/post/void, Blnk's inflight). A hold
// operation inside a transaction reserves part of a wallet's available balance; the hold then
// resolves exactly once:
//   - captured (OpCaptureHold): all or part of it moves to another wallet of the same asset in a
//     new transaction (whose referenceId is the caller's, or its own ID), and the rest is
//     released;
//   - released (OpReleaseHold);
//   - expired: at the first batch whose time reaches its ExpiresAt (batch time, never a wall
//     clock), it is released.
//
// A second resolution is a HoldResolved rejection carrying the hold: nothing changes. While a
// hold is active its amount is part of the wallet's Held, so Available = Balance − Held never
// goes below zero and the invariant checker sums active holds per wallet.
//
// Wallet status rules: a hold cannot be placed on, or captured from, a suspended wallet (both
// are debits of its available balance); it can always be released or expire, which only returns
// funds to it. A wallet with an active hold has a non-zero balance, so it cannot be closed.
//
// Expiries happen when the shard applies a batch at or after their time; the leader proposes an
// fsm.Tick when one is due (fsm.Timed, cmd/gigaledger/duties.go), so an idle shard expires them
// too, and any command, including a capture or release of the hold, expires it first.

// HoldID is the ID of the hold placed by operation index of transaction transactionID: "h", the
// transaction ID after its kind letter (so the routing slot stays in place), "." and the index.
func HoldID(transactionID string, index int) string {
	return "h" + transactionID[1:] + "." + strconv.Itoa(index)
}

// holdExpiriesPerBatch bounds the expiries one batch applies; the rest wait for the next batch.
const holdExpiriesPerBatch = 1000

func holdKey(projectID, holdID string) []byte { return key(prefixHold, projectID, holdID) }

func holdExpiryKey(h *Hold) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixHoldExpiry}, uint64(h.ExpiresAt))
	return append(append(append(k, h.ProjectID...), 0), h.ID...)
}

// placeHold records the hold of a transaction's operation; the transaction has already added
// its amount to the wallet's held.
func (l *Ledger) placeHold(t *Transaction, index int, w *Wallet, op Operation) {
	h := &Hold{ID: HoldID(t.ID, index), ProjectID: t.ProjectID, WalletID: w.ID, Amount: op.Amount,
		Status: HoldActive, ExpiresAt: op.ExpiresAt, TransactionID: t.ID, CreatedAt: l.b.Now}
	l.putHold(h)
	if h.ExpiresAt != 0 {
		l.set(holdExpiryKey(h), nil)
		if l.nextExpiryMs == 0 || h.ExpiresAt < l.nextExpiryMs {
			l.nextExpiryMs = h.ExpiresAt
		}
	}
}

func (l *Ledger) putHold(h *Hold) {
	l.set(holdKey(h.ProjectID, h.ID), record(h))
	l.pendingHolds[h.ProjectID+"\x00"+h.ID] = h
}

// findHold returns a hold of the project as this batch left it.
func (l *Ledger) findHold(projectID, holdID string) (*Hold, *fsm.Result) {
	if h := l.pendingHolds[projectID+"\x00"+holdID]; h != nil {
		return h, nil
	}
	v, err := l.get(holdKey(projectID, holdID))
	if err != nil {
		panic(fmt.Sprintf("ledger: read hold: %v", err)) // the store failed
	}
	if v == nil {
		return nil, fail(errMissingHold(holdID))
	}
	h, err := decodeHold(v)
	if err != nil {
		panic(fmt.Sprintf("ledger: hold %q: %v", holdID, err)) // corruption
	}
	return h, nil
}

// resolve ends an active hold by release or expiry: the wallet's held drops by its amount.
func (l *Ledger) resolve(h *Hold, status HoldStatus) {
	w := l.wallet(h.WalletID)
	if w == nil {
		panic(fmt.Sprintf("ledger: hold %s names missing wallet %s", h.ID, h.WalletID)) // corruption
	}
	w.Held = mustSub(w.Held, h.Amount) // an active hold is part of its wallet's held
	l.putWallet(w)
	l.finishHold(h, status)
}

// finishHold records a hold's resolution; its wallet's held is already without it.
func (l *Ledger) finishHold(h *Hold, status HoldStatus) {
	h.Status = status
	h.ResolvedAt = l.b.Now
	if h.ExpiresAt != 0 {
		l.delete(holdExpiryKey(h))
	}
	l.putHold(h)
	l.emitHold(h)
}

// activeHold finds a hold that can still be resolved; a due hold expires here first.
func (l *Ledger) activeHold(projectID, holdID string) (*Hold, *fsm.Result) {
	h, r := l.findHold(projectID, holdID)
	if r != nil {
		return nil, r
	}
	if isCrossHold(h.ID) {
		return nil, fail(rejectf(CodeCrossShardHold, "hold %q belongs to cross-shard transaction %s: its decision resolves it", h.ID, h.TransactionID))
	}
	if h.CrossTransactionID != "" {
		// Prepared to be captured across shards: the transaction's decision captures it or
		// gives it back (then it can be released or captured again).
		return nil, fail(rejectf(CodeCrossShardHold, "hold %q is being captured by cross-shard transaction %s: its decision captures it or gives it back", h.ID, h.CrossTransactionID))
	}
	if h.Status == HoldActive && h.ExpiresAt != 0 && h.ExpiresAt <= l.b.Now {
		l.resolve(h, HoldExpired)
	}
	if h.Status != HoldActive {
		out := *h
		return nil, &fsm.Result{Err: rejectf(CodeHoldResolved, "hold %q is %s", h.ID, h.Status),
			Value: &HoldResolution{Hold: &out}}
	}
	return h, nil
}

func (l *Ledger) releaseHold(c *ReleaseHold) *fsm.Result {
	h, r := l.activeHold(c.ProjectID, c.HoldID)
	if r != nil {
		return r
	}
	l.resolve(h, HoldReleased)
	out := *h
	return &fsm.Result{Value: &HoldResolution{Hold: &out}}
}

// RulesCaptureReferenceMismatch is the rules version from which a capture whose reference ID a
// completed transaction already used answers ReferenceIdMismatch, not DuplicateReferenceId:
// the hold is still active, so that transaction is not its capture (before, the answer read as
// "the capture already applied" while nothing moved).
const RulesCaptureReferenceMismatch uint32 = 5

// CaptureReferenceMismatch is the refusal of a capture whose reference ID completed transaction
// transactionID used, which is not the hold's capture (a capture across shards answers it too).
func CaptureReferenceMismatch(referenceID, transactionID string) *fsm.Error {
	return rejectf(CodeReferenceIDMismatch, "reference id %q was used by transaction %s, which is not this hold's capture",
		referenceID, transactionID)
}

// captureHold runs the capture as a transaction of one transfer from the hold's wallet, with the
// hold's amount released while it runs; if the transaction fails it is recorded as failed and
// the hold stays active.
func (l *Ledger) captureHold(c *CaptureHold) *fsm.Result {
	h, r := l.activeHold(c.ProjectID, c.HoldID)
	if r != nil {
		return r
	}
	amount := c.Amount
	if amount.IsZero() {
		amount = h.Amount
	}
	if amount.Cmp(h.Amount) > 0 {
		return invalid("capture of %s exceeds the hold's %s", amount, h.Amount)
	}
	referenceID := c.ReferenceID
	if referenceID == "" {
		// The capture transaction's own ID: unique per attempt, so a capture that failed (the
		// payee suspended) can be tried again once the cause is gone. The hold, resolving once,
		// is what makes a capture happen at most once.
		referenceID = transactionID(c.IDPrefix, l.b.Peek(l.family.transactionSequence))
	}
	tx := &Transact{ProjectID: c.ProjectID, IDPrefix: c.IDPrefix, ReferenceID: referenceID,
		Operations: []Operation{{Type: OperationTransfer, From: h.WalletID, To: c.To, Amount: amount}}}
	result := l.runTransaction(tx, h)
	t, _ := result.Value.(*Transaction)
	if result.Err != nil && result.Err.Code == CodeDuplicateReferenceID && t != nil && t.Status == TransactionCompleted &&
		l.b.Rules() >= RulesCaptureReferenceMismatch {
		// A completed transaction under the reference is not this hold's capture, which would
		// have resolved the hold: "already applied" would tell the caller the capture happened.
		return &fsm.Result{Err: CaptureReferenceMismatch(referenceID, t.ID), Value: t}
	}
	if result.Err != nil || t == nil || t.Status != TransactionCompleted {
		return result
	}
	// The transaction ran with the hold released and stored the wallet's held without it.
	h.CapturedAmount = amount
	h.CaptureTransactionID = t.ID
	l.finishHold(h, HoldCaptured)
	out := *h
	return &fsm.Result{Value: &HoldResolution{Hold: &out, Transaction: t}}
}

// expireHolds releases, at the start of a batch, the holds whose time has come, oldest first.
// The earliest expiry is kept in memory, so a batch with nothing due reads nothing.
func (l *Ledger) expireHolds() {
	if l.nextExpiryMs == 0 || l.nextExpiryMs > l.b.Now {
		return
	}
	it, err := l.store.NewIter([]byte{prefixHoldExpiry}, []byte{prefixHoldExpiry + 1})
	if err != nil {
		panic(fmt.Sprintf("ledger: hold expiries: %v", err))
	}
	var due [][2]string
	l.nextExpiryMs = 0
	for valid := it.First(); valid; valid = it.Next() {
		if expiresAt := int64(binary.BigEndian.Uint64(it.Key()[1:9])); expiresAt > l.b.Now || len(due) == holdExpiriesPerBatch {
			l.nextExpiryMs = expiresAt // the earliest expiry left
			break
		}
		rest := it.Key()[9:]
		for i, c := range rest {
			if c == 0 {
				due = append(due, [2]string{string(rest[:i]), string(rest[i+1:])})
				break
			}
		}
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("ledger: hold expiries: %v", err))
	}
	it.Close()
	for _, d := range due {
		h, r := l.findHold(d[0], d[1])
		if r != nil || h.Status != HoldActive {
			panic(fmt.Sprintf("ledger: expiry index names hold %s/%s that is not active", d[0], d[1])) // corruption
		}
		l.resolve(h, HoldExpired)
	}
}
