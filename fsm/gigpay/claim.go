package gigpay

import (
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// A claim whose payee lives on another shard than the payer (cluster/DESIGN.md, "The capture
// leg and the hook"). The router runs it as a cross-shard transaction of one transfer from the
// token's source wallet to the payee, paid by capturing the token's hold, with this family's
// hook anchored on the source wallet, so the payer's shard (the token's) runs it:
//
//   - Check (prepare, first): the token is Active, not being claimed, not due, and the leg is
//     its hold's capture of its whole amount to the payee the hook names; else the claim
//     fails with TokenNotActive, TokenClaimInProgress or InvalidArgument.
//   - Prepared: the token is marked (ClaimTransactionID) and leaves the expiry index: other
//     claims and rejects are refused with 409 TokenClaimInProgress, and it does not expire.
//   - Finished, completed: the token Succeeds with its transfer payment, and the events
//     GIGPAY_TOKEN_SUCCEEDED and GIGPAY_PAYMENT_CREATED, as the single-shard claim emits them,
//     in the batch that captures the hold.
//   - Finished, failed: the token is Active again (it expires now if its time passed
//     meanwhile) and may be claimed or rejected; the claimer is answered the transaction's
//     failure (the payee closed, missing, of another asset: as on one shard).

// ClaimHook is the name of the family's cross-shard hook.
const ClaimHook = "gigpay.claim"

// ClaimAcross is the hook's data: the token and the payee's wallet and owner (the payee's
// shard knows them; the payment record on the payer's shard names them).
type ClaimAcross struct {
	TokenID, DestinationWalletID, DestinationCustomerID string
}

// Encode writes the hook's data.
func (c *ClaimAcross) Encode() []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 64)}
	e.Byte(1) // version
	e.String(c.TokenID)
	e.String(c.DestinationWalletID)
	e.String(c.DestinationCustomerID)
	return e.Buf
}

func decodeClaimAcross(data []byte) (*ClaimAcross, error) {
	d := fsm.NewDecoder(data)
	if v := d.Byte(); d.Err() == nil && v != 1 {
		d.Fail(fmt.Errorf("unknown version %d", v))
	}
	c := &ClaimAcross{TokenID: d.String(), DestinationWalletID: d.String(), DestinationCustomerID: d.String()}
	return c, d.Finish("gigpay claim hook")
}

// claimHook implements ledger.CrossHookHandler.
type claimHook struct{ f *Family }

// claimInProgress is the refusal of a token a cross-shard claim holds, with the token.
func claimInProgress(t *Token, what string) *fsm.Result {
	out := *t
	return &fsm.Result{Err: fsm.Rejectf(CodeClaimInProgress, "cannot %s: a claim of the token is in progress; it ends Succeeded or Active again", what),
		Value: &out}
}

// token reads the token the hook's data names, as the batch left it.
func (h *claimHook) token(b *fsm.Batch, projectID string, data []byte) (*Token, *ClaimAcross, *fsm.Error) {
	c, err := decodeClaimAcross(data)
	if err != nil {
		return nil, nil, fsm.Rejectf(fsm.CodeInvalidArgument, "%v", err)
	}
	if !fsm.ValidID(c.TokenID, fsm.GeneratedIDMaxLength) || (c.DestinationCustomerID != "" && !fsm.ValidCustomerID(c.DestinationCustomerID)) {
		return nil, nil, fsm.Rejectf(fsm.CodeInvalidArgument, "the claim names a malformed token or payee")
	}
	t := h.f.state(b).token(b, projectID, c.TokenID)
	if t == nil {
		return nil, c, fsm.Rejectf(CodeTokenNotFound, "token not found")
	}
	return t, c, nil
}

func (h *claimHook) Check(b *fsm.Batch, x *ledger.CrossHookContext) *fsm.Error {
	t, c, err := h.token(b, x.ProjectID, x.Data)
	switch {
	case err != nil:
		return err
	case t.ClaimTransactionID != "":
		return claimInProgress(t, "claim").Err
	case t.Status != TokenActive:
		return notActive(t, "claim").Err
	case t.ExpiresAt <= b.Now:
		return fsm.Rejectf(CodeTokenNotActive, "cannot claim: the token is %s", TokenExpired)
	}
	// The legs are this token's claim: its whole hold captured to the payee.
	if len(x.Captures) != 1 || x.Captures[0].HoldID != t.HoldID || len(x.Legs) != 1 || x.Legs[0].Index != x.Captures[0].Index {
		return fsm.Rejectf(fsm.CodeInvalidArgument, "the transaction is not the claim of token %q", t.ID)
	}
	op := x.Legs[0].Operation
	if op.Type != ledger.OperationTransfer || op.From != t.SourceWalletID || op.To != c.DestinationWalletID || op.Amount != t.Amount {
		return fsm.Rejectf(fsm.CodeInvalidArgument, "the transaction is not the claim of token %q", t.ID)
	}
	return nil
}

func (h *claimHook) Prepared(b *fsm.Batch, x *ledger.CrossHookContext) {
	t, _, err := h.token(b, x.ProjectID, x.Data)
	if err != nil {
		panic(fmt.Sprintf("gigpay: claim %s prepared without its token: %v", x.TransactionID, err)) // Check passed in this apply
	}
	b.Delete(tokenExpiryKey(t))
	t.ClaimTransactionID = x.TransactionID
	h.f.state(b).putToken(b, t)
}

func (h *claimHook) Finished(b *fsm.Batch, x *ledger.CrossHookContext, completed bool) {
	t, c, err := h.token(b, x.ProjectID, x.Data)
	if err != nil || t.ClaimTransactionID != x.TransactionID {
		panic(fmt.Sprintf("gigpay: claim %s finished without its token in progress: %v", x.TransactionID, err)) // corruption
	}
	s := h.f.state(b)
	core := h.f.ledger.In(b)
	t.ClaimTransactionID = ""
	if !completed {
		if t.ExpiresAt <= b.Now && h.f.expire(b, s, core, t) { // the ledger gave the hold back first
			return
		}
		b.Set(tokenExpiryKey(t), nil)
		s.noteExpiry(t.ExpiresAt)
		s.putToken(b, t)
		return
	}
	source := core.Wallet(t.ProjectID, t.SourceWalletID)
	if source == nil {
		panic(fmt.Sprintf("gigpay: token %s names missing wallet %s", t.ID, t.SourceWalletID)) // corruption
	}
	p := &Payment{ID: PaymentIDOfToken(t.ID), ProjectID: t.ProjectID, Type: PaymentTransfer, Status: PaymentCompleted,
		AssetID: t.AssetID, Fractions: t.Fractions, Amount: t.Amount,
		Source:      Party{WalletID: source.ID, CustomerID: source.CustomerID},
		Destination: Party{WalletID: c.DestinationWalletID, CustomerID: c.DestinationCustomerID},
		TokenID:     t.ID, TransactionID: x.TransactionID, CreatedAt: b.Now, ModifiedAt: b.Now}
	s.putPayment(b, p, true)
	h.f.finish(b, s, t, TokenSucceeded)
	t.DestinationWalletID, t.DestinationCustomerID = c.DestinationWalletID, c.DestinationCustomerID
	t.PaymentID, t.TransactionID = p.ID, x.TransactionID
	s.putToken(b, t)
	emitToken(b, EventTokenSucceeded, t)
	emitPayment(b, EventPaymentCreated, p)
}
