package chainwatch

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the followers' progress, per shard. A nil *Metrics records nothing.
type Metrics struct {
	height       *prometheus.GaugeVec
	nodeHeight   prometheus.Gauge
	observations *prometheus.CounterVec
	reorgs       *prometheus.CounterVec
	errors       *prometheus.CounterVec
}

// NewMetrics registers the followers' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		height: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gigaledger_chain_height",
			Help: "Height of the last block a shard observed (on the shard's leader)."}, []string{"shard"}),
		nodeHeight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gigaledger_chain_node_height",
			Help: "Height of the Dogecoin node's best block, as the followers last saw it."}),
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gigaledger_chain_observations_total",
			Help: "Chain observations a shard's follower proposed and the shard applied, by kind (block, mempool)."}, []string{"shard", "kind"}),
		reorgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gigaledger_chain_reorgs_total",
			Help: "Reorgs (and rescans) a shard's follower walked back."}, []string{"shard"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gigaledger_chain_sync_errors_total",
			Help: "Failed sync rounds of a shard's follower (the node unreachable, a refused observation)."}, []string{"shard"}),
	}
	reg.MustRegister(m.height, m.nodeHeight, m.observations, m.reorgs, m.errors)
	return m
}

func (m *Metrics) setHeight(shard int, height int64) {
	if m != nil {
		m.height.WithLabelValues(strconv.Itoa(shard)).Set(float64(height))
		m.nodeHeight.Set(float64(height))
	}
}

func (m *Metrics) observed(shard int, kind string, height int64) {
	if m == nil {
		return
	}
	m.observations.WithLabelValues(strconv.Itoa(shard), kind).Inc()
	if height > 0 {
		m.height.WithLabelValues(strconv.Itoa(shard)).Set(float64(height))
	}
}

func (m *Metrics) reorg(shard int) {
	if m != nil {
		m.reorgs.WithLabelValues(strconv.Itoa(shard)).Inc()
	}
}

func (m *Metrics) error(shard int) {
	if m != nil {
		m.errors.WithLabelValues(strconv.Itoa(shard)).Inc()
	}
}
