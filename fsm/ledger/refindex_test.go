package ledger

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// The Bloom chain never forgets a key, across its growth steps, and rarely claims one it was
// not given.
func TestBloomChainNoFalseNegatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := newBloomChain()
	const n = 400_000 // past two growth steps: 65,536 then 262,144
	added := make([]uint64, n)
	for i := range added {
		added[i] = rng.Uint64()
		c.add(added[i])
	}
	if len(c.filters) < 3 {
		t.Fatalf("%d filters after %d keys: the test no longer crosses growth", len(c.filters), n)
	}
	for i, h := range added {
		if !c.mayContain(h) {
			t.Fatalf("key %d (%x) added and then reported absent", i, h)
		}
	}
	falsePositives := 0
	const probes = 200_000
	for range probes {
		if c.mayContain(rng.Uint64()) {
			falsePositives++
		}
	}
	// 12 bits per key and 8 probes in 512-bit blocks: about 0.4% per full filter, summed over
	// the chain's filters (not all full). Allow well above that; a broken filter says "maybe"
	// for nearly everything or nothing.
	if rate := float64(falsePositives) / probes; rate > 0.03 {
		t.Fatalf("false positive rate %.4f with %d filters", rate, len(c.filters))
	}
}

// A reference is never used twice, whether apply asks the store (the filter not built yet: the
// scan held back) or the filter, for references stored before a restart, written while the
// scan ran (which its iterator does not see: only the pending list has them), and written after
// it.
func TestReferenceFilterNeverMissesADuplicate(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	tl.ok(tx("fund", issue("W1", 1_000_000)))
	var batch []*Command
	for i := range 300 {
		batch = append(batch, tx(fmt.Sprintf("before-%d", i), transfer("W1", "W2", 1)))
	}
	for _, r := range tl.batch(batch...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	duplicates := func(refs ...string) {
		t.Helper()
		for _, ref := range refs {
			// The same operations: the stored transaction comes back as a duplicate; other
			// operations: a mismatch. Either way nothing is applied.
			same := transfer("W1", "W2", 1)
			if ref == "fund" {
				same = issue("W1", 1_000_000)
			}
			tl.rejects(tx(ref, same), CodeDuplicateReferenceID)
			tl.rejects(tx(ref, transfer("W1", "W2", 2)), CodeReferenceIDMismatch)
		}
	}
	restart := func() {
		t.Helper()
		if err := tl.ledger.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := openTest(tl.dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		tl.ledger = l
	}

	// Hold the load's scan back inside its first key, so that its iterator sees the store as
	// it was before "during": apply must go to the store, and remember what it writes.
	restart()
	started, release := make(chan struct{}), make(chan struct{})
	tl.ledger.refs.reset(func(fn func(k []byte) error) error {
		first := true
		return tl.ledger.scanReferenceKeys(func(k []byte) error {
			if first {
				first = false
				close(started)
				<-release
			}
			return fn(k)
		})
	})
	tl.ledger.refs.ready() // the first use starts the scan
	<-started
	duplicates("fund", "before-0", "before-299")
	if tl.ledger.refs.filter != nil {
		t.Fatal("the filter is in use before its scan ran")
	}
	tl.ok(tx("during", transfer("W1", "W2", 1)))
	duplicates("during")
	close(release)
	tl.ledger.refs.waitReady()

	// The filter in use: stored before the restart, written while the scan was held, and new.
	duplicates("fund", "before-0", "before-150", "before-299", "during")
	tl.ok(tx("after", transfer("W1", "W2", 1)))
	duplicates("after")
	// Within one batch, the second use is caught before anything is stored.
	rs := tl.batch(tx("same-batch", transfer("W1", "W2", 1)), tx("same-batch", transfer("W1", "W2", 1)))
	if rs[0].Err != nil || rs[1].Err == nil || rs[1].Err.Code != CodeDuplicateReferenceID {
		t.Fatalf("same batch: %v, %v", rs[0].Err, rs[1].Err)
	}

	// And once more after a restart, with the scan left to run on its own.
	restart()
	tl.ledger.refs.waitReady()
	duplicates("fund", "before-42", "during", "after", "same-batch")
	if got := tl.balance("p1", "W2"); got != "303" {
		t.Fatalf("W2 = %s, want 303 (300 + during + after + same-batch)", got)
	}
}

// A restore replaces the store under the filter: the references of the restored store are
// duplicates from the first batch after it, before and after the new scan is done.
func TestReferenceFilterAfterRestore(t *testing.T) {
	src := newTestLedger(t)
	src.setup()
	src.ok(tx("fund", issue("W1", 1_000_000)))
	var batch []*Command
	for i := range 100 {
		batch = append(batch, tx(fmt.Sprintf("a-%d", i), transfer("W1", "W2", 1)))
	}
	src.batch(batch...)
	snap, err := src.ledger.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := snap.Persist(&stream); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newTestLedger(t)
	dst.setup()
	dst.ok(tx("other", issue("W1", 5)))
	dst.ledger.refs.waitReady() // a filter of the store about to be replaced
	if err := dst.ledger.Restore(io.NopCloser(&stream)); err != nil {
		t.Fatal(err)
	}
	dst.index, dst.nowMs = src.index, src.nowMs
	dst.rejects(tx("a-5", transfer("W1", "W2", 1)), CodeDuplicateReferenceID)
	dst.ledger.refs.waitReady()
	for _, ref := range []string{"a-0", "a-6", "a-99"} {
		dst.rejects(tx(ref, transfer("W1", "W2", 1)), CodeDuplicateReferenceID)
	}
	dst.rejects(tx("fund", issue("W1", 1_000_000)), CodeDuplicateReferenceID)
	dst.ok(tx("other", issue("W1", 5))) // the replaced store's reference is free again
}

// A scan that fails (the store closed or broken) leaves the filter off until the next load, and
// stops keeping what apply writes.
func TestReferenceFilterOffAfterAFailedScan(t *testing.T) {
	var f referenceFilter
	f.reset(func(func(k []byte) error) error { return io.ErrUnexpectedEOF })
	f.add([]byte("r1"))
	for range 1000 {
		if f.absent([]byte("r2")) {
			t.Fatal("a filter without the stored keys said absent")
		}
		f.add([]byte("r3"))
	}
	f.waitReady()
	if f.absent([]byte("r2")) || f.filter != nil || f.pending != nil {
		t.Fatalf("filter %v, %d pending after a failed scan", f.filter, len(f.pending))
	}
	f.reset(func(fn func(k []byte) error) error { return fn([]byte("r1")) })
	f.waitReady()
	if f.absent([]byte("r1")) || !f.absent([]byte("r2")) {
		t.Fatal("a new load's scan does not work")
	}
}
