package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gigaledger/gigaledger/shard"
)

// Adding a replica to a running shard: the new replica joins as a non-voter, catches up, and
// only then becomes a voter, so that it never counts in a quorum it cannot yet serve (a fresh
// voter in a 3-voter shard makes 4, quorum 3, and would stall commits while one old replica is
// slow or gone). See DESIGN.md, "Adding nodes and moving replicas".
const (
	// catchUpLagMaxCount is how far (log entries) a new replica's applied index may trail the
	// leader's commit index when it is promoted: small enough that the promotion adds a voter
	// that can take part in the next commits at once, large enough that a replica following a
	// busy leader (entries in flight, a trailing no-op) is recognised as caught up.
	catchUpLagMaxCount = 64
	// catchUpPollInterval is how often the catch-up is measured.
	catchUpPollInterval = 100 * time.Millisecond
	// catchUpLogInterval is how often a catch-up in progress is logged.
	catchUpLogInterval = 5 * time.Second
	// catchUpStallMax bounds how long the new replica's applied index may stay still (a
	// snapshot being sent, a dead or unreachable node) before the move gives up. The non-voter
	// is left in place: it costs no quorum, and running the move again resumes the wait.
	catchUpStallMax = 2 * time.Minute
	// retireTimeout bounds asking a node to close a replica it no longer holds. Replacing a
	// dead node tries it once; a live one must answer.
	retireTimeout = 10 * time.Second
)

var (
	// ErrCatchUpStalled means a replica being added stopped catching up (its applied index
	// stayed still for catchUpStallMax); it is left as a non-voter, and the move can be re-run.
	ErrCatchUpStalled = errors.New("cluster: the new replica stopped catching up")
	// ErrNoReplica means the node named as a move's source holds no replica of the shard
	// (and the destination none either: nothing to resume).
	ErrNoReplica = errors.New("cluster: the node holds no replica of the shard")
	// ErrSourceNotRetired means a move is done in the configuration but its source has not
	// deleted its replica yet (it is down or unreachable): run the move again.
	ErrSourceNotRetired = errors.New("cluster: the move is done, but the source did not delete its old replica")
	// ErrInvalidMove means a move named no node, or the same node twice.
	ErrInvalidMove = errors.New("cluster: a move needs two different node IDs")
	// ErrUnknownNode means no address is known for a node ID (not a gossip member, not a
	// bootstrap member).
	ErrUnknownNode = errors.New("cluster: no address known for the node (not a member, or not yet seen by this node's gossip)")
	// ErrDestinationHoldsReplica means a move's destination is already a voter of the shard
	// while the source still is one and the shard has no voter beyond its replica count: the
	// move would only remove the source, leaving the shard one copy short.
	ErrDestinationHoldsReplica = errors.New("cluster: the destination already holds a replica of the shard")
	// ErrReplicaCountShort means removing a move's source would leave the shard fewer voters
	// than the replica count: another move put its destination in meanwhile. Nothing of this
	// move is undone; the source keeps its replica.
	ErrReplicaCountShort = errors.New("cluster: removing the source would leave the shard a replica short")
	// ErrDestinationTooOld means a move's destination runs a binary that does not implement the
	// shard's rules version: it would stop at the raise in the shard's log.
	ErrDestinationTooOld = errors.New("cluster: the destination's binary does not implement the shard's rules")
	// ErrDestinationNotFresh means a move's destination holds a replica of the shard with a log
	// of its own while not a member of the shard: another cluster's (a node started alone) or
	// one an earlier membership left. Made a member, it would keep the state it applied and
	// count as caught up; the source would then be deleted.
	ErrDestinationNotFresh = errors.New("cluster: the destination holds a replica of the shard with its own history")
)

// afterAddNonvoter, set only by tests (export_test.go), runs once a replica is a non-voter
// and before the wait for its catch-up, so that a test can look at the shard in that state.
var afterAddNonvoter func(shardID int, nodeID string)

// MoveResult says what MoveReplica (or each shard of ReplaceNode) did.
type MoveResult struct {
	Shard int    `json:"shard"`
	From  string `json:"fromNodeId"`
	To    string `json:"toNodeId"`
	// Moved is false when the destination was already a voter and the source gone: an
	// earlier run finished the move.
	Moved bool `json:"moved"`
	// CaughtUpIndex is the leader's commit index when the new replica was found caught up;
	// CatchUpMs how long that took from the AddNonvoter (0 when nothing was added).
	CaughtUpIndex uint64 `json:"caughtUpIndex"`
	CatchUpMs     int64  `json:"catchUpMs"`
	// Entries is how many log entries the new replica applied while catching up.
	Entries uint64 `json:"entries"`
}

// MoveReplica moves shardID's replica from node fromID to node toID, one replica, one shard:
//
//  1. toID opens an empty replica (it must be running and know the placement: a gossip
//     member started with Join and no BootstrapExpect learns it);
//  2. the leader adds it as a non-voter, and the move waits (bounded, progress logged) until
//     its applied index is within catchUpLagMaxCount of the leader's commit index;
//  3. the leader promotes it to a voter (AddVoter), then removes fromID (RemoveServer);
//  4. fromID closes its replica and deletes its data.
//
// Every step is idempotent and each run starts by reading the configuration, so a move that
// failed part way (a leader change, ctx ended, a stalled catch-up) finishes when run again,
// on any node. toID's address comes from gossip or the bootstrap members.
func (n *Node) MoveReplica(ctx context.Context, shardID int, fromID, toID string) (MoveResult, error) {
	defer n.moves.begin()()
	result := MoveResult{Shard: shardID, From: fromID, To: toID}
	if fromID == "" || toID == "" || fromID == toID {
		return result, fmt.Errorf("move shard %d from %q to %q: %w", shardID, fromID, toID, ErrInvalidMove)
	}
	if shardID < 0 || shardID >= n.ShardCount() {
		return result, fmt.Errorf("move shard %d: %w", shardID, ErrNoSuchShard)
	}
	toAddr := n.raftAddrOf(toID)
	if toAddr == "" {
		return result, fmt.Errorf("move shard %d to %s: %w", shardID, toID, ErrUnknownNode)
	}
	servers, err := n.shardServers(ctx, shardID)
	if err != nil {
		return result, fmt.Errorf("move shard %d: %w", shardID, err)
	}
	from, to := peerOf(servers, fromID), peerOf(servers, toID)
	if from == nil && to == nil {
		return result, fmt.Errorf("move shard %d: %s: %w", shardID, fromID, ErrNoReplica)
	}
	if from == nil && n.raftAddrOf(fromID) == "" {
		// Not a member anywhere: there is no earlier run to finish (it answered "run the move
		// again" for a source that never existed).
		return result, fmt.Errorf("move shard %d from %s: %w", shardID, fromID, ErrUnknownNode)
	}
	return n.moveReplica(ctx, shardID, fromID, toID, toAddr, servers, true)
}

// ReplaceNode moves every replica oldID holds to newID (at newRaftAddr), shard by shard, each
// as MoveReplica does: newID is added as a non-voter, catches up, is promoted, and oldID is
// removed. oldID is normally dead: asking it to delete its replicas is tried once and only
// logged when it fails.
//
// The new node must already run with the placement: with gossip it learns it from any member
// when it joins (start it with Join and no BootstrapExpect); with a static placement it is
// started with the same StaticNodes and StaticPlacement as the others. Each step is
// idempotent, so a failed ReplaceNode can be run again.
func (n *Node) ReplaceNode(ctx context.Context, oldID, newID, newRaftAddr string) error {
	if oldID == "" || newID == "" || newRaftAddr == "" || oldID == newID {
		return fmt.Errorf("replace node %q by %q at %q: bad arguments", oldID, newID, newRaftAddr)
	}
	if other := n.nodeIDAt(newRaftAddr); other != "" && other != oldID && other != newID {
		// Another member's port (this node's own, say): the new replicas would be that node's,
		// and the move could never finish (it answered 503 "safe to repeat" for ever). The old
		// node's address stays allowed: a new machine may take a dead one's address.
		return fmt.Errorf("replace node %s by %s: %s is the address of node %s: %w", oldID, newID, newRaftAddr, other, ErrInvalidMove)
	}
	defer n.moves.begin()()
	worked := false
	for shardID := range n.ShardCount() {
		servers, err := n.shardServers(ctx, shardID)
		if err != nil {
			return fmt.Errorf("replace node: shard %d: %w", shardID, err)
		}
		// A shard is ours to finish when oldID is still in it, or when newID is in it as a
		// non-voter (an earlier run stopped between the add and the promotion).
		if to := peerOf(servers, newID); peerOf(servers, oldID) == nil && (to == nil || !to.Nonvoter) {
			continue
		}
		worked = true
		if _, err := n.moveReplica(ctx, shardID, oldID, newID, newRaftAddr, servers, false); err != nil {
			return fmt.Errorf("replace node: %w", err)
		}
	}
	if !worked && n.raftAddrOf(oldID) == "" {
		// Nothing to move or finish, and no one knows the node: a mistyped ID, not a replace
		// done (it answered "replaced"). A dead node long gone from gossip that no shard names
		// any more was replaced already.
		return fmt.Errorf("replace node %s: %w", oldID, ErrUnknownNode)
	}
	return nil
}

// moveReplica runs the steps of MoveReplica from the configuration servers just read.
// retireMust says whether the source's answer to "delete your replica" is required (a live
// node being drained) or only attempted (a dead node being replaced).
func (n *Node) moveReplica(ctx context.Context, shardID int, fromID, toID, toAddr string, servers []shard.Peer, retireMust bool) (MoveResult, error) {
	result := MoveResult{Shard: shardID, From: fromID, To: toID}
	start := time.Now()
	if to := peerOf(servers, toID); to != nil && !to.Nonvoter && peerOf(servers, fromID) != nil {
		// The destination is a voter already. Only an earlier run's promotion (a voter beyond
		// the replica count) lets the source go now; otherwise the destination held a replica
		// before, and removing the source would leave the shard one copy short (a probe moved
		// a shard to a node that held it, and replace-node named an existing member: each
		// answered done and deleted a copy).
		if voters, want := voterCount(servers), n.replicaCountSetting(); want == 0 || voters <= want {
			return result, fmt.Errorf("move shard %d: %s has one of its %d voters (replica count %d): %w",
				shardID, toID, voters, want, ErrDestinationHoldsReplica)
		}
	}
	if to := peerOf(servers, toID); to == nil || to.Nonvoter {
		added, err := n.addReplica(ctx, shardID, toID, toAddr, to != nil)
		if err != nil {
			return result, fmt.Errorf("move shard %d to %s: %w", shardID, toID, err)
		}
		result.Moved, result.CaughtUpIndex, result.CatchUpMs, result.Entries = true, added.caughtUpIndex, added.catchUpMs, added.entries
	}
	if peerOf(servers, fromID) != nil || result.Moved {
		if err := n.removeSource(ctx, shardID, fromID, toID, n.votersToKeep(servers, toID)); err != nil {
			return result, fmt.Errorf("move shard %d: %w", shardID, err)
		}
		result.Moved = true
	}
	if servers, err := n.shardServers(ctx, shardID); err == nil {
		n.recordReplicas(shardID, servers)
	}
	if err := n.retireAt(ctx, shardID, fromID); err != nil {
		// Required of a move (a live node being drained must let go of its replica), also
		// when an earlier run removed the source and this one only resumes: that run may have
		// failed exactly here (the source was down), and a source that keeps its replica
		// reopens it at every start, out of the configuration, answering nothing. Replacing a
		// dead node only tries.
		if retireMust {
			// The cause is only described: the source's address unknown for now (it is down)
			// is no refusal of the move, which must be run again.
			return result, fmt.Errorf("move shard %d: %s: %w (run the move again): %v", shardID, fromID, ErrSourceNotRetired, err)
		}
		n.logger.Warn("the replaced node did not delete its old replica; it must not be started with that data again",
			"shard", shardID, "node", fromID, "error", err)
	}
	if result.Moved {
		n.logger.Info("moved a replica", "shard", shardID, "from", fromID, "to", toID, "to_addr", toAddr,
			"caught_up_index", result.CaughtUpIndex, "catch_up_ms", result.CatchUpMs, "entries", result.Entries,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return result, nil
}

// votersToKeep is how many voters a move must leave its shard: as many as it had, the
// destination apart, when this run began (servers), and never more than the replica count (a
// shard that has more sheds them by moves). A shard short of replicas can still move one.
func (n *Node) votersToKeep(servers []shard.Peer, toID string) int {
	keep := 0
	for _, p := range servers {
		if !p.Nonvoter && p.ID != toID {
			keep++
		}
	}
	if want := n.replicaCountSetting(); want > 0 && want < keep {
		keep = want
	}
	return max(keep, 1)
}

// removeSource removes fromID from shardID's configuration once toID votes in its place,
// leaving at least keep voters. The configuration is read again first: another move may have
// changed it since this one began (two moves of a shard to one destination, run at once or one
// while the other waited for the catch-up, each saw the destination join and each removed its
// source: a probe's shard was left with one replica). The leader checks again on the
// configuration its removal replaces.
func (n *Node) removeSource(ctx context.Context, shardID int, fromID, toID string, keep int) error {
	current, err := n.shardServers(ctx, shardID)
	if err != nil {
		return fmt.Errorf("remove server %s: %w", fromID, err)
	}
	if from := peerOf(current, fromID); from != nil && !from.Nonvoter {
		if voters := voterCount(current); voters-1 < keep {
			return fmt.Errorf("remove server %s: the shard has %d voters with it and must keep %d: %s took another replica's place, "+
				"not this one's (another move ran meanwhile); %s keeps its replica: %w", fromID, voters, keep, toID, fromID, ErrReplicaCountShort)
		}
	}
	n.handOffLeadership(ctx, shardID, fromID)
	_, err = n.adminCall(ctx, shardID, rpcKindRemoveServerKeeping, fmt.Appendf(nil, "%s\x00%s\x00%d", fromID, toID, keep))
	if errors.Is(err, errBadRequest) && strings.Contains(err.Error(), "unknown request kind") {
		// A leader of an earlier release (a rolling upgrade) does not know the guarded removal:
		// the check above stands alone, as the plain removal did before (a probe's move stopped
		// after promoting the destination, answering "safe to repeat" until the upgrade).
		_, err = n.adminCall(ctx, shardID, rpcKindRemoveServer, []byte(fromID))
	}
	if err != nil {
		return fmt.Errorf("remove server %s: %w", fromID, err)
	}
	return nil
}

// handOffLeadership moves shardID's leadership away from fromID when fromID leads, before
// fromID is removed: a leader that commits its own removal steps down and leaves the shard
// without a leader for an election timeout, while a transfer makes the most up-to-date other
// voter leader at once. Best effort: on failure the removal goes ahead all the same.
func (n *Node) handOffLeadership(ctx context.Context, shardID int, fromID string) {
	leader, err := n.leaderStats(ctx, shardID)
	if err != nil || leader.NodeID != fromID {
		return
	}
	if _, err := n.adminCall(ctx, shardID, rpcKindTransferLeadership, []byte(fromID)); err != nil {
		n.logger.Info("leadership not handed off before removing the leader; the shard elects a new one",
			"shard", shardID, "leader", fromID, "error", err)
		return
	}
	n.logger.Info("handed leadership off before removing the leader", "shard", shardID, "from", fromID)
}

// addedReplica is what addReplica measured.
type addedReplica struct {
	caughtUpIndex uint64
	catchUpMs     int64
	entries       uint64
}

// addReplica makes nodeID (at addr) a caught-up voter of shardID: open its replica, add it as
// a non-voter (unless present already as one), wait until it has caught up, promote it.
func (n *Node) addReplica(ctx context.Context, shardID int, nodeID, addr string, nonvoterAlready bool) (addedReplica, error) {
	var added addedReplica
	if !nonvoterAlready {
		// A new member starts empty and takes the shard's log from its leader. A replica with a
		// log that is not a member came from elsewhere (a probe replaced a node by one started
		// alone: the move counted its own applied index as caught up, deleted the source's
		// data, and the shard's ledger was that node's).
		switch stats, err := n.replicaStatsAt(ctx, addr, shardID); {
		case errors.Is(err, ErrNotHosted):
		case err != nil:
			return added, fmt.Errorf("read the replica on %s: %w", addr, err)
		case stats.LastLogIndex > 0 || stats.AppliedIndex > 0:
			return added, fmt.Errorf("%s holds a replica of shard %d that is not a member of it (log index %d, applied index %d): "+
				"a node started on its own, or data an earlier membership left; start it with an empty data directory: %w",
				nodeID, shardID, stats.LastLogIndex, stats.AppliedIndex, ErrDestinationNotFresh)
		}
	}
	if _, err := n.callAt(ctx, addr, shardID, rpcKindOpenReplica, nil); err != nil {
		return added, fmt.Errorf("open replica on %s: %w", addr, err)
	}
	if !nonvoterAlready {
		if err := n.checkDestinationRules(ctx, shardID, nodeID, addr); err != nil {
			return added, err
		}
		if _, err := n.adminCall(ctx, shardID, rpcKindAddNonvoter, []byte(nodeID+"\x00"+addr)); err != nil {
			return added, fmt.Errorf("add non-voter %s: %w", nodeID, err)
		}
	}
	if hook := afterAddNonvoter; hook != nil {
		hook(shardID, nodeID)
	}
	added, err := n.awaitCaughtUp(ctx, shardID, nodeID, addr)
	if err != nil {
		return added, err
	}
	if _, err := n.adminCall(ctx, shardID, rpcKindAddVoter, []byte(nodeID+"\x00"+addr)); err != nil {
		return added, fmt.Errorf("promote %s to voter: %w", nodeID, err)
	}
	return added, nil
}

// checkDestinationRules refuses a destination whose binary implements an older rules version
// than the shard follows: replaying the shard's log it would meet the raise and stop, and with
// it every replica of its node (a probe moved a rules-6 shard to a node not yet upgraded, in a
// rolling upgrade; the node stopped at every start). The replica opened for the move is let go.
func (n *Node) checkDestinationRules(ctx context.Context, shardID int, nodeID, addr string) error {
	leader, err := n.leaderStats(ctx, shardID)
	if err != nil {
		return fmt.Errorf("read the leader's rules: %w", err)
	}
	destination, err := n.replicaStatsAt(ctx, addr, shardID)
	if err != nil {
		return fmt.Errorf("read the replica on %s: %w", addr, err)
	}
	if destination.RulesImplemented >= leader.Rules {
		return nil
	}
	if err := n.retireAt(ctx, shardID, nodeID); err != nil {
		n.logger.Warn("a refused move's destination did not let its empty replica go", "shard", shardID, "node", nodeID, "error", err)
	}
	return fmt.Errorf("%s runs a binary implementing rules version %d; shard %d follows version %d: upgrade %s first: %w",
		nodeID, destination.RulesImplemented, shardID, leader.Rules, nodeID, ErrDestinationTooOld)
}

// awaitCaughtUp polls the leader's commit index and the new replica's applied index until the
// replica trails by at most catchUpLagMaxCount entries. It logs progress every
// catchUpLogInterval and gives up with ErrCatchUpStalled when the applied index stays still for
// catchUpStallMax.
func (n *Node) awaitCaughtUp(ctx context.Context, shardID int, nodeID, addr string) (addedReplica, error) {
	start := time.Now()
	lastProgress, lastLog := start, start
	var firstApplied, lastApplied uint64
	var lastErr error
	first := true
	ticker := time.NewTicker(catchUpPollInterval)
	defer ticker.Stop()
	for {
		leader, leaderErr := n.leaderStats(ctx, shardID)
		replica, replicaErr := n.replicaStatsAt(ctx, addr, shardID)
		if err := errors.Join(leaderErr, replicaErr); err != nil {
			lastErr = err
		} else {
			if first {
				firstApplied, lastApplied, first = replica.AppliedIndex, replica.AppliedIndex, false
			}
			if replica.AppliedIndex > lastApplied {
				lastApplied, lastProgress = replica.AppliedIndex, time.Now()
			}
			if replica.AppliedIndex+catchUpLagMaxCount >= leader.CommitIndex {
				return addedReplica{caughtUpIndex: leader.CommitIndex, catchUpMs: time.Since(start).Milliseconds(),
					entries: replica.AppliedIndex - firstApplied}, nil
			}
			if time.Since(lastLog) >= catchUpLogInterval {
				lastLog = time.Now()
				n.logger.Info("new replica catching up", "shard", shardID, "node", nodeID, "applied", replica.AppliedIndex,
					"leader_commit", leader.CommitIndex, "behind", leader.CommitIndex-replica.AppliedIndex,
					"elapsed", time.Since(start).Round(time.Millisecond))
			}
		}
		if time.Since(lastProgress) >= catchUpStallMax {
			return addedReplica{}, fmt.Errorf("shard %d, %s at applied index %d: %w (last error: %v)",
				shardID, nodeID, lastApplied, ErrCatchUpStalled, lastErr)
		}
		select {
		case <-ctx.Done():
			return addedReplica{}, fmt.Errorf("shard %d, %s catching up at applied index %d: %w", shardID, nodeID, lastApplied, ctx.Err())
		case <-ticker.C:
		}
	}
}

// leaderStats reads shardID's leader's replica stats (its commit index).
func (n *Node) leaderStats(ctx context.Context, shardID int) (shard.Stats, error) {
	var stats shard.Stats
	payload, err := n.adminCall(ctx, shardID, rpcKindReplicaStats, []byte{1})
	if err == nil {
		err = json.Unmarshal(payload, &stats)
	}
	return stats, err
}

// replicaStatsAt reads the stats of shardID's replica on the node at address.
func (n *Node) replicaStatsAt(ctx context.Context, address string, shardID int) (shard.Stats, error) {
	var stats shard.Stats
	payload, err := n.callAt(ctx, address, shardID, rpcKindReplicaStats, nil)
	if err == nil {
		err = json.Unmarshal(payload, &stats)
	}
	return stats, err
}

// retireAt asks nodeID to close and delete its replica of shardID (it checks with the leader
// that it is no longer a member). A node whose address is unknown is skipped.
func (n *Node) retireAt(ctx context.Context, shardID int, nodeID string) error {
	address := n.raftAddrOf(nodeID)
	if address == "" {
		return fmt.Errorf("%s: %w", nodeID, ErrUnknownNode)
	}
	ctx, cancel := context.WithTimeout(ctx, retireTimeout)
	defer cancel()
	_, err := n.callAt(ctx, address, shardID, rpcKindRetireReplica, nil)
	return err
}

// voterCount is how many of servers vote.
func voterCount(servers []shard.Peer) int {
	count := 0
	for _, p := range servers {
		if !p.Nonvoter {
			count++
		}
	}
	return count
}

// replicaCountSetting is the cluster's replicas per shard (0: not known yet).
func (n *Node) replicaCountSetting() int {
	if file := n.file.Load(); file != nil {
		return file.ReplicaCount
	}
	return 0
}

func peerOf(servers []shard.Peer, id string) *shard.Peer {
	i := slices.IndexFunc(servers, func(p shard.Peer) bool { return p.ID == id })
	if i < 0 {
		return nil
	}
	return &servers[i]
}
