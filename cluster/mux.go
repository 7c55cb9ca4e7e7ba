package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
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
	// muxHandshakeTimeout bounds how long an accepted connection may take to send its
	// protocol byte.
	muxHandshakeTimeout = 5 * time.Second
	// muxAcceptQueueCount is how many identified connections may wait for their protocol's
	// Accept.
	muxAcceptQueueCount = 64
)

// Mux shares one TCP listener between protocols by the first byte of each connection.
// Register protocols with Listen before calling Serve.
type Mux struct {
	listener net.Listener
	logger   *slog.Logger

	mu        sync.Mutex
	protocols map[byte]*muxListener
	// conns are all accepted connections, closed by Close so that a closed node is really
	// gone for its peers (as if the process died).
	conns  map[net.Conn]struct{}
	closed bool

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
	}
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

// Serve accepts connections until Close; it returns nil after Close.
func (m *Mux) Serve() error {
	for {
		conn, err := m.listener.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				continue
			}
			return fmt.Errorf("mux accept: %w", err)
		}
		if !m.track(conn) {
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
	var protocol [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(muxHandshakeTimeout))
	if _, err := io.ReadFull(conn, protocol[:]); err != nil {
		m.logger.Debug("mux: connection closed before its protocol byte", "remote", conn.RemoteAddr(), "error", err)
		m.closeConn(conn)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	m.mu.Lock()
	l := m.protocols[protocol[0]]
	m.mu.Unlock()
	if l == nil {
		m.logger.Warn("mux: unknown protocol byte", "remote", conn.RemoteAddr(), "protocol", protocol[0])
		m.closeConn(conn)
		return
	}
	select {
	case l.conns <- &trackedConn{Conn: conn, mux: m}:
	case <-l.done:
		m.closeConn(conn)
	case <-m.done:
		m.closeConn(conn)
	}
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

// trackedConn forgets itself in the mux when closed.
type trackedConn struct {
	net.Conn
	mux  *Mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.mux.untrack(c.Conn) })
	return c.Conn.Close()
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
	logger   *slog.Logger

	mu     sync.Mutex
	shards map[uint16]*shardStreamLayer
	wg     sync.WaitGroup
}

func newShardConnRouter(listener net.Listener, logger *slog.Logger) *shardConnRouter {
	return &shardConnRouter{listener: listener, logger: logger, shards: make(map[uint16]*shardStreamLayer)}
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

func (s *shardStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	header := []byte{ProtocolShardRaft, 0, 0}
	binary.BigEndian.PutUint16(header[1:], s.shardID)
	return dialProtocol(string(address), header, timeout)
}

// dialProtocol connects to a node's port and writes header, whose first byte selects the
// protocol.
func dialProtocol(address string, header []byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(header); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("select protocol %d on %s: %w", header[0], address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
