package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveNodeDataKeepsWhatACheckNeeds: after a passing run, the nodes' data directories and
// binary go; the node logs, certificates, history and anything else stay.
func TestRemoveNodeDataKeepsWhatACheckNeeds(t *testing.T) {
	out := t.TempDir()
	write := func(rel string) {
		t.Helper()
		path := filepath.Join(out, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"nodes/n1/data/shard-0/000001.sst", "nodes/n12/raftlog/log", "nodes/n1.log",
		"nodes/certs/ca.pem", "nodes/notes/x", "history.jsonl", nodeBinaryName} {
		write(rel)
	}
	if err := removeNodeData(out, filepath.Join(out, nodeBinaryName)); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{"nodes/n1": false, "nodes/n12": false, nodeBinaryName: false,
		"nodes/n1.log": true, "nodes/certs/ca.pem": true, "nodes/notes/x": true, "history.jsonl": true} {
		_, err := os.Stat(filepath.Join(out, rel))
		if got := err == nil; got != want {
			t.Errorf("%s exists: %v, want %v", rel, got, want)
		}
	}
}
