package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

// Routing modes of the HTTP driver (--routing).
const (
	// routingLeader sends writes to the shard leader a response named (client.WithLeaderRouting),
	// the configured targets round-robin until one has.
	routingLeader = "leader"
	// routingRoundRobin sends every request to the targets round-robin; followers forward writes.
	routingRoundRobin = "round-robin"
)

// RoutingResult says where the measured phase's answers came from: whether the node that
// answered was the leader of the shard that served the write (no forwarding) by comparing the
// node asked with the leader the answer named (header GigaLedger-Shard-Leader).
type RoutingResult struct {
	Mode string `json:"mode"`
	// Answers counts the measured attempts that got an HTTP answer.
	Answers int64 `json:"answers"`
	// AtLeader were answered by the leader they name; Forwarded by another node (a follower
	// forwarded the write); NoLeaderNamed named none (reads, cross-shard writes, failures, or a
	// leader the node did not know).
	AtLeader      int64 `json:"atLeader"`
	Forwarded     int64 `json:"forwarded"`
	NoLeaderNamed int64 `json:"noLeaderNamed"`
}

// routingCounter counts answers by where they came from; MeasureStarted zeroes it, so that it
// holds the measured phase only. It is one of the run's MeasureHooks.
type routingCounter struct {
	mode                                        string
	answers, atLeader, forwarded, noLeaderNamed atomic.Int64
}

// observe counts one attempt.
func (r *routingCounter) observe(attempt client.Attempt) {
	if attempt.StatusCode == 0 {
		return
	}
	r.answers.Add(1)
	switch attempt.ShardLeader {
	case "":
		r.noLeaderNamed.Add(1)
	case attempt.BaseURL:
		r.atLeader.Add(1)
	default:
		r.forwarded.Add(1)
	}
}

// BeforeMeasure implements MeasureHooks.
func (r *routingCounter) BeforeMeasure(context.Context, Driver, RunConfig) error { return nil }

// MeasureStarted implements MeasureHooks: setup's answers are not counted.
func (r *routingCounter) MeasureStarted(time.Time) {
	for _, counter := range []*atomic.Int64{&r.answers, &r.atLeader, &r.forwarded, &r.noLeaderNamed} {
		counter.Store(0)
	}
}

// AfterMeasure implements MeasureHooks.
func (r *routingCounter) AfterMeasure(_ context.Context, result *Result, _ time.Time) error {
	result.Routing = &RoutingResult{Mode: r.mode, Answers: r.answers.Load(), AtLeader: r.atLeader.Load(),
		Forwarded: r.forwarded.Load(), NoLeaderNamed: r.noLeaderNamed.Load()}
	return nil
}

// formatRouting is the report's routing line.
func formatRouting(routing *RoutingResult) string {
	share := func(count int64) string {
		if routing.Answers == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(count)/float64(routing.Answers))
	}
	return fmt.Sprintf("of %d answers: served by the shard leader asked (not forwarded) %s, forwarded %s, no leader named %s",
		routing.Answers, share(routing.AtLeader), share(routing.Forwarded), share(routing.NoLeaderNamed))
}
