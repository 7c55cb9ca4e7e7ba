package fsm

import (
	"fmt"
	"os"
	"testing"
	"time"
)

const noWALChildDirEnv = "GIGALEDGER_NOWAL_CHILD_DIR"

// noWALBatches is how many batches of noWALBumps the child applies, flushing after the first
// half: the store is durable at noWALBatches/2 and not beyond.
const (
	noWALBatches = 20
	noWALBumps   = 50
)

// applyNoWALBatch applies batch i of the kill test's log (the same bytes on every run).
func applyNoWALBatch(tm *testMachine, i int) {
	tm.t.Helper()
	var envs []Envelope
	for k := range noWALBumps {
		envs = append(envs, Envelope{Command: &bump{Name: fmt.Sprintf("n-%03d", (i*7+k)%97), By: uint64(i*noWALBumps + k + 1)}})
	}
	for _, r := range tm.apply(envs...) {
		if r.Err != nil {
			tm.t.Fatalf("bump: %v", r.Err)
		}
	}
}

func TestNoWALChild(t *testing.T) {
	dir := os.Getenv(noWALChildDirEnv)
	if dir == "" {
		t.Skip("the child process of TestKilledStoreReopensAtItsLastFlush")
	}
	m, err := Open(dir, nil, testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMachine{t: t, m: m, now: 1_700_000_000_000}
	for i := range noWALBatches {
		applyNoWALBatch(tm, i)
		if i == noWALBatches/2-1 {
			if err := m.store.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Printf("applied %d\n", m.AppliedIndex())
	select {} // until SIGKILL
}

// TestKilledStoreReopensAtItsLastFlush: the store has no write-ahead log (the Raft log is the
// state machine's), so a process killed -9 loses what was not flushed. The store must reopen
// at a whole batch — its last flush — with the state of exactly that log prefix, and applying
// the log above it again must end in the same state as a store that never crashed.
func TestKilledStoreReopensAtItsLastFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	c := startTestChild(t, "TestNoWALChild", noWALChildDirEnv+"="+dir)
	child := c.cmd
	select {
	case line := <-c.lines:
		if line != fmt.Sprintf("applied %d", noWALBatches) {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(60 * time.Second):
		child.Process.Kill()
		t.Fatal("the child did not apply its batches")
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: the memtable is lost
		t.Fatal(err)
	}
	child.Wait()

	// The reference: the same log, no crash, digests at the flush point and at the end.
	ref := newTestMachine(t, testRegistry())
	var atFlush [32]byte
	for i := range noWALBatches {
		applyNoWALBatch(ref, i)
		if i == noWALBatches/2-1 {
			atFlush = ref.digest()
		}
	}
	m, err := Open(dir, nil, testRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	reopened := &testMachine{t: t, m: m, index: m.AppliedIndex(), now: 1_700_000_000_000 + int64(m.AppliedIndex())*1000}
	if got := m.AppliedIndex(); got != noWALBatches/2 {
		t.Fatalf("reopened at applied index %d, want the last flush's %d", got, noWALBatches/2)
	}
	if reopened.digest() != atFlush {
		t.Fatal("the reopened store is not the state of its applied index")
	}
	// The shard replays the log above the applied index.
	for i := noWALBatches / 2; i < noWALBatches; i++ {
		applyNoWALBatch(reopened, i)
	}
	if reopened.digest() != ref.digest() {
		t.Fatal("replaying the log above the last flush ended in another state")
	}
}
