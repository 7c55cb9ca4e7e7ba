package gigpay

import (
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The close of a token claimed by a payee of another shard (cluster/DESIGN.md, "The capture
// leg and the hook"). The single-shard close is one compensating transfer from the payee back
// to the payer; across shards the router runs that transfer as a cross-shard transaction with
// this family's hook anchored on the payer's wallet, so the token's shard runs it (the payee's
// shard is the coordinator: operation 0 debits the payee):
//
//   - Check (prepare, first): the token is Succeeded, not being closed, and the leg is its
//     reversal: its whole amount from its payee to its payer; else the close fails with
//     InvalidStatusTransition, TokenCloseInProgress or InvalidArgument (the token's refusals
//     rank before the ledger's, as the single-shard close checks the token first).
//   - Prepared: the token is marked (CloseTransactionID): another close is refused with 409
//     TokenCloseInProgress until the decision.
//   - Finished, completed: the token is Closed with the reversal's transaction and the
//     reason, its payment Canceled, and GIGPAY_TOKEN_CLOSED and GIGPAY_PAYMENT_UPDATED are
//     emitted, as the single-shard close does, in the batch that credits the payer.
//   - Finished, failed: the mark is cleared and the token stays Succeeded; the closer is
//     answered the transaction's failure (InsufficientFunds, the payee suspended or closed:
//     the single-shard close's codes, with the token).

// CloseHook is the name of the family's cross-shard close hook.
const CloseHook = "gigpay.close"

// CloseAcross is the close hook's data: the token and the close's reason (the rest is the
// token's own).
type CloseAcross struct {
	TokenID, Reason string
}

// Encode writes the hook's data.
func (c *CloseAcross) Encode() []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 32+len(c.Reason))}
	e.Byte(1) // version
	e.String(c.TokenID)
	e.String(c.Reason)
	return e.Buf
}

func decodeCloseAcross(data []byte) (*CloseAcross, error) {
	d := fsm.NewDecoder(data)
	if v := d.Byte(); d.Err() == nil && v != 1 {
		d.Fail(fmt.Errorf("unknown version %d", v))
	}
	c := &CloseAcross{TokenID: d.String(), Reason: d.String()}
	return c, d.Finish("gigpay close hook")
}

// closeHook implements ledger.CrossHookHandler.
type closeHook struct{ f *Family }

// closeInProgress is the refusal of a token a cross-shard close holds, with the token.
func closeInProgress(t *Token) *fsm.Result {
	out := *t
	return &fsm.Result{Err: fsm.Rejectf(CodeCloseInProgress, "cannot close: a close of the token is in progress; it ends Closed or Succeeded again"),
		Value: &out}
}

// notClosable is the refusal of a token that is not Succeeded, with the token.
func notClosable(t *Token) *fsm.Result {
	out := *t
	return &fsm.Result{Err: fsm.Rejectf(ledger.CodeInvalidStatusTransition, "only a Succeeded token can be closed; the token is %s", t.Status),
		Value: &out}
}

// token reads the token the hook's data names, as the batch left it.
func (h *closeHook) token(b *fsm.Batch, projectID string, data []byte) (*Token, *CloseAcross, *fsm.Error) {
	c, err := decodeCloseAcross(data)
	if err != nil {
		return nil, nil, fsm.Rejectf(fsm.CodeInvalidArgument, "%v", err)
	}
	if !fsm.ValidID(c.TokenID, fsm.GeneratedIDMaxLength) || !fsm.ValidText(c.Reason, ReasonMaxLength) {
		return nil, nil, fsm.Rejectf(fsm.CodeInvalidArgument, "the close names a malformed token or reason")
	}
	t := h.f.state(b).token(b, projectID, c.TokenID)
	if t == nil {
		return nil, c, fsm.Rejectf(CodeTokenNotFound, "token %q not found", c.TokenID)
	}
	return t, c, nil
}

func (h *closeHook) Check(b *fsm.Batch, x *ledger.CrossHookContext) *fsm.Error {
	t, _, err := h.token(b, x.ProjectID, x.Data)
	switch {
	case err != nil:
		return err
	case t.CloseTransactionID != "":
		return closeInProgress(t).Err
	case t.Status != TokenSucceeded:
		return notClosable(t).Err
	}
	// The legs are this token's reversal: its whole amount from the payee back to the payer,
	// no capture.
	if len(x.Captures) != 0 || len(x.Legs) != 1 {
		return fsm.Rejectf(fsm.CodeInvalidArgument, "the transaction is not the close of token %q", t.ID)
	}
	op := x.Legs[0].Operation
	if op.Type != ledger.OperationTransfer || op.From != t.DestinationWalletID || op.To != t.SourceWalletID || op.Amount != t.Amount {
		return fsm.Rejectf(fsm.CodeInvalidArgument, "the transaction is not the close of token %q", t.ID)
	}
	if h.f.state(b).payment(b, t.ProjectID, t.PaymentID) == nil {
		panic(fmt.Sprintf("gigpay: succeeded token %s lacks its payment", t.ID)) // corruption
	}
	return nil
}

func (h *closeHook) Prepared(b *fsm.Batch, x *ledger.CrossHookContext) {
	t, _, err := h.token(b, x.ProjectID, x.Data)
	if err != nil {
		panic(fmt.Sprintf("gigpay: close %s prepared without its token: %v", x.TransactionID, err)) // Check passed in this apply
	}
	t.CloseTransactionID = x.TransactionID
	h.f.state(b).putToken(b, t)
}

func (h *closeHook) Finished(b *fsm.Batch, x *ledger.CrossHookContext, completed bool) {
	t, c, err := h.token(b, x.ProjectID, x.Data)
	if err != nil || t.CloseTransactionID != x.TransactionID || t.Status != TokenSucceeded {
		panic(fmt.Sprintf("gigpay: close %s finished without its token in progress: %v", x.TransactionID, err)) // corruption
	}
	s := h.f.state(b)
	t.CloseTransactionID = ""
	if !completed {
		s.putToken(b, t)
		return
	}
	p := s.payment(b, t.ProjectID, t.PaymentID)
	if p == nil {
		panic(fmt.Sprintf("gigpay: succeeded token %s lacks its payment", t.ID)) // corruption
	}
	t.Status, t.ModifiedAt, t.ReversalTransactionID, t.Reason = TokenClosed, b.Now, x.TransactionID, c.Reason
	s.putToken(b, t)
	p.Status, p.ModifiedAt, p.ReversalTransactionID, p.Reason = PaymentCanceled, b.Now, x.TransactionID, c.Reason
	s.putPayment(b, p, false)
	emitToken(b, EventTokenClosed, t)
	emitPayment(b, EventPaymentUpdated, p)
}
