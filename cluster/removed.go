package cluster

import "time"

// How a node finds replicas that their shard removed while it was down: every
// removedCheckInterval it looks at its replicas, and asks the leader about one that has had no
// leader for removedPatience (read when the node opens; tests shorten both).
var (
	removedCheckInterval = 5 * time.Second
	removedPatience      = 15 * time.Second
)

// retireRemovedReplicas retires the replicas whose shard removed this node from its
// configuration while the node was down: a move or ReplaceNode whose source could not be
// asked to delete its replica. Such a replica reopens at start and no leader contacts it
// again. If it never heard of its removal, it has this node in its last configuration, so it
// stays leaderless and the node unready until the move is run again; if the leader's last
// send reached it (raft replicates a removed server up to its removal when it can), it sits
// outside its configuration with its data kept for good. This loop does what the rerun's
// retire request does (handleRetireReplica), on the node's own initiative: about each replica
// that has had no leader for removedPatience and was a member of a configuration once
// (mayBeRemoved), it asks the shard's leader for the committed configuration, and retires the
// replica when that does not name this node. A replica with an empty configuration (opened
// by a move that has not added it yet) is the move's to finish, and a shard without a
// reachable leader is asked again later; neither is touched.
func (n *Node) retireRemovedReplicas(interval, patience time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	leaderlessSince := map[int]time.Time{}
	for {
		select {
		case <-n.closing:
			return
		case <-ticker.C:
		}
		now := time.Now()
		for shardID := range n.ShardCount() {
			if !n.mayBeRemoved(shardID) {
				delete(leaderlessSince, shardID)
				continue
			}
			since, seen := leaderlessSince[shardID]
			if !seen {
				leaderlessSince[shardID] = now
			}
			if !seen || now.Sub(since) < patience {
				continue
			}
			if n.retireIfRemoved(shardID, interval) {
				delete(leaderlessSince, shardID)
			}
		}
	}
}

// mayBeRemoved reports whether this node's replica of shardID knows no leader and was a member
// of a configuration once: its own last configuration may still name this node (it was down
// when removed) or not (it heard of its removal, and nothing since). A replica whose
// configuration is empty was opened by a move that has not added it yet: the move's to finish.
func (n *Node) mayBeRemoved(shardID int) bool {
	replica := n.Shard(shardID)
	if replica == nil {
		return false
	}
	if id, _ := replica.Leader(); id != "" {
		return false
	}
	servers, err := replica.Servers()
	return err == nil && len(servers) > 0
}

// retireIfRemoved retires the local replica of shardID if the shard's committed configuration,
// read from its leader within timeout, no longer names this node; it reports whether it did.
func (n *Node) retireIfRemoved(shardID int, timeout time.Duration) bool {
	n.removedChecks.Add(1)
	ctx, cancel := n.backgroundContext(timeout)
	defer cancel()
	servers, err := n.committedServers(ctx, shardID)
	if err != nil {
		n.logger.Debug("leaderless replica: no committed configuration from a leader", "shard", shardID, "error", err)
		return false
	}
	if peerOf(servers, n.cfg.NodeID) != nil {
		return false
	}
	n.recordReplicas(shardID, servers)
	if err := n.retireShard(shardID); err != nil {
		n.logger.Warn("the shard removed this node while it was down; deleting its replica failed", "shard", shardID, "error", err)
		return false
	}
	n.logger.Info("the shard removed this node while it was down: retired its replica", "shard", shardID)
	return true
}
