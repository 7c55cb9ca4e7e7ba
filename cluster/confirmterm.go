package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/gigaledger/gigaledger/shard"
)

// confirmTerm is shard.Config.ConfirmTerm for this node's replica s of shardID: it asks every
// other voter of the shard's latest configuration for its current term, over requests sent now,
// and answers nil once a quorum of the voters (this one among them) is at term or below it.
//
// Why that confirms a read index: a leader of a later term was elected by a quorum that had
// moved to that term before it. Terms never go down, and any two quorums share a voter, so if
// a quorum reports term or below after the read began, no later leader existed when it began,
// and nothing was acknowledged that the read index (this leader's commit index, read after the
// read began) misses. raft.VerifyLeader counts acknowledgements of appends sent before the
// round as well (hashicorp/raft's notify), which a leader resumed after a pause still holds.
func (n *Node) confirmTerm(ctx context.Context, shardID int, s *shard.Shard, term uint64) error {
	servers, err := s.Servers()
	if err != nil {
		return fmt.Errorf("confirm term: %v: %w", err, shard.ErrNotLeader)
	}
	voters, confirmed := 0, 0
	var others []shard.Peer
	for _, p := range servers {
		switch {
		case p.Nonvoter:
		case p.ID == n.cfg.NodeID:
			voters++
			confirmed++ // this replica's own term is the round's (ReadIndex checks it did not move)
		default:
			voters++
			others = append(others, p)
		}
	}
	quorum := voters/2 + 1
	if confirmed >= quorum {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		term uint64
		err  error
	}
	answers := make(chan answer, len(others))
	for _, p := range others {
		go func() {
			t, err := n.termAt(ctx, p, shardID)
			answers <- answer{t, err}
		}()
	}
	var errs []error
	for range others {
		a := <-answers
		switch {
		case a.err != nil:
			errs = append(errs, a.err)
		case a.term > term:
			return fmt.Errorf("a voter of shard %d is at term %d, past %d: %w", shardID, a.term, term, shard.ErrNotLeader)
		default:
			if confirmed++; confirmed >= quorum {
				return nil
			}
		}
	}
	return fmt.Errorf("term %d of shard %d confirmed by %d of %d voters (%w): %w", term, shardID, confirmed, voters,
		errors.Join(errs...), shard.ErrNotLeader)
}

// termAt asks voter p for its replica's current term of shardID (rpcKindTerm, or from its
// replica stats when its release does not know the kind). The answer must come from p itself:
// another node now at p's address is not a voter of this configuration.
func (n *Node) termAt(ctx context.Context, p shard.Peer, shardID int) (uint64, error) {
	payload, err := n.callAt(ctx, p.Addr, shardID, rpcKindTerm, nil)
	if errors.Is(err, errBadRequest) && strings.Contains(err.Error(), "unknown request kind") {
		stats, err := n.replicaStatsAt(ctx, p.Addr, shardID)
		if err == nil && stats.NodeID != p.ID {
			err = fmt.Errorf("term from %s: answered by %q, not voter %q", p.Addr, stats.NodeID, p.ID)
		}
		return stats.Term, err
	}
	switch {
	case err != nil:
		return 0, err
	case len(payload) < 8:
		return 0, fmt.Errorf("term from %s: %d bytes, want 8 and the node ID", p.Addr, len(payload))
	case string(payload[8:]) != p.ID:
		return 0, fmt.Errorf("term from %s: answered by %q, not voter %q", p.Addr, payload[8:], p.ID)
	}
	return binary.BigEndian.Uint64(payload), nil
}
