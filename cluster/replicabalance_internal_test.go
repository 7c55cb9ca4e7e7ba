package cluster

import (
	"errors"
	"slices"
	"testing"
)

func TestPlanReplicaMove(t *testing.T) {
	abc := []string{"a", "b", "c"}
	abcd := []string{"a", "b", "c", "d"}
	none := [][]string{nil, nil, nil, nil}
	// 4 shards, 3 replicas each on a, b, c: 12 replicas, 4 each.
	joined := [][]string{abc, abc, abc, abc}
	for _, tc := range []struct {
		name    string
		view    replicaView
		want    ReplicaMovePlan
		wantAny bool
	}{
		{name: "a fourth node joined: the smallest shard from the smallest busiest ID",
			view: replicaView{voters: joined, nonvoters: none, replicaCount: 3, alive: abcd},
			want: ReplicaMovePlan{Shard: 0, From: "a", To: "d"}, wantAny: true},
		{name: "after one move: from the next busiest (ties: smallest ID), a shard d lacks",
			view: replicaView{voters: [][]string{{"d", "b", "c"}, abc, abc, abc}, nonvoters: none, replicaCount: 3, alive: abcd},
			want: ReplicaMovePlan{Shard: 1, From: "b", To: "d"}, wantAny: true},
		{name: "the busiest holds a shard the idlest has: the next shard",
			view: replicaView{voters: [][]string{{"d", "b", "c"}, {"a", "d", "c"}, abc, abc}, nonvoters: none, replicaCount: 3, alive: abcd},
			want: ReplicaMovePlan{Shard: 2, From: "c", To: "d"}, wantAny: true},
		{name: "3-3-3-3 is balanced",
			view: replicaView{voters: [][]string{{"d", "b", "c"}, {"a", "d", "c"}, {"a", "b", "d"}, abc}, nonvoters: none, replicaCount: 3, alive: abcd}},
		{name: "4-3-3-2 differs by two: one more",
			view: replicaView{voters: [][]string{{"d", "b", "c"}, {"a", "d", "c"}, abc, abc}, nonvoters: none, replicaCount: 3, alive: abcd},
			want: ReplicaMovePlan{Shard: 2, From: "c", To: "d"}, wantAny: true},
		{name: "a spread of one is balanced (3 shards on 4 nodes: 3-2-2-2)",
			view: replicaView{voters: [][]string{{"a", "b", "c"}, {"a", "b", "d"}, {"a", "c", "d"}}, nonvoters: [][]string{nil, nil, nil},
				replicaCount: 3, alive: abcd}},
		{name: "two new nodes: the idlest, smallest ID first",
			view: replicaView{voters: joined, nonvoters: none, replicaCount: 3, alive: []string{"a", "b", "c", "d", "e"}},
			want: ReplicaMovePlan{Shard: 0, From: "a", To: "d"}, wantAny: true},
		{name: "a non-voter: a move is in progress",
			view: replicaView{voters: joined, nonvoters: [][]string{nil, {"d"}, nil, nil}, replicaCount: 3, alive: abcd}},
		{name: "more voters than the replica count: a move is in progress",
			view: replicaView{voters: [][]string{abc, abcd, abc, abc}, nonvoters: none, replicaCount: 3, alive: abcd}},
		{name: "a node holding replicas is down",
			view: replicaView{voters: joined, nonvoters: none, replicaCount: 3, alive: []string{"a", "b", "d"}}},
		{name: "a down node holding nothing is only no destination",
			view: replicaView{voters: joined, nonvoters: none, replicaCount: 3, alive: abc}},
		{name: "every node holds every shard: nothing can move",
			view: replicaView{voters: [][]string{abc, abc}, nonvoters: [][]string{nil, nil}, replicaCount: 3, alive: abc}},
		{name: "a node with fewer replicas than the replica count (1 replica per shard)",
			view: replicaView{voters: [][]string{{"a"}, {"a"}, {"a"}, {"b"}}, nonvoters: none, replicaCount: 1, alive: []string{"a", "b", "c"}},
			want: ReplicaMovePlan{Shard: 0, From: "a", To: "c"}, wantAny: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := planReplicaMove(tc.view)
			if ok != tc.wantAny || got != tc.want {
				t.Fatalf("planReplicaMove = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantAny)
			}
		})
	}
}

// Following the plan move by move ends balanced, never plans a move that does not narrow the
// spread, and takes as few moves as the counts need (12 replicas from 3 nodes to 4: 3 moves).
func TestPlanReplicaMoveConverges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		shards    int
		replicas  int
		nodes     []string
		wantMoves int
	}{
		{"4 shards x 3 on 3+1 nodes", 4, 3, []string{"a", "b", "c", "d"}, 3},
		{"8 shards x 3 on 3+2 nodes", 8, 3, []string{"a", "b", "c", "d", "e"}, 9},
		{"5 shards x 1 on 1+2 nodes", 5, 1, []string{"a", "b", "c"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := replicaView{replicaCount: tc.replicas, alive: tc.nodes}
			for range tc.shards {
				v.voters = append(v.voters, append([]string(nil), tc.nodes[:tc.replicas]...))
				v.nonvoters = append(v.nonvoters, nil)
			}
			moves := 0
			for {
				plan, ok := planReplicaMove(v)
				if !ok {
					break
				}
				if moves++; moves > tc.shards*tc.replicas {
					t.Fatalf("more moves than replicas: %v", v.voters)
				}
				voters := v.voters[plan.Shard]
				i := slices.Index(voters, plan.From)
				if i < 0 || slices.Index(voters, plan.To) >= 0 {
					t.Fatalf("move %+v of shard with voters %v", plan, voters)
				}
				voters[i] = plan.To
			}
			counts := v.replicaCounts()
			lo, hi := tc.shards*tc.replicas, 0
			for _, c := range counts {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > 1 || moves != tc.wantMoves {
				t.Fatalf("after %d moves (want %d): counts %v", moves, tc.wantMoves, counts)
			}
		})
	}
}

func TestReplicaViewSettled(t *testing.T) {
	abc := []string{"a", "b", "c"}
	v := replicaView{voters: [][]string{abc}, nonvoters: [][]string{{"d"}}, replicaCount: 3, alive: abc}
	if err := v.settled(); !errors.Is(err, ErrMoveInProgress) {
		t.Fatalf("non-voter: %v", err)
	}
	v = replicaView{voters: [][]string{abc}, nonvoters: [][]string{nil}, replicaCount: 3, alive: []string{"a", "b"}}
	if err := v.settled(); !errors.Is(err, ErrNodeDown) {
		t.Fatalf("c down: %v", err)
	}
}

// BalanceReplicas refuses while this node runs a move, and two never run at once on a node.
func TestBalanceReplicasRefusesWhileAMoveRuns(t *testing.T) {
	var n Node
	done := n.moves.begin()
	if _, err := n.BalanceReplicas(t.Context()); !errors.Is(err, ErrMoveInProgress) {
		t.Fatalf("BalanceReplicas during a move: %v", err)
	}
	done()
	if n.moves.count.Load() != 0 {
		t.Fatalf("moves running: %d after the refusal", n.moves.count.Load())
	}
}
