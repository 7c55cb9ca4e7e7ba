// Package litecoindtest starts Debian's litecoind in regtest for the tests that need a real
// Bitcoin-Core-family node (`make chain-test` installs it and sets RequiredEnv): on loopback,
// with a fresh data directory, killed by PID when the test ends. Its legacy P2PKH regtest
// addresses use 0x6f, Dogecoin regtest's byte; it has no ZMQ in Debian's build, and mining stops
// at height 431 (MWEB), so keep each test's chain short.
package litecoindtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// RequiredEnv, set to 1 (as `make chain-test` does), turns a missing litecoind from a skipped
// test into a failed one.
const RequiredEnv = "GIGALEDGER_TEST_LITECOIND"

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	pollInterval = 50 * time.Millisecond
	// User and Password are the node's RPC credentials.
	User     = "gigaledger"
	Password = "regtest-only-password"
)

// Node is a running regtest litecoind.
type Node struct {
	// URL is the RPC endpoint, http://127.0.0.1:port.
	URL     string
	dataDir string
	output  *lockedBuffer
}

// Binary finds litecoind (in PATH or /usr/bin), or skips the test — fails it when RequiredEnv
// is set.
func Binary(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("litecoind"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/bin/litecoind"); err == nil {
		return "/usr/bin/litecoind"
	}
	if os.Getenv(RequiredEnv) == "1" {
		t.Fatalf("litecoind not found in PATH or /usr/bin, and %s=1 requires it", RequiredEnv)
	}
	t.Skip("litecoind not found in PATH or /usr/bin; `make chain-test` installs it and runs these tests")
	return ""
}

// Start starts a node and waits until it answers getblockchaininfo on regtest.
func Start(t testing.TB) *Node {
	t.Helper()
	binary := Binary(t)
	n := &Node{dataDir: t.TempDir(), output: &lockedBuffer{}}
	rpcAddr := testutil.FreeAddr(t)
	_, rpcPort, _ := net.SplitHostPort(rpcAddr)
	_, p2pPort, _ := net.SplitHostPort(testutil.FreeAddr(t))
	n.URL = "http://" + rpcAddr
	command := exec.Command(binary,
		"-regtest", "-datadir="+n.dataDir, "-rpcport="+rpcPort, "-port="+p2pPort,
		"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1",
		"-rpcuser="+User, "-rpcpassword="+Password,
		"-listen=0", "-server", "-daemon=0", "-fallbackfee=0.0001",
		"-dnsseed=0", "-discover=0", "-upnp=0", "-printtoconsole=0",
	)
	command.Stdout = n.output
	command.Stderr = n.output
	if err := command.Start(); err != nil {
		t.Fatalf("start litecoind: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = command.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = command.Process.Kill()
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			t.Errorf("litecoind (pid %d) did not exit %s after SIGKILL", command.Process.Pid, stopTimeout)
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		var info struct{ Chain string }
		err := n.call(context.Background(), "getblockchaininfo", nil, &info)
		if err == nil {
			if info.Chain != "regtest" {
				t.Fatalf("litecoind runs chain %q, want regtest", info.Chain)
			}
			return n
		}
		select {
		case <-exited:
			t.Fatalf("litecoind exited before answering RPC: %s\n%s", n.output, n.DebugLogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("litecoind did not answer within %s (last: %v): %s\n%s", startTimeout, err, n.output, n.DebugLogTail())
		}
		time.Sleep(pollInterval)
	}
}

// Call makes one RPC call for a test's wallet and mining steps, failing the test on an error.
func Call[T any](t testing.TB, n *Node, method string, params ...any) T {
	t.Helper()
	var result T
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.call(ctx, method, params, &result); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return result
}

func (n *Node) call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"method": method, "params": params, "id": 1})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(User, Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var envelope struct {
		Result json.RawMessage
		Error  *struct {
			Code    int
			Message string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&envelope); err != nil {
		return fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if envelope.Error != nil {
		return fmt.Errorf("node error %d: %s", envelope.Error.Code, envelope.Error.Message)
	}
	return json.Unmarshal(envelope.Result, result)
}

// DebugLogTail is the end of the node's debug.log, for a failure message.
func (n *Node) DebugLogTail() string {
	content, err := os.ReadFile(filepath.Join(n.dataDir, "regtest", "debug.log"))
	if err != nil {
		return "(no debug.log: " + err.Error() + ")"
	}
	const tailMaxBytes = 4000
	if len(content) > tailMaxBytes {
		content = content[len(content)-tailMaxBytes:]
	}
	return string(content)
}

type lockedBuffer struct {
	mu     sync.Mutex
	buffer bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.String()
}
