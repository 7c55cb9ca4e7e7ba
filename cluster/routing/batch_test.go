package routing

import (
	"slices"
	"testing"
)

// The waves of a batch: single-shard items of one shard share a group (applied in order within
// it); an item that names a wallet another unit of the wave names starts a new wave, so items
// on a same wallet apply in request order; items sharing nothing run in one wave.
func TestBatchWavesKeepRequestOrderOnSharedWallets(t *testing.T) {
	type item struct {
		single  bool
		shard   int
		wallets []string
	}
	items := []item{
		{true, 0, []string{"a0", "b0"}},   // wave 1, group 0
		{true, 1, []string{"c1", "d1"}},   // wave 1, group 1
		{true, 0, []string{"b0", "e0"}},   // wave 1, group 0 (after item 0)
		{false, -1, []string{"f0", "g1"}}, // wave 1, across: shares nothing
		{false, -1, []string{"a0", "c1"}}, // a0 is group 0's: wave 2
		{true, 1, []string{"d1"}},         // wave 2, group 1: d1 is not named in wave 2
		{true, 1, []string{"c1"}},         // c1 is item 4's (across): wave 3
	}
	var waves []*batchWave
	w := newBatchWave()
	for i, it := range items {
		if !w.admits(it.single, it.shard, it.wallets) {
			waves = append(waves, w)
			w = newBatchWave()
		}
		w.add(i, it.single, it.shard, it.wallets)
	}
	waves = append(waves, w)
	if len(waves) != 3 {
		t.Fatalf("%d waves, want 3", len(waves))
	}
	check := func(what string, got, want []int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("wave 1 shards", waves[0].shards, []int{0, 1})
	check("wave 1 group 0", waves[0].groups[0], []int{0, 2})
	check("wave 1 group 1", waves[0].groups[1], []int{1})
	check("wave 1 across", waves[0].across, []int{3})
	check("wave 2 across", waves[1].across, []int{4})
	check("wave 2 group 1", waves[1].groups[1], []int{5})
	check("wave 3 group 1", waves[2].groups[1], []int{6})
}
