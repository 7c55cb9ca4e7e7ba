package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/nodelog"
	"github.com/gigaledger/gigaledger/shard/shardtest"
)

// multiNode is one node of a multiCluster: its addresses, data dir, and one Recorder per
// shard that survives restarts (a state machine that keeps its durable state).
type multiNode struct {
	id         string
	addr       string
	gossipAddr string
	dataDir    string

	mu   sync.Mutex
	sms  map[int]*shardtest.Recorder
	node *cluster.Node // nil while down
}

func (n *multiNode) recorder(shardID int) *shardtest.Recorder {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sms[shardID] == nil {
		n.sms[shardID] = shardtest.NewRecorder()
	}
	return n.sms[shardID]
}

type multiCluster struct {
	tb        testing.TB
	nodes     []*multiNode
	static    *cluster.Placement
	addresses []cluster.NodeAddress
	tune      func(*shard.Config)
	// nodeTune, when set, adjusts every node's configuration.
	nodeTune func(*cluster.Config)

	// ca signs every node's certificate (made on first use): ports run mutual TLS and gossip
	// is encrypted, as in production.
	caOnce sync.Once
	ca     *tlstest.CA
	// plain runs the nodes without TLS (loopback only), for benchmarks that measure its cost.
	plain bool
	// raftLogMode is every node's Config.RaftLogMode (zero: the default, shared).
	raftLogMode nodelog.Mode
}

// tlsCA is the cluster's test CA.
func (c *multiCluster) tlsCA() *tlstest.CA {
	c.caOnce.Do(func() { c.ca = tlstest.NewCA(c.tb) })
	return c.ca
}

func shortShardConfig() shard.Config {
	return shard.Config{
		HeartbeatTimeout: raceTimingScale * 300 * time.Millisecond, ElectionTimeout: raceTimingScale * 300 * time.Millisecond,
		LeaderLeaseTimeout: raceTimingScale * 150 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		Registerer: prometheus.NewRegistry(),
	}
}

func shortGossip(c *memberlist.Config) {
	c.ProbeInterval = raceTimingScale * 100 * time.Millisecond
	c.ProbeTimeout = raceTimingScale * 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 300 * time.Millisecond
	c.SuspicionMult = 2
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = time.Second
	c.DeadNodeReclaimTime = time.Second
}

// newMultiNodes prepares size nodes (not started) on test ports (testutil.FreeAddr).
func newMultiNodes(tb testing.TB, size int) []*multiNode {
	var nodes []*multiNode
	for i := range size {
		nodes = append(nodes, &multiNode{id: fmt.Sprintf("node%d", i+1), addr: testutil.FreeAddr(tb), gossipAddr: testutil.FreeAddr(tb),
			dataDir: tb.TempDir(), sms: make(map[int]*shardtest.Recorder)})
	}
	return nodes
}

// apiURLOf is the API base URL test node id advertises.
func apiURLOf(id string) string { return "http://api-" + id + ":8081" }

func (c *multiCluster) config(n *multiNode) cluster.Config {
	template := shortShardConfig()
	if c.tune != nil {
		c.tune(&template)
	}
	cfg := cluster.Config{
		NodeID: n.id, RaftAddr: n.addr, DataDir: n.dataDir, Shard: template, Codec: shardtest.StringCodec{},
		OpenStateMachine: func(shardID int, dir string) (shard.StateMachine, error) { return n.recorder(shardID), nil },
		StaticNodes:      c.addresses, StaticPlacement: c.static,
		APIAddr: "api-" + n.id, APIURL: apiURLOf(n.id), BootstrapTimeout: testutil.WaitMax, GossipTuning: shortGossip,
		TLS: c.nodeTLS(n.id), RaftLogMode: c.raftLogMode,
		// A query's answer is the shard's commands so far, comma-separated.
		Query: func(ctx context.Context, shardID int, query []byte) ([]byte, error) {
			return []byte(strings.Join(n.recorder(shardID).Commands(), ",")), nil
		},
	}
	if c.nodeTune != nil {
		c.nodeTune(&cfg)
	}
	return cfg
}

// nodeTLS is node id's TLS material, or nil for a plain cluster.
func (c *multiCluster) nodeTLS(id string) *tlsconfig.Node {
	if c.plain {
		return nil
	}
	return c.tlsCA().Node(id)
}

// newStaticCluster starts size nodes with a static placement of shardCount shards.
func newStaticCluster(tb testing.TB, size, shardCount, replicaCount int, tune func(*shard.Config)) *multiCluster {
	tb.Helper()
	return newStaticClusterWith(tb, size, shardCount, replicaCount, tune, false, 0)
}

// newStaticClusterWith is newStaticCluster; plain turns node-to-node TLS off.
func newStaticClusterWith(tb testing.TB, size, shardCount, replicaCount int, tune func(*shard.Config), plain bool, raftLogMode nodelog.Mode) *multiCluster {
	tb.Helper()
	c := &multiCluster{tb: tb, nodes: newMultiNodes(tb, size), tune: tune, plain: plain, raftLogMode: raftLogMode}
	ids := make([]string, size)
	for i, n := range c.nodes {
		ids[i] = n.id
		c.addresses = append(c.addresses, cluster.NodeAddress{ID: n.id, RaftAddr: n.addr, APIAddr: "api-" + n.id})
	}
	placement := cluster.ComputePlacement(ids, shardCount, replicaCount)
	c.static = &placement
	tb.Cleanup(c.closeAll)
	for _, n := range c.nodes {
		c.start(n, c.config(n))
	}
	return c
}

func (c *multiCluster) closeAll() {
	for _, n := range c.nodes {
		if n.node != nil {
			_ = n.node.Close()
			n.node = nil
		}
	}
}

// start opens n, retrying while its port is still held by a previous incarnation.
func (c *multiCluster) start(n *multiNode, cfg cluster.Config) {
	c.tb.Helper()
	logger := testutil.Logger(c.tb)
	var err error
	testutil.Wait(testutil.WaitMax, func() bool {
		var node *cluster.Node
		if node, err = cluster.Open(cfg, logger); err == nil {
			n.node = node
			return true
		}
		var opErr *net.OpError
		return !errors.As(err, &opErr) // only a port still held is worth another try
	})
	if err != nil {
		c.tb.Fatalf("open %s: %v", n.id, err)
	}
}

func (c *multiCluster) kill(n *multiNode) {
	c.tb.Helper()
	if err := n.node.Close(); err != nil {
		c.tb.Fatalf("close %s: %v", n.id, err)
	}
	n.node = nil
}

// leaderOf waits for a ready leader of shardID among the running nodes.
func (c *multiCluster) leaderOf(shardID int) *multiNode {
	c.tb.Helper()
	var found *multiNode
	testutil.Eventually(c.tb, fmt.Sprintf("a ready leader of shard %d", shardID), func() bool {
		for _, n := range c.nodes {
			if n.node == nil {
				continue
			}
			if s := n.node.Shard(shardID); s != nil && s.Stats().LeaderReady {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

func (c *multiCluster) up() []*multiNode {
	var up []*multiNode
	for _, n := range c.nodes {
		if n.node != nil {
			up = append(up, n)
		}
	}
	return up
}
