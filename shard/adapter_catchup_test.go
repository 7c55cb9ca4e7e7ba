package shard

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// countingMachine is a StateMachine that answers each command with its position and
// records every index it applied.
type countingMachine struct {
	mu      sync.Mutex
	applied []uint64
	count   int
	last    uint64
}

func (m *countingMachine) ApplyBatch(index uint64, _ int64, commands [][]byte) []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	if index <= m.last {
		return nil
	}
	results := make([]any, len(commands))
	for i, command := range commands {
		m.count++
		results[i] = fmt.Sprintf("%d:%s", m.count, command)
	}
	m.applied = append(m.applied, index)
	m.last = index
	return results
}

func (m *countingMachine) AppliedIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}
func (m *countingMachine) Snapshot() (Snapshot, error)   { return nil, fmt.Errorf("not in this test") }
func (m *countingMachine) Restore(r io.ReadCloser) error { return fmt.Errorf("not in this test") }

// TestCatchUpThenRaftApply: a follower read's catch-up applies committed entries from the local
// log; when raft hands the same entries over, the state machine is not called again and raft
// gets the results the catch-up computed (a replica that led when they committed answers its
// proposers with them). A point whose term the local entry does not have applies nothing.
func TestCatchUpThenRaftApply(t *testing.T) {
	metrics, err := newShardMetrics("0", nil, func() float64 { return 0 }, func() float64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	sm := &countingMachine{}
	adapter := newFSMAdapter(sm, metrics)
	logs := raft.NewInmemStore()
	entries := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: encodeEnvelope(nil, 1, [][]byte{[]byte("a")})},
		{Index: 2, Term: 2, Type: raft.LogNoop},
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: encodeEnvelope(nil, 2, [][]byte{[]byte("b"), []byte("c")})},
		{Index: 4, Term: 2, Type: raft.LogCommand, Data: encodeEnvelope(nil, 3, [][]byte{[]byte("d")})},
	}
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}

	adapter.catchUp(logs, ReadPoint{Index: 3, Term: 1}) // the local entry 3 has term 2: not the leader's
	if got := adapter.appliedIndex(); got != 0 {
		t.Fatalf("a point of another term applied up to %d", got)
	}
	adapter.requestCatchUp(logs, ReadPoint{Index: 3, Term: 2})
	if err := adapter.waitApplied(testutil.Context(t, testutil.WaitMax), 3, nil); err != nil {
		t.Fatal(err)
	}
	if got := adapter.catchUpCount.Load(); got != 1 {
		t.Fatalf("%d catch-ups, want 1", got)
	}

	responses := adapter.ApplyBatch(entries)
	want := []any{[]any{"1:a"}, nil, []any{"2:b", "3:c"}, []any{"4:d"}}
	if fmt.Sprint(responses) != fmt.Sprint(want) {
		t.Fatalf("raft's apply after the catch-up answered %v, want %v", responses, want)
	}
	if !slices.Equal(sm.applied, []uint64{1, 3, 4}) {
		t.Fatalf("state machine applied %v, want each command entry once", sm.applied)
	}
	if len(adapter.caughtUp) != 0 {
		t.Fatalf("caught-up results left after raft's apply: %v", adapter.caughtUp)
	}

	adapter.stop()
	if err := logs.StoreLogs([]*raft.Log{{Index: 5, Term: 2, Type: raft.LogCommand, Data: encodeEnvelope(nil, 4, [][]byte{[]byte("e")})}}); err != nil {
		t.Fatal(err)
	}
	adapter.catchUp(logs, ReadPoint{Index: 5, Term: 2})
	if got := adapter.appliedIndex(); got != 4 {
		t.Fatalf("a catch-up after stop applied up to %d", got)
	}
}
