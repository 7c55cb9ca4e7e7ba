package cluster

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
)

// TestDialRefusesAServerNamingAnotherNode: a node dialing node2 refuses a server that proves
// to be node9, although node9's certificate comes from the cluster CA; dialing without an
// expected ID accepts any member, and a server of another CA is refused either way.
func TestDialRefusesAServerNamingAnotherNode(t *testing.T) {
	ca := tlstest.NewCA(t)
	serve := func(server *tlsconfig.Node) string {
		listener, err := tls.Listen("tcp", "127.0.0.1:0", server.ServerConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = listener.Close() })
		go func() {
			for {
				conn, err := listener.Accept()
				if err != nil {
					return
				}
				go func() {
					defer conn.Close()
					_ = conn.(*tls.Conn).Handshake()
					_, _ = conn.Read(make([]byte, 1))
				}()
			}
		}()
		return listener.Addr().String()
	}
	impostorAddr := serve(ca.Node("node9"))
	dialer := &peerDialer{tls: ca.Node("node1")}

	_, err := dialer.dial(impostorAddr, "node2", []byte{ProtocolShardForward}, time.Second)
	if !errors.Is(err, tlsconfig.ErrWrongNode) {
		t.Fatalf("dialing node2 at node9's server: %v, want ErrWrongNode", err)
	}
	conn, err := dialer.dial(impostorAddr, "node9", []byte{ProtocolShardForward}, time.Second)
	if err != nil {
		t.Fatalf("dialing node9 at its own server: %v", err)
	}
	_ = conn.Close()
	conn, err = dialer.dial(impostorAddr, "", []byte{ProtocolShardForward}, time.Second)
	if err != nil {
		t.Fatalf("dialing any member: %v", err)
	}
	_ = conn.Close()

	foreignAddr := serve(tlstest.NewCA(t).Node("node2"))
	if _, err := dialer.dial(foreignAddr, "node2", []byte{ProtocolShardForward}, time.Second); err == nil {
		t.Fatal("a server of another CA was accepted")
	}
}

func TestDialTargetRoundTrip(t *testing.T) {
	for _, tc := range []struct{ id, addr string }{{"n1", "127.0.0.1:7001"}, {"a@b", "[::1]:7001"}, {"", "host:1"}} {
		id, addr := splitDialTarget(string(dialTarget(raft.ServerID(tc.id), raft.ServerAddress(tc.addr))))
		if id != tc.id || addr != tc.addr {
			t.Errorf("%q %q came back as %q %q", tc.id, tc.addr, id, addr)
		}
	}
	if id, addr := splitDialTarget("127.0.0.1:1"); id != "" || addr != "127.0.0.1:1" {
		t.Errorf("bare address split into %q %q", id, addr)
	}
}

// TestRaftPeerCheckConn: raft's bytes pass through unchanged, request by request (entries,
// a snapshot's data after its request), until a request names another node than the
// connection's certificate: then reading fails before raft sees that request.
func TestRaftPeerCheckConn(t *testing.T) {
	var stream bytes.Buffer
	encoder := codec.NewEncoder(&stream, &codec.MsgpackHandle{})
	header := func(id string) raft.RPCHeader {
		return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte("127.0.0.1:1")}
	}
	write := func(kind byte, request any) {
		stream.WriteByte(kind)
		if err := encoder.Encode(request); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := bytes.Repeat([]byte{0xc1}, 100_000) // 0xc1 is never valid msgpack
	write(raftRPCAppendEntries, &raft.AppendEntriesRequest{RPCHeader: header("n2"), Term: 3,
		Entries: []*raft.Log{{Index: 1, Term: 3, Data: bytes.Repeat([]byte("x"), 300_000)}}})
	write(raftRPCInstallSnapshot, &raft.InstallSnapshotRequest{RPCHeader: header("n2"), Term: 3, Size: int64(len(snapshot))})
	stream.Write(snapshot)
	write(raftRPCTimeoutNow, &raft.TimeoutNowRequest{RPCHeader: header("n2")})
	allowed := stream.Len()
	write(raftRPCRequestVote, &raft.RequestVoteRequest{RPCHeader: header("n1"), Term: 4})

	client, server := net.Pipe()
	go func() {
		_, _ = client.Write(stream.Bytes())
		_ = client.Close()
	}()
	checked := newRaftPeerCheckConn(server, "n2", testutil.Logger(t))
	got, err := io.ReadAll(checked)
	_ = server.Close() // unblocks the writer if anything is left unread
	if !errors.Is(err, errRaftPeerMismatch) {
		t.Fatalf("read ended with %v, want the mismatch", err)
	}
	if !bytes.Equal(got, stream.Bytes()[:allowed]) {
		t.Fatalf("passed %d bytes, want the first %d unchanged", len(got), allowed)
	}
}

var _ net.Conn = (*raftPeerCheckConn)(nil)
