package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// A second process (here a second node) on a live node's data directory is refused before it
// touches anything. Found by a probe: a second serve, refused only later, had added write-ahead
// log segments to the live node's raftlog, and the live node then refused to start.
func TestASecondNodeOnALiveDataDirectoryIsRefusedAtOnce(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "n1")
	config := func() *serveConfig {
		cfg := &serveConfig{NodeID: "n1", DataDir: dataDir, AdminAddr: testutil.FreeAddr(t), PublicAddr: testutil.FreeAddr(t),
			RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second, Shards: 1, Replicas: 1, raftTiming: testRaftTiming}
		if err := cfg.validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	first, err := startNode(config(), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		var names []string
		filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, path)
			}
			return nil
		})
		slices.Sort(names)
		return names
	}
	// The live node's own files may change meanwhile (its log, its store); what must not
	// appear is anything the second one would write: count the raft log's segments.
	segments := func() int {
		n := 0
		for _, name := range listing() {
			if filepath.Base(filepath.Dir(name)) == "raftlog" {
				n++
			}
		}
		return n
	}
	before := segments()
	if second, err := startNode(config(), testutil.Logger(t)); !errors.Is(err, errDataDirInUse) {
		if second != nil {
			second.Close()
		}
		first.Close()
		t.Fatalf("a second node on the same data directory: %v, want errDataDirInUse", err)
	}
	if after := segments(); after != before {
		t.Fatalf("the refused node changed the raft log: %d segments, %d before", after, before)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the first is stopped, the directory is free again.
	again, err := startNode(config(), testutil.Logger(t))
	if err != nil {
		t.Fatalf("restart after a clean stop: %v", err)
	}
	again.Close()
}
