package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits and defaults of the engine.
const (
	// BatchMaxCountDefault is how many events one fetch reads, and so the most events a
	// subscriber may receive again after a leader change (acks are per batch).
	BatchMaxCountDefault = 256
	// BatchMaxCountLimit bounds Config.BatchMaxCount.
	BatchMaxCountLimit = 4096
	// PollIntervalDefault is how long a caught-up delivery waits for a Notify before it looks
	// for new events anyway (a missed or unwired Notify costs at most this much latency).
	PollIntervalDefault = 500 * time.Millisecond
	// ReconcileIntervalDefault is how often the engine asks Leadership and Subscriptions: a
	// lost leadership stops the shard's deliveries within about this long (sooner with Refresh).
	ReconcileIntervalDefault = 250 * time.Millisecond
	// AckTimeoutDefault bounds one ack proposal.
	AckTimeoutDefault = 5 * time.Second
	// SubscriptionMaxCount bounds the subscriptions delivered (a goroutine each per led shard);
	// the ones beyond it, in the provider's order, are logged and not delivered.
	SubscriptionMaxCount = 256
	// AttemptMaxCountLimit bounds RetryPolicy.AttemptMaxCount.
	AttemptMaxCountLimit = 100
	// deadLetterReasonMaxBytes bounds the reason recorded with a dead letter.
	deadLetterReasonMaxBytes = 512
)

// RetryPolicy bounds the attempts to deliver one event. The wait before attempt n+1 is uniform
// in [0, min(BackoffMax, BackoffBase·2^(n-1))] ("full jitter"), so receivers that come back
// after an outage are not hit by every subscriber's retry at once.
type RetryPolicy struct {
	AttemptMaxCount int           // attempts per event, first included (default 8)
	BackoffBase     time.Duration // ceiling of the first wait (default 1 s)
	BackoffMax      time.Duration // cap of a wait's ceiling (default 5 min)
}

// DefaultRetryPolicy is the policy of a zero RetryPolicy: 8 attempts over at most about 6
// minutes (ceilings 1, 2, 4, …, 64 s).
var DefaultRetryPolicy = RetryPolicy{AttemptMaxCount: 8, BackoffBase: time.Second, BackoffMax: 5 * time.Minute}

// Config is what an Engine needs. Source, Cursors, DeadLetters, Leadership and Subscriptions
// are required; the other fields have defaults.
type Config struct {
	Source        Source
	Cursors       Cursors
	DeadLetters   DeadLetters
	Leadership    Leadership
	Subscriptions Subscriptions
	// Redrives, when set, are the dead letters to deliver again (nil: none are).
	Redrives Redrives
	// Transports deliver by Kind (default: KindWebhook → NewWebhook(WebhookOptions{})).
	Transports map[Kind]Transport
	Metrics    *Metrics     // default: NewMetrics(nil)
	Logger     *slog.Logger // default: discard

	BatchMaxCount     int           // default BatchMaxCountDefault
	PollInterval      time.Duration // default PollIntervalDefault
	ReconcileInterval time.Duration // default ReconcileIntervalDefault
	AckTimeout        time.Duration // default AckTimeoutDefault
	Retry             RetryPolicy   // zero: DefaultRetryPolicy

	// Sleep waits d, or until ctx ends and then returns its error. It paces retries and
	// dead-letter writes, so tests inject one that does not wait real minutes (default: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a uniformly random duration in [0, ceiling] (default math/rand/v2).
	Jitter func(ceiling time.Duration) time.Duration
	// Now is the clock of the lag in seconds, read at scrape time (default time.Now).
	Now func() time.Time
	// OwnListeners are this node's listener addresses (host:port as bound): a subscription whose
	// URL reaches one of them is not delivered (ValidateWebhookURL).
	OwnListeners []string
}

func (c *Config) setDefaults() error {
	if c.Source == nil || c.Cursors == nil || c.DeadLetters == nil || c.Leadership == nil || c.Subscriptions == nil {
		return errors.New("relay: Source, Cursors, DeadLetters, Leadership and Subscriptions are required")
	}
	if c.Transports == nil {
		c.Transports = map[Kind]Transport{KindWebhook: NewWebhook(WebhookOptions{})}
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.BatchMaxCount = cmp.Or(c.BatchMaxCount, BatchMaxCountDefault)
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	c.ReconcileInterval = cmp.Or(c.ReconcileInterval, ReconcileIntervalDefault)
	c.AckTimeout = cmp.Or(c.AckTimeout, AckTimeoutDefault)
	if c.Retry == (RetryPolicy{}) {
		c.Retry = DefaultRetryPolicy
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Jitter == nil {
		c.Jitter = func(ceiling time.Duration) time.Duration { return rand.N(ceiling + 1) }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.BatchMaxCount < 1 || c.BatchMaxCount > BatchMaxCountLimit:
		return fmt.Errorf("relay: BatchMaxCount %d, want 1..%d", c.BatchMaxCount, BatchMaxCountLimit)
	case c.PollInterval < 0 || c.ReconcileInterval < 0 || c.AckTimeout < 0:
		return errors.New("relay: negative interval")
	case c.Retry.AttemptMaxCount < 1 || c.Retry.AttemptMaxCount > AttemptMaxCountLimit:
		return fmt.Errorf("relay: AttemptMaxCount %d, want 1..%d", c.Retry.AttemptMaxCount, AttemptMaxCountLimit)
	case c.Retry.BackoffBase <= 0 || c.Retry.BackoffMax < c.Retry.BackoffBase:
		return fmt.Errorf("relay: backoff base %s and max %s, want 0 < base ≤ max", c.Retry.BackoffBase, c.Retry.BackoffMax)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Engine delivers the outbox of every shard this node leads to every subscription: one
// goroutine per (led shard, subscriber), so a slow or dead receiver holds only its own
// deliveries. Its only record of progress is the replicated cursor (Cursors) and the
// replicated dead letters: a new leader resumes from the last ack.
//
// Acks are per batch: after each fetched batch (at most Config.BatchMaxCount events) that
// delivered or dead-lettered an event, and before the first retry wait of an event, so a long
// retry never keeps earlier deliveries unacknowledged. On a leader change a subscriber may
// therefore receive again up to one batch of events (those delivered since the last applied
// ack, whose ack was lost in flight or not yet applied on the new leader); each duplicate
// carries the same event ID. Progress over filtered-out events alone is acked once it reaches
// a batch or the shard has been quiet for a poll interval, so a subscriber that wants few
// events does not propose an ack for every commit; a new leader only skips those events again.
// Nothing is acked before it is delivered or recorded as a dead letter, so nothing is lost
// except by retention, which is reported.
type Engine struct {
	cfg     Config
	refresh chan struct{}

	mu       sync.Mutex
	wake     map[int]chan struct{}         // per shard: closed by Notify, replaced on the next wait
	shards   map[int]context.CancelFunc    // led shards: cancelling one stops its deliveries
	shardCtx map[int]context.Context       // parents of the shard's delivery contexts
	workers  map[workerKey]*worker         // running deliveries
	exiting  map[workerKey]<-chan struct{} // cancelled deliveries that may not have returned yet
	reported map[string]string             // subscriber → the configuration error last logged
	subs     []Subscription                // the last list Subscriptions returned
	running  sync.WaitGroup
}

type workerKey struct {
	shard      int
	subscriber string
}

type worker struct {
	sub    Subscription
	cancel context.CancelFunc
	done   chan struct{}
	passed atomic.Uint64 // newest sequence passed (delivered, filtered out, dead-lettered)
}

// New checks cfg, fills in its defaults, and returns an engine; Run starts it.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Engine{
		cfg:      cfg,
		refresh:  make(chan struct{}, 1),
		wake:     map[int]chan struct{}{},
		shards:   map[int]context.CancelFunc{},
		shardCtx: map[int]context.Context{},
		workers:  map[workerKey]*worker{},
		exiting:  map[workerKey]<-chan struct{}{},
		reported: map[string]string{},
	}, nil
}

// Run delivers until ctx ends, then stops every delivery and returns once all have returned.
// Call it once.
func (e *Engine) Run(ctx context.Context) {
	defer e.stopAll()
	ticker := time.NewTicker(e.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		e.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-e.refresh:
		}
	}
}

// Refresh makes the engine ask Leadership and Subscriptions now rather than at its next
// interval (after a leadership change or a subscription write). It never blocks.
func (e *Engine) Refresh() {
	select {
	case e.refresh <- struct{}{}:
	default:
	}
}

// Notify tells the deliveries of shard that new events may have committed. The apply side
// calls it after a batch with events; it never blocks and costs a map lookup when nothing
// waits.
func (e *Engine) Notify(shard int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch, ok := e.wake[shard]; ok {
		close(ch)
		delete(e.wake, shard)
	}
}

// wakeChannel returns the channel the next Notify(shard) closes. A delivery takes it before it
// reads the source, so a Notify between the read and the wait is not missed.
func (e *Engine) wakeChannel(shard int) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.wake[shard]
	if !ok {
		ch = make(chan struct{})
		e.wake[shard] = ch
	}
	return ch
}

// DeliveryStatus is one running delivery.
type DeliveryStatus struct {
	Shard      int
	Subscriber string
	// Passed is the newest sequence delivered, filtered out or dead-lettered by this node (the
	// replicated cursor may be behind it by up to a batch).
	Passed uint64
}

// Deliveries lists the running deliveries, by shard then subscriber.
func (e *Engine) Deliveries() []DeliveryStatus {
	e.mu.Lock()
	list := make([]DeliveryStatus, 0, len(e.workers))
	for k, w := range e.workers {
		list = append(list, DeliveryStatus{Shard: k.shard, Subscriber: k.subscriber, Passed: w.passed.Load()})
	}
	e.mu.Unlock()
	slices.SortFunc(list, func(a, b DeliveryStatus) int {
		return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Subscriber, b.Subscriber))
	})
	return list
}

// reconcile starts and stops deliveries to match the led shards and the subscriptions.
func (e *Engine) reconcile(ctx context.Context) {
	led := map[int]bool{}
	for _, shard := range e.cfg.Leadership.LedShards() {
		led[shard] = true
	}
	subs := e.validSubscriptions()

	e.mu.Lock()
	defer e.mu.Unlock()
	for k, done := range e.exiting {
		select {
		case <-done:
			delete(e.exiting, k)
		default:
		}
	}
	for shard, cancel := range e.shards {
		if !led[shard] || ctx.Err() != nil {
			cancel()
			delete(e.shards, shard)
			delete(e.shardCtx, shard)
			if ctx.Err() == nil {
				e.cfg.Logger.Info("relay: stopped deliveries of a shard no longer led", "shard", shard)
			}
		}
	}
	for k, w := range e.workers {
		sub, ok := subs[k.subscriber]
		if _, shardLed := e.shards[k.shard]; !shardLed || !ok || !sub.equal(&w.sub) {
			w.cancel()
			delete(e.workers, k)
			e.exiting[k] = w.done
		}
	}
	if ctx.Err() != nil {
		return
	}
	for shard := range led {
		if _, ok := e.shards[shard]; !ok {
			shardCtx, cancel := context.WithCancel(ctx)
			e.shards[shard], e.shardCtx[shard] = cancel, shardCtx
			e.cfg.Logger.Info("relay: delivering a newly led shard", "shard", shard)
		}
		for name, sub := range subs {
			k := workerKey{shard, name}
			if _, ok := e.workers[k]; ok {
				continue
			}
			workerCtx, cancel := context.WithCancel(e.shardCtx[shard])
			w := &worker{sub: sub, cancel: cancel, done: make(chan struct{})}
			e.workers[k] = w
			previous := e.exiting[k]
			e.running.Add(1)
			go e.deliver(workerCtx, k, w, previous)
		}
	}
}

// validSubscriptions returns the subscriptions the engine can deliver to, by name, logging
// each configuration error once. A name listed twice is ambiguous: neither is delivered. When
// the provider fails it keeps the last list.
func (e *Engine) validSubscriptions() map[string]Subscription {
	list, err := e.cfg.Subscriptions.Subscriptions()
	if err != nil {
		e.cfg.Metrics.errors.WithLabelValues("subscriptions").Inc()
		e.cfg.Logger.Warn("relay: reading subscriptions failed; keeping the last list", "err", err)
		list = e.subs
	} else {
		e.subs = list
	}
	listed := make(map[string]int, len(list))
	for _, sub := range list {
		listed[sub.Name]++
	}
	valid := make(map[string]Subscription, len(list))
	for _, sub := range list {
		if listed[sub.Name] == 0 {
			continue // a duplicate name, already refused
		}
		err := sub.ValidateStored(e.cfg.OwnListeners)
		if _, ok := e.cfg.Transports[sub.Kind]; err == nil && !ok {
			err = fmt.Errorf("subscriber %q: no transport for kind %v", sub.Name, sub.Kind)
		}
		if listed[sub.Name] > 1 {
			err = fmt.Errorf("subscriber %q listed %d times", sub.Name, listed[sub.Name])
			listed[sub.Name] = 0
		}
		if err == nil && len(valid) >= SubscriptionMaxCount {
			err = fmt.Errorf("subscriber %q: more than %d subscriptions", sub.Name, SubscriptionMaxCount)
		}
		if err != nil {
			if e.reported[sub.Name] != err.Error() {
				e.reported[sub.Name] = err.Error()
				e.cfg.Logger.Error("relay: subscription not delivered", "subscriber", sub.Name, "err", err)
			}
			continue
		}
		delete(e.reported, sub.Name)
		valid[sub.Name] = sub
	}
	for name := range e.reported {
		if _, ok := listed[name]; !ok {
			delete(e.reported, name)
		}
	}
	return valid
}

func (e *Engine) stopAll() {
	e.mu.Lock()
	for shard, cancel := range e.shards {
		cancel()
		delete(e.shards, shard)
		delete(e.shardCtx, shard)
	}
	for k, w := range e.workers {
		w.cancel()
		delete(e.workers, k)
	}
	e.mu.Unlock()
	e.running.Wait()
}

// deliver runs one (shard, subscriber) delivery until ctx ends. It starts after the previous
// delivery of the same key has returned, so two never overlap (order per shard is kept).
func (e *Engine) deliver(ctx context.Context, k workerKey, w *worker, previous <-chan struct{}) {
	defer e.running.Done()
	defer close(w.done)
	if previous != nil {
		// Wait even when ctx ends first: a later delivery of the key waits for this one, so
		// this one must not return before the one it follows (it was cancelled, and returns
		// promptly, as every call it makes takes its context).
		<-previous
		if ctx.Err() != nil {
			return
		}
	}
	e.cfg.Metrics.lag.start(k, func() uint64 {
		newest, _ := e.cfg.Source.Newest(k.shard)
		return newest
	}, e.cfg.Now)
	defer e.cfg.Metrics.lag.forget(k)
	d := &delivery{Engine: e, shard: k.shard, sub: w.sub, transport: e.cfg.Transports[w.sub.Kind], passedOut: &w.passed,
		logger: e.cfg.Logger.With("shard", k.shard, "subscriber", k.subscriber)}
	d.run(ctx)
}

// delivery is the state of one (shard, subscriber) goroutine.
type delivery struct {
	*Engine
	shard     int
	sub       Subscription
	transport Transport
	logger    *slog.Logger
	passedOut *atomic.Uint64

	passed uint64 // newest sequence delivered, filtered out or dead-lettered
	acked  uint64 // newest sequence this delivery knows the replicated cursor has
	// sentSinceAck is set when an event was delivered or dead-lettered since the last ack:
	// progress over filtered-out events alone is acked more lazily (ackDue).
	sentSinceAck bool
}

func (d *delivery) run(ctx context.Context) {
	for ctx.Err() == nil {
		// The replicated cursor is the record; it may also be ahead of this delivery (an ack by
		// the previous leader applied here late, a re-drive tool).
		cursor, err := d.cfg.Cursors.Cursor(d.shard, d.sub.Name)
		if err != nil {
			d.cfg.Metrics.errors.WithLabelValues("cursor").Inc()
			d.logger.Warn("relay: reading the cursor failed", "err", err)
			d.idle(ctx, nil)
			continue
		}
		if cursor > d.passed {
			d.passed, d.acked = cursor, cursor
			d.passedOut.Store(cursor)
		}
		if d.cfg.Redrives != nil && !d.redrive(ctx) {
			return
		}
		wake := d.wakeChannel(d.shard)
		batch, oldest, err := d.cfg.Source.Events(ctx, d.shard, d.passed, d.cfg.BatchMaxCount)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Metrics.errors.WithLabelValues("events").Inc()
				d.logger.Warn("relay: reading events failed", "err", err)
				d.idle(ctx, nil)
			}
			continue
		}
		if oldest > 0 && d.passed < oldest-1 {
			lost := oldest - 1 - d.passed
			d.cfg.Metrics.lostEvents.WithLabelValues(shardLabel(d.shard), d.sub.Name).Add(float64(lost))
			d.logger.Error("relay: events were trimmed by the outbox's retention before delivery; continuing from the oldest kept",
				"lost", lost, "after", d.passed, "oldest", oldest)
			d.pass(oldest - 1)
			d.ack(ctx) // so the next leader does not report the same loss again
		}
		d.observeLag(batch)
		if len(batch) == 0 {
			if d.sentSinceAck {
				d.ack(ctx)
			}
			if !d.idle(ctx, wake) {
				d.ack(ctx) // quiet for a poll interval: ack filtered-out progress too
			}
			continue
		}
		before := d.passed
		for i, env := range batch {
			if env.Sequence <= d.passed {
				continue // the source repeated an event: never go back
			}
			if d.sub.Filter.Matches(env.Type) {
				if !d.deliverOne(ctx, env) {
					return
				}
				d.sentSinceAck = true
			}
			d.pass(env.Sequence)
			rest := batch[i+1:]
			if len(rest) == 0 && len(batch) >= d.cfg.BatchMaxCount {
				// A full batch: more events probably wait past it, unseen until the next fetch
				// (after the ack). None is older than this one, so its age bounds theirs; 0 would
				// show a delivery that is behind as caught up for the length of every ack.
				rest = batch[i:]
			}
			d.observeLag(rest)
		}
		if d.sentSinceAck || d.passed-d.acked >= uint64(d.cfg.BatchMaxCount) {
			d.ack(ctx)
		}
		if d.passed == before {
			d.idle(ctx, wake) // a source that only repeats old events must not make us spin
		}
	}
}

// idle waits for a Notify (when wake is not nil), the poll interval, or the end of ctx. It
// reports whether a Notify woke it.
func (d *delivery) idle(ctx context.Context, wake <-chan struct{}) (notified bool) {
	timer := time.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	select {
	case <-wake:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

func (d *delivery) pass(sequence uint64) {
	d.passed = sequence
	d.passedOut.Store(sequence)
}

// observeLag records the delivery's position for the lag metrics; rest is what remains of the
// fetched batch, oldest first.
func (d *delivery) observeLag(rest []Envelope) {
	var pendingSince time.Time
	if len(rest) > 0 {
		pendingSince = rest[0].Time
	}
	d.cfg.Metrics.lag.set(workerKey{d.shard, d.sub.Name}, d.passed, pendingSince)
}

// ack proposes the progress not yet acknowledged. A failure is logged and left to the next
// ack, which covers it (acks are cumulative).
func (d *delivery) ack(ctx context.Context) {
	if d.passed <= d.acked || ctx.Err() != nil {
		return
	}
	ackCtx, cancel := context.WithTimeout(ctx, d.cfg.AckTimeout)
	defer cancel()
	if err := d.cfg.Cursors.Ack(ackCtx, d.shard, d.sub.Name, d.passed); err != nil {
		if ctx.Err() == nil {
			d.cfg.Metrics.errors.WithLabelValues("ack").Inc()
			d.logger.Warn("relay: ack failed; the next ack covers it", "sequence", d.passed, "err", err)
		}
		return
	}
	d.acked = d.passed
	d.sentSinceAck = false
}

// deliverOne delivers env within the retry budget, or records it as a dead letter. It returns
// false when ctx ended first: the event is then neither delivered for sure nor recorded, and
// the next leader delivers it again.
func (d *delivery) deliverOne(ctx context.Context, env Envelope) bool {
	reason, delivered := d.attempt(ctx, env)
	if delivered {
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	for failures := 1; ; failures++ {
		err := d.cfg.DeadLetters.Add(ctx, d.shard, d.sub.Name, env, reason)
		if err == nil {
			d.cfg.Metrics.deadLettered.WithLabelValues(d.sub.Name).Inc()
			d.logger.Warn("relay: event dead-lettered", "sequence", env.Sequence, "event_id", env.EventID, "reason", reason)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		// Never ack past an event that is neither delivered nor recorded: keep trying.
		d.cfg.Metrics.errors.WithLabelValues("dead_letter").Inc()
		d.logger.Warn("relay: recording a dead letter failed; retrying", "sequence", env.Sequence, "err", err)
		if d.cfg.Sleep(ctx, d.backoff(min(failures, 30))) != nil {
			return false
		}
	}
}

// attempt tries to deliver env within the retry budget. When it was not delivered (and ctx
// did not end), reason says why, for a dead letter.
func (d *delivery) attempt(ctx context.Context, env Envelope) (reason string, delivered bool) {
	var lastErr error
	for attempt := 1; attempt <= d.cfg.Retry.AttemptMaxCount; attempt++ {
		if attempt > 1 {
			if attempt == 2 {
				d.ack(ctx) // what came before env must not wait for env's retries
			}
			if d.cfg.Sleep(ctx, d.backoff(attempt-1)) != nil {
				return "", false
			}
			d.cfg.Metrics.retried.WithLabelValues(d.sub.Name).Inc()
		}
		lastErr = d.transport.Attempt(ctx, d.sub, env)
		if lastErr == nil {
			d.cfg.Metrics.delivered.WithLabelValues(d.sub.Name).Inc()
			return "", true
		}
		if ctx.Err() != nil {
			return "", false
		}
		// The first failure of an event is visible; its retries are in the retried metric.
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		d.logger.Log(ctx, level, "relay: delivery attempt failed", "sequence", env.Sequence, "event_id", env.EventID,
			"attempt", attempt, "err", lastErr)
	}
	reason = fmt.Sprintf("not delivered in %d attempts; last: %v", d.cfg.Retry.AttemptMaxCount, lastErr)
	if len(reason) > deadLetterReasonMaxBytes {
		reason = reason[:deadLetterReasonMaxBytes]
	}
	return reason, false
}

// redrive delivers the dead letters marked for re-delivery, oldest first, each within the
// retry budget, and records each outcome. They arrive out of sequence order (older than the
// events delivered since), which their event IDs show. It returns false when ctx ended: a mark
// whose outcome is not recorded is delivered again by the next leader.
func (d *delivery) redrive(ctx context.Context) bool {
	marked, err := d.cfg.Redrives.Redrives(d.shard, d.sub.Name, d.cfg.BatchMaxCount)
	if err != nil {
		d.cfg.Metrics.errors.WithLabelValues("redrives").Inc()
		d.logger.Warn("relay: reading the dead letters to deliver again failed", "err", err)
		return true // the next loop tries again
	}
	for _, sequence := range marked {
		if sequence == 0 {
			continue // no event has sequence 0
		}
		batch, _, err := d.cfg.Source.Events(ctx, d.shard, sequence-1, 1)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Metrics.errors.WithLabelValues("events").Inc()
				d.logger.Warn("relay: reading an event to deliver again failed", "sequence", sequence, "err", err)
			}
			return ctx.Err() == nil
		}
		reason, delivered := "the event is no longer in the outbox", false
		if len(batch) == 1 && batch[0].Sequence == sequence {
			reason, delivered = d.attempt(ctx, batch[0])
		}
		if ctx.Err() != nil {
			return false
		}
		if err := d.cfg.Redrives.Redriven(ctx, d.shard, d.sub.Name, sequence, delivered, reason); err != nil {
			if ctx.Err() == nil {
				d.cfg.Metrics.errors.WithLabelValues("redrives").Inc()
				d.logger.Warn("relay: recording a re-delivery failed; it is delivered again", "sequence", sequence, "err", err)
			}
			return ctx.Err() == nil
		}
		d.logger.Info("relay: dead letter delivered again", "sequence", sequence, "delivered", delivered, "reason", reason)
	}
	return true
}

// backoff is the wait after attempt n (n ≥ 1) failed: full jitter below an exponential ceiling.
func (d *delivery) backoff(n int) time.Duration {
	return d.cfg.Jitter(backoffCeiling(d.cfg.Retry, n))
}

// backoffCeiling is min(BackoffMax, BackoffBase·2^(n-1)), without overflow.
func backoffCeiling(policy RetryPolicy, n int) time.Duration {
	ceiling := policy.BackoffBase
	for i := 1; i < n && ceiling < policy.BackoffMax; i++ {
		if ceiling > policy.BackoffMax/2 {
			return policy.BackoffMax
		}
		ceiling *= 2
	}
	return min(ceiling, policy.BackoffMax)
}
