package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the request and transaction series this package exports. The admin and public
// handlers share one set per registry.
type metrics struct {
	// requestDuration is labelled by listener, method, route template (never the raw path, which
	// would give a series per wallet) and status code.
	requestDuration *prometheus.HistogramVec
	// transactions counts transaction requests by outcome (completed, failed, duplicate,
	// rejected) and reason (the fsm error code; empty when completed).
	transactions *prometheus.CounterVec
}

// routeUnmatched is the route label of requests that matched no route.
const routeUnmatched = "unmatched"

func newMetrics(registry *prometheus.Registry) *metrics {
	m := &metrics{
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "gigaledger",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "HTTP request latency by listener, method, route template and status code.",
			Buckets:   []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"listener", "method", "route", "code"}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gigaledger",
			Name:      "transactions_total",
			Help:      "Transaction requests by outcome (completed, failed, duplicate, rejected) and reason (fsm error code).",
		}, []string{"outcome", "reason"}),
	}
	if registry != nil {
		m.requestDuration = registerOrExisting(registry, m.requestDuration)
		m.transactions = registerOrExisting(registry, m.transactions)
	}
	return m
}

// registerOrExisting registers c, or returns the equal collector already registered (the admin
// and public handlers both ask for the same series).
func registerOrExisting[C prometheus.Collector](registry *prometheus.Registry, c C) C {
	if err := registry.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("httpapi: register metrics: " + err.Error())
	}
	return c
}

func (m *metrics) observeRequest(listener, method, route string, status int, seconds float64) {
	m.requestDuration.WithLabelValues(listener, methodLabel(method), route, strconv.Itoa(status)).Observe(seconds)
}

// methodLabel is method as a metric label: HTTP's own methods as they are, any other "other".
// A client chooses the method (net/http takes any token): as a label, each new one would be
// another series for good (a probe made 3,400 through the public listener).
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// observeTransaction counts one answered transaction request.
func (m *metrics) observeTransaction(result *fsm.Result) {
	switch {
	case result.Err == nil:
		m.transactions.WithLabelValues("completed", "").Inc()
	case result.Err.Code == ledger.CodeDuplicateReferenceID || result.Err.Code == ledger.CodeReferenceIDMismatch:
		m.transactions.WithLabelValues("duplicate", string(result.Err.Code)).Inc()
	case isFailedTransaction(result.Value):
		m.transactions.WithLabelValues("failed", string(result.Err.Code)).Inc()
	default:
		m.transactions.WithLabelValues("rejected", string(result.Err.Code)).Inc()
	}
}

func isFailedTransaction(v fsm.Value) bool {
	t, ok := v.(*ledger.Transaction)
	return ok && t.Status == ledger.TransactionFailed
}
