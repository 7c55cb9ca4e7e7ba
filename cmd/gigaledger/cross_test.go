package main

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Cross-shard Cloud Wallet transactions on 3 nodes and 4 shards (issue 14): the router's
// begin and wait, the coordinator leader's driver, the participants' prepares and finishes,
// over real Raft and TCP.

const crossShards = 4

// crossFixture is a project "shop" with customers on every shard, each with one funded wallet.
type crossFixture struct {
	tc      *testCluster
	byShard map[int][]string // wallets of each shard
	issued  uint64
}

func newCrossFixture(t *testing.T, perShard int, fund uint64) *crossFixture {
	tc := newShardedTestCluster(t, 3, crossShards)
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led on "+tc.configs[i].NodeID, func() bool { return tc.node(i).ready() == nil })
	}
	f := &crossFixture{tc: tc, byShard: map[int][]string{}}
	tc.must("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	tc.must("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	for k := 0; ; k++ {
		full := true
		for s := range crossShards {
			full = full && len(f.byShard[s]) >= perShard
		}
		if full {
			break
		}
		id := fmt.Sprintf("c%d", k)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), crossShards))
		if len(f.byShard[shardID]) >= perShard {
			continue
		}
		tc.must("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		w := tc.must("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
		tc.must("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund-" + id,
			"operations": []map[string]any{{"type": "issue", "to": w, "amount": fund}}}, 201)
		f.issued += fund
		f.byShard[shardID] = append(f.byShard[shardID], w)
	}
	return f
}

// kill stops node i the way a crash would look to the others: its connections drop at once
// (clients see transport errors, not answers), its driver stops between two steps, then its
// replicas close and the others elect.
func (tc *testCluster) kill(i int) {
	tc.mu.Lock()
	n := tc.nodes[i]
	tc.nodes[i] = nil
	tc.mu.Unlock()
	n.admin.Close()
	n.public.Close()
	n.cross.Close()
	n.Close()
}

func (f *crossFixture) balance(id string) uint64 {
	return uint64(f.tc.must("GET", "/projects/shop/wallets/"+id, nil, 200)["balance"].(float64))
}

// check: every replica's invariants per shard, the supplies summed over the shards equal to
// what was issued, and equal digests.
func (f *crossFixture) check(t *testing.T) {
	t.Helper()
	f.tc.waitConverged(30 * time.Second)
	for i := range f.tc.nodes {
		n := f.tc.node(i)
		if n == nil {
			continue
		}
		var ledgers []*ledger.Ledger
		for k := range crossShards {
			l := n.ledger(k)
			if err := l.CheckInvariants(); err != nil {
				t.Fatalf("%s shard %d: %v", f.tc.configs[i].NodeID, k, err)
			}
			if pending, err := l.PendingCross(10); err != nil || len(pending) != 0 {
				t.Fatalf("%s shard %d: records not done %+v %v", f.tc.configs[i].NodeID, k, pending, err)
			}
			ledgers = append(ledgers, l)
		}
		sums, err := ledger.SupplyAcross(ledgers...)
		if err != nil {
			t.Fatal(err)
		}
		if got := sums[ledger.AssetRef{ProjectID: "shop", AssetID: "usd"}]; got != fsm.AmountFromUint64(f.issued) {
			t.Fatalf("%s: supplies sum to %s, issued %d", f.tc.configs[i].NodeID, got, f.issued)
		}
	}
}

// A transfer between customers of different shards completes; a two-operation transaction
// whose second operation fails changes neither wallet; retries answer the stored state.
func TestCrossShardTransactionsOnThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	f := newCrossFixture(t, 2, 1000)
	tc := f.tc
	a, b := f.byShard[0][0], f.byShard[3][0]

	transfer := map[string]any{"referenceId": "x1", "operations": []map[string]any{
		{"type": "transfer", "from": a, "to": b, "amount": 250}}}
	var latencies []time.Duration
	start := time.Now()
	tx := tc.must("POST", "/projects/shop/transactions", transfer, 201)
	latencies = append(latencies, time.Since(start))
	if tx["status"] != "completed" || f.balance(a) != 750 || f.balance(b) != 1250 {
		t.Fatalf("transfer: %v, balances %d %d", tx, f.balance(a), f.balance(b))
	}
	id := tx["id"].(string)
	// The transaction reads back through every node; each side has its entry.
	for i := range tc.nodes {
		status, got, err := tc.call(i, "GET", "/projects/shop/transactions/"+id, nil)
		if err != nil || status != 200 || got["status"] != "completed" || got["referenceId"] != "x1" {
			t.Fatalf("GET through %s: %d %v %v", tc.configs[i].NodeID, status, got, err)
		}
	}
	for wallet, kind := range map[string]string{a: "debit", b: "credit"} {
		entries := tc.must("GET", "/projects/shop/wallets/"+wallet+"/entries?page=1&pageSize=10&from=0&to=9999999999999", nil, 200)["items"].([]any)
		var found bool
		for _, e := range entries {
			e := e.(map[string]any)
			if e["transactionId"] == id {
				found = e["type"] == kind && e["amount"] == float64(250)
			}
		}
		if !found {
			t.Fatalf("wallet %s: no %s entry of %s in %v", wallet, kind, id, entries)
		}
	}

	// More transfers, for the latency figure (each through another node).
	for k := range 5 {
		start := time.Now()
		status, out, err := tc.call(k%3, "POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("lat-%d", k),
			"operations": []map[string]any{{"type": "transfer", "from": f.byShard[1][0], "to": f.byShard[2][0], "amount": 1}}})
		if err != nil || status != 201 {
			t.Fatalf("transfer %d: %d %v %v", k, status, out, err)
		}
		latencies = append(latencies, time.Since(start))
	}

	// The same through one shard, for comparison.
	var single []time.Duration
	for k := range 5 {
		start := time.Now()
		status, out, err := tc.call(k%3, "POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("one-%d", k),
			"operations": []map[string]any{{"type": "transfer", "from": f.byShard[1][0], "to": f.byShard[1][1], "amount": 1}}})
		if err != nil || status != 201 {
			t.Fatalf("single-shard transfer %d: %d %v %v", k, status, out, err)
		}
		single = append(single, time.Since(start))
	}

	// A retry answers the stored state, as on one shard; other operations are a mismatch.
	again := tc.must("POST", "/projects/shop/transactions", transfer, 409)
	if errorCode(again) != "DuplicateReferenceId" || again["transaction"].(map[string]any)["id"] != id ||
		again["transaction"].(map[string]any)["status"] != "completed" {
		t.Fatalf("retry: %v", again)
	}
	mismatch := map[string]any{"referenceId": "x1", "operations": []map[string]any{
		{"type": "transfer", "from": a, "to": b, "amount": 251}}}
	if out := tc.must("POST", "/projects/shop/transactions", mismatch, 409); errorCode(out) != "ReferenceIdMismatch" {
		t.Fatalf("mismatch: %v", out)
	}

	// The second operation fails: 422 with its index, neither wallet moved.
	failing := map[string]any{"referenceId": "x2", "operations": []map[string]any{
		{"type": "transfer", "from": a, "to": b, "amount": 100},
		{"type": "transfer", "from": b, "to": a, "amount": 5000}}}
	out := tc.must("POST", "/projects/shop/transactions", failing, 422)
	failed, _ := out["transaction"].(map[string]any)
	if errorCode(out) != "InsufficientFunds" || failed == nil || failed["failedOperationIndex"] != float64(1) || failed["status"] != "failed" {
		t.Fatalf("failing transaction: %v", out)
	}
	if f.balance(a) != 750 || f.balance(b) != 1250 {
		t.Fatalf("after the failed transaction: %d %d", f.balance(a), f.balance(b))
	}
	if got := tc.must("GET", "/projects/shop/transactions/"+failed["id"].(string), nil, 200); got["status"] != "failed" {
		t.Fatalf("failed transaction read back: %v", got)
	}
	if again := tc.must("POST", "/projects/shop/transactions", failing, 409); errorCode(again) != "DuplicateReferenceId" ||
		again["transaction"].(map[string]any)["status"] != "failed" {
		t.Fatalf("retry of the failed one: %v", again)
	}
	// A hold is not part of a cross-shard transaction.
	tc.must("POST", "/projects/shop/transactions", map[string]any{"referenceId": "x3", "operations": []map[string]any{
		{"type": "transfer", "from": a, "to": b, "amount": 1}, {"type": "hold", "from": a, "amount": 1}}}, 400)

	f.check(t)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	sort.Slice(single, func(i, j int) bool { return single[i] < single[j] })
	t.Logf("transfer latency over HTTP: cross-shard min %v, median %v, max %v (%d); single-shard min %v, median %v, max %v (%d)",
		latencies[0], latencies[len(latencies)/2], latencies[len(latencies)-1], len(latencies),
		single[0], single[len(single)/2], single[len(single)-1], len(single))
}

// The coordinator shard's leader is killed while 16 cross-shard transfers are in flight; the
// clients retry under the same reference on 503 and lost answers. Every transfer ends exactly
// once: the balances equal the model, per-shard invariants hold, the supplies summed over the
// shards are unchanged, and the replicas converge.
func TestCrossShardCoordinatorLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	crossShardLeaderKilled(t, 2)
}

// The same with the leader of a participant shard killed (transfers from shard 2 to shards 3, 0
// and 1): one whose node does not lead the coordinator, when there is one.
func TestCrossShardParticipantLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	crossShardLeaderKilled(t, 3)
}

// crossShardLeaderKilled runs 16 transfers from the coordinator shard 2 and kills the leader of
// shard killed once the coordinator's driver carries them.
func crossShardLeaderKilled(t *testing.T, killed int) {
	const transfers = 16
	const fund = 10_000
	f := newCrossFixture(t, transfers, fund)
	tc := f.tc
	const coordinator = 2
	// leaders names the nodes that lead the coordinator and the shard to kill now (-1: none);
	// a participant's leader that does not lead the coordinator too, when there is one.
	leaders := func() (victim, driving, shard int) {
		victim, driving, shard = -1, -1, killed
		for i := range tc.nodes {
			if n := tc.node(i); n != nil && n.cluster.Shard(coordinator).IsLeader() {
				driving = i
			}
		}
		for i := range tc.nodes {
			if n := tc.node(i); n != nil && n.cluster.Shard(killed).IsLeader() {
				victim = i
			}
		}
		if killed != coordinator {
			for _, k := range []int{3, 0, 1} {
				for i := range tc.nodes {
					if n := tc.node(i); n != nil && i != driving && n.cluster.Shard(k).IsLeader() {
						victim, shard = i, k
					}
				}
			}
		}
		return victim, driving, shard
	}
	began := time.Now()
	type result struct {
		status      int
		code        string
		transaction map[string]any
		attempts    int
	}
	results := make([]result, transfers)
	model := map[string]int64{}
	from := func(k int) string { return f.byShard[coordinator][k] }
	to := func(k int) string { return f.byShard[(coordinator+1+k%3)%crossShards][k] }
	amount := func(k int) int64 { return int64(10 + k) }
	for k := range transfers {
		model[from(k)] = fund
		model[to(k)] = fund
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for k := range transfers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"referenceId": fmt.Sprintf("kill-%d", k), "operations": []map[string]any{
				{"type": "transfer", "from": from(k), "to": to(k), "amount": amount(k)}}}
			<-release
			deadline := time.Now().Add(60 * time.Second)
			for attempt := 0; time.Now().Before(deadline); attempt++ {
				i := (k + attempt) % 3
				if tc.node(i) == nil {
					continue
				}
				status, out, err := tc.call(i, "POST", "/projects/shop/transactions", body)
				if err != nil || status == http.StatusServiceUnavailable {
					time.Sleep(20 * time.Millisecond) // client backoff before the retry
					continue
				}
				tx, _ := out["transaction"].(map[string]any)
				if status == http.StatusCreated {
					tx = out
				}
				results[k] = result{status: status, code: errorCode(out), transaction: tx, attempts: attempt + 1}
				return
			}
			results[k] = result{attempts: -1}
		}()
	}
	close(release)
	// Kill the leader once the coordinator's driver carries transfers (whichever node leads
	// it: under load leadership may move before the kill).
	inFlight := func() int64 {
		var n int64
		for i := range tc.nodes {
			if nd := tc.node(i); nd != nil {
				n += nd.cross.InFlight()
			}
		}
		return n
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "transfers in flight on the coordinator", func() bool { return inFlight() > 0 })
	// More of them if they come soon (on a loaded machine the first may finish first).
	testutil.Wait(2*time.Second, func() bool { return inFlight() >= transfers/2 })
	carried := inFlight()
	victim, driving, killedShard := leaders()
	if victim < 0 || driving < 0 {
		t.Fatalf("leaders of shards %d and %d: nodes %d and %d", killedShard, coordinator, victim, driving)
	}
	tc.kill(victim)
	killedAt := time.Since(began)
	wg.Wait()
	answeredAt := time.Since(began)
	completed := 0
	for k, r := range results {
		switch {
		case r.status == http.StatusCreated,
			r.status == http.StatusConflict && r.code == "DuplicateReferenceId" && r.transaction["status"] == "completed":
			model[from(k)] -= amount(k)
			model[to(k)] += amount(k)
			completed++
		case r.status == http.StatusUnprocessableEntity,
			r.status == http.StatusConflict && r.code == "DuplicateReferenceId" && r.transaction["status"] == "failed":
			// Recorded as failed (a participant unavailable past the deadline): nothing moved.
		default:
			t.Fatalf("transfer %d: %+v", k, r)
		}
	}
	tc.start(victim)
	testutil.EventuallyWithin(t, clusterWaitMax, "restarted node ready", func() bool { return tc.node(victim).ready() == nil })
	for id, want := range model {
		if got := f.balance(id); got != uint64(want) {
			t.Fatalf("wallet %s: balance %d, model %d", id, got, want)
		}
	}
	f.check(t)
	// Each reference is one transaction on the coordinator, in its final state.
	for k := range transfers {
		ref := fmt.Sprintf("kill-%d", k)
		tx := tc.must("GET", "/projects/shop/transactions/"+results[k].transaction["id"].(string), nil, 200)
		if tx["referenceId"] != ref || tx["status"] != results[k].transaction["status"] {
			t.Fatalf("%s: %v, answered %v", ref, tx, results[k].transaction)
		}
	}
	// And nothing else under those references: one transaction each on the coordinator.
	for i := range tc.nodes {
		seen := map[string]int{}
		items, _, err := tc.node(i).ledger(coordinator).ListTransactions("shop", ledger.TimeRange{FromMs: 0, ToMs: 1 << 62},
			ledger.PageRequest{Page: 1, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range items {
			seen[tx.ReferenceID]++
		}
		for k := range transfers {
			if n := seen[fmt.Sprintf("kill-%d", k)]; n != 1 {
				t.Fatalf("%s: reference kill-%d recorded %d times", tc.configs[i].NodeID, k, n)
			}
		}
	}
	attempts := 0
	for _, r := range results {
		attempts += r.attempts
	}
	t.Logf("%d transfers (%d completed), %d in flight on the coordinator's leader %s; killed %s, leader of shard %d, at %v; "+
		"all answered at %v after %d requests; checked at %v",
		transfers, completed, carried, tc.configs[driving].NodeID, tc.configs[victim].NodeID, killedShard,
		killedAt.Round(time.Millisecond), answeredAt.Round(time.Millisecond), attempts, time.Since(began).Round(time.Millisecond))
}

// TestCrossShardThroughput measures transfers per second and latencies with concurrent clients,
// cross-shard against single-shard, on 3 nodes and 4 shards. A measurement, not a check: run it
// with GIGALEDGER_CROSS_BENCH=1.
func TestCrossShardThroughput(t *testing.T) {
	if os.Getenv("GIGALEDGER_CROSS_BENCH") == "" {
		t.Skip("a measurement: set GIGALEDGER_CROSS_BENCH=1")
	}
	const clients = 32
	const perClient = 40
	f := newCrossFixture(t, clients/crossShards*2, 1_000_000)
	tc := f.tc
	run := func(name string, pair func(c, k int) (string, string)) {
		var mu sync.Mutex
		var latencies []time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perClient {
					from, to := pair(c, k)
					body := map[string]any{"referenceId": fmt.Sprintf("%s-%d-%d", name, c, k),
						"operations": []map[string]any{{"type": "transfer", "from": from, "to": to, "amount": 1}}}
					t0 := time.Now()
					status, out, err := tc.call((c+k)%3, "POST", "/projects/shop/transactions", body)
					if err != nil || status != http.StatusCreated {
						t.Errorf("%s %d/%d: %d %v %v", name, c, k, status, out, err)
						return
					}
					mu.Lock()
					latencies = append(latencies, time.Since(t0))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		if len(latencies) == 0 {
			return
		}
		q := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
		t.Logf("%s: %d transfers, %d clients: %.0f/s, p50 %v, p99 %v, max %v", name, len(latencies), clients,
			float64(len(latencies))/elapsed.Seconds(), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond),
			latencies[len(latencies)-1].Round(time.Millisecond))
	}
	per := len(f.byShard[0])
	run("single", func(c, k int) (string, string) {
		s := c % crossShards
		return f.byShard[s][(c/crossShards)%per], f.byShard[s][(c/crossShards+1+k%(per-1))%per]
	})
	run("cross", func(c, k int) (string, string) {
		s := c % crossShards
		return f.byShard[s][(c/crossShards)%per], f.byShard[(s+1+k%3)%crossShards][(c+k)%per]
	})
	f.check(t)
}
