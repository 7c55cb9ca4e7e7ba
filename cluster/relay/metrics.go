package relay

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the delivery series: counters per subscriber, lag per (shard, subscriber).
type Metrics struct {
	delivered    *prometheus.CounterVec // events a subscriber's receiver accepted
	retried      *prometheus.CounterVec // attempts beyond the first
	deadLettered *prometheus.CounterVec // events recorded as dead letters
	lostEvents   *prometheus.CounterVec // events trimmed by retention before delivery, per shard and subscriber
	errors       *prometheus.CounterVec // failed reads of the source or cursor, failed acks and dead-letter writes
	lagEvents    *prometheus.GaugeVec   // newest sequence minus the delivered one
	lagSeconds   *prometheus.GaugeVec   // age of the oldest event not yet delivered (0 when caught up)
}

// NewMetrics creates the relay's series and registers them with registerer (nil: not
// registered, for tests). Registering twice with one registerer reuses the existing series.
func NewMetrics(registerer prometheus.Registerer) *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "gigaledger", Subsystem: "relay", Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gigaledger", Subsystem: "relay", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		delivered:    counter("delivered_total", "Events delivered (a 2xx answer), by subscriber.", "subscriber"),
		retried:      counter("retried_total", "Delivery attempts beyond the first, by subscriber.", "subscriber"),
		deadLettered: counter("dead_lettered_total", "Events recorded as dead letters after the last attempt, by subscriber.", "subscriber"),
		lostEvents:   counter("lost_events_total", "Events trimmed by the outbox's retention before a subscriber got them, by shard and subscriber.", "shard", "subscriber"),
		errors:       counter("errors_total", "Failed reads and proposals of the delivery engine, by operation (events, cursor, ack, dead_letter).", "operation"),
		lagEvents:    gauge("lag_events", "Events of the shard not yet passed to the subscriber (delivered, filtered out or dead-lettered).", "shard", "subscriber"),
		lagSeconds:   gauge("lag_seconds", "Age of the oldest event not yet passed to the subscriber; 0 when caught up.", "shard", "subscriber"),
	}
	if registerer != nil {
		m.delivered = registerOrExisting(registerer, m.delivered)
		m.retried = registerOrExisting(registerer, m.retried)
		m.deadLettered = registerOrExisting(registerer, m.deadLettered)
		m.lostEvents = registerOrExisting(registerer, m.lostEvents)
		m.errors = registerOrExisting(registerer, m.errors)
		m.lagEvents = registerOrExisting(registerer, m.lagEvents)
		m.lagSeconds = registerOrExisting(registerer, m.lagSeconds)
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

func (m *Metrics) setLag(shard int, subscriber string, events uint64, seconds float64) {
	s := shardLabel(shard)
	m.lagEvents.WithLabelValues(s, subscriber).Set(float64(events))
	m.lagSeconds.WithLabelValues(s, subscriber).Set(seconds)
}

// forgetLag removes the lag series of a delivery this node no longer runs: a follower must not
// report the lag it saw when it led.
func (m *Metrics) forgetLag(shard int, subscriber string) {
	s := shardLabel(shard)
	m.lagEvents.DeleteLabelValues(s, subscriber)
	m.lagSeconds.DeleteLabelValues(s, subscriber)
}

func shardLabel(shard int) string { return strconv.Itoa(shard) }
