package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/shard"
)

// handle answers a forwarded request. It never forwards again (no loops): a node that is not
// the shard's leader answers codeNotLeader with its leader hint.
func (n *Node) handle(ctx context.Context, req rpcRequest) rpcResponse {
	shardID := int(req.shardID)
	if req.kind == rpcKindOpenReplica || req.kind == rpcKindRetireReplica {
		// A node still opening its replicas from disk would answer "not hosted" for one it is
		// about to open: a retirement would then be confirmed and the replica reopened after,
		// outside the configuration, for good (seen in the fault suite: a move's source
		// killed and restarted while the move retired it).
		if err := n.awaitStarted(ctx); err != nil {
			return rpcResponse{code: codeForError(err), payload: fmt.Appendf(nil, "node %s starting: %v", n.cfg.NodeID, err)}
		}
	}
	if req.kind == rpcKindOpenReplica {
		return n.handleOpenReplica(shardID)
	}
	if req.kind == rpcKindRetireReplica {
		return n.handleRetireReplica(ctx, shardID)
	}
	if req.kind == rpcKindNodeInfo {
		payload, err := json.Marshal(n.localInfo())
		if err != nil {
			return rpcResponse{code: codeInternal, payload: []byte(err.Error())}
		}
		return rpcResponse{code: codeOK, payload: payload}
	}
	hs := n.hosted(shardID)
	if hs == nil {
		return rpcResponse{code: codeNotHosted, payload: fmt.Appendf(nil, "shard %d not hosted on %s", shardID, n.cfg.NodeID)}
	}
	var (
		payload []byte
		err     error
	)
	switch req.kind {
	case rpcKindPropose:
		if n.cfg.CheckCommand != nil {
			if checkErr := n.cfg.CheckCommand(req.payload); checkErr != nil {
				n.logger.Warn("refused a forwarded command that does not decode", "shard", shardID, "error", checkErr)
				return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "propose: %v", checkErr)}
			}
		}
		var result any
		result, err = hs.shard.Propose(ctx, req.payload)
		if err == nil {
			payload, err = n.cfg.Codec.EncodeResult(result)
			if err != nil {
				// Applied, but the result cannot travel: the caller must not assume failure.
				err = fmt.Errorf("encode result: %w", errors.Join(shard.ErrOutcomeUnknown, err))
			}
		}
	case rpcKindReadIndex:
		withTerm := len(req.payload) == 1 && req.payload[0] == readPointPayloadWithTerm[0]
		if len(req.payload) > 0 && !withTerm {
			return rpcResponse{code: codeBadRequest, payload: []byte("read index: want an empty payload or {1}")}
		}
		var point shard.ReadPoint
		if point, err = hs.shard.ReadPointForFollower(ctx); err == nil {
			payload = encodeReadPoint(point, withTerm)
		}
	case rpcKindAddVoter:
		id, addr, ok := cutZero(req.payload)
		if !ok {
			return rpcResponse{code: codeBadRequest, payload: []byte("add voter: want id 0x00 addr")}
		}
		err = n.leaderOnly(hs, func() error { return hs.shard.AddVoter(ctx, id, addr) })
	case rpcKindAddNonvoter:
		id, addr, ok := cutZero(req.payload)
		if !ok {
			return rpcResponse{code: codeBadRequest, payload: []byte("add non-voter: want id 0x00 addr")}
		}
		err = n.leaderOnly(hs, func() error { return hs.shard.AddNonvoter(ctx, id, addr) })
	case rpcKindReplicaStats:
		if len(req.payload) > 1 || (len(req.payload) == 1 && req.payload[0] != 1) {
			return rpcResponse{code: codeBadRequest, payload: []byte("replica stats: want an empty payload or {1}")}
		}
		if len(req.payload) == 1 && !hs.shard.IsLeader() {
			err = fmt.Errorf("replica stats on %s: %w", n.cfg.NodeID, shard.ErrNotLeader)
			break
		}
		payload, err = json.Marshal(hs.shard.Stats())
	case rpcKindTransferLeadership:
		// The payload names the leader to step down, and optionally (from 0x00 to 0x00
		// toAddr, the leader balancer) the voter to take over.
		from, to, toAddr, targeted := string(req.payload), "", "", false
		if parts := strings.Split(from, "\x00"); len(parts) == 3 {
			from, to, toAddr, targeted = parts[0], parts[1], parts[2], true
		} else if len(parts) != 1 {
			return rpcResponse{code: codeBadRequest, payload: []byte("transfer leadership: want from or from 0x00 to 0x00 address")}
		}
		err = n.leaderOnly(hs, func() error {
			if from != n.cfg.NodeID {
				return nil // another node leads already: a resent request changes nothing
			}
			if targeted {
				return hs.shard.TransferLeadershipTo(to, toAddr)
			}
			return hs.shard.TransferLeadership()
		})
	case rpcKindRemoveServer:
		err = n.leaderOnly(hs, func() error { return hs.shard.RemoveServer(ctx, string(req.payload)) })
	case rpcKindRemoveServerKeeping:
		parts := strings.Split(string(req.payload), "\x00")
		keep, convErr := 0, error(nil)
		if len(parts) == 3 {
			keep, convErr = strconv.Atoi(parts[2])
		}
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || convErr != nil || keep < 1 {
			return rpcResponse{code: codeBadRequest, payload: []byte("remove server: want from 0x00 keep 0x00 voters to keep")}
		}
		err = n.leaderOnly(hs, func() error { return hs.shard.RemoveServerKeeping(ctx, parts[0], parts[1], keep) })
	case rpcKindQuery:
		payload, err = n.answerQuery(ctx, shardID, req.payload)
	case rpcKindTerm:
		if len(req.payload) != 0 {
			return rpcResponse{code: codeBadRequest, payload: []byte("term: want an empty payload")}
		}
		payload = append(binary.BigEndian.AppendUint64(nil, hs.shard.Term()), n.cfg.NodeID...)
	case rpcKindServers:
		// Empty: this replica's latest configuration; {1}: the leader's; {2}: the leader's once
		// committed (shard.CommittedServers).
		if len(req.payload) > 1 || (len(req.payload) == 1 && req.payload[0] != serversFromLeader && req.payload[0] != serversCommitted) {
			return rpcResponse{code: codeBadRequest, payload: []byte("servers: want an empty payload, {1} or {2}")}
		}
		if len(req.payload) == 1 && !hs.shard.IsLeader() {
			err = fmt.Errorf("servers on %s: %w", n.cfg.NodeID, shard.ErrNotLeader)
			break
		}
		var servers []shard.Peer
		if len(req.payload) == 1 && req.payload[0] == serversCommitted {
			servers, err = hs.shard.CommittedServers(ctx)
		} else {
			servers, err = hs.shard.Servers()
		}
		if err == nil {
			payload, err = json.Marshal(servers)
		}
	default:
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "unknown request kind %d", req.kind)}
	}
	if err != nil {
		_, leaderAddr := hs.shard.Leader()
		return rpcResponse{code: codeForError(err), leaderHint: leaderAddr, payload: []byte(err.Error())}
	}
	return rpcResponse{code: codeOK, payload: payload}
}

// leaderOnly runs change when hs leads, else answers ErrNotLeader (so the caller follows the
// hint).
func (n *Node) leaderOnly(hs *hostedShard, change func() error) error {
	if !hs.shard.IsLeader() {
		return fmt.Errorf("membership change on %s: %w", n.cfg.NodeID, shard.ErrNotLeader)
	}
	return change()
}

// handleOpenReplica opens an empty, unbootstrapped replica of shardID, which a leader is about
// to add (MoveReplica, ReplaceNode). Opening a hosted shard again is a no-op.
func (n *Node) handleOpenReplica(shardID int) rpcResponse {
	if shardID >= n.ShardCount() {
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "shard %d of %d", shardID, n.ShardCount())}
	}
	if err := n.openShard(shardID, false, nil); err != nil {
		return rpcResponse{code: codeForError(err), payload: []byte(err.Error())}
	}
	if n.gossip != nil {
		n.gossip.refreshMeta()
	}
	n.logger.Info("opened a replica for a membership change", "shard", shardID)
	return rpcResponse{code: codeOK}
}

// handleRetireReplica closes the local replica of shardID and deletes its data, once the
// shard's configuration, read from its leader, no longer names this node: a move removed it
// and it will never be sent the log again. Not hosting the shard is success (a repeat).
// While this node is still a member it refuses, and nothing changes.
func (n *Node) handleRetireReplica(ctx context.Context, shardID int) rpcResponse {
	if shardID < 0 || shardID >= n.ShardCount() {
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "shard %d of %d", shardID, n.ShardCount())}
	}
	if n.hosted(shardID) == nil {
		return rpcResponse{code: codeOK}
	}
	servers, err := n.shardServers(ctx, shardID)
	if err != nil {
		return rpcResponse{code: codeForError(err), payload: fmt.Appendf(nil, "retire replica: read the configuration: %v", err)}
	}
	if slices.ContainsFunc(servers, func(p shard.Peer) bool { return p.ID == n.cfg.NodeID }) {
		return rpcResponse{code: codeBadRequest, payload: fmt.Appendf(nil, "retire replica: %s is still in shard %d's configuration", n.cfg.NodeID, shardID)}
	}
	n.recordReplicas(shardID, servers)
	if err := n.retireShard(shardID); err != nil {
		return rpcResponse{code: codeInternal, payload: []byte(err.Error())}
	}
	return rpcResponse{code: codeOK}
}

func cutZero(payload []byte) (string, string, bool) {
	for i, b := range payload {
		if b == 0 {
			return string(payload[:i]), string(payload[i+1:]), i > 0 && i+1 < len(payload)
		}
	}
	return "", "", false
}
