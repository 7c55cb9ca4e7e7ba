package relay

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// world is what the nodes of a test share: the replicated outbox, cursors and dead letters.
type world struct {
	source  *outbox
	journal *journal
	cursors *cursors
	dead    *deadLetters
	subs    *subscriptions
}

func newWorld() *world {
	j := &journal{}
	return &world{source: newOutbox(), journal: j, cursors: newCursors(j), dead: &deadLetters{journal: j}, subs: &subscriptions{}}
}

// config is one node's view of the world, leading shards.
func (w *world) config(lead *leadership, refuseAcksAbove uint64) Config {
	return Config{Source: w.source, Cursors: w.cursors.node(refuseAcksAbove), DeadLetters: w.dead, Leadership: lead,
		Subscriptions: w.subs, Retry: RetryPolicy{AttemptMaxCount: 4, BackoffBase: time.Second, BackoffMax: 5 * time.Minute}}
}

func led(shards ...int) *leadership { l := &leadership{}; l.set(shards...); return l }

func waitCursor(t *testing.T, w *world, shard int, subscriber string, sequence uint64) {
	t.Helper()
	testutil.Eventually(t, "the cursor of "+subscriber+" to reach its sequence", func() bool {
		return w.cursors.get(shard, subscriber) >= sequence
	})
}

// A receiver that answers 500 twice and then 200 gets the event on the third attempt, each in
// a request of its own with the whole body and a valid signature (GigaWallet's second attempt
// sent an empty body).
func TestFailingReceiverGetsTheEventOnTheThirdAttemptWithAFreshSignedRequestEach(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "s3cret", func(_ received, attempt int) int {
		if attempt <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w.subs.set(webhook("shop", r.url, "s3cret", "ALL"))
	w.source.emit(1, "INV_TOTAL_PAYMENT_CONFIRMED")
	h := startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "shop", 1)

	got := r.got()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, req := range got {
		if req.eventID != "1-1" || !strings.Contains(string(req.body), `"INV_TOTAL_PAYMENT_CONFIRMED"`) {
			t.Fatalf("attempt %d got %q", i+1, req.body)
		}
	}
	// Full jitter is injected as the ceiling: 1 s, then 2 s.
	if waits := h.sleeps.list(); !slices.Equal(waits, []time.Duration{time.Second, 2 * time.Second}) {
		t.Fatalf("backoff waits %v", waits)
	}
	sub := map[string]string{"subscriber": "shop"}
	if d, r := h.metric(t, "gigaledger_relay_delivered_total", sub), h.metric(t, "gigaledger_relay_retried_total", sub); d != 1 || r != 2 {
		t.Fatalf("delivered %v retried %v, want 1 and 2", d, r)
	}
	if len(w.dead.list()) != 0 {
		t.Fatalf("dead letters %v", w.dead.list())
	}
}

// A receiver down for the whole retry budget: the event becomes a dead letter, recorded before
// any ack passes it, and delivery goes on with the next event.
func TestReceiverDownForTheWholeBudgetDeadLettersAndDeliveryContinues(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", func(req received, _ int) int {
		if req.sequence == 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	w.subs.set(webhook("shop", r.url, "", "ALL"))
	w.source.emit(1, "INV_CREATED", "INV_PART_PAYMENT_DETECTED", "INV_TOTAL_PAYMENT_DETECTED")
	h := startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "shop", 3)

	if ids := r.ids(); !slices.Equal(ids, []string{"1-1", "1-2", "1-2", "1-2", "1-2", "1-3"}) {
		t.Fatalf("requests %v, want 1-2 four times (the budget) between 1-1 and 1-3", ids)
	}
	letters := w.dead.list()
	if len(letters) != 1 || letters[0].eventID != "1-2" || !strings.Contains(letters[0].reason, "503") {
		t.Fatalf("dead letters %+v", letters)
	}
	// The ack of 1 (before the retry waits) may come first; no ack reaches 2 before the letter.
	for _, entry := range w.journal.list() {
		if entry == "dead 1/shop 2" {
			break
		}
		if entry != "ack 1/shop 1" {
			t.Fatalf("journal %v: %q before the dead letter", w.journal.list(), entry)
		}
	}
	if v := h.metric(t, "gigaledger_relay_dead_lettered_total", map[string]string{"subscriber": "shop"}); v != 1 {
		t.Fatalf("dead-lettered metric %v", v)
	}
}

// Per shard, a subscriber receives events in sequence order, across batches and shards.
func TestOrderPerShardIsKept(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "k", nil)
	w.subs.set(webhook("shop", r.url, "k", "ALL"))
	cfg := w.config(led(1, 2, 3), 0)
	cfg.BatchMaxCount = 7
	startEngine(t, cfg, false)
	const perShard = 60
	for i := range perShard {
		for shard := 1; shard <= 3; shard++ {
			w.source.emit(shard, []string{"LEDGER_TX_COMPLETED", "TOKEN_ISSUED", "ACC_CREATED"}[i%3])
		}
	}
	for shard := 1; shard <= 3; shard++ {
		waitCursor(t, w, shard, "shop", perShard)
	}
	next := map[int]uint64{1: 1, 2: 1, 3: 1}
	for _, req := range r.got() {
		if req.sequence != next[req.shard] {
			t.Fatalf("shard %d: got %d, want %d", req.shard, req.sequence, next[req.shard])
		}
		next[req.shard]++
	}
}

// An event the filter does not match is passed (the cursor moves past it) without a request;
// the PAYMENT category works (GigaWallet dropped it).
func TestFilteredOutEventsAdvanceTheCursorWithoutAPost(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", nil)
	w.subs.set(webhook("payments", r.url, "", "PAYMENT", "inv_total_payment_confirmed"))
	w.source.emit(1, "LEDGER_TX_COMPLETED", "PAYMENT_SENT", "INV_CREATED", "INV_TOTAL_PAYMENT_CONFIRMED", "SYS_MSG", "TOKEN_ISSUED")
	startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "payments", 6)
	if ids := r.ids(); !slices.Equal(ids, []string{"1-2", "1-4"}) {
		t.Fatalf("requests %v, want the payment and the confirmation only", ids)
	}
}

// Progress over filtered-out events alone is acked lazily (once the shard is quiet), not once
// per commit, and never causes a request.
func TestFilteredOutProgressIsAckedWhenTheShardIsQuiet(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", nil)
	w.subs.set(webhook("payments", r.url, "", "PAYMENT"))
	cfg := w.config(led(1), 0)
	cfg.PollInterval = 200 * time.Millisecond
	h := startEngine(t, cfg, false)
	testutil.Eventually(t, "the delivery to start", func() bool { return len(h.engine.Deliveries()) == 1 })
	const commits = 30
	for range commits {
		w.source.emit(1, "LEDGER_TX_COMPLETED")
	}
	waitCursor(t, w, 1, "payments", commits)
	if n := len(w.journal.list()); n > 3 {
		t.Fatalf("%d acks for %d filtered-out commits: %v", n, commits, w.journal.list())
	}
	if n := len(r.got()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

// A subscription whose URL reaches this node's own listener is not delivered (a subscription
// is replicated to nodes the API that accepted it did not know about).
func TestSubscriptionToTheNodesOwnListenerIsNotDelivered(t *testing.T) {
	w := newWorld()
	own := newReceiver(t, "", nil)
	other := newReceiver(t, "", nil)
	w.subs.set(webhook("loop", own.url, "", "ALL"), webhook("ok", other.url, "", "ALL"))
	cfg := w.config(led(1), 0)
	cfg.OwnListeners = []string{strings.TrimPrefix(strings.Split(own.url, "/hook")[0], "http://")}
	h := startEngine(t, cfg, false)
	w.source.emit(1, "ACC_CREATED")
	waitCursor(t, w, 1, "ok", 1)
	if d := h.engine.Deliveries(); len(d) != 1 || d[0].Subscriber != "ok" {
		t.Fatalf("deliveries %+v", d)
	}
	if n := len(own.got()); n != 0 {
		t.Fatalf("the node posted %d events to its own listener", n)
	}
}

// Leadership lost while an event waits for its retry stops the shard's delivery promptly; the
// new leader resumes from the last applied ack: events after it arrive again with the same
// event ID, and none is lost.
func TestLeadershipLostMidRetryStopsAndTheNewLeaderResumesFromTheLastAck(t *testing.T) {
	w := newWorld()
	receiverUp := func(req received, _ int) int {
		if req.sequence >= 4 {
			return http.StatusBadGateway // down for the old leader's whole term
		}
		return http.StatusOK
	}
	r := newReceiver(t, "k", receiverUp)
	w.subs.set(webhook("shop", r.url, "k", "ALL"))
	w.source.emit(1, "ACC_CREATED", "INV_CREATED", "INV_PART_PAYMENT_DETECTED", "INV_TOTAL_PAYMENT_DETECTED")
	w.source.emit(2, "ACC_CREATED")

	// The old leader's acks above 2 never commit (it is losing its quorum).
	oldLead := led(1, 2)
	cfg := w.config(oldLead, 2)
	cfg.BatchMaxCount = 2
	old := startEngine(t, cfg, true)
	select {
	case <-old.sleeps.blocked: // event 4 failed once and waits for its retry
	case <-time.After(testutil.WaitMax):
		t.Fatal("no retry wait")
	}
	waitCursor(t, w, 2, "shop", 1) // the other shard is unaffected by shard 1's retries

	oldLead.set(2)
	lost := time.Now()
	old.engine.Refresh()
	testutil.EventuallyWithin(t, 2*time.Second, "the old leader to stop delivering shard 1", func() bool {
		for _, d := range old.engine.Deliveries() {
			if d.Shard == 1 {
				return false
			}
		}
		return true
	})
	select {
	case <-old.sleeps.unblocked: // the retry wait ended with the shard's context
	case <-time.After(2 * time.Second):
		t.Fatal("the retry wait of shard 1 went on after the leadership was lost")
	}
	t.Logf("shard 1 stopped %s after the leadership was lost", time.Since(lost))
	requestsBefore := len(r.got())
	if c := w.cursors.get(1, "shop"); c != 2 {
		t.Fatalf("replicated cursor %d, want 2 (the old leader's later acks failed)", c)
	}
	old.stop()
	if n := len(r.got()); n != requestsBefore {
		t.Fatalf("the old leader sent %d requests after it stopped", n-requestsBefore)
	}

	r.setRespond(nil)
	startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "shop", 4)

	seen := map[string]int{}
	for _, req := range r.got() {
		if !strings.Contains(string(req.body), `"event_id":"`+req.eventID+`"`) {
			t.Fatalf("request %q", req.body)
		}
		seen[req.eventID]++
	}
	for _, id := range []string{"1-1", "1-2", "1-3", "1-4", "2-1"} {
		if seen[id] == 0 {
			t.Fatalf("event %s lost: %v", id, seen)
		}
	}
	if seen["1-3"] != 2 || seen["1-1"] != 1 {
		t.Fatalf("requests per event %v: 1-3 (delivered, ack lost) again, 1-1 (acked) once", seen)
	}
}

// A receiver that hangs holds only its own subscriber: another subscriber of the same shard
// receives every event meanwhile.
func TestSlowReceiverDoesNotDelayAnotherSubscriber(t *testing.T) {
	w := newWorld()
	hang := make(chan struct{})
	slow := newReceiver(t, "", func(received, int) int { <-hang; return 200 })
	t.Cleanup(func() { close(hang) }) // before the server's Close, which waits for handlers
	fast := newReceiver(t, "", nil)
	w.subs.set(webhook("slow", slow.url, "", "ALL"), webhook("fast", fast.url, "", "ALL"))
	h := startEngine(t, w.config(led(1), 0), false)
	w.source.emit(1, "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED")
	waitCursor(t, w, 1, "fast", 5)
	if n := len(fast.got()); n != 5 {
		t.Fatalf("fast receiver got %d", n)
	}
	testutil.Eventually(t, "the slow receiver to hold event 1", func() bool { return len(slow.got()) == 1 })
	if c := w.cursors.get(1, "slow"); c != 0 {
		t.Fatalf("slow subscriber's cursor %d", c)
	}
	slowLabels := map[string]string{"shard": "1", "subscriber": "slow"}
	testutil.Eventually(t, "the slow subscriber's lag to show", func() bool {
		return h.metric(t, "gigaledger_relay_lag_events", slowLabels) == 5 && h.metric(t, "gigaledger_relay_lag_seconds", slowLabels) > 0
	})
}

// A receiver nobody listens for (connection refused) is a failed attempt like any other: each
// event is dead-lettered after the budget, and the cursor moves on.
func TestUnreachableReceiverDeadLettersEveryEvent(t *testing.T) {
	w := newWorld()
	w.subs.set(webhook("gone", "http://"+testutil.FreeAddr(t)+"/hook", "k", "ALL"))
	w.source.emit(1, "ACC_CREATED", "INV_CREATED")
	startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "gone", 2)
	letters := w.dead.list()
	if len(letters) != 2 || letters[0].eventID != "1-1" || letters[1].eventID != "1-2" {
		t.Fatalf("dead letters %+v", letters)
	}
	if !strings.Contains(letters[0].reason, "4 attempts") || strings.Contains(letters[0].reason, "/hook") {
		t.Fatalf("reason %q", letters[0].reason)
	}
}

// Subscriptions change at runtime: a deleted subscriber stops, a new one starts, without a
// restart of the engine.
func TestSubscribersAddedAndDeletedAtRuntime(t *testing.T) {
	w := newWorld()
	a, b := newReceiver(t, "", nil), newReceiver(t, "", nil)
	w.subs.set(webhook("a", a.url, "", "ALL"))
	h := startEngine(t, w.config(led(1), 0), false)
	w.source.emit(1, "ACC_CREATED")
	waitCursor(t, w, 1, "a", 1)

	w.subs.set(webhook("b", b.url, "", "ALL"))
	h.engine.Refresh()
	testutil.Eventually(t, "only b delivering", func() bool {
		d := h.engine.Deliveries()
		return len(d) == 1 && d[0].Subscriber == "b"
	})
	w.source.emit(1, "ACC_CREATED")
	waitCursor(t, w, 1, "b", 2)
	if ids := a.ids(); !slices.Equal(ids, []string{"1-1"}) {
		t.Fatalf("deleted subscriber got %v", ids)
	}
	if ids := b.ids(); !slices.Equal(ids, []string{"1-1", "1-2"}) {
		t.Fatalf("new subscriber got %v (it starts from its cursor, 0)", ids)
	}
}

// A changed subscription restarts its deliveries with the new settings: the request hanging
// at the old URL is cancelled and the event goes to the new one. A name listed twice is
// delivered to neither.
func TestChangedSubscriptionRestartsItsDeliveries(t *testing.T) {
	w := newWorld()
	hang := make(chan struct{})
	old := newReceiver(t, "", func(received, int) int { <-hang; return 200 })
	t.Cleanup(func() { close(hang) })
	moved := newReceiver(t, "new-secret", nil)
	w.subs.set(webhook("shop", old.url, "", "ALL"))
	h := startEngine(t, w.config(led(1), 0), false)
	w.source.emit(1, "INV_CREATED")
	testutil.Eventually(t, "the old URL to hold the event", func() bool { return len(old.got()) == 1 })

	w.subs.set(webhook("shop", moved.url, "new-secret", "ALL"))
	h.engine.Refresh()
	waitCursor(t, w, 1, "shop", 1)
	if ids := moved.ids(); !slices.Equal(ids, []string{"1-1"}) {
		t.Fatalf("new URL got %v", ids)
	}

	w.subs.set(webhook("shop", moved.url, "new-secret", "ALL"), webhook("shop", old.url, "", "ALL"))
	h.engine.Refresh()
	testutil.Eventually(t, "no delivery for an ambiguous name", func() bool { return len(h.engine.Deliveries()) == 0 })
}

// Events trimmed by retention before a subscriber got them are reported (metric and log), and
// delivery continues from the oldest kept.
func TestLossByRetentionIsReported(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", nil)
	w.subs.set(webhook("late", r.url, "", "ALL"))
	w.source.emit(1, "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED")
	w.cursors.set(1, "late", 1)
	w.source.trim(1, 5)
	h := startEngine(t, w.config(led(1), 0), false)
	waitCursor(t, w, 1, "late", 6)
	if ids := r.ids(); !slices.Equal(ids, []string{"1-5", "1-6"}) {
		t.Fatalf("requests %v", ids)
	}
	if v := h.metric(t, "gigaledger_relay_lost_events_total", map[string]string{"shard": "1", "subscriber": "late"}); v != 3 {
		t.Fatalf("lost %v, want 3 (events 2, 3, 4)", v)
	}
}

// A caught-up delivery waits for Notify, not the poll interval: with a poll of a minute, an
// event emitted (and notified) later still arrives at once. The lag gauges fall to 0.
func TestNotifyWakesACaughtUpDelivery(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", nil)
	w.subs.set(webhook("shop", r.url, "", "ALL"))
	cfg := w.config(led(1), 0)
	cfg.PollInterval = time.Minute
	h := startEngine(t, cfg, false)
	testutil.Eventually(t, "the delivery to start", func() bool { return len(h.engine.Deliveries()) == 1 })
	for i := range 3 {
		w.source.emit(1, "ACC_CREATED") // notifies
		waitCursor(t, w, 1, "shop", uint64(i+1))
	}
	labels := map[string]string{"shard": "1", "subscriber": "shop"}
	testutil.Eventually(t, "no lag", func() bool {
		return h.metric(t, "gigaledger_relay_lag_events", labels) == 0 && h.metric(t, "gigaledger_relay_lag_seconds", labels) == 0
	})
}

// blockingAcks holds every ack until release is closed, telling acking (without blocking)
// which sequence waits.
type blockingAcks struct {
	Cursors
	acking  chan uint64
	release chan struct{}
}

func (b *blockingAcks) Ack(ctx context.Context, shard int, subscriber string, sequence uint64) error {
	select {
	case b.acking <- sequence:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Cursors.Ack(ctx, shard, subscriber, sequence)
}

// While a delivery that is behind acks a full batch, its lag in seconds stays above 0: the
// events past the batch are not fetched yet, but they are pending.
func TestLagInSecondsStaysVisibleWhileAFullBatchIsAcked(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "", nil)
	w.subs.set(webhook("shop", r.url, "", "ALL"))
	w.source.emit(1, "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED", "ACC_CREATED")
	cfg := w.config(led(1), 0)
	cfg.BatchMaxCount = 2
	acks := &blockingAcks{Cursors: cfg.Cursors, acking: make(chan uint64, 16), release: make(chan struct{})}
	cfg.Cursors = acks
	h := startEngine(t, cfg, false)
	select {
	case sequence := <-acks.acking:
		if sequence != 2 {
			t.Fatalf("first ack of %d, want 2 (the first batch)", sequence)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ack of the first batch")
	}
	labels := map[string]string{"shard": "1", "subscriber": "shop"}
	if events, seconds := h.metric(t, "gigaledger_relay_lag_events", labels), h.metric(t, "gigaledger_relay_lag_seconds", labels); events != 3 || seconds <= 0 {
		t.Fatalf("while acking the first batch: lag %v events, %v s; want 3 and above 0", events, seconds)
	}
	close(acks.release)
	waitCursor(t, w, 1, "shop", 5)
	testutil.Eventually(t, "no lag", func() bool {
		return h.metric(t, "gigaledger_relay_lag_events", labels) == 0 && h.metric(t, "gigaledger_relay_lag_seconds", labels) == 0
	})
}

func TestBackoffCeilingDoublesUpToTheCap(t *testing.T) {
	policy := RetryPolicy{AttemptMaxCount: 8, BackoffBase: time.Second, BackoffMax: 5 * time.Minute}
	var got []time.Duration
	for n := 1; n <= 10; n++ {
		got = append(got, backoffCeiling(policy, n))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ceilings %v", got)
	}
	huge := RetryPolicy{AttemptMaxCount: 1, BackoffBase: time.Hour, BackoffMax: 1<<63 - 1}
	if c := backoffCeiling(huge, 100); c <= 0 {
		t.Fatalf("overflowed to %v", c)
	}
}

func TestNewRefusesAnIncompleteOrOutOfRangeConfig(t *testing.T) {
	w := newWorld()
	if _, err := New(Config{}); err == nil {
		t.Fatal("an empty config was accepted")
	}
	cfg := w.config(led(), 0)
	cfg.BatchMaxCount = BatchMaxCountLimit + 1
	if _, err := New(cfg); err == nil {
		t.Fatal("a batch over the limit was accepted")
	}
	cfg = w.config(led(), 0)
	cfg.Retry = RetryPolicy{AttemptMaxCount: 3, BackoffBase: time.Minute, BackoffMax: time.Second}
	if _, err := New(cfg); err == nil {
		t.Fatal("a cap below the base was accepted")
	}
}

// Marked dead letters are delivered again, out of sequence order, each within the retry
// budget, and each outcome is recorded: delivered, or not with the reason. The cursor does not
// move back, so nothing else is delivered again.
func TestMarkedDeadLettersAreDeliveredAgain(t *testing.T) {
	w := newWorld()
	r := newReceiver(t, "k", func(req received, _ int) int {
		if req.sequence == 1 {
			return http.StatusInternalServerError // never accepted
		}
		return http.StatusOK
	})
	w.subs.set(webhook("shop", r.url, "k", "ALL"))
	w.source.emit(1, "INV_CREATED", "INV_CREATED", "ACC_CREATED")
	w.cursors.set(1, "shop", 3) // delivered, with 1 and 2 dead-lettered
	marks := newRedrives(w.journal)
	marks.mark(1, "shop", 1, 2)
	cfg := w.config(led(1), 0)
	cfg.Redrives = marks
	startEngine(t, cfg, false)
	testutil.Eventually(t, "both outcomes recorded", func() bool { return len(marks.recorded()) == 2 })

	outcomes := marks.recorded()
	if !strings.HasPrefix(outcomes[0], "1/shop 1 delivered=false not delivered in 4 attempts") ||
		outcomes[1] != "1/shop 2 delivered=true " {
		t.Fatalf("outcomes %q", outcomes)
	}
	if ids := r.ids(); !slices.Equal(ids, []string{"1-1", "1-1", "1-1", "1-1", "1-2"}) {
		t.Fatalf("requests %v", ids)
	}
	w.source.emit(1, "ACC_CREATED")
	waitCursor(t, w, 1, "shop", 4)
	if ids := r.ids(); ids[len(ids)-1] != "1-4" || len(ids) != 6 {
		t.Fatalf("requests after a new event %v", ids)
	}
}
