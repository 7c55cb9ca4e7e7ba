package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/fsm"
)

// leaderDuties proposes, for every shard this node leads, what the state machine needs the
// leader to propose by itself: StartHistoryChain once, on a shard whose history chain has not
// started (fsm/chain.go); RaiseRules once every replica's binary implements this one's rules
// version (fsm/rules.go); a Tick when work is due at a batch time (hold expiries), so it
// happens although no client writes to the shard. Everything it proposes is idempotent: two
// leaders for a moment, or a tick that crosses a write, change nothing twice.
type leaderDuties struct {
	cluster *cluster.Node
	logger  *slog.Logger
	stop    chan struct{}
	done    sync.WaitGroup
	// rulesWarnedAt is when a shard's rules raise last warned that a replica could not be
	// asked (the duties' goroutine alone uses it).
	rulesWarnedAt map[int]time.Time
}

// rulesWarnInterval spaces the warnings of a rules raise held back by a replica that cannot be
// asked: a replica down for its upgrade warns once; a dead non-voter a stopped move left keeps
// the shard on its old rules, and says so every few minutes (a probe found it at debug level).
const rulesWarnInterval = 5 * time.Minute

// dutyPollInterval is how often the duties look at the shards: a due hold expires within about
// this long of its time (plus a proposal).
const dutyPollInterval = 250 * time.Millisecond

// rulesAskInterval is how often a leader asks a shard's replicas again whether they all
// implement its rules version, after one did not (an upgrade in progress).
const rulesAskInterval = 5 * time.Second

// dutyProposeMax bounds one proposal of the duties.
const dutyProposeMax = 5 * time.Second

func startLeaderDuties(node *cluster.Node, logger *slog.Logger) *leaderDuties {
	d := &leaderDuties{cluster: node, logger: logger, stop: make(chan struct{})}
	d.done.Add(1)
	go d.run()
	return d
}

func (d *leaderDuties) run() {
	defer d.done.Done()
	ticker := time.NewTicker(dutyPollInterval)
	defer ticker.Stop()
	tick := fsm.EncodeCommand(&fsm.Tick{})
	startChain := fsm.EncodeCommand(&fsm.StartHistoryChain{})
	raiseRules := fsm.EncodeCommand(&fsm.RaiseRules{Version: fsm.RulesVersion})
	rulesAskedAt := map[int]time.Time{} // when a shard's replicas were last asked, and said no
	for {
		select {
		case <-d.stop:
			return
		case <-ticker.C:
		}
		now := time.Now().UnixMilli()
		for _, k := range d.cluster.HostedShards() {
			machine, ok := d.cluster.StateMachine(k).(*fsm.Machine)
			s := d.cluster.Shard(k)
			if !ok || s == nil || !s.LeaderReady() {
				continue
			}
			if !machine.HistoryChainStarted() {
				d.propose(k, startChain, "history chain start")
			}
			if machine.Rules() < fsm.RulesVersion && time.Since(rulesAskedAt[k]) >= rulesAskInterval {
				if d.replicasImplementRules(k) {
					d.propose(k, raiseRules, "rules raise")
				} else {
					rulesAskedAt[k] = time.Now()
				}
			}
			if due := machine.NextDueMs(); due == 0 || due > now {
				continue
			}
			d.propose(k, tick, "tick")
		}
	}
}

// replicasImplementRules says whether every replica of shardID runs a binary implementing this
// one's rules version (fsm/rules.go): while one does not (a rolling upgrade), the shard keeps
// its older rules.
func (d *leaderDuties) replicasImplementRules(shardID int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), dutyProposeMax)
	defer cancel()
	ok, err := d.cluster.ReplicasImplementRules(ctx, shardID, fsm.RulesVersion)
	if err != nil {
		if d.rulesWarnedAt == nil {
			d.rulesWarnedAt = map[int]time.Time{}
		}
		if time.Since(d.rulesWarnedAt[shardID]) >= rulesWarnInterval {
			d.rulesWarnedAt[shardID] = time.Now()
			d.logger.Warn("rules raise waits: a replica of the shard could not be asked whether it implements the new rules "+
				"(a node being upgraded, or a dead replica a stopped move left: finish or undo that move)",
				"shard", shardID, "rules", fsm.RulesVersion, "err", err)
		} else {
			d.logger.Debug("rules raise: replicas not all asked; retrying later", "shard", shardID, "err", err)
		}
	}
	return ok
}

func (d *leaderDuties) propose(shardID int, command []byte, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), dutyProposeMax)
	defer cancel()
	if _, err := d.cluster.Propose(ctx, shardID, command); err != nil {
		d.logger.Debug(what+" not applied; retrying at the next poll", "shard", shardID, "err", err)
	}
}

// Close stops the duties and waits for a proposal in flight.
func (d *leaderDuties) Close() {
	close(d.stop)
	d.done.Wait()
}
