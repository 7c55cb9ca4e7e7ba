package shard

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for gigaledger_shard_proposals_rejected_total; a proposal is counted once, under the
// reason its caller saw.
const (
	rejectReasonNotLeader      = "not_leader"
	rejectReasonOverloaded     = "overloaded"
	rejectReasonTooLarge       = "too_large"
	rejectReasonClosed         = "closed"
	rejectReasonCanceled       = "canceled"
	rejectReasonOutcomeUnknown = "outcome_unknown"
)

// shardMetrics are the Prometheus collectors of one shard replica. They carry the const label
// shard=<ShardID> so several shards can share one registry.
type shardMetrics struct {
	registerer       prometheus.Registerer
	collectors       []prometheus.Collector
	batchCommands    prometheus.Histogram
	batchBytes       prometheus.Histogram
	proposeToApply   prometheus.Histogram
	applyDuration    prometheus.Histogram
	proposalsRejects *prometheus.CounterVec
	replaySkipped    prometheus.Counter
	readIndexRounds  prometheus.Counter
	readCatchUps     prometheus.Counter
}

func newShardMetrics(shardID string, registerer prometheus.Registerer, queueDepth, inflightBatches func() float64) (*shardMetrics, error) {
	labels := prometheus.Labels{"shard": shardID}
	m := &shardMetrics{
		registerer: registerer,
		batchCommands: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "batch_commands",
			Help:        "Commands per proposed log entry (group commit batch size).",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(1, 2, 14),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "batch_bytes",
			Help:        "Encoded bytes per proposed log entry.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(64, 4, 10),
		}),
		proposeToApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "propose_to_apply_seconds",
			Help:        "Time from Propose enqueuing a command to its result (queue, replication, commit, apply).",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "apply_seconds",
			Help:        "Time the state machine spent applying one log entry.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.00001, 2, 16),
		}),
		proposalsRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "proposals_rejected_total",
			Help:        "Proposals that did not return a result, by reason.",
			ConstLabels: labels,
		}, []string{"reason"}),
		replaySkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "replay_skipped_entries_total",
			Help:        "Log entries not applied because the state machine already had them.",
			ConstLabels: labels,
		}),
		readIndexRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "read_index_rounds_total",
			Help:        "Leadership verification rounds run for read index requests (coalesced).",
			ConstLabels: labels,
		}),
		readCatchUps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gigaledger", Subsystem: "shard", Name: "read_catch_ups_total",
			Help:        "Follower reads that applied the local log up to the leader's read index themselves, instead of waiting for the leader to send the commit index.",
			ConstLabels: labels,
		}),
	}
	queueGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gigaledger", Subsystem: "shard", Name: "proposal_queue_depth",
		Help:        "Proposals waiting to be batched.",
		ConstLabels: labels,
	}, queueDepth)
	inflightGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "gigaledger", Subsystem: "shard", Name: "batches_inflight",
		Help:        "Batches handed to raft and not yet applied.",
		ConstLabels: labels,
	}, inflightBatches)
	m.collectors = []prometheus.Collector{m.batchCommands, m.batchBytes, m.proposeToApply, m.applyDuration,
		m.proposalsRejects, m.replaySkipped, m.readIndexRounds, m.readCatchUps, queueGauge, inflightGauge}
	for _, reason := range []string{rejectReasonNotLeader, rejectReasonOverloaded, rejectReasonTooLarge,
		rejectReasonClosed, rejectReasonCanceled, rejectReasonOutcomeUnknown} {
		m.proposalsRejects.WithLabelValues(reason)
	}
	if registerer == nil {
		return m, nil
	}
	for i, collector := range m.collectors {
		if err := registerer.Register(collector); err != nil {
			for _, registered := range m.collectors[:i] {
				registerer.Unregister(registered)
			}
			return nil, fmt.Errorf("register shard metrics: %w", err)
		}
	}
	return m, nil
}

// registerRaftGauges adds the replica's Raft position once raft exists: term, indexes and
// whether it leads, so dashboards can show who leads and how far each replica lags.
func (m *shardMetrics) registerRaftGauges(shardID string, s *Shard) error {
	labels := prometheus.Labels{"shard": shardID}
	gauge := func(name, help string, value func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gigaledger", Subsystem: "shard",
			Name: name, Help: help, ConstLabels: labels}, value)
	}
	gauges := []prometheus.Collector{
		gauge("raft_term", "Current Raft term of this replica.", func() float64 { return float64(s.raft.CurrentTerm()) }),
		gauge("raft_last_log_index", "Index of the last entry in this replica's log.", func() float64 { return float64(s.raft.LastIndex()) }),
		gauge("raft_commit_index", "Highest log index this replica knows committed.", func() float64 { return float64(s.raft.CommitIndex()) }),
		gauge("applied_index", "Highest log index applied to this replica's state machine.", func() float64 { return float64(s.adapter.appliedIndex()) }),
		gauge("raft_voters", "Voting replicas in the shard's latest Raft configuration as this replica knows it. Below the cluster's replica count, the shard is short of voters and nothing restores it on its own: move a replica to a live node (POST /cluster/move-replica or replace-node).", func() float64 {
			return float64(s.voterCount())
		}),
		gauge("is_leader", "1 while this replica leads its shard.", func() float64 {
			if s.raft.State() == raft.Leader {
				return 1
			}
			return 0
		}),
	}
	// During a rolling upgrade rules_version stays below rules_implemented until the last old
	// replica is replaced; then the leader raises it (fsm/rules.go).
	if r, ok := s.sm.(RulesImplementer); ok {
		gauges = append(gauges, gauge("rules_implemented", "Newest rules version this replica's binary implements.",
			func() float64 { return float64(r.RulesImplemented()) }))
	}
	if r, ok := s.sm.(RulesFollower); ok {
		gauges = append(gauges, gauge("rules_version", "The shard's rules version as of this replica's last applied batch.",
			func() float64 { return float64(r.Rules()) }))
	}
	if m.registerer != nil {
		for i, g := range gauges {
			if err := m.registerer.Register(g); err != nil {
				for _, registered := range gauges[:i] {
					m.registerer.Unregister(registered)
				}
				return fmt.Errorf("register raft gauges: %w", err)
			}
		}
	}
	m.collectors = append(m.collectors, gauges...)
	return nil
}

// unregister removes the collectors so that a replica reopened in the same process can
// register again.
func (m *shardMetrics) unregister() {
	if m.registerer == nil {
		return
	}
	for _, collector := range m.collectors {
		m.registerer.Unregister(collector)
	}
}

// reject counts a proposal that ended with err.
func (m *shardMetrics) reject(err error) {
	reason := rejectReasonOutcomeUnknown
	switch {
	case errors.Is(err, ErrClosed):
		reason = rejectReasonClosed
	case errors.Is(err, ErrNotLeader):
		reason = rejectReasonNotLeader
	case errors.Is(err, ErrOverloaded):
		reason = rejectReasonOverloaded
	case errors.Is(err, ErrCommandTooLarge):
		reason = rejectReasonTooLarge
	case errors.Is(err, ErrOutcomeUnknown):
		reason = rejectReasonOutcomeUnknown
	default:
		reason = rejectReasonCanceled
	}
	m.proposalsRejects.WithLabelValues(reason).Inc()
}
