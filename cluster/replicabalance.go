package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Replica balance: a node added to a running cluster (started with --join) hosts nothing until
// replicas move to it. BalanceReplicas chooses those moves: one replica at a time, from the
// node hosting the most replicas to a live node hosting the fewest that does not host that
// shard, through MoveReplica (non-voter, catch-up, promotion, removal, retirement), until the
// most and fewest replicas per live node differ by at most one. See DESIGN-multishard.md,
// "Replica balance".

// ErrNodeDown means a node holding replicas is not alive: the counts would move replicas
// away from the nodes still up and onto a node about to get its own back, and a dead node's
// replicas are ReplaceNode's to move. Balancing waits for it (bounded), then refuses.
var ErrNodeDown = errors.New("cluster: a node holding replicas is not alive")

// replicaSettleWaitMax bounds how long BalanceReplicas waits for a view it cannot plan from
// (a node holding replicas not alive, a move's configuration not yet seen as done) before it
// answers the error.
const replicaSettleWaitMax = 10 * time.Second

// replicaViewTimeout bounds reading every shard's configuration from its leader for one look.
const replicaViewTimeout = 10 * time.Second

// ReplicaBalance is what BalanceReplicas did.
type ReplicaBalance struct {
	// Moves lists the moves made, in order.
	Moves []MoveResult `json:"moves"`
	// Replicas is how many shard replicas (voters) each live node holds at the end.
	Replicas map[string]int `json:"replicas"`
	// Balanced: the most and fewest replicas held by live nodes differ by at most one, or no
	// move can narrow it.
	Balanced bool `json:"balanced"`
}

// ReplicaMovePlan is one move the replica balancer would make.
type ReplicaMovePlan struct {
	Shard int    `json:"shard"`
	From  string `json:"fromNodeId"`
	To    string `json:"toNodeId"`
}

// replicaView is what a replica-balancing decision reads: each shard's voters and
// non-voters, the replica count, and the live nodes.
type replicaView struct {
	voters       [][]string
	nonvoters    [][]string
	replicaCount int
	alive        []string
}

// replicaCounts counts the replicas (voters) each node holds: every live node (0 for none)
// and every node holding one.
func (v replicaView) replicaCounts() map[string]int {
	counts := make(map[string]int, len(v.alive))
	for _, id := range v.alive {
		counts[id] = 0
	}
	for _, voters := range v.voters {
		for _, id := range voters {
			counts[id]++
		}
	}
	return counts
}

// settled says why no move may be planned from v: a move in progress (a non-voter, or more
// voters than the replica count: wrapping ErrMoveInProgress) or a node holding replicas not
// alive (ErrNodeDown); nil when the view can be planned from.
func (v replicaView) settled() error {
	for shardID, voters := range v.voters {
		if len(v.nonvoters[shardID]) > 0 || (v.replicaCount > 0 && len(voters) > v.replicaCount) {
			return fmt.Errorf("shard %d has voters %v and non-voters %v: %w", shardID, voters, v.nonvoters[shardID], ErrMoveInProgress)
		}
	}
	for shardID, voters := range v.voters {
		for _, id := range voters {
			if !slices.Contains(v.alive, id) {
				return fmt.Errorf("%s (a replica of shard %d): %w", id, shardID, ErrNodeDown)
			}
		}
	}
	return nil
}

// planReplicaMove picks the next move: from the node holding the most replicas (ties: the
// smallest ID) to the live node holding the fewest (ties: the smallest ID) among those holding
// at least two fewer, of the smallest shard the source holds and the destination does not.
// No move while the view is not settled (see settled) or when the spread is at most one. Pure,
// so that its choices are tested on their own.
func planReplicaMove(v replicaView) (ReplicaMovePlan, bool) {
	if v.settled() != nil {
		return ReplicaMovePlan{}, false
	}
	counts := v.replicaCounts()
	busiest, ids := byLoad(counts)
	for _, to := range ids {
		if !slices.Contains(v.alive, to) || counts[busiest]-counts[to] < 2 {
			continue
		}
		for shardID, voters := range v.voters {
			if slices.Contains(voters, busiest) && !slices.Contains(voters, to) {
				return ReplicaMovePlan{Shard: shardID, From: busiest, To: to}, true
			}
		}
	}
	return ReplicaMovePlan{}, false
}

// replicaView reads each shard's voters and non-voters from its leader's latest configuration
// (a follower's, or Status's cached copy, may not show yet a non-voter another node's move has
// just added) and the live nodes from Status. An error (a shard without a leader to answer) is
// an unsettled view.
func (n *Node) replicaView(ctx context.Context) (replicaView, error) {
	status := n.Status()
	v := replicaView{replicaCount: status.ReplicaCount}
	for _, node := range status.Nodes {
		if node.State == NodeStateAlive {
			v.alive = append(v.alive, node.ID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, replicaViewTimeout)
	defer cancel()
	for shardID := range status.ShardCount {
		servers, err := n.shardServers(ctx, shardID)
		if err != nil {
			return v, fmt.Errorf("shard %d's configuration: %w", shardID, err)
		}
		var voters, nonvoters []string
		for _, server := range servers {
			if server.Nonvoter {
				nonvoters = append(nonvoters, server.ID)
			} else {
				voters = append(voters, server.ID)
			}
		}
		v.voters = append(v.voters, voters)
		v.nonvoters = append(v.nonvoters, nonvoters)
	}
	return v, nil
}

// BalanceReplicas moves shard replicas, one at a time through MoveReplica, until the most and
// fewest replicas held by live nodes differ by at most one or no move can narrow it; at most
// as many moves as there are replicas. It refuses while a move runs (ErrMoveInProgress: one on
// this node, or a leader's configuration with a non-voter or more voters than the replica
// count when it starts; a move another node starts after that look is not seen: run one mover
// at a time). A view it cannot plan from (a shard without a leader to answer, a node holding
// replicas not alive, the configuration after one of its own moves not yet settled) is waited
// for, up to replicaSettleWaitMax.
func (n *Node) BalanceReplicas(ctx context.Context) (ReplicaBalance, error) {
	result := ReplicaBalance{Moves: []MoveResult{}}
	if !n.moves.count.CompareAndSwap(0, 1) {
		return result, fmt.Errorf("%s runs a move: %w", n.cfg.NodeID, ErrMoveInProgress)
	}
	defer n.moves.count.Add(-1)
	view, err := n.replicaView(ctx)
	if err == nil {
		if err := view.settled(); errors.Is(err, ErrMoveInProgress) {
			return result, err
		}
	}
	movesMax := 0
	settleBy := time.Now().Add(replicaSettleWaitMax)
	for {
		if err == nil {
			err = view.settled()
		}
		if err != nil {
			if time.Now().After(settleBy) {
				return result, err
			}
			select {
			case <-ctx.Done():
				return result, errors.Join(err, ctx.Err())
			case <-time.After(leaderSeenPollInterval):
			}
			view, err = n.replicaView(ctx)
			continue
		}
		if movesMax == 0 {
			for _, voters := range view.voters {
				movesMax += len(voters)
			}
		}
		plan, ok := planReplicaMove(view)
		if !ok || len(result.Moves) >= movesMax {
			break
		}
		n.logger.Info("balancing replicas: moving one", "shard", plan.Shard, "from", plan.From, "to", plan.To,
			"replicas", view.replicaCounts())
		moved, moveErr := n.MoveReplica(ctx, plan.Shard, plan.From, plan.To)
		if moveErr != nil {
			// The move names itself: a failed one is finished by running it again
			// (move-replica), and the next BalanceReplicas refuses until then.
			return result, fmt.Errorf("balance replicas: move of shard %d from %s to %s: %w", plan.Shard, plan.From, plan.To, moveErr)
		}
		result.Moves = append(result.Moves, moved)
		settleBy = time.Now().Add(replicaSettleWaitMax)
		view, err = n.replicaView(ctx)
	}
	result.Replicas = view.replicaCounts()
	_, more := planReplicaMove(view)
	result.Balanced = !more
	return result, nil
}
