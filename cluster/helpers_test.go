package cluster_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/shardtest"
)

type testNode struct {
	id      string
	addr    string
	dataDir string
	sm      *shardtest.Recorder
	node    *singleShardNode // nil while down
}

// singleShardNode is a Node with one shard, seen through that shard: the single-shard tests
// predate multi-raft and still say what they should about forwarding and failover.
type singleShardNode struct{ *cluster.Node }

func (s *singleShardNode) Propose(ctx context.Context, command []byte) (any, error) {
	return s.Node.Propose(ctx, 0, command)
}

func (s *singleShardNode) LinearizableRead(ctx context.Context) error {
	return s.Node.LinearizableRead(ctx, 0)
}

func (s *singleShardNode) Shard() *shard.Shard { return s.Node.Shard(0) }

type testCluster struct {
	tb    testing.TB
	nodes []*testNode
	tune  func(*shard.Config)
	// ca signs every node's certificate: the port runs mutual TLS, as in production. Nil
	// runs plain TCP (newPlainTestCluster).
	ca *tlstest.CA
}

// newPlainTestCluster is newTestCluster without TLS, as --insecure-cluster runs.
func newPlainTestCluster(tb testing.TB, size int) *testCluster {
	tb.Helper()
	return startTestCluster(tb, size, nil, nil)
}

// newTestCluster starts size nodes on loopback test ports (testutil.FreeAddr), each held by
// its listener from the start.
func newTestCluster(tb testing.TB, size int, tune func(*shard.Config)) *testCluster {
	tb.Helper()
	return startTestCluster(tb, size, tune, tlstest.NewCA(tb))
}

func startTestCluster(tb testing.TB, size int, tune func(*shard.Config), ca *tlstest.CA) *testCluster {
	tb.Helper()
	c := &testCluster{tb: tb, tune: tune, ca: ca}
	listeners := make([]net.Listener, size)
	for i := range size {
		listener, err := net.Listen("tcp", testutil.FreeAddr(tb))
		if err != nil {
			tb.Fatalf("listen: %v", err)
		}
		listeners[i] = listener
		c.nodes = append(c.nodes, &testNode{
			id: fmt.Sprintf("node%d", i+1), addr: listener.Addr().String(), dataDir: tb.TempDir(), sm: shardtest.NewRecorder(),
		})
	}
	tb.Cleanup(func() {
		for _, n := range c.nodes {
			if n.node != nil {
				_ = n.node.Close()
			}
		}
	})
	for i, n := range c.nodes {
		c.open(n, listeners[i])
	}
	return c
}

func (c *testCluster) open(n *testNode, listener net.Listener) {
	c.tb.Helper()
	template := shortShardConfig()
	if c.tune != nil {
		c.tune(&template)
	}
	var nodes []cluster.NodeAddress
	var ids []string
	for _, peer := range c.nodes {
		nodes = append(nodes, cluster.NodeAddress{ID: peer.id, RaftAddr: peer.addr})
		ids = append(ids, peer.id)
	}
	placement := cluster.ComputePlacement(ids, 1, len(ids))
	cfg := cluster.Config{
		NodeID: n.id, RaftAddr: n.addr, DataDir: n.dataDir, Listener: listener, Shard: template,
		OpenStateMachine: func(int, string) (shard.StateMachine, error) { return n.sm, nil },
		Codec:            shardtest.StringCodec{}, StaticNodes: nodes, StaticPlacement: &placement,
	}
	if c.ca != nil {
		cfg.TLS = c.ca.Node(n.id)
	}
	node, err := cluster.Open(cfg, testutil.Logger(c.tb))
	if err != nil {
		c.tb.Fatalf("open %s: %v", n.id, err)
	}
	n.node = &singleShardNode{node}
}

// kill closes n's node (shard, port and connections), as a crash would look to its peers.
func (c *testCluster) kill(n *testNode) {
	c.tb.Helper()
	if err := n.node.Close(); err != nil {
		c.tb.Fatalf("close %s: %v", n.id, err)
	}
	n.node = nil
}

// restart reopens n from its data dir on the same address, with the same state machine
// (which, like the real one, keeps its state across a restart).
func (c *testCluster) restart(n *testNode) {
	c.tb.Helper()
	var listener net.Listener
	testutil.Eventually(c.tb, "port "+n.addr+" free again", func() bool {
		var err error
		listener, err = net.Listen("tcp", n.addr)
		return err == nil
	})
	c.open(n, listener)
}

// leader waits for a node that leads and serves reads, and returns it.
func (c *testCluster) leader() *testNode {
	c.tb.Helper()
	var found *testNode
	testutil.Eventually(c.tb, "a ready leader", func() bool {
		for _, n := range c.nodes {
			if n.node != nil && n.node.Shard().Stats().LeaderReady {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

func (c *testCluster) up() []*testNode {
	var up []*testNode
	for _, n := range c.nodes {
		if n.node != nil {
			up = append(up, n)
		}
	}
	return up
}
