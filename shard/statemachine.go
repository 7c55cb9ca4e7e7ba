// Package shard runs one Raft group: hashicorp/raft with raft-boltdb/v2 for the log and stable
// store, file snapshots, group commit of concurrent proposals into one log entry stamped with the
// leader's time, and linearizable reads through a quorum-confirmed read index.
//
// It owns consensus and nothing else: it never decodes a command, never knows about HTTP, and
// never routes between nodes (that is cluster/).
package shard

import (
	"io"
)

// StateMachine is the deterministic state a shard replicates.
//
// Threading contract: ApplyBatch, Snapshot and Restore are called one at a time, never
// concurrently with each other (mostly from raft's FSM goroutine; a follower read may apply
// committed entries from its own goroutine, in turn with raft's: the shard serializes them).
// Snapshot.Persist runs concurrently with later ApplyBatch calls. AppliedIndex may be called
// from any goroutine, and shows an ApplyBatch's index as soon as that call returns (the shard
// skips entries at or below it when raft hands over entries a follower read already applied).
type StateMachine interface {
	// ApplyBatch applies one log entry: the commands the leader batched together, in order, with
	// the time the leader stamped on the batch (Unix milliseconds). It returns exactly one result
	// per command. An entry whose index is at or below AppliedIndex (already durable in the
	// state machine's own store, replayed after a restart) must be skipped; it then returns
	// nil results.
	ApplyBatch(index uint64, timeUnixMs int64, commands [][]byte) []any

	// AppliedIndex is the index of the last log entry whose effects the state machine has made
	// durable enough to survive a process crash. After a restart the shard replays only entries
	// above it.
	AppliedIndex() uint64

	// Snapshot returns a point-in-time view that Persist streams into the snapshot store; it
	// must return quickly and leave the heavy work to Persist.
	Snapshot() (Snapshot, error)

	// Restore replaces the whole state with the stream written by a snapshot's Persist.
	Restore(snapshot io.ReadCloser) error
}

// Snapshot is a point-in-time view of a StateMachine's state, taken by StateMachine.Snapshot.
// The shard hands it to Raft, which persists it into its snapshot store.
//
// It is an alias of an interface literal rather than a defined type, on purpose: a state
// machine satisfies StateMachine by spelling the same literal, without importing this package
// and, through it, hashicorp/raft (fsm does; the HTTP layer imports fsm and must not import
// Raft).
type Snapshot = interface {
	// Persist writes the whole state to w in the format Restore reads, and reports the first
	// error. It runs at most once, concurrently with later ApplyBatch calls; the shard closes
	// or cancels the underlying snapshot sink.
	Persist(w io.Writer) error
	// Release frees the view. It is called once, after Persist or instead of it.
	Release()
}

// CheckpointStateMachine is a StateMachine whose snapshots are checkpoints of its own store, so
// that taking one costs O(1) of history: raft's snapshot store keeps only the checkpoint's
// descriptor, and the full stream is produced when raft opens the snapshot, to send it to a
// follower (InstallSnapshot) or to restore it at Open. The shard uses it instead of Snapshot
// when the state machine implements it (checkpointStore).
//
// Threading contract: Checkpoint runs on the apply goroutine, like Snapshot (never concurrently
// with ApplyBatch or Restore). OpenCheckpoint and RetainCheckpoints may run on any goroutine,
// concurrently with applies and with each other.
type CheckpointStateMachine interface {
	StateMachine

	// Checkpoint makes a durable checkpoint of the state as of AppliedIndex (and makes the
	// state itself durable up to there, as raft may compact its log once the snapshot exists),
	// and returns its descriptor: a few bytes (at most checkpointDescriptorMaxBytes) that name
	// it. It must return quickly.
	Checkpoint() (descriptor []byte, err error)

	// OpenCheckpoint opens the checkpoint a descriptor names as the stream Restore reads, and
	// returns the stream's exact length in bytes (raft sends it before the stream). The stream
	// must stay readable when RetainCheckpoints deletes the checkpoint meanwhile.
	OpenCheckpoint(descriptor []byte) (stream io.ReadCloser, sizeBytes int64, err error)

	// RetainCheckpoints deletes every checkpoint that none of the descriptors names.
	RetainCheckpoints(descriptors [][]byte) error
}

// ResultCodec turns apply results into bytes and back, so that a follower can forward a
// proposal to the leader and hand its caller the same value the leader computed.
type ResultCodec interface {
	EncodeResult(result any) ([]byte, error)
	DecodeResult(data []byte) (any, error)
}
