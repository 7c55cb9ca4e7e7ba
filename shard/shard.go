package shard

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/gigaledger/gigaledger/shard/coalesce"
	"github.com/gigaledger/gigaledger/shard/nodelog"
)

const (
	// raftDBFileName is the bolt file holding the raft log and stable store in DataDir.
	raftDBFileName = "raft.db"
	// logCacheEntryCount is how many recent entries raft.LogCache keeps in memory for
	// replication.
	logCacheEntryCount = 512
	// observerQueueCount is the buffer of the leader-change observer channel.
	observerQueueCount = 16
)

// Shard is one replica of one Raft group. All methods are safe for concurrent use.
type Shard struct {
	cfg     Config
	logger  *slog.Logger
	sm      StateMachine
	adapter *fsmAdapter
	metrics *shardMetrics
	raft    *raft.Raft
	// stableStore is the raft.db file itself (cfg.NodeLog nil) or the node log's store in
	// front of it; storeCloser closes whichever it is, after raft has shut down.
	stableStore raft.StableStore
	storeCloser io.Closer
	logStore    raft.LogStore
	checkpoints *checkpointStore // nil unless the state machine takes checkpoints
	// snapshots is raft's file store, or the checkpointStore in front of it when the state
	// machine takes checkpoints.
	snapshots raft.SnapshotStore
	observer  *raft.Observer
	// verifier confirms leadership for read indexes, one raft.VerifyLeader round shared by
	// every read that arrived before the round started.
	verifier *coalesce.Rounds[struct{}]

	queue         chan *proposal
	pipelineSlots chan struct{}

	// readyTerm is the term in which this replica, as leader, saw its post-election barrier
	// commit; ReadIndex serves only while the current term equals it.
	readyTerm atomic.Uint64

	// notifyMu guards the broadcast channels below (closed and replaced on each event).
	notifyMu      sync.Mutex
	readyChanged  chan struct{}
	leaderChanged chan struct{}

	// heldCount is 1 while the batcher holds a proposal and waits for a pipeline slot.
	heldCount        atomic.Int64
	proposedBatches  atomic.Uint64
	proposedCommands atomic.Uint64
	readIndexCalls   atomic.Uint64

	closeOnce   sync.Once
	closeErr    error
	closing     chan struct{} // closed first by Close: no new proposals
	raftStopped chan struct{} // closed after raft.Shutdown returned
	stopped     chan struct{} // closed when Close is done
	batcherDone chan struct{}
	watcherDone chan struct{}
	batchesWG   sync.WaitGroup
}

// Open starts a replica: it opens (or creates) the log, stable and snapshot stores in
// cfg.DataDir, starts raft with transport, bootstraps the static configuration from cfg.Peers
// when cfg.Bootstrap is set and the store is empty, and starts group commit.
//
// The state machine keeps its own durable state, so Open never restores a snapshot into it on
// start, and raft replays only entries above sm.AppliedIndex() — except when the latest local
// snapshot is ahead of the state machine and the entries in between changed state (the state
// machine lost data it claimed durable, or is brand new): then Open restores that snapshot into
// sm first, because raft will not replay entries at or below a snapshot.
//
// Shard owns transport from here on: Close closes it.
func Open(cfg Config, sm StateMachine, transport raft.Transport, logger *slog.Logger) (*Shard, error) {
	logger = quietLogger(logger)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if sm == nil || transport == nil {
		return nil, errors.New("shard open: nil state machine or transport")
	}
	logger = logger.With("shard", cfg.ShardID) // the caller names the node (cluster does)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("shard open: create data dir: %w", err)
	}

	s := &Shard{
		cfg:           cfg,
		logger:        logger,
		sm:            sm,
		queue:         make(chan *proposal, cfg.ProposalQueueMaxCount),
		pipelineSlots: make(chan struct{}, cfg.PipelineMaxCount),
		readyChanged:  make(chan struct{}),
		leaderChanged: make(chan struct{}),
		closing:       make(chan struct{}),
		raftStopped:   make(chan struct{}),
		stopped:       make(chan struct{}),
		batcherDone:   make(chan struct{}),
		watcherDone:   make(chan struct{}),
	}
	metrics, err := newShardMetrics(cfg.ShardID, cfg.Registerer,
		func() float64 { return float64(s.queueDepth()) },
		func() float64 { return float64(len(s.pipelineSlots)) })
	if err != nil {
		return nil, err
	}
	s.metrics = metrics

	fail := func(err error) (*Shard, error) {
		if s.storeCloser != nil {
			_ = s.storeCloser.Close()
		}
		metrics.unregister()
		return nil, err
	}

	var baseLogStore raft.LogStore
	raftDBPath := filepath.Join(cfg.DataDir, raftDBFileName)
	if cfg.NodeLog != nil {
		store, err := cfg.NodeLog.OpenStore(cfg.ShardID, raftDBPath)
		if err != nil {
			return fail(fmt.Errorf("shard open: raft log store: %w", err))
		}
		baseLogStore, s.stableStore, s.storeCloser = store, store, store
	} else {
		boltStore, err := raftboltdb.New(raftboltdb.Options{Path: raftDBPath, NoSync: false})
		if err != nil {
			return fail(fmt.Errorf("shard open: raft log store: %w", err))
		}
		baseLogStore, s.stableStore, s.storeCloser = boltStore, boltStore, boltStore
		if binding, _ := boltStore.Get(nodelog.BindingKey); len(binding) != 0 {
			return fail(fmt.Errorf("shard open: %w", nodelog.ErrBoundToNodeLog))
		}
	}
	s.logStore, err = raft.NewLogCache(logCacheEntryCount, baseLogStore)
	if err != nil {
		return fail(fmt.Errorf("shard open: log cache: %w", err))
	}
	fileSnapshots, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, DefaultSnapshotRetainCount, NewRaftLogger(logger, "snapshot"))
	if err != nil {
		return fail(fmt.Errorf("shard open: snapshot store: %w", err))
	}
	s.snapshots = fileSnapshots
	if checkpointer, ok := sm.(CheckpointStateMachine); ok {
		checkpoints := &checkpointStore{files: fileSnapshots, sm: checkpointer, logger: logger}
		// Checkpoints left by a crash between Checkpoint and the snapshot's publication go. A
		// sweep that fails deletes nothing: extra checkpoints wait for the next snapshot.
		if err := checkpoints.retain(); err != nil {
			logger.Warn("old checkpoints kept", "error", err)
		}
		s.snapshots, s.checkpoints = checkpoints, checkpoints
	}
	if err := s.catchUpFromLocalSnapshot(); err != nil {
		return fail(err)
	}
	s.adapter = newFSMAdapter(sm, metrics)

	raftConfig := raft.DefaultConfig()
	raftConfig.LocalID = raft.ServerID(cfg.NodeID)
	raftConfig.Logger = NewRaftLogger(logger, "raft")
	raftConfig.NoSnapshotRestoreOnStart = true
	raftConfig.NoLegacyTelemetry = true
	raftConfig.SnapshotThreshold = cfg.SnapshotThreshold
	raftConfig.SnapshotInterval = cfg.SnapshotInterval
	raftConfig.TrailingLogs = cfg.TrailingLogsCount
	if cfg.HeartbeatTimeout > 0 {
		raftConfig.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		raftConfig.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		raftConfig.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	if cfg.CommitTimeout > 0 {
		raftConfig.CommitTimeout = cfg.CommitTimeout
	}
	if err := raft.ValidateConfig(raftConfig); err != nil {
		return fail(fmt.Errorf("shard open: raft config: %w", err))
	}

	s.raft, err = raft.NewRaft(raftConfig, s.adapter, s.logStore, s.stableStore, s.snapshots, transport)
	if err != nil {
		return fail(fmt.Errorf("shard open: start raft: %w", err))
	}
	if err := metrics.registerRaftGauges(cfg.ShardID, s); err != nil {
		_ = s.raft.Shutdown().Error()
		return fail(err)
	}
	s.verifier = coalesce.New(func() (struct{}, error) { return struct{}{}, s.verifyLeader() },
		metrics.readIndexRounds.Inc)

	if cfg.Bootstrap {
		configuration := raft.Configuration{}
		for _, peer := range cfg.Peers {
			configuration.Servers = append(configuration.Servers, raft.Server{
				Suffrage: raft.Voter, ID: raft.ServerID(peer.ID), Address: raft.ServerAddress(peer.Addr),
			})
		}
		// Every replica of a static set bootstraps the same configuration; a store that already
		// has state answers ErrCantBootstrap, which is the normal restart case.
		if err := s.raft.BootstrapCluster(configuration).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = s.raft.Shutdown().Error()
			return fail(fmt.Errorf("shard open: bootstrap: %w", err))
		}
	}

	observations := make(chan raft.Observation, observerQueueCount)
	s.observer = raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(s.observer)

	go s.runBatcher()
	go s.watchLeadership(observations)
	logger.Info("shard opened", "data_dir", cfg.DataDir, "applied_index", s.adapter.appliedIndex(),
		"raft_last_index", s.raft.LastIndex())
	return s, nil
}

// catchUpFromLocalSnapshot restores the latest local snapshot into the state machine when the
// state machine is behind it and the entries in between changed state (raft would skip them).
func (s *Shard) catchUpFromLocalSnapshot() error {
	snapshots, err := s.snapshots.List()
	if err != nil {
		return fmt.Errorf("shard open: list snapshots: %w", err)
	}
	if len(snapshots) == 0 {
		return nil
	}
	latest := snapshots[0]
	appliedIndex := s.sm.AppliedIndex()
	if appliedIndex >= latest.Index {
		return nil
	}
	needRestore := false
	for index := appliedIndex + 1; index <= latest.Index; index++ {
		var entry raft.Log
		if err := s.logStore.GetLog(index, &entry); err != nil || entry.Type == raft.LogCommand {
			needRestore = true
			break
		}
	}
	if !needRestore {
		return nil
	}
	s.logger.Warn("state machine is behind the latest snapshot; restoring it",
		"applied_index", appliedIndex, "snapshot_index", latest.Index, "snapshot_id", latest.ID)
	_, source, err := s.snapshots.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("shard open: open snapshot %s: %w", latest.ID, err)
	}
	defer source.Close()
	if err := s.sm.Restore(source); err != nil {
		return fmt.Errorf("shard open: restore snapshot %s: %w", latest.ID, err)
	}
	return nil
}

// AppliedIndex is the highest log index whose effects the local state machine shows.
func (s *Shard) AppliedIndex() uint64 {
	return s.adapter.appliedIndex()
}

// Leader returns the current leader's server ID and raft address, empty when unknown.
func (s *Shard) Leader() (id, addr string) {
	leaderAddr, leaderID := s.raft.LeaderWithID()
	return string(leaderID), string(leaderAddr)
}

// IsLeader reports whether this replica is the leader (without a quorum check).
// Term is the replica's current raft term.
func (s *Shard) Term() uint64 { return s.raft.CurrentTerm() }

func (s *Shard) IsLeader() bool {
	return s.raft.State() == raft.Leader
}

// LeaderReady reports whether this replica leads and its state machine has applied everything
// committed before its term began (its term's barrier: establishLeadership), as ReadIndex waits
// for. A leader duty that reads the state to decide what to propose (the cross-shard driver,
// the chain follower, the event relay, the timed duties) asks this, not IsLeader: a node
// elected while replaying its log reads records whose next steps are still ahead in it.
func (s *Shard) LeaderReady() bool {
	return s.raft.State() == raft.Leader && s.readyTerm.Load() == s.raft.CurrentTerm()
}

// State returns the raft state of this replica.
func (s *Shard) State() raft.RaftState {
	return s.raft.State()
}

// NodeID is this replica's server ID.
func (s *Shard) NodeID() string {
	return s.cfg.NodeID
}

// Close stops the replica: no new proposals, queued proposals fail with ErrClosed, in-flight
// ones get their result or ErrOutcomeUnknown, raft shuts down (closing the transport) and the
// stores close. It is safe to call more than once.
func (s *Shard) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.batcherDone
		s.failQueued(nil)
		<-s.watcherDone
		s.raft.DeregisterObserver(s.observer)
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		close(s.raftStopped)
		s.adapter.stop()
		s.batchesWG.Wait()
		if err := s.storeCloser.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log store: %w", err))
		}
		s.metrics.unregister()
		close(s.stopped)
		s.closeErr = errors.Join(errs...)
		s.logger.Info("shard closed")
	})
	return s.closeErr
}
