package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/prometheus/client_golang/prometheus"
)

// outbox is a fake Source: rendered events per shard, with a retention that trims the oldest.
type outbox struct {
	mu     sync.Mutex
	events map[int][]Envelope // kept events per shard, oldest first
	last   map[int]uint64
	engine *Engine // notified after each emit, when set
}

func newOutbox() *outbox { return &outbox{events: map[int][]Envelope{}, last: map[int]uint64{}} }

// emit appends events of the given types to shard and returns their sequences.
func (o *outbox) emit(shard int, types ...string) []uint64 {
	o.mu.Lock()
	var sequences []uint64
	for _, eventType := range types {
		o.last[shard]++
		sequence := o.last[shard]
		id := fmt.Sprintf("%d-%d", shard, sequence)
		body, _ := json.Marshal(map[string]any{"event_type": eventType, "event_id": id, "shard": shard, "sequence": sequence})
		o.events[shard] = append(o.events[shard], Envelope{Shard: shard, Sequence: sequence, EventID: id, Type: eventType,
			Time: time.Now(), Body: body})
		sequences = append(sequences, sequence)
	}
	engine := o.engine
	o.mu.Unlock()
	if engine != nil {
		engine.Notify(shard)
	}
	return sequences
}

// trim drops the events of shard below oldest, as retention does.
func (o *outbox) trim(shard int, oldest uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events[shard] = slices.DeleteFunc(o.events[shard], func(e Envelope) bool { return e.Sequence < oldest })
}

func (o *outbox) Events(_ context.Context, shard int, after uint64, limit int) ([]Envelope, uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var batch []Envelope
	var oldest uint64
	for _, e := range o.events[shard] {
		if oldest == 0 {
			oldest = e.Sequence
		}
		if e.Sequence > after && len(batch) < limit {
			batch = append(batch, e)
		}
	}
	return batch, oldest, nil
}

func (o *outbox) Newest(shard int) (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[shard], nil
}

// journal records, in order, the acks and dead letters of every engine in a test, so a test
// can check that no ack passes an event before its dead letter is recorded.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// cursors is a fake of the replicated cursors, shared by the engines of a test as the FSM is
// shared by the nodes.
type cursors struct {
	mu      sync.Mutex
	values  map[workerKey]uint64
	journal *journal
}

func newCursors(j *journal) *cursors { return &cursors{values: map[workerKey]uint64{}, journal: j} }

func (c *cursors) get(shard int, subscriber string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[workerKey{shard, subscriber}]
}

func (c *cursors) set(shard int, subscriber string, sequence uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[workerKey{shard, subscriber}] = sequence
}

// node is one node's view of the cursors: acks above refuseAbove fail, as a leader's do once
// it can no longer commit.
func (c *cursors) node(refuseAbove uint64) Cursors { return &nodeCursors{c, refuseAbove} }

type nodeCursors struct {
	*cursors
	refuseAbove uint64
}

func (c *nodeCursors) Cursor(shard int, subscriber string) (uint64, error) {
	return c.get(shard, subscriber), nil
}

func (c *nodeCursors) Ack(_ context.Context, shard int, subscriber string, sequence uint64) error {
	if c.refuseAbove != 0 && sequence > c.refuseAbove {
		return errors.New("not leader")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := workerKey{shard, subscriber}
	c.values[k] = max(c.values[k], sequence)
	c.journal.add("ack %d/%s %d", shard, subscriber, sequence)
	return nil
}

type deadLetter struct {
	shard      int
	subscriber string
	eventID    string
	reason     string
}

type deadLetters struct {
	mu      sync.Mutex
	letters []deadLetter
	journal *journal
}

func (d *deadLetters) Add(_ context.Context, shard int, subscriber string, env Envelope, reason string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.letters = append(d.letters, deadLetter{shard, subscriber, env.EventID, reason})
	d.journal.add("dead %d/%s %d", shard, subscriber, env.Sequence)
	return nil
}

func (d *deadLetters) list() []deadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.letters)
}

// leadership is a settable Leadership.
type leadership struct {
	mu     sync.Mutex
	shards []int
}

func (l *leadership) LedShards() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.shards)
}

func (l *leadership) set(shards ...int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shards = shards
}

// subscriptions is a settable Subscriptions.
type subscriptions struct {
	mu   sync.Mutex
	list []Subscription
}

func (s *subscriptions) Subscriptions() ([]Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list), nil
}

func (s *subscriptions) set(list ...Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = list
}

// received is one request a receiver got.
type received struct {
	eventID  string
	shard    int
	sequence uint64
	body     []byte
}

// receiver is a webhook endpoint on loopback that verifies every request like a GigaWallet
// integrator does and answers with respond (200 when nil).
type receiver struct {
	t      *testing.T
	url    string
	secret string

	mu       sync.Mutex
	requests []received
	problems []string
	respond  func(r received, attempt int) int // attempt counts requests for the same event ID
}

func newReceiver(t *testing.T, secret string, respond func(r received, attempt int) int) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret, respond: respond}
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)
	r.url = server.URL + "/hook?token=x"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var envelope struct {
		EventID  string `json:"event_id"`
		Shard    int    `json:"shard"`
		Sequence uint64 `json:"sequence"`
	}
	if err == nil {
		err = json.Unmarshal(body, &envelope)
	}
	got := received{eventID: envelope.EventID, shard: envelope.Shard, sequence: envelope.Sequence, body: body}
	r.mu.Lock()
	switch {
	case err != nil:
		r.problems = append(r.problems, fmt.Sprintf("body %q: %v", body, err))
	case req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json":
		r.problems = append(r.problems, fmt.Sprintf("%s with content type %q", req.Method, req.Header.Get("Content-Type")))
	case req.Header.Get(HeaderEventID) != envelope.EventID:
		r.problems = append(r.problems, "event ID header differs from the body's")
	}
	if r.secret != "" {
		if err := verifyIndependently(r.secret, req.Header, body); err != nil {
			r.problems = append(r.problems, fmt.Sprintf("event %s: %v", envelope.EventID, err))
		}
	}
	attempt := 1
	for _, earlier := range r.requests {
		if earlier.eventID == envelope.EventID {
			attempt++
		}
	}
	r.requests = append(r.requests, got)
	respond := r.respond
	r.mu.Unlock()
	status := http.StatusOK
	if respond != nil {
		status = respond(got, attempt)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte("a response body the sender drains"))
}

func (r *receiver) setRespond(respond func(received, int) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = respond
}

// got returns the requests received so far and fails the test on any request that did not
// verify.
func (r *receiver) got() []received {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		r.t.Fatalf("receiver: %v", r.problems)
	}
	return slices.Clone(r.requests)
}

// ids returns the event IDs of every request received, in order (failed attempts included).
func (r *receiver) ids() []string {
	var ids []string
	for _, req := range r.got() {
		ids = append(ids, req.eventID)
	}
	return ids
}

// harness is an engine with fakes around it, as one node sees them.
type harness struct {
	engine   *Engine
	registry *prometheus.Registry
	sleeps   *sleepLog
	stop     context.CancelFunc
	stopped  chan struct{}
}

// sleepLog is an injected Sleep that returns at once (recording the waits), or, when block is
// set, waits until its context ends, telling blocked.
type sleepLog struct {
	mu        sync.Mutex
	waits     []time.Duration
	block     bool
	blocked   chan struct{} // receives once per blocked sleep
	unblocked chan struct{} // receives once per blocked sleep that returned
}

func (s *sleepLog) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	block := s.block
	s.mu.Unlock()
	if block {
		s.blocked <- struct{}{}
		<-ctx.Done()
		s.unblocked <- struct{}{}
	}
	return ctx.Err()
}

func (s *sleepLog) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// startEngine starts an engine with cfg's required fields filled in by the caller; it stops
// when the test ends (or at h.stop).
func startEngine(t *testing.T, cfg Config, block bool) *harness {
	t.Helper()
	h := &harness{registry: prometheus.NewRegistry(), sleeps: &sleepLog{block: block, blocked: make(chan struct{}, 16), unblocked: make(chan struct{}, 16)},
		stopped: make(chan struct{})}
	cfg.Metrics = NewMetrics(h.registry)
	cfg.Logger = testutil.Logger(t)
	if cfg.Sleep == nil {
		cfg.Sleep = h.sleeps.sleep // a test that needs real waits (a broker restarting) sets its own
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(ceiling time.Duration) time.Duration { return ceiling }
	}
	cfg.ReconcileInterval = cmpOr(cfg.ReconcileInterval, 20*time.Millisecond)
	engine, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = engine
	if source, ok := cfg.Source.(*outbox); ok {
		source.mu.Lock()
		source.engine = engine
		source.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = func() {
		cancel()
		<-h.stopped
	}
	go func() {
		defer close(h.stopped)
		engine.Run(ctx)
	}()
	t.Cleanup(h.stop)
	return h
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// metric returns the value of the series name with the given labels (0 when absent).
func (h *harness) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func webhook(name, url, secret string, types ...string) Subscription {
	filter, err := ParseFilter(types)
	if err != nil {
		panic(err)
	}
	return Subscription{Name: name, Kind: KindWebhook, URL: url, Secret: secret, Filter: filter}
}

// redrives is a fake of the replicated re-drive marks: marked sequences per (shard,
// subscriber), and the outcomes recorded.
type redrives struct {
	mu       sync.Mutex
	marks    map[workerKey][]uint64
	outcomes []string
	journal  *journal
}

func newRedrives(j *journal) *redrives { return &redrives{marks: map[workerKey][]uint64{}, journal: j} }

func (r *redrives) mark(shard int, subscriber string, sequences ...uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := workerKey{shard, subscriber}
	r.marks[k] = append(r.marks[k], sequences...)
}

func (r *redrives) Redrives(shard int, subscriber string, limit int) ([]uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	marks := r.marks[workerKey{shard, subscriber}]
	return slices.Clone(marks[:min(limit, len(marks))]), nil
}

func (r *redrives) Redriven(_ context.Context, shard int, subscriber string, sequence uint64, delivered bool, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := workerKey{shard, subscriber}
	if !slices.Contains(r.marks[k], sequence) {
		return nil
	}
	r.marks[k] = slices.DeleteFunc(r.marks[k], func(s uint64) bool { return s == sequence })
	r.outcomes = append(r.outcomes, fmt.Sprintf("%d/%s %d delivered=%v %s", shard, subscriber, sequence, delivered, reason))
	r.journal.add("redriven %d/%s %d", shard, subscriber, sequence)
	return nil
}

func (r *redrives) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.outcomes)
}
