package httpapi_test

import (
	"errors"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// consensusModulePrefixes are the import paths the HTTP package must never depend on: Raft, its
// bolt log store and gossip (issue 9: handlers never talk to consensus, and the package builds
// and tests without it). github.com/cockroachdb/pebble is not listed: httpapi renders the
// accounting core's record types (fsm/ledger), which live beside the store they are read from.
var consensusModulePrefixes = []string{
	"github.com/hashicorp/raft", // and, by the "-" rule below, raft-boltdb
	"github.com/hashicorp/memberlist",
	"github.com/boltdb/bolt",
	"go.etcd.io/bbolt",
}

// TestHTTPAPIImportsNoConsensus runs `go list -deps` on this package and fails if any
// consensus, bolt or gossip package is among its (non-test) dependencies, naming the packages
// that import it so the offending edge is easy to cut.
func TestHTTPAPIImportsNoConsensus(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH, so this is the go that built the test.
	goBinary, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBinary, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, ".").Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("go list -deps: %v\n%s", err, exitErr.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	importers := map[string][]string{} // forbidden package → the listed packages importing it
	var listed int
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		listed++
		for _, imported := range fields[1:] {
			if isConsensusPackage(imported) {
				importers[imported] = append(importers[imported], fields[0])
			}
		}
	}
	if listed == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	if !strings.Contains(string(out), "github.com/gigaledger/gigaledger/cluster/keyspace ") {
		t.Fatal("go list -deps does not name cluster/keyspace: the check is not looking at httpapi")
	}
	for _, pkg := range slices.Sorted(maps.Keys(importers)) {
		t.Errorf("httpapi depends on %s (imported by %s)", pkg, strings.Join(importers[pkg], ", "))
	}
}

func isConsensusPackage(importPath string) bool {
	for _, prefix := range consensusModulePrefixes {
		if importPath == prefix || strings.HasPrefix(importPath, prefix+"/") || strings.HasPrefix(importPath, prefix+"-") {
			return true
		}
	}
	return false
}
