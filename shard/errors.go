package shard

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is. cluster/ carries them across the wire, so
// their identity survives forwarding.
var (
	// ErrNotLeader means this replica is not the leader; the command was not applied.
	// Retry on the leader (see Leader).
	ErrNotLeader = errors.New("shard: not the leader")

	// ErrClosed means the replica is closing or closed; the command was not applied. It
	// matches ErrNotLeader too, because retrying on another replica is the right reaction.
	ErrClosed = fmt.Errorf("shard: closed: %w", ErrNotLeader)

	// ErrNotVoter means a leadership transfer named a server that is not a voter of the
	// shard's configuration; nothing changed.
	ErrNotVoter = errors.New("shard: not a voter")

	// ErrOverloaded means the proposal queue is full (or raft did not accept the batch in
	// time); the command was not applied. Retry later.
	ErrOverloaded = errors.New("shard: overloaded")

	// ErrCommandTooLarge means one command exceeds BatchMaxBytes; it can never be applied.
	ErrCommandTooLarge = errors.New("shard: command too large")

	// ErrOutcomeUnknown means the command was handed to raft and may or may not commit (for
	// example the leader lost leadership, or the caller gave up waiting). Never report this
	// as a failure: the caller must find out, e.g. by retrying with the same idempotency key.
	ErrOutcomeUnknown = errors.New("shard: outcome unknown")
)

// Retryable says whether a proposal that failed with err may be sent again, as a client would:
// it went to a replica not leading (nothing applied), or its outcome is unknown (it may have
// applied; the caller's idempotency decides what a second apply does).
func Retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrOutcomeUnknown)
}
