package shard

import "time"

// lingerPolicy decides how long group commit holds a small batch open for more proposals
// (issue 15 item 6).
//
// Why: every batch has a fixed cost on every replica (the leader's raft append, an
// AppendEntries to each follower, a node-log fdatasync on each replica, one state machine
// apply and Pebble commit on each) that does not depend on how many commands it carries.
// Without a hold the batcher hands a batch to raft as soon as a pipeline slot is free, so at a
// moderate rate it sends many batches of a few commands each, and their fixed cost takes the
// CPU the lower rate left free: the cluster used about as much CPU at a third of its peak as at
// the peak, and the latency tail was queueing for that CPU.
//
// The rule: while another batch is in flight, a batch smaller than countMin is not handed to
// raft sooner than spacing after the previous batch was. The hold is what is left of spacing,
// so
//   - at a low rate (proposals further apart than spacing) the previous batch is long gone and
//     a proposal goes at once: no added latency where coalescing would gain nothing;
//   - a lone sequential client (its next proposal comes after its previous batch applied,
//     with nothing in flight) never waits: nobody else's proposal would join it;
//   - at a moderate rate batches go at most once per spacing, each carrying what arrived
//     meanwhile (about rate × spacing commands): the hold grows as the queue gets shorter,
//     and a command waits at most spacing;
//   - once a batch reaches countMin (a queue long enough to make batches worth their fixed
//     cost, or a full pipeline that let one grow) it goes at once, so the peak is unchanged;
//   - a batch that carries an urgent command (Config.Urgent) goes at once: a proposer that
//     waits on a chain of proposals, one after the other, would pay a hold at every step. A
//     cross-shard transfer is four or five such steps, and with holds four concurrent ones on
//     a lone node of 4 shards ran at 214/s (p50 19 ms) against 303/s (p50 3.1 ms) for one
//     client alone (bench/RESULTS.md, session 26).
//
// It is a pure function of its inputs: the batcher owns the clock.
type lingerPolicy struct {
	// spacing is the least time between two batches below countMin; 0 turns holding off.
	spacing time.Duration
	// countMin is the batch size that goes without holding.
	countMin int
}

// hold returns how long a batch of count commands waits for more, given the time since the
// previous batch was handed to raft (a large value when there was none) and how many batches
// are in flight (handed to raft, not yet applied) besides this one.
func (p lingerPolicy) hold(count int, sinceLast time.Duration, inFlight int) time.Duration {
	if p.spacing <= 0 || count >= p.countMin || inFlight <= 0 || sinceLast >= p.spacing {
		return 0
	}
	if sinceLast < 0 {
		// A clock that stepped back: hold at most one spacing.
		return p.spacing
	}
	return p.spacing - sinceLast
}

// batcherClock is the batcher's time: the real one, or a test's (export_test.go) whose holds
// end only when the test says so.
type batcherClock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a stop function.
	After(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func()) {
	timer := time.NewTimer(d)
	return timer.C, func() { timer.Stop() }
}
