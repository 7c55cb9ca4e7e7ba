package shard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/shardtest"
)

func TestSingleNodeProposeApply(t *testing.T) {
	g := newGroup(t, 1, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)

	before := time.Now().UnixMilli()
	result, err := leader.shard.Propose(ctx, []byte("hello"))
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	if result != "1:hello" {
		t.Fatalf("result = %v, want 1:hello", result)
	}
	result, err = leader.shard.Propose(ctx, []byte("world"))
	if err != nil || result != "2:world" {
		t.Fatalf("second propose = %v, %v", result, err)
	}
	if got := leader.sm.Commands(); !slices.Equal(got, []string{"hello", "world"}) {
		t.Fatalf("commands = %v", got)
	}
	stamped := leader.sm.Times()[0]
	if stamped < before || stamped > time.Now().UnixMilli() {
		t.Fatalf("leader time %d outside [%d, now]", stamped, before)
	}
	if id, addr := leader.shard.Leader(); id != leader.id || addr != string(leader.addr) {
		t.Fatalf("Leader() = %q %q", id, addr)
	}
}

func TestProposeValidationAndCancellation(t *testing.T) {
	g := newGroup(t, 1, func(cfg *shard.Config) { cfg.BatchMaxBytes = 16 })
	leader := g.leader()

	if _, err := leader.shard.Propose(testutil.Context(t, testutil.WaitMax), make([]byte, 17)); !errors.Is(err, shard.ErrCommandTooLarge) {
		t.Fatalf("oversized command: err = %v, want ErrCommandTooLarge", err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := leader.shard.Propose(canceled, []byte("x"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("canceled before enqueue: err = %v, want context.Canceled and not outcome unknown", err)
	}
	if len(leader.sm.Commands()) != 0 {
		t.Fatalf("canceled proposal was applied")
	}
}

func TestFollowerRejectsWithErrNotLeader(t *testing.T) {
	g := newGroup(t, 3, nil)
	leader := g.leader()
	for _, follower := range g.followers(leader) {
		if _, err := follower.shard.Propose(testutil.Context(t, testutil.WaitMax), []byte("x")); !errors.Is(err, shard.ErrNotLeader) {
			t.Fatalf("propose on follower: err = %v, want ErrNotLeader", err)
		}
		if _, err := follower.shard.ReadIndex(testutil.Context(t, testutil.WaitMax)); !errors.Is(err, shard.ErrNotLeader) {
			t.Fatalf("read index on follower: err = %v, want ErrNotLeader", err)
		}
	}
}

// TestGroupCommitBatchesAndRoutesResults holds the apply goroutine on the first entry so that
// every other proposal queues, then checks they all went into one entry and each proposer got
// its own result.
func TestGroupCommitBatchesAndRoutesResults(t *testing.T) {
	const proposerCount = 200
	g := newGroup(t, 1, func(cfg *shard.Config) { cfg.PipelineMaxCount = 1 })
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)

	release := holdFirstApply(t, leader)

	type outcome struct {
		command string
		result  any
		err     error
	}
	outcomes := make(chan outcome, proposerCount)
	propose := func(command string) {
		result, err := leader.shard.Propose(ctx, []byte(command))
		outcomes <- outcome{command, result, err}
	}
	go propose("first")
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	for i := 1; i < proposerCount; i++ {
		go propose(fmt.Sprintf("cmd-%03d", i))
	}
	testutil.Eventually(t, "all other proposals queued", func() bool { return leader.shard.Stats().QueueDepth == proposerCount-1 })
	release()

	for range proposerCount {
		o := <-outcomes
		if o.err != nil {
			t.Fatalf("propose %s: %v", o.command, o.err)
		}
		var position int
		var echoed string
		if _, err := fmt.Sscanf(o.result.(string), "%d:%s", &position, &echoed); err != nil || echoed != o.command {
			t.Fatalf("proposer of %q got result %q", o.command, o.result)
		}
		if got := leader.sm.Commands()[position-1]; got != o.command {
			t.Fatalf("result position %d holds %q, not %q", position, got, o.command)
		}
	}
	if entries := leader.sm.AppliedEntries(); len(entries) != 2 {
		t.Fatalf("%d proposals used %d entries, want 2 (one held, one batch)", proposerCount, len(entries))
	}
	if stats := leader.shard.Stats(); stats.ProposedBatches != 2 || stats.ProposedCommands != proposerCount {
		t.Fatalf("stats = %+v", stats)
	}
}

func TestOverloadedWhenQueueFull(t *testing.T) {
	g := newGroup(t, 1, func(cfg *shard.Config) {
		cfg.PipelineMaxCount = 1
		cfg.ProposalQueueMaxCount = 2
	})
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 4)
	go func() { _, err := leader.shard.Propose(ctx, []byte("held")); errs <- err }()
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	// One waits in the batcher for a pipeline slot, two fill the queue.
	for waiting := 1; waiting <= 3; waiting++ {
		go func() { _, err := leader.shard.Propose(ctx, []byte("queued")); errs <- err }()
		testutil.Eventually(t, "proposal waiting", func() bool { return leader.shard.Stats().QueueDepth == waiting })
	}
	if _, err := leader.shard.Propose(ctx, []byte("rejected")); !errors.Is(err, shard.ErrOverloaded) {
		t.Fatalf("err = %v, want ErrOverloaded", err)
	}
	release()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("queued proposal: %v", err)
		}
	}
}

func TestReadIndex(t *testing.T) {
	g := newGroup(t, 3, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)

	// A quiet new leader: the commit index is its barrier, which the state machine never
	// sees; ReadIndex must still give an index WaitApplied reaches.
	index, err := leader.shard.ReadIndex(ctx)
	if err != nil {
		t.Fatalf("read index: %v", err)
	}
	if err := leader.shard.WaitApplied(ctx, index); err != nil {
		t.Fatalf("wait applied %d on a quiet leader: %v", index, err)
	}

	for i := range 10 {
		g.propose(ctx, fmt.Appendf(nil, "w%d", i))
	}
	lastWrite := slices.Max(leader.sm.AppliedEntries())
	index, err = leader.shard.ReadIndex(ctx)
	if err != nil {
		t.Fatalf("read index: %v", err)
	}
	if index < lastWrite {
		t.Fatalf("read index %d below acknowledged write %d", index, lastWrite)
	}
	// Followers reach the leader's read index by apply notifications.
	for _, follower := range g.followers(leader) {
		if err := follower.shard.WaitApplied(ctx, index); err != nil {
			t.Fatalf("follower wait applied: %v", err)
		}
		if got := follower.sm.Commands(); len(got) != 10 {
			t.Fatalf("follower at read index has %d commands", len(got))
		}
	}

	// Concurrent reads share verification rounds.
	roundsBefore := leader.shard.Stats().ReadIndexRounds
	const readerCount = 256
	var wg sync.WaitGroup
	errs := make(chan error, readerCount)
	start := make(chan struct{})
	for range readerCount {
		wg.Go(func() {
			<-start
			if _, err := leader.shard.ReadIndex(ctx); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent read index: %v", err)
	}
	// How many rounds they shared depends on scheduling (TestLeaderVerifierCoalesces checks
	// the coalescing deterministically).
	t.Logf("%d concurrent reads used %d verification rounds", readerCount, leader.shard.Stats().ReadIndexRounds-roundsBefore)

	// WaitApplied honours ctx.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := leader.shard.WaitApplied(short, index+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a future index: err = %v, want deadline exceeded", err)
	}
}

// TestSnapshotInstallOnLaggingFollower cuts a follower off, writes and snapshots on the
// leader with a tiny trailing log, and checks the follower catches up through InstallSnapshot
// (Restore) and then through normal replication.
func TestSnapshotInstallOnLaggingFollower(t *testing.T) {
	g := newGroup(t, 3, func(cfg *shard.Config) { cfg.TrailingLogsCount = 1 })
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	lagging := g.followers(leader)[0]

	g.propose(ctx, []byte("before"))
	testutil.Eventually(t, "lagging follower has the first write", func() bool { return len(lagging.sm.Commands()) == 1 })

	lagging.transport.DisconnectAll()
	for _, r := range g.replicas {
		if r != lagging {
			r.transport.Disconnect(lagging.addr)
		}
	}
	for i := range 50 {
		g.propose(ctx, fmt.Appendf(nil, "while-away-%d", i))
	}
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	g.connectAll()
	g.propose(ctx, []byte("after"))
	want := leader.sm.Commands()
	testutil.Eventually(t, "lagging follower caught up", func() bool { return slices.Equal(lagging.sm.Commands(), want) })
	if lagging.sm.RestoreCount() != 1 {
		t.Fatalf("lagging follower restored %d times, want 1 (InstallSnapshot)", lagging.sm.RestoreCount())
	}
}

// TestRestartReplaysOnlyAboveAppliedIndex restarts a replica whose state machine kept its
// state and checks nothing at or below its applied index reaches it again.
func TestRestartReplaysOnlyAboveAppliedIndex(t *testing.T) {
	g := newGroup(t, 1, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	for i := range 20 {
		g.propose(ctx, fmt.Appendf(nil, "a%d", i))
	}
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	for i := range 5 {
		g.propose(ctx, fmt.Appendf(nil, "b%d", i))
	}
	sm := leader.sm
	appliedAtClose := sm.AppliedIndex()
	entriesAtClose := len(sm.AppliedEntries())
	wantCommands := sm.Commands()

	g.restart(leader, sm)
	g.propose(ctx, []byte("after-restart"))
	for _, index := range sm.AppliedEntries()[entriesAtClose:] {
		if index <= appliedAtClose {
			t.Fatalf("entry %d applied again after restart (applied index was %d)", index, appliedAtClose)
		}
	}
	if skipped := sm.SkippedEntries(); len(skipped) != 0 {
		t.Fatalf("state machine was handed already-applied entries %v", skipped)
	}
	if sm.RestoreCount() != 0 {
		t.Fatalf("snapshot restored into a state machine that had its state")
	}
	if got := sm.Commands(); !slices.Equal(got, append(wantCommands, "after-restart")) {
		t.Fatalf("commands after restart = %v", got)
	}
}

// TestRestartWithLostStateRestoresLocalSnapshot models a state machine that lost its data:
// raft will not replay entries covered by the snapshot, so Open must restore it.
func TestRestartWithLostStateRestoresLocalSnapshot(t *testing.T) {
	g := newGroup(t, 1, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	for i := range 10 {
		g.propose(ctx, fmt.Appendf(nil, "a%d", i))
	}
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	g.propose(ctx, []byte("tail"))
	want := leader.sm.Commands()

	fresh := shardtest.NewRecorder()
	g.restart(leader, fresh)
	testutil.Eventually(t, "state rebuilt from snapshot and log", func() bool { return slices.Equal(fresh.Commands(), want) })
	if fresh.RestoreCount() != 1 {
		t.Fatalf("restore count = %d, want 1", fresh.RestoreCount())
	}
}

func TestCloseFailsQueuedProposals(t *testing.T) {
	g := newGroup(t, 1, func(cfg *shard.Config) { cfg.PipelineMaxCount = 1 })
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 4)
	go func() { _, err := leader.shard.Propose(ctx, []byte("held")); errs <- err }()
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	for range 3 {
		go func() { _, err := leader.shard.Propose(ctx, []byte("queued")); errs <- err }()
	}
	testutil.Eventually(t, "proposals queued", func() bool { return leader.shard.Stats().QueueDepth == 3 })
	closed := make(chan error, 1)
	go func() { closed <- leader.shard.Close() }()
	for range 3 {
		if err := <-errs; !errors.Is(err, shard.ErrClosed) || !errors.Is(err, shard.ErrNotLeader) {
			t.Fatalf("queued proposal at close: err = %v, want ErrClosed (and ErrNotLeader)", err)
		}
	}
	release()
	if err := <-errs; err != nil && !errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("in-flight proposal at close: err = %v, want a result or ErrOutcomeUnknown", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := leader.shard.Propose(ctx, []byte("late")); !errors.Is(err, shard.ErrClosed) {
		t.Fatalf("propose after close: %v", err)
	}
	if leader.shard.State() != raft.Shutdown {
		t.Fatalf("state after close = %v", leader.shard.State())
	}
}

// holdFirstApply makes the first entry's apply block until the returned release runs (also
// run at cleanup, before the group closes).
func holdFirstApply(t *testing.T, r *replica) (release func()) {
	gate := make(chan struct{})
	var holdOnce, releaseOnce sync.Once
	r.sm.SetBeforeApply(func(uint64) { holdOnce.Do(func() { <-gate }) })
	release = func() { releaseOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// The replica's Raft position is exported, so dashboards can show the leader and the lag.
func TestRaftGaugesExported(t *testing.T) {
	g := newGroup(t, 1, nil)
	leader := g.leader()
	if _, err := leader.shard.Propose(testutil.Context(t, testutil.WaitMax), []byte("x")); err != nil {
		t.Fatal(err)
	}
	families, err := leader.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetGauge() != nil {
				values[f.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if values["gigaledger_shard_is_leader"] != 1 || values["gigaledger_shard_raft_term"] < 1 ||
		values["gigaledger_shard_applied_index"] < 1 || values["gigaledger_shard_raft_commit_index"] < values["gigaledger_shard_applied_index"] {
		t.Fatalf("raft gauges: %v", values)
	}
}

// lingerGroup is one replica whose batcher holds small batches (BatchLingerCount 3) by a fake
// clock: a hold ends when the batch reaches 3 or the test expires it, never by itself. A
// command starting with "!" is urgent (Config.Urgent).
func lingerGroup(t *testing.T) (*group, *shard.FakeClock) {
	clock := shard.NewFakeClock()
	g := newGroup(t, 1, func(cfg *shard.Config) {
		cfg.PipelineMaxCount = 2
		cfg.BatchLinger = 2 * time.Millisecond
		cfg.BatchLingerCount = 3
		cfg.Urgent = func(command []byte) bool { return bytes.HasPrefix(command, []byte("!")) }
		shard.UseFakeClock(cfg, clock)
	})
	return g, clock
}

// While a batch is in flight, proposals arriving right after it wait for each other and go as
// one entry once there are BatchLingerCount of them.
func TestLingerHoldsSmallBatchUntilCount(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 4)
	propose := func(command string) {
		_, err := leader.shard.Propose(ctx, []byte(command))
		errs <- err
	}
	go propose("first")
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	if clock.Holds() != 0 {
		t.Fatalf("the first batch (none before it) was held")
	}
	go propose("a")
	testutil.Eventually(t, "a held", func() bool { return clock.Holds() == 1 && leader.shard.Stats().QueueDepth == 1 })
	go propose("b")
	testutil.Eventually(t, "b held with a", func() bool { return leader.shard.Stats().QueueDepth == 2 })
	if batches := leader.shard.Stats().ProposedBatches; batches != 1 {
		t.Fatalf("%d batches proposed while a and b are held, want 1", batches)
	}
	go propose("c")
	testutil.Eventually(t, "a, b and c proposed as one batch", func() bool { return leader.shard.Stats().ProposedBatches == 2 })
	release()
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("propose: %v", err)
		}
	}
	if entries := leader.sm.AppliedEntries(); len(entries) != 2 {
		t.Fatalf("4 proposals used %d entries, want 2 (first, then a+b+c)", len(entries))
	}
	if clock.Holds() != 1 {
		t.Fatalf("%d holds, want 1", clock.Holds())
	}
}

// A hold ends when its time is up, with whatever arrived.
func TestLingerHoldExpires(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 2)
	go func() { _, err := leader.shard.Propose(ctx, []byte("first")); errs <- err }()
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	go func() { _, err := leader.shard.Propose(ctx, []byte("a")); errs <- err }()
	testutil.Eventually(t, "a held", func() bool { return clock.Holds() == 1 && leader.shard.Stats().QueueDepth == 1 })
	clock.Expire()
	testutil.Eventually(t, "a proposed alone", func() bool { return leader.shard.Stats().ProposedBatches == 2 })
	release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("propose: %v", err)
		}
	}
	if entries := leader.sm.AppliedEntries(); len(entries) != 2 {
		t.Fatalf("2 proposals used %d entries, want 2", len(entries))
	}
}

// A hold cut short by Close answers ErrClosed: nothing of the held batch reached raft.
func TestLingerCloseFailsHeldBatch(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	first := make(chan error, 1)
	go func() { _, err := leader.shard.Propose(ctx, []byte("first")); first <- err }()
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	held := make(chan error, 2)
	for _, command := range []string{"a", "b"} {
		go func() { _, err := leader.shard.Propose(ctx, []byte(command)); held <- err }()
	}
	testutil.Eventually(t, "a and b held", func() bool { return clock.Holds() == 1 && leader.shard.Stats().QueueDepth == 2 })
	closed := make(chan error, 1)
	go func() { closed <- leader.shard.Close() }()
	for range 2 {
		if err := <-held; !errors.Is(err, shard.ErrClosed) {
			t.Fatalf("held proposal at close: err = %v, want ErrClosed", err)
		}
	}
	release()
	if err := <-first; err != nil && !errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("in-flight proposal at close: err = %v, want a result or ErrOutcomeUnknown", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if batches := leader.shard.Stats().ProposedBatches; batches != 1 {
		t.Fatalf("%d batches proposed, want 1 (the held one never went)", batches)
	}
}

// An urgent proposal is never held, even while another batch is in flight: a proposer that
// waits on a chain of proposals (a cross-shard transaction's steps) would pay a hold at each.
func TestLingerNeverHoldsAnUrgentProposal(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 2)
	go func() { _, err := leader.shard.Propose(ctx, []byte("first")); errs <- err }()
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	go func() { _, err := leader.shard.Propose(ctx, []byte("!step")); errs <- err }()
	testutil.Eventually(t, "the urgent proposal proposed at once", func() bool { return leader.shard.Stats().ProposedBatches == 2 })
	if holds := clock.Holds(); holds != 0 {
		t.Fatalf("%d holds for an urgent proposal, want 0", holds)
	}
	release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("propose: %v", err)
		}
	}
}

// An urgent proposal that arrives while a batch is held ends the hold: it goes with what was
// held, as one entry.
func TestLingerUrgentProposalEndsAHold(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	release := holdFirstApply(t, leader)

	errs := make(chan error, 3)
	propose := func(command string) {
		_, err := leader.shard.Propose(ctx, []byte(command))
		errs <- err
	}
	go propose("first")
	testutil.Eventually(t, "first batch in flight", func() bool { return leader.shard.Stats().ProposedBatches == 1 })
	go propose("a")
	testutil.Eventually(t, "a held", func() bool { return clock.Holds() == 1 && leader.shard.Stats().QueueDepth == 1 })
	go propose("!step")
	testutil.Eventually(t, "a and the urgent step proposed as one batch", func() bool { return leader.shard.Stats().ProposedBatches == 2 })
	release()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("propose: %v", err)
		}
	}
	if entries := leader.sm.AppliedEntries(); len(entries) != 2 {
		t.Fatalf("3 proposals used %d entries, want 2 (first, then a and the step)", len(entries))
	}
	if commands := leader.sm.Commands(); len(commands) != 3 || commands[0] != "first" {
		t.Fatalf("applied %q, want first, then a and !step", commands)
	}
}

// A lone sequential proposer never waits: when its next proposal comes, its previous batch is
// no longer in flight, whatever the clock says.
func TestLingerNeverHoldsALoneSequentialProposer(t *testing.T) {
	g, clock := lingerGroup(t)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	for i := range 20 {
		if _, err := leader.shard.Propose(ctx, []byte(fmt.Sprintf("cmd-%d", i))); err != nil {
			t.Fatalf("propose %d: %v", i, err)
		}
	}
	if holds := clock.Holds(); holds != 0 {
		t.Fatalf("%d holds for a lone sequential proposer, want 0", holds)
	}
}

// TestLeaderReadyWaitsForTheBacklog: a replica elected while its state machine still applies
// the log committed before its term leads (IsLeader) but is not ready (LeaderReady) until that
// backlog is applied. Leader duties that read the state ask LeaderReady: a cross-shard driver
// that scanned records mid-replay proposed steps their shards had already taken (hundreds of
// "cross-shard step refused" warnings after a kill -9).
func TestLeaderReadyWaitsForTheBacklog(t *testing.T) {
	g := newGroup(t, 1, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	for i := range 5 {
		g.propose(ctx, fmt.Appendf(nil, "c%d", i))
	}
	// The state lost (no snapshot): the restarted replica applies the whole log again, held
	// at its first entry.
	sm := shardtest.NewRecorder()
	release, held := make(chan struct{}), make(chan struct{})
	var holding, releasing sync.Once
	sm.SetBeforeApply(func(uint64) {
		holding.Do(func() { close(held) })
		<-release
	})
	// Registered after the group's cleanup, so it runs first: a failure below must not leave the
	// apply goroutine held while the group closes the replica.
	t.Cleanup(func() { releasing.Do(func() { close(release) }) })
	g.restart(leader, sm)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the restarted replica applied nothing")
	}
	testutil.Eventually(t, "the replica leads again", func() bool { return leader.shard.IsLeader() })
	if leader.shard.LeaderReady() || leader.shard.Stats().LeaderReady {
		t.Fatal("ready while its state machine is held before the log it had committed")
	}
	releasing.Do(func() { close(release) })
	testutil.Eventually(t, "the leader ready once the backlog is applied", func() bool { return leader.shard.LeaderReady() })
	if got := len(sm.Commands()); got < 5 {
		t.Fatalf("ready with %d of the 5 commands applied", got)
	}
}

// RemoveServerKeeping removes a replica only while the replica named to keep votes and enough
// voters stay (the guard two moves of one shard to one destination meet); removing one that is
// not there changes nothing.
func TestRemoveServerKeeping(t *testing.T) {
	g := newGroup(t, 3, nil)
	ctx := testutil.Context(t, testutil.WaitMax)
	leader := g.leader()
	followers := g.followers(leader)
	if err := leader.shard.RemoveServerKeeping(ctx, "node9", leader.id, 3); err != nil {
		t.Fatalf("a server not in the configuration: %v", err)
	}
	if err := leader.shard.RemoveServerKeeping(ctx, followers[0].id, "node9", 2); !errors.Is(err, shard.ErrNotVoter) {
		t.Fatalf("keeping a server that does not vote: %v, want ErrNotVoter", err)
	}
	if err := leader.shard.RemoveServerKeeping(ctx, followers[0].id, followers[1].id, 3); !errors.Is(err, shard.ErrReplicaCountShort) {
		t.Fatalf("leaving 2 of 3: %v, want ErrReplicaCountShort", err)
	}
	if servers, err := leader.shard.Servers(); err != nil || len(servers) != 3 {
		t.Fatalf("after the refusals: %v %v", servers, err)
	}
	if voters := gaugeValue(t, leader, "gigaledger_shard_raft_voters"); voters != 3 {
		t.Fatalf("raft_voters %v with 3 voters", voters)
	}
	if err := leader.shard.RemoveServerKeeping(ctx, followers[0].id, followers[1].id, 2); err != nil {
		t.Fatalf("leaving 2 of 2: %v", err)
	}
	if servers, err := leader.shard.Servers(); err != nil || len(servers) != 2 {
		t.Fatalf("after the removal: %v %v", servers, err)
	}
	// What an operator's alert reads: the shard is short of voters.
	if voters := gaugeValue(t, leader, "gigaledger_shard_raft_voters"); voters != 2 {
		t.Fatalf("raft_voters %v after the removal, want 2", voters)
	}
}

// gaugeValue reads one gauge of a replica's registry (the single series its shard exports).
func gaugeValue(t *testing.T, r *replica, name string) float64 {
	t.Helper()
	families, err := r.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
