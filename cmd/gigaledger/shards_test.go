package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/shard"
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
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led on "+tc.configs[i].NodeID, func() bool { return tc.node(i).ready() == nil })
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
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), shardCount))
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
	testutil.EventuallyWithin(t, clusterWaitMax, "restarted node ready", func() bool { return tc.node(victim).ready() == nil })
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

// Gossip: three nodes bootstrap two shards; one dies; a fresh node joins and takes its
// replicas through POST /cluster/replace-node; it catches up to the same digest.
func TestReplaceDeadNodeByGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := startGossipCluster(t, 3, 2)
	first := tc.configs[0]
	tc.must("POST", "/projects", map[string]any{"id": "p", "name": "p"}, 201)
	tc.must("POST", "/projects/p/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	w := tc.must("POST", "/projects/p/system-wallets", map[string]any{"assetId": "usd"}, 201)["id"].(string)
	tc.must("POST", "/projects/p/transactions", map[string]any{"referenceId": "a",
		"operations": []map[string]any{{"type": "issue", "to": w, "amount": 7}}}, 201)

	tc.stop(2) // n3 dies for good
	replacement := gossipConfig(t, filepath.Dir(first.DataDir), "n4", 0, 2, first.GossipAddr)
	n4, err := startNode(replacement, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tc.mu.Lock()
	tc.configs[2], tc.nodes[2] = replacement, n4
	tc.mu.Unlock()
	tc.must("POST", "/cluster/replace-node", map[string]any{"oldNodeId": "n3", "newNodeId": "n4", "newRaftAddr": replacement.RaftAddr}, 200)
	tc.must("POST", "/projects/p/transactions", map[string]any{"referenceId": "b",
		"operations": []map[string]any{{"type": "issue", "to": w, "amount": 5}}}, 201)
	tc.waitConverged(30 * time.Second)
	for _, s := range tc.node(0).cluster.Status().Shards {
		if fmt.Sprint(slices.Sorted(slices.Values(s.Replicas))) != "[n1 n2 n4]" {
			t.Fatalf("shard %d replicas %v after the replacement", s.ID, s.Replicas)
		}
	}
	// The new node serves a linearizable read of what was written before it existed.
	status, out, err := tc.call(2, "GET", "/projects/p/wallets/"+w, nil)
	if err != nil || status != 200 || out["balance"] != float64(12) {
		t.Fatalf("read on the new node: %d %v %v", status, out, err)
	}
}

// Gossip, more nodes than replicas: nodes that lack a shard still take every write (proposals
// go to the shard's leader) and every read (a query to a node that hosts the shard), and
// creating wallets through a node without shard 0 adds no entries to shard 0's log.
func TestEveryNodeServesShardsItDoesNotHost(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	everyNodeServesShardsItDoesNotHost(t, false)
}

// The same with the HTTP APIs over HTTPS (--http-tls-cert, --http-tls-key).
func TestEveryNodeServesShardsItDoesNotHostOverHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := everyNodeServesShardsItDoesNotHost(t, true)

	// healthcheck reaches an HTTPS admin listener with --ca, and says what failed without it.
	addr, ca := tc.configs[0].AdminAddr, filepath.Join(tc.configs[0].TLSDir, "ca.crt")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"healthcheck", "--addr", addr, "--ca", ca, "--timeout", "5s"}, &stdout, &stderr); code != 0 {
		t.Fatalf("healthcheck --ca over HTTPS: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"healthcheck", "--addr", addr, "--timeout", "5s"}, &bytes.Buffer{}, &stderr); code != 1 || stderr.Len() == 0 {
		t.Fatalf("healthcheck over plain HTTP to an HTTPS listener: exit %d, stderr %q", code, stderr.String())
	}
}

func everyNodeServesShardsItDoesNotHost(t *testing.T, https bool) *testCluster {
	const nodeCount, shardCount = 4, 4
	tc := startGossipClusterWith(t, nodeCount, shardCount, https)
	lacking := 0
	for i := range tc.nodes {
		if len(tc.node(i).cluster.HostedShards()) < shardCount {
			lacking++
		}
	}
	if lacking == 0 {
		t.Fatal("every node hosts every shard; the test needs nodes that do not")
	}
	// at sends to node i, retrying only while leaders settle (503).
	at := func(i int, method, path string, body any, want int) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, out, err := tc.call(i, method, path, body)
			if err == nil && status == want {
				return out
			}
			if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
				t.Fatalf("%s %s via %s: %d %v %v, want %d", method, path, tc.configs[i].NodeID, status, out, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	at(3, "POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	at(2, "POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	for c := 0; c < 12; c++ {
		via := c % nodeCount
		id := fmt.Sprintf("cust%d", c)
		at(via, "POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		w1 := at((via+1)%nodeCount, "POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
		w2 := at((via+2)%nodeCount, "POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
		at((via+3)%nodeCount, "POST", "/projects/shop/transactions", map[string]any{"referenceId": "t-" + id, "operations": []map[string]any{
			{"type": "issue", "to": w1, "amount": 50}, {"type": "transfer", "from": w1, "to": w2, "amount": 20}}}, 201)
		for i := 0; i < nodeCount; i++ {
			if got := at(i, "GET", "/projects/shop/wallets/"+w2, nil, 200)["balance"]; got != float64(20) {
				t.Fatalf("%s reads %s balance %v, want 20", tc.configs[i].NodeID, w2, got)
			}
			at(i, "GET", "/projects/shop/customers/"+id, nil, 200)
		}
	}
	for i := 0; i < nodeCount; i++ {
		if p := at(i, "GET", "/projects/shop", nil, 200); len(p["assets"].([]any)) != 1 {
			t.Fatalf("%s: project %v", tc.configs[i].NodeID, p)
		}
		// Project-wide lists merge every shard's part, fetched from nodes that host them.
		customers := at(i, "GET", "/projects/shop/customers?page=1&pageSize=100", nil, 200)["items"].([]any)
		transactions := at(i, "GET", "/projects/shop/transactions?page=1&pageSize=100&from=0&to=9999999999999", nil, 200)["items"].([]any)
		supply := at(i, "GET", "/projects/shop/assets/usd", nil, 200)["supply"]
		if len(customers) != 12 || len(transactions) != 12 || supply != float64(12*50) {
			t.Fatalf("%s: %d customers, %d transactions, supply %v", tc.configs[i].NodeID, len(customers), len(transactions), supply)
		}
	}
	walletsAddNoEntriesToShardZero(t, tc, shardCount, at)
	return tc
}

// walletsAddNoEntriesToShardZero creates customers and wallets of a new asset, in shards other
// than 0, through a node that does not host shard 0, counting the entries of shard 0's log:
// one at most (the first wallet marks the asset used), none for checking the project or the
// asset (queries). An election adds an entry of its own, so a run that saw one is repeated;
// the leader's one-time duties add theirs, so counting starts once they are applied.
func walletsAddNoEntriesToShardZero(t *testing.T, tc *testCluster, shardCount int, at func(int, string, string, any, int) map[string]any) {
	t.Helper()
	outside := -1
	for i := range tc.nodes {
		if !tc.node(i).cluster.Hosts(0) {
			outside = i
		}
	}
	if outside < 0 {
		t.Fatal("every node hosts shard 0")
	}
	at(0, "POST", "/projects/shop/assets", map[string]any{"id": "eur", "name": "EUR", "code": "EUR", "fractions": 100}, 201)
	// The leader's one-time proposals (the history chain's start, the rules raise, retried
	// every few seconds while a replica cannot be asked) are entries of shard 0's log too:
	// count only once they are in.
	testutil.Eventually(t, "shard 0's one-time leader duties applied on every replica", func() bool {
		for i := range tc.nodes {
			if tc.node(i).cluster.Hosts(0) && !oneTimeDutiesApplied(tc.node(i), 0) {
				return false
			}
		}
		return true
	})
	leaderStats := func() shard.Stats {
		var stats shard.Stats
		testutil.Eventually(t, "a leader of shard 0", func() bool {
			for i := range tc.nodes {
				if s := tc.node(i).cluster.Shard(0); s != nil && s.IsLeader() {
					stats = s.Stats()
					return true
				}
			}
			return false
		})
		return stats
	}
	const walletCount = 8
	customer := 0
	for run := 1; ; run++ {
		before := leaderStats()
		for created := 0; created < walletCount; customer++ {
			id := fmt.Sprintf("eur-%d", customer)
			if keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), shardCount) == 0 {
				continue
			}
			at(outside, "POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
			at(outside, "POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "eur"}, 201)
			created++
		}
		after := leaderStats()
		if after.NodeID != before.NodeID || after.Term != before.Term {
			if run == 3 {
				t.Fatal("shard 0 elected a leader during each of 3 runs")
			}
			continue
		}
		if added := after.LastLogIndex - before.LastLogIndex; added > 1 {
			t.Fatalf("%d wallets through %s (no replica of shard 0) added %d entries to shard 0's log, want at most 1",
				walletCount, tc.configs[outside].NodeID, added)
		}
		return
	}
}

// gossipConfig is a test node that forms its cluster by gossip.
func gossipConfig(t *testing.T, dir, id string, bootstrap, shards int, join string) *serveConfig {
	return &serveConfig{
		NodeID: id, DataDir: filepath.Join(dir, id), AdminAddr: testutil.FreeAddr(t), PublicAddr: testutil.FreeAddr(t),
		RaftAddr: testutil.FreeAddr(t), GossipAddr: testutil.FreeAddr(t), Join: join, Bootstrap: bootstrap, Shards: shards,
		Replicas: 3, LogLevel: "error", ShutdownMax: 2 * time.Second, raftTiming: testRaftTiming,
		TLSDir: tlstest.CAIn(t, filepath.Join(dir, "certs")).NodeDir(id),
	}
}

// startGossipCluster bootstraps size nodes by gossip (all joining the first) and waits until
// every hosted shard of every node has a leader. Nodes wait for each other to bootstrap, so
// they start concurrently.
func startGossipCluster(t *testing.T, size, shards int) *testCluster {
	t.Helper()
	return startGossipClusterWith(t, size, shards, false)
}

// startGossipClusterWith is startGossipCluster; with https the nodes serve their HTTP APIs
// over HTTPS with their node certificates (SANs 127.0.0.1 and localhost), and the test client
// trusts the cluster CA.
func startGossipClusterWith(t *testing.T, size, shards int, https bool) *testCluster {
	t.Helper()
	dir := t.TempDir()
	tc := &testCluster{t: t, client: &http.Client{Timeout: 10 * time.Second}, nodes: make([]*node, size)}
	for i := 0; i < size; i++ {
		join := ""
		if i > 0 {
			join = tc.configs[0].GossipAddr
		}
		cfg := gossipConfig(t, dir, fmt.Sprintf("n%d", i+1), size, shards, join)
		if https {
			cfg.HTTPTLSCert, cfg.HTTPTLSKey = filepath.Join(cfg.TLSDir, "node.crt"), filepath.Join(cfg.TLSDir, "node.key")
		}
		tc.configs = append(tc.configs, cfg)
	}
	if https {
		ca := tlstest.CAIn(t, filepath.Join(dir, "certs")).Node(tc.configs[0].NodeID)
		tc.scheme = "https"
		tc.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Roots, MinVersion: tls.VersionTLS12}}
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i)
		}
	})
	started := make(chan error, size)
	for i := range tc.configs {
		go func(i int) {
			n, err := startNode(tc.configs[i], testutil.Logger(t))
			if err == nil {
				tc.mu.Lock()
				tc.nodes[i] = n
				tc.mu.Unlock()
			}
			started <- err
		}(i)
	}
	for range tc.configs {
		if err := <-started; err != nil {
			t.Fatal(err)
		}
	}
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "node ready", func() bool { return tc.node(i).ready() == nil })
	}
	return tc
}
