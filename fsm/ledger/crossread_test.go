package ledger

import "testing"

// TestCrossReads: the driver's and the router's reads of a coordinator. A begin's commit wakes
// CrossChanged; PendingCross lists the record until CrossDone, and GetCrossTransaction shows
// its participants until then.
func TestCrossReads(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "w00000", "usd", 100)
	c.wallet(1, "w00010", "usd", 0)
	coordinator := c.shards[0].ledger.Ledger
	if pending, err := coordinator.PendingCross(10); err != nil || len(pending) != 0 {
		t.Fatalf("before: %v %v", pending, err)
	}
	changed := coordinator.CrossChanged()
	begin, _ := c.begin("r1", transfer("w00000", "w00010", 40))
	r := c.shards[0].applyRaw(begin)[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("a committed begin did not close CrossChanged")
	}
	id := r.Value.(*CrossTransaction).Transaction.ID
	pending, err := coordinator.PendingCross(10)
	if err != nil || len(pending) != 1 || pending[0].Transaction.ID != id || len(pending[0].Participants) != 2 {
		t.Fatalf("pending: %+v %v", pending, err)
	}
	if pending, err := coordinator.PendingCross(0); err != nil || len(pending) != 0 {
		t.Fatalf("limit 0: %v %v", pending, err)
	}
	skipped := pending[0].Transaction
	if pending, err := coordinator.PendingCrossExcept(10, func(projectID string, sequence uint64) bool {
		return projectID == skipped.ProjectID && sequence == skipped.Sequence
	}); err != nil || len(pending) != 0 {
		t.Fatalf("skipping the one record: %v %v", pending, err)
	}
	x, err := coordinator.GetCrossTransaction("p1", id)
	if err != nil || x.Transaction.Status != TransactionPending || len(x.Participants) != 2 || x.Done() {
		t.Fatalf("get: %+v %v", x, err)
	}
	// Drive it to done as the driver would.
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})[0]
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	c.shards[0].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})
	if x, err := coordinator.GetCrossTransaction("p1", id); err != nil || x.Transaction.Status != TransactionCompleted || x.Done() {
		t.Fatalf("decided: %+v %v", x, err)
	}
	for _, p := range x.Participants {
		c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: TransactionCompleted})
	}
	ended, release := coordinator.CrossDoneOf("p1", id)
	defer release()
	again, releaseAgain := coordinator.CrossDoneOf("p1", id) // a second waiter of the same transaction
	other, releaseOther := coordinator.CrossDoneOf("p1", "t0000ffffffffffffffff")
	defer releaseOther()
	c.shards[0].applyRaw(&CrossDone{ProjectID: "p1", TransactionID: id})
	for _, ch := range []<-chan struct{}{ended, again} {
		select {
		case <-ch:
		default:
			t.Fatal("a committed done did not close its transaction's CrossDoneOf")
		}
	}
	releaseAgain()
	select {
	case <-other:
		t.Fatal("a done woke the waiter of another transaction")
	default:
	}
	if x, err := coordinator.GetCrossTransaction("p1", id); err != nil || !x.Done() {
		t.Fatalf("done: %+v %v", x, err)
	}
	if pending, err := coordinator.PendingCross(10); err != nil || len(pending) != 0 {
		t.Fatalf("after done: %v %v", pending, err)
	}
	if _, err := coordinator.GetCrossTransaction("p1", "t0000ffffffffffffffff"); err == nil {
		t.Fatal("a missing transaction was found")
	}
	if c.balance("w00000") != 60 || c.balance("w00010") != 40 {
		t.Fatalf("balances %d %d", c.balance("w00000"), c.balance("w00010"))
	}
	c.checkInvariants()
}
