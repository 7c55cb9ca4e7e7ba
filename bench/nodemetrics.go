package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Per-node figures next to throughput (issue 14, "Speed": the fsyncs per second of each node
// reported next to it). Each target's /metrics (Prometheus text, no token needed) is read just
// before the measured phase and just after it; a counter's rate is its difference over the time
// between the two reads. A counter a node does not export is reported as n/a, so the same
// harness works before and after the node learns to count its log fsyncs.

// Metric names read from every node; a family is summed over its label sets (shards).
const (
	// metricLogFsyncs counts the fsyncs of the node's Raft log store(s).
	metricLogFsyncs = "gigaledger_raftlog_fsyncs_total"
	// metricLogEntries counts the log entries this node proposed as a shard leader (one per
	// group-commit batch): the histogram's count of commands per entry.
	metricLogEntries = "gigaledger_shard_batch_commands_count"
	// metricCPUSeconds is the node process's CPU time (Prometheus's process collector): its
	// rate is the cores the node used, and the nodes' sum over the throughput the cluster's
	// CPU per request — the figure that says whether a machine is CPU-bound.
	metricCPUSeconds = "process_cpu_seconds_total"
)

// Limits of one /metrics read.
const (
	metricsBodyMaxBytes = 8 << 20
	metricsReadTimeout  = 5 * time.Second
)

// NodeFigures are one node's counters over the measured phase, per second; nil is n/a (the
// node does not export the counter, or its /metrics could not be read).
type NodeFigures struct {
	Target string `json:"target"`
	// FsyncsPerSecond is gigaledger_raftlog_fsyncs_total's rate.
	FsyncsPerSecond *float64 `json:"fsyncsPerSecond,omitempty"`
	// LogEntriesPerSecond is the rate of log entries the node proposed as a leader, all shards.
	LogEntriesPerSecond *float64 `json:"logEntriesPerSecond,omitempty"`
	// CPUCores is process_cpu_seconds_total's rate: the cores the node used.
	CPUCores *float64 `json:"cpuCores,omitempty"`
}

// nodeSample is one read of a node's counters; a missing counter is absent from values.
type nodeSample struct {
	at     time.Time
	values map[string]float64
}

// nodeMetricsProbe implements MeasureHooks: it reads every target's counters before and after
// the measured phase and adds NodeFigures to the result.
type nodeMetricsProbe struct {
	httpClient *http.Client
	targets    []string
	before     []nodeSample
}

func newNodeMetricsProbe(httpClient *http.Client, targets []string) *nodeMetricsProbe {
	return &nodeMetricsProbe{httpClient: httpClient, targets: targets}
}

// BeforeMeasure implements MeasureHooks.
func (p *nodeMetricsProbe) BeforeMeasure(ctx context.Context, driver Driver, config RunConfig) error {
	p.before = p.sampleAll(ctx)
	return nil
}

// MeasureStarted implements MeasureHooks.
func (p *nodeMetricsProbe) MeasureStarted(time.Time) {}

// AfterMeasure implements MeasureHooks.
func (p *nodeMetricsProbe) AfterMeasure(ctx context.Context, result *Result, loadEnd time.Time) error {
	after := p.sampleAll(ctx)
	for index, target := range p.targets {
		figures := NodeFigures{Target: target}
		seconds := after[index].at.Sub(p.before[index].at).Seconds()
		rate := func(name string) *float64 {
			first, ok1 := p.before[index].values[name]
			last, ok2 := after[index].values[name]
			if !ok1 || !ok2 || seconds <= 0 {
				return nil
			}
			perSecond := (last - first) / seconds
			return &perSecond
		}
		figures.FsyncsPerSecond = rate(metricLogFsyncs)
		figures.LogEntriesPerSecond = rate(metricLogEntries)
		figures.CPUCores = rate(metricCPUSeconds)
		result.Nodes = append(result.Nodes, figures)
	}
	return nil
}

// sampleAll reads every target once; a target that cannot be read has no values.
func (p *nodeMetricsProbe) sampleAll(ctx context.Context) []nodeSample {
	samples := make([]nodeSample, len(p.targets))
	for index, target := range p.targets {
		values, _ := p.read(ctx, target) // unreadable: n/a in the report
		samples[index] = nodeSample{at: time.Now(), values: values}
	}
	return samples
}

// read fetches target's /metrics and sums the counters the probe knows.
func (p *nodeMetricsProbe) read(ctx context.Context, target string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsReadTimeout)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	response, err := p.httpClient.Do(request)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", target, response.Status)
	}
	return sumCounters(io.LimitReader(response.Body, metricsBodyMaxBytes), metricLogFsyncs, metricLogEntries, metricCPUSeconds)
}

// sumCounters sums, for each name, the samples of that exact metric name in Prometheus text
// exposition read from in (every label set); names without a sample are absent.
func sumCounters(in io.Reader, names ...string) (map[string]float64, error) {
	wanted := map[string]bool{}
	for _, name := range names {
		wanted[name] = true
	}
	sums := map[string]float64{}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 || !wanted[line[:end]] {
			continue
		}
		name := line[:end]
		rest := line[end:]
		if rest[0] == '{' {
			closing := strings.LastIndexByte(rest, '}')
			if closing < 0 {
				continue
			}
			rest = rest[closing+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		value, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sums[name] += value
	}
	return sums, scanner.Err()
}

// hookChain runs several MeasureHooks as one: BeforeMeasure in order, AfterMeasure in reverse
// order, so that the innermost hook (the last) reads closest to the measured phase.
type hookChain []MeasureHooks

// BeforeMeasure implements MeasureHooks.
func (c hookChain) BeforeMeasure(ctx context.Context, driver Driver, config RunConfig) error {
	for _, hooks := range c {
		if err := hooks.BeforeMeasure(ctx, driver, config); err != nil {
			return err
		}
	}
	return nil
}

// MeasureStarted implements MeasureHooks.
func (c hookChain) MeasureStarted(at time.Time) {
	for _, hooks := range c {
		hooks.MeasureStarted(at)
	}
}

// AfterMeasure implements MeasureHooks.
func (c hookChain) AfterMeasure(ctx context.Context, result *Result, loadEnd time.Time) error {
	for index := len(c) - 1; index >= 0; index-- {
		if err := c[index].AfterMeasure(ctx, result, loadEnd); err != nil {
			return err
		}
	}
	return nil
}

// formatRates prints one figure per node ("412/398/405"), n/a for a node without it.
func formatRates(nodes []NodeFigures, figure func(NodeFigures) *float64) string {
	if len(nodes) == 0 {
		return "n/a"
	}
	parts := make([]string, len(nodes))
	for index, node := range nodes {
		parts[index] = "n/a"
		if value := figure(node); value != nil {
			parts[index] = strconv.FormatFloat(*value, 'f', 0, 64)
		}
	}
	return strings.Join(parts, "/")
}

// formatCores is a node's CPU cores with two decimals, or n/a.
func formatCores(cores *float64) string {
	if cores == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*cores, 'f', 2, 64)
}

// clusterCPUPerRequest is the nodes' CPU summed, in microseconds per completed request; ok is
// false when a node's CPU is n/a or nothing completed.
func clusterCPUPerRequest(result *Result) (float64, bool) {
	cores, ok := serverCPUCores(result)
	if !ok || result.OKPerSecond <= 0 {
		return 0, false
	}
	return cores / result.OKPerSecond * 1e6, true
}
