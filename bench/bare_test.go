package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/bench/bare"
)

// The harness runs unchanged against the bare-HTTP server (in process): setup (project, asset,
// customers, wallets, the shard count, funding) and a few measured requests of the ledger
// scenarios, every one ok, reported as system bare with the harness's own CPU.
func TestHarnessAgainstBareServer(t *testing.T) {
	server := httptest.NewServer(bare.NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	defer server.Close()
	for _, test := range []struct {
		name string
		args []string
	}{
		{"transfer", []string{"--scenario", "transfer"}},
		{"transfer batch", []string{"--scenario", "transfer", "--batch", "10"}},
		{"multi-op", []string{"--scenario", "multi-op"}},
		{"reads", []string{"--scenario", "reads"}},
	} {
		t.Run(test.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"--target", server.URL, "--system", "bare", "--clients", "4", "--wallets", "20",
				"--ops", "40", "--duration", "1m", "--json", "--progress", "off"}, test.args...)
			if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var result Result
			if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
				t.Fatal(err)
			}
			if result.System != systemBare || result.Requests != 40 || result.OK != 40 || result.Shards != 1 {
				t.Errorf("system %q, %d requests, %d ok, %d shards; outcomes %+v", result.System, result.Requests, result.OK, result.Shards, result.Outcomes)
			}
			if test.name == "transfer batch" && result.Transfers != 400 {
				t.Errorf("%d transfers in 40 batches of 10", result.Transfers)
			}
			if result.HarnessCPUCores == nil || *result.HarnessCPUCores < 0 {
				t.Errorf("harness CPU %v", result.HarnessCPUCores)
			}
		})
	}
	// What the bare server does not serve is refused before anything is sent.
	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"--target", server.URL, "--system", "bare", "--scenario", "invoice"}, io.Discard, &stderr); code != exitUsage {
		t.Errorf("--system bare --scenario invoice: exit %d, %s", code, stderr.String())
	}
}

// With a bare-HTTP run among the results, the comparison keeps the last other system as the
// baseline and adds each row's rate over the bare run of its scenario; every row shows the
// server's and the harness's CPU.
func TestComparisonShowsBareHTTPRatio(t *testing.T) {
	harness, node := 0.8, 0.5
	gigaledger := &Result{System: systemGigaLedger, Scenario: ScenarioTransfer, OKPerSecond: 6000, Transfers: 90000, TransfersPerSecond: 6000,
		Nodes: []NodeFigures{{Target: "a", CPUCores: &node}, {Target: "b", CPUCores: &node}}, HarnessCPUCores: &harness}
	postgresql := &Result{System: "postgresql", Scenario: ScenarioTransfer, OKPerSecond: 2000, Transfers: 30000, TransfersPerSecond: 2000}
	bareRun := &Result{System: systemBare, Scenario: ScenarioTransfer, OKPerSecond: 40000, Transfers: 600000, TransfersPerSecond: 40000,
		HarnessCPUCores: &harness}
	var out bytes.Buffer
	if err := WriteComparison(&out, []*Result{gigaledger, postgresql, bareRun}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "x postgresql") || !strings.Contains(lines[0], "x bare HTTP") ||
		!strings.Contains(lines[0], "harness cores") {
		t.Fatalf("comparison:\n%s", out.String())
	}
	for index, want := range [][]string{
		{"3.00", "0.150", "1.00", "0.80"}, // gigaledger: ×3 PostgreSQL, 15% of bare HTTP, 2 nodes of 0.5 core
		{"1.00", "0.050"},                 // postgresql
		{"20.00", "1.000", "0.80"},        // bare
	} {
		for _, cell := range want {
			if !strings.Contains(" "+strings.Join(strings.Fields(lines[index+1]), " ")+" ", " "+cell+" ") {
				t.Errorf("row %d lacks %s:\n%s", index+1, cell, out.String())
			}
		}
	}
}

// A run of several scenarios compares each row with the baseline system's run of the same
// scenario, not with the baseline's last row whatever its scenario.
func TestComparisonRatioPerScenario(t *testing.T) {
	results := []*Result{
		{System: "gigaledger", Scenario: ScenarioTransfer, OKPerSecond: 4000},
		{System: "gigaledger", Scenario: "reads", OKPerSecond: 10000},
		{System: "postgresql", Scenario: ScenarioTransfer, OKPerSecond: 2000},
		{System: "postgresql", Scenario: "reads", OKPerSecond: 20000},
	}
	var out bytes.Buffer
	if err := WriteComparison(&out, results); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, want := range []string{"2.00", "0.50", "1.00", "1.00"} {
		if !strings.Contains(lines[i+1], " "+want+" ") {
			t.Errorf("row %d lacks the ratio %s:\n%s", i, want, out.String())
		}
	}
}
