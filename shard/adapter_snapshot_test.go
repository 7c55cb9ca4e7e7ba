package shard

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// fakeSink is a raft.SnapshotSink that records what the adapter does with it.
type fakeSink struct {
	bytes.Buffer
	closed, cancelled int
}

func (s *fakeSink) ID() string    { return "fake" }
func (s *fakeSink) Close() error  { s.closed++; return nil }
func (s *fakeSink) Cancel() error { s.cancelled++; return nil }

var _ raft.SnapshotSink = (*fakeSink)(nil)

// stubSnapshot writes text, or fails with err after writing it.
type stubSnapshot struct {
	text     string
	err      error
	released int
}

func (s *stubSnapshot) Persist(w io.Writer) error {
	if _, err := io.WriteString(w, s.text); err != nil {
		return err
	}
	return s.err
}

func (s *stubSnapshot) Release() { s.released++ }

// TestRaftSnapshotSinkProtocol: the state machine only writes; the shard closes Raft's sink on
// success and cancels it on failure (exactly one of the two), and passes Release through.
func TestRaftSnapshotSinkProtocol(t *testing.T) {
	ok := &stubSnapshot{text: "state"}
	sink := &fakeSink{}
	adapted := raftSnapshot{view: ok}
	if err := adapted.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	adapted.Release()
	if sink.String() != "state" || sink.closed != 1 || sink.cancelled != 0 || ok.released != 1 {
		t.Fatalf("success: wrote %q, closed %d, cancelled %d, released %d; want \"state\", 1, 0, 1",
			sink.String(), sink.closed, sink.cancelled, ok.released)
	}

	failure := errors.New("disk full")
	failing := &stubSnapshot{text: "part", err: failure}
	sink = &fakeSink{}
	if err := (raftSnapshot{view: failing}).Persist(sink); !errors.Is(err, failure) {
		t.Fatalf("Persist error = %v, want it to wrap %v", err, failure)
	}
	if sink.closed != 0 || sink.cancelled != 1 {
		t.Fatalf("failure: closed %d, cancelled %d; want 0, 1", sink.closed, sink.cancelled)
	}
}

// stubCheckpointer is a CheckpointStateMachine whose checkpoint streams are their descriptor
// repeated; it records what retention keeps.
type stubCheckpointer struct {
	StateMachine
	retained [][]byte
}

func (c *stubCheckpointer) Checkpoint() ([]byte, error) { return []byte("d1"), nil }

func (c *stubCheckpointer) OpenCheckpoint(descriptor []byte) (io.ReadCloser, int64, error) {
	stream := bytes.Repeat(descriptor, 100)
	return io.NopCloser(bytes.NewReader(stream)), int64(len(stream)), nil
}

func (c *stubCheckpointer) RetainCheckpoints(descriptors [][]byte) error {
	c.retained = descriptors
	return nil
}

// TestCheckpointStoreReferencesAndStreams: a local snapshot stores a reference, which Open
// expands into the checkpoint's stream with its size; a received stream passes through, and
// one that starts like a reference (however it is split into writes) is refused.
func TestCheckpointStoreReferencesAndStreams(t *testing.T) {
	files, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sm := &stubCheckpointer{}
	store := &checkpointStore{files: files, sm: sm, logger: quietLogger(nil)}
	create := func(index uint64) raft.SnapshotSink {
		sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sink
	}

	if err := (checkpointReference{descriptor: []byte("d1")}).Persist(create(10)); err != nil {
		t.Fatalf("persist reference: %v", err)
	}
	if len(sm.retained) != 1 || string(sm.retained[0]) != "d1" {
		t.Fatalf("retained %q after the reference, want [d1]", sm.retained)
	}
	metas, _ := store.List()
	meta, stream, err := store.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(stream)
	if int64(len(data)) != meta.Size || string(data) != string(bytes.Repeat([]byte("d1"), 100)) {
		t.Fatalf("opened reference: %d bytes (size %d) %q", len(data), meta.Size, data[:min(len(data), 10)])
	}

	received := create(20)
	for _, part := range []string{"GIG", "ALEDGER-SNAPSHOT-1\n", "state"} {
		if _, err := received.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := received.Close(); err != nil {
		t.Fatal(err)
	}
	metas, _ = store.List()
	meta, stream, err = store.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(stream)
	if string(data) != "GIGALEDGER-SNAPSHOT-1\nstate" || meta.Size != int64(len(data)) {
		t.Fatalf("received stream came back as %q (size %d)", data, meta.Size)
	}

	forged := create(30)
	failed := false
	for _, part := range [][]byte{checkpointReferenceMagic[:5], checkpointReferenceMagic[5:], []byte("d1")} {
		if _, err := forged.Write(part); err != nil {
			failed = errors.Is(err, errReferenceInStream)
			break
		}
	}
	if !failed {
		t.Fatal("a received stream that starts like a reference was accepted")
	}
	_ = forged.Cancel()
	if metas, _ = store.List(); len(metas) != 2 || metas[0].Index != 20 {
		t.Fatalf("snapshots after the forged stream: %d, newest %d", len(metas), metas[0].Index)
	}
	if len(sm.retained) != 1 {
		t.Fatalf("a received snapshot swept checkpoints: retained %q", sm.retained)
	}
}
