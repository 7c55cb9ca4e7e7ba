package shard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/shard"
)

// The shard with the real state machine, whose snapshots are Pebble checkpoints.

type ledgerReplica struct {
	id        string
	addr      raft.ServerAddress
	raftDir   string
	stateDir  string
	transport *raft.InmemTransport
	machine   *fsm.Machine
	shard     *shard.Shard
}

type ledgerGroup struct {
	t        *testing.T
	replicas []*ledgerReplica
	tune     func(*shard.Config)
}

var _ shard.CheckpointStateMachine = (*fsm.Machine)(nil)

func newLedgerGroup(t *testing.T, size int, tune func(*shard.Config)) *ledgerGroup {
	t.Helper()
	g := &ledgerGroup{t: t, tune: tune}
	for i := range size {
		id := fmt.Sprintf("node%d", i+1)
		addr, transport := raft.NewInmemTransport(raft.ServerAddress(id))
		root := t.TempDir()
		g.replicas = append(g.replicas, &ledgerReplica{id: id, addr: addr, transport: transport,
			raftDir: filepath.Join(root, "raft"), stateDir: root})
	}
	g.connectAll()
	for _, r := range g.replicas {
		g.open(r)
	}
	t.Cleanup(func() {
		for _, r := range g.replicas {
			g.close(r)
		}
	})
	return g
}

func (g *ledgerGroup) connectAll() {
	for _, a := range g.replicas {
		for _, b := range g.replicas {
			if a != b {
				a.transport.Connect(b.addr, b.transport)
			}
		}
	}
}

func (g *ledgerGroup) open(r *ledgerReplica) {
	g.t.Helper()
	reg := fsm.NewRegistry()
	ledger.Register(reg)
	machine, err := fsm.Open(r.stateDir, nil, reg)
	if err != nil {
		g.t.Fatalf("open state machine %s: %v", r.id, err)
	}
	cfg := shard.Config{ShardID: "s1", NodeID: r.id, RaftAddr: string(r.addr), DataDir: r.raftDir, Bootstrap: true,
		SnapshotThreshold: 1 << 30, SnapshotInterval: time.Hour}
	for _, peer := range g.replicas {
		cfg.Peers = append(cfg.Peers, shard.Peer{ID: peer.id, Addr: string(peer.addr)})
	}
	fastConfig(&cfg)
	if g.tune != nil {
		g.tune(&cfg)
	}
	opened, err := shard.Open(cfg, machine, r.transport, testutil.Logger(g.t).With("node", r.id))
	if err != nil {
		machine.Close()
		g.t.Fatalf("open %s: %v", r.id, err)
	}
	r.machine, r.shard = machine, opened
}

func (g *ledgerGroup) close(r *ledgerReplica) {
	if r.shard != nil {
		_ = r.shard.Close()
		r.shard = nil
	}
	if r.machine != nil {
		_ = r.machine.Close()
		r.machine = nil
	}
}

func (g *ledgerGroup) leader() *ledgerReplica {
	g.t.Helper()
	var found *ledgerReplica
	testutil.Eventually(g.t, "a ready leader", func() bool {
		for _, r := range g.replicas {
			if r.shard != nil && r.shard.Stats().LeaderReady {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// propose proposes commands from 16 goroutines (so that they batch) and fails on any error or
// rejection.
func (g *ledgerGroup) propose(ctx context.Context, leader *ledgerReplica, commands []fsm.Command) {
	g.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(commands))
	next := make(chan fsm.Command)
	for range 16 {
		wg.Go(func() {
			for c := range next {
				if err := g.proposeOne(ctx, leader, c); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, c := range commands {
		next <- c
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		g.t.Fatalf("propose: %v", err)
	}
}

// proposeOne proposes c through via, then through whichever replica leads. As a client does,
// a proposal whose outcome is unknown (an election on a loaded machine cut it) or that went to a
// replica no longer leading is sent again; an answer that the first attempt applied it (the
// project, asset or reference exists) is then success.
func (g *ledgerGroup) proposeOne(ctx context.Context, via *ledgerReplica, c fsm.Command) error {
	_, err := testutil.Retry(ctx, 20*time.Millisecond, shard.Retryable, func(retried bool) (any, error) {
		if retried {
			via = g.leader()
		}
		result, err := via.shard.Propose(ctx, fsm.EncodeCommand(c))
		if err != nil {
			return nil, err
		}
		rejection := result.(*fsm.Result).Err
		switch {
		case rejection == nil:
			return nil, nil
		case retried && (rejection.Code == ledger.CodeProjectExists || rejection.Code == ledger.CodeAssetExists || rejection.Code == ledger.CodeDuplicateReferenceID):
			return nil, nil // the first attempt applied it
		}
		return nil, rejection
	})
	return err
}

func setupCommands() []fsm.Command {
	return []fsm.Command{
		&ledger.CreateProject{ProjectID: "p", Name: "shop"},
		&ledger.CreateAsset{ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100},
	}
}

func walletCommands() []fsm.Command {
	var commands []fsm.Command
	for i := range 8 {
		commands = append(commands, &ledger.CreateWallet{ProjectID: "p", WalletID: fmt.Sprintf("w%d", i), AssetID: "usd"})
	}
	return commands
}

func issueCommands() []fsm.Command {
	var commands []fsm.Command
	for i := range 8 {
		commands = append(commands, &ledger.Transact{ProjectID: "p", IDPrefix: "f", ReferenceID: fmt.Sprintf("fund%d", i),
			Operations: []ledger.Operation{{Type: ledger.OperationIssue, To: fmt.Sprintf("w%d", i), Amount: fsm.AmountFromUint64(1 << 40)}}})
	}
	return commands
}

func transferCommands(prefix string, count int) []fsm.Command {
	var commands []fsm.Command
	for i := range count {
		commands = append(commands, &ledger.Transact{ProjectID: "p", IDPrefix: "t", ReferenceID: fmt.Sprintf("%s%d", prefix, i),
			Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: fmt.Sprintf("w%d", i%8),
				To: fmt.Sprintf("w%d", (i+3)%8), Amount: fsm.AmountFromUint64(1)}}})
	}
	return commands
}

func (g *ledgerGroup) seed(ctx context.Context, leader *ledgerReplica) {
	g.propose(ctx, leader, setupCommands()[:1])
	g.propose(ctx, leader, setupCommands()[1:])
	g.propose(ctx, leader, walletCommands())
	g.propose(ctx, leader, issueCommands())
}

// TestCheckpointSnapshotInstall: the leader's snapshots are references of a constant few bytes
// whether the store holds 300 or 3,000 transfers; a follower cut off past the leader's
// compacted log catches up through InstallSnapshot, streamed from the leader's checkpoint, and
// every replica ends with the same digest. With the history chain in the history store
// (fsm/history.go) the stream is version 2 and carries it: the follower ends with the same
// chain head, and its history verifies.
func TestCheckpointSnapshotInstall(t *testing.T) {
	for _, history := range []bool{false, true} {
		t.Run(fmt.Sprintf("history=%v", history), func(t *testing.T) { testCheckpointSnapshotInstall(t, history) })
	}
}

func testCheckpointSnapshotInstall(t *testing.T, history bool) {
	g := newLedgerGroup(t, 3, func(cfg *shard.Config) { cfg.TrailingLogsCount = 1 })
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	if history {
		g.propose(ctx, leader, []fsm.Command{&fsm.RaiseRules{Version: fsm.RulesHistoryStore}})
		g.propose(ctx, leader, []fsm.Command{&fsm.StartHistoryChain{}})
	}
	g.seed(ctx, leader)

	g.propose(ctx, leader, transferCommands("a", 300))
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	firstSnapshotBytes := leader.shard.Stats().SnapshotReferenceBytes

	var lagging *ledgerReplica
	for _, r := range g.replicas {
		if r != leader {
			lagging = r
			break
		}
	}
	lagging.transport.DisconnectAll()
	for _, r := range g.replicas {
		if r != lagging {
			r.transport.Disconnect(lagging.addr)
		}
	}
	laggingApplied := lagging.shard.AppliedIndex()
	g.propose(ctx, leader, transferCommands("b", 3000))
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	secondSnapshotBytes := leader.shard.Stats().SnapshotReferenceBytes - firstSnapshotBytes
	// The reference holds the applied index as a uvarint: one byte more past 2^14 at most.
	if firstSnapshotBytes == 0 || firstSnapshotBytes > 100 || secondSnapshotBytes > firstSnapshotBytes+1 {
		t.Fatalf("raft's snapshot store got %d bytes for 300 transfers, %d for 3,300: want a few dozen, not growing",
			firstSnapshotBytes, secondSnapshotBytes)
	}
	if indexes, err := leader.machine.CheckpointIndexes(); err != nil || len(indexes) != 2 {
		t.Fatalf("leader's checkpoints %v (%v), want the 2 raft retains", indexes, err)
	}

	g.connectAll()
	g.propose(ctx, leader, transferCommands("c", 10))
	want := leader.shard.AppliedIndex()
	testutil.Eventually(t, "every replica applied the last write", func() bool {
		for _, r := range g.replicas {
			if r.shard.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	if received := lagging.shard.Stats().SnapshotReceivedBytes; received == 0 {
		t.Fatalf("lagging follower (applied %d when cut off) received no snapshot", laggingApplied)
	}
	if opened := leader.shard.Stats().SnapshotOpenedBytes; opened < lagging.shard.Stats().SnapshotReceivedBytes {
		t.Fatalf("leader streamed %d bytes from checkpoints, follower received %d", opened, lagging.shard.Stats().SnapshotReceivedBytes)
	}
	leaderDigest, leaderIndex, err := leader.machine.DigestAt()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range g.replicas {
		digest, index, err := r.machine.DigestAt()
		if err != nil || index != leaderIndex || digest != leaderDigest {
			t.Fatalf("%s: digest at %d (%v) differs from the leader's at %d", r.id, index, err, leaderIndex)
		}
	}
	if !history {
		return
	}
	head, _ := leader.machine.HistoryChainHead()
	for _, r := range g.replicas {
		report, err := r.machine.VerifyHistory()
		if h, _ := r.machine.HistoryChainHead(); err != nil || h != head || report.Head != head || !report.Fresh {
			t.Fatalf("%s: chain head %x, verify %v %+v; the leader's head %x", r.id, h, err, report, head)
		}
	}
}

// TestRestartWithLostStoreRestoresCheckpoint: a replica whose live store is gone (its
// checkpoints kept) restores the latest checkpoint at Open, then replays the log above it.
func TestRestartWithLostStoreRestoresCheckpoint(t *testing.T) {
	g := newLedgerGroup(t, 1, nil)
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	g.seed(ctx, leader)
	g.propose(ctx, leader, transferCommands("a", 200))
	if err := leader.shard.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	g.propose(ctx, leader, transferCommands("b", 20))
	want, wantIndex, err := leader.machine.DigestAt()
	if err != nil {
		t.Fatal(err)
	}

	g.close(leader)
	if err := os.RemoveAll(filepath.Join(leader.stateDir, "ledger")); err != nil {
		t.Fatal(err)
	}
	_, leader.transport = raft.NewInmemTransport(leader.addr)
	g.open(leader)
	if opened := leader.shard.Stats().SnapshotOpenedBytes; opened == 0 {
		t.Fatal("the store was not restored from the checkpoint")
	}
	testutil.Eventually(t, "the log above the checkpoint replayed", func() bool { return leader.machine.AppliedIndex() >= wantIndex })
	got, gotIndex, err := leader.machine.DigestAt()
	if err != nil || got != want || gotIndex != wantIndex {
		t.Fatalf("after restart: digest at %d (%v), want the one at %d", gotIndex, err, wantIndex)
	}
}
