package cluster

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

// Protocol bytes: the first byte a dialer writes on every connection to a node's port selects
// who gets the connection. Only add values; never reuse one.
const (
	// ProtocolRaft selected the raft transport of a node's single shard. Retired when nodes
	// began hosting several shards; no longer served, never reuse.
	ProtocolRaft byte = 1
	// ProtocolForward selected the single-shard forwarding RPC. Retired like ProtocolRaft.
	ProtocolForward byte = 2
	// ProtocolShardRaft selects a raft transport connection; a 2-byte big-endian shard ID
	// follows the protocol byte, and raft's own traffic follows that.
	ProtocolShardRaft byte = 3
	// ProtocolShardForward selects the forwarding RPC (proposals, read indexes and membership
	// changes sent to a shard's leader); every request names its shard.
	ProtocolShardForward byte = 4
)

const (
	// muxHandshakeTimeout bounds how long an accepted connection may take to finish its TLS
	// handshake (when the port uses TLS) and send its protocol byte, and how long a dialer
	// waits for the handshake.
	muxHandshakeTimeout = 5 * time.Second
	// muxAcceptQueueCount is how many identified connections may wait for their protocol's
	// Accept.
	muxAcceptQueueCount = 64
	// muxUnidentifiedMaxCount bounds the accepted connections that have not yet finished their
	// TLS handshake and sent their protocol byte. Anyone who reaches the port can open them,
	// each held for up to muxHandshakeTimeout; unbounded, a flood of them takes every file
	// descriptor of the process (its store and HTTP listeners included). Past the bound a new
	// connection is closed at once (the peer's dial fails and raft or forwarding retries).
	// Peers keep their connections open and handshake in milliseconds; the bound leaves room
	// for every shard (ShardCountMax) dialing a few peers at once when a node starts.
	muxUnidentifiedMaxCount = 1024
	// muxAcceptRetryMin and muxAcceptRetryMax bound the pause after a failed Accept (out of
	// file descriptors, say) before the next try, doubling from min to max as net/http does.
	muxAcceptRetryMin = 5 * time.Millisecond
	muxAcceptRetryMax = time.Second
	// muxRefusalLogInterval is how often, at most, the mux logs that it closed connections
	// over muxUnidentifiedMaxCount: a flood must not flood the log too.
	muxRefusalLogInterval = 10 * time.Second
)

// Mux shares one TCP listener between protocols by the first byte of each connection.
// Register protocols with Listen before calling Serve. With TLS (SetTLS), every connection is
// first a TLS server handshake that demands a node certificate from the cluster CA; the
// protocol byte is the first byte inside TLS, and a connection that fails the handshake is
// closed having been served nothing.
type Mux struct {
	listener net.Listener
	logger   *slog.Logger
	// tls is the server configuration; nil serves plain TCP. Set before Serve.
	tls *tls.Config

	mu        sync.Mutex
	protocols map[byte]*muxListener
	// conns are all accepted connections, closed by Close so that a closed node is really
	// gone for its peers (as if the process died).
	conns  map[net.Conn]struct{}
	closed bool

	// unidentified holds a token for each accepted connection until it is identified (TLS
	// handshake and protocol byte) or closed: at most muxUnidentifiedMaxCount.
	unidentified chan struct{}

	done chan struct{}
	wg   sync.WaitGroup
}

// NewMux wraps listener; the Mux owns it from here on.
func NewMux(listener net.Listener, logger *slog.Logger) *Mux {
	return &Mux{
		listener:  listener,
		logger:    logger,
		protocols: make(map[byte]*muxListener),
		conns:     make(map[net.Conn]struct{}),
		done:      make(chan struct{}),

		unidentified: make(chan struct{}, muxUnidentifiedMaxCount),
	}
}

// SetTLS makes every accepted connection a mutual-TLS server connection for node. Call it
// before Serve.
func (m *Mux) SetTLS(node *tlsconfig.Node) {
	m.tls = node.ServerConfig()
}

// Addr is the address of the shared listener.
func (m *Mux) Addr() net.Addr {
	return m.listener.Addr()
}

// Listen returns the net.Listener that receives connections whose first byte is protocol. The
// byte has been consumed when Accept returns the connection.
func (m *Mux) Listen(protocol byte) net.Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.protocols[protocol]; exists {
		panic(fmt.Sprintf("cluster: protocol %d registered twice", protocol))
	}
	l := &muxListener{mux: m, addr: m.listener.Addr(), conns: make(chan net.Conn, muxAcceptQueueCount), done: make(chan struct{})}
	m.protocols[protocol] = l
	return l
}

// Serve accepts connections until Close; it returns nil after Close, or an error when the
// listener is closed under it. Any other Accept failure (out of file descriptors, a
// connection reset while queued) passes: Serve waits a little and goes on, for a node that
// stopped accepting would be cut off from its peers for good while looking healthy.
func (m *Mux) Serve() error {
	retry := time.Duration(0)
	var refused int
	var refusedLogged time.Time
	for {
		conn, err := m.listener.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("mux accept: %w", err)
			}
			retry = min(max(2*retry, muxAcceptRetryMin), muxAcceptRetryMax)
			m.logger.Warn("mux: accept failed; retrying", "error", err, "retry_in", retry)
			select {
			case <-time.After(retry):
			case <-m.done:
				return nil
			}
			continue
		}
		retry = 0
		select {
		case m.unidentified <- struct{}{}:
		default:
			_ = conn.Close()
			refused++
			if now := time.Now(); now.Sub(refusedLogged) >= muxRefusalLogInterval {
				m.logger.Warn("mux: too many connections still in their handshake; closed new ones",
					"closed", refused, "limit", muxUnidentifiedMaxCount, "remote", conn.RemoteAddr())
				refused, refusedLogged = 0, now
			}
			continue
		}
		if !m.track(conn) {
			<-m.unidentified
			_ = conn.Close()
			return nil
		}
		m.wg.Go(func() { m.route(conn) })
	}
}

func (m *Mux) track(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[conn] = struct{}{}
	return true
}

func (m *Mux) untrack(conn net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, conn)
}

func (m *Mux) route(conn net.Conn) {
	served, peerID, protocol, ok := m.identify(conn)
	<-m.unidentified
	if !ok {
		m.closeConn(conn)
		return
	}
	m.mu.Lock()
	l := m.protocols[protocol]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("mux: unknown protocol byte", "remote", conn.RemoteAddr(), "protocol", protocol)
		m.closeConn(conn)
		return
	}
	select {
	case l.conns <- &trackedConn{Conn: served, raw: conn, peerID: peerID, mux: m}:
	case <-l.done:
		m.closeConn(conn)
	case <-m.done:
		m.closeConn(conn)
	}
}

// identify runs the TLS handshake (with TLS) and reads the protocol byte, within
// muxHandshakeTimeout. It returns what the protocol reads (the TLS connection with TLS), the
// peer's node ID ("" without TLS) and the protocol byte; false when the connection is to be
// closed.
func (m *Mux) identify(conn net.Conn) (served net.Conn, peerID string, protocol byte, ok bool) {
	var protocolByte [1]byte
	_ = conn.SetDeadline(time.Now().Add(muxHandshakeTimeout))
	served = conn
	if m.tls != nil {
		tlsConn := tls.Server(conn, m.tls)
		if err := tlsConn.Handshake(); err != nil {
			var netErr net.Error
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (errors.As(err, &netErr) && netErr.Timeout()) {
				// A peer that went away (or a port probe) before finishing: nothing refused.
				m.logger.Debug("mux: connection closed during the TLS handshake", "remote", conn.RemoteAddr(), "error", err)
			} else {
				m.logger.Warn("mux: refused a connection that is not a cluster node (TLS handshake failed)",
					"remote", conn.RemoteAddr(), "error", err)
			}
			return nil, "", 0, false
		}
		var err error
		if peerID, err = tlsconfig.PeerNodeID(tlsConn.ConnectionState()); err != nil {
			m.logger.Warn("mux: refused a peer certificate", "remote", conn.RemoteAddr(), "error", err)
			return nil, "", 0, false
		}
		served = tlsConn
	}
	if _, err := io.ReadFull(served, protocolByte[:]); err != nil {
		m.logger.Debug("mux: connection closed before its protocol byte", "remote", conn.RemoteAddr(), "error", err)
		return nil, "", 0, false
	}
	_ = conn.SetDeadline(time.Time{})
	return served, peerID, protocolByte[0], true
}

func (m *Mux) closeConn(conn net.Conn) {
	m.untrack(conn)
	_ = conn.Close()
}

// Close stops accepting, closes every accepted connection and every protocol listener.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()
	err := m.listener.Close()
	for conn := range conns {
		_ = conn.Close()
	}
	m.wg.Wait()
	return err
}

// trackedConn forgets itself in the mux when closed. Conn is what the protocol reads (the TLS
// connection with TLS), raw the accepted TCP connection the mux tracks.
type trackedConn struct {
	net.Conn
	raw net.Conn
	// peerID is the node ID the peer's verified certificate names; "" without TLS.
	peerID string
	mux    *Mux
	once   sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.mux.untrack(c.raw) })
	return c.Conn.Close()
}

// peerNodeID is the verified node ID of an accepted connection's peer, "" without TLS.
func peerNodeID(conn net.Conn) string {
	if tracked, ok := conn.(*trackedConn); ok {
		return tracked.peerID
	}
	return ""
}

// muxListener is one protocol's view of the shared port.
type muxListener struct {
	mux   *Mux
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.conns:
		return conn, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.mux.done:
		return nil, net.ErrClosed
	}
}

func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *muxListener) Addr() net.Addr {
	return l.addr
}

// shardIDBytes is the size of a shard ID on the wire.
const shardIDBytes = 2

// shardConnRouter hands each ProtocolShardRaft connection to the raft transport of the shard
// it names. A connection for a shard this node does not host (yet, or any more) is closed; the
// dialing raft retries.
type shardConnRouter struct {
	listener net.Listener
	dialer   *peerDialer
	logger   *slog.Logger

	mu     sync.Mutex
	shards map[uint16]*shardStreamLayer
	wg     sync.WaitGroup
}

func newShardConnRouter(listener net.Listener, dialer *peerDialer, logger *slog.Logger) *shardConnRouter {
	return &shardConnRouter{listener: listener, dialer: dialer, logger: logger, shards: make(map[uint16]*shardStreamLayer)}
}

// serve routes connections until the mux closes the listener.
func (r *shardConnRouter) serve() {
	defer r.wg.Wait()
	for {
		conn, err := r.listener.Accept()
		if err != nil {
			return
		}
		r.wg.Go(func() { r.route(conn) })
	}
}

func (r *shardConnRouter) route(conn net.Conn) {
	var header [shardIDBytes]byte
	_ = conn.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	shardID := binary.BigEndian.Uint16(header[:])
	r.mu.Lock()
	layer := r.shards[shardID]
	r.mu.Unlock()
	if layer == nil {
		r.logger.Debug("raft connection for a shard not hosted here", "remote", conn.RemoteAddr(), "shard", shardID)
		_ = conn.Close()
		return
	}
	if peerID := peerNodeID(conn); peerID != "" {
		conn = newRaftPeerCheckConn(conn, peerID, r.logger.With("shard", shardID))
	}
	select {
	case layer.conns <- conn:
	case <-layer.done:
		_ = conn.Close()
	}
}

// register returns the stream layer of shardID (which must not be registered already).
func (r *shardConnRouter) register(shardID uint16, advertise net.Addr) *shardStreamLayer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shards[shardID] != nil {
		panic(fmt.Sprintf("cluster: shard %d registered twice on the raft port", shardID))
	}
	layer := &shardStreamLayer{router: r, shardID: shardID, advertise: advertise,
		conns: make(chan net.Conn, muxAcceptQueueCount), done: make(chan struct{})}
	r.shards[shardID] = layer
	return layer
}

func (r *shardConnRouter) unregister(layer *shardStreamLayer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shards[layer.shardID] == layer {
		delete(r.shards, layer.shardID)
	}
}

// shardStreamLayer is one shard's raft.StreamLayer on the shared port: it accepts the
// connections the router hands it and dials peers with the protocol byte and its shard ID.
type shardStreamLayer struct {
	router    *shardConnRouter
	shardID   uint16
	advertise net.Addr
	conns     chan net.Conn
	once      sync.Once
	done      chan struct{}
}

var _ raft.StreamLayer = (*shardStreamLayer)(nil)

func (s *shardStreamLayer) Accept() (net.Conn, error) {
	select {
	case conn := <-s.conns:
		return conn, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting for this shard (raft calls it when its transport closes).
func (s *shardStreamLayer) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.router.unregister(s)
	})
	return nil
}

func (s *shardStreamLayer) Addr() net.Addr {
	return s.advertise
}

// Dial connects to the raft transport of this shard on a peer. address is a dial target made
// by identifiedTransport (the server ID and address), or a bare address.
func (s *shardStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	header := []byte{ProtocolShardRaft, 0, 0}
	binary.BigEndian.PutUint16(header[1:], s.shardID)
	serverID, addr := splitDialTarget(string(address))
	return s.router.dialer.dial(addr, serverID, header, timeout)
}

// peerDialer dials peers' ports: plain TCP, or mutual TLS when tls is set.
type peerDialer struct {
	tls *tlsconfig.Node // nil: plain TCP
}

// dial connects to a node's port at address and writes header, whose first byte selects the
// protocol. With TLS the server must present a node certificate from the cluster CA that
// names expectedID (any node when expectedID is ""). timeout bounds connecting; the
// handshake is bounded by muxHandshakeTimeout as on the accepting side.
func (d *peerDialer) dial(address, expectedID string, header []byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	if d != nil && d.tls != nil {
		tlsConn := tls.Client(conn, d.tls.ClientConfig(expectedID))
		ctx, cancel := context.WithTimeout(context.Background(), min(timeout, muxHandshakeTimeout))
		err := tlsConn.HandshakeContext(ctx)
		cancel()
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", address, err)
		}
		conn = tlsConn
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(header); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("select protocol %d on %s: %w", header[0], address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// dialTargetSeparator joins a server ID and its address in a raft dial target. Addresses
// (host:port) never contain it, so the last one splits.
const dialTargetSeparator = "@"

// dialTarget is the raft address identifiedTransport hands the network transport: the server
// ID rides along to the stream layer's Dial.
func dialTarget(id raft.ServerID, target raft.ServerAddress) raft.ServerAddress {
	if id == "" {
		return target
	}
	return raft.ServerAddress(string(id) + dialTargetSeparator + string(target))
}

// splitDialTarget undoes dialTarget; a bare address gives an empty server ID.
func splitDialTarget(target string) (serverID, address string) {
	i := strings.LastIndex(target, dialTargetSeparator)
	if i < 0 {
		return "", target
	}
	return target[:i], target[i+1:]
}

// identifiedTransport is raft's network transport, with the server ID of every outbound RPC
// passed to the dial (raft dials by address only), so that with TLS the peer must prove to be
// the server raft's configuration names at that address.
type identifiedTransport struct {
	*raft.NetworkTransport
}

var (
	_ raft.Transport   = identifiedTransport{}
	_ raft.WithPreVote = identifiedTransport{}
	_ raft.WithClose   = identifiedTransport{}
)

func (t identifiedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	return t.NetworkTransport.AppendEntriesPipeline(id, dialTarget(id, target))
}

func (t identifiedTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.NetworkTransport.AppendEntries(id, dialTarget(id, target), args, resp)
}

func (t identifiedTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.NetworkTransport.RequestVote(id, dialTarget(id, target), args, resp)
}

func (t identifiedTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.NetworkTransport.RequestPreVote(id, dialTarget(id, target), args, resp)
}

func (t identifiedTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.NetworkTransport.InstallSnapshot(id, dialTarget(id, target), args, resp, data)
}

func (t identifiedTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.NetworkTransport.TimeoutNow(id, dialTarget(id, target), args, resp)
}
