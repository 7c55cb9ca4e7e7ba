package cluster

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func TestComputePlacementDeterministicAndOrderFree(t *testing.T) {
	nodes := []string{"node-a", "node-b", "node-c", "node-d", "node-e"}
	want := ComputePlacement(nodes, 16, 3)
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	random := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(nodes)
		random.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Duplicates do not count as extra nodes.
		shuffled = append(shuffled, shuffled[0])
		if got := ComputePlacement(shuffled, 16, 3); !reflect.DeepEqual(got, want) {
			t.Fatalf("placement of %v differs:\n%+v\nwant\n%+v", shuffled, got, want)
		}
	}
}

func TestComputePlacementReplicaCount(t *testing.T) {
	tests := []struct {
		nodeCount, shardCount, replicaCount, wantReplicas int
	}{
		{1, 1, 3, 1},
		{2, 4, 3, 2},
		{3, 4, 3, 3},
		{7, 8, 3, 3},
		{7, 8, 5, 5},
	}
	for _, tt := range tests {
		nodes := make([]string, tt.nodeCount)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("n%d", i)
		}
		p := ComputePlacement(nodes, tt.shardCount, tt.replicaCount)
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", tt, err)
		}
		if p.ShardCount() != tt.shardCount {
			t.Errorf("%+v: %d shards", tt, p.ShardCount())
		}
		for _, s := range p.Shards {
			if len(s.Replicas) != tt.wantReplicas {
				t.Errorf("%+v: shard %d has %d replicas", tt, s.ID, len(s.Replicas))
			}
		}
	}
}

// TestComputePlacementBalance reports how evenly replicas spread (max - min replicas per
// node) and bounds it loosely: rendezvous hashing balances in expectation, not exactly.
func TestComputePlacementBalance(t *testing.T) {
	tests := []struct {
		nodeCount, shardCount int
		spreadMax             int
	}{
		{3, 4, 0},     // every node holds every shard
		{4, 4, 4},     // 12 replicas over 4 nodes: small numbers, lumpy
		{5, 16, 8},    // 48 over 5
		{10, 256, 40}, // 768 over 10: ~77 each
	}
	for _, tt := range tests {
		nodes := make([]string, tt.nodeCount)
		for i := range nodes {
			nodes[i] = fmt.Sprintf("node%d", i+1)
		}
		p := ComputePlacement(nodes, tt.shardCount, 3)
		counts := make(map[string]int)
		leaders := make(map[string]int)
		for _, s := range p.Shards {
			for _, id := range s.Replicas {
				counts[id]++
			}
			leaders[s.Replicas[0]]++
		}
		low, high := tt.shardCount*3, 0
		for _, id := range nodes {
			low, high = min(low, counts[id]), max(high, counts[id])
		}
		t.Logf("%d nodes × %d shards × 3 replicas: replicas per node min %d max %d (spread %d, ideal %.1f); first-ranked per node %v",
			tt.nodeCount, tt.shardCount, low, high, high-low, float64(tt.shardCount*3)/float64(tt.nodeCount), leaders)
		if high-low > tt.spreadMax {
			t.Errorf("spread %d exceeds %d", high-low, tt.spreadMax)
		}
	}
}

// TestComputePlacementStability: adding a node moves only the replicas the new node takes
// (rendezvous hashing's minimal disruption), so placement of a bigger cluster is predictable.
func TestComputePlacementStability(t *testing.T) {
	before := ComputePlacement([]string{"a", "b", "c", "d"}, 32, 3)
	after := ComputePlacement([]string{"a", "b", "c", "d", "e"}, 32, 3)
	for k := range 32 {
		old, cur := before.Replicas(k), after.Replicas(k)
		for _, id := range cur {
			if id != "e" && !slices.Contains(old, id) {
				t.Errorf("shard %d: %s gained a replica though only e joined (%v → %v)", k, id, old, cur)
			}
		}
	}
}

func TestClusterFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if f, err := loadClusterFile(dir); f != nil || err != nil {
		t.Fatalf("empty dir: %v, %v", f, err)
	}
	nodes := []NodeAddress{{ID: "a", RaftAddr: "127.0.0.1:1"}, {ID: "b", RaftAddr: "127.0.0.1:2"}}
	f := &clusterFile{Version: clusterFileVersion, ShardCount: 2, ReplicaCount: 3, Nodes: nodes,
		Placement: ComputePlacement([]string{"a", "b"}, 2, 3)}
	if err := storeClusterFile(dir, f); err != nil {
		t.Fatal(err)
	}
	back, err := loadClusterFile(dir)
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Fatalf("read back %+v, %v", back, err)
	}
	bad := *f
	bad.Placement = ComputePlacement([]string{"a", "x"}, 2, 3)
	if err := storeClusterFile(dir, &bad); err == nil {
		t.Fatal("stored a placement naming an unknown node")
	}
}
