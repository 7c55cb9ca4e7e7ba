package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

const (
	// nodeMetaVersion is the first byte of the gossiped node metadata; only add versions.
	nodeMetaVersion = 1
	// nodeMetaStringMaxBytes bounds each string in the metadata so that the largest possible
	// encoding (4 strings, 2 bitmaps of keyspace.ShardCountMax bits) fits memberlist.MetaMaxSize.
	nodeMetaStringMaxBytes = 100
	// nodeMetaMaxBytes is that largest encoding: version, 4 × (1-byte length + string),
	// shard count u16, two bitmaps.
	nodeMetaMaxBytes = 1 + 4*(1+nodeMetaStringMaxBytes) + 2 + 2*keyspace.ShardCountMax/8
	// gossipUpdateTimeout bounds broadcasting a metadata change.
	gossipUpdateTimeout = 2 * time.Second
	// gossipLeaveTimeout bounds announcing a graceful leave on Close.
	gossipLeaveTimeout = time.Second
	// bootstrapPollInterval is how often a node waiting for its placement re-checks members
	// and retries joining its seeds.
	bootstrapPollInterval = 100 * time.Millisecond
	// bootstrapLogInterval is how often that wait logs its progress.
	bootstrapLogInterval = 5 * time.Second
	// rejoinInterval is how often a node that sees no other member tries the seeds and the
	// members it remembers (gossipMembersFile) again.
	rejoinInterval = 5 * time.Second
	// gossipMembersFile, in the data directory, remembers the gossip addresses of the members
	// this node has seen, so that it rejoins them after a restart without --join (a seed
	// started with --bootstrap-expect and no --join stayed cut off for good after a restart:
	// the others had marked it dead and gossip never tries a dead member again).
	gossipMembersFile = "gossip-members.json"
	// gossipMembersMaxCount bounds what that file remembers.
	gossipMembersMaxCount = 1024
)

// The metadata must always fit; checked at compile time.
var _ = [memberlist.MetaMaxSize - nodeMetaMaxBytes]struct{}{}

// Node states in Status.
const (
	NodeStateAlive = "alive"
	NodeStateDead  = "dead"
	NodeStateLeft  = "left"
	// NodeStateUnknown is reported for a node whose address is not known.
	NodeStateUnknown = "unknown"
	// NodeStateUnreachable is reported without gossip (static --peers) for a peer that did
	// not answer this node's node-info request over the cluster port.
	NodeStateUnreachable = "unreachable"
)

// nodeMeta is what a node gossips about itself. Wire format (version 1):
//
//	version u8 | 4 × (length u8 | bytes): node ID, raft addr, API addr, public addr |
//	shard count u16 | hosted bitmap | led bitmap   (each bitmap ceil(shard count / 8) bytes,
//	bit k of byte k/8 (LSB first) set when shard k is hosted / led)
//
// Leader bits are hints: Raft is the truth.
type nodeMeta struct {
	NodeID     string
	RaftAddr   string
	APIAddr    string
	PublicAddr string
	ShardCount int
	Hosted     []int
	Led        []int
}

func (m nodeMeta) encode() []byte {
	out := make([]byte, 0, nodeMetaMaxBytes)
	out = append(out, nodeMetaVersion)
	for _, s := range []string{m.NodeID, m.RaftAddr, m.APIAddr, m.PublicAddr} {
		if len(s) > nodeMetaStringMaxBytes {
			panic(fmt.Sprintf("cluster: metadata string of %d bytes", len(s)))
		}
		out = append(out, byte(len(s)))
		out = append(out, s...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(m.ShardCount))
	for _, set := range [][]int{m.Hosted, m.Led} {
		bitmap := make([]byte, (m.ShardCount+7)/8)
		for _, id := range set {
			bitmap[id/8] |= 1 << (id % 8)
		}
		out = append(out, bitmap...)
	}
	if len(out) > memberlist.MetaMaxSize {
		panic(fmt.Sprintf("cluster: node metadata of %d bytes exceeds %d", len(out), memberlist.MetaMaxSize))
	}
	return out
}

func decodeNodeMeta(data []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(data) < 1 || data[0] != nodeMetaVersion {
		return m, errors.New("node metadata: missing or unknown version")
	}
	rest := data[1:]
	fields := []*string{&m.NodeID, &m.RaftAddr, &m.APIAddr, &m.PublicAddr}
	for _, field := range fields {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return m, errors.New("node metadata: truncated string")
		}
		*field = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	if len(rest) < 2 {
		return m, errors.New("node metadata: truncated shard count")
	}
	m.ShardCount = int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if m.ShardCount > keyspace.ShardCountMax {
		return m, fmt.Errorf("node metadata: shard count %d", m.ShardCount)
	}
	bitmapBytes := (m.ShardCount + 7) / 8
	if len(rest) != 2*bitmapBytes {
		return m, fmt.Errorf("node metadata: %d bytes of bitmaps, want %d", len(rest), 2*bitmapBytes)
	}
	for i, set := range []*[]int{&m.Hosted, &m.Led} {
		bitmap := rest[i*bitmapBytes : (i+1)*bitmapBytes]
		for id := range m.ShardCount {
			if bitmap[id/8]&(1<<(id%8)) != 0 {
				*set = append(*set, id)
			}
		}
	}
	if m.NodeID == "" {
		return m, errors.New("node metadata: empty node ID")
	}
	return m, nil
}

// member is what this node knows of a member, copied from memberlist's events (memberlist
// calls them with its node lock held; reading its Node structs at any other time races).
// memberlist does not announce suspicion through events, so a suspect member stays alive
// here until it is declared dead.
type member struct {
	meta  nodeMeta
	state string
}

// membership runs memberlist for a node: it gossips the node's metadata, shares the placement
// with members that have none (push/pull state), and tracks members' metadata for routing.
type membership struct {
	node   *Node
	logger *slog.Logger
	list   *memberlist.Memberlist

	mu      sync.Mutex
	members map[string]*member
	// learned is a placement a member sent while this node had none.
	learned *clusterFile

	refresh chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	// seeds are --join and the remembered members' addresses; remembered the members' gossip
	// addresses by node ID (under mu), written to gossipMembersFile when they change.
	seeds      []string
	remembered map[string]string
	dirty      bool
	changed    chan struct{} // signals runUpdates to save the remembered members
}

func startMembership(n *Node, cfg Config, logger *slog.Logger) (*membership, error) {
	host, portText, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	m := &membership{node: n, logger: logger.With("component", "gossip"), members: make(map[string]*member),
		refresh: make(chan struct{}, 1), done: make(chan struct{}), changed: make(chan struct{}, 1),
		remembered: readGossipMembers(cfg.DataDir, cfg.NodeID)}
	// The seeds: --join, then the members remembered from before a restart.
	m.seeds = slices.Clone(cfg.Join)
	for _, addr := range m.remembered {
		if !slices.Contains(m.seeds, addr) {
			m.seeds = append(m.seeds, addr)
		}
	}
	bindIP, err := gossipBindIP(host)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	mlConfig := memberlist.DefaultLANConfig()
	mlConfig.Name = cfg.NodeID
	mlConfig.BindAddr = bindIP.String()
	mlConfig.BindPort = port
	if !bindIP.IsUnspecified() {
		// Bound to one address: members reach it there. Bound to every interface (0.0.0.0,
		// a container's usual choice), memberlist advertises the host's private address.
		mlConfig.AdvertiseAddr = bindIP.String()
	}
	mlConfig.AdvertisePort = port
	mlConfig.Delegate = gossipDelegate{m}
	mlConfig.Events = gossipEvents{m}
	mlConfig.LogOutput = nil
	mlConfig.Logger = log.New(&slogWriter{logger: m.logger}, "", 0)
	if cfg.TLS != nil {
		// Every gossip message and push/pull stream is AES-GCM encrypted, and unencrypted
		// ones are refused (GossipVerifyIncoming and Outgoing, memberlist's defaults).
		mlConfig.SecretKey = cfg.TLS.GossipKey()
		mlConfig.GossipVerifyIncoming, mlConfig.GossipVerifyOutgoing = true, true
	}
	if cfg.GossipTuning != nil {
		cfg.GossipTuning(mlConfig)
	}
	m.list, err = memberlist.Create(mlConfig)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	if len(m.seeds) > 0 {
		if _, err := m.list.Join(m.seeds); err != nil {
			m.logger.Info("no seed answered yet; retrying while waiting", "join", m.seeds, "error", err)
		}
	}
	m.wg.Go(m.runUpdates)
	m.wg.Go(m.runRejoin)
	return m, nil
}

// readGossipMembers reads the remembered members (gossipMembersFile); nothing when missing or
// unreadable (it only helps rejoining).
func readGossipMembers(dataDir, self string) map[string]string {
	remembered := map[string]string{}
	data, err := os.ReadFile(filepath.Join(dataDir, gossipMembersFile))
	if err != nil {
		return remembered
	}
	var file map[string]string
	if json.Unmarshal(data, &file) != nil || len(file) > gossipMembersMaxCount {
		return remembered
	}
	for id, addr := range file {
		if _, _, err := net.SplitHostPort(addr); err == nil && id != self {
			remembered[id] = addr
		}
	}
	return remembered
}

// rememberMember notes a member's gossip address; runUpdates writes the file. Callers hold mu.
func (m *membership) rememberMember(node *memberlist.Node) {
	if node.Name == m.node.cfg.NodeID {
		return
	}
	addr := node.Address()
	if m.remembered[node.Name] != addr && len(m.remembered) < gossipMembersMaxCount {
		m.remembered[node.Name] = addr
		m.dirty = true
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

// saveGossipMembers writes the remembered members when they changed (a temporary file renamed
// over the old one: a crash leaves one or the other).
func (m *membership) saveGossipMembers() {
	m.mu.Lock()
	if !m.dirty {
		m.mu.Unlock()
		return
	}
	data, err := json.Marshal(m.remembered)
	m.dirty = false
	m.mu.Unlock()
	path := filepath.Join(m.node.cfg.DataDir, gossipMembersFile)
	if err == nil {
		if err = os.WriteFile(path+".tmp", data, 0o600); err == nil {
			err = os.Rename(path+".tmp", path)
		}
	}
	if err != nil {
		m.logger.Warn("remembering the gossip members", "error", err)
	}
}

// gossipBindIP is the IP memberlist binds to for host: host itself when it is an IP, else
// the first IPv4 address the name resolves to (a container's own host name, as --raft-addr
// takes one), else the first address.
func gossipBindIP(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %q: no address", host)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip, nil
		}
	}
	return ips[0], nil
}

func (m *membership) address() string {
	node := m.list.LocalNode()
	return net.JoinHostPort(node.Addr.String(), strconv.Itoa(int(node.Port)))
}

// localMeta describes this node from its current state.
func (m *membership) localMeta() nodeMeta {
	n := m.node
	meta := nodeMeta{NodeID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, APIAddr: n.cfg.APIAddr, PublicAddr: n.cfg.PublicAddr}
	if file := n.file.Load(); file != nil {
		meta.ShardCount = file.ShardCount
	}
	n.mu.RLock()
	for id, hs := range n.shards {
		if id >= meta.ShardCount {
			continue
		}
		meta.Hosted = append(meta.Hosted, id)
		if hs.shard.IsLeader() {
			meta.Led = append(meta.Led, id)
		}
	}
	n.mu.RUnlock()
	return meta
}

// refreshMeta asks for the metadata to be re-gossiped (coalesced, asynchronous).
func (m *membership) refreshMeta() {
	select {
	case m.refresh <- struct{}{}:
	default:
	}
}

func (m *membership) runUpdates() {
	for {
		select {
		case <-m.done:
			return
		case <-m.refresh:
			if err := m.list.UpdateNode(gossipUpdateTimeout); err != nil {
				m.logger.Debug("gossip metadata update", "error", err)
			}
		case <-m.changed:
			m.saveGossipMembers()
		}
	}
}

// runRejoin tries the seeds again every rejoinInterval while this node sees no other member:
// the others may have marked it dead while it was down, and gossip never tries a dead member
// again, so it must reach out. On its own goroutine: a join waits on unreachable seeds, which
// must not hold up metadata updates.
func (m *membership) runRejoin() {
	if len(m.seeds) == 0 {
		return
	}
	ticker := time.NewTicker(rejoinInterval)
	defer ticker.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-ticker.C:
			// One seed at a time, so that closing waits for one attempt at most (memberlist's
			// TCP timeout), not one per seed.
			for _, seed := range m.seeds {
				if m.list.NumMembers() >= 2 || m.closing() {
					break
				}
				if _, err := m.list.Join([]string{seed}); err == nil {
					m.logger.Info("rejoined the cluster's gossip", "through", seed, "members", m.list.NumMembers())
				}
			}
		}
	}
}

// awaitPlacement waits until a member tells this node the placement, or, with
// BootstrapExpect, until that many members are alive and it computes the placement from
// their IDs itself (every member computes the same from the same set).
func (m *membership) awaitPlacement(ctx context.Context, cfg Config) (*clusterFile, error) {
	ticker := time.NewTicker(bootstrapPollInterval)
	defer ticker.Stop()
	lastLog := time.Now()
	for {
		m.mu.Lock()
		learned := m.learned
		m.mu.Unlock()
		if learned != nil {
			m.logger.Info("placement learned from a member", "shards", learned.ShardCount, "nodes", len(learned.Nodes))
			return learned, nil
		}
		alive := m.aliveMetas()
		if cfg.BootstrapExpect > 0 && len(alive) >= cfg.BootstrapExpect {
			if len(alive) > cfg.BootstrapExpect {
				m.logger.Warn("more members alive than bootstrap-expect; placing over all of them",
					"alive", len(alive), "expect", cfg.BootstrapExpect)
			}
			return computeClusterFile(alive, cfg.ShardCount, cfg.ReplicaCount), nil
		}
		if time.Since(lastLog) >= bootstrapLogInterval {
			lastLog = time.Now()
			m.logger.Info("waiting for the placement", "alive", len(alive), "expect", cfg.BootstrapExpect, "join", cfg.Join)
		}
		if len(cfg.Join) > 0 && m.list.NumMembers() < 2 {
			_, _ = m.list.Join(cfg.Join)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for placement (%d of %d members alive): %w", len(alive), cfg.BootstrapExpect, ctx.Err())
		case <-ticker.C:
		}
	}
}

func computeClusterFile(members []nodeMeta, shardCount, replicaCount int) *clusterFile {
	if replicaCount == 0 {
		replicaCount = DefaultReplicaCount
	}
	ids := make([]string, len(members))
	nodes := make([]NodeAddress, len(members))
	for i, meta := range members {
		ids[i] = meta.NodeID
		nodes[i] = NodeAddress{ID: meta.NodeID, RaftAddr: meta.RaftAddr, APIAddr: meta.APIAddr, PublicAddr: meta.PublicAddr}
	}
	slices.SortFunc(nodes, func(a, b NodeAddress) int { return cmpString(a.ID, b.ID) })
	return &clusterFile{Version: clusterFileVersion, ShardCount: shardCount, ReplicaCount: replicaCount, Nodes: nodes,
		Placement: ComputePlacement(ids, shardCount, replicaCount)}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// aliveMetas returns the metadata of alive members, including this node, by node ID.
func (m *membership) aliveMetas() []nodeMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	var metas []nodeMeta
	for _, mem := range m.members {
		if mem.state == NodeStateAlive {
			metas = append(metas, mem.meta)
		}
	}
	return metas
}

// states returns each known member's metadata and state (alive, dead or left).
func (m *membership) states() map[string]memberState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]memberState, len(m.members))
	for name, mem := range m.members {
		out[name] = memberState{meta: mem.meta, state: mem.state}
	}
	return out
}

// leaderOf is the one answer to "who leads shardID" that gossip gives: the alive member
// claiming it, and when several do (a deposed leader's claim lingers until its next update),
// the one with the smallest node ID, so that every caller and every call agree. Raft is the
// truth; this is a hint for where to ask first.
func (m *membership) leaderOf(shardID int) (nodeMeta, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var leader nodeMeta
	found := false
	for _, mem := range m.members {
		if mem.state != NodeStateAlive || !slices.Contains(mem.meta.Led, shardID) {
			continue
		}
		if !found || mem.meta.NodeID < leader.NodeID {
			leader, found = mem.meta, true
		}
	}
	return leader, found
}

type memberState struct {
	meta  nodeMeta
	state string
}

// closing reports whether close has begun.
func (m *membership) closing() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *membership) close() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	close(m.done)
	m.wg.Wait()
	leaveErr := m.list.Leave(gossipLeaveTimeout)
	shutdownErr := m.list.Shutdown()
	if shutdownErr != nil {
		return fmt.Errorf("gossip shutdown: %w", errors.Join(leaveErr, shutdownErr))
	}
	return nil
}

func (m *membership) observe(node *memberlist.Node, state string) {
	meta, err := decodeNodeMeta(node.Meta)
	if err != nil {
		m.logger.Warn("member with undecodable metadata", "member", node.Name, "error", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members[node.Name] = &member{meta: meta, state: state}
	if state == NodeStateAlive {
		m.rememberMember(node)
	}
}

// gossipDelegate is memberlist's Delegate.
type gossipDelegate struct{ m *membership }

func (d gossipDelegate) NodeMeta(limit int) []byte {
	data := d.m.localMeta().encode()
	if len(data) > limit {
		panic(fmt.Sprintf("cluster: node metadata of %d bytes exceeds memberlist's %d", len(data), limit))
	}
	return data
}

func (d gossipDelegate) NotifyMsg([]byte) {}

func (d gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState shares the placement (cluster.json without local flags) with members.
func (d gossipDelegate) LocalState(join bool) []byte {
	file := d.m.node.file.Load()
	if file == nil {
		return nil
	}
	shared := *file
	shared.BootstrapDone = false
	return shared.encode()
}

// MergeRemoteState adopts a member's placement when this node has none yet.
func (d gossipDelegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	remote, err := decodeClusterFile(buf)
	if err != nil {
		d.m.logger.Warn("member sent an invalid placement", "error", err)
		return
	}
	if local := d.m.node.file.Load(); local != nil {
		shared := *local
		shared.BootstrapDone = false
		if !bytes.Equal(shared.encode(), remote.encode()) {
			d.m.logger.Error("a member has a different placement; two clusters joined, or bootstrap saw different member sets")
		}
		return
	}
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if d.m.learned == nil {
		d.m.learned = remote
	}
}

// gossipEvents is memberlist's EventDelegate.
type gossipEvents struct{ m *membership }

func (e gossipEvents) NotifyJoin(node *memberlist.Node)   { e.m.observe(node, NodeStateAlive) }
func (e gossipEvents) NotifyUpdate(node *memberlist.Node) { e.m.observe(node, NodeStateAlive) }

func (e gossipEvents) NotifyLeave(node *memberlist.Node) {
	state := NodeStateDead
	if node.State == memberlist.StateLeft {
		state = NodeStateLeft
	}
	e.m.observe(node, state)
}

// slogWriter turns memberlist's "[LEVEL] memberlist: ..." lines into slog records, so it logs
// like the rest of the node. Warnings and errors are rate-limited per kind (the line up to its
// second colon): many come from what other hosts send (a packet that does not decrypt, junk on
// the gossip port), and one line per packet would let anyone who reaches the port flood the log.
type slogWriter struct {
	logger *slog.Logger
	now    func() time.Time // time.Now unless a test sets it

	mu    sync.Mutex
	kinds map[string]*logKind
}

// logKind is what slogWriter remembers of one kind of warning: when it last logged one, and
// how many it left out since.
type logKind struct {
	loggedAt   time.Time
	suppressed int
}

const (
	// gossipLogInterval is the least time between two logged warnings of one kind.
	gossipLogInterval = 10 * time.Second
	// gossipLogKindsMax bounds the kinds remembered; past it the memory starts over.
	gossipLogKindsMax = 64
)

var _ io.Writer = (*slogWriter)(nil)

func (w *slogWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelDebug
	for _, prefix := range []struct {
		text  string
		level slog.Level
	}{{"[ERR]", slog.LevelError}, {"[WARN]", slog.LevelWarn}, {"[INFO]", slog.LevelInfo}} {
		if strings.HasPrefix(line, prefix.text) {
			level = prefix.level
			line = line[len(prefix.text):]
			break
		}
	}
	if level == slog.LevelInfo {
		level = slog.LevelDebug // memberlist's info lines are per-probe chatter
	}
	var attrs []any
	if level >= slog.LevelWarn {
		suppressed, ok := w.admit(line)
		if !ok {
			return len(p), nil
		}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed_since_last", suppressed)
		}
	}
	w.logger.Log(context.Background(), level, "memberlist"+line, attrs...)
	return len(p), nil
}

// admit reports whether a warning line may be logged now, and how many of its kind were left
// out since the last one logged.
func (w *slogWriter) admit(line string) (suppressed int, ok bool) {
	kind := line
	if first := strings.IndexByte(kind, ':'); first >= 0 {
		if second := strings.IndexByte(kind[first+1:], ':'); second >= 0 {
			kind = kind[:first+1+second]
		}
	}
	now := time.Now()
	if w.now != nil {
		now = w.now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.kinds == nil || len(w.kinds) >= gossipLogKindsMax {
		w.kinds = make(map[string]*logKind)
	}
	k := w.kinds[kind]
	if k == nil {
		w.kinds[kind] = &logKind{loggedAt: now}
		return 0, true
	}
	if now.Sub(k.loggedAt) < gossipLogInterval {
		k.suppressed++
		return 0, false
	}
	suppressed, k.suppressed, k.loggedAt = k.suppressed, 0, now
	return suppressed, true
}
