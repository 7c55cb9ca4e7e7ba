package shard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/shardtest"
)

// replica is one member of an in-memory test group.
type replica struct {
	id        string
	addr      raft.ServerAddress
	dataDir   string
	transport *raft.InmemTransport
	sm        *shardtest.Recorder
	shard     *shard.Shard
	registry  *prometheus.Registry
}

// group is a shard's replica set on in-memory transports with real bolt stores.
type group struct {
	t        *testing.T
	replicas []*replica
	tune     func(*shard.Config)
}

// fastConfig shortens raft's timeouts so that tests elect quickly. Under the race detector
// (raceTimingScale) everything runs several times slower, and a leader whose heartbeats miss a
// 100 ms lease steps down in the middle of a test that needs a stable one.
func fastConfig(cfg *shard.Config) {
	cfg.HeartbeatTimeout = 200 * time.Millisecond * raceTimingScale
	cfg.ElectionTimeout = 200 * time.Millisecond * raceTimingScale
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond * raceTimingScale
	cfg.CommitTimeout = 5 * time.Millisecond
}

func newGroup(t *testing.T, size int, tune func(*shard.Config)) *group {
	t.Helper()
	g := &group{t: t, tune: tune}
	for i := range size {
		id := fmt.Sprintf("node%d", i+1)
		addr, transport := raft.NewInmemTransport(raft.ServerAddress(id))
		g.replicas = append(g.replicas, &replica{id: id, addr: addr, dataDir: t.TempDir(), transport: transport, sm: shardtest.NewRecorder()})
	}
	g.connectAll()
	for _, r := range g.replicas {
		g.open(r)
	}
	t.Cleanup(func() {
		for _, r := range g.replicas {
			if r.shard != nil {
				_ = r.shard.Close()
			}
		}
	})
	return g
}

func (g *group) connectAll() {
	for _, a := range g.replicas {
		for _, b := range g.replicas {
			if a != b {
				a.transport.Connect(b.addr, b.transport)
			}
		}
	}
}

func (g *group) config(r *replica) shard.Config {
	cfg := shard.Config{ShardID: "s1", NodeID: r.id, RaftAddr: string(r.addr), DataDir: r.dataDir, Bootstrap: true, Registerer: r.registry}
	for _, peer := range g.replicas {
		cfg.Peers = append(cfg.Peers, shard.Peer{ID: peer.id, Addr: string(peer.addr)})
	}
	fastConfig(&cfg)
	if g.tune != nil {
		g.tune(&cfg)
	}
	return cfg
}

func (g *group) open(r *replica) {
	g.t.Helper()
	r.registry = prometheus.NewRegistry()
	opened, err := shard.Open(g.config(r), r.sm, r.transport, testutil.Logger(g.t).With("node", r.id))
	if err != nil {
		g.t.Fatalf("open %s: %v", r.id, err)
	}
	r.shard = opened
}

// restart closes r's shard and reopens it on a fresh transport at the same address with sm.
func (g *group) restart(r *replica, sm *shardtest.Recorder) {
	g.t.Helper()
	if err := r.shard.Close(); err != nil {
		g.t.Fatalf("close %s: %v", r.id, err)
	}
	_, r.transport = raft.NewInmemTransport(r.addr)
	r.sm = sm
	g.connectAll()
	g.open(r)
}

// leader waits for one replica to be a ready leader (ReadIndex works) and returns it.
func (g *group) leader() *replica {
	g.t.Helper()
	var found *replica
	testutil.Eventually(g.t, "a ready leader", func() bool {
		for _, r := range g.replicas {
			if r.shard != nil && r.shard.Stats().LeaderReady {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// propose proposes command through whichever replica leads and returns its result. As a client
// does, a proposal whose outcome is unknown (an election on a loaded machine cut it) or that
// went to a replica no longer leading is sent again: the command may then be in the log twice,
// on every replica alike. For tests about what they propose, not about exactly-once.
func (g *group) propose(ctx context.Context, command []byte) any {
	g.t.Helper()
	result, err := testutil.Retry(ctx, 20*time.Millisecond, shard.Retryable, func(bool) (any, error) {
		return g.leader().shard.Propose(ctx, command)
	})
	if err != nil {
		g.t.Fatalf("propose %q: %v", command, err)
	}
	return result
}

func (g *group) followers(leader *replica) []*replica {
	var followers []*replica
	for _, r := range g.replicas {
		if r != leader {
			followers = append(followers, r)
		}
	}
	return followers
}
