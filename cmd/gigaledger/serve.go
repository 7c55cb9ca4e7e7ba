package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/routing"
	"github.com/gigaledger/gigaledger/fsm"
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

// node is one running GigaLedger process: the ledger, its shard replica behind the cluster
// forwarding layer, and the two HTTP listeners.
type node struct {
	cfg         *serveConfig
	logger      *slog.Logger
	ledger      *fsm.Ledger
	cluster     *cluster.Node
	admin       *http.Server
	public      *http.Server
	serveErrors chan error
}

// startNode opens the store, joins the replica set and starts listening. It returns once every
// listener is bound; leadership comes on its own.
func startNode(cfg *serveConfig, logger *slog.Logger) (*node, error) {
	peers, err := cfg.peers()
	if err != nil {
		return nil, err
	}
	if cfg.AdminToken == "" {
		logger.Warn("no admin token: serving the admin API without authentication on loopback only",
			"admin_addr", cfg.AdminAddr, "public_addr", cfg.PublicAddr)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	ledger, err := fsm.Open(filepath.Join(cfg.DataDir, "shard-0"), logger)
	if err != nil {
		return nil, err
	}
	shardPeers := make([]shard.Peer, len(peers))
	for i, p := range peers {
		shardPeers[i] = shard.Peer{ID: p.ID, Addr: p.Addr}
	}
	shardConfig := shard.Config{
		ShardID:    "0",
		NodeID:     cfg.NodeID,
		RaftAddr:   cfg.RaftAddr,
		DataDir:    filepath.Join(cfg.DataDir, "shard-0", "raft"),
		Peers:      shardPeers,
		Bootstrap:  true,
		Registerer: registry,
	}
	if t := cfg.raftTiming; t != nil {
		shardConfig.HeartbeatTimeout, shardConfig.ElectionTimeout = t.heartbeat, t.election
		shardConfig.LeaderLeaseTimeout, shardConfig.CommitTimeout = t.leaderLease, t.commit
	}
	clusterNode, err := cluster.Open(cluster.Config{Shard: shardConfig, Codec: fsm.ResultCodec{}}, ledger, logger)
	if err != nil {
		ledger.Close()
		return nil, err
	}
	n := &node{cfg: cfg, logger: logger, ledger: ledger, cluster: clusterNode, serveErrors: make(chan error, 2)}
	backend := routing.New(singleShard{node: clusterNode, ledger: ledger})
	adminHandler := httpapi.NewAdmin(httpapi.AdminConfig{Token: cfg.AdminToken, Ready: n.ready, Operator: n},
		backend, logger, registry)
	if cfg.Pprof {
		adminHandler = withPprof(adminHandler, cfg.AdminToken)
	}
	n.admin = &http.Server{Addr: cfg.AdminAddr, Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second}
	n.public = &http.Server{Addr: cfg.PublicAddr, Handler: httpapi.NewPublic(httpapi.PublicConfig{Ready: n.ready}, logger, registry),
		ReadHeaderTimeout: 10 * time.Second}
	for _, srv := range []*http.Server{n.admin, n.public} {
		listener, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("listen %s: %w", srv.Addr, err)
		}
		go func(srv *http.Server) {
			if err := srv.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErrors <- err
			}
		}(srv)
	}
	logger.Info("serving", "node_id", cfg.NodeID, "admin_addr", cfg.AdminAddr, "public_addr", cfg.PublicAddr,
		"raft_addr", cfg.RaftAddr, "peers", len(peers), "data_dir", cfg.DataDir)
	return n, nil
}

// ready is /readyz: a leader is known and this replica has caught up with what it knows is
// committed, so it can serve reads and forward writes.
func (n *node) ready() error {
	if id, _ := n.cluster.Shard().Leader(); id == "" {
		return errors.New("no leader")
	}
	return nil
}

// ClusterStatus is GET /cluster: this node and its shard replica as Raft sees them.
func (n *node) ClusterStatus(ctx context.Context) (any, error) {
	sh := n.cluster.Shard()
	leaderID, leaderAddr := sh.Leader()
	servers, err := sh.Servers()
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"node": map[string]any{"id": n.cfg.NodeID, "raftAddr": n.cfg.RaftAddr, "adminAddr": n.cfg.AdminAddr,
			"publicAddr": n.cfg.PublicAddr, "ready": n.ready() == nil},
		"shards": []map[string]any{{
			"id": "0", "replicas": servers, "leaderId": leaderID, "leaderAddr": leaderAddr,
			"state": sh.State().String(), "appliedIndex": n.ledger.AppliedIndex(), "stats": sh.Stats(),
		}},
	}, nil
}

// StateDigest is GET /debug/digest.
func (n *node) StateDigest(ctx context.Context) (string, uint64, error) {
	sum, applied, err := n.ledger.DigestAt()
	return hex.EncodeToString(sum[:]), applied, err
}

// Close stops taking requests, gives those in flight a bounded grace, then closes what is
// left: closing a connection cancels its request, and closing the replica fails every proposal
// still queued (as not applied) or in flight (as outcome unknown). A request waiting for a
// quorum that is itself shutting down must not hold the process up.
func (n *node) Close() error {
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
	return errors.Join(n.cluster.Close(), n.ledger.Close())
}

// singleShard presents the node's one shard to the router. It goes when the multi-raft node
// lands (issue 3).
type singleShard struct {
	node   *cluster.Node
	ledger *fsm.Ledger
}

func (s singleShard) ShardCount() int { return 1 }

func (s singleShard) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	return s.node.Propose(ctx, command)
}

func (s singleShard) LinearizableRead(ctx context.Context, shardID int) error {
	return s.node.LinearizableRead(ctx)
}

func (s singleShard) Ledger(shardID int) *fsm.Ledger { return s.ledger }

// withPprof serves /debug/pprof/ beside the API, behind the same bearer token.
func withPprof(api http.Handler, token string) http.Handler {
	mux := http.NewServeMux()
	debug := http.NewServeMux()
	debug.HandleFunc("/debug/pprof/", pprof.Index)
	debug.HandleFunc("/debug/pprof/profile", pprof.Profile)
	debug.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":{"code":"Unauthorized","message":"bearer token required"}}`, http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			debug.ServeHTTP(w, r)
		}
	})
	return mux
}
