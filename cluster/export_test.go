package cluster

import (
	"context"
	"time"
)

// SetAfterAddNonvoter makes every move call hook once its new replica is a non-voter, before
// the catch-up wait; the returned function removes it. Tests that use it must not run in
// parallel with other moves.
func SetAfterAddNonvoter(hook func(shardID int, nodeID string)) (restore func()) {
	afterAddNonvoter = hook
	return func() { afterAddNonvoter = nil }
}

// PauseLeaderBalancer makes every node's leader balancer skip its looks until the returned
// function runs. Tests that use it must not run in parallel with other balancer tests.
func PauseLeaderBalancer() (resume func()) {
	leaderBalancerPaused.Store(true)
	return func() { leaderBalancerPaused.Store(false) }
}

// SetBeforeOpenShards makes every node being opened call hook once its port serves and before
// it opens its replicas; the returned function removes it.
func SetBeforeOpenShards(hook func(nodeID string)) (restore func()) {
	beforeOpenShards = hook
	return func() { beforeOpenShards = nil }
}

// LeaderTransfersMade is how many leadership transfers this node's balancer made.
func (n *Node) LeaderTransfersMade() int64 { return n.leaderTransfers.Load() }

// OpenReplicaOn runs only the first step of a move: it asks nodeID to open an empty replica of
// shardID, which no configuration holds yet.
func (n *Node) OpenReplicaOn(ctx context.Context, nodeID string, shardID int) error {
	_, err := n.callAt(ctx, n.raftAddrOf(nodeID), shardID, rpcKindOpenReplica, nil)
	return err
}

// SetRemovedReplicaCheck sets how often nodes look for replicas their shard removed while they
// were down, and how long such a replica must have had no leader; the returned function
// restores the defaults. Nodes read them when they open.
func SetRemovedReplicaCheck(interval, patience time.Duration) (restore func()) {
	oldInterval, oldPatience := removedCheckInterval, removedPatience
	removedCheckInterval, removedPatience = interval, patience
	return func() { removedCheckInterval, removedPatience = oldInterval, oldPatience }
}

// RemovedReplicaChecks is how many times this node asked a leader whether a leaderless
// replica of it was removed.
func (n *Node) RemovedReplicaChecks() int64 { return n.removedChecks.Load() }

// ConfirmTerm runs the read-index rounds' term confirmation of shardID with term.
func (n *Node) ConfirmTerm(ctx context.Context, shardID int, term uint64) error {
	hs := n.hosted(shardID)
	if hs == nil {
		return ErrNotHosted
	}
	return n.confirmTerm(ctx, shardID, hs.shard, term)
}
