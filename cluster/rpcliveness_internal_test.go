package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// shortLiveness makes the RPC liveness check of a test's client fast.
var shortLiveness = rpcLiveness{pingAfter: 40 * time.Millisecond, silenceMax: 300 * time.Millisecond}

// newTestRPCClient is a plain-TCP client with shortLiveness.
func newTestRPCClient(t *testing.T) *rpcClient {
	client := newRPCClient(&peerDialer{}, func(string) string { return "" }, testutil.Logger(t))
	client.liveness = shortLiveness
	t.Cleanup(client.close)
	return client
}

// serveRPC answers the forwarding connections accepted on listener with handle, as a node's
// port does once the protocol byte is read (the dialer's header byte is skipped here).
func serveRPC(t *testing.T, listener net.Listener, handle rpcHandler) {
	server := newRPCServer(listener, handle, testutil.Logger(t))
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			if _, err := conn.Read(make([]byte, 1)); err != nil {
				_ = conn.Close()
				continue
			}
			server.mu.Lock()
			server.conns[conn] = struct{}{}
			server.wg.Add(1)
			server.mu.Unlock()
			go server.serveConn(conn)
		}
	}()
	t.Cleanup(server.close)
}

// A request waiting on a connection whose peer accepted it and then went silent (a stopped
// process, a network that drops its packets) fails once nothing has arrived for
// its silence limit, not at its own deadline; the next request dials a new connection.
func TestRPCSilentConnectionFailsItsWaitingRequests(t *testing.T) {
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	silent := make(chan net.Conn, 1)
	go func() {
		conn, err := listener.Accept()
		if err == nil {
			silent <- conn // held open, never read, never answered
		}
	}()
	client := newTestRPCClient(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = client.call(ctx, listener.Addr().String(), 0, rpcKindServers, nil)
	if !errors.Is(err, errSilent) || ctx.Err() != nil {
		t.Fatalf("a request to a silent peer ended with %v (its deadline: %v), want %v", err, ctx.Err(), errSilent)
	}
	if errors.Is(err, errNotSent) {
		t.Fatalf("a request that was written is reported as not sent: %v", err)
	}
	defer (<-silent).Close()

	// The peer comes back: the next request gets a new connection and its answer.
	serveRPC(t, listener, func(ctx context.Context, req rpcRequest) rpcResponse {
		return rpcResponse{code: codeOK, payload: []byte("answer")}
	})
	testutil.Eventually(t, "a request after the silent connection answered", func() bool {
		resp, err := client.call(ctx, listener.Addr().String(), 0, rpcKindServers, nil)
		return err == nil && string(resp.payload) == "answer"
	})
}

// A live peer that takes longer than the silence limit to answer keeps its connection: it answers
// the pings at once, so a slow request (a membership change riding out an election, a
// proposal under load) is never mistaken for a dead connection.
func TestRPCSlowAnswerIsNotSilence(t *testing.T) {
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	serveRPC(t, listener, func(ctx context.Context, req rpcRequest) rpcResponse {
		select {
		case <-time.After(4 * shortLiveness.silenceMax): // the slowness under test
			return rpcResponse{code: codeOK, payload: []byte("slow answer")}
		case <-ctx.Done():
			return rpcResponse{code: codeDeadlineExceeded}
		}
	})
	client := newTestRPCClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.call(ctx, listener.Addr().String(), 0, rpcKindServers, nil)
	if err != nil || string(resp.payload) != "slow answer" {
		t.Fatalf("a slow request on a live connection ended with %q, %v", resp.payload, err)
	}
}
