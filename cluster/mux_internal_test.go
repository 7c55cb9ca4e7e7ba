package cluster

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// failingListener fails its first failures Accepts as a process out of file descriptors does,
// then accepts from the real listener.
type failingListener struct {
	net.Listener
	failures int
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.failures > 0 {
		l.failures--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// waitUntil polls condition until it holds, or fails the test after a deadline.
func waitUntil(t *testing.T, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startTestMux serves a plain mux on a loopback port with ProtocolShardForward registered, and
// returns it with that protocol's listener and the result of Serve.
func startTestMux(t *testing.T, wrap func(net.Listener) net.Listener, unidentifiedMaxCount int) (*Mux, net.Listener, <-chan error) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		listener = wrap(listener)
	}
	mux := NewMux(listener, slog.New(slog.DiscardHandler))
	if unidentifiedMaxCount > 0 {
		mux.unidentified = make(chan struct{}, unidentifiedMaxCount)
	}
	forward := mux.Listen(ProtocolShardForward)
	served := make(chan error, 1)
	go func() { served <- mux.Serve() }()
	t.Cleanup(func() { _ = mux.Close() })
	return mux, forward, served
}

// acceptWithin accepts one connection from l, or fails the test after limit.
func acceptWithin(t *testing.T, l net.Listener, limit time.Duration, served <-chan error) net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		if conn, err := l.Accept(); err == nil {
			accepted <- conn
		}
	}()
	select {
	case conn := <-accepted:
		return conn
	case err := <-served:
		t.Fatalf("the mux stopped serving: %v", err)
	case <-time.After(limit):
		t.Fatalf("no connection accepted within %s", limit)
	}
	return nil
}

// dialProtocol connects to addr and selects protocol.
func dialProtocol(t *testing.T, addr string, protocol byte) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte{protocol}); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestMuxKeepsAcceptingAfterAcceptErrors: a process that ran out of file descriptors (a flood
// of connections can cause it) fails Accept for a while. The mux used to stop for good on the
// first such error, leaving the node deaf to its peers while its /readyz said ready.
func TestMuxKeepsAcceptingAfterAcceptErrors(t *testing.T) {
	mux, forward, served := startTestMux(t, func(l net.Listener) net.Listener {
		return &failingListener{Listener: l, failures: 5}
	}, 0)
	dialProtocol(t, mux.Addr().String(), ProtocolShardForward)
	conn := acceptWithin(t, forward, 5*time.Second, served)
	_ = conn.Close()
}

// TestMuxBoundsUnidentifiedConnections: connections that send nothing (a slowloris on the
// cluster port, which anyone who reaches it can run) hold at most muxUnidentifiedMaxCount
// places (a smaller bound here, to spare the test machine's file descriptors); past that a new connection is closed at once, not held for muxHandshakeTimeout, and
// once the flood ends peers are served again.
func TestMuxBoundsUnidentifiedConnections(t *testing.T) {
	const limit = 64
	mux, forward, served := startTestMux(t, nil, limit)
	addr := mux.Addr().String()
	idle := make([]net.Conn, 0, limit)
	for range limit {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
	}
	waitUntil(t, "every idle connection holds a place", func() bool {
		return len(mux.unidentified) == limit
	})

	extra, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	start := time.Now()
	_ = extra.SetReadDeadline(time.Now().Add(2 * muxHandshakeTimeout))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection over the limit was served")
	}
	if waited := time.Since(start); waited >= muxHandshakeTimeout {
		t.Fatalf("a connection over the limit was held %s, as long as the handshake timeout", waited)
	}

	for _, conn := range idle {
		_ = conn.Close()
	}
	waitUntil(t, "the idle connections' places are free", func() bool { return len(mux.unidentified) == 0 })
	dialProtocol(t, addr, ProtocolShardForward)
	_ = acceptWithin(t, forward, 5*time.Second, served).Close()
}

// TestShardTransportDoesNotPipeline: a shard's raft transport refuses pipelines, so raft
// replicates one AppendEntries at a time (hashicorp/raft's pipeline can deadlock a follower's
// replication and the shard's shutdown; raftRPCsInFlight).
func TestShardTransportDoesNotPipeline(t *testing.T) {
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	transport := newShardTransport(tcpLayer{listener}, hclog.NewNullLogger())
	defer transport.Close()
	if _, err := transport.AppendEntriesPipeline("n2", "127.0.0.1:1"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline: %v, want ErrPipelineReplicationNotSupported", err)
	}
}

// tcpLayer is a raft.StreamLayer over a plain TCP listener.
type tcpLayer struct{ net.Listener }

func (l tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}
