package cluster_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/cluster/tlsconfig/tlstest"
	"github.com/gigaledger/gigaledger/shard"
)

// Wire values an attacker would copy from cluster/rpc.go and hashicorp/raft.
const (
	attackKindPropose      byte = 1
	attackKindRemoveServer byte = 4
	attackRaftRequestVote  byte = 1
)

// forwardFrame is a forwarding request frame: length, kind, shard, request ID, timeout, payload.
func forwardFrame(kind byte, requestID uint64, payload []byte) []byte {
	body := []byte{kind, 0, 0}
	body = binary.BigEndian.AppendUint64(body, requestID)
	body = binary.BigEndian.AppendUint32(body, 5000)
	body = append(body, payload...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// attack writes a propose and a remove-server request on conn, as the 40-line client
// did, and returns what the node answered before closing (nil when nothing).
func attack(t *testing.T, conn net.Conn, victim string) []byte {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var request []byte
	request = append(request, cluster.ProtocolShardForward)
	request = append(request, forwardFrame(attackKindPropose, 1, []byte("stolen-money"))...)
	request = append(request, forwardFrame(attackKindRemoveServer, 2, []byte(victim))...)
	_, _ = conn.Write(request) // may fail once the node has closed the connection
	answer, err := io.ReadAll(conn)
	if err != nil && !isConnEnd(err) {
		t.Fatalf("reading the answer: %v (it must be closed, not left hanging)", err)
	}
	return answer
}

func isConnEnd(err error) bool {
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer") ||
		strings.Contains(err.Error(), "bad certificate") || strings.Contains(err.Error(), "certificate required") ||
		strings.Contains(err.Error(), "unknown certificate authority") || (errors.As(err, &netErr) && !netErr.Timeout())
}

// assertUnchanged checks that no attack reached the state machines or the configuration: the
// shard still has every voter, no replica applied the stolen command, and the cluster still
// commits.
func assertUnchanged(t *testing.T, c *testCluster) {
	t.Helper()
	leader := c.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	if _, err := leader.node.Propose(ctx, []byte("after-attack")); err != nil {
		t.Fatalf("the cluster no longer commits: %v", err)
	}
	servers, err := leader.node.Shard().Servers()
	if err != nil || len(servers) != len(c.nodes) {
		t.Fatalf("voters after the attack: %v, %v", servers, err)
	}
	for _, n := range c.nodes {
		testutil.Eventually(t, n.id+" applied the marker", func() bool { return slices.Contains(n.sm.Commands(), "after-attack") })
		if slices.Contains(n.sm.Commands(), "stolen-money") {
			t.Fatalf("%s applied the attacker's command: %v", n.id, n.sm.Commands())
		}
	}
}

// TestTLSPortServesNothingToPlainTCP replays the attack on a TLS node: a plain TCP
// client sends a real propose frame and a remove-server frame to the leader's port. It gets no
// byte back and nothing changes.
func TestTLSPortServesNothingToPlainTCP(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	victim := c.nodes[0].id
	if victim == leader.id {
		victim = c.nodes[1].id
	}
	conn, err := net.Dial("tcp", leader.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if answer := attack(t, conn, victim); len(answer) > 0 {
		t.Fatalf("a plain TCP client was answered %q", answer)
	}
	assertUnchanged(t, c)
}

// TestPlainPortAppliesTheAttack is the control of the test above: the same client against a
// plain-TCP port (what --insecure-cluster runs) gets its stolen command applied, so the frames
// are the real thing and TLS is what stops them.
func TestPlainPortAppliesTheAttack(t *testing.T) {
	c := newPlainTestCluster(t, 3)
	leader := c.leader()
	conn, err := net.Dial("tcp", leader.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	request := append([]byte{cluster.ProtocolShardForward}, forwardFrame(attackKindPropose, 1, []byte("stolen-money"))...)
	if _, err := conn.Write(request); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the stolen command applied on the plain port", func() bool {
		return slices.Contains(leader.sm.Commands(), "stolen-money")
	})
}

// TestTLSPortRefusesAnotherCA: a client with a certificate from another CA, even one that names
// a member's node ID, and that skips checking the server, is refused after the handshake and
// served nothing.
func TestTLSPortRefusesAnotherCA(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	foreign := tlstest.NewCA(t).Node(c.nodes[0].id)
	conn, err := tls.Dial("tcp", leader.addr, &tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{foreign.Certificate}, InsecureSkipVerify: true})
	if err != nil {
		// Refused during the handshake: served nothing, which is what this test wants.
		assertUnchanged(t, c)
		return
	}
	defer conn.Close()
	if answer := attack(t, conn, c.nodes[1].id); len(answer) > 0 {
		t.Fatalf("a client of another CA was answered %q", answer)
	}
	assertUnchanged(t, c)
}

// TestTLSPortRefusesNoClientCertificate: TLS without a client certificate is refused.
func TestTLSPortRefusesNoClientCertificate(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	conn, err := tls.Dial("tcp", leader.addr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	if err != nil {
		assertUnchanged(t, c)
		return
	}
	defer conn.Close()
	if answer := attack(t, conn, c.nodes[1].id); len(answer) > 0 {
		t.Fatalf("a client without a certificate was answered %q", answer)
	}
	assertUnchanged(t, c)
}

// requestVoteFrame is a raft RequestVote as raft's network transport sends it on the port:
// protocol byte, shard ID, RPC type, msgpack request.
func requestVoteFrame(t *testing.T, claimedID, claimedAddr string, term uint64) []byte {
	t.Helper()
	var body bytes.Buffer
	body.Write([]byte{cluster.ProtocolShardRaft, 0, 0, attackRaftRequestVote})
	request := raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(claimedID), Addr: []byte(claimedAddr)},
		Term:      term, LastLogIndex: 1 << 40, LastLogTerm: term,
	}
	if err := codec.NewEncoder(&body, &codec.MsgpackHandle{}).Encode(&request); err != nil {
		t.Fatal(err)
	}
	return body.Bytes()
}

// TestTLSRaftRequestMustNameItsCertificate: a member's certificate lets it speak for itself
// only. A node with a valid cluster certificate for node9 that sends a RequestVote claiming to
// be node2 gets no answer and moves no term; the same request in its own name is answered
// (raft turns it down: node9 is no voter), which shows the frame itself is well formed.
func TestTLSRaftRequestMustNameItsCertificate(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	var target *testNode
	for _, n := range c.nodes {
		if n != leader {
			target = n
			break
		}
	}
	impostor := c.ca.Node("node9")
	dial := func() *tls.Conn {
		conn, err := tls.Dial("tcp", target.addr, impostor.ClientConfig(target.id))
		if err != nil {
			t.Fatalf("dial %s with a valid certificate: %v", target.id, err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		return conn
	}
	termBefore := target.node.Shard().Stats().Term

	conn := dial()
	defer conn.Close()
	if _, err := conn.Write(requestVoteFrame(t, leader.id, leader.addr, termBefore+1000)); err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(conn)
	if err != nil && !isConnEnd(err) {
		t.Fatalf("read: %v", err)
	}
	if len(answer) > 0 {
		t.Fatalf("a request claiming %s over node9's certificate was answered (%d bytes)", leader.id, len(answer))
	}

	honest := dial()
	defer honest.Close()
	if _, err := honest.Write(requestVoteFrame(t, "node9", honest.LocalAddr().String(), termBefore+1000)); err != nil {
		t.Fatal(err)
	}
	// raft answers an error string, then the response.
	decoder := codec.NewDecoder(bufio.NewReader(honest), &codec.MsgpackHandle{})
	var rpcError string
	var response raft.RequestVoteResponse
	if err := errors.Join(decoder.Decode(&rpcError), decoder.Decode(&response)); err != nil {
		t.Fatalf("a request in node9's own name got no answer: %v", err)
	}
	if response.Granted {
		t.Fatalf("node9, no voter, was granted a vote")
	}
	assertUnchanged(t, c)
}

// TestTLSCertificateMustNameTheNode: a node does not start with another node's certificate.
func TestTLSCertificateMustNameTheNode(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	n := c.nodes[0]
	c.kill(n)
	_, err := cluster.Open(cluster.Config{NodeID: n.id, RaftAddr: n.addr, DataDir: n.dataDir,
		Codec: nil, TLS: c.ca.Node("node9")}, testutil.Logger(t))
	if err == nil || !strings.Contains(err.Error(), `names node "node9"`) {
		t.Fatalf("opening %s with node9's certificate: %v", n.id, err)
	}
}

// TestTLSGossipIsEncrypted: with TLS, a memberlist without the cluster's gossip key cannot
// join (memberlist refuses unencrypted messages and streams); one with the key derived from the
// same CA and gossip secret can, which shows the refusal is the encryption's doing.
func TestTLSGossipIsEncrypted(t *testing.T) {
	c := &multiCluster{tb: t, nodes: newMultiNodes(t, 1)}
	t.Cleanup(c.closeAll)
	n := c.nodes[0]
	cfg := c.config(n)
	cfg.GossipAddr, cfg.BootstrapExpect, cfg.ShardCount, cfg.ReplicaCount = n.gossipAddr, 1, 1, 1
	c.start(n, cfg)

	join := func(name string, key []byte) (*memberlist.Memberlist, error) {
		addr := testutil.FreeAddr(t)
		host, port, _ := net.SplitHostPort(addr)
		mlConfig := memberlist.DefaultLANConfig()
		shortGossip(mlConfig)
		mlConfig.Name, mlConfig.BindAddr, mlConfig.AdvertiseAddr = name, host, host
		mlConfig.BindPort, _ = strconv.Atoi(port)
		mlConfig.AdvertisePort = mlConfig.BindPort
		mlConfig.SecretKey = key
		mlConfig.LogOutput = io.Discard
		list, err := memberlist.Create(mlConfig)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = list.Shutdown() })
		_, err = list.Join([]string{n.gossipAddr})
		return list, err
	}
	stranger, err := join("stranger", nil)
	if err == nil || stranger.NumMembers() != 1 {
		t.Fatalf("a memberlist without the key joined: %v, %d members", err, stranger.NumMembers())
	}
	wrongKey := bytes.Repeat([]byte{7}, 32)
	if intruder, err := join("intruder", wrongKey); err == nil || intruder.NumMembers() != 1 {
		t.Fatalf("a memberlist with another key joined: %v", err)
	}
	member, err := join("keyholder", c.tlsCA().Node(n.id).GossipKey())
	if err != nil || member.NumMembers() != 2 {
		t.Fatalf("a memberlist with the cluster's key could not join: %v, %d members", err, member.NumMembers())
	}
}

// TestTLSSnapshotInstall: a follower that missed more than the leader's trailing log catches up
// through InstallSnapshot over the TLS port, whose snapshot data passes the raft request check
// unparsed after the request that announces its size.
func TestTLSSnapshotInstall(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *shard.Config) { cfg.TrailingLogsCount = 1 })
	leader := c.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	var lagging *testNode
	for _, n := range c.nodes {
		if n != leader {
			lagging = n
			break
		}
	}
	if _, err := leader.node.Propose(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the follower has the first write", func() bool { return slices.Contains(lagging.sm.Commands(), "before") })
	c.kill(lagging)
	for i := range 50 {
		if _, err := leader.node.Propose(ctx, fmt.Appendf(nil, "while-away-%d", i)); err != nil {
			t.Fatalf("propose while the follower is down: %v", err)
		}
	}
	if err := leader.node.Shard().Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	restoresBefore := lagging.sm.RestoreCount()
	c.restart(lagging)
	if _, err := leader.node.Propose(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	want := leader.sm.Commands()
	testutil.Eventually(t, "the follower caught up", func() bool { return slices.Equal(lagging.sm.Commands(), want) })
	if lagging.sm.RestoreCount() <= restoresBefore {
		t.Fatalf("the follower caught up without InstallSnapshot (%d restores)", lagging.sm.RestoreCount())
	}
}
