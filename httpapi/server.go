package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// requestTimeoutDefault bounds how long a handler waits for the backend when
// AdminConfig.RequestTimeout is zero.
const requestTimeoutDefault = 10 * time.Second

// Listener names, as the metrics' listener label shows them.
const (
	listenerAdmin  = "admin"
	listenerPublic = "public"
)

// Operational routes, served on both listeners (openapi.json and metrics only on admin).
const (
	pathHealthz = "/healthz"
	pathReadyz  = "/readyz"
	pathMetrics = "/metrics"
	pathOpenAPI = "/openapi.json"
	pathCluster = "/cluster"
	pathDigest  = "/debug/digest"
	pathReplace = "/cluster/replace-node"
	pathMove    = "/cluster/move-replica"
	pathBalance = "/cluster/balance-leaders"
	pathSpread  = "/cluster/balance-replicas"
)

// AdminConfig configures the admin listener's handler.
type AdminConfig struct {
	// Token, when set, is the bearer token every admin route but /healthz, /readyz and /metrics
	// requires. Empty means no auth (the serve command allows that only on loopback).
	Token string
	// Ready reports whether the backend can serve (a leader is known, the store is open);
	// /readyz answers 503 while it returns an error, whose text is the envelope's message
	// ("not ready: shard 2 has no leader"). Nil means always ready.
	Ready func() error
	// ReadyDetail, when set, says what is ready ("1 shard hosted here, each with a leader")
	// as the message of a 200 /readyz.
	ReadyDetail func() string
	// Operator answers /cluster and /debug/digest; nil answers them 503.
	Operator Operator
	// RequestTimeout bounds each request's wait for the backend; zero means
	// requestTimeoutDefault. A proposal that times out is answered 503 OutcomeUnknown.
	RequestTimeout time.Duration
	// AllowedHosts are the host names and addresses (no port; see ParseAllowedHosts) a request's
	// Host may name beside loopback when Token is empty; any other Host is refused 421 then (the
	// DNS-rebinding defence). With a token every Host is served.
	AllowedHosts []string
	// CORSOrigins are the browser origins (see ParseCORSOrigins) that get CORS answers; a
	// mutating request from any other Origin is refused 403. Empty: no CORS headers at all.
	CORSOrigins []string
	// GigaWallet, when set, serves the GigaWallet API's account routes beside Cloud Wallet's.
	GigaWallet *GigaWalletConfig
	// GigPay, when set, serves the GigPay API (/api/v1/...).
	GigPay *GigPayConfig
	// Redriver marks dead letters for re-delivery (POST .../dead-letters/redrive); nil answers
	// that route 503.
	Redriver DeadLetterRedriver
	// ConfiguredSubscribers are the names of the subscribers the node's configuration gives
	// (--callback, --mqtt-queue: callbacks.NAME, mqtt.NAME). They are not replicated
	// subscriptions, but their dead letters are re-driven like those of one.
	ConfiguredSubscribers []string
	// OwnListeners are the node's listener addresses (host:port): a webhook subscription must
	// not target one of them.
	OwnListeners []string
	// Lifetime, when set, ends when the node starts shutting down: long polls (GET /events
	// with wait) then answer at once with what they have, so they do not hold the shutdown's
	// grace period. Nil: never.
	Lifetime context.Context
}

// PublicConfig configures the public listener's handler.
type PublicConfig struct {
	// Ready is as AdminConfig.Ready, but the public listener (what payers' browsers reach)
	// never says why it is not ready: that is operator information.
	Ready func() error
	// RestrictHosts refuses (421) a request whose Host is neither loopback nor in AllowedHosts.
	// The serve command sets it when the node runs without an admin token (and so listens on
	// loopback only).
	RestrictHosts bool
	// AllowedHosts and CORSOrigins are as AdminConfig's.
	AllowedHosts []string
	CORSOrigins  []string
	// GigaWallet, when set, serves GigaWallet's public routes (invoice views) from Backend.
	GigaWallet *GigaWalletConfig
	// GigPay, when set, serves GigPay's token-authorised routes (claim, reject) from Backend.
	GigPay  *GigPayConfig
	Backend Backend
	// RequestTimeout is as AdminConfig's.
	RequestTimeout time.Duration
}

// server holds what the handlers of one listener share.
type server struct {
	// gigaWalletProject is the project the GigaWallet API owns ("" without it): the Cloud Wallet
	// API reads it but does not write to it (guardGigaWalletProject).
	gigaWalletProject string
	// gigPayProject is the GigPay API's project ("" without it): the Cloud Wallet API does not
	// create it, move money in it or delete its own asset (guardGigPayProject).
	gigPayProject  string
	backend        Backend
	logger         *slog.Logger
	metrics        *metrics
	listener       string
	requestTimeout time.Duration
	ready          func() error
	readyDetail    func() string // nil on the public listener, which explains nothing
	// ownListeners are the node's listener addresses, which a webhook must not target.
	ownListeners []string
	operator     Operator
	redriver     DeadLetterRedriver
	configured   []string // ConfiguredSubscribers
	// longPolls holds a token per GET /events request that waits (eventsLongPollsMaxCount).
	longPolls chan struct{}
	// lifetime ends when the node shuts down (AdminConfig.Lifetime).
	lifetime context.Context
	// gigPayEnv is the wallet app's environment of GigPay token links in events.
	gigPayEnv string
}

// Operator answers the operational routes that look inside the node.
type Operator interface {
	// ClusterStatus describes the node, its shard replicas, their leaders and health, as JSON.
	ClusterStatus(ctx context.Context) (any, error)
	// StateDigest returns this replica's ledger digest (hex) and applied log index, as they are
	// locally: replicas agree once they have applied the same index.
	StateDigest(ctx context.Context) (digest string, appliedIndex uint64, err error)
	// ShardDigest is StateDigest of one shard's replica on this node; ErrNotHostedHere when
	// the node holds none.
	ShardDigest(ctx context.Context, shardID int) (digest string, appliedIndex uint64, err error)
	// ReplaceNode moves every shard replica of oldNodeID to newNodeID (already running, at
	// newRaftAddr), shard by shard: added as a non-voter, caught up, promoted, the old one
	// removed. Safe to repeat.
	ReplaceNode(ctx context.Context, oldNodeID, newNodeID, newRaftAddr string) error
	// MoveReplica moves one replica of shardID from fromNodeID to toNodeID (a running member):
	// added as a non-voter, caught up, promoted, the old one removed and deleted. Safe to
	// repeat. An error wrapping ErrMoveRefused is the caller's (no such shard or node, no
	// replica to move); any other may be retried.
	MoveReplica(ctx context.Context, shardID int, fromNodeID, toNodeID string) (ReplicaMove, error)
	// BalanceLeaders moves shard leadership, one shard at a time, from the node leading the
	// most shards to a voter leading at least two fewer, until the spread is at most one. Its
	// answer is JSON (the transfers made, the leads per node, whether balanced). It refuses
	// while a replica move runs (an error: retry later).
	BalanceLeaders(ctx context.Context) (any, error)
	// BalanceReplicas moves shard replicas, one at a time (each as MoveReplica does), from the
	// node holding the most to a live node holding at least two fewer, until the spread is at
	// most one. Its answer is JSON (the moves made, the replicas per node, whether balanced).
	// It refuses while another move runs or a node holding replicas is down (an error: retry
	// later).
	BalanceReplicas(ctx context.Context) (any, error)
}

var (
	// ErrNotHostedHere is the Operator's answer for a shard this node holds no replica of.
	ErrNotHostedHere = errors.New("no replica of the shard on this node")
	// ErrMoveRefused marks a move the cluster refuses as asked (answered 400, not retried).
	ErrMoveRefused = errors.New("move refused")
)

// ReplicaMove is what a move did (POST /cluster/move-replica's answer).
type ReplicaMove struct {
	// Moved is false when an earlier run had finished the move already.
	Moved bool `json:"moved"`
	// CaughtUpIndex is the leader's commit index when the new replica had caught up, and
	// CatchUpMs how long that took after it was added as a non-voter.
	CaughtUpIndex uint64 `json:"caughtUpIndex"`
	CatchUpMs     int64  `json:"catchUpMs"`
}

// moveReplicaRequest is the body of POST /cluster/move-replica.
type moveReplicaRequest struct {
	Shard      *int   `json:"shard"`
	FromNodeID string `json:"fromNodeId"`
	ToNodeID   string `json:"toNodeId"`
}

// moveReplica runs without the request timeout: a new replica's catch-up takes as long as its
// log and snapshot take to send (the cluster bounds it by its progress). A client that gives
// up leaves the move running to its next step; running it again resumes.
func (s *server) moveReplica(c *gin.Context) {
	var req moveReplicaRequest
	if e := decodeBody(c.Request.Body, &req, true); e != nil {
		s.fail(c, e)
		return
	}
	if req.Shard == nil || *req.Shard < 0 || *req.Shard >= keyspace.ShardCountMax {
		s.fail(c, invalidArgument("shard must be a shard number"))
		return
	}
	for _, id := range [][2]string{{"fromNodeId", req.FromNodeID}, {"toNodeId", req.ToNodeID}} {
		if !fsm.ValidID(id[1], fsm.IDMaxLength) {
			s.fail(c, invalidArgument("%s must be a node ID: 1..%d letters, digits, '-', '_' or '.'", id[0], fsm.IDMaxLength))
			return
		}
	}
	if req.FromNodeID == req.ToNodeID {
		s.fail(c, invalidArgument("fromNodeId and toNodeId must be two different node IDs"))
		return
	}
	if s.operator == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no cluster here"})
		return
	}
	move, err := s.operator.MoveReplica(c.Request.Context(), *req.Shard, req.FromNodeID, req.ToNodeID)
	if errors.Is(err, ErrMoveRefused) {
		s.fail(c, invalidArgument("%s", err.Error()))
		return
	}
	if err != nil {
		s.logger.Error("move replica", slog.Any("error", err), slog.Int("shard", *req.Shard),
			slog.String("from", req.FromNodeID), slog.String("to", req.ToNodeID))
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "moving the replica did not finish; it is safe to repeat: " + err.Error(), retryAfter: true})
		return
	}
	status := "moved"
	if !move.Moved {
		status = "already moved"
	}
	c.JSON(http.StatusOK, gin.H{"status": status, "shard": *req.Shard, "fromNodeId": req.FromNodeID, "toNodeId": req.ToNodeID,
		"moved": move.Moved, "caughtUpIndex": move.CaughtUpIndex, "catchUpMs": move.CatchUpMs})
}

// replaceNodeRequest is the body of POST /cluster/replace-node.
type replaceNodeRequest struct {
	OldNodeID   string `json:"oldNodeId"`
	NewNodeID   string `json:"newNodeId"`
	NewRaftAddr string `json:"newRaftAddr"`
}

func (s *server) replaceNode(c *gin.Context) {
	var req replaceNodeRequest
	if e := decodeBody(c.Request.Body, &req, true); e != nil {
		s.fail(c, e)
		return
	}
	if !fsm.ValidID(req.OldNodeID, fsm.IDMaxLength) || !fsm.ValidID(req.NewNodeID, fsm.IDMaxLength) || req.OldNodeID == req.NewNodeID {
		s.fail(c, &apiError{status: http.StatusBadRequest, code: CodeInvalidArgument, message: "oldNodeId and newNodeId must be two different node IDs"})
		return
	}
	if _, _, err := net.SplitHostPort(req.NewRaftAddr); err != nil {
		s.fail(c, &apiError{status: http.StatusBadRequest, code: CodeInvalidArgument, message: "newRaftAddr must be host:port"})
		return
	}
	if s.operator == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no cluster here"})
		return
	}
	err := s.operator.ReplaceNode(c.Request.Context(), req.OldNodeID, req.NewNodeID, req.NewRaftAddr)
	if errors.Is(err, ErrMoveRefused) {
		s.fail(c, invalidArgument("%s", err.Error()))
		return
	}
	if err != nil {
		s.logger.Error("replace node", slog.Any("error", err), slog.String("old", req.OldNodeID), slog.String("new", req.NewNodeID))
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "replacing the node did not finish; it is safe to repeat: " + err.Error(), retryAfter: true})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "replaced", "oldNodeId": req.OldNodeID, "newNodeId": req.NewNodeID})
}

// balanceLeaders runs without the request timeout: each transfer waits until the node sees the
// new leader (bounded by the cluster).
func (s *server) balanceLeaders(c *gin.Context) {
	s.runBalance(c, "leaders", func(ctx context.Context) (any, error) { return s.operator.BalanceLeaders(ctx) })
}

// balanceReplicas runs without the request timeout, as moveReplica does: each move waits for
// its new replica to catch up. A client that gives up leaves the current move running to its
// next step; running it again resumes and goes on.
func (s *server) balanceReplicas(c *gin.Context) {
	s.runBalance(c, "replicas", func(ctx context.Context) (any, error) { return s.operator.BalanceReplicas(ctx) })
}

// runBalance answers a balancing request (an empty JSON object): balance's result, or 503 with
// its error (every balancing step is safe to repeat).
func (s *server) runBalance(c *gin.Context, what string, balance func(context.Context) (any, error)) {
	if e := decodeBody(c.Request.Body, &struct{}{}, false); e != nil {
		s.fail(c, e)
		return
	}
	if s.operator == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no cluster here"})
		return
	}
	result, err := balance(c.Request.Context())
	if err != nil {
		s.logger.Error("balance "+what, slog.Any("error", err))
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "balancing " + what + " did not finish; it is safe to repeat: " + err.Error(), retryAfter: true})
		return
	}
	c.JSON(http.StatusOK, result)
}

func (s *server) clusterStatus(c *gin.Context) {
	if s.operator == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no cluster status here"})
		return
	}
	status, err := s.operator.ClusterStatus(c.Request.Context())
	if err != nil {
		s.logger.Error("cluster status", slog.Any("error", err))
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "cluster status unavailable", retryAfter: true})
		return
	}
	c.JSON(http.StatusOK, status)
}

func (s *server) stateDigest(c *gin.Context) {
	if s.operator == nil {
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "no digest here"})
		return
	}
	digest, applied, err := "", uint64(0), error(nil)
	if text, present := c.GetQuery("shard"); present {
		shardID, parseErr := strconv.Atoi(text)
		if parseErr != nil || shardID < 0 || shardID >= keyspace.ShardCountMax {
			s.fail(c, invalidArgument("shard must be a shard number"))
			return
		}
		digest, applied, err = s.operator.ShardDigest(c.Request.Context(), shardID)
		if errors.Is(err, ErrNotHostedHere) {
			writeError(c, &apiError{status: http.StatusNotFound, code: CodeNotFound, message: fmt.Sprintf("this node holds no replica of shard %d", shardID)})
			return
		}
	} else {
		digest, applied, err = s.operator.StateDigest(c.Request.Context())
	}
	if err != nil {
		s.logger.Error("state digest", slog.Any("error", err))
		writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "digest unavailable", retryAfter: true})
		return
	}
	answer := gin.H{"digest": digest, "appliedIndex": applied}
	if _, one := c.GetQuery("shard"); one {
		c.JSON(http.StatusOK, answer)
		return
	}
	if sd, ok := s.operator.(ShardDigester); ok {
		shards, err := sd.ShardDigests(c.Request.Context())
		if err != nil {
			s.logger.Error("shard digests", slog.Any("error", err))
			writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "digest unavailable", retryAfter: true})
			return
		}
		answer["shards"] = shards
	}
	c.JSON(http.StatusOK, answer)
}

// ShardDigester is what an Operator serving several shards may also do: GET /debug/digest then
// lists each hosted shard's digest and applied index, so that replicas compare shard by shard
// (the fault suite does).
type ShardDigester interface {
	ShardDigests(ctx context.Context) ([]ShardDigest, error)
}

// ShardDigest is one hosted shard's ledger digest (hex) at its applied log index.
type ShardDigest struct {
	Shard        int    `json:"shard"`
	Digest       string `json:"digest"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// HistoryChainIndex and HistoryChainHead are the shard's newest history chain record (log
	// index, hex hash; fsm/chain.go), absent before the chain starts. Read beside the digest,
	// not in its view: compare heads at equal indexes.
	HistoryChainIndex uint64 `json:"historyChainIndex,omitempty"`
	HistoryChainHead  string `json:"historyChainHead,omitempty"`
	// RulesVersion is the shard's rules version (fsm/rules.go): below the binary's while a
	// rolling upgrade waits for its last old replica.
	RulesVersion uint32 `json:"rulesVersion"`
}

// NewAdmin returns the admin listener's handler: every Cloud Wallet route of
// docs/cloudwallet-api.md, /openapi.json, /metrics (from registry), /healthz and /readyz.
// logger receives the access log (debug), panics and internal errors; registry receives the
// request and transaction metrics (nil: none are registered and /metrics is empty). It panics
// if backend or logger is nil.
func NewAdmin(cfg AdminConfig, backend Backend, logger *slog.Logger, registry *prometheus.Registry) http.Handler {
	return newAdminEngine(cfg, backend, logger, registry)
}

func newAdminEngine(cfg AdminConfig, backend Backend, logger *slog.Logger, registry *prometheus.Registry) *gin.Engine {
	if backend == nil || logger == nil {
		panic("httpapi: NewAdmin needs a backend and a logger")
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = requestTimeoutDefault
	}
	s := &server{backend: backend, logger: logger, metrics: newMetrics(registry), listener: listenerAdmin,
		requestTimeout: timeout, ready: cfg.Ready, operator: cfg.Operator, redriver: cfg.Redriver, configured: cfg.ConfiguredSubscribers, readyDetail: cfg.ReadyDetail,
		longPolls: make(chan struct{}, eventsLongPollsMaxCount), lifetime: cfg.Lifetime, ownListeners: cfg.OwnListeners}
	if s.lifetime == nil {
		s.lifetime = context.Background()
	}
	if s.readyDetail == nil {
		s.readyDetail = func() string { return "" }
	}
	engine := s.newEngine(newBrowserPolicy(cfg.Token == "", cfg.AllowedHosts, cfg.CORSOrigins),
		s.authenticate(cfg.Token), s.checkPathParams)
	specs := s.adminRoutes(registry)
	if cfg.GigaWallet != nil {
		s.gigaWalletProject = cfg.GigaWallet.ProjectID
		for i := range specs {
			specs[i].handler = s.guardGigaWalletProject(specs[i].method, specs[i].path, specs[i].handler)
		}
		specs = append(specs, (&gigaWallet{server: s, cfg: *cfg.GigaWallet}).routes()...)
	}
	if cfg.GigPay != nil {
		s.gigPayEnv, s.gigPayProject = cfg.GigPay.Env, cfg.GigPay.ProjectID
		for i := range specs {
			specs[i].handler = s.guardGigPayProject(specs[i].method, specs[i].path, specs[i].handler)
		}
		specs = append(specs, (&gigPay{server: s, cfg: *cfg.GigPay}).routes()...)
	}
	document, err := json.Marshal(openAPIDocument(specs))
	if err != nil {
		panic(fmt.Sprintf("httpapi: marshal OpenAPI document: %v", err))
	}
	for i := range specs {
		if specs[i].path == pathOpenAPI {
			specs[i].handler = func(c *gin.Context) { c.Data(http.StatusOK, "application/json", document) }
		}
		handle(engine, specs[i])
	}
	return engine
}

// handle registers a route; a GET route answers HEAD too, with the same handler (every
// general-purpose server supports both, RFC 9110 §9.1: monitors probe with HEAD), and net/http
// sends its headers without the body.
func handle(engine *gin.Engine, spec routeSpec) {
	engine.Handle(spec.method, spec.path, spec.handler)
	if spec.method == http.MethodGet {
		engine.Handle(http.MethodHead, spec.path, spec.handler)
	}
}

// NewPublic returns the public listener's handler: what a payer's browser may reach: /healthz,
// /readyz and, with the GigaWallet API on, GigaWallet's public invoice routes. registry is as
// for NewAdmin.
func NewPublic(cfg PublicConfig, logger *slog.Logger, registry *prometheus.Registry) http.Handler {
	if logger == nil || ((cfg.GigaWallet != nil || cfg.GigPay != nil) && cfg.Backend == nil) {
		panic("httpapi: NewPublic needs a logger, and a backend for the GigaWallet and GigPay routes")
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = requestTimeoutDefault
	}
	s := &server{backend: cfg.Backend, logger: logger, metrics: newMetrics(registry), listener: listenerPublic,
		ready: cfg.Ready, requestTimeout: timeout}
	engine := s.newEngine(newBrowserPolicy(cfg.RestrictHosts, cfg.AllowedHosts, cfg.CORSOrigins), s.checkPathParams)
	specs := s.healthRoutes()
	if cfg.GigaWallet != nil {
		for _, spec := range (&gigaWallet{server: s, cfg: *cfg.GigaWallet}).routes() {
			if spec.public {
				specs = append(specs, spec)
			}
		}
	}
	if cfg.GigPay != nil {
		for _, spec := range (&gigPay{server: s, cfg: *cfg.GigPay}).routes() {
			if spec.public {
				specs = append(specs, spec)
			}
		}
	}
	for _, spec := range specs {
		handle(engine, spec)
	}
	return engine
}

// newEngine returns a gin engine with this package's middleware, in order: metrics and access
// log, recovery into the error envelope, the browser protections of policy (Host, then Origin
// and CORS), the body size limit, the listener's own guards (auth), and the Content-Type check;
// 404 NotFound for unknown routes and 405 MethodNotAllowed with Allow for a known path asked
// with another method. Every route of every API family passes through all of them.
func (s *server) newEngine(policy browserPolicy, guards ...gin.HandlerFunc) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	// An API client gets a 404 for /projects/ rather than a redirect that drops its body.
	engine.RedirectTrailingSlash = false
	engine.RedirectFixedPath = false
	engine.ContextWithFallback = true
	// gin sets Allow (the methods served at the path) before the NoMethod handlers run.
	engine.HandleMethodNotAllowed = true
	engine.Use(s.observe, s.recover, policy.checkHost, policy.checkOrigin, limitBody, bufferBody)
	engine.Use(guards...)
	engine.Use(requireJSON)
	engine.NoRoute(func(c *gin.Context) {
		s.fail(c, &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "no such route"})
	})
	engine.NoMethod(func(c *gin.Context) {
		s.fail(c, &apiError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			message: "this method is not served at this path; the Allow header lists those that are"})
	})
	return engine
}

// observe records the request's latency metric and writes the access log line (debug). The
// route is the template (c.FullPath()), never the raw path: paths hold customer IDs.
func (s *server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = routeUnmatched
	}
	status := c.Writer.Status()
	s.metrics.observeRequest(s.listener, c.Request.Method, route, status, elapsed.Seconds())
	s.logger.LogAttrs(c.Request.Context(), slog.LevelDebug, "http request",
		slog.String("listener", s.listener), slog.String("method", c.Request.Method),
		slog.String("route", route), slog.Int("status", status),
		slog.Int("responseBytes", c.Writer.Size()), slog.Float64("durationMs", float64(elapsed.Microseconds())/1000))
}

// recover turns a handler panic into a logged 500 with the error envelope.
func (s *server) recover(c *gin.Context) {
	defer func() {
		recovered := recover()
		if recovered == nil {
			return
		}
		if recovered == http.ErrAbortHandler {
			panic(recovered)
		}
		s.logger.Error("http handler panicked", slog.String("route", c.FullPath()),
			slog.Any("panic", recovered), slog.String("stack", string(debug.Stack())))
		if !c.Writer.Written() {
			s.fail(c, internalError(nil))
		}
		c.Abort()
	}()
	c.Next()
}

// limitBody refuses bodies over requestBodyMaxBytes: at once when Content-Length says so,
// otherwise when reading passes the limit (the decoders then answer 413).
func limitBody(c *gin.Context) {
	if c.Request.ContentLength > requestBodyMaxBytes {
		writeError(c, &apiError{status: http.StatusRequestEntityTooLarge, code: CodeRequestTooLarge,
			message: fmt.Sprintf("request body exceeds %d bytes", requestBodyMaxBytes)})
		return
	}
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, requestBodyMaxBytes)
	}
	c.Next()
}

// authExemptRoutes are the admin routes served without a token: probes and scraping.
var authExemptRoutes = map[string]bool{pathHealthz: true, pathReadyz: true, pathMetrics: true}

// authenticate requires "Authorization: Bearer <token>" on every admin route but the exempt
// ones, unknown routes included (so that a client without the token cannot map the API). An
// empty token turns auth off.
func (s *server) authenticate(token string) gin.HandlerFunc {
	if token == "" {
		return func(c *gin.Context) { c.Next() }
	}
	valid := BearerCheck(token)
	return func(c *gin.Context) {
		if authExemptRoutes[c.FullPath()] {
			c.Next()
			return
		}
		if !valid(c.GetHeader("Authorization")) {
			c.Header("WWW-Authenticate", `Bearer realm="gigaledger"`)
			writeError(c, &apiError{status: http.StatusUnauthorized, code: CodeUnauthorized,
				message: "a valid bearer token is required"})
			return
		}
		c.Next()
	}
}

// BearerCheck returns a check of an Authorization header against token ("Bearer <token>",
// the scheme in any case). Comparing digests keeps it constant-time whatever the lengths.
func BearerCheck(token string) func(authorization string) bool {
	want := sha256.Sum256([]byte(token))
	return func(authorization string) bool {
		scheme, credentials, found := strings.Cut(authorization, " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(credentials)))
		return found && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(got[:], want[:]) == 1
	}
}

// healthRoutes are /healthz and /readyz.
func (s *server) healthRoutes() []routeSpec {
	return []routeSpec{
		{method: http.MethodGet, path: pathHealthz, operationID: "healthz", tag: tagOperations, noAuth: true,
			summary: "Liveness: 200 while the process is up.", success: http.StatusOK, response: "Health",
			handler: func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }},
		{method: http.MethodGet, path: pathReadyz, operationID: "readyz", tag: tagOperations, noAuth: true,
			summary: "Readiness: 200 when the backend can serve, else 503 Unavailable.", success: http.StatusOK,
			response: "Health", errors: []int{http.StatusServiceUnavailable}, handler: s.readyz},
	}
}

// readyz answers 200 when the backend can serve, 503 otherwise. On the admin listener the
// body says why not ("not ready: shard 2 has no leader") or what is ready; the public
// listener says only "not ready to serve".
func (s *server) readyz(c *gin.Context) {
	if s.ready != nil {
		if err := s.ready(); err != nil {
			s.logger.Debug("not ready", slog.String("listener", s.listener), slog.Any("error", err))
			message := "not ready to serve"
			if s.readyDetail != nil {
				message = "not ready: " + err.Error()
			}
			writeError(c, &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
				message: message, retryAfter: true})
			return
		}
	}
	body := gin.H{"status": "ready"}
	if s.readyDetail != nil {
		if detail := s.readyDetail(); detail != "" {
			body["message"] = detail
		}
	}
	c.JSON(http.StatusOK, body)
}

// metricsHandler serves registry in the Prometheus exposition format.
func metricsHandler(registry *prometheus.Registry) gin.HandlerFunc {
	if registry == nil {
		registry = prometheus.NewRegistry()
	}
	handler := promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	return gin.WrapH(handler)
}

// fail logs what needs logging and writes the error envelope.
func (s *server) fail(c *gin.Context, e *apiError) {
	switch {
	case e.status >= http.StatusInternalServerError && e.status != http.StatusServiceUnavailable:
		s.logger.Error("http request failed", slog.String("route", c.FullPath()), slog.String("code", e.code),
			slog.Any("error", e.cause))
	case e.cause != nil:
		s.logger.Warn("http request refused", slog.String("route", c.FullPath()), slog.String("code", e.code),
			slog.Any("error", e.cause))
	}
	writeError(c, e)
}

// writeError writes the error envelope and stops the handler chain.
func writeError(c *gin.Context, e *apiError) {
	if e.status != http.StatusMethodNotAllowed {
		// gin sets Allow before the middleware runs; only a 405 may tell which methods a path
		// serves (a client refused for its token or Host learns nothing about the routes).
		c.Writer.Header().Del("Allow")
	}
	if relay := inRelayShape(c, e); relay != nil {
		// A refusal of the listener's own checks (a path, a media type, a body too large) on
		// the DogeConnect relay: its wallets read DogeConnect's shape there, whatever refused.
		c.Header("Cache-Control", "no-store") // as the relay's own answers
		c.AbortWithStatusJSON(e.status, relay)
		return
	}
	e = inGigaWalletCode(c, e)
	if e.retryAfter {
		c.Header("Retry-After", retryAfterSeconds)
	}
	body, err := json.Marshal(ErrorBody{Error: ErrorDetail{Code: e.code, Message: e.message}, Transaction: e.transaction, Hold: e.hold,
		Token: e.token, Payment: e.payment})
	if err != nil {
		body = []byte(`{"error":{"code":"Internal","message":"internal error"}}`)
		e.status = http.StatusInternalServerError
	}
	c.Data(e.status, "application/json; charset=utf-8", body)
	c.Abort()
}

// ok writes a success body.
func (s *server) ok(c *gin.Context, status int, value any) {
	if transaction, ok := value.(cloudwallet.Transaction); ok {
		// The transfer route's answer, written without reflection when it can be.
		if body, ok := transaction.AppendJSON(make([]byte, 0, 256+96*len(transaction.Operations))); ok {
			c.Data(status, "application/json; charset=utf-8", body)
			return
		}
	}
	body, err := json.Marshal(value)
	if err != nil {
		s.fail(c, internalError(fmt.Errorf("marshal response: %w", err)))
		return
	}
	c.Data(status, "application/json; charset=utf-8", body)
}

// withTimeout returns the request's context bounded by the backend wait.
func (s *server) withTimeout(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Request.Context(), s.requestTimeout)
}

// guardGigaWalletProject refuses the Cloud Wallet API's writes to GigaWallet's project (409
// ProjectOwnedByGigaWallet); reads pass. GigaWallet's accounts follow the chain: its state
// machine holds each payout's hold until the payout is mined or released, and credits what
// the chain pays to wallets it keeps open. A capture or release of such a hold, a transfer, a
// suspension or a closure made beside it would break what it relies on (a payout's hold gone
// under it stopped every replica before this guard). Creating the project under another
// API's hand (POST /projects with its ID) is refused in createProject.
func (s *server) guardGigaWalletProject(method, path string, handler gin.HandlerFunc) gin.HandlerFunc {
	if method == http.MethodGet || method == http.MethodHead || !strings.HasPrefix(path, "/projects/:projectId") {
		return handler
	}
	return func(c *gin.Context) {
		if c.Param("projectId") == s.gigaWalletProject {
			s.fail(c, s.gigaWalletProjectOwned())
			return
		}
		handler(c)
	}
}

// gigPayMoneyRoutes are the Cloud Wallet writes that move or reserve money: in GigPay's
// project guardGigPayProject refuses them.
var gigPayMoneyRoutes = map[string]bool{
	"/projects/:projectId/transactions":          true,
	"/projects/:projectId/transactions/batch":    true,
	"/projects/:projectId/holds/:holdId/capture": true,
	"/projects/:projectId/holds/:holdId/release": true,
}

// guardGigPayProject refuses, in GigPay's project, the Cloud Wallet API's transactions and its
// hold captures and releases (409 ProjectOwnedByGigPay). GigPay's tokens and withdrawals are
// holds it resolves itself: a hold captured or released beside it left an active token that no
// claim could take (the money no longer held), a rejected token whose payee had been paid, or a
// pending withdrawal whose money could be spent again; and money moved in or out beside its
// payments is money its payment list does not show. What GigPay's documentation sends to this
// API stays open: assets, customers, and wallet and customer status.
//
// Nor may it delete GigPay's own asset (usd), which GigPay creates with its project the first
// time it needs them and never again: deleted while no wallet used it, every GigPay account
// creation failed for good. Creating the project under another API's hand (POST /projects with
// its ID) is refused in createProject.
func (s *server) guardGigPayProject(method, path string, handler gin.HandlerFunc) gin.HandlerFunc {
	ownAsset := method == http.MethodDelete && path == "/projects/:projectId/assets/:assetId"
	if !ownAsset && (method != http.MethodPost || !gigPayMoneyRoutes[path]) {
		return handler
	}
	return func(c *gin.Context) {
		switch {
		case c.Param("projectId") != s.gigPayProject:
		case ownAsset && c.Param("assetId") == gigPayAssetID:
			s.fail(c, s.gigPayProjectOwned("its asset %q is GigPay's own: it cannot be deleted", gigPayAssetID))
			return
		case !ownAsset:
			s.fail(c, s.gigPayProjectOwned("its money moves through GigPay's tokens and payments, not through Cloud Wallet transactions or holds"))
			return
		}
		handler(c)
	}
}

// gigPayProjectOwned is the 409 ProjectOwnedByGigPay of a Cloud Wallet write that GigPay's
// project refuses, saying why.
func (s *server) gigPayProjectOwned(why string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: CodeProjectOwnedByGigPay,
		message: fmt.Sprintf("project %q is the GigPay API's: ", s.gigPayProject) + fmt.Sprintf(why, args...)}
}

func (s *server) gigaWalletProjectOwned() *apiError {
	return &apiError{status: http.StatusConflict, code: CodeProjectOwned,
		message: fmt.Sprintf("project %q is the GigaWallet API's: change it through that API (the Cloud Wallet API reads it only)", s.gigaWalletProject)}
}
