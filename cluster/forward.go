package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gigaledger/gigaledger/shard"
)

// Propose applies command to shardID through its leader and returns its result: locally when
// this node leads, otherwise forwarded over the leader's port and decoded with the codec. It
// retries, a bounded number of times within ctx, only when the command provably was not
// applied (a not-leader answer, or a leader that could not be reached). Errors keep their
// identity: ErrNotHosted and ErrNoSuchShard (nothing tried), shard.ErrOutcomeUnknown (never
// retried), shard.ErrOverloaded, shard.ErrCommandTooLarge, shard.ErrClosed (this node is
// closing), ErrNoLeader, or ctx's error.
func (n *Node) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	hs, err := n.localShard(shardID)
	if errors.Is(err, ErrNotHosted) {
		return n.proposeRemote(ctx, shardID, command)
	}
	if err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	var result any
	err = n.withLeader(ctx, hs.shard, "propose", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			result, err = hs.shard.Propose(ctx, command)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, uint16(shardID), rpcKindPropose, command)
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

// proposeRemote proposes to a shard this node does not host: to its leader as gossip names it,
// else to its replicas in turn, following not-leader hints. It moves on to another node only
// when the request provably was not sent; once it may have been, the outcome is unknown and
// the caller must find out (a transaction retried with its referenceId), never a resend here.
func (n *Node) proposeRemote(ctx context.Context, shardID int, command []byte) (any, error) {
	var lastErr error
	for round := range forwardAttemptMaxCount {
		candidates := n.shardAddresses(shardID)
		for i := 0; i < len(candidates); i++ {
			address := candidates[i]
			resp, err := n.client.call(ctx, address, uint16(shardID), rpcKindPropose, command)
			if err != nil {
				if !errors.Is(err, errNotSent) {
					return nil, fmt.Errorf("forward to %s: %w", address, errors.Join(shard.ErrOutcomeUnknown, err))
				}
				lastErr = err
				continue
			}
			if resp.code == codeOK {
				result, err := n.cfg.Codec.DecodeResult(resp.payload)
				if err != nil {
					return nil, fmt.Errorf("decode result from %s: %w", address, errors.Join(shard.ErrOutcomeUnknown, err))
				}
				return result, nil
			}
			lastErr = remoteError(address, resp)
			if !errors.Is(lastErr, shard.ErrNotLeader) && !errors.Is(lastErr, ErrNoLeader) && !errors.Is(lastErr, ErrNotHosted) {
				return nil, lastErr // an answer: overloaded, too large, outcome unknown...
			}
			if resp.leaderHint != "" && !slices.Contains(candidates[i+1:], resp.leaderHint) {
				candidates = append(candidates[:i+1], append([]string{resp.leaderHint}, candidates[i+1:]...)...)
			}
		}
		if round+1 < forwardAttemptMaxCount {
			timer := time.NewTimer(leaderWaitMax / forwardAttemptMaxCount)
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, errors.Join(ctx.Err(), lastErr)
			case <-timer.C:
			}
		}
	}
	return nil, fmt.Errorf("propose to shard %d: %w", shardID, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
}

// shardAddresses lists the port addresses to try for shardID, most likely leader first: the
// local replica's leader, else the one gossip names, then every replica, each once.
func (n *Node) shardAddresses(shardID int) []string {
	var addresses []string
	leader := n.leaderRaftAddrFor(shardID)
	if hs := n.hosted(shardID); hs != nil {
		if _, local := hs.shard.Leader(); local != "" {
			leader = local
		}
	}
	if leader != "" {
		addresses = append(addresses, leader)
	}
	for _, id := range n.replicas(shardID) {
		if address := n.raftAddrOf(id); address != "" && !slices.Contains(addresses, address) {
			addresses = append(addresses, address)
		}
	}
	return addresses
}

// leaderRaftAddrFor is the port address of the node gossip says leads shardID, or "".
func (n *Node) leaderRaftAddrFor(shardID int) string {
	if n.gossip == nil {
		return ""
	}
	members := n.gossip.states()
	ids := make([]string, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if m := members[id]; m.state == NodeStateAlive && slices.Contains(m.meta.Led, shardID) {
			return m.meta.RaftAddr
		}
	}
	return ""
}

// LinearizableRead returns once the local state machine of shardID reflects every write
// acknowledged before it was called: on the leader, ReadIndex then WaitApplied; on a follower,
// the leader's read index over the forwarding RPC, then WaitApplied locally. The caller then
// reads StateMachine(shardID). ErrNotHosted when this node holds no replica.
func (n *Node) LinearizableRead(ctx context.Context, shardID int) error {
	hs, err := n.localShard(shardID)
	if err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	var readIndex uint64
	err = n.withLeader(ctx, hs.shard, "read index", func(leaderAddr string) (string, error) {
		if leaderAddr == "" {
			var err error
			readIndex, err = hs.shard.ReadIndex(ctx)
			return "", err
		}
		resp, err := n.client.call(ctx, leaderAddr, uint16(shardID), rpcKindReadIndex, nil)
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
	if err := hs.shard.WaitApplied(ctx, readIndex); err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	return nil
}

// withLeader runs attempt against the leader of s: with "" when this node leads, else with the
// leader's address. attempt returns a leader hint (may be empty) and its error. withLeader
// retries on not-leader and not-sent errors, waiting for a leader change between tries.
func (n *Node) withLeader(ctx context.Context, s *shard.Shard, what string, attempt func(leaderAddr string) (hint string, err error)) error {
	var lastErr error
	hint := ""
	for range forwardAttemptMaxCount {
		if n.closed.Load() {
			return fmt.Errorf("%s: %w", what, shard.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, lastErr))
		}
		leaderChanged := s.LeaderChanged()
		target := hint
		hint = ""
		if target == "" || target == n.Addr() {
			target = ""
			if !s.IsLeader() {
				_, target = s.Leader()
				if target == "" {
					if !awaitLeaderChange(ctx, leaderChanged) {
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
		if !awaitLeaderChange(ctx, leaderChanged) {
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
func awaitLeaderChange(ctx context.Context, changed <-chan struct{}) bool {
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

// answerQuery fences a linearizable read on a hosted shard and runs the configured query.
func (n *Node) answerQuery(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.cfg.Query == nil {
		return nil, errors.New("this node answers no queries")
	}
	if err := n.LinearizableRead(ctx, shardID); err != nil {
		return nil, err
	}
	return n.cfg.Query(ctx, shardID, query)
}

// Query runs a read-only query against shardID, linearizably: locally when this node hosts the
// shard, else on a node that does (the leader gossip names, then the replicas). Reads have no
// effect, so any failure to reach a node moves on to the next.
func (n *Node) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.hosted(shardID) != nil {
		return n.answerQuery(ctx, shardID, query)
	}
	var lastErr error
	for _, address := range n.shardAddresses(shardID) {
		resp, err := n.client.call(ctx, address, uint16(shardID), rpcKindQuery, query)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.code == codeOK {
			return resp.payload, nil
		}
		lastErr = remoteError(address, resp)
	}
	return nil, fmt.Errorf("query shard %d: %w", shardID, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
}
