package shard

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
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
	urgent     bool // never held (Config.Urgent)
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
	p.urgent = s.cfg.Urgent != nil && s.cfg.Urgent(command)
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
// next batch keeps growing in the queue. A batch below BatchLingerCount then waits for more,
// while another batch is in flight, until BatchLinger has passed since the previous batch went
// (lingerPolicy). A batch that carries an urgent proposal (Config.Urgent) is never held.
func (s *Shard) runBatcher() {
	defer close(s.batcherDone)
	linger := lingerPolicy{spacing: s.cfg.BatchLinger, countMin: s.cfg.BatchLingerCount}
	clock := s.cfg.clock
	var carried *proposal
	// lastHanded is when the previous batch went to raft; the zero time (none yet) is long ago.
	var lastHanded time.Time
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
		// pending are proposals taken from the queue; each is handed (or found abandoned)
		// only when the batch is final, so that a caller who gives up while its proposal
		// lingers still hears "not applied".
		pending := make([]*proposal, 0, min(s.cfg.BatchMaxCount, len(s.queue)+1))
		pendingBytes := 0
		urgent := false
		// add takes p into the batch, or carries it to the next one when it does not fit.
		add := func(p *proposal) bool {
			if len(pending) > 0 && pendingBytes+len(p.command) > s.cfg.BatchMaxBytes {
				carried = p
				return false
			}
			pending = append(pending, p)
			pendingBytes += len(p.command)
			urgent = urgent || p.urgent
			return true
		}
		add(first)
	drain:
		for len(pending) < s.cfg.BatchMaxCount {
			select {
			case p := <-s.queue:
				if !add(p) {
					break drain
				}
			default:
				break drain
			}
		}
		// The other batches in flight: the slots taken, less this batch's own.
		inFlight := len(s.pipelineSlots) - 1
		if hold := linger.hold(len(pending), clock.Now().Sub(lastHanded), inFlight); hold > 0 && carried == nil && !urgent {
			closed := false
			s.heldCount.Store(int64(len(pending)))
			expired, stop := clock.After(hold)
		hold:
			for len(pending) < min(s.cfg.BatchMaxCount, linger.countMin) {
				select {
				case p := <-s.queue:
					fits := add(p)
					s.heldCount.Store(int64(len(pending)))
					if !fits || urgent {
						break hold
					}
				case <-expired:
					break hold
				case <-s.closing:
					closed = true
					break hold
				}
			}
			stop()
			s.heldCount.Store(0)
			if closed {
				// Nothing of this batch reached raft: every proposal of it hears ErrClosed.
				for _, p := range pending {
					s.failQueued(p)
				}
				s.failQueued(carried)
				<-s.pipelineSlots
				return
			}
		}
		batch := pending[:0]
		for _, p := range pending {
			if p.state.CompareAndSwap(proposalQueued, proposalHanded) {
				batch = append(batch, p)
			}
		}
		clear(pending[len(batch):])
		if len(batch) == 0 {
			<-s.pipelineSlots
			continue
		}
		lastHanded = clock.Now()
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
	// The slot goes before the proposers hear their results: a proposer that proposes again
	// at once finds this batch no longer in flight (and so is not held for it: lingerPolicy).
	<-s.pipelineSlots
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

// queueDepth counts proposals waiting to be batched: queued, or held by the batcher while it
// waits for a pipeline slot.
func (s *Shard) queueDepth() int {
	return len(s.queue) + int(s.heldCount.Load())
}
