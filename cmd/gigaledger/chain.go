package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/chainwatch/zmqsub"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/prometheus/client_golang/prometheus"
)

// The chain follower's wiring (chainwatch has the follower; fsm/gigawallet/CHAIN.md the model):
// the shards this node leads follow the Dogecoin node of the configured network, given as
// --dogecoind or a config.toml's [dogecoind.<network>] (GigaWallet's keys).

// dogecoindSpec is one --dogecoind: a node of a network, in GigaWallet's [dogecoind.<network>]
// keys. host is the ZMQ host (GigaWallet requires it; here ZMQ is optional: zmqport 0 polls).
type dogecoindSpec struct {
	Network    string `json:"network"`
	Host       string `json:"host"`
	ZMQPort    int    `json:"zmqport"`
	RPCHost    string `json:"rpchost"`
	RPCPort    int    `json:"rpcport"`
	RPCUser    string `json:"rpcuser"`
	RPCPass    string `json:"rpcpass"`
	RPCPassEnv string `json:"rpcpassEnv"`
}

// dogecoindFlags is the repeatable --dogecoind flag.
type dogecoindFlags struct{ list *[]dogecoindSpec }

func (dogecoindFlags) repeatable() {}

// String implements flag.Value: the networks, never a password.
func (f dogecoindFlags) String() string {
	if f.list == nil {
		return ""
	}
	names := make([]string, 0, len(*f.list))
	for _, s := range *f.list {
		names = append(names, s.Network)
	}
	return strings.Join(names, ",")
}

// Set implements flag.Value. Errors never quote the text (it may hold the password).
func (f dogecoindFlags) Set(text string) error {
	var spec dogecoindSpec
	if !decodeFlagSpec(text, &spec) {
		return errors.New("--dogecoind: not one JSON object of network, rpchost, rpcport, rpcuser, rpcpass or rpcpassEnv, and optional host and zmqport, each once")
	}
	var err error
	if spec.RPCPass, err = secretFromEnv("dogecoind", spec.Network, "rpcpass", spec.RPCPass, spec.RPCPassEnv); err != nil {
		return err
	}
	spec.RPCPassEnv = ""
	if _, err := dogecoin.ParseNetwork(spec.Network); err != nil {
		return fmt.Errorf("--dogecoind: %w", err)
	}
	switch {
	case spec.RPCPort < 1 || spec.RPCPort > 65535:
		return fmt.Errorf("--dogecoind %s: rpcport must be 1..65535", spec.Network)
	case spec.ZMQPort < 0 || spec.ZMQPort > 65535:
		return fmt.Errorf("--dogecoind %s: zmqport must be 0..65535 (0: no ZMQ, poll)", spec.Network)
	case spec.RPCUser == "":
		return fmt.Errorf("--dogecoind %s: rpcuser is required", spec.Network)
	}
	if spec.RPCHost == "" {
		spec.RPCHost = "localhost" // GigaWallet's default
	}
	if spec.Host == "" {
		spec.Host = spec.RPCHost
	}
	for _, s := range *f.list {
		if s.Network == spec.Network {
			return fmt.Errorf("--dogecoind %s given twice", spec.Network)
		}
	}
	*f.list = append(*f.list, spec)
	return nil
}

// dogecoindOf is the node of the configured network, or nil: no node, no follower.
func dogecoindOf(cfg *serveConfig) *dogecoindSpec {
	for i := range cfg.Dogecoind {
		if cfg.Dogecoind[i].Network == cfg.Network {
			return &cfg.Dogecoind[i]
		}
	}
	return nil
}

// chainShards gives the watcher this node's shards.
type chainShards struct {
	node   *cluster.Node
	family *gigawallet.Family
}

func (c chainShards) LedShards() []int {
	var led []int
	for _, k := range c.node.HostedShards() {
		if s := c.node.Shard(k); s != nil && s.LeaderReady() {
			led = append(led, k)
		}
	}
	return led
}

func (c chainShards) Shard(shardID int) (chainwatch.Shard, bool) {
	m, ok := c.node.StateMachine(shardID).(*fsm.Machine)
	if !ok || m == nil {
		return nil, false
	}
	return chainShard{node: c.node, shardID: shardID, machine: m, reader: c.family.Of(m)}, true
}

// chainShard is one hosted shard as its follower sees it.
type chainShard struct {
	node    *cluster.Node
	shardID int
	machine *fsm.Machine
	reader  *gigawallet.Reader
}

func (s chainShard) Reader() *gigawallet.Reader { return s.reader }
func (s chainShard) AppliedIndex() uint64       { return s.machine.AppliedIndex() }

func (s chainShard) Propose(ctx context.Context, cmd fsm.Command) (*fsm.Result, error) {
	out, err := s.node.Propose(ctx, s.shardID, fsm.EncodeCommand(cmd))
	if err != nil {
		return nil, err
	}
	result, ok := out.(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("shard %d answered %T", s.shardID, out)
	}
	return result, nil
}

// chainFollower is the running watcher and what the API asks of it.
type chainFollower struct {
	node    *cluster.Node
	family  *gigawallet.Family
	client  *rpc.Client
	watcher *chainwatch.Watcher
	cancel  context.CancelFunc
	done    chan struct{}
}

// startChainFollower starts following the configured network's node, when one is configured.
func startChainFollower(node *cluster.Node, fams *families, cfg *serveConfig, keys *dogecoin.Keychain, registry prometheus.Registerer, logger *slog.Logger) (*chainFollower, error) {
	spec := dogecoindOf(cfg)
	if spec == nil {
		if len(cfg.Dogecoind) > 0 {
			logger.Warn("no --dogecoind for the configured network: payments are not followed", "network", cfg.Network)
		} else if keys != nil {
			logger.Info("no Dogecoin node configured (--dogecoind): invoices are created, but payments to them are not seen", "network", cfg.Network)
		}
		return nil, nil
	}
	network, err := dogecoin.ParseNetwork(cfg.Network)
	if err != nil {
		return nil, err
	}
	client, err := rpc.New(rpc.Config{URL: "http://" + net.JoinHostPort(spec.RPCHost, strconv.Itoa(spec.RPCPort)),
		User: spec.RPCUser, Password: spec.RPCPass, Retries: 2})
	if err != nil {
		return nil, fmt.Errorf("--dogecoind %s: %w", spec.Network, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &chainFollower{node: node, family: fams.gigawallet, client: client, cancel: cancel, done: make(chan struct{})}
	f.watcher = chainwatch.NewWatcher(chainwatch.Config{Network: network, StartHeight: cfg.ChainStartHeight,
		PollInterval: cfg.ChainPollInterval, Logger: logger.With("component", "chainwatch"), Metrics: chainwatch.NewMetrics(registry),
		Keys: keys, PayoutConfirmations: int32(cfg.ConfirmationsNeeded)},
		client, chainShards{node: node, family: fams.gigawallet})
	var notifications <-chan zmqsub.Notification
	zmqEndpoint := ""
	if spec.ZMQPort > 0 {
		zmqEndpoint = "tcp://" + net.JoinHostPort(spec.Host, strconv.Itoa(spec.ZMQPort))
		// hashtx wakes the followers for a payment in the mempool, hashblock for a block; the
		// follower reads both over RPC, so the hashes alone are enough.
		notifications, err = zmqsub.Subscribe(ctx, zmqEndpoint, zmqsub.TopicHashBlock, zmqsub.TopicHashTx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("--dogecoind %s: zmq: %w", spec.Network, err)
		}
	}
	go func() {
		defer close(f.done)
		if notifications == nil {
			f.watcher.Run(ctx)
			return
		}
		watcherDone := make(chan struct{})
		go func() {
			defer close(watcherDone)
			f.watcher.Run(ctx)
		}()
		wakeOnNotifications(notifications, f.watcher, logger)
		<-watcherDone
	}()
	logger.Info("following the Dogecoin node", "network", spec.Network, "rpc", net.JoinHostPort(spec.RPCHost, strconv.Itoa(spec.RPCPort)),
		"zmq", zmqEndpoint, "start_height", cfg.ChainStartHeight)
	return f, nil
}

// wakeOnNotifications wakes the followers for every notification of the node, until the
// subscription ends (its channel closes with the follower's context). A gap (a reconnection,
// a skipped sequence number) wakes them too: what was missed is read by polling the node, which
// is what a woken follower does anyway. Polling stays the fallback when ZMQ is silent.
func wakeOnNotifications(notifications <-chan zmqsub.Notification, watcher *chainwatch.Watcher, logger *slog.Logger) {
	for n := range notifications {
		if n.Kind == zmqsub.KindGap {
			logger.Debug("chain follower: ZMQ gap; reading the node", "reason", n.Reason)
		}
		watcher.Wake()
	}
}

// SetSyncHeight implements httpapi.ChainRescanner: every shard of the cluster (through its
// leader) goes back to the node's block at height. A shard that has observed no block, or is
// below height already, is left alone.
func (f *chainFollower) SetSyncHeight(ctx context.Context, height int64) (int, error) {
	text, err := f.client.GetBlockHash(ctx, height)
	if err != nil {
		return 0, fmt.Errorf("the node has no block at height %d: %w", height, err)
	}
	hash, err := gigawallet.ParseHash(text)
	if err != nil {
		return 0, err
	}
	rewound := 0
	for k := 0; k < f.node.ShardCount(); k++ {
		// A shard still on a fork the node has left must first be walked back by its
		// follower; a replica of it here tells (a shard hosted elsewhere is not checked).
		if m, ok := f.node.StateMachine(k).(*fsm.Machine); ok && m != nil {
			if err := chainwatch.CheckCursorActive(ctx, f.client, f.family.Of(m)); err != nil {
				f.watcher.Wake()
				if errors.Is(err, chainwatch.ErrStaleCursor) {
					return rewound, fsm.Rejectf(gigawallet.CodeChainMismatch, "shard %d: %v; try again", k, err)
				}
				return rewound, fmt.Errorf("shard %d: %w", k, err)
			}
		}
		out, err := f.node.Propose(ctx, k, fsm.EncodeCommand(&gigawallet.RewindChain{Height: height, Hash: hash}))
		if err != nil {
			return rewound, fmt.Errorf("shard %d: %w", k, err)
		}
		result, _ := out.(*fsm.Result)
		switch {
		case result == nil:
			return rewound, fmt.Errorf("shard %d answered %T", k, out)
		case result.Err == nil:
			rewound++
		case result.Err.Code == gigawallet.CodeChainMismatch:
			// nothing observed yet, or already below height
		default:
			return rewound, fmt.Errorf("shard %d: %w", k, result.Err)
		}
	}
	f.watcher.Wake()
	return rewound, nil
}

// FeeRateKoinuPerKB implements httpapi.ChainService: the node's estimatefee 6 (GigaWallet's
// call), 0 when it has no estimate.
func (f *chainFollower) FeeRateKoinuPerKB(ctx context.Context) (uint64, error) {
	rate, err := f.client.EstimateFee(ctx, 6)
	if err != nil {
		return 0, err
	}
	if rate <= 0 || rate > 1<<40 {
		return 0, nil
	}
	return uint64(rate), nil
}

// Broadcast implements httpapi.ChainService.
func (f *chainFollower) Broadcast(ctx context.Context, raw []byte) error {
	return chainwatch.Broadcast(ctx, f.client, raw)
}

// ChainStatus is the chain part of GET /cluster: each hosted shard's cursor.
type ChainStatus struct {
	Network string             `json:"network"`
	Shards  []ChainShardStatus `json:"shards"`
}

// ChainShardStatus is one hosted shard's place on the chain.
type ChainShardStatus struct {
	Shard     int    `json:"shard"`
	Leader    bool   `json:"leader"`
	Height    int64  `json:"height"`
	Hash      string `json:"hash,omitempty"`
	UpdatedAt string `json:"updatedAt,omitempty"`
}

func chainStatus(node *cluster.Node, fams *families, network string) *ChainStatus {
	status := &ChainStatus{Network: network, Shards: []ChainShardStatus{}}
	for _, k := range node.HostedShards() {
		m, ok := node.StateMachine(k).(*fsm.Machine)
		if !ok || m == nil {
			continue
		}
		cursor, err := fams.gigawallet.Of(m).ChainCursor()
		if err != nil {
			continue
		}
		s := ChainShardStatus{Shard: k, Height: cursor.Height}
		if sh := node.Shard(k); sh != nil {
			s.Leader = sh.IsLeader()
		}
		if cursor.Hash != (gigawallet.Hash{}) {
			s.Hash = cursor.Hash.String()
			s.UpdatedAt = time.UnixMilli(cursor.UpdatedAt).UTC().Format(time.RFC3339)
		}
		status.Shards = append(status.Shards, s)
	}
	return status
}

// Close stops the followers.
func (f *chainFollower) Close() {
	f.cancel()
	<-f.done
}
