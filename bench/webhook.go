package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gigaledger/gigaledger/client"
)

// The --webhook measurement (issue 11's speed figure): a webhook receiver on loopback inside
// the bench process, subscribed to every event after setup, counts what the relay delivers
// while the scenario runs and after it stops, until every event of the run arrived (the drain)
// or --webhook-drain passed. Each acknowledged transaction commits exactly one LEDGER_TX_*
// event, so the run's OK and business answers are the events the receiver must get.

// Webhook measurement limits.
const (
	// webhookBodyMaxBytes bounds one delivered request body; an envelope is a few KiB.
	webhookBodyMaxBytes = 1 << 20
	// webhookEventsMaxCount bounds the event IDs remembered for duplicate detection; events
	// beyond it are counted as received but not deduplicated (reported as overflow).
	webhookEventsMaxCount = 10_000_000
	// webhookDrainDefault and webhookDrainMax bound the wait for the drain after the load.
	webhookDrainDefault = time.Minute
	webhookDrainMax     = 10 * time.Minute
	// webhookProbeTimeout bounds the wait for the probe event, which shows that the relay
	// delivers to the new subscription before the measured phase starts.
	webhookProbeTimeout = 30 * time.Second
	// webhookPortFirst..webhookPortLast is where the receiver listens: below the ephemeral
	// range (32768..), so that it never collides with outbound connections.
	webhookPortFirst       = 20000
	webhookPortLast        = 32767
	webhookListenAttempts  = 100
	webhookSecretBytes     = 32
	webhookRequestTimeout  = 10 * time.Second
	webhookLagMinMicros    = 1
	webhookSubscriptionPre = "bench-webhook-"
)

// Webhook signature headers, GigaWallet's scheme (its contract §6.4, which the relay keeps):
// X-Giga-Signature is "sha256=" + hex(HMAC-SHA256(secret, X-Giga-Timestamp + "." + body)).
// Checked here from the scheme, as an integrator's receiver does, not with the relay's code.
const (
	headerWebhookTimestamp = "X-Giga-Timestamp"
	headerWebhookSignature = "X-Giga-Signature"
)

// verifyWebhookSignature checks a delivery's signature headers against secret.
func verifyWebhookSignature(secret string, header http.Header, body []byte) error {
	timestamp := header.Get(headerWebhookTimestamp)
	if _, err := strconv.ParseInt(timestamp, 10, 64); err != nil {
		return fmt.Errorf("%s %q: want Unix seconds", headerWebhookTimestamp, timestamp)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(header.Get(headerWebhookSignature)), []byte(want)) {
		return fmt.Errorf("%s does not match", headerWebhookSignature)
	}
	return nil
}

// WebhookResult is what the receiver saw, in Result.Webhook.
type WebhookResult struct {
	URL          string `json:"url"`
	Subscription string `json:"subscription"`
	// Expected is the number of events the measured phase committed: its OK and business
	// answers (each transaction, completed or failed, commits one LEDGER_TX_* event).
	Expected int64 `json:"expected"`
	// Unknown counts requests without a clear answer (errors, transport): each may or may not
	// have committed an event, so Received may exceed Expected by up to Unknown.
	Unknown int64 `json:"unknown"`
	// Received counts distinct events (by event_id) of the measured phase.
	Received int64 `json:"received"`
	// Duplicates counts deliveries of an event_id already received.
	Duplicates int64 `json:"duplicates"`
	// Rejected counts requests with a bad signature or body (answered 4xx, so the relay
	// retries them; none should happen).
	Rejected int64 `json:"rejected"`
	// Holes counts sequences missing between the first and last received event of a shard.
	Holes int64 `json:"holes"`
	// Connections counts the connections the relay opened to the receiver after the probe,
	// during the load and the drain: 0 when it keeps reusing one (HTTP keep-alive).
	Connections int64 `json:"connections"`
	// Overflow counts events received after webhookEventsMaxCount IDs were remembered.
	Overflow int64 `json:"overflow,omitempty"`
	// DuringLoad counts distinct events received while the load ran; DuringLoadPerSecond
	// divides them by the measured phase's length.
	DuringLoad          int64   `json:"duringLoad"`
	DuringLoadPerSecond float64 `json:"duringLoadPerSecond"`
	// OverallPerSecond is Received over the time from the load's start to the last arrival.
	OverallPerSecond float64 `json:"overallPerSecond"`
	// Drained says every expected event arrived within the drain limit; DrainSeconds is the
	// time from the end of the load to the last arrival (to the limit when not drained).
	Drained      bool    `json:"drained"`
	DrainSeconds float64 `json:"drainSeconds"`
	// Lag is receive time − created_at (the commit's batch time, millisecond resolution) over
	// every first delivery of the measured phase.
	Lag Latency `json:"lag"`
	// Types counts distinct events by event_type.
	Types map[string]int64 `json:"types"`
}

// webhookEnvelope is the part of a delivered envelope the receiver checks.
type webhookEnvelope struct {
	EventType string          `json:"event_type"`
	Message   json.RawMessage `json:"message"`
	EventID   string          `json:"event_id"`
	Shard     int             `json:"shard"`
	Sequence  uint64          `json:"sequence"`
	CreatedAt string          `json:"created_at"`
}

// shardRange is the lowest and highest sequence received of a shard.
type shardRange struct{ first, last uint64 }

// webhookReceiver is the loopback receiver: it verifies each request's HMAC and envelope and
// aggregates what arrives. Its handler runs concurrently; the counters are under mu.
type webhookReceiver struct {
	secret string
	now    func() time.Time
	// arrived is signalled (without blocking) after every accepted request, so waits wake up.
	arrived chan struct{}
	// connections counts connections accepted since the last reset (Server.ConnState).
	connections atomic.Int64

	mu         sync.Mutex
	seen       map[string]struct{}
	shards     map[int]*shardRange
	types      map[string]int64
	lag        *hdrhistogram.Histogram
	received   int64
	duplicates int64
	rejected   int64
	overflow   int64
	// loadStart and loadEnd delimit the measured phase (zero: not started or not ended).
	loadStart, loadEnd time.Time
	duringLoad         int64
	lastArrival        time.Time
}

func newWebhookReceiver(secret string, now func() time.Time) *webhookReceiver {
	r := &webhookReceiver{secret: secret, now: now, arrived: make(chan struct{}, 1)}
	r.reset(time.Time{})
	return r
}

// reset forgets what arrived before loadStart (the probe), except the IDs already seen: a
// late duplicate of the probe is still a duplicate.
func (r *webhookReceiver) reset(loadStart time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]struct{}{}
	}
	r.shards = map[int]*shardRange{}
	r.types = map[string]int64{}
	r.lag = hdrhistogram.New(webhookLagMinMicros, latencyMaxMicros, latencySignificantDigits)
	r.received, r.duplicates, r.rejected, r.overflow, r.duringLoad = 0, 0, 0, 0, 0
	r.loadStart, r.loadEnd, r.lastArrival = loadStart, time.Time{}, time.Time{}
	r.connections.Store(0)
}

// connState counts new connections (http.Server.ConnState).
func (r *webhookReceiver) connState(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		r.connections.Add(1)
	}
}

func (r *webhookReceiver) endLoad(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loadEnd = at
}

// ServeHTTP accepts one delivery: 204 when it verifies, 4xx otherwise (the relay retries).
func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, request *http.Request) {
	receivedAt := r.now()
	body, err := io.ReadAll(http.MaxBytesReader(w, request.Body, webhookBodyMaxBytes))
	if err != nil || request.Method != http.MethodPost {
		r.reject()
		http.Error(w, "want a POST of at most 1 MiB", http.StatusBadRequest)
		return
	}
	if err := verifyWebhookSignature(r.secret, request.Header, body); err != nil {
		r.reject()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	envelope, createdAt, err := decodeWebhookEnvelope(body)
	if err != nil {
		r.reject()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.record(envelope, createdAt, receivedAt)
	w.WriteHeader(http.StatusNoContent)
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// decodeWebhookEnvelope decodes a body strictly: one object with exactly the envelope's keys.
func decodeWebhookEnvelope(body []byte) (webhookEnvelope, time.Time, error) {
	var envelope webhookEnvelope
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&envelope); err != nil {
		return envelope, time.Time{}, fmt.Errorf("envelope: %w", err)
	}
	if decoder.More() {
		return envelope, time.Time{}, errors.New("envelope: trailing data")
	}
	if envelope.EventID == "" || envelope.EventType == "" || envelope.Sequence == 0 {
		return envelope, time.Time{}, errors.New("envelope: event_id, event_type and sequence are required")
	}
	createdAt, err := time.Parse(time.RFC3339Nano, envelope.CreatedAt)
	if err != nil {
		return envelope, time.Time{}, fmt.Errorf("envelope: created_at: %w", err)
	}
	return envelope, createdAt, nil
}

func (r *webhookReceiver) reject() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected++
}

// record counts one verified delivery received at receivedAt.
func (r *webhookReceiver) record(envelope webhookEnvelope, createdAt, receivedAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[envelope.EventID]; ok {
		r.duplicates++
		return
	}
	if len(r.seen) < webhookEventsMaxCount {
		r.seen[envelope.EventID] = struct{}{}
	} else {
		r.overflow++
	}
	r.received++
	r.types[envelope.EventType]++
	if span := r.shards[envelope.Shard]; span == nil {
		r.shards[envelope.Shard] = &shardRange{first: envelope.Sequence, last: envelope.Sequence}
	} else {
		span.first, span.last = min(span.first, envelope.Sequence), max(span.last, envelope.Sequence)
	}
	micros := min(max(receivedAt.Sub(createdAt).Microseconds(), webhookLagMinMicros), latencyMaxMicros)
	_ = r.lag.RecordValue(micros) // in range by construction
	if r.loadEnd.IsZero() {
		r.duringLoad++
	}
	r.lastArrival = receivedAt
}

// count returns the distinct events received since the last reset.
func (r *webhookReceiver) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// waitFor waits until at least want distinct events arrived since the last reset, or until
// ctx ends; it reports whether they did.
func (r *webhookReceiver) waitFor(ctx context.Context, want int64) bool {
	for {
		if r.count() >= want {
			return true
		}
		select {
		case <-r.arrived:
		case <-ctx.Done():
			return r.count() >= want
		}
	}
}

// result summarises the measured phase: expected events (OK + business answers), unknown
// outcomes, and whether the drain completed.
func (r *webhookReceiver) result(expected, unknown int64, drained bool, drainLimit time.Time) WebhookResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := WebhookResult{Expected: expected, Unknown: unknown, Received: r.received, Duplicates: r.duplicates,
		Rejected: r.rejected, Connections: r.connections.Load(), Overflow: r.overflow, DuringLoad: r.duringLoad, Drained: drained,
		Lag: latencyOf(r.lag), Types: make(map[string]int64, len(r.types))}
	for eventType, count := range r.types {
		out.Types[eventType] = count
	}
	// Every distinct event received lies in its shard's range: the rest of the ranges' width
	// was never received.
	var width int64
	for _, span := range r.shards {
		width += int64(span.last - span.first + 1)
	}
	out.Holes = max(width-r.received, 0)
	if !r.loadStart.IsZero() && !r.loadEnd.IsZero() {
		if seconds := r.loadEnd.Sub(r.loadStart).Seconds(); seconds > 0 {
			out.DuringLoadPerSecond = float64(r.duringLoad) / seconds
		}
		end := r.lastArrival
		if !drained {
			end = drainLimit
		}
		if end.After(r.loadEnd) {
			out.DrainSeconds = end.Sub(r.loadEnd).Seconds()
		}
		if r.received > 0 && r.lastArrival.After(r.loadStart) {
			out.OverallPerSecond = float64(r.received) / r.lastArrival.Sub(r.loadStart).Seconds()
		}
	}
	return out
}

// listenLoopbackLow listens on 127.0.0.1 at a free port in webhookPortFirst..webhookPortLast
// (port 0 would pick one in the ephemeral range).
func listenLoopbackLow() (net.Listener, error) {
	var lastErr error
	for range webhookListenAttempts {
		port := webhookPortFirst + mathrand.IntN(webhookPortLast-webhookPortFirst+1)
		listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			return listener, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free loopback port in %d..%d after %d attempts: %w", webhookPortFirst, webhookPortLast,
		webhookListenAttempts, lastErr)
}

// subscriptionsAPI is the part of the API the measurement uses (*client.Client).
type subscriptionsAPI interface {
	CreateSubscription(ctx context.Context, in client.CreateSubscriptionRequest) (*client.Subscription, error)
	DeleteSubscription(ctx context.Context, name string) error
}

// webhookMeasure implements MeasureHooks for --webhook: it owns the receiver's server and the
// subscription, both removed by Close.
type webhookMeasure struct {
	api        subscriptionsAPI
	drainLimit time.Duration
	receiver   *webhookReceiver
	server     *http.Server
	served     chan struct{}
	url        string
	name       string
	subscribed bool
}

// newWebhookMeasure starts the receiver on loopback; Close stops it.
func newWebhookMeasure(api subscriptionsAPI, drainLimit time.Duration) (*webhookMeasure, error) {
	secretBytes := make([]byte, webhookSecretBytes)
	_, _ = cryptorand.Read(secretBytes) // crypto/rand.Read never fails
	listener, err := listenLoopbackLow()
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	m := &webhookMeasure{api: api, drainLimit: drainLimit, served: make(chan struct{}),
		receiver: newWebhookReceiver(hex.EncodeToString(secretBytes), time.Now),
		url:      "http://" + listener.Addr().String() + "/webhook"}
	m.server = &http.Server{Handler: m.receiver, ReadHeaderTimeout: webhookRequestTimeout, ReadTimeout: webhookRequestTimeout,
		WriteTimeout: webhookRequestTimeout, IdleTimeout: 2 * time.Minute, ConnState: m.receiver.connState}
	go func() {
		defer close(m.served)
		_ = m.server.Serve(listener) // ends with http.ErrServerClosed on Close
	}()
	return m, nil
}

// BeforeMeasure implements MeasureHooks: subscribe the receiver to every event from now on,
// commit one probe transaction and wait until its event arrives, so the measured phase starts
// with the relay already delivering (its pick-up of a new subscription is not charged as lag).
func (m *webhookMeasure) BeforeMeasure(ctx context.Context, driver Driver, config RunConfig) error {
	m.name = webhookSubscriptionPre + config.Scenario.RunID
	_, err := m.api.CreateSubscription(ctx, client.CreateSubscriptionRequest{Name: m.name, URL: m.url,
		Secret: m.receiver.secret, Types: []string{"ALL"}, From: "now"})
	if err != nil {
		return fmt.Errorf("webhook: subscribe %s: %w", m.url, err)
	}
	m.subscribed = true
	probe := Request{Kind: RequestTransaction, ReferenceID: "webhook-probe-" + config.Scenario.RunID,
		Operations: []Operation{{Type: OperationIssue, ToWallet: 0, Amount: 1}}}
	if outcome := driver.Do(ctx, &probe); outcome.Class != OutcomeOK {
		return fmt.Errorf("webhook: probe transaction: %s", outcome.Kind)
	}
	probeCtx, cancel := context.WithTimeout(ctx, webhookProbeTimeout)
	defer cancel()
	if !m.receiver.waitFor(probeCtx, 1) {
		return fmt.Errorf("webhook: the probe event did not arrive within %s (is the relay running? see the node's log)", webhookProbeTimeout)
	}
	m.receiver.reset(time.Now())
	return nil
}

// MeasureStarted implements MeasureHooks.
func (m *webhookMeasure) MeasureStarted(at time.Time) { m.receiver.reset(at) }

// AfterMeasure implements MeasureHooks: wait for the drain (bounded by the drain limit) and
// add the receiver's figures to result.
func (m *webhookMeasure) AfterMeasure(ctx context.Context, result *Result, loadEnd time.Time) error {
	m.receiver.endLoad(loadEnd)
	expected := result.OK + result.Business
	drainDeadline := loadEnd.Add(m.drainLimit)
	drainCtx, cancel := context.WithDeadline(ctx, drainDeadline)
	defer cancel()
	drained := m.receiver.waitFor(drainCtx, expected)
	webhook := m.receiver.result(expected, result.Errors+result.Transport, drained, drainDeadline)
	webhook.URL, webhook.Subscription = m.url, m.name
	result.Webhook = &webhook
	return ctx.Err()
}

// Close deletes the subscription (so the relay does not retry into a closed port later) and
// stops the receiver.
func (m *webhookMeasure) Close() error {
	var err error
	if m.subscribed {
		ctx, cancel := context.WithTimeout(context.Background(), webhookRequestTimeout)
		err = m.api.DeleteSubscription(ctx, m.name)
		cancel()
		if err != nil {
			err = fmt.Errorf("webhook: delete subscription %s: %w", m.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), webhookRequestTimeout)
	defer cancel()
	_ = m.server.Shutdown(ctx)
	<-m.served
	return err
}
