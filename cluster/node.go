// Package cluster owns how nodes reach each other: one TCP port per node shared by the raft
// transport and a forwarding RPC (a mux on the first byte of each connection), and the one
// layer that does "try locally, else forward to the leader" for proposals and linearizable
// reads, so any node can serve any request.
//
// It never interprets commands or results (the shard's StateMachine and ResultCodec do), never
// talks HTTP, and never retries a proposal whose outcome is unknown: that would apply it twice.
package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/gigaledger/gigaledger/shard"
)

// ErrNoLeader means no leader is known (an election is running or a quorum is missing); the
// request was not applied. HTTP handlers answer 503 with Retry-After.
var ErrNoLeader = errors.New("cluster: no leader")

const (
	// forwardAttemptMaxCount bounds how many times one request is retried on not-leader
	// answers and connection failures that provably sent nothing.
	forwardAttemptMaxCount = 6
	// leaderWaitMax bounds how long a request waits for a leader to appear or change before
	// answering ErrNoLeader.
	leaderWaitMax = 3 * time.Second
	// raftTransportPoolCount is how many idle outbound raft connections are kept per peer.
	raftTransportPoolCount = 3
	// raftTransportTimeout bounds raft RPC I/O on the network transport.
	raftTransportTimeout = 10 * time.Second
)

// Config configures a Node.
type Config struct {
	// Shard configures the local replica. Shard.RaftAddr is the node's port (the address peers
	// dial for raft and forwarding).
	Shard shard.Config
	// Listener, when set, is used instead of listening on Shard.RaftAddr (tests listen on
	// 127.0.0.1:0 first to learn the port). The Node owns it.
	Listener net.Listener
	// Codec encodes results on the leader and decodes them on the forwarding node.
	Codec shard.ResultCodec
}

// Node is one process's member of a shard: the replica plus the port mux and forwarding.
type Node struct {
	cfg    Config
	logger *slog.Logger
	mux    *Mux
	shard  *shard.Shard
	client *rpcClient
	server *rpcServer

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	serveDone chan struct{}
}

// Open listens (or takes cfg.Listener), starts the mux, the raft transport on it, the shard,
// and the forwarding server.
func Open(cfg Config, sm shard.StateMachine, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Codec == nil {
		return nil, errors.New("cluster open: nil result codec")
	}
	if err := cfg.Shard.Validate(); err != nil {
		return nil, fmt.Errorf("cluster open: %w", err)
	}
	logger = logger.With("node", cfg.Shard.NodeID)
	listener := cfg.Listener
	if listener == nil {
		var err error
		listener, err = net.Listen("tcp", cfg.Shard.RaftAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster open: listen on %s: %w", cfg.Shard.RaftAddr, err)
		}
	}
	advertise, err := net.ResolveTCPAddr("tcp", cfg.Shard.RaftAddr)
	if err != nil {
		_ = listener.Close()
		return nil, fmt.Errorf("cluster open: resolve %s: %w", cfg.Shard.RaftAddr, err)
	}

	n := &Node{cfg: cfg, logger: logger, mux: NewMux(listener, logger), client: newRPCClient(logger), serveDone: make(chan struct{})}
	stream := &raftStreamLayer{Listener: n.mux.Listen(ProtocolRaft), advertise: advertise}
	forwardListener := n.mux.Listen(ProtocolForward)
	go func() {
		defer close(n.serveDone)
		if err := n.mux.Serve(); err != nil {
			logger.Error("mux stopped", "error", err)
		}
	}()
	transport := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: raftTransportPoolCount,
		Timeout: raftTransportTimeout,
		Logger:  shard.NewRaftLogger(logger, "raft-net"),
	})
	n.shard, err = shard.Open(cfg.Shard, sm, transport, logger)
	if err != nil {
		_ = transport.Close()
		_ = n.mux.Close()
		<-n.serveDone
		return nil, fmt.Errorf("cluster open: %w", err)
	}
	n.server = newRPCServer(forwardListener, n.handle, logger)
	go n.server.serve()
	return n, nil
}

// Shard is the local replica (for Stats, WaitApplied, tests).
func (n *Node) Shard() *shard.Shard {
	return n.shard
}

// Addr is the node's port address as peers dial it.
func (n *Node) Addr() string {
	return n.cfg.Shard.RaftAddr
}

// Propose applies command through the leader and returns its result: locally when this node
// leads, otherwise forwarded over the leader's port and decoded with the codec. It retries, a
// bounded number of times within ctx, only when the command provably was not applied (a
// not-leader answer, or a leader that could not be reached). Errors keep their identity:
// shard.ErrOutcomeUnknown (never retried), shard.ErrOverloaded, shard.ErrCommandTooLarge,
// shard.ErrClosed (this node is closing), ErrNoLeader, or ctx's error.
func (n *Node) Propose(ctx context.Context, command []byte) (any, error) {
	var result any
	err := n.withLeader(ctx, "propose", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			result, err = n.shard.Propose(ctx, command)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, rpcKindPropose, command)
		if err != nil {
			if errors.Is(err, errNotSent) {
				return "", err
			}
			// The leader may have received it: never retry, never claim failure.
			return "", fmt.Errorf("forward to %s: %w", leaderAddr, errors.Join(shard.ErrOutcomeUnknown, err))
		}
		if resp.code != codeOK {
			return resp.leaderHint, remoteError(leaderAddr, resp)
		}
		result, err = n.cfg.Codec.DecodeResult(resp.payload)
		if err != nil {
			return "", fmt.Errorf("decode result from %s: %w", leaderAddr, errors.Join(shard.ErrOutcomeUnknown, err))
		}
		return "", nil
	})
	return result, err
}

// LinearizableRead returns once local state reflects every write acknowledged before it was
// called: on the leader, ReadIndex then WaitApplied; on a follower, the leader's read index
// over the forwarding RPC, then WaitApplied locally. The caller then reads local state.
func (n *Node) LinearizableRead(ctx context.Context) error {
	var readIndex uint64
	err := n.withLeader(ctx, "read index", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			readIndex, err = n.shard.ReadIndex(ctx)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, rpcKindReadIndex, nil)
		if err != nil {
			// Reads have no effect: any transport failure may be retried.
			return "", fmt.Errorf("forward to %s: %w", leaderAddr, errors.Join(errNotSent, err))
		}
		if resp.code != codeOK {
			return resp.leaderHint, remoteError(leaderAddr, resp)
		}
		if len(resp.payload) != 8 {
			return "", fmt.Errorf("read index from %s: %d-byte payload", leaderAddr, len(resp.payload))
		}
		readIndex = binary.BigEndian.Uint64(resp.payload)
		return "", nil
	})
	if err != nil {
		return err
	}
	if err := n.shard.WaitApplied(ctx, readIndex); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	return nil
}

// withLeader runs attempt against the leader: with "" when this node leads, else with the
// leader's address. attempt returns a leader hint (may be empty) and its error. withLeader
// retries on not-leader and not-sent errors, waiting for a leader change between tries.
func (n *Node) withLeader(ctx context.Context, what string, attempt func(leaderAddr string) (hint string, err error)) error {
	var lastErr error
	hint := ""
	for range forwardAttemptMaxCount {
		if n.closed.Load() {
			return fmt.Errorf("%s: %w", what, shard.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, lastErr))
		}
		leaderChanged := n.shard.LeaderChanged()
		target := hint
		hint = ""
		if target == "" || target == n.Addr() {
			target = ""
			if !n.shard.IsLeader() {
				_, target = n.shard.Leader()
				if target == "" {
					if !n.awaitLeaderChange(ctx, leaderChanged) {
						return fmt.Errorf("%s: %w", what, ErrNoLeader)
					}
					continue
				}
			}
		}
		if target == n.Addr() {
			target = ""
		}
		newHint, err := attempt(target)
		if err == nil {
			return nil
		}
		retryable := errors.Is(err, errNotSent) ||
			(errors.Is(err, shard.ErrNotLeader) && !errors.Is(err, shard.ErrOutcomeUnknown) && !(target == "" && errors.Is(err, shard.ErrClosed)))
		if !retryable {
			return fmt.Errorf("%s: %w", what, err)
		}
		lastErr = err
		if newHint != "" && newHint != target {
			hint = newHint
			continue
		}
		// Our view of the leader is stale; wait for it to change (bounded) and try again.
		if !n.awaitLeaderChange(ctx, leaderChanged) {
			break
		}
	}
	if lastErr != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
	}
	return fmt.Errorf("%s: %w", what, ErrNoLeader)
}

// cleanNotSent hides errNotSent (an internal marker) from callers while keeping the cause.
func cleanNotSent(err error) error {
	if errors.Is(err, errNotSent) {
		return errors.New(err.Error())
	}
	return err
}

// awaitLeaderChange waits up to leaderWaitMax for changed; false if it did not come.
func (n *Node) awaitLeaderChange(ctx context.Context, changed <-chan struct{}) bool {
	timer := time.NewTimer(leaderWaitMax)
	defer timer.Stop()
	select {
	case <-changed:
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

func remoteError(leaderAddr string, resp rpcResponse) error {
	return fmt.Errorf("leader %s: %s: %w", leaderAddr, resp.payload, errorForCode(resp.code))
}

// handle answers a forwarded request. It never forwards again (no loops): a node that is not
// the leader answers codeNotLeader with its leader hint.
func (n *Node) handle(ctx context.Context, req rpcRequest) rpcResponse {
	var (
		payload []byte
		err     error
	)
	switch req.kind {
	case rpcKindPropose:
		var result any
		result, err = n.shard.Propose(ctx, req.payload)
		if err == nil {
			payload, err = n.cfg.Codec.EncodeResult(result)
			if err != nil {
				// Applied, but the result cannot travel: the caller must not assume failure.
				err = fmt.Errorf("encode result: %w", errors.Join(shard.ErrOutcomeUnknown, err))
			}
		}
	case rpcKindReadIndex:
		var readIndex uint64
		readIndex, err = n.shard.ReadIndex(ctx)
		if err == nil {
			payload = binary.BigEndian.AppendUint64(nil, readIndex)
		}
	default:
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "unknown request kind %d", req.kind)}
	}
	if err != nil {
		_, leaderAddr := n.shard.Leader()
		return rpcResponse{code: codeForError(err), leaderHint: leaderAddr, payload: []byte(err.Error())}
	}
	return rpcResponse{code: codeOK, payload: payload}
}

// Close stops the node: the shard first (queued proposals fail, in-flight ones resolve), then
// the forwarding server (after answering what it is handling), outbound connections, and the
// port. Safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		var errs []error
		if err := n.shard.Close(); err != nil {
			errs = append(errs, err)
		}
		n.server.close()
		n.client.close()
		if err := n.mux.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close port: %w", err))
		}
		<-n.serveDone
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
