package cluster

import (
	"context"
	"fmt"
)

// ReplicasImplementRules says whether every replica of shardID (voters and non-voters: each
// applies the log) runs a binary that implements rules version (its replica stats'
// RulesImplemented, fsm/rules.go). The shard's leader asks it before it raises the shard's
// rules, so that a rolling upgrade switches a changed rule on only once the last old binary
// is gone. A replica that does not answer counts as not implementing it (ask again later).
func (n *Node) ReplicasImplementRules(ctx context.Context, shardID int, version uint32) (bool, error) {
	hs, err := n.localShard(shardID)
	if err != nil {
		return false, err
	}
	servers, err := hs.shard.Servers()
	if err != nil {
		return false, err
	}
	for _, p := range servers {
		stats := hs.shard.Stats()
		if p.ID != n.cfg.NodeID {
			if stats, err = n.replicaStatsAt(ctx, p.Addr, shardID); err != nil {
				return false, fmt.Errorf("replica %s of shard %d: %w", p.ID, shardID, err)
			}
		}
		if stats.RulesImplemented < version {
			return false, nil
		}
	}
	return true, nil
}
