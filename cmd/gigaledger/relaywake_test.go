package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// fakeOutbox is an eventSource whose events the test fires.
type fakeOutbox struct {
	mu sync.Mutex
	ch chan struct{}
}

func (f *fakeOutbox) EventsChanged() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

// fire closes the channel handed out, as a batch with events does; false when nobody took one.
func (f *fakeOutbox) fire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ch == nil {
		return false
	}
	close(f.ch)
	f.ch = nil
	return true
}

// A replica the node comes to host after the relay started (a moved replica) wakes its
// deliveries on events as those hosted from the start do.
func TestRelayWakesShardsHostedLater(t *testing.T) {
	var mu sync.Mutex
	first, later := &fakeOutbox{}, &fakeOutbox{}
	hosted := map[int]eventSource{0: first}
	notified := make(chan int, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		wakeDeliveries(ctx, func() map[int]eventSource {
			mu.Lock()
			defer mu.Unlock()
			out := map[int]eventSource{}
			for k, m := range hosted {
				out[k] = m
			}
			return out
		}, func(shard int) { notified <- shard })
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitNotified := func(shard int, source *fakeOutbox) {
		t.Helper()
		testutil.EventuallyWithin(t, 10*time.Second, fmt.Sprintf("a wake-up of shard %d", shard), func() bool {
			source.fire()
			select {
			case k := <-notified:
				return k == shard
			case <-time.After(10 * time.Millisecond):
				return false
			}
		})
	}
	waitNotified(0, first)
	mu.Lock()
	hosted[1] = later
	mu.Unlock()
	waitNotified(1, later)
}
