package ledger

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// Cross-shard transactions on several machines in one test: each *testLedger is a shard, and
// the test is the router and the driver, passing the protocol's messages between them.

// applyRaw applies typed commands as one log entry and returns their results unflattened.
func (tl *testLedger) applyRaw(cmds ...fsm.Command) []*fsm.Result {
	tl.t.Helper()
	raw := make([][]byte, len(cmds))
	for i, c := range cmds {
		raw[i] = fsm.EncodeCommand(c)
	}
	tl.index++
	tl.nowMs += 1000
	out := tl.ledger.ApplyBatch(tl.index, tl.nowMs, raw)
	results := make([]*fsm.Result, len(out))
	for i, r := range out {
		results[i] = r.(*fsm.Result)
	}
	return results
}

// xCluster is a set of shards of project p1 with assets usd and eur on each, and where each
// wallet lives.
type xCluster struct {
	t       *testing.T
	shards  []*testLedger
	shardOf map[string]int
}

// xClusterRules, when set, is the rules version newXCluster's shards run at, with the history
// chain started (0: a store from before rules versions).
var xClusterRules uint32

func newXCluster(t *testing.T, n int) *xCluster {
	c := &xCluster{t: t, shardOf: map[string]int{}}
	for range n {
		tl := newTestLedger(t)
		if xClusterRules != 0 {
			tl.applyTyped(&fsm.StartHistoryChain{})
			tl.applyTyped(&fsm.RaiseRules{Version: xClusterRules})
		}
		tl.ok(&Command{Op: OpCreateProject, ProjectID: "p1", Name: "shop"})
		tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100})
		tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p1", AssetID: "eur", Name: "Euro", Code: "EUR", Fractions: 100})
		c.shards = append(c.shards, tl)
	}
	return c
}

// wallet creates a system wallet of the asset on a shard, funded with an issue of balance.
func (c *xCluster) wallet(shard int, id, asset string, balance uint64) {
	tl := c.shards[shard]
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: id, AssetID: asset})
	c.shardOf[id] = shard
	if balance > 0 {
		tl.ok(tx("fund-"+id, issue(id, balance)))
	}
}

func (c *xCluster) walletOf(id string) *Wallet {
	return c.shards[c.shardOf[id]].wallet("p1", id)
}

func (c *xCluster) balance(id string) uint64 {
	c.t.Helper()
	w := c.walletOf(id)
	if w.Balance.Hi != 0 {
		c.t.Fatalf("wallet %s: balance %s", id, w.Balance)
	}
	return w.Balance.Lo
}

// begin is the router's command: the shards of every wallet the operations name (a wallet the
// test never created, a ghost, lives where shardOf says, by default shard 0).
func (c *xCluster) begin(ref string, ops ...Operation) (*CrossBegin, int) {
	b := &CrossBegin{ProjectID: "p1", ReferenceID: ref, Operations: ops}
	seen := map[string]bool{}
	for _, op := range ops {
		for _, id := range []string{op.From, op.To} {
			if id != "" && !seen[id] {
				seen[id] = true
				b.Shards = append(b.Shards, WalletShard{WalletID: id, Shard: c.shardOf[id]})
			}
		}
	}
	// The transaction ID carries the coordinator's slot: here, its shard.
	b.IDPrefix = fmt.Sprintf("x%04x", b.Shards[0].Shard)
	return b, b.Shards[0].Shard
}

func (c *xCluster) checkInvariants() {
	c.t.Helper()
	for i, tl := range c.shards {
		if err := tl.ledger.CheckInvariants(); err != nil {
			c.t.Fatalf("shard %d: %v", i, err)
		}
	}
}

func (c *xCluster) supply(asset string) Amount {
	c.t.Helper()
	ledgers := make([]*Ledger, len(c.shards))
	for i, tl := range c.shards {
		ledgers[i] = tl.ledger.Ledger
	}
	sums, err := SupplyAcross(ledgers...)
	if err != nil {
		c.t.Fatal(err)
	}
	return sums[AssetRef{"p1", asset}]
}

// driver runs the protocol's steps for one transaction, with the message faults the protocol
// allows: prepares and finishes in any order, each maybe delivered twice (in the same batch or
// later), decide and done twice, and a prepare arriving again after its participant finished.
type driver struct {
	c   *xCluster
	rng *rand.Rand // nil: no faults, one message each, in order
	// afterStep runs after every step (invariants on every shard).
	afterStep func()
	// finished, when set, collects every transaction driven to done, for very late duplicates.
	finished *[]doneTransaction
}

// doneTransaction is a transaction the driver took to done: what a very late duplicate of its
// prepares and finishes carries.
type doneTransaction struct {
	id           string
	beginAt      int64
	status       TransactionStatus
	participants []CrossParticipant
}

// syncClock moves a shard's clock up to the latest of the cluster's (never back): the shards'
// leaders' clocks agree within a batch's second, as the trimming's window assumes.
func (c *xCluster) syncClock(shard int) *testLedger {
	tl := c.shards[shard]
	for _, other := range c.shards {
		tl.nowMs = max(tl.nowMs, other.nowMs)
	}
	return tl
}

// advance moves every shard's clock forward by ms (the next batch of each runs then).
func (c *xCluster) advance(ms int64) {
	latest := int64(0)
	for _, tl := range c.shards {
		latest = max(latest, tl.nowMs)
	}
	for _, tl := range c.shards {
		tl.nowMs = latest + ms
	}
}

// participantKeys counts a shard's participant state: participations, in-flight marks and
// the trim index.
func (c *xCluster) participantKeys(shard int) int {
	c.t.Helper()
	n := 0
	if err := c.shards[shard].ledger.Ledger.Store().Scan([]byte{prefixCrossParticipant}, func(k, v []byte) error { n++; return nil }); err != nil {
		c.t.Fatal(err)
	}
	return n
}

// hasParticipation reports whether a shard still stores its participation in a transaction.
func (c *xCluster) hasParticipation(shard int, id string) bool {
	c.t.Helper()
	v, err := c.shards[shard].ledger.Ledger.Store().Get(participationKey("p1", id))
	if err != nil {
		c.t.Fatal(err)
	}
	return v != nil
}

func (d *driver) coin(p float64) bool { return d.rng != nil && d.rng.Float64() < p }

func (d *driver) order(n int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = i
	}
	if d.rng != nil {
		d.rng.Shuffle(n, func(i, j int) { o[i], o[j] = o[j], o[i] })
	}
	return o
}

func (d *driver) step() {
	if d.afterStep != nil {
		d.afterStep()
	}
}

// send applies a command on a shard, twice when the faults say so (in one batch or in two),
// and checks that the duplicate answers the same.
func (d *driver) send(shard int, cmd fsm.Command) *fsm.Result {
	t := d.c.t
	t.Helper()
	tl := d.c.syncClock(shard)
	var rs []*fsm.Result
	switch {
	case d.coin(0.25):
		rs = tl.applyRaw(cmd, cmd)
	case d.coin(0.3):
		rs = append(tl.applyRaw(cmd), tl.applyRaw(cmd)...)
	default:
		rs = tl.applyRaw(cmd)
	}
	if _, begin := cmd.(*CrossBegin); begin && len(rs) == 2 {
		// A begin again is a retry under the reference: it answers the stored record.
		x0, x1 := rs[0].Value.(*CrossTransaction), rs[1].Value.(*CrossTransaction)
		if rs[1].Err == nil || rs[1].Err.Code != CodeDuplicateReferenceID || !reflect.DeepEqual(x0, x1) {
			t.Fatalf("begin again: %v %+v", rs[1].Err, x1)
		}
	} else if len(rs) == 2 && !sameResult(rs[0], rs[1]) {
		t.Fatalf("%T applied twice answers %+v then %+v", cmd, rs[0], rs[1])
	}
	d.step()
	return rs[0]
}

// sameResult compares two answers of one idempotent step, times aside.
func sameResult(a, b *fsm.Result) bool {
	if !reflect.DeepEqual(a.Err, b.Err) {
		return false
	}
	switch av := a.Value.(type) {
	case *Participation:
		bv, ok := b.Value.(*Participation)
		return ok && av.Status == bv.Status && reflect.DeepEqual(av.Vote, bv.Vote) && reflect.DeepEqual(av.HoldIDs, bv.HoldIDs)
	default:
		return reflect.DeepEqual(a.Value, b.Value)
	}
}

// run drives a transaction from its begin to done and returns the coordinator's record.
func (d *driver) run(ref string, ops ...Operation) *Transaction {
	d.c.t.Helper()
	return d.runWith(ref, CrossExtras{}, ops...)
}

// runWith is run with captures and a hook.
func (d *driver) runWith(ref string, extras CrossExtras, ops ...Operation) *Transaction {
	c, t := d.c, d.c.t
	t.Helper()
	begin, coordinator := c.begin(ref, ops...)
	begin.CrossExtras = extras
	r := d.send(coordinator, begin)
	x, ok := r.Value.(*CrossTransaction)
	if r.Err != nil || !ok {
		t.Fatalf("begin: %v %+v", r.Err, r.Value)
	}
	if x.Transaction.Status != TransactionPending || len(x.Participants) == 0 {
		t.Fatalf("begin: %+v", x)
	}
	id := x.Transaction.ID
	votes := make([]ShardVote, 0, len(x.Participants))
	for _, i := range d.order(len(x.Participants)) {
		p := x.Participants[i]
		r := d.send(p.Shard, &CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs,
			BeginAt: x.Transaction.CreatedAt, CrossExtras: p.CrossExtras})
		pa, ok := r.Value.(*Participation)
		if r.Err != nil || !ok {
			t.Fatalf("prepare on shard %d: %v", p.Shard, r.Err)
		}
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: pa.Vote})
	}
	r = d.send(coordinator, &CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})
	if r.Err != nil {
		t.Fatalf("decide: %v", r.Err)
	}
	decided := r.Value.(*CrossTransaction).Transaction
	if decided.Status == TransactionPending {
		t.Fatalf("decide left %s pending", id)
	}
	for _, i := range d.order(len(x.Participants)) {
		p := x.Participants[i]
		r := d.send(p.Shard, &CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: decided.Status,
			BeginAt: x.Transaction.CreatedAt})
		if r.Err != nil {
			t.Fatalf("finish on shard %d: %v", p.Shard, r.Err)
		}
		if d.coin(0.2) {
			d.latePrepare(id, x.Transaction.CreatedAt, p)
		}
	}
	r = d.send(coordinator, &CrossDone{ProjectID: "p1", TransactionID: id})
	done, _ := r.Value.(*CrossTransaction)
	if r.Err != nil || done == nil || !done.Done() || !reflect.DeepEqual(done.Transaction, decided) {
		t.Fatalf("done: %v %+v", r.Err, r.Value)
	}
	if d.finished != nil {
		*d.finished = append(*d.finished, doneTransaction{id: id, beginAt: x.Transaction.CreatedAt, status: decided.Status, participants: x.Participants})
	}
	stored, err := c.shards[coordinator].ledger.GetTransaction("p1", id)
	if err != nil || !reflect.DeepEqual(stored, decided) {
		t.Fatalf("stored %+v %v, decided %+v", stored, err, decided)
	}
	return decided
}

// latePrepare delivers a prepare again after its participant finished: refused, no hold.
func (d *driver) latePrepare(id string, beginAt int64, p CrossParticipant) {
	t := d.c.t
	t.Helper()
	before := d.helds(p.Wallets)
	r := d.c.syncClock(p.Shard).applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs,
		BeginAt: beginAt, CrossExtras: p.CrossExtras})[0]
	if r.Err == nil || r.Err.Code != CodeCrossShardFinished {
		t.Fatalf("late prepare: %v", r.Err)
	}
	if after := d.helds(p.Wallets); !reflect.DeepEqual(before, after) {
		t.Fatalf("late prepare changed held: %v → %v", before, after)
	}
	d.step()
}

// veryLate delivers a duplicate of a done transaction's prepare or finish to a participant,
// possibly after its participation was trimmed: a prepare is refused and holds nothing, a
// finish applies nothing again (a completed one for a trimmed ID is refused, a failed one may
// record a tombstone again); the participant's wallets do not change.
func (d *driver) veryLate(dt doneTransaction, p CrossParticipant, outcomes map[string]int) {
	c, t := d.c, d.c.t
	t.Helper()
	tl := c.syncClock(p.Shard)
	tl.applyRaw(&fsm.Tick{}) // trims what is due by now
	state := "kept"
	if !c.hasParticipation(p.Shard, dt.id) {
		state = "trimmed"
	}
	wallets := func() []Wallet {
		var out []Wallet
		for _, id := range p.Wallets {
			if w := tl.ledger.Wallet("p1", id); w != nil {
				out = append(out, *w)
			}
		}
		return out
	}
	before := wallets()
	if d.coin(0.5) {
		r := c.syncClock(p.Shard).applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Legs: p.Legs,
			BeginAt: dt.beginAt, CrossExtras: p.CrossExtras})[0]
		if r.Err == nil || r.Err.Code != CodeCrossShardFinished {
			t.Fatalf("very late prepare of %s (%s): %v %+v", dt.id, state, r.Err, r.Value)
		}
		outcomes["late prepare, "+state]++
	} else {
		// With its begin time (op 27, the driver's) a finish is always answered finished; without
		// (op 22), a completed one for a trimmed ID is refused as misrouted.
		timed := d.coin(0.5)
		finish := &CrossFinish{ProjectID: "p1", TransactionID: dt.id, Wallets: p.Wallets, Status: dt.status}
		if timed {
			finish.BeginAt = dt.beginAt
		}
		r := c.syncClock(p.Shard).applyRaw(finish)[0]
		if r.Err != nil && (timed || !(dt.status == TransactionCompleted && r.Err.Code == CodeInvalidArgument)) {
			t.Fatalf("very late finish of %s (%s, timed %v): %v", dt.id, state, timed, r.Err)
		}
		if r.Err == nil {
			if pa := r.Value.(*Participation); (dt.status == TransactionCompleted) != (pa.Status == ParticipationCommitted) {
				t.Fatalf("very late %s finish of %s answers %s", dt.status, dt.id, pa.Status)
			}
		}
		outcomes["late finish, "+state]++
	}
	if after := wallets(); !reflect.DeepEqual(before, after) {
		t.Fatalf("a very late message of %s (%s) changed wallets: %+v → %+v", dt.id, state, before, after)
	}
	d.step()
}

func (d *driver) helds(wallets []string) []Amount {
	var out []Amount
	for _, id := range wallets {
		if w := d.c.shards[d.c.shardOf[id]].ledger.Wallet("p1", id); w != nil {
			out = append(out, w.Held)
		}
	}
	return out
}

func TestCrossShardTransfer(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 100)
	c.wallet(1, "B", "usd", 0)
	d := &driver{c: c, afterStep: c.checkInvariants}
	got := d.run("r1", transfer("A", "B", 30))
	if got.Status != TransactionCompleted || got.FailedOperationIndex != -1 {
		t.Fatalf("%+v", got)
	}
	if c.balance("A") != 70 || c.balance("B") != 30 {
		t.Fatalf("A=%d B=%d", c.balance("A"), c.balance("B"))
	}
	// Per-shard supply: the value moved from shard 0 to shard 1; the sum is what was issued.
	for shard, want := range []uint64{70, 30} {
		if as := c.shards[shard].ledger.Ledger.Asset("p1", "usd"); as.Supply != amt(want) {
			t.Fatalf("shard %d supply %s, want %d", shard, as.Supply, want)
		}
	}
	if s := c.supply("usd"); s != amt(100) {
		t.Fatalf("supply across shards %s", s)
	}
	// Each side's entry belongs to the transaction, with the global operation index.
	for _, id := range []string{"A", "B"} {
		es, _, err := c.shards[c.shardOf[id]].ledger.ListEntries("p1", id, TimeRange{ToMs: 1 << 62}, PageRequest{Page: 1, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		last := es[len(es)-1]
		if last.TransactionID != got.ID || last.OperationIndex != 0 || last.Amount != amt(30) {
			t.Fatalf("%s: %+v", id, last)
		}
	}
	// A retry of the request answers the stored transaction; other operations are refused.
	begin, coord := c.begin("r1", transfer("A", "B", 30))
	r := c.shards[coord].applyRaw(begin)[0]
	if r.Err == nil || r.Err.Code != CodeDuplicateReferenceID || r.Value.(*CrossTransaction).Transaction.ID != got.ID {
		t.Fatalf("retry: %v %+v", r.Err, r.Value)
	}
	begin, coord = c.begin("r1", transfer("A", "B", 31))
	r = c.shards[coord].applyRaw(begin)[0]
	if r.Err == nil || r.Err.Code != CodeReferenceIDMismatch || r.Value.(*CrossTransaction).Transaction.ID != got.ID {
		t.Fatalf("mismatch: %v %+v", r.Err, r.Value)
	}
	// A single-shard transaction's reference is checked the same way by a cross-shard begin.
	c.shards[0].ok(tx("single", issue("A", 1)))
	begin, coord = c.begin("single", issue("A", 1), transfer("A", "B", 1))
	if r := c.shards[coord].applyRaw(begin)[0]; r.Err == nil || r.Err.Code != CodeReferenceIDMismatch {
		t.Fatalf("single-shard reference: %v", r.Err)
	}
}

// A credit from another shard funds a later debit of the same transaction: the participant
// counts the transaction's own earlier credits, and holds only the drawdown.
func TestCrossShardOwnEarlierCredits(t *testing.T) {
	c := newXCluster(t, 3)
	c.wallet(0, "A", "usd", 10)
	c.wallet(1, "B", "usd", 2)
	c.wallet(2, "C", "usd", 0)
	d := &driver{c: c, afterStep: c.checkInvariants}

	// B receives 10 first, then pays 12: it never goes below zero.
	if got := d.run("ok", transfer("A", "B", 10), transfer("B", "C", 12)); got.Status != TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if c.balance("A") != 0 || c.balance("B") != 0 || c.balance("C") != 12 {
		t.Fatalf("A=%d B=%d C=%d", c.balance("A"), c.balance("B"), c.balance("C"))
	}

	// The other order: C pays B 12 first, then B pays A 13; B has 0+12 when it pays 13 → op 1.
	got := d.run("late-credit", transfer("C", "B", 12), transfer("B", "A", 13))
	if got.Status != TransactionFailed || got.FailedOperationIndex != 1 || got.FailureReason != CodeInsufficientFunds {
		t.Fatalf("%+v", got)
	}
	// Debit first: B pays 5 (it has 0) before C's 12 arrive → op 0.
	got = d.run("debit-first", transfer("B", "A", 5), transfer("C", "B", 12))
	if got.Status != TransactionFailed || got.FailedOperationIndex != 0 || got.FailureReason != CodeInsufficientFunds {
		t.Fatalf("%+v", got)
	}
	if c.balance("A") != 0 || c.balance("B") != 0 || c.balance("C") != 12 {
		t.Fatalf("failures moved money: A=%d B=%d C=%d", c.balance("A"), c.balance("B"), c.balance("C"))
	}

	// The hold is the drawdown, not the debits: B has 3, is credited 12, pays 5 and 10 → its
	// lowest point is 0, so it holds 3 of the 15 it pays.
	c.shards[1].ok(tx("top-up", issue("B", 3)))
	begin, coord := c.begin("drawdown", transfer("C", "B", 12), transfer("B", "A", 5), transfer("B", "A", 10))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	id := x.Transaction.ID
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})[0]
		if r.Err != nil || !r.Value.(*Participation).Vote.Prepared {
			t.Fatalf("prepare on %d: %v %+v", p.Shard, r.Err, r.Value)
		}
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	c.checkInvariants()
	for id, want := range map[string]uint64{"A": 0, "B": 3, "C": 12} {
		if w := c.walletOf(id); w.Held != amt(want) {
			t.Fatalf("%s holds %s, want %d", id, w.Held, want)
		}
	}
	dec := c.shards[coord].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})[0].Value.(*CrossTransaction).Transaction
	for _, p := range x.Participants {
		if r := c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: dec.Status})[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c.checkInvariants()
	if dec.Status != TransactionCompleted || c.balance("A") != 15 || c.balance("B") != 0 || c.balance("C") != 0 {
		t.Fatalf("%+v: A=%d B=%d C=%d", dec, c.balance("A"), c.balance("B"), c.balance("C"))
	}
	for id := range map[string]bool{"A": true, "B": true, "C": true} {
		if w := c.walletOf(id); !w.Held.IsZero() {
			t.Fatalf("%s still holds %s", id, w.Held)
		}
	}
}

// A failure at operation k leaves every wallet unchanged and releases the holds prepared.
func TestCrossShardFailureReleasesHolds(t *testing.T) {
	c := newXCluster(t, 3)
	c.wallet(0, "A", "usd", 50)
	c.wallet(1, "B", "usd", 5)
	c.wallet(2, "C", "usd", 0)
	begin, coord := c.begin("r", transfer("A", "B", 20), transfer("B", "C", 100), transfer("A", "C", 1))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	id := x.Transaction.ID
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})[0]
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	c.checkInvariants()
	// A prepared with a hold of 21; B refused at op 1 (5 + 20 < 100) and holds nothing.
	if w := c.walletOf("A"); w.Held != amt(21) || w.Balance != amt(50) {
		t.Fatalf("A after prepare: %+v", w)
	}
	if w := c.walletOf("B"); !w.Held.IsZero() {
		t.Fatalf("B after prepare: %+v", w)
	}
	// The prepare's hold is the protocol's: no client can release or capture it.
	if r := c.shards[0].applyRaw(&ReleaseHold{ProjectID: "p1", HoldID: crossHoldID(id, 0)})[0]; r.Err == nil || r.Err.Code != CodeCrossShardHold {
		t.Fatalf("release of a cross-shard hold: %v", r.Err)
	}
	dec := c.shards[coord].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})[0].Value.(*CrossTransaction).Transaction
	if dec.Status != TransactionFailed || dec.FailedOperationIndex != 1 || dec.FailureReason != CodeInsufficientFunds {
		t.Fatalf("decision %+v", dec)
	}
	for _, p := range x.Participants {
		if r := c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: dec.Status})[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c.checkInvariants()
	for id, want := range map[string]uint64{"A": 50, "B": 5, "C": 0} {
		if w := c.walletOf(id); w.Balance != amt(want) || !w.Held.IsZero() {
			t.Fatalf("%s: %+v", id, w)
		}
	}
	h, err := c.shards[0].ledger.GetHold("p1", crossHoldID(id, 0))
	if err != nil || h.Status != HoldReleased {
		t.Fatalf("hold %+v %v", h, err)
	}
}

// Two wallets of different assets on different shards: failed with AssetMismatch at the
// transfer, which wins over a later balance failure as in the single-shard path.
func TestCrossShardAssetMismatch(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 10)
	c.wallet(1, "E", "eur", 10)
	c.wallet(1, "B", "usd", 0)
	d := &driver{c: c, afterStep: c.checkInvariants}
	got := d.run("r", transfer("A", "B", 100), transfer("A", "E", 1))
	if got.Status != TransactionFailed || got.FailedOperationIndex != 1 || got.FailureReason != CodeAssetMismatch {
		t.Fatalf("%+v", got)
	}
	if c.balance("A") != 10 || c.balance("E") != 10 || c.balance("B") != 0 {
		t.Fatal("money moved")
	}
}

// Every step delivered twice answers the same and applies once.
func TestCrossShardIdempotentSteps(t *testing.T) {
	c := newXCluster(t, 3)
	c.wallet(0, "A", "usd", 100)
	c.wallet(1, "B", "usd", 0)
	c.wallet(2, "C", "usd", 0)
	begin, coord := c.begin("r", transfer("A", "B", 40), transfer("B", "C", 15), transfer("A", "C", 5))
	twice := func(shard int, cmd fsm.Command) *fsm.Result {
		t.Helper()
		a := c.shards[shard].applyRaw(cmd)[0]
		b := c.shards[shard].applyRaw(cmd)[0]
		if !sameResult(a, b) {
			t.Fatalf("%T: %+v then %+v", cmd, a, b)
		}
		c.checkInvariants()
		return a
	}
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	if r := c.shards[coord].applyRaw(begin)[0]; r.Err == nil || r.Err.Code != CodeDuplicateReferenceID ||
		!reflect.DeepEqual(r.Value.(*CrossTransaction).Participants, x.Participants) {
		t.Fatalf("begin again: %v", r.Err)
	}
	id := x.Transaction.ID
	var votes []ShardVote
	for _, p := range x.Participants {
		r := twice(p.Shard, &CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	if w := c.walletOf("A"); w.Held != amt(45) {
		t.Fatalf("A held %s after two prepares", w.Held)
	}
	dec := twice(coord, &CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes}).Value.(*CrossTransaction).Transaction
	if dec.Status != TransactionCompleted {
		t.Fatalf("%+v", dec)
	}
	// A decided transaction keeps its decision, whatever votes come later.
	if r := c.shards[coord].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id})[0]; r.Value.(*CrossTransaction).Transaction.Status != TransactionCompleted {
		t.Fatal("decision changed")
	}
	for _, p := range x.Participants {
		twice(p.Shard, &CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: dec.Status})
		// A finish that contradicts the applied one is refused.
		if r := c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: TransactionFailed})[0]; r.Err == nil {
			t.Fatal("failed finish after commit accepted")
		}
	}
	twice(coord, &CrossDone{ProjectID: "p1", TransactionID: id})
	if c.balance("A") != 55 || c.balance("B") != 25 || c.balance("C") != 20 {
		t.Fatalf("A=%d B=%d C=%d", c.balance("A"), c.balance("B"), c.balance("C"))
	}
	if s := c.supply("usd"); s != amt(100) {
		t.Fatalf("supply %s", s)
	}
}

// A participant that never prepared (unreachable) gets a tombstone with the failed decision;
// its prepare arriving afterwards is refused and holds nothing.
func TestCrossShardLatePrepareAfterTombstone(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 10)
	c.wallet(1, "B", "usd", 10)
	begin, coord := c.begin("r", transfer("A", "B", 1), transfer("B", "A", 10))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	id := x.Transaction.ID
	p0, p1 := x.Participants[0], x.Participants[1]
	r := c.shards[0].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p0.Wallets, Legs: p0.Legs})[0]
	dec := c.shards[coord].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id,
		Votes: []ShardVote{{Shard: 0, Vote: r.Value.(*Participation).Vote}}})[0].Value.(*CrossTransaction).Transaction
	if dec.Status != TransactionFailed || dec.FailureReason != CodeParticipantUnavailable {
		t.Fatalf("%+v", dec)
	}
	for _, p := range []CrossParticipant{p0, p1} {
		if r := c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: TransactionFailed})[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	late := c.shards[1].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p1.Wallets, Legs: p1.Legs})[0]
	if late.Err == nil || late.Err.Code != CodeCrossShardFinished || late.Value.(*Participation).Status != ParticipationTombstone {
		t.Fatalf("late prepare: %v %+v", late.Err, late.Value)
	}
	if w := c.walletOf("B"); !w.Held.IsZero() || w.Balance != amt(10) {
		t.Fatalf("B: %+v", w)
	}
	if h, err := c.shards[1].ledger.GetHold("p1", crossHoldID(id, 0)); err == nil {
		t.Fatalf("hold on B: %+v", h)
	}
	// A completed finish for a transaction the shard never prepared is refused, not a tombstone.
	if r := c.shards[1].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: "t0000000000000099", Wallets: p1.Wallets, Status: TransactionCompleted})[0]; r.Err == nil {
		t.Fatal("completed finish without a prepare accepted")
	}
	c.checkInvariants()
}

// Random multi-shard transactions, driven with duplicated and reordered messages, against the
// same transactions on one machine: the same outcome (status, failing operation, reason), the
// same balances, conservation across the shards, and the invariants of every shard after every
// step.
//
// Each seed runs on stores from before rules versions and at the newest rules (transactions and
// entries appended to the history store, a cross-shard transaction's status written again under
// its state key), where every shard's transaction list must also be what GetTransaction answers.
func TestCrossShardMatchesSingleShard(t *testing.T) {
	for _, rules := range []uint32{0, fsm.RulesVersion} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("rules=%d/%d", rules, seed), func(t *testing.T) {
				saved := xClusterRules
				xClusterRules = rules
				t.Cleanup(func() { xClusterRules = saved })
				crossShardProperty(t, seed)
			})
		}
	}
}

func crossShardProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 14))
	const shards = 3
	c := newXCluster(t, shards)
	model := newTestLedger(t)
	model.setup() // p1, usd, eur, W1, W2, E1, S1: other wallet IDs than the cluster's

	type spec struct {
		id, asset string
		shard     int
		funds     uint64
	}
	var wallets []spec
	for s := range shards {
		for i := range 3 {
			wallets = append(wallets, spec{fmt.Sprintf("w%d%d", s, i), "usd", s, uint64(rng.IntN(60))})
		}
	}
	wallets = append(wallets, spec{"e2", "eur", 2, 40})
	for _, w := range wallets {
		c.wallet(w.shard, w.id, w.asset, w.funds)
		model.ok(&Command{Op: OpCreateWallet, ProjectID: "p1", WalletID: w.id, AssetID: w.asset})
		if w.funds > 0 {
			model.ok(tx("fund-"+w.id, issue(w.id, w.funds)))
		}
	}
	// One suspended wallet, and a wallet no shard has.
	c.shards[1].ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "w11", Status: WalletSuspendedStatus})
	model.ok(&Command{Op: OpSetWalletStatus, ProjectID: "p1", WalletID: "w11", Status: WalletSuspendedStatus})
	c.shardOf["ghost"] = 1
	ids := []string{"ghost", "e2"}
	for _, w := range wallets {
		if w.asset == "usd" {
			ids = append(ids, w.id) // mostly real usd wallets
		}
	}
	pick := func() string {
		if rng.IntN(30) == 0 {
			return ids[rng.IntN(2)]
		}
		return ids[2+rng.IntN(len(ids)-2)]
	}

	var finished []doneTransaction
	d := &driver{c: c, rng: rng, afterStep: c.checkInvariants, finished: &finished}
	outcomes := map[string]int{}
	// Holds placed on both (one per wallet's shard in the cluster), and captured: on one shard
	// when the payee shares the hold's shard, else as a capture leg, against the model's
	// CaptureHold.
	type placed struct{ model, cluster, wallet string }
	var holds []placed
	compare := func(n int) {
		t.Helper()
		for _, w := range wallets {
			if m, x := model.wallet("p1", w.id), c.walletOf(w.id); m.Balance != x.Balance || m.Held != x.Held {
				t.Fatalf("step %d: %s single shard %s held %s, cross-shard %s held %s", n, w.id, m.Balance, m.Held, x.Balance, x.Held)
			}
		}
		for _, asset := range []string{"usd", "eur"} {
			m := model.ledger.Ledger.Asset("p1", asset).Supply
			if s := c.supply(asset); s != m {
				t.Fatalf("step %d: %s supply across shards %s, single shard %s", n, asset, s, m)
			}
		}
	}
	for n := range 120 {
		if len(finished) > 0 && rng.IntN(5) == 0 {
			// Time passes (up to 12 minutes: within the prepare window, past it, past the
			// retention), then very late duplicates of done transactions' messages arrive.
			c.advance(int64(rng.IntN(13)) * 60_000)
			for range 1 + rng.IntN(3) {
				dt := finished[len(finished)-1] // the latest, often still kept
				if rng.IntN(2) == 0 {
					dt = finished[rng.IntN(len(finished))]
				}
				d.veryLate(dt, dt.participants[rng.IntN(len(dt.participants))], outcomes)
			}
			compare(n)
		}
		if k := rng.IntN(3); k == 0 || (k == 1 && len(holds) > 0) {
			ref := fmt.Sprintf("h%d", n)
			if k == 0 { // place a hold on both
				w := ids[2+rng.IntN(len(ids)-2)]
				op := hold(w, uint64(1+rng.IntN(30)), 0)
				want := model.apply(tx(ref, op))
				got := c.shards[c.shardOf[w]].apply(tx(ref, op))
				if (want.Err == nil) != (got.Err == nil) {
					t.Fatalf("step %d: hold on %s: single shard %v, its shard %v", n, w, want.Err, got.Err)
				}
				if want.Err == nil {
					holds = append(holds, placed{HoldID(want.Transaction.ID, 0), HoldID(got.Transaction.ID, 0), w})
				}
				compare(n)
				continue
			}
			h := holds[rng.IntN(len(holds))]
			to := pick()
			amount := uint64(rng.IntN(35)) // 0: the whole hold
			want := model.applyTyped(&CaptureHold{ProjectID: "p1", HoldID: h.model, To: to, Amount: amt(amount), IDPrefix: "t", ReferenceID: ref})
			var gotCode ErrorCode
			if c.shardOf[to] == c.shardOf[h.wallet] {
				if r := c.shards[c.shardOf[to]].applyTyped(&CaptureHold{ProjectID: "p1", HoldID: h.cluster, To: to, Amount: amt(amount), IDPrefix: "t", ReferenceID: ref}); r.Err != nil {
					gotCode = r.Err.Code
				}
			} else {
				// The router's part: the hold read, its early refusals, the payee's checks.
				holdOf := func() *Hold {
					hd, err := c.shards[c.shardOf[h.wallet]].ledger.GetHold("p1", h.cluster) // hold IDs repeat across the test's shards
					if err != nil {
						t.Fatal(err)
					}
					return hd
				}
				hd := holdOf()
				payee := c.shards[c.shardOf[to]].ledger.Wallet("p1", to)
				switch {
				case hd.Status != HoldActive:
					gotCode = CodeHoldResolved
				case amount > hd.Amount.Lo:
					gotCode = CodeInvalidArgument
				case payee == nil:
					gotCode = CodeWalletNotFound
				case payee.AssetID != c.walletOf(h.wallet).AssetID:
					gotCode = CodeAssetMismatch
				default:
					if amount == 0 {
						amount = hd.Amount.Lo
					}
					got := d.runWith(ref, CrossExtras{Captures: []HoldCapture{{Index: 0, HoldID: h.cluster}}}, transfer(h.wallet, to, amount))
					gotCode = got.FailureReason
					outcomes["capture across:"+string(gotCode)]++
					if got.Status == TransactionCompleted {
						if hd := holdOf(); hd.Status != HoldCaptured || hd.CapturedAmount != amt(amount) || hd.CaptureTransactionID != got.ID {
							t.Fatalf("step %d: captured hold %+v", n, hd)
						}
					}
				}
			}
			var wantCode ErrorCode
			if want.Err != nil {
				wantCode = want.Err.Code
			}
			if gotCode != wantCode {
				t.Fatalf("step %d: capture of %s (%s) to %s: single shard %v, cluster %q", n, h.cluster, h.wallet, to, want.Err, gotCode)
			}
			outcomes["capture:"+string(gotCode)]++
			compare(n)
			continue
		}
		ops := make([]Operation, 1+rng.IntN(5))
		for i := range ops {
			amount := uint64(1 + rng.IntN(25))
			switch k := rng.IntN(10); {
			case k == 0:
				ops[i] = issue(pick(), amount)
			case k == 1:
				ops[i] = redeem(pick(), amount)
			default:
				from, to := pick(), pick()
				for to == from {
					to = pick()
				}
				ops[i] = transfer(from, to, amount)
			}
		}
		ref := fmt.Sprintf("x%d", n)
		want := model.apply(tx(ref, ops...))
		got := d.run(ref, ops...)
		switch {
		case want.Err != nil && want.Transaction == nil:
			// A structural rejection: nothing recorded on one shard; the cross-shard
			// transaction had already claimed its reference, so it records the failure.
			if got.Status != TransactionFailed || got.FailureReason != want.Err.Code {
				t.Fatalf("tx %d %v: single shard %v, cross-shard %+v", n, ops, want.Err, got)
			}
		default:
			w := want.Transaction
			if got.Status != w.Status || got.FailedOperationIndex != w.FailedOperationIndex || got.FailureReason != w.FailureReason {
				t.Fatalf("tx %d %v: single shard %v/%d/%s, cross-shard %v/%d/%s", n, ops, w.Status, w.FailedOperationIndex,
					w.FailureReason, got.Status, got.FailedOperationIndex, got.FailureReason)
			}
		}
		outcomes[string(got.FailureReason)]++
		compare(n)
	}
	// Past the retention every participation is trimmed: nothing is left of the protocol.
	c.advance(participationRetentionMs + 1000)
	for i := range c.shards {
		c.shards[i].applyRaw(&fsm.Tick{})
		if n := c.participantKeys(i); n != 0 {
			t.Fatalf("shard %d keeps %d participant keys past the retention", i, n)
		}
	}
	c.checkInvariants()
	compare(120)
	// Every shard lists its transactions in order, each as GetTransaction answers it (the newest
	// status of a cross-shard one).
	for i, tl := range c.shards {
		var last uint64
		listed := 0
		for page := 1; ; page++ {
			items, more, err := tl.ledger.ListTransactions("p1", TimeRange{ToMs: math.MaxInt64}, PageRequest{Page: page, PageSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range items {
				if x.Sequence <= last && listed > 0 {
					t.Fatalf("shard %d lists %s after sequence %d", i, x.ID, last)
				}
				last = x.Sequence
				listed++
				if got, err := tl.ledger.GetTransaction("p1", x.ID); err != nil || !reflect.DeepEqual(*got, x) {
					t.Fatalf("shard %d lists %+v, GetTransaction answers %+v %v", i, x, got, err)
				}
			}
			if !more {
				break
			}
		}
		if listed == 0 {
			t.Fatalf("shard %d lists no transaction", i)
		}

	}
	t.Logf("outcomes: %v", outcomes)
	// The generator reaches the outcomes it is meant to.
	for _, code := range []ErrorCode{"", CodeInsufficientFunds, CodeWalletSuspended, "capture:", "capture:" + CodeHoldResolved, "capture across:",
		"late prepare, kept", "late prepare, trimmed", "late finish, kept", "late finish, trimmed"} {
		if outcomes[string(code)] == 0 {
			t.Errorf("no %q outcome in %v", code, outcomes)
		}
	}
}

// A commit whose credit would pass 2^128−1 — the shard's supply raised by others since the
// prepare — changes nothing and keeps the holds; the driver's retry commits once there is room.
func TestCrossShardFinishOverflowWaits(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 10)
	c.wallet(1, "B", "usd", 0)
	c.wallet(1, "B2", "usd", 0)
	nearMax := Amount{Hi: ^uint64(0), Lo: ^uint64(0) - 5}
	c.shards[1].ok(tx("big", Operation{Type: OperationIssue, To: "B", Amount: nearMax}))
	begin, coord := c.begin("r", transfer("A", "B2", 3))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	id := x.Transaction.ID
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})[0]
		if !r.Value.(*Participation).Vote.Prepared {
			t.Fatalf("prepare on %d: %+v", p.Shard, r.Value)
		}
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	dec := c.shards[coord].applyRaw(&CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})[0].Value.(*CrossTransaction).Transaction
	if dec.Status != TransactionCompleted {
		t.Fatalf("%+v", dec)
	}
	// Meanwhile shard 1's supply grows to 2^128−2: the 3 coming in no longer fit.
	c.shards[1].ok(tx("more", issue("B", 4)))
	finish := func(p CrossParticipant) *fsm.Result {
		return c.shards[p.Shard].applyRaw(&CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Status: dec.Status})[0]
	}
	var onB CrossParticipant
	for _, p := range x.Participants {
		if p.Shard == 1 {
			onB = p
		} else if r := finish(p); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	r := finish(onB)
	if r.Err == nil || r.Err.Code != CodeBalanceOverflow || r.Value.(*Participation).Status != ParticipationPrepared {
		t.Fatalf("finish past the maximum: %v %+v", r.Err, r.Value)
	}
	c.checkInvariants()
	if c.balance("B2") != 0 {
		t.Fatal("a stuck finish moved money")
	}
	c.shards[1].ok(tx("room", redeem("B", 10)))
	if r := finish(onB); r.Err != nil || r.Value.(*Participation).Status != ParticipationCommitted {
		t.Fatalf("retry: %v", r.Err)
	}
	c.checkInvariants()
	if c.balance("B2") != 3 || c.balance("A") != 7 {
		t.Fatalf("A=%d B2=%d", c.balance("A"), c.balance("B2"))
	}
}

// A wallet of a prepared participation cannot be closed until its finish, even one that only
// receives (it holds nothing): a commit would credit a closed wallet.
func TestCrossShardWalletInFlightCannotClose(t *testing.T) {
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 10)
	c.wallet(1, "B", "usd", 0)
	begin, coord := c.begin("r", transfer("A", "B", 4), redeem("A", 100))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	id := x.Transaction.ID
	onB := x.Participants[1]
	closeB := &SetWalletStatus{ProjectID: "p1", WalletID: "B", Status: WalletClosed}
	prepare := &CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: onB.Wallets, Legs: onB.Legs}
	// Prepared in the same batch as the close, then in the store.
	rs := c.shards[1].applyRaw(prepare, closeB)
	if !rs[0].Value.(*Participation).Vote.Prepared || rs[1].Err == nil || rs[1].Err.Code != CodeWalletNotEmpty {
		t.Fatalf("close in the prepare's batch: %v", rs[1].Err)
	}
	if r := c.shards[1].applyRaw(closeB)[0]; r.Err == nil || r.Err.Code != CodeWalletNotEmpty {
		t.Fatalf("close while prepared: %v", r.Err)
	}
	c.checkInvariants()
	// Finished (failed: A's redeem fails) in the same batch as the close: it may close.
	finish := &CrossFinish{ProjectID: "p1", TransactionID: id, Wallets: onB.Wallets, Status: TransactionFailed}
	rs = c.shards[1].applyRaw(finish, closeB)
	if rs[0].Err != nil || rs[1].Err != nil || rs[1].Value.(*Wallet).Status != WalletClosed {
		t.Fatalf("close after the finish: %v %v", rs[0].Err, rs[1].Err)
	}
	c.checkInvariants()
}

// reopen closes a shard's machine and opens its store again, as a restart does: the protocol
// keeps nothing in memory between steps.
func (c *xCluster) reopen(shard int) {
	c.t.Helper()
	tl := c.shards[shard]
	if err := tl.ledger.Close(); err != nil {
		c.t.Fatal(err)
	}
	l, err := openTest(tl.dir, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	tl.ledger = l
}

// Every shard restarted between every two steps: the transaction completes as without.
func TestCrossShardSurvivesRestarts(t *testing.T) {
	c := newXCluster(t, 3)
	c.wallet(0, "A", "usd", 50)
	c.wallet(1, "B", "usd", 0)
	c.wallet(2, "C", "usd", 1)
	all := func() {
		for i := range c.shards {
			c.reopen(i)
		}
		c.checkInvariants()
	}
	d := &driver{c: c, afterStep: all}
	got := d.run("r", transfer("A", "B", 20), transfer("B", "C", 20), transfer("C", "A", 21))
	if got.Status != TransactionCompleted || c.balance("A") != 51 || c.balance("B") != 0 || c.balance("C") != 0 {
		t.Fatalf("%+v A=%d B=%d C=%d", got, c.balance("A"), c.balance("B"), c.balance("C"))
	}
	// And a prepare's hold is still refused to clients after a restart.
	begin, coord := c.begin("r2", transfer("A", "B", 5), transfer("B", "C", 6))
	x := c.shards[coord].applyRaw(begin)[0].Value.(*CrossTransaction)
	p := x.Participants[0]
	c.shards[0].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: x.Transaction.ID, Wallets: p.Wallets, Legs: p.Legs})
	all()
	if r := c.shards[0].applyRaw(&ReleaseHold{ProjectID: "p1", HoldID: crossHoldID(x.Transaction.ID, 0)})[0]; r.Err == nil || r.Err.Code != CodeCrossShardHold {
		t.Fatalf("release after restart: %v", r.Err)
	}
}

// At the newest rules a cross-shard transaction is appended when it begins, beside other
// transactions of its batch, and its decided status is written under its state key; every
// transaction of both batches reads back as it is, alone and listed.
func TestCrossShardStatusOverAppendedTransactions(t *testing.T) {
	saved := xClusterRules
	xClusterRules = fsm.RulesVersion
	t.Cleanup(func() { xClusterRules = saved })
	c := newXCluster(t, 2)
	c.wallet(0, "A", "usd", 10)
	c.wallet(0, "A2", "usd", 10)
	c.wallet(1, "B", "usd", 0)
	begin, coord := c.begin("cross", transfer("A", "B", 3))
	if coord != 0 {
		t.Fatalf("coordinator %d", coord)
	}
	rs := c.shards[0].applyRaw(tx("before", transfer("A2", "A", 1)).typed(), begin, tx("after", transfer("A2", "A", 2)).typed())
	x := rs[1].Value.(*CrossTransaction)
	id := x.Transaction.ID
	var votes []ShardVote
	for _, p := range x.Participants {
		r := c.shards[p.Shard].applyRaw(&CrossPrepare{ProjectID: "p1", TransactionID: id, Wallets: p.Wallets, Legs: p.Legs})[0]
		votes = append(votes, ShardVote{Shard: p.Shard, Vote: r.Value.(*Participation).Vote})
	}
	rs = c.shards[0].applyRaw(tx("beside the decision", transfer("A2", "A", 1)).typed(), &CrossDecide{ProjectID: "p1", TransactionID: id, Votes: votes})
	if st := rs[1].Value.(*CrossTransaction).Transaction.Status; st != TransactionCompleted {
		t.Fatalf("decided %s", st)
	}
	want := map[string]TransactionStatus{id: TransactionCompleted}
	listed, _, err := c.shards[0].ledger.ListTransactions("p1", TimeRange{ToMs: math.MaxInt64}, PageRequest{Page: 1, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, x := range listed {
		refs[x.ReferenceID] = true
		if st, ok := want[x.ID]; ok && x.Status != st {
			t.Fatalf("listed %s as %s", x.ID, x.Status)
		}
		got, err := c.shards[0].ledger.GetTransaction("p1", x.ID)
		if err != nil || !reflect.DeepEqual(*got, x) {
			t.Fatalf("%s: listed %+v, read %+v %v", x.ID, x, got, err)
		}
	}
	for _, ref := range []string{"cross", "before", "after", "beside the decision"} {
		if !refs[ref] {
			t.Fatalf("%s not listed: %+v", ref, listed)
		}
	}
	if n := 0; c.shards[0].ledger.store.Scan([]byte{prefixTransaction}, func(_, _ []byte) error { n++; return nil }) != nil || n != 1 {
		t.Fatalf("%d transactions under their state keys, want the decided one", n)
	}
}
