package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Leader balance: every shard's leader does that shard's work (proposals, batching, read
// fences, the relay), so a node leading all shards does nearly all of the cluster's work while
// the others only follow. Raft elects whoever times out first, and restarts tend to pile
// leadership on the nodes that stayed up. The balancer moves leadership, one shard at a time,
// from the node leading the most shards to a voter of that shard leading at least two fewer.
// See DESIGN-multishard.md, "Leader balance".
const (
	// DefaultLeaderBalanceInterval is how often the balancer looks (at most one transfer per
	// look) when Config.LeaderBalanceInterval is 0.
	DefaultLeaderBalanceInterval = 10 * time.Second
	// leaderSeenWaitMax bounds the wait, after a transfer, for the node's view (gossip, or
	// the local replica) to name the new leader; the next transfer waits for it, so that the
	// balancer never acts on a count raft has already changed.
	leaderSeenWaitMax = 10 * time.Second
	// leaderSeenPollInterval is how often that view is read.
	leaderSeenPollInterval = 50 * time.Millisecond
	// leaderBalanceStepTimeout bounds one look and its transfer.
	leaderBalanceStepTimeout = 30 * time.Second
)

var (
	// ErrMoveInProgress means a replica move is running (a non-voter, more voters than the
	// replica count, or a move started on this node): leadership is left alone meanwhile,
	// since the move hands leadership off itself and its counts are about to change.
	ErrMoveInProgress = errors.New("cluster: a replica move is in progress")
	// ErrLeaderUnsettled means a shard has no known leader or the new leader of a transfer
	// was not seen in time: the balancer waits for the cluster to settle.
	ErrLeaderUnsettled = errors.New("cluster: shard leadership is not settled")
	// ErrTargetBehind means the chosen voter trails its leader by more than
	// catchUpLagMaxCount entries: a transfer to it would stall the shard until it caught up.
	ErrTargetBehind = errors.New("cluster: the voter to lead is behind its leader")
)

// leaderBalancerPaused, set only by tests (export_test.go), makes every runLeaderBalancer
// skip its looks, so that a test can pile leadership on one node first.
var leaderBalancerPaused atomic.Bool

// LeaderTransfer is one leadership transfer the balancer made (or would make).
type LeaderTransfer struct {
	Shard int    `json:"shard"`
	From  string `json:"fromNodeId"`
	To    string `json:"toNodeId"`
}

// LeaderBalance is what BalanceLeaders did.
type LeaderBalance struct {
	// Transfers lists the transfers made, in order.
	Transfers []LeaderTransfer `json:"transfers"`
	// Leads is how many shards each live node leads at the end (as this node sees it).
	Leads map[string]int `json:"leads"`
	// Balanced: the most and fewest shards led by live nodes differ by at most one, or no
	// transfer can narrow it (the node leading the fewest is a voter of none of the busiest
	// node's shards).
	Balanced bool `json:"balanced"`
}

// leaderView is what a balancing decision reads: each shard's leader ("" unknown) and
// voters, and the live nodes that may lead.
type leaderView struct {
	leaders []string
	voters  [][]string
	alive   []string
}

// leadCounts counts the shards each live node leads (0 for none).
func (v leaderView) leadCounts() map[string]int {
	counts := make(map[string]int, len(v.alive))
	for _, id := range v.alive {
		counts[id] = 0
	}
	for _, leader := range v.leaders {
		if leader != "" {
			counts[leader]++
		}
	}
	return counts
}

// planLeaderTransfer picks the next transfer: from the node leading the most shards (ties:
// the smallest ID) to the live node leading the fewest among those that are voters of one of
// its shards and lead at least two fewer (ties: smallest ID), the smallest such shard. No
// transfer when a shard's leader is unknown (an election is running) or the spread is at most
// one. Pure, so that its choices are tested on their own.
func planLeaderTransfer(v leaderView) (LeaderTransfer, bool) {
	if slices.Contains(v.leaders, "") {
		return LeaderTransfer{}, false
	}
	counts := v.leadCounts()
	busiest, ids := byLoad(counts)
	for _, to := range ids {
		if !slices.Contains(v.alive, to) || counts[busiest]-counts[to] < 2 {
			continue
		}
		for shardID, leader := range v.leaders {
			if leader == busiest && slices.Contains(v.voters[shardID], to) {
				return LeaderTransfer{Shard: shardID, From: busiest, To: to}, true
			}
		}
	}
	return LeaderTransfer{}, false
}

// movesRunning counts the moves this node runs (MoveReplica, ReplaceNode); the balancer stays
// off while it is not 0. Moves run elsewhere show in the configurations (a non-voter, or more
// voters than the replica count).
type movesRunning struct{ count atomic.Int64 }

func (m *movesRunning) begin() func() {
	m.count.Add(1)
	return func() { m.count.Add(-1) }
}

// leaderView reads, through Status, each shard's leader and voters and the live nodes; it
// fails with ErrMoveInProgress when a move is running.
func (n *Node) leaderView() (leaderView, error) {
	if n.moves.count.Load() > 0 {
		return leaderView{}, fmt.Errorf("%s runs a move: %w", n.cfg.NodeID, ErrMoveInProgress)
	}
	status := n.Status()
	var v leaderView
	for _, node := range status.Nodes {
		if node.State == NodeStateAlive {
			v.alive = append(v.alive, node.ID)
		}
	}
	for _, s := range status.Shards {
		var voters []string
		for _, id := range s.Replicas {
			if !slices.Contains(s.Nonvoters, id) {
				voters = append(voters, id)
			}
		}
		if len(s.Nonvoters) > 0 || (status.ReplicaCount > 0 && len(voters) > status.ReplicaCount) {
			return leaderView{}, fmt.Errorf("shard %d has replicas %v (non-voters %v): %w", s.ID, s.Replicas, s.Nonvoters, ErrMoveInProgress)
		}
		v.leaders = append(v.leaders, s.LeaderID)
		v.voters = append(v.voters, voters)
	}
	return v, nil
}

// leaderSeen is the leader of shardID as this node's routing sees it: gossip's hint when the
// cluster gossips, else the local replica's (static clusters host every shard on every node).
func (n *Node) leaderSeen(shardID int) string {
	if n.gossip != nil {
		if leader, ok := n.gossip.leaderOf(shardID); ok {
			return leader.NodeID
		}
		return ""
	}
	if hs := n.hosted(shardID); hs != nil {
		id, _ := hs.shard.Leader()
		return id
	}
	return ""
}

// BalanceLeaderOnce makes at most one leadership transfer towards an even spread (see
// planLeaderTransfer) and waits until this node sees the new leader. It answers false with no
// error when the spread is even already (or cannot be narrowed).
func (n *Node) BalanceLeaderOnce(ctx context.Context) (LeaderTransfer, bool, error) {
	view, err := n.leaderView()
	if err != nil {
		return LeaderTransfer{}, false, err
	}
	if slices.Contains(view.leaders, "") {
		return LeaderTransfer{}, false, fmt.Errorf("leaders %v: %w", view.leaders, ErrLeaderUnsettled)
	}
	transfer, ok := planLeaderTransfer(view)
	if !ok {
		return LeaderTransfer{}, false, nil
	}
	toAddr := n.raftAddrOf(transfer.To)
	if toAddr == "" {
		return transfer, false, fmt.Errorf("lead shard %d on %s: %w", transfer.Shard, transfer.To, ErrUnknownNode)
	}
	// Only an up-to-date voter: one behind would stall the shard's commits until it caught up.
	leader, leaderErr := n.leaderStats(ctx, transfer.Shard)
	target, targetErr := n.replicaStatsAt(ctx, toAddr, transfer.Shard)
	if err := errors.Join(leaderErr, targetErr); err != nil {
		return transfer, false, fmt.Errorf("lead shard %d on %s: %w", transfer.Shard, transfer.To, err)
	}
	if leader.NodeID != transfer.From {
		return transfer, false, fmt.Errorf("shard %d is led by %s now, not %s: %w", transfer.Shard, leader.NodeID, transfer.From, ErrLeaderUnsettled)
	}
	if target.AppliedIndex+catchUpLagMaxCount < leader.CommitIndex {
		return transfer, false, fmt.Errorf("shard %d: %s applied %d, leader commit %d: %w",
			transfer.Shard, transfer.To, target.AppliedIndex, leader.CommitIndex, ErrTargetBehind)
	}
	payload := strings.Join([]string{transfer.From, transfer.To, toAddr}, "\x00")
	if _, err := n.adminCall(ctx, transfer.Shard, rpcKindTransferLeadership, []byte(payload)); err != nil {
		return transfer, false, fmt.Errorf("lead shard %d on %s: %w", transfer.Shard, transfer.To, err)
	}
	n.leaderTransfers.Add(1)
	// Never fight raft: the next look starts once this node's view names the new leader.
	wait, cancel := context.WithTimeout(ctx, leaderSeenWaitMax)
	defer cancel()
	ticker := time.NewTicker(leaderSeenPollInterval)
	defer ticker.Stop()
	for n.leaderSeen(transfer.Shard) != transfer.To {
		select {
		case <-wait.Done():
			return transfer, true, fmt.Errorf("shard %d: %s not seen leading after the transfer (seen: %q): %w",
				transfer.Shard, transfer.To, n.leaderSeen(transfer.Shard), ErrLeaderUnsettled)
		case <-ticker.C:
		}
	}
	n.logger.Info("balanced shard leadership", "shard", transfer.Shard, "from", transfer.From, "to", transfer.To)
	return transfer, true, nil
}

// BalanceLeaders makes leadership transfers, one at a time, until the spread is even (the
// busiest and the idlest live node differ by at most one shard) or no transfer can narrow it;
// at most ShardCount transfers. It refuses while a move runs (ErrMoveInProgress).
func (n *Node) BalanceLeaders(ctx context.Context) (LeaderBalance, error) {
	result := LeaderBalance{Transfers: []LeaderTransfer{}}
	// A shard whose leader is not known yet (an election, a move's hand-off, gossip not yet
	// carrying the new leader) is waited for, up to leaderSeenWaitMax at a time, rather than
	// answered with "repeat later": the caller asked for a balanced cluster, not for a look.
	settleBy := time.Now().Add(leaderSeenWaitMax)
	for len(result.Transfers) < n.ShardCount() {
		transfer, moved, err := n.BalanceLeaderOnce(ctx)
		if moved {
			result.Transfers = append(result.Transfers, transfer)
			settleBy = time.Now().Add(leaderSeenWaitMax)
		}
		if !moved && errors.Is(err, ErrLeaderUnsettled) && time.Now().Before(settleBy) {
			select {
			case <-ctx.Done():
				return result, errors.Join(err, ctx.Err())
			case <-time.After(leaderSeenPollInterval):
			}
			continue
		}
		if err != nil {
			return result, err
		}
		if !moved {
			break
		}
	}
	view, err := n.leaderView()
	if err != nil {
		return result, err
	}
	result.Leads = view.leadCounts()
	_, more := planLeaderTransfer(view)
	result.Balanced = !more && !slices.Contains(view.leaders, "")
	return result, nil
}

// runLeaderBalancer looks every interval, on the node that leads shard 0 only (one balancer
// per cluster, so two never fight), and makes at most one transfer per look.
func (n *Node) runLeaderBalancer(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-ticker.C:
		}
		if hs := n.hosted(0); hs == nil || !hs.shard.IsLeader() || leaderBalancerPaused.Load() {
			continue
		}
		ctx, cancel := n.backgroundContext(leaderBalanceStepTimeout)
		_, _, err := n.BalanceLeaderOnce(ctx)
		cancel()
		if err != nil {
			n.logger.Info("leader balance: no transfer this time", "error", err)
		}
	}
}

// byLoad orders the nodes of counts for a balancing plan: the busiest (most counted; ties: the
// smallest ID), and every node from the least counted up (ties: ID order).
func byLoad(counts map[string]int) (busiest string, ascending []string) {
	ascending = make([]string, 0, len(counts))
	for id := range counts {
		ascending = append(ascending, id)
	}
	slices.Sort(ascending)
	for _, id := range ascending {
		if busiest == "" || counts[id] > counts[busiest] {
			busiest = id
		}
	}
	// The stable sort keeps ID order among equals.
	slices.SortStableFunc(ascending, func(a, b string) int { return cmp.Compare(counts[a], counts[b]) })
	return busiest, ascending
}
