package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flag limits, validated before anything is sent.
const (
	clientsMax       = 1024
	walletsMax       = 1_000_000
	durationMax      = time.Hour
	defaultDuration  = 10 * time.Second
	defaultClients   = 64
	defaultWallets   = 1000
	defaultOpsPerTx  = 4
	defaultZipfS     = 1.1
	defaultTarget    = "http://127.0.0.1:8081"
	runIDRandomBytes = 4
)

// PostgreSQL transaction styles (--pg-mode).
const (
	pgModeFunction    = "function"
	pgModeInteractive = "interactive"
)

// Exit codes of Main.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// options are the parsed command-line flags.
type options struct {
	latencyLog    string
	cpuProfile    string
	targets       []string
	token         string
	clients       int
	duration      time.Duration
	operationsMax int64
	rate          float64
	scenario      string
	wallets       int
	opsPerTx      int
	zipfExponent  float64
	jsonOutput    bool
	pgDSN         string
	seed          uint64
	allowRemote   bool
	progress      string
	pgMode        string
	webhook       bool
	// routing is the HTTP driver's routing mode: routingLeader or routingRoundRobin.
	routing      string
	webhookDrain time.Duration
	// crossShare is --cross: nil when not given (uniform pairs).
	crossShare *float64
	// batch is --batch: transfers per request (0: one transaction per request).
	batch int
	// system is --system: what the HTTP targets are (systemGigaLedger or systemBare).
	system string
}

// Systems the HTTP driver reports: GigaLedger, or the bare-HTTP ceiling (bench/bare: the same
// API handler without ledger work), which the comparison treats as a ceiling, not a baseline.
const (
	systemGigaLedger = "gigaledger"
	systemBare       = "bare"
)

// Main runs `gigaledger bench` with args (without the subcommand name) and
// returns the process exit code. `bench show A.json` prints a saved --json
// result as a table; `bench compare A.json B.json ...` prints saved results
// side by side with their ratios, the last one that is not a bare-HTTP run as the baseline
// (WriteComparison).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "compare" || args[0] == "show") {
		return compareMain(args[0], args[1:], stdout, stderr)
	}
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitUsage
	}
	result, err := runWithOptions(ctx, opts, stderr)
	if result != nil {
		var writeError error
		if opts.jsonOutput {
			writeError = WriteJSON(stdout, result)
		} else {
			writeError = WriteTable(stdout, result)
		}
		if writeError != nil && err == nil {
			err = writeError
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitFailure
	}
	return exitOK
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	flags := flag.NewFlagSet("gigaledger bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	opts := &options{}
	target := flags.String("target", defaultTarget, "GigaLedger admin API base URL(s), comma-separated; requests go round-robin")
	flags.StringVar(&opts.token, "token", os.Getenv("GIGALEDGER_ADMIN_TOKEN"), "admin bearer token (default $GIGALEDGER_ADMIN_TOKEN)")
	flags.IntVar(&opts.clients, "clients", defaultClients, "concurrent clients (connections)")
	flags.DurationVar(&opts.duration, "duration", defaultDuration, "measured phase length (the run stops at duration or --ops, whichever comes first)")
	flags.Int64Var(&opts.operationsMax, "ops", 0, "stop after this many requests (0: duration only)")
	flags.Float64Var(&opts.rate, "rate", 0, "open loop: fixed arrival rate in requests/s (0: closed loop, as fast as possible)")
	flags.StringVar(&opts.scenario, "scenario", ScenarioTransfer, "scenario: "+strings.Join(ScenarioNames, ", "))
	flags.IntVar(&opts.wallets, "wallets", defaultWallets, "number of customer wallets created and funded in setup")
	flags.IntVar(&opts.opsPerTx, "ops-per-tx", defaultOpsPerTx, "operations per transaction in the multi-op scenario")
	flags.Float64Var(&opts.zipfExponent, "zipf-s", defaultZipfS, "skew exponent of the zipf scenario (> 1; larger is hotter)")
	flags.BoolVar(&opts.jsonOutput, "json", false, "print the result as JSON instead of a table")
	flags.StringVar(&opts.pgDSN, "pg", "", "run against PostgreSQL at this DSN (pgx syntax) instead of GigaLedger")
	flags.Uint64Var(&opts.seed, "seed", 1, "seed of the request generators (runs with the same seed send the same stream)")
	flags.StringVar(&opts.pgMode, "pg-mode", pgModeInteractive, "PostgreSQL transaction style: function (one round trip through a PL/pgSQL function) or interactive (two pipelined round trips from the client)")
	flags.BoolVar(&opts.allowRemote, "allow-remote", false, "allow targets that do not resolve to loopback")
	flags.StringVar(&opts.routing, "routing", routingLeader, "GigaLedger: "+routingLeader+" sends writes to the shard leader the answers name (one-shard clusters; the targets round-robin until then and on several shards), "+
		routingRoundRobin+" sends every request round-robin over the targets (followers forward writes)")
	flags.BoolVar(&opts.webhook, "webhook", false, "GigaLedger: receive the run's events on a loopback webhook and report delivery rate, lag and drain time")
	flags.DurationVar(&opts.webhookDrain, "webhook-drain", webhookDrainDefault, "with --webhook: how long to wait after the load for the events still in flight")
	cross := flags.String("cross", "", "transfer scenario on a sharded GigaLedger: share of transfers between wallets of different shards, 0..1 (e.g. 0.1); empty: both wallets uniform")
	flags.IntVar(&opts.batch, "batch", 0, "transfer scenario on GigaLedger: send N transfers per request through POST .../transactions/batch (1..1000; 0: one per request)")
	flags.StringVar(&opts.system, "system", systemGigaLedger, "what the --target URLs serve, for the report: "+systemGigaLedger+", or "+systemBare+
		" (the bare-HTTP ceiling, bench/cmd/gigaledger-bare)")
	flags.StringVar(&opts.latencyLog, "latency-log", "", "write every measured request (when due, latency, outcome) as CSV to this file, to line the tail up with node logs")
	flags.StringVar(&opts.cpuProfile, "cpuprofile", "", "write the harness's own CPU profile over the measured phase to this file (go tool pprof)")
	flags.StringVar(&opts.progress, "progress", "auto", "live progress on stderr: auto (a rewriting line on a terminal, a line per second otherwise), off")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if flags.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if opts.routing != routingLeader && opts.routing != routingRoundRobin {
		return nil, fmt.Errorf("--routing %q: want %s or %s", opts.routing, routingLeader, routingRoundRobin)
	}
	if *cross != "" {
		share, err := strconv.ParseFloat(*cross, 64)
		if err != nil {
			return nil, fmt.Errorf("--cross %q: want a share in [0, 1]", *cross)
		}
		opts.crossShare = &share
	}
	for _, part := range strings.Split(*target, ",") {
		if part = strings.TrimSpace(part); part != "" {
			opts.targets = append(opts.targets, part)
		}
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return opts, nil
}

func (o *options) validate() error {
	switch {
	case len(o.targets) == 0 && o.pgDSN == "":
		return fmt.Errorf("--target: at least one URL")
	case o.clients < 1 || o.clients > clientsMax:
		return fmt.Errorf("--clients %d: must be in 1..%d", o.clients, clientsMax)
	case o.duration <= 0 || o.duration > durationMax:
		return fmt.Errorf("--duration %s: must be in (0, %s]", o.duration, durationMax)
	case o.operationsMax < 0:
		return fmt.Errorf("--ops %d: must be >= 0", o.operationsMax)
	case o.rate < 0:
		return fmt.Errorf("--rate %v: must be >= 0", o.rate)
	case o.pgMode != pgModeFunction && o.pgMode != pgModeInteractive:
		return fmt.Errorf("--pg-mode %q: want %s or %s", o.pgMode, pgModeFunction, pgModeInteractive)
	case o.system != systemGigaLedger && o.system != systemBare:
		return fmt.Errorf("--system %q: want %s or %s", o.system, systemGigaLedger, systemBare)
	case o.system == systemBare && o.pgDSN != "":
		return fmt.Errorf("--system %s: an HTTP target, not --pg", systemBare)
	case o.system == systemBare && (o.scenario == ScenarioInvoice || IsGigPay(o.scenario) || o.webhook):
		return fmt.Errorf("--system %s: serves the Cloud Wallet ledger routes only (no GigaWallet, GigPay or events)", systemBare)
	case o.progress != "auto" && o.progress != "off":
		return fmt.Errorf("--progress %q: want auto or off", o.progress)
	case o.webhook && o.pgDSN != "":
		return fmt.Errorf("--webhook: GigaLedger only (PostgreSQL emits no events)")
	case o.webhook && (o.scenario == ScenarioReads || o.scenario == ScenarioInvoice || IsGigPay(o.scenario)):
		return fmt.Errorf("--webhook: scenario %s does not commit one event per request; use a transaction scenario", o.scenario)
	case o.webhookDrain <= 0 || o.webhookDrain > webhookDrainMax:
		return fmt.Errorf("--webhook-drain %s: must be in (0, %s]", o.webhookDrain, webhookDrainMax)
	case o.crossShare != nil && o.pgDSN != "":
		return fmt.Errorf("--cross: GigaLedger only (PostgreSQL has no shards)")
	case o.batch != 0 && o.pgDSN != "":
		return fmt.Errorf("--batch: GigaLedger only (the PostgreSQL baseline has no batch route)")
	case o.pgDSN != "" && !HasPostgresBaseline(o.scenario):
		return fmt.Errorf("--scenario %s: the PostgreSQL baseline has no GigaWallet invoices or GigPay tokens; run it against GigaLedger only", o.scenario)
	}
	return o.scenarioConfig("check").Validate()
}

func (o *options) scenarioConfig(runID string) ScenarioConfig {
	return ScenarioConfig{
		Name:            o.scenario,
		Wallets:         o.wallets,
		OperationsPerTx: o.opsPerTx,
		ZipfExponent:    o.zipfExponent,
		RunID:           runID,
		CrossShare:      o.crossShare,
		Batch:           o.batch,
	}
}

// newRunID returns a short ID unique per run: time in base 36 plus random
// bytes, well inside the 30-character project ID limit.
func newRunID() string {
	random := make([]byte, runIDRandomBytes)
	_, _ = rand.Read(random) // crypto/rand.Read never fails
	return strconv.FormatInt(time.Now().Unix(), 36) + fmt.Sprintf("%x", random)
}

func runWithOptions(ctx context.Context, opts *options, stderr io.Writer) (*Result, error) {
	var driver Driver
	var target string
	var hooks MeasureHooks
	if opts.pgDSN != "" {
		pgDriver, host, err := newPGDriver(ctx, opts.pgDSN, opts.clients, opts.allowRemote, opts.pgMode == pgModeFunction)
		if err != nil {
			return nil, err
		}
		driver, target = pgDriver, host
	} else {
		if !opts.allowRemote {
			for _, raw := range opts.targets {
				if err := checkLoopbackURL(ctx, net.DefaultResolver, raw); err != nil {
					return nil, fmt.Errorf("--target: %w", err)
				}
			}
		}
		httpDriver, err := newHTTPDriver(opts.targets, opts.token, opts.clients, opts.routing)
		if err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		httpDriver.system = opts.system
		driver, target = httpDriver, strings.Join(opts.targets, ",")
		var chain hookChain
		if opts.webhook {
			measure, err := newWebhookMeasure(httpDriver.pick(httpDriver.setupClients), opts.webhookDrain)
			if err != nil {
				return nil, err
			}
			defer func() {
				if err := measure.Close(); err != nil {
					fmt.Fprintln(stderr, "bench:", err)
				}
			}()
			chain = append(chain, measure)
		}
		// Last, so that its reads are the closest to the measured phase.
		chain = append(chain, httpDriver.routing)
		hooks = append(chain, newNodeMetricsProbe(httpDriver.httpClient, opts.targets))
	}
	defer driver.Close()
	if opts.cpuProfile != "" {
		profile, err := newCPUProfile(opts.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer profile.Close()
		if hooks == nil {
			hooks = profile
		} else {
			hooks = hookChain{hooks, profile}
		}
	}

	config := RunConfig{
		Scenario:      opts.scenarioConfig(newRunID()),
		Clients:       opts.clients,
		Duration:      opts.duration,
		OperationsMax: opts.operationsMax,
		RatePerSecond: opts.rate,
		Seed:          opts.seed,
		Target:        target,
		Hooks:         hooks,
	}
	if opts.latencyLog != "" {
		file, err := os.Create(opts.latencyLog)
		if err != nil {
			return nil, fmt.Errorf("--latency-log: %w", err)
		}
		defer file.Close()
		config.LatencyLog = file
	}
	var progress io.Writer
	interactive := false
	if opts.progress == "auto" {
		progress = stderr
		interactive = isTerminal(stderr)
	}
	return Run(ctx, driver, config, progress, interactive)
}

// isTerminal reports whether out is a character device (a terminal).
func isTerminal(out io.Writer) bool {
	file, ok := out.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// compareMain implements `bench show` and `bench compare`.
func compareMain(command string, paths []string, stdout, stderr io.Writer) int {
	if (command == "compare" && len(paths) < 2) || (command == "show" && len(paths) != 1) {
		fmt.Fprintln(stderr, "usage: gigaledger bench show RESULT.json | gigaledger bench compare RESULT.json... BASELINE.json [BARE.json...]")
		return exitUsage
	}
	results := make([]*Result, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(stderr, "bench compare:", err)
			return exitFailure
		}
		var result Result
		if err := json.Unmarshal(data, &result); err != nil {
			fmt.Fprintf(stderr, "bench compare: %s: %v\n", path, err)
			return exitFailure
		}
		results = append(results, &result)
	}
	write := WriteComparison
	if command == "show" {
		write = func(out io.Writer, results []*Result) error { return WriteTable(out, results[0]) }
	}
	if err := write(stdout, results); err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return exitFailure
	}
	return exitOK
}
