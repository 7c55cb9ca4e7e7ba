package ledger

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// A compact entry record decodes, under its key, to the entry it was made from, whatever the
// form of the transaction ID: one transactionID made, and anything else (kept whole).
func TestCompactEntryRecordsRoundTrip(t *testing.T) {
	ids := []string{
		transactionID("t2a", 0), transactionID("t2a", 1), transactionID("tx_0042", 0xdeadbeef),
		transactionID("", 7), transactionID("p", math.MaxUint64-1), transactionID("p", math.MaxUint64),
		"0123456789abcdef",                   // 16 digits and no prefix: kept whole
		"t2a0000000000000ABCD",               // upper-case digits are not transactionID's
		"t2a000000000000000g",                // not hex
		"short", strings.Repeat("é", 20), "", // odd, but stored as given
	}
	for i, id := range ids {
		e := Entry{WalletID: "W1", Sequence: uint64(i * 1000), TransactionID: id, OperationIndex: i % 3,
			Type: EntryDebit, Amount: amt(uint64(i) + 1), BalanceAfter: Amount{Hi: 1, Lo: uint64(i)}, CreatedAt: 1_700_000_000_123 + int64(i)}
		k := appendTimeSequence(prefixOf(prefixEntry, e.WalletID), e.CreatedAt, e.Sequence)
		v := encodeEntryCompact(&e)
		got, err := decodeStoredEntry(e.WalletID, k, v)
		if err != nil || !reflect.DeepEqual(*got, e) {
			t.Fatalf("ID %q: decoded %+v, %v; want %+v", id, got, err, e)
		}
		if full := encodeEntry(&e); len(v) >= len(full) {
			t.Errorf("ID %q: compact record of %d bytes, version 1 of %d", id, len(v), len(full))
		}
		// Strict: under another entry's key, cut short, or with a byte more, it is refused.
		other := appendTimeSequence(prefixOf(prefixEntry, e.WalletID), e.CreatedAt, e.Sequence+1)
		if _, err := decodeStoredEntry(e.WalletID, other, v); err == nil {
			t.Fatalf("ID %q: decoded under another sequence's key", id)
		}
		if _, err := decodeStoredEntry(e.WalletID, k, v[:len(v)-1]); err == nil {
			t.Fatalf("ID %q: a cut record decoded", id)
		}
		if _, err := decodeStoredEntry(e.WalletID, k, append(v[:len(v):len(v)], 0)); err == nil {
			t.Fatalf("ID %q: a record with a trailing byte decoded", id)
		}
	}
}

// The same batches applied under the rules before compact entries and under them: every
// answer (results, wallets, every page of every wallet's entries in several time ranges) is the
// same, the invariants hold on both, and the entries take fewer bytes.
func TestCompactEntriesAnswerAsBefore(t *testing.T) {
	before, after := newTestLedger(t), newTestLedger(t)
	for _, c := range []struct {
		tl    *testLedger
		rules uint32
	}{{before, RulesCompactEntries - 1}, {after, RulesCompactEntries}} {
		c.tl.applyTyped(&fsm.StartHistoryChain{})
		c.tl.applyTyped(&fsm.RaiseRules{Version: c.rules})
		c.tl.setup()
	}
	wallets := []string{"W1", "W2", "S1"}
	for step := range 120 {
		var cmds []*Command
		for i := range 1 + step%4 {
			ref := fmt.Sprintf("r%d-%d", step, i)
			from, to := wallets[(step+i)%3], wallets[(step+2*i+1)%3]
			switch (step + i) % 5 {
			case 0:
				cmds = append(cmds, tx(ref, issue(to, uint64(10+step))))
			case 1:
				cmds = append(cmds, tx(ref, transfer(from, to, 3), transfer(to, from, 1)))
			default:
				cmds = append(cmds, tx(ref, transfer(from, to, uint64(1+i))))
			}
		}
		a, b := before.batch(cmds...), after.batch(cmds...)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("step %d: results differ:\n before %+v\n after  %+v", step, a, b)
		}
	}
	ranges := []TimeRange{{FromMs: 0, ToMs: math.MaxInt64}, {FromMs: before.nowMs - 30_000, ToMs: math.MaxInt64},
		{FromMs: 0, ToMs: before.nowMs - 50_000}, {FromMs: before.nowMs - 60_500, ToMs: before.nowMs - 20_500}}
	for _, id := range wallets {
		if wa, wb := before.wallet("p1", id), after.wallet("p1", id); *wa != *wb {
			t.Fatalf("wallet %s: %+v before, %+v after", id, *wa, *wb)
		}
		for _, r := range ranges {
			for _, size := range []int{1, 7, 1000} {
				for page := 1; page <= 4; page++ {
					pr := PageRequest{Page: page, PageSize: size}
					ea, moreA, errA := before.ledger.ListEntries("p1", id, r, pr)
					eb, moreB, errB := after.ledger.ListEntries("p1", id, r, pr)
					if errA != nil || errB != nil || moreA != moreB || !reflect.DeepEqual(ea, eb) {
						t.Fatalf("wallet %s %+v page %d/%d: before %v %v %+v, after %v %v %+v", id, r, page, size, errA, moreA, ea, errB, moreB, eb)
					}
				}
			}
		}
	}
	for _, tl := range []*testLedger{before, after} {
		if err := tl.ledger.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		if _, err := tl.ledger.VerifyHistory(); err != nil {
			t.Fatal(err)
		}
	}
	size := func(tl *testLedger) (n, bytes int) {
		err := tl.ledger.store.Scan([]byte{prefixEntry}, func(k, v []byte) error {
			n, bytes = n+1, bytes+len(k)+len(v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, bytes
	}
	nA, bytesA := size(before)
	nB, bytesB := size(after)
	if nA != nB || bytesB >= bytesA {
		t.Fatalf("entries: %d of %d bytes before, %d of %d bytes after", nA, bytesA, nB, bytesB)
	}
	t.Logf("%d entries: %.1f bytes each (key and record) before, %.1f after", nA, float64(bytesA)/float64(nA), float64(bytesB)/float64(nB))
}
