package shard

import (
	"strconv"

	"github.com/hashicorp/raft"
)

// Stats is a point-in-time view of a replica for /cluster and /readyz.
type Stats struct {
	ShardID           string `json:"shardId"`
	NodeID            string `json:"nodeId"`
	State             string `json:"state"`
	Term              uint64 `json:"term"`
	LeaderID          string `json:"leaderId"`
	LeaderAddr        string `json:"leaderAddr"`
	LeaderReady       bool   `json:"leaderReady"`
	LastLogIndex      uint64 `json:"lastLogIndex"`
	CommitIndex       uint64 `json:"commitIndex"`
	AppliedIndex      uint64 `json:"appliedIndex"`
	LastSnapshotIndex uint64 `json:"lastSnapshotIndex"`
	LastContact       string `json:"lastContact"`
	QueueDepth        int    `json:"queueDepth"`
	InflightBatches   int    `json:"inflightBatches"`
	ProposedBatches   uint64 `json:"proposedBatches"`
	ProposedCommands  uint64 `json:"proposedCommands"`
	ReadIndexCalls    uint64 `json:"readIndexCalls"`
	ReadIndexRounds   uint64 `json:"readIndexRounds"`
	// ReadCatchUps counts follower reads that applied the local log up to the leader's read
	// index themselves (WaitRead).
	ReadCatchUps uint64 `json:"readCatchUps"`
	// SnapshotReferenceBytes, SnapshotReceivedBytes and SnapshotOpenedBytes count, for a
	// state machine that takes checkpoints, the bytes written into raft's snapshot store by
	// local snapshots (checkpoint references) and by snapshots received from a leader, and the
	// bytes of checkpoint streams opened to send to a follower or to restore at Open.
	SnapshotReferenceBytes uint64 `json:"snapshotReferenceBytes"`
	SnapshotReceivedBytes  uint64 `json:"snapshotReceivedBytes"`
	SnapshotOpenedBytes    uint64 `json:"snapshotOpenedBytes"`
	// RulesImplemented is the newest rules version the replica's binary implements (a state
	// machine's RulesImplementer; 0 for one that has none, or a binary from before them). A
	// shard's leader raises the shard's rules only when every voter implements them.
	RulesImplemented uint32 `json:"rulesImplemented,omitempty"`
	// Rules is the shard's rules version as of the replica's last applied batch (a state
	// machine's RulesFollower; 0 for one that has none, or a binary from before the field). A
	// move refuses a destination whose binary implements less than its leader's.
	Rules uint32 `json:"rules,omitempty"`
}

// RulesImplementer is a state machine whose binary implements rules versions (fsm/rules.go).
type RulesImplementer interface {
	RulesImplemented() uint32
}

// RulesFollower is a state machine that follows a shard's rules version (fsm/rules.go): the
// version as of its last applied batch.
type RulesFollower interface {
	Rules() uint32
}

// Stats returns the replica's current Stats.
func (s *Shard) Stats() Stats {
	leaderID, leaderAddr := s.Leader()
	raftStats := s.raft.Stats()
	lastSnapshotIndex, _ := strconv.ParseUint(raftStats["last_snapshot_index"], 10, 64)
	term := s.raft.CurrentTerm()
	var referenceBytes, receivedBytes, openedBytes uint64
	if s.checkpoints != nil {
		referenceBytes = s.checkpoints.referenceBytes.Load()
		receivedBytes = s.checkpoints.streamBytes.Load()
		openedBytes = s.checkpoints.openedBytes.Load()
	}
	var rules, following uint32
	if r, ok := s.sm.(RulesImplementer); ok {
		rules = r.RulesImplemented()
	}
	if r, ok := s.sm.(RulesFollower); ok {
		following = r.Rules()
	}
	return Stats{
		RulesImplemented:  rules,
		Rules:             following,
		ShardID:           s.cfg.ShardID,
		NodeID:            s.cfg.NodeID,
		State:             s.raft.State().String(),
		Term:              term,
		LeaderID:          leaderID,
		LeaderAddr:        leaderAddr,
		LeaderReady:       s.raft.State() == raft.Leader && s.readyTerm.Load() == term,
		LastLogIndex:      s.raft.LastIndex(),
		CommitIndex:       s.raft.CommitIndex(),
		AppliedIndex:      s.adapter.appliedIndex(),
		LastSnapshotIndex: lastSnapshotIndex,
		LastContact:       raftStats["last_contact"],
		QueueDepth:        s.queueDepth(),
		InflightBatches:   len(s.pipelineSlots),
		ProposedBatches:   s.proposedBatches.Load(),
		ProposedCommands:  s.proposedCommands.Load(),
		ReadIndexCalls:    s.readIndexCalls.Load(),
		ReadIndexRounds:   s.verifier.Count(),
		ReadCatchUps:      s.adapter.catchUpCount.Load(),

		SnapshotReferenceBytes: referenceBytes,
		SnapshotReceivedBytes:  receivedBytes,
		SnapshotOpenedBytes:    openedBytes,
	}
}
