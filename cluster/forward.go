package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gigaledger/gigaledger/shard"
	"github.com/gigaledger/gigaledger/shard/coalesce"
)

// Propose applies command to shardID through its leader and returns its result: locally when
// this node leads, otherwise forwarded over the leader's port and decoded with the codec. It
// moves on to another node, a bounded number of times within ctx, only when the command
// provably was not applied (a not-leader answer, or a leader that could not be reached).
// Errors keep their identity: ErrNoSuchShard (nothing tried), shard.ErrOutcomeUnknown (never
// resent), shard.ErrOverloaded, shard.ErrCommandTooLarge, shard.ErrClosed (this node is
// closing), ErrNoLeader, or ctx's error.
func (n *Node) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	var result any
	err := n.callLeader(ctx, leaderCall{
		what: "propose", shardID: shardID, kind: rpcKindPropose, payload: command, patience: forwardPatience,
		serveLocally: func(hs *hostedShard) error {
			var err error
			result, err = hs.shard.Propose(ctx, command)
			return err
		},
		answer: func(payload []byte) error {
			var err error
			result, err = n.cfg.Codec.DecodeResult(payload)
			return err
		},
	})
	return result, err
}

// LinearizableRead returns once the local state machine of shardID reflects every write
// acknowledged before it was called: on the leader, ReadIndex then WaitApplied; on a follower,
// the leader's read point over the forwarding RPC, then WaitRead locally (which applies the
// local log up to it when it holds the leader's entry there). The caller then reads
// StateMachine(shardID). ErrNotHosted when this node holds no replica: a shard hosted
// elsewhere is read with Query.
func (n *Node) LinearizableRead(ctx context.Context, shardID int) error {
	return n.fenceRead(ctx, shardID, 0)
}

// ErrReplicaLagging means this node's replica did not apply a read's read point within
// queryLagPatience: it lags far behind (just restarted, catching up), or it is outside its
// shard's configuration and applies nothing (a move opened it and stopped, or removed it and
// has not retired it). Ask the leader instead (Query).
var ErrReplicaLagging = errors.New("cluster: the local replica lags behind its leader")

// FenceLocalRead fences a linearizable read of this node's replica of shardID as
// LinearizableRead does, but gives up with ErrReplicaLagging when a follower replica does not
// apply the read point within queryLagPatience (a leader always waits: it applies its own
// log). Reads that may be answered elsewhere use it (Query, the router's reads), so that a
// lagging replica never holds them for their whole deadline.
func (n *Node) FenceLocalRead(ctx context.Context, shardID int) error {
	return n.fenceRead(ctx, shardID, queryLagPatience)
}

// fenceRead is LinearizableRead (patience 0: wait as long as ctx) and FenceLocalRead.
func (n *Node) fenceRead(ctx context.Context, shardID int, patience time.Duration) error {
	hs, err := n.localShard(shardID)
	if err != nil {
		return fmt.Errorf("linearizable read: %w", err)
	}
	point, err := n.readPoint(ctx, hs)
	if err != nil {
		return err
	}
	if hs.shard.AppliedIndex() >= point.Index {
		return nil // the common case: no timer for the patience
	}
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if patience > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, patience)
	}
	err = hs.shard.WaitRead(waitCtx, point)
	cancel()
	switch {
	case err == nil:
		return nil
	case patience == 0 || ctx.Err() != nil:
	case hs.shard.IsLeader():
		if err := hs.shard.WaitApplied(ctx, point.Index); err != nil {
			return fmt.Errorf("linearizable read: %w", err)
		}
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("shard %d, read index %d: %w", shardID, point.Index, ErrReplicaLagging)
	}
	return fmt.Errorf("linearizable read: %w", err)
}

// readIndexRoundTimeout bounds one shared read-index round (readPoint): about forwardPatience
// without a leader, plus the last attempt's RPC. A caller whose own ctx ends sooner stops
// waiting; the round goes on for the others.
const readIndexRoundTimeout = leaderWaitMax + 2*time.Second

// readPointPayloadWithTerm asks the leader to answer a read index with the term of its entry
// (16 bytes: index, term). An empty payload gets the index alone (8 bytes), as nodes before
// the term was carried ask and answer.
var readPointPayloadWithTerm = []byte{1}

// newReadRounds returns the read-index rounds of a hosted shard: every read on this node that
// arrives while a round is in flight shares the next one, so a follower sends its leader one
// read-index request per round rather than one per read, and the leader's verifier sees one
// caller. A read only ever uses a round that started after it arrived (shard/coalesce).
func (n *Node) newReadRounds(shardID int) *coalesce.Rounds[shard.ReadPoint] {
	return coalesce.New(func() (shard.ReadPoint, error) {
		ctx, cancel := context.WithTimeout(context.Background(), readIndexRoundTimeout)
		defer cancel()
		return n.fetchReadPoint(ctx, shardID)
	}, nil)
}

// readPoint is shardID's read point from its leader, from a round shared with this node's
// other reads of the shard.
func (n *Node) readPoint(ctx context.Context, hs *hostedShard) (shard.ReadPoint, error) {
	point, err := hs.readRounds.Do(ctx, n.closing)
	switch {
	case err == nil:
		return point, nil
	case errors.Is(err, coalesce.ErrStopped):
		return point, fmt.Errorf("read index: %w", shard.ErrClosed)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return point, fmt.Errorf("read index: %w", err)
	}
	return point, err // the round's own error, named already
}

// fetchReadPoint asks shardID's leader for a read point: this node's replica when it leads
// (the index alone: a leader never applies ahead of raft), else the leader over the RPC, with
// the term of the entry at the index.
func (n *Node) fetchReadPoint(ctx context.Context, shardID int) (shard.ReadPoint, error) {
	var point shard.ReadPoint
	err := n.callLeader(ctx, leaderCall{
		what: "read index", shardID: shardID, kind: rpcKindReadIndex, payload: readPointPayloadWithTerm,
		resendable: true, patience: forwardPatience,
		serveLocally: func(hs *hostedShard) error {
			var err error
			point.Index, err = hs.shard.ReadIndex(ctx)
			return err
		},
		answer: func(payload []byte) error {
			var err error
			point, err = decodeReadPoint(payload)
			return err
		},
	})
	return point, err
}

// encodeReadPoint is a read-index answer: the index, and the term when the asker wants it.
func encodeReadPoint(point shard.ReadPoint, withTerm bool) []byte {
	payload := binary.BigEndian.AppendUint64(nil, point.Index)
	if withTerm {
		payload = binary.BigEndian.AppendUint64(payload, point.Term)
	}
	return payload
}

// decodeReadPoint reads a read-index answer of either form (an older leader answers the index
// alone: Term 0, which makes the follower wait for raft rather than apply ahead).
func decodeReadPoint(payload []byte) (shard.ReadPoint, error) {
	switch len(payload) {
	case 8:
		return shard.ReadPoint{Index: binary.BigEndian.Uint64(payload)}, nil
	case 16:
		return shard.ReadPoint{Index: binary.BigEndian.Uint64(payload), Term: binary.BigEndian.Uint64(payload[8:])}, nil
	}
	return shard.ReadPoint{}, fmt.Errorf("%d-byte read index", len(payload))
}

// queryLagPatience is how long Query waits for this node's follower replica to apply the read
// index before it asks the leader instead. A replica that lags far behind must not hold every
// read it serves: after a restart, hashicorp/raft's leader keeps backing off its replication
// to the returned follower (up to about 10 s) even once heartbeats succeed again, and the
// fault suite saw a read (a cross-shard transaction's wait) hang that long on such a node.
const queryLagPatience = 250 * time.Millisecond

// Query runs a read-only query against shardID, linearizably: locally when this node hosts
// the shard (after the read index is applied here; a follower that has not applied it within
// queryLagPatience has the leader answer instead), else on a node that does, which fences the
// same way before it answers (the leader first, then the other replicas: any of them can). The
// query and answer bytes are Config.Query's own encoding.
func (n *Node) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.hosted(shardID) != nil {
		if n.cfg.Query == nil {
			return nil, errors.New("this node answers no queries")
		}
		err := n.FenceLocalRead(ctx, shardID)
		if err == nil {
			return n.cfg.Query(ctx, shardID, query)
		}
		if !errors.Is(err, ErrReplicaLagging) && !errors.Is(err, ErrNotHosted) {
			return nil, err
		}
		n.logger.Debug("a lagging (or just retired) replica has the leader answer a query", "shard", shardID, "error", err)
	}
	var answer []byte
	err := n.callLeader(ctx, leaderCall{
		what: "query", shardID: shardID, kind: rpcKindQuery, payload: query, resendable: true, patience: forwardPatience,
		answer: func(payload []byte) error {
			answer = payload
			return nil
		},
	})
	return answer, err
}

// QueryLeader runs a query on shardID's leader, as Query does on another node: a query whose
// answer waits for something the leader applies first (routing's wait for a cross-shard
// transaction to be done), which a follower would learn only with the next append. It is served
// here when this node's replica leads. A node that does not lead answers it as any forwarded
// query, fenced (leadership may move meanwhile).
func (n *Node) QueryLeader(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.cfg.Query == nil {
		return nil, errors.New("this node answers no queries")
	}
	var answer []byte
	err := n.callLeader(ctx, leaderCall{
		what: "query the leader", shardID: shardID, kind: rpcKindQuery, payload: query, resendable: true, patience: forwardPatience,
		serveLocally: func(hs *hostedShard) error {
			if !hs.shard.IsLeader() {
				return fmt.Errorf("query on %s: %w", n.cfg.NodeID, shard.ErrNotLeader)
			}
			var err error
			answer, err = n.answerQuery(ctx, shardID, query)
			return err
		},
		answer: func(payload []byte) error {
			answer = payload
			return nil
		},
	})
	return answer, err
}

// answerQuery fences a linearizable read on a hosted shard and runs the configured query: a
// forwarded query, answered here whatever the lag (it is never forwarded again).
func (n *Node) answerQuery(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if n.cfg.Query == nil {
		return nil, errors.New("this node answers no queries")
	}
	if err := n.LinearizableRead(ctx, shardID); err != nil {
		return nil, err
	}
	return n.cfg.Query(ctx, shardID, query)
}

// leaderCall is one request for a shard's leader: a proposal, a read index, a query or an
// admin request. callLeader finds a node that takes it and delivers it.
type leaderCall struct {
	what    string // names the request in errors: "propose", "read index", ...
	shardID int
	kind    byte // the RPC kind when another node (or this one, without serveLocally) serves it
	payload []byte
	// resendable says the request may be sent again after a failure that may have delivered
	// it: it changes nothing (read index, query, servers) or changes it idempotently
	// (membership changes). A proposal is not: once any byte of it may have left this node,
	// its outcome is unknown (shard.ErrOutcomeUnknown) and it is never sent again, to any node.
	resendable bool
	// serveLocally, when set, serves the request on this node's replica, without the RPC,
	// when the local replica is the one to ask. nil sends it over the RPC even to this node.
	serveLocally func(hs *hostedShard) error
	// answer, when set, reads the payload of a remote OK answer. Its error on a proposal
	// leaves the outcome unknown: the command may have applied.
	answer   func(payload []byte) error
	patience callPatience
}

// callPatience bounds one leader call: rounds over the candidate nodes, and the pause between
// rounds (cut short when the local replica sees its leader change).
type callPatience struct {
	roundMaxCount int
	pause         time.Duration
}

var (
	// forwardPatience is for API requests: about leaderWaitMax without a leader, then
	// ErrNoLeader (503 and Retry-After to the client).
	forwardPatience = callPatience{roundMaxCount: forwardAttemptMaxCount, pause: leaderWaitMax / forwardAttemptMaxCount}
	// adminPatience is for membership changes, which ride out several elections.
	adminPatience = callPatience{roundMaxCount: adminAttemptMaxCount, pause: adminRetryInterval}
)

// callLeader is the one loop that finds a shard's leader, for proposals, reads, queries and
// admin requests alike. Each round tries the likely leader, then every replica, following a
// not-leader answer's hint at once, each address once per round; between rounds it pauses. It moves on only when the request provably did not
// apply, or when it is resendable; any other answer is final.
func (n *Node) callLeader(ctx context.Context, call leaderCall) error {
	if call.shardID < 0 || call.shardID >= n.ShardCount() {
		return fmt.Errorf("%s: shard %d of %d: %w", call.what, call.shardID, n.ShardCount(), ErrNoSuchShard)
	}
	var lastErr error
	for round := range call.patience.roundMaxCount {
		if n.closed.Load() {
			return fmt.Errorf("%s: %w", call.what, shard.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", call.what, errors.Join(err, cleanNotSent(lastErr)))
		}
		hs := n.hosted(call.shardID)
		var leaderChanged <-chan struct{}
		if hs != nil {
			leaderChanged = hs.shard.LeaderChanged()
		}
		// The replicas are listed only when the likely leader did not take the request: the
		// common case costs no lookups beyond the first.
		var candidates, tried []string
		if leader := n.likelyLeader(call.shardID); leader != "" {
			candidates = append(candidates, leader)
		}
		replicasListed := false
		for len(candidates) > 0 || !replicasListed {
			if len(candidates) == 0 {
				candidates, replicasListed = n.replicaAddresses(call.shardID), true
				continue
			}
			address := candidates[0]
			candidates = candidates[1:]
			if slices.Contains(tried, address) {
				continue
			}
			tried = append(tried, address)
			hint, moveOn, err := n.attempt(ctx, call, hs, address)
			if err == nil {
				return nil
			}
			if !moveOn {
				return fmt.Errorf("%s: %w", call.what, err)
			}
			lastErr = err
			if hint != "" && !slices.Contains(tried, hint) {
				candidates = append([]string{hint}, candidates...)
			}
		}
		if round+1 < call.patience.roundMaxCount && !pause(ctx, leaderChanged, call.patience.pause) {
			return fmt.Errorf("%s: %w", call.what, errors.Join(ctx.Err(), cleanNotSent(lastErr)))
		}
	}
	return fmt.Errorf("%s: shard %d: %w", call.what, call.shardID, errors.Join(ErrNoLeader, cleanNotSent(lastErr)))
}

// attempt sends call to one address (or serves it locally) and says whether the loop may move
// on to another node after err, with the leader hint the answer carried.
func (n *Node) attempt(ctx context.Context, call leaderCall, hs *hostedShard, address string) (hint string, moveOn bool, err error) {
	if hs != nil && call.serveLocally != nil && address == n.Addr() {
		err := call.serveLocally(hs)
		if err == nil {
			return "", false, nil
		}
		// Only a refusal that provably applied nothing: not the leader (any more), and not
		// this node closing.
		moveOn = errors.Is(err, shard.ErrNotLeader) && !errors.Is(err, shard.ErrOutcomeUnknown) && !errors.Is(err, shard.ErrClosed)
		_, hint = hs.shard.Leader()
		return hint, moveOn, err
	}
	resp, err := n.client.call(ctx, address, uint16(call.shardID), call.kind, call.payload)
	switch {
	case err != nil && (errors.Is(err, errNotSent) || call.resendable):
		return "", true, err
	case err != nil:
		// The leader may have received it: never resend, never claim failure.
		return "", false, fmt.Errorf("forward to %s: %w", address, errors.Join(shard.ErrOutcomeUnknown, err))
	case resp.code == codeOK:
		if call.answer == nil {
			return "", false, nil
		}
		if err := call.answer(resp.payload); err != nil {
			if !call.resendable {
				err = errors.Join(shard.ErrOutcomeUnknown, err)
			}
			return "", false, fmt.Errorf("answer from %s: %w", address, err)
		}
		return "", false, nil
	}
	err = remoteError(address, resp)
	switch {
	case errors.Is(err, errBadRequest):
		moveOn = false // refused as malformed: the same anywhere
	case errors.Is(err, shard.ErrNotLeader), errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotHosted), errors.Is(err, shard.ErrClosed):
		moveOn = true // that node did not apply it (codeOutcomeUnknown is a code of its own)
	default:
		moveOn = call.resendable
	}
	return resp.leaderHint, moveOn, err
}

// likelyLeader is the port address of shardID's leader as far as this node knows: itself when
// its replica leads, else its replica's view, else gossip's; "" when none is known.
func (n *Node) likelyLeader(shardID int) string {
	if hs := n.hosted(shardID); hs != nil {
		if hs.shard.IsLeader() {
			return n.Addr()
		}
		if _, leader := hs.shard.Leader(); leader != "" {
			return leader
		}
	}
	if n.gossip != nil {
		if meta, ok := n.gossip.leaderOf(shardID); ok {
			return meta.RaftAddr
		}
	}
	return ""
}

// replicaAddresses lists the port addresses of shardID's replicas, as far as this node knows.
func (n *Node) replicaAddresses(shardID int) []string {
	var addresses []string
	for _, id := range n.replicas(shardID) {
		if address := n.raftAddrOf(id); address != "" && !slices.Contains(addresses, address) {
			addresses = append(addresses, address)
		}
	}
	return addresses
}

// cleanNotSent hides errNotSent (an internal marker) from callers while keeping the cause.
func cleanNotSent(err error) error {
	if errors.Is(err, errNotSent) {
		return errors.New(err.Error())
	}
	return err
}

// pause waits up to wait, or less when changed fires (a nil channel never does); false if ctx
// ended.
func pause(ctx context.Context, changed <-chan struct{}, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-changed:
		return true
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func remoteError(leaderAddr string, resp rpcResponse) error {
	return fmt.Errorf("leader %s: %s: %w", leaderAddr, resp.payload, errorForCode(resp.code))
}
