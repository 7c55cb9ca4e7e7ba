package cluster

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

// fakePeer is a node's forwarding port that answers each request with answer; a nil answer
// drops the connection after reading the request (it may have been received and applied).
type fakePeer struct {
	addr     string
	requests atomic.Int32
}

func startFakePeer(t *testing.T, answer func(req rpcRequest) *rpcResponse) *fakePeer {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	peer := &fakePeer{addr: listener.Addr().String()}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go peer.serve(conn, answer)
		}
	}()
	return peer
}

func (p *fakePeer) serve(conn net.Conn, answer func(req rpcRequest) *rpcResponse) {
	defer conn.Close()
	reader, writer := bufio.NewReader(conn), bufio.NewWriter(conn)
	if protocol, err := reader.ReadByte(); err != nil || protocol != ProtocolShardForward {
		return
	}
	for {
		frame, err := readFrame(reader)
		if err != nil {
			return
		}
		req, err := decodeRequest(frame)
		if err != nil {
			return
		}
		p.requests.Add(1)
		resp := answer(req)
		if resp == nil {
			return
		}
		resp.id = req.id
		if writeFrame(writer, encodeResponseHeader(*resp), resp.payload) != nil {
			return
		}
	}
}

// testCaller is a node that hosts no replica of shard 0, whose replicas are peers (in order).
func testCaller(t *testing.T, peers ...*fakePeer) *Node {
	file := &clusterFile{ShardCount: 1}
	var ids []string
	for i, peer := range peers {
		id := string(rune('a' + i))
		ids = append(ids, id)
		file.Nodes = append(file.Nodes, NodeAddress{ID: id, RaftAddr: peer.addr})
	}
	n := &Node{cfg: Config{NodeID: "caller", RaftAddr: "127.0.0.1:1"}, logger: testutil.Logger(t),
		shards: map[int]*hostedShard{}, replicaSets: map[int][]string{0: ids}, closing: make(chan struct{})}
	n.file.Store(file)
	n.client = newRPCClient(&peerDialer{}, func(string) string { return "" }, n.logger)
	t.Cleanup(n.client.close)
	return n
}

var quickPatience = callPatience{roundMaxCount: 3, pause: time.Millisecond}

// A proposal whose connection drops after it was sent is an unknown outcome at once: never
// sent to the next replica. A query after the same failure moves on and gets its answer.
func TestLeaderCallResendsOnlyWhatIsResendable(t *testing.T) {
	dropping := startFakePeer(t, func(rpcRequest) *rpcResponse { return nil })
	answering := startFakePeer(t, func(rpcRequest) *rpcResponse { return &rpcResponse{code: codeOK, payload: []byte("ok")} })
	n := testCaller(t, dropping, answering)
	ctx := testutil.Context(t, testutil.WaitMax)

	err := n.callLeader(ctx, leaderCall{what: "propose", kind: rpcKindPropose, payload: []byte("x"), patience: quickPatience})
	if !errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("proposal after a dropped connection: %v, want ErrOutcomeUnknown", err)
	}
	if got := answering.requests.Load(); got != 0 {
		t.Fatalf("the proposal was sent again, to another replica (%d times)", got)
	}

	var answer []byte
	err = n.callLeader(ctx, leaderCall{what: "query", kind: rpcKindQuery, resendable: true, patience: quickPatience,
		answer: func(payload []byte) error { answer = payload; return nil }})
	if err != nil || string(answer) != "ok" {
		t.Fatalf("query: %q, %v", answer, err)
	}
}

// Two replicas that name each other as leader (stale views) are each asked once per round,
// then the call ends with ErrNoLeader; a proposal refused as not-leader is safe to send on.
func TestLeaderCallFollowsHintsOncePerRound(t *testing.T) {
	var a, b *fakePeer
	notLeader := func(hint func() string) func(rpcRequest) *rpcResponse {
		return func(rpcRequest) *rpcResponse {
			return &rpcResponse{code: codeNotLeader, leaderHint: hint(), payload: []byte("not the leader")}
		}
	}
	a = startFakePeer(t, notLeader(func() string { return b.addr }))
	b = startFakePeer(t, notLeader(func() string { return a.addr }))
	n := testCaller(t, a, b)
	err := n.callLeader(testutil.Context(t, testutil.WaitMax), leaderCall{what: "propose", kind: rpcKindPropose, patience: quickPatience})
	if !errors.Is(err, ErrNoLeader) || errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("got %v, want ErrNoLeader (and not an unknown outcome)", err)
	}
	if a.requests.Load() != int32(quickPatience.roundMaxCount) || b.requests.Load() != int32(quickPatience.roundMaxCount) {
		t.Fatalf("asked a %d and b %d times over %d rounds", a.requests.Load(), b.requests.Load(), quickPatience.roundMaxCount)
	}
}

// A refusal that is an answer (overloaded) ends a proposal; a resendable call tries the next
// replica, and a bad request ends any call.
func TestLeaderCallStopsAtAnswers(t *testing.T) {
	overloaded := startFakePeer(t, func(rpcRequest) *rpcResponse { return &rpcResponse{code: codeOverloaded} })
	answering := startFakePeer(t, func(rpcRequest) *rpcResponse { return &rpcResponse{code: codeOK} })
	n := testCaller(t, overloaded, answering)
	ctx := testutil.Context(t, testutil.WaitMax)
	if err := n.callLeader(ctx, leaderCall{what: "propose", kind: rpcKindPropose, patience: quickPatience}); !errors.Is(err, shard.ErrOverloaded) {
		t.Fatalf("proposal to an overloaded leader: %v", err)
	}
	if err := n.callLeader(ctx, leaderCall{what: "servers", kind: rpcKindServers, resendable: true, patience: quickPatience}); err != nil {
		t.Fatalf("resendable call past an overloaded replica: %v", err)
	}
	bad := startFakePeer(t, func(rpcRequest) *rpcResponse { return &rpcResponse{code: codeBadRequest} })
	n = testCaller(t, bad, answering)
	before := answering.requests.Load()
	if err := n.callLeader(ctx, leaderCall{what: "query", kind: rpcKindQuery, resendable: true, patience: quickPatience}); !errors.Is(err, errBadRequest) {
		t.Fatalf("query refused as malformed: %v", err)
	}
	if answering.requests.Load() != before {
		t.Fatal("a malformed query was sent on to another replica")
	}
}

// Unknown shards are refused before anything is sent.
func TestLeaderCallRefusesUnknownShards(t *testing.T) {
	n := testCaller(t)
	if err := n.callLeader(context.Background(), leaderCall{what: "propose", shardID: 1, patience: quickPatience}); !errors.Is(err, ErrNoSuchShard) {
		t.Fatalf("got %v", err)
	}
}
