package shard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// TestLeaderVerifierCoalesces holds the first verification round and checks that every caller
// arriving meanwhile shares exactly one following round.
func TestLeaderVerifierCoalesces(t *testing.T) {
	const callerCount = 50
	release := make(chan struct{})
	var calls atomic.Int32
	v := &leaderVerifier{
		verifyLeader: func() error {
			if calls.Add(1) == 1 {
				<-release
			}
			return nil
		},
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Name: "rounds"}),
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _ = v.verify(ctx, nil) })
	testutil.Eventually(t, "the first round to run", func() bool { return calls.Load() == 1 })
	for range callerCount {
		wg.Go(func() {
			if err := v.verify(ctx, nil); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
	testutil.Eventually(t, "every caller to join the next round", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.next != nil && v.next.callerCount == callerCount
	})
	close(release)
	wg.Wait()
	if got := v.roundCount.Load(); got != 2 {
		t.Fatalf("%d callers after a running round used %d rounds in all, want 2", callerCount, got)
	}
}

// TestLeaderVerifierClosing: a round raft never answers (it shut down under it) does not hold
// a caller past the shard's closing. A forwarded read stuck there held its caller until the
// caller's deadline and the node's close with it: the ~10 s stall after a leader was killed
// under cross-shard load.
func TestLeaderVerifierClosing(t *testing.T) {
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	v := &leaderVerifier{
		verifyLeader: func() error { <-never; return nil },
		rounds:       prometheus.NewCounter(prometheus.CounterOpts{Name: "rounds"}),
	}
	closing := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- v.verify(context.Background(), closing) }()
	close(closing)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("verify after closing: %v", err)
	}
}
