package cluster_test

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard/nodelog"
)

// TestRaftLogModeSwitchAfterCleanShutdown restarts every node from the shared node log into
// per-shard sync and back: a clean shutdown leaves each raft.db holding its whole log, so no
// replica loses entries, and proposals work in both modes.
func TestRaftLogModeSwitchAfterCleanShutdown(t *testing.T) {
	const shardCount = 2
	c := newStaticCluster(t, 3, shardCount, 3, nil)
	ctx := testutil.Context(t, testutil.WaitMax)
	for round, mode := range []nodelog.Mode{nodelog.ModePerShardSync, nodelog.ModeShared} {
		for k := range shardCount {
			leader := c.leaderOf(k)
			proposeAndRead(t, ctx, leader, leader, k, fmt.Sprintf("round%d-shard%d", round, k))
		}
		lastBefore := map[string]uint64{}
		for _, n := range c.nodes {
			for k := range shardCount {
				lastBefore[fmt.Sprintf("%s/%d", n.id, k)] = n.node.Shard(k).Stats().LastLogIndex
			}
		}
		c.raftLogMode = mode
		for _, n := range c.nodes {
			c.kill(n)
			c.start(n, c.config(n))
			for k := range shardCount {
				key := fmt.Sprintf("%s/%d", n.id, k)
				if last := n.node.Shard(k).Stats().LastLogIndex; last < lastBefore[key] {
					t.Fatalf("%s reopened in mode %s with last log index %d, had %d", key, mode, last, lastBefore[key])
				}
			}
		}
		for k := range shardCount {
			leader := c.leaderOf(k)
			proposeAndRead(t, ctx, leader, leader, k, fmt.Sprintf("round%d-shard%d-after", round, k))
		}
	}
}
