package main

import (
	"bytes"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// healthcheck exits 0 with what is ready when /readyz is 200, and 1 with the node's reason
// (or the connection error) otherwise; the admin /readyz names the shard without a leader.
func TestHealthcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	t.Setenv(adminTokenEnv, "")
	check := func(addr string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run([]string{"healthcheck", "--addr", addr, "--timeout", "5s"}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	tc := newTestCluster(t, 1)
	code, out, errs := check(tc.configs[0].AdminAddr)
	if code != 0 || !strings.Contains(out, "ready: node n1: every hosted shard has a leader (shard 0 led by n1)") || errs != "" {
		t.Fatalf("ready node: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// A node whose two peers are not running has no leader: not ready, and it says why.
	lonely := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 3, raftTiming: testRaftTiming}
	lonely.Peers = "n1=" + lonely.RaftAddr + ",n2=" + testutil.FreeAddr(t) + ",n3=" + testutil.FreeAddr(t)
	if err := lonely.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(lonely, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	code, out, errs = check(lonely.AdminAddr)
	if code != 1 || out != "" || !strings.Contains(errs, "503 Service Unavailable: not ready: shard 0 has no leader") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("leaderless node: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Nothing listening: 1, and the connection error in one line.
	code, _, errs = check(testutil.FreeAddr(t))
	if code != 1 || !strings.Contains(errs, "connection refused") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("no node: exit %d, stderr %q", code, errs)
	}
	if code := run([]string{"healthcheck", "extra"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("stray argument: exit %d", code)
	}
}

// version and --version print the module version and the VCS revision from the build
// information, falling back to "(devel)".
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var stdout bytes.Buffer
		if code := run([]string{arg}, &stdout, &bytes.Buffer{}); code != 0 || !strings.HasPrefix(stdout.String(), "gigaledger ") || !strings.Contains(stdout.String(), "revision: ") {
			t.Fatalf("%s: exit %d, %q", arg, code, stdout.String())
		}
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/gigaledger/gigaledger", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T05:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "gigaledger (devel)\nmodule:   github.com/gigaledger/gigaledger\nrevision: 0123abcd\ntime:     2026-11-30T05:00:00Z\n" +
		"modified: true (uncommitted changes in the build's work tree)\ngo:       go1.26.8\n"
	if got := formatVersion("", info); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := formatVersion("v1.2.3", &debug.BuildInfo{}); !strings.HasPrefix(got, "gigaledger v1.2.3\n") || !strings.Contains(got, "revision: unknown") {
		t.Fatalf("release without VCS info: %q", got)
	}
	if got := formatVersion("", &debug.BuildInfo{}); !strings.HasPrefix(got, "gigaledger (devel)\n") {
		t.Fatalf("no build info: %q", got)
	}
}
