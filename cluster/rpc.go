package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/shard"
)

// Forwarding RPC wire format. Every message is a frame: a 4-byte big-endian length, then that
// many bytes. Many requests share one connection; responses carry the request's ID and may
// come back in any order.
//
//	request:  kind u8 | shard ID u16 | request ID u64 | timeout ms u32 | payload
//	response: request ID u64 | code u8 | leader hint length u16 | leader hint | payload
//
// Request payloads: the command (propose), empty (read index, servers), the server ID and
// address joined by a 0x00 byte (add voter, open replica: address only), the server ID
// (remove server), Config.Query's bytes (query). A response payload is the encoded result
// (propose), 8 bytes of read index (read index), the configuration as JSON (servers), empty
// (membership changes), Config.Query's answer (query, after a read-index fence on the
// answering node), or an error message (any code other than codeOK). Node info ignores the shard ID and answers this node's
// addresses and shards as JSON (nodeInfo). Servers and replica stats with the payload {1} are
// answered by the leader only. Replica stats answer shard.Stats as JSON; retire
// replica answers empty; ping (request ID 0) answers empty at once. Kinds are only ever added.
const (
	rpcKindPropose      byte = 1
	rpcKindReadIndex    byte = 2
	rpcKindAddVoter     byte = 3
	rpcKindRemoveServer byte = 4
	rpcKindOpenReplica  byte = 5
	rpcKindServers      byte = 6
	rpcKindQuery        byte = 7
	rpcKindNodeInfo     byte = 8
	// rpcKindAddNonvoter adds a replica that does not vote yet (id 0x00 addr); leader only.
	rpcKindAddNonvoter byte = 9
	// rpcKindReplicaStats answers the local replica's shard.Stats as JSON; with the payload
	// {1} only the leader answers (others: not leader, with the hint).
	rpcKindReplicaStats byte = 10
	// rpcKindRetireReplica closes and deletes the local replica once the shard's leader
	// confirms this node is no longer in its configuration (the end of a move).
	rpcKindRetireReplica byte = 11
	// rpcKindTransferLeadership makes the leader, when it is the node the payload names, hand
	// leadership to the most up-to-date other voter, or (payload from 0x00 to 0x00 toAddr) to
	// the voter to; leader only.
	rpcKindTransferLeadership byte = 12
	// rpcKindPing asks for an empty answer at once, ahead of the requests being handled: a
	// client's check that a connection on which its requests wait is still alive (see
	// rpcPingAfter). It carries request ID 0, which no request uses. A node from before it
	// answers with an error code, which proves the same.
	rpcKindPing byte = 13
	// rpcKindRemoveServerKeeping removes a replica (from 0x00 keep 0x00 voters) only while
	// keep is a voter and at least that many voters are left (shard.RemoveServerKeeping);
	// leader only. A leader of an earlier release answers the kind unknown, and the move stops.
	rpcKindRemoveServerKeeping byte = 14
	// rpcKindTerm answers the local replica's current raft term (8 bytes, big-endian) and the
	// node's ID: a
	// leader's read-index round confirms with it that no voter moved past its term
	// (confirmTerm). A node of an earlier release answers the kind unknown; the leader then
	// reads the term from rpcKindReplicaStats.
	rpcKindTerm byte = 15
)

// Response codes carry error identity across the wire. Only add codes; never renumber.
const (
	codeOK byte = iota + 1
	codeNotLeader
	codeNoLeader
	codeOutcomeUnknown
	codeOverloaded
	codeCommandTooLarge
	codeClosed
	codeDeadlineExceeded
	codeCanceled
	codeInternal
	codeBadRequest
	codeNotHosted
)

const (
	// rpcFrameMaxBytes bounds every frame either side reads; a command can never exceed
	// shard.BatchMaxBytesLimit, so this leaves room for headers.
	rpcFrameMaxBytes = shard.BatchMaxBytesLimit + 1024
	// rpcRequestHeaderBytes and rpcResponseHeaderBytes are the fixed header sizes.
	rpcRequestHeaderBytes  = 1 + shardIDBytes + 8 + 4
	rpcResponseHeaderBytes = 8 + 1 + 2
	// rpcDialTimeout bounds dialing a leader.
	rpcDialTimeout = 2 * time.Second
	// rpcWriteTimeout bounds writing one frame.
	rpcWriteTimeout = 5 * time.Second
	// rpcDefaultTimeout is used when a request has no deadline.
	rpcDefaultTimeout = 10 * time.Second
	// rpcTimeoutMax caps the timeout a request may ask the leader to wait.
	rpcTimeoutMax = time.Minute
	// rpcServerInflightMaxCount bounds concurrently handled requests per connection; the
	// reader stops reading (back-pressure) when it is reached.
	rpcServerInflightMaxCount = 4096
	// rpcConnBufferBytes is the bufio size of each RPC connection direction.
	rpcConnBufferBytes = 64 << 10
)

// A connection on which requests wait and from which nothing has arrived for rpcPingAfter
// sends a ping each rpcPingAfter/2; when nothing has arrived for rpcSilenceMax, it is declared
// dead and every request waiting on it fails (a proposal with an unknown outcome, as when a
// connection breaks). Without this, a request sent into a connection whose packets the network
// drops (a partition) or whose peer is stopped waited for its caller's whole deadline, minutes
// for a membership change, and went on waiting after the network healed: TCP retransmits on a
// backoff of up to two minutes, and nothing else closes such a connection. A live peer answers
// a ping at once however long its requests take. Each client copies them (tests shorten its
// copy).
const (
	rpcPingAfter  = 2 * time.Second
	rpcSilenceMax = 10 * time.Second
)

// errSilent is why a connection was declared dead by its liveness check.
var errSilent = errors.New("nothing arrived on the connection while requests waited; peer or network down")

// errNotSent marks a forwarding failure that happened before any byte of the request could
// reach the leader, so retrying cannot apply a command twice.
var errNotSent = errors.New("request not sent")

// codeForError maps an error to its wire code. ErrOutcomeUnknown comes first: a timeout after
// the command reached raft is still unknown, never "failed".
func codeForError(err error) byte {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, shard.ErrOutcomeUnknown):
		return codeOutcomeUnknown
	case errors.Is(err, shard.ErrClosed):
		return codeClosed
	case errors.Is(err, shard.ErrNotLeader):
		return codeNotLeader
	case errors.Is(err, ErrNoLeader):
		return codeNoLeader
	case errors.Is(err, ErrNotHosted):
		return codeNotHosted
	case errors.Is(err, shard.ErrOverloaded):
		return codeOverloaded
	case errors.Is(err, shard.ErrCommandTooLarge):
		return codeCommandTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return codeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codeCanceled
	default:
		return codeInternal
	}
}

// errorForCode is codeForError's inverse: it returns the sentinel for code (nil for codeOK).
func errorForCode(code byte) error {
	switch code {
	case codeOK:
		return nil
	case codeNotLeader:
		return shard.ErrNotLeader
	case codeNoLeader:
		return ErrNoLeader
	case codeOutcomeUnknown:
		return shard.ErrOutcomeUnknown
	case codeOverloaded:
		return shard.ErrOverloaded
	case codeCommandTooLarge:
		return shard.ErrCommandTooLarge
	case codeClosed:
		return shard.ErrClosed
	case codeDeadlineExceeded:
		return context.DeadlineExceeded
	case codeCanceled:
		return context.Canceled
	case codeBadRequest:
		return errBadRequest
	case codeNotHosted:
		return ErrNotHosted
	default:
		return errRemoteInternal
	}
}

var (
	errBadRequest     = errors.New("bad forwarding request")
	errRemoteInternal = errors.New("leader internal error")
)

type rpcRequest struct {
	kind      byte
	shardID   uint16
	id        uint64
	timeoutMs uint32
	payload   []byte
}

type rpcResponse struct {
	id         uint64
	code       byte
	leaderHint string
	payload    []byte
}

func writeFrame(w *bufio.Writer, parts ...[]byte) error {
	size, err := frameSize(parts)
	if err != nil {
		return err
	}
	var length [4]byte
	binary.BigEndian.PutUint32(length[:], uint32(size))
	if _, err := w.Write(length[:]); err != nil {
		return err
	}
	for _, part := range parts {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return w.Flush()
}

// frameSize is the length of the frame made of parts, or an error when it exceeds the limit.
func frameSize(parts [][]byte) (int, error) {
	size := 0
	for _, part := range parts {
		size += len(part)
	}
	if size > rpcFrameMaxBytes {
		return 0, fmt.Errorf("frame of %d bytes exceeds %d", size, rpcFrameMaxBytes)
	}
	return size, nil
}

// frameWriter writes the frames of many goroutines onto one connection, several per system
// call: a caller appends its frame to the pending bytes and wakes the connection's flusher
// goroutine, which writes everything pending in one call. While it writes, the next frames
// gather, so under load one write (and one TLS record) carries a burst, such as the answers
// to a batch of proposals that the leader applied together; a lone frame leaves at once.
// Pending bytes are bounded (frameWriterPendingMaxBytes): callers wait for room.
//
// write returns once the frame is queued, not sent. The first failed write (or close) fails
// the writer for good and calls onFail, which closes the connection: every caller whose
// frame may have been in flight learns it from the connection's end (for a proposal, an
// unknown outcome, as when its own write failed).
type frameWriter struct {
	conn   net.Conn
	onFail func(error)

	mu sync.Mutex
	// room is signalled when the flusher took the pending bytes, or the writer failed.
	room    *sync.Cond
	pending []byte
	spare   []byte // the flusher's last buffer, reused for the next burst
	err     error

	wake chan struct{} // capacity 1: a frame is pending
	done chan struct{} // closed by close: flush what is pending and stop
	// flushed is closed when the flusher has stopped.
	flushed chan struct{}
}

// frameWriterPendingMaxBytes bounds the bytes queued on one connection and not yet written.
const frameWriterPendingMaxBytes = 4 << 20

func newFrameWriter(conn net.Conn, onFail func(error)) *frameWriter {
	w := &frameWriter{conn: conn, onFail: onFail, wake: make(chan struct{}, 1), done: make(chan struct{}), flushed: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	go w.flush()
	return w
}

// write queues one frame; an error means it was not queued (the writer failed or closed, or
// the frame is too large).
func (w *frameWriter) write(parts ...[]byte) error {
	size, err := frameSize(parts)
	if err != nil {
		return err
	}
	w.mu.Lock()
	for w.err == nil && len(w.pending) > 0 && len(w.pending)+4+size > frameWriterPendingMaxBytes {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = binary.BigEndian.AppendUint32(w.pending, uint32(size))
	for _, part := range parts {
		w.pending = append(w.pending, part...)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the flusher is already due to run
	}
	return nil
}

// flush is the writer's goroutine: it writes the pending bytes whenever there are some, and
// what is left when closed.
func (w *frameWriter) flush() {
	defer close(w.flushed)
	for {
		closing := false
		select {
		case <-w.wake:
		case <-w.done:
			closing = true
		}
		w.mu.Lock()
		burst := w.pending
		w.pending, w.spare = w.spare[:0], nil
		w.room.Broadcast()
		w.mu.Unlock()
		var err error
		if len(burst) > 0 {
			_ = w.conn.SetWriteDeadline(time.Now().Add(rpcWriteTimeout))
			_, err = w.conn.Write(burst)
		}
		w.mu.Lock()
		if cap(burst) <= 2*rpcConnBufferBytes {
			w.spare = burst[:0] // a big burst's buffer is not kept
		}
		if err == nil && closing {
			err = net.ErrClosed
		}
		if err != nil && w.err == nil {
			w.err = err
			w.room.Broadcast()
		}
		w.mu.Unlock()
		if err != nil {
			if !closing {
				w.onFail(err)
			}
			return
		}
	}
}

// close writes what is pending, stops the flusher and waits for it; later writes fail.
func (w *frameWriter) close() {
	w.mu.Lock()
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.mu.Unlock()
	<-w.flushed
}

func readFrame(r *bufio.Reader) ([]byte, error) {
	var length [4]byte
	if _, err := io.ReadFull(r, length[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(length[:])
	if size > rpcFrameMaxBytes {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", size, rpcFrameMaxBytes)
	}
	// The frame grows as its bytes arrive (doubling from rpcConnBufferBytes): a length prefix
	// alone must not allocate the frame, or a peer declaring 64 MiB on each of many
	// connections and sending nothing more would take gigabytes.
	frame := make([]byte, min(int(size), rpcConnBufferBytes))
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	for len(frame) < int(size) {
		read := len(frame)
		frame = append(frame, make([]byte, min(int(size)-read, read))...)
		if _, err := io.ReadFull(r, frame[read:]); err != nil {
			return nil, err
		}
	}
	return frame, nil
}

func encodeRequestHeader(req rpcRequest) []byte {
	header := make([]byte, rpcRequestHeaderBytes)
	header[0] = req.kind
	binary.BigEndian.PutUint16(header[1:3], req.shardID)
	binary.BigEndian.PutUint64(header[3:11], req.id)
	binary.BigEndian.PutUint32(header[11:15], req.timeoutMs)
	return header
}

func decodeRequest(frame []byte) (rpcRequest, error) {
	if len(frame) < rpcRequestHeaderBytes {
		return rpcRequest{}, fmt.Errorf("request frame of %d bytes is shorter than its header", len(frame))
	}
	return rpcRequest{
		kind:      frame[0],
		shardID:   binary.BigEndian.Uint16(frame[1:3]),
		id:        binary.BigEndian.Uint64(frame[3:11]),
		timeoutMs: binary.BigEndian.Uint32(frame[11:15]),
		payload:   frame[rpcRequestHeaderBytes:],
	}, nil
}

func encodeResponseHeader(resp rpcResponse) []byte {
	hint := resp.leaderHint
	if len(hint) > 0xffff {
		hint = ""
	}
	header := make([]byte, rpcResponseHeaderBytes+len(hint))
	binary.BigEndian.PutUint64(header[0:8], resp.id)
	header[8] = resp.code
	binary.BigEndian.PutUint16(header[9:11], uint16(len(hint)))
	copy(header[11:], hint)
	return header
}

func decodeResponse(frame []byte) (rpcResponse, error) {
	if len(frame) < rpcResponseHeaderBytes {
		return rpcResponse{}, fmt.Errorf("response frame of %d bytes is shorter than its header", len(frame))
	}
	hintBytes := int(binary.BigEndian.Uint16(frame[9:11]))
	if len(frame) < rpcResponseHeaderBytes+hintBytes {
		return rpcResponse{}, fmt.Errorf("response frame of %d bytes cannot hold a %d-byte hint", len(frame), hintBytes)
	}
	return rpcResponse{
		id:         binary.BigEndian.Uint64(frame[0:8]),
		code:       frame[8],
		leaderHint: string(frame[11 : 11+hintBytes]),
		payload:    frame[11+hintBytes:],
	}, nil
}

// rpcTimeoutMs is the timeout to send with a request: what is left of ctx, capped.
func rpcTimeoutMs(ctx context.Context) uint32 {
	timeout := rpcDefaultTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	timeout = min(max(timeout, time.Millisecond), rpcTimeoutMax)
	return uint32(timeout / time.Millisecond)
}

// rpcClient keeps one multiplexed connection per leader address, so forwarding costs no
// handshake once connected; concurrent requests pipeline on it.
type rpcClient struct {
	logger *slog.Logger
	dialer *peerDialer
	// nodeIDAt names the node expected at a port address ("" when unknown: then any node of
	// the cluster CA may answer).
	nodeIDAt func(address string) string

	// liveness is the check each connection runs (see rpcPingAfter).
	liveness rpcLiveness

	mu     sync.Mutex
	conns  map[string]*rpcClientConn
	closed bool
}

// rpcLiveness is when a connection with requests waiting pings, and when it is declared dead.
type rpcLiveness struct {
	pingAfter, silenceMax time.Duration
}

func newRPCClient(dialer *peerDialer, nodeIDAt func(address string) string, logger *slog.Logger) *rpcClient {
	return &rpcClient{logger: logger, dialer: dialer, nodeIDAt: nodeIDAt, conns: make(map[string]*rpcClientConn),
		liveness: rpcLiveness{pingAfter: rpcPingAfter, silenceMax: rpcSilenceMax}}
}

// call sends one request and waits for its response. An error wrapping errNotSent means the
// request never left this node.
func (c *rpcClient) call(ctx context.Context, address string, shardID uint16, kind byte, payload []byte) (rpcResponse, error) {
	conn, err := c.conn(ctx, address)
	if err != nil {
		return rpcResponse{}, fmt.Errorf("connect to %s: %w", address, errors.Join(errNotSent, err))
	}
	return conn.call(ctx, shardID, kind, payload)
}

func (c *rpcClient) conn(ctx context.Context, address string) (*rpcClientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, net.ErrClosed
	}
	if conn := c.conns[address]; conn != nil {
		c.mu.Unlock()
		return conn, nil
	}
	c.mu.Unlock()

	dialTimeout := rpcDialTimeout
	if deadline, ok := ctx.Deadline(); ok {
		dialTimeout = min(dialTimeout, time.Until(deadline))
	}
	if dialTimeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	netConn, err := c.dialer.dial(address, c.nodeIDAt(address), []byte{ProtocolShardForward}, dialTimeout)
	if err != nil {
		return nil, err
	}
	conn := newRPCClientConn(address, netConn, c.liveness)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = netConn.Close()
		return nil, net.ErrClosed
	}
	if existing := c.conns[address]; existing != nil {
		// Another caller dialed concurrently; keep one connection.
		_ = netConn.Close()
		return existing, nil
	}
	c.conns[address] = conn
	conn.start(func() { c.forget(conn) })
	return conn, nil
}

func (c *rpcClient) forget(conn *rpcClientConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[conn.address] == conn {
		delete(c.conns, conn.address)
	}
}

func (c *rpcClient) close() {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = map[string]*rpcClientConn{}
	c.mu.Unlock()
	for _, conn := range conns {
		conn.fail(net.ErrClosed)
	}
}

// rpcClientConn is one multiplexed connection: callers queue their requests on writer (which
// writes bursts of them per system call); one reader goroutine routes responses to pending
// requests by ID.
type rpcClientConn struct {
	address string
	conn    net.Conn
	writer  *frameWriter

	liveness rpcLiveness
	// heardAt is when the connection last showed life (bytes arrived) or, if later, when
	// requests began to wait on it (rpcNow); the liveness check measures silence from it.
	heardAt atomic.Int64

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan rpcResponse
	err     error
	done    chan struct{}
}

func newRPCClientConn(address string, netConn net.Conn, liveness rpcLiveness) *rpcClientConn {
	conn := &rpcClientConn{
		address:  address,
		liveness: liveness,
		conn:     netConn,
		pending:  make(map[uint64]chan rpcResponse),
		done:     make(chan struct{}),
	}
	conn.writer = newFrameWriter(netConn, conn.fail)
	conn.heardAt.Store(rpcNow())
	return conn
}

// start runs the connection's reader and its liveness check; forget is called when the
// reader stops.
func (c *rpcClientConn) start(forget func()) {
	go c.readLoop(forget)
	go c.checkLiveness()
}

// rpcClock is the origin of rpcNow.
var rpcClock = time.Now()

// rpcNow is monotonic nanoseconds since rpcClock.
func rpcNow() int64 { return int64(time.Since(rpcClock)) }

// checkLiveness pings while requests wait and nothing arrives, and fails the connection once
// nothing has arrived for rpcSilenceMax (see rpcPingAfter).
func (c *rpcClientConn) checkLiveness() {
	pingAfter, silenceMax := c.liveness.pingAfter, c.liveness.silenceMax
	ticker := time.NewTicker(pingAfter / 2)
	defer ticker.Stop()
	ping := encodeRequestHeader(rpcRequest{kind: rpcKindPing, timeoutMs: uint32(pingAfter / time.Millisecond)})
	for {
		select {
		case <-c.done:
			return
		case <-ticker.C:
		}
		c.mu.Lock()
		waiting := len(c.pending)
		c.mu.Unlock()
		silent := time.Duration(rpcNow() - c.heardAt.Load())
		switch {
		case waiting == 0 || silent < pingAfter:
		case silent >= silenceMax:
			c.fail(fmt.Errorf("%w (%d waiting, silent for %v)", errSilent, waiting, silent.Round(time.Millisecond)))
			return
		default:
			if err := c.writer.write(ping); err != nil {
				c.fail(err)
				return
			}
		}
	}
}

// heardReader notes in heardAt each time bytes arrive.
type heardReader struct {
	conn    net.Conn
	heardAt *atomic.Int64
}

func (r heardReader) Read(p []byte) (int, error) {
	n, err := r.conn.Read(p)
	if n > 0 {
		r.heardAt.Store(rpcNow())
	}
	return n, err
}

func (c *rpcClientConn) call(ctx context.Context, shardID uint16, kind byte, payload []byte) (rpcResponse, error) {
	responses := make(chan rpcResponse, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return rpcResponse{}, fmt.Errorf("connection to %s: %w", c.address, errors.Join(errNotSent, err))
	}
	c.nextID++
	id := c.nextID
	if len(c.pending) == 0 {
		c.heardAt.Store(rpcNow()) // silence counts from when requests began to wait
	}
	c.pending[id] = responses
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	header := encodeRequestHeader(rpcRequest{kind: kind, shardID: shardID, id: id, timeoutMs: rpcTimeoutMs(ctx)})
	if err := c.writer.write(header, payload); err != nil {
		// Nothing of this frame was queued, but an earlier failure may have cut the connection
		// mid-write: the caller treats the request as possibly received, as before.
		c.fail(err)
		return rpcResponse{}, fmt.Errorf("write request to %s: %w", c.address, err)
	}
	select {
	case resp := <-responses:
		return resp, nil
	case <-ctx.Done():
		return rpcResponse{}, fmt.Errorf("wait for %s: %w", c.address, ctx.Err())
	case <-c.done:
		return rpcResponse{}, fmt.Errorf("connection to %s lost while waiting: %w", c.address, c.failure())
	}
}

func (c *rpcClientConn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *rpcClientConn) readLoop(forget func()) {
	reader := bufio.NewReaderSize(heardReader{conn: c.conn, heardAt: &c.heardAt}, rpcConnBufferBytes)
	for {
		frame, err := readFrame(reader)
		if err != nil {
			forget()
			c.fail(err)
			return
		}
		resp, err := decodeResponse(frame)
		if err != nil {
			forget()
			c.fail(err)
			return
		}
		c.mu.Lock()
		responses := c.pending[resp.id]
		c.mu.Unlock()
		if responses != nil {
			responses <- resp // buffered 1, and each ID gets one response
		}
	}
}

// fail marks the connection dead (once), closes it and wakes every waiter.
func (c *rpcClientConn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if err == nil {
		err = net.ErrClosed
	}
	c.err = err
	close(c.done)
	_ = c.conn.Close()
	if c.writer != nil {
		go c.writer.close() // the flusher may be the caller: never wait for it here
	}
}

// rpcHandler answers one request on the leader.
type rpcHandler func(ctx context.Context, req rpcRequest) rpcResponse

// rpcServer accepts forwarding connections from the mux and answers requests concurrently.
type rpcServer struct {
	listener net.Listener
	handle   rpcHandler
	logger   *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newRPCServer(listener net.Listener, handle rpcHandler, logger *slog.Logger) *rpcServer {
	return &rpcServer{listener: listener, handle: handle, logger: logger, conns: make(map[net.Conn]struct{})}
}

func (s *rpcServer) serve() {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

func (s *rpcServer) serveConn(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	reader := bufio.NewReaderSize(conn, rpcConnBufferBytes)
	writer := newFrameWriter(conn, func(err error) {
		s.logger.Debug("write forwarding responses", "remote", conn.RemoteAddr(), "error", err)
		_ = conn.Close()
	})
	defer writer.close() // after the handlers: their answers leave before the connection closes
	inflight := make(chan struct{}, rpcServerInflightMaxCount)
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		frame, err := readFrame(reader)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("forwarding connection ended", "remote", conn.RemoteAddr(), "error", err)
			}
			return
		}
		req, err := decodeRequest(frame)
		if err != nil {
			s.logger.Warn("bad forwarding request; closing connection", "remote", conn.RemoteAddr(), "error", err)
			return
		}
		if req.kind == rpcKindPing {
			// Answered here, not by a handler: the answer must not wait for the requests
			// being handled (it only waits when rpcServerInflightMaxCount of them hold the
			// reader).
			if err := writer.write(encodeResponseHeader(rpcResponse{id: req.id, code: codeOK})); err != nil {
				_ = conn.Close()
				return
			}
			continue
		}
		inflight <- struct{}{}
		handlers.Go(func() {
			defer func() { <-inflight }()
			timeout := min(time.Duration(req.timeoutMs)*time.Millisecond, rpcTimeoutMax)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			resp := s.handle(ctx, req)
			cancel()
			resp.id = req.id
			if err := writer.write(encodeResponseHeader(resp), resp.payload); err != nil {
				s.logger.Debug("write forwarding response", "remote", conn.RemoteAddr(), "error", err)
				_ = conn.Close()
			}
		})
	}
}

// close stops accepting and closes every connection once its in-flight requests are answered
// (call it after the shard closed, so those answers come quickly).
func (s *rpcServer) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]net.Conn, 0, len(s.conns))
	for conn := range s.conns {
		conns = append(conns, conn)
	}
	s.mu.Unlock()
	_ = s.listener.Close()
	for _, conn := range conns {
		// Stops the reader; requests already being handled still get their answers before
		// serveConn closes the connection.
		_ = conn.SetReadDeadline(time.Now())
	}
	s.wg.Wait()
}
