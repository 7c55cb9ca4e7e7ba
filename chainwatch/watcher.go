package chainwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Shards is the cluster as the watcher sees it: which shards this node leads, and each one.
type Shards interface {
	LedShards() []int
	Shard(shardID int) (Shard, bool)
}

// Watcher runs a follower for every shard this node leads, and stops it when leadership moves.
type Watcher struct {
	cfg    Config
	node   Node
	shards Shards
	cache  *blockCache

	mu      sync.Mutex
	running map[int]*runningFollower
}

type runningFollower struct {
	follower *Follower
	cancel   context.CancelFunc
	done     chan struct{}
	wake     chan struct{}
}

// leadershipPollInterval is how often the watcher looks at which shards this node leads.
const leadershipPollInterval = 250 * time.Millisecond

// NewWatcher returns a watcher; Run starts it.
func NewWatcher(cfg Config, node Node, shards Shards) *Watcher {
	return &Watcher{cfg: cfg, node: node, shards: shards, cache: newBlockCache(blockCacheSize), running: map[int]*runningFollower{}}
}

// Run reconciles the followers with the shards this node leads until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	ticker := time.NewTicker(leadershipPollInterval)
	defer ticker.Stop()
	for {
		w.reconcile(ctx)
		select {
		case <-ctx.Done():
			w.stopAll()
			return
		case <-ticker.C:
		}
	}
}

// Wake makes every follower look at the node now (a ZMQ notification). It never blocks.
func (w *Watcher) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.running {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (w *Watcher) reconcile(ctx context.Context) {
	led := map[int]bool{}
	for _, id := range w.shards.LedShards() {
		led[id] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, r := range w.running {
		// A follower that stopped by itself (a wrong chain) stays stopped while this node
		// leads the shard; a leadership change (or a restart) tries again.
		if !led[id] {
			r.cancel()
			<-r.done
			delete(w.running, id)
		}
	}
	for id, leads := range led {
		if !leads || w.running[id] != nil {
			continue
		}
		shard, ok := w.shards.Shard(id)
		if !ok {
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		r := &runningFollower{follower: NewFollower(w.cfg, w.node, id, shard, w.cache), cancel: cancel,
			done: make(chan struct{}), wake: make(chan struct{}, 1)}
		w.running[id] = r
		go func() {
			defer close(r.done)
			_ = r.follower.Run(fctx, r.wake)
		}()
	}
}

func (w *Watcher) stopAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, r := range w.running {
		r.cancel()
		<-r.done
		delete(w.running, id)
	}
}

// ErrNotLeader: the watcher leads no shard to rewind.
var ErrNotLeader = errors.New("chainwatch: this node leads no shard")

// SetSyncHeight rewinds every shard this node leads to the active chain's block at height, so
// the blocks above it are observed again (GigaWallet's setsyncheight). Shards led elsewhere are
// rewound by their leaders (the API forwards the call to every node).
func (w *Watcher) SetSyncHeight(ctx context.Context, height int64) (int, error) {
	if height < 0 {
		return 0, fmt.Errorf("chainwatch: height %d is negative", height)
	}
	w.mu.Lock()
	followers := make([]*Follower, 0, len(w.running))
	for _, r := range w.running {
		followers = append(followers, r.follower)
	}
	w.mu.Unlock()
	for _, f := range followers {
		if err := f.RewindTo(ctx, height); err != nil {
			return 0, fmt.Errorf("shard %d: %w", f.shardID, err)
		}
	}
	w.Wake()
	return len(followers), nil
}
