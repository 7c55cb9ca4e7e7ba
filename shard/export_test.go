package shard

import (
	"sync"
	"time"
)

// FakeClock is a batcher clock for tests: Now stands still and a hold ends only when the test
// calls Expire, so that what group commit batches never depends on the machine's speed.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiting []chan time.Time
	holds   int
}

// NewFakeClock returns a clock standing at an arbitrary fixed time.
func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}
}

// UseFakeClock makes the shards opened with cfg batch by c.
func UseFakeClock(cfg *Config, c *FakeClock) { cfg.clock = c }

// Now implements batcherClock.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After implements batcherClock: the channel receives when the test calls Expire.
func (c *FakeClock) After(time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiting = append(c.waiting, ch)
	c.holds++
	return ch, func() {}
}

// Advance moves Now by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Holds is how many holds the batcher has started.
func (c *FakeClock) Holds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holds
}

// Expire ends every hold started so far.
func (c *FakeClock) Expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.waiting {
		ch <- c.now
	}
	c.waiting = nil
}
