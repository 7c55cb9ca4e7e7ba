package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/bench"
	"github.com/gigaledger/gigaledger/fsm"
)

func TestServeConfig(t *testing.T) {
	parse := func(args ...string) (*serveConfig, error) {
		t.Setenv(adminTokenEnv, "")
		return parseServeFlags(args, &bytes.Buffer{})
	}
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "data" || cfg.AdminAddr != "127.0.0.1:8081" || cfg.PublicAddr != "127.0.0.1:8082" || cfg.NodeID != "n1" {
		t.Fatalf("defaults: %+v", cfg)
	}
	if peers, _ := cfg.peers(); len(peers) != 1 || peers[0].Addr != cfg.RaftAddr {
		t.Fatalf("default peers %v", peers)
	}
	// No token: loopback only, refused elsewhere.
	if _, err := parse("--admin-addr", "0.0.0.0:8081"); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("non-loopback without token: %v", err)
	}
	if _, err := parse("--admin-addr", "0.0.0.0:8081", "--admin-token", "s3cret"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(adminTokenEnv, "from-env")
	if cfg, err := parseServeFlags([]string{"--public-addr", "10.1.2.3:80"}, &bytes.Buffer{}); err != nil || cfg.AdminToken != "from-env" {
		t.Fatalf("token from env: %v %+v", err, cfg)
	}
	// Peers must be well formed and name this node.
	for _, bad := range []string{"n1", "n1=x", "n2=127.0.0.1:1", "n1=127.0.0.1:1,n1=127.0.0.1:2"} {
		if _, err := parse("--peers", bad); err == nil {
			t.Errorf("--peers %q accepted", bad)
		}
	}
	// This node's --peers address must be where --raft-addr listens (found by a probe: a node
	// listening elsewhere started and was never reached); a name may be its IP (Kubernetes).
	for _, tc := range []struct {
		raft, peers string
		ok          bool
	}{
		{"127.0.0.1:7001", "n1=127.0.0.1:7001,n2=127.0.0.1:7002", true},
		{"127.0.0.1:7001", "n1=127.0.0.1:7009,n2=127.0.0.1:7002", false},
		{"127.0.0.1:7001", "n1=127.0.0.2:7001,n2=127.0.0.1:7002", false},
		{"0.0.0.0:7001", "n1=10.0.0.5:7001,n2=10.0.0.6:7001", true},
		{"10.0.0.5:7001", "n1=gigaledger-0.gigaledger:7001,n2=gigaledger-1.gigaledger:7001", true},
	} {
		if _, err := parse("--raft-addr", tc.raft, "--peers", tc.peers, "--admin-token", "t", "--insecure-cluster"); (err == nil) != tc.ok {
			t.Errorf("--raft-addr %s --peers %s: %v, want accepted %v", tc.raft, tc.peers, err, tc.ok)
		}
	}
	// GigPay: on by default in project gigpay, production links; a project the ledger accepts
	// (not GigaWallet's) and an environment that is one DNS label.
	if cfg.GigPayProject != "gigpay" || cfg.GigPayEnv != "" {
		t.Fatalf("GigPay defaults: project %q env %q", cfg.GigPayProject, cfg.GigPayEnv)
	}
	for _, good := range [][]string{
		{"--gigpay-project", "pay_1.x-y", "--gigpay-env", "staging"},
		{"--gigpay-env", "a"},
		{"--gigpay-env", "eu-west-1"},
		{"--gigpay-env", strings.Repeat("a", 63)},
		{"--gigpay-project", strings.Repeat("p", 30)},
		{"--gigpay-project", ""}, // the default, as in a configuration built in code
	} {
		if cfg, err := parse(good...); err != nil || !fsm.ValidID(cfg.gigPayProject(), fsm.IDMaxLength) {
			t.Errorf("%v refused: %v", good, err)
		}
	}
	for _, bad := range [][]string{
		{"--gigpay-project", "pay ments"},
		{"--gigpay-project", "pay/x"},
		{"--gigpay-project", strings.Repeat("p", 31)},
		{"--gigpay-project", "gigawallet"},
		{"--gigpay-env", "Staging"},
		{"--gigpay-env", "-dev"},
		{"--gigpay-env", "dev-"},
		{"--gigpay-env", "dev.eu"},
		{"--gigpay-env", "dev_1"},
		{"--gigpay-env", "dev/x"},
		{"--gigpay-env", strings.Repeat("a", 64)},
	} {
		if _, err := parse(bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
	// A config file sets what flags do not; flags win; unknown keys are refused.
	file := filepath.Join(t.TempDir(), "node.json")
	os.WriteFile(file, []byte(`{"node-id":"n2","data-dir":"d2","peers":"n1=127.0.0.1:7001,n2=127.0.0.1:7002","raft-addr":"127.0.0.1:7002"}`), 0o600)
	cfg, err = parse("--config", file, "--data-dir", "override")
	if err != nil || cfg.NodeID != "n2" || cfg.DataDir != "override" {
		t.Fatalf("config file: %v %+v", err, cfg)
	}
	os.WriteFile(file, []byte(`{"nodeid":"n2"}`), 0o600)
	if _, err := parse("--config", file); err == nil {
		t.Fatal("unknown config key accepted")
	}
}

// The bench harness against a real node, for a few seconds, so that the two never drift
// apart: every request must succeed.
func TestBenchSmokeAgainstNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	tc := newTestCluster(t, 1)
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := bench.Main(ctx, []string{"--target", "http://" + tc.configs[0].AdminAddr, "--clients", "8",
		"--duration", "2s", "--wallets", "50", "--json", "--progress", "off"}, &out, &errs)
	if code != 0 {
		t.Fatalf("bench exit %d: %s", code, errs.String())
	}
	var report map[string]any
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("bench --json output: %v\n%s", err, out.String())
	}
	requests, _ := report["requests"].(float64)
	ok, _ := report["ok"].(float64)
	if requests < 10 || ok != requests {
		t.Fatalf("bench smoke: %v requests, %v ok", report["requests"], report["ok"])
	}
	t.Logf("bench smoke: %.0f requests, all ok", requests)
}
