// Package coalesce shares one call among concurrent callers: the leadership confirmation behind
// a shard's read index (shard) and a follower's read-index request to its leader (cluster).
//
// The rule that keeps reads linearizable: a caller only ever gets the answer of a round that
// *started after it arrived*. A round already running when a caller comes in may have read
// its state (a commit index, a leadership claim) before the write the caller must see was
// acknowledged, so the caller waits for the next round, which every caller arriving during the
// running one shares (etcd/raft's ReadIndex batching). It owns no I/O, no clock and no state
// beyond the rounds.
package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrStopped is Do's answer once its stop channel is closed: the owner is shutting down, and
// a round it started may never end.
var ErrStopped = errors.New("coalesce: stopped")

// Rounds runs fn in rounds, one at a time, each shared by every caller that arrived before it
// started and after the previous one started.
//
// Lifecycle: a round starts when a caller arrives and none is running, or, when callers
// arrived while one ran, as soon as that one ends; the last round ends with no goroutine left
// behind. Safe for concurrent use.
type Rounds[T any] struct {
	fn func() (T, error)
	// onRound, when set, is called at the start of each round, before fn (metrics, tests).
	onRound func()

	roundCount atomic.Uint64

	mu      sync.Mutex
	running bool
	next    *round[T] // collects callers while a round runs; nil when none wait
}

type round[T any] struct {
	done  chan struct{} // closed once value and err are set
	value T
	err   error
	// callerCount is how many callers wait on this round (guarded by Rounds.mu).
	callerCount int
}

// New returns Rounds that call fn once per round; onRound (may be nil) runs as a round starts.
func New[T any](fn func() (T, error), onRound func()) *Rounds[T] {
	return &Rounds[T]{fn: fn, onRound: onRound}
}

// Do waits for the answer of the first round that starts after the call, or ctx's end (its
// error), or stop's closing (ErrStopped; a nil stop never closes). The round goes on for the
// other callers when one of them gives up.
func (r *Rounds[T]) Do(ctx context.Context, stop <-chan struct{}) (T, error) {
	r.mu.Lock()
	var joined *round[T]
	if !r.running {
		r.running = true
		joined = &round[T]{done: make(chan struct{})}
		go r.run(joined)
	} else {
		if r.next == nil {
			r.next = &round[T]{done: make(chan struct{})}
		}
		joined = r.next
	}
	joined.callerCount++
	r.mu.Unlock()
	var zero T
	select {
	case <-joined.done:
		return joined.value, joined.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-stop:
		return zero, ErrStopped
	}
}

// run runs rounds until nobody waits for another.
func (r *Rounds[T]) run(current *round[T]) {
	for current != nil {
		r.roundCount.Add(1)
		if r.onRound != nil {
			r.onRound()
		}
		current.value, current.err = r.fn()
		close(current.done)
		r.mu.Lock()
		current, r.next = r.next, nil
		if current == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}

// Count is how many rounds have started.
func (r *Rounds[T]) Count() uint64 { return r.roundCount.Load() }

// Waiting is how many callers wait for the next round (not the running one): for tests that
// must know a caller has queued before they let the running round end.
func (r *Rounds[T]) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		return 0
	}
	return r.next.callerCount
}
