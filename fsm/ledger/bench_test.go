package ledger

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// BenchmarkApplyTransfers measures apply throughput on one goroutine: single-transfer
// transactions among 10,000 wallets, batched per log entry as group commit would, with every
// entry, transaction and balance written to the store; with the history chain (every replica's
// default, fsm/chain.go) and without it.
//
//	go test ./fsm -run '^$' -bench ApplyTransfers -benchtime 200000x -cpu 1
func BenchmarkApplyTransfers(b *testing.B) {
	for _, batchSize := range []int{1, 64, 512} {
		for _, chain := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d/chain=%v", batchSize, map[bool]string{false: "off", true: "on"}[chain])
			b.Run(name, func(b *testing.B) { benchmarkApplyTransfers(b, batchSize, chain) })
		}
	}
}

func benchmarkApplyTransfers(b *testing.B, batchSize int, chain bool) {
	l, err := openTest(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	apply := benchLedger(b, l, chain)
	const walletCount = benchWalletCount

	// Pre-encode the commands so the benchmark measures apply, not the proposer.
	cmds := make([][]byte, b.N)
	for i := range cmds {
		from, to := (i*7919)%walletCount, (i*104729+1)%walletCount
		if from == to {
			to = (to + 1) % walletCount
		}
		id := fmt.Sprintf("t%09d", i)
		cmds[i] = (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: id,
			Operations: []Operation{{Type: OperationTransfer, From: fmt.Sprintf("w%05d", from), To: fmt.Sprintf("w%05d", to), Amount: AmountFromUint64(1)}}}).Encode(nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batchSize {
		apply(cmds[i:min(i+batchSize, b.N)])
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkApplyTransferBatches measures apply as a cluster does under the batch API (POST
// .../transactions/batch, bench's --batch 1000): each log entry holds eight TransactBatch
// commands (as many as group commit puts into its 1 MiB) of 1,000 single-transfer transactions,
// with reference IDs as the bench harness makes them. Compare its transfers/s with
// BenchmarkApplyTransfers': the same transfers in smaller log entries.
//
//	go test ./fsm/ledger -run '^$' -bench ApplyTransferBatches -benchtime 1000000x -cpu 1
func BenchmarkApplyTransferBatches(b *testing.B) {
	const items, perEntry = 1000, 8
	l, err := openTest(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchLedger(b, l, true)
	index, now := uint64(1_000), int64(1_800_000_000_000) // above benchLedger's setup entries
	entries := make([][][]byte, 0, b.N/(items*perEntry)+1)
	for i := 0; i < b.N; {
		var entry [][]byte
		for len(entry) < perEntry && i < b.N {
			batch := &TransactBatch{ProjectID: "p"}
			for ; len(batch.Items) < items && i < b.N; i++ {
				from, to := (i*7919)%benchWalletCount, (i*104729+1)%benchWalletCount
				if from == to {
					to = (to + 1) % benchWalletCount
				}
				batch.Items = append(batch.Items, Transact{ProjectID: "p", IDPrefix: "t0000",
					ReferenceID: fmt.Sprintf("run-5f3a9c1e-%d", i), Operations: []Operation{{Type: OperationTransfer,
						From: fmt.Sprintf("w%05d", from), To: fmt.Sprintf("w%05d", to), Amount: AmountFromUint64(1)}}})
			}
			entry = append(entry, fsm.EncodeCommand(batch))
		}
		entries = append(entries, entry)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, entry := range entries {
		index++
		now++
		for _, r := range l.ApplyBatch(index, now, entry) {
			result := r.(*fsm.Result)
			if result.Err != nil {
				b.Fatal(result.Err)
			}
			for _, item := range result.Value.(*TransactBatchResult).Items {
				if item.Err != nil {
					b.Fatal(item.Err)
				}
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkApplyColdCaches applies log entries as a node does in the closed loop (entries of
// 24 single transfers, each with a random reference ID, as clients send them), with `evict` bytes
// of other memory written between two entries, untimed: what a node's HTTP, raft and the other
// replicas' work do to the caches between two applies on a shared box. At evict=0 everything
// apply touches stays in cache from one entry to the next; at 64 MiB nothing does. The
// difference is what the cluster's apply pays over BenchmarkApplyTransfers (bench/RESULTS.md,
// session 25).
//
//	go test ./fsm/ledger -run '^$' -bench ApplyColdCaches -benchtime 300000x -cpu 1
func BenchmarkApplyColdCaches(b *testing.B) {
	const perEntry = 24
	for _, evict := range []int{0, 8 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("evict=%dMiB", evict>>20), func(b *testing.B) {
			l, err := openTest(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			apply := benchLedger(b, l, true)
			random := rand.New(rand.NewPCG(1, 2))
			cmds := make([][]byte, b.N)
			for i := range cmds {
				from, to := (i*7919)%benchWalletCount, (i*104729+1)%benchWalletCount
				if from == to {
					to = (to + 1) % benchWalletCount
				}
				cmds[i] = (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: fmt.Sprintf("%016x%016x", random.Uint64(), random.Uint64()),
					Operations: []Operation{{Type: OperationTransfer, From: fmt.Sprintf("w%05d", from), To: fmt.Sprintf("w%05d", to), Amount: AmountFromUint64(1)}}}).Encode(nil)
			}
			other := make([]byte, evict)
			b.ResetTimer()
			for i := 0; i < b.N; i += perEntry {
				if evict > 0 {
					b.StopTimer()
					for j := 0; j < len(other); j += 64 { // a cache line each
						other[j]++
					}
					b.StartTimer()
				}
				apply(cmds[i:min(i+perEntry, b.N)])
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
		})
	}
}

// BenchmarkSnapshot measures one raft snapshot of a store of N single-transfer transactions
// (built through the apply path, as BenchmarkApplyTransfers does):
//   - stream: the snapshot of the first release, the whole store streamed into a file and
//     synced, as raft's file snapshot store did with it every SnapshotInterval;
//   - checkpoint: the snapshot now, a Pebble checkpoint plus the reference raft stores;
//   - install: the checkpoint stream produced only when a follower needs InstallSnapshot.
//
// Between two snapshots one more batch is applied (untimed), so that every checkpoint is new.
//
//	go test ./fsm/ledger -run '^$' -bench BenchmarkSnapshot -benchtime 3x -cpu 1
func BenchmarkSnapshot(b *testing.B) {
	for _, transfers := range []int{50_000, 500_000} {
		dir := b.TempDir()
		l, err := openTest(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		apply := benchLedger(b, l, false)
		for i := 0; i < transfers; i += 512 {
			apply(benchTransfers(i, min(512, transfers-i)))
		}
		more := transfers
		applyMore := func() {
			apply(benchTransfers(more, 64))
			more += 64
		}
		b.Run(fmt.Sprintf("transfers=%d/stream", transfers), func(b *testing.B) {
			var written int64
			for range b.N {
				b.StopTimer()
				applyMore()
				b.StartTimer()
				snapshot, err := l.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Create(filepath.Join(dir, "stream.bin"))
				if err != nil {
					b.Fatal(err)
				}
				counted := &countingWriter{w: f}
				if err := snapshot.Persist(counted); err != nil {
					b.Fatal(err)
				}
				snapshot.Release()
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
				written = counted.n
			}
			b.ReportMetric(float64(written), "raft-store-B")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/snapshot")
			b.ReportMetric(float64(storeBytes(b, filepath.Join(dir, "ledger"))>>20), "store-MiB")
		})
		var descriptor []byte
		b.Run(fmt.Sprintf("transfers=%d/checkpoint", transfers), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				applyMore()
				b.StartTimer()
				if descriptor, err = l.Checkpoint(); err != nil {
					b.Fatal(err)
				}
			}
			// What raft's store gets: the shard's reference magic (29 bytes) and the descriptor.
			b.ReportMetric(float64(29+len(descriptor)), "raft-store-B")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/snapshot")
			copied, linked := checkpointFiles(b, dir, l.AppliedIndex())
			b.ReportMetric(float64(copied), "copied-B")
			b.ReportMetric(float64(linked), "linked-files")
		})
		b.Run(fmt.Sprintf("transfers=%d/install", transfers), func(b *testing.B) {
			var size int64
			for range b.N {
				stream, n, err := l.OpenCheckpoint(descriptor)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, stream); err != nil {
					b.Fatal(err)
				}
				stream.Close()
				size = n
			}
			b.ReportMetric(float64(size), "stream-B")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/stream")
		})
		l.Close()
	}
}

// benchApplier returns a function that applies one log entry of commands to l, at the next
// index and a millisecond later, and fails the benchmark on any rejection.
func benchApplier(b *testing.B, l *machineLedger) func([][]byte) {
	index := uint64(0)
	now := int64(1_700_000_000_000)
	return func(cmds [][]byte) {
		index++
		now++
		for _, r := range l.ApplyBatch(index, now, cmds) {
			if r.(*fsm.Result).Err != nil {
				b.Fatal(r.(*fsm.Result).Err)
			}
		}
	}
}

// benchLedger creates the project and 10,000 funded wallets, the history chain and the newest
// rules first when chain is set, and returns the apply function.
func benchLedger(b *testing.B, l *machineLedger, chain bool) func([][]byte) {
	apply := benchApplier(b, l)
	if chain {
		// As a cluster's leader does: the chain first, then the rules this binary implements
		// (wallet epochs among them, which need the chain).
		apply([][]byte{fsm.EncodeCommand(&fsm.StartHistoryChain{})})
		apply([][]byte{fsm.EncodeCommand(&fsm.RaiseRules{Version: fsm.RulesVersion})})
	}
	benchSetup(apply)
	return apply
}

// benchSetup creates the project and benchWalletCount funded wallets.
func benchSetup(apply func([][]byte)) {
	apply([][]byte{
		(&Command{Op: OpCreateProject, ProjectID: "p", Name: "bench"}).Encode(nil),
		(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100}).Encode(nil),
	})
	var setup [][]byte
	for i := 0; i < benchWalletCount; i++ {
		id := fmt.Sprintf("w%05d", i)
		setup = append(setup,
			(&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: id, AssetID: "usd"}).Encode(nil),
			(&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "f", ReferenceID: "fund" + id,
				Operations: []Operation{{Type: OperationIssue, To: id, Amount: AmountFromUint64(1 << 40)}}}).Encode(nil))
		if len(setup) >= 1000 {
			apply(setup)
			setup = nil
		}
	}
	apply(setup)
}

const benchWalletCount = 10_000

// benchTransfers encodes count single-transfer transactions, numbered from first.
func benchTransfers(first, count int) [][]byte {
	cmds := make([][]byte, count)
	for j := range cmds {
		i := first + j
		from, to := (i*7919)%benchWalletCount, (i*104729+1)%benchWalletCount
		if from == to {
			to = (to + 1) % benchWalletCount
		}
		cmds[j] = (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: fmt.Sprintf("t%09d", i),
			Operations: []Operation{{Type: OperationTransfer, From: fmt.Sprintf("w%05d", from), To: fmt.Sprintf("w%05d", to), Amount: AmountFromUint64(1)}}}).Encode(nil)
	}
	return cmds
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// storeBytes sums the sizes of a directory's files.
func storeBytes(b *testing.B, dir string) int64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, entry := range entries {
		if info, err := entry.Info(); err == nil {
			total += info.Size()
		}
	}
	return total
}

// checkpointFiles reports the bytes a checkpoint copied (files it shares no inode with in the
// live store) and how many files it linked.
func checkpointFiles(b *testing.B, dir string, applied uint64) (copiedBytes int64, linkedCount int) {
	checkpoint := filepath.Join(dir, "checkpoints", fmt.Sprintf("%020d", applied))
	entries, err := os.ReadDir(checkpoint)
	if err != nil {
		b.Fatal(err)
	}
	for _, entry := range entries {
		info, err := entry.Info()
		if err != nil {
			b.Fatal(err)
		}
		if live, err := os.Stat(filepath.Join(dir, "ledger", entry.Name())); err == nil && os.SameFile(info, live) {
			linkedCount++
			continue
		}
		if strings.HasSuffix(entry.Name(), ".sst") {
			linkedCount++ // linked, then compacted away from the live store
			continue
		}
		copiedBytes += info.Size()
	}
	return copiedBytes, linkedCount
}
