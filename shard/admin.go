package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Snapshot makes raft take a snapshot now (tests, admin). raft.ErrNothingNewToSnapshot is
// returned wrapped when nothing was applied since the last one.
func (s *Shard) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// AddVoter adds (or updates) a voting replica; leader only.
func (s *Shard) AddVoter(ctx context.Context, id, addr string) error {
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("add voter %s at %s: %w", id, addr, membershipError(err))
	}
	return nil
}

// AddNonvoter adds a replica that receives the log but does not vote, so it cannot slow
// commits or elections while it catches up; leader only. A server already in the
// configuration keeps its suffrage (raft only updates its address), so adding a voter again as
// a non-voter never demotes it.
func (s *Shard) AddNonvoter(ctx context.Context, id, addr string) error {
	if err := s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("add non-voter %s at %s: %w", id, addr, membershipError(err))
	}
	return nil
}

// TransferLeadership hands leadership to the most up-to-date other voter (raft sends it
// TimeoutNow, so it elects itself at once instead of after an election timeout); leader only.
// Proposals meanwhile are refused as not leader (nothing appended), so callers retry on the
// new leader.
func (s *Shard) TransferLeadership() error {
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("transfer leadership: %w", membershipError(err))
	}
	return nil
}

// TransferLeadershipTo hands leadership to the voter id at addr (raft sends it TimeoutNow);
// leader only. It refuses a server that is not a voter of the latest configuration: a
// non-voter told to time out would stand for election it cannot win, and an unknown server
// would make raft wait for a transfer that never happens.
func (s *Shard) TransferLeadershipTo(id, addr string) error {
	peers, err := s.Servers()
	if err != nil {
		return fmt.Errorf("transfer leadership to %s: %w", id, err)
	}
	if i := slices.IndexFunc(peers, func(p Peer) bool { return p.ID == id }); i < 0 || peers[i].Nonvoter {
		return fmt.Errorf("transfer leadership to %s: %w", id, ErrNotVoter)
	}
	if err := s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr)).Error(); err != nil {
		return fmt.Errorf("transfer leadership to %s: %w", id, membershipError(err))
	}
	return nil
}

// RemoveServer removes a replica from the configuration; leader only.
func (s *Shard) RemoveServer(ctx context.Context, id string) error {
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, membershipError(err))
	}
	return nil
}

// ErrReplicaCountShort refuses a removal that would leave a shard fewer voters than it must
// keep (RemoveServerKeeping).
var ErrReplicaCountShort = errors.New("shard: removing the replica would leave too few voters")

// RemoveServerKeeping removes id from the configuration only when keep is a voter of it and at
// least minVoters voters remain, both checked on the configuration the removal replaces: raft
// refuses the removal when another change was appended in between, so two moves of one shard
// to one destination, run at once, cannot each see the destination join and each remove their
// source (a probe's three moves left one replica). Removing a server not in the configuration
// changes nothing; leader only.
func (s *Shard) RemoveServerKeeping(ctx context.Context, id, keep string, minVoters int) error {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return fmt.Errorf("remove server %s: get configuration: %w", id, membershipError(err))
	}
	voters, removing, removingVotes, keepVotes := 0, false, false, false
	for _, server := range future.Configuration().Servers {
		votes := server.Suffrage == raft.Voter
		if votes {
			voters++
		}
		switch string(server.ID) {
		case id:
			removing, removingVotes = true, votes
		case keep:
			keepVotes = votes
		}
	}
	if !removing {
		return nil
	}
	if !keepVotes {
		return fmt.Errorf("remove server %s: %s is not a voter of the shard: %w", id, keep, ErrNotVoter)
	}
	if removingVotes && voters-1 < minVoters {
		return fmt.Errorf("remove server %s: %d voters with it, %d to keep: %w", id, voters, minVoters, ErrReplicaCountShort)
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), future.Index(), timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, membershipError(err))
	}
	return nil
}

// CommittedServers returns the latest raft configuration once it is committed; leader only.
// The configuration is read first and a barrier appended after it: the barrier commits only
// with every entry before it, the configuration's among them. A node deciding that it was
// removed asks this, not Servers, which may answer a change the next leader never sees.
func (s *Shard) CommittedServers(ctx context.Context) ([]Peer, error) {
	if !s.IsLeader() {
		return nil, fmt.Errorf("committed servers: %w", ErrNotLeader)
	}
	peers, err := s.Servers()
	if err != nil {
		return nil, err
	}
	if err := s.raft.Barrier(timeoutFrom(ctx, s.cfg.ApplyTimeout)).Error(); err != nil {
		return nil, fmt.Errorf("committed servers: barrier: %w", membershipError(err))
	}
	return peers, nil
}

// voterCount is the number of voters in the latest raft configuration (GetConfiguration
// answers from memory, without the raft loop, so a metrics scrape never waits on it).
func (s *Shard) voterCount() int {
	future := s.raft.GetConfiguration()
	if future.Error() != nil {
		return 0
	}
	voters := 0
	for _, server := range future.Configuration().Servers {
		if server.Suffrage == raft.Voter {
			voters++
		}
	}
	return voters
}

// Servers returns the latest raft configuration as peers (non-voters marked).
func (s *Shard) Servers() ([]Peer, error) {
	future := s.raft.GetConfiguration()
	if err := future.Error(); err != nil {
		return nil, fmt.Errorf("get configuration: %w", err)
	}
	var peers []Peer
	for _, server := range future.Configuration().Servers {
		peers = append(peers, Peer{ID: string(server.ID), Addr: string(server.Address), Nonvoter: server.Suffrage != raft.Voter})
	}
	return peers, nil
}

func membershipError(err error) error {
	if errors.Is(err, raft.ErrNotLeader) {
		return fmt.Errorf("%v: %w", err, ErrNotLeader)
	}
	return err
}

func timeoutFrom(ctx context.Context, fallback time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		if remaining := time.Until(deadline); remaining > 0 {
			return remaining
		}
		return time.Millisecond
	}
	return fallback
}
