package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/chainwatch"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/nodelog"
)

// serveConfig is everything `serve` needs. Flags set it; a config file (--config: JSON keyed by
// flag name, or a GigaWallet config.toml) may set any flag, with a value of the flag's type;
// flags given on the command line win (see mergeConfigFile).
type serveConfig struct {
	DataDir   string
	AdminAddr string
	// APIURL is the admin API's base URL as clients dial it (--api-url); empty takes
	// advertisedAPIURL's default.
	APIURL     string
	PublicAddr string
	RaftAddr   string
	NodeID     string
	Peers      string
	AdminToken string
	LogLevel   string
	// LeaderBalanceInterval is how often the leader balancer looks (cluster.Config); 0 is off.
	LeaderBalanceInterval time.Duration
	// BatchLinger is shard.Config.BatchLinger; 0 is off (every batch goes as soon as a
	// pipeline slot is free).
	BatchLinger time.Duration
	// RaftLogMode is nodelog.Mode by name: shared (default) or per-shard-sync.
	RaftLogMode string
	// BlockCacheMiB is the block cache every shard replica of the node shares (fsm.BlockCache);
	// 0 is fsm.DefaultBlockCacheBytes (blockCacheBytes).
	BlockCacheMiB int
	Shards        int
	Replicas      int
	GossipAddr    string
	Join          string
	Bootstrap     int
	Pprof         bool
	ConfigFile    string
	ShutdownMax   time.Duration
	// AllowedHosts and CORSOrigins are the browser protections' comma lists (httpapi).
	AllowedHosts string
	CORSOrigins  string

	// Node-to-node TLS: a directory with ca.crt, node.crt and node.key, or the three files.
	TLSDir  string
	TLSCA   string
	TLSCert string
	TLSKey  string
	// GossipKeyFile holds the gossip secret; default: gossip.key beside the certificates.
	GossipKeyFile string
	// InsecureCluster allows plain node-to-node traffic on non-loopback addresses.
	InsecureCluster bool
	// HTTPTLSCert and HTTPTLSKey, when set, serve the admin and public APIs over HTTPS.
	HTTPTLSCert string
	HTTPTLSKey  string

	// GigaWallet API: the Dogecoin network, and the file holding the cluster's wallet seed (or
	// env GIGALEDGER_WALLET_SEED).
	Network        string
	WalletSeedFile string
	// ConfirmationsNeeded is GigaWallet's default for an invoice that does not set
	// required_confirmations (or sets -1); PubAPIRootURL is the public listener's URL as payers
	// reach it (the QR code's connect link).
	ConfirmationsNeeded int
	PubAPIRootURL       string
	// ServiceName, ServiceDomain and ServiceIconURL name the merchant in DogeConnect envelopes.
	ServiceName    string
	ServiceDomain  string
	ServiceIconURL string
	// Callbacks are the webhooks given by --callback or a config.toml's [callbacks.NAME];
	// MQTTQueues the MQTT subscribers of --mqtt-queue or its [mqtt] and [mqtt.queues.NAME].
	Callbacks  []relay.Subscription
	MQTTQueues []relay.Subscription
	// Dogecoind are the nodes of --dogecoind or a config.toml's [dogecoind.<network>]; the one
	// of Network is followed. ChainStartHeight is the first block a shard that has observed
	// nothing reads (-1: 100 below the node's tip, GigaWallet's); ChainPollInterval how often
	// the follower asks the node for news.
	Dogecoind         []dogecoindSpec
	ChainStartHeight  int64
	ChainPollInterval time.Duration

	// GigPay API: the project whose customer wallets are GigPay accounts, and the wallet app's
	// environment in token links (empty: production, https://wallet.gigpay.com).
	GigPayProject string
	GigPayEnv     string

	// ignoredSettings names the GigaWallet settings of a config.toml that GigaLedger does not
	// use; serve logs them once.
	ignoredSettings []string

	// raftTiming, when set by tests, replaces raft's default timeouts.
	raftTiming *raftTiming
	// relayRetry, when set by tests, replaces the relay's retry policy (relay.DefaultRetryPolicy
	// waits minutes between attempts).
	relayRetry *relay.RetryPolicy
}

// raftTiming shortens elections in tests.
type raftTiming struct {
	heartbeat, election, leaderLease, commit time.Duration
}

// Defaults: the embedded single-node cluster a first `gigaledger serve` runs.
const (
	defaultDataDir    = "data"
	defaultAdminAddr  = "127.0.0.1:8081"
	defaultPublicAddr = "127.0.0.1:8082"
	defaultRaftAddr   = "127.0.0.1:7001"
	defaultNodeID     = "n1"
	adminTokenEnv     = "GIGALEDGER_ADMIN_TOKEN"
	shutdownMaxTime   = 5 * time.Second // grace for requests in flight at shutdown
	// defaultServiceName is GigaWallet's default merchant name; an empty --service-name takes it
	// too (DogeConnect wallets require one).
	defaultServiceName = "Example Dogecoin Store"
	// defaultConfirmationsNeeded is GigaWallet's default (config ConfirmationsNeeded).
	defaultConfirmationsNeeded = 6
	// defaultGigPayProject is the GigPay API's project.
	defaultGigPayProject = "gigpay"
	// dnsLabelMaxLength bounds --gigpay-env, one label of the links' host name.
	dnsLabelMaxLength = 63
)

// The bounds of --block-cache-mib: below 16 MiB most reads would miss it; above 1 TiB is a typo.
const (
	blockCacheMinMiB = 16
	blockCacheMaxMiB = 1 << 20
)

// blockCacheBytes is --block-cache-mib in bytes.
func (cfg *serveConfig) blockCacheBytes() int64 {
	if cfg.BlockCacheMiB == 0 {
		return fsm.DefaultBlockCacheBytes
	}
	return int64(cfg.BlockCacheMiB) << 20
}

// Peer is one member of the static replica set.
type Peer struct{ ID, Addr string }

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	cfg := &serveConfig{ShutdownMax: shutdownMaxTime}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.ConfigFile, "config", "", "JSON file setting any of these flags: {\"shards\":4,\"pprof\":true,\"data-dir\":\"d1\"}, or a GigaWallet config.toml (name ending in .toml; our flags in its [gigaledger] table); flags given here win")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory for the Raft log, snapshots and the ledger store")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", defaultAdminAddr, "admin API listen address (Cloud Wallet API, metrics, OpenAPI)")
	fs.StringVar(&cfg.APIURL, "api-url", "", "the admin API's base URL as clients dial it, http(s)://host[:port][/prefix], named in the "+headerShardLeader+" response header when this node leads; "+
		"default http(s)://<admin-addr>, none when --admin-addr binds every interface (0.0.0.0, ::)")
	fs.StringVar(&cfg.PublicAddr, "public-addr", defaultPublicAddr, "public listen address (what payers' browsers may reach)")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", defaultRaftAddr, "Raft and forwarding listen address; peers dial it")
	fs.StringVar(&cfg.NodeID, "node-id", defaultNodeID, "this node's ID within --peers")
	fs.StringVar(&cfg.Peers, "peers", "", "static replica set id=host:port,...; empty = this node alone")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token for the admin API (or env "+adminTokenEnv+"); empty = no auth, loopback only")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug (with every HTTP request), debug+2 (state-store flushes and compactions, slow raft log commits, with their times), info, warn or error")
	fs.DurationVar(&cfg.LeaderBalanceInterval, "leader-balance-interval", cluster.DefaultLeaderBalanceInterval,
		"every this often, the node leading shard 0 moves one shard's leadership from the node leading the most shards to a voter leading two fewer (0: off; POST /cluster/balance-leaders still does it on request)")
	fs.DurationVar(&cfg.BatchLinger, "batch-linger", shard.DefaultBatchLinger,
		"group commit: while a batch is in flight, a small batch (under 32 commands) waits for more until this long after the previous one went, so that a moderate rate makes fewer, larger batches (0: off; at most 100ms)")
	fs.StringVar(&cfg.RaftLogMode, "raft-log-mode", "shared", "shared: one write-ahead log and fsync per group commit for all of the node's shards (DataDir/raftlog); per-shard-sync: each shard's raft.db fsyncs on its own (switch back only after a clean shutdown)")
	fs.IntVar(&cfg.BlockCacheMiB, "block-cache-mib", fsm.DefaultBlockCacheBytes>>20,
		"MiB of store blocks cached in memory, one cache for every shard replica this node hosts (besides it, each replica holds up to 96 MiB of unflushed writes); 0 is the default")
	fs.IntVar(&cfg.Shards, "shards", 1, "bootstrap setting: number of shards (Raft groups), fixed for the cluster's life")
	fs.IntVar(&cfg.Replicas, "replicas", cluster.DefaultReplicaCount, "bootstrap setting: replicas per shard")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", "", "memberlist listen address; set it to form the cluster by gossip instead of --peers")
	fs.StringVar(&cfg.Join, "join", "", "gossip addresses of members to join, host:port,...")
	fs.IntVar(&cfg.Bootstrap, "bootstrap-expect", 0, "gossip: how many members form the cluster at bootstrap (0: join an existing cluster)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof/ on the admin listener (behind the admin token)")
	fs.StringVar(&cfg.AllowedHosts, "allowed-hosts", "", "without an admin token: Host names (no port), host,..., served beside localhost, 127.0.0.0/8 and ::1 (others get 421)")
	fs.StringVar(&cfg.CORSOrigins, "cors-origins", "", "browser origins scheme://host[:port],... that get CORS answers; writes from other origins get 403")
	fs.StringVar(&cfg.TLSDir, "tls-dir", "", "node-to-node mutual TLS: directory with ca.crt, node.crt, node.key (and gossip.key), as 'gigaledger cert create-node' writes")
	fs.StringVar(&cfg.TLSCA, "tls-ca", "", "node-to-node TLS: the cluster CA certificate (instead of --tls-dir)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "node-to-node TLS: this node's certificate, naming --node-id (instead of --tls-dir)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "node-to-node TLS: this node's private key (instead of --tls-dir)")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key", "", "file with the gossip secret (default: gossip.key beside the certificates)")
	fs.BoolVar(&cfg.InsecureCluster, "insecure-cluster", false, "allow unauthenticated, unencrypted node-to-node traffic on non-loopback addresses (anyone who reaches the port can write)")
	fs.StringVar(&cfg.HTTPTLSCert, "http-tls-cert", "", "serve the admin and public APIs over HTTPS with this certificate")
	fs.StringVar(&cfg.HTTPTLSKey, "http-tls-key", "", "the private key of --http-tls-cert")
	fs.StringVar(&cfg.Network, "network", "testnet", "GigaWallet API: Dogecoin network, mainnet, testnet or regtest")
	fs.StringVar(&cfg.WalletSeedFile, "wallet-seed-file", "", "GigaWallet API: file with the cluster's wallet seed in hex, mode 0600 (or env "+dogecoin.SeedEnvVar+"); "+
		"every node of a cluster needs the same one. A node alone with neither creates <data-dir>/wallet.seed on first start")
	fs.IntVar(&cfg.ConfirmationsNeeded, "confirmations-needed", defaultConfirmationsNeeded,
		"GigaWallet API: blocks after the one holding a payment before it counts, for invoices that do not say (GigaWallet's N: Core's N+1 confirmations)")
	fs.StringVar(&cfg.PubAPIRootURL, "pub-api-root-url", "", "GigaWallet API: the public listener's URL as payers reach it, for QR codes' connect links (default http://<public-addr>)")
	fs.StringVar(&cfg.ServiceName, "service-name", defaultServiceName, "GigaWallet API: the merchant's name, shown to payers by DogeConnect wallets")
	fs.StringVar(&cfg.ServiceDomain, "service-domain", "example.com", "GigaWallet API: the merchant's domain, shown to payers by DogeConnect wallets")
	fs.StringVar(&cfg.ServiceIconURL, "service-icon-url", "", "GigaWallet API: the merchant's icon URL, shown to payers by DogeConnect wallets")
	// The flag package quotes a refused value in its error ("invalid value %q for flag"), and
	// these values may hold a secret or a password inline: their Set errors are kept and
	// reported after parsing, in their own words, which never quote the text (a probe found a
	// webhook secret printed to stderr).
	var secretFlagErrors []error
	fs.Var(secretBearing{callbackFlags{list: &cfg.Callbacks}, &secretFlagErrors}, "callback", `a webhook for events, repeatable: {"name":"shop","url":"https://shop.example/hook","types":["INV","ACC"],"secretEnv":"SHOP_HOOK_SECRET"} `+
		"(a config.toml's [callbacks.NAME] path, types, hmacsecret set it too)")
	fs.Var(secretBearing{mqttQueueFlags{list: &cfg.MQTTQueues}, &secretFlagErrors}, "mqtt-queue", `an MQTT queue for events, repeatable: {"name":"invoices","broker":"tcp://127.0.0.1:1883","topic":"gigawallet/{type}","types":["INV"],"username":"relay","passwordEnv":"MQTT_PASSWORD"} `+
		"(a config.toml's [mqtt] and [mqtt.queues.NAME] set it too)")
	fs.Var(secretBearing{dogecoindFlags{list: &cfg.Dogecoind}, &secretFlagErrors}, "dogecoind", `GigaWallet API: a Dogecoin node to follow, repeatable, one per network: {"network":"mainnet","rpchost":"127.0.0.1","rpcport":22555,"rpcuser":"gigawallet","rpcpassEnv":"DOGECOIND_RPCPASS","host":"127.0.0.1","zmqport":28332} `+
		"(a config.toml's [dogecoind.<network>] host, zmqport, rpchost, rpcport, rpcuser, rpcpass set it too); the node of --network is followed")
	fs.Int64Var(&cfg.ChainStartHeight, "chain-start-height", -1, "GigaWallet API: the first block a shard that has followed nothing reads (-1: 100 below the node's tip, as GigaWallet)")
	fs.DurationVar(&cfg.ChainPollInterval, "chain-poll-interval", chainwatch.DefaultPollInterval, "GigaWallet API: how often the chain follower asks the node for new blocks and mempool transactions when no ZMQ notification (zmqport) woke it first")
	fs.StringVar(&cfg.GigPayProject, "gigpay-project", defaultGigPayProject, "GigPay API: the project whose customer wallets are GigPay accounts (created with its usd asset on first use); empty takes the default")
	fs.StringVar(&cfg.GigPayEnv, "gigpay-env", "", "GigPay API: the wallet app's environment in token links, https://wallet.<env>.gigpay.com/payment/<token>; empty = production (https://wallet.gigpay.com)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := errors.Join(secretFlagErrors...); err != nil {
		return nil, err
	}
	if cfg.ConfigFile != "" {
		ignored, err := mergeConfigFile(fs, cfg.ConfigFile)
		if err == nil {
			err = errors.Join(secretFlagErrors...)
		}
		if err != nil {
			return nil, err
		}
		cfg.ignoredSettings = ignored
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv(adminTokenEnv)
	}
	return cfg, cfg.validate()
}

// shardBatchLinger is --batch-linger as shard.Config takes it: there zero means the default
// and a negative value off.
func (cfg *serveConfig) shardBatchLinger() time.Duration {
	if cfg.BatchLinger == 0 {
		return -1
	}
	return cfg.BatchLinger
}

// raftLogMode is --raft-log-mode; empty (a config built without flags) is the default, shared.
func (cfg *serveConfig) raftLogMode() (nodelog.Mode, error) {
	if cfg.RaftLogMode == "" {
		return nodelog.ModeShared, nil
	}
	return nodelog.ParseMode(cfg.RaftLogMode)
}

func (cfg *serveConfig) validate() error {
	if cfg.NodeID == "" || cfg.DataDir == "" {
		return errors.New("--node-id and --data-dir must not be empty")
	}
	for name, addr := range map[string]string{"admin-addr": cfg.AdminAddr, "public-addr": cfg.PublicAddr, "raft-addr": cfg.RaftAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--%s %q: %w", name, addr, err)
		}
	}
	if cfg.Shards < 1 || cfg.Shards > keyspace.ShardCountMax {
		return fmt.Errorf("--shards %d outside [1, %d]", cfg.Shards, keyspace.ShardCountMax)
	}
	if cfg.Replicas < 1 {
		return fmt.Errorf("--replicas must be at least 1")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, debug+2, info, warn or error", cfg.LogLevel)
	}
	if _, err := cfg.raftLogMode(); err != nil {
		return fmt.Errorf("--raft-log-mode: %w", err)
	}
	if cfg.ChainStartHeight < -1 || cfg.ChainPollInterval != 0 && (cfg.ChainPollInterval < 10*time.Millisecond || cfg.ChainPollInterval > time.Hour) {
		return fmt.Errorf("--chain-start-height must be -1 or a height, and --chain-poll-interval 10ms..1h")
	}
	if cfg.ConfirmationsNeeded < 0 || cfg.ConfirmationsNeeded > gigawallet.ConfirmationsMax {
		return fmt.Errorf("--confirmations-needed %d outside [0, %d]", cfg.ConfirmationsNeeded, gigawallet.ConfirmationsMax)
	}
	if !utf8.ValidString(cfg.ServiceName) || len(cfg.ServiceName) > 256 {
		return errors.New("--service-name must be at most 256 bytes of UTF-8: DogeConnect wallets show it to payers")
	}
	if strings.ContainsAny(cfg.ServiceDomain, "/:?#@ ") {
		return fmt.Errorf("--service-domain %q: a bare host name, without scheme, port or path", cfg.ServiceDomain)
	}
	if cfg.PubAPIRootURL != "" {
		if u, err := url.Parse(cfg.PubAPIRootURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--pub-api-root-url %q: want http(s)://host[:port][/path]", cfg.PubAPIRootURL)
		}
	}
	if cfg.APIURL != "" {
		if u, err := url.Parse(cfg.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil || len(cfg.APIURL) > apiURLMaxBytes {
			return fmt.Errorf("--api-url %q: want http(s)://host[:port][/prefix], at most %d bytes", cfg.APIURL, apiURLMaxBytes)
		}
	}
	if err := validateGigPay(cfg.gigPayProject(), cfg.GigPayEnv); err != nil {
		return err
	}
	if cfg.BatchLinger < 0 || cfg.BatchLinger > shard.BatchLingerLimit {
		return fmt.Errorf("--batch-linger %v: want 0 (off) to %v", cfg.BatchLinger, shard.BatchLingerLimit)
	}
	if cfg.BlockCacheMiB != 0 && (cfg.BlockCacheMiB < blockCacheMinMiB || cfg.BlockCacheMiB > blockCacheMaxMiB) {
		return fmt.Errorf("--block-cache-mib %d: want %d to %d (0: the default)", cfg.BlockCacheMiB, blockCacheMinMiB, blockCacheMaxMiB)
	}
	if cfg.LeaderBalanceInterval < 0 {
		return errors.New("--leader-balance-interval must not be negative (0 turns the balancer off)")
	}
	if cfg.GossipAddr != "" {
		if cfg.Peers != "" {
			return errors.New("--peers and --gossip-addr are two ways to form a cluster: give one")
		}
		if _, _, err := net.SplitHostPort(cfg.GossipAddr); err != nil {
			return fmt.Errorf("--gossip-addr %q: %w", cfg.GossipAddr, err)
		}
		if cfg.Bootstrap < 0 {
			return errors.New("--bootstrap-expect must not be negative")
		}
	}
	peers, err := cfg.peers()
	if err != nil {
		return err
	}
	if cfg.GossipAddr == "" && len(peers) > cfg.Replicas {
		return fmt.Errorf("with --peers every node hosts every shard, so --replicas (%d) must cover the %d peers; form larger clusters by gossip (--gossip-addr, --join, --bootstrap-expect)", cfg.Replicas, len(peers))
	}
	found := false
	for _, p := range peers {
		if p.ID != cfg.NodeID {
			continue
		}
		found = true
		// The others dial this node at its --peers address: it must be where --raft-addr
		// listens (listensAt). A node that listened elsewhere started and was never reached
		// (found by a probe).
		if !listensAt(cfg.RaftAddr, p.Addr) {
			return fmt.Errorf("--peers names this node (%s) at %s, but --raft-addr listens on %s: the other nodes would dial an address it does not listen on", cfg.NodeID, p.Addr, cfg.RaftAddr)
		}
	}
	if !found {
		return fmt.Errorf("--peers does not name this node (%s)", cfg.NodeID)
	}
	if _, err := httpapi.ParseAllowedHosts(cfg.AllowedHosts); err != nil {
		return fmt.Errorf("--allowed-hosts: %w", err)
	}
	if _, err := httpapi.ParseCORSOrigins(cfg.CORSOrigins); err != nil {
		return fmt.Errorf("--cors-origins: %w", err)
	}
	if err := cfg.validateTLS(peers); err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		for _, addr := range []string{cfg.AdminAddr, cfg.PublicAddr} {
			if !isLoopback(addr) {
				return fmt.Errorf("no admin token: refusing to listen on %s, which is not loopback (set --admin-token or %s)", addr, adminTokenEnv)
			}
		}
	}
	return nil
}

// apiURLMaxBytes bounds --api-url (cluster.Config.APIURL's limit).
const apiURLMaxBytes = 100

// advertisedAPIURL is the admin API base URL this node names as a shard leader: --api-url, or
// the admin listen address with the scheme its listener serves. An address that binds every
// interface (or no host) is no address a client can dial: then none ("").
func (cfg *serveConfig) advertisedAPIURL() string {
	if cfg.APIURL != "" {
		return strings.TrimRight(cfg.APIURL, "/")
	}
	host, port, err := net.SplitHostPort(cfg.AdminAddr)
	if err != nil || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	scheme := "http"
	if cfg.HTTPTLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// gigPayProject is --gigpay-project; empty (a configuration built in code) takes the default,
// as an empty --service-name does.
func (cfg *serveConfig) gigPayProject() string {
	if cfg.GigPayProject == "" {
		return defaultGigPayProject
	}
	return cfg.GigPayProject
}

// validateGigPay checks the GigPay API's settings: a project ID the ledger accepts, not
// GigaWallet's (whose wallets GigaWallet's own bookkeeping moves), and an environment that is
// empty or one DNS label, since it becomes part of the links' host name.
func validateGigPay(project, env string) error {
	switch {
	case !fsm.ValidID(project, fsm.IDMaxLength):
		return fmt.Errorf("--gigpay-project %q: want 1..%d of [A-Za-z0-9_.-]", project, fsm.IDMaxLength)
	case project == gigaWalletProjectID:
		return fmt.Errorf("--gigpay-project %q is GigaWallet's project: give GigPay its own", project)
	case env != "" && !isDNSLabel(env):
		return fmt.Errorf("--gigpay-env %q: want empty (production) or a DNS label, 1..%d of [a-z0-9-] not starting or ending with '-'", env, dnsLabelMaxLength)
	}
	return nil
}

// isDNSLabel reports whether s is one lowercase DNS label: 1..63 of [a-z0-9-], with no '-' at
// either end.
func isDNSLabel(s string) bool {
	if s == "" || len(s) > dnsLabelMaxLength || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// peers parses --peers; empty means this node alone.
func (cfg *serveConfig) peers() ([]Peer, error) {
	if strings.TrimSpace(cfg.Peers) == "" {
		return []Peer{{ID: cfg.NodeID, Addr: cfg.RaftAddr}}, nil
	}
	var peers []Peer
	seen := map[string]bool{}
	for _, item := range strings.Split(cfg.Peers, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=host:port", item)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("--peers: %q: %w", item, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("--peers: %s named twice", id)
		}
		seen[id] = true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, nil
}

// listensAt reports whether a node listening on listen may be reached at advertised: the same
// port, and, when both hosts are IP addresses and listen does not bind every address, the same
// IP. A name may resolve to the listening IP (Kubernetes: --raft-addr $(POD_IP):7001, peers by
// the pod's DNS name), which only DNS can say.
func listensAt(listen, advertised string) bool {
	listenHost, listenPort, err1 := net.SplitHostPort(listen)
	host, port, err2 := net.SplitHostPort(advertised)
	if err1 != nil || err2 != nil || listenPort != port {
		return false
	}
	listenIP, ip := net.ParseIP(listenHost), net.ParseIP(host)
	if listenIP == nil || ip == nil || listenIP.IsUnspecified() {
		return true
	}
	return listenIP.Equal(ip)
}

// isLoopback reports whether a listen address can only be reached from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretBearing wraps a flag whose value may hold a secret: Set never fails (so the flag
// package never prints the value); its error goes to errs, for the caller to report after
// parsing. Value's own errors never quote the text.
type secretBearing struct {
	flag.Value
	errs *[]error
}

// String implements flag.Value (the wrapped flag's names; "" for the zero value the flag
// package makes to print the usage).
func (s secretBearing) String() string {
	if s.Value == nil {
		return ""
	}
	return s.Value.String()
}

func (s secretBearing) Set(text string) error {
	if err := s.Value.Set(text); err != nil {
		*s.errs = append(*s.errs, err)
	}
	return nil
}

// repeatable passes the wrapped flag's mark (a config file may set it more than once).
func (s secretBearing) repeatable() {}
