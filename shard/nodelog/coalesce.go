package nodelog

import "sync"

// PROTOTYPE (measured, then removed): ModeCoalescedNoSync writes bolt with NoSync and has one
// goroutine per node fdatasync every dirty bolt file once per round. Unsafe under power loss.
const ModeCoalescedNoSync Mode = 99

type coalescer struct {
	mu      sync.Mutex
	dirty   map[*Store]bool
	waiters []chan error
	signal  chan struct{}
	log     *Log
}

func (c *coalescer) run() {
	for {
		select {
		case <-c.signal:
		case <-c.log.closing:
			return
		}
		c.mu.Lock()
		dirty, waiters := c.dirty, c.waiters
		c.dirty, c.waiters = map[*Store]bool{}, nil
		c.mu.Unlock()
		var err error
		for s := range dirty {
			if e := s.bolt.Sync(); e != nil {
				err = e
			}
			c.log.metrics.countWAL()
		}
		for _, w := range waiters {
			w <- err
		}
	}
}

func (c *coalescer) sync(s *Store) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.dirty[s] = true
	c.waiters = append(c.waiters, done)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
	return <-done
}
