package gigawallet_test

import (
	"os/exec"
	"strings"
	"testing"
)

// forbiddenImportPrefixes are what this package must never depend on (doc.go): the accounting
// core's records, the cluster and consensus. It renders shapes; handlers call the backend.
var forbiddenImportPrefixes = []string{
	"github.com/gigaledger/gigaledger/fsm/ledger",
	"github.com/gigaledger/gigaledger/cluster",
	"github.com/gigaledger/gigaledger/shard",
	"github.com/hashicorp/raft",
}

// TestImportsStayPure runs `go list -deps` on this package and fails on a forbidden dependency.
func TestImportsStayPure(t *testing.T) {
	goBinary, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBinary, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || !strings.Contains(string(out), "github.com/cockroachdb/apd/v3") {
		t.Fatalf("go list -deps is not looking at this package: %q", out)
	}
	for _, dep := range deps {
		for _, prefix := range forbiddenImportPrefixes {
			if dep == prefix || strings.HasPrefix(dep, prefix+"/") {
				t.Errorf("httpapi/gigawallet depends on %s", dep)
			}
		}
	}
}
