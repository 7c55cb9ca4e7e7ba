package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// testCluster is three real nodes in this process on loopback: real TCP for Raft, forwarding
// and HTTP.
type testCluster struct {
	t       *testing.T
	configs []*serveConfig
	client  *http.Client
	// scheme is how the client reaches the admin APIs: "http" (when empty) or "https".
	scheme string
	// logs, when set, receives every node's log records (at debug level and up); nil discards.
	logs slog.Handler
	// mustKeys numbers must's idempotency keys.
	mustKeys atomic.Int64

	mu    sync.Mutex
	nodes []*node // nil while a node is down
}

// node returns node i, or nil while it is down.
func (tc *testCluster) node(i int) *node {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.nodes[i]
}

// clusterWaitMax bounds the waits on a cluster of real nodes (elections over TCP, catch-up
// after a restart), which settle slower than testutil.WaitMax allows on a loaded machine.
const clusterWaitMax = 30 * time.Second

// testRaftTiming shortens elections for every test node.
var testRaftTiming = &raftTiming{heartbeat: 300 * time.Millisecond, election: 300 * time.Millisecond,
	leaderLease: 150 * time.Millisecond, commit: 5 * time.Millisecond}

func newTestCluster(t *testing.T, size int) *testCluster { return newShardedTestCluster(t, size, 1) }

func newShardedTestCluster(t *testing.T, size, shards int) *testCluster {
	return newLoggedTestCluster(t, size, shards, nil)
}

// newLoggedTestCluster starts a cluster whose nodes log into logs (nil: discard).
func newLoggedTestCluster(t *testing.T, size, shards int, logs slog.Handler) *testCluster {
	return newConfiguredTestCluster(t, size, shards, logs, nil)
}

// newConfiguredTestCluster is newLoggedTestCluster; configure, when not nil, sets what a test
// needs in each node's configuration (a wallet seed file, say) before the nodes start.
func newConfiguredTestCluster(t *testing.T, size, shards int, logs slog.Handler, configure func(*serveConfig)) *testCluster {
	tc := &testCluster{t: t, logs: logs, client: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	dir := t.TempDir()
	ca := tlstest.CAIn(t, filepath.Join(dir, "certs")) // node-to-node traffic runs mutual TLS
	var peers []string
	for i := 0; i < size; i++ {
		cfg := &serveConfig{
			NodeID: fmt.Sprintf("n%d", i+1), DataDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			AdminAddr: testutil.FreeAddr(t), PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t),
			LogLevel: "error", ShutdownMax: 5 * time.Second, Shards: shards, Replicas: 3,
			raftTiming: testRaftTiming, TLSDir: ca.NodeDir(fmt.Sprintf("n%d", i+1)),
		}
		peers = append(peers, cfg.NodeID+"="+cfg.RaftAddr)
		tc.configs = append(tc.configs, cfg)
	}
	for _, cfg := range tc.configs {
		cfg.Peers = strings.Join(peers, ",")
		if configure != nil {
			configure(cfg)
		}
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
	}
	tc.nodes = make([]*node, size)
	for i := range tc.configs {
		tc.start(i)
	}
	t.Cleanup(func() {
		for i := range tc.nodes {
			tc.stop(i)
		}
	})
	tc.waitLeader(15 * time.Second)
	return tc
}

func (tc *testCluster) start(i int) {
	tc.t.Helper()
	logger := testutil.Logger(tc.t)
	if tc.logs != nil {
		logger = slog.New(tc.logs)
	}
	n, err := startNode(tc.configs[i], logger)
	if err != nil {
		tc.t.Fatalf("start %s: %v", tc.configs[i].NodeID, err)
	}
	tc.mu.Lock()
	tc.nodes[i] = n
	tc.mu.Unlock()
}

func (tc *testCluster) stop(i int) {
	tc.mu.Lock()
	n := tc.nodes[i]
	tc.nodes[i] = nil
	tc.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// leader returns the index of the node that leads, or -1.
func (tc *testCluster) leader() int {
	for i := range tc.nodes {
		if n := tc.node(i); n != nil && n.cluster.Shard(0).IsLeader() {
			return i
		}
	}
	return -1
}

func (tc *testCluster) waitLeader(limit time.Duration) int {
	tc.t.Helper()
	leader := -1
	testutil.EventuallyWithin(tc.t, limit, "a leader", func() bool {
		leader = tc.leader()
		return leader >= 0
	})
	return leader
}

// call sends one request to node i and decodes the JSON answer.
func (tc *testCluster) call(i int, method, path string, body any) (int, map[string]any, error) {
	return tc.callWithKey(i, method, path, body, "")
}

// callWithKey is call with an Idempotency-Key (none when key is "").
func (tc *testCluster) callWithKey(i int, method, path string, body any, key string) (int, map[string]any, error) {
	var reader io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		reader = bytes.NewReader(b)
	}
	scheme := tc.scheme
	if scheme == "" {
		scheme = "http"
	}
	req, _ := http.NewRequest(method, scheme+"://"+tc.configs[i].AdminAddr+path, reader)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := tc.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && err != io.EOF {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

// must sends to any live node, retrying 503s and lost answers, and expects want. A retry after
// an answer that may have been applied (a timeout, 503 OutcomeUnknown) accepts the 409 that says
// the first attempt created the record (or, for a transaction, completed it); callers use must
// only for creates that name their ID or reference, or for requests that are safe to repeat.
func (tc *testCluster) must(method, path string, body any, want int) map[string]any {
	tc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	mayHaveApplied := false
	// A change through the Cloud Wallet or GigPay routes carries an Idempotency-Key, so that a
	// retry after a 503 "outcome unknown" answers the first attempt's outcome instead of
	// meeting it (a close of a token found "in progress", say). A batch refuses the header.
	key := ""
	if method != http.MethodGet && (strings.HasPrefix(path, "/projects/") || strings.HasPrefix(path, "/api/v1/")) &&
		!strings.HasSuffix(path, "/transactions/batch") {
		key = fmt.Sprintf("must-%d", tc.mustKeys.Add(1))
	}
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		i := attempt % len(tc.nodes)
		if tc.node(i) == nil {
			continue
		}
		status, out, err := tc.callWithKey(i, method, path, body, key)
		if err == nil && status == want {
			return out
		}
		if err == nil && mayHaveApplied && want == http.StatusCreated && status == http.StatusConflict {
			if strings.HasSuffix(errorCode(out), "Exists") {
				return out
			}
			// A transaction's retry meets its own first attempt: the stored transaction, which
			// is the 201's body when it completed.
			if tx, ok := out["transaction"].(map[string]any); ok && errorCode(out) == "DuplicateReferenceId" && tx["status"] == "completed" {
				return tx
			}
		}
		if err == nil && status != http.StatusServiceUnavailable {
			tc.t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
		}
		mayHaveApplied = mayHaveApplied || err != nil || errorCode(out) == "OutcomeUnknown"
		time.Sleep(50 * time.Millisecond)
	}
	tc.t.Fatalf("%s %s: no answer %d in time", method, path, want)
	return nil
}

// waitConverged waits until every live replica has applied the same index and holds the same
// digest, with the leader's one-time proposals applied on every shard it hosts (the history
// chain started, the rules raised), and returns that digest.
// oneTimeDutiesApplied reports whether n's replica of shard k has applied what the shard's
// leader proposes once by itself (leaderDuties: the history chain's start, the rules raise).
// Until then those proposals can land at any moment, as entries of the shard's log.
func oneTimeDutiesApplied(n *node, k int) bool {
	machine, ok := n.cluster.StateMachine(k).(*fsm.Machine)
	return !ok || (machine.HistoryChainStarted() && machine.Rules() >= fsm.RulesVersion)
}

func (tc *testCluster) waitConverged(limit time.Duration) string {
	tc.t.Helper()
	var digests []string
	var applied []uint64
	converged := testutil.Wait(limit, func() bool {
		digests, applied = nil, nil
		for i := range tc.nodes {
			n := tc.node(i)
			if n == nil {
				continue
			}
			// Settled means the leader's own one-time proposals are in too: a digest taken before
			// a shard's history chain starts or its rules are raised would change when they are
			// (a restart's new leader proposes them if the old one had not).
			for _, k := range n.cluster.HostedShards() {
				if !oneTimeDutiesApplied(n, k) {
					return false
				}
			}
			d, index, err := n.StateDigest(context.Background())
			if err != nil {
				tc.t.Fatal(err)
			}
			digests = append(digests, d)
			applied = append(applied, index)
		}
		same := true
		for i := range digests {
			same = same && digests[i] == digests[0] && applied[i] == applied[0]
		}
		return same
	})
	if !converged {
		tc.t.Fatalf("replicas did not converge: applied %v", applied)
	}
	return digests[0]
}

// transferOutcome is what a client finally learned about one reference ID.
type transferOutcome int

const (
	outcomeAcknowledged transferOutcome = iota + 1 // 201, or 409 duplicate of a completed one
	outcomeFailed                                  // 422: recorded as failed
	outcomeUnknown                                 // gave up while the answer was unknown
)

// Three replicas on loopback: the leader is killed under load and later restarted; no
// acknowledged transaction is lost, none applies twice, all replicas end with equal digests,
// and a full stop and start keeps the same state.
func TestThreeReplicasSurviveLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	const walletCount = 16
	const fundEach = 1_000_000
	tc.must("POST", "/projects", map[string]any{"id": "bank", "name": "bank"}, 201)
	tc.must("POST", "/projects/bank/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	var wallets []string
	var fund []map[string]any
	for i := 0; i < walletCount; i++ {
		w := tc.must("POST", "/projects/bank/system-wallets", map[string]any{"assetId": "usd"}, 201)
		wallets = append(wallets, w["id"].(string))
		fund = append(fund, map[string]any{"type": "issue", "to": w["id"], "amount": fundEach})
	}
	tc.must("POST", "/projects/bank/transactions", map[string]any{"referenceId": "fund", "operations": fund}, 201)

	// Load: clients send transfers with fresh references to every node, retrying the same
	// reference on any answer that leaves the outcome unknown.
	var (
		mu       sync.Mutex
		outcomes = map[string]transferOutcome{}
		sent     atomic.Int64
	)
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const clientCount = 12
	for c := 0; c < clientCount; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				ref := fmt.Sprintf("c%d-%d", c, k)
				from, to := wallets[(c+k)%walletCount], wallets[(c*7+k*3+1)%walletCount]
				if from == to {
					continue
				}
				body := map[string]any{"referenceId": ref, "operations": []map[string]any{
					{"type": "transfer", "from": from, "to": to, "amount": 1 + k%50}}}
				outcome := outcomeUnknown
				for attempt := 0; attempt < 200; attempt++ {
					i := (c + k + attempt) % 3
					if tc.node(i) == nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					sent.Add(1)
					status, out, err := tc.call(i, "POST", "/projects/bank/transactions", body)
					if err != nil || status == http.StatusServiceUnavailable {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					switch {
					case status == 201:
						outcome = outcomeAcknowledged
					case status == 409 && out["transaction"].(map[string]any)["status"] == "completed":
						outcome = outcomeAcknowledged
					case status == 422 || status == 409:
						outcome = outcomeFailed
					default:
						t.Errorf("%s: unexpected %d %v", ref, status, out)
					}
					break
				}
				mu.Lock()
				outcomes[ref] = outcome
				mu.Unlock()
			}
		}(c)
	}
	acknowledged := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o == outcomeAcknowledged {
				n++
			}
		}
		return n
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "load before the kill", func() bool { return acknowledged() >= 300 })
	old := tc.leader()
	tc.stop(old)
	before := acknowledged()
	testutil.EventuallyWithin(t, clusterWaitMax, "a new leader", func() bool { l := tc.leader(); return l >= 0 && l != old })
	testutil.EventuallyWithin(t, clusterWaitMax, "load after the kill", func() bool { return acknowledged() >= before+300 })
	tc.start(old)
	testutil.EventuallyWithin(t, clusterWaitMax, "load after the restart", func() bool { return acknowledged() >= before+600 })
	stopLoad()
	wg.Wait()
	if t.Failed() {
		return
	}
	digest := tc.waitConverged(30 * time.Second)

	// Every acknowledged transfer is there exactly once; every failure was recorded as one;
	// the money is all there.
	for i, n := range tc.nodes {
		seen := map[string]string{}
		for page := 1; ; page++ {
			items, more, err := n.ledger(0).ListTransactions("bank", ledger.TimeRange{FromMs: 0, ToMs: 1 << 62}, ledger.PageRequest{Page: page, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range items {
				if _, dup := seen[tx.ReferenceID]; dup {
					t.Fatalf("node %d: reference %s applied twice", i, tx.ReferenceID)
				}
				seen[tx.ReferenceID] = tx.Status.String()
			}
			if !more {
				break
			}
		}
		for ref, o := range outcomes {
			switch got := seen[ref]; {
			case o == outcomeAcknowledged && got != "completed":
				t.Fatalf("node %d: acknowledged %s is %q", i, ref, got)
			case o == outcomeFailed && got != "failed":
				t.Fatalf("node %d: failed %s is %q", i, ref, got)
			}
		}
		var total fsm.Amount
		for _, id := range wallets {
			w, err := n.ledger(0).GetWallet("bank", id)
			if err != nil {
				t.Fatal(err)
			}
			total, _ = total.Add(w.Balance)
		}
		if total != fsm.AmountFromUint64(walletCount*fundEach) {
			t.Fatalf("node %d: total %s", i, total)
		}
		if err := n.ledger(0).CheckInvariants(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	t.Logf("%d references, %d acknowledged, %d requests sent; leader %s was killed and restarted",
		len(outcomes), acknowledged(), sent.Load(), tc.configs[old].NodeID)

	// Stop all three, start again: the same state.
	for i := range tc.nodes {
		tc.stop(i)
	}
	for i := range tc.nodes {
		tc.start(i)
	}
	tc.waitLeader(15 * time.Second)
	if after := tc.waitConverged(30 * time.Second); after != digest {
		t.Fatal("state changed across a full restart")
	}
	tc.must("GET", "/projects/bank/wallets/"+wallets[0], nil, 200)
}

// A leader whose followers are gone holds requests that can never commit; stopping it must not
// wait for them beyond the grace period.
func TestLeaderStopsWhileRequestsWaitForQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	tc.must("POST", "/projects", map[string]any{"id": "p", "name": "p"}, 201)
	stuck := make(chan struct{}, 4)
	var leader int
	// The leader steps down once its lease (150 ms here) passes without a follower; on a loaded
	// machine that can come before the requests do (a CI run beside a probe), and they then fail
	// at once instead of waiting in the shard. That round proves nothing: start the followers
	// again and repeat until the requests wait in the shard (bounded).
	for attempt := 1; ; attempt++ {
		leader = tc.waitLeader(10 * time.Second)
		for i := range tc.nodes {
			if i != leader {
				tc.stop(i)
			}
		}
		for k := 0; k < 4; k++ {
			go func(k int) {
				defer func() { stuck <- struct{}{} }()
				tc.call(leader, "POST", "/projects", map[string]any{"id": fmt.Sprintf("q%d-%d", attempt, k), "name": "q"})
			}(k)
		}
		inShard := false
		testutil.EventuallyWithin(t, 10*time.Second, "the requests in the shard, or the leader stepped down", func() bool {
			shard := tc.node(leader).cluster.Shard(0)
			stats := shard.Stats()
			inShard = stats.InflightBatches > 0 || stats.QueueDepth > 0
			return inShard || !shard.IsLeader()
		})
		if inShard {
			break
		}
		if attempt == 5 {
			t.Fatal("the leader stepped down before the requests reached its shard, five times")
		}
		for k := 0; k < 4; k++ {
			select {
			case <-stuck:
			case <-time.After(10 * time.Second):
				t.Fatal("a request to a node that stepped down is still waiting")
			}
		}
		for i := range tc.nodes {
			if i != leader {
				tc.start(i)
			}
		}
	}
	tc.configs[leader].ShutdownMax = 500 * time.Millisecond
	start := time.Now()
	tc.stop(leader)
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("stopping the leader took %v", took)
	}
	for k := 0; k < 4; k++ {
		select {
		case <-stuck:
		case <-time.After(10 * time.Second):
			t.Fatal("a request is still waiting after the node stopped")
		}
	}
}

// errorCode is the code of an error envelope, or "".
func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}
