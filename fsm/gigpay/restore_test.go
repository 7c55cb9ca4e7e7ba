package gigpay

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// A follower installing a leader's snapshot restores a machine with the GigPay family, whose
// Load reads the store. Restore used to load under the store's write lock, so that read
// waited for itself and raft's FSM goroutine hung for good (found by the fault suite's moves:
// a new replica's restore stuck at 100 %). It must return, with the same state.
func TestRestoreWithTheFamilyReturns(t *testing.T) {
	h := newHarness(t)
	snap, err := h.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	reg := fsm.NewRegistry()
	Register(reg, ledger.Register(reg))
	dst, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dst.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("restore did not return within 30 s: it waits for a lock it holds") // dst left open: closing waits too
	}
	defer dst.Close()
	want, err := h.m.Digest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := dst.Digest()
	if err != nil || got != want || dst.AppliedIndex() != h.m.AppliedIndex() {
		t.Fatalf("restored digest %x at %d (%v), want %x at %d", got, dst.AppliedIndex(), err, want, h.m.AppliedIndex())
	}
}
