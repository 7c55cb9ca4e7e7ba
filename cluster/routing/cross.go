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

// Waiting on the coordinator's record: a linearizable read of it after crossPollFirst, then at
// intervals doubling up to crossPollMax, until the request's context ends.
const (
	crossPollFirst = 2 * time.Millisecond
	crossPollMax   = 50 * time.Millisecond
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

// awaitCross reads the coordinator's record until the transaction is decided and every
// participant applied the decision. When ctx ends first the outcome is unknown to the client,
// which retries under the same reference and meets the stored record.
func (r *Router) awaitCross(ctx context.Context, coordinator int, t *ledger.Transaction) (*ledger.CrossTransaction, error) {
	wait := crossPollFirst
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var last error
	// When this node hosts the coordinator, its replica's commit of this transaction's done
	// wakes the wait at once; the timer's reads cover the rest (another node's coordinator, a
	// follower replica that has not heard the commit yet, a leader change, a snapshot install).
	var ended <-chan struct{}
	release := func() {}
	defer func() { release() }()
	for {
		select {
		case <-ended:
			timer.Stop() // Go ≥ 1.23: no stale tick after Stop
		case <-ctx.Done():
			cause := ctx.Err()
			if last != nil {
				cause = fmt.Errorf("%w (last read: %w)", cause, last)
			}
			return nil, fmt.Errorf("%w: cross-shard transaction %s not finished: %w", backend.ErrOutcomeUnknown, t.ID, cause)
		case <-timer.C:
		}
		release()
		ended, release = nil, func() {}
		if l := r.shards.Ledger(coordinator); l != nil {
			ended, release = l.CrossDoneOf(t.ProjectID, t.ID)
		}
		a, err := r.newReader(ctx).ask(coordinator, shardQuery{Kind: queryGetCrossTransaction, ProjectID: t.ProjectID, ID: t.ID})
		var rejection *fsm.Error
		switch {
		case errors.As(err, &rejection):
			return nil, fmt.Errorf("routing: cross-shard transaction %s: %w", t.ID, err) // it was begun: a bug
		case err != nil:
			last = err // a leader change: read again
		case a.Cross.Done():
			return a.Cross, nil
		}
		// The reads go on doubling whether or not this node hosts the coordinator: a follower
		// replica applies the done only once it hears the commit index (the next append or
		// heartbeat), while a read's read index makes it apply its log up to there at once.
		// Waiting on the local commit alone made one cross-shard transfer on 3 nodes take 57 ms
		// instead of 10.
		wait = min(2*wait, crossPollMax)
		timer.Reset(wait)
	}
}
