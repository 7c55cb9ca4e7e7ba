package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
)

func TestProposeOnLeaderAndFollowers(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	leader := c.leader()
	ctx := testutil.Context(t, testutil.WaitMax)

	for round := range 3 {
		for _, n := range c.nodes {
			command := fmt.Sprintf("%s-%d", n.id, round)
			result, err := n.node.Propose(ctx, []byte(command))
			if err != nil {
				t.Fatalf("propose on %s (leader %s): %v", n.id, leader.id, err)
			}
			position, echoed, ok := strings.Cut(result.(string), ":")
			if !ok || echoed != command {
				t.Fatalf("propose %q on %s got result %q", command, n.id, result)
			}
			// Read-your-writes through any node: after the ack, a linearizable read on
			// another node must see the command at the position its result named.
			reader := c.nodes[(round+1)%len(c.nodes)]
			if err := reader.node.LinearizableRead(ctx); err != nil {
				t.Fatalf("linearizable read on %s: %v", reader.id, err)
			}
			index, _ := strconv.Atoi(position)
			if got := reader.sm.Commands(); len(got) < index || got[index-1] != command {
				t.Fatalf("%s after linearizable read lacks %q at %d: %v", reader.id, command, index, got)
			}
		}
	}
	want := leader.sm.Commands()
	for _, n := range c.nodes {
		testutil.Eventually(t, n.id+" converged", func() bool { return slices.Equal(n.sm.Commands(), want) })
	}
}

func TestErrorIdentitySurvivesForwarding(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *shard.Config) { cfg.BatchMaxBytes = 64 })
	leader := c.leader()
	var follower *testNode
	for _, n := range c.nodes {
		if n != leader {
			follower = n
		}
	}
	ctx := testutil.Context(t, testutil.WaitMax)
	// A follower forwards without looking at the command; the leader's shard refuses it, and
	// the refusal must come back as the same sentinel (and not as "outcome unknown").
	_, err := follower.node.Propose(ctx, make([]byte, 65))
	if !errors.Is(err, shard.ErrCommandTooLarge) {
		t.Fatalf("forwarded oversized command: err = %v, want shard.ErrCommandTooLarge", err)
	}
	if errors.Is(err, shard.ErrOutcomeUnknown) {
		t.Fatalf("refused command reported as outcome unknown: %v", err)
	}
}

// TestLeaderFailoverUnderLoad kills the leader while 16 goroutines propose through every node,
// then checks that every acknowledged command is on all survivors exactly once, at the
// position its result named, and that the killed node catches up after a restart.
func TestLeaderFailoverUnderLoad(t *testing.T) {
	const (
		proposerCount        = 16
		ackedBeforeKillCount = 300
		ackedAfterKillCount  = 300
		proposeTimeout       = 5 * time.Second
	)
	c := newTestCluster(t, 3, nil)
	oldLeader := c.leader()

	type ack struct {
		command  string
		position int
	}
	var (
		mu         sync.Mutex
		acked      []ack
		unknown    []string
		unexpected []error
		ackedCount atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	// Each goroutine walks the nodes round-robin, skipping nodes that are down. Every
	// command is proposed once: after an unknown outcome a retry could apply it twice.
	nodes := make([]atomic.Pointer[singleShardNode], len(c.nodes))
	for i, n := range c.nodes {
		nodes[i].Store(n.node)
	}
	for g := range proposerCount {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				node := nodes[(g+seq)%len(nodes)].Load()
				if node == nil {
					continue
				}
				command := fmt.Sprintf("g%02d-%05d", g, seq)
				ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
				result, err := node.Propose(ctx, []byte(command))
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					position, echoed, _ := strings.Cut(result.(string), ":")
					index, _ := strconv.Atoi(position)
					if echoed != command {
						unexpected = append(unexpected, fmt.Errorf("%s got result %q", command, result))
					}
					acked = append(acked, ack{command, index})
					ackedCount.Add(1)
				case errors.Is(err, shard.ErrOutcomeUnknown):
					unknown = append(unknown, command)
				case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, shard.ErrNotLeader),
					errors.Is(err, shard.ErrOverloaded), errors.Is(err, context.DeadlineExceeded):
					// Not applied (or timed out before reaching raft); a new command follows.
				default:
					unexpected = append(unexpected, fmt.Errorf("%s: %w", command, err))
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopLoad()

	testutil.Eventually(t, "acks before the kill", func() bool { return ackedCount.Load() >= ackedBeforeKillCount })
	for i, n := range c.nodes {
		if n == oldLeader {
			nodes[i].Store(nil)
		}
	}
	c.kill(oldLeader)
	killedAt := ackedCount.Load()
	newLeader := c.leader()
	if newLeader == oldLeader {
		t.Fatalf("killed leader still leads")
	}
	testutil.Eventually(t, "acks after the kill", func() bool { return ackedCount.Load() >= killedAt+ackedAfterKillCount })
	stopLoad()

	mu.Lock()
	defer mu.Unlock()
	for _, err := range unexpected {
		t.Errorf("unexpected: %v", err)
	}
	survivors := c.up()
	for _, n := range survivors {
		testutil.Eventually(t, n.id+" converged", func() bool { return slices.Equal(n.sm.Commands(), newLeader.sm.Commands()) })
	}
	want := newLeader.sm.Commands()
	counts := make(map[string]int, len(want))
	for _, command := range want {
		counts[command]++
		if counts[command] > 1 {
			t.Errorf("command %s applied twice", command)
		}
	}
	for _, a := range acked {
		if counts[a.command] != 1 {
			t.Errorf("acknowledged %s present %d times", a.command, counts[a.command])
			continue
		}
		if a.position < 1 || a.position > len(want) || want[a.position-1] != a.command {
			t.Errorf("acknowledged %s at position %d, survivors disagree", a.command, a.position)
		}
	}
	t.Logf("acked %d (%d after the kill), outcome unknown %d, applied %d", len(acked), len(acked)-int(killedAt), len(unknown), len(want))

	c.restart(oldLeader)
	testutil.Eventually(t, "restarted node caught up", func() bool { return slices.Equal(oldLeader.sm.Commands(), want) })
	// It must serve linearizable reads again and see the final state.
	if err := oldLeader.node.LinearizableRead(testutil.Context(t, testutil.WaitMax)); err != nil {
		t.Fatalf("linearizable read on restarted node: %v", err)
	}
}
