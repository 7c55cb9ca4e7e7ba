package shard

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// fsmAdapter is the raft.FSM (and raft.BatchingFSM) of a shard: it decodes the shard's entry
// envelope and hands each entry to the StateMachine, and it tracks the applied index so that
// WaitApplied can block on it.
//
// Threading: raft calls Apply, ApplyBatch, Snapshot and Restore from its single FSM goroutine;
// a follower read may apply committed entries from another goroutine (catchUp). applyMu makes
// them take turns, so the state machine still sees one call at a time. appliedIndex and
// waitApplied may be called from any goroutine.
type fsmAdapter struct {
	sm      StateMachine
	metrics *shardMetrics

	// applyMu serializes every call into the state machine; stopped (under it) ends catch-ups
	// once raft has shut down, before the log store and the state machine close.
	applyMu sync.Mutex
	stopped bool
	// catchUpCount counts catch-ups that applied entries (Stats, tests).
	catchUpCount atomic.Uint64
	// catchUpMu guards catchUpWanted (the highest point asked for and not yet taken) and
	// catchUpRunning (a runCatchUps goroutine is on it).
	catchUpMu      sync.Mutex
	catchUpWanted  ReadPoint
	catchUpRunning bool
	// caughtUp holds the state machine's results for entries a catch-up applied, by index,
	// until raft hands those entries to ApplyBatch, which returns them: a proposer on a
	// replica that led when its entry committed gets the same result whichever goroutine
	// applied it. Raft hands over every committed entry in order, so each is taken out soon;
	// Restore drops what a snapshot covers. Guarded by applyMu.
	caughtUp map[uint64]any

	// applied is the highest log index whose state-machine effects are visible: the last entry
	// passed to ApplyBatch, or the state machine's own index after a restore. It only grows.
	applied atomic.Uint64

	// appliedChanged is closed and replaced each time applied grows (a broadcast); waiters take
	// the current channel before reading applied, so no advance is missed.
	appliedMu      sync.Mutex
	appliedChanged chan struct{}
}

var _ raft.BatchingFSM = (*fsmAdapter)(nil)

func newFSMAdapter(sm StateMachine, metrics *shardMetrics) *fsmAdapter {
	adapter := &fsmAdapter{sm: sm, metrics: metrics, appliedChanged: make(chan struct{})}
	adapter.applied.Store(sm.AppliedIndex())
	return adapter
}

// Apply applies a single entry; raft uses ApplyBatch, this satisfies raft.FSM.
func (a *fsmAdapter) Apply(entry *raft.Log) any {
	return a.ApplyBatch([]*raft.Log{entry})[0]
}

// ApplyBatch applies committed entries in log order. For a command entry the response is the
// []any the state machine returned, one result per command, in envelope order; the proposing
// leader splits it among the waiting proposers. An entry at or below the state machine's
// applied index (a replay after restart) is decoded, as an integrity check, but not applied;
// so is an entry a follower read already applied (catchUp).
func (a *fsmAdapter) ApplyBatch(entries []*raft.Log) []any {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	return a.applyBatchLocked(entries)
}

func (a *fsmAdapter) applyBatchLocked(entries []*raft.Log) []any {
	responses := make([]any, len(entries))
	if len(entries) == 0 {
		return responses
	}
	durableIndex := a.sm.AppliedIndex()
	for i, entry := range entries {
		if entry.Type != raft.LogCommand {
			continue
		}
		timeUnixMs, commands, err := decodeEnvelope(entry.Data)
		if err != nil {
			// Every replica has the same entry; skipping it on one would diverge silently.
			panic(fmt.Sprintf("shard: log entry %d (term %d) cannot be decoded: %v", entry.Index, entry.Term, err))
		}
		if entry.Index <= durableIndex {
			if results, ok := a.caughtUp[entry.Index]; ok {
				responses[i] = results
				delete(a.caughtUp, entry.Index)
				continue
			}
			a.metrics.replaySkipped.Inc()
			continue
		}
		start := time.Now()
		results := a.sm.ApplyBatch(entry.Index, timeUnixMs, commands)
		a.metrics.applyDuration.Observe(time.Since(start).Seconds())
		if len(results) != len(commands) {
			panic(fmt.Sprintf("shard: state machine returned %d results for %d commands at index %d",
				len(results), len(commands), entry.Index))
		}
		responses[i] = results
	}
	a.advance(entries[len(entries)-1].Index)
	return responses
}

// Snapshot delegates to the state machine; raft calls it on the FSM goroutine. A
// CheckpointStateMachine takes a checkpoint, whose reference is all raft stores. The view may
// include entries a follower read applied beyond the index raft records for the snapshot:
// the state machine's own applied index travels in its state (its Restore sets AppliedIndex),
// so a replica restored from it skips them when raft replays them.
func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if checkpointer, ok := a.sm.(CheckpointStateMachine); ok {
		descriptor, err := checkpointer.Checkpoint()
		if err != nil {
			return nil, fmt.Errorf("state machine checkpoint: %w", err)
		}
		return checkpointReference{descriptor: descriptor}, nil
	}
	snapshot, err := a.sm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("state machine snapshot: %w", err)
	}
	return raftSnapshot{view: snapshot}, nil
}

// raftSnapshot adapts a state machine's Snapshot to raft.FSMSnapshot: the state machine writes
// the stream, the shard owns the sink's Close/Cancel protocol.
type raftSnapshot struct{ view Snapshot }

// Persist streams the view into sink; raft runs it concurrently with later applies.
func (s raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.view.Persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("state machine persist: %w", err)
	}
	return sink.Close()
}

// Release frees the state machine's view.
func (s raftSnapshot) Release() { s.view.Release() }

// Restore replaces the state machine's state; raft calls it when a follower installs the
// leader's snapshot (never on start: the shard sets NoSnapshotRestoreOnStart).
func (a *fsmAdapter) Restore(snapshot io.ReadCloser) error {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if err := a.sm.Restore(snapshot); err != nil {
		return fmt.Errorf("state machine restore: %w", err)
	}
	clear(a.caughtUp)
	a.advance(a.sm.AppliedIndex())
	return nil
}

// requestCatchUp asks for the local log to be applied up to point (catchUp), on a goroutine
// of its own: the reader waits for the applied index with its own deadline, never on the apply
// lock, which raft's FSM goroutine may hold for a long apply. One catch-up goroutine runs at a
// time; points asked for meanwhile are merged into the highest, which it takes next.
func (a *fsmAdapter) requestCatchUp(logs raft.LogStore, point ReadPoint) {
	a.catchUpMu.Lock()
	defer a.catchUpMu.Unlock()
	if point.Index > a.catchUpWanted.Index {
		a.catchUpWanted = point
	}
	if a.catchUpRunning {
		return
	}
	a.catchUpRunning = true
	go a.runCatchUps(logs)
}

func (a *fsmAdapter) runCatchUps(logs raft.LogStore) {
	for {
		a.catchUpMu.Lock()
		point := a.catchUpWanted
		a.catchUpWanted = ReadPoint{}
		if point.Index == 0 {
			a.catchUpRunning = false
			a.catchUpMu.Unlock()
			return
		}
		a.catchUpMu.Unlock()
		a.catchUp(logs, point)
	}
}

// catchUp applies the local log up to point.Index when its entry there has point.Term, which
// the leader reported for its committed entry at that index: by raft's log matching the local
// log up to there is then the leader's committed log, which may be applied before the leader
// says so. It does nothing when applied is there already, the entry is not here yet or has
// another term, the gap is over catchUpMaxCount, or the shard is closing: the reader then
// waits for raft. Raft later hands the same entries to ApplyBatch, which skips them.
func (a *fsmAdapter) catchUp(logs raft.LogStore, point ReadPoint) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	applied := a.applied.Load()
	if a.stopped || applied >= point.Index || point.Term == 0 || point.Index-applied > catchUpMaxCount {
		return
	}
	last := &raft.Log{}
	if err := logs.GetLog(point.Index, last); err != nil || last.Term != point.Term {
		return
	}
	entries := make([]*raft.Log, 0, point.Index-applied)
	for index := applied + 1; index < point.Index; index++ {
		entry := &raft.Log{}
		if err := logs.GetLog(index, entry); err != nil {
			return
		}
		entries = append(entries, entry)
	}
	entries = append(entries, last)
	// Counted before the entries apply: whoever sees the applied index move sees the count.
	a.catchUpCount.Add(1)
	a.metrics.readCatchUps.Inc()
	responses := a.applyBatchLocked(entries)
	if a.caughtUp == nil {
		a.caughtUp = map[uint64]any{}
	}
	for i, entry := range entries {
		if responses[i] != nil {
			a.caughtUp[entry.Index] = responses[i]
		}
	}
}

// stop ends catch-ups for good: called once raft has shut down, before the log store closes.
// It waits for a running one.
func (a *fsmAdapter) stop() {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.stopped = true
}

func (a *fsmAdapter) appliedIndex() uint64 {
	return a.applied.Load()
}

// advance raises applied to index (never lowers it) and wakes waiters.
func (a *fsmAdapter) advance(index uint64) {
	a.appliedMu.Lock()
	defer a.appliedMu.Unlock()
	if index <= a.applied.Load() {
		return
	}
	a.applied.Store(index)
	close(a.appliedChanged)
	a.appliedChanged = make(chan struct{})
}

func (a *fsmAdapter) appliedChangedCh() <-chan struct{} {
	a.appliedMu.Lock()
	defer a.appliedMu.Unlock()
	return a.appliedChanged
}

// waitApplied blocks until applied >= index, ctx ends, or stop is closed.
func (a *fsmAdapter) waitApplied(ctx context.Context, index uint64, stop <-chan struct{}) error {
	for {
		changed := a.appliedChangedCh()
		if a.applied.Load() >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", index, a.applied.Load(), ctx.Err())
		case <-stop:
			return fmt.Errorf("wait for applied index %d: %w", index, ErrClosed)
		}
	}
}
