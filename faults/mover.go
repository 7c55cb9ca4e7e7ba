package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Fault kinds of the move nemesis. They run beside the other faults, not in their schedule.
const (
	// FaultMoveReplica: move one replica of one shard to a node without one, through POST
	// /cluster/move-replica on a random node, retried until done; every other move takes the
	// previous one back.
	FaultMoveReplica FaultKind = "move-replica"
	// FaultKillMoving: SIGKILL the source or the destination of the move in progress, hold,
	// start it again (one move in three).
	FaultKillMoving FaultKind = "kill-moving"
)

// Move nemesis limits.
const (
	// moveAttemptMax bounds one POST /cluster/move-replica (the node's catch-up wait gives up
	// after 2 minutes without progress).
	moveAttemptMax = 3 * time.Minute
	// moveRetryInterval is the pause between attempts of one move.
	moveRetryInterval = time.Second
	// moveRefusedMax: a move refused (400) this many times in a row is given up (a node not
	// known to the cluster, e.g. a spare forgotten by gossip while it was down).
	moveRefusedMax = 30
	// movesMax bounds the moves of one run.
	movesMax = 10_000
	// layoutReadMax bounds reading the shards' configurations.
	layoutReadMax = 5 * time.Second
)

// replicaMove is one move of the move nemesis.
type replicaMove struct {
	Shard    int
	From, To string
	// Leader: the source led the shard when the move was chosen. Back: it undoes the move
	// before it.
	Leader, Back bool
}

func (m replicaMove) String() string {
	return fmt.Sprintf("shard %d %s→%s", m.Shard, m.From, m.To)
}

// MoveFigures is what the move nemesis did, for run.json and the summary.
type MoveFigures struct {
	Done        int `json:"done"`
	LeaderMoves int `json:"leaderMoves"`
	MovesBack   int `json:"movesBack"`
	Attempts    int `json:"attempts"`
	Refused     int `json:"refused"`
	KillsDuring int `json:"killsDuring"`
	// Unfinished: a move still not done after the run (a liveness problem when not 0).
	Unfinished []string `json:"unfinished,omitempty"`
}

// Mover moves shard replicas between the nodes (a spare included) one at a time, through the
// admin API, while the workload and the other faults run.
type Mover struct {
	cluster *Cluster
	nemesis *Nemesis
	rec     *Recorder
	rng     *rand.Rand
	gapMin  time.Duration
	gapMax  time.Duration
	log     func(string)

	mu      sync.Mutex
	figures MoveFigures
	// pending is the move under way when the run ended, finished by Finish.
	pending *replicaMove
	last    *replicaMove
}

// NewMover prepares the move nemesis; its kills go through nemesis (one fault at a time).
func NewMover(cluster *Cluster, nemesis *Nemesis, rec *Recorder, gapMin, gapMax time.Duration, seed uint64, log func(string)) *Mover {
	return &Mover{cluster: cluster, nemesis: nemesis, rec: rec, rng: rand.New(rand.NewPCG(seed, 0x30fe)),
		gapMin: gapMin, gapMax: gapMax, log: log}
}

// Figures returns what the mover did so far.
func (m *Mover) Figures() MoveFigures {
	m.mu.Lock()
	defer m.mu.Unlock()
	figures := m.figures
	figures.Unfinished = slices.Clone(figures.Unfinished)
	return figures
}

func (m *Mover) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(m.rng.Int64N(int64(hi-lo)))
}

// Run moves replicas until stop ends: a gap, a move (retried until done), now and then a kill
// of its source or destination while it runs.
func (m *Mover) Run(stop context.Context) {
	for range movesMax {
		if sleepCtx(stop, m.between(m.gapMin, m.gapMax)) != nil {
			return
		}
		move, ok := m.next(stop)
		if !ok {
			continue
		}
		m.mu.Lock()
		m.pending = &move
		m.mu.Unlock()
		m.record(FaultMoveReplica, "start", move, fmt.Sprintf("leader %v, back %v", move.Leader, move.Back))
		var killed chan struct{}
		if m.rng.IntN(3) == 0 {
			target := move.To
			if m.rng.IntN(2) == 0 {
				target = move.From
			}
			delay, hold := m.between(100*time.Millisecond, 1500*time.Millisecond), m.between(2*time.Second, 5*time.Second)
			killed = make(chan struct{})
			go func() {
				defer close(killed)
				m.killDuring(stop, move, target, delay, hold)
			}()
		}
		done := m.drive(stop, move)
		if killed != nil {
			<-killed
		}
		if done {
			m.finished(move)
		}
	}
}

// Finish drives the move left under way when the run ended to its end (the run's final
// checks want each shard with one settled configuration), bounded by ctx.
func (m *Mover) Finish(ctx context.Context) {
	m.mu.Lock()
	pending := m.pending
	m.mu.Unlock()
	if pending == nil {
		return
	}
	m.log("finishing " + pending.String() + " after the run")
	if m.drive(ctx, *pending) {
		m.finished(*pending)
		return
	}
	m.mu.Lock()
	m.figures.Unfinished = append(m.figures.Unfinished, pending.String())
	m.mu.Unlock()
}

func (m *Mover) finished(move replicaMove) {
	m.mu.Lock()
	m.pending, m.last = nil, &move
	m.figures.Done++
	if move.Leader {
		m.figures.LeaderMoves++
	}
	if move.Back {
		m.figures.MovesBack++
	}
	m.mu.Unlock()
	m.record(FaultMoveReplica, "end", move, "")
}

func (m *Mover) record(kind FaultKind, phase string, move replicaMove, detail string) {
	m.rec.Record(Event{TimeNs: m.rec.Now(), Type: EventFault, Process: runnerProcess, Fault: string(kind),
		Phase: phase, Nodes: []string{move.From, move.To}, Detail: fmt.Sprintf("shard %d %s", move.Shard, detail)})
	if phase == "start" {
		m.log(fmt.Sprintf("fault %-14s %s %s", kind, move, detail))
	} else {
		m.log(fmt.Sprintf("moved %s", move))
	}
}

// next chooses the next move from the shards' configurations: the previous move taken back
// when it was not itself one, else a random shard's replica (its leader's half of the time) to
// a node without one. False when the configurations cannot be read or are not settled.
func (m *Mover) next(ctx context.Context) (replicaMove, bool) {
	read, cancel := context.WithTimeout(ctx, layoutReadMax)
	layout := m.cluster.Layout(read)
	cancel()
	if len(layout) < m.cluster.shards {
		return replicaMove{}, false
	}
	for _, s := range layout {
		if len(s.Nonvoters) > 0 || len(s.Voters()) != len(m.cluster.Nodes[:m.cluster.bootstrapCount]) {
			return replicaMove{}, false // a move not finished (a resumed one settles it)
		}
	}
	m.mu.Lock()
	last := m.last
	m.mu.Unlock()
	if last != nil && !last.Back {
		s := layout[last.Shard]
		back := replicaMove{Shard: last.Shard, From: last.To, To: last.From, Back: true, Leader: s.LeaderID == last.To}
		if slices.Contains(s.Replicas, back.From) && !slices.Contains(s.Replicas, back.To) {
			return back, true
		}
	}
	shardID := m.rng.IntN(m.cluster.shards)
	s := layout[shardID]
	var targets []string
	for _, n := range m.cluster.Nodes {
		if !slices.Contains(s.Replicas, n.ID) {
			targets = append(targets, n.ID)
		}
	}
	voters := s.Voters()
	if len(targets) == 0 || len(voters) == 0 {
		return replicaMove{}, false
	}
	move := replicaMove{Shard: shardID, To: targets[m.rng.IntN(len(targets))]}
	if m.rng.IntN(2) == 0 && slices.Contains(voters, s.LeaderID) {
		move.From, move.Leader = s.LeaderID, true
	} else {
		move.From = voters[m.rng.IntN(len(voters))]
		move.Leader = move.From == s.LeaderID
	}
	return move, true
}

// drive runs the move through POST /cluster/move-replica on a random live node until a node
// answers that it is done (MoveReplica resumes from the configuration, so every attempt
// continues where the last one stopped), or ctx ends. Refusals (400) are retried a while:
// a node just restarted may not know the destination yet.
func (m *Mover) drive(ctx context.Context, move replicaMove) bool {
	refused := 0
	for attempt := 1; ctx.Err() == nil; attempt++ {
		node := m.liveNode()
		if node != nil {
			m.mu.Lock()
			m.figures.Attempts++
			m.mu.Unlock()
			code, answer, err := m.cluster.client.MoveReplica(ctx, node.AdminURL, move.Shard, move.From, move.To, moveAttemptMax)
			if code == 200 {
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			why := fmt.Sprintf("move %s attempt %d through %s: %d %s %v", move, attempt, node.ID, code, answer, err)
			m.rec.Record(Event{TimeNs: m.rec.Now(), Type: EventNote, Process: runnerProcess, Node: node.ID, Detail: why})
			if code == 400 {
				refused++
				m.mu.Lock()
				m.figures.Refused++
				m.mu.Unlock()
				if refused >= moveRefusedMax {
					m.log("giving up " + why)
					return false
				}
			}
		}
		if sleepCtx(ctx, moveRetryInterval) != nil {
			return false
		}
	}
	return false
}

// liveNode picks a random node that runs and is not paused (nil if none).
func (m *Mover) liveNode() *Node {
	var live []*Node
	for i, n := range m.cluster.Nodes {
		if m.cluster.Running(i) && !m.cluster.Paused(i) {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[m.rng.IntN(len(live))]
}

// killDuring kills target (the move's source or destination) after delay, as one fault of
// the nemesis (no other fault runs meanwhile), holds, and starts it again.
func (m *Mover) killDuring(stop context.Context, move replicaMove, target string, delay, hold time.Duration) {
	if sleepCtx(stop, delay) != nil {
		return
	}
	i := slices.IndexFunc(m.cluster.Nodes, func(n *Node) bool { return n.ID == target })
	detail := fmt.Sprintf("during %s, hold %v", move, hold.Round(time.Millisecond))
	if err := m.nemesis.KillAndRestart(stop, FaultKillMoving, i, hold, detail); err != nil {
		m.log(fmt.Sprintf("kill during %s: %v", move, err))
		return
	}
	m.mu.Lock()
	m.figures.KillsDuring++
	m.mu.Unlock()
}

// Layout reads every live node's GET /cluster and keeps, per shard, the configuration its
// leader reports (nodes that cannot answer are skipped).
func (c *Cluster) Layout(ctx context.Context) map[int]ShardLayout {
	layout := map[int]ShardLayout{}
	for i, n := range c.Nodes {
		if !c.Running(i) || c.Paused(i) {
			continue
		}
		probe, cancel := context.WithTimeout(ctx, 3*time.Second)
		led, err := c.client.Layout(probe, n.AdminURL)
		cancel()
		if err != nil {
			continue
		}
		for id, s := range led {
			layout[id] = s
		}
	}
	return layout
}
