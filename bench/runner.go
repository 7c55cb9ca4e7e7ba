package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Runner limits.
const (
	// latencyMinMicros and latencyMaxMicros bound the HDR histograms; an open
	// loop that falls behind can see latencies as long as the run itself.
	latencyMinMicros = 1
	latencyMaxMicros = int64(time.Hour / time.Microsecond)
	// latencySignificantDigits is the histograms' precision (0.1%).
	latencySignificantDigits = 3
	// histogramShardsMax bounds the number of histograms (each ~350 KiB);
	// clients share them round-robin under a mutex.
	histogramShardsMax = 16
	// progressInterval is how often the live line is refreshed.
	progressInterval = time.Second
)

// RunConfig holds the knobs of the measured phase.
type RunConfig struct {
	Scenario ScenarioConfig
	Clients  int
	Duration time.Duration
	// OperationsMax bounds the number of requests; 0 means only Duration
	// bounds the run.
	OperationsMax int64
	// RatePerSecond > 0 selects the open loop at that fixed arrival rate.
	RatePerSecond float64
	Seed          uint64
	// Target describes the system under test for the report (URLs or DSN
	// without password).
	Target string
	// Hooks, when not nil, run around the measured phase (--webhook).
	Hooks MeasureHooks
	// LatencyLog, when not nil, receives one CSV line per measured request once the run
	// ends (--latency-log): when it was due (Unix microseconds; the intended send time in the
	// open loop), its latency in microseconds and its outcome class. It lines the latency tail
	// up in time with what the nodes log.
	LatencyLog io.Writer
}

// MeasureHooks watch a run from outside the driver, around the measured phase and outside its
// timing. They are called in order from Run's goroutine: BeforeMeasure once setup and funding
// are done, MeasureStarted with the time the measured phase's clock starts, AfterMeasure once
// the load has stopped, with the result it may add to (the webhook receiver waits for the
// events still in flight and adds its figures).
type MeasureHooks interface {
	BeforeMeasure(ctx context.Context, driver Driver, config RunConfig) error
	MeasureStarted(at time.Time)
	AfterMeasure(ctx context.Context, result *Result, loadEnd time.Time) error
}

// latencyShard is one of the shared histograms.
type latencyShard struct {
	mutex     sync.Mutex
	histogram *hdrhistogram.Histogram
	outcomes  map[string]*OutcomeCount
	retries   map[string]int64
	// phases holds a histogram per phase name of requests made of several
	// calls; made on first use (only the invoice scenario has phases).
	phases map[string]*hdrhistogram.Histogram
	// tokens sums Outcome.Tokens, transfers Outcome.Transfers.
	tokens, transfers int64
	// timeline holds every request when RunConfig.LatencyLog is set.
	timeline []timedRequest
}

// timedRequest is one line of the latency log.
type timedRequest struct {
	dueMicros, latencyMicros int64
	class                    OutcomeClass
}

// liveCounters are read by the progress display while clients run.
type liveCounters struct {
	requests     atomic.Int64
	ok           atomic.Int64
	business     atomic.Int64
	failures     atomic.Int64 // errors and transport errors
	latencyMicro atomic.Int64 // sum, for the live mean
}

// recorder collects measurements from all clients.
type recorder struct {
	shards   []*latencyShard
	live     liveCounters
	timeline bool // keep every request for the latency log
}

func newRecorder(clients int, timeline bool) *recorder {
	count := min(clients, histogramShardsMax)
	r := &recorder{shards: make([]*latencyShard, count), timeline: timeline}
	for index := range r.shards {
		r.shards[index] = &latencyShard{
			histogram: hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySignificantDigits),
			outcomes:  map[string]*OutcomeCount{},
			retries:   map[string]int64{},
		}
	}
	return r
}

func (r *recorder) record(client int, due time.Time, latency time.Duration, outcome Outcome) {
	micros := min(max(latency.Microseconds(), latencyMinMicros), latencyMaxMicros)
	shard := r.shards[client%len(r.shards)]
	shard.mutex.Lock()
	_ = shard.histogram.RecordValue(micros) // in range by construction
	if r.timeline {
		shard.timeline = append(shard.timeline, timedRequest{due.UnixMicro(), micros, outcome.Class})
	}
	count := shard.outcomes[outcome.Kind]
	if count == nil {
		count = &OutcomeCount{Kind: outcome.Kind, Class: outcome.Class.String()}
		shard.outcomes[outcome.Kind] = count
	}
	count.Count++
	shard.tokens += int64(outcome.Tokens)
	shard.transfers += int64(outcome.Transfers)
	if outcome.Retries > 0 {
		shard.retries[outcome.RetryKind] += int64(outcome.Retries)
	}
	for _, phase := range outcome.Phases {
		histogram := shard.phases[phase.Name]
		if histogram == nil {
			if shard.phases == nil {
				shard.phases = map[string]*hdrhistogram.Histogram{}
			}
			histogram = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, latencySignificantDigits)
			shard.phases[phase.Name] = histogram
		}
		_ = histogram.RecordValue(min(max(phase.Latency.Microseconds(), latencyMinMicros), latencyMaxMicros))
	}
	shard.mutex.Unlock()

	r.live.requests.Add(1)
	r.live.latencyMicro.Add(micros)
	switch outcome.Class {
	case OutcomeOK:
		r.live.ok.Add(1)
	case OutcomeBusiness:
		r.live.business.Add(1)
	default:
		r.live.failures.Add(1)
	}
}

// Run sets up and funds the ledger through driver, then runs the measured
// phase and returns its result. Progress goes to progress (nil for none);
// interactive selects the overwriting one-line display.
func Run(ctx context.Context, driver Driver, config RunConfig, progress io.Writer, interactive bool) (*Result, error) {
	setupStart := time.Now()
	plan := SetupPlan{RunID: config.Scenario.RunID, Scenario: config.Scenario.Name, Wallets: config.Scenario.Wallets, Clients: config.Clients}
	if err := driver.Setup(ctx, plan); err != nil {
		return nil, fmt.Errorf("setup %s: %w", driver.System(), err)
	}
	if placer, ok := driver.(interface{ Placement() *WalletPlacement }); ok {
		config.Scenario.Placement = placer.Placement()
	}
	if config.Scenario.CrossShare != nil && config.Scenario.Placement == nil {
		return nil, fmt.Errorf("--cross: %s did not say where its wallets live (GigaLedger's GET /cluster gives the shard count)", driver.System())
	}
	funding := FundingRequests(config.Scenario.Name, config.Scenario.RunID, config.Scenario.Wallets, config.Scenario.Placement)
	err := forEachParallel(ctx, len(funding), config.Clients, func(ctx context.Context, index int) error {
		outcome := driver.Do(ctx, &funding[index])
		if outcome.Class != OutcomeOK {
			return fmt.Errorf("fund wallets: transaction %s: %s", funding[index].ReferenceID, outcome.Kind)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("setup %s: %w", driver.System(), err)
	}
	setupElapsed := time.Since(setupStart)
	if describer, ok := driver.(interface{ Describe() string }); ok && describer.Describe() != "" {
		config.Target += " (" + describer.Describe() + ")"
	}

	if config.Hooks != nil {
		if err := config.Hooks.BeforeMeasure(ctx, driver, config); err != nil {
			return nil, err
		}
	}
	rec := newRecorder(config.Clients, config.LatencyLog != nil)
	cpuBefore, cpuKnown := processCPUTime()
	start := time.Now()
	if config.Hooks != nil {
		config.Hooks.MeasureStarted(start)
	}
	deadline := start.Add(config.Duration)
	stopProgress := startProgress(progress, interactive, rec, start, config)
	var sent atomic.Int64
	if config.RatePerSecond > 0 {
		runOpenLoop(ctx, driver, config, rec, start, deadline, &sent)
	} else {
		runClosedLoop(ctx, driver, config, rec, deadline, &sent)
	}
	elapsed := time.Since(start)
	cpuAfter, cpuKnownAfter := processCPUTime()
	stopProgress()

	result := buildResult(driver.System(), config, rec, elapsed)
	if config.LatencyLog != nil {
		if err := rec.writeTimeline(config.LatencyLog); err != nil {
			return nil, fmt.Errorf("latency log: %w", err)
		}
	}
	result.SetupSeconds = setupElapsed.Seconds()
	if cpuKnown && cpuKnownAfter && elapsed > 0 {
		// The harness shares the machine with the system under test: past a few tens of
		// thousands of requests per second its own CPU is what a figure may be measuring.
		cores := (cpuAfter - cpuBefore).Seconds() / elapsed.Seconds()
		result.HarnessCPUCores = &cores
	}
	if config.RatePerSecond > 0 {
		scheduled := int64(math.Ceil(config.Duration.Seconds() * config.RatePerSecond))
		if config.OperationsMax > 0 {
			scheduled = min(scheduled, config.OperationsMax)
		}
		result.Scheduled = scheduled
		result.Missed = max(scheduled-sent.Load(), 0)
	}
	if config.Hooks != nil {
		if err := config.Hooks.AfterMeasure(ctx, result, start.Add(elapsed)); err != nil {
			return result, err
		}
	}
	if err := ctx.Err(); err != nil {
		return result, fmt.Errorf("run interrupted: %w", err)
	}
	return result, nil
}

// runClosedLoop lets every client send its next request as soon as the
// previous one is answered, until the deadline or the operation budget.
func runClosedLoop(ctx context.Context, driver Driver, config RunConfig, rec *recorder, deadline time.Time, sent *atomic.Int64) {
	var group sync.WaitGroup
	for client := range config.Clients {
		generator := NewGenerator(config.Scenario, config.Seed, client)
		group.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if config.OperationsMax > 0 && sent.Add(1) > config.OperationsMax {
					return
				}
				if config.OperationsMax == 0 {
					sent.Add(1)
				}
				request := generator.Next()
				begin := time.Now()
				outcome := driver.Do(ctx, &request)
				rec.record(client, begin, time.Since(begin), outcome)
			}
		})
	}
	group.Wait()
}

// runOpenLoop schedules requests at a fixed rate. Latency counts from the
// intended send time, so a server that stalls is charged for the requests
// that queued behind the stall (no coordinated omission). Requests whose
// turn did not come before the deadline are reported as missed.
func runOpenLoop(ctx context.Context, driver Driver, config RunConfig, rec *recorder, start, deadline time.Time, sent *atomic.Int64) {
	schedule := make(chan time.Time, config.Clients)
	interval := float64(time.Second) / config.RatePerSecond
	go func() {
		defer close(schedule)
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		for index := int64(0); config.OperationsMax == 0 || index < config.OperationsMax; index++ {
			intended := start.Add(time.Duration(float64(index) * interval))
			if !intended.Before(deadline) {
				return
			}
			select {
			case schedule <- intended:
			case <-timer.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	var group sync.WaitGroup
	for client := range config.Clients {
		generator := NewGenerator(config.Scenario, config.Seed, client)
		group.Go(func() {
			for intended := range schedule {
				if ctx.Err() != nil || !time.Now().Before(deadline) {
					continue // drain: counted as missed
				}
				if wait := time.Until(intended); wait > 0 {
					time.Sleep(wait)
				}
				sent.Add(1)
				request := generator.Next()
				outcome := driver.Do(ctx, &request)
				rec.record(client, intended, time.Since(intended), outcome)
			}
		})
	}
	group.Wait()
}

// startProgress prints a live line every progressInterval until the
// returned function is called. On a terminal it rewrites one line; otherwise
// it prints one line per interval.
func startProgress(out io.Writer, interactive bool, rec *recorder, start time.Time, config RunConfig) func() {
	if out == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(progressInterval)
		defer ticker.Stop()
		var lastRequests, lastLatency int64
		lastTime := start
		for {
			select {
			case <-done:
				if interactive {
					fmt.Fprint(out, "\r\033[K")
				}
				return
			case now := <-ticker.C:
				requests := rec.live.requests.Load()
				latency := rec.live.latencyMicro.Load()
				seconds := now.Sub(lastTime).Seconds()
				rate := float64(requests-lastRequests) / seconds
				meanMs := 0.0
				if requests > lastRequests {
					meanMs = float64(latency-lastLatency) / float64(requests-lastRequests) / 1000
				}
				line := fmt.Sprintf("%6.1fs/%s  %9d req  %9.0f req/s  mean %7.2f ms  ok %d  business %d  errors %d",
					now.Sub(start).Seconds(), config.Duration, requests, rate, meanMs,
					rec.live.ok.Load(), rec.live.business.Load(), rec.live.failures.Load())
				if interactive {
					fmt.Fprint(out, "\r\033[K"+line)
				} else {
					fmt.Fprintln(out, line)
				}
				lastRequests, lastLatency, lastTime = requests, latency, now
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// writeTimeline writes the latency log in the order requests were due.
func (r *recorder) writeTimeline(w io.Writer) error {
	var all []timedRequest
	for _, shard := range r.shards {
		all = append(all, shard.timeline...)
	}
	slices.SortFunc(all, func(a, b timedRequest) int { return cmp.Compare(a.dueMicros, b.dueMicros) })
	out := bufio.NewWriter(w)
	fmt.Fprintln(out, "due_unix_us,latency_us,outcome")
	for _, t := range all {
		fmt.Fprintf(out, "%d,%d,%s\n", t.dueMicros, t.latencyMicros, t.class)
	}
	return out.Flush()
}
