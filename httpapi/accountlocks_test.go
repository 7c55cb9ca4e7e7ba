package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// accountLocks: one holder per key, other keys free, a waiter gives up with its context, and
// nothing is kept for a key nobody holds or waits for.
func TestAccountLocks(t *testing.T) {
	var l accountLocks
	unlockA, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	unlockB, err := l.lock(context.Background(), "b")
	if err != nil {
		t.Fatalf("another key waits: %v", err)
	}
	unlockB()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a held key taken: %v", err)
	}

	got := make(chan func(), 1)
	go func() {
		unlock, err := l.lock(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		got <- unlock
	}()
	select {
	case <-got:
		t.Fatal("a held key taken by a waiter")
	case <-time.After(10 * time.Millisecond):
	}
	unlockA()
	unlockA() // a second unlock changes nothing
	select {
	case unlock := <-got:
		unlock()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the released key")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) != 0 {
		t.Fatalf("locks kept for keys nobody holds: %v", l.held)
	}
}
