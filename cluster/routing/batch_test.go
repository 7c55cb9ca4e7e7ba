package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/httpapi"
)

// The waves of a batch: single-shard items of one shard share a group (applied in order within
// it); an item that names a wallet another unit of the wave names, or a wallet of an item left
// for a later wave, waits for a later wave, so items on a same wallet apply in request order;
// items sharing nothing run in one wave, even after an item that had to wait.
func TestBatchWavesKeepRequestOrderOnSharedWallets(t *testing.T) {
	places := []batchPlace{
		{0, true, []string{"a0", "b0"}},   // wave 1, group 0
		{1, true, []string{"c1", "d1"}},   // wave 1, group 1
		{0, true, []string{"b0", "e0"}},   // wave 1, group 0 (after item 0)
		{-1, false, []string{"f0", "g1"}}, // wave 1, across: shares nothing
		{-1, false, []string{"a0", "c1"}}, // a0 is group 0's: wave 2
		{1, true, []string{"d1"}},         // wave 1, group 1: d1 waits for nothing left behind
		{1, true, []string{"c1"}},         // c1 is item 4's, left for wave 2, where it is across: wave 3
		{-1, false, []string{"h0", "i1"}}, // wave 1, across
		{-1, false, []string{"i1", "j2"}}, // i1 is item 7's: wave 2
		{2, true, []string{"j2", "k2"}},   // j2 waits with item 8: wave 3
	}
	waves := cutWaves(places)
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
	check("wave 1 group 1", waves[0].groups[1], []int{1, 5})
	check("wave 1 across", waves[0].across, []int{3, 7})
	check("wave 2 across", waves[1].across, []int{4, 8})
	check("wave 2 shards", waves[1].shards, nil)
	check("wave 3 group 1", waves[2].groups[1], []int{6})
	check("wave 3 group 2", waves[2].groups[2], []int{9})
}

// Any batch: every item in exactly one wave; a wallet named by one unit per wave; and two items
// that share a wallet run in request order: the later in a later wave, or in the same shard
// group after the earlier. Cross-shard transfers among a few hot wallets take far fewer waves
// than items (cutting at the first conflict took one wave per transfer).
func TestBatchWavesOrderEveryWalletsItems(t *testing.T) {
	random := rand.New(rand.NewPCG(7, 25))
	for round := range 300 {
		walletCount := 2 + random.IntN(20)
		places := make([]batchPlace, 1+random.IntN(200))
		for i := range places {
			a, b := random.IntN(walletCount), random.IntN(walletCount)
			if a == b {
				b = (b + 1) % walletCount
			}
			wallets := []string{fmt.Sprintf("w%d", a), fmt.Sprintf("w%d", b)}
			if a%4 == b%4 {
				places[i] = batchPlace{a % 4, true, wallets}
			} else {
				places[i] = batchPlace{-1, false, wallets}
			}
		}
		waveOf, unitOf := map[int]int{}, map[int]int{}
		for n, w := range cutWaves(places) {
			named := map[string]int{}
			place := func(i, unit int) {
				if _, twice := waveOf[i]; twice {
					t.Fatalf("round %d: item %d in two waves", round, i)
				}
				waveOf[i], unitOf[i] = n, unit
				for _, id := range places[i].wallets {
					if u, ok := named[id]; ok && u != unit {
						t.Fatalf("round %d: wave %d names %s in two units", round, n, id)
					}
					named[id] = unit
				}
			}
			for _, shardID := range w.shards {
				if !slices.IsSorted(w.groups[shardID]) {
					t.Fatalf("round %d: group out of request order: %v", round, w.groups[shardID])
				}
				for _, i := range w.groups[shardID] {
					place(i, shardID)
				}
			}
			for _, i := range w.across {
				place(i, -1-i)
			}
		}
		if len(waveOf) != len(places) {
			t.Fatalf("round %d: %d of %d items placed", round, len(waveOf), len(places))
		}
		for i, wave := range wavesByScan(places) {
			if waveOf[i] != wave {
				t.Fatalf("round %d: item %d in wave %d, the wave-by-wave scan puts it in %d", round, i, waveOf[i], wave)
			}
		}
		for i := range places {
			for j := i + 1; j < len(places); j++ {
				shared := slices.ContainsFunc(places[j].wallets, func(id string) bool { return slices.Contains(places[i].wallets, id) })
				if shared && !(waveOf[i] < waveOf[j] || (waveOf[i] == waveOf[j] && unitOf[i] == unitOf[j] && places[i].single)) {
					t.Fatalf("round %d: items %d and %d share a wallet; waves %d and %d", round, i, j, waveOf[i], waveOf[j])
				}
			}
		}
	}

	// 1,000 cross-shard transfers among 16 wallets of 4 shards.
	places := make([]batchPlace, 1000)
	for i := range places {
		a := random.IntN(16)
		b := (a + 1 + 4*random.IntN(3) + random.IntN(3)) % 16 // another shard
		if a%4 == b%4 {
			b = (b + 1) % 16
		}
		places[i] = batchPlace{-1, false, []string{fmt.Sprintf("w%d", a), fmt.Sprintf("w%d", b)}}
	}
	waves := cutWaves(places)
	t.Logf("1,000 cross-shard transfers among 16 wallets: %d waves", len(waves))
	if len(waves) > 400 {
		t.Errorf("%d waves for 1,000 transfers among 16 wallets", len(waves))
	}
}

// wavesByScan is cutWaves' definition run literally, as the oracle of its one-pass
// computation: each wave takes, in request order, every item not yet placed that shares no
// wallet with another unit of the wave nor with an item left for later. It answers each item's
// wave.
func wavesByScan(places []batchPlace) []int {
	waveOf := make([]int, len(places))
	pending := make([]int, len(places))
	for i := range pending {
		pending[i] = i
	}
	for wave := 0; len(pending) > 0; wave++ {
		var left []int
		touched := map[string]int{} // wallet → the wave's unit naming it: a shard, or -1 - item
		waiting := map[string]bool{}
		for _, i := range pending {
			p := &places[i]
			unit := -1 - i
			if p.single {
				unit = p.shardID
			}
			taken := func(id string) bool {
				u, ok := touched[id]
				return waiting[id] || (ok && (!p.single || u != unit))
			}
			if slices.ContainsFunc(p.wallets, taken) {
				left = append(left, i)
				for _, id := range p.wallets {
					waiting[id] = true
				}
				continue
			}
			for _, id := range p.wallets {
				touched[id] = unit
			}
			waveOf[i] = wave
		}
		pending = left
	}
	return waveOf
}

// stallingShards holds the first proposal after stall is set until its request's context ends
// (the proposal itself applies at once).
type stallingShards struct {
	*localShards
	stall atomic.Bool
}

func (s *stallingShards) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	result, err := s.localShards.Propose(ctx, shardID, command)
	if s.stall.CompareAndSwap(true, false) {
		<-ctx.Done()
	}
	return result, err
}

// A batch whose request ends between two waves answers the transactions of the waves it never
// started 503 Unavailable (not applied, safe to send again), not OutcomeUnknown; the started
// wave's transaction keeps its own answer, and nothing of the rest was applied.
func TestBatchPastItsDeadlineLeavesLaterWavesUnproposed(t *testing.T) {
	shards := &stallingShards{localShards: newLocalShards(t, 2)}
	c := &client{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{RequestTimeout: 300 * time.Millisecond}, New(shards),
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)}
	driver := NewCrossDriver(shards, func(int) bool { return true }, nil)
	driver.Run(shards.ShardCount())
	t.Cleanup(driver.Close)

	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	// Two wallets of a customer on shard 0 (a, b), one of a customer on shard 1 (x).
	walletsOn := map[int][]string{}
	for i := 0; len(walletsOn[0]) < 2 || len(walletsOn[1]) < 1; i++ {
		id := fmt.Sprintf("cust-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 2))
		c.do("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		for k := 0; k < 2; k++ {
			w := c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)
			walletsOn[shardID] = append(walletsOn[shardID], w["id"].(string))
		}
	}
	a, b, x := walletsOn[0][0], walletsOn[0][1], walletsOn[1][0]
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund", "operations": []map[string]any{
		{"type": "issue", "to": a, "amount": 100}}}, 201)

	// Item 1 names a, which item 0's group names: it runs in the second wave, after the first
	// (stalled past the request's end) has finished.
	items := []map[string]any{
		{"referenceId": "first", "operations": []map[string]any{{"type": "transfer", "from": a, "to": b, "amount": 10}}},
		{"referenceId": "second", "operations": []map[string]any{{"type": "transfer", "from": a, "to": x, "amount": 20}}},
	}
	shards.stall.Store(true)
	answer := c.do("POST", "/projects/shop/transactions/batch", map[string]any{"transactions": items}, 200)
	results := answer["results"].([]any)
	first, second := results[0].(map[string]any), results[1].(map[string]any)
	if first["status"] != float64(201) {
		t.Fatalf("the started wave's transaction: %v", first)
	}
	if second["status"] != float64(503) || second["error"].(map[string]any)["code"] != "Unavailable" {
		t.Fatalf("the wave never started: %v, want 503 Unavailable", second)
	}
	balance := func(id string) float64 {
		return c.do("GET", "/projects/shop/wallets/"+id, nil, 200)["balance"].(float64)
	}
	if balance(a) != 90 || balance(b) != 10 || balance(x) != 0 {
		t.Fatalf("balances a %v b %v x %v, want 90 10 0", balance(a), balance(b), balance(x))
	}
	// Sent again, the transaction that was not applied applies once.
	c.do("POST", "/projects/shop/transactions", items[1], 201)
	if balance(a) != 70 || balance(x) != 20 {
		t.Fatalf("after the resend: a %v x %v, want 70 20", balance(a), balance(x))
	}
}
