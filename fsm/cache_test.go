package fsm

import "testing"

// TestMachinesShareABlockCache: machines opened with one BlockCache cache their blocks in it
// (a node's cached blocks are one budget, whatever the replicas it hosts), and a machine opened
// alone keeps a cache of its own.
func TestMachinesShareABlockCache(t *testing.T) {
	cache := NewBlockCache(64 << 20)
	defer cache.Release()
	open := func(shared bool) *testMachine {
		var m *Machine
		var err error
		if shared {
			m, err = OpenWithCache(t.TempDir(), nil, testRegistry(), cache)
		} else {
			m, err = Open(t.TempDir(), nil, testRegistry())
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		tm := &testMachine{t: t, m: m, now: 1_700_000_000_000}
		// Records on disk, so that reading them goes through the block cache.
		tm.apply(Envelope{Command: &bump{Name: "a", By: 1}})
		if err := m.store.db.Flush(); err != nil {
			t.Fatal(err)
		}
		return tm
	}
	a, b, alone := open(true), open(true), open(false)
	cached := func(tm *testMachine) int64 { return tm.m.store.db.Metrics().BlockCache.Size }
	read := func(tm *testMachine) {
		if v, err := tm.m.store.Get(Key('x', "a")); err != nil || v == nil {
			t.Fatalf("read back: %x, %v", v, err)
		}
	}

	before := cached(a)
	read(b)
	if cached(a) <= before || cached(a) != cached(b) {
		t.Fatalf("a read of b's store left a's cache at %d bytes (before %d, b's %d): not one cache", cached(a), before, cached(b))
	}
	before = cached(a)
	read(alone)
	if cached(alone) == 0 || cached(a) != before {
		t.Fatalf("a read of the lone machine's store: its cache %d bytes, the shared one %d (before %d)", cached(alone), cached(a), before)
	}
}
