package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// FaultKind names one kind of fault the nemesis injects.
type FaultKind string

// Fault kinds. Partition kinds need the namespace network.
const (
	// FaultKillLeader: SIGKILL the leader, hold, start it again on the same data.
	FaultKillLeader FaultKind = "kill-leader"
	// FaultKillFollower: SIGKILL one follower, hold, start it again.
	FaultKillFollower FaultKind = "kill-follower"
	// FaultIsolateLeader: drop all traffic between the leader and the other nodes (clients
	// still reach every node, so the old leader keeps receiving requests), hold, heal.
	FaultIsolateLeader FaultKind = "isolate-leader"
	// FaultSplit: a random node (leader or not) against the other two, hold, heal.
	FaultSplit FaultKind = "split"
	// FaultBridge: two nodes cannot see each other, the third sees both (a non-transitive
	// partition that makes leadership flap), hold, heal.
	FaultBridge FaultKind = "bridge"
	// FaultPause: SIGSTOP a node (the leader half of the time) for longer than the election
	// timeout, then SIGCONT.
	FaultPause FaultKind = "pause"
	// FaultRestartAll: SIGKILL every node at once, then start them all.
	FaultRestartAll FaultKind = "restart-all"
)

// AllFaultKinds is every kind, in the order the summary lists them.
var AllFaultKinds = []FaultKind{FaultKillLeader, FaultKillFollower, FaultIsolateLeader, FaultSplit,
	FaultBridge, FaultPause, FaultRestartAll}

// NeedsPartition reports whether a kind needs Network.Cut.
func (k FaultKind) NeedsPartition() bool {
	return k == FaultIsolateLeader || k == FaultSplit || k == FaultBridge
}

// Schedule shapes the nemesis: how long faults last and how long the cluster runs healthy
// between them.
type Schedule struct {
	Kinds    []FaultKind   // kinds to inject; in order when Ordered, else shuffled rounds
	Ordered  bool          // inject Kinds once each, in order (the short mode)
	GapMin   time.Duration // healthy time before each fault
	GapMax   time.Duration
	HoldMin  time.Duration // how long a fault lasts
	HoldMax  time.Duration
	PauseMin time.Duration // a pause lasts at least this (above the election timeout)
	// RecoverMax bounds the wait for every node to be ready after a fault is healed; longer
	// is a liveness anomaly (a stall like hashicorp/raft#696).
	RecoverMax time.Duration
	// MoveGapMin and MoveGapMax, when MoveGapMax is above 0, run the move nemesis (Mover)
	// beside the faults: the healthy (of moves; other faults may run) time before each move.
	MoveGapMin time.Duration
	MoveGapMax time.Duration
}

// Nemesis injects faults into a cluster on a schedule drawn from a seed.
type Nemesis struct {
	cluster  *Cluster
	workload *Workload
	rec      *Recorder
	schedule Schedule
	rng      *rand.Rand
	log      func(string)

	// faultMu is held for a whole fault (apply, hold, heal, recovery): the scheduled faults
	// and the move nemesis's kills take turns, so that two never start or stop one node.
	faultMu sync.Mutex

	mu       sync.Mutex
	Injected map[FaultKind]int
	// Stalls lists faults after which the cluster did not become ready within RecoverMax.
	Stalls []string
	// LeaderUnknown counts faults that targeted a random node because no node named a leader.
	LeaderUnknown int
}

// NewNemesis prepares a nemesis; Run starts it.
func NewNemesis(cluster *Cluster, workload *Workload, rec *Recorder, schedule Schedule, seed uint64, log func(string)) *Nemesis {
	return &Nemesis{cluster: cluster, workload: workload, rec: rec, schedule: schedule,
		rng: rand.New(rand.NewPCG(seed, 0xfa17)), log: log, Injected: map[FaultKind]int{}}
}

// nextKinds returns the next round of kinds.
func (n *Nemesis) nextKinds() []FaultKind {
	kinds := append([]FaultKind(nil), n.schedule.Kinds...)
	if !n.schedule.Ordered {
		n.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	}
	return kinds
}

func (n *Nemesis) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// faultsMax bounds the faults of one run.
const faultsMax = 100_000

// Run injects faults until stop ends (or, when Ordered, until every kind ran once). Each fault
// is healed before the next; after each, the cluster must become ready again and a quiescent
// snapshot is taken. It returns an error only when the cluster cannot be driven any more.
func (n *Nemesis) Run(stop context.Context) error {
	for count := 0; count < faultsMax; {
		for _, kind := range n.nextKinds() {
			if err := sleepCtx(stop, n.between(n.schedule.GapMin, n.schedule.GapMax)); err != nil {
				return nil
			}
			if err := n.inject(stop, kind); err != nil {
				return err
			}
			count++
		}
		if n.schedule.Ordered {
			return nil
		}
	}
	return nil
}

// leader finds the leader to target, or a random live node when none is named.
func (n *Nemesis) leader(ctx context.Context) (int, string) {
	wait, cancel := context.WithTimeout(ctx, n.schedule.RecoverMax)
	defer cancel()
	leader, endpoint := n.cluster.WaitLeader(wait)
	if leader != LeaderUnknown {
		return leader, "GET /cluster"
	}
	n.mu.Lock()
	n.LeaderUnknown++
	n.mu.Unlock()
	why := "no node named a leader"
	if !endpoint {
		why = "GET /cluster not served"
	}
	return n.rng.IntN(len(n.cluster.Nodes)), "random node (" + why + ")"
}

func (n *Nemesis) record(kind FaultKind, phase string, nodes []int, detail string) {
	ids := make([]string, len(nodes))
	for i, x := range nodes {
		ids[i] = n.cluster.Nodes[x].ID
	}
	n.rec.Record(Event{TimeNs: n.rec.Now(), Type: EventFault, Process: runnerProcess, Fault: string(kind),
		Phase: phase, Nodes: ids, Detail: detail})
	if phase == "start" {
		n.log(fmt.Sprintf("fault %-14s %v %s", kind, ids, detail))
	}
}

func (n *Nemesis) others(x int) []int {
	var out []int
	for i := range n.cluster.Nodes {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}

// inject runs one fault: apply, hold, heal, wait for recovery, snapshot.
func (n *Nemesis) inject(ctx context.Context, kind FaultKind) error {
	n.faultMu.Lock()
	defer n.faultMu.Unlock()
	hold := n.between(n.schedule.HoldMin, n.schedule.HoldMax)
	var targets []int
	var heal func() error
	detail := ""
	switch kind {
	case FaultKillLeader, FaultKillFollower:
		leader, how := n.leader(ctx)
		target := leader
		if kind == FaultKillFollower {
			others := n.others(leader)
			target = others[n.rng.IntN(len(others))]
		}
		targets, detail = []int{target}, "leader by "+how
		if err := n.cluster.Kill(target); err != nil {
			return err
		}
		heal = func() error { return n.cluster.Start(target) }
	case FaultIsolateLeader, FaultSplit:
		minority, how := n.leader(ctx)
		detail = "leader by " + how
		if kind == FaultSplit {
			minority = n.rng.IntN(len(n.cluster.Nodes))
			detail = "random minority"
		}
		targets = []int{minority}
		for _, other := range n.others(minority) {
			if err := n.cluster.Network.Cut(minority, other); err != nil {
				return errors.Join(err, n.cluster.Network.Heal())
			}
		}
		heal = n.cluster.Network.Heal
	case FaultBridge:
		middle := n.rng.IntN(len(n.cluster.Nodes))
		ends := n.others(middle)
		targets, detail = []int{middle}, "sees both sides"
		if err := n.cluster.Network.Cut(ends[0], ends[1]); err != nil {
			return errors.Join(err, n.cluster.Network.Heal())
		}
		heal = n.cluster.Network.Heal
	case FaultPause:
		target := n.rng.IntN(len(n.cluster.Nodes))
		detail = "random node"
		if n.rng.IntN(2) == 0 {
			var how string
			target, how = n.leader(ctx)
			detail = "leader by " + how
		}
		hold = max(hold, n.schedule.PauseMin)
		targets = []int{target}
		if err := n.cluster.Pause(target); err != nil {
			return err
		}
		heal = func() error { return n.cluster.Resume(target) }
	case FaultRestartAll:
		for i := range n.cluster.Nodes {
			targets = append(targets, i)
		}
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for _, i := range targets {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = n.cluster.Kill(i) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		hold = 0
		heal = func() error {
			for _, i := range targets {
				if err := n.cluster.Start(i); err != nil {
					return err
				}
			}
			return nil
		}
	default:
		return fmt.Errorf("unknown fault kind %q", kind)
	}
	n.record(kind, "start", targets, fmt.Sprintf("%s, hold %v", detail, hold.Round(time.Millisecond)))
	n.mu.Lock()
	n.Injected[kind]++
	n.mu.Unlock()
	// The hold ends early when the run ends; the heal always runs.
	_ = sleepCtx(ctx, hold)
	if err := heal(); err != nil {
		return fmt.Errorf("heal %s: %w", kind, err)
	}
	n.record(kind, "end", targets, "")
	n.cluster.client.CloseIdle()
	if err := n.awaitRecovery(kind); err != nil {
		return err
	}
	if !n.workload.Snapshot(n.rng, "after "+string(kind)) {
		n.log("snapshot after " + string(kind) + " did not settle")
	}
	return nil
}

// KillAndRestart is one fault of kind outside the schedule (the move nemesis's): SIGKILL node
// i, hold, start it again, wait for recovery; no other fault runs meanwhile. The hold ends
// early when ctx ends; the restart always runs.
func (n *Nemesis) KillAndRestart(ctx context.Context, kind FaultKind, i int, hold time.Duration, detail string) error {
	n.faultMu.Lock()
	defer n.faultMu.Unlock()
	if i < 0 || i >= len(n.cluster.Nodes) || !n.cluster.Running(i) {
		return fmt.Errorf("node %d is not running", i)
	}
	n.record(kind, "start", []int{i}, detail)
	n.mu.Lock()
	n.Injected[kind]++
	n.mu.Unlock()
	if err := n.cluster.Kill(i); err != nil {
		return err
	}
	_ = sleepCtx(ctx, hold)
	if err := n.cluster.Start(i); err != nil {
		return fmt.Errorf("restart %s: %w", n.cluster.Nodes[i].ID, err)
	}
	n.record(kind, "end", []int{i}, "")
	n.cluster.client.CloseIdle()
	return n.awaitRecovery(kind)
}

// recoverStallsMax: after this many RecoverMax waits without recovery the run is abandoned.
const recoverStallsMax = 3

// awaitRecovery waits until every node is ready. Not recovering within RecoverMax is recorded
// as a stall (an anomaly); not recovering after recoverStallsMax of them ends the run.
func (n *Nemesis) awaitRecovery(kind FaultKind) error {
	all := make([]int, len(n.cluster.Nodes))
	for i := range all {
		all[i] = i
	}
	for attempt := 1; attempt <= recoverStallsMax; attempt++ {
		wait, cancel := context.WithTimeout(context.Background(), n.schedule.RecoverMax)
		err := n.cluster.WaitReady(wait, all)
		cancel()
		if err == nil {
			return nil
		}
		stall := fmt.Sprintf("after %s the cluster was not ready within %v (wait %d): %v", kind, n.schedule.RecoverMax, attempt, err)
		n.mu.Lock()
		n.Stalls = append(n.Stalls, stall)
		n.mu.Unlock()
		n.rec.Record(Event{TimeNs: n.rec.Now(), Type: EventNote, Process: runnerProcess, Detail: "stall: " + stall})
		n.log("STALL " + stall)
	}
	return fmt.Errorf("cluster did not recover after %s", kind)
}
