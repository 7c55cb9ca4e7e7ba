package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/shard/coalesce"
)

// ReadPoint is where a linearizable read may read: once a replica has applied Index, its
// state reflects every write acknowledged before the read began. Term is the term of the log
// entry at Index (0 when the leader no longer has it in its log): a follower whose own log
// holds an entry at Index with that Term holds the leader's committed log up to Index (raft's
// log matching), and may apply it without waiting to be told the commit index (WaitRead).
type ReadPoint struct {
	Index, Term uint64
}

// ReadIndex returns an index such that, once the local state machine has applied it (see
// WaitApplied), reading local state is linearizable. Leader only (ErrNotLeader otherwise).
//
// Protocol: wait until this leader's post-election barrier has committed (at most
// leaderReadyWaitMax, then ErrNotLeader); read the commit index; confirm leadership with a
// quorum (raft.VerifyLeader, in a round that started after this call, shared with every caller
// that arrived meanwhile: shard/coalesce); check the term did not change. The returned index
// is that commit index, lowered past trailing no-op, barrier and configuration entries to the
// last command entry, because raft never hands those to the state machine and waiting for them
// could block forever.
func (s *Shard) ReadIndex(ctx context.Context) (uint64, error) {
	point, err := s.readPoint(ctx, false)
	return point.Index, err
}

// ReadPointForFollower is ReadIndex with the term of the entry at the index, for a follower
// that asked the leader (WaitRead).
func (s *Shard) ReadPointForFollower(ctx context.Context) (ReadPoint, error) {
	return s.readPoint(ctx, true)
}

func (s *Shard) readPoint(ctx context.Context, withTerm bool) (ReadPoint, error) {
	s.readIndexCalls.Add(1)
	select {
	case <-s.closing:
		return ReadPoint{}, fmt.Errorf("read index: %w", ErrClosed)
	default:
	}
	term, err := s.awaitLeaderReady(ctx)
	if err != nil {
		return ReadPoint{}, fmt.Errorf("read index: %w", err)
	}
	commitIndex := s.raft.CommitIndex()
	if _, err := s.verifier.Do(ctx, s.closing); err != nil {
		if errors.Is(err, coalesce.ErrStopped) {
			return ReadPoint{}, fmt.Errorf("read index: verify leader: %w", ErrClosed)
		}
		if ctx.Err() != nil {
			return ReadPoint{}, fmt.Errorf("read index: verify leader: %w", ctx.Err())
		}
		return ReadPoint{}, fmt.Errorf("read index: verify leader: %v: %w", err, ErrNotLeader)
	}
	if s.raft.CurrentTerm() != term {
		return ReadPoint{}, fmt.Errorf("read index: term changed during verification: %w", ErrNotLeader)
	}
	point := s.lastCommandAtOrBelow(commitIndex)
	if withTerm && point.Term == 0 {
		var entry raft.Log
		if err := s.logStore.GetLog(point.Index, &entry); err == nil {
			point.Term = entry.Term
		}
	}
	return point, nil
}

// confirmTermMax bounds a read-index round's confirmation by Config.ConfirmTerm.
const confirmTermMax = 5 * time.Second

// verifyLeader is one read-index round's confirmation of leadership: Config.ConfirmTerm of the
// term the round began in when it is set, else raft.VerifyLeader. ConfirmTerm replaces
// VerifyLeader rather than joining it: it proves what VerifyLeader was meant to (no later
// leader when the round began) without trusting answers to requests sent before the round,
// and both together cost a fifth more CPU per read (bench/RESULTS.md, session 27).
func (s *Shard) verifyLeader() error {
	if s.cfg.ConfirmTerm == nil {
		return s.raft.VerifyLeader().Error()
	}
	term := s.raft.CurrentTerm()
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(context.Background(), confirmTermMax)
	defer cancel()
	if err := s.cfg.ConfirmTerm(ctx, term); err != nil {
		return fmt.Errorf("term %d not confirmed: %w", term, err)
	}
	return nil
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

// lastCommandAtOrBelow walks the (committed) local log back from index to the last command
// entry, stopping at what is already applied. The term is that entry's when it read it, else 0.
func (s *Shard) lastCommandAtOrBelow(index uint64) ReadPoint {
	applied := s.adapter.appliedIndex()
	for scanned := 0; index > applied; index-- {
		if scanned == readIndexScanMaxCount {
			return ReadPoint{Index: index}
		}
		scanned++
		var entry raft.Log
		if err := s.logStore.GetLog(index, &entry); err != nil {
			// Compacted into a snapshot, which only covers what the FSM already processed.
			return ReadPoint{Index: applied}
		}
		if entry.Type == raft.LogCommand {
			return ReadPoint{Index: index, Term: entry.Term}
		}
	}
	return ReadPoint{Index: index}
}

// WaitApplied blocks until the local state machine has applied index (or ctx ends, or the
// shard closes). It wakes on apply notifications; it does not poll.
func (s *Shard) WaitApplied(ctx context.Context, index uint64) error {
	return s.adapter.waitApplied(ctx, index, s.closing)
}

// WaitRead blocks until the local state machine has applied point.Index, which the leader
// reported (ReadPointForFollower), or ctx ends. A follower learns the leader's commit index only
// from the leader's next AppendEntries, which on a quiet shard comes after raft's
// CommitTimeout (50 ms by default); so when the local log already holds the entry at
// point.Index with point.Term, the replica applies its log up to there itself (the adapter's
// catch-up, on its own goroutine; raft's own apply of those entries later skips them).
// Otherwise (the entry has not arrived here yet, or the leader named no term) raft applies it
// when the leader says it is committed.
func (s *Shard) WaitRead(ctx context.Context, point ReadPoint) error {
	if s.adapter.appliedIndex() >= point.Index {
		return nil
	}
	if point.Term != 0 {
		s.adapter.requestCatchUp(s.logStore, point)
	}
	return s.WaitApplied(ctx, point.Index)
}
