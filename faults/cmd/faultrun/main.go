// Command faultrun runs GigaLedger's fault suite: a 3-node cluster of real gigaledger
// processes in network namespaces, a bank workload, faults scheduled from a seed, and the
// checker. `faultrun check --out DIR` re-checks a recorded run. See faults/README.md.
//
// Exit status: 0 when no anomaly was found, 1 on an anomaly, 2 when the run could not be done.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gigaledger/gigaledger/faults"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Mode presets. Flags given on the command line override them.
type preset struct {
	duration       time.Duration
	wallets        int
	clients        int
	readers        int
	initialBalance uint64
	shards         int
	crossShare     float64
	multiShare     float64
	verifiers      int
	spares         int
	network        string
	linearizable   time.Duration
	schedule       faults.Schedule
}

var presets = map[string]preset{
	// short: 60 s of workload for `make test`: kill the leader, pause a node, isolate the
	// leader (when namespaces are available), once each; beside them, a spare node and a
	// replica move every 5–8 s.
	"short": {duration: 60 * time.Second, wallets: 12, clients: 8, readers: 2, initialBalance: 300,
		shards: 4, crossShare: 0.3, multiShare: 0.1, verifiers: 1, spares: 1, network: faults.NetworkAuto, linearizable: 30 * time.Second,
		schedule: faults.Schedule{Kinds: []faults.FaultKind{faults.FaultKillLeader, faults.FaultPause, faults.FaultIsolateLeader},
			Ordered: true, GapMin: 6 * time.Second, GapMax: 10 * time.Second, HoldMin: 3 * time.Second, HoldMax: 5 * time.Second,
			PauseMin: 3 * time.Second, RecoverMax: 60 * time.Second, MoveGapMin: 5 * time.Second, MoveGapMax: 8 * time.Second}},
	// long: ≥10 minutes for `make faults`, every fault kind in shuffled rounds; beside them, a
	// spare node and a replica move every 8–16 s.
	"long": {duration: 10 * time.Minute, wallets: 40, clients: 12, readers: 2, initialBalance: 1_000,
		shards: 4, crossShare: 0.3, multiShare: 0.1, verifiers: 1, spares: 1, network: faults.NetworkNamespaces, linearizable: 60 * time.Second,
		schedule: faults.Schedule{Kinds: faults.AllFaultKinds, GapMin: 8 * time.Second, GapMax: 16 * time.Second,
			HoldMin: 3 * time.Second, HoldMax: 10 * time.Second, PauseMin: 3 * time.Second, RecoverMax: 60 * time.Second,
			MoveGapMin: 8 * time.Second, MoveGapMax: 16 * time.Second}},
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return check(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("faultrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "long", "preset: short (60 s of workload, for make test) or long (≥10 min, every fault kind)")
	seed := fs.Uint64("seed", 0, "seed for the workload and the fault schedule (0: pick one and print it)")
	duration := fs.Duration("duration", 0, "workload duration (default: the mode's)")
	wallets := fs.Int("wallets", 0, "wallets (default: the mode's)")
	clients := fs.Int("clients", 0, "concurrent transfer clients (default: the mode's)")
	readers := fs.Int("readers", -1, "concurrent balance readers (default: the mode's)")
	shards := fs.Int("shards", 0, "shards the nodes bootstrap with (--shards of gigaledger serve; default: the mode's, 4)")
	crossShare := fs.Float64("cross", -1, "share of single transfers between wallets of different shards, 0..1 (default: the mode's, 0.3)")
	multiShare := fs.Float64("multi", -1, "share of two-transfer transactions A→B, B→C over random wallets, 0..1 (default: the mode's, 0.1)")
	verifiers := fs.Int("verifiers", -1, "readers checking each answered cross-shard transaction's entries (default: the mode's, 1)")
	spares := fs.Int("spares", -1, "nodes that join the running cluster to take moved replicas; 0 turns the move nemesis off (default: the mode's, 1)")
	network := fs.String("network", "", "netns (namespaces or refuse), auto (namespaces, else loopback), loopback (default: the mode's)")
	faultKinds := fs.String("faults", "", "comma-separated fault kinds (default: the mode's): "+kindList())
	out := fs.String("out", "", "run directory (default: a new directory under $TMPDIR)")
	binary := fs.String("binary", "", "gigaledger binary (default: go build ./cmd/gigaledger into the run directory)")
	keepData := fs.Bool("keep-data", false, "keep the nodes' data directories and binary after a run without anomalies (removed by default; logs, history and report always stay)")
	linearizable := fs.Duration("linearizability-timeout", 0, "porcupine time per wallet (default: the mode's; negative skips)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, ok := presets[*mode]
	if !ok {
		fmt.Fprintf(stderr, "faultrun: unknown mode %q (short or long)\n", *mode)
		return 2
	}
	cfg := faults.Config{Seed: *seed, Duration: p.duration, Wallets: p.wallets, Clients: p.clients, Readers: p.readers,
		InitialBalance: p.initialBalance, Shards: p.shards, CrossShare: p.crossShare, MultiShare: p.multiShare,
		Verifiers: p.verifiers, Spares: p.spares, Network: p.network, Schedule: p.schedule, LinearizabilityTimeout: p.linearizable, Log: stderr}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano()%1_000_000_000) + 1
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *wallets > 0 {
		cfg.Wallets = *wallets
	}
	if *clients > 0 {
		cfg.Clients = *clients
	}
	if *readers >= 0 {
		cfg.Readers = *readers
	}
	if *network != "" {
		cfg.Network = *network
	}
	if *shards > 0 {
		cfg.Shards = *shards
	}
	if *crossShare >= 0 {
		cfg.CrossShare = *crossShare
	}
	if *multiShare >= 0 {
		cfg.MultiShare = *multiShare
	}
	if *verifiers >= 0 {
		cfg.Verifiers = *verifiers
	}
	if *spares >= 0 {
		cfg.Spares = *spares
	}
	if cfg.CrossShare > 1 || cfg.MultiShare > 1 {
		fmt.Fprintln(stderr, "faultrun: --cross and --multi are shares between 0 and 1")
		return 2
	}
	if *linearizable != 0 {
		cfg.LinearizabilityTimeout = max(*linearizable, 0)
	}
	if *faultKinds != "" {
		kinds, err := parseKinds(*faultKinds)
		if err != nil {
			fmt.Fprintf(stderr, "faultrun: %v\n", err)
			return 2
		}
		cfg.Schedule.Kinds = kinds
	}
	if cfg.Wallets < 2*cfg.Shards || cfg.Clients < 1 {
		fmt.Fprintln(stderr, "faultrun: need at least 2 wallets per shard and 1 client")
		return 2
	}
	cfg.OutDir = *out
	if cfg.OutDir == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("faultrun-%d-", cfg.Seed))
		if err != nil {
			fmt.Fprintf(stderr, "faultrun: %v\n", err)
			return 2
		}
		cfg.OutDir = dir
	}
	if entries, err := os.ReadDir(cfg.OutDir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "faultrun: %s is not empty; give a new --out directory\n", cfg.OutDir)
		return 2
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		fmt.Fprintf(stderr, "faultrun: %v\n", err)
		return 2
	}
	// The nodes run a copy of the binary under a name of its own, so that someone else's
	// `pkill gigaledger` on this machine does not stop them in the middle of a run (seen).
	cfg.Binary = filepath.Join(cfg.OutDir, nodeBinaryName)
	if *binary == "" {
		build := exec.Command("go", "build", "-o", cfg.Binary, "./cmd/gigaledger")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(stderr, "faultrun: go build ./cmd/gigaledger (run from the module root, or give --binary): %v\n", err)
			return 2
		}
	} else if err := copyFile(*binary, cfg.Binary); err != nil {
		fmt.Fprintf(stderr, "faultrun: %v\n", err)
		return 2
	}
	if abs, err := filepath.Abs(cfg.Binary); err == nil {
		cfg.Binary = abs
	}
	fmt.Fprintf(stderr, "faultrun: mode %s, seed %d, run directory %s\n", *mode, cfg.Seed, cfg.OutDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	record, report, err := faults.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "faultrun: %v\n(seed %d, run directory %s)\n", err, cfg.Seed, cfg.OutDir)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 2
	}
	fmt.Fprint(stdout, faults.Summary(record, report, cfg.OutDir))
	if report.AnomalyCount() > 0 {
		return 1
	}
	if !*keepData {
		// A passing run's node stores and binary are 150 MB (short) to over 1 GB (long) under
		// $TMPDIR, and nothing rereads them: `faultrun check` needs only the history, final
		// state and record.
		if err := removeNodeData(cfg.OutDir, cfg.Binary); err != nil {
			fmt.Fprintf(stderr, "faultrun: removing the nodes' data: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "faultrun: no anomalies: removed the nodes' data and binary; logs, history and report stay in %s (--keep-data keeps all)\n", cfg.OutDir)
		}
	}
	return 0
}

// removeNodeData removes the nodes' data directories (nodes/n1, nodes/n2, ...) and the nodes'
// binary from a run directory, keeping the node logs, certificates, history and report.
func removeNodeData(outDir, binary string) error {
	nodesDir := filepath.Join(outDir, "nodes")
	entries, err := os.ReadDir(nodesDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if name := e.Name(); e.IsDir() && len(name) > 1 && name[0] == 'n' && strings.Trim(name[1:], "0123456789") == "" {
			errs = append(errs, os.RemoveAll(filepath.Join(nodesDir, name)))
		}
	}
	// Only the copy in the run directory (the nodes' own binary), never a --binary elsewhere.
	if absOut, err := filepath.Abs(outDir); err == nil && filepath.Base(binary) == nodeBinaryName && filepath.Dir(binary) == absOut {
		errs = append(errs, os.Remove(binary))
	}
	return errors.Join(errs...)
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("faultrun check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "run directory to re-check")
	linearizable := fs.Duration("linearizability-timeout", time.Minute, "porcupine time per wallet (0 skips)")
	if err := fs.Parse(args); err != nil || *out == "" {
		fmt.Fprintln(stderr, "usage: faultrun check --out DIR")
		return 2
	}
	report, err := faults.CheckDir(*out, *linearizable)
	if err != nil {
		fmt.Fprintf(stderr, "faultrun check: %v\n", err)
		return 2
	}
	summary, err := os.ReadFile(filepath.Join(*out, faults.SummaryFile))
	if err != nil {
		fmt.Fprintf(stderr, "faultrun check: %v\n", err)
		return 2
	}
	stdout.Write(summary)
	if report.AnomalyCount() > 0 {
		return 1
	}
	return 0
}

// nodeBinaryName is the file name the nodes' binary gets in the run directory.
const nodeBinaryName = "glfault-node"

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

func kindList() string {
	var names []string
	for _, k := range faults.AllFaultKinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ",")
}

func parseKinds(list string) ([]faults.FaultKind, error) {
	var kinds []faults.FaultKind
	for _, name := range strings.Split(list, ",") {
		found := false
		for _, k := range faults.AllFaultKinds {
			if string(k) == strings.TrimSpace(name) {
				kinds = append(kinds, k)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown fault kind %q (%s)", name, kindList())
		}
	}
	return kinds, nil
}
