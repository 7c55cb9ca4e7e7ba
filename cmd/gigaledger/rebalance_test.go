package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/httpapi"
)

// Rebalancing: three gossip nodes bootstrap two shards; a fourth starts with --join (no
// --bootstrap-expect), learns the placement and hosts nothing; POST /cluster/move-replica moves
// the replica of shard 1 held by its leader onto it while a client keeps writing transactions
// to that shard through every node. No acknowledged write is lost, GET /cluster on every node
// shows the new replica set, and each shard's replicas end with equal digests.
func TestMoveReplicaToJoinedNodeUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const shardCount, moved = 2, 1
	tc := startGossipCluster(t, 3, shardCount)
	tc.must("POST", "/projects", map[string]any{"id": "p", "name": "p"}, 201)
	tc.must("POST", "/projects/p/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	customer := ""
	for i := 0; customer == ""; i++ {
		if id := fmt.Sprintf("c%d", i); int(keyspace.ShardOfSlot(keyspace.SlotOf("p", id), shardCount)) == moved {
			customer = id
		}
	}
	tc.must("POST", "/projects/p/customers", map[string]any{"id": customer}, 200)
	from := tc.must("POST", "/projects/p/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, 201)["id"].(string)
	to := tc.must("POST", "/projects/p/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, 201)["id"].(string)
	const funded = 1_000_000
	tc.must("POST", "/projects/p/transactions", map[string]any{"referenceId": "fund",
		"operations": []map[string]any{{"type": "issue", "to": from, "amount": funded}}}, 201)

	// The fourth node joins the running cluster by gossip.
	first := tc.configs[0]
	cfg4 := gossipConfig(t, filepath.Dir(first.DataDir), "n4", 0, shardCount, first.GossipAddr)
	n4, err := startNode(cfg4, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tc.mu.Lock()
	tc.configs, tc.nodes = append(tc.configs, cfg4), append(tc.nodes, n4)
	tc.mu.Unlock()
	if hosted := n4.cluster.HostedShards(); len(hosted) != 0 {
		t.Fatalf("n4 hosts %v before any move", hosted)
	}
	for i := range 3 {
		testutil.EventuallyWithin(t, clusterWaitMax, "n4 alive to "+tc.configs[i].NodeID, func() bool {
			return slices.ContainsFunc(tc.node(i).cluster.Status().Nodes, func(s cluster.NodeStatus) bool {
				return s.ID == "n4" && s.State == cluster.NodeStateAlive
			})
		})
	}
	source := ""
	testutil.EventuallyWithin(t, clusterWaitMax, "a leader of the shard to move", func() bool {
		source = tc.node(0).cluster.Status().Shards[moved].LeaderID
		return source != ""
	})

	// A client writes transfers of 1 through every node, one after the other, each retried
	// under its reference until it gets a definite answer.
	var (
		mu      sync.Mutex
		acked   int
		unknown int
	)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := map[string]any{"referenceId": fmt.Sprintf("w%d", i),
				"operations": []map[string]any{{"type": "transfer", "from": from, "to": to, "amount": 1}}}
			deadline := time.Now().Add(clusterWaitMax)
			outcome := outcomeUnknown
			for attempt := 0; time.Now().Before(deadline); attempt++ {
				status, out, err := tc.call((i+attempt)%4, "POST", "/projects/p/transactions", body)
				if err == nil && (status == http.StatusCreated ||
					(status == http.StatusConflict && errorCode(out) == "DuplicateReferenceId")) {
					outcome = outcomeAcknowledged
					break
				}
				if err == nil && status != http.StatusServiceUnavailable {
					t.Errorf("transfer w%d: %d %v", i, status, out)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			if outcome == outcomeAcknowledged {
				acked++
			} else {
				unknown++
			}
			mu.Unlock()
		}
	}()
	ackedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return acked
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "writes before the move", func() bool { return ackedSoFar() >= 20 })

	// A malformed node ID is named as such (it was "must be two different node IDs").
	refused := tc.must("POST", "/cluster/move-replica", map[string]any{"shard": moved, "fromNodeId": source + "\x00", "toNodeId": "n4"}, 400)
	if message := fmt.Sprint(refused["error"]); !strings.Contains(message, "fromNodeId must be a node ID") {
		t.Fatalf("a malformed node ID: %v", refused)
	}
	start := time.Now()
	answer := tc.must("POST", "/cluster/move-replica", map[string]any{"shard": moved, "fromNodeId": source, "toNodeId": "n4"}, 200)
	took := time.Since(start)
	if answer["moved"] != true || answer["status"] != "moved" {
		t.Fatalf("move answer %v", answer)
	}
	duringMove := ackedSoFar()
	testutil.EventuallyWithin(t, clusterWaitMax, "writes after the move", func() bool { return ackedSoFar() >= duringMove+20 })
	close(stop)
	<-writerDone
	t.Logf("moved shard %d from %s to n4 in %v (caught up at index %v in %v ms as a non-voter); %d transfers acknowledged, %d unknown",
		moved, source, took.Round(time.Millisecond), answer["caughtUpIndex"], answer["catchUpMs"], acked, unknown)

	// Again, from the command line: nothing to do. Refused: a move of a replica nobody named holds.
	var stdout, stderr bytes.Buffer
	cli := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		return run(append([]string{"cluster", args[0], "--addr", tc.configs[1].AdminAddr, "--timeout", "1m"}, args[1:]...), &stdout, &stderr)
	}
	if code := cli("move-replica", "--shard", fmt.Sprint(moved), "--from", source, "--to", "n4"); code != 0 || !strings.Contains(stdout.String(), `"already moved"`) {
		t.Fatalf("gigaledger cluster move-replica again: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	// (Of shard 0: neither n9 nor n4 holds a replica of it. Of shard 1 it would answer "already
	// moved": the source is gone and the destination a voter, as after any finished move.)
	if code := cli("move-replica", "--shard", "0", "--from", "n9", "--to", "n4"); code != 1 || !strings.Contains(stderr.String(), "400") {
		t.Fatalf("gigaledger cluster move-replica from an unknown node: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	if code := cli("status"); code != 0 || !strings.Contains(stdout.String(), `"n4"`) {
		t.Fatalf("gigaledger cluster status: exit %d, %s%s", code, stdout.String(), stderr.String())
	}

	// Every acknowledged transfer is there (and an unknown one at most once).
	balance := tc.must("GET", "/projects/p/wallets/"+to, nil, 200)["balance"].(float64)
	if int(balance) < acked || int(balance) > acked+unknown {
		t.Fatalf("destination balance %v after %d acknowledged and %d unknown transfers", balance, acked, unknown)
	}
	if got := tc.must("GET", "/projects/p/wallets/"+from, nil, 200)["balance"].(float64); int(got)+int(balance) != funded {
		t.Fatalf("balances %v + %v, want %d", got, balance, funded)
	}

	// GET /cluster on every node shows the new replica set of the moved shard.
	var wantReplicas []string
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		if id != source {
			wantReplicas = append(wantReplicas, id)
		}
	}
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, tc.configs[i].NodeID+" shows the new replica set", func() bool {
			status, out, err := tc.call(i, "GET", "/cluster", nil)
			if err != nil || status != 200 {
				return false
			}
			shard := out["shards"].([]any)[moved].(map[string]any)
			var replicas []string
			for _, r := range shard["replicas"].([]any) {
				replicas = append(replicas, r.(string))
			}
			slices.Sort(replicas)
			return slices.Equal(replicas, wantReplicas) && shard["nonvoters"] == nil
		})
	}
	sourceIndex := slices.IndexFunc(tc.configs, func(c *serveConfig) bool { return c.NodeID == source })
	if tc.node(sourceIndex).cluster.Hosts(moved) || !n4.cluster.Hosts(moved) || n4.cluster.Hosts(0) {
		t.Fatalf("hosts: %s %v, n4 %v", source, tc.node(sourceIndex).cluster.HostedShards(), n4.cluster.HostedShards())
	}
	// The source still answers for the shard (it forwards now).
	if status, out, err := tc.call(sourceIndex, "GET", "/projects/p/wallets/"+to, nil); err != nil || status != 200 || out["balance"] != balance {
		t.Fatalf("read through the source: %d %v %v", status, out, err)
	}
	// Leadership spread on request, from the command line (POST /cluster/balance-leaders): two
	// shards on four nodes end led by two nodes.
	if code := cli("balance-leaders"); code != 0 || !strings.Contains(stdout.String(), `"balanced": true`) {
		t.Fatalf("gigaledger cluster balance-leaders: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	waitShardsConverged(t, tc, shardCount, clusterWaitMax)
}

// waitShardsConverged waits until, for every shard, each live node that hosts it holds the
// same digest at the same applied index (GET /debug/digest?shard=k), and checks each replica's
// invariants.
func waitShardsConverged(t *testing.T, tc *testCluster, shardCount int, limit time.Duration) {
	t.Helper()
	for k := range shardCount {
		var view []string
		converged := testutil.Wait(limit, func() bool {
			view = nil
			first := ""
			for i := range tc.nodes {
				n := tc.node(i)
				if n == nil {
					continue
				}
				digest, applied, err := n.ShardDigest(context.Background(), k)
				if err == httpapi.ErrNotHostedHere {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				here := fmt.Sprintf("%d/%s", applied, digest)
				view = append(view, tc.configs[i].NodeID+"="+here[:min(len(here), 24)])
				if first == "" {
					first = here
				} else if here != first {
					return false
				}
			}
			return len(view) == 3
		})
		if !converged {
			t.Fatalf("shard %d: replicas did not converge: %v", k, view)
		}
		for i := range tc.nodes {
			if n := tc.node(i); n != nil && n.cluster.Hosts(k) {
				if err := n.ledger(k).CheckInvariants(); err != nil {
					t.Fatalf("%s shard %d: %v", tc.configs[i].NodeID, k, err)
				}
			}
		}
	}
}

// Spreading replicas onto a joined node: three gossip nodes bootstrap four shards of three
// replicas (12 replicas, 4 per node); a fourth joins with --join and hosts nothing; `gigaledger
// cluster balance-replicas` (POST /cluster/balance-replicas) moves replicas onto it, one at a
// time, until every node holds 3, while a client keeps writing transfers inside every shard
// through every node. No acknowledged write is lost, each shard's replicas end with equal
// digests, and a second call has nothing to do.
func TestBalanceReplicasOntoJoinedNodeUnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const shardCount = 4
	tc := startGossipCluster(t, 3, shardCount)
	tc.must("POST", "/projects", map[string]any{"id": "p", "name": "p"}, 201)
	tc.must("POST", "/projects/p/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	// A customer per shard, each with a funded wallet and an empty one.
	const funded = 1_000_000
	var froms, tos [shardCount]string
	for k := range shardCount {
		customer := ""
		for i := 0; customer == ""; i++ {
			if id := fmt.Sprintf("c%d", i); int(keyspace.ShardOfSlot(keyspace.SlotOf("p", id), shardCount)) == k {
				customer = id
			}
		}
		tc.must("POST", "/projects/p/customers", map[string]any{"id": customer}, 200)
		froms[k] = tc.must("POST", "/projects/p/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, 201)["id"].(string)
		tos[k] = tc.must("POST", "/projects/p/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, 201)["id"].(string)
		tc.must("POST", "/projects/p/transactions", map[string]any{"referenceId": fmt.Sprintf("fund%d", k),
			"operations": []map[string]any{{"type": "issue", "to": froms[k], "amount": funded}}}, 201)
	}

	// The fourth node joins the running cluster by gossip.
	first := tc.configs[0]
	cfg4 := gossipConfig(t, filepath.Dir(first.DataDir), "n4", 0, shardCount, first.GossipAddr)
	n4, err := startNode(cfg4, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tc.mu.Lock()
	tc.configs, tc.nodes = append(tc.configs, cfg4), append(tc.nodes, n4)
	tc.mu.Unlock()
	for i := range 3 {
		testutil.EventuallyWithin(t, clusterWaitMax, "n4 alive to "+tc.configs[i].NodeID, func() bool {
			return slices.ContainsFunc(tc.node(i).cluster.Status().Nodes, func(s cluster.NodeStatus) bool {
				return s.ID == "n4" && s.State == cluster.NodeStateAlive
			})
		})
	}

	// A client writes transfers of 1 through every node, one after the other, shard after
	// shard, each retried under its reference until it gets a definite answer.
	var (
		mu      sync.Mutex
		acked   [shardCount]int
		unknown [shardCount]int
	)
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := i % shardCount
			body := map[string]any{"referenceId": fmt.Sprintf("w%d", i),
				"operations": []map[string]any{{"type": "transfer", "from": froms[k], "to": tos[k], "amount": 1}}}
			deadline := time.Now().Add(clusterWaitMax)
			outcome := outcomeUnknown
			for attempt := 0; time.Now().Before(deadline); attempt++ {
				status, out, err := tc.call((i+attempt)%4, "POST", "/projects/p/transactions", body)
				if err == nil && (status == http.StatusCreated ||
					(status == http.StatusConflict && errorCode(out) == "DuplicateReferenceId")) {
					outcome = outcomeAcknowledged
					break
				}
				if err == nil && status != http.StatusServiceUnavailable {
					t.Errorf("transfer w%d: %d %v", i, status, out)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			if outcome == outcomeAcknowledged {
				acked[k]++
			} else {
				unknown[k]++
			}
			mu.Unlock()
		}
	}()
	ackedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, a := range acked {
			total += a
		}
		return total
	}
	// Enough writes first that each shard's log is longer than the lag a new replica may
	// have when promoted (64 entries): every move has a real catch-up to wait for.
	testutil.EventuallyWithin(t, clusterWaitMax, "writes before the balance", func() bool { return ackedSoFar() >= 100*shardCount })

	var stdout, stderr bytes.Buffer
	cli := func(args ...string) int {
		stdout.Reset()
		stderr.Reset()
		return run(append([]string{"cluster", args[0], "--addr", tc.configs[1].AdminAddr, "--timeout", "2m"}, args[1:]...), &stdout, &stderr)
	}
	start := time.Now()
	if code := cli("balance-replicas"); code != 0 {
		t.Fatalf("gigaledger cluster balance-replicas: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	took := time.Since(start)
	var result cluster.ReplicaBalance
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
		t.Fatalf("balance-replicas answer %s: %v", stdout.String(), err)
	}
	// 12 replicas from 4-4-4-0 to 3-3-3-3: one move from each of n1, n2, n3, each to n4.
	wantCounts := map[string]int{"n1": 3, "n2": 3, "n3": 3, "n4": 3}
	if len(result.Moves) != 3 || !result.Balanced || !maps.Equal(result.Replicas, wantCounts) {
		t.Fatalf("balance-replicas answer %s", stdout.String())
	}
	sources := map[string]bool{}
	for _, m := range result.Moves {
		if m.To != "n4" || !m.Moved || sources[m.From] {
			t.Fatalf("balance-replicas moves %+v", result.Moves)
		}
		sources[m.From] = true
	}
	duringBalance := ackedSoFar()
	testutil.EventuallyWithin(t, clusterWaitMax, "writes after the balance", func() bool { return ackedSoFar() >= duringBalance+20 })
	close(stop)
	<-writerDone
	t.Logf("balanced replicas in %v: moves %+v; %v transfers acknowledged, %v unknown", took.Round(time.Millisecond), result.Moves, acked, unknown)

	// Every node's GET /cluster counts 3 replicas per node, and n4 hosts three shards.
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, tc.configs[i].NodeID+" sees 3 replicas per node", func() bool {
			counts := map[string]int{}
			for _, s := range tc.node(i).cluster.Status().Shards {
				if len(s.Nonvoters) > 0 {
					return false
				}
				for _, id := range s.Replicas {
					counts[id]++
				}
			}
			return maps.Equal(counts, wantCounts)
		})
	}
	if hosted := n4.cluster.HostedShards(); len(hosted) != 3 {
		t.Fatalf("n4 hosts %v", hosted)
	}

	// Every acknowledged transfer is there (and an unknown one at most once), shard by shard.
	for k := range shardCount {
		balance := int(tc.must("GET", "/projects/p/wallets/"+tos[k], nil, 200)["balance"].(float64))
		if balance < acked[k] || balance > acked[k]+unknown[k] {
			t.Fatalf("shard %d: destination balance %d after %d acknowledged and %d unknown transfers", k, balance, acked[k], unknown[k])
		}
		if got := int(tc.must("GET", "/projects/p/wallets/"+froms[k], nil, 200)["balance"].(float64)); got+balance != funded {
			t.Fatalf("shard %d: balances %d + %d, want %d", k, got, balance, funded)
		}
	}
	waitShardsConverged(t, tc, shardCount, clusterWaitMax)

	// Again, over HTTP on another node: nothing to do.
	again := tc.must("POST", "/cluster/balance-replicas", map[string]any{}, 200)
	if moves, _ := again["moves"].([]any); len(moves) != 0 || again["balanced"] != true {
		t.Fatalf("second balance-replicas: %v", again)
	}
}
