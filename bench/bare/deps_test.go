package bare_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNotInTheProductBinary: the bare-HTTP server answers every write as committed; it must
// never be linked into gigaledger itself (only bench/cmd/gigaledger-bare runs it).
func TestNotInTheProductBinary(t *testing.T) {
	goBinary, err := exec.LookPath("go") // go test puts its own go first in PATH
	if err != nil {
		t.Fatalf("find the go command: %v", err)
	}
	out, err := exec.Command(goBinary, "list", "-deps", "github.com/gigaledger/gigaledger/cmd/gigaledger").Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("go list -deps: %v\n%s", err, exitErr.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/gigaledger/gigaledger/httpapi\n") {
		t.Fatal("go list -deps does not name httpapi: the check is not looking at gigaledger")
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "github.com/gigaledger/gigaledger/bench/bare") {
			t.Errorf("gigaledger links %s", strings.TrimSpace(line))
		}
	}
}
