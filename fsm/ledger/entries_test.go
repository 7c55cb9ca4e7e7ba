package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/gigaledger/gigaledger/fsm"
)

// The same random batches applied to four stores: history in the state store (the rules before
// RulesEntriesAppended), appended from the start (entries and transactions), appended from the
// middle (a store upgraded in two steps, so entries pages and transaction lists straddle the
// layouts), and appended with short wallet epochs and a restart every few dozen batches (the
// newest entry's place replayed from the chain). Batches mix two projects, failed transactions
// and duplicate references (whose answer reads the earlier transaction). Every result, every
// wallet, every page of every wallet's entries — page sizes across the groups of 16, time ranges
// cut inside a batch's run of entries, pages past the end — and every transaction, read alone
// and in pages over time ranges, are the same on all four, and on a replica restored from the
// upgraded one; the invariants (which read every entry) hold on each.
func TestAppendedHistoryAnswersAsBefore(t *testing.T) {
	shortWalletEpochs(t, 29, 23)
	const (
		legacy = iota
		appended
		upgraded
		restarted
	)
	stores := [4]*testLedger{}
	for i := range stores {
		tl := newTestLedger(t)
		tl.applyTyped(&fsm.StartHistoryChain{})
		rules := fsm.RulesVersion
		if i == legacy || i == upgraded {
			rules = RulesEntriesAppended - 1
		}
		tl.applyTyped(&fsm.RaiseRules{Version: rules})
		tl.setup()
		tl.ok(&Command{Op: OpCreateProject, ProjectID: "p2", Name: "other"})
		tl.ok(&Command{Op: OpCreateAsset, ProjectID: "p2", AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100})
		tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p2", WalletID: "X1", AssetID: "usd"})
		tl.ok(&Command{Op: OpCreateWallet, ProjectID: "p2", WalletID: "X2", AssetID: "usd"})
		stores[i] = tl
	}
	wallets := []string{"W1", "W2", "S1"}
	transactionIDs := map[string][]string{}
	rng := rand.New(rand.NewPCG(3, 17))
	const steps = 240
	times := []int64{}
	for step := range steps {
		if step == steps/3 || step == 2*steps/3 {
			rules := RulesEntriesAppended
			if step == 2*steps/3 {
				rules = RulesTransactionsAppended
			}
			stores[upgraded].applyTyped(&fsm.RaiseRules{Version: rules})
			stores[legacy].applyTyped(&fsm.Tick{})
			stores[appended].applyTyped(&fsm.Tick{})
			stores[restarted].applyTyped(&fsm.Tick{})
		}
		var cmds []*Command
		for i := range 1 + rng.IntN(4) {
			ref := fmt.Sprintf("r%d-%d", step, i)
			pick := func() string { return wallets[rng.IntN(len(wallets))] }
			switch rng.IntN(9) {
			case 6:
				from, to := "X1", "X2"
				if rng.IntN(2) == 0 {
					from, to = to, from
				}
				cmds = append(cmds, tx(ref, issue(from, 3), transfer(from, to, 1+rng.Uint64N(3))))
			case 7:
				cmds = append(cmds, tx(ref, transfer(pick(), pick(), 1_000_000))) // fails: recorded
			case 8:
				if step > 0 { // an earlier reference again: rejected with the earlier transaction
					cmds = append(cmds, tx(fmt.Sprintf("r%d-0", rng.IntN(step)), issue(pick(), 1)))
				}
			case 0:
				cmds = append(cmds, tx(ref, issue(pick(), 5+rng.Uint64N(50))))
			case 1:
				from, to := pick(), pick()
				cmds = append(cmds, tx(ref, transfer(from, to, 1+rng.Uint64N(3)), transfer(to, from, 1)))
			case 2:
				cmds = append(cmds, tx(ref, redeem(pick(), 1)))
			default:
				cmds = append(cmds, tx(ref, transfer(pick(), pick(), 1+rng.Uint64N(4))))
			}
		}
		results := make([][]*Result, len(stores))
		for i, tl := range stores {
			results[i] = tl.batch(cmds...)
		}
		for i := 1; i < len(stores); i++ {
			if !reflect.DeepEqual(results[0], results[i]) {
				t.Fatalf("step %d: store %d answered %+v, the legacy store %+v", step, i, results[i], results[0])
			}
		}
		for _, r := range results[0] {
			if r.Err == nil || r.Err.Code != CodeDuplicateReferenceID {
				if r.Transaction != nil {
					transactionIDs[r.Transaction.ProjectID] = append(transactionIDs[r.Transaction.ProjectID], r.Transaction.ID)
				}
			}
		}
		times = append(times, stores[0].nowMs)
		if step%31 == 30 {
			tl := stores[restarted]
			if err := tl.ledger.Close(); err != nil {
				t.Fatal(err)
			}
			l, err := openTest(tl.dir, nil)
			if err != nil {
				t.Fatalf("step %d: reopen: %v", step, err)
			}
			tl.ledger = l
		}
		// The same log: the same bytes, whether a restart fell in the middle of an epoch or not.
		if stores[appended].digest() != stores[restarted].digest() {
			t.Fatalf("step %d: the restarted store differs from the other appending one", step)
		}
		if step%40 == 39 || step == steps-1 {
			compareEntries(t, stores[:], wallets, times, rng)
			compareTransactions(t, stores[:], transactionIDs, times, rng)
		}
	}
	// A replica restored from the upgraded store's snapshot (a follower's InstallSnapshot)
	// answers alike, though the store it replaced held appended entries only: what the ledger
	// knows of the state store's entries is loaded again.
	restored := newTestLedger(t)
	restored.applyTyped(&fsm.StartHistoryChain{})
	restored.applyTyped(&fsm.RaiseRules{Version: fsm.RulesVersion})
	restored.setup()
	restored.ok(tx("before the restore", issue("W1", 5)))
	snap, err := stores[upgraded].ledger.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := snap.Persist(&stream); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := restored.ledger.Restore(io.NopCloser(&stream)); err != nil {
		t.Fatal(err)
	}
	restored.index, restored.nowMs = stores[upgraded].index, stores[upgraded].nowMs
	if restored.digest() != stores[upgraded].digest() {
		t.Fatal("the restored store differs from its source")
	}
	compareEntries(t, []*testLedger{stores[legacy], restored}, wallets, times, rng)
	compareTransactions(t, []*testLedger{stores[legacy], restored}, transactionIDs, times, rng)
	for i, tl := range stores {
		if err := tl.ledger.CheckInvariants(); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
		if _, err := tl.ledger.VerifyHistory(); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	// The stores that append keep no entry in the state store (the upgraded one only those from
	// before the rules), and a place for every 16th entry.
	count := func(tl *testLedger, prefix byte) (n int) {
		if err := tl.ledger.store.Scan([]byte{prefix}, func(_, _ []byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var total, groups uint64
	for _, id := range wallets {
		w := stores[legacy].wallet("p1", id)
		total += w.EntryCount
		groups += w.EntryCount / entryGroupLen
	}
	if n := count(stores[legacy], prefixEntry); uint64(n) != total {
		t.Fatalf("legacy store: %d entries stored, %d posted", n, total)
	}
	if n, g := count(stores[appended], prefixEntry), count(stores[appended], prefixEntryGroup); n != 0 || uint64(g) != groups {
		t.Fatalf("appending store: %d entries and %d places in the state store, want 0 and %d", n, g, groups)
	}
	if n := count(stores[upgraded], prefixEntry); n == 0 || uint64(n) >= total {
		t.Fatalf("upgraded store: %d of %d entries in the state store", n, total)
	}
	// Transactions likewise: none under their state keys where they are appended from the start,
	// one batch key per batch and project instead; both kinds in the upgraded store.
	if n, b := count(stores[appended], prefixTransaction), count(stores[appended], prefixTransactionBatch); n != 0 || b == 0 {
		t.Fatalf("appending store: %d transactions and %d batch keys in the state store", n, b)
	}
	if n, b := count(stores[upgraded], prefixTransaction), count(stores[upgraded], prefixTransactionBatch); n == 0 || b == 0 {
		t.Fatalf("upgraded store: %d transactions and %d batch keys in the state store", n, b)
	}
	t.Logf("%d entries, %d groups", total, groups)
}

// compareEntries checks every wallet's pages on every store against the first store's.
func compareEntries(t *testing.T, stores []*testLedger, wallets []string, times []int64, rng *rand.Rand) {
	t.Helper()
	ranges := []TimeRange{{FromMs: 0, ToMs: math.MaxInt64}, {FromMs: 0, ToMs: -1}, {FromMs: times[len(times)-1] + 1, ToMs: math.MaxInt64}}
	for range 6 {
		a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
		ranges = append(ranges, TimeRange{FromMs: min(a, b), ToMs: max(a, b)}, TimeRange{FromMs: a, ToMs: math.MaxInt64},
			TimeRange{FromMs: 0, ToMs: a}, TimeRange{FromMs: max(a, b), ToMs: min(a, b)}, TimeRange{FromMs: a - 1, ToMs: a - 1})
	}
	for _, id := range wallets {
		w0 := *stores[0].wallet("p1", id)
		for i, tl := range stores[1:] {
			w := *tl.wallet("p1", id)
			w.NewestEntryIndex = 0
			if w != w0 {
				t.Fatalf("wallet %s: store %d has %+v, the legacy store %+v", id, i+1, w, w0)
			}
		}
		for _, r := range ranges {
			for _, size := range []int{1, 7, 16, 20, 33, 1000} {
				for page := 1; ; page++ {
					pr := PageRequest{Page: page, PageSize: size}
					want, wantMore, err := stores[0].ledger.ListEntries("p1", id, r, pr)
					if err != nil {
						t.Fatal(err)
					}
					for i, tl := range stores[1:] {
						got, more, err := tl.ledger.ListEntries("p1", id, r, pr)
						if err != nil || more != wantMore || !reflect.DeepEqual(got, want) {
							t.Fatalf("wallet %s %+v page %d/%d: store %d: %v %v %d entries %+v; legacy %v %d entries %+v",
								id, r, page, size, i+1, err, more, len(got), got, wantMore, len(want), want)
						}
					}
					if !wantMore {
						break
					}
				}
			}
		}
	}
}

// compareTransactions checks every transaction, alone and in pages, on every store against the
// first store's.
func compareTransactions(t *testing.T, stores []*testLedger, ids map[string][]string, times []int64, rng *rand.Rand) {
	t.Helper()
	for project, list := range ids {
		for _, id := range list {
			want, err := stores[0].ledger.GetTransaction(project, id)
			if err != nil {
				t.Fatal(err)
			}
			for i, tl := range stores[1:] {
				if got, err := tl.ledger.GetTransaction(project, id); err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("transaction %s/%s: store %d: %+v %v; legacy %+v", project, id, i+1, got, err, want)
				}
			}
		}
		ranges := []TimeRange{{FromMs: 0, ToMs: math.MaxInt64}, {FromMs: 0, ToMs: -1}, {FromMs: times[len(times)-1] + 1, ToMs: math.MaxInt64}}
		for range 5 {
			a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
			ranges = append(ranges, TimeRange{FromMs: min(a, b), ToMs: max(a, b)}, TimeRange{FromMs: a, ToMs: math.MaxInt64},
				TimeRange{FromMs: 0, ToMs: a}, TimeRange{FromMs: max(a, b) + 1, ToMs: min(a, b)}, TimeRange{FromMs: a - 1, ToMs: a - 1})
		}
		for _, r := range ranges {
			for _, size := range []int{1, 3, 20, 1000} {
				for page := 1; ; page++ {
					pr := PageRequest{Page: page, PageSize: size}
					want, wantMore, err := stores[0].ledger.ListTransactions(project, r, pr)
					if err != nil {
						t.Fatal(err)
					}
					for i, tl := range stores[1:] {
						got, more, err := tl.ledger.ListTransactions(project, r, pr)
						if err != nil || more != wantMore || !reflect.DeepEqual(got, want) {
							t.Fatalf("transactions of %s %+v page %d/%d: store %d: %v %v %d; legacy %v %d", project, r, page, size, i+1, err, more, len(got), wantMore, len(want))
						}
					}
					if !wantMore {
						break
					}
				}
			}
		}
	}
	if _, err := stores[len(stores)-1].ledger.GetTransaction("p1", transactionID("t", 1<<40)); err == nil {
		t.Fatal("a transaction that was never written was found")
	}
}

// A changed, lost or misplaced appended entry, or a wrong place of a group, is named: by the
// history chain (a changed or lost record) or by the invariants, which read every entry through
// the pointers and places.
func TestTamperedAppendedEntriesAreNamed(t *testing.T) {
	build := func(t *testing.T) *testLedger {
		tl := newTestLedger(t)
		t.Cleanup(func() { // before newTestLedger's, which checks the invariants
			tl.ledger.Close()
			tl.ledger = nil
		})
		tl.applyTyped(&fsm.StartHistoryChain{})
		tl.applyTyped(&fsm.RaiseRules{Version: fsm.RulesVersion})
		tl.setup()
		tl.ok(tx("fund", issue("W1", 1000)))
		for i := range 40 {
			tl.ok(tx(fmt.Sprint("t", i), transfer("W1", "W2", 1)))
		}
		tl.checkInvariants()
		if _, err := tl.ledger.VerifyHistory(); err != nil {
			t.Fatal(err)
		}
		return tl
	}
	w2Entry := func(t *testing.T, tl *testLedger, sequence uint64) (index uint64, k, v []byte) {
		// W2's entries: one per batch, from the batch after "fund".
		w := tl.wallet("p1", "W2")
		index = w.NewestEntryIndex - (w.EntryCount - 1 - sequence)
		k = appendedEntryKey("W2", sequence)
		err := tl.ledger.store.Read(func() error {
			var err error
			v, err = tl.ledger.store.GetAppended(index, k)
			if err == nil && v == nil {
				err = fmt.Errorf("W2's entry %d is not at log index %d", sequence, index)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return index, k, v
	}
	t.Run("changed", func(t *testing.T) {
		tl := build(t)
		index, k, v := w2Entry(t, tl, 20)
		changed := bytes.Clone(v)
		changed[len(changed)-1] ^= 1 // the balance after
		hk := binary.BigEndian.AppendUint64([]byte{'#'}, index)
		tamper(t, tl, "history", append(append(hk, 1), k...), changed)
		var mismatch *fsm.HistoryMismatch
		if _, err := tl.ledger.VerifyHistory(); !errors.As(err, &mismatch) || mismatch.Index != index || !bytes.Equal(mismatch.Key, k) {
			t.Fatalf("VerifyHistory: %v", err)
		}
		if err := tl.ledger.CheckInvariants(); err == nil {
			t.Fatal("CheckInvariants passed a changed entry")
		}
	})
	t.Run("wrong place", func(t *testing.T) {
		tl := build(t)
		// Group 1 (entries 16..31) said to end at the log index of entry 30.
		index, _, _ := w2Entry(t, tl, 30)
		tamper(t, tl, "", entryGroupKey("W2", 1), append(appendUvarint(index), 2))
		if err := tl.ledger.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "entry 31 is not at log index") {
			t.Fatalf("CheckInvariants: %v", err)
		}
		if _, _, err := tl.ledger.ListEntries("p1", "W2", TimeRange{ToMs: math.MaxInt64}, PageRequest{Page: 2, PageSize: 16}); err == nil {
			t.Fatal("a page through the wrong place answered")
		}
	})
	t.Run("place time", func(t *testing.T) {
		// The right log index and a time years ahead: time-bounded pages would search by it.
		tl := build(t)
		index, _, _ := w2Entry(t, tl, 31)
		tamper(t, tl, "", entryGroupKey("W2", 1), binary.AppendVarint(appendUvarint(index), 1<<50))
		if err := tl.ledger.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "entry group 1's place says time") {
			t.Fatalf("CheckInvariants: %v", err)
		}
	})
	t.Run("transaction batch key", func(t *testing.T) {
		// The key of the batch of the transaction "t20", pointing to the batch before.
		tl := build(t)
		tr := tl.apply(tx("t20", transfer("W1", "W2", 1))) // a duplicate: answers the original
		if tr.Transaction == nil {
			t.Fatal("no transaction for a duplicate reference")
		}
		var k, v []byte
		err := tl.ledger.store.Scan([]byte{prefixTransactionBatch}, func(bk, bv []byte) error {
			if binary.BigEndian.Uint64(bk[len(bk)-8:]) == tr.Transaction.Sequence {
				k, v = bytes.Clone(bk), bytes.Clone(bv)
			}
			return nil
		})
		if err != nil || k == nil {
			t.Fatalf("no batch key for %s: %v", tr.Transaction.ID, err)
		}
		index, batchTime, _ := decodeTransactionBatch(v)
		tamper(t, tl, "", k, binary.AppendVarint(appendUvarint(index-1), batchTime))
		if err := tl.ledger.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "cannot be found") {
			t.Fatalf("CheckInvariants: %v", err)
		}
	})
}

func appendUvarint(x uint64) []byte {
	e := fsm.Encoder{}
	e.Uvarint(x)
	return e.Buf
}

// tamper writes one key behind apply's back into the state store (store "") or the history
// store ("history"), with the ledger closed, and opens it again. The machine keeps its state
// store in <dir>/ledger, and the history store inside it.
func tamper(t *testing.T, tl *testLedger, store string, k, v []byte) {
	t.Helper()
	if err := tl.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(filepath.Join(tl.dir, "ledger", store), &pebble.Options{ErrorIfNotExists: true, Logger: quietPebble{}})
	if err == nil {
		if err = db.Set(k, v, pebble.Sync); err == nil {
			err = db.Flush() // the ledger's store opens without reading a log
		}
		if closeErr := db.Close(); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if tl.ledger, err = openTest(tl.dir, nil); err != nil {
		t.Fatal(err)
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
