package cluster

import (
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
	// ProtocolRaft selects the raft transport.
	ProtocolRaft byte = 1
	// ProtocolForward selects the forwarding RPC (follower → leader proposals and read index).
	ProtocolForward byte = 2
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

// raftStreamLayer is the raft.StreamLayer on the mux: it accepts ProtocolRaft connections and
// dials peers writing the ProtocolRaft byte first.
type raftStreamLayer struct {
	net.Listener
	advertise net.Addr
}

var _ raft.StreamLayer = (*raftStreamLayer)(nil)

func (s *raftStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialProtocol(string(address), ProtocolRaft, timeout)
}

func (s *raftStreamLayer) Addr() net.Addr {
	return s.advertise
}

// dialProtocol connects to a node's port and selects protocol.
func dialProtocol(address string, protocol byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", address, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{protocol}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("select protocol %d on %s: %w", protocol, address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}
