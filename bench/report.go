package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// OutcomeCount counts the requests that ended with one outcome kind.
type OutcomeCount struct {
	Kind  string `json:"kind"`
	Class string `json:"class"`
	Count int64  `json:"count"`
}

// Latency holds the latency percentiles of a run in milliseconds (a
// measurement, not money: floats are fine here).
type Latency struct {
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
	MeanMs float64 `json:"meanMs"`
}

// Result is the outcome of one bench run; --json prints it as is.
type Result struct {
	System          string `json:"system"`
	Target          string `json:"target"`
	Scenario        string `json:"scenario"`
	OperationsPerTx int    `json:"operationsPerTx,omitempty"`
	// Batch is the transfers per request (--batch), when above 1.
	Batch          int     `json:"batch,omitempty"`
	Mode           string  `json:"mode"`
	RatePerSecond  float64 `json:"ratePerSecond,omitempty"`
	Clients        int     `json:"clients"`
	Wallets        int     `json:"wallets"`
	Seed           uint64  `json:"seed"`
	StartedAt      string  `json:"startedAt"`
	SetupSeconds   float64 `json:"setupSeconds"`
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	Requests       int64   `json:"requests"`
	OK             int64   `json:"ok"`
	Business       int64   `json:"business"`
	Errors         int64   `json:"errors"`
	Transport      int64   `json:"transport"`
	// ThroughputPerSecond counts every answered or failed request;
	// OKPerSecond only completed ones (the figure comparisons use).
	ThroughputPerSecond float64 `json:"throughputPerSecond"`
	OKPerSecond         float64 `json:"okPerSecond"`
	// OperationsPerSecond counts ledger operations completed (k per
	// multi-op transaction).
	OperationsPerSecond float64 `json:"operationsPerSecond"`
	// Tokens and TokensPerSecond count the GigPay payment tokens created
	// (token: created and claimed; token-batch: the created items of every
	// batch), whatever the requests' outcome.
	Tokens          int64   `json:"tokens,omitempty"`
	TokensPerSecond float64 `json:"tokensPerSecond,omitempty"`
	// Transfers and TransfersPerSecond count the transfers completed in the
	// transfer scenario: one per ok request, or the completed transactions of
	// every batch request (--batch), whatever the requests' outcome.
	Transfers          int64   `json:"transfers,omitempty"`
	TransfersPerSecond float64 `json:"transfersPerSecond,omitempty"`
	Latency            Latency `json:"latency"`
	// Phases are the latencies of each call of requests made of several
	// (the invoice scenario's create and read), by phase name.
	Phases   []PhaseLatency `json:"phases,omitempty"`
	Outcomes []OutcomeCount `json:"outcomes"`
	// Retries counts database retries by error kind (PostgreSQL only).
	Retries map[string]int64 `json:"retries,omitempty"`
	// Scheduled and Missed are set in open loop: requests the schedule
	// wanted before the deadline, and those never sent because the system
	// (or the harness) fell behind.
	Scheduled int64 `json:"scheduled,omitempty"`
	Missed    int64 `json:"missed,omitempty"`
	// Webhook is what the loopback webhook receiver got (--webhook).
	Webhook *WebhookResult `json:"webhook,omitempty"`
	// Shards is the cluster's shard count, when it said (GET /cluster).
	Shards int `json:"shards,omitempty"`
	// Cross is the cross-shard share of transfers asked for ("10%", "uniform"), or why it
	// does not apply ("n/a: 1 shard"); empty when the run has no placement.
	Cross string `json:"cross,omitempty"`
	// CrossShardRequests counts the requests whose wallets live on different shards, of
	// SpannedRequests whose shards were known (the share actually sent).
	CrossShardRequests int64 `json:"crossShardRequests,omitempty"`
	SpannedRequests    int64 `json:"spannedRequests,omitempty"`
	// Nodes are each target's counters over the measured phase (GigaLedger only).
	Nodes []NodeFigures `json:"nodes,omitempty"`
	// Routing is how the HTTP driver routed writes and who answered (GigaLedger only).
	Routing *RoutingResult `json:"routing,omitempty"`
	// HarnessCPUCores is the cores the harness process itself used over the measured phase
	// (its CPU time over the elapsed time); nil when not measured. Above some 20,000
	// requests/s the harness can be what limits a figure on a shared machine.
	HarnessCPUCores *float64 `json:"harnessCpuCores,omitempty"`
}

// PhaseLatency is the latency of one call of multi-call requests.
type PhaseLatency struct {
	Name    string  `json:"name"`
	Count   int64   `json:"count,omitempty"`
	Latency Latency `json:"latency"`
}

func microsToMs(micros int64) float64 { return float64(micros) / 1000 }

// latencyOf reads the percentiles of a histogram.
func latencyOf(histogram *hdrhistogram.Histogram) Latency {
	return Latency{
		P50Ms:  microsToMs(histogram.ValueAtPercentile(50)),
		P90Ms:  microsToMs(histogram.ValueAtPercentile(90)),
		P99Ms:  microsToMs(histogram.ValueAtPercentile(99)),
		P999Ms: microsToMs(histogram.ValueAtPercentile(99.9)),
		MaxMs:  microsToMs(histogram.Max()),
		MeanMs: histogram.Mean() / 1000,
	}
}

// buildResult merges the recorder's shards into a Result.
func buildResult(system string, config RunConfig, rec *recorder, elapsed time.Duration) *Result {
	merged := hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySignificantDigits)
	outcomes := map[string]*OutcomeCount{}
	retries := map[string]int64{}
	phases := map[string]*hdrhistogram.Histogram{}
	var tokens, transfers int64
	for _, shard := range rec.shards {
		shard.mutex.Lock()
		merged.Merge(shard.histogram)
		tokens += shard.tokens
		transfers += shard.transfers
		for name, histogram := range shard.phases {
			if phases[name] == nil {
				phases[name] = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySignificantDigits)
			}
			phases[name].Merge(histogram)
		}
		for kind, count := range shard.outcomes {
			total := outcomes[kind]
			if total == nil {
				total = &OutcomeCount{Kind: kind, Class: count.Class}
				outcomes[kind] = total
			}
			total.Count += count.Count
		}
		for kind, count := range shard.retries {
			retries[kind] += count
		}
		shard.mutex.Unlock()
	}
	mode := "closed-loop"
	if config.RatePerSecond > 0 {
		mode = "open-loop"
	}
	result := &Result{
		System:         system,
		Target:         config.Target,
		Scenario:       config.Scenario.Name,
		Mode:           mode,
		RatePerSecond:  config.RatePerSecond,
		Clients:        config.Clients,
		Wallets:        config.Scenario.Wallets,
		Seed:           config.Seed,
		StartedAt:      time.Now().Add(-elapsed).UTC().Format(time.RFC3339),
		ElapsedSeconds: elapsed.Seconds(),
		Latency:        latencyOf(merged),
	}
	for name, histogram := range phases {
		result.Phases = append(result.Phases, PhaseLatency{Name: name, Count: histogram.TotalCount(), Latency: latencyOf(histogram)})
		switch name {
		case spanCrossShard:
			result.CrossShardRequests += histogram.TotalCount()
			result.SpannedRequests += histogram.TotalCount()
		case spanSingleShard:
			result.SpannedRequests += histogram.TotalCount()
		}
	}
	slices.SortFunc(result.Phases, func(a, b PhaseLatency) int { return cmp.Compare(a.Name, b.Name) })
	if config.Scenario.Name == ScenarioMultiOp {
		result.OperationsPerTx = config.Scenario.OperationsPerTx
	}
	if placement := config.Scenario.Placement; placement != nil {
		result.Shards = placement.ShardCount
		result.Cross = formatShare(config.Scenario.CrossShare)
		if !placement.canCross() {
			result.Cross = "n/a: " + strconv.Itoa(placement.ShardCount) + " shard(s), every transfer is single-shard"
		}
	}
	if len(retries) > 0 {
		result.Retries = retries
	}
	for _, count := range outcomes {
		result.Outcomes = append(result.Outcomes, *count)
		result.Requests += count.Count
		switch count.Class {
		case OutcomeOK.String():
			result.OK += count.Count
		case OutcomeBusiness.String():
			result.Business += count.Count
		case OutcomeTransport.String():
			result.Transport += count.Count
		default:
			result.Errors += count.Count
		}
	}
	// Biggest first, then by name, so reports diff cleanly.
	slices.SortFunc(result.Outcomes, func(a, b OutcomeCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind))
	})
	if seconds := elapsed.Seconds(); seconds > 0 {
		result.ThroughputPerSecond = float64(result.Requests) / seconds
		result.OKPerSecond = float64(result.OK) / seconds
		operationsPerRequest := 1
		if config.Scenario.Name == ScenarioMultiOp {
			operationsPerRequest = config.Scenario.OperationsPerTx
		}
		if config.Scenario.Name != ScenarioReads && config.Scenario.Name != ScenarioInvoice && !IsGigPay(config.Scenario.Name) {
			result.OperationsPerSecond = result.OKPerSecond * float64(operationsPerRequest)
		}
	}
	if config.Scenario.Name == ScenarioTransfer {
		result.Transfers = result.OK
		if config.Scenario.Batch > 1 {
			result.Batch, result.Transfers = config.Scenario.Batch, transfers
		}
		if seconds := elapsed.Seconds(); seconds > 0 {
			result.TransfersPerSecond = float64(result.Transfers) / seconds
		}
	}
	if IsGigPay(config.Scenario.Name) {
		result.Tokens = tokens
		if seconds := elapsed.Seconds(); seconds > 0 {
			result.TokensPerSecond = float64(tokens) / seconds
		}
	}
	return result
}

// WriteJSON writes result as one indented JSON document.
func WriteJSON(out io.Writer, result *Result) error {
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(result)
}

// WriteTable writes result for people.
func WriteTable(out io.Writer, result *Result) error {
	table := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	scenario := result.Scenario
	if result.OperationsPerTx > 0 {
		scenario += fmt.Sprintf(" (%d ops/tx)", result.OperationsPerTx)
	}
	if result.Batch > 1 {
		scenario += fmt.Sprintf(" (batches of %d)", result.Batch)
	}
	mode := result.Mode
	if result.RatePerSecond > 0 {
		mode += fmt.Sprintf(" at %.0f req/s", result.RatePerSecond)
	}
	fmt.Fprintf(table, "system\t%s\t%s\n", result.System, result.Target)
	fmt.Fprintf(table, "scenario\t%s\t%s, %d clients, %d wallets, seed %d\n", scenario, mode, result.Clients, result.Wallets, result.Seed)
	fmt.Fprintf(table, "elapsed\t%.2f s\tsetup %.2f s, started %s\n", result.ElapsedSeconds, result.SetupSeconds, result.StartedAt)
	fmt.Fprintf(table, "requests\t%d\tok %d, business %d, errors %d, transport %d\n",
		result.Requests, result.OK, result.Business, result.Errors, result.Transport)
	fmt.Fprintf(table, "throughput\t%.1f req/s\tok %.1f/s", result.ThroughputPerSecond, result.OKPerSecond)
	if result.OperationsPerSecond > 0 {
		fmt.Fprintf(table, ", ledger operations %.1f/s", result.OperationsPerSecond)
	}
	if result.Tokens > 0 {
		fmt.Fprintf(table, ", tokens %.1f/s (%d)", result.TokensPerSecond, result.Tokens)
	}
	if result.Transfers > 0 {
		fmt.Fprintf(table, ", transfers %.1f/s (%d)", result.TransfersPerSecond, result.Transfers)
	}
	fmt.Fprintln(table)
	if result.Scheduled > 0 {
		fmt.Fprintf(table, "schedule\t%d planned\t%d missed (sent too late to fit the run)\n", result.Scheduled, result.Missed)
	}
	latency := result.Latency
	fmt.Fprintf(table, "latency ms\tp50 %.2f\tp90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
		latency.P50Ms, latency.P90Ms, latency.P99Ms, latency.P999Ms, latency.MaxMs, latency.MeanMs)
	for _, phase := range result.Phases {
		latency := phase.Latency
		fmt.Fprintf(table, "  %s ms\tp50 %.2f\tp90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
			phase.Name, latency.P50Ms, latency.P90Ms, latency.P99Ms, latency.P999Ms, latency.MaxMs, latency.MeanMs)
	}
	for _, outcome := range result.Outcomes {
		fmt.Fprintf(table, "  %s\t%d\t%s\n", outcome.Kind, outcome.Count, outcome.Class)
	}
	kinds := make([]string, 0, len(result.Retries))
	for kind := range result.Retries {
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		fmt.Fprintf(table, "  retried %s\t%d\t(inside requests)\n", kind, result.Retries[kind])
	}
	if result.Shards > 0 {
		fmt.Fprintf(table, "shards\t%d\tcross-shard transfers asked %s, sent %s\n", result.Shards, result.Cross, sentShare(result))
	}
	for _, node := range result.Nodes {
		fmt.Fprintf(table, "node\t%s\tlog fsyncs/s %s, log entries proposed/s %s, CPU cores %s\n", node.Target,
			formatRates([]NodeFigures{node}, func(n NodeFigures) *float64 { return n.FsyncsPerSecond }),
			formatRates([]NodeFigures{node}, func(n NodeFigures) *float64 { return n.LogEntriesPerSecond }),
			formatCores(node.CPUCores))
	}
	if us, ok := clusterCPUPerRequest(result); ok {
		fmt.Fprintf(table, "cluster CPU\t%.0f µs\tper completed request, all nodes\n", us)
	}
	if result.HarnessCPUCores != nil {
		fmt.Fprintf(table, "harness CPU\t%s cores\tthe bench process itself over the measured phase\n", formatCores(result.HarnessCPUCores))
	}
	if result.Routing != nil {
		fmt.Fprintf(table, "routing\t%s\t%s\n", result.Routing.Mode, formatRouting(result.Routing))
	}
	if result.Webhook != nil {
		writeWebhook(table, result.Webhook)
	}
	return table.Flush()
}

// spanLatency is "p50/p99" of a span's requests, or "-" when the run had none.
func spanLatency(result *Result, span string) string {
	for _, phase := range result.Phases {
		if phase.Name == span && phase.Count > 0 {
			return fmt.Sprintf("%.1f/%.1f", phase.Latency.P50Ms, phase.Latency.P99Ms)
		}
	}
	return "-"
}

// sentShare is the measured cross-shard share of a run's transfers ("10.2% of 12345").
func sentShare(result *Result) string {
	if result.SpannedRequests == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%% of %d", 100*float64(result.CrossShardRequests)/float64(result.SpannedRequests), result.SpannedRequests)
}

// writeWebhook adds the webhook receiver's lines to a result table.
func writeWebhook(table io.Writer, webhook *WebhookResult) {
	drain := fmt.Sprintf("drained in %.2f s", webhook.DrainSeconds)
	if !webhook.Drained {
		drain = fmt.Sprintf("NOT drained: %d of %d after %.2f s", webhook.Received, webhook.Expected, webhook.DrainSeconds)
	}
	fmt.Fprintf(table, "webhook\t%.1f events/s\tduring the load (%d events); %.1f/s load start to last arrival; %s\n",
		webhook.DuringLoadPerSecond, webhook.DuringLoad, webhook.OverallPerSecond, drain)
	fmt.Fprintf(table, "  events\t%d received\tof %d expected (ok + business; %d unknown), duplicates %d, holes %d, rejected %d, new connections %d\n",
		webhook.Received, webhook.Expected, webhook.Unknown, webhook.Duplicates, webhook.Holes, webhook.Rejected, webhook.Connections)
	lag := webhook.Lag
	fmt.Fprintf(table, "  lag ms\tp50 %.2f\tp90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f  (commit batch time to receipt)\n",
		lag.P50Ms, lag.P90Ms, lag.P99Ms, lag.P999Ms, lag.MaxMs, lag.MeanMs)
}

// WriteComparison prints results side by side with the ratio of every
// result's ok throughput to the baseline system's for the same scenario (scenarioPeer): the
// baseline system is that of the last result that is not a bare-HTTP run (the last one when
// all are). With bare-HTTP runs among them (--system bare) it adds "x bare HTTP":
// each result's rate over the bare run of the same scenario (barePeer), the share of the HTTP
// ceiling a system reaches. Every row shows the CPU the system's processes used (the nodes'
// sum, HTTP targets only) and the harness's own.
func WriteComparison(out io.Writer, results []*Result) error {
	if len(results) < 2 {
		return fmt.Errorf("compare needs at least two results, got %d", len(results))
	}
	baseline := results[len(results)-1]
	for index := len(results) - 1; index >= 0; index-- {
		if results[index].System != systemBare {
			baseline = results[index]
			break
		}
	}
	withBare := slices.ContainsFunc(results, func(result *Result) bool { return result.System == systemBare })
	table := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// GigPay runs add their tokens per second (a batch request creates many).
	withTokens := slices.ContainsFunc(results, func(result *Result) bool { return result.Tokens > 0 })
	// Transfer runs add their transfers per second (a batch request carries many).
	withTransfers := slices.ContainsFunc(results, func(result *Result) bool { return result.Transfers > 0 })
	header := []string{"system", "scenario", "clients", "ok/s"}
	if withTokens {
		header = append(header, "tokens/s")
	}
	if withTransfers {
		header = append(header, "transfers/s")
	}
	header = append(header, "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "business", "errors", "x "+baseline.System)
	if withBare {
		header = append(header, "x bare HTTP")
	}
	header = append(header, "server cores", "harness cores")
	// Sharded GigaLedger runs add the shard count, the cross-shard share (asked, sent), the
	// latencies of each span, and every node's log fsyncs and proposed entries per second.
	sharded := slices.ContainsFunc(results, func(result *Result) bool { return result.Shards > 0 || len(result.Nodes) > 0 })
	if sharded {
		header = append(header, "shards", "cross asked", "cross sent", "single p50/p99 ms", "cross p50/p99 ms", "fsyncs/s per node", "entries/s per node")
	}
	// GigaLedger runs through the HTTP driver add their routing mode and the share of answers
	// that came from the shard leader asked.
	routed := slices.ContainsFunc(results, func(result *Result) bool { return result.Routing != nil })
	if routed {
		header = append(header, "routing", "at leader")
	}
	fmt.Fprintln(table, strings.Join(header, "\t")+"\t")
	for _, result := range results {
		ratio := "-"
		if peer := scenarioPeer(results, result, baseline); peer.OKPerSecond > 0 {
			ratio = fmt.Sprintf("%.2f", result.OKPerSecond/peer.OKPerSecond)
		}
		tokens := ""
		if withTokens {
			cell := "-"
			if result.Tokens > 0 {
				cell = fmt.Sprintf("%.1f", result.TokensPerSecond)
			}
			tokens += cell + "\t"
		}
		if withTransfers {
			cell := "-"
			if result.Transfers > 0 {
				cell = fmt.Sprintf("%.1f", result.TransfersPerSecond)
			}
			tokens += cell + "\t"
		}
		scenario := result.Scenario
		if result.Batch > 1 {
			scenario += fmt.Sprintf("/batch %d", result.Batch)
		}
		fmt.Fprintf(table, "%s\t%s\t%d\t%.1f\t%s%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%s\t",
			result.System, scenario, result.Clients, result.OKPerSecond, tokens,
			result.Latency.P50Ms, result.Latency.P90Ms, result.Latency.P99Ms, result.Latency.P999Ms, result.Latency.MaxMs,
			result.Business, result.Errors+result.Transport, ratio)
		if withBare {
			cell := "-"
			if bare := barePeer(results, result); bare != nil {
				if mine, ceiling := comparableRate(result, bare); ceiling > 0 {
					cell = fmt.Sprintf("%.3f", mine/ceiling)
				}
			}
			fmt.Fprintf(table, "%s\t", cell)
		}
		serverCores := "-"
		if cores, ok := serverCPUCores(result); ok {
			serverCores = formatCores(&cores)
		}
		harnessCores := "-"
		if result.HarnessCPUCores != nil {
			harnessCores = formatCores(result.HarnessCPUCores)
		}
		fmt.Fprintf(table, "%s\t%s\t", serverCores, harnessCores)
		if sharded {
			shards, cross := "-", "-"
			if result.Shards > 0 {
				shards, cross = strconv.Itoa(result.Shards), result.Cross
				if strings.HasPrefix(cross, "n/a") {
					cross = "n/a"
				}
			}
			sent := "-"
			if result.SpannedRequests > 0 {
				sent = fmt.Sprintf("%.1f%%", 100*float64(result.CrossShardRequests)/float64(result.SpannedRequests))
			}
			fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t", shards, cross, sent, spanLatency(result, spanSingleShard), spanLatency(result, spanCrossShard),
				formatRates(result.Nodes, func(n NodeFigures) *float64 { return n.FsyncsPerSecond }),
				formatRates(result.Nodes, func(n NodeFigures) *float64 { return n.LogEntriesPerSecond }))
		}
		if routed {
			mode, atLeader := "-", "-"
			if routing := result.Routing; routing != nil {
				mode = routing.Mode
				if routing.Answers > 0 {
					atLeader = fmt.Sprintf("%.1f%%", 100*float64(routing.AtLeader)/float64(routing.Answers))
				}
			}
			fmt.Fprintf(table, "%s\t%s\t", mode, atLeader)
		}
		fmt.Fprintln(table)
	}
	return table.Flush()
}

// scenarioPeer is what result's "x baseline" divides by: the baseline system's last result of
// the same scenario, batch and operations per transaction (a run of several scenarios compares
// each with its own), else the baseline itself.
func scenarioPeer(results []*Result, result, baseline *Result) *Result {
	for index := len(results) - 1; index >= 0; index-- {
		candidate := results[index]
		if candidate.System == baseline.System && candidate.Scenario == result.Scenario && candidate.Batch == result.Batch &&
			candidate.OperationsPerTx == result.OperationsPerTx {
			return candidate
		}
	}
	return baseline
}

// barePeer is the bare-HTTP result of results that ran result's scenario (same scenario, batch
// and operations per transaction), nil when there is none; a bare result is its own peer.
func barePeer(results []*Result, result *Result) *Result {
	if result.System == systemBare {
		return result
	}
	for _, candidate := range results {
		if candidate.System == systemBare && candidate.Scenario == result.Scenario && candidate.Batch == result.Batch &&
			candidate.OperationsPerTx == result.OperationsPerTx {
			return candidate
		}
	}
	return nil
}

// comparableRate is result's and other's rates in one unit: transfers/s when both count
// transfers (a batch request carries many), else ok requests/s.
func comparableRate(result, other *Result) (float64, float64) {
	if result.Transfers > 0 && other.Transfers > 0 {
		return result.TransfersPerSecond, other.TransfersPerSecond
	}
	return result.OKPerSecond, other.OKPerSecond
}

// serverCPUCores is the cores the system under test's processes used over the measured phase:
// the sum of its nodes' (HTTP targets' /metrics); ok is false when a node's is n/a or the run
// read none (PostgreSQL).
func serverCPUCores(result *Result) (float64, bool) {
	if len(result.Nodes) == 0 {
		return 0, false
	}
	var cores float64
	for _, node := range result.Nodes {
		if node.CPUCores == nil {
			return 0, false
		}
		cores += *node.CPUCores
	}
	return cores, true
}
