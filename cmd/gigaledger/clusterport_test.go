package main

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The forwarding RPC's wire constants (cluster/rpc.go), spelled out here as a hostile peer
// would: a test of the wire must not share the code it tests.
const (
	wireKindPropose    byte = 1
	wireCodeOK         byte = 1
	wireCodeBadRequest byte = 11
)

// hostilePeer connects to node i's cluster port with a certificate of the cluster CA that
// names a node outside the cluster (a stolen or buggy node's key), selects the forwarding
// protocol, and returns the connection.
func (tc *testCluster) hostilePeer(i int) net.Conn {
	tc.t.Helper()
	ca := tlstest.CAIn(tc.t, filepath.Dir(tc.configs[i].TLSDir))
	identity := ca.Node("mallory")
	raw, err := net.DialTimeout("tcp", tc.configs[i].RaftAddr, 5*time.Second)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { raw.Close() })
	conn := tls.Client(raw, identity.ClientConfig(tc.configs[i].NodeID))
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := conn.Handshake(); err != nil {
		tc.t.Fatalf("TLS handshake with a certificate of the cluster CA: %v", err)
	}
	if _, err := conn.Write([]byte{cluster.ProtocolShardForward}); err != nil {
		tc.t.Fatal(err)
	}
	return conn
}

// forwardRequest writes one forwarding request frame and reads the answer to it.
func forwardRequest(t *testing.T, conn net.Conn, kind byte, shardID uint16, requestID uint64, payload []byte) (code byte, answer []byte) {
	t.Helper()
	frame := make([]byte, 4+15, 4+15+len(payload))
	binary.BigEndian.PutUint32(frame[0:4], uint32(15+len(payload)))
	frame[4] = kind
	binary.BigEndian.PutUint16(frame[5:7], shardID)
	binary.BigEndian.PutUint64(frame[7:15], requestID)
	binary.BigEndian.PutUint32(frame[15:19], 10_000)
	frame = append(frame, payload...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(conn)
	var length [4]byte
	if _, err := io.ReadFull(reader, length[:]); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	response := make([]byte, binary.BigEndian.Uint32(length[:]))
	if _, err := io.ReadFull(reader, response); err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if len(response) < 11 || binary.BigEndian.Uint64(response[0:8]) != requestID {
		t.Fatalf("answer %x does not answer request %d", response, requestID)
	}
	hint := int(binary.BigEndian.Uint16(response[9:11]))
	return response[8], response[11+hint:]
}

// TestForwardedCommandThatDoesNotDecodeIsRefused: apply panics on a command that does not
// decode (divergence), on every replica and on every restart. A peer's forwarded proposal is
// the one way bytes that this process did not encode reach a shard's log, so the leader must
// refuse one that does not decode before proposing it. Before the fix, a 21-byte frame to the
// cluster port stopped the node for good.
func TestForwardedCommandThatDoesNotDecodeIsRefused(t *testing.T) {
	tc := newTestCluster(t, 1)
	leader := tc.waitLeader(15 * time.Second)
	valid := fsm.EncodeCommand(&ledger.CreateProject{ProjectID: "fwd", Name: "forwarded"})
	for i, bad := range [][]byte{
		{1, 0xff},                                // unknown op
		{9, 1, 0},                                // unknown version
		valid[:len(valid)-1],                     // truncated
		append(valid[:len(valid):len(valid)], 0), // trailing byte
		{},                                       // empty
	} {
		conn := tc.hostilePeer(leader)
		code, answer := forwardRequest(t, conn, wireKindPropose, 0, uint64(i+1), bad)
		if code != wireCodeBadRequest {
			t.Fatalf("command %x: answer code %d %q, want %d (bad request)", bad, code, answer, wireCodeBadRequest)
		}
	}
	// The node still serves, and a command that decodes is still proposed.
	conn := tc.hostilePeer(leader)
	if code, answer := forwardRequest(t, conn, wireKindPropose, 0, 99, valid); code != wireCodeOK {
		t.Fatalf("valid command: answer code %d %q", code, answer)
	}
	tc.must(http.MethodGet, "/projects/fwd", nil, http.StatusOK)
	// And it restarts: nothing in its log stops apply.
	tc.stop(leader)
	tc.start(leader)
	tc.waitLeader(15 * time.Second)
	tc.must(http.MethodPost, "/projects", map[string]any{"id": "after", "name": "after restart"}, http.StatusCreated)
}
