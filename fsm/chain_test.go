package fsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// historyRegistry is the test family with its counts marked as history (rewritten as they
// grow, as a transaction's status is).
func historyRegistry() *Registry {
	reg := testRegistry()
	reg.MarkHistory('x')
	return reg
}

func TestHistoryChainEqualOnReplicasAndAcrossRestarts(t *testing.T) {
	reg := historyRegistry()
	a, b := newTestMachine(t, reg), newTestMachine(t, reg)
	for _, tm := range []*testMachine{a, b} {
		tm.apply(Envelope{Command: &bump{Name: "before", By: 1}})
		if tm.m.HistoryChainStarted() {
			t.Fatal("chain started without StartHistoryChain")
		}
		tm.apply(Envelope{Command: &StartHistoryChain{}}, Envelope{Command: &bump{Name: "a", By: 1}})
		tm.apply(Envelope{Command: &StartHistoryChain{}}) // a repeat changes nothing
		tm.apply(Envelope{Command: &Tick{}})              // no history: no record
		for i := range 5 {
			tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}, Envelope{Command: &bump{Name: string(rune('b' + i)), By: 2}})
		}
	}
	headA, okA := a.m.HistoryChainHead()
	headB, okB := b.m.HistoryChainHead()
	if !okA || !okB || headA != headB {
		t.Fatalf("heads differ: %v %x / %v %x", okA, headA, okB, headB)
	}
	if headA.Index != a.index {
		t.Fatalf("head at index %d, last batch with history %d", headA.Index, a.index)
	}
	report, err := a.m.VerifyHistory()
	if err != nil {
		t.Fatal(err)
	}
	// Genesis at index 2 (the start's batch; its own writes come after the chain starts only
	// from the next batch), one record per batch with history: 2 (genesis), 6 batches of bumps.
	if !report.Started || report.GenesisIndex != 2 || report.Records != 6 || report.Head != headA {
		t.Fatalf("report %+v", report)
	}
	// "before" and the first "a" were written before the chain: not fresh, two uncovered keys
	// ("a" is covered by its later writes).
	if report.Fresh || report.Uncovered != 1 || report.HistoryKeys != 7 || report.Writes != 10 {
		t.Fatalf("coverage %+v", report)
	}
	// A restart reads the head back, and the chain goes on from it on both.
	dir := a.m.store.dir
	if err := a.m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	t.Cleanup(func() { m.Close() })
	if h, ok := m.HistoryChainHead(); !ok || h != headA {
		t.Fatalf("head after restart %x, want %x", h, headA)
	}
	a.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	b.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	headA, _ = a.m.HistoryChainHead()
	headB, _ = b.m.HistoryChainHead()
	if headA != headB {
		t.Fatalf("heads differ after a restart: %x %x", headA, headB)
	}
}

func TestHistoryChainFreshCoversEverything(t *testing.T) {
	tm := newTestMachine(t, historyRegistry())
	tm.apply(Envelope{Command: &StartHistoryChain{}})
	tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	report, err := tm.m.VerifyHistory()
	if err != nil {
		t.Fatal(err)
	}
	if !report.Fresh || report.Uncovered != 0 || report.HistoryKeys != 1 {
		t.Fatalf("report %+v", report)
	}
	// A history record slipped into the store behind apply's back is found.
	if err := tm.m.store.db.Set(Key('x', "forged"), []byte{1}, pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	_, err = tm.m.VerifyHistory()
	var mismatch *HistoryMismatch
	if !errors.As(err, &mismatch) || !bytes.Equal(mismatch.Key, Key('x', "forged")) {
		t.Fatalf("forged record: %v", err)
	}
}

// Every kind of tampering is named: a changed value, a deleted record, a changed, removed or
// reordered chain record.
func TestVerifyHistoryNamesTheFirstMismatch(t *testing.T) {
	build := func(t *testing.T) *testMachine {
		tm := newTestMachine(t, historyRegistry())
		tm.apply(Envelope{Command: &StartHistoryChain{}})
		for range 4 {
			tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}, Envelope{Command: &bump{Name: "b", By: 1}})
		}
		if _, err := tm.m.VerifyHistory(); err != nil {
			t.Fatal(err)
		}
		return tm
	}
	set := func(t *testing.T, tm *testMachine, k, v []byte) {
		var err error
		if v == nil {
			err = tm.m.store.db.Delete(k, pebble.NoSync)
		} else {
			err = tm.m.store.db.Set(k, v, pebble.NoSync)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	get := func(t *testing.T, tm *testMachine, k []byte) []byte {
		v, err := tm.m.store.Get(k)
		if err != nil || v == nil {
			t.Fatalf("get %q: %v", k, err)
		}
		return v
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, tm *testMachine)
		want   string
	}{
		{"changed value", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), []byte{99})
		}, `log index 5, key "xb": the store's value differs`},
		{"deleted record", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "a"), nil)
		}, `log index 5, key "xa": in the chain, missing from the store`},
		{"changed chain record", func(t *testing.T, tm *testMachine) {
			k := chainKey(3)
			v := get(t, tm, k)
			v[len(v)-1] ^= 1
			set(t, tm, k, v)
		}, "log index 4: previous hash"},
		{"removed chain record", func(t *testing.T, tm *testMachine) {
			set(t, tm, chainKey(3), nil)
		}, "log index 4: previous hash"},
		{"removed genesis", func(t *testing.T, tm *testMachine) {
			set(t, tm, chainKey(1), nil)
		}, "log index 2: the chain's first record is not a genesis"},
		{"moved chain record", func(t *testing.T, tm *testMachine) {
			v := get(t, tm, chainKey(3))
			set(t, tm, chainKey(3), nil)
			set(t, tm, chainKey(9), v)
		}, "log index 4: previous hash"},
		{"record past the applied index", func(t *testing.T, tm *testMachine) {
			v := get(t, tm, chainKey(5))
			set(t, tm, chainKey(5), nil)
			set(t, tm, chainKey(9), v)
		}, "log index 9: after the store's applied index 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tm := build(t)
			c.tamper(t, tm)
			_, err := tm.m.VerifyHistory()
			var mismatch *HistoryMismatch
			if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a mismatch containing %q", err, c.want)
			}
		})
	}
}

// A snapshot carries the chain: the restored replica's head is the source's, and it goes on
// from it.
func TestHistoryChainThroughSnapshot(t *testing.T) {
	reg := historyRegistry()
	src, dst := newTestMachine(t, reg), newTestMachine(t, reg)
	src.apply(Envelope{Command: &StartHistoryChain{}})
	src.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	snap, err := src.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := dst.m.Restore(readCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	dst.index, dst.now = src.index, src.now
	want, _ := src.m.HistoryChainHead()
	if got, ok := dst.m.HistoryChainHead(); !ok || got != want {
		t.Fatalf("restored head %x, want %x", got, want)
	}
	src.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	dst.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	a, _ := src.m.HistoryChainHead()
	b, _ := dst.m.HistoryChainHead()
	if a != b {
		t.Fatalf("heads differ after restore: %x %x", a, b)
	}
}

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }

// OpenReadOnly (gigaledger verify) reads a stopped replica's store without changing a byte of
// it, refuses every write, and is refused while the store is open elsewhere.
func TestOpenReadOnlyLeavesTheStoreAsItWas(t *testing.T) {
	// The chain's records in the state store, and in the history store (history.go).
	for _, rules := range []uint32{0, RulesHistoryStore} {
		t.Run(fmt.Sprintf("rules=%d", rules), func(t *testing.T) { testOpenReadOnly(t, rules) })
	}
}

func testOpenReadOnly(t *testing.T, rules uint32) {
	reg := historyRegistry()
	tm := newTestMachine(t, reg)
	tm.apply(Envelope{Command: &RaiseRules{Version: rules}})
	tm.apply(Envelope{Command: &StartHistoryChain{}})
	for range 3 {
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
	}
	dir := tm.m.store.dir
	if _, err := OpenReadOnly(dir, nil, reg); err == nil {
		t.Fatal("OpenReadOnly succeeded while the store is open")
	}
	if err := tm.m.Close(); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, dir)
	m, err := OpenReadOnly(dir, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if report, err := m.VerifyHistory(); err != nil || report.Records != 4 {
		t.Fatalf("verify: %v %+v", err, report)
	}
	if err := m.store.db.Set([]byte("x\x00written"), []byte("1"), pebble.NoSync); err == nil {
		t.Fatal("a read-only store took a write")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if after := treeDigest(t, dir); after != before {
		t.Fatalf("the store changed under OpenReadOnly:\nbefore %s\nafter  %s", before, after)
	}
}

// treeDigest names every file under dir with its size and content hash.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var out strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(&out, "%s:%d:%x ", strings.TrimPrefix(path, dir), len(b), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}
