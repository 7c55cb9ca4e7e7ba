package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gigaledger/gigaledger/shard/nodelog"
)

// Defaults for Config. The batching defaults come from BenchmarkClusterPropose in cluster/
// (see shard/DESIGN.md for the numbers).
const (
	// DefaultBatchMaxCount is the most commands group commit puts into one log entry.
	DefaultBatchMaxCount = 512
	// DefaultBatchMaxBytes is the most command bytes group commit puts into one log entry.
	DefaultBatchMaxBytes = 1 << 20
	// DefaultProposalQueueMaxCount is how many proposals may wait for a batch before Propose
	// answers ErrOverloaded.
	DefaultProposalQueueMaxCount = 8192
	// DefaultPipelineMaxCount is how many batches may be handed to raft and not yet applied.
	DefaultPipelineMaxCount = 2
	// DefaultBatchLinger is the least time between two small batches while one is in flight
	// (lingerPolicy). 2 ms barely changed the batch rate (batches came 2.5–4 ms apart anyway
	// at 500–1,000 transfers/s); 5 ms halved it and cut the cluster's CPU per transfer by
	// 15–20 %, for at most 5 ms added to a held command (bench/RESULTS.md, issue 15 item 6).
	DefaultBatchLinger = 5 * time.Millisecond
	// DefaultBatchLingerCount is the batch size that goes to raft without holding.
	DefaultBatchLingerCount = 32
	// DefaultApplyTimeout bounds how long handing a batch to raft may block.
	DefaultApplyTimeout = 5 * time.Second
	// DefaultSnapshotThreshold is how many log entries since the last snapshot trigger one.
	DefaultSnapshotThreshold = 8192
	// DefaultSnapshotInterval is how often raft checks whether to snapshot.
	DefaultSnapshotInterval = 2 * time.Minute
	// DefaultSnapshotRetainCount is how many snapshots stay on disk.
	DefaultSnapshotRetainCount = 2
	// DefaultTrailingLogsCount is how many log entries stay after a snapshot, so that a
	// briefly lagging follower catches up from the log rather than a whole snapshot.
	DefaultTrailingLogsCount = 10240
)

// Hard limits that configuration may not exceed. They also bound what the envelope decoder
// accepts, so they must never shrink once a cluster has written entries with them.
const (
	// BatchMaxCountLimit is the ceiling for Config.BatchMaxCount and for the command count
	// field of a decoded envelope.
	BatchMaxCountLimit = 1 << 16
	// BatchMaxBytesLimit is the ceiling for Config.BatchMaxBytes (and so for one command).
	BatchMaxBytesLimit = 64 << 20
	// ProposalQueueMaxCountLimit is the ceiling for Config.ProposalQueueMaxCount.
	ProposalQueueMaxCountLimit = 1 << 20
	// PipelineMaxCountLimit is the ceiling for Config.PipelineMaxCount.
	PipelineMaxCountLimit = 64
	// BatchLingerLimit is the ceiling for Config.BatchLinger: a hold is a latency every
	// command of a small batch pays.
	BatchLingerLimit = 100 * time.Millisecond
	// leaderReadyWaitMax bounds how long ReadIndex waits for a fresh leader's barrier.
	leaderReadyWaitMax = 2 * time.Second
	// readIndexScanMaxCount bounds how far ReadIndex walks back over no-op and barrier
	// entries to find the last entry that changed the state machine.
	readIndexScanMaxCount = 1024
	// catchUpMaxCount bounds how many entries a follower read applies from the local log
	// itself (WaitRead); further behind, it waits for raft, which streams them anyway.
	catchUpMaxCount = 1024
)

// Peer is one replica of a shard: a member of a static replica set (all voters), or of a
// configuration as Servers reads it.
type Peer struct {
	// ID is the replica's raft server ID, unique within the shard.
	ID string
	// Addr is the address other replicas dial to reach the replica's raft transport.
	Addr string
	// Nonvoter is set, in Servers' answer only, for a replica that receives the log without
	// voting (one being added, until it has caught up). Bootstrap peers are all voters.
	Nonvoter bool `json:",omitempty"`
}

// Config configures one replica of a shard. Zero limits take the defaults above; Open
// validates everything before touching the disk.
type Config struct {
	// ShardID names the shard in metrics (const label "shard") and logs.
	ShardID string
	// NodeID is this replica's raft server ID; it must appear in Peers when Bootstrap is set.
	NodeID string
	// RaftAddr is the address this replica advertises to its peers (the transport's address).
	RaftAddr string
	// DataDir holds raft.db (log and stable store) and the snapshots folder.
	DataDir string
	// Peers is the static replica set, used to bootstrap a store that has no state yet.
	Peers []Peer
	// Bootstrap makes Open bootstrap the configuration from Peers when the store is empty.
	Bootstrap bool

	// ConfirmTerm, when set, confirms leadership in every read-index round in place of
	// raft.VerifyLeader: it answers nil once a quorum of the voters, asked over requests sent
	// after the round began, is at term or below it, or why not (ErrNotLeader when a voter is
	// past it). VerifyLeader counts an acknowledgement of any heartbeat or append that answers
	// after the round began, including one sent before it: a leader stopped (SIGSTOP, a VM
	// pause) while appends were in flight can confirm itself on their answers once it resumes,
	// after another leader was elected, and answer reads from its stale state (a fault run's
	// anomaly, bench/RESULTS.md session 27). The cluster sets it.
	ConfirmTerm func(ctx context.Context, term uint64) error

	// BatchMaxCount is the most commands in one log entry.
	BatchMaxCount int
	// BatchMaxBytes is the most command bytes in one log entry; a larger command is refused.
	BatchMaxBytes int
	// ProposalQueueMaxCount is the most proposals waiting for a batch.
	ProposalQueueMaxCount int
	// PipelineMaxCount is the most batches handed to raft and not yet applied.
	PipelineMaxCount int
	// BatchLinger is the least time between two batches smaller than BatchLingerCount while
	// another batch is in flight: a small batch waits for more proposals until then (see
	// lingerPolicy). Zero is DefaultBatchLinger; negative hands every batch to raft as soon as
	// a pipeline slot is free.
	BatchLinger time.Duration
	// BatchLingerCount is the batch size that goes to raft without holding.
	BatchLingerCount int
	// Urgent, when set, names the commands group commit never holds: a batch that carries one
	// goes to raft as soon as a pipeline slot is free, and one arriving during a hold ends it.
	// They are steps of a chain of proposals that their proposer waits on one after the other
	// (a cross-shard transaction's protocol, a batch request's waves), where a hold at each
	// step adds up (lingerPolicy). It runs on the proposer's goroutine, once per proposal.
	Urgent func(command []byte) bool
	// ApplyTimeout bounds how long handing one batch to raft may block.
	ApplyTimeout time.Duration
	// SnapshotThreshold is the number of entries since the last snapshot that triggers one.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold.
	SnapshotInterval time.Duration
	// TrailingLogsCount is how many entries stay in the log after a snapshot.
	TrailingLogsCount uint64

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and CommitTimeout are passed to
	// raft; zero keeps raft's defaults. Tests shorten them.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// Registerer receives the shard's metrics; nil means no metrics are registered. Use a
	// separate registry per node when several nodes run in one process.
	Registerer prometheus.Registerer

	// NodeLog, when set, is the node's log that the replica's raft log goes through (one
	// group commit for every replica on the node; see package nodelog), under ShardID. Nil
	// opens raft.db alone with its own fsync per write. The node owns it and closes it after
	// its shards.
	NodeLog *nodelog.Log

	// clock is the batcher's clock; nil is the real one (tests set a fake one).
	clock batcherClock
}

// withDefaults returns cfg with zero limits replaced by the defaults.
func (cfg Config) withDefaults() Config {
	if cfg.BatchMaxCount == 0 {
		cfg.BatchMaxCount = DefaultBatchMaxCount
	}
	if cfg.BatchMaxBytes == 0 {
		cfg.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if cfg.ProposalQueueMaxCount == 0 {
		cfg.ProposalQueueMaxCount = DefaultProposalQueueMaxCount
	}
	if cfg.PipelineMaxCount == 0 {
		cfg.PipelineMaxCount = DefaultPipelineMaxCount
	}
	if cfg.clock == nil {
		cfg.clock = realClock{}
	}
	if cfg.BatchLinger == 0 {
		cfg.BatchLinger = DefaultBatchLinger
	}
	if cfg.BatchLingerCount == 0 {
		cfg.BatchLingerCount = DefaultBatchLingerCount
	}
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.TrailingLogsCount == 0 {
		cfg.TrailingLogsCount = DefaultTrailingLogsCount
	}
	return cfg
}

// Validate reports the first problem with cfg (after defaults are applied).
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	var problems []error
	if cfg.NodeID == "" {
		problems = append(problems, errors.New("NodeID is empty"))
	}
	if cfg.RaftAddr == "" {
		problems = append(problems, errors.New("RaftAddr is empty"))
	}
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("DataDir is empty"))
	}
	if cfg.BatchMaxCount < 1 || cfg.BatchMaxCount > BatchMaxCountLimit {
		problems = append(problems, fmt.Errorf("BatchMaxCount %d outside [1, %d]", cfg.BatchMaxCount, BatchMaxCountLimit))
	}
	if cfg.BatchMaxBytes < 1 || cfg.BatchMaxBytes > BatchMaxBytesLimit {
		problems = append(problems, fmt.Errorf("BatchMaxBytes %d outside [1, %d]", cfg.BatchMaxBytes, BatchMaxBytesLimit))
	}
	if cfg.ProposalQueueMaxCount < 1 || cfg.ProposalQueueMaxCount > ProposalQueueMaxCountLimit {
		problems = append(problems, fmt.Errorf("ProposalQueueMaxCount %d outside [1, %d]", cfg.ProposalQueueMaxCount, ProposalQueueMaxCountLimit))
	}
	if cfg.PipelineMaxCount < 1 || cfg.PipelineMaxCount > PipelineMaxCountLimit {
		problems = append(problems, fmt.Errorf("PipelineMaxCount %d outside [1, %d]", cfg.PipelineMaxCount, PipelineMaxCountLimit))
	}
	if cfg.BatchLinger > BatchLingerLimit {
		problems = append(problems, fmt.Errorf("BatchLinger %v above %v", cfg.BatchLinger, BatchLingerLimit))
	}
	if cfg.BatchLingerCount < 1 || cfg.BatchLingerCount > BatchMaxCountLimit {
		problems = append(problems, fmt.Errorf("BatchLingerCount %d outside [1, %d]", cfg.BatchLingerCount, BatchMaxCountLimit))
	}
	if cfg.ApplyTimeout < 0 || cfg.SnapshotInterval < 0 || cfg.HeartbeatTimeout < 0 ||
		cfg.ElectionTimeout < 0 || cfg.LeaderLeaseTimeout < 0 || cfg.CommitTimeout < 0 {
		problems = append(problems, errors.New("negative duration"))
	}
	seenIDs := make(map[string]bool, len(cfg.Peers))
	selfListed := false
	for _, peer := range cfg.Peers {
		if peer.ID == "" || peer.Addr == "" {
			problems = append(problems, fmt.Errorf("peer %+v has an empty ID or Addr", peer))
		}
		if seenIDs[peer.ID] {
			problems = append(problems, fmt.Errorf("peer ID %q listed twice", peer.ID))
		}
		seenIDs[peer.ID] = true
		if peer.ID == cfg.NodeID {
			selfListed = true
		}
	}
	if cfg.Bootstrap && !selfListed {
		problems = append(problems, fmt.Errorf("bootstrap is set but node %q is not in Peers", cfg.NodeID))
	}
	if len(problems) > 0 {
		return fmt.Errorf("shard config: %w", errors.Join(problems...))
	}
	return nil
}

// quietLogger returns logger, or a logger that discards everything when logger is nil.
func quietLogger(logger *slog.Logger) *slog.Logger {
	if logger != nil {
		return logger
	}
	return slog.New(slog.DiscardHandler)
}
