package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

// proposeAndRead proposes command to shardID through via, checks the echoed result, then
// checks a linearizable read through reader sees it at the position the result named.
func proposeAndRead(t *testing.T, ctx context.Context, via, reader *multiNode, shardID int, command string) {
	t.Helper()
	result := proposeUntilAnswered(t, ctx, via, shardID, command)
	position, echoed, ok := strings.Cut(result.(string), ":")
	if !ok || echoed != command {
		t.Fatalf("propose %q to shard %d via %s: result %q", command, shardID, via.id, result)
	}
	if err := reader.node.LinearizableRead(ctx, shardID); err != nil {
		t.Fatalf("linearizable read of shard %d on %s: %v", shardID, reader.id, err)
	}
	index, _ := strconv.Atoi(position)
	if got := reader.recorder(shardID).Commands(); len(got) < index || got[index-1] != command {
		t.Fatalf("%s after linearizable read of shard %d lacks %q at %d", reader.id, shardID, command, index)
	}
}

// proposeUntilAnswered proposes command to shardID through via and returns its result. As a
// client does, a proposal whose outcome is unknown (a loaded machine's election cut it) or that
// no leader took is sent again until one answers. The command may then be in the log twice, on
// every replica alike: the tests compare replicas' logs, not counts.
func proposeUntilAnswered(t *testing.T, ctx context.Context, via *multiNode, shardID int, command string) any {
	t.Helper()
	result, err := testutil.Retry(ctx, 50*time.Millisecond, shard.Retryable, func(retried bool) (any, error) {
		return via.node.Propose(ctx, shardID, []byte(command))
	})
	if err != nil {
		t.Fatalf("propose %q to shard %d via %s: %v", command, shardID, via.id, err)
	}
	return result
}

// TestMultiShardStatic: 3 nodes × 4 shards, RF 3, static placement. Every node proposes to
// every shard; killing a node keeps every shard writable and readable; the restarted node
// catches up on every shard.
func TestMultiShardStatic(t *testing.T) {
	const shardCount = 4
	c := newStaticCluster(t, 3, shardCount, 3, nil)
	ctx := testutil.Context(t, testutil.WaitMax)
	for k := range shardCount {
		c.leaderOf(k)
	}
	for round := range 2 {
		for i, n := range c.nodes {
			for k := range shardCount {
				reader := c.nodes[(i+1)%len(c.nodes)]
				proposeAndRead(t, ctx, n, reader, k, fmt.Sprintf("%s-s%d-r%d", n.id, k, round))
			}
		}
	}
	// Kill the node leading shard 0 (a leader of something, so elections happen).
	victim := c.leaderOf(0)
	c.kill(victim)
	up := c.up()
	// Until the survivors elect new leaders, a proposal may be forwarded into the dead node's
	// socket and come back "outcome unknown" (correctly); wait for every shard's leader and
	// for every survivor to know it.
	for k := range shardCount {
		leader := c.leaderOf(k)
		for _, n := range up {
			testutil.Eventually(t, fmt.Sprintf("%s knows the leader of shard %d", n.id, k), func() bool {
				id, _ := n.node.Shard(k).Leader()
				return id == leader.id
			})
		}
	}
	for i, n := range up {
		for k := range shardCount {
			proposeAndRead(t, ctx, n, up[(i+1)%len(up)], k, fmt.Sprintf("%s-s%d-after-kill", n.id, k))
		}
	}
	c.start(victim, c.config(victim))
	// A restarted node that hears no leader within its election timeout campaigns, and a
	// proposal in flight then comes back "outcome unknown" (correctly): settle first, as after
	// the kill, until the restarted node knows every shard's leader.
	for k := range shardCount {
		testutil.Eventually(t, fmt.Sprintf("%s knows the leader of shard %d", victim.id, k), func() bool {
			id, _ := victim.node.Shard(k).Leader()
			for _, n := range c.up() {
				if s := n.node.Shard(k); n.id == id && s != nil && s.Stats().LeaderReady {
					return true
				}
			}
			return false
		})
	}
	for k := range shardCount {
		leader := c.leaderOf(k)
		proposeAndRead(t, ctx, leader, victim, k, fmt.Sprintf("s%d-after-restart", k))
		want := leader.recorder(k).Commands()
		for _, n := range c.nodes {
			testutil.Eventually(t, fmt.Sprintf("%s caught up on shard %d", n.id, k), func() bool {
				return slices.Equal(n.recorder(k).Commands(), want)
			})
		}
	}
	// Shards keep separate logs: no command of one shard appears in another.
	for k := range shardCount {
		for _, command := range c.nodes[0].recorder(k).Commands() {
			if !strings.Contains(command, fmt.Sprintf("s%d-", k)) {
				t.Errorf("shard %d applied %q", k, command)
			}
		}
	}
	status := c.nodes[0].node.Status()
	if len(status.Shards) != shardCount || len(status.Nodes) != 3 {
		t.Fatalf("status: %+v", status)
	}
	for _, s := range status.Shards {
		if len(s.Replicas) != 3 || s.LeaderID == "" || !s.Hosted {
			t.Errorf("status of shard %d: %+v", s.ID, s)
		}
	}
}

// TestMultiShardGossipBootstrap: 4 nodes find each other over memberlist, wait for
// BootstrapExpect=4, compute the same placement of 4 shards × 3 replicas, and serve: hosted
// shards take proposals and reads; others forward proposals and queries to a node that hosts
// the shard, answer ErrNotHosted to a local linearizable read, and know its leader from gossip.
func TestMultiShardGossipBootstrap(t *testing.T) {
	const shardCount, nodeCount = 4, 4
	c := &multiCluster{tb: t, nodes: newMultiNodes(t, nodeCount)}
	t.Cleanup(c.closeAll)
	seed := c.nodes[0].gossipAddr
	var wg sync.WaitGroup
	errs := make([]error, nodeCount)
	for i, n := range c.nodes {
		cfg := c.config(n)
		cfg.GossipAddr = n.gossipAddr
		cfg.BootstrapExpect = nodeCount
		cfg.ShardCount = shardCount
		cfg.ReplicaCount = 3
		if i > 0 {
			cfg.Join = []string{seed}
		}
		wg.Go(func() {
			node, err := cluster.Open(cfg, testutil.Logger(t))
			errs[i], n.node = err, node
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %s: %v", c.nodes[i].id, err)
		}
	}
	want := c.nodes[0].node.Placement()
	for _, n := range c.nodes {
		if got := n.node.Placement(); !slices.EqualFunc(got.Shards, want.Shards, func(a, b cluster.ShardReplicas) bool {
			return a.ID == b.ID && slices.Equal(a.Replicas, b.Replicas)
		}) {
			t.Fatalf("%s placement %+v differs from %+v", n.id, got, want)
		}
	}
	if expected := cluster.ComputePlacement([]string{"node1", "node2", "node3", "node4"}, shardCount, 3); !slices.EqualFunc(
		want.Shards, expected.Shards, func(a, b cluster.ShardReplicas) bool { return slices.Equal(a.Replicas, b.Replicas) }) {
		t.Fatalf("placement %+v is not the computed one %+v", want, expected)
	}
	for k := range shardCount {
		if len(want.Replicas(k)) != 3 {
			t.Fatalf("shard %d replicas %v", k, want.Replicas(k))
		}
		c.leaderOf(k)
	}
	ctx := testutil.Context(t, testutil.WaitMax)
	for _, n := range c.nodes {
		for k := range shardCount {
			command := fmt.Sprintf("%s-s%d", n.id, k)
			if n.node.Hosts(k) {
				proposeAndRead(t, ctx, n, n, k, command)
				continue
			}
			// A proposal to a shard this node does not host goes to its leader, found by gossip,
			// and lands in the hosting replicas.
			var host *multiNode
			for _, other := range c.nodes {
				if other.node.Hosts(k) {
					host = other
					break
				}
			}
			proposeAndRead(t, ctx, n, host, k, command)
			if err := n.node.LinearizableRead(ctx, k); !errors.Is(err, cluster.ErrNotHosted) {
				t.Fatalf("read of unhosted shard %d on %s: %v, want ErrNotHosted", k, n.id, err)
			}
			// A query reaches a node that hosts the shard and sees the write just acknowledged
			// (the serving node fences a read index before it answers).
			answer, err := n.node.Query(ctx, k, nil)
			if err != nil || !slices.Contains(strings.Split(string(answer), ","), command) {
				t.Fatalf("query of unhosted shard %d on %s: %q %v, want it to hold %q", k, n.id, answer, err, command)
			}
			// Status names the leader gossip reports, with its API address.
			leader := c.leaderOf(k)
			testutil.Eventually(t, fmt.Sprintf("leader of shard %d known to %s", k, n.id), func() bool {
				s := n.node.Status().Shards[k]
				return s.LeaderID == leader.id && s.LeaderAPIAddr == "api-"+leader.id
			})
		}
	}
	if _, err := c.nodes[0].node.Propose(ctx, shardCount, []byte("x")); !errors.Is(err, cluster.ErrNoSuchShard) {
		t.Fatalf("propose to shard %d: %v", shardCount, err)
	}
	testutil.Eventually(t, "status shows 4 alive nodes", func() bool {
		status := c.nodes[1].node.Status()
		alive := 0
		for _, node := range status.Nodes {
			if node.State == cluster.NodeStateAlive {
				alive++
			}
		}
		return alive == nodeCount
	})
	// A killed node is reported dead (or suspect first) by the others.
	victim := c.nodes[3]
	c.kill(victim)
	testutil.Eventually(t, "victim no longer alive in status", func() bool {
		for _, node := range c.nodes[0].node.Status().Nodes {
			if node.ID == victim.id {
				return node.State != cluster.NodeStateAlive
			}
		}
		return false
	})
	// Restart from cluster.json: no waiting for BootstrapExpect, same placement.
	cfg := c.config(victim)
	cfg.GossipAddr, cfg.Join, cfg.BootstrapExpect, cfg.ShardCount = victim.gossipAddr, []string{seed}, nodeCount, shardCount
	c.start(victim, cfg)
	if got := victim.node.Placement(); !slices.EqualFunc(got.Shards, want.Shards, func(a, b cluster.ShardReplicas) bool {
		return slices.Equal(a.Replicas, b.Replicas)
	}) {
		t.Fatalf("restarted placement %+v", got)
	}
}

// TestReplaceNode: stop a node, start a fresh one, ReplaceNode moves every replica of the old
// node to it; the shards regain 3 voters and the new replicas catch up.
func TestReplaceNode(t *testing.T) {
	const shardCount = 4
	c := newStaticCluster(t, 3, shardCount, 3, nil)
	ctx := testutil.Context(t, testutil.WaitMax)
	for k := range shardCount {
		leader := c.leaderOf(k)
		for i := range 20 {
			proposeAndRead(t, ctx, leader, leader, k, fmt.Sprintf("s%d-before-%d", k, i))
		}
	}
	// Snapshot one shard so its new replica must install a snapshot, not only replay a log.
	if err := c.leaderOf(1).node.Shard(1).Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	old := c.nodes[2]
	c.kill(old)
	fresh := newMultiNodes(t, 1)[0]
	fresh.id = "node4"
	c.nodes = append(c.nodes, fresh)
	c.start(fresh, c.config(fresh))
	for k := range shardCount {
		c.leaderOf(k) // not required (ReplaceNode waits within ctx), but keeps the test quick
	}
	if hosted := fresh.node.HostedShards(); len(hosted) != 0 {
		t.Fatalf("fresh node hosts %v before the replacement", hosted)
	}
	if err := c.nodes[0].node.ReplaceNode(ctx, old.id, fresh.id, fresh.addr); err != nil {
		t.Fatalf("replace: %v", err)
	}
	// Idempotent: a second run finds nothing to do.
	if err := c.nodes[1].node.ReplaceNode(ctx, old.id, fresh.id, fresh.addr); err != nil {
		t.Fatalf("replace again: %v", err)
	}
	for k := range shardCount {
		leader := c.leaderOf(k)
		servers, err := leader.node.Shard(k).Servers()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, server := range servers {
			ids = append(ids, server.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"node1", "node2", "node4"}) {
			t.Fatalf("shard %d voters %v", k, ids)
		}
		proposeAndRead(t, ctx, fresh, fresh, k, fmt.Sprintf("s%d-after-replace", k))
		want := leader.recorder(k).Commands()
		testutil.Eventually(t, fmt.Sprintf("node4 caught up on shard %d", k), func() bool {
			return slices.Equal(fresh.recorder(k).Commands(), want)
		})
	}
	status := c.nodes[0].node.Status()
	for _, s := range status.Shards {
		if slices.Contains(s.Replicas, old.id) || !slices.Contains(s.Replicas, fresh.id) {
			t.Errorf("status shard %d replicas %v", s.ID, s.Replicas)
		}
	}
	// The fresh node reopens its new replicas from disk after a restart.
	c.kill(fresh)
	c.start(fresh, c.config(fresh))
	if hosted := fresh.node.HostedShards(); len(hosted) != shardCount {
		t.Fatalf("restarted fresh node hosts %v", hosted)
	}
	for k := range shardCount {
		proposeAndRead(t, ctx, fresh, fresh, k, fmt.Sprintf("s%d-after-fresh-restart", k))
	}
}

// TestQueryOnALaggingFollower: a follower whose replica has not applied the read index within
// queryLagPatience has the leader answer a query instead of holding it (after a restart,
// raft's replication to the follower may back off for ~10 s).
func TestQueryOnALaggingFollower(t *testing.T) {
	c := newStaticCluster(t, 3, 1, 3, nil)
	leader := c.leaderOf(0)
	var follower *multiNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
			break
		}
	}
	ctx := testutil.Context(t, testutil.WaitMax)
	if _, err := leader.node.Propose(ctx, 0, []byte("before")); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var blocked atomic.Bool
	follower.recorder(0).SetBeforeApply(func(uint64) {
		if blocked.Load() {
			<-release
		}
	})
	defer close(release)
	blocked.Store(true)
	if _, err := leader.node.Propose(ctx, 0, []byte("while-lagging")); err != nil {
		t.Fatal(err)
	}
	answer, err := follower.node.Query(ctx, 0, nil)
	if err != nil || !slices.Contains(strings.Split(string(answer), ","), "while-lagging") {
		t.Fatalf("query on the lagging follower: %q %v, want the leader's answer with the last write", answer, err)
	}
	if slices.Contains(follower.recorder(0).Commands(), "while-lagging") {
		t.Fatal("the follower applied the write: the test did not make it lag")
	}
}
