package cluster_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/nodelog"
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

// BenchmarkMultiShardPropose measures proposals/s on 3 nodes hosting 1, 3, 4 and 6 shards (every
// node a replica of every shard, RF 3), 64+ proposers spread round-robin over the shards, with
// the node's shared raft log ("shared", the default) and with each replica's raft.db syncing
// on its own ("per-shard-sync", the fallback). "leader" sends each proposal to its shard's
// leader (local), "follower" to a node that is not the shard's leader (forwarded over the
// shared port): the difference is the forwarding cost. It also reports the raft log fsyncs
// per second per node.
//
//	go test -run '^$' -bench BenchmarkMultiShardPropose -benchtime 3s ./cluster/
func BenchmarkMultiShardPropose(b *testing.B) {
	// Modes alternate within a shard count so that both see the same machine load.
	for _, shardCount := range []int{1, 3, 4, 6} {
		for _, mode := range []nodelog.Mode{nodelog.ModeShared, nodelog.ModePerShardSync} {
			for _, path := range []string{"leader", "follower"} {
				b.Run(fmt.Sprintf("%s/shards%d/%s", mode, shardCount, path), func(b *testing.B) {
					benchmarkMultiShardWith(b, shardCount, path == "follower", false, mode)
				})
			}
		}
	}
}

// BenchmarkNodeTransport is one shard on three nodes with node-to-node mutual TLS and
// without it, proposing at the leader and through a follower: the cost of TLS side by side.
func BenchmarkNodeTransport(b *testing.B) {
	for _, transport := range []string{"tls", "plain"} {
		for _, path := range []string{"leader", "follower"} {
			b.Run(transport+"/"+path, func(b *testing.B) {
				benchmarkMultiShardWith(b, 1, path == "follower", transport == "plain", nodelog.ModeShared)
			})
		}
	}
}

func benchmarkMultiShardWith(b *testing.B, shardCount int, forwarded, plain bool, raftLogMode nodelog.Mode) {
	const (
		proposerMinCount = 64
		commandBytes     = 16
	)
	c := newStaticClusterWith(b, 3, shardCount, 3, func(cfg *shard.Config) {
		cfg.SnapshotThreshold = 1 << 30
		cfg.SnapshotInterval = time.Hour
	}, plain, raftLogMode)
	entries := make([]*multiNode, shardCount)
	leaders := make([]*multiNode, shardCount)
	for k := range shardCount {
		leaders[k] = c.leaderOf(k)
		entries[k] = leaders[k]
		if forwarded {
			for _, n := range c.nodes {
				if n != leaders[k] {
					entries[k] = n
					break
				}
			}
		}
	}
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((proposerMinCount + procs - 1) / procs)
	var (
		sequence, failures, proposerIndex atomic.Uint64
		before                            shard.Stats
		firstFailure                      atomic.Value
	)
	for k := range shardCount {
		stats := leaders[k].node.Shard(k).Stats()
		before.ProposedBatches += stats.ProposedBatches
		before.ProposedCommands += stats.ProposedCommands
	}
	fsyncsBefore := uint64(0)
	for _, n := range c.nodes {
		fsyncsBefore += n.node.RaftLogFsyncCount()
	}
	cpuBefore := processCPU()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		shardID := int(proposerIndex.Add(1)) % shardCount
		node := entries[shardID].node
		ctx := context.Background()
		command := make([]byte, commandBytes)
		for pb.Next() {
			copy(command, fmt.Sprintf("%016d", sequence.Add(1)))
			if _, err := node.Propose(ctx, shardID, command); err != nil {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
			}
		}
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpuBefore
	b.StopTimer()
	if failures.Load() > 0 {
		b.Fatalf("%d proposals failed, the first with: %v", failures.Load(), firstFailure.Load())
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/proposal")
	var batches, commands uint64
	for k := range shardCount {
		stats := leaders[k].node.Shard(k).Stats()
		batches += stats.ProposedBatches
		commands += stats.ProposedCommands
	}
	batches -= before.ProposedBatches
	commands -= before.ProposedCommands
	fsyncs := -fsyncsBefore
	for _, n := range c.nodes {
		fsyncs += n.node.RaftLogFsyncCount()
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
	b.ReportMetric(float64(fsyncs)/float64(len(c.nodes))/elapsed.Seconds(), "fsyncs/s/node")
	if batches > 0 {
		b.ReportMetric(float64(commands)/float64(batches), "commands/entry")
	}
}

// processCPU is the user and system CPU this process has used (all three nodes).
func processCPU() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
