package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Commands of other kinds than a Transact that run the cross-shard protocol (cluster/DESIGN.md,
// "The capture leg and the hook"): a hold captured to a wallet of another shard, and a GigPay
// claim whose payee lives on another shard than the token. Each reads what it needs first (the
// hold, the token and the payee: their fields are fixed, their state is checked again by the
// prepare), answers the refusals the single-shard op gives before its transaction, runs one
// transfer paid by the hold's capture, and answers from the outcome as the single-shard op
// does: the same codes, the same values (the hold's resolution, the token).
//
// With an Idempotency-Key the refusals that depend on state that changes (a hold resolved, a
// token no longer active, a payee suspended or closed) are left to the prepare: the key's
// stored answer lives with the begin, so a replay must reach it even after the first request
// resolved the hold or the token. The prepare refuses the same, and the answer is built the
// same way from the outcome.

// captureAcross runs a CaptureHold whose hold and payee live on different shards.
func (r *Router) captureAcross(ctx context.Context, env fsm.Envelope, c *ledger.CaptureHold) (*fsm.Result, error) {
	rd := r.newReader(ctx)
	h, answer, err := r.activeHold(rd, c.ProjectID, c.HoldID, env.Idempotency != nil)
	if answer != nil || err != nil {
		return answer, err
	}
	amount := c.Amount
	if amount.IsZero() {
		amount = h.Amount
	}
	if amount.Cmp(h.Amount) > 0 {
		return fsm.Invalid("capture of %s exceeds the hold's %s", amount, h.Amount), nil
	}
	// The structural checks CaptureHold makes before it records anything: the payee exists and
	// holds the hold's asset (the hold's wallet is there: the hold is active).
	to, err := rd.GetWallet(c.ProjectID, c.To)
	if err != nil {
		return asResult(err)
	}
	from, err := rd.GetWallet(c.ProjectID, h.WalletID)
	switch {
	case err != nil:
		return asResult(err)
	case from.AssetID != to.AssetID:
		return fsm.Fail(fsm.Rejectf(ledger.CodeAssetMismatch, "operation 0: wallet %q holds %q and wallet %q holds %q",
			from.ID, from.AssetID, to.ID, to.AssetID)), nil
	}
	tx := &ledger.Transact{ProjectID: c.ProjectID, IDPrefix: c.IDPrefix, ReferenceID: c.ReferenceID,
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: h.WalletID, To: c.To, Amount: amount}}}
	x, began, answer, err := r.runAcross(ctx, env, tx, ledger.CrossExtras{Captures: []ledger.HoldCapture{{Index: 0, HoldID: c.HoldID}}})
	if answer != nil || err != nil {
		return answer, err
	}
	t := x.Transaction
	result := &fsm.Result{Op: ledger.OpCaptureHold, Replayed: began.Replayed}
	failure := began.Err // a retry under the reference
	if failure == nil && t.Status == ledger.TransactionFailed {
		failure = &fsm.Error{Code: t.FailureReason, Message: t.FailureMessage}
	}
	// The hold as the outcome left it (a linearizable read of its shard: a new reader, since
	// rd's fence of that shard predates the transaction).
	after, err := r.newReader(ctx).GetHold(c.ProjectID, c.HoldID)
	if err != nil {
		return nil, err
	}
	// A capture that lost to another capture, a release or the expiry after its begin: its
	// transaction is recorded as failed (listed, LEDGER_TX_FAILED), unlike a capture within one
	// shard, so the answer carries it.
	var ownFailed *ledger.Transaction
	if began.Err == nil && t.Status == ledger.TransactionFailed {
		ownFailed = t
	}
	switch {
	case failure == nil:
		result.Value = &ledger.HoldResolution{Hold: after, Transaction: t}
	case after.Status != ledger.HoldActive && (began.Err != nil || failure.Code == ledger.CodeHoldResolved):
		// Resolved before this capture (or by its first run, for a retry): as CaptureHold.
		result.Err = &fsm.Error{Code: ledger.CodeHoldResolved, Message: "hold \"" + after.ID + "\" is " + after.Status.String()}
		result.Value = &ledger.HoldResolution{Hold: after, Transaction: ownFailed}
	case began.Err != nil && began.Err.Code == ledger.CodeDuplicateReferenceID && t.Status == ledger.TransactionCompleted &&
		after.CrossTransactionID != t.ID:
		// A completed transaction under the reference that is neither this hold's capture nor
		// capturing it (its finish not yet applied): the hold is active still, so "already
		// applied" would tell the caller the capture happened. As CaptureHold answers it.
		result.Err = ledger.CaptureReferenceMismatch(t.ReferenceID, t.ID)
		result.Value = t
	case failure.Code == ledger.CodeCrossShardHold || failure.Code == ledger.CodeHoldNotFound || failure.Code == ledger.CodeHoldResolved:
		result.Err = failure
		if ownFailed != nil {
			result.Value = ownFailed
		}
	default: // the transfer failed: the failed transaction, the hold active still
		result.Err = failure
		result.Value = t
	}
	return result, nil
}

// activeHold reads a hold and answers what CaptureHold answers for one that cannot be
// captured: not found, a protocol's hold, and unless keyed (an Idempotency-Key: the prepare
// decides), another capture in flight or resolved.
func (r *Router) activeHold(rd *reader, projectID, holdID string, keyed bool) (*ledger.Hold, *fsm.Result, error) {
	h, err := rd.GetHold(projectID, holdID)
	var rejection *fsm.Error
	switch {
	case errors.As(err, &rejection):
		return nil, &fsm.Result{Err: rejection}, nil
	case err != nil:
		return nil, nil, err
	case ledger.IsCrossShardHold(h.ID):
		return nil, fsm.Fail(fsm.Rejectf(ledger.CodeCrossShardHold, "hold %q belongs to cross-shard transaction %s: its decision resolves it", h.ID, h.TransactionID)), nil
	case keyed:
	case h.CrossTransactionID != "":
		return nil, fsm.Fail(fsm.Rejectf(ledger.CodeCrossShardHold, "hold %q is being captured by cross-shard transaction %s: its decision captures it or gives it back", h.ID, h.CrossTransactionID)), nil
	case h.Status != ledger.HoldActive:
		return nil, &fsm.Result{Err: fsm.Rejectf(ledger.CodeHoldResolved, "hold %q is %s", h.ID, h.Status), Value: &ledger.HoldResolution{Hold: h}}, nil
	}
	return h, nil, nil
}

// claimAcross runs a ClaimToken whose payee lives on another shard than the token.
func (r *Router) claimAcross(ctx context.Context, env fsm.Envelope, c *gigpay.ClaimToken) (*fsm.Result, error) {
	rd := r.newReader(ctx)
	tok, err := rd.GetTokenByString(c.ProjectID, c.Token)
	if err != nil {
		return asResult(err)
	}
	refuse := func(err *fsm.Error, t *gigpay.Token) *fsm.Result { return &fsm.Result{Err: err, Value: t} }
	keyed := env.Idempotency != nil
	switch {
	case keyed:
	case tok.ClaimTransactionID != "":
		return refuse(fsm.Rejectf(gigpay.CodeClaimInProgress, "cannot claim: a claim of the token is in progress; it ends Succeeded or Active again"), tok), nil
	case tok.Status != gigpay.TokenActive:
		return refuse(fsm.Rejectf(gigpay.CodeTokenNotActive, "cannot claim: the token is %s", tok.Status), tok), nil
	}
	// The payee, checked as the single-shard claim checks it (its prepare checks it again).
	dest, err := rd.GetWallet(c.ProjectID, c.DestinationWalletID)
	var rejection *fsm.Error
	switch {
	case errors.As(err, &rejection) && rejection.Code == ledger.CodeWalletNotFound:
		return refuse(fsm.Rejectf(ledger.CodeWalletNotFound, "destination account %q not found", c.DestinationWalletID), tok), nil
	case errors.As(err, &rejection):
		return refuse(rejection, tok), nil
	case err != nil:
		return nil, err
	case dest.AssetID != tok.AssetID:
		return refuse(fsm.Rejectf(ledger.CodeAssetMismatch, "destination account %q holds %q, the token %q", dest.ID, dest.AssetID, tok.AssetID), tok), nil
	case keyed:
	case dest.Status == ledger.WalletSuspendedStatus:
		return refuse(fsm.Rejectf(ledger.CodeWalletSuspended, "wallet %q is suspended", dest.ID), tok), nil
	case dest.Status == ledger.WalletClosed:
		return refuse(fsm.Rejectf(ledger.CodeWalletClosed, "wallet %q is closed", dest.ID), tok), nil
	}
	hook := &gigpay.ClaimAcross{TokenID: tok.ID, DestinationWalletID: dest.ID, DestinationCustomerID: dest.CustomerID}
	tx := &ledger.Transact{ProjectID: c.ProjectID, IDPrefix: "t" + tok.ID[1:min(5, len(tok.ID))],
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: tok.SourceWalletID, To: dest.ID, Amount: tok.Amount}}}
	extras := ledger.CrossExtras{Captures: []ledger.HoldCapture{{Index: 0, HoldID: tok.HoldID}},
		Hook: &ledger.CrossHook{Name: gigpay.ClaimHook, Anchor: tok.SourceWalletID, Data: hook.Encode()}}
	x, _, answer, err := r.runAcross(ctx, env, tx, extras)
	if answer != nil || err != nil {
		if answer != nil && answer.Value != nil {
			answer = &fsm.Result{Err: answer.Err, Value: tok}
		}
		return answer, err
	}
	// The token as the outcome left it (a linearizable read of its shard: a new reader, since
	// rd's fence of that shard predates the transaction).
	after, err := r.newReader(ctx).GetTokenByString(c.ProjectID, c.Token)
	if err != nil {
		return nil, err
	}
	t := x.Transaction
	switch {
	case t.Status == ledger.TransactionCompleted:
		return &fsm.Result{Op: gigpay.OpClaimToken, Value: after}, nil
	case after.Status != gigpay.TokenActive:
		// Claimed, rejected or expired meanwhile: as the single-shard claim answers.
		return refuse(fsm.Rejectf(gigpay.CodeTokenNotActive, "cannot claim: the token is %s", after.Status), after), nil
	case t.FailureReason == ledger.CodeWalletNotFound:
		return refuse(fsm.Rejectf(ledger.CodeWalletNotFound, "destination account %q not found", c.DestinationWalletID), after), nil
	}
	return refuse(&fsm.Error{Code: t.FailureReason, Message: t.FailureMessage}, after), nil
}

// closeToken runs a CloseToken: across shards when the token was claimed into a wallet of
// another shard (closeAcross), on the token's shard otherwise. A close that read the token
// before a claim across shards committed goes to the token's shard, which then answers
// CrossShardTransaction (it cannot move the payee's money): the claim is final, so the close
// runs again, across.
func (r *Router) closeToken(ctx context.Context, env fsm.Envelope, c *gigpay.CloseToken) (*fsm.Result, error) {
	for attempt := 0; ; attempt++ {
		if result, across, err := r.closeAcross(ctx, env, c); across {
			return result, err
		}
		shardID, ok := r.ShardOf(env.Command.Route())
		if !ok {
			return nil, fmt.Errorf("close token %s: no shard for its route", c.TokenID)
		}
		result, err := r.propose(ctx, shardID, env)
		if err != nil {
			return nil, err
		}
		if result.Err != nil && result.Err.Code == ledger.CodeCrossShardTransaction && attempt == 0 {
			continue
		}
		backend.RecordServedShard(ctx, shardID)
		return result, nil
	}
}

// closeAcross runs a CloseToken whose token was claimed into a wallet of another shard than
// the token's: the reversal (the token's amount from the payee back to the payer) as a
// cross-shard transaction with GigPay's close hook anchored on the payer's wallet (the
// token's shard). across is false for every other close, which the token's shard answers
// alone (a malformed reason, a token not found, not Succeeded or claimed on its own shard).
// It costs a close one read of the token first; closes are rare (a payment failed
// downstream).
func (r *Router) closeAcross(ctx context.Context, env fsm.Envelope, c *gigpay.CloseToken) (result *fsm.Result, across bool, err error) {
	if !fsm.ValidText(c.Reason, gigpay.ReasonMaxLength) {
		return nil, false, nil
	}
	rd := r.newReader(ctx)
	tok, err := rd.GetToken(c.ProjectID, c.TokenID)
	var rejection *fsm.Error
	switch {
	case errors.As(err, &rejection):
		return nil, false, nil // the token's shard answers it
	case err != nil:
		return nil, true, err
	case tok.DestinationWalletID == "":
		return nil, false, nil // never claimed: not closable, the token's shard says so
	}
	tokenShard, _ := rd.slotShard(tok.ID)
	payeeShard, ok := rd.idShard(tok.DestinationWalletID)
	if !ok || payeeShard == tokenShard {
		return nil, false, nil
	}
	refuse := func(err *fsm.Error, t *gigpay.Token) *fsm.Result { return &fsm.Result{Err: err, Value: t} }
	switch {
	case env.Idempotency != nil: // the prepare decides: a replay must reach the begin's key
	case tok.CloseTransactionID != "":
		return refuse(fsm.Rejectf(gigpay.CodeCloseInProgress, "cannot close: a close of the token is in progress; it ends Closed or Succeeded again"), tok), true, nil
	case tok.Status != gigpay.TokenSucceeded:
		return refuse(fsm.Rejectf(ledger.CodeInvalidStatusTransition, "only a Succeeded token can be closed; the token is %s", tok.Status), tok), true, nil
	}
	hook := &gigpay.CloseAcross{TokenID: tok.ID, Reason: c.Reason}
	tx := &ledger.Transact{ProjectID: c.ProjectID, // the ID's prefix: the coordinator's, the payee's shard
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: tok.DestinationWalletID, To: tok.SourceWalletID, Amount: tok.Amount}}}
	extras := ledger.CrossExtras{Hook: &ledger.CrossHook{Name: gigpay.CloseHook, Anchor: tok.SourceWalletID, Data: hook.Encode()}}
	x, began, answer, err := r.runAcross(ctx, env, tx, extras)
	if answer != nil || err != nil {
		if answer != nil && answer.Value != nil {
			answer = &fsm.Result{Err: answer.Err, Value: tok, Replayed: answer.Replayed}
		}
		return answer, true, err
	}
	// The token as the outcome left it: a new reader fences the token's shard again. The one
	// above fenced it before the transaction, and the done this request waited on is the
	// payee's shard's (the coordinator's), which does not order this node's replica of the
	// token's shard after the finish there.
	after, err := r.newReader(ctx).GetToken(c.ProjectID, tok.ID)
	if err != nil {
		return nil, true, err
	}
	t := x.Transaction
	if t.Status == ledger.TransactionCompleted {
		return &fsm.Result{Op: gigpay.OpCloseToken, Value: after, Replayed: began.Replayed}, true, nil
	}
	// The payee without the funds, suspended or closed; the token closed or being closed by
	// another request: the single-shard close's codes, with the token as it is.
	return &fsm.Result{Err: &fsm.Error{Code: t.FailureReason, Message: t.FailureMessage}, Value: after, Replayed: began.Replayed}, true, nil
}

// asResult is a failed read's answer: a rejection (not found, ...) as the request's result,
// anything else as the error.
func asResult(err error) (*fsm.Result, error) {
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		return &fsm.Result{Err: rejection}, nil
	}
	return nil, err
}
