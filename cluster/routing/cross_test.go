package routing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
)

// downShards is localShards with shards that refuse proposals while down (no leader).
type downShards struct {
	*localShards
	mu   sync.Mutex
	down map[int]bool
}

func (d *downShards) setDown(shardID int, down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down[shardID] = down
}

func (d *downShards) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	d.mu.Lock()
	down := d.down[shardID]
	d.mu.Unlock()
	if down {
		return nil, cluster.ErrNoLeader
	}
	return d.localShards.Propose(ctx, shardID, command)
}

// crossSetup is project shop over four local shards with two funded customer wallets on two
// shards: a on shardA, b on shardB.
type crossSetup struct {
	shards         *downShards
	router         *Router
	a, b           string
	shardA, shardB int
}

func newCrossSetup(t *testing.T) *crossSetup {
	local := newLocalShards(t, 4)
	s := &crossSetup{shards: &downShards{localShards: local, down: map[int]bool{}}}
	s.router = New(s.shards)
	c := newClient(t, s.shards)
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	wallets := map[int]string{}
	for i := 0; len(wallets) < 2; i++ {
		id := fmt.Sprintf("cust-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 4))
		if _, ok := wallets[shardID]; ok {
			continue
		}
		c.do("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		w := c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
		c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund-" + id,
			"operations": []map[string]any{{"type": "issue", "to": w, "amount": 100}}}, 201)
		wallets[shardID] = w
		if s.a == "" {
			s.a, s.shardA = w, shardID
		} else {
			s.b, s.shardB = w, shardID
		}
	}
	return s
}

func (s *crossSetup) transfer(ref string, amount uint64) *ledger.Transact {
	slot, _ := keyspace.SlotOfID(s.a)
	return &ledger.Transact{ProjectID: "shop", IDPrefix: "t" + keyspace.SlotHex(slot), ReferenceID: ref,
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: s.a, To: s.b, Amount: fsm.AmountFromUint64(amount)}}}
}

func (s *crossSetup) wallet(t *testing.T, id string, shardID int) *ledger.Wallet {
	t.Helper()
	w, err := s.shards.ledgers[shardID].GetWallet("shop", id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A request whose deadline passes before the transaction is done answers OutcomeUnknown; the
// retry under the same reference waits for the outcome and answers the stored transaction,
// as a single-shard retry does; other operations under it are a mismatch.
func TestCrossShardOutcomeUnknownThenRetry(t *testing.T) {
	s := newCrossSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err := s.router.Propose(ctx, fsm.Envelope{Command: s.transfer("r1", 30)})
	cancel()
	if !errors.Is(err, backend.ErrOutcomeUnknown) {
		t.Fatalf("no driver, deadline passed: %v", err)
	}
	pending, err := s.shards.ledgers[s.shardA].PendingCross(10)
	if err != nil || len(pending) != 1 || pending[0].Transaction.Status != ledger.TransactionPending {
		t.Fatalf("the begun record: %+v %v", pending, err)
	}

	driver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	driver.Run(4)
	t.Cleanup(driver.Close)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.router.Propose(ctx, fsm.Envelope{Command: s.transfer("r1", 30)})
	if err != nil || r.Err == nil || r.Err.Code != ledger.CodeDuplicateReferenceID {
		t.Fatalf("retry: %+v %v", r, err)
	}
	if tx := r.Value.(*ledger.Transaction); tx.Status != ledger.TransactionCompleted || tx.ID != pending[0].Transaction.ID {
		t.Fatalf("retry answered %+v", tx)
	}
	if a, b := s.wallet(t, s.a, s.shardA), s.wallet(t, s.b, s.shardB); a.Balance != fsm.AmountFromUint64(70) ||
		b.Balance != fsm.AmountFromUint64(130) || !a.Held.IsZero() {
		t.Fatalf("balances %s (held %s) and %s", a.Balance, a.Held, b.Balance)
	}
	r, err = s.router.Propose(ctx, fsm.Envelope{Command: s.transfer("r1", 31)})
	if err != nil || r.Err == nil || r.Err.Code != ledger.CodeReferenceIDMismatch {
		t.Fatalf("mismatch: %+v %v", r, err)
	}
}

// A participant that cannot be reached past the deadline: the transaction is decided failed
// (ParticipantUnavailable, index −1), the other participant's hold is released, and once the
// lost one is back it records a tombstone; nothing moved.
func TestCrossShardParticipantUnavailable(t *testing.T) {
	s := newCrossSetup(t)
	driver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	driver.Deadline = 100 * time.Millisecond
	driver.Run(4)
	t.Cleanup(driver.Close)
	s.shards.setDown(s.shardB, true)
	type answer struct {
		r   *fsm.Result
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := s.router.Propose(ctx, fsm.Envelope{Command: s.transfer("r2", 30)})
		answers <- answer{r, err}
	}()
	testutil.EventuallyWithin(t, 5*time.Second, "the transaction decided", func() bool {
		pending, err := s.shards.ledgers[s.shardA].PendingCross(10)
		return err == nil && len(pending) == 1 && pending[0].Transaction.Status == ledger.TransactionFailed
	})
	if w := s.wallet(t, s.b, s.shardB); w.Balance != fsm.AmountFromUint64(100) {
		t.Fatalf("b moved while down: %s", w.Balance)
	}
	s.shards.setDown(s.shardB, false)
	got := <-answers
	if got.err != nil || got.r.Err == nil || got.r.Err.Code != ledger.CodeParticipantUnavailable {
		t.Fatalf("answer: %+v %v", got.r, got.err)
	}
	if tx := got.r.Value.(*ledger.Transaction); tx.Status != ledger.TransactionFailed || tx.FailedOperationIndex != -1 {
		t.Fatalf("answer: %+v", tx)
	}
	a, b := s.wallet(t, s.a, s.shardA), s.wallet(t, s.b, s.shardB)
	if a.Balance != fsm.AmountFromUint64(100) || !a.Held.IsZero() || b.Balance != fsm.AmountFromUint64(100) {
		t.Fatalf("after: a %s held %s, b %s", a.Balance, a.Held, b.Balance)
	}
	sums, err := ledger.SupplyAcross(s.shards.ledgers...)
	if err != nil || sums[ledger.AssetRef{ProjectID: "shop", AssetID: "usd"}] != fsm.AmountFromUint64(200) {
		t.Fatalf("supplies %v %v", sums, err)
	}
}

// An Idempotency-Key on a cross-shard transaction: the retry is answered from the key's stored
// answer (the begin's), waited on to the final state, and marked replayed.
func TestCrossShardIdempotencyKey(t *testing.T) {
	s := newCrossSetup(t)
	driver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	driver.Run(4)
	t.Cleanup(driver.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env := fsm.Envelope{Command: s.transfer("r3", 5), Idempotency: &fsm.Idempotency{Scope: "shop", Key: "k1", RequestHash: [32]byte{1}}}
	first, err := s.router.Propose(ctx, env)
	if err != nil || first.Err != nil || first.Replayed || first.Value.(*ledger.Transaction).Status != ledger.TransactionCompleted {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := s.router.Propose(ctx, env)
	if err != nil || again.Err != nil || !again.Replayed || again.Value.(*ledger.Transaction).ID != first.Value.(*ledger.Transaction).ID ||
		again.Value.(*ledger.Transaction).Status != ledger.TransactionCompleted {
		t.Fatalf("replay: %+v %v", again, err)
	}
	if b := s.wallet(t, s.b, s.shardB); b.Balance != fsm.AmountFromUint64(105) {
		t.Fatalf("b %s", b.Balance)
	}
}

// decide reports every participant whose vote is missing, each named once by its shard: one
// refusal logged must not hide another (it kept only the last, prefixed twice).
func TestCrossDecideNamesEveryMissingVote(t *testing.T) {
	shards := &downShards{localShards: newLocalShards(t, 4), down: map[int]bool{1: true, 2: true, 3: true}}
	driver := NewCrossDriver(shards, func(int) bool { return true }, nil)
	t.Cleanup(driver.Close)
	c := crossRun{d: driver, coordinator: 0, projectID: "shop", id: "t0000000000000000000007",
		votes: map[int]ledger.CrossVote{}, finished: map[int]bool{}}
	x := &ledger.CrossTransaction{Transaction: &ledger.Transaction{ID: c.id, ProjectID: "shop", CreatedAt: time.Now().UnixMilli()},
		Participants: []ledger.CrossParticipant{{Shard: 1}, {Shard: 2}, {Shard: 3}}}
	decided, err := c.decide(x)
	if decided != nil || !errors.Is(err, cluster.ErrNoLeader) {
		t.Fatalf("decide with every participant down: %v, %v", decided, err)
	}
	for _, shard := range []string{"shard 1: ", "shard 2: ", "shard 3: "} {
		if n := strings.Count(err.Error(), shard); n != 1 {
			t.Errorf("%q named %d times in %q", shard, n, err)
		}
	}
}

// A driver that read its record before another driver finished the transaction (two leaders for
// a moment) has its prepares refused as finished: said at info level, not as a refusal to
// worry about, unless a refusal of another kind comes with them.
func TestCrossStalePrepareIsNotAWarning(t *testing.T) {
	s := newCrossSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err := s.router.Propose(ctx, fsm.Envelope{Command: s.transfer("r4", 30)})
	cancel()
	if !errors.Is(err, backend.ErrOutcomeUnknown) {
		t.Fatalf("no driver, deadline passed: %v", err)
	}
	pending, err := s.shards.ledgers[s.shardA].PendingCross(10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("the begun record: %+v %v", pending, err)
	}
	stale := pending[0]

	driver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	driver.Run(4)
	t.Cleanup(driver.Close)
	testutil.EventuallyWithin(t, 5*time.Second, "the transaction done", func() bool {
		x, err := s.shards.ledgers[s.shardA].GetCrossTransaction("shop", stale.Transaction.ID)
		return err == nil && x.Done()
	})

	// The stale driver is within the deadline (the test shards' clock starts in 2023), so a
	// missing vote is an error rather than a decision without it.
	staleDriver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	staleDriver.Deadline = 100 * 365 * 24 * time.Hour
	t.Cleanup(staleDriver.Close)
	c := crossRun{d: staleDriver, coordinator: s.shardA, projectID: "shop", id: stale.Transaction.ID,
		votes: map[int]ledger.CrossVote{}, finished: map[int]bool{}}
	done, err := c.step(&stale)
	if done || err == nil || !strings.Contains(err.Error(), string(ledger.CodeCrossShardFinished)) {
		t.Fatalf("stale step: %v, %v", done, err)
	}
	if finished, other := refusals(err); !finished || other {
		t.Errorf("stale prepares: finished %v, other refusals %v: %v", finished, other, err)
	}
	// A leader change beside them is no refusal (seen in a fault run: a warning each time);
	// a refusal of another kind is.
	if finished, other := refusals(errors.Join(err, fmt.Errorf("shard 3: %w", cluster.ErrNoLeader))); !finished || other {
		t.Errorf("a leader change counted as a refusal: %v %v", finished, other)
	}
	if _, other := refusals(errors.Join(err, fmt.Errorf("shard 3: %w", fsm.Rejectf(ledger.CodeBalanceOverflow, "too much")))); !other {
		t.Error("an overflow hidden behind the finished refusals")
	}
	if finished, other := refusals(cluster.ErrNoLeader); finished || other {
		t.Error("a leader change alone counted as a refusal")
	}
	if a, b := s.wallet(t, s.a, s.shardA), s.wallet(t, s.b, s.shardB); a.Balance != fsm.AmountFromUint64(70) ||
		b.Balance != fsm.AmountFromUint64(130) || !a.Held.IsZero() {
		t.Fatalf("balances %s (held %s) and %s", a.Balance, a.Held, b.Balance)
	}
}

// runBeforeProposal runs run once, the first time a proposal (to shardID, or to any shard when
// it is −1) names match: another request commits between a request's reads and its proposal.
type runBeforeProposal struct {
	Shards
	shardID int
	match   []byte
	fired   atomic.Bool
	run     func()
}

func (c *runBeforeProposal) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	if (c.shardID < 0 || shardID == c.shardID) && len(c.match) > 0 && bytes.Contains(command, c.match) {
		if c.fired.CompareAndSwap(false, true) {
			c.run() // its own proposals pass
		}
	}
	return c.Shards.Propose(ctx, shardID, command)
}

// A close that read its token before a claim across shards committed went to the token's
// shard, which cannot move the payee's money and answered 422 CrossShardTransaction (a
// helper's probe: claims and closes racing). The claim is final: the close runs again, across.
func TestGigPayCloseAfterAClaimAcrossItDidNotSee(t *testing.T) {
	local := newLocalShards(t, 4)
	clock := func() int64 {
		local.mu.Lock()
		defer local.mu.Unlock()
		return local.nowMs
	}
	hooked := &runBeforeProposal{Shards: local, shardID: 3}
	c := &client{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{GigPay: &httpapi.GigPayConfig{ProjectID: "gigpay", Clock: clock}},
		New(hooked), slog.New(slog.DiscardHandler), nil)}
	driver := NewCrossDriver(local, func(int) bool { return true }, nil)
	driver.Run(local.ShardCount())
	t.Cleanup(driver.Close)

	account := func(user string) string {
		return c.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": user, "assetType": "usd"}, 201)["id"].(string)
	}
	payer, payee := account(usersOnShard("gigpay", "p", 3, 1)[0]), account(usersOnShard("gigpay", "q", 1, 1)[0])
	deposit := c.do("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": payer, "assetType": "usd",
		"amount": "10.00", "externalStorage": "bank"}, 201)["paymentId"].(string)
	c.do("POST", "/api/v1/payments/"+deposit+"/status", map[string]any{"status": "completed"}, 200)
	created := c.do("POST", "/api/v1/payment-tokens", map[string]any{"sourceAccountId": payer, "assetType": "usd", "amount": "0.25",
		"expiresAtUtc": time.UnixMilli(clock() + 3_600_000).UTC().Format(time.RFC3339)}, 201)
	id := created["id"].(string)
	if shard, _ := keyspace.SlotOfID(id); int(keyspace.ShardOfSlot(shard, 4)) != 3 {
		t.Fatalf("token %s is not on the payer's shard 3", id)
	}

	hooked.match = []byte(id)
	hooked.run = func() {
		claimed := c.do("POST", "/api/v1/payment-tokens/"+created["token"].(string)+"/claim", map[string]any{"destinationAccountId": payee}, 200)
		if claimed["status"] != "Succeeded" {
			t.Errorf("claim: %v", claimed)
		}
	}
	closed := c.do("POST", "/api/v1/payment-tokens/"+id+"/close", map[string]any{"reason": "payee gone"}, 200)
	if closed["status"] != "Closed" {
		t.Fatalf("close: %v", closed)
	}
	balance := func(account string) string {
		return fmt.Sprint(c.do("GET", "/api/v1/accounts/"+account, nil, 200)["balance"])
	}
	if got, want := balance(payer), "10"; got != want {
		t.Errorf("payer %s after the close, want %s", got, want)
	}
	if got, want := balance(payee), "0"; got != want {
		t.Errorf("payee %s after the close, want %s", got, want)
	}
}

// A capture to a wallet of another shard that loses to a release after its reads has begun
// its transaction across shards: that transaction is recorded failed (HoldResolved), and the
// 409 carries it besides the hold, since it is listed and sent as an event (a helper's probe
// found such failed transactions that no answer had named). Nothing moved.
func TestCrossShardCaptureLostToARelease(t *testing.T) {
	local := newLocalShards(t, 4)
	hooked := &runBeforeProposal{Shards: local, shardID: -1}
	c := newClient(t, hooked)
	driver := NewCrossDriver(local, func(int) bool { return true }, nil)
	driver.Run(local.ShardCount())
	t.Cleanup(driver.Close)
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	wallet := func(customerID string) string {
		c.do("POST", "/projects/shop/customers", map[string]any{"id": customerID}, 200)
		return c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": customerID, "assetId": "usd"}, 201)["id"].(string)
	}
	a, b := wallet(usersOnShard("shop", "c", 1, 1)[0]), wallet(usersOnShard("shop", "c", 2, 1)[0])
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund",
		"operations": []map[string]any{{"type": "issue", "to": a, "amount": 100}}}, 201)
	tx := c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "hold",
		"operations": []map[string]any{{"type": "hold", "from": a, "amount": 30}}}, 201)
	hold := tx["operations"].([]any)[0].(map[string]any)["holdId"].(string)

	hooked.match = []byte(hold)
	hooked.run = func() { c.do("POST", "/projects/shop/holds/"+hold+"/release", nil, 200) }
	lost := c.do("POST", "/projects/shop/holds/"+hold+"/capture", map[string]any{"to": b, "referenceId": "cap"}, 409)
	failed, _ := lost["transaction"].(map[string]any)
	if code, _ := lost["error"].(map[string]any)["code"].(string); code != "HoldResolved" || lost["hold"].(map[string]any)["status"] != "released" ||
		failed == nil || failed["status"] != "failed" || failed["failureReason"] != "HoldResolved" || failed["referenceId"] != "cap" {
		t.Fatalf("lost capture: %v", lost)
	}
	listed := c.do("GET", "/projects/shop/transactions/"+failed["id"].(string), nil, 200)
	if listed["status"] != "failed" {
		t.Fatalf("the failed transaction: %v", listed)
	}
	for id, want := range map[string]float64{a: 100, b: 0} {
		if w := c.do("GET", "/projects/shop/wallets/"+id, nil, 200); w["balance"] != want || w["held"] != float64(0) {
			t.Errorf("wallet %s: %v, want balance %v", id, w, want)
		}
	}
}

// leaderShards is downShards whose leader queries are counted, and refused while refuse is set
// (a leader whose release has no such query, or a leader change).
type leaderShards struct {
	*downShards
	asked, refused atomic.Int64
	refuse         atomic.Bool
}

func (l *leaderShards) QueryLeader(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	l.asked.Add(1)
	if l.refuse.Load() {
		l.refused.Add(1)
		return nil, fmt.Errorf("query the leader: %w", cluster.ErrNoLeader)
	}
	return l.downShards.QueryLeader(ctx, shardID, query)
}

// The router waits for a cross-shard transaction's done on the coordinator's leader: the
// leader's answer to awaitCrossTransaction comes once the transaction is done there (or when
// the query's context ends, with the record as it is); a leader that cannot be asked leaves
// the router reading the record at intervals, with the same answer.
func TestCrossWaitAsksTheLeader(t *testing.T) {
	s := newCrossSetup(t)
	shards := &leaderShards{downShards: s.shards}
	router := New(shards)
	await := func(ctx context.Context, id string) *ledger.CrossTransaction {
		t.Helper()
		query, err := encodeQuery(shardQuery{Kind: queryAwaitCrossTransaction, ProjectID: "shop", ID: id})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := router.AnswerQuery(ctx, s.shardA, query)
		if err != nil {
			t.Fatal(err)
		}
		a, err := decodeAnswer(queryAwaitCrossTransaction, raw)
		if err != nil || a.Err != nil || a.Cross == nil {
			t.Fatalf("await answered %+v, %v", a, err)
		}
		return a.Cross
	}

	// No driver: the begin stays pending; the router's wait, on the leader, ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := router.Propose(ctx, fsm.Envelope{Command: s.transfer("r1", 30)})
	cancel()
	if !errors.Is(err, backend.ErrOutcomeUnknown) || shards.asked.Load() == 0 {
		t.Fatalf("no driver: %v after %d leader queries", err, shards.asked.Load())
	}
	pending, err := s.shards.ledgers[s.shardA].PendingCross(10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("the begun record: %+v %v", pending, err)
	}
	id := pending[0].Transaction.ID
	// The leader's answer waits: not before the query's context ends while nothing drives it.
	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	x := await(ctx, id)
	cancel()
	if x.Done() || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("answered %v after %v, before the context ended", x.Transaction.Status, time.Since(start))
	}

	// The leader's answer comes with the done: asked before the driver runs, it answers done.
	answered := make(chan *ledger.CrossTransaction, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		answered <- await(ctx, id)
	}()
	driver := NewCrossDriver(s.shards, func(int) bool { return true }, nil)
	driver.Run(4)
	t.Cleanup(driver.Close)
	if x := <-answered; !x.Done() || x.Transaction.Status != ledger.TransactionCompleted {
		t.Fatalf("the leader answered %+v", x.Transaction)
	}

	// As many waits held by leaders as the router allows: this one reads at intervals.
	router.crossAwaiting.Store(crossAwaitingMax)
	asked := shards.asked.Load()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := router.Propose(ctx, fsm.Envelope{Command: s.transfer("r3", 10)})
	if err != nil || r.Err != nil || r.Value.(*ledger.Transaction).Status != ledger.TransactionCompleted || shards.asked.Load() != asked {
		t.Fatalf("waits at the bound: %+v %v after %d leader queries", r, err, shards.asked.Load()-asked)
	}
	router.crossAwaiting.Store(0)

	// A leader that cannot be asked: the reads at intervals answer the same.
	shards.refuse.Store(true)
	r, err = router.Propose(ctx, fsm.Envelope{Command: s.transfer("r2", 20)})
	if err != nil || r.Err != nil || r.Value.(*ledger.Transaction).Status != ledger.TransactionCompleted || shards.refused.Load() == 0 {
		t.Fatalf("leader refusing: %+v %v after %d refusals", r, err, shards.refused.Load())
	}
	if a, b := s.wallet(t, s.a, s.shardA), s.wallet(t, s.b, s.shardB); a.Balance != fsm.AmountFromUint64(40) ||
		b.Balance != fsm.AmountFromUint64(160) || !a.Held.IsZero() {
		t.Fatalf("balances %s (held %s) and %s", a.Balance, a.Held, b.Balance)
	}
}
