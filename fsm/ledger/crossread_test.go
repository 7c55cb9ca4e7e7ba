package ledger

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

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
	refs, lost := coordinator.TakeBegunCross()
	if lost || len(refs) != 1 {
		t.Fatalf("begun: %+v (lost %v), want the one begin", refs, lost)
	}
	if x, err := coordinator.PendingCrossOf(refs[0]); err != nil || x == nil || x.Transaction.ID != id || len(x.Participants) != 2 {
		t.Fatalf("pending record of the begun ref: %+v %v", x, err)
	}
	if refs, lost := coordinator.TakeBegunCross(); lost || len(refs) != 0 {
		t.Fatalf("taken twice: %+v (lost %v)", refs, lost)
	}
	begun := refs[0]
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
	if x, err := coordinator.PendingCrossOf(begun); err != nil || x != nil {
		t.Fatalf("pending record of a done transaction: %+v %v", x, err)
	}
	if _, err := coordinator.GetCrossTransaction("p1", "t0000ffffffffffffffff"); err == nil {
		t.Fatal("a missing transaction was found")
	}
	if c.balance("w00000") != 60 || c.balance("w00010") != 40 {
		t.Fatalf("balances %d %d", c.balance("w00000"), c.balance("w00010"))
	}
	c.checkInvariants()
}

// Begins that no driver takes (a follower's replica) are kept up to crossBegunMax; past it
// the take says some were lost, so that the driver scans instead.
func TestBegunCrossKeptUpToABound(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "w00000", "usd", 1_000_000)
	c.wallet(1, "w00010", "usd", 0)
	coordinator := c.shards[0].ledger.Ledger
	begins := make([]fsm.Command, 0, 64)
	for i := range 64 {
		begin, _ := c.begin(fmt.Sprintf("r%d", i), transfer("w00000", "w00010", 1))
		begins = append(begins, begin)
	}
	for _, r := range c.shards[0].applyRaw(begins...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	refs, lost := coordinator.TakeBegunCross()
	if lost || len(refs) != 64 {
		t.Fatalf("%d begun refs (lost %v), want 64", len(refs), lost)
	}
	for i := 1; i < len(refs); i++ {
		if refs[i].Sequence <= refs[i-1].Sequence {
			t.Fatalf("begun refs out of order: %+v", refs)
		}
	}
	saved := crossBegunMax
	crossBegunMax = 10
	t.Cleanup(func() { crossBegunMax = saved })
	for i := range 3 {
		var more []fsm.Command
		for j := range 4 {
			begin, _ := c.begin(fmt.Sprintf("s%d-%d", i, j), transfer("w00000", "w00010", 1))
			more = append(more, begin)
		}
		c.shards[0].applyRaw(more...)
	}
	if refs, lost := coordinator.TakeBegunCross(); !lost || len(refs) != 8 {
		t.Fatalf("past the bound: %d refs, lost %v; want the first 8 and lost", len(refs), lost)
	}
	if refs, lost := coordinator.TakeBegunCross(); lost || len(refs) != 0 {
		t.Fatalf("after the take: %d refs, lost %v", len(refs), lost)
	}
}
