package fsm

import (
	"testing"
	"time"
)

// TestEarlyFlushShiftsTheFlushPhase: a store flushes its memtable once, after the random share
// of a memtable's bytes it drew at open, and never again on its own before Pebble's own
// flushes (shiftFlushPhase).
func TestEarlyFlushShiftsTheFlushPhase(t *testing.T) {
	tm := newTestMachine(t, testRegistry())
	s := tm.m.store
	if s.flushPhaseLeft < 1 || s.flushPhaseLeft > storeMemTableBytes/2 {
		t.Fatalf("drawn flush phase %d bytes, want 1..%d", s.flushPhaseLeft, storeMemTableBytes/2)
	}
	s.flushPhaseLeft = 1 // the next batch's bytes cross it
	flushes := func() int64 { return s.db.Metrics().Flush.Count }
	before := flushes()
	applyNoWALBatch(tm, 0, false)
	deadline := time.Now().Add(10 * time.Second)
	for flushes() == before {
		if time.Now().After(deadline) {
			t.Fatal("no flush after the drawn phase was crossed")
		}
		time.Sleep(time.Millisecond)
	}
	if s.flushPhaseLeft > 0 {
		t.Fatalf("flush phase left %d after crossing it", s.flushPhaseLeft)
	}
	after := flushes()
	for i := 1; i < 5; i++ {
		applyNoWALBatch(tm, i, false)
	}
	if got := flushes(); got != after {
		t.Fatalf("flushes %d after the early one, want %d: the early flush happens once", got, after)
	}
}

// TestMemTableJitter: each open draws its memtable size from half storeMemTableBytes up to it.
func TestMemTableJitter(t *testing.T) {
	seen := map[uint64]bool{}
	for range 100 {
		n := jitteredMemTableBytes()
		if n < storeMemTableBytes/2 || n >= storeMemTableBytes {
			t.Fatalf("memtable %d bytes, want [%d, %d)", n, storeMemTableBytes/2, storeMemTableBytes)
		}
		seen[n] = true
	}
	if len(seen) < 90 {
		t.Fatalf("%d different sizes in 100 draws", len(seen))
	}
}
