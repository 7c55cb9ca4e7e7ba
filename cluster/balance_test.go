package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// pileLeaders makes node leader of every shard (raft's own transfer, to that voter) and
// checks that it leads them all.
func pileLeaders(t *testing.T, c *multiCluster, shardCount int, node *multiNode) {
	t.Helper()
	for k := range shardCount {
		testutil.Eventually(t, fmt.Sprintf("%s leading shard %d", node.id, k), func() bool {
			leader := c.leaderOf(k)
			if leader == node {
				return true
			}
			_ = leader.node.Shard(k).TransferLeadershipTo(node.id, node.addr)
			return node.node.Shard(k).Stats().LeaderReady
		})
	}
	testutil.Eventually(t, fmt.Sprintf("%s leading all %d shards at once", node.id, shardCount), func() bool {
		return leadCounts(c, shardCount)[node.id] == shardCount
	})
}

// leadCounts counts, from raft (each replica that says it is a ready leader), the shards each
// running node leads.
func leadCounts(c *multiCluster, shardCount int) map[string]int {
	counts := map[string]int{}
	for _, n := range c.up() {
		counts[n.id] = 0
		for k := range shardCount {
			if s := n.node.Shard(k); s != nil && s.Stats().LeaderReady {
				counts[n.id]++
			}
		}
	}
	return counts
}

func spread(counts map[string]int) int {
	lo, hi := -1, 0
	for _, v := range counts {
		if lo < 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	return hi - lo
}

func sum(counts map[string]int) int {
	total := 0
	for _, v := range counts {
		total += v
	}
	return total
}

// The balancer in the background: a 3-node, 4-shard cluster whose leaders all land on one
// node ends with a spread of at most one (2-1-1), by one transfer per look.
func TestLeaderBalancerSpreadsLeadersPiledOnOneNode(t *testing.T) {
	const shardCount = 4
	resume := cluster.PauseLeaderBalancer()
	defer resume()
	c := newGossipClusterWith(t, 3, shardCount, nil, func(cfg *cluster.Config) {
		cfg.LeaderBalanceInterval = 200 * time.Millisecond
	})
	pileLeaders(t, c, shardCount, c.nodes[1])
	resume()
	testutil.Eventually(t, "leadership spread over the nodes (max - min ≤ 1)", func() bool {
		counts := leadCounts(c, shardCount)
		return sum(counts) == shardCount && spread(counts) <= 1
	})
	// Balanced is a fixed point: no further transfer for several looks. Raft itself may still
	// move a leader (an election on a loaded machine); a transfer is only wrong when every
	// state raft showed meanwhile was balanced.
	transfers := func() (total int64) {
		for _, n := range c.nodes {
			total += n.node.LeaderTransfersMade()
		}
		return total
	}
	// A transfer planned from a view taken before the spread evened out (gossip names leaders a
	// little after raft) may still complete and be counted: start watching once the count has
	// stood still for five looks with raft's leaders balanced.
	last, lastChange := transfers(), time.Now()
	testutil.Eventually(t, "the balancer idle on a balanced cluster", func() bool {
		if now := transfers(); now != last {
			last, lastChange = now, time.Now()
		}
		counts := leadCounts(c, shardCount)
		if sum(counts) != shardCount || spread(counts) > 1 {
			lastChange = time.Now()
		}
		return time.Since(lastChange) >= 5*200*time.Millisecond
	})
	before, leadersBefore := transfers(), leaderIDs(c, shardCount)
	unbalanced := ""
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if counts := leadCounts(c, shardCount); sum(counts) != shardCount || spread(counts) > 1 {
			unbalanced = fmt.Sprint(counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after := transfers(); after != before {
		if unbalanced == "" {
			t.Fatalf("%d transfers on a balanced cluster: leaders %v, then %v", after-before, leadersBefore, leaderIDs(c, shardCount))
		}
		t.Logf("raft moved a leader (leads %s) and the balancer made %d transfers", unbalanced, after-before)
	}
}

// On request (POST /cluster/balance-leaders): one call balances a cluster whose leaders are
// piled on one node, transfer by transfer, and says what it did; a second call does nothing.
func TestBalanceLeadersOnRequest(t *testing.T) {
	const shardCount = 4
	c := newGossipCluster(t, 3, shardCount)
	pileLeaders(t, c, shardCount, c.nodes[0])
	ctx, cancel := context.WithTimeout(context.Background(), testutil.WaitMax)
	defer cancel()
	result, err := c.nodes[2].node.BalanceLeaders(ctx)
	if err != nil {
		t.Fatalf("BalanceLeaders: %v (did %+v)", err, result)
	}
	if !result.Balanced || len(result.Transfers) != 2 || spread(result.Leads) > 1 {
		t.Fatalf("BalanceLeaders = %+v; want 2 transfers to a balanced 2-1-1", result)
	}
	for _, tr := range result.Transfers {
		if tr.From != c.nodes[0].id {
			t.Fatalf("transfer %+v not from the busiest node %s", tr, c.nodes[0].id)
		}
	}
	// The last transfer's new leader may not have applied its first entry yet (not ready):
	// wait until every shard has a ready leader, then count.
	var counts map[string]int
	testutil.Eventually(t, "a ready leader for every shard", func() bool {
		counts = leadCounts(c, shardCount)
		total := 0
		for _, v := range counts {
			total += v
		}
		return total == shardCount
	})
	if spread(counts) > 1 {
		t.Fatalf("raft's leaders %v after BalanceLeaders", counts)
	}
	again, err := c.nodes[1].node.BalanceLeaders(ctx)
	if err != nil || len(again.Transfers) != 0 || !again.Balanced {
		t.Fatalf("second BalanceLeaders = %+v, %v; want nothing to do", again, err)
	}
}

func leaderIDs(c *multiCluster, shardCount int) string {
	ids := ""
	for k := range shardCount {
		id := ""
		for _, n := range c.up() {
			if s := n.node.Shard(k); s != nil && s.Stats().LeaderReady {
				id = n.id
			}
		}
		ids += id + ","
	}
	return ids
}
