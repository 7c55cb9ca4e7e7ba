package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// testPlacement places wallets IDs "w<slot>-<i>" with slots i*7 mod SlotCount on shards.
func testPlacement(t *testing.T, wallets, shards int) *WalletPlacement {
	t.Helper()
	ids := make([]string, wallets)
	for index := range ids {
		ids[index] = "w" + keyspace.SlotHex(keyspace.Slot(index*7%keyspace.SlotCount)) + "x"
	}
	placement, err := newWalletPlacement(ids, shards)
	if err != nil {
		t.Fatal(err)
	}
	return placement
}

// With a share asked, transfers go between shards by that share and within one shard
// otherwise, both wallets uniform; the span says which.
func TestTransfersCrossShardsByTheShareAsked(t *testing.T) {
	for _, share := range []float64{0, 0.1, 1} {
		config := testScenario(ScenarioTransfer)
		config.Wallets, config.CrossShare = 400, &share
		config.Placement = testPlacement(t, 400, 4)
		if err := config.Validate(); err != nil {
			t.Fatal(err)
		}
		generator := NewGenerator(config, 1, 0)
		const requests = 20_000
		cross := 0
		sources := map[int]bool{}
		for range requests {
			request := generator.Next()
			operation := request.Operations[0]
			if operation.FromWallet == operation.ToWallet {
				t.Fatalf("a transfer from %d to itself", operation.FromWallet)
			}
			crosses := config.Placement.ShardOf(operation.FromWallet) != config.Placement.ShardOf(operation.ToWallet)
			if crosses != (request.Span == spanCrossShard) || request.Span == "" {
				t.Fatalf("span %q of a transfer %d→%d (crosses %v)", request.Span, operation.FromWallet, operation.ToWallet, crosses)
			}
			if crosses {
				cross++
			}
			sources[operation.FromWallet] = true
		}
		if got := float64(cross) / requests; got < share-0.01 || got > share+0.01 {
			t.Errorf("share %v: %.3f of transfers crossed shards", share, got)
		}
		if len(sources) < 390 {
			t.Errorf("share %v: only %d of 400 wallets sent", share, len(sources))
		}
	}
}

// On one shard nothing can cross: the share does not apply, and the report says so.
func TestCrossShareOnOneShardIsNotApplicable(t *testing.T) {
	share := 0.5
	config := testScenario(ScenarioTransfer)
	config.CrossShare, config.Placement = &share, testPlacement(t, 50, 1)
	generator := NewGenerator(config, 1, 0)
	rec := newRecorder(1, false)
	for range 100 {
		request := generator.Next()
		if request.Span != spanSingleShard {
			t.Fatalf("span %q on one shard", request.Span)
		}
		rec.record(0, time.Time{}, 1, Outcome{Class: OutcomeOK, Kind: "201", Phases: []Phase{{Name: request.Span, Latency: 1}}})
	}
	result := buildResult("gigaledger", RunConfig{Scenario: config, Clients: 1}, rec, 1)
	if result.Shards != 1 || !strings.HasPrefix(result.Cross, "n/a") || result.SpannedRequests != 100 || result.CrossShardRequests != 0 {
		t.Fatalf("result shards %d cross %q spanned %d crossed %d", result.Shards, result.Cross, result.SpannedRequests, result.CrossShardRequests)
	}
}

// With a placement, every funding transaction issues to the wallets of one shard.
func TestFundingStaysOnOneShardPerTransaction(t *testing.T) {
	placement := testPlacement(t, 250, 4)
	requests := FundingRequests(ScenarioTransfer, "r", 250, placement)
	seen := map[int]bool{}
	for _, request := range requests {
		if len(request.Operations) > operationsPerTransactionMax {
			t.Fatalf("%d operations in one transaction", len(request.Operations))
		}
		shard := placement.ShardOf(request.Operations[0].ToWallet)
		for _, operation := range request.Operations {
			if placement.ShardOf(operation.ToWallet) != shard || seen[operation.ToWallet] {
				t.Fatalf("funding %s: wallet %d of shard %d beside shard %d (or twice)", request.ReferenceID, operation.ToWallet, placement.ShardOf(operation.ToWallet), shard)
			}
			seen[operation.ToWallet] = true
		}
	}
	if len(seen) != 250 {
		t.Fatalf("funded %d wallets, want 250", len(seen))
	}
}

func TestSumCountersReadsEveryLabelSet(t *testing.T) {
	text := `# HELP gigaledger_raftlog_fsyncs_total x
# TYPE gigaledger_raftlog_fsyncs_total counter
gigaledger_raftlog_fsyncs_total{store="raft"} 10
gigaledger_raftlog_fsyncs_total{store="other",path="a}b"} 5.5
gigaledger_raftlog_fsyncs_total_other 100
gigaledger_shard_batch_commands_count{shard="0"} 3
gigaledger_shard_batch_commands_count{shard="1"} 4
gigaledger_shard_batch_commands_sum{shard="1"} 40
`
	sums, err := sumCounters(strings.NewReader(text), metricLogFsyncs, metricLogEntries, "gigaledger_missing")
	if err != nil {
		t.Fatal(err)
	}
	if sums[metricLogFsyncs] != 15.5 || sums[metricLogEntries] != 7 {
		t.Fatalf("sums %v", sums)
	}
	if _, ok := sums["gigaledger_missing"]; ok {
		t.Fatal("a missing counter has a sum")
	}
}

// The comparison of sharded runs shows shards, the shares, the spans' latencies and the
// per-node counters, n/a where a node does not count.
func TestComparisonShowsShardsAndNodes(t *testing.T) {
	fsyncs, entries := 412.0, 96.0
	sharded := &Result{System: "gigaledger", Scenario: "transfer", Clients: 64, OKPerSecond: 1000, Shards: 4, Cross: "10%",
		SpannedRequests: 1000, CrossShardRequests: 101,
		Phases: []PhaseLatency{{Name: spanCrossShard, Count: 101, Latency: Latency{P50Ms: 20, P99Ms: 80}},
			{Name: spanSingleShard, Count: 899, Latency: Latency{P50Ms: 9, P99Ms: 30}}},
		Nodes: []NodeFigures{{Target: "a", FsyncsPerSecond: &fsyncs, LogEntriesPerSecond: &entries}, {Target: "b"}}}
	one := &Result{System: "gigaledger", Scenario: "transfer", Clients: 64, OKPerSecond: 800, Shards: 1, Cross: "n/a: 1 shard(s)"}
	var out bytes.Buffer
	if err := WriteComparison(&out, []*Result{sharded, one}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shards", "10.1%", "9.0/30.0", "20.0/80.0", "412/n/a", "96/n/a", "1.25"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
	}
}

// Against a sharded cluster: setup learns the shard count and the wallets' shards, funds each
// shard's wallets apart (the fake refuses funding across shards), and the transfers cross
// shards by the share asked; without a shard count --cross is refused.
func TestSmokeAgainstAShardedFake(t *testing.T) {
	ledger := newFakeLedger("")
	ledger.shardCount = 4
	server := httptest.NewServer(ledger.handler())
	defer server.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"--target", server.URL, "--clients", "4", "--wallets", "200", "--duration", "300ms", "--cross", "0.25", "--json", "--progress", "off"}
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var result Result
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
		t.Fatal(err)
	}
	ledger.mutex.Lock()
	crossed, transfers := ledger.crossTransfers, ledger.transfers
	ledger.mutex.Unlock()
	if result.Shards != 4 || result.Cross != "25%" || result.Errors != 0 || result.SpannedRequests != result.Requests ||
		result.CrossShardRequests != int64(crossed) || int64(transfers) != result.OK {
		t.Fatalf("result shards %d cross %q errors %d, spanned %d of %d, crossed %d (the fake saw %d of %d)",
			result.Shards, result.Cross, result.Errors, result.SpannedRequests, result.Requests, result.CrossShardRequests, crossed, transfers)
	}
	if share := float64(crossed) / float64(transfers); transfers < 200 || share < 0.15 || share > 0.35 {
		t.Fatalf("%d of %d transfers crossed shards, asked 25%%", crossed, transfers)
	}

	ledger.mutex.Lock()
	ledger.shardCount = 0
	ledger.mutex.Unlock()
	stdout.Reset()
	stderr.Reset()
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitFailure || !strings.Contains(stderr.String(), "--cross") {
		t.Fatalf("--cross against a node without a shard count: exit %d: %s", code, stderr.String())
	}
}

// The cluster's CPU per request sums every node's cores over the completed rate, and is n/a
// when one node's CPU is.
func TestClusterCPUPerRequest(t *testing.T) {
	a, b := 0.5, 0.25
	result := &Result{OKPerSecond: 1500, Nodes: []NodeFigures{{Target: "a", CPUCores: &a}, {Target: "b", CPUCores: &b}}}
	if us, ok := clusterCPUPerRequest(result); !ok || us != 500 {
		t.Fatalf("%v µs, %v; want 500", us, ok)
	}
	result.Nodes = append(result.Nodes, NodeFigures{Target: "c"})
	if _, ok := clusterCPUPerRequest(result); ok {
		t.Fatal("a node without CPU figures gave a cluster figure")
	}
	var out bytes.Buffer
	result.Nodes = result.Nodes[:2]
	if err := WriteTable(&out, result); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "CPU cores 0.50") || !strings.Contains(out.String(), "500 µs") {
		t.Fatalf("report:\n%s", out.String())
	}
}
