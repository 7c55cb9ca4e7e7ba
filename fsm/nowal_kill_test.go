package fsm

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	noWALChildDirEnv = "GIGALEDGER_NOWAL_CHILD_DIR"
	// noWALChildHistoryEnv set: the child's log starts the history chain with its records in
	// the history store (history.go), which has no log either.
	noWALChildHistoryEnv = "GIGALEDGER_NOWAL_CHILD_HISTORY"
)

// noWALBatches is how many batches of noWALBumps the child applies, flushing after the first
// half: the store is durable at noWALBatches/2 and not beyond.
const (
	noWALBatches = 20
	noWALBumps   = 50
)

// applyNoWALBatch applies batch i of the kill test's log (the same bytes on every run); with
// history, its first batch raises the rules to RulesHistoryStore and starts the history chain.
func applyNoWALBatch(tm *testMachine, i int, history bool) {
	tm.t.Helper()
	var envs []Envelope
	if history && i == 0 {
		envs = append(envs, Envelope{Command: &RaiseRules{Version: RulesHistoryStore}}, Envelope{Command: &StartHistoryChain{}})
	}
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
	history := os.Getenv(noWALChildHistoryEnv) != ""
	m, err := Open(dir, nil, historyRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tm := &testMachine{t: t, m: m, now: 1_700_000_000_000}
	for i := range noWALBatches {
		applyNoWALBatch(tm, i, history)
		if i == noWALBatches/2-1 {
			if err := m.store.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if os.Getenv(noWALChildHistoryEnv) == "flushed" {
		// The history store flushed on its own (its memtable filled) after the state store's
		// last flush: it is ahead of the state store at the kill.
		if err := m.store.history.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("applied %d\n", m.AppliedIndex())
	select {} // until SIGKILL
}

// TestKilledStoreReopensAtItsLastFlush: the store has no write-ahead log (the Raft log is the
// state machine's), so a process killed -9 loses what was not flushed. The store must reopen
// at a whole batch — its last flush — with the state of exactly that log prefix, and applying
// the log above it again must end in the same state as a store that never crashed.
//
// With the history chain's records in the history store, flushed with every state flush and
// on its own when its memtable fills, the killed process may leave that store ahead of the
// state store: the reopened store drops the records above its applied index, and replaying the
// log writes them again, the same.
func TestKilledStoreReopensAtItsLastFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	// history: "" none; "unflushed" the history store as apply left it (its records since the
	// state flush die with the process, those before it must not); "flushed" all of it on disk.
	for _, history := range []string{"", "unflushed", "flushed"} {
		t.Run("history="+history, func(t *testing.T) { testKilledStoreReopens(t, history) })
	}
}

func testKilledStoreReopens(t *testing.T, historyMode string) {
	history := historyMode != ""
	dir := t.TempDir()
	env := []string{noWALChildDirEnv + "=" + dir}
	if history {
		env = append(env, noWALChildHistoryEnv+"="+historyMode)
	}
	c := startTestChild(t, "TestNoWALChild", env...)
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
	ref := newTestMachine(t, historyRegistry())
	var atFlush [32]byte
	for i := range noWALBatches {
		applyNoWALBatch(ref, i, history)
		if i == noWALBatches/2-1 {
			atFlush = ref.digest()
		}
	}
	if history {
		// The killed child's history store holds every record up to the flush (flushed by the
		// state flush), and with "flushed" every record up to its last batch.
		h, _, err := openHistory(filepath.Join(dir, storeDirName), true, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		last, _, err := lastChainRecord(nil, h, math.MaxUint64)
		h.Close()
		want := uint64(noWALBatches / 2)
		if historyMode == "flushed" {
			want = noWALBatches
		}
		if err != nil || last == nil || binary.BigEndian.Uint64(last[1:]) < want {
			t.Fatalf("the killed history store ends at %x (%v), want log index %d or later", last, err, want)
		}
	}
	m, err := Open(dir, nil, historyRegistry())
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
	// A family replaying the chain at load (ledger's wallet epochs) reads nothing past the
	// applied index: the records the killed child wrote above it are gone.
	err = m.store.HistorySetsAfter(0, func(index uint64, _ int64, _, _ []byte) error {
		if index > m.AppliedIndex() {
			return fmt.Errorf("a chain record at log index %d, above the applied index %d", index, m.AppliedIndex())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The shard replays the log above the applied index.
	for i := noWALBatches / 2; i < noWALBatches; i++ {
		applyNoWALBatch(reopened, i, history)
	}
	if reopened.digest() != ref.digest() {
		t.Fatal("replaying the log above the last flush ended in another state")
	}
	refHead, _ := ref.m.HistoryChainHead()
	if head, _ := m.HistoryChainHead(); head != refHead {
		t.Fatalf("chain head %x after the replay, want %x", head, refHead)
	}
	if history {
		if report, err := m.VerifyHistory(); err != nil || report.Head != refHead {
			t.Fatalf("verify after the replay: %v %+v", err, report)
		}
	}
}
