package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Raft's network transport message types (hashicorp/raft net_transport.go); each message is
// the type byte, then the msgpack-encoded request, then (install snapshot only) Size bytes of
// snapshot data.
const (
	raftRPCAppendEntries   byte = 0
	raftRPCRequestVote     byte = 1
	raftRPCInstallSnapshot byte = 2
	raftRPCTimeoutNow      byte = 3
	raftRPCRequestPreVote  byte = 4
)

const (
	// raftCheckBufferBytes is the read buffer of a checked raft connection.
	raftCheckBufferBytes = 64 << 10
	// raftCheckRetainMaxBytes bounds the request buffer a connection keeps between requests:
	// one large batch does not pin its size for the connection's life.
	raftCheckRetainMaxBytes = 1 << 20
)

// errRaftPeerMismatch means a raft request named a sender other than the node whose
// certificate opened the connection.
var errRaftPeerMismatch = errors.New("raft request names another node than its connection's certificate")

// raftRequestHeader is the part of every raft request that says who sent it: RPCHeader's ID
// (raft encodes the embedded header's fields inline) and, for snapshots, how many data bytes
// follow. Other fields are skipped.
type raftRequestHeader struct {
	ID   []byte
	Size int64
}

// raftPeerCheckConn is an accepted raft connection that hands raft each request only after
// checking that the request's sender ID is the node its TLS certificate names: a node's
// certificate lets it speak for itself only (raft trusts the ID in a RequestVote, for one, to
// decide whether the candidate is a voter, and skips that check when the ID is empty). A
// mismatch fails the read, and raft drops the connection.
type raftPeerCheckConn struct {
	net.Conn
	peerID string
	logger *slog.Logger

	src      *bufio.Reader
	recorder *recordingReader
	decoder  *codec.Decoder
	// pending are checked bytes raft has not read yet (a view of recorder's buffer);
	// passthrough counts snapshot data bytes still to hand over unparsed.
	pending     []byte
	passthrough int64
	err         error
}

func newRaftPeerCheckConn(conn net.Conn, peerID string, logger *slog.Logger) *raftPeerCheckConn {
	c := &raftPeerCheckConn{Conn: conn, peerID: peerID, logger: logger, src: bufio.NewReaderSize(conn, raftCheckBufferBytes)}
	c.recorder = &recordingReader{src: c.src}
	c.decoder = codec.NewDecoder(c.recorder, &codec.MsgpackHandle{})
	return c
}

// Read is called by raft's transport from the one goroutine that serves the connection.
func (c *raftPeerCheckConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.passthrough > 0 {
			if int64(len(p)) > c.passthrough {
				p = p[:c.passthrough]
			}
			read, err := c.src.Read(p)
			c.passthrough -= int64(read)
			return read, err
		}
		if err := c.nextRequest(); err != nil {
			c.err = err
			if len(c.pending) == 0 {
				return 0, err
			}
		}
	}
	read := copy(p, c.pending)
	c.pending = c.pending[read:]
	return read, nil
}

// nextRequest reads one whole request, checks its sender and queues its bytes.
func (c *raftPeerCheckConn) nextRequest() error {
	if c.recorder.record.Cap() > raftCheckRetainMaxBytes {
		c.recorder.record = bytes.Buffer{}
	}
	c.recorder.record.Reset()
	kind, err := c.recorder.ReadByte()
	if err != nil {
		return err
	}
	switch kind {
	case raftRPCAppendEntries, raftRPCRequestVote, raftRPCInstallSnapshot, raftRPCTimeoutNow, raftRPCRequestPreVote:
	default:
		return fmt.Errorf("raft message type %d", kind)
	}
	var header raftRequestHeader
	if err := c.decoder.Decode(&header); err != nil {
		return fmt.Errorf("decode raft request: %w", err)
	}
	if string(header.ID) != c.peerID {
		c.logger.Warn("refused a raft request that claims another node than its certificate",
			"certificate_node", c.peerID, "claimed_node", string(header.ID), "remote", c.RemoteAddr())
		return fmt.Errorf("%w: certificate %s, request %q", errRaftPeerMismatch, c.peerID, header.ID)
	}
	if kind == raftRPCInstallSnapshot {
		if header.Size < 0 {
			return fmt.Errorf("raft snapshot of %d bytes", header.Size)
		}
		c.passthrough = header.Size
	}
	// Valid until the next request is read, which happens only once raft has read these.
	c.pending = c.recorder.record.Bytes()
	return nil
}

// recordingReader keeps every byte read (less those unread) since the last reset, so the bytes
// of a checked request can be handed to raft unchanged. It reads no further than asked (the
// msgpack decoder reads exactly one value), so no byte of the next request is taken unchecked.
type recordingReader struct {
	src    *bufio.Reader
	record bytes.Buffer
}

func (r *recordingReader) Read(p []byte) (int, error) {
	read, err := r.src.Read(p)
	r.record.Write(p[:read])
	return read, err
}

func (r *recordingReader) ReadByte() (byte, error) {
	b, err := r.src.ReadByte()
	if err == nil {
		r.record.WriteByte(b)
	}
	return b, err
}

func (r *recordingReader) UnreadByte() error {
	if err := r.src.UnreadByte(); err != nil {
		return err
	}
	r.record.Truncate(r.record.Len() - 1)
	return nil
}
