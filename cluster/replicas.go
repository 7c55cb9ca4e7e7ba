package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/coalesce"
)

// hostedShard is one local replica and its state machine.
type hostedShard struct {
	id      int
	shard   *shard.Shard
	sm      shard.StateMachine
	closeSM bool
	// retired is closed when the replica is closed for good while the node runs (a move took
	// it elsewhere): its watcher stops.
	retired chan struct{}
	// readRounds fetches the shard's read point from its leader, one request shared by the
	// reads that arrive while another is in flight (forward.go).
	readRounds *coalesce.Rounds[shard.ReadPoint]
	// transport is the replica's raft transport on the node's port. Retiring closes it itself:
	// raft closes it in Shutdown only when that call is the first, and a replica that commits
	// its own removal has already shut itself down (ShutdownOnRemove), so the transport stayed
	// registered and opening the shard again on this node (a move back) panicked.
	transport io.Closer
}

func (n *Node) bootstrapPeers(file *clusterFile, shardID int) []shard.Peer {
	var peers []shard.Peer
	for _, id := range file.Placement.Replicas(shardID) {
		address, _ := file.nodeAddress(id) // validate checked every replica has one
		peers = append(peers, shard.Peer{ID: id, Addr: address.RaftAddr})
	}
	return peers
}

func (n *Node) shardDir(shardID int) string {
	return filepath.Join(n.cfg.DataDir, shardDirPrefix+strconv.Itoa(shardID))
}

func (n *Node) raftDir(shardID int) string {
	return filepath.Join(n.shardDir(shardID), shardRaftDirName)
}

// hasShardData reports whether a raft log of shardID exists locally.
func (n *Node) hasShardData(shardID int) bool {
	_, err := os.Stat(filepath.Join(n.raftDir(shardID), "raft.db"))
	return err == nil
}

// openShard opens the local replica of shardID: with bootstrap, from peers when its store is
// empty; without, it waits for a leader to add it (a move) or replays its own log.
func (n *Node) openShard(shardID int, bootstrap bool, peers []shard.Peer) error {
	n.openMu.Lock()
	defer n.openMu.Unlock()
	if n.closed.Load() {
		return shard.ErrClosed
	}
	n.mu.RLock()
	_, exists := n.shards[shardID]
	n.mu.RUnlock()
	if exists {
		return nil
	}
	if err := os.MkdirAll(n.shardDir(shardID), 0o750); err != nil {
		return fmt.Errorf("shard %d: %w", shardID, err)
	}
	sm, err := n.cfg.OpenStateMachine(shardID, n.shardDir(shardID))
	if err != nil {
		return fmt.Errorf("shard %d: open state machine: %w", shardID, err)
	}
	_, closeSM := sm.(io.Closer)
	cfg := n.cfg.Shard
	cfg.ShardID = strconv.Itoa(shardID)
	cfg.NodeID = n.cfg.NodeID
	cfg.RaftAddr = n.cfg.RaftAddr
	cfg.DataDir = n.raftDir(shardID)
	cfg.Peers = peers
	cfg.Bootstrap = bootstrap
	cfg.NodeLog = n.nodeLog
	// The read-index rounds of the shard confirm its leader's term over this node's RPCs; they
	// run only once Open has returned the shard.
	var opened atomic.Pointer[shard.Shard]
	cfg.ConfirmTerm = func(ctx context.Context, term uint64) error {
		s := opened.Load()
		if s == nil {
			return fmt.Errorf("shard %d not open yet: %w", shardID, shard.ErrNotLeader)
		}
		return n.confirmTerm(ctx, shardID, s, term)
	}
	layer := n.raftRouter.register(uint16(shardID), n.advertise)
	transport := newShardTransport(layer, &transportLogger{Logger: shard.NewRaftLogger(n.logger.With("shard", shardID), "raft-net"),
		closing: n.closed.Load})
	s, err := shard.Open(cfg, sm, transport, n.logger)
	if err != nil {
		_ = transport.Close()
		if closeSM {
			_ = sm.(io.Closer).Close()
		}
		return fmt.Errorf("shard %d: %w", shardID, err)
	}
	opened.Store(s)
	hs := &hostedShard{id: shardID, shard: s, sm: sm, closeSM: closeSM, retired: make(chan struct{}),
		readRounds: n.newReadRounds(shardID), transport: transport}
	n.mu.Lock()
	n.shards[shardID] = hs
	n.mu.Unlock()
	n.watchers.Go(func() { n.watchLeader(hs) })
	return nil
}

// watchLeader refreshes the gossiped metadata (led shards) whenever the shard's leader changes.
func (n *Node) watchLeader(hs *hostedShard) {
	for {
		changed := hs.shard.LeaderChanged()
		if n.gossip != nil {
			n.gossip.refreshMeta()
		}
		select {
		case <-changed:
		case <-n.closing:
			return
		case <-hs.retired:
			return
		}
	}
}

// retireShard closes the local replica of shardID and deletes its folder (state machine and
// raft log), so that a restart does not open it again and a later move back starts empty.
// The caller has made sure the shard's configuration no longer names this node. Requests in
// flight on the replica fail as closed (not applied); new ones route to the shard's replicas.
func (n *Node) retireShard(shardID int) error {
	n.openMu.Lock()
	defer n.openMu.Unlock()
	n.mu.Lock()
	hs := n.shards[shardID]
	delete(n.shards, shardID)
	n.mu.Unlock()
	if hs == nil {
		return nil
	}
	close(hs.retired)
	if n.gossip != nil {
		n.gossip.refreshMeta()
	}
	err := hs.shard.Close()
	err = errors.Join(err, hs.transport.Close()) // idempotent; see hostedShard.transport
	if hs.closeSM {
		err = errors.Join(err, hs.sm.(io.Closer).Close())
	}
	if err != nil {
		return fmt.Errorf("retire shard %d: close: %w (its folder is kept)", shardID, err)
	}
	// Renamed first (one atomic step), so that a crash while deleting leaves no partial
	// shard-<id> folder for the next start to open.
	retiredDir := fmt.Sprintf("%s.retired-%d", n.shardDir(shardID), time.Now().UnixNano())
	if err := os.Rename(n.shardDir(shardID), retiredDir); err != nil {
		return fmt.Errorf("retire shard %d: %w", shardID, err)
	}
	if dir, err := os.Open(n.cfg.DataDir); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	if err := os.RemoveAll(retiredDir); err != nil {
		return fmt.Errorf("retire shard %d: %w", shardID, err)
	}
	n.logger.Info("retired a replica moved elsewhere: closed and deleted", "shard", shardID)
	return nil
}

// Hosts reports whether this node holds a replica of shardID.
func (n *Node) Hosts(shardID int) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.shards[shardID] != nil
}

// HostedShards lists the shards this node holds replicas of, ascending.
func (n *Node) HostedShards() []int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	ids := make([]int, 0, len(n.shards))
	for id := range n.shards {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ReplicaState is what a node's replica of a shard knows of its place in the shard.
type ReplicaState int

const (
	// ReplicaNotHosted: this node holds no replica of the shard.
	ReplicaNotHosted ReplicaState = iota
	// ReplicaLed: the replica knows the shard's leader (or leads).
	ReplicaLed
	// ReplicaLeaderless: the replica is in the shard's configuration, as it knows it, and
	// knows no leader (an election, a partition, a node just started).
	ReplicaLeaderless
	// ReplicaOutsideConfiguration: the replica is not in its shard's configuration: a move
	// is adding it (opened, not yet a non-voter) or removed it (not yet retired). It hears
	// from no leader; the node serves the shard by forwarding, as one it does not host.
	ReplicaOutsideConfiguration
)

// ReplicaState says where the local replica of shardID stands (readiness asks).
func (n *Node) ReplicaState(shardID int) ReplicaState {
	replica := n.Shard(shardID)
	if replica == nil {
		return ReplicaNotHosted
	}
	if id, _ := replica.Leader(); id != "" { // a leader names itself
		return ReplicaLed
	}
	servers, err := replica.Servers()
	if err == nil && peerOf(servers, replica.NodeID()) == nil {
		return ReplicaOutsideConfiguration
	}
	return ReplicaLeaderless
}

// Shard is the local replica of shardID (for Stats, WaitApplied, tests), nil if not hosted.
func (n *Node) Shard(shardID int) *shard.Shard {
	if hs := n.hosted(shardID); hs != nil {
		return hs.shard
	}
	return nil
}

// StateMachine is the local state machine of shardID, nil if not hosted. Read it after
// LinearizableRead for linearizable reads.
func (n *Node) StateMachine(shardID int) shard.StateMachine {
	if hs := n.hosted(shardID); hs != nil {
		return hs.sm
	}
	return nil
}

func (n *Node) hosted(shardID int) *hostedShard {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.shards[shardID]
}

// localShard returns the hosted replica or ErrNoSuchShard / ErrNotHosted.
func (n *Node) localShard(shardID int) (*hostedShard, error) {
	if shardID < 0 || shardID >= n.ShardCount() {
		return nil, fmt.Errorf("shard %d of %d: %w", shardID, n.ShardCount(), ErrNoSuchShard)
	}
	hs := n.hosted(shardID)
	if hs == nil {
		return nil, fmt.Errorf("shard %d on %s: %w", shardID, n.cfg.NodeID, ErrNotHosted)
	}
	return hs, nil
}

// newShardTransport is a shard's raft transport over its stream layer: pooled connections,
// bounded I/O, and no pipelining (raftRPCsInFlight says why).
func newShardTransport(layer raft.StreamLayer, logger hclog.Logger) identifiedTransport {
	return identifiedTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:          layer,
		MaxPool:         raftTransportPoolCount,
		MaxRPCsInFlight: raftRPCsInFlight,
		Timeout:         raftTransportTimeout,
		Logger:          logger,
	})}
}
