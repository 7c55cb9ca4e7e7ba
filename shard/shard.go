package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
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

// Proposal lifecycle: queued → handed (the batcher put it into an entry) or queued → abandoned
// (its caller gave up first). Whoever wins the compare-and-swap decides what the caller may
// say: abandoned means "not applied", handed means "outcome decided by raft".
const (
	proposalQueued int32 = iota + 1
	proposalHanded
	proposalAbandoned
)

// proposal is one command waiting for a result.
type proposal struct {
	command    []byte
	enqueuedAt time.Time
	state      atomic.Int32
	// done receives exactly one outcome, sent only by the goroutine that owns the proposal
	// after it was handed (or by Close for proposals still queued); buffered so senders never
	// block.
	done chan proposalOutcome
}

type proposalOutcome struct {
	result any
	err    error
}

// Shard is one replica of one Raft group. All methods are safe for concurrent use.
type Shard struct {
	cfg       Config
	logger    *slog.Logger
	sm        StateMachine
	adapter   *fsmAdapter
	metrics   *shardMetrics
	raft      *raft.Raft
	boltStore *raftboltdb.BoltStore
	logStore  raft.LogStore
	snapshots *raft.FileSnapshotStore
	observer  *raft.Observer
	verifier  *leaderVerifier

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
		if s.boltStore != nil {
			_ = s.boltStore.Close()
		}
		metrics.unregister()
		return nil, err
	}

	s.boltStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, raftDBFileName), NoSync: false})
	if err != nil {
		return fail(fmt.Errorf("shard open: raft log store: %w", err))
	}
	s.logStore, err = raft.NewLogCache(logCacheEntryCount, s.boltStore)
	if err != nil {
		return fail(fmt.Errorf("shard open: log cache: %w", err))
	}
	s.snapshots, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, DefaultSnapshotRetainCount, NewRaftLogger(logger, "snapshot"))
	if err != nil {
		return fail(fmt.Errorf("shard open: snapshot store: %w", err))
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

	s.raft, err = raft.NewRaft(raftConfig, s.adapter, s.logStore, s.boltStore, s.snapshots, transport)
	if err != nil {
		return fail(fmt.Errorf("shard open: start raft: %w", err))
	}
	if err := metrics.registerRaftGauges(cfg.ShardID, s); err != nil {
		_ = s.raft.Shutdown().Error()
		return fail(err)
	}
	s.verifier = &leaderVerifier{
		verifyLeader: func() error { return s.raft.VerifyLeader().Error() },
		rounds:       metrics.readIndexRounds,
	}

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

// Propose hands command to group commit and waits for its result, which is the value the
// state machine returned for it. Errors (all errors.Is-able):
//   - ErrNotLeader, ErrClosed, ErrOverloaded, ErrCommandTooLarge: not applied.
//   - ctx's error alone: ctx ended before the command reached raft; not applied.
//   - ErrOutcomeUnknown (possibly wrapping ctx's error): it reached raft; it may commit.
//
// command must not be modified until Propose returns.
func (s *Shard) Propose(ctx context.Context, command []byte) (any, error) {
	result, err := s.propose(ctx, command)
	if err != nil {
		s.metrics.reject(err)
	}
	return result, err
}

func (s *Shard) propose(ctx context.Context, command []byte) (any, error) {
	if len(command) > s.cfg.BatchMaxBytes {
		return nil, fmt.Errorf("propose %d bytes (max %d): %w", len(command), s.cfg.BatchMaxBytes, ErrCommandTooLarge)
	}
	select {
	case <-s.closing:
		return nil, fmt.Errorf("propose: %w", ErrClosed)
	default:
	}
	if s.raft.State() != raft.Leader {
		return nil, fmt.Errorf("propose: %w", ErrNotLeader)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	p := &proposal{command: command, enqueuedAt: time.Now(), done: make(chan proposalOutcome, 1)}
	p.state.Store(proposalQueued)
	select {
	case s.queue <- p:
	default:
		return nil, fmt.Errorf("propose: queue of %d full: %w", s.cfg.ProposalQueueMaxCount, ErrOverloaded)
	}
	select {
	case outcome := <-p.done:
		return outcome.result, outcome.err
	case <-ctx.Done():
		if p.state.CompareAndSwap(proposalQueued, proposalAbandoned) {
			return nil, fmt.Errorf("propose: %w", ctx.Err())
		}
		return nil, fmt.Errorf("propose: gave up waiting: %w", errors.Join(ErrOutcomeUnknown, ctx.Err()))
	case <-s.stopped:
		select {
		case outcome := <-p.done:
			return outcome.result, outcome.err
		default:
		}
		if p.state.CompareAndSwap(proposalQueued, proposalAbandoned) {
			return nil, fmt.Errorf("propose: %w", ErrClosed)
		}
		return nil, fmt.Errorf("propose: shard closed while in flight: %w", ErrOutcomeUnknown)
	}
}

// runBatcher is the single goroutine that turns queued proposals into log entries. It takes a
// pipeline slot before draining the queue, so while PipelineMaxCount batches are in flight the
// next batch keeps growing in the queue.
func (s *Shard) runBatcher() {
	defer close(s.batcherDone)
	var carried *proposal
	for {
		first := carried
		carried = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-s.closing:
				return
			}
		}
		s.heldCount.Store(1)
		select {
		case s.pipelineSlots <- struct{}{}:
			s.heldCount.Store(0)
		case <-s.closing:
			s.heldCount.Store(0)
			s.failQueued(first)
			return
		}
		batch := make([]*proposal, 0, min(s.cfg.BatchMaxCount, len(s.queue)+1))
		batchBytes := 0
		take := func(p *proposal) {
			if p.state.CompareAndSwap(proposalQueued, proposalHanded) {
				batch = append(batch, p)
				batchBytes += len(p.command)
			}
		}
		take(first)
	drain:
		for len(batch) < s.cfg.BatchMaxCount {
			select {
			case p := <-s.queue:
				if batchBytes+len(p.command) > s.cfg.BatchMaxBytes {
					carried = p
					break drain
				}
				take(p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			<-s.pipelineSlots
			continue
		}
		s.proposeBatch(batch)
	}
}

// proposeBatch encodes batch into one entry stamped with the leader's clock and hands it to
// raft; a goroutine per batch waits for the apply future and routes results.
func (s *Shard) proposeBatch(batch []*proposal) {
	commands := make([][]byte, len(batch))
	for i, p := range batch {
		commands[i] = p.command
	}
	timeUnixMs := time.Now().UnixMilli()
	data := encodeEnvelope(make([]byte, 0, envelopeSizeBytes(timeUnixMs, commands)), timeUnixMs, commands)
	s.metrics.batchCommands.Observe(float64(len(batch)))
	s.metrics.batchBytes.Observe(float64(len(data)))
	s.proposedBatches.Add(1)
	s.proposedCommands.Add(uint64(len(batch)))

	future := s.raft.Apply(data, s.cfg.ApplyTimeout)
	s.batchesWG.Add(1)
	go s.awaitBatch(batch, future)
}

// awaitBatch waits for one batch's apply future and gives each proposer its own result. raft
// may drop a future on shutdown without answering it; then the proposers hear
// ErrOutcomeUnknown and the inner goroutine stays blocked until the process ends.
func (s *Shard) awaitBatch(batch []*proposal, future raft.ApplyFuture) {
	defer s.batchesWG.Done()
	defer func() { <-s.pipelineSlots }()
	futureDone := make(chan error, 1)
	go func() { futureDone <- future.Error() }()
	var err error
	select {
	case err = <-futureDone:
	case <-s.raftStopped:
		select {
		case err = <-futureDone:
		default:
			err = fmt.Errorf("raft shut down with the batch in flight: %w", ErrOutcomeUnknown)
		}
	}
	if err != nil {
		err = classifyApplyError(err)
		for _, p := range batch {
			p.done <- proposalOutcome{err: err}
		}
		return
	}
	results, ok := future.Response().([]any)
	if !ok || len(results) != len(batch) {
		// The adapter checks the state machine's result count; reaching this means the entry
		// was skipped as already applied, which cannot happen to a fresh entry on its leader.
		err := fmt.Errorf("apply response %T with %d results for %d commands: %w", future.Response(), len(results), len(batch), ErrOutcomeUnknown)
		for _, p := range batch {
			p.done <- proposalOutcome{err: err}
		}
		return
	}
	now := time.Now()
	for i, p := range batch {
		s.metrics.proposeToApply.Observe(now.Sub(p.enqueuedAt).Seconds())
		p.done <- proposalOutcome{result: results[i]}
	}
}

// classifyApplyError maps a raft apply error to the shard's sentinels. Only errors raft returns
// before the entry is appended to the log mean "not applied"; anything later is unknown.
func classifyApplyError(err error) error {
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		return err
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Rejected by a replica that is not (or is about to stop being) the leader before
		// the entry was appended.
		return fmt.Errorf("apply: %v: %w", err, ErrNotLeader)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("apply: %v: %w", err, ErrOverloaded)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrAbortedByRestore):
		// Appended (maybe replicated) but not known to be committed.
		return fmt.Errorf("apply: %v: %w", err, ErrOutcomeUnknown)
	default:
		return fmt.Errorf("apply: %v: %w", err, ErrOutcomeUnknown)
	}
}

// failQueued answers ErrClosed to first and every proposal still queued.
func (s *Shard) failQueued(first *proposal) {
	fail := func(p *proposal) {
		if p != nil && p.state.CompareAndSwap(proposalQueued, proposalHanded) {
			p.done <- proposalOutcome{err: fmt.Errorf("propose: %w", ErrClosed)}
		}
	}
	fail(first)
	for {
		select {
		case p := <-s.queue:
			fail(p)
		default:
			return
		}
	}
}

// watchLeadership broadcasts leader changes and, each time this replica becomes leader, runs a
// barrier so that ReadIndex serves only once an entry of the new term has committed (before
// that, a fresh leader's commit index may lag the true one).
func (s *Shard) watchLeadership(observations <-chan raft.Observation) {
	defer close(s.watcherDone)
	leaderCh := s.raft.LeaderCh()
	for {
		select {
		case <-s.closing:
			return
		case <-observations:
			s.broadcast(&s.leaderChanged)
		case isLeader := <-leaderCh:
			s.broadcast(&s.leaderChanged)
			if isLeader {
				go s.establishLeadership(s.raft.CurrentTerm())
			}
		}
	}
}

func (s *Shard) establishLeadership(term uint64) {
	stillLeader := func() bool {
		select {
		case <-s.closing:
			return false
		default:
		}
		return s.raft.State() == raft.Leader && s.raft.CurrentTerm() == term
	}
	for {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if !stillLeader() {
			return
		}
		if err == nil {
			break
		}
		// Still leading this term (e.g. the barrier timed out enqueuing): without a committed
		// entry of this term reads stay refused, so try again.
		s.logger.Warn("leader barrier failed; retrying", "term", term, "error", err)
	}
	s.readyTerm.Store(term)
	s.broadcast(&s.readyChanged)
	s.logger.Info("leader ready", "term", term, "commit_index", s.raft.CommitIndex())
}

// broadcast closes *ch and replaces it, waking everyone who took it.
func (s *Shard) broadcast(ch *chan struct{}) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	close(*ch)
	*ch = make(chan struct{})
}

func (s *Shard) current(ch *chan struct{}) <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return *ch
}

// LeaderChanged returns a channel that is closed at the next change of leader (including "no
// leader") or leadership of this replica. Take it before checking Leader to miss nothing.
func (s *Shard) LeaderChanged() <-chan struct{} {
	return s.current(&s.leaderChanged)
}

// ReadIndex returns an index such that, once the local state machine has applied it (see
// WaitApplied), reading local state is linearizable. Leader only (ErrNotLeader otherwise).
//
// Protocol: wait until this leader's post-election barrier has committed (at most
// leaderReadyWaitMax, then ErrNotLeader); read the commit index; confirm leadership with a
// quorum (raft.VerifyLeader, one round shared by all concurrent callers that arrived before it
// started); check the term did not change. The returned index is that commit index, lowered
// past trailing no-op, barrier and configuration entries to the last command entry, because
// raft never hands those to the state machine and waiting for them could block forever.
func (s *Shard) ReadIndex(ctx context.Context) (uint64, error) {
	s.readIndexCalls.Add(1)
	select {
	case <-s.closing:
		return 0, fmt.Errorf("read index: %w", ErrClosed)
	default:
	}
	term, err := s.awaitLeaderReady(ctx)
	if err != nil {
		return 0, fmt.Errorf("read index: %w", err)
	}
	commitIndex := s.raft.CommitIndex()
	if err := s.verifier.verify(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("read index: verify leader: %w", ctx.Err())
		}
		return 0, fmt.Errorf("read index: verify leader: %v: %w", err, ErrNotLeader)
	}
	if s.raft.CurrentTerm() != term {
		return 0, fmt.Errorf("read index: term changed during verification: %w", ErrNotLeader)
	}
	return s.lastCommandIndexAtOrBelow(commitIndex), nil
}

func (s *Shard) awaitLeaderReady(ctx context.Context) (uint64, error) {
	timer := time.NewTimer(leaderReadyWaitMax)
	defer timer.Stop()
	for {
		changed := s.current(&s.readyChanged)
		if s.raft.State() != raft.Leader {
			return 0, ErrNotLeader
		}
		term := s.raft.CurrentTerm()
		if s.readyTerm.Load() == term {
			return term, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timer.C:
			return 0, fmt.Errorf("leader of term %d not ready after %s: %w", term, leaderReadyWaitMax, ErrNotLeader)
		case <-s.closing:
			return 0, ErrClosed
		}
	}
}

// lastCommandIndexAtOrBelow walks the (committed) local log back from index to the last
// command entry, stopping at what is already applied.
func (s *Shard) lastCommandIndexAtOrBelow(index uint64) uint64 {
	applied := s.adapter.appliedIndex()
	for scanned := 0; index > applied; index-- {
		if scanned == readIndexScanMaxCount {
			return index
		}
		scanned++
		var entry raft.Log
		if err := s.logStore.GetLog(index, &entry); err != nil {
			// Compacted into a snapshot, which only covers what the FSM already processed.
			return applied
		}
		if entry.Type == raft.LogCommand {
			return index
		}
	}
	return index
}

// WaitApplied blocks until the local state machine has applied index (or ctx ends, or the
// shard closes). It wakes on apply notifications; it does not poll.
func (s *Shard) WaitApplied(ctx context.Context, index uint64) error {
	return s.adapter.waitApplied(ctx, index, s.closing)
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
func (s *Shard) IsLeader() bool {
	return s.raft.State() == raft.Leader
}

// State returns the raft state of this replica.
func (s *Shard) State() raft.RaftState {
	return s.raft.State()
}

// NodeID is this replica's server ID.
func (s *Shard) NodeID() string {
	return s.cfg.NodeID
}

// queueDepth counts proposals waiting to be batched: queued, or held by the batcher while it
// waits for a pipeline slot.
func (s *Shard) queueDepth() int {
	return len(s.queue) + int(s.heldCount.Load())
}

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
}

// Stats returns the replica's current Stats.
func (s *Shard) Stats() Stats {
	leaderID, leaderAddr := s.Leader()
	raftStats := s.raft.Stats()
	lastSnapshotIndex, _ := strconv.ParseUint(raftStats["last_snapshot_index"], 10, 64)
	term := s.raft.CurrentTerm()
	return Stats{
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
		ReadIndexRounds:   s.verifier.roundCount.Load(),
	}
}

// Snapshot makes raft take a snapshot now (tests, admin). raft.ErrNothingNewToSnapshot is
// returned wrapped when nothing was applied since the last one.
func (s *Shard) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// AddVoter adds (or updates) a voting replica; leader only.
func (s *Shard) AddVoter(ctx context.Context, id, addr string) error {
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("add voter %s at %s: %w", id, addr, membershipError(err))
	}
	return nil
}

// RemoveServer removes a replica from the configuration; leader only.
func (s *Shard) RemoveServer(ctx context.Context, id string) error {
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, membershipError(err))
	}
	return nil
}

// Servers returns the latest raft configuration as peers.
func (s *Shard) Servers() ([]Peer, error) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, fmt.Errorf("get configuration: %w", err)
	}
	var peers []Peer
	for _, server := range future.Configuration().Servers {
		peers = append(peers, Peer{ID: string(server.ID), Addr: string(server.Address)})
	}
	return peers, nil
}

func membershipError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return fmt.Errorf("%v: %w", err, ErrNotLeader)
	}
	return err
}

func timeoutFrom(ctx context.Context, fallback time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		if remaining := time.Until(deadline); remaining > 0 {
			return remaining
		}
		return time.Millisecond
	}
	return fallback
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
		s.batchesWG.Wait()
		if err := s.boltStore.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log store: %w", err))
		}
		s.metrics.unregister()
		close(s.stopped)
		s.closeErr = errors.Join(errs...)
		s.logger.Info("shard closed")
	})
	return s.closeErr
}

// leaderVerifier coalesces raft.VerifyLeader calls: a caller joins the next round that starts
// after it arrived, so one quorum round serves every read that queued during the previous one.
type leaderVerifier struct {
	verifyLeader func() error
	rounds       interface{ Inc() }
	roundCount   atomic.Uint64

	mu      sync.Mutex
	running bool
	next    *verifyRound // collects callers while a round runs; nil when none wait
}

type verifyRound struct {
	done chan struct{}
	err  error
	// callerCount is how many callers wait on this round (guarded by leaderVerifier.mu).
	callerCount int
}

func (v *leaderVerifier) verify(ctx context.Context) error {
	v.mu.Lock()
	var round *verifyRound
	if !v.running {
		v.running = true
		round = &verifyRound{done: make(chan struct{})}
		go v.run(round)
	} else {
		if v.next == nil {
			v.next = &verifyRound{done: make(chan struct{})}
		}
		round = v.next
	}
	round.callerCount++
	v.mu.Unlock()
	select {
	case <-round.done:
		return round.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *leaderVerifier) run(round *verifyRound) {
	for round != nil {
		v.rounds.Inc()
		v.roundCount.Add(1)
		round.err = v.verifyLeader()
		close(round.done)
		v.mu.Lock()
		round, v.next = v.next, nil
		if round == nil {
			v.running = false
		}
		v.mu.Unlock()
	}
}
