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
// Threading: raft calls Apply, ApplyBatch, Snapshot and Restore from its single FSM goroutine.
// appliedIndex and waitApplied may be called from any goroutine.
type fsmAdapter struct {
	sm      StateMachine
	metrics *shardMetrics

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
// applied index (a replay after restart) is decoded, as an integrity check, but not applied.
func (a *fsmAdapter) ApplyBatch(entries []*raft.Log) []any {
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
// CheckpointStateMachine takes a checkpoint, whose reference is all raft stores.
func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
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
	if err := a.sm.Restore(snapshot); err != nil {
		return fmt.Errorf("state machine restore: %w", err)
	}
	a.advance(a.sm.AppliedIndex())
	return nil
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
