package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/routing"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/shard"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger serve: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.LogLevel, stderr)
	if len(cfg.ignoredSettings) > 0 {
		logger.Warn("config: GigaWallet settings not used by GigaLedger: " + strings.Join(cfg.ignoredSettings, ", "))
	}
	node, err := startNode(cfg, logger)
	if err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-node.serveErrors:
		logger.Error("listener failed", "err", err)
	}
	if err := node.Close(); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// node is one running GigaLedger process: its shard replicas behind the cluster layer, the
// router that sends each request to its shard, and the two HTTP listeners.
type node struct {
	cfg         *serveConfig
	logger      *slog.Logger
	cluster     *cluster.Node
	families    *families
	duties      *leaderDuties
	cross       *routing.CrossDriver
	relay       *eventRelay
	chain       *chainFollower
	admin       *http.Server
	public      *http.Server
	serveErrors chan error
	// endLifetime ends the admin API's lifetime when Close begins: long polls answer rather
	// than hold the grace period.
	endLifetime context.CancelFunc
	// dataDirLock is the data directory's lock, released by Close after everything else.
	dataDirLock *os.File
	// blockCache is shared by the stores of every replica the node hosts; Close releases the
	// node's hold on it after the shards have closed.
	blockCache *fsm.BlockCache
}

// startNode opens the shards this node hosts, joins the cluster and starts listening. It
// returns once every listener is bound; leadership comes on its own. It holds the data
// directory's lock (lockDataDir) from before anything touches the directory until Close.
func startNode(cfg *serveConfig, logger *slog.Logger) (*node, error) {
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n, err := startLockedNode(cfg, logger)
	if err != nil {
		lock.Close()
		return nil, err
	}
	n.dataDirLock = lock
	return n, nil
}

// shardTemplate is the configuration of every shard this node hosts: group commit's linger,
// which never holds the families' urgent commands (the steps of cross-shard transactions and
// of batch requests), and the raft timing of --raft-timing.
func (cfg *serveConfig) shardTemplate(registry prometheus.Registerer, fams *families) shard.Config {
	template := shard.Config{Registerer: registry, BatchLinger: cfg.shardBatchLinger(), Urgent: fams.registry.Urgent}
	if t := cfg.raftTiming; t != nil {
		template.HeartbeatTimeout, template.ElectionTimeout = t.heartbeat, t.election
		template.LeaderLeaseTimeout, template.CommitTimeout = t.leaderLease, t.commit
	}
	return template
}

func startLockedNode(cfg *serveConfig, logger *slog.Logger) (*node, error) {
	if cfg.AdminToken == "" {
		logger.Warn("no admin token: serving the admin API without authentication on loopback only",
			"admin_addr", cfg.AdminAddr, "public_addr", cfg.PublicAddr)
	}
	nodeTLS, err := loadNodeTLS(cfg, logger)
	if err != nil {
		return nil, err
	}
	httpTLS, err := loadHTTPTLS(cfg)
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	fams := newFamilies()
	template := cfg.shardTemplate(registry, fams)
	// An empty cache holds no memory, so the error returns below need not release it.
	blockCache := fsm.NewBlockCache(cfg.blockCacheBytes())
	var routerOnce atomic.Pointer[routing.Router]
	raftLogMode, _ := cfg.raftLogMode() // validate checked it
	clusterConfig := cluster.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, DataDir: cfg.DataDir, Shard: template,
		OpenStateMachine: func(shardID int, dir string) (shard.StateMachine, error) {
			return fsm.OpenWithCache(dir, logger.With("shard", shardID), fams.registry, blockCache)
		},
		// A command forwarded by another node must decode before it is proposed: one that
		// does not would panic apply on every replica.
		CheckCommand: func(command []byte) error {
			_, err := fams.registry.DecodeCommand(command)
			return err
		},
		Codec: fams.registry, APIAddr: cfg.AdminAddr, PublicAddr: cfg.PublicAddr, APIURL: cfg.advertisedAPIURL(),
		ShardCount: cfg.Shards, ReplicaCount: cfg.Replicas, TLS: nodeTLS, RaftLogMode: raftLogMode,
		LeaderBalanceInterval: cfg.LeaderBalanceInterval,
		// Other nodes ask this one for its shards' parts of project-wide lists; the router
		// answers, and it exists only once the node does.
		Query: func(ctx context.Context, shardID int, query []byte) ([]byte, error) {
			if router := routerOnce.Load(); router != nil {
				return router.AnswerQuery(ctx, shardID, query)
			}
			return nil, errors.New("node starting")
		},
	}
	if cfg.GossipAddr != "" {
		clusterConfig.GossipAddr, clusterConfig.BootstrapExpect = cfg.GossipAddr, cfg.Bootstrap
		for _, seed := range strings.Split(cfg.Join, ",") {
			if seed = strings.TrimSpace(seed); seed != "" {
				clusterConfig.Join = append(clusterConfig.Join, seed)
			}
		}
	} else {
		// A static replica set: every peer hosts every shard.
		peers, err := cfg.peers()
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, p := range peers {
			address := cluster.NodeAddress{ID: p.ID, RaftAddr: p.Addr}
			if p.ID == cfg.NodeID {
				address.APIAddr, address.PublicAddr = cfg.AdminAddr, cfg.PublicAddr
			}
			clusterConfig.StaticNodes = append(clusterConfig.StaticNodes, address)
			ids = append(ids, p.ID)
		}
		placement := cluster.ComputePlacement(ids, cfg.Shards, cfg.Replicas)
		clusterConfig.StaticPlacement = &placement
	}
	clusterNode, err := cluster.Open(clusterConfig, logger)
	if err != nil {
		return nil, err
	}
	n := &node{cfg: cfg, logger: logger, cluster: clusterNode, families: fams, serveErrors: make(chan error, 2), blockCache: blockCache}
	shards := nodeShards{clusterNode, fams}
	backend := routing.New(shards)
	routerOnce.Store(backend)
	// validate() has parsed both lists already.
	allowedHosts, _ := httpapi.ParseAllowedHosts(cfg.AllowedHosts)
	corsOrigins, _ := httpapi.ParseCORSOrigins(cfg.CORSOrigins)
	gigaWallet, err := gigaWalletConfig(cfg, logger)
	if err != nil {
		n.Close()
		return nil, err
	}
	var keys *dogecoin.Keychain
	if gigaWallet != nil {
		keys = gigaWallet.Keys
	}
	if n.chain, err = startChainFollower(clusterNode, fams, cfg, keys, registry, logger); err != nil {
		n.Close()
		return nil, err
	}
	if gigaWallet != nil && n.chain != nil {
		gigaWallet.Chain = n.chain
	}
	// GigPay is on, in the project validate() accepted.
	gigPay := &httpapi.GigPayConfig{ProjectID: cfg.gigPayProject(), Env: cfg.GigPayEnv}
	logger.Info("GigPay API on", "project", gigPay.ProjectID, "env", gigPay.Env)
	lifetime, endLifetime := context.WithCancel(context.Background())
	n.endLifetime = endLifetime
	adminHandler := httpapi.NewAdmin(httpapi.AdminConfig{Token: cfg.AdminToken, Ready: n.ready, ReadyDetail: n.readyDetail,
		Operator: n, AllowedHosts: allowedHosts, CORSOrigins: corsOrigins, GigaWallet: gigaWallet, GigPay: gigPay, Lifetime: lifetime,
		OwnListeners: ownListeners(cfg), Redriver: deadLetterRedriver{clusterNode}, ConfiguredSubscribers: configuredSubscriberNames(cfg)},
		backend, logger, registry)
	adminHandler = withShardLeader(adminHandler, clusterNode)
	if cfg.Pprof {
		adminHandler = withPprof(adminHandler, cfg.AdminToken, allowedHosts)
	}
	n.admin = newHTTPServer(cfg.AdminAddr, adminHandler)
	n.public = newHTTPServer(cfg.PublicAddr, httpapi.NewPublic(httpapi.PublicConfig{Ready: n.ready,
		RestrictHosts: cfg.AdminToken == "", AllowedHosts: allowedHosts, CORSOrigins: corsOrigins,
		GigaWallet: gigaWallet, GigPay: gigPay, Backend: backend}, logger, registry))
	for _, srv := range []*http.Server{n.admin, n.public} {
		listener, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("listen %s: %w", srv.Addr, err)
		}
		// Past the limit, new connections wait in the kernel's backlog until one closes; the
		// server's timeouts close the slow and the idle ones.
		listener = netutil.LimitListener(listener, httpConnectionsMax)
		if httpTLS != nil {
			listener = tls.NewListener(listener, httpTLS)
		}
		go func(srv *http.Server) {
			if err := srv.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErrors <- err
			}
		}(srv)
	}
	n.duties = startLeaderDuties(clusterNode, logger)
	n.cross = startCrossDriver(clusterNode, shards, registry, logger)
	if n.relay, err = startRelay(clusterNode, backend, registry, cfg, logger); err != nil {
		n.Close()
		return nil, err
	}
	logger.Info("serving", "node_id", cfg.NodeID, "admin_addr", cfg.AdminAddr, "public_addr", cfg.PublicAddr,
		"raft_addr", cfg.RaftAddr, "shards", clusterNode.ShardCount(), "hosted", clusterNode.HostedShards(),
		"data_dir", cfg.DataDir, "cluster_tls", nodeTLS != nil, "http_tls", httpTLS != nil)
	return n, nil
}

// Limits of each HTTP listener: a client that opens connections and sends nothing, or sends a
// body byte at a time, holds a file descriptor for at most httpReadMax (headers within
// httpReadHeaderMax), an idle keep-alive connection for httpIdleMax, and no more than
// httpConnectionsMax connections are open at once (the Raft and ledger stores need descriptors
// too).
const (
	httpReadHeaderMax  = 10 * time.Second
	httpReadMax        = 30 * time.Second
	httpIdleMax        = 2 * time.Minute
	httpConnectionsMax = 4096
)

// newHTTPServer is one HTTP listener's server with the limits above.
func newHTTPServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: httpReadHeaderMax,
		ReadTimeout: httpReadMax, IdleTimeout: httpIdleMax}
}

// ready is /readyz: every shard this node hosts has a leader, so it can serve reads and
// forward writes. A replica that is not in its shard's configuration does not count: a move is
// adding it (opened, not yet a non-voter) or has removed it (not yet retired), it hears from
// no leader, and the node serves that shard by forwarding, as it does a shard it does not
// host. Counted, a move stopped between opening the replica and adding it (the mover's
// request timed out, the leader was cut off) kept the node unready until the move was run
// again.
func (n *node) ready() error {
	for _, k := range n.cluster.HostedShards() {
		if n.cluster.ReplicaState(k) == cluster.ReplicaLeaderless {
			return fmt.Errorf("shard %d has no leader", k)
		}
	}
	return nil
}

// readyDetail is the message of a 200 /readyz: what this node serves and who leads it.
func (n *node) readyDetail() string {
	if len(n.cluster.HostedShards()) == 0 {
		return fmt.Sprintf("node %s hosts no shard replica; it forwards every request", n.cfg.NodeID)
	}
	var leaders []string
	for _, k := range n.cluster.HostedShards() {
		if n.cluster.ReplicaState(k) == cluster.ReplicaOutsideConfiguration {
			leaders = append(leaders, fmt.Sprintf("shard %d forwarded (its replica here is not in the shard's configuration: a move is adding or retiring it)", k))
			continue
		}
		if replica := n.cluster.Shard(k); replica != nil {
			id, _ := replica.Leader()
			leaders = append(leaders, fmt.Sprintf("shard %d led by %s", k, id))
		}
	}
	return fmt.Sprintf("node %s: every hosted shard has a leader (%s)", n.cfg.NodeID, strings.Join(leaders, ", "))
}

// ClusterStatus is GET /cluster.
func (n *node) ClusterStatus(ctx context.Context) (any, error) {
	return struct {
		cluster.Status
		Chain *ChainStatus `json:"chain"`
	}{n.cluster.Status(), chainStatus(n.cluster, n.families, n.cfg.Network)}, nil
}

// ReplaceNode is POST /cluster/replace-node.
func (n *node) ReplaceNode(ctx context.Context, oldNodeID, newNodeID, newRaftAddr string) error {
	return refusedMove(n.cluster.ReplaceNode(ctx, oldNodeID, newNodeID, newRaftAddr))
}

// MoveReplica is POST /cluster/move-replica.
func (n *node) MoveReplica(ctx context.Context, shardID int, fromNodeID, toNodeID string) (httpapi.ReplicaMove, error) {
	result, err := n.cluster.MoveReplica(ctx, shardID, fromNodeID, toNodeID)
	if err = refusedMove(err); errors.Is(err, httpapi.ErrMoveRefused) {
		return httpapi.ReplicaMove{}, err
	}
	return httpapi.ReplicaMove{Moved: result.Moved, CaughtUpIndex: result.CaughtUpIndex, CatchUpMs: result.CatchUpMs}, err
}

// refusedMove marks the move errors that are the request's (a 4xx, nothing done) as
// httpapi.ErrMoveRefused; others pass as they are.
func refusedMove(err error) error {
	for _, refused := range []error{cluster.ErrInvalidMove, cluster.ErrNoSuchShard, cluster.ErrNoReplica, cluster.ErrUnknownNode,
		cluster.ErrDestinationHoldsReplica, cluster.ErrDestinationNotFresh, cluster.ErrReplicaCountShort,
		cluster.ErrDestinationTooOld} {
		if errors.Is(err, refused) {
			return fmt.Errorf("%w: %w", httpapi.ErrMoveRefused, err)
		}
	}
	return err
}

// BalanceLeaders is POST /cluster/balance-leaders.
func (n *node) BalanceLeaders(ctx context.Context) (any, error) {
	return n.cluster.BalanceLeaders(ctx)
}

// BalanceReplicas is POST /cluster/balance-replicas.
func (n *node) BalanceReplicas(ctx context.Context) (any, error) {
	return n.cluster.BalanceReplicas(ctx)
}

// StateDigest is GET /debug/digest: the digest of every hosted shard's ledger, in shard
// order, and the sum of their applied indexes. Two nodes hosting the same shards agree once
// each shard has applied the same log.
func (n *node) StateDigest(ctx context.Context) (string, uint64, error) {
	shards, err := n.ShardDigests(ctx)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	var applied uint64
	for _, s := range shards {
		fmt.Fprintf(h, "%d:%s\n", s.Shard, s.Digest)
		applied += s.AppliedIndex
	}
	return hex.EncodeToString(h.Sum(nil)), applied, nil
}

// ShardDigests is each hosted shard's digest and applied index, in shard order (GET
// /debug/digest lists them: replicas compare shard by shard).
func (n *node) ShardDigests(ctx context.Context) ([]httpapi.ShardDigest, error) {
	var out []httpapi.ShardDigest
	for _, k := range n.cluster.HostedShards() {
		machine, ok := n.cluster.StateMachine(k).(*fsm.Machine)
		if !ok {
			return nil, fmt.Errorf("shard %d: no state machine", k)
		}
		// The digest, the applied index and the chain head of one view of the store, so that
		// replicas compare at equal applied indexes also while they apply (a head read beside
		// the digest could be batches ahead of it; found by a probe).
		sum, index, head, started, err := machine.DigestAndHead()
		if err != nil {
			return nil, err
		}
		d := httpapi.ShardDigest{Shard: k, Digest: hex.EncodeToString(sum[:]), AppliedIndex: index, RulesVersion: machine.Rules()}
		if started {
			d.HistoryChainIndex, d.HistoryChainHead = head.Index, hex.EncodeToString(head.Hash[:])
		}
		out = append(out, d)
	}
	return out, nil
}

// ShardDigest is GET /debug/digest?shard=k: the digest of this node's replica of shard k and
// its applied index, comparable across the nodes that host k whatever else they host.
func (n *node) ShardDigest(ctx context.Context, shardID int) (string, uint64, error) {
	if !n.cluster.Hosts(shardID) {
		return "", 0, httpapi.ErrNotHostedHere
	}
	sum, index, err := n.shardDigest(shardID)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(sum[:]), index, nil
}

func (n *node) shardDigest(k int) ([32]byte, uint64, error) {
	machine, ok := n.cluster.StateMachine(k).(*fsm.Machine)
	if !ok {
		return [32]byte{}, 0, fmt.Errorf("shard %d: no state machine", k)
	}
	return machine.DigestAt()
}

// Close stops taking requests, gives those in flight a bounded grace, then closes what is
// left: closing a connection cancels its request, and closing the replicas fails every
// proposal still queued (as not applied) or in flight (as outcome unknown). A request waiting
// for a quorum that is itself shutting down must not hold the process up.
func (n *node) Close() error {
	if n.endLifetime != nil {
		n.endLifetime()
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownMax)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{n.admin, n.public} {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func(srv *http.Server) {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				n.logger.Warn("requests still in flight at the end of the grace period; closing their connections",
					"addr", srv.Addr, "grace", n.cfg.ShutdownMax)
				srv.Close()
			}
		}(srv)
	}
	wg.Wait()
	if n.relay != nil {
		n.relay.Close()
	}
	if n.chain != nil {
		n.chain.Close()
	}
	if n.duties != nil {
		n.duties.Close()
	}
	if n.cross != nil {
		n.cross.Close()
	}
	err := n.cluster.Close() // closes the ledgers after their shards
	if n.blockCache != nil {
		n.blockCache.Release()
	}
	if n.dataDirLock != nil {
		n.dataDirLock.Close()
	}
	return err
}

// ownListeners are the addresses this node listens on, which no webhook may target.
func ownListeners(cfg *serveConfig) []string {
	addrs := []string{cfg.AdminAddr, cfg.PublicAddr, cfg.RaftAddr}
	if cfg.GossipAddr != "" {
		addrs = append(addrs, cfg.GossipAddr)
	}
	return addrs
}

// nodeShards presents the node's shards to the router.
type nodeShards struct {
	node     *cluster.Node
	families *families
}

func (s nodeShards) ShardCount() int { return s.node.ShardCount() }

func (s nodeShards) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	return s.node.Propose(ctx, shardID, command)
}

func (s nodeShards) LinearizableRead(ctx context.Context, shardID int) error {
	return s.node.FenceLocalRead(ctx, shardID)
}

func (s nodeShards) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	return s.node.Query(ctx, shardID, query)
}

func (s nodeShards) QueryLeader(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	return s.node.QueryLeader(ctx, shardID, query)
}

func (s nodeShards) Ledger(shardID int) *ledger.Ledger {
	return s.families.ledgerOf(s.node.StateMachine(shardID))
}

func (s nodeShards) GigaWallet(shardID int) *gigawallet.Reader {
	m, ok := s.node.StateMachine(shardID).(*fsm.Machine)
	if !ok || m == nil {
		return nil
	}
	return s.families.gigawallet.Of(m)
}

func (s nodeShards) GigPay(shardID int) *gigpay.Reader {
	m, ok := s.node.StateMachine(shardID).(*fsm.Machine)
	if !ok || m == nil {
		return nil
	}
	return s.families.gigpay.Of(m)
}

func (s nodeShards) Outbox(shardID int) routing.Outbox {
	m, ok := s.node.StateMachine(shardID).(*fsm.Machine)
	if !ok || m == nil {
		return nil
	}
	return m
}

func (s nodeShards) Follows(shardID int) bool {
	switch s.node.ReplicaState(shardID) {
	case cluster.ReplicaLed, cluster.ReplicaLeaderless:
		return true
	}
	return false
}

// withPprof serves /debug/pprof/ beside the API, behind the same bearer token.
func withPprof(api http.Handler, token string, allowedHosts []string) http.Handler {
	mux := http.NewServeMux()
	debug := http.NewServeMux()
	debug.HandleFunc("/debug/pprof/", pprof.Index)
	debug.HandleFunc("/debug/pprof/profile", pprof.Profile)
	debug.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	authorized := httpapi.BearerCheck(token)
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && !authorized(r.Header.Get("Authorization")) {
			http.Error(w, `{"error":{"code":"Unauthorized","message":"bearer token required"}}`, http.StatusUnauthorized)
			return
		}
		// Without a token, the same DNS-rebinding defence as the API's (httpapi checkHost).
		if token == "" && !httpapi.HostAllowed(r.Host, allowedHosts) {
			http.Error(w, `{"error":{"code":"MisdirectedRequest","message":"this node does not answer to that Host"}}`, http.StatusMisdirectedRequest)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			debug.ServeHTTP(w, r)
		}
	})
	return mux
}

// ledger is this node's replica of shard k, or nil when the node does not host it.
func (n *node) ledger(k int) *ledger.Ledger {
	return n.families.ledgerOf(n.cluster.StateMachine(k))
}
