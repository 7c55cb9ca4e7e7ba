package httpapi

import (
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gin-gonic/gin"
)

// Payouts (GigaWallet's /pay, /paytx and payfrom; fsm/gigawallet/CHAIN.md "Payouts"). The node
// that takes the request plans the payout from the account's confirmed, free outputs, derives
// the keys it needs from the cluster's seed (in memory only) and signs; the account's shard
// reserves the inputs and holds the total, or refuses — only then is the transaction sent. If
// this node dies before sending it, the shard's leader sends it (chainwatch).

// payoutAttemptsMax bounds the re-planning of a payout whose inputs or change address another
// payout of the account took meanwhile.
const payoutAttemptsMax = 5

// payoutCandidatesMax bounds the outputs read to plan one payout.
const payoutCandidatesMax = 5000

// paymentConfirmationsDefault is how many blocks after its own a payout waits to be confirmed
// when the configuration does not say (GigaWallet's N).
const paymentConfirmationsDefault = 6

// pay is POST /account/:foreignID/pay (broadcast) and /paytx (not broadcast: the caller sends
// it; void releases it).
func (g *gigaWallet) pay(broadcast bool) gin.HandlerFunc {
	where := "PayToAddress"
	kind := "pay"
	if !broadcast {
		where, kind = "PayToAddressTx", "paytx"
	}
	return func(c *gin.Context) {
		foreignID := c.Param("foreignID")
		idem, apiErr := g.gwIdempotency(c, where, foreignID)
		if apiErr != nil {
			g.fail(c, apiErr)
			return
		}
		request, apiErr := gw.DecodePayRequest(c.Request.Body, func(address string) error {
			return dogecoin.ValidateP2PKH(address, g.cfg.Network)
		})
		if apiErr != nil {
			g.fail(c, apiErr)
			return
		}
		if idem != nil {
			// A replay answers the stored payout: nothing is planned, signed or sent again.
			if stored, apiErr := g.storedAnswer(c, where, foreignID, idem); apiErr != nil || stored != nil {
				g.answerStoredPayout(c, where, stored, apiErr, true)
				return
			}
		}
		p, signed, apiErr := g.payout(c, where, foreignID, request, kind, "", broadcast, idem)
		if apiErr != nil {
			g.fail(c, apiErr)
			return
		}
		g.ok(c, http.StatusOK, sendFundsResult(p, hex.EncodeToString(signed)))
	}
}

// payFrom is POST /invoice/:invoiceID/payfrom/:foreignID: the account pays the invoice's total
// to its address (the invoice may belong to an account of any shard: it is an ordinary payment
// on the chain, which the invoice's shard detects). tx is "" in the answer, as GigaWallet's.
// Unlike GigaWallet's, it pays an invoice once: an invoice whose total was already received
// (seen or confirmed, whoever paid it) is 409 already-exists, and the payer's shard refuses a
// second payfrom of an invoice while the first is not released (the invoice's shard sees the
// first only when the chain does).
func (g *gigaWallet) payFrom(c *gin.Context) {
	invoiceID, foreignID := c.Param("invoiceID"), c.Param("foreignID")
	idem, apiErr := g.gwIdempotency(c, "PayInvoiceFromAccount", foreignID)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	if idem != nil {
		// A replay answers the stored payout before the invoice is read again.
		if stored, apiErr := g.storedAnswer(c, "PayInvoiceFromAccount", foreignID, idem); apiErr != nil || stored != nil {
			g.answerStoredPayout(c, "PayInvoiceFromAccount", stored, apiErr, false)
			return
		}
	}
	ctx, cancel := g.withTimeout(c)
	reader, err := g.backend.Read(ctx)
	var invoice *gigawallet.Invoice
	var prior *gigawallet.Payment
	if err == nil {
		invoice, err = reader.GetInvoice(g.cfg.ProjectID, "", invoiceID)
	}
	if err == nil {
		// The payer's shard may already hold a payfrom of it that the chain has not shown the
		// invoice's shard yet: the same refusal the reservation would give, before planning
		// (whose inputs that payfrom may hold).
		var none *fsm.Error
		if prior, err = reader.GetPayFrom(g.cfg.ProjectID, foreignID, invoice.Address); errors.As(err, &none) && none.Code == gigawallet.CodePaymentNotFound {
			prior, err = nil, nil
		}
	}
	cancel()
	if err != nil {
		g.fail(c, gwError("PayInvoiceFromAccount", err))
		return
	}
	if prior != nil {
		g.fail(c, gw.NewError(gw.CodeAlreadyExists, "PayInvoiceFromAccount: invoice %s is paid by payout %s (%s)", invoice.Address, prior.TxID, prior.Status))
		return
	}
	if invoice.Total.Hi != 0 || invoice.Total.Lo > payout.MoneyMaxKoinu {
		g.fail(c, gw.NewError(gw.CodeInvalidTxn, "PayInvoiceFromAccount: the invoice's total, %s DOGE, exceeds the most one transaction can pay, %s DOGE",
			gw.FormatKoinu8DP(invoice.Total), payout.FormatDOGE(payout.MoneyMaxKoinu)))
		return
	}
	if invoice.Total.Lo < payout.DustKoinu {
		g.fail(c, gw.NewError(gw.CodeInvalidTxn, "PayInvoiceFromAccount: the invoice's total is below the dust limit, %s DOGE", payout.FormatDOGE(payout.DustKoinu)))
		return
	}
	if invoice.Status == gigawallet.InvoicePaid || invoice.Incoming.Cmp(invoice.Total) >= 0 {
		g.fail(c, gw.NewError(gw.CodeAlreadyExists, "PayInvoiceFromAccount: invoice %s already received its total", invoice.Address))
		return
	}
	request := gw.PayRequest{Outputs: []gw.PayTo{{Address: invoice.Address, Koinu: invoice.Total.Lo, DeductFeePercent: "0"}}}
	p, _, apiErr := g.payout(c, "PayInvoiceFromAccount", foreignID, request, gigawallet.PaymentKindPayFrom, invoice.Address, true, idem)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	g.ok(c, http.StatusOK, sendFundsResult(p, ""))
}

// payout plans, signs, reserves and (when broadcast) sends one payout; it answers the stored
// payout and the signed transaction. With an idempotency key (idem), the caller asked first
// whether the key was used (storedAnswer) and it was not; the reservation goes under the key.
func (g *gigaWallet) payout(c *gin.Context, where, foreignID string, request gw.PayRequest, kind, invoiceID string, broadcast bool, idem *fsm.Idempotency) (*gigawallet.Payment, []byte, *gw.Error) {
	if g.cfg.Keys == nil {
		return nil, nil, gw.NewError(gw.CodeNotAvailable, "%s: this node has no wallet seed", where)
	}
	// The plan reads the account's free outputs and change index, the reservation takes them:
	// one payout of the account at a time on this node (accountLocks), released before the send.
	unlock, apiErr := g.lockAccount(c, where, "payout", foreignID)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		cmd, signed, apiErr := g.planPayout(c, where, foreignID, request, kind, invoiceID, broadcast)
		if apiErr != nil {
			return nil, nil, apiErr
		}
		ctx, cancel := g.withTimeout(c)
		result, err := g.backend.Propose(ctx, fsm.Envelope{Command: cmd, Idempotency: idem})
		cancel()
		if err != nil {
			return nil, nil, gwProposeError(where, err)
		}
		if result.Replayed {
			// Another request with the key (a racing retry) reserved its payout first: this plan
			// is discarded, never reserved nor sent.
			c.Header(headerIdempotentReplayed, "true")
			return g.storedPayout(c, where, result)
		}
		if result.Err != nil && (result.Err.Code == gigawallet.CodeInputUnavailable || result.Err.Code == gigawallet.CodeChangeIndexTaken) {
			if attempt+1 < payoutAttemptsMax {
				continue // another payout of the account took an input or the change address (kept nothing under a key)
			}
			return nil, nil, gw.NewError(gw.CodeDBConflict, "%s: other payouts of the account keep taking its outputs; try again", where)
		}
		p, apiErr := payoutResult(where, result)
		if apiErr != nil {
			return nil, nil, apiErr
		}
		unlock()
		if broadcast {
			if apiErr := g.send(c, where, p); apiErr != nil {
				return nil, nil, apiErr
			}
		}
		return p, signed, nil
	}
}

// payoutResult is a reservation's answer: the payout, or the refusal as GigaWallet's error.
func payoutResult(where string, result *fsm.Result) (*gigawallet.Payment, *gw.Error) {
	if result.Err != nil {
		switch result.Err.Code {
		case gigawallet.CodeInsufficientFunds:
			return nil, gw.NewError(gw.CodeInsufficientFunds, "%s: %s", where, result.Err.Message)
		case gigawallet.CodePaymentExists, gigawallet.CodeRefundExists:
			return nil, gw.NewError(gw.CodeAlreadyExists, "%s: %s", where, result.Err.Message)
		case gigawallet.CodeRefundTooLarge:
			return nil, gw.NewError(gw.CodeInvalidTxn, "%s: %s", where, result.Err.Message)
		}
		return nil, gwError(where, result.Err)
	}
	p, _ := result.Value.(*gigawallet.Payment)
	if p == nil {
		return nil, gw.NewError(gw.CodeUnknownError, "%s: no payout in the answer", where)
	}
	return p, nil
}

// storedPayout answers a replayed reservation as the first request was answered: the same
// payout and its signed transaction (as the shard stored it), or the same refusal. Nothing is
// sent: the first request sent it, or the shard's leader does (chainwatch). A payout released
// since (the node refused it, or it was voided) will not happen: that is answered 422
// invalid-txn, as the first request was when the node refused it, never a success.
func (g *gigaWallet) storedPayout(c *gin.Context, where string, stored *fsm.Result) (*gigawallet.Payment, []byte, *gw.Error) {
	p, apiErr := payoutResult(where, stored)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	var now *gigawallet.Payment
	if err == nil {
		now, err = reader.GetPayment(p.ProjectID, p.ForeignID, p.TxID)
	}
	if err != nil {
		return nil, nil, gwError(where, err)
	}
	if now.Status == gigawallet.PaymentReleased {
		return nil, nil, gw.NewError(gw.CodeInvalidTxn, "%s: the payout %s is released (%s)", where, p.TxID, now.Reason)
	}
	return p, p.RawTx, nil
}

// answerStoredPayout answers a keyed payout route whose key was used (or whose check failed): the
// check's error, or the stored payout (tx shown when withTx; payfrom shows "").
func (g *gigaWallet) answerStoredPayout(c *gin.Context, where string, stored *fsm.Result, apiErr *gw.Error, withTx bool) {
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	p, signed, apiErr := g.storedPayout(c, where, stored)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	tx := ""
	if withTx {
		tx = hex.EncodeToString(signed)
	}
	g.ok(c, http.StatusOK, sendFundsResult(p, tx))
}

// planPayout reads the account and its spendable outputs, plans and signs.
func (g *gigaWallet) planPayout(c *gin.Context, where, foreignID string, request gw.PayRequest, kind, invoiceID string, broadcast bool) (*gigawallet.ReservePayment, []byte, *gw.Error) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err != nil {
		return nil, nil, gwError(where, err)
	}
	a, err := reader.GetAccount(g.cfg.ProjectID, foreignID)
	if err != nil {
		return nil, nil, gwError(where, err)
	}
	outputs, err := reader.SpendableUTXOs(g.cfg.ProjectID, foreignID, payoutCandidatesMax)
	if err != nil {
		return nil, nil, gwError(where, err)
	}
	var feeRate uint64
	if g.cfg.Chain != nil {
		if feeRate, err = g.cfg.Chain.FeeRateKoinuPerKB(ctx); err != nil {
			feeRate = 0 // the floor rate: GigaWallet's fallback when estimatefee fails
		}
	}
	order := chainwatch.PayoutOrder{Account: a, Spendable: outputs, ExplicitFeeKoinu: request.ExplicitFee, MaxFeeKoinu: request.MaxFee,
		FeeRateKoinuPerKB: feeRate, Kind: kind, InvoiceID: invoiceID, Broadcast: broadcast, Confirmations: g.paymentConfirmations(),
		ProjectID: g.cfg.ProjectID}
	for _, o := range request.Outputs {
		order.Outputs = append(order.Outputs, payout.Output{Address: o.Address, Koinu: o.Koinu, DeductFeeShare: payout.FeeShare(o.DeductFeeShare)})
		order.Percents = append(order.Percents, o.DeductFeePercent)
	}
	cmd, raw, err := chainwatch.PlanPayout(g.cfg.Keys, g.cfg.Network, order)
	switch {
	case errors.Is(err, chainwatch.ErrNoKeys):
		return nil, nil, gw.NewError(gw.CodeNotAvailable, "%s: this node has no wallet seed", where)
	case err != nil:
		return nil, nil, payoutError(where, err)
	}
	return cmd, raw, nil
}

func (g *gigaWallet) paymentConfirmations() int32 {
	if g.cfg.ConfirmationsNeeded > 0 {
		return g.cfg.ConfirmationsNeeded
	}
	return paymentConfirmationsDefault
}

// send broadcasts a reserved payout and records the answer. An unknown outcome leaves it
// reserved: the shard's leader sends it again (chainwatch), so the answer is still a success.
func (g *gigaWallet) send(c *gin.Context, where string, p *gigawallet.Payment) *gw.Error {
	if g.cfg.Chain == nil {
		return nil // no node configured: the payout waits reserved until one is
	}
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	err := g.cfg.Chain.Broadcast(ctx, p.RawTx)
	var refused interface{ RefusalReason() string }
	cmd := &gigawallet.PaymentBroadcast{ProjectID: p.ProjectID, ForeignID: p.ForeignID, TxID: p.TxID}
	switch {
	case errors.As(err, &refused):
		cmd.Refused, cmd.Reason = true, refused.RefusalReason()
	case err != nil:
		g.logger.Warn("payout broadcast outcome unknown; the shard's leader sends it again", "txid", p.TxID.String(), "err", err)
		return nil
	}
	if _, perr := g.backend.Propose(ctx, fsm.Envelope{Command: cmd}); perr != nil && cmd.Refused {
		return gwProposeError(where, perr)
	}
	if cmd.Refused {
		return gw.NewError(gw.CodeInvalidTxn, "%s: the node refused the transaction (%s); the payout is released", where, cmd.Reason)
	}
	return nil
}

// payoutError maps chainwatch/payout's refusals: the request's mistakes are 400, what the
// account's state does not allow 422.
func payoutError(where string, err error) *gw.Error {
	switch {
	case errors.Is(err, payout.ErrInsufficientFunds):
		return gw.NewError(gw.CodeInsufficientFunds, "%s: %v", where, err)
	case errors.Is(err, payout.ErrFeeAboveMax), errors.Is(err, payout.ErrTransactionTooLarge):
		return gw.NewError(gw.CodeInvalidTxn, "%s: %v", where, err)
	case errors.Is(err, payout.ErrNoOutputs), errors.Is(err, payout.ErrTooManyOutputs), errors.Is(err, payout.ErrInvalidAddress),
		errors.Is(err, payout.ErrDust), errors.Is(err, payout.ErrDeductShares), errors.Is(err, payout.ErrAmountOutOfRange):
		return gw.NewError(gw.CodeBadRequest, "%s: %v", where, err)
	}
	return gw.NewError(gw.CodeUnknownError, "%s: %v", where, err)
}

// paymentView is a payout as the API shows it.
func paymentView(accountAddress string, p *gigawallet.Payment) gw.Payment {
	view := gw.Payment{PaymentID: p.TxID.String(), AccountID: accountAddress, ForeignID: p.ForeignID, TxID: p.TxID.String(),
		Total: gw.Amount(fsm.AmountFromUint64(p.PaidKoinu)), Fee: gw.Amount(fsm.AmountFromUint64(p.FeeKoinu)),
		Status: p.Status.String(), Kind: p.Kind, InvoiceID: p.InvoiceID, Height: p.Height, Reason: p.Reason,
		Created: time.UnixMilli(p.CreatedAt), Cursor: p.Sequence, PayTo: []gw.PayToView{}}
	for _, o := range p.Outputs {
		view.PayTo = append(view.PayTo, gw.PayToView{Amount: gw.Amount(fsm.AmountFromUint64(o.Koinu)), To: o.Address, DeductFeePercent: o.DeductFeePercent})
	}
	return view
}

// paymentID reads the :paymentID path parameter: a txid.
func (g *gigaWallet) paymentID(c *gin.Context, where string) (gigawallet.Hash, bool) {
	txid, err := gigawallet.ParseHash(c.Param("paymentID"))
	if err != nil {
		g.fail(c, gw.NewError(gw.CodeNotFound, "%s: payout not found", where))
		return txid, false
	}
	return txid, true
}

// getPayment is GET /account/:foreignID/payment/:paymentID.
func (g *gigaWallet) getPayment(c *gin.Context) {
	reader, a, ok := g.account(c, "GetPayment")
	if !ok {
		return
	}
	txid, ok := g.paymentID(c, "GetPayment")
	if !ok {
		return
	}
	p, err := reader.GetPayment(g.cfg.ProjectID, a.ForeignID, txid)
	if err != nil {
		g.fail(c, gwError("GetPayment", err))
		return
	}
	g.ok(c, http.StatusOK, paymentView(a.Address, p))
}

// listPayments is GET /account/:foreignID/payments?cursor=&limit=: oldest first, the cursor of
// the next page 0 after the last (as the invoice list).
func (g *gigaWallet) listPayments(c *gin.Context) {
	query, apiErr := gw.ParseInvoiceListQuery(c.Request.URL.Query())
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	reader, a, ok := g.account(c, "ListPayments")
	if !ok {
		return
	}
	page, err := reader.ListPayments(g.cfg.ProjectID, a.ForeignID, uint64(query.Cursor), query.Limit)
	if err != nil {
		g.fail(c, gwError("ListPayments", err))
		return
	}
	list := gw.PaymentList{}
	for i := range page {
		list.Items = append(list.Items, paymentView(a.Address, &page[i]))
	}
	if len(page) == query.Limit {
		list.Cursor = page[len(page)-1].Sequence + 1
	}
	g.ok(c, http.StatusOK, list)
}

// voidPayment is POST /account/:foreignID/payment/:paymentID/void: releases a payout the node
// has not taken (409 once it was seen in the mempool or a block).
func (g *gigaWallet) voidPayment(c *gin.Context) {
	txid, ok := g.paymentID(c, "VoidPayment")
	if !ok {
		return
	}
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	result, err := g.backend.Propose(ctx, fsm.Envelope{Command: &gigawallet.VoidPayment{ProjectID: g.cfg.ProjectID, ForeignID: c.Param("foreignID"), TxID: txid}})
	if err != nil {
		g.fail(c, gwProposeError("VoidPayment", err))
		return
	}
	if result.Err != nil {
		switch result.Err.Code {
		case gigawallet.CodePaymentNotFound:
			g.fail(c, gw.NewError(gw.CodeNotFound, "VoidPayment: %s", result.Err.Message))
		case gigawallet.CodePaymentNotVoidable:
			g.fail(c, gw.NewError(gw.CodeAlreadyExists, "VoidPayment: %s", result.Err.Message))
		default:
			g.fail(c, gwError("VoidPayment", result.Err))
		}
		return
	}
	p := result.Value.(*gigawallet.Payment)
	g.ok(c, http.StatusOK, paymentView("", p))
}

// refund is POST /account/:foreignID/invoice/:invoiceID/refund {to, amount?}: pays back at most
// what the invoice received (confirmed), once (again only if that payout is released).
func (g *gigaWallet) refund(c *gin.Context) {
	foreignID := c.Param("foreignID")
	idem, apiErr := g.gwIdempotency(c, "RefundInvoice", foreignID)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	request, apiErr := gw.DecodeRefund(c.Request.Body, func(address string) error {
		return dogecoin.ValidateP2PKH(address, g.cfg.Network)
	})
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	if idem != nil {
		// A replay answers the stored refund before the invoice (refunded by it) is read again.
		if stored, apiErr := g.storedAnswer(c, "RefundInvoice", foreignID, idem); apiErr != nil || stored != nil {
			g.answerStoredPayout(c, "RefundInvoice", stored, apiErr, true)
			return
		}
	}
	reader, a, ok := g.account(c, "RefundInvoice")
	if !ok {
		return
	}
	invoice, err := reader.GetInvoice(g.cfg.ProjectID, a.ForeignID, c.Param("invoiceID"))
	if err != nil {
		g.fail(c, gwError("RefundInvoice", err))
		return
	}
	if invoice.Refund != (gigawallet.Hash{}) {
		g.fail(c, gw.NewError(gw.CodeAlreadyExists, "RefundInvoice: the invoice is refunded by payout %s", invoice.Refund))
		return
	}
	koinu := request.Koinu
	if koinu == 0 {
		koinu = invoice.Confirmed.Lo
	}
	// Nothing received is the same refusal with or without an amount (it was a dust error
	// without one: the whole of nothing is an output of 0).
	if invoice.Confirmed.IsZero() || (invoice.Confirmed.Hi == 0 && koinu > invoice.Confirmed.Lo) {
		g.fail(c, gw.NewError(gw.CodeInvalidTxn, "RefundInvoice: the invoice received %s DOGE confirmed; a refund pays back at most that",
			gw.FormatKoinu(invoice.Confirmed)))
		return
	}
	order := gw.PayRequest{Outputs: []gw.PayTo{{Address: request.To, Koinu: koinu, DeductFeePercent: "0"}}}
	p, signed, apiErr := g.payout(c, "RefundInvoice", a.ForeignID, order, gigawallet.PaymentKindRefund, invoice.Address, true, idem)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	g.ok(c, http.StatusOK, sendFundsResult(p, hex.EncodeToString(signed)))
}

// sendFundsResult is a payout's answer (GigaWallet's SendFundsResult); tx is the signed
// transaction in hex, "" for payfrom.
func sendFundsResult(p *gigawallet.Payment, tx string) gw.SendFundsResult {
	return gw.SendFundsResult{TxID: p.TxID.String(), Total: gw.Amount(fsm.AmountFromUint64(p.TotalKoinu())),
		Paid: gw.Amount(fsm.AmountFromUint64(p.PaidKoinu)), Fee: gw.Amount(fsm.AmountFromUint64(p.FeeKoinu)), Tx: tx}
}
