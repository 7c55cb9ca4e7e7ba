package shard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// checkpointReferenceMagic starts a snapshot that refers to a state machine checkpoint instead
// of holding the state. Only checkpointReference.Persist writes it (checkpointSink refuses a
// stream that starts with it), so a snapshot received from a leader is always a stream.
var checkpointReferenceMagic = []byte("GIGALEDGER-RAFT-CHECKPOINT-1\n")

// checkpointDescriptorMaxBytes bounds a CheckpointStateMachine's descriptor.
const checkpointDescriptorMaxBytes = 256

// checkpointReferenceMaxBytes is the largest stored snapshot that can be a reference; larger
// ones are streams and are never read to find out.
const checkpointReferenceMaxBytes = 64 + checkpointDescriptorMaxBytes

// checkpointStore is the raft.SnapshotStore of a shard whose state machine takes checkpoints.
// It keeps raft's snapshots in a raft.FileSnapshotStore (metadata, CRC, retention and atomic
// publication stay raft's), where a local snapshot is a reference: the magic and the
// checkpoint's descriptor, a few dozen bytes. Open turns a reference into the state machine's
// stream of the checkpoint, with its real size, for InstallSnapshot and for a restore at Open;
// a snapshot received from a leader is the stream itself and passes through unchanged.
//
// Retention: raft's file store deletes all but the newest DefaultSnapshotRetainCount
// snapshots when a new one is closed; after a local snapshot is closed (on raft's snapshot
// goroutine, one at a time), and once at Open, the store hands the descriptors still
// referenced to RetainCheckpoints, which deletes the other checkpoints. A received snapshot
// never sweeps (it may close while a local one is between Checkpoint and Close); its dropped
// references' checkpoints go at the next local snapshot.
type checkpointStore struct {
	files  *raft.FileSnapshotStore
	sm     CheckpointStateMachine
	logger *slog.Logger
	// referenceBytes and streamBytes count what sinks wrote: references (local snapshots) and
	// streams (snapshots received from a leader). openedBytes counts the checkpoint streams
	// Open produced (sent to followers, or restored at Open).
	referenceBytes atomic.Uint64
	streamBytes    atomic.Uint64
	openedBytes    atomic.Uint64
}

var _ raft.SnapshotStore = (*checkpointStore)(nil)

// Create opens a sink in the file store; what is written into it decides what it is.
func (s *checkpointStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.files.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &checkpointSink{SnapshotSink: sink, store: s}, nil
}

// List lists the file store's snapshots, newest first. The sizes are what is stored (a
// reference's few bytes); Open tells the size of the stream.
func (s *checkpointStore) List() ([]*raft.SnapshotMeta, error) {
	return s.files.List()
}

// Open opens a snapshot as the stream the state machine's Restore reads.
func (s *checkpointStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, source, err := s.files.Open(id)
	if err != nil {
		return nil, nil, err
	}
	if meta.Size > checkpointReferenceMaxBytes {
		return meta, source, nil
	}
	stored, err := io.ReadAll(io.LimitReader(source, checkpointReferenceMaxBytes+1))
	source.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	descriptor, isReference := bytes.CutPrefix(stored, checkpointReferenceMagic)
	if !isReference {
		return meta, io.NopCloser(bytes.NewReader(stored)), nil
	}
	stream, size, err := s.sm.OpenCheckpoint(descriptor)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	s.openedBytes.Add(uint64(size))
	opened := *meta
	opened.Size = size
	return &opened, stream, nil
}

// retain deletes the checkpoints that no stored snapshot refers to.
func (s *checkpointStore) retain() error {
	snapshots, err := s.files.List()
	if err != nil {
		return fmt.Errorf("retain checkpoints: %w", err)
	}
	var descriptors [][]byte
	for _, meta := range snapshots {
		if meta.Size > checkpointReferenceMaxBytes {
			continue
		}
		_, source, err := s.files.Open(meta.ID)
		if err != nil {
			return fmt.Errorf("retain checkpoints: %w", err)
		}
		stored, err := io.ReadAll(io.LimitReader(source, checkpointReferenceMaxBytes+1))
		source.Close()
		if err != nil {
			return fmt.Errorf("retain checkpoints: %w", err)
		}
		if descriptor, isReference := bytes.CutPrefix(stored, checkpointReferenceMagic); isReference {
			descriptors = append(descriptors, descriptor)
		}
	}
	return s.sm.RetainCheckpoints(descriptors)
}

// checkpointSink is a file store sink that knows whether it holds a reference or a stream.
type checkpointSink struct {
	raft.SnapshotSink
	store *checkpointStore
	// head holds a stream's first bytes until there are enough to tell they are not a
	// reference's magic; checked is set from then on.
	head      []byte
	checked   bool
	reference bool
	written   uint64
	// closed makes Close idempotent: Persist closes the sink, and raft closes it again.
	closed bool
}

var errReferenceInStream = errors.New("snapshot stream starts like a checkpoint reference")

// Write writes a stream: a snapshot received from a leader.
func (s *checkpointSink) Write(p []byte) (int, error) {
	if s.reference {
		return 0, errors.New("write to a checkpoint reference sink")
	}
	if !s.checked {
		s.head = append(s.head, p...)
		if len(s.head) < len(checkpointReferenceMagic) {
			return len(p), nil
		}
		if err := s.flushHead(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n, err := s.SnapshotSink.Write(p)
	s.written += uint64(n)
	return n, err
}

func (s *checkpointSink) flushHead() error {
	s.checked = true
	if bytes.HasPrefix(s.head, checkpointReferenceMagic) {
		return errReferenceInStream
	}
	n, err := s.SnapshotSink.Write(s.head)
	s.written += uint64(n)
	s.head = nil
	return err
}

// writeReference makes the sink a reference to the checkpoint descriptor names.
func (s *checkpointSink) writeReference(descriptor []byte) error {
	if s.checked || len(s.head) > 0 {
		return errors.New("checkpoint reference written to a stream sink")
	}
	if len(descriptor) == 0 || len(descriptor) > checkpointDescriptorMaxBytes {
		return fmt.Errorf("checkpoint descriptor of %d bytes", len(descriptor))
	}
	s.reference, s.checked = true, true
	n, err := s.SnapshotSink.Write(append(append([]byte(nil), checkpointReferenceMagic...), descriptor...))
	s.written += uint64(n)
	return err
}

// Close publishes the snapshot (raft's file store deletes the oldest beyond its retention),
// then, for a local snapshot, deletes the checkpoints no snapshot refers to any more.
func (s *checkpointSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if !s.checked {
		if err := s.flushHead(); err != nil {
			_ = s.SnapshotSink.Cancel()
			return err
		}
	}
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	if !s.reference {
		s.store.streamBytes.Add(s.written)
		return nil
	}
	s.store.referenceBytes.Add(s.written)
	// The snapshot is published (raft may compact its log); a failed sweep only leaves extra
	// checkpoints for the next one.
	if err := s.store.retain(); err != nil {
		s.store.logger.Warn("snapshot published, old checkpoints kept", "snapshot_id", s.ID(), "error", err)
	}
	return nil
}

// checkpointReference is the raft.FSMSnapshot of a checkpoint: Persist stores its descriptor.
type checkpointReference struct{ descriptor []byte }

// Persist writes the reference into a checkpointStore sink and publishes it.
func (r checkpointReference) Persist(sink raft.SnapshotSink) error {
	checkpointSink, ok := sink.(*checkpointSink)
	if !ok {
		_ = sink.Cancel()
		return fmt.Errorf("persist checkpoint reference: sink %T is not the checkpoint store's", sink)
	}
	if err := checkpointSink.writeReference(r.descriptor); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist checkpoint reference: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the checkpoint stays until retention drops it.
func (checkpointReference) Release() {}
