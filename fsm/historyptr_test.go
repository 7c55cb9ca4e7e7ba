package fsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// rawGet reads a key's stored bytes, pointer or record.
func rawGet(t *testing.T, tm *testMachine, k []byte) []byte {
	t.Helper()
	v, err := tm.m.store.Get(k)
	if err != nil || v == nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return v
}

func countOf(t *testing.T, tm *testMachine, name string) uint64 {
	t.Helper()
	v, err := tm.m.store.GetHistory(Key('x', name))
	if err != nil || v == nil {
		t.Fatalf("history %q: %v", name, err)
	}
	return NewDecoder(v).Uvarint()
}

// History is written once only from RulesHistoryOnce on, from the command after the raise,
// identically on every replica; records written before stay records and read beside pointers.
func TestHistoryPointersFromTheirRulesVersion(t *testing.T) {
	reg := historyRegistry()
	a, b := newTestMachine(t, reg), newTestMachine(t, reg)
	for _, tm := range []*testMachine{a, b} {
		tm.apply(Envelope{Command: &bump{Name: "early", By: 1}}) // before the chain
		tm.apply(Envelope{Command: &StartHistoryChain{}})
		tm.apply(Envelope{Command: &RaiseRules{Version: RulesHistoryOnce - 1}})
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}) // chain on, old rules
		tm.apply(Envelope{Command: &bump{Name: "b", By: 1}},
			Envelope{Command: &RaiseRules{Version: RulesHistoryOnce}},
			Envelope{Command: &bump{Name: "c", By: 1}},
			Envelope{Command: &bump{Name: "c", By: 2}}) // reads "c" as of the previous batch
	}
	for name, pointer := range map[string]bool{"early": false, "a": false, "b": false, "c": true} {
		if got := IsHistoryPointer(rawGet(t, a, Key('x', name))); got != pointer {
			t.Errorf("%q stored as a pointer: %v, want %v", name, got, pointer)
		}
	}
	// Apply reads through a pointer (the bump reads its count), and rewrites a record as a
	// pointer.
	for _, tm := range []*testMachine{a, b} {
		tm.apply(Envelope{Command: &bump{Name: "c", By: 10}}, Envelope{Command: &bump{Name: "a", By: 5}})
	}
	if !IsHistoryPointer(rawGet(t, a, Key('x', "a"))) {
		t.Error(`"a" rewritten after the raise is not a pointer`)
	}
	for name, want := range map[string]uint64{"early": 1, "a": 6, "b": 1, "c": 12} {
		if got := countOf(t, a, name); got != want {
			t.Errorf("%q = %d, want %d", name, got, want)
		}
	}
	if len(rawGet(t, a, Key('x', "c"))) > 1+2*3 {
		t.Errorf("pointer of %d bytes", len(rawGet(t, a, Key('x', "c"))))
	}
	da, err := a.m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.m.Digest()
	if err != nil || da != db {
		t.Fatalf("replicas' digests differ (%v)", err)
	}
	if _, err := a.m.VerifyHistory(); err != nil {
		t.Fatal(err)
	}
}

// A pointer that does not name its key's newest recorded write, or a chain record changed
// under pointers, is found by VerifyHistory; resolving a bad pointer is an error, never a panic
// or another key's record.
func TestVerifyHistoryThroughPointers(t *testing.T) {
	build := func(t *testing.T) *testMachine {
		tm := newTestMachine(t, historyRegistry())
		tm.apply(Envelope{Command: &StartHistoryChain{}}, Envelope{Command: &RaiseRules{Version: RulesVersion}})
		for range 4 {
			tm.apply(Envelope{Command: &bump{Name: "a", By: 1}}, Envelope{Command: &bump{Name: "b", By: 1}})
		}
		if !IsHistoryPointer(rawGet(t, tm, Key('x', "a"))) {
			t.Fatal("no pointer written")
		}
		if _, err := tm.m.VerifyHistory(); err != nil {
			t.Fatal(err)
		}
		return tm
	}
	set := func(t *testing.T, tm *testMachine, k, v []byte) {
		if err := tm.m.store.db.Set(k, v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T, tm *testMachine)
		want    string
		resolve string // what resolving "xb" then says ("": resolves)
	}{
		{"changed chain record", func(t *testing.T, tm *testMachine) {
			v := rawGet(t, tm, chainKey(3))
			v[len(v)-1] ^= 1 // "b"'s count in the batch of index 3
			set(t, tm, chainKey(3), v)
		}, "log index 4: previous hash", ""},
		{"pointer to another key's write", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), rawGet(t, tm, Key('x', "a")))
		}, `log index 5, key "xb": the store's value differs`, "holds no write of it"},
		{"pointer to an older write of the key", func(t *testing.T, tm *testMachine) {
			var old []byte
			h := tm.m.store.HistoryReader()
			defer h.Close()
			// Index 2 holds the first bump of "b" after "a"'s: find its offset by resolving.
			for off := uint64(0); off < 64 && old == nil; off++ {
				p := appendHistoryPointer(nil, 2, off)
				if _, err := h.Resolve(Key('x', "b"), p); err == nil {
					old = p
				}
			}
			if old == nil {
				t.Fatal("no write of xb in record 2")
			}
			set(t, tm, Key('x', "b"), old)
		}, `log index 5, key "xb": the store's value differs`, ""},
		{"record in place of the pointer", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), []byte{99})
		}, `log index 5, key "xb": the store's value differs`, ""},
		{"malformed pointer", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), []byte{historyPointerTag, 0xff})
		}, `log index 5, key "xb": the store's value differs`, "malformed pointer"},
		{"pointer past the record", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), appendHistoryPointer(nil, 5, 1<<20))
		}, `log index 5, key "xb": the store's value differs`, "past the end"},
		{"pointer into a missing record", func(t *testing.T, tm *testMachine) {
			set(t, tm, Key('x', "b"), appendHistoryPointer(nil, 7, 0))
		}, `log index 5, key "xb": the store's value differs`, "missing"},
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
			_, err = tm.m.store.GetHistory(Key('x', "b"))
			if c.resolve == "" && err != nil || c.resolve != "" && (err == nil || !strings.Contains(err.Error(), c.resolve)) {
				t.Fatalf("resolve: %v, want %q", err, c.resolve)
			}
		})
	}
}

// A reader reads each chain record once while consecutive pointers name it.
func TestHistoryReaderReadsEachRecordOnce(t *testing.T) {
	tm := newTestMachine(t, historyRegistry())
	tm.apply(Envelope{Command: &StartHistoryChain{}}, Envelope{Command: &RaiseRules{Version: RulesVersion}})
	names := []string{"a0", "a1", "a2", "a3"}
	for i := range 3 {
		var envs []Envelope
		for _, n := range names[i:] {
			envs = append(envs, Envelope{Command: &bump{Name: n, By: 1}})
		}
		tm.apply(envs...)
	}
	// a0 at index 2, a1 at 3, a2 and a3 at 4.
	h := tm.m.store.HistoryReader()
	defer h.Close()
	err := tm.m.store.Scan([]byte{'x'}, func(k, v []byte) error {
		r, err := h.Resolve(k, v)
		if err == nil && NewDecoder(r).Uvarint() == 0 {
			t.Errorf("%q resolves to %x", k, r)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Reads != 3 {
		t.Fatalf("%d chain records read for 4 keys in 3 batches", h.Reads)
	}
}
