// Package tlstest makes a throw-away cluster CA and node certificates for tests, with the same
// code as `gigaledger cert`. It is the one place every test package gets certificates from.
package tlstest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

// Hosts are the SANs of every test certificate: tests listen on loopback only.
var Hosts = []string{"127.0.0.1", "localhost"}

// CA is a test CA in a temporary directory; node folders go beside it. Safe for concurrent
// use.
type CA struct {
	tb  testing.TB
	Dir string
	mu  sync.Mutex
}

// NewCA makes a CA in a new temporary directory.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	dir := tb.TempDir()
	if err := tlsconfig.CreateCA(dir, false); err != nil {
		tb.Fatalf("create test CA: %v", err)
	}
	return &CA{tb: tb, Dir: dir}
}

// CAIn is the test CA in dir, made there on first use: tests that derive every node's paths
// from one directory get one CA for all of them.
func CAIn(tb testing.TB, dir string) *CA {
	tb.Helper()
	caInMu.Lock()
	defer caInMu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, tlsconfig.CACertFile)); err != nil {
		if err := tlsconfig.CreateCA(dir, false); err != nil {
			tb.Fatalf("create test CA in %s: %v", dir, err)
		}
	}
	return &CA{tb: tb, Dir: dir}
}

var caInMu sync.Mutex

// NodeDir makes (once) the TLS directory of nodeID, Dir/<nodeID>, and returns it: what
// --tls-dir takes.
func (ca *CA) NodeDir(nodeID string) string {
	ca.tb.Helper()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	dir := filepath.Join(ca.Dir, nodeID)
	if _, err := tlsconfig.LoadDir(dir); err == nil {
		return dir
	}
	if err := tlsconfig.CreateNode(tlsconfig.NodeRequest{CADir: ca.Dir, OutDir: dir, NodeID: nodeID, Hosts: Hosts}); err != nil {
		ca.tb.Fatalf("create test certificate for %s: %v", nodeID, err)
	}
	return dir
}

// Node loads nodeID's identity (made on first use).
func (ca *CA) Node(nodeID string) *tlsconfig.Node {
	ca.tb.Helper()
	node, err := tlsconfig.LoadDir(ca.NodeDir(nodeID))
	if err != nil {
		ca.tb.Fatalf("load test certificate for %s: %v", nodeID, err)
	}
	return node
}
