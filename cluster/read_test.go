package cluster_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

// TestFollowerReadAppliesTheCarriedCommitIndex: on a quiet shard a follower learns that an
// entry committed only from the leader's next AppendEntries, after CommitTimeout (here an
// hour, so raft never tells it during the test). A linearizable read on that follower still
// returns the write at once: the leader's read index carries the term of its entry, and the
// follower, holding that entry, applies its own log up to it. Counted, not timed: the
// follower's raft commit index stays below the write while its state machine has it.
func TestFollowerReadAppliesTheCarriedCommitIndex(t *testing.T) {
	c := newStaticCluster(t, 3, 1, 3, func(cfg *shard.Config) { cfg.CommitTimeout = time.Hour })
	leader := c.leaderOf(0)
	ctx := testutil.Context(t, testutil.WaitMax)
	var follower *multiNode
	var writeIndex uint64
	// The entry reaches both followers with the commit index from before it; find one that
	// holds it without knowing it committed (the other may have heard of the commit if its
	// AppendEntries left after the first follower's ack).
	for attempt := 0; follower == nil && attempt < 5; attempt++ {
		command := fmt.Sprintf("write-%d", attempt)
		if _, err := leader.node.Propose(ctx, 0, []byte(command)); err != nil {
			t.Fatal(err)
		}
		writeIndex = leader.node.Shard(0).Stats().CommitIndex
		for _, n := range c.nodes {
			if n == leader {
				continue
			}
			s := n.node.Shard(0)
			testutil.Eventually(t, n.id+" to hold the write in its log", func() bool { return s.Stats().LastLogIndex >= writeIndex })
			if s.Stats().CommitIndex < writeIndex {
				follower = n
				break
			}
		}
	}
	if follower == nil {
		t.Fatal("no follower held the write without knowing it committed")
	}
	s := follower.node.Shard(0)
	before := s.Stats().ReadCatchUps
	if err := follower.node.LinearizableRead(ctx, 0); err != nil {
		t.Fatalf("linearizable read on the follower: %v", err)
	}
	commands := follower.recorder(0).Commands()
	if len(commands) == 0 || !strings.HasPrefix(commands[len(commands)-1], "write-") {
		t.Fatalf("follower's state after the read: %q, want the last write", commands)
	}
	stats := s.Stats()
	if stats.ReadCatchUps != before+1 {
		t.Fatalf("read catch-ups %d → %d, want one", before, stats.ReadCatchUps)
	}
	if stats.CommitIndex >= writeIndex {
		t.Fatalf("the follower's raft learned commit index %d ≥ %d: the read did not need the carried one", stats.CommitIndex, writeIndex)
	}
	if stats.AppliedIndex < writeIndex {
		t.Fatalf("applied index %d after the read, want ≥ %d", stats.AppliedIndex, writeIndex)
	}

	// Raft's own apply of the same entries, when the leader finally says they committed (the
	// next write's AppendEntries), skips them: every command is applied once, in order.
	if _, err := leader.node.Propose(ctx, 0, []byte("next")); err != nil {
		t.Fatal(err)
	}
	nextIndex := leader.node.Shard(0).Stats().CommitIndex
	testutil.Eventually(t, "the follower to hold the next write", func() bool { return s.Stats().LastLogIndex >= nextIndex })
	if err := follower.node.LinearizableRead(ctx, 0); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the follower's raft to hear of the earlier commit", func() bool {
		return s.Stats().CommitIndex >= writeIndex
	})
	if got, want := follower.recorder(0).Commands(), leader.recorder(0).Commands(); !slices.Equal(got, want) {
		t.Fatalf("follower applied %q, leader %q", got, want)
	}
}

// TestReadSeesWritesAcknowledgedElsewhere: a write acknowledged through any node is in every
// other node's linearizable read and query that starts after the acknowledgement, with reads
// racing on every node so that they share read-index rounds.
func TestReadSeesWritesAcknowledgedElsewhere(t *testing.T) {
	c := newStaticCluster(t, 3, 1, 3, nil)
	c.leaderOf(0)
	ctx := testutil.Context(t, testutil.WaitMax)
	const writeCount = 12
	for i := range writeCount {
		via := c.nodes[i%len(c.nodes)]
		command := fmt.Sprintf("w%d", i)
		if _, err := via.node.Propose(ctx, 0, []byte(command)); err != nil {
			t.Fatalf("propose %s via %s: %v", command, via.id, err)
		}
		var wg sync.WaitGroup
		for _, reader := range c.nodes {
			for range 8 {
				wg.Go(func() {
					if err := reader.node.LinearizableRead(ctx, 0); err != nil {
						t.Errorf("read on %s: %v", reader.id, err)
						return
					}
					if !slices.Contains(reader.recorder(0).Commands(), command) {
						t.Errorf("%s's read after %s was acknowledged via %s lacks it", reader.id, command, via.id)
					}
					answer, err := reader.node.Query(ctx, 0, nil)
					if err != nil || !slices.Contains(strings.Split(string(answer), ","), command) {
						t.Errorf("%s's query after %s was acknowledged via %s: %q %v", reader.id, command, via.id, answer, err)
					}
				})
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}
