package ledger

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

// BenchmarkScale measures memory, disk and restart at scale on one shard's state machine
// (issue 15, item 7): it applies W wallets (each funded by one issue) and transfers among them
// until the store holds E entries, through the apply path in log entries of 1,000 commands with
// the history chain on, then closes the store and measures a restart (open, load) and what the
// loaded live state costs. It runs once whatever b.N is. Sizes from the environment:
//
//	GIGALEDGER_SCALE_WALLETS=1000000 GIGALEDGER_SCALE_ENTRIES=10000000 \
//	  go test ./fsm/ledger -run '^$' -bench Scale -benchtime 1x -timeout 60m
//
// Reported: heap-B/wallet and rss-B/wallet (growth from before the open to after the load,
// after a GC), disk-B/entry (the store's bytes over its entries), restart-s (open and load),
// restart-cpu-s (the process's CPU time over the same span, which a loaded machine inflates
// less than the wall time),
// build-transfers/s (the apply rate while building, history persisted).
//
// GIGALEDGER_SCALE_DIR names a directory to keep the built store in: the first run builds it
// there (and records the sizes in scale-sizes), later runs with the same sizes reuse it, so the
// restart can be measured again without the half hour of building. Each run restarts from a
// fresh copy of the kept store, so no run sees the WAL replay or compactions of an earlier one.
func BenchmarkScale(b *testing.B) {
	wallets := envInt(b, "GIGALEDGER_SCALE_WALLETS", 1_000_000)
	entries := envInt(b, "GIGALEDGER_SCALE_ENTRIES", 10_000_000)
	if entries < wallets {
		b.Fatalf("GIGALEDGER_SCALE_ENTRIES (%d) below the wallets' own issues (%d)", entries, wallets)
	}
	transfers := (entries - wallets) / 2
	dir := b.TempDir()
	kept := os.Getenv("GIGALEDGER_SCALE_DIR")
	sizes := fmt.Sprintf("%d wallets %d entries\n", wallets, entries)
	if kept != "" {
		if got, err := os.ReadFile(filepath.Join(kept, "scale-sizes")); err == nil {
			if string(got) != sizes {
				b.Fatalf("%s holds %q, not %q: name another directory", kept, got, sizes)
			}
			copyDir(b, filepath.Join(kept, "store"), dir)
			b.Logf("reusing the store kept in %s", kept)
			measureRestart(b, dir, wallets, entries, transfers, 0)
			return
		}
		if err := os.RemoveAll(filepath.Join(kept, "store")); err != nil {
			b.Fatal(err)
		}
	}
	buildRate := buildScale(b, dir, wallets, transfers)
	if kept != "" {
		copyDir(b, dir, filepath.Join(kept, "store"))
		if err := os.WriteFile(filepath.Join(kept, "scale-sizes"), []byte(sizes), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	measureRestart(b, dir, wallets, entries, transfers, buildRate)
}

// buildScale applies the scale data set into dir and returns the transfers' apply rate.
func buildScale(b *testing.B, dir string, wallets, transfers int) float64 {
	l, err := openTest(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	apply := benchApplier(b, l)
	const batch = 1000
	apply([][]byte{fsm.EncodeCommand(&fsm.StartHistoryChain{})})
	apply([][]byte{fsm.EncodeCommand(&fsm.RaiseRules{Version: fsm.RulesVersion})}) // as a leader does
	apply([][]byte{
		(&Command{Op: OpCreateProject, ProjectID: "p", Name: "scale"}).Encode(nil),
		(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100}).Encode(nil),
	})
	walletID := func(i int) string { return fmt.Sprintf("w%08d", i) }
	cmds := make([][]byte, 0, batch)
	flush := func() {
		if len(cmds) > 0 {
			apply(cmds)
			cmds = cmds[:0]
		}
	}
	for i := range wallets {
		cmds = append(cmds, (&Command{Op: OpCreateWallet, ProjectID: "p", WalletID: walletID(i), AssetID: "usd"}).Encode(nil))
		if len(cmds) == batch {
			flush()
		}
	}
	flush()
	for i := range wallets {
		cmds = append(cmds, (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "f", ReferenceID: "fund" + walletID(i),
			Operations: []Operation{{Type: OperationIssue, To: walletID(i), Amount: AmountFromUint64(1 << 40)}}}).Encode(nil))
		if len(cmds) == batch {
			flush()
		}
	}
	flush()
	start := time.Now()
	for i := range transfers {
		from, to := (i*7919)%wallets, (i*104729+1)%wallets
		if from == to {
			to = (to + 1) % wallets
		}
		cmds = append(cmds, (&Command{Op: OpTransact, ProjectID: "p", IDPrefix: "t", ReferenceID: "t" + strconv.Itoa(i),
			Operations: []Operation{{Type: OperationTransfer, From: walletID(from), To: walletID(to), Amount: AmountFromUint64(1)}}}).Encode(nil))
		if len(cmds) == batch {
			flush()
		}
	}
	flush()
	buildRate := float64(transfers) / time.Since(start).Seconds()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return buildRate
}

// measureRestart opens the store in dir, loads it and reports the figures.
func measureRestart(b *testing.B, dir string, wallets, entries, transfers int, buildRate float64) {
	disk := dirBytes(b, dir)

	// The restart: everything a node does before its shard can apply again, measured from a
	// process state without the store.
	heap0, rss0 := settledMemory(b)
	cpu0 := processCPU(b)
	start := time.Now()
	l, err := openTest(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	restart := time.Since(start)
	restartCPU := processCPU(b) - cpu0
	heap1, rss1 := settledMemory(b)
	defer l.Close()
	if l.wallets.Len() != wallets {
		b.Fatalf("loaded %d wallets, want %d", l.wallets.Len(), wallets)
	}
	b.ReportMetric(float64(heap1-heap0)/float64(wallets), "heap-B/wallet")
	b.ReportMetric(float64(rss1-rss0)/float64(wallets), "rss-B/wallet")
	b.ReportMetric(float64(disk)/float64(entries), "disk-B/entry")
	b.ReportMetric(restart.Seconds(), "restart-s")
	b.ReportMetric(restartCPU.Seconds(), "restart-cpu-s")
	if buildRate > 0 {
		b.ReportMetric(buildRate, "build-transfers/s")
	}
	b.Logf("%d wallets, %d entries (%d transfers): store %d MiB on disk; restart %v; live heap %d MiB, RSS %d MiB after the load",
		wallets, entries, transfers, disk>>20, restart.Round(time.Millisecond), heap1>>20, rss1>>20)
}

func envInt(b *testing.B, name string, fallback int) int {
	v := os.Getenv(name)
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive count", name, v)
	}
	return n
}

// processCPU is the CPU time (user and system) the process has used: on a machine shared with
// other work the restart's wall time says more about the neighbours than about the restart.
// It includes Pebble's background work (a compaction the open starts) and the GC.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settledMemory is the live heap and the resident set after a GC that returns memory to the OS.
func settledMemory(b *testing.B) (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			rss = kb << 10
		}
	}
	return ms.HeapAlloc, rss
}

func dirBytes(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// copyDir copies the regular files of the directory tree from into to.
func copyDir(b *testing.B, from, to string) {
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Create(filepath.Join(to, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}
