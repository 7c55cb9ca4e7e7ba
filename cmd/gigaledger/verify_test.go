package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
)

// Three replicas start their history chain by themselves and agree on its head; a stopped
// node's store verifies, and `gigaledger verify` names what was changed behind its back.
func TestVerifyHistoryChainOfAStoppedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	machine := func(i int) *fsm.Machine { return tc.node(i).cluster.StateMachine(0).(*fsm.Machine) }
	testutil.EventuallyWithin(t, 15*time.Second, "the history chain started on every replica", func() bool {
		for i := range tc.nodes {
			if !machine(i).HistoryChainStarted() {
				return false
			}
		}
		return true
	})
	tc.must("POST", "/projects", map[string]any{"id": "bank", "name": "bank"}, 201)
	tc.must("POST", "/projects/bank/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	a := tc.must("POST", "/projects/bank/system-wallets", map[string]any{"assetId": "usd"}, 201)["id"]
	b := tc.must("POST", "/projects/bank/system-wallets", map[string]any{"assetId": "usd"}, 201)["id"]
	tc.must("POST", "/projects/bank/transactions", map[string]any{"referenceId": "fund", "operations": []map[string]any{
		{"type": "issue", "to": a, "amount": 1000}}}, 201)
	for k := range 10 {
		tc.must("POST", "/projects/bank/transactions", map[string]any{"referenceId": fmt.Sprintf("t%d", k), "operations": []map[string]any{
			{"type": "transfer", "from": a, "to": b, "amount": 1 + k}}}, 201)
	}
	tc.waitConverged(15 * time.Second)
	head, _ := machine(0).HistoryChainHead()
	for i := range tc.nodes {
		if h, _ := machine(i).HistoryChainHead(); h != head {
			t.Fatalf("node %d's chain head %x, node 0's %x", i, h, head)
		}
	}
	tc.stop(2)
	dataDir := tc.configs[2].DataDir
	verify := func() (int, string) {
		var out, errs bytes.Buffer
		code := verifyCommand([]string{"--data-dir", dataDir}, &out, &errs)
		return code, out.String() + errs.String()
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "shard 0: ok") || !strings.Contains(out, "all covered by the chain") {
		t.Fatalf("verify exit %d:\n%s", code, out)
	}
	tamper := func(change func(db *pebble.DB)) {
		// Entries are appended to the history store (rules version 7, fsm/ledger/entries.go),
		// beside the chain records (rules version 4, fsm/history.go).
		db, err := pebble.Open(filepath.Join(dataDir, "shard-0", "ledger", "history"), &pebble.Options{Logger: silentPebble{}})
		if err != nil {
			t.Fatal(err)
		}
		change(db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An entry rewritten on disk: named, with the chain record that wrote it. Its key in the
	// history store is # {log index} 0x01 {the ledger's key, % {wallet} 0 {sequence}}.
	var entryKey, entryValue []byte
	tamper(func(db *pebble.DB) {
		it, _ := db.NewIter(nil)
		for valid := it.Last(); valid; valid = it.Prev() {
			if k := it.Key(); len(k) > 10 && k[0] == '#' && k[9] == 1 && k[10] == '%' {
				entryKey, entryValue = bytes.Clone(k), bytes.Clone(it.Value())
				break
			}
		}
		it.Close()
		if entryKey == nil {
			t.Fatal("no entries")
		}
		forged := bytes.Clone(entryValue)
		forged[len(forged)-1] ^= 1
		if err := db.Set(entryKey, forged, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
	code, out := verify()
	if code != 1 || !strings.Contains(out, "history does not match its chain") || !strings.Contains(out, fmt.Sprintf("%q", entryKey[10:])) {
		t.Fatalf("verify of a forged entry: exit %d:\n%s", code, out)
	}
	t.Logf("verify of a forged entry:\n%s", out)
	// Put back, the store verifies again.
	tamper(func(db *pebble.DB) {
		if err := db.Set(entryKey, entryValue, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
	if code, out := verify(); code != 0 {
		t.Fatalf("verify after the repair: exit %d:\n%s", code, out)
	}
	// A chain record changed in the history store is named too.
	tamper(func(db *pebble.DB) {
		it, _ := db.NewIter(nil)
		var recordKey, record []byte
		records := 0
		for valid := it.First(); valid && records < 2; valid = it.Next() {
			if len(it.Key()) == 9 {
				recordKey, record = bytes.Clone(it.Key()), bytes.Clone(it.Value())
				records++
			}
		}
		it.Close()
		if records < 2 {
			t.Fatal("fewer than two chain records in the history store")
		}
		record[len(record)-1] ^= 1
		if err := db.Set(recordKey, record, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	})
	if code, out := verify(); code != 1 || !strings.Contains(out, "previous hash") {
		t.Fatalf("verify of a changed chain record in the history store: exit %d:\n%s", code, out)
	}

	// A store that holds nothing (a copy of a running node taken before its first flush) says
	// that nothing was checked.
	empty := t.TempDir()
	m, err := fsm.Open(filepath.Join(empty, "shard-0"), nil, newFamilies().registry)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	dataDir = empty
	if code, out := verify(); code != 0 || !strings.Contains(out, "holds nothing, so nothing was checked") {
		t.Fatalf("verify of an empty store: exit %d:\n%s", code, out)
	}
}

type silentPebble struct{}

func (silentPebble) Infof(string, ...any)           {}
func (silentPebble) Errorf(string, ...any)          {}
func (silentPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// A --shard that is no shard number is a usage error (2), not "every shard" (a probe ran
// --shard -2 and got every shard verified without a word).
func TestVerifyRefusesANegativeShard(t *testing.T) {
	for _, args := range [][]string{{"--data-dir", t.TempDir(), "--shard", "-2"}, {"--data-dir", t.TempDir(), "--shard", "-1"}} {
		var out, errs bytes.Buffer
		if code := verifyCommand(args, &out, &errs); code != 2 || !strings.Contains(errs.String(), "usage") {
			t.Errorf("%v: exit %d, %q", args, code, errs.String())
		}
	}
}
