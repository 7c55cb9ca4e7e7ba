package ledger

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// tick applies an empty batch on every shard: trims what is due at its time.
func (c *xCluster) tick() {
	for i := range c.shards {
		c.syncClock(i).applyRaw(&fsm.Tick{})
	}
}

// A committed transaction's participations go once the retention passed; the coordinator's
// record and reference stay; very late duplicates then hold nothing and apply nothing.
func TestCrossTrimCommittedThenVeryLateDuplicates(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 50)
	c.wallet(1, "B", "usd", 0)
	var done []doneTransaction
	d := &driver{c: c, afterStep: c.checkInvariants, finished: &done}
	got := d.run("r", transfer("A", "B", 20))
	if got.Status != TransactionCompleted || c.balance("A") != 30 || c.balance("B") != 20 {
		t.Fatalf("%+v A=%d B=%d", got, c.balance("A"), c.balance("B"))
	}
	dt := done[0]
	// Just before the retention: kept.
	c.advance(participationRetentionMs - 5000)
	c.tick()
	for i := range c.shards {
		if !c.hasParticipation(i, dt.id) {
			t.Fatalf("shard %d trimmed before the retention", i)
		}
	}
	c.advance(10_000)
	c.tick()
	for i := range c.shards {
		if n := c.participantKeys(i); n != 0 {
			t.Fatalf("shard %d keeps %d participant keys", i, n)
		}
	}
	c.checkInvariants()
	// The API's record stays: the transaction, and its reference.
	coordinator := c.shardOf["A"]
	if stored, err := c.shards[coordinator].ledger.GetTransaction("p1", dt.id); err != nil || stored.Status != TransactionCompleted {
		t.Fatalf("transaction after trim: %+v %v", stored, err)
	}
	begin, _ := c.begin("r", transfer("A", "B", 20))
	if r := c.syncClock(coordinator).applyRaw(begin)[0]; r.Err == nil || r.Err.Code != CodeDuplicateReferenceID {
		t.Fatalf("begin again after trim: %v", r.Err)
	}
	for _, p := range dt.participants {
		tl := c.syncClock(p.Shard)
		r := tl.applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Legs: p.Legs, BeginAt: dt.beginAt})[0]
		if r.Err == nil || r.Err.Code != CodeCrossShardFinished {
			t.Fatalf("very late prepare on shard %d: %v", p.Shard, r.Err)
		}
		// The driver's finish re-sent (a done later than the retention): acknowledged as
		// committed, nothing applied or recorded.
		r = tl.applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Status: TransactionCompleted, BeginAt: dt.beginAt})[0]
		if r.Err != nil || r.Value.(*Participation).Status != ParticipationCommitted {
			t.Fatalf("re-sent finish on shard %d: %v %+v", p.Shard, r.Err, r.Value)
		}
		// Without a begin time (op 22) it is refused as misrouted, as before.
		r = tl.applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Status: TransactionCompleted})[0]
		if r.Err == nil || r.Err.Code != CodeInvalidArgument {
			t.Fatalf("very late completed finish on shard %d: %v", p.Shard, r.Err)
		}
		// A failed one with its begin time records no tombstone.
		r = tl.applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Status: TransactionFailed, BeginAt: dt.beginAt})[0]
		if r.Err != nil || r.Value.(*Participation).Status != ParticipationReleased {
			t.Fatalf("very late failed finish on shard %d: %v %+v", p.Shard, r.Err, r.Value)
		}
		if c.hasParticipation(p.Shard, dt.id) {
			t.Fatalf("shard %d recorded a very late message", p.Shard)
		}
	}
	if c.balance("A") != 30 || c.balance("B") != 20 || !c.walletOf("A").Held.IsZero() {
		t.Fatalf("A=%d held %s B=%d", c.balance("A"), c.walletOf("A").Held, c.balance("B"))
	}
	// A failed finish without a begin time (op 22) records a tombstone again, trimmed in turn.
	p := dt.participants[0]
	if r := c.syncClock(p.Shard).applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Status: TransactionFailed})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	c.checkInvariants()
	c.advance(participationRetentionMs + 1000)
	c.tick()
	if n := c.participantKeys(p.Shard); n != 0 {
		t.Fatalf("the new tombstone stays: %d keys", n)
	}
	c.checkInvariants()
}

// A prepare for an ID the shard has no record of is refused once its begin is older than the
// window, recording nothing; within the window (and from the older ops, without a begin time)
// it prepares as before.
func TestCrossPrepareWindow(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 50)
	c.wallet(1, "B", "usd", 0)
	begin, coordinator := c.begin("late", transfer("A", "B", 5))
	x := c.syncClock(coordinator).applyRaw(begin)[0].Value.(*CrossTransaction)
	p := x.Participants[0]
	c.advance(crossPrepareWindowMs + 1000)
	r := c.syncClock(p.Shard).applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets, Legs: p.Legs,
		BeginAt: x.Transaction.CreatedAt})[0]
	if r.Err == nil || r.Err.Code != CodeCrossShardFinished || r.Value.(*Participation).Vote.Prepared {
		t.Fatalf("prepare past the window: %v %+v", r.Err, r.Value)
	}
	if c.participantKeys(p.Shard) != 0 || !c.walletOf("A").Held.IsZero() {
		t.Fatalf("prepare past the window left state: %d keys, held %s", c.participantKeys(p.Shard), c.walletOf("A").Held)
	}
	// The driver then decides without the vote; the finish past the window records nothing.
	dec := c.syncClock(coordinator).applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: x.Transaction.ID})[0].Value.(*CrossTransaction)
	if dec.Transaction.Status != TransactionFailed {
		t.Fatalf("decide: %+v", dec.Transaction)
	}
	if r := c.syncClock(p.Shard).applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets,
		Status: TransactionFailed, BeginAt: x.Transaction.CreatedAt})[0]; r.Err != nil || c.participantKeys(p.Shard) != 0 {
		t.Fatalf("failed finish past the window: %v, %d keys", r.Err, c.participantKeys(p.Shard))
	}
	// Within the window a completed finish for an ID never prepared is still refused (misrouted).
	if r := c.syncClock(p.Shard).applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: "x00010000000000000077", Wallets: p.Wallets,
		Status: TransactionCompleted, BeginAt: c.shards[p.Shard].nowMs})[0]; r.Err == nil || r.Err.Code != CodeInvalidArgument {
		t.Fatalf("misrouted finish: %v", r.Err)
	}

	begin, coordinator = c.begin("inside", transfer("A", "B", 5))
	x = c.syncClock(coordinator).applyRaw(begin)[0].Value.(*CrossTransaction)
	p = x.Participants[0]
	c.advance(crossPrepareWindowMs - 10_000)
	r = c.syncClock(p.Shard).applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets, Legs: p.Legs,
		BeginAt: x.Transaction.CreatedAt})[0]
	if r.Err != nil || !r.Value.(*Participation).Vote.Prepared {
		t.Fatalf("prepare inside the window: %v", r.Err)
	}
	// Without a begin time (ops 20 and 25): no window.
	begin, coordinator = c.begin("untimed", transfer("A", "B", 5))
	x = c.syncClock(coordinator).applyRaw(begin)[0].Value.(*CrossTransaction)
	p = x.Participants[0]
	c.advance(crossPrepareWindowMs + 1000)
	r = c.syncClock(p.Shard).applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets, Legs: p.Legs})[0]
	if r.Err != nil || !r.Value.(*Participation).Vote.Prepared {
		t.Fatalf("untimed prepare: %v", r.Err)
	}
	// Prepared participations are never trimmed, however old.
	c.advance(participationRetentionMs + 1000)
	c.tick()
	if !c.hasParticipation(p.Shard, x.Transaction.ID) {
		t.Fatal("a prepared participation was trimmed")
	}
	c.checkInvariants()
}

// The retention outlasts the prepare window by twice the clock difference tolerated between
// the begin's and the finish's leaders; a minute at least.
func TestCrossTrimSizing(t *testing.T) {
	if participationRetentionMs-crossPrepareWindowMs < 2*crossClockSkewMaxMs || crossClockSkewMaxMs < 60_000 {
		t.Fatalf("retention %d, window %d, skew %d", participationRetentionMs, crossPrepareWindowMs, crossClockSkewMaxMs)
	}
}

// A batch trims at most participationTrimsPerBatch participations, oldest first; the rest go
// in the next batches, also after a restart (the earliest finish is read from the store).
func TestCrossTrimBoundedPerBatch(t *testing.T) {
	c := newXCluster(t, 1)
	c.wallet(0, "B", "usd", 0)
	const count, perBatch = participationTrimsPerBatch + 150, 50
	for i := 0; i < count; i += perBatch {
		cmds := make([]fsm.Command, perBatch)
		for j := range cmds {
			cmds[j] = &CrossFinish{ProjectID: "p1", TransactionID: fmt.Sprintf("x0001%016d", i+j), Wallets: []string{"B"}, Status: TransactionFailed}
		}
		for _, r := range c.shards[0].applyRaw(cmds...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	if n := c.participantKeys(0); n != 2*count {
		t.Fatalf("%d keys for %d tombstones", n, count)
	}
	c.checkInvariants()
	c.advance(participationRetentionMs + 60_000) // past every tombstone's retention
	c.tick()
	if n := c.participantKeys(0); n != 2*(count-participationTrimsPerBatch) {
		t.Fatalf("one batch left %d keys", n)
	}
	// The oldest went first.
	if c.hasParticipation(0, fmt.Sprintf("x0001%016d", 0)) || !c.hasParticipation(0, fmt.Sprintf("x0001%016d", count-1)) {
		t.Fatal("not trimmed oldest first")
	}
	c.checkInvariants()
	c.reopen(0)
	c.tick()
	if n := c.participantKeys(0); n != 0 {
		t.Fatalf("after a restart and a batch, %d keys", n)
	}
	c.checkInvariants()
}
