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
