package ledger

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// testHookName is the hook every test machine registers (openTest): it records its calls and
// refuses when told to.
const testHookName = "test.hook"

type recordingHook struct {
	refuse *fsm.Error
	calls  []string
}

var testHook recordingHook

func (h *recordingHook) Check(_ *fsm.Batch, c *CrossHookContext) *fsm.Error {
	h.calls = append(h.calls, "check "+string(c.Data))
	return h.refuse
}

func (h *recordingHook) Prepared(_ *fsm.Batch, c *CrossHookContext) {
	h.calls = append(h.calls, fmt.Sprintf("prepared %s %d", c.Data, len(c.Captures)))
}

func (h *recordingHook) Finished(_ *fsm.Batch, c *CrossHookContext, completed bool) {
	h.calls = append(h.calls, fmt.Sprintf("finished %s %v", c.Data, completed))
}

func (h *recordingHook) reset() { *h = recordingHook{} }

func (c *xCluster) hold(id string) *Hold {
	c.t.Helper()
	for _, tl := range c.shards {
		if h, err := tl.ledger.GetHold("p1", id); err == nil {
			return h
		}
	}
	c.t.Fatalf("hold %s not found", id)
	return nil
}

// A hold on shard 0 captured to a wallet of shard 1: part of it moves, the rest is released,
// the hold is captured by the transaction exactly as a single-shard capture records it.
func TestCrossShardCaptureHold(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 100)
	c.wallet(1, "B", "usd", 0)
	h := c.shards[0].holdOf("hold-a", hold("A", 60, 0))
	d := &driver{c: c, afterStep: c.checkInvariants}
	got := d.runWith("cap-1", CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, transfer("A", "B", 40))
	if got.Status != TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if a, b := c.walletOf("A"), c.walletOf("B"); a.Balance != amt(60) || !a.Held.IsZero() || b.Balance != amt(40) {
		t.Fatalf("A %s held %s, B %s", a.Balance, a.Held, b.Balance)
	}
	if hd := c.hold(h); hd.Status != HoldCaptured || hd.CapturedAmount != amt(40) || hd.CaptureTransactionID != got.ID || hd.CrossTransactionID != "" {
		t.Fatalf("hold %+v", hd)
	}
	if s := c.supply("usd"); s != amt(100) {
		t.Fatalf("supply %s", s)
	}
	// Captured once: a second capture, here or across shards, meets the resolved hold.
	if r := c.shards[0].capture(h, "A", 0); r.Err == nil || r.Err.Code != CodeHoldResolved {
		t.Fatalf("capture again: %v", r.Err)
	}
	again := d.runWith("cap-2", CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, transfer("A", "B", 10))
	if again.Status != TransactionFailed || again.FailureReason != CodeHoldResolved || c.balance("A") != 60 {
		t.Fatalf("%+v", again)
	}
}

// steps runs a begin and its prepares and returns the record and the votes.
func (c *xCluster) prepared(ref string, extras CrossExtras, ops ...Operation) (*CrossTransaction, int, []ShardVote) {
	c.t.Helper()
	begin, coordinator := c.begin(ref, ops...)
	begin.CrossExtras = extras
	r := c.shards[coordinator].applyRaw(begin)[0]
	x, ok := r.Value.(*CrossTransaction)
	if r.Err != nil || !ok {
		c.t.Fatalf("begin: %v", r.Err)
	}
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets, Legs: p.Legs, CrossExtras: p.CrossExtras})[0]
		if r.Err != nil {
			c.t.Fatalf("prepare: %v", r.Err)
		}
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
		c.checkInvariants()
	}
	return x, coordinator, votes
}

// finished decides and finishes a prepared transaction.
func (c *xCluster) finished(x *CrossTransaction, coordinator int, votes []ShardVote) *Transaction {
	c.t.Helper()
	id := x.Transaction.ID
	r := c.shards[coordinator].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})[0]
	if r.Err != nil {
		c.t.Fatalf("decide: %v", r.Err)
	}
	decided := r.Value.(*CrossTransaction).Transaction
	for _, p := range x.Participants {
		if r := c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: decided.Status})[0]; r.Err != nil {
			c.t.Fatalf("finish: %v", r.Err)
		}
		c.checkInvariants()
	}
	if r := c.shards[coordinator].applyRaw(&CrossDone{ProjectID: "p1", TransactionID: id})[0]; r.Err != nil {
		c.t.Fatalf("done: %v", r.Err)
	}
	return decided
}

// While a capture is prepared the hold is the transaction's: no release, no other capture, no
// expiry. A failed transaction gives it back as it was; one whose expiry passed meanwhile
// expires at that finish. A completed one captures it even past its expiry (the prepare is
// the transaction's point of checks).
func TestCrossShardCaptureInFlight(t *testing.T) {
	for _, completes := range []bool{false, true} {
		t.Run(fmt.Sprint("completes=", completes), func(t *testing.T) {
			c := newXCluster(t, 2)
			c.wallet(0, "A", "usd", 100)
			c.wallet(1, "B", "usd", 0)
			if !completes {
				c.shards[1].ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "B", Status: WalletClosed})
			}
			expiresAt := c.shards[0].nowMs + 3500
			h := c.shards[0].holdOf("hold-a", hold("A", 60, expiresAt))
			extras := CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}
			x, coordinator, votes := c.prepared("cap-1", extras, transfer("A", "B", 25))
			if hd := c.hold(h); hd.CrossTransactionID != x.Transaction.ID || hd.Status != HoldActive {
				t.Fatalf("prepared hold %+v", hd)
			}
			if r := c.shards[0].release(h); r.Err == nil || r.Err.Code != CodeCrossShardHold {
				t.Fatalf("release in flight: %v", r.Err)
			}
			if r := c.shards[0].capture(h, "A", 0); r.Err == nil || r.Err.Code != CodeCrossShardHold {
				t.Fatalf("capture in flight: %v", r.Err)
			}
			other, _, otherVotes := c.prepared("cap-other", extras, transfer("A", "B", 5))
			if v := otherVotes[0].Vote; v.Prepared || v.FailureReason != CodeCrossShardHold {
				t.Fatalf("a second capture's vote: %+v", v)
			}
			if got := c.finished(other, 0, otherVotes); got.FailureReason != CodeCrossShardHold {
				t.Fatalf("second capture: %+v", got)
			}
			for c.shards[0].nowMs <= expiresAt {
				c.shards[0].ok(tx(fmt.Sprint("tick-", c.shards[0].nowMs), issue("A", 1)))
			}
			if hd := c.hold(h); hd.Status != HoldActive {
				t.Fatalf("the hold expired in flight: %+v", hd)
			}
			got := c.finished(x, coordinator, votes)
			hd := c.hold(h)
			switch {
			case completes && (got.Status != TransactionCompleted || hd.Status != HoldCaptured || c.balance("B") != 25):
				t.Fatalf("completed: %+v, hold %+v", got, hd)
			case !completes && (got.FailureReason != CodeWalletClosed || hd.Status != HoldExpired || c.balance("B") != 0):
				t.Fatalf("failed: %+v, hold %+v", got, hd)
			}
			if a := c.walletOf("A"); !a.Held.IsZero() {
				t.Fatalf("A held %s", a.Held)
			}
		})
	}
}

// A failed capture before the expiry gives the hold back active, in the expiry index again:
// it can be released (or captured) afterwards and still expires on time.
func TestCrossShardCaptureFailureKeepsHold(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 100)
	c.wallet(1, "B", "eur", 0) // another asset: the decision fails
	h := c.shards[0].holdOf("hold-a", hold("A", 60, c.shards[0].nowMs+1_000_000))
	d := &driver{c: c, afterStep: c.checkInvariants}
	got := d.runWith("cap-1", CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, transfer("A", "B", 60))
	if got.FailureReason != CodeAssetMismatch {
		t.Fatalf("%+v", got)
	}
	if hd := c.hold(h); hd.Status != HoldActive || hd.CrossTransactionID != "" || c.walletOf("A").Held != amt(60) {
		t.Fatalf("hold %+v", hd)
	}
	if r := c.shards[0].release(h); r.Err != nil || r.Hold.Status != HoldReleased {
		t.Fatalf("release: %v", r.Err)
	}
}

// The hook runs on its anchor's participant: its refusal is the transaction's failure before
// any other (here the payee is closed too), its Prepared and Finished run once each, and a
// participant that refused for the ledger's reasons never calls Finished.
func TestCrossShardHook(t *testing.T) {
	t.Cleanup(testHook.reset)
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 100)
	c.wallet(1, "B", "usd", 0)
	c.wallet(1, "Z", "usd", 0)
	c.shards[1].ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "Z", Status: WalletClosed})
	h := c.shards[0].holdOf("hold-a", hold("A", 60, 0))
	hook := func(data string) CrossExtras {
		return CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}, Hook: &CrossHook{Name: testHookName, Anchor: "A", Data: []byte(data)}}
	}
	d := &driver{c: c, rng: nil, afterStep: c.checkInvariants}

	testHook.reset()
	testHook.refuse = &fsm.Error{Code: "Taken", Message: "the family says no"}
	got := d.runWith("h-1", hook("one"), transfer("A", "Z", 10))
	if got.FailureReason != "Taken" || got.FailureMessage != "the family says no" || got.FailedOperationIndex != 0 {
		t.Fatalf("refused by the hook: %+v", got)
	}
	if want := []string{"check one"}; !slices.Equal(testHook.calls, want) {
		t.Fatalf("calls %q, want %q", testHook.calls, want)
	}

	testHook.reset()
	got = d.runWith("h-2", hook("two"), transfer("A", "B", 10))
	if got.Status != TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if want := []string{"check two", "prepared two 1", "finished two true"}; !slices.Equal(testHook.calls, want) {
		t.Fatalf("calls %q, want %q", testHook.calls, want)
	}

	// Duplicated and reordered messages: still one Prepared and one Finished.
	testHook.reset()
	h2 := c.shards[0].holdOf("hold-b", hold("A", 20, 0))
	dup := &driver{c: c, rng: rand.New(rand.NewPCG(3, 14)), afterStep: c.checkInvariants}
	extras := hook("three")
	extras.Captures[0].HoldID = h2
	got = dup.runWith("h-3", extras, transfer("A", "Z", 10))
	if got.FailureReason != CodeWalletClosed {
		t.Fatalf("%+v", got)
	}
	if want := []string{"check three", "prepared three 1", "finished three false"}; !slices.Equal(testHook.calls, want) {
		t.Fatalf("calls %q, want %q", testHook.calls, want)
	}
	if hd := c.hold(h2); hd.Status != HoldActive {
		t.Fatalf("hold %+v", hd)
	}

	// The anchor's participant refuses for its own reason (funds): no Prepared, no Finished.
	testHook.reset()
	got = d.runWith("h-4", CrossExtras{Hook: &CrossHook{Name: testHookName, Anchor: "A", Data: []byte("four")}}, transfer("A", "B", 1000))
	if got.FailureReason != CodeInsufficientFunds {
		t.Fatalf("%+v", got)
	}
	if want := []string{"check four"}; !slices.Equal(testHook.calls, want) {
		t.Fatalf("calls %q, want %q", testHook.calls, want)
	}
}

// What a begin refuses of its extras, and a capture's default reference.
func TestCrossShardExtrasValidated(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 100)
	c.wallet(0, "A2", "usd", 100)
	c.wallet(1, "B", "usd", 0)
	h := c.shards[0].holdOf("hold-a", hold("A", 60, 0))
	for name, tc := range map[string]struct {
		extras CrossExtras
		ops    []Operation
	}{
		"capture of an issue":         {CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, []Operation{issue("B", 1)}},
		"capture past the operations": {CrossExtras{Captures: []HoldCapture{{Index: 1, HoldID: h}}}, []Operation{transfer("A", "B", 1)}},
		"captured wallet named again": {CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, []Operation{transfer("A", "B", 1), transfer("B", "A", 1)}},
		"a protocol's hold":           {CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: "h0000000000000000001.x0"}}}, []Operation{transfer("A", "B", 1)}},
		"unknown hook":                {CrossExtras{Hook: &CrossHook{Name: "nobody", Anchor: "A"}}, []Operation{transfer("A", "B", 1)}},
		"hook on no wallet":           {CrossExtras{Hook: &CrossHook{Name: testHookName, Anchor: "Q"}}, []Operation{transfer("A", "B", 1)}},
		"hook data too long":          {CrossExtras{Hook: &CrossHook{Name: testHookName, Anchor: "A", Data: make([]byte, CrossHookDataMaxBytes+1)}}, []Operation{transfer("A", "B", 1)}},
	} {
		begin, coordinator := c.begin("v-"+name, tc.ops...)
		begin.CrossExtras = tc.extras
		if r := c.shards[coordinator].applyRaw(begin)[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
			t.Errorf("%s: %v", name, r.Err)
		}
	}
	// A hold of another wallet, or a capture above the hold: refused at the prepare.
	for name, op := range map[string]Operation{"other wallet": transfer("A2", "B", 1), "too much": transfer("A", "B", 61)} {
		x, coordinator, votes := c.prepared("p-"+name, CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, op)
		if got := c.finished(x, coordinator, votes); got.FailureReason != CodeInvalidArgument {
			t.Errorf("%s: %+v", name, got)
		}
	}
	// Without a reference a capture's transaction is recorded under its own ID.
	d := &driver{c: c, afterStep: c.checkInvariants}
	got := d.runWith("", CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h}}}, transfer("A", "B", 1))
	if got.Status != TransactionCompleted || got.ReferenceID != got.ID {
		t.Fatalf("%+v", got)
	}
}
