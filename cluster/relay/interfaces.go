package relay

import (
	"context"
	"time"
)

// Envelope is one rendered outbox event, as a receiver gets it.
type Envelope struct {
	Shard    int
	Sequence uint64 // the shard's outbox sequence; (Shard, Sequence) identifies the event
	EventID  string // stable across deliveries and leaders, so receivers can dedupe
	Type     string // e.g. INV_TOTAL_PAYMENT_CONFIRMED
	Time     time.Time
	Body     []byte // the JSON a receiver gets, verbatim
}

// Source reads a shard's rendered outbox from the local replica.
//
// Threading: called concurrently by the goroutines of different subscribers (of the same and
// of other shards); it must not block on the apply loop for longer than a store read.
type Source interface {
	// Events returns up to limit events of shard with sequence > after, oldest first, and the
	// oldest sequence the shard still retains (0 when it has never emitted one). An event
	// after+1 below oldest was trimmed by retention: the engine reports it as lost.
	Events(ctx context.Context, shard int, after uint64, limit int) (batch []Envelope, oldest uint64, err error)
	// Newest returns the newest sequence of shard (0: none), for the lag metrics.
	Newest(shard int) (uint64, error)
}

// Cursors holds the subscribers' replicated delivery cursors (fsm.OpOutboxAck).
//
// Threading: called concurrently by the engine's goroutines.
type Cursors interface {
	// Cursor reads the acknowledged sequence of subscriber on shard from the local replica
	// (0: none yet). It may lag the latest ack while this node applies it; a lagging read
	// only causes redelivery.
	Cursor(shard int, subscriber string) (uint64, error)
	// Ack proposes that subscriber has received every event of shard up to sequence and
	// returns once the ack is applied. Acks are cumulative and only move the cursor forward,
	// so a failed ack is covered by the next one.
	Ack(ctx context.Context, shard int, subscriber string, sequence uint64) error
}

// DeadLetters records events that a subscriber could not receive within the retry budget.
//
// Threading: called concurrently by the engine's goroutines.
type DeadLetters interface {
	// Add records env for subscriber durably (replicated) before returning nil: the engine
	// acknowledges past the event only after Add succeeds, so an event is always either
	// delivered, dead-lettered, or still ahead of the cursor.
	Add(ctx context.Context, shard int, subscriber string, env Envelope, reason string) error
}

// Redrives holds the dead letters an operator asked to deliver again (fsm.OpOutboxRedrive).
// The engine delivers them, within the retry budget, from the goroutine of their shard and
// subscriber, before that goroutine's next batch.
//
// Threading: called concurrently by the engine's goroutines.
type Redrives interface {
	// Redrives lists up to limit sequences of shard marked for re-delivery to subscriber,
	// oldest first, from the local replica.
	Redrives(shard int, subscriber string, limit int) ([]uint64, error)
	// Redriven records the outcome of one re-delivery durably (replicated) before returning
	// nil: delivered removes the mark and the dead letter; otherwise the mark goes and the
	// dead letter stays, with reason. An outcome for a sequence no longer marked changes
	// nothing, so a new leader that delivers a mark again does no harm.
	Redriven(ctx context.Context, shard int, subscriber string, sequence uint64, delivered bool, reason string) error
}

// Leadership says which shards this node leads now. The engine asks it every
// Config.ReconcileInterval and on Engine.Refresh, and cancels the deliveries of a shard that
// is no longer in the list.
//
// Threading: called from the engine's reconcile goroutine only; it must return quickly.
type Leadership interface {
	LedShards() []int
}

// LeadershipFunc adapts a function to Leadership.
type LeadershipFunc func() []int

// LedShards implements Leadership.
func (f LeadershipFunc) LedShards() []int { return f() }

// Subscriptions provides the current subscriptions. The list changes at runtime: the engine
// starts deliveries for a new subscription, stops them for a deleted one and restarts them
// for a changed one at its next reconcile.
//
// Threading: called from the engine's reconcile goroutine only; it must return quickly.
type Subscriptions interface {
	Subscriptions() ([]Subscription, error)
}

// SubscriptionsFunc adapts a function to Subscriptions.
type SubscriptionsFunc func() ([]Subscription, error)

// Subscriptions implements Subscriptions.
func (f SubscriptionsFunc) Subscriptions() ([]Subscription, error) { return f() }

// Transport makes one delivery attempt of an event to a subscriber. The engine owns retries,
// backoff and dead letters; a Transport owns one attempt's request, its timeout and its
// cleanup. An error means "not delivered" (it may have arrived anyway: delivery is at least
// once).
//
// Threading: called concurrently for different subscribers and shards.
type Transport interface {
	Attempt(ctx context.Context, sub Subscription, env Envelope) error
}
