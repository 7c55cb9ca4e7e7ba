package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

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
	if err := s.verifier.verify(ctx, s.closing); err != nil {
		if errors.Is(err, ErrClosed) {
			return 0, fmt.Errorf("read index: verify leader: %w", err)
		}
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

// verify waits for the next round's answer, ctx's end, or closing (the shard closing: raft may
// never answer a round it was shutting down under, and a forwarded read must not hold its
// caller, and the node's close, until the caller's deadline).
func (v *leaderVerifier) verify(ctx context.Context, closing <-chan struct{}) error {
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
	case <-closing:
		return ErrClosed
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
