package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Cross-shard Cloud Wallet transactions, the router's half (cluster/DESIGN.md, "Cross-shard
// transactions (issue 14)"): a Transact whose wallets live on several shards is proposed as a
// CrossBegin to its coordinator, the shard of its first named wallet; the coordinator leader's
// driver (CrossDriver) carries it through prepares, the decision and the finishes; the router
// waits on the coordinator's record until it is decided and done, and answers what the
// single-shard path would have answered.

// Waiting on the coordinator's record: the coordinator's leader answers once the transaction is
// done there, or after crossAwaitMax (awaitCrossTransaction); when that fails (a leader change,
// a leader whose release has no such query), or while crossAwaitingMax waits of this router are
// held by leaders already, a linearizable read of the record after crossPollFirst, then at
// intervals doubling up to crossPollMax, until the request's context ends. The bound keeps the
// held queries well under what one RPC connection serves at once (the cluster's
// rpcServerInflightMaxCount, 4,096, past which it stops reading the connection's other
// requests), whatever batches of cross-shard transactions arrive.
const (
	crossAwaitMax    = time.Second
	crossAwaitingMax = 1024
	crossPollFirst   = 2 * time.Millisecond
	crossPollMax     = 50 * time.Millisecond
)

// transactAcross runs a Transact whose wallets live on more than one shard.
func (r *Router) transactAcross(ctx context.Context, env fsm.Envelope, tx *ledger.Transact) (*fsm.Result, error) {
	x, began, answer, err := r.runAcross(ctx, env, tx, ledger.CrossExtras{})
	if answer != nil || err != nil {
		return answer, err
	}
	t := x.Transaction
	result := &fsm.Result{Op: ledger.OpTransact, Value: t, Replayed: began.Replayed}
	switch {
	case began.Err != nil: // a retry under the reference: the stored state
		result.Err = began.Err
	case t.Status == ledger.TransactionFailed:
		result.Err = &fsm.Error{Code: t.FailureReason, Message: t.FailureMessage}
	}
	return result, nil
}

// runAcross begins tx (with its captures and hook) on its coordinator and waits until it is
// decided and done. It answers the final record and the begin's result (a rejection of a
// retry under the reference, Replayed), or an answer to give as it is: a rejection without a
// record (an ID without a slot, a malformed command, a project not found) or a reference used
// by other operations.
func (r *Router) runAcross(ctx context.Context, env fsm.Envelope, tx *ledger.Transact, extras ledger.CrossExtras) (x *ledger.CrossTransaction, began, answer *fsm.Result, err error) {
	count := r.shards.ShardCount()
	var placed []ledger.WalletShard
	seen := map[string]bool{}
	for _, op := range tx.Operations {
		for _, id := range []string{op.From, op.To} {
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			slot, ok := keyspace.SlotOfID(id)
			if !ok {
				// An ID without a slot names no wallet of any shard: the single-shard path
				// answers the same, and claims no reference for it either.
				return nil, nil, &fsm.Result{Err: &fsm.Error{Code: ledger.CodeWalletNotFound, Message: fmt.Sprintf("wallet %q not found", id)}}, nil
			}
			placed = append(placed, ledger.WalletShard{WalletID: id, Shard: int(keyspace.ShardOfSlot(slot, count))})
		}
	}
	coordinator := placed[0].Shard
	// The transaction ID carries the coordinator's slot so that reads of it route there; the
	// API computed the prefix from the first named wallet, which is the coordinator's.
	prefix := tx.IDPrefix
	if slot, ok := keyspace.SlotOfID(prefix); !ok || int(keyspace.ShardOfSlot(slot, count)) != coordinator {
		first, _ := keyspace.SlotOfID(placed[0].WalletID)
		prefix = "t" + keyspace.SlotHex(first)
	}
	begin := &ledger.CrossBegin{ProjectID: tx.ProjectID, IDPrefix: prefix, ReferenceID: tx.ReferenceID,
		Operations: tx.Operations, Shards: placed, CrossExtras: extras}
	began, err = r.propose(ctx, coordinator, fsm.Envelope{Command: begin, Idempotency: env.Idempotency})
	if err != nil {
		return nil, nil, nil, err
	}
	x, ok := began.Value.(*ledger.CrossTransaction)
	switch {
	case !ok || x == nil || x.Transaction == nil:
		// A rejection without a record (invalid, project not found); a coordinator that has not
		// met the project answers for the record the command names, as a single shard does.
		answer, err = r.recordMissing(ctx, coordinator, env.Command, began)
		return nil, nil, answer, err
	case began.Err != nil && began.Err.Code != ledger.CodeDuplicateReferenceID:
		// A mismatching reference: the stored transaction, as the single-shard path answers.
		return nil, nil, &fsm.Result{Err: began.Err, Value: x.Transaction, Replayed: began.Replayed}, nil
	}
	if !x.Done() {
		if x, err = r.awaitCross(ctx, coordinator, x.Transaction); err != nil {
			return nil, nil, nil, err
		}
	}
	return x, began, nil, nil
}

// awaitCross waits until the transaction is decided and every participant applied the
// decision, and answers the coordinator's record then. It asks the coordinator's leader, which
// applies the done first: a follower replica applies it only once it hears the commit index
// (the next append or heartbeat), so a wait on this node's replica, or reads at intervals,
// answered one cross-shard transfer on 3 nodes in ~10 ms where the transfer took ~3
// (bench/RESULTS.md, session 27). When ctx ends first the outcome is unknown to the client,
// which retries under the same reference and meets the stored record.
func (r *Router) awaitCross(ctx context.Context, coordinator int, t *ledger.Transaction) (*ledger.CrossTransaction, error) {
	wait := crossPollFirst
	for {
		var x *ledger.CrossTransaction
		var last, err error
		if r.crossAwaiting.Add(1) <= crossAwaitingMax {
			x, last, err = r.askCross(ctx, coordinator, t, queryAwaitCrossTransaction)
			r.crossAwaiting.Add(-1)
			switch {
			case x != nil || err != nil:
				return x, err
			case last == nil:
				wait = crossPollFirst
				continue // the leader's wait ended before the done: ask again
			}
		} else {
			r.crossAwaiting.Add(-1)
		}
		// The leader could not be asked to wait (a leader change, a leader of a release without
		// the query), or holds enough of this router's waits: read the record at intervals
		// until the next attempt, as before.
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, crossUnfinished(ctx, t, last)
		case <-timer.C:
		}
		if x, _, err = r.askCross(ctx, coordinator, t, queryGetCrossTransaction); x != nil || err != nil {
			return x, err
		}
		wait = min(2*wait, crossPollMax)
	}
}

// askCross reads the coordinator's record of t: on the leader once it is done
// (queryAwaitCrossTransaction), or linearizably on any replica (queryGetCrossTransaction). It
// answers the record once it is done; else the read's failure, if any, to ask again after (a
// leader change; a record not done is none); else err, which ends the wait: ctx ended (the
// outcome is unknown), or a rejection (the transaction was begun: a bug).
func (r *Router) askCross(ctx context.Context, coordinator int, t *ledger.Transaction, kind queryKind) (done *ledger.CrossTransaction, last, err error) {
	if ctx.Err() != nil {
		return nil, nil, crossUnfinished(ctx, t, nil)
	}
	q := shardQuery{Kind: kind, ProjectID: t.ProjectID, ID: t.ID}
	var a *shardAnswer
	if kind == queryAwaitCrossTransaction {
		a, last = r.askLeader(ctx, coordinator, q)
	} else {
		a, last = r.newReader(ctx).ask(coordinator, q)
	}
	var rejection *fsm.Error
	switch {
	case errors.As(last, &rejection):
		return nil, nil, fmt.Errorf("routing: cross-shard transaction %s: %w", t.ID, last)
	case last != nil && ctx.Err() != nil:
		return nil, nil, crossUnfinished(ctx, t, last)
	case last != nil:
		return nil, last, nil
	case a.Cross == nil:
		return nil, fmt.Errorf("routing: shard %d has no record of cross-shard transaction %s", coordinator, t.ID), nil
	case a.Cross.Done():
		return a.Cross, nil, nil
	}
	return nil, nil, nil
}

// askLeader runs q on shardID's leader (Shards.QueryLeader), its rejection as an *fsm.Error.
func (r *Router) askLeader(ctx context.Context, shardID int, q shardQuery) (*shardAnswer, error) {
	a, err := r.askThrough(ctx, shardID, q, r.shards.QueryLeader)
	if err == nil && a.Err != nil {
		return nil, a.Err
	}
	return a, err
}

// crossUnfinished is the error of a wait whose context ended: the outcome is unknown.
func crossUnfinished(ctx context.Context, t *ledger.Transaction, last error) error {
	cause := ctx.Err()
	if last != nil {
		cause = fmt.Errorf("%w (last read: %w)", cause, last)
	}
	return fmt.Errorf("%w: cross-shard transaction %s not finished: %w", backend.ErrOutcomeUnknown, t.ID, cause)
}

// awaitCrossDone waits, on the replica whose ledger is l, until the cross-shard transaction
// transactionID of projectID is done here, at most crossAwaitMax or until ctx ends: the wait
// of a queryAwaitCrossTransaction before its read. The read that follows answers either way.
func awaitCrossDone(ctx context.Context, l *ledger.Ledger, projectID, transactionID string) {
	ended, release := l.CrossDoneOf(projectID, transactionID)
	defer release()
	if x, err := l.GetCrossTransaction(projectID, transactionID); err != nil || x == nil || x.Done() {
		return
	}
	timer := time.NewTimer(crossAwaitMax)
	defer timer.Stop()
	select {
	case <-ended:
	case <-timer.C:
	case <-ctx.Done():
	}
}
