package routing_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRoutingImportsNoHTTP: the router implements package backend's contract and must not
// depend on the HTTP package it serves (issue 9: cluster/routing imported httpapi).
func TestRoutingImportsNoHTTP(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH, so this is the go that built the test.
	goBinary, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBinary, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	const backendPackage = "github.com/gigaledger/gigaledger/backend"
	var sawBackend bool
	for _, dep := range deps {
		sawBackend = sawBackend || dep == backendPackage
		if dep == "github.com/gigaledger/gigaledger/httpapi" || strings.HasPrefix(dep, "github.com/gigaledger/gigaledger/httpapi/") {
			t.Errorf("cluster/routing depends on %s", dep)
		}
	}
	if !sawBackend {
		t.Fatalf("go list -deps does not name %s: the check is not looking at cluster/routing", backendPackage)
	}
}
