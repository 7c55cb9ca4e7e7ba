package main

import (
	"testing"
)

// A batch of transactions on 3 nodes and 4 shards: single-shard transactions of several shards
// (one proposal per shard) and cross-shard ones in one request, each with its own result in
// request order; a transaction that spends what an earlier cross-shard one paid in sees it.
func TestTransactionBatchAcrossShards(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	f := newCrossFixture(t, 2, 1000)
	a0, a1 := f.byShard[0][0], f.byShard[0][1]
	b0, b1 := f.byShard[1][0], f.byShard[1][1]
	c0, c1 := f.byShard[2][0], f.byShard[2][1]
	d0 := f.byShard[3][0]
	transfer := func(ref, from, to string, amount int) map[string]any {
		return map[string]any{"referenceId": ref, "operations": []map[string]any{{"type": "transfer", "from": from, "to": to, "amount": amount}}}
	}
	items := []map[string]any{
		transfer("m1", a0, a1, 100),  // shard 0
		transfer("m2", c0, c1, 100),  // shard 2
		transfer("m3", a1, b0, 1100), // across 0 → 1, needs m1
		transfer("m4", b0, b1, 2100), // shard 1, needs m3
		transfer("m5", d0, a0, 5000), // across 3 → 0, insufficient funds
		transfer("m1", a0, a1, 100),  // m1 again
	}
	out := f.tc.must("POST", "/projects/shop/transactions/batch", map[string]any{"transactions": items}, 200)
	results, _ := out["results"].([]any)
	want := []struct {
		status float64
		code   string
	}{{201, ""}, {201, ""}, {201, ""}, {201, ""}, {422, "InsufficientFunds"}, {409, "DuplicateReferenceId"}}
	if len(results) != len(want) {
		t.Fatalf("%d results for %d transactions: %v", len(results), len(want), out)
	}
	var firstID any
	for i, w := range want {
		r := results[i].(map[string]any)
		var code any
		if e, ok := r["error"].(map[string]any); ok {
			code = e["code"]
		}
		if r["status"] != w.status || (w.code != "" && code != w.code) || (w.code == "" && code != nil) {
			t.Errorf("result %d: %v, want %v %q", i, r, w.status, w.code)
		}
		tx, _ := r["transaction"].(map[string]any)
		if tx == nil || tx["referenceId"] != items[i]["referenceId"] {
			t.Errorf("result %d carries %v", i, tx)
			continue
		}
		if i == 0 {
			firstID = tx["id"]
		}
	}
	if dup, _ := results[5].(map[string]any)["transaction"].(map[string]any); dup == nil || dup["id"] != firstID {
		t.Errorf("the repeated m1 does not answer the first: %v", results[5])
	}
	for wallet, balance := range map[string]uint64{a0: 900, a1: 0, b0: 0, b1: 3100, c0: 900, c1: 1100, d0: 1000} {
		if got := f.balance(wallet); got != balance {
			t.Errorf("wallet %s holds %d, want %d", wallet, got, balance)
		}
	}
	f.check(t)
}
