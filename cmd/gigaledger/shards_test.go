package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
)

// Three nodes, four shards, real TCP: requests sent to every node succeed; with one node
// killed every shard keeps taking writes and serving linearizable reads; restarted, the node
// catches up and every replica's digest matches.
func TestThreeNodesFourShards(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const shardCount = 4
	tc := newShardedTestCluster(t, 3, shardCount)
	for i := range tc.nodes {
		waitFor(t, "every shard led on "+tc.configs[i].NodeID, func() bool { return tc.node(i).ready() == nil })
	}
	tc.must("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	tc.must("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)

	// Two customers per shard, each with two wallets; every request through a different node.
	type customer struct {
		id      string
		wallets [2]string
	}
	perShard := map[int][]customer{}
	request := 0
	via := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		request++
		deadline := time.Now().Add(20 * time.Second)
		for attempt := 0; ; attempt++ {
			i := (request + attempt) % len(tc.nodes)
			if tc.node(i) != nil {
				status, out, err := tc.call(i, method, path, body)
				if err == nil && status == want {
					return out
				}
				if err == nil && status != http.StatusServiceUnavailable {
					t.Fatalf("%s %s via %s: %d %v, want %d", method, path, tc.configs[i].NodeID, status, out, want)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: no %d in time", method, path, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for k := 0; len(perShard) < shardCount || minLen(perShard) < 2; k++ {
		id := fmt.Sprintf("c%d", k)
		shardID := cluster.ShardOfSlot(cluster.SlotOf("shop", id), shardCount)
		if len(perShard[shardID]) == 2 {
			continue
		}
		via("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		cu := customer{id: id}
		for w := range cu.wallets {
			cu.wallets[w] = via("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
		}
		via("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund-" + id,
			"operations": []map[string]any{{"type": "issue", "to": cu.wallets[0], "amount": 1000}}}, 201)
		perShard[shardID] = append(perShard[shardID], cu)
	}

	// transferRound moves 1 inside every customer of every shard, through rotating nodes, and
	// checks each balance read right after (linearizable: the read sees the write).
	round := 0
	transferRound := func() {
		t.Helper()
		round++
		for shardID := 0; shardID < shardCount; shardID++ {
			for _, cu := range perShard[shardID] {
				via("POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("r%d-%s", round, cu.id),
					"operations": []map[string]any{{"type": "transfer", "from": cu.wallets[0], "to": cu.wallets[1], "amount": 1}}}, 201)
				w := via("GET", "/projects/shop/wallets/"+cu.wallets[1], nil, 200)
				if w["balance"] != float64(round) {
					t.Fatalf("shard %d, %s after round %d: balance %v", shardID, cu.wallets[1], round, w["balance"])
				}
			}
		}
	}
	transferRound()
	tc.waitConverged(20 * time.Second)

	// Kill a node: every shard has lost a replica, none has lost its quorum.
	victim := 1
	tc.stop(victim)
	transferRound()
	transferRound()
	// Project-wide reads still merge every shard.
	list := via("GET", "/projects/shop/customers?page=1&pageSize=100", nil, 200)
	if n := len(list["items"].([]any)); n != 2*shardCount {
		t.Fatalf("customer list has %d, want %d", n, 2*shardCount)
	}

	// Restart it: it catches up on every shard.
	tc.start(victim)
	waitFor(t, "restarted node ready", func() bool { return tc.node(victim).ready() == nil })
	transferRound()
	digest := tc.waitConverged(30 * time.Second)
	for i := range tc.nodes {
		n := tc.node(i)
		for k := 0; k < shardCount; k++ {
			if err := n.ledger(k).CheckInvariants(); err != nil {
				t.Fatalf("%s shard %d: %v", tc.configs[i].NodeID, k, err)
			}
		}
	}
	status := tc.node(0).cluster.Status()
	if len(status.Shards) != shardCount {
		t.Fatalf("status shows %d shards", len(status.Shards))
	}
	for _, s := range status.Shards {
		if s.LeaderID == "" || len(s.Replicas) != 3 {
			t.Fatalf("shard %d: leader %q, replicas %v", s.ID, s.LeaderID, s.Replicas)
		}
	}
	t.Logf("digest %s after %d rounds over %d shards", digest[:12], round, shardCount)
}

func minLen[K comparable, V any](m map[K][]V) int {
	n := -1
	for _, v := range m {
		if n < 0 || len(v) < n {
			n = len(v)
		}
	}
	return max(n, 0)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
