// Package cluster owns how nodes of a GigaLedger cluster find and reach each other: the slot
// → shard mapping, the placement of shard replicas on nodes (computed once at bootstrap),
// membership and failure detection over hashicorp/memberlist, one TCP port per node shared by
// the raft transports of every hosted shard and a forwarding RPC (a mux on the first byte of
// each connection), and the one layer that does "try locally, else forward to the shard's
// leader" for proposals, linearizable reads, queries and admin requests (one loop, callLeader).
//
// It never interprets commands, results or queries (the shard's StateMachine, ResultCodec and
// Config.Query do), never talks HTTP, and never resends a proposal whose outcome is unknown:
// that would apply it twice.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/nodelog"
)

var (
	// ErrNoLeader means no leader is known (an election is running or a quorum is missing);
	// the request was not applied. HTTP handlers answer 503 with Retry-After.
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrNotHosted means this node holds no replica of the shard; nothing was applied. Such a
	// shard is read with Query, which a node that hosts it answers.
	ErrNotHosted = errors.New("cluster: shard not hosted on this node")
	// ErrNoSuchShard means the shard ID is outside 0..ShardCount()-1.
	ErrNoSuchShard = errors.New("cluster: no such shard")
)

const (
	// forwardAttemptMaxCount bounds the rounds over the candidate nodes of one API request
	// (proposal, read index, query) to a shard's leader: with leaderWaitMax, the patience of
	// callLeader for API requests.
	forwardAttemptMaxCount = 6
	// leaderWaitMax is about how long an API request waits for a leader to appear or answer
	// before it answers ErrNoLeader.
	leaderWaitMax = 3 * time.Second
	// raftTransportPoolCount is how many idle outbound raft connections are kept per peer and
	// shard.
	raftTransportPoolCount = 3
	// raftTransportTimeout bounds raft RPC I/O on the network transport.
	raftTransportTimeout = 10 * time.Second
	// raftRPCsInFlight is 1: replication to each follower sends one AppendEntries at a time,
	// without hashicorp/raft's pipeline. Its pipeline (v1.7.3) can deadlock: when a follower
	// answers with a newer term or a failure, pipelineDecode returns and nobody reads the
	// pipeline's done channel, so the next send parks forever, and the replication goroutine
	// with it. The follower then receives heartbeats but never another entry (so it never
	// calls an election that would heal it), and raft's Shutdown waits for that goroutine
	// forever: seen as a node ignoring SIGTERM in the fault suite, with this in its goroutine
	// dump. Batching, not pipelining, is what carries throughput here (hashicorp/raft #541
	// measured pipelining's benefit as small and its cost under batching as large).
	raftRPCsInFlight = 1
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
	// nodeLogDirName is the folder in DataDir of the node's shared raft log (nodelog).
	nodeLogDirName = "raftlog"
)

// Config configures a Node. A node gets its placement from, in order: DataDir/cluster.json
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
	// shard's metrics carry the const label shard=<id>). Open sets ShardID, NodeID,
	// RaftAddr, DataDir, Peers and Bootstrap itself.
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

	// RaftLogMode says how hosted replicas make their raft log durable: nodelog.ModeShared
	// (the zero value: one write-ahead log and one fsync per group commit for every replica
	// of the node, in DataDir/raftlog) or nodelog.ModePerShardSync (each replica's raft.db
	// fsyncs on its own, as before). Switching from shared to per-shard sync needs a clean
	// shutdown first (a replica refuses to open otherwise: its newest entries are in the log).
	RaftLogMode nodelog.Mode

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
	// that every node's Status can show them.
	APIAddr    string
	PublicAddr string
	// APIURL is this node's admin API base URL as clients dial it, given to peers through
	// node info (they name it in responses when this node leads a shard); empty when unknown.
	APIURL string
	// BootstrapTimeout bounds waiting for the placement; 0 means DefaultBootstrapTimeout.
	BootstrapTimeout time.Duration
	// LeaderBalanceInterval, when above 0, runs the leader balancer on this node: every
	// interval, while this node leads shard 0, at most one leadership transfer from the node
	// leading the most shards to a voter leading at least two fewer (BalanceLeaderOnce). 0
	// leaves leadership where raft puts it (BalanceLeaders still balances on request).
	LeaderBalanceInterval time.Duration
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

// Node is one process's member of the cluster: the replicas of the shards it hosts, the
// shared port, forwarding, and (with gossip) membership. All methods are safe for concurrent
// use.
type Node struct {
	cfg        Config
	logger     *slog.Logger
	advertise  net.Addr
	mux        *Mux
	raftRouter *shardConnRouter
	client     *rpcClient
	server     *rpcServer
	gossip     *membership // nil without GossipAddr
	file       atomic.Pointer[clusterFile]
	// nodeLog is the log every hosted replica's raft log goes through; closed after them.
	nodeLog *nodelog.Log

	// openMu serializes opening shards (at start and on openReplica requests).
	openMu sync.Mutex
	mu     sync.RWMutex
	shards map[int]*hostedShard
	// replicaSets is the last replica set seen per shard: the placement, then what Raft
	// configurations (the local replica's, or the leader's as Status and moves read them) said.
	replicaSets map[int][]string
	// nonvoterSets are the members of replicaSets that do not vote yet, from the same reads.
	nonvoterSets map[int][]string

	// apiURLs are the admin API URLs peers advertise (LeaderAPIURL).
	apiURLs apiURLDirectory
	// moves counts the moves this node runs; the leader balancer waits for them.
	moves movesRunning
	// leaderTransfers counts the leadership transfers the balancer made (BalanceLeaderOnce).
	leaderTransfers atomic.Int64

	closed    atomic.Bool
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	serveDone chan struct{}
	// started is closed once start has opened every replica the node hosts. The port serves
	// before that (peers' raft traffic and gossip need it), so a request about a local replica
	// (open one, retire one) waits for it: answered earlier, it would miss a replica still to
	// be opened from disk.
	started  chan struct{}
	watchers sync.WaitGroup
	// removedChecks counts the leader questions of retireRemovedReplicas (tests).
	removedChecks atomic.Int64
}

// beforeOpenShards, set only by tests (export_test.go), runs in start once the port serves and
// before the hosted replicas are opened.
var beforeOpenShards func(nodeID string)

// awaitStarted waits until the node has opened the replicas it hosts (see Node.started).
func (n *Node) awaitStarted(ctx context.Context) error {
	select {
	case <-n.started:
		return nil
	case <-n.closing:
		return shard.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open starts a node: it listens (or takes cfg.Listener), starts the mux and forwarding
// server, joins gossip when configured, gets the placement (see Config), and opens every shard
// placed on it or found in its data directory. Without a stored placement it blocks until the
// placement is known (bounded by BootstrapTimeout).
func Open(cfg Config, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
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
		cfg: cfg, logger: logger, advertise: advertise,
		mux:    NewMux(listener, logger),
		shards: make(map[int]*hostedShard), replicaSets: make(map[int][]string), nonvoterSets: make(map[int][]string),
		closing: make(chan struct{}), serveDone: make(chan struct{}), started: make(chan struct{}),
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
	close(n.started)
	return n, nil
}

func (cfg Config) validate() error {
	var problems []error
	if cfg.NodeID == "" || len(cfg.NodeID) > nodeMetaStringMaxBytes {
		problems = append(problems, fmt.Errorf("NodeID %q empty or longer than %d bytes", cfg.NodeID, nodeMetaStringMaxBytes))
	}
	for name, value := range map[string]string{"RaftAddr": cfg.RaftAddr, "APIAddr": cfg.APIAddr, "PublicAddr": cfg.PublicAddr, "APIURL": cfg.APIURL} {
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
	if cfg.DataDir == "" {
		problems = append(problems, errors.New("DataDir is empty"))
	}
	if cfg.OpenStateMachine == nil {
		problems = append(problems, errors.New("OpenStateMachine is nil"))
	}
	if cfg.Codec == nil {
		problems = append(problems, errors.New("the result codec (Config.Codec) is nil"))
	}
	if cfg.StaticPlacement == nil && cfg.GossipAddr == "" {
		if f, err := loadClusterFile(cfg.DataDir); err != nil || f == nil {
			problems = append(problems, errors.New("neither StaticPlacement nor GossipAddr is set and DataDir has no cluster.json"))
		}
	}
	if cfg.BootstrapExpect > 0 && (cfg.ShardCount < 1 || cfg.ShardCount > keyspace.ShardCountMax) {
		problems = append(problems, fmt.Errorf("ShardCount %d outside [1, %d]", cfg.ShardCount, keyspace.ShardCountMax))
	}
	if cfg.BootstrapExpect < 0 || cfg.ReplicaCount < 0 || cfg.BootstrapTimeout < 0 || cfg.LeaderBalanceInterval < 0 {
		problems = append(problems, errors.New("negative BootstrapExpect, ReplicaCount, BootstrapTimeout or LeaderBalanceInterval"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("cluster config: %w", errors.Join(problems...))
	}
	return nil
}

// start gets the placement and opens the hosted shards.
func (n *Node) start() error {
	cfg := n.cfg
	nodeLog, err := nodelog.Open(nodelog.Options{
		Dir: filepath.Join(cfg.DataDir, nodeLogDirName), Mode: cfg.RaftLogMode,
		Registerer: cfg.Shard.Registerer, Logger: n.logger,
	})
	if err != nil {
		return err
	}
	n.nodeLog = nodeLog
	file, err := loadClusterFile(cfg.DataDir)
	if err != nil {
		return err
	}
	stored := file != nil
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
		if file, err = n.gossip.awaitPlacement(ctx, cfg); err != nil {
			return err
		}
		n.file.Store(file)
	}
	if !stored {
		if err := storeClusterFile(cfg.DataDir, file); err != nil {
			return err
		}
	}
	for _, s := range file.Placement.Shards {
		n.replicaSets[s.ID] = slices.Clone(s.Replicas)
	}

	bootstrap := !file.BootstrapDone
	// Until bootstrap is done, the placement says what to host. After it, the shards with a
	// raft log on disk do: every placed shard got one at bootstrap, a move adds one (the new
	// replica) and deletes one (the old replica), and Raft configurations, not the placement,
	// are the truth.
	var hosted []int
	if bootstrap {
		hosted = file.Placement.ShardsOf(cfg.NodeID)
	}
	for id := range file.ShardCount {
		if !slices.Contains(hosted, id) && n.hasShardData(id) {
			hosted = append(hosted, id)
		}
	}
	slices.Sort(hosted)
	if hook := beforeOpenShards; hook != nil {
		hook(cfg.NodeID)
	}
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
	if bootstrap {
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
	if cfg.LeaderBalanceInterval > 0 {
		n.watchers.Go(func() { n.runLeaderBalancer(cfg.LeaderBalanceInterval) })
	}
	interval, patience := removedCheckInterval, removedPatience
	n.watchers.Go(func() { n.retireRemovedReplicas(interval, patience) })
	n.logger.Info("cluster node started", "raft_addr", cfg.RaftAddr, "shards", file.ShardCount, "hosted", hosted,
		"gossip_addr", cfg.GossipAddr)
	return nil
}

// backgroundContext is the context of one step of the node's own background work (the leader
// balancer, the removed-replica check): it ends after timeout or when the node closes.
func (n *Node) backgroundContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	go func() {
		select {
		case <-n.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
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
		if n.nodeLog != nil {
			if err := n.nodeLog.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close node log: %w", err))
			}
		}
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

// RaftLogFsyncCount is how many fsyncs this node made for its replicas' raft logs (the
// gigaledger_raftlog_fsyncs_total counter, summed over kinds); benchmarks divide it by time.
func (n *Node) RaftLogFsyncCount() uint64 {
	if n.nodeLog == nil {
		return 0
	}
	return n.nodeLog.FsyncCount()
}
