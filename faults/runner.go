package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Network choices for Config.Network.
const (
	NetworkNamespaces = "netns"    // namespaces or refuse
	NetworkLoopback   = "loopback" // 127.0.0.x, no partitions
	NetworkAuto       = "auto"     // namespaces when possible, else loopback
)

// Runner limits.
const (
	nodeCount = 3
	// startReadyMax bounds the wait for a fresh cluster to serve.
	startReadyMax = 90 * time.Second
	// resolveMax bounds the post-heal resolution of unknown outcomes.
	resolveMax = 3 * time.Minute
	// finalReadMax bounds reading the final state.
	finalReadMax = 5 * time.Minute
	// digestSettleMax bounds the wait for every replica to report the same applied index.
	digestSettleMax = 60 * time.Second
	// adminToken is the nodes' bearer token: they listen on non-loopback test hosts.
	adminToken = "faults-admin-token"
)

// Config is one run.
type Config struct {
	Binary         string // the gigaledger binary
	OutDir         string // history, final state, node data and logs, report
	Seed           uint64
	Duration       time.Duration // how long clients run
	Wallets        int
	Clients        int
	Readers        int
	InitialBalance uint64
	// Shards is the cluster's shard count; CrossShare and MultiShare shape the transfers
	// (Workload); Verifiers is how many verify readers look up answered cross-shard
	// transactions.
	Shards     int
	CrossShare float64
	MultiShare float64
	Verifiers  int
	// Spares is how many nodes join the running cluster (--join) to take moved replicas;
	// the move nemesis runs when Schedule.MoveGapMax is above 0.
	Spares   int
	Network  string
	Schedule Schedule
	// LinearizabilityTimeout bounds porcupine per wallet (0 skips).
	LinearizabilityTimeout time.Duration
	Log                    io.Writer
}

// RunRecord is run.json: what was run and what happened, for the summary and for re-checks.
type RunRecord struct {
	Seed           uint64         `json:"seed"`
	Network        string         `json:"network"`
	NetworkNote    string         `json:"networkNote,omitempty"`
	Duration       string         `json:"duration"`
	Elapsed        string         `json:"elapsed"`
	Wallets        int            `json:"wallets"`
	Clients        int            `json:"clients"`
	Readers        int            `json:"readers"`
	Shards         int            `json:"shards"`
	CrossShare     float64        `json:"crossShare"`
	MultiShare     float64        `json:"multiShare"`
	Verifiers      int            `json:"verifiers"`
	Attempted      int64          `json:"attempted"`
	CrossAttempted int64          `json:"crossAttempted"`
	CrossAcked     int64          `json:"crossAcknowledged"`
	MultiAttempted int64          `json:"multiAttempted"`
	Verified       int64          `json:"verified"`
	VerifySkipped  int64          `json:"verifySkipped"`
	VerifyFails    int64          `json:"verifyReadFails"`
	Acknowledged   int64          `json:"acknowledged"`
	Failed         int64          `json:"failed"`
	Rejected       int64          `json:"rejected"`
	OutcomeUnknown int64          `json:"outcomeUnknown"`
	Unresolved     int64          `json:"unresolved"`
	Attempts       int64          `json:"attempts"`
	Reads          int64          `json:"reads"`
	ReadErrors     int64          `json:"readErrors"`
	Snapshots      int64          `json:"snapshots"`
	SnapshotsLost  int64          `json:"snapshotsUnsettled"`
	Faults         map[string]int `json:"faults"`
	Spares         int            `json:"spares,omitempty"`
	Moves          *MoveFigures   `json:"moves,omitempty"`
	SkippedFaults  []string       `json:"skippedFaults,omitempty"`
	LeaderUnknown  int            `json:"leaderUnknown"`
	Stalls         []string       `json:"stalls,omitempty"`
	Crashes        []string       `json:"crashes,omitempty"`
	Error          string         `json:"error,omitempty"`
}

// Paths inside OutDir.
const (
	HistoryFile = "history.jsonl"
	FinalFile   = "final.json"
	RunFile     = "run.json"
	ReportFile  = "report.json"
	SummaryFile = "summary.txt"
)

// Run starts the cluster, runs the workload and the nemesis, reads the final state, checks
// everything and writes the summary. ctx ending (Ctrl-C) stops the run early; the cluster and
// the network are removed in every case.
func Run(ctx context.Context, cfg Config) (*RunRecord, *Report, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%s faults: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, nil, err
	}
	cfg.Shards = max(cfg.Shards, 1)
	record := &RunRecord{Seed: cfg.Seed, Duration: cfg.Duration.String(), Wallets: cfg.Wallets,
		Clients: cfg.Clients, Readers: cfg.Readers, Shards: cfg.Shards, CrossShare: cfg.CrossShare,
		MultiShare: cfg.MultiShare, Verifiers: cfg.Verifiers, Faults: map[string]int{}}
	started := time.Now()

	network, note, err := openNetwork(cfg.Network, nodeCount+cfg.Spares, func(s string) { logf("%s", s) })
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err := network.Close(); err != nil {
			logf("network cleanup: %v", err)
		}
	}()
	record.Network, record.NetworkNote = network.Kind(), note
	if note != "" {
		logf("%s", note)
	}
	schedule := cfg.Schedule
	schedule.Kinds = nil
	for _, kind := range cfg.Schedule.Kinds {
		if kind.NeedsPartition() && !network.CanPartition() {
			record.SkippedFaults = append(record.SkippedFaults, string(kind))
			continue
		}
		schedule.Kinds = append(schedule.Kinds, kind)
	}
	if len(record.SkippedFaults) > 0 {
		logf("skipping fault kinds %v: the %s network cannot partition", record.SkippedFaults, network.Kind())
	}

	rec, err := NewRecorder(filepath.Join(cfg.OutDir, HistoryFile))
	if err != nil {
		return nil, nil, err
	}
	recClosed := false
	defer func() {
		if !recClosed {
			rec.Close()
		}
	}()
	client := NewClient(adminToken, requestTimeout, cfg.Clients+cfg.Readers+cfg.Verifiers+2)
	cluster, err := NewCluster(network, cfg.Binary, filepath.Join(cfg.OutDir, "nodes"), adminToken, nodeCount, cfg.Spares, cfg.Shards, client)
	if err != nil {
		return nil, nil, err
	}
	var crashesMu sync.Mutex
	var crashes []string
	cluster.OnExit = func(n *Node, expected bool, err error) {
		rec.Record(Event{TimeNs: rec.Now(), Type: EventNote, Process: runnerProcess, Node: n.ID,
			Detail: fmt.Sprintf("process exited (expected %v): %v", expected, err)})
		if !expected {
			why := fmt.Sprintf("%s exited on its own: %v (see %s)", n.ID, err, n.LogPath)
			if err == nil {
				why += "; exit status 0 means it was shut down by a signal the runner did not send"
			}
			logf("%s", why)
			crashesMu.Lock()
			crashes = append(crashes, why)
			crashesMu.Unlock()
		}
	}
	defer func() {
		if err := cluster.StopAll(); err != nil {
			logf("stopping nodes: %v", err)
		}
	}()
	for i := range nodeCount {
		if err := cluster.Start(i); err != nil {
			return nil, nil, err
		}
	}
	logf("started %d nodes on %s network (%s); logs in %s", nodeCount, network.Kind(), hostsOf(&Cluster{Nodes: cluster.Nodes[:nodeCount]}),
		filepath.Join(cfg.OutDir, "nodes"))
	startCtx, cancel := context.WithTimeout(ctx, startReadyMax)
	err = cluster.WaitReady(startCtx, allNodes(cluster)[:nodeCount])
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster did not become ready (see %s/nodes/*.log): %w", cfg.OutDir, err)
	}
	// Spares join the running cluster, as an operator adds a node: --join, no bootstrap.
	for i := nodeCount; i < len(cluster.Nodes); i++ {
		if err := cluster.Start(i); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Spares > 0 {
		startCtx, cancel := context.WithTimeout(ctx, startReadyMax)
		err = cluster.WaitReady(startCtx, allNodes(cluster))
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("spare nodes did not become ready (see %s/nodes/*.log): %w", cfg.OutDir, err)
		}
		logf("%d spare node(s) joined: %s", cfg.Spares, hostsOf(&Cluster{Nodes: cluster.Nodes[nodeCount:]}))
	}

	workload := &Workload{ProjectID: fmt.Sprintf("faults-%d", cfg.Seed), InitialBalance: cfg.InitialBalance,
		Seed: cfg.Seed, Shards: cfg.Shards, CrossShare: cfg.CrossShare, MultiShare: cfg.MultiShare,
		cluster: cluster, client: client, rec: rec}
	setupCtx, cancel := context.WithTimeout(ctx, startReadyMax)
	issued, err := workload.Setup(setupCtx, cfg.Wallets)
	cancel()
	if err != nil {
		return nil, nil, err
	}
	logf("setup: project %s, %d wallets on %d shards, %d issued; running %v with %d clients (%.0f%% cross-shard, %.0f%% two transfers), %d readers, %d verifiers, seed %d",
		workload.ProjectID, len(workload.Wallets), cfg.Shards, issued, cfg.Duration, cfg.Clients, 100*cfg.CrossShare, 100*cfg.MultiShare,
		cfg.Readers, cfg.Verifiers, cfg.Seed)
	receiver, err := startWebhookReceiver(network.RunnerHost(), workload.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	defer receiver.close()
	subscribeCtx, cancel := context.WithTimeout(ctx, startReadyMax)
	err = receiver.subscribe(subscribeCtx, client, cluster.Nodes[0].AdminURL)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe the event webhook: %w", err)
	}
	logf("events: failed transactions are delivered to %s", receiver.url)

	// The workload and the nemesis.
	stop, stopWorkload := context.WithTimeout(ctx, cfg.Duration)
	defer stopWorkload()
	var wg sync.WaitGroup
	for p := 0; p < cfg.Clients; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); workload.RunClient(stop, p) }()
	}
	for p := 0; p < cfg.Readers; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); workload.RunReader(stop, cfg.Clients+p) }()
	}
	for p := 0; p < cfg.Verifiers; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); workload.RunVerifier(stop, cfg.Clients+cfg.Readers+p) }()
	}
	nemesis := NewNemesis(cluster, workload, rec, schedule, cfg.Seed, func(s string) { logf("%s", s) })
	progressDone := make(chan struct{})
	go reportProgress(stop, progressDone, workload, logf)
	var mover *Mover
	moverDone := make(chan struct{})
	if schedule.MoveGapMax > 0 && cfg.Spares > 0 {
		mover = NewMover(cluster, nemesis, rec, schedule.MoveGapMin, schedule.MoveGapMax, cfg.Seed, func(s string) { logf("%s", s) })
		go func() { defer close(moverDone); mover.Run(stop) }()
	} else {
		close(moverDone)
	}
	nemesisErr := nemesis.Run(stop)
	if nemesisErr != nil {
		logf("nemesis stopped: %v", nemesisErr)
		stopWorkload()
	}
	<-stop.Done()
	wg.Wait()
	<-progressDone
	<-moverDone
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}

	// Heal and settle: every node up and ready, unknown outcomes resolved.
	if err := network.Heal(); err != nil {
		logf("heal: %v", err)
	}
	for i := range cluster.Nodes {
		if cluster.Paused(i) {
			_ = cluster.Resume(i)
		}
		if !cluster.Running(i) {
			_ = cluster.Start(i)
		}
	}
	if mover != nil {
		// A move cut short by the run's end is finished first: the final checks compare each
		// shard's replicas under one settled configuration.
		finishCtx, cancel := context.WithTimeout(ctx, moveAttemptMax)
		mover.Finish(finishCtx)
		cancel()
		figures := mover.Figures()
		record.Moves, record.Spares = &figures, cfg.Spares
		for _, move := range figures.Unfinished {
			nemesis.Stalls = append(nemesis.Stalls, fmt.Sprintf("the move of %s did not finish within %v after the run", move, moveAttemptMax))
		}
	}
	readyCtx, cancel := context.WithTimeout(ctx, schedule.RecoverMax)
	if err := cluster.WaitReady(readyCtx, allNodes(cluster)); err != nil {
		nemesis.Stalls = append(nemesis.Stalls, "after the run the healed cluster was not ready: "+err.Error())
	}
	cancel()
	resolveCtx, cancel := context.WithTimeout(ctx, resolveMax)
	left := workload.ResolvePending(resolveCtx)
	cancel()
	logf("workload stopped; %d transfers with unknown outcomes left after resolution", left)
	workload.Snapshot(rand.New(rand.NewPCG(cfg.Seed, 0xf1a1)), "final")

	final, err := readFinal(ctx, cluster, workload, issued)
	if err != nil {
		return nil, nil, fmt.Errorf("read final state: %w", err)
	}
	final.EndTimeNs = rec.Now()
	var failed []string
	for _, tx := range final.Transactions {
		if tx.Status == "failed" {
			failed = append(failed, tx.ID)
		}
	}
	drainCtx, cancel := context.WithTimeout(ctx, webhookDrainMax)
	drainStart := time.Now()
	delivery := receiver.drain(drainCtx, failed)
	cancel()
	final.Delivery = &delivery
	logf("events: %d failed transactions delivered in %d requests (%v after the final read)", len(delivery.Received), delivery.Requests,
		time.Since(drainStart).Round(time.Millisecond))
	if final.DigestSource == "" || final.ShardDigests == nil {
		// No digest per shard served: stop the nodes and hash each replica of each shard from
		// its store.
		if err := cluster.StopAll(); err != nil {
			logf("stop for offline digests: %v", err)
		}
		offlineDigests(cluster, final)
	}
	recClosed = true
	if err := rec.Close(); err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}

	stats := &workload.Stats
	record.Elapsed = time.Since(started).Round(time.Second).String()
	record.Attempted, record.Acknowledged, record.Failed = stats.Attempted.Load(), stats.Acknowledged.Load(), stats.Failed.Load()
	record.CrossAttempted, record.CrossAcked, record.MultiAttempted = stats.CrossAttempted.Load(), stats.CrossAcknowledged.Load(), stats.MultiAttempted.Load()
	record.Verified, record.VerifySkipped, record.VerifyFails = stats.Verified.Load(), stats.VerifySkipped.Load(), stats.VerifyReadFails.Load()
	record.Rejected, record.OutcomeUnknown, record.Unresolved = stats.Rejected.Load(), stats.OutcomeUnknown.Load(), stats.Unresolved.Load()
	record.Attempts, record.Reads, record.ReadErrors = stats.Attempts.Load(), stats.Reads.Load(), stats.ReadErrors.Load()
	record.Snapshots, record.SnapshotsLost = stats.Snapshots.Load(), stats.SnapshotsFailed.Load()
	for kind, n := range nemesis.Injected {
		record.Faults[string(kind)] = n
	}
	record.LeaderUnknown, record.Stalls = nemesis.LeaderUnknown, nemesis.Stalls
	crashesMu.Lock()
	record.Crashes = crashes
	crashesMu.Unlock()
	if nemesisErr != nil {
		record.Error = nemesisErr.Error()
	}
	if err := writeJSON(filepath.Join(cfg.OutDir, FinalFile), final); err != nil {
		return nil, nil, err
	}
	if err := writeJSON(filepath.Join(cfg.OutDir, RunFile), record); err != nil {
		return nil, nil, err
	}
	logf("checking %d history events", rec.Count())
	report, err := CheckDir(cfg.OutDir, cfg.LinearizabilityTimeout)
	return record, report, err
}

// CheckDir runs the checker on a run directory (history, final state, run record) and writes
// report.json and summary.txt there.
func CheckDir(dir string, linearizabilityTimeout time.Duration) (*Report, error) {
	events, err := ReadHistory(filepath.Join(dir, HistoryFile))
	if err != nil {
		return nil, err
	}
	var final FinalState
	if err := readJSON(filepath.Join(dir, FinalFile), &final); err != nil {
		return nil, err
	}
	var record RunRecord
	if err := readJSON(filepath.Join(dir, RunFile), &record); err != nil {
		return nil, err
	}
	report := Check(events, &final, CheckOptions{LinearizabilityTimeout: linearizabilityTimeout,
		VisualizationDir: dir, Stalls: record.Stalls, Crashes: record.Crashes})
	if err := writeJSON(filepath.Join(dir, ReportFile), report); err != nil {
		return nil, err
	}
	summary := Summary(&record, report, dir)
	if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(summary), 0o644); err != nil {
		return nil, err
	}
	return report, nil
}

func openNetwork(kind string, nodes int, log func(string)) (Network, string, error) {
	switch kind {
	case NetworkLoopback:
		return loopbackNetwork{}, "loopback network by request: partitions skipped", nil
	case NetworkNamespaces, "":
		n, err := NewNamespaceNetwork(nodes, log)
		if err != nil {
			return nil, "", fmt.Errorf("refusing to run: %w (use --network loopback to run without partitions)", err)
		}
		return n, "", nil
	case NetworkAuto:
		n, err := NewNamespaceNetwork(nodes, log)
		if err != nil {
			return loopbackNetwork{}, "network namespaces unavailable (" + err.Error() + "): loopback, partitions skipped", nil
		}
		return n, "", nil
	}
	return nil, "", fmt.Errorf("unknown network %q (netns, loopback or auto)", kind)
}

func allNodes(c *Cluster) []int {
	out := make([]int, len(c.Nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

func hostsOf(c *Cluster) string {
	var hosts []string
	for _, n := range c.Nodes {
		hosts = append(hosts, n.ID+"="+n.AdminURL)
	}
	return strings.Join(hosts, " ")
}

// progressInterval is how often the runner prints progress.
const progressInterval = 30 * time.Second

func reportProgress(stop context.Context, done chan<- struct{}, w *Workload, logf func(string, ...any)) {
	defer close(done)
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-ticker.C:
			logf("progress: %d transfers (%d cross-shard), %d acknowledged, %d failed, %d unknown, %d reads, %d verify reads",
				w.Stats.Attempted.Load(), w.Stats.CrossAttempted.Load(), w.Stats.Acknowledged.Load(), w.Stats.Failed.Load(),
				w.Stats.OutcomeUnknown.Load(), w.Stats.Reads.Load(), w.Stats.Verified.Load())
		}
	}
}

// readFinal reads the whole final state through the first ready node, the balances through
// every node, and the digests when the nodes serve them.
func readFinal(parent context.Context, cluster *Cluster, w *Workload, issued uint64) (*FinalState, error) {
	ctx, cancel := context.WithTimeout(parent, finalReadMax)
	defer cancel()
	final := &FinalState{ProjectID: w.ProjectID, Wallets: w.Wallets, InitialBalance: w.InitialBalance,
		IssuedTotal: issued, Entries: map[string][]client.Entry{}, Balances: map[string]client.Amount{},
		NodeBalances: map[string]map[string]client.Amount{}, Digests: map[string]client.StateDigest{}}
	base := cluster.Nodes[0].AdminURL
	var err error
	if final.Transactions, err = w.client.ListTransactions(ctx, base, w.ProjectID); err != nil {
		return nil, err
	}
	if final.TransactionEvents, final.EventsLost, err = w.client.TransactionEvents(ctx, base, w.ProjectID); err != nil {
		return nil, err
	}
	for _, id := range w.Wallets {
		if final.Entries[id], err = w.client.ListEntries(ctx, base, w.ProjectID, id); err != nil {
			return nil, err
		}
	}
	final.Held = map[string]client.Amount{}
	for i, n := range cluster.Nodes {
		balances := map[string]client.Amount{}
		for _, id := range w.Wallets {
			wallet, err := w.client.ReadWallet(ctx, n.AdminURL, w.ProjectID, id)
			if err != nil {
				return nil, err
			}
			balances[id] = wallet.Balance
			if i == 0 {
				final.Held[id] = wallet.Held
			}
		}
		final.NodeBalances[n.ID] = balances
	}
	asset, err := w.client.ReadAsset(ctx, base, w.ProjectID, assetID)
	if err != nil {
		return nil, err
	}
	final.Supply = asset.Supply
	final.WalletShards = map[string]int{}
	for i, id := range w.Wallets {
		final.WalletShards[id] = w.WalletShard[i]
	}
	final.Balances = final.NodeBalances[cluster.Nodes[0].ID]

	// Digests: poll until, for every shard, each replica in its configuration (its leader's
	// word: moves change it) reports the same applied index.
	settle, cancelSettle := context.WithTimeout(ctx, digestSettleMax)
	defer cancelSettle()
	for attempt := 0; ; attempt++ {
		layout := cluster.Layout(settle)
		digests := map[string]client.StateDigest{}
		var firstErr error
		for _, n := range cluster.Nodes {
			d, err := w.client.Digest(settle, n.AdminURL)
			if errors.Is(err, errNoEndpoint) {
				final.DigestNote = "GET /debug/digest not served; digests computed offline from the stopped nodes' stores"
				return final, nil
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			digests[n.ID] = d
		}
		same := firstErr == nil && shardsSettled(digests, layout, w.Shards)
		if same || sleepCtx(settle, readyPollInterval) != nil {
			final.Digests, final.DigestSource = digests, "GET /debug/digest"
			final.ShardReplicas = map[string][]string{}
			for id, s := range layout {
				final.ShardReplicas[fmt.Sprintf("shard-%d", id)] = s.Replicas
			}
			for node, d := range digests {
				for _, s := range d.Shards {
					shard := fmt.Sprintf("shard-%d", s.Shard)
					if final.ShardDigests == nil {
						final.ShardDigests = map[string]map[string]client.StateDigest{}
					}
					if final.ShardDigests[shard] == nil {
						final.ShardDigests[shard] = map[string]client.StateDigest{}
					}
					final.ShardDigests[shard][node] = client.StateDigest{Digest: s.Digest, AppliedIndex: s.AppliedIndex}
				}
			}
			if !same {
				final.DigestNote = fmt.Sprintf("applied indexes did not settle within %v (last error: %v)", digestSettleMax, firstErr)
			}
			return final, nil
		}
	}
}

// shardsSettled reports whether every shard has a known configuration and every node it names
// lists the shard at one applied index.
func shardsSettled(digests map[string]client.StateDigest, layout map[int]ShardLayout, shardCount int) bool {
	if len(layout) < max(shardCount, 1) {
		return false
	}
	for id, s := range layout {
		var index uint64
		for i, node := range s.Replicas {
			at := slices.IndexFunc(digests[node].Shards, func(d client.ShardDigest) bool { return d.Shard == id })
			if at < 0 {
				return false
			}
			if applied := digests[node].Shards[at].AppliedIndex; i == 0 {
				index = applied
			} else if applied != index {
				return false
			}
		}
	}
	return true
}

// offlineDigests opens, on each stopped node, the ledger of every shard (the Pebble store
// under its data dir's shard-<id> folder) and hashes it with fsm.Machine.DigestAt: per shard,
// the digest and applied index of every replica.
func offlineDigests(cluster *Cluster, final *FinalState) {
	var notes []string
	final.ShardDigests = map[string]map[string]client.StateDigest{}
	for _, n := range cluster.Nodes {
		stores, err := findPebbleDirs(n.DataDir)
		if err != nil {
			notes = append(notes, n.ID+": "+err.Error())
			continue
		}
		for _, store := range stores {
			rel, err := filepath.Rel(n.DataDir, store)
			if err != nil {
				notes = append(notes, n.ID+": "+err.Error())
				continue
			}
			shard := strings.Split(filepath.ToSlash(rel), "/")[0]
			// ledger.Open takes the directory that holds the store, not the store itself.
			machine, _, err := ledger.Open(filepath.Dir(store), nil)
			if err != nil {
				notes = append(notes, n.ID+" "+shard+": "+err.Error())
				continue
			}
			digest, applied, err := machine.DigestAt()
			machine.Close()
			if err != nil {
				notes = append(notes, n.ID+" "+shard+": "+err.Error())
				continue
			}
			if final.ShardDigests[shard] == nil {
				final.ShardDigests[shard] = map[string]client.StateDigest{}
			}
			final.ShardDigests[shard][n.ID] = client.StateDigest{Digest: fmt.Sprintf("%x", digest), AppliedIndex: applied}
		}
	}
	if len(final.ShardDigests) > 0 && final.DigestSource == "" {
		final.DigestSource = "offline"
	}
	if len(notes) > 0 {
		final.DigestNote = strings.TrimPrefix(final.DigestNote+"; offline: "+strings.Join(notes, "; "), "; ")
	}
}

// findPebbleDirs finds the directories under root holding a Pebble store (a CURRENT file next
// to a MANIFEST), one per hosted shard.
func findPebbleDirs(root string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "CURRENT" {
			return nil
		}
		manifests, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "MANIFEST-*"))
		if len(manifests) > 0 {
			found = append(found, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no Pebble store under %s", root)
	}
	return found, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
