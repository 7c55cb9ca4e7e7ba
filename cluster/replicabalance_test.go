package cluster_test

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// replicaCounts counts the replicas each node holds in n's view (every shard's configuration).
func replicaCounts(n *cluster.Node) map[string]int {
	counts := map[string]int{}
	for _, s := range n.Status().Shards {
		for _, id := range s.Replicas {
			counts[id]++
		}
	}
	return counts
}

// TestBalanceReplicasOntoJoinedNode: 3 gossip nodes, 4 shards of 3 replicas; a fourth joins.
// A move run by another node, held with its replica a non-voter, makes BalanceReplicas refuse
// (ErrMoveInProgress). Once that move is done (4-4-3-1 or the like), BalanceReplicas makes the
// two moves to 3-3-3-3, each from the busiest node to node4, and a second call makes none. A
// node holding replicas going down makes it refuse (ErrNodeDown) after its bounded wait.
func TestBalanceReplicasOntoJoinedNode(t *testing.T) {
	const shardCount, held = 4, 1
	c := newGossipCluster(t, 3, shardCount)
	ctx := testutil.Context(t, 2*testutil.WaitMax)
	from := c.leaderOf(held)
	fresh := c.addGossipNode("node4")
	balancer := c.nodes[0]
	if balancer == from {
		balancer = c.nodes[1]
	}

	sawNonvoter := make(chan struct{})
	release := make(chan struct{})
	restore := cluster.SetAfterAddNonvoter(func(shardID int, nodeID string) {
		if shardID == held && nodeID == fresh.id {
			close(sawNonvoter)
			<-release
		}
	})
	defer restore()
	moveDone := make(chan error, 1)
	go func() {
		_, err := from.node.MoveReplica(ctx, held, from.id, fresh.id)
		moveDone <- err
	}()
	<-sawNonvoter
	if result, err := balancer.node.BalanceReplicas(ctx); !errors.Is(err, cluster.ErrMoveInProgress) || len(result.Moves) != 0 {
		t.Fatalf("BalanceReplicas during another node's move = %+v, %v; want ErrMoveInProgress", result, err)
	}
	close(release)
	if err := <-moveDone; err != nil {
		t.Fatalf("MoveReplica: %v", err)
	}
	restore()

	result, err := balancer.node.BalanceReplicas(ctx)
	if err != nil {
		t.Fatalf("BalanceReplicas: %v (did %+v)", err, result)
	}
	want := map[string]int{c.nodes[0].id: 3, c.nodes[1].id: 3, c.nodes[2].id: 3, fresh.id: 3}
	if len(result.Moves) != 2 || !result.Balanced || !maps.Equal(result.Replicas, want) {
		t.Fatalf("BalanceReplicas = %+v; want 2 moves to 3-3-3-3", result)
	}
	for _, m := range result.Moves {
		if m.To != fresh.id || m.From == from.id || !m.Moved {
			t.Fatalf("moves %+v: want each from a node still holding 4 to %s", result.Moves, fresh.id)
		}
	}
	for _, n := range c.up() {
		if got := replicaCounts(n.node); !maps.Equal(got, want) {
			t.Fatalf("%s counts %v", n.id, got)
		}
	}
	if hosted := fresh.node.HostedShards(); len(hosted) != 3 {
		t.Fatalf("%s hosts %v", fresh.id, hosted)
	}
	again, err := c.nodes[2].node.BalanceReplicas(ctx)
	if err != nil || len(again.Moves) != 0 || !again.Balanced {
		t.Fatalf("second BalanceReplicas = %+v, %v; want nothing to do", again, err)
	}

	// A node holding replicas goes down: no move (its replicas are ReplaceNode's).
	down := c.nodes[2]
	if down == balancer {
		down = c.nodes[0]
	}
	c.kill(down)
	testutil.Eventually(t, down.id+" seen not alive", func() bool {
		return !slices.ContainsFunc(balancer.node.Status().Nodes, func(s cluster.NodeStatus) bool {
			return s.ID == down.id && s.State == cluster.NodeStateAlive
		})
	})
	if result, err := balancer.node.BalanceReplicas(ctx); !errors.Is(err, cluster.ErrNodeDown) || len(result.Moves) != 0 {
		t.Fatalf("BalanceReplicas with %s down = %+v, %v; want ErrNodeDown", down.id, result, err)
	}
}
