package ledger

import (
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

func hold(from string, v uint64, expiresAt int64) Operation {
	return Operation{Type: OperationHold, From: from, Amount: amt(v), ExpiresAt: expiresAt}
}

// holdOf applies a transaction that places one hold (its first operation) and returns its ID.
func (tl *testLedger) holdOf(ref string, op Operation) string {
	tl.t.Helper()
	r := tl.ok(tx(ref, op))
	return HoldID(r.Transaction.ID, 0)
}

func (tl *testLedger) available(id string) string {
	w := tl.wallet("p1", id)
	return w.Available().String()
}

func (tl *testLedger) capture(holdID, to string, v uint64) *Result {
	return tl.applyTyped(&CaptureHold{ProjectID: "p1", HoldID: holdID, To: to, Amount: amt(v), IDPrefix: "t"})
}

func (tl *testLedger) release(holdID string) *Result {
	return tl.applyTyped(&ReleaseHold{ProjectID: "p1", HoldID: holdID})
}

// TestHoldCaptureReleaseExpire is the checked-by list of the issue: hold, capture part, the rest
// is released; a second capture is refused; an expired hold frees its amount; the invariant
// checker covers every step (newTestLedger checks it at the end, and checkpoints check it here).
func TestHoldCaptureReleaseExpire(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(tx("fund", issue("W1", 1000)))

	h := tl.holdOf("hold-1", hold("W1", 600, 0))
	if w := tl.wallet("p1", "W1"); w.Balance.String() != "1000" || w.Held.String() != "600" || tl.available("W1") != "400" {
		t.Fatalf("after hold: %+v", w)
	}
	// The hold's amount is not available to anything else.
	tl.rejects(tx("too-much", transfer("W1", "W2", 401)), CodeInsufficientFunds)
	tl.rejects(tx("hold-too-much", hold("W1", 401, 0)), CodeInsufficientFunds)
	tl.checkInvariants()

	// Capture part: 250 moves to W2, the other 350 is released.
	r := tl.capture(h, "W2", 250)
	if r.Err != nil || r.Hold.Status != HoldCaptured || r.Hold.CapturedAmount.String() != "250" || r.Transaction == nil {
		t.Fatalf("capture: %+v %v", r.Hold, r.Err)
	}
	if tl.balance("p1", "W1") != "750" || tl.balance("p1", "W2") != "250" || tl.wallet("p1", "W1").Held.String() != "0" {
		t.Fatalf("after capture: W1=%s W2=%s held=%s", tl.balance("p1", "W1"), tl.balance("p1", "W2"), tl.wallet("p1", "W1").Held)
	}
	tl.checkInvariants()

	// A second resolution changes nothing and says why.
	before := tl.digest()
	r = tl.capture(h, "W2", 1)
	if r.Err == nil || r.Err.Code != CodeHoldResolved || r.Hold == nil || r.Hold.Status != HoldCaptured {
		t.Fatalf("second capture: %+v %v", r.Hold, r.Err)
	}
	if r := tl.release(h); r.Err == nil || r.Err.Code != CodeHoldResolved {
		t.Fatalf("release after capture: %v", r.Err)
	}
	if tl.digest() != before {
		t.Fatal("a refused resolution changed the ledger")
	}

	// Release gives the whole amount back.
	h2 := tl.holdOf("hold-2", hold("W1", 700, 0))
	if tl.available("W1") != "50" {
		t.Fatalf("available %s", tl.available("W1"))
	}
	if r := tl.release(h2); r.Err != nil || r.Hold.Status != HoldReleased {
		t.Fatalf("release: %+v %v", r.Hold, r.Err)
	}
	if tl.available("W1") != "750" {
		t.Fatalf("available after release %s", tl.available("W1"))
	}

	// Expiry on batch time: the first batch at or after expiresAt releases it.
	expiresAt := tl.nowMs + 5000
	h3 := tl.holdOf("hold-3", hold("W1", 500, expiresAt))
	tl.ok(tx("tick-1", issue("S1", 1))) // batch time +1 s: not yet
	if tl.available("W1") != "250" {
		t.Fatalf("hold expired early: available %s", tl.available("W1"))
	}
	for tl.nowMs < expiresAt {
		tl.ok(tx("tick-"+string(rune('a'+tl.nowMs%26))+HoldID("t", int(tl.nowMs)), issue("S1", 1)))
	}
	if tl.available("W1") != "750" {
		t.Fatalf("hold did not expire: available %s", tl.available("W1"))
	}
	if r := tl.capture(h3, "W2", 0); r.Err == nil || r.Err.Code != CodeHoldResolved || r.Hold.Status != HoldExpired {
		t.Fatalf("capture of an expired hold: %+v %v", r.Hold, r.Err)
	}
	held, err := tl.ledger.GetHold("p1", h3)
	if err != nil || held.Status != HoldExpired || held.ResolvedAt < expiresAt {
		t.Fatalf("stored hold: %+v %v", held, err)
	}
}

// TestHoldRules: what a hold may and may not do.
func TestHoldRules(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(tx("fund", issue("W1", 100), issue("E1", 100)))
	h := tl.holdOf("h", hold("W1", 60, 0))

	// A capture that fails (another asset) records a failed transaction; the hold stays active.
	r := tl.capture(h, "E1", 10)
	if r.Err == nil || r.Err.Code != CodeAssetMismatch {
		t.Fatalf("capture to another asset: %v", r.Err)
	}
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W2", Status: WalletSuspendedStatus})
	r = tl.capture(h, "W2", 10)
	if r.Err == nil || r.Err.Code != CodeWalletSuspended || r.Transaction == nil || r.Transaction.Status != TransactionFailed {
		t.Fatalf("capture to a suspended wallet: %+v %v", r.Transaction, r.Err)
	}
	if got, _ := tl.ledger.GetHold("p1", h); got.Status != HoldActive || tl.wallet("p1", "W1").Held.String() != "60" {
		t.Fatalf("a failed capture resolved the hold: %+v", got)
	}
	// More than the hold, or a missing hold.
	if r := tl.capture(h, "S1", 61); r.Err == nil || r.Err.Code != CodeInvalidArgument {
		t.Fatalf("over-capture: %v", r.Err)
	}
	if r := tl.release("h0000nope.0"); r.Err == nil || r.Err.Code != CodeHoldNotFound {
		t.Fatalf("missing hold: %v", r.Err)
	}
	// A suspended wallet can neither place nor have captured a hold; release still works.
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletSuspendedStatus})
	tl.rejects(tx("hold-suspended", hold("W1", 1, 0)), CodeWalletSuspended)
	if r := tl.capture(h, "S1", 1); r.Err == nil || r.Err.Code != CodeWalletSuspended {
		t.Fatalf("capture from a suspended wallet: %v", r.Err)
	}
	// A wallet with an active hold cannot be closed.
	tl.rejects(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletClosed}, CodeWalletNotEmpty)
	if r := tl.release(h); r.Err != nil {
		t.Fatalf("release on a suspended wallet: %v", r.Err)
	}
	// Holds inside a transaction count against the operations after them.
	tl.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "W1", Status: WalletOpen})
	tl.rejects(tx("hold-then-spend", hold("W1", 80, 0), transfer("W1", "S1", 21)), CodeInsufficientFunds)
	tl.ok(tx("hold-and-spend", hold("W1", 80, 0), transfer("W1", "S1", 20)))
	if w := tl.wallet("p1", "W1"); w.Balance.String() != "80" || w.Held.String() != "80" {
		t.Fatalf("after hold and spend: %+v", w)
	}
	// Validation: a hold names only from; an expiry at or before the batch time. (Only a hold
	// operation carries an expiry in the log; the API refuses expiresAt on the others.)
	tl.rejects(tx("bad-1", Operation{Type: OperationHold, From: "W1", To: "W2", Amount: amt(1)}), CodeInvalidArgument)
	tl.rejects(tx("bad-2", hold("W1", 1, tl.nowMs)), CodeInvalidArgument)
}

// TestHoldEvents: each resolution appends one event to the outbox, with the hold as its data.
func TestHoldEvents(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(tx("fund", issue("W1", 100)))
	h := tl.holdOf("h", hold("W1", 10, 0))
	tl.release(h)
	events, err := tl.ledger.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, ev := range events {
		if ev.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence)
		}
		types = append(types, ev.Type)
	}
	want := []string{EventTransactionCompleted, EventTransactionCompleted, EventHoldReleased}
	if len(types) != len(want) || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("events %v, want %v", types, want)
	}
	subject, ok, err := tl.ledger.EventSubject(events[2])
	if hold, isHold := subject.(*Hold); err != nil || !ok || !isHold || hold.ID != h || hold.Status != HoldReleased {
		t.Fatalf("decoded %+v %v %v", subject, ok, err)
	}
	subject, ok, err = tl.ledger.EventSubject(events[1])
	if tx, isTx := subject.(*Transaction); err != nil || !ok || !isTx || HoldID(tx.ID, 0) != h {
		t.Fatalf("decoded %+v %v %v", subject, ok, err)
	}
	var _ fsm.Event = events[0]
}

// A capture whose reference a completed transaction already used — another hold's capture, or a
// transfer of the same amount between the same wallets — is not this hold's capture: from
// RulesCaptureReferenceMismatch it answers ReferenceIdMismatch, and the hold stays active. Before
// it the answer was DuplicateReferenceId ("already applied"), which replicas of older rules keep.
func TestACaptureUnderAnotherTransactionsReferenceIsAMismatch(t *testing.T) {
	for _, c := range []struct {
		rules uint32
		want  ErrorCode
	}{{RulesCaptureReferenceMismatch, CodeReferenceIDMismatch}, {RulesCaptureReferenceMismatch - 1, CodeDuplicateReferenceID}} {
		tl := newTestLedger(t)
		tl.applyTyped(&fsm.RaiseRules{Version: c.rules})
		tl.setup()
		tl.ok(tx("fund", issue("W1", 100)))
		h1 := tl.holdOf("hold-1", hold("W1", 10, 0))
		h2 := tl.holdOf("hold-2", hold("W1", 10, 0))
		capture := func(holdID, reference string) *Result {
			return tl.applyTyped(&CaptureHold{ProjectID: "p1", HoldID: holdID, To: "W2", Amount: amt(4), IDPrefix: "t", ReferenceID: reference})
		}
		first := capture(h1, "capX")
		if first.Err != nil || first.Hold.Status != HoldCaptured {
			t.Fatalf("first capture: %+v %v", first.Hold, first.Err)
		}
		tl.ok(tx("plain", transfer("W1", "W2", 4)))
		for _, reference := range []string{"capX", "plain"} {
			r := capture(h2, reference)
			if r.Err == nil || r.Err.Code != c.want {
				t.Fatalf("rules %d: capture of %s under %q: %v, want %s", c.rules, h2, reference, r.Err, c.want)
			}
		}
		if got, err := tl.ledger.GetHold("p1", h2); err != nil || got.Status != HoldActive {
			t.Fatalf("rules %d: hold %s after the refused captures: %+v %v", c.rules, h2, got, err)
		}
		if tl.balance("p1", "W2") != "8" {
			t.Fatalf("rules %d: W2 holds %s, want 8 (the first capture and the transfer)", c.rules, tl.balance("p1", "W2"))
		}
		// Once the reference is its own, the hold captures.
		if r := capture(h2, "capY"); r.Err != nil || r.Hold.Status != HoldCaptured {
			t.Fatalf("rules %d: capture under a new reference: %+v %v", c.rules, r.Hold, r.Err)
		}
	}
}
