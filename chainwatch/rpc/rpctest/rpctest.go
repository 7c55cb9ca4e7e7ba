// Package rpctest starts real chain nodes for tests: Debian's litecoind in regtest (a
// Bitcoin-Core-family node standing in for Dogecoin Core, contract gigawallet.md §13), on
// loopback, with a fresh data directory, killed by PID when the test ends. Any package's
// real-node tests use it, so that starting a node is written once; `make chain-test` runs
// them (every test whose name contains "Litecoind").
//
// It is for tests only: it skips or fails the calling test, and must never be imported by
// production code.
package rpctest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// LitecoindRequiredEnv, set to 1 (as `make chain-test` does), turns a missing litecoind from
// a skipped test into a failed one.
const LitecoindRequiredEnv = "GIGALEDGER_TEST_LITECOIND"

const (
	// litecoindStartTimeout bounds how long a fresh regtest node may take to answer RPC.
	litecoindStartTimeout = 30 * time.Second
	// litecoindStopTimeout bounds the wait for a killed node to exit.
	litecoindStopTimeout = 10 * time.Second
	// litecoindPollInterval spaces the start-up probes.
	litecoindPollInterval = 50 * time.Millisecond
	// callTimeout bounds each Call.
	callTimeout = time.Minute
)

// Litecoind's RPC credentials: regtest on loopback only.
const (
	LitecoindUser     = "gigaledger"
	LitecoindPassword = "regtest-only-password"
)

// Node is a running regtest node.
type Node struct {
	// Client talks to the node with LitecoindUser and LitecoindPassword.
	Client *rpc.Client
	// URL is the node's RPC endpoint, for a client of other credentials.
	URL string
	// DataDir is the node's data directory (removed with the test's temporary directory).
	DataDir string
}

// litecoindBinary finds Debian's litecoind (in PATH or /usr/bin), or skips the test — fails it
// when LitecoindRequiredEnv is set.
func litecoindBinary(tb testing.TB) string {
	tb.Helper()
	if path, err := exec.LookPath("litecoind"); err == nil {
		return path
	}
	if _, err := os.Stat("/usr/bin/litecoind"); err == nil {
		return "/usr/bin/litecoind"
	}
	if os.Getenv(LitecoindRequiredEnv) == "1" {
		tb.Fatalf("litecoind not found in PATH or /usr/bin, and %s=1 requires it", LitecoindRequiredEnv)
	}
	tb.Skip("litecoind not found in PATH or /usr/bin; `make chain-test` installs it and runs these tests")
	return ""
}

// lockedBuffer collects a process's output for the test log.
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

// StartLitecoind starts a regtest litecoind on loopback with a fresh data directory, waits
// until it answers getblockchaininfo, and kills it by PID when the test ends. Its chain is
// empty but for genesis; mining stops at height 431 (MWEB), so keep each test's chain short.
// Legacy addresses of its wallet (getnewaddress "" legacy) use version byte 0x6f, Dogecoin
// regtest's.
func StartLitecoind(tb testing.TB) *Node {
	tb.Helper()
	binary := litecoindBinary(tb)
	dataDir := tb.TempDir()
	rpcAddr := testutil.FreeAddr(tb)
	_, rpcPort, _ := net.SplitHostPort(rpcAddr)
	_, p2pPort, _ := net.SplitHostPort(testutil.FreeAddr(tb))
	output := &lockedBuffer{}
	command := exec.Command(binary,
		"-regtest", "-datadir="+dataDir, "-rpcport="+rpcPort, "-port="+p2pPort,
		"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1",
		"-rpcuser="+LitecoindUser, "-rpcpassword="+LitecoindPassword,
		"-listen=0", "-server", "-daemon=0", "-fallbackfee=0.0001",
		"-dnsseed=0", "-discover=0", "-upnp=0", "-printtoconsole=0",
	)
	command.Stdout = output
	command.Stderr = output
	if err := command.Start(); err != nil {
		tb.Fatalf("start litecoind: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = command.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = command.Process.Kill()
		select {
		case <-exited:
		case <-time.After(litecoindStopTimeout):
			tb.Errorf("litecoind (pid %d) did not exit %s after SIGKILL", command.Process.Pid, litecoindStopTimeout)
		}
	})
	node := &Node{URL: "http://" + rpcAddr, DataDir: dataDir}
	client, err := rpc.New(rpc.Config{URL: node.URL, User: LitecoindUser, Password: LitecoindPassword, Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	node.Client = client
	deadline := time.Now().Add(litecoindStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := client.GetBlockchainInfo(ctx)
		cancel()
		if err == nil {
			if info.Chain != "regtest" {
				tb.Fatalf("litecoind runs chain %q, want regtest", info.Chain)
			}
			return node
		}
		select {
		case <-exited:
			tb.Fatalf("litecoind exited before answering RPC: %s\n%s", output, node.DebugLogTail())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("litecoind did not answer getblockchaininfo within %s (last: %v): %s\n%s", litecoindStartTimeout, err, output, node.DebugLogTail())
		}
		time.Sleep(litecoindPollInterval)
	}
}

// DebugLogTail is the end of the node's debug.log, for a failure message.
func (n *Node) DebugLogTail() string {
	content, err := os.ReadFile(filepath.Join(n.DataDir, "regtest", "debug.log"))
	if err != nil {
		return "(no debug.log: " + err.Error() + ")"
	}
	const tailMaxBytes = 4000
	if len(content) > tailMaxBytes {
		content = content[len(content)-tailMaxBytes:]
	}
	return string(content)
}

// Call calls method on the node (wallet and mining calls the typed client does not have) and
// decodes its result into a T, failing the test on an error.
func Call[T any](tb testing.TB, client *rpc.Client, method string, params ...any) T {
	tb.Helper()
	var result T
	if err := client.Call(testutil.Context(tb, callTimeout), method, params, &result); err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
	return result
}
