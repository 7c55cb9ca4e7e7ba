package chainwatch

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// benchBlock2000 mines one block of 2,000 payments, one in ten to one of the shard's 200
// invoices, and returns the chain, the shard and the block's hash.
func benchBlock2000(b *testing.B) (*simChain, *Follower, string) {
	b.Helper()
	s := newSimChain(b, chainsim.Options{})
	var addresses []string
	for i := range 200 {
		address := simAddress(b, fmt.Sprintf("bench-%d", i))
		s.shard.invoice(fmt.Sprintf("acct-%d", i%20), address, 1_000_000*uint64(chainsim.KoinuPerCoin), 0)
		addresses = append(addresses, address)
	}
	for i := range 2000 {
		address := simAddress(b, fmt.Sprintf("other-%d", i))
		if i%10 == 0 {
			address = addresses[i/10]
		}
		if _, err := s.chain.Pay(address, chainsim.KoinuPerCoin); err != nil {
			b.Fatal(err)
		}
	}
	hash := s.chain.Mine(1)[0]
	return s, s.follower(), hash.String()
}

// The follower's per-block work on a 2,000-transaction block, apart: the RPC fetch and parse
// (no cache), and the filter against a one-replica shard's Pebble store (4,000 lookups: every
// P2PKH output and every input).
func BenchmarkFollowerBlock2000(b *testing.B) {
	s, f, hash := benchBlock2000(b)
	b.Run("fetch+parse", func(b *testing.B) {
		for b.Loop() {
			f.cache = newBlockCache(blockCacheSize)
			if _, _, err := f.block(s.ctx, hash); err != nil {
				b.Fatal(err)
			}
		}
	})
	block, _, err := f.block(s.ctx, hash)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("filter", func(b *testing.B) {
		var c gigawallet.ObserveChain
		for b.Loop() {
			if err := f.filter(&c, block.Transactions); err != nil {
				b.Fatal(err)
			}
		}
		if len(c.Txs) != 200 {
			b.Fatalf("%d transactions kept, want 200", len(c.Txs))
		}
	})
	// A sync with the block cached: the node reads around it, the filter and the proposal on the one-replica shard (apply included: 200 outputs credited);
	// the block is rewound between rounds, outside the timer.
	b.Run("sync-cached-block", func(b *testing.B) {
		sync := func() {
			if err := f.Sync(s.ctx); err != nil {
				b.Fatal(err)
			}
		}
		sync()
		base, _ := s.shard.Reader().ChainCursor()
		parent := block.Header.PrevBlock
		for b.Loop() {
			b.StopTimer()
			s.shard.apply(&gigawallet.RewindChain{Height: base.Height - 1, Hash: gigawallet.Hash(parent)})
			b.StartTimer()
			sync()
		}
	})
}
