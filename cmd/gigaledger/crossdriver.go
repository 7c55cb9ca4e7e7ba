package main

import (
	"log/slog"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/routing"
	"github.com/prometheus/client_golang/prometheus"
)

// startCrossDriver runs the cross-shard transactions' driver (routing.CrossDriver) as a leader
// duty: on every shard this node leads, the coordinator's records not done are carried to done,
// woken when a begin commits. Everything it proposes is idempotent, so two leaders for a moment
// change nothing twice; a new leader resumes from the replicated records.
func startCrossDriver(node *cluster.Node, shards routing.Shards, registry prometheus.Registerer, logger *slog.Logger) *routing.CrossDriver {
	leads := func(shardID int) bool {
		s := node.Shard(shardID)
		return s != nil && s.LeaderReady()
	}
	driver := routing.NewCrossDriver(shards, leads, logger.With("duty", "cross-shard"))
	if registry != nil {
		registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "gigaledger", Subsystem: "cross_shard",
			Name: "in_flight", Help: "Cross-shard transactions this node's driver is carrying now (begun, not done)."},
			func() float64 { return float64(driver.InFlight()) }))
	}
	driver.Run(node.ShardCount())
	return driver
}
