package cluster_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/shard"
)

// BenchmarkClusterPropose measures group commit on 3 replicas over loopback TCP with real
// fsync'd bolt logs: 64+ concurrent proposers (GOMAXPROCS × parallelism goroutines) sending
// 16-byte commands, through the leader ("direct") or forwarded by a follower ("forwarded").
// It reports proposals/s and the mean commands per log entry.
//
//	go test -run '^$' -bench BenchmarkClusterPropose -benchtime 3s ./cluster/
func BenchmarkClusterPropose(b *testing.B) {
	variants := []struct {
		batchMaxCount, pipelineMaxCount int
	}{
		{1, 1},
		{64, 1},
		{64, 4},
		{512, 1},
		{512, 2},
		{512, 4},
		{512, 8},
		{4096, 4},
	}
	for _, path := range []string{"direct", "forwarded"} {
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/batch%d/pipeline%d", path, v.batchMaxCount, v.pipelineMaxCount), func(b *testing.B) {
				benchmarkPropose(b, path == "forwarded", v.batchMaxCount, v.pipelineMaxCount)
			})
		}
	}
}

func benchmarkPropose(b *testing.B, forwarded bool, batchMaxCount, pipelineMaxCount int) {
	const (
		proposerMinCount = 64
		commandBytes     = 16
	)
	c := newTestCluster(b, 3, func(cfg *shard.Config) {
		cfg.BatchMaxCount = batchMaxCount
		cfg.PipelineMaxCount = pipelineMaxCount
		cfg.SnapshotThreshold = 1 << 30
		cfg.SnapshotInterval = time.Hour
	})
	leader := c.leader()
	entry := leader
	if forwarded {
		for _, n := range c.nodes {
			if n != leader {
				entry = n
				break
			}
		}
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((proposerMinCount + procs - 1) / procs)

	before := leader.node.Shard().Stats()
	var sequence atomic.Uint64
	var failures atomic.Uint64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		command := make([]byte, commandBytes)
		for pb.Next() {
			copy(command, fmt.Sprintf("%016d", sequence.Add(1)))
			if _, err := entry.node.Propose(ctx, command); err != nil {
				failures.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	after := leader.node.Shard().Stats()
	if failures.Load() > 0 {
		b.Fatalf("%d proposals failed", failures.Load())
	}
	batches := after.ProposedBatches - before.ProposedBatches
	commands := after.ProposedCommands - before.ProposedCommands
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
	if batches > 0 {
		b.ReportMetric(float64(commands)/float64(batches), "commands/entry")
	}
}
