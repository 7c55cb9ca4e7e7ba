package chainwatch

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// fakeShards is a cluster whose leadership a test moves.
type fakeShards struct {
	mu     sync.Mutex
	led    []int
	shards map[int]Shard
}

func (f *fakeShards) LedShards() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.led)
}

func (f *fakeShards) Shard(shardID int) (Shard, bool) {
	s, ok := f.shards[shardID]
	return s, ok
}

func (f *fakeShards) lead(ids ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.led = ids
}

// running lists the shards the watcher runs a follower for.
func (w *Watcher) runningShards() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []int
	for id := range w.running {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func atTip(s *testShard, chain *chainsim.Chain) func() bool {
	return func() bool {
		c, err := s.Reader().ChainCursor()
		return err == nil && c.Hash.String() == chain.TipHash().String()
	}
}

// The watcher runs a follower for exactly the shards this node leads: leadership arriving
// starts one (it catches up from the cursor), leadership leaving stops it; Wake makes the
// followers look at once (the poll interval is an hour here). SetSyncHeight rewinds the led
// shards and the blocks above are observed again without crediting the payment twice.
func TestWatcherFollowsLeadershipAndRescans(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	other := newTestShard(t)
	address := simAddress(t, "watcher")
	s.shard.invoice("shop", address, uint64(payKoinu), 1)
	shards := &fakeShards{shards: map[int]Shard{0: s.shard, 1: other}}
	w := NewWatcher(Config{Network: dogecoin.Regtest, StartHeight: 1, PollInterval: time.Hour}, s.client, shards)
	ctx, cancel := context.WithCancel(testutil.Context(t, time.Minute))
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	shards.lead(0, 1)
	testutil.Eventually(t, "followers of shards 0 and 1", func() bool { return slices.Equal(w.runningShards(), []int{0, 1}) })
	testutil.Eventually(t, "shard 0 at the tip", atTip(s.shard, s.chain))
	testutil.Eventually(t, "shard 1 at the tip", atTip(other, s.chain))

	shards.lead(0) // shard 1's leadership moved away
	testutil.Eventually(t, "shard 1's follower stopped", func() bool { return slices.Equal(w.runningShards(), []int{0}) })
	s.pay(address, payKoinu)
	s.chain.Mine(2)
	w.Wake()
	testutil.Eventually(t, "shard 0 at the new tip", atTip(s.shard, s.chain))
	s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 2,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	if c, _ := other.Reader().ChainCursor(); c.Height != simStartHeight {
		t.Fatalf("shard 1, led elsewhere, moved to %d", c.Height)
	}

	shards.lead(0, 1) // and came back: its new follower catches up
	testutil.Eventually(t, "shard 1 caught up", atTip(other, s.chain))

	// A rescan from below the payment: unconfirmed by the rewind, confirmed again, one credit.
	rewound, err := w.SetSyncHeight(ctx, simStartHeight-1)
	if err != nil || rewound != 2 {
		t.Fatalf("SetSyncHeight: %d shards, %v", rewound, err)
	}
	testutil.Eventually(t, "shard 0 back at the tip", atTip(s.shard, s.chain))
	s.check("rescanned", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 2,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	s.checkEvents("rescanned", detected, confirmed, unconfirmed, confirmed)

	shards.lead()
	testutil.Eventually(t, "every follower stopped", func() bool { return len(w.runningShards()) == 0 })
}
