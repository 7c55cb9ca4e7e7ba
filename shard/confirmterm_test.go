package shard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

// A read-index round asks Config.ConfirmTerm with the leader's term, beside raft.VerifyLeader,
// and a confirmation that fails fails the read index with ErrNotLeader (a leader resumed after
// a pause, whose stale append acknowledgements satisfy VerifyLeader alone).
func TestReadIndexConfirmsTheTerm(t *testing.T) {
	var refuse atomic.Bool
	var asked atomic.Uint64 // the term last asked about
	g := newGroup(t, 3, func(cfg *shard.Config) {
		cfg.ConfirmTerm = func(ctx context.Context, term uint64) error {
			asked.Store(term)
			if refuse.Load() {
				return errors.New("a voter is past this term")
			}
			return nil
		}
	})
	leader := g.leader()
	ctx := testutil.Context(t, testutil.WaitMax)
	if _, err := leader.shard.ReadIndex(ctx); err != nil {
		t.Fatalf("read index: %v", err)
	}
	if term := leader.shard.Term(); asked.Load() != term || term == 0 {
		t.Fatalf("confirmed term %d, the leader's is %d", asked.Load(), term)
	}
	refuse.Store(true)
	if _, err := leader.shard.ReadIndex(ctx); !errors.Is(err, shard.ErrNotLeader) {
		t.Fatalf("read index with the term refused: %v, want ErrNotLeader", err)
	}
	refuse.Store(false)
	if _, err := leader.shard.ReadIndex(ctx); err != nil {
		t.Fatalf("read index once confirmed again: %v", err)
	}
}
