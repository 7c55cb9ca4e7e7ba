package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// serverPackages are the packages the client must never import: it speaks the documented
// HTTP contract only, so a change of the server's internals cannot silently change it.
var serverPackages = []string{"fsm", "httpapi", "cluster", "shard", "backend"}

// TestClientImportsNoServerPackage runs `go list -deps` on this package (tests excluded) and
// fails if any of the server's packages is among its dependencies.
func TestClientImportsNoServerPackage(t *testing.T) {
	goBinary, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBinary, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/gigaledger/gigaledger/"
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != module+"client" {
		t.Fatalf("go list -deps did not list the client package: %q", deps)
	}
	for _, dep := range deps {
		for _, pkg := range serverPackages {
			if dep == module+pkg || strings.HasPrefix(dep, module+pkg+"/") {
				t.Errorf("the client depends on %s", dep)
			}
		}
	}
}
