package relay

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the delivery series: counters per subscriber, lag per (shard, subscriber). One
// Metrics serves one Engine.
type Metrics struct {
	delivered    *prometheus.CounterVec // events a subscriber's receiver accepted
	retried      *prometheus.CounterVec // attempts beyond the first
	deadLettered *prometheus.CounterVec // events recorded as dead letters
	lostEvents   *prometheus.CounterVec // events trimmed by retention before delivery, per shard and subscriber
	errors       *prometheus.CounterVec // failed reads of the source or cursor, failed acks and dead-letter writes
	lag          *lagCollector          // lag in events and seconds per (shard, subscriber), computed at scrape time
}

// NewMetrics creates the relay's series and registers them with registerer (nil: not
// registered, for tests). Registering twice with one registerer reuses the existing series.
func NewMetrics(registerer prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gigaledger", Subsystem: "relay", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		delivered:    counter("delivered_total", "Events delivered (a 2xx answer), by subscriber.", "subscriber"),
		retried:      counter("retried_total", "Delivery attempts beyond the first, by subscriber.", "subscriber"),
		deadLettered: counter("dead_lettered_total", "Events recorded as dead letters after the last attempt, by subscriber.", "subscriber"),
		lostEvents:   counter("lost_events_total", "Events trimmed by the outbox's retention before a subscriber got them, by shard and subscriber.", "shard", "subscriber"),
		errors:       counter("errors_total", "Failed reads and proposals of the delivery engine, by operation (events, cursor, ack, dead_letter).", "operation"),
		lag: &lagCollector{
			entries: map[workerKey]*lagEntry{},
			eventsDesc: prometheus.NewDesc("gigaledger_relay_lag_events",
				"Events of the shard not yet passed to the subscriber (delivered, filtered out or dead-lettered), on the shard's leader.",
				[]string{"shard", "subscriber"}, nil),
			secondsDesc: prometheus.NewDesc("gigaledger_relay_lag_seconds",
				"Age of the oldest event not yet passed to the subscriber (0 when caught up), on the shard's leader.",
				[]string{"shard", "subscriber"}, nil),
		},
	}
	if registerer != nil {
		m.delivered = registerOrExisting(registerer, m.delivered)
		m.retried = registerOrExisting(registerer, m.retried)
		m.deadLettered = registerOrExisting(registerer, m.deadLettered)
		m.lostEvents = registerOrExisting(registerer, m.lostEvents)
		m.errors = registerOrExisting(registerer, m.errors)
		m.lag = registerOrExisting(registerer, m.lag)
	}
	return m
}

// registerOrExisting registers c, or returns the equal collector already registered.
func registerOrExisting[C prometheus.Collector](registerer prometheus.Registerer, c C) C {
	if err := registerer.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("relay: register metrics: " + err.Error())
	}
	return c
}

// lagCollector reports each running delivery's lag when scraped, so the lag of a delivery
// stuck in retries keeps growing on the dashboard instead of showing its last update. Only
// running deliveries have series: a follower does not report the lag it saw when it led.
type lagCollector struct {
	eventsDesc, secondsDesc *prometheus.Desc

	mu      sync.Mutex
	entries map[workerKey]*lagEntry
}

// lagEntry is one delivery's position, updated by its goroutine.
type lagEntry struct {
	newest       func() uint64    // the shard's newest sequence (a local read)
	now          func() time.Time // the engine's clock
	passed       uint64           // newest sequence passed
	pendingSince time.Time        // time of the oldest event not yet passed (after a full batch: of its last event, which no pending one predates); zero when none is known
}

func (c *lagCollector) start(k workerKey, newest func() uint64, now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[k] = &lagEntry{newest: newest, now: now}
}

// set records a delivery's position: passed, and the time of the next event it has to pass
// (zero: none fetched, e.g. caught up).
func (c *lagCollector) set(k workerKey, passed uint64, pendingSince time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		e.passed, e.pendingSince = passed, pendingSince
	}
}

func (c *lagCollector) forget(k workerKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.eventsDesc
	ch <- c.secondsDesc
}

// Collect implements prometheus.Collector.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	type sample struct {
		k workerKey
		e lagEntry
	}
	c.mu.Lock()
	samples := make([]sample, 0, len(c.entries))
	for k, e := range c.entries {
		samples = append(samples, sample{k, *e})
	}
	c.mu.Unlock()
	for _, s := range samples {
		// Read outside the lock: newest is a store read.
		var events, seconds float64
		if newest := s.e.newest(); newest > s.e.passed {
			events = float64(newest - s.e.passed)
		}
		if !s.e.pendingSince.IsZero() {
			seconds = max(s.e.now().Sub(s.e.pendingSince).Seconds(), 0)
		}
		labels := []string{shardLabel(s.k.shard), s.k.subscriber}
		ch <- prometheus.MustNewConstMetric(c.eventsDesc, prometheus.GaugeValue, events, labels...)
		ch <- prometheus.MustNewConstMetric(c.secondsDesc, prometheus.GaugeValue, seconds, labels...)
	}
}

func shardLabel(shard int) string { return strconv.Itoa(shard) }
