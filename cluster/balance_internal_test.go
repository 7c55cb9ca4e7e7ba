package cluster

import "testing"

func TestPlanLeaderTransfer(t *testing.T) {
	all := []string{"a", "b", "c"}
	three := [][]string{all, all, all, all}
	for _, tc := range []struct {
		name    string
		view    leaderView
		want    LeaderTransfer
		wantAny bool
	}{
		{name: "all on one node: the smallest shard to the idlest, smallest ID",
			view: leaderView{leaders: []string{"a", "a", "a", "a"}, voters: three, alive: all},
			want: LeaderTransfer{Shard: 0, From: "a", To: "b"}, wantAny: true},
		{name: "3-1-0: from the busiest to the idle node",
			view: leaderView{leaders: []string{"b", "a", "b", "b"}, voters: three, alive: all},
			want: LeaderTransfer{Shard: 0, From: "b", To: "c"}, wantAny: true},
		{name: "2-1-1 is balanced",
			view: leaderView{leaders: []string{"a", "b", "a", "c"}, voters: three, alive: all}},
		{name: "2-2-0 moves one",
			view: leaderView{leaders: []string{"a", "b", "a", "b"}, voters: three, alive: all},
			want: LeaderTransfer{Shard: 0, From: "a", To: "c"}, wantAny: true},
		{name: "an unknown leader: wait",
			view: leaderView{leaders: []string{"a", "a", "", "a"}, voters: three, alive: all}},
		{name: "the idle node is not alive: the next one",
			view: leaderView{leaders: []string{"a", "a", "a", "b"}, voters: three, alive: []string{"a", "b"}},
			want: LeaderTransfer{Shard: 0, From: "a", To: "b"}, wantAny: true},
		{name: "only to a voter of the shard (a fourth node hosting shard 2 alone)",
			view: leaderView{leaders: []string{"a", "b", "a", "c"},
				voters: [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"a", "d", "c"}, {"b", "c", "d"}},
				alive:  []string{"a", "b", "c", "d"}},
			want: LeaderTransfer{Shard: 2, From: "a", To: "d"}, wantAny: true},
		{name: "the idlest node holds none of the busiest node's shards",
			view: leaderView{leaders: []string{"a", "a", "b"},
				voters: [][]string{{"a", "b"}, {"a", "b"}, {"b", "c"}},
				alive:  []string{"a", "b", "c"}},
			want: LeaderTransfer{}, wantAny: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := planLeaderTransfer(tc.view)
			if ok != tc.wantAny || got != tc.want {
				t.Fatalf("planLeaderTransfer = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantAny)
			}
		})
	}
}
