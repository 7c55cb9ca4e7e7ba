// Package shardtest holds test helpers for code that runs shards: a deterministic recording
// StateMachine and its ResultCodec. It owns nothing used in production and must never be
// imported by non-test code.
package shardtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/shard"
)

// Recorder is a deterministic shard.StateMachine that appends every command, as a string, to
// an ordered list and answers each with "<position>:<command>" (position counts from 1). Its
// "durable" state is its memory: reuse the same Recorder across a shard restart to model a
// state machine that persists its applied index, or pass a new one to model a lost disk.
type Recorder struct {
	applied atomic.Uint64

	mu       sync.Mutex
	commands []string
	times    []int64
	// appliedEntries lists the indexes ApplyBatch applied (not skipped), in order.
	appliedEntries []uint64
	skippedEntries []uint64
	restoreCount   int
	// beforeApply, when set, runs at the start of every ApplyBatch, outside mu.
	beforeApply func(index uint64)
}

var _ shard.StateMachine = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{}
}

// SetBeforeApply installs a hook run at the start of every ApplyBatch (for tests that need to
// hold the apply goroutine). Set it before the shard starts applying.
func (r *Recorder) SetBeforeApply(hook func(index uint64)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.beforeApply = hook
}

// ApplyBatch implements shard.StateMachine.
func (r *Recorder) ApplyBatch(index uint64, timeUnixMs int64, commands [][]byte) []any {
	r.mu.Lock()
	hook := r.beforeApply
	r.mu.Unlock()
	if hook != nil {
		hook(index)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if index <= r.applied.Load() {
		r.skippedEntries = append(r.skippedEntries, index)
		return nil
	}
	results := make([]any, len(commands))
	for i, command := range commands {
		r.commands = append(r.commands, string(command))
		r.times = append(r.times, timeUnixMs)
		results[i] = fmt.Sprintf("%d:%s", len(r.commands), command)
	}
	r.appliedEntries = append(r.appliedEntries, index)
	r.applied.Store(index)
	return results
}

// AppliedIndex implements shard.StateMachine.
func (r *Recorder) AppliedIndex() uint64 {
	return r.applied.Load()
}

type recorderState struct {
	Applied  uint64   `json:"applied"`
	Commands []string `json:"commands"`
	Times    []int64  `json:"times"`
}

// Snapshot implements shard.StateMachine; it copies the lists (they are small in tests).
func (r *Recorder) Snapshot() (shard.Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &recorderSnapshot{state: recorderState{
		Applied:  r.applied.Load(),
		Commands: append([]string(nil), r.commands...),
		Times:    append([]int64(nil), r.times...),
	}}, nil
}

// Restore implements shard.StateMachine.
func (r *Recorder) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	var state recorderState
	if err := json.NewDecoder(snapshot).Decode(&state); err != nil {
		return fmt.Errorf("recorder restore: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = state.Commands
	r.times = state.Times
	r.applied.Store(state.Applied)
	r.restoreCount++
	return nil
}

// Commands returns a copy of every applied command, in apply order.
func (r *Recorder) Commands() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.commands...)
}

// Times returns a copy of the leader time stamped on each applied command.
func (r *Recorder) Times() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.times...)
}

// AppliedEntries returns the indexes of the entries ApplyBatch applied, in order.
func (r *Recorder) AppliedEntries() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.appliedEntries...)
}

// SkippedEntries returns the indexes ApplyBatch was given at or below the applied index.
func (r *Recorder) SkippedEntries() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.skippedEntries...)
}

// RestoreCount is how many times Restore ran.
func (r *Recorder) RestoreCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restoreCount
}

type recorderSnapshot struct {
	state recorderState
}

func (s *recorderSnapshot) Persist(w io.Writer) error {
	if err := json.NewEncoder(w).Encode(s.state); err != nil {
		return fmt.Errorf("recorder persist: %w", err)
	}
	return nil
}

func (s *recorderSnapshot) Release() {}

// StringCodec is the shard.ResultCodec for Recorder results (strings).
type StringCodec struct{}

var _ shard.ResultCodec = StringCodec{}

// EncodeResult implements shard.ResultCodec.
func (StringCodec) EncodeResult(result any) ([]byte, error) {
	text, ok := result.(string)
	if !ok {
		return nil, errors.New("string codec: result is not a string")
	}
	return []byte(text), nil
}

// DecodeResult implements shard.ResultCodec.
func (StringCodec) DecodeResult(data []byte) (any, error) {
	return string(data), nil
}
