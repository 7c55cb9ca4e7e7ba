package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

// The term confirmation of a read-index round asks the other voters over the node's RPCs: a
// quorum at the leader's term (or below it) confirms it; a voter past it refuses with
// ErrNotLeader; one voter down still leaves a quorum; with both down nothing confirms.
func TestConfirmTermAsksAQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	term := leader.node.Shard().Term()
	if err := leader.node.ConfirmTerm(ctx, 0, term); err != nil {
		t.Fatalf("the leader's own term: %v", err)
	}
	if err := leader.node.ConfirmTerm(ctx, 0, term+1); err != nil {
		t.Fatalf("a term no voter reached: %v", err)
	}
	if err := leader.node.ConfirmTerm(ctx, 0, term-1); !errors.Is(err, shard.ErrNotLeader) {
		t.Fatalf("a term the voters moved past: %v, want ErrNotLeader", err)
	}
	var followers []*testNode
	for _, n := range c.nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}
	c.kill(followers[0])
	if err := leader.node.ConfirmTerm(ctx, 0, term); err != nil {
		t.Fatalf("one follower down: %v", err)
	}
	c.kill(followers[1])
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := leader.node.ConfirmTerm(short, 0, term); !errors.Is(err, shard.ErrNotLeader) {
		t.Fatalf("both followers down: %v, want ErrNotLeader", err)
	}
}
