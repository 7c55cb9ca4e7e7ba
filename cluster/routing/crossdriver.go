package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// CrossDriver carries the cross-shard transactions of the coordinator shards this node leads
// (cluster/DESIGN.md, "Cross-shard transactions (issue 14)"): for each record not done it
// proposes CrossPrepare to every participant, CrossDecide to the coordinator once every vote is
// in (or, past CrossDeadline from the begin, with the votes it has: failed), CrossFinish to
// every participant and CrossDone to the coordinator. Each record is driven by its own
// goroutine, from the replicated record alone: a new leader resumes where the old one was, and
// two drivers for a moment (two leaders) change nothing twice, every step being idempotent.
type CrossDriver struct {
	shards Shards
	leads  func(shardID int) bool
	logger *slog.Logger
	// Deadline is how long after its begin a transaction waits for missing votes before it is
	// decided failed (ParticipantUnavailable).
	Deadline time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	inFlight map[string]bool // shard, project and transaction sequence of the records being driven
	count    atomic.Int64
}

// CrossDeadline is the protocol's wait for a participant's vote.
const CrossDeadline = 30 * time.Second

// Retrying a step that failed (a leader change, a participant unreachable): after
// crossRetryFirst, doubling up to crossRetryMax.
const (
	crossRetryFirst = 5 * time.Millisecond
	crossRetryMax   = 500 * time.Millisecond
	// crossProposeMax bounds one proposal of the driver.
	crossProposeMax = 5 * time.Second
	// crossScanMax bounds the records one scan starts driving.
	crossScanMax = 4096
	// crossScanInterval is how often a shard's records are scanned besides the wake-up of a
	// committed begin: a new leader resumes its records within about this long.
	crossScanInterval = 250 * time.Millisecond
)

// NewCrossDriver returns a driver that proposes through shards and drives the records of a
// shard while leads says this node leads it.
func NewCrossDriver(shards Shards, leads func(shardID int) bool, logger *slog.Logger) *CrossDriver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &CrossDriver{shards: shards, leads: leads, logger: logger, Deadline: CrossDeadline, ctx: ctx, cancel: cancel,
		inFlight: map[string]bool{}}
}

// InFlight is the number of transactions being driven now.
func (d *CrossDriver) InFlight() int64 { return d.count.Load() }

// Scan starts driving every record of shardID's coordinator that is not done and not driven
// yet. The caller scans when a begin commits (ledger.CrossChanged) and now and then (a new
// leader, a record whose goroutine gave up because leadership moved).
func (d *CrossDriver) Scan(shardID int) error {
	if d.ctx.Err() != nil || !d.leads(shardID) {
		return nil
	}
	l := d.shards.Ledger(shardID)
	if l == nil {
		return nil
	}
	pending, err := l.PendingCrossExcept(crossScanMax, func(projectID string, sequence uint64) bool {
		return d.driving(shardID, projectID, sequence)
	})
	if err != nil {
		return err
	}
	for i := range pending {
		d.start(shardID, &pending[i])
	}
	return nil
}

// ScanBegun starts driving the records begun on shardID since the last call
// (ledger.TakeBegunCross), reading each by its key; when some were not kept, it scans. It takes
// them on a replica that does not lead too, which drops them, so that they do not pile up.
func (d *CrossDriver) ScanBegun(shardID int) error {
	l := d.shards.Ledger(shardID)
	if l == nil {
		return nil
	}
	refs, lost := l.TakeBegunCross()
	if d.ctx.Err() != nil || !d.leads(shardID) {
		return nil
	}
	if lost {
		return d.Scan(shardID)
	}
	for _, ref := range refs {
		if d.driving(shardID, ref.ProjectID, ref.Sequence) {
			continue
		}
		x, err := l.PendingCrossOf(ref)
		if err != nil {
			return err
		}
		if x != nil {
			d.start(shardID, x)
		}
	}
	return nil
}

func crossDriveKey(shardID int, projectID string, sequence uint64) string {
	return fmt.Sprintf("%d\x00%s\x00%d", shardID, projectID, sequence)
}

// driving reports whether a goroutine drives the record already.
func (d *CrossDriver) driving(shardID int, projectID string, sequence uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inFlight[crossDriveKey(shardID, projectID, sequence)]
}

// start drives x in its own goroutine unless one drives it already.
func (d *CrossDriver) start(shardID int, x *ledger.CrossTransaction) {
	key := crossDriveKey(shardID, x.Transaction.ProjectID, x.Transaction.Sequence)
	d.mu.Lock()
	if d.inFlight[key] {
		d.mu.Unlock()
		return
	}
	d.inFlight[key] = true
	d.count.Add(1)
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.inFlight, key)
			d.mu.Unlock()
			d.count.Add(-1)
			d.wg.Done()
		}()
		d.drive(shardID, x)
	}()
}

// Run watches shards 0..shardCount−1 until Close: each is scanned when a begin commits on this
// node's replica of it, and every crossScanInterval.
func (d *CrossDriver) Run(shardCount int) {
	for k := range shardCount {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.watch(k)
		}()
	}
}

// watch drives shardID's records: those begun since the last round when a begin commits
// (ScanBegun), every pending one at the start and on each tick (Scan: a new leader, a record
// whose goroutine gave up).
func (d *CrossDriver) watch(shardID int) {
	ticker := time.NewTicker(crossScanInterval)
	defer ticker.Stop()
	scan := true
	for {
		var changed <-chan struct{} // nil while the shard is not hosted here: the ticker only
		if l := d.shards.Ledger(shardID); l != nil {
			changed = l.CrossChanged()
		}
		var err error
		if scan {
			err = d.Scan(shardID)
		} else {
			err = d.ScanBegun(shardID)
		}
		if err != nil {
			d.logger.Warn("cross-shard records unreadable", "shard", shardID, "err", err)
		}
		select {
		case <-d.ctx.Done():
			return
		case <-changed:
			scan = false
		case <-ticker.C:
			scan = true
		}
	}
}

// Close stops driving and waits for the goroutines; the records stay for the next leader.
func (d *CrossDriver) Close() {
	d.cancel()
	d.wg.Wait()
}

// drive carries one record until it is done, the node stops leading its coordinator, or the
// driver closes.
func (d *CrossDriver) drive(coordinator int, x *ledger.CrossTransaction) {
	c := crossRun{d: d, coordinator: coordinator, projectID: x.Transaction.ProjectID, id: x.Transaction.ID,
		votes: map[int]ledger.CrossVote{}, finished: map[int]bool{}}
	wait := crossRetryFirst
	for {
		done, err := c.step(x)
		if done {
			return
		}
		finished, refused := refusals(err)
		switch {
		case refused:
			// A shard refused a step: not a leader change but a bug or a commit that would
			// overflow (BalanceOverflow, retried until it fits). Said loudly, retried slowly.
			d.logger.Warn("cross-shard step refused; retrying", "shard", coordinator, "transaction", c.id, "err", err)
		case finished:
			// Every refusal says a participant has finished: the decision is made and the
			// record, read again below, says so. Another driver got further (two leaders for a
			// moment, each step idempotent), or a prepare came past its window and the deadline
			// decides without that vote.
			d.logger.Info("cross-shard step found a participant finished; reading the record again", "shard", coordinator,
				"transaction", c.id, "err", err)
		case err != nil:
			d.logger.Debug("cross-shard step not done; retrying", "shard", coordinator, "transaction", c.id, "err", err)
		}
		select {
		case <-d.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, crossRetryMax)
		if !d.leads(coordinator) {
			return
		}
		// Read the record again: another driver may have moved it on.
		l := d.shards.Ledger(coordinator)
		if l == nil {
			return
		}
		fresh, err := l.GetCrossTransaction(c.projectID, c.id)
		if err != nil {
			d.logger.Warn("cross-shard record unreadable", "shard", coordinator, "transaction", c.id, "err", err)
			continue
		}
		x = fresh
	}
}

// refusals sorts the errors err joins (decide joins every participant's): finished says one is
// a CrossShardTransactionFinished refusal, other that one is a refusal of another code. Errors
// that are no refusal (a leader change, a transport error) are neither.
func refusals(err error) (finished, other bool) {
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *fsm.Error:
			if e.Code == ledger.CodeCrossShardFinished {
				finished = true
			} else {
				other = true
			}
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return finished, other
}

// crossRun is one record's driving state: what survives between retries in memory (the votes
// received, the finishes acknowledged) is an optimisation only; the record says where the
// transaction is.
type crossRun struct {
	d           *CrossDriver
	coordinator int
	projectID   string
	id          string
	votes       map[int]ledger.CrossVote // the votes received, by shard
	finished    map[int]bool             // the finishes acknowledged, by shard
}

// step takes the record from where it is to done; an error leaves it for a retry.
func (c *crossRun) step(x *ledger.CrossTransaction) (bool, error) {
	if x.Done() {
		return true, nil
	}
	if x.Transaction.Status == ledger.TransactionPending {
		decided, err := c.decide(x)
		if err != nil || decided == nil {
			return false, err
		}
		x = decided
		if x.Done() {
			return true, nil
		}
	}
	// Decided: every participant applies the decision, then the record is done.
	errs := c.parallel(x.Participants, func(_ int, p ledger.CrossParticipant) error {
		if c.finished[p.Shard] {
			return nil
		}
		_, err := c.propose(p.Shard, &ledger.CrossFinish{ProjectID: c.projectID, TransactionID: c.id, Wallets: p.Wallets,
			Status: x.Transaction.Status, BeginAt: x.Transaction.CreatedAt})
		return err
	})
	var failed error
	for i, err := range errs {
		if err != nil {
			failed = err
			continue
		}
		c.finished[x.Participants[i].Shard] = true
	}
	if failed != nil {
		return false, failed
	}
	if _, err := c.propose(c.coordinator, &ledger.CrossDone{ProjectID: c.projectID, TransactionID: c.id}); err != nil {
		return false, err
	}
	return true, nil
}

// decide collects the votes and records the decision: with every vote, or without the missing
// ones once the deadline passed. nil, nil: votes are missing and the deadline is ahead.
func (c *crossRun) decide(x *ledger.CrossTransaction) (*ledger.CrossTransaction, error) {
	votes := make([]*ledger.CrossVote, len(x.Participants))
	errs := c.parallel(x.Participants, func(i int, p ledger.CrossParticipant) error {
		if v, ok := c.votes[p.Shard]; ok {
			votes[i] = &v // a vote never changes once recorded: no need to ask again
			return nil
		}
		// BeginAt lets the participant refuse a prepare delayed past its window (a participation
		// it trimmed must not be prepared again: fsm/ledger/crosstrim.go).
		v, err := c.propose(p.Shard, &ledger.CrossPrepare{ProjectID: c.projectID, TransactionID: c.id, Wallets: p.Wallets, Legs: p.Legs,
			BeginAt: x.Transaction.CreatedAt, CrossExtras: p.CrossExtras})
		if err != nil {
			return err
		}
		pa, ok := v.(*ledger.Participation)
		if !ok {
			return fmt.Errorf("shard %d answered a prepare with %T", p.Shard, v)
		}
		vote := pa.Vote
		votes[i] = &vote
		return nil
	})
	var missing error // every missing vote's cause (propose names the shard): a benign refusal must not hide another
	decide := &ledger.CrossDecide{ProjectID: c.projectID, TransactionID: c.id}
	for i, p := range x.Participants {
		if votes[i] == nil {
			missing = errors.Join(missing, errs[i])
			continue
		}
		c.votes[p.Shard] = *votes[i]
		decide.Votes = append(decide.Votes, ledger.ShardVote{Shard: p.Shard, Vote: *votes[i]})
	}
	if missing != nil && time.Since(time.UnixMilli(x.Transaction.CreatedAt)) < c.d.Deadline {
		return nil, missing
	}
	v, err := c.propose(c.coordinator, decide)
	if err != nil {
		return nil, err
	}
	decided, ok := v.(*ledger.CrossTransaction)
	if !ok || decided.Transaction == nil {
		return nil, fmt.Errorf("shard %d answered a decide with %T", c.coordinator, v)
	}
	return decided, nil
}

// parallel runs fn for every participant at once and returns their errors in order.
func (c *crossRun) parallel(ps []ledger.CrossParticipant, fn func(int, ledger.CrossParticipant) error) []error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i, ps[i])
		}()
	}
	wg.Wait()
	return errs
}

// propose sends one step to a shard (through its leader, wherever it is) and returns its value;
// a rejection is an error (the step is retried).
func (c *crossRun) propose(shardID int, cmd fsm.Command) (fsm.Value, error) {
	ctx, cancel := context.WithTimeout(c.d.ctx, crossProposeMax)
	defer cancel()
	out, err := c.d.shards.Propose(ctx, shardID, fsm.EncodeCommand(cmd))
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", shardID, err)
	}
	result, ok := out.(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("shard %d answered %T", shardID, out)
	}
	if result.Err != nil {
		return nil, fmt.Errorf("shard %d: %T: %w", shardID, cmd, result.Err)
	}
	return result.Value, nil
}
