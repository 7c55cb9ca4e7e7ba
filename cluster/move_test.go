package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/gigaledger/gigaledger/shard/shardtest"
)

// newGossipCluster starts size nodes that form their cluster by gossip (BootstrapExpect =
// size, every node joining the first) with shardCount shards of 3 replicas, and waits for a
// leader of every shard.
func newGossipCluster(t *testing.T, size, shardCount int) *multiCluster {
	t.Helper()
	return newTunedGossipCluster(t, size, shardCount, nil)
}

// newTunedGossipCluster is newGossipCluster with tune applied to every shard's configuration.
func newTunedGossipCluster(t *testing.T, size, shardCount int, tune func(*shard.Config)) *multiCluster {
	t.Helper()
	return newGossipClusterWith(t, size, shardCount, tune, nil)
}

// newGossipClusterWith is newTunedGossipCluster; nodeTune adjusts every node's configuration.
func newGossipClusterWith(t *testing.T, size, shardCount int, tune func(*shard.Config), nodeTune func(*cluster.Config)) *multiCluster {
	t.Helper()
	c := &multiCluster{tb: t, nodes: newMultiNodes(t, size), tune: tune, nodeTune: nodeTune}
	t.Cleanup(c.closeAll)
	var wg sync.WaitGroup
	errs := make([]error, size)
	for i, n := range c.nodes {
		cfg := c.gossipConfig(n)
		cfg.BootstrapExpect, cfg.ShardCount, cfg.ReplicaCount = size, shardCount, 3
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
	for k := range shardCount {
		c.leaderOf(k)
	}
	return c
}

// gossipConfig is n's configuration as a gossip member joining the cluster's first node (a
// node with no BootstrapExpect learns the placement from a member).
func (c *multiCluster) gossipConfig(n *multiNode) cluster.Config {
	cfg := c.config(n)
	cfg.StaticNodes, cfg.StaticPlacement = nil, nil
	cfg.GossipAddr = n.gossipAddr
	if seed := c.nodes[0]; seed != n {
		cfg.Join = []string{seed.gossipAddr}
	}
	return cfg
}

// addGossipNode starts a fresh node that joins the running cluster by gossip; it learns the
// placement and hosts nothing until a move adds a replica to it.
func (c *multiCluster) addGossipNode(id string) *multiNode {
	c.tb.Helper()
	fresh := newMultiNodes(c.tb, 1)[0]
	fresh.id = id
	c.nodes = append(c.nodes, fresh)
	c.start(fresh, c.gossipConfig(fresh))
	if hosted := fresh.node.HostedShards(); len(hosted) != 0 {
		c.tb.Fatalf("%s hosts %v before any move", id, hosted)
	}
	for _, n := range c.up() {
		testutil.Eventually(c.tb, id+" alive to "+n.id, func() bool {
			return slices.ContainsFunc(n.node.Status().Nodes, func(s cluster.NodeStatus) bool {
				return s.ID == id && s.State == cluster.NodeStateAlive
			})
		})
	}
	return fresh
}

// configuration reads shardID's configuration from its leader: voters and non-voters, sorted.
func (c *multiCluster) configuration(shardID int) (voters, nonvoters []string) {
	c.tb.Helper()
	servers, err := c.leaderOf(shardID).node.Shard(shardID).Servers()
	if err != nil {
		c.tb.Fatal(err)
	}
	for _, s := range servers {
		if s.Nonvoter {
			nonvoters = append(nonvoters, s.ID)
		} else {
			voters = append(voters, s.ID)
		}
	}
	slices.Sort(voters)
	slices.Sort(nonvoters)
	return voters, nonvoters
}

// writer proposes numbered commands to one shard until stopped and remembers which were
// acknowledged, in order; an unknown outcome is neither (it may or may not have applied).
type writer struct {
	acked   []string
	unknown int
	stop    chan struct{}
	done    chan struct{}
}

func startWriter(ctx context.Context, via *multiNode, shardID int, prefix string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	node := via.node // the test may end (and close its nodes) before the writer sees stop
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			command := fmt.Sprintf("%s-%d", prefix, i)
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := node.Propose(callCtx, shardID, []byte(command))
			cancel()
			switch {
			case err == nil:
				w.acked = append(w.acked, command)
			case errors.Is(err, shard.ErrOutcomeUnknown):
				w.unknown++
			}
		}
	}()
	return w
}

func (w *writer) finish() {
	close(w.stop)
	<-w.done
}

// TestMoveReplicaToJoinedNode: 3 gossip nodes, 2 shards; a 4th node joins by gossip and one
// replica of shard 1 (its leader's, the hardest case) moves to it while a client keeps
// proposing. The new replica is a non-voter until it has caught up, then a voter; the source
// is removed, closes its replica and deletes its folder; no acknowledged proposal is lost; a
// second run finds the move done.
func TestMoveReplicaToJoinedNode(t *testing.T) {
	const shardCount, moved = 2, 1
	c := newGossipCluster(t, 3, shardCount)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	leader := c.leaderOf(moved)
	for i := range 300 {
		proposeUntilAnswered(t, ctx, leader, moved, fmt.Sprintf("before-%d", i))
	}
	// The new replica must install a snapshot, then replay the log after it.
	if err := leader.node.Shard(moved).Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	fresh := c.addGossipNode("node4")
	from := leader
	var other *multiNode // a node that keeps its replica, to write through
	for _, n := range c.nodes[:3] {
		if n != from {
			other = n
			break
		}
	}

	sawNonvoter := make(chan struct{})
	release := make(chan struct{})
	restore := cluster.SetAfterAddNonvoter(func(shardID int, nodeID string) {
		if shardID == moved && nodeID == fresh.id {
			close(sawNonvoter)
			<-release
		}
	})
	defer restore()

	w := startWriter(ctx, other, moved, "during")
	type outcome struct {
		result cluster.MoveResult
		err    error
	}
	done := make(chan outcome, 1)
	// Run by a node that is neither the source nor the destination: any member may.
	go func() {
		result, err := other.node.MoveReplica(ctx, moved, from.id, fresh.id)
		done <- outcome{result, err}
	}()
	select {
	case <-sawNonvoter:
	case o := <-done:
		t.Fatalf("move ended before adding a non-voter: %+v %v", o.result, o.err)
	}
	voters, nonvoters := c.configuration(moved)
	if want := []string{"node1", "node2", "node3"}; !slices.Equal(voters, want) || !slices.Equal(nonvoters, []string{fresh.id}) {
		t.Fatalf("while catching up: voters %v non-voters %v, want %v and [%s]", voters, nonvoters, want, fresh.id)
	}
	// A follower's status shows it once the configuration entry reached it.
	testutil.Eventually(t, "status shows the non-voter", func() bool {
		s := other.node.Status().Shards[moved]
		return slices.Equal(s.Nonvoters, []string{fresh.id}) && slices.Contains(s.Replicas, fresh.id)
	})
	close(release)
	o := <-done
	w.finish()
	if o.err != nil {
		t.Fatalf("move: %v", o.err)
	}
	if !o.result.Moved || o.result.CaughtUpIndex == 0 {
		t.Fatalf("move result %+v", o.result)
	}
	t.Logf("moved shard %d from %s to %s: caught up at index %d in %d ms (%d entries applied by the new replica); %d proposals acknowledged during the move, %d unknown",
		moved, from.id, fresh.id, o.result.CaughtUpIndex, o.result.CatchUpMs, o.result.Entries, len(w.acked), w.unknown)

	wantVoters := []string{fresh.id}
	for _, n := range c.nodes[:3] {
		if n != from {
			wantVoters = append(wantVoters, n.id)
		}
	}
	slices.Sort(wantVoters)
	if voters, nonvoters := c.configuration(moved); !slices.Equal(voters, wantVoters) || len(nonvoters) != 0 {
		t.Fatalf("after the move: voters %v non-voters %v, want %v", voters, nonvoters, wantVoters)
	}
	testutil.Eventually(t, "the source no longer hosts the shard", func() bool { return !from.node.Hosts(moved) })
	if _, err := os.Stat(filepath.Join(from.dataDir, fmt.Sprintf("shard-%d", moved))); !os.IsNotExist(err) {
		t.Fatalf("the source's shard folder: %v, want it deleted", err)
	}
	if !from.node.Hosts(0) {
		t.Fatal("the source lost its replica of the shard that did not move")
	}

	// Writes and reads through every node, the source included (it forwards now).
	proposeAndRead(t, ctx, from, fresh, moved, "after-move-via-source")
	proposeAndRead(t, ctx, fresh, fresh, moved, "after-move-via-new")
	want := c.leaderOf(moved).recorder(moved).Commands()
	for _, n := range c.nodes {
		if !n.node.Hosts(moved) {
			continue
		}
		testutil.Eventually(t, n.id+" has every command", func() bool { return slices.Equal(n.recorder(moved).Commands(), want) })
	}
	for _, command := range w.acked {
		if !slices.Contains(want, command) {
			t.Fatalf("acknowledged %q is not in the log", command)
		}
	}
	// Every node's status shows the new replica set (read from the leader where not hosted).
	for _, n := range c.nodes {
		testutil.Eventually(t, n.id+"'s status shows the move", func() bool {
			s := n.node.Status().Shards[moved]
			return slices.Equal(slices.Sorted(slices.Values(s.Replicas)), wantVoters) && len(s.Nonvoters) == 0
		})
	}

	// Idempotent: a second run (from any node) finds the move done.
	again, err := fresh.node.MoveReplica(ctx, moved, from.id, fresh.id)
	if err != nil || again.Moved {
		t.Fatalf("move again: %+v %v", again, err)
	}
	// Refusals: a node with no replica, an unknown node, a bad shard.
	if _, err := other.node.MoveReplica(ctx, moved, from.id, "node9"); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("move to an unknown node: %v", err)
	}
	if _, err := other.node.MoveReplica(ctx, moved, from.id, from.id); !errors.Is(err, cluster.ErrInvalidMove) {
		t.Fatalf("move to itself: %v", err)
	}
	if _, err := other.node.MoveReplica(ctx, shardCount, from.id, fresh.id); !errors.Is(err, cluster.ErrNoSuchShard) {
		t.Fatalf("move of shard %d: %v", shardCount, err)
	}
	// Operator mistakes a probe found deleting a copy: a move to a node that already holds the
	// shard, and replace-node naming an existing member as the new node. Both are refused with
	// the configuration unchanged; and a source no one knows is no move to finish.
	holder := slices.IndexFunc(c.nodes, func(n *multiNode) bool { return n != fresh && slices.Contains(wantVoters, n.id) })
	if _, err := other.node.MoveReplica(ctx, moved, c.nodes[holder].id, fresh.id); !errors.Is(err, cluster.ErrDestinationHoldsReplica) {
		t.Fatalf("move to a node that holds the shard: %v", err)
	}
	if err := other.node.ReplaceNode(ctx, c.nodes[holder].id, fresh.id, fresh.addr); !errors.Is(err, cluster.ErrDestinationHoldsReplica) {
		t.Fatalf("replace a member by another member: %v", err)
	}
	if _, err := other.node.MoveReplica(ctx, moved, "node9", fresh.id); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("move from an unknown node: %v", err)
	}
	if err := other.node.ReplaceNode(ctx, "node9", fresh.id, fresh.addr); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Fatalf("replace an unknown node: %v", err)
	}
	if voters, nonvoters := c.configuration(moved); !slices.Equal(voters, wantVoters) || len(nonvoters) != 0 {
		t.Fatalf("after the refusals: voters %v non-voters %v, want %v", voters, nonvoters, wantVoters)
	}

	// The new replica survives a restart of its node (reopened from its folder), and the
	// source, restarted, does not reopen the replica it gave away.
	c.kill(fresh)
	c.start(fresh, c.gossipConfig(fresh))
	c.kill(from)
	c.start(from, c.gossipConfig(from))
	if !fresh.node.Hosts(moved) || from.node.Hosts(moved) {
		t.Fatalf("after restarts: %s hosts %v, %s hosts %v", fresh.id, fresh.node.HostedShards(), from.id, from.node.HostedShards())
	}
	proposeAndRead(t, ctx, from, fresh, moved, "after-restarts")
}

// A move stopped after opening the new replica and before adding it (its caller's request
// timed out, the leader was cut off) leaves a replica outside the shard's configuration. It
// knows no leader and never will until the move runs again, yet its node serves the shard by
// forwarding: ReplicaState says so (readiness does not wait for it), and running the move
// again adds it.
func TestReplicaOpenedByAStoppedMoveIsOutsideTheConfiguration(t *testing.T) {
	const shardCount, moved = 2, 1
	c := newGossipCluster(t, 3, shardCount)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	fresh := c.addGossipNode("node4")
	member := c.nodes[0]
	if got := fresh.node.ReplicaState(moved); got != cluster.ReplicaNotHosted {
		t.Fatalf("before the move, node4's replica state is %v", got)
	}
	testutil.Eventually(t, "node4's replica opened", func() bool {
		return member.node.OpenReplicaOn(ctx, fresh.id, moved) == nil
	})
	if !fresh.node.Hosts(moved) {
		t.Fatalf("node4 hosts %v after opening shard %d", fresh.node.HostedShards(), moved)
	}
	if got := fresh.node.ReplicaState(moved); got != cluster.ReplicaOutsideConfiguration {
		t.Fatalf("an opened replica no configuration holds is in state %v, want %v", got, cluster.ReplicaOutsideConfiguration)
	}
	proposeAndRead(t, ctx, fresh, c.leaderOf(moved), moved, "through-a-replica-outside")
	// Its reads go to the leader: the local fence gives up at once rather than at the
	// read's deadline.
	if err := fresh.node.FenceLocalRead(ctx, moved); !errors.Is(err, cluster.ErrReplicaLagging) || ctx.Err() != nil {
		t.Fatalf("a read fence on a replica outside the configuration: %v, want %v", err, cluster.ErrReplicaLagging)
	}

	from := c.leaderOf(moved)
	if _, err := member.node.MoveReplica(ctx, moved, from.id, fresh.id); err != nil {
		t.Fatalf("move run again: %v", err)
	}
	testutil.Eventually(t, "node4's replica led", func() bool { return fresh.node.ReplicaState(moved) == cluster.ReplicaLed })
	if err := fresh.node.FenceLocalRead(ctx, moved); err != nil {
		t.Fatalf("a read fence on the added replica: %v", err)
	}
	for _, n := range c.nodes[:3] {
		if n != from && n.node.ReplicaState(moved) != cluster.ReplicaLed {
			t.Fatalf("%s's replica of shard %d: %v", n.id, moved, n.node.ReplicaState(moved))
		}
	}
}

// TestMoveReplicaResumes: a move whose catch-up wait ends (its context) leaves the new replica a
// non-voter, which costs the shard nothing: with one old voter down the other two still commit.
// Running the move again resumes at the wait and finishes it.
func TestMoveReplicaResumes(t *testing.T) {
	const moved = 0
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	fresh := c.addGossipNode("node4")
	from := c.nodes[2]

	stopped := make(chan struct{})
	restore := cluster.SetAfterAddNonvoter(func(int, string) { <-stopped })
	defer restore()
	moveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.nodes[0].node.MoveReplica(moveCtx, moved, from.id, fresh.id)
		done <- err
	}()
	testutil.Eventually(t, "node4 added as a non-voter", func() bool {
		_, nonvoters := c.configuration(moved)
		return slices.Equal(nonvoters, []string{fresh.id})
	})
	cancel()
	close(stopped)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted move: %v, want context.Canceled", err)
	}
	restore()

	// Three voters and a non-voter: quorum is still two of the three voters.
	c.kill(c.nodes[1])
	survivor := c.nodes[0]
	if survivor == from {
		t.Fatal("test setup: the survivor is the source")
	}
	leader := c.leaderOf(moved) // node1 or node3: two of the three voters
	proposeAndRead(t, ctx, leader, leader, moved, "with-one-voter-down")

	result, err := survivor.node.MoveReplica(ctx, moved, from.id, fresh.id)
	if err != nil || !result.Moved {
		t.Fatalf("resumed move: %+v %v", result, err)
	}
	voters, nonvoters := c.configuration(moved)
	if !slices.Equal(voters, []string{"node1", "node2", "node4"}) || len(nonvoters) != 0 {
		t.Fatalf("after the resumed move: voters %v non-voters %v", voters, nonvoters)
	}
	proposeAndRead(t, ctx, survivor, fresh, moved, "after-resume")
}

// Two moves of one shard to one destination, the second run while the first waits for the
// destination to catch up (a probe's operator sequence; run at once, three such moves left the
// shard one replica): the second finds the destination a non-voter, finishes as an earlier run
// would, and removes its source; the first then finds the destination voting in another
// replica's place and keeps its source. The shard keeps three voters.
func TestTwoMovesToOneDestinationKeepTheReplicaCount(t *testing.T) {
	const moved = 0
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	fresh := c.addGossipNode("node4")
	firstSource, secondSource := c.nodes[1], c.nodes[2]

	var calls atomic.Int32
	blocked, release := make(chan struct{}), make(chan struct{})
	restore := cluster.SetAfterAddNonvoter(func(int, string) {
		if calls.Add(1) == 1 {
			close(blocked)
			<-release // the first move waits here; the second passes
		}
	})
	defer restore()
	done := make(chan error, 1)
	go func() {
		_, err := c.nodes[0].node.MoveReplica(ctx, moved, firstSource.id, fresh.id)
		done <- err
	}()
	// The second move starts once the first waits in the hook: started when the configuration
	// showed node4 (before the first move reached the hook), it took the first call and waited
	// for itself (CI, session 21).
	select {
	case <-blocked:
	case err := <-done:
		t.Fatalf("first move ended before adding node4: %v", err)
	case <-ctx.Done():
		t.Fatal("the first move never added node4")
	}
	if _, nonvoters := c.configuration(moved); !slices.Equal(nonvoters, []string{fresh.id}) {
		t.Fatalf("non-voters %v, want node4", nonvoters)
	}
	if result, err := c.nodes[0].node.MoveReplica(ctx, moved, secondSource.id, fresh.id); err != nil || !result.Moved {
		t.Fatalf("second move: %+v %v", result, err)
	}
	close(release)
	if err := <-done; !errors.Is(err, cluster.ErrReplicaCountShort) {
		t.Fatalf("first move: %v, want ErrReplicaCountShort", err)
	}
	voters, nonvoters := c.configuration(moved)
	if !slices.Equal(voters, []string{"node1", "node2", "node4"}) || len(nonvoters) != 0 {
		t.Fatalf("after both moves: voters %v non-voters %v, want node1 node2 node4", voters, nonvoters)
	}
	proposeAndRead(t, ctx, c.nodes[0], fresh, moved, "after-both")
}

// rulesRecorder is a test state machine that implements and follows given rules versions.
type rulesRecorder struct {
	*shardtest.Recorder
	implemented, follows uint32
}

func (r rulesRecorder) RulesImplemented() uint32 { return r.implemented }
func (r rulesRecorder) Rules() uint32            { return r.follows }

// A move refuses a destination whose binary implements an older rules version than the shard
// follows (a probe's rolling upgrade: the node not yet upgraded stopped at the raise, at every
// start), and lets the replica it opened there go; nothing else changes.
func TestMoveRefusesADestinationThatDoesNotImplementTheShardsRules(t *testing.T) {
	const moved = 0
	c := newGossipClusterWith(t, 3, 1, nil, func(cfg *cluster.Config) {
		open := cfg.OpenStateMachine
		implemented := uint32(6)
		if cfg.NodeID == "node4" {
			implemented = 5
		}
		cfg.OpenStateMachine = func(shardID int, dir string) (shard.StateMachine, error) {
			sm, err := open(shardID, dir)
			if err != nil {
				return nil, err
			}
			return rulesRecorder{Recorder: sm.(*shardtest.Recorder), implemented: implemented, follows: 6}, nil
		}
	})
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	old := c.addGossipNode("node4")
	_, err := c.nodes[0].node.MoveReplica(ctx, moved, c.nodes[1].id, old.id)
	if !errors.Is(err, cluster.ErrDestinationTooOld) {
		t.Fatalf("move to a node implementing rules 5 of a shard at 6: %v, want ErrDestinationTooOld", err)
	}
	voters, nonvoters := c.configuration(moved)
	if !slices.Equal(voters, []string{"node1", "node2", "node3"}) || len(nonvoters) != 0 {
		t.Fatalf("after the refusal: voters %v non-voters %v", voters, nonvoters)
	}
	testutil.Eventually(t, "node4 let its empty replica go", func() bool { return len(old.node.HostedShards()) == 0 })
}

// TestMoveReplicaFigures measures how long a move takes with N commands in the shard (opt-in:
// GIGALEDGER_MOVE_FIGURES=1, or =N for N commands): 3 gossip nodes, one shard, N 16-byte commands proposed by 64
// proposers (group commit packs them into far fewer log entries), then a follower's replica
// moves to a fourth node that joined by gossip; once from the log alone, once after a snapshot
// with the log compacted behind it (TrailingLogsCount 16), so the new replica installs it.
func TestMoveReplicaFigures(t *testing.T) {
	setting := os.Getenv("GIGALEDGER_MOVE_FIGURES")
	if setting == "" {
		t.Skip("set GIGALEDGER_MOVE_FIGURES=1 to measure moves (or =N for N commands)")
	}
	counts := []int{10_000, 100_000}
	if n, err := strconv.Atoi(setting); err == nil && n > 1 {
		counts = []int{n}
	}
	for _, commands := range counts {
		for _, snapshot := range []bool{false, true} {
			t.Run(fmt.Sprintf("commands%d/snapshot%v", commands, snapshot), func(t *testing.T) {
				var tune func(*shard.Config)
				if snapshot {
					tune = func(cfg *shard.Config) { cfg.TrailingLogsCount = 16 }
				}
				c := newTunedGossipCluster(t, 3, 1, tune)
				ctx := testutil.Context(t, 5*time.Minute)
				leader := c.leaderOf(0)
				var wg sync.WaitGroup
				var retries atomic.Int64
				const proposers = 64
				for p := range proposers {
					wg.Go(func() {
						for i := p; i < commands; i += proposers {
							for ctx.Err() == nil { // a leader change under load: send again (a duplicate is harmless here)
								if _, err := leader.node.Propose(ctx, 0, fmt.Appendf(nil, "command-%09d", i)); err == nil {
									break
								}
								retries.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if snapshot { // on every replica: whichever leads during the move has compacted its log
					for _, n := range c.nodes {
						if err := n.node.Shard(0).Snapshot(); err != nil {
							t.Fatal(err)
						}
					}
				}
				leader = c.leaderOf(0)
				stats := leader.node.Shard(0).Stats()
				fresh := c.addGossipNode("node4")
				var from *multiNode
				for _, n := range c.nodes[:3] {
					if n != leader {
						from = n
						break
					}
				}
				start := time.Now()
				result, err := leader.node.MoveReplica(ctx, 0, from.id, fresh.id)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d commands (%d proposals retried) in %d log entries (snapshot at %d): move %v, of which catch-up %d ms; snapshots installed by the new replica: %d",
					commands, retries.Load(), stats.CommitIndex, stats.LastSnapshotIndex, time.Since(start).Round(time.Millisecond), result.CatchUpMs,
					fresh.recorder(0).RestoreCount())
			})
		}
	}
}

// A move whose source is down removes it from the configuration but cannot make it delete its
// replica; the source, started again, reopens that replica outside the configuration. A move
// run again is not done until the source has deleted it: with the source still down it fails
// (before, it answered done and left the replica behind for good), once the source runs it
// retires the replica and answers done.
func TestMoveReplicaRetiresASourceThatWasDown(t *testing.T) {
	const moved = 0
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 3*testutil.WaitMax)
	from, fresh := moveFromADeadSource(t, ctx, c, moved)
	voters, nonvoters := c.configuration(moved)
	if !slices.Equal(voters, []string{"node1", "node2", "node4"}) || len(nonvoters) != 0 {
		t.Fatalf("after the move: voters %v non-voters %v", voters, nonvoters)
	}
	if result, err := c.nodes[1].node.MoveReplica(ctx, moved, from.id, fresh.id); !errors.Is(err, cluster.ErrSourceNotRetired) {
		t.Fatalf("move run again with the source still down: %+v %v, want ErrSourceNotRetired until it deletes its replica", result, err)
	}

	c.start(from, c.gossipConfig(from))
	if !from.node.Hosts(moved) {
		t.Fatal("the restarted source did not reopen its old replica: the test shows nothing")
	}
	if result, err := c.nodes[1].node.MoveReplica(ctx, moved, from.id, fresh.id); err != nil || result.Moved {
		t.Fatalf("move run again with the source back: %+v %v, want done with nothing left to move", result, err)
	}
	if from.node.Hosts(moved) {
		t.Fatalf("%s still hosts shard %d after the move finished", from.id, moved)
	}
	proposeAndRead(t, ctx, c.leaderOf(moved), fresh, moved, "after-retire")
}

// A source removed from its shard while it was down retires its replica by itself once it
// runs again, without the move being run again: its node asks the shard's leader for the
// committed configuration, finds itself gone, and deletes the replica, so that it neither
// stays leaderless (the node unready) nor keeps the data outside its configuration for good
// (which of the two depends on whether raft's last send to it landed before the kill). A
// leaderless replica that the configuration still names — here its shard has lost its quorum
// — is asked about and kept.
func TestASourceRemovedWhileDownRetiresItsReplicaByItself(t *testing.T) {
	const moved = 0
	// Restored after the cluster's cleanup has closed its nodes (cleanups run last first).
	t.Cleanup(cluster.SetRemovedReplicaCheck(50*time.Millisecond, 200*time.Millisecond))
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 3*testutil.WaitMax)
	from, fresh := moveFromADeadSource(t, ctx, c, moved)

	c.start(from, c.gossipConfig(from))
	testutil.Eventually(t, "the removed source to retire its replica", func() bool { return !from.node.Hosts(moved) })
	if state := from.node.ReplicaState(moved); state != cluster.ReplicaNotHosted {
		t.Fatalf("the source's replica after retiring: %v", state)
	}
	if result, err := c.nodes[1].node.MoveReplica(ctx, moved, from.id, fresh.id); err != nil || result.Moved {
		t.Fatalf("move run again: %+v %v, want done with nothing left to move", result, err)
	}
	proposeAndRead(t, ctx, c.leaderOf(moved), fresh, moved, "after-self-retire")

	// The shard's quorum lost: node1 alone has no leader, and keeps its replica.
	keeper := c.nodes[0]
	for _, other := range []*multiNode{c.nodes[1], fresh} {
		c.kill(other)
	}
	asked := keeper.node.RemovedReplicaChecks()
	testutil.Eventually(t, "node1 to ask a leader about its leaderless replica twice more", func() bool {
		return keeper.node.RemovedReplicaChecks() >= asked+2
	})
	if !keeper.node.Hosts(moved) {
		t.Fatal("a replica still in its configuration was retired while its shard had no leader")
	}
}

// moveFromADeadSource kills node3, adds node4 and moves node3's replica of shardID to it: the
// move is done in the configuration and fails to make the dead source delete its replica.
func moveFromADeadSource(t *testing.T, ctx context.Context, c *multiCluster, shardID int) (from, fresh *multiNode) {
	t.Helper()
	fresh = c.addGossipNode("node4")
	from = c.nodes[2]
	c.kill(from)
	c.leaderOf(shardID)
	if result, err := c.nodes[0].node.MoveReplica(ctx, shardID, from.id, fresh.id); err == nil || !result.Moved {
		t.Fatalf("move from a dead source: %+v %v, want moved and an error (its replica not deleted)", result, err)
	}
	return from, fresh
}

// A move's source that was down is started again while the move asks it to delete its
// replica: its port serves before it has reopened its replicas from disk. The request must wait
// for them; answered "nothing hosted" at once, the move would be done and the replica then
// reopened outside the configuration for good (the fault suite's kill-moving found it).
func TestMoveReplicaRetiresASourceStillStarting(t *testing.T) {
	const moved = 0
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 3*testutil.WaitMax)
	from, fresh := moveFromADeadSource(t, ctx, c, moved)

	reached, release := make(chan struct{}), make(chan struct{})
	restore := cluster.SetBeforeOpenShards(func(nodeID string) {
		if nodeID == from.id {
			close(reached)
			<-release
		}
	})
	defer restore()
	started := make(chan struct{})
	go func() {
		defer close(started)
		c.start(from, c.gossipConfig(from))
	}()
	<-reached
	// The source serves but has not reopened its replica: the move cannot finish yet.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	result, err := c.nodes[1].node.MoveReplica(short, moved, from.id, fresh.id)
	cancel()
	if err == nil {
		t.Fatalf("move answered done (%+v) while its source had not reopened its replicas", result)
	}
	close(release)
	<-started
	restore()
	if !from.node.Hosts(moved) {
		t.Fatal("the restarted source did not reopen its old replica: the test shows nothing")
	}
	if _, err := c.nodes[1].node.MoveReplica(ctx, moved, from.id, fresh.id); err != nil {
		t.Fatalf("move once the source has started: %v", err)
	}
	if from.node.Hosts(moved) {
		t.Fatalf("%s still hosts shard %d after the move finished", from.id, moved)
	}
}

// A seed node (started with no --join, as the README's first node is) that left the gossip and
// comes back with the same configuration rejoins by itself: it remembers the members it saw
// (gossip-members.json). Found by a probe: the others had marked it gone, gossip never tries
// such a member again, and it stayed cut off for good.
func TestASeedRestartedWithoutJoinRejoins(t *testing.T) {
	c := newGossipCluster(t, 3, 1)
	seed, other := c.nodes[0], c.nodes[1]
	if cfg := c.gossipConfig(seed); len(cfg.Join) != 0 {
		t.Fatalf("test setup: the seed joins %v", cfg.Join)
	}
	state := func(of string) string {
		for _, n := range other.node.Status().Nodes {
			if n.ID == of {
				return n.State
			}
		}
		return ""
	}
	testutil.Eventually(t, "the seed remembers the others", func() bool {
		data, err := os.ReadFile(filepath.Join(seed.dataDir, "gossip-members.json"))
		return err == nil && strings.Contains(string(data), other.gossipAddr)
	})
	c.kill(seed)
	testutil.Eventually(t, "the others see the seed gone", func() bool { return state(seed.id) != cluster.NodeStateAlive })
	c.start(seed, c.gossipConfig(seed))
	testutil.EventuallyWithin(t, 30*time.Second, "the others see the seed alive again", func() bool { return state(seed.id) == cluster.NodeStateAlive })
}

// A node started on its own (a careless operator's default) holds a replica of every shard with
// a log and a state of its own. Made the destination of a replace, it counted its own applied
// index as caught up, the old node's data was deleted, and the shard's ledger became that
// node's (a helper's probe). The replace is refused and nothing changes on either side.
func TestReplaceNodeRefusesADestinationWithItsOwnHistory(t *testing.T) {
	c := newGossipCluster(t, 3, 1)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	leader := c.leaderOf(0)
	for i := range 20 {
		proposeUntilAnswered(t, ctx, leader, 0, fmt.Sprintf("real-%d", i))
	}

	stranger := newMultiNodes(t, 1)[0]
	stranger.id = "stranger"
	alone := &multiCluster{tb: t, nodes: []*multiNode{stranger}}
	t.Cleanup(alone.closeAll)
	cfg := alone.gossipConfig(stranger)
	cfg.BootstrapExpect, cfg.ShardCount, cfg.ReplicaCount = 1, 1, 1
	cfg.TLS = c.nodeTLS(stranger.id) // the cluster's certificates, as an operator would give a new node
	alone.start(stranger, cfg)
	for i := range 20 {
		proposeUntilAnswered(t, ctx, alone.leaderOf(0), 0, fmt.Sprintf("ghost-%d", i))
	}

	var old *multiNode
	for _, n := range c.nodes {
		if n != leader {
			old = n
			break
		}
	}
	// Another member's address is no new node's (it answered 503 "safe to repeat" for ever).
	if err := leader.node.ReplaceNode(ctx, old.id, "node9", leader.addr); !errors.Is(err, cluster.ErrInvalidMove) {
		t.Fatalf("replace %s by a node at %s's address: %v", old.id, leader.id, err)
	}
	err := leader.node.ReplaceNode(ctx, old.id, stranger.id, stranger.addr)
	if !errors.Is(err, cluster.ErrDestinationNotFresh) {
		t.Fatalf("replace %s by a node with its own history: %v", old.id, err)
	}
	if voters, nonvoters := c.configuration(0); !slices.Equal(voters, []string{"node1", "node2", "node3"}) || len(nonvoters) != 0 {
		t.Fatalf("configuration after the refusal: voters %v, non-voters %v", voters, nonvoters)
	}
	if hosted := old.node.HostedShards(); len(hosted) != 1 {
		t.Fatalf("%s hosts %v after the refusal", old.id, hosted)
	}
	commands := stranger.recorder(0).Commands()
	if len(commands) == 0 || slices.ContainsFunc(commands, func(c string) bool { return strings.HasPrefix(c, "real-") }) {
		t.Fatalf("the stranger's replica after the refusal: %v", commands)
	}
}
