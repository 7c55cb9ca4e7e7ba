// Package cluster owns how nodes of a GigaLedger cluster find and reach each other: the slot
// → shard mapping, the placement of shard replicas on nodes (computed once at bootstrap),
// membership and failure detection over hashicorp/memberlist, one TCP port per node shared by
// the raft transports of every hosted shard and a forwarding RPC (a mux on the first byte of
// each connection), and the one layer that does "try locally, else forward to the shard's
// leader" for proposals and linearizable reads.
//
// It never interprets commands or results (the shard's StateMachine and ResultCodec do), never
// talks HTTP (it only tells the HTTP layer which node's API serves a shard), and never retries
// a proposal whose outcome is unknown: that would apply it twice.
package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/shard"
)

var (
	// ErrNoLeader means no leader is known (an election is running or a quorum is missing);
	// the request was not applied. HTTP handlers answer 503 with Retry-After.
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrNotHosted means this node holds no replica of the shard; nothing was applied. The
	// HTTP layer proxies the request to APIAddrFor(shardID).
	ErrNotHosted = errors.New("cluster: shard not hosted on this node")
	// ErrNoSuchShard means the shard ID is outside 0..ShardCount()-1.
	ErrNoSuchShard = errors.New("cluster: no such shard")
)

const (
	// forwardAttemptMaxCount bounds how many times one request is retried on not-leader
	// answers and connection failures that provably sent nothing.
	forwardAttemptMaxCount = 6
	// leaderWaitMax bounds how long a request waits for a leader to appear or change before
	// answering ErrNoLeader.
	leaderWaitMax = 3 * time.Second
	// raftTransportPoolCount is how many idle outbound raft connections are kept per peer and
	// shard.
	raftTransportPoolCount = 3
	// raftTransportTimeout bounds raft RPC I/O on the network transport.
	raftTransportTimeout = 10 * time.Second
	// DefaultBootstrapTimeout bounds how long Open waits for BootstrapExpect members (or for a
	// member to tell it the placement) when the data directory holds no placement yet.
	DefaultBootstrapTimeout = 2 * time.Minute
	// adminAttemptMaxCount bounds the rounds (over every replica) of one admin request to a
	// shard's leader: with adminRetryInterval, about 30 s, enough for several elections.
	adminAttemptMaxCount = 300
	// adminRetryInterval is the pause between those tries.
	adminRetryInterval = 100 * time.Millisecond
	// shardDirPrefix names each shard's folder in DataDir: shard-<id>.
	shardDirPrefix = "shard-"
	// shardRaftDirName is the raft folder inside a shard's folder.
	shardRaftDirName = "raft"
)

// Config configures a MultiNode. A node gets its placement from, in order: DataDir/cluster.json
// (written the first time and never recomputed), StaticPlacement, or gossip (computed once
// BootstrapExpect members are alive, or learned from a member that has it).
type Config struct {
	// NodeID is this node's ID: its raft server ID in every shard and its memberlist name.
	NodeID string
	// RaftAddr is the node's one port as peers dial it (raft of every shard, forwarding).
	RaftAddr string
	// DataDir holds cluster.json and one folder per hosted shard: shard-<id>/ is handed to
	// OpenStateMachine, shard-<id>/raft holds the shard's raft log and snapshots.
	DataDir string
	// Listener, when set, is used instead of listening on RaftAddr (tests listen on
	// 127.0.0.1:0 first to learn the port). The node owns it.
	Listener net.Listener

	// Shard is the template for every hosted shard: limits, timeouts and Registerer (each
	// shard's metrics carry the const label shard=<id>). OpenMulti sets ShardID, NodeID,
	// RaftAddr, DataDir, Peers and Bootstrap itself. (The deprecated Open reads all fields.)
	Shard shard.Config
	// OpenStateMachine opens the state machine of shardID in dir (created if missing). The
	// node calls it once per hosted shard and, when the result implements io.Closer, closes
	// it after the shard on Close.
	OpenStateMachine func(shardID int, dir string) (shard.StateMachine, error)
	// Codec encodes results on a leader and decodes them on the forwarding node.
	Codec shard.ResultCodec
	// CheckCommand, when set, vets every command another node forwards before this node
	// proposes it. Apply treats a command that does not decode as divergence and panics, on
	// every replica and again after every restart, so bytes that arrive over the network must
	// pass this check (the state machine's own decoder) or be refused (codeBadRequest) before
	// they can reach the log. Commands proposed locally come from this process's encoder.
	CheckCommand func(command []byte) error
	// Query, when set, answers Node.Query for a shard hosted here, after the node has fenced a
	// linearizable read on it. The query and answer bytes are the caller's own encoding.
	Query func(ctx context.Context, shardID int, query []byte) ([]byte, error)

	// StaticNodes and StaticPlacement give the placement without gossip (tests, --peers).
	// Every replica in StaticPlacement must be in StaticNodes.
	StaticNodes     []NodeAddress
	StaticPlacement *Placement

	// GossipAddr, when set, runs memberlist bound to this host:port only (port 0 picks one).
	GossipAddr string
	// Join lists gossip addresses of members to join (seeds); retried until one answers.
	Join []string
	// BootstrapExpect is how many members must be alive before a node without a placement
	// computes one from their IDs (with ShardCount and ReplicaCount). 0 means this node only
	// learns the placement from a member (a replacement node).
	BootstrapExpect int
	// ShardCount and ReplicaCount are the bootstrap settings for a computed placement.
	ShardCount   int
	ReplicaCount int
	// APIAddr and PublicAddr are this node's admin and public HTTP addresses, gossiped so
	// other nodes can proxy to it.
	APIAddr    string
	PublicAddr string
	// BootstrapTimeout bounds waiting for the placement; 0 means DefaultBootstrapTimeout.
	BootstrapTimeout time.Duration
	// GossipTuning, when set, adjusts the memberlist configuration (tests shorten timers).
	GossipTuning func(*memberlist.Config)

	// TLS, when set, makes the port mutual TLS 1.3: every accepted connection must present a
	// node certificate from TLS's CA, every dial demands one (naming the node raft or
	// membership expects at that address, when known), and a raft request must come from the
	// node its connection's certificate names. It also encrypts gossip with TLS.GossipKey().
	// Its certificate must name NodeID. Nil: plain TCP and plain gossip (callers allow that
	// only on loopback or when told to).
	TLS *tlsconfig.Node
}

// nodeOptions are knobs of the deprecated single-shard Open.
type nodeOptions struct {
	// stateMachine is the caller's state machine for shard 0 (not closed by the node).
	stateMachine shard.StateMachine
	// raftDir overrides where shard 0 keeps its raft data.
	raftDir string
	// bootstrap overrides bootstrapping: the old node bootstrapped on every start.
	bootstrap bool
	// peers overrides shard 0's bootstrap peers.
	peers []shard.Peer
	// noClusterFile skips reading and writing cluster.json.
	noClusterFile bool
}

// hostedShard is one local replica and its state machine.
type hostedShard struct {
	id      int
	shard   *shard.Shard
	sm      shard.StateMachine
	closeSM bool
}

// MultiNode is one process's member of the cluster: the replicas of the shards it hosts, the
// shared port, forwarding, and (with gossip) membership. All methods are safe for concurrent
// use.
type Node struct {
	cfg        Config
	opts       nodeOptions
	logger     *slog.Logger
	advertise  net.Addr
	mux        *Mux
	raftRouter *shardConnRouter
	client     *rpcClient
	server     *rpcServer
	gossip     *membership // nil without GossipAddr
	file       atomic.Pointer[clusterFile]

	// openMu serializes opening shards (at start and on openReplica requests).
	openMu sync.Mutex
	mu     sync.RWMutex
	shards map[int]*hostedShard
	// replicaSets is the last replica set seen per shard: the placement, then what Raft
	// configurations (local, or read by ReplaceNode) said.
	replicaSets map[int][]string

	closed    atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	serveDone chan struct{}
	watchers  sync.WaitGroup
}

// OpenMulti starts a node: it listens (or takes cfg.Listener), starts the mux and forwarding
// server, joins gossip when configured, gets the placement (see Config), and opens every shard
// placed on it or found in its data directory. Without a stored placement it blocks until the
// placement is known (bounded by BootstrapTimeout).
func Open(cfg Config, logger *slog.Logger) (*Node, error) {
	return openNode(cfg, nodeOptions{}, logger)
}

func (cfg Config) validate(opts nodeOptions) error {
	var problems []error
	if cfg.NodeID == "" || len(cfg.NodeID) > nodeMetaStringMaxBytes {
		problems = append(problems, fmt.Errorf("NodeID %q empty or longer than %d bytes", cfg.NodeID, nodeMetaStringMaxBytes))
	}
	for name, value := range map[string]string{"RaftAddr": cfg.RaftAddr, "APIAddr": cfg.APIAddr, "PublicAddr": cfg.PublicAddr} {
		if len(value) > nodeMetaStringMaxBytes {
			problems = append(problems, fmt.Errorf("%s longer than %d bytes", name, nodeMetaStringMaxBytes))
		}
	}
	if cfg.RaftAddr == "" {
		problems = append(problems, errors.New("RaftAddr is empty"))
	}
	if cfg.TLS != nil && cfg.TLS.ID != cfg.NodeID {
		problems = append(problems, fmt.Errorf("the TLS certificate names node %q, not NodeID %q", cfg.TLS.ID, cfg.NodeID))
	}
	if cfg.DataDir == "" && !opts.noClusterFile {
		problems = append(problems, errors.New("DataDir is empty"))
	}
	if cfg.OpenStateMachine == nil && opts.stateMachine == nil {
		problems = append(problems, errors.New("OpenStateMachine is nil"))
	}
	if cfg.Codec == nil {
		problems = append(problems, errors.New("the result codec (Config.Codec) is nil"))
	}
	if cfg.StaticPlacement == nil && cfg.GossipAddr == "" && !opts.noClusterFile {
		if f, err := loadClusterFile(cfg.DataDir); err != nil || f == nil {
			problems = append(problems, errors.New("neither StaticPlacement nor GossipAddr is set and DataDir has no cluster.json"))
		}
	}
	if cfg.BootstrapExpect > 0 && (cfg.ShardCount < 1 || cfg.ShardCount > keyspace.ShardCountMax) {
		problems = append(problems, fmt.Errorf("ShardCount %d outside [1, %d]", cfg.ShardCount, keyspace.ShardCountMax))
	}
	if cfg.BootstrapExpect < 0 || cfg.ReplicaCount < 0 || cfg.BootstrapTimeout < 0 {
		problems = append(problems, errors.New("negative BootstrapExpect, ReplicaCount or BootstrapTimeout"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("cluster config: %w", errors.Join(problems...))
	}
	return nil
}

func openNode(cfg Config, opts nodeOptions, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(opts); err != nil {
		return nil, fmt.Errorf("cluster open: %w", err)
	}
	logger = logger.With("node", cfg.NodeID)
	listener := cfg.Listener
	if listener == nil {
		var err error
		listener, err = net.Listen("tcp", cfg.RaftAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster open: listen on %s: %w", cfg.RaftAddr, err)
		}
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		_ = listener.Close()
		return nil, fmt.Errorf("cluster open: resolve %s: %w", cfg.RaftAddr, err)
	}
	dialer := &peerDialer{tls: cfg.TLS}
	n := &Node{
		cfg: cfg, opts: opts, logger: logger, advertise: advertise,
		mux:    NewMux(listener, logger),
		shards: make(map[int]*hostedShard), replicaSets: make(map[int][]string),
		closing: make(chan struct{}), serveDone: make(chan struct{}),
	}
	n.client = newRPCClient(dialer, n.nodeIDAt, logger)
	if cfg.TLS != nil {
		n.mux.SetTLS(cfg.TLS)
	}
	n.raftRouter = newShardConnRouter(n.mux.Listen(ProtocolShardRaft), dialer, logger)
	n.server = newRPCServer(n.mux.Listen(ProtocolShardForward), n.handle, logger)
	go func() {
		defer close(n.serveDone)
		go n.raftRouter.serve()
		if err := n.mux.Serve(); err != nil {
			logger.Error("mux stopped", "error", err)
		}
	}()
	go n.server.serve()

	if err := n.start(); err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("cluster open: %w", err)
	}
	return n, nil
}

// start gets the placement and opens the hosted shards.
func (n *Node) start() error {
	cfg := n.cfg
	var file *clusterFile
	stored := false
	if !n.opts.noClusterFile {
		var err error
		if file, err = loadClusterFile(cfg.DataDir); err != nil {
			return err
		}
		stored = file != nil
	}
	if stored && cfg.StaticPlacement != nil && !placementsEqual(file.Placement, *cfg.StaticPlacement) {
		n.logger.Warn("the static placement differs from the stored cluster.json; keeping the stored one (never recomputed)")
	}
	if file == nil && cfg.StaticPlacement != nil {
		replicaCount := 0
		for _, s := range cfg.StaticPlacement.Shards {
			replicaCount = max(replicaCount, len(s.Replicas))
		}
		file = &clusterFile{Version: clusterFileVersion, ShardCount: cfg.StaticPlacement.ShardCount(),
			ReplicaCount: replicaCount, Nodes: slices.Clone(cfg.StaticNodes), Placement: *cfg.StaticPlacement}
		if err := file.validate(); err != nil {
			return err
		}
	}
	if file != nil {
		n.file.Store(file)
	}
	if cfg.GossipAddr != "" {
		gossip, err := startMembership(n, cfg, n.logger)
		if err != nil {
			return err
		}
		n.gossip = gossip
	}
	if file == nil {
		timeout := cfg.BootstrapTimeout
		if timeout == 0 {
			timeout = DefaultBootstrapTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var err error
		if file, err = n.gossip.awaitPlacement(ctx, cfg); err != nil {
			return err
		}
		n.file.Store(file)
	}
	if !stored && !n.opts.noClusterFile {
		if err := storeClusterFile(cfg.DataDir, file); err != nil {
			return err
		}
	}
	for _, s := range file.Placement.Shards {
		n.replicaSets[s.ID] = slices.Clone(s.Replicas)
	}

	bootstrap := !file.BootstrapDone
	if n.opts.stateMachine != nil {
		bootstrap = n.opts.bootstrap
	}
	hosted := file.Placement.ShardsOf(cfg.NodeID)
	for id := range file.ShardCount {
		if !slices.Contains(hosted, id) && n.hasShardData(id) {
			// Added by ReplaceNode after bootstrap.
			hosted = append(hosted, id)
		}
	}
	slices.Sort(hosted)
	for _, id := range hosted {
		var peers []shard.Peer
		placed := slices.Contains(file.Placement.Replicas(id), cfg.NodeID)
		if bootstrap && placed {
			peers = n.bootstrapPeers(file, id)
		}
		if err := n.openShard(id, bootstrap && placed, peers); err != nil {
			return err
		}
	}
	if bootstrap && !n.opts.noClusterFile {
		done := *file
		done.BootstrapDone = true
		if err := storeClusterFile(cfg.DataDir, &done); err != nil {
			return err
		}
		n.file.Store(&done)
	}
	if n.gossip != nil {
		n.gossip.refreshMeta()
	}
	n.logger.Info("cluster node started", "raft_addr", cfg.RaftAddr, "shards", file.ShardCount, "hosted", hosted,
		"gossip_addr", cfg.GossipAddr)
	return nil
}

func (n *Node) bootstrapPeers(file *clusterFile, shardID int) []shard.Peer {
	if n.opts.peers != nil {
		return n.opts.peers
	}
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
	if n.opts.raftDir != "" {
		return n.opts.raftDir
	}
	return filepath.Join(n.shardDir(shardID), shardRaftDirName)
}

// hasShardData reports whether a raft log of shardID exists locally.
func (n *Node) hasShardData(shardID int) bool {
	if n.opts.noClusterFile {
		return false
	}
	_, err := os.Stat(filepath.Join(n.raftDir(shardID), "raft.db"))
	return err == nil
}

// openShard opens the local replica of shardID: with bootstrap, from peers when its store is
// empty; without, it waits for a leader to add it (ReplaceNode) or replays its own log.
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
	sm, closeSM := n.opts.stateMachine, false
	if sm == nil {
		if err := os.MkdirAll(n.shardDir(shardID), 0o750); err != nil {
			return fmt.Errorf("shard %d: %w", shardID, err)
		}
		var err error
		if sm, err = n.cfg.OpenStateMachine(shardID, n.shardDir(shardID)); err != nil {
			return fmt.Errorf("shard %d: open state machine: %w", shardID, err)
		}
		_, closeSM = sm.(io.Closer)
	}
	cfg := n.cfg.Shard
	if n.opts.stateMachine == nil {
		cfg.ShardID = strconv.Itoa(shardID)
		cfg.NodeID = n.cfg.NodeID
		cfg.RaftAddr = n.cfg.RaftAddr
		cfg.DataDir = n.raftDir(shardID)
	}
	cfg.Peers = peers
	cfg.Bootstrap = bootstrap
	layer := n.raftRouter.register(uint16(shardID), n.advertise)
	transport := identifiedTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: raftTransportPoolCount,
		Timeout: raftTransportTimeout,
		Logger: &transportLogger{Logger: shard.NewRaftLogger(n.logger.With("shard", shardID), "raft-net"),
			closing: n.closed.Load},
	})}
	s, err := shard.Open(cfg, sm, transport, n.logger)
	if err != nil {
		_ = transport.Close()
		if closeSM {
			_ = sm.(io.Closer).Close()
		}
		return fmt.Errorf("shard %d: %w", shardID, err)
	}
	hs := &hostedShard{id: shardID, shard: s, sm: sm, closeSM: closeSM}
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
		}
	}
}

// ShardCount is the number of shards in the cluster.
func (n *Node) ShardCount() int {
	if file := n.file.Load(); file != nil {
		return file.ShardCount
	}
	return 0 // still waiting for the placement
}

// Placement is the placement computed at bootstrap (not the current replica sets: see Status).
func (n *Node) Placement() Placement {
	return n.file.Load().Placement
}

// NodeID is this node's ID.
func (n *Node) NodeID() string {
	return n.cfg.NodeID
}

// Addr is the node's port address as peers dial it.
func (n *Node) Addr() string {
	return n.cfg.RaftAddr
}

// GossipAddr is the address memberlist is bound to ("" without gossip).
func (n *Node) GossipAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.address()
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

// Propose applies command to shardID through its leader and returns its result: locally when
// this node leads, otherwise forwarded over the leader's port and decoded with the codec. It
// retries, a bounded number of times within ctx, only when the command provably was not
// applied (a not-leader answer, or a leader that could not be reached). Errors keep their
// identity: ErrNotHosted and ErrNoSuchShard (nothing tried), shard.ErrOutcomeUnknown (never
// retried), shard.ErrOverloaded, shard.ErrCommandTooLarge, shard.ErrClosed (this node is
// closing), ErrNoLeader, or ctx's error.
func (n *Node) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	hs, err := n.localShard(shardID)
	if errors.Is(err, ErrNotHosted) {
		return n.proposeRemote(ctx, shardID, command)
	}
	if err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	var result any
	err = n.withLeader(ctx, hs.shard, "propose", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			result, err = hs.shard.Propose(ctx, command)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, uint16(shardID), rpcKindPropose, command)
		if err != nil {
			if errors.Is(err, errNotSent) {
				return "", err
			}
			// The leader may have received it: never retry, never claim failure.
			return "", fmt.Errorf("forward to %s: %w", leaderAddr, errors.Join(shard.ErrOutcomeUnknown, err))
		}
		if resp.code != codeOK {
			return resp.leaderHint, remoteError(leaderAddr, resp)
		}
		result, err = n.cfg.Codec.DecodeResult(resp.payload)
		if err != nil {
			return "", fmt.Errorf("decode result from %s: %w", leaderAddr, errors.Join(shard.ErrOutcomeUnknown, err))
		}
		return "", nil
	})
	return result, err
}

// proposeRemote proposes to a shard this node does not host: to its leader as gossip names it,
// else to its replicas in turn, following not-leader hints. It moves on to another node only
// when the request provably was not sent; once it may have been, the outcome is unknown and
// the caller must find out (a transaction retried with its referenceId), never a resend here.
func (n *Node) proposeRemote(ctx context.Context, shardID int, command []byte) (any, error) {
	var lastErr error
	for round := range forwardAttemptMaxCount {
		candidates := n.shardAddresses(shardID)
		for i := 0; i < len(candidates); i++ {
			address := candidates[i]
			resp, err := n.client.call(ctx, address, uint16(shardID), rpcKindPropose, command)
			if err != nil {
				if !errors.Is(err, errNotSent) {
					return nil, fmt.Errorf("forward to %s: %w", address, errors.Join(shard.ErrOutcomeUnknown, err))
				}
				lastErr = err
				continue
			}
			if resp.code == codeOK {
				result, err := n.cfg.Codec.DecodeResult(resp.payload)
				if err != nil {
					return nil, fmt.Errorf("decode result from %s: %w", address, errors.Join(shard.ErrOutcomeUnknown, err))
				}
				return result, nil
			}
			lastErr = remoteError(address, resp)
			if !errors.Is(lastErr, shard.ErrNotLeader) && !errors.Is(lastErr, ErrNoLeader) && !errors.Is(lastErr, ErrNotHosted) {
				return nil, lastErr // an answer: overloaded, too large, outcome unknown...
			}
			if resp.leaderHint != "" && !slices.Contains(candidates[i+1:], resp.leaderHint) {
				candidates = append(candidates[:i+1], append([]string{resp.leaderHint}, candidates[i+1:]...)...)
			}
		}
		if round+1 < forwardAttemptMaxCount {
			timer := time.NewTimer(leaderWaitMax / forwardAttemptMaxCount)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, errors.Join(ctx.Err(), lastErr)
			case <-timer.C:
			}
		}
	}
	return nil, fmt.Errorf("propose to shard %d: %w", shardID, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
}

// shardAddresses lists the port addresses to try for shardID, most likely leader first: the
// local replica's leader, else the one gossip names, then every replica, each once.
func (n *Node) shardAddresses(shardID int) []string {
	var addresses []string
	leader := n.leaderRaftAddrFor(shardID)
	if hs := n.hosted(shardID); hs != nil {
		if _, local := hs.shard.Leader(); local != "" {
			leader = local
		}
	}
	if leader != "" {
		addresses = append(addresses, leader)
	}
	for _, id := range n.replicas(shardID) {
		if address := n.raftAddrOf(id); address != "" && !slices.Contains(addresses, address) {
			addresses = append(addresses, address)
		}
	}
	return addresses
}

// leaderRaftAddrFor is the port address of the node gossip says leads shardID, or "".
func (n *Node) leaderRaftAddrFor(shardID int) string {
	if n.gossip == nil {
		return ""
	}
	members := n.gossip.states()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if m := members[id]; m.state == NodeStateAlive && slices.Contains(m.meta.Led, shardID) {
			return m.meta.RaftAddr
		}
	}
	return ""
}

// LinearizableRead returns once the local state machine of shardID reflects every write
// acknowledged before it was called: on the leader, ReadIndex then WaitApplied; on a follower,
// the leader's read index over the forwarding RPC, then WaitApplied locally. The caller then
// reads StateMachine(shardID). ErrNotHosted when this node holds no replica.
func (n *Node) LinearizableRead(ctx context.Context, shardID int) error {
	hs, err := n.localShard(shardID)
	if err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	var readIndex uint64
	err = n.withLeader(ctx, hs.shard, "read index", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			readIndex, err = hs.shard.ReadIndex(ctx)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, uint16(shardID), rpcKindReadIndex, nil)
		if err != nil {
			// Reads have no effect: any transport failure may be retried.
			return "", fmt.Errorf("forward to %s: %w", leaderAddr, errors.Join(errNotSent, err))
		}
		if resp.code != codeOK {
			return resp.leaderHint, remoteError(leaderAddr, resp)
		}
		if len(resp.payload) != 8 {
			return "", fmt.Errorf("read index from %s: %d-byte payload", leaderAddr, len(resp.payload))
		}
		readIndex = binary.BigEndian.Uint64(resp.payload)
		return "", nil
	})
	if err != nil {
		return err
	}
	if err := hs.shard.WaitApplied(ctx, readIndex); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	return nil
}

// withLeader runs attempt against the leader of s: with "" when this node leads, else with the
// leader's address. attempt returns a leader hint (may be empty) and its error. withLeader
// retries on not-leader and not-sent errors, waiting for a leader change between tries.
func (n *Node) withLeader(ctx context.Context, s *shard.Shard, what string, attempt func(leaderAddr string) (hint string, err error)) error {
	var lastErr error
	hint := ""
	for range forwardAttemptMaxCount {
		if n.closed.Load() {
			return fmt.Errorf("%s: %w", what, shard.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, lastErr))
		}
		leaderChanged := s.LeaderChanged()
		target := hint
		hint = ""
		if target == "" || target == n.Addr() {
			target = ""
			if !s.IsLeader() {
				_, target = s.Leader()
				if target == "" {
					if !awaitLeaderChange(ctx, leaderChanged) {
						return fmt.Errorf("%s: %w", what, ErrNoLeader)
					}
					continue
				}
			}
		}
		if target == n.Addr() {
			target = ""
		}
		newHint, err := attempt(target)
		if err == nil {
			return nil
		}
		retryable := errors.Is(err, errNotSent) ||
			(errors.Is(err, shard.ErrNotLeader) && !errors.Is(err, shard.ErrOutcomeUnknown) && !(target == "" && errors.Is(err, shard.ErrClosed)))
		if !retryable {
			return fmt.Errorf("%s: %w", what, err)
		}
		lastErr = err
		if newHint != "" && newHint != target {
			hint = newHint
			continue
		}
		// Our view of the leader is stale; wait for it to change (bounded) and try again.
		if !awaitLeaderChange(ctx, leaderChanged) {
			break
		}
	}
	if lastErr != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
	}
	return fmt.Errorf("%s: %w", what, ErrNoLeader)
}

// cleanNotSent hides errNotSent (an internal marker) from callers while keeping the cause.
func cleanNotSent(err error) error {
	if errors.Is(err, errNotSent) {
		return errors.New(err.Error())
	}
	return err
}

// awaitLeaderChange waits up to leaderWaitMax for changed; false if it did not come.
func awaitLeaderChange(ctx context.Context, changed <-chan struct{}) bool {
	timer := time.NewTimer(leaderWaitMax)
	defer timer.Stop()
	select {
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

func remoteError(leaderAddr string, resp rpcResponse) error {
	return fmt.Errorf("leader %s: %s: %w", leaderAddr, resp.payload, errorForCode(resp.code))
}

// handle answers a forwarded request. It never forwards again (no loops): a node that is not
// the shard's leader answers codeNotLeader with its leader hint.
func (n *Node) handle(ctx context.Context, req rpcRequest) rpcResponse {
	shardID := int(req.shardID)
	if req.kind == rpcKindOpenReplica {
		return n.handleOpenReplica(shardID)
	}
	if req.kind == rpcKindNodeInfo {
		payload, err := json.Marshal(n.localInfo())
		if err != nil {
			return rpcResponse{code: codeInternal, payload: []byte(err.Error())}
		}
		return rpcResponse{code: codeOK, payload: payload}
	}
	hs := n.hosted(shardID)
	if hs == nil {
		return rpcResponse{code: codeNotHosted, payload: fmt.Appendf(nil, "shard %d not hosted on %s", shardID, n.cfg.NodeID)}
	}
	var (
		payload []byte
		err     error
	)
	switch req.kind {
	case rpcKindPropose:
		if n.cfg.CheckCommand != nil {
			if checkErr := n.cfg.CheckCommand(req.payload); checkErr != nil {
				n.logger.Warn("refused a forwarded command that does not decode", "shard", shardID, "error", checkErr)
				return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "propose: %v", checkErr)}
			}
		}
		var result any
		result, err = hs.shard.Propose(ctx, req.payload)
		if err == nil {
			payload, err = n.cfg.Codec.EncodeResult(result)
			if err != nil {
				// Applied, but the result cannot travel: the caller must not assume failure.
				err = fmt.Errorf("encode result: %w", errors.Join(shard.ErrOutcomeUnknown, err))
			}
		}
	case rpcKindReadIndex:
		var readIndex uint64
		readIndex, err = hs.shard.ReadIndex(ctx)
		if err == nil {
			payload = binary.BigEndian.AppendUint64(nil, readIndex)
		}
	case rpcKindAddVoter:
		id, addr, ok := cutZero(req.payload)
		if !ok {
			return rpcResponse{code: codeBadRequest, payload: []byte("add voter: want id 0x00 addr")}
		}
		err = n.leaderOnly(hs, func() error { return hs.shard.AddVoter(ctx, id, addr) })
	case rpcKindRemoveServer:
		err = n.leaderOnly(hs, func() error { return hs.shard.RemoveServer(ctx, string(req.payload)) })
	case rpcKindQuery:
		payload, err = n.answerQuery(ctx, shardID, req.payload)
	case rpcKindServers:
		var servers []shard.Peer
		if servers, err = hs.shard.Servers(); err == nil {
			payload, err = json.Marshal(servers)
		}
	default:
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "unknown request kind %d", req.kind)}
	}
	if err != nil {
		_, leaderAddr := hs.shard.Leader()
		return rpcResponse{code: codeForError(err), leaderHint: leaderAddr, payload: []byte(err.Error())}
	}
	return rpcResponse{code: codeOK, payload: payload}
}

// answerQuery fences a linearizable read on a hosted shard and runs the configured query.
func (n *Node) answerQuery(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.cfg.Query == nil {
		return nil, errors.New("this node answers no queries")
	}
	if err := n.LinearizableRead(ctx, shardID); err != nil {
		return nil, err
	}
	return n.cfg.Query(ctx, shardID, query)
}

// Query runs a read-only query against shardID, linearizably: locally when this node hosts the
// shard, else on a node that does (the leader gossip names, then the replicas). Reads have no
// effect, so any failure to reach a node moves on to the next.
func (n *Node) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.hosted(shardID) != nil {
		return n.answerQuery(ctx, shardID, query)
	}
	var lastErr error
	for _, address := range n.shardAddresses(shardID) {
		resp, err := n.client.call(ctx, address, uint16(shardID), rpcKindQuery, query)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.code == codeOK {
			return resp.payload, nil
		}
		lastErr = remoteError(address, resp)
	}
	return nil, fmt.Errorf("query shard %d: %w", shardID, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
}

// leaderOnly runs change when hs leads, else answers ErrNotLeader (so the caller follows the
// hint).
func (n *Node) leaderOnly(hs *hostedShard, change func() error) error {
	if !hs.shard.IsLeader() {
		return fmt.Errorf("membership change on %s: %w", n.cfg.NodeID, shard.ErrNotLeader)
	}
	return change()
}

// handleOpenReplica opens an empty, unbootstrapped replica of shardID, which a leader is about
// to add as a voter (ReplaceNode). Opening a hosted shard again is a no-op.
func (n *Node) handleOpenReplica(shardID int) rpcResponse {
	if shardID >= n.ShardCount() {
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "shard %d of %d", shardID, n.ShardCount())}
	}
	if err := n.openShard(shardID, false, nil); err != nil {
		return rpcResponse{code: codeForError(err), payload: []byte(err.Error())}
	}
	if n.gossip != nil {
		n.gossip.refreshMeta()
	}
	n.logger.Info("opened a replica for a membership change", "shard", shardID)
	return rpcResponse{code: codeOK}
}

func cutZero(payload []byte) (string, string, bool) {
	for i, b := range payload {
		if b == 0 {
			return string(payload[:i]), string(payload[i+1:]), i > 0 && i+1 < len(payload)
		}
	}
	return "", "", false
}

// Close stops the node: gossip first (peers see it leave), then every shard (queued proposals
// fail, in-flight ones resolve) and its state machine, then the forwarding server (after
// answering what it is handling), outbound connections, and the port. Safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.openMu.Lock()
		n.closed.Store(true)
		close(n.closing)
		n.openMu.Unlock()
		var errs []error
		if n.gossip != nil {
			errs = append(errs, n.gossip.close())
		}
		n.watchers.Wait()
		n.mu.Lock()
		shards := n.shards
		n.mu.Unlock()
		var wg sync.WaitGroup
		var errMu sync.Mutex
		for _, hs := range shards {
			wg.Go(func() {
				err := hs.shard.Close()
				if hs.closeSM {
					err = errors.Join(err, hs.sm.(io.Closer).Close())
				}
				if err != nil {
					errMu.Lock()
					errs = append(errs, fmt.Errorf("shard %d: %w", hs.id, err))
					errMu.Unlock()
				}
			})
		}
		wg.Wait()
		n.server.close()
		n.client.close()
		if err := n.mux.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close port: %w", err))
		}
		<-n.serveDone
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

func placementsEqual(a, b Placement) bool {
	return a.SlotCount == b.SlotCount && slices.EqualFunc(a.Shards, b.Shards, func(x, y ShardReplicas) bool {
		return x.ID == y.ID && slices.Equal(x.Replicas, y.Replicas)
	})
}
