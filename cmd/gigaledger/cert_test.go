package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

// TestCertCommands: `gigaledger cert` makes a CA and a node folder that --tls-dir loads for
// the node it names, refuses to overwrite keys without --overwrite, and the node refuses a
// folder made for another node ID.
func TestCertCommands(t *testing.T) {
	dir := t.TempDir()
	runCert := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := run(append([]string{"cert"}, args...), &out, &errs)
		return code, out.String() + errs.String()
	}
	if code, out := runCert("create-ca", "--dir", dir); code != 0 {
		t.Fatalf("create-ca: %d %s", code, out)
	}
	if code, out := runCert("create-ca", "--dir", dir); code == 0 || !strings.Contains(out, "--overwrite") {
		t.Fatalf("create-ca over an existing CA: %d %s", code, out)
	}
	if code, out := runCert("create-node", "--dir", dir, "--node-id", "n1", "--hosts", "127.0.0.1,node1.example"); code != 0 {
		t.Fatalf("create-node: %d %s", code, out)
	}
	if code, out := runCert("create-node", "--dir", dir, "--node-id", "n1", "--hosts", "127.0.0.1"); code == 0 || !strings.Contains(out, "--overwrite") {
		t.Fatalf("create-node over an existing node: %d %s", code, out)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "n1", "node.key"))
	if code, out := runCert("create-node", "--dir", dir, "--node-id", "n1", "--keep-existing"); code != 0 || !strings.Contains(out, "kept") {
		t.Fatalf("create-node --keep-existing: %d %s", code, out)
	}
	if code, out := runCert("create-ca", "--dir", dir, "--keep-existing"); code != 0 || !strings.Contains(out, "kept") {
		t.Fatalf("create-ca --keep-existing: %d %s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "n1", "node.key")); !bytes.Equal(before, after) {
		t.Fatal("--keep-existing replaced the node key")
	}
	if code, out := runCert("create-node", "--dir", dir, "--node-id", "n1", "--hosts", "127.0.0.1", "--overwrite"); code != 0 {
		t.Fatalf("create-node --overwrite: %d %s", code, out)
	}
	for _, name := range []string{tlsconfig.CACertFile, tlsconfig.NodeCertFile, tlsconfig.NodeKeyFile, tlsconfig.GossipKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, "n1", name)); err != nil {
			t.Fatalf("node folder lacks %s: %v", name, err)
		}
	}

	logger := testutil.Logger(t)
	cfg := &serveConfig{NodeID: "n1", TLSDir: filepath.Join(dir, "n1")}
	node, err := loadNodeTLS(cfg, logger)
	if err != nil || node.ID != "n1" || !node.HasGossipSecret() {
		t.Fatalf("load the made folder: %v", err)
	}
	cfg.NodeID = "n2"
	if _, err := loadNodeTLS(cfg, logger); err == nil || !strings.Contains(err.Error(), `names node "n1"`) {
		t.Fatalf("n2 started with n1's certificate: %v", err)
	}
	// The three-file form reads gossip.key beside the certificate.
	cfg = &serveConfig{NodeID: "n1", TLSCA: filepath.Join(dir, "ca.crt"), TLSCert: filepath.Join(dir, "n1", "node.crt"),
		TLSKey: filepath.Join(dir, "n1", "node.key")}
	if node, err := loadNodeTLS(cfg, logger); err != nil || !node.HasGossipSecret() {
		t.Fatalf("--tls-ca, --tls-cert, --tls-key: %v", err)
	}
	// A gossiping node without the gossip secret does not start: a key derived from the public
	// CA certificate alone would let anyone holding it join the gossip.
	if err := os.Remove(filepath.Join(dir, "n1", "gossip.key")); err != nil {
		t.Fatal(err)
	}
	cfg.GossipAddr = "127.0.0.1:1"
	if _, err := loadNodeTLS(cfg, logger); err == nil || !strings.Contains(err.Error(), "--gossip-key") {
		t.Fatalf("gossip without a gossip secret: %v", err)
	}
	cfg.GossipAddr = ""
	if _, err := loadNodeTLS(cfg, logger); err != nil {
		t.Fatalf("static peers need no gossip secret: %v", err)
	}
}

// TestClusterAddressesMustBeLoopbackWithoutTLS: without TLS a node refuses any non-loopback
// cluster address, naming it and the flags that fix it; --insecure-cluster (logged at WARN) or
// TLS lets it start.
func TestClusterAddressesMustBeLoopbackWithoutTLS(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	parse := func(args ...string) error {
		_, err := parseServeFlags(args, &bytes.Buffer{})
		return err
	}
	for _, args := range [][]string{
		{"--raft-addr", "0.0.0.0:7001"},
		{"--peers", "n1=127.0.0.1:7001,n2=10.0.0.2:7001"},
		{"--gossip-addr", "0.0.0.0:7946"},
		{"--gossip-addr", "127.0.0.1:7946", "--join", "node2.example:7946"},
	} {
		err := parse(args...)
		if err == nil || !strings.Contains(err.Error(), "not loopback") || !strings.Contains(err.Error(), "--tls-dir") ||
			!strings.Contains(err.Error(), "--insecure-cluster") {
			t.Errorf("%v: %v", args, err)
			continue
		}
		if err := parse(append(args, "--insecure-cluster")...); err != nil {
			t.Errorf("%v --insecure-cluster: %v", args, err)
		}
		if err := parse(append(args, "--tls-dir", "certs/n1")...); err != nil {
			t.Errorf("%v --tls-dir: %v", args, err)
		}
	}
	if err := parse(); err != nil {
		t.Fatalf("loopback defaults without TLS: %v", err)
	}
	for _, args := range [][]string{
		{"--tls-dir", "d", "--tls-ca", "ca.crt"},
		{"--tls-ca", "ca.crt", "--tls-cert", "node.crt"},
		{"--http-tls-cert", "h.crt"},
		{"--gossip-key", "g.key"},
	} {
		if err := parse(args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}

	var logs bytes.Buffer
	cfg := &serveConfig{NodeID: "n1", RaftAddr: "0.0.0.0:7001", InsecureCluster: true}
	if node, err := loadNodeTLS(cfg, newLogger("info", &logs)); node != nil || err != nil {
		t.Fatalf("insecure: %v %v", node, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "--insecure-cluster") {
		t.Fatalf("--insecure-cluster was not logged at WARN: %s", logs.String())
	}
}
