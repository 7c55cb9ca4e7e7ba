package coalesce

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// heldRounds is fn for the tests: round n answers n, and a round waits for its release when
// hold says so.
type heldRounds struct {
	started  atomic.Uint64
	releases chan struct{}
	hold     func(round uint64) bool
}

func (h *heldRounds) fn() (uint64, error) {
	round := h.started.Add(1)
	if h.hold(round) {
		<-h.releases
	}
	return round, nil
}

// TestCallersShareTheNextRound holds the first round and checks that every caller arriving
// meanwhile shares exactly one following round.
func TestCallersShareTheNextRound(t *testing.T) {
	const callerCount = 50
	h := &heldRounds{releases: make(chan struct{}), hold: func(round uint64) bool { return round == 1 }}
	rounds := New(h.fn, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = rounds.Do(ctx, nil) })
	testutil.Eventually(t, "the first round to run", func() bool { return h.started.Load() == 1 })
	for range callerCount {
		wg.Go(func() {
			if got, err := rounds.Do(ctx, nil); err != nil || got != 2 {
				t.Errorf("Do = %d, %v; want round 2", got, err)
			}
		})
	}
	testutil.Eventually(t, "every caller to queue for the next round", func() bool { return rounds.Waiting() == callerCount })
	close(h.releases)
	wg.Wait()
	if got := rounds.Count(); got != 2 {
		t.Fatalf("%d callers after a running round used %d rounds in all, want 2", callerCount, got)
	}
}

// TestNeverARoundStartedBeforeTheCaller is the linearizability rule, deterministically: a
// caller that arrives while round 1 runs (round 1 may have read a commit index older than
// the caller's write) never gets round 1's answer, even when round 1 ends right after it
// arrived; and a caller arriving while round 2 runs gets round 3's.
func TestNeverARoundStartedBeforeTheCaller(t *testing.T) {
	h := &heldRounds{releases: make(chan struct{}), hold: func(round uint64) bool { return round <= 2 }}
	rounds := New(h.fn, nil)
	ctx := context.Background()
	first := make(chan uint64, 1)
	go func() { got, _ := rounds.Do(ctx, nil); first <- got }()
	testutil.Eventually(t, "round 1 to start", func() bool { return h.started.Load() == 1 })

	second := make(chan uint64, 1)
	go func() { got, _ := rounds.Do(ctx, nil); second <- got }()
	testutil.Eventually(t, "the second caller to queue", func() bool { return rounds.Waiting() == 1 })
	h.releases <- struct{}{} // round 1 ends; round 2 starts for the second caller and holds
	if got := <-first; got != 1 {
		t.Fatalf("the first caller got round %d, want 1", got)
	}
	testutil.Eventually(t, "round 2 to start", func() bool { return h.started.Load() == 2 })

	third := make(chan uint64, 1)
	go func() { got, _ := rounds.Do(ctx, nil); third <- got }()
	testutil.Eventually(t, "the third caller to queue", func() bool { return rounds.Waiting() == 1 })
	h.releases <- struct{}{} // round 2 ends
	if got := <-second; got != 2 {
		t.Fatalf("the second caller, who arrived while round 1 ran, got round %d, want 2", got)
	}
	if got := <-third; got != 3 {
		t.Fatalf("the third caller, who arrived while round 2 ran, got round %d, want 3", got)
	}
}

// TestStopAndContext: a round that never ends does not hold a caller past stop or its ctx, and
// the others still get the round's answer.
func TestStopAndContext(t *testing.T) {
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	rounds := New(func() (int, error) { <-never; return 0, nil }, nil)
	stop := make(chan struct{})
	stopped := make(chan error, 1)
	go func() { _, err := rounds.Do(context.Background(), stop); stopped <- err }()
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() { _, err := rounds.Do(ctx, nil); cancelled <- err }()
	close(stop)
	if err := <-stopped; !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after stop: %v, want ErrStopped", err)
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do after its ctx ended: %v, want context.Canceled", err)
	}
}

// TestErrorsReachEveryCaller: a round's error is every caller's answer, and the next round
// runs afresh.
func TestErrorsReachEveryCaller(t *testing.T) {
	failing := errors.New("not leader")
	var calls atomic.Int32
	rounds := New(func() (int, error) {
		if calls.Add(1) == 1 {
			return 0, failing
		}
		return 7, nil
	}, nil)
	if _, err := rounds.Do(context.Background(), nil); !errors.Is(err, failing) {
		t.Fatalf("first round: %v, want its error", err)
	}
	if got, err := rounds.Do(context.Background(), nil); err != nil || got != 7 {
		t.Fatalf("second round: %d, %v", got, err)
	}
}
