package cluster_test

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// Every node names each shard's leader by the API URL the leader advertises: the leader
// itself, a follower replica (learning the URL from the leader over the cluster port), and a
// node that does not host the shard (the leader named by gossip). After the leader of a shard
// stops, the others name the new one.
func TestLeaderAPIURLNamesTheLeaderEverywhere(t *testing.T) {
	const shardCount = 2
	c := newGossipCluster(t, 4, shardCount) // 3 replicas of each shard: one node hosts none of it
	namesLeaders := func() bool {
		for k := range shardCount {
			leader := c.leaderOf(k)
			for _, n := range c.nodes {
				if n.node != nil && n.node.LeaderAPIURL(k) != apiURLOf(leader.id) {
					return false
				}
			}
		}
		return true
	}
	testutil.Eventually(t, "every node names every shard's leader", namesLeaders)
	for k := range shardCount {
		hosts := 0
		for _, n := range c.nodes {
			if n.node.Hosts(k) {
				hosts++
			}
		}
		if hosts == len(c.nodes) {
			t.Fatalf("shard %d is hosted everywhere: the gossip path is not exercised", k)
		}
	}

	stopped := c.leaderOf(0)
	c.kill(stopped)
	testutil.Eventually(t, fmt.Sprintf("the others name shard 0's new leader, not %s", stopped.id), func() bool {
		leader := c.leaderOf(0)
		return leader != stopped && namesLeaders()
	})
}
