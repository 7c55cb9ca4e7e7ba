package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/gigaledger/gigaledger/fsm"
)

// ledgerView is everything the queries answer about randomLog's project: every wallet's entries
// and every transaction, by page and one by one.
func ledgerView(t *testing.T, tl *testLedger) string {
	t.Helper()
	all := PageRequest{Page: 1, PageSize: 1 << 20}
	everything := TimeRange{FromMs: 0, ToMs: 1 << 62}
	txs, more, err := tl.ledger.ListTransactions("p1", everything, all)
	if err != nil || more {
		t.Fatal(err, more)
	}
	out := fmt.Sprintf("%d transactions: %+v\n", len(txs), txs)
	for _, tx := range txs {
		got, err := tl.ledger.GetTransaction("p1", tx.ID)
		if err != nil || !reflect.DeepEqual(*got, tx) {
			t.Fatalf("transaction %s: %v %+v, page says %+v", tx.ID, err, got, tx)
		}
	}
	// A time window cut through the middle, paged: the transactions' binary search and the
	// entries' time bounds resolve pointers too.
	middle := TimeRange{FromMs: tl.nowMs - 100_000, ToMs: tl.nowMs - 50_000}
	for page := 1; ; page++ {
		txs, more, err := tl.ledger.ListTransactions("p1", middle, PageRequest{Page: page, PageSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("window page %d: %+v\n", page, txs)
		if !more {
			break
		}
	}
	for n := 1; n <= 2000; n++ {
		id := fmt.Sprintf("w%d", n)
		entries, more, err := tl.ledger.ListEntries("p1", id, everything, all)
		if err != nil {
			continue // not a wallet
		}
		window, _, err := tl.ledger.ListEntries("p1", id, middle, PageRequest{Page: 2, PageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s: %+v %v %+v\n", id, entries, more, window)
	}
	return out
}

// One log gives the same answers, result by result and query by query, from a store without
// the chain, one with the chain holding every record twice (rules before RulesHistoryOnce),
// one writing history once from the start, and one that switched in the middle (old records
// read beside pointers). Apply reads transactions by reference (reused references) through
// pointers, in the batch that wrote them and in later ones.
func TestHistoryOnceAnswersAsBefore(t *testing.T) {
	log := randomLog(11, 300)
	noChain := newTestLedgerAt(t, false, fsm.RulesHistoryOnce-1)
	twice := newTestLedgerAt(t, true, fsm.RulesHistoryOnce-1)
	once := newTestLedgerAt(t, true, fsm.RulesHistoryOnce)
	mixed := newTestLedgerAt(t, true, fsm.RulesHistoryOnce-1)

	want := applyLog(t, noChain, log)
	for _, tl := range []*testLedger{twice, once} {
		if got := applyLog(t, tl, log); !reflect.DeepEqual(got, want) {
			t.Fatal("results differ")
		}
	}
	got := applyLog(t, mixed, log[:150])
	if r := mixed.applyTyped(&fsm.RaiseRules{Version: fsm.RulesHistoryOnce}); r.Err != nil {
		t.Fatal(r.Err)
	}
	mixed.nowMs -= 1000 // the raise took a log entry; keep batch times equal to the others'
	got = append(got, applyLog(t, mixed, log[150:])...)
	if !reflect.DeepEqual(got, want) {
		t.Fatal("results differ in the store that switched")
	}

	// What is stored: records, pointers, or both kinds.
	kinds := func(tl *testLedger) (records, pointers int) {
		for _, p := range []byte{prefixEntry, prefixTransaction} {
			err := tl.ledger.Machine.Store().Scan([]byte{p}, func(_, v []byte) error {
				if fsm.IsHistoryPointer(v) {
					pointers++
				} else {
					records++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return records, pointers
	}
	for name, c := range map[string]struct {
		tl                *testLedger
		records, pointers bool
	}{"no chain": {noChain, true, false}, "twice": {twice, true, false}, "once": {once, false, true}, "mixed": {mixed, true, true}} {
		r, p := kinds(c.tl)
		if (r > 0) != c.records || (p > 0) != c.pointers {
			t.Errorf("%s: %d records, %d pointers", name, r, p)
		}
	}

	view := ledgerView(t, noChain)
	for name, tl := range map[string]*testLedger{"twice": twice, "once": once, "mixed": mixed} {
		if v := ledgerView(t, tl); v != view {
			t.Errorf("%s answers differently", name)
		}
		// Each cleanup also runs CheckInvariants (balances replayed through pointers) and
		// VerifyHistory (each pointer names its key's newest write).
	}

	// A restart (the module's Load) and a snapshot restored elsewhere read the same.
	if err := once.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := openTest(once.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	once.ledger = reopened
	if v := ledgerView(t, once); v != view {
		t.Error("answers differ after a restart")
	}
}

// A transaction written earlier in the same batch is seen by a later command of that batch
// (from memory: its pointer names a chain record not yet written), and by later batches
// through its pointer.
func TestApplyReadsATransactionOfTheSameBatch(t *testing.T) {
	tl := newTestLedger(t)
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p", Name: "p"})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: "a", AssetID: "usd"})
	tx := &Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: "once", Operations: []Operation{issue("a", 5)}}
	other := &Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: "once", Operations: []Operation{issue("a", 6)}}
	rs := tl.batch(tx, tx, other)
	if rs[0].Err != nil || rs[1].Err == nil || rs[1].Err.Code != CodeDuplicateReferenceID ||
		rs[2].Err == nil || rs[2].Err.Code != CodeReferenceIDMismatch {
		t.Fatalf("same batch: %v / %v / %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}
	if !reflect.DeepEqual(rs[1].Transaction, rs[0].Transaction) || !reflect.DeepEqual(rs[2].Transaction, rs[0].Transaction) {
		t.Fatalf("same batch: %+v / %+v, want %+v", rs[1].Transaction, rs[2].Transaction, rs[0].Transaction)
	}
	raw, err := tl.ledger.Machine.Store().Get(transactionKey("p", rs[0].Transaction.Sequence))
	if err != nil || !fsm.IsHistoryPointer(raw) {
		t.Fatalf("stored transaction %x (%v), want a pointer", raw, err)
	}
	later := tl.batch(tx)[0]
	if later.Err == nil || later.Err.Code != CodeDuplicateReferenceID || !reflect.DeepEqual(later.Transaction, rs[0].Transaction) {
		t.Fatalf("later batch: %v %+v", later.Err, later.Transaction)
	}
	if w := tl.wallet("p", "a"); w.Balance != AmountFromUint64(5) {
		t.Fatalf("balance %s", w.Balance)
	}
}

// An entries page reads one chain record per batch it spans, whatever the number of entries.
func TestEntriesPageReadsOneChainRecordPerBatch(t *testing.T) {
	tl := newTestLedger(t)
	tl.ok(&Command{Op: OpCreateProject, ProjectID: "p", Name: "p"})
	tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: "a", AssetID: "usd"})
	tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: "b", AssetID: "usd"})
	for batch := range 3 {
		var cmds []*Command
		for i := range 10 {
			cmds = append(cmds, &Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t",
				ReferenceID: fmt.Sprintf("r%d.%d", batch, i), Operations: []Operation{issue("a", 3), transfer("a", "b", 1)}})
		}
		for _, r := range tl.batch(cmds...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	h := tl.ledger.Machine.Store().HistoryReader()
	defer h.Close()
	n := 0
	err := tl.ledger.Machine.Store().Scan(prefixOf(prefixEntry, "a"), func(k, v []byte) error {
		if !fsm.IsHistoryPointer(v) {
			t.Errorf("entry %q stored as a record", k)
		}
		v, err := h.Resolve(k, v)
		if err != nil {
			return err
		}
		e, err := decodeEntry("a", v)
		if err == nil && e.Sequence != uint64(n) {
			t.Errorf("entry %d has sequence %d", n, e.Sequence)
		}
		n++
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 60 || h.Reads != 3 {
		t.Fatalf("%d entries read with %d chain record reads, want 60 with 3", n, h.Reads)
	}
	entries, _, err := tl.ledger.ListEntries("p", "a", TimeRange{ToMs: 1 << 62}, PageRequest{Page: 2, PageSize: 25})
	if err != nil || len(entries) != 25 || entries[0].Sequence != 25 || entries[24].BalanceAfter != AmountFromUint64(50) {
		t.Fatalf("page: %v %+v", err, entries)
	}
}

// The balance replay reads entries through their pointers in chain order, and finds a chain
// record whose entry was changed and a pointer that names another entry's write.
func TestCheckInvariantsThroughPointers(t *testing.T) {
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, db *pebble.DB, keys, values [][]byte)
		want   string
	}{
		{"entry changed in its chain record", func(t *testing.T, db *pebble.DB, keys, values [][]byte) {
			index, _, _ := fsm.ParseHistoryPointer(values[5])
			ck := binary.BigEndian.AppendUint64([]byte{'#'}, index)
			rec, closer, err := db.Get(ck)
			if err != nil {
				t.Fatal(err)
			}
			rec = bytes.Clone(rec)
			closer.Close()
			// The entry's encoded record (version 1, then its sequence 5) after its key.
			at := bytes.Index(rec, keys[5]) + len(keys[5]) + 1 // after the value's length byte
			if rec[at] != 1 || rec[at+1] != 5 {
				t.Fatalf("entry record not found in the chain record: %x", rec[at:at+4])
			}
			rec[at+1] = 6
			if err := db.Set(ck, rec, pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "wallet a: entry 5 has sequence 6"},
		{"pointer to another entry", func(t *testing.T, db *pebble.DB, keys, values [][]byte) {
			if err := db.Set(keys[5], values[4], pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}, "two entries point to write"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tl := newTestLedger(t)
			tl.ok(&Command{Op: OpCreateProject, ProjectID: "p", Name: "p"})
			tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100})
			tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: "a", AssetID: "usd"})
			tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: "b", AssetID: "usd"})
			for i := range 4 {
				tl.batch(&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: fmt.Sprint("r", i),
					Operations: []Operation{issue("a", 3), transfer("a", "b", 1)}})
			}
			var keys, values [][]byte
			err := tl.ledger.Machine.Store().Scan(prefixOf(prefixEntry, "a"), func(k, v []byte) error {
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
				return nil
			})
			if err != nil || len(keys) != 8 {
				t.Fatal(err, len(keys))
			}
			if err := tl.ledger.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			if err := tl.ledger.Close(); err != nil {
				t.Fatal(err)
			}
			tl.ledger = nil // the cleanup's checks would fail on purpose
			db, err := pebble.Open(filepath.Join(tl.dir, "ledger"), &pebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c.tamper(t, db, keys, values)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			l, err := openTest(tl.dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.CheckInvariants(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
