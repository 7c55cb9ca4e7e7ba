package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
)

// The DogeConnect payment relay at the envelope's relay URL, <public root>/dc/<invoice>
// (httpapi/gigawallet/relay.go has the protocol). GigaWallet v1.0.8 serves none of DogeConnect
// 1.0; before this the envelope named a relay that answered 404, so no DogeConnect wallet could
// pay. A payment needs no state of its own: the transaction goes to the node, and the chain
// follower credits the invoice when it sees the transaction (mempool, then blocks), which is
// what status reports.

// relayPay is POST /dc/:invoiceID/pay {id, tx}: checks that tx pays the invoice, sends it to
// the node, and answers accepted, or declined with the node's reason.
func (g *gigaWallet) relayPay(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	invoiceID := c.Param("invoiceID")
	payment, rejection := gw.DecodeRelayPay(c.Request.Body, invoiceID)
	if rejection != nil {
		g.relayFail(c, rejection)
		return
	}
	invoice, rejection := g.relayInvoice(c, invoiceID)
	if rejection != nil {
		g.relayFail(c, rejection)
		return
	}
	// Expired as the ledger says (at the first batch whose time reaches the expiry; an idle
	// shard's leader proposes one), so every node answers alike.
	if invoice.Status == gigawallet.InvoiceExpired {
		g.relayFail(c, relayExpired())
		return
	}
	if rejection := gw.CheckRelayOutputs(payment.Tx, invoice.Address, invoice.Total, g.cfg.Network); rejection != nil {
		g.relayFail(c, rejection)
		return
	}
	if g.cfg.Chain == nil {
		g.relayFail(c, &gw.RelayError{Status: http.StatusServiceUnavailable, Code: gw.RelayErrorUnavailable,
			Message: "no Dogecoin node is configured to send the transaction to"})
		return
	}
	reply := gw.RelayReply{ID: invoiceID, Status: gw.RelayAccepted}
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	err := g.cfg.Chain.Broadcast(ctx, payment.Raw)
	var refused interface{ RefusalReason() string }
	switch {
	case errors.As(err, &refused):
		// The node will not take it (a double spend, a fee under its floor, a bad signature):
		// the customer's problem, not the wallet's code.
		reply.Status, reply.Reason = gw.RelayDeclined, refused.RefusalReason()
	case err != nil:
		g.relayFail(c, &gw.RelayError{Status: http.StatusServiceUnavailable, Code: gw.RelayErrorUnavailable,
			Message: "the node did not answer whether it took the transaction; submitting it again is safe"})
		g.server.logger.Warn("dogeconnect relay: broadcast", "invoice", invoiceID, "txid", payment.Tx.TxHash().String(), "error", err)
		return
	default:
		reply.TxID = payment.Tx.TxHash().String()
		reply.RelayProgress(invoice.RequiredConfirmations, 0)
	}
	c.JSON(http.StatusOK, reply)
}

// relayStatus is POST /dc/:invoiceID/status {id}: unpaid until the follower has seen payments
// covering the total, accepted while they wait for confirmations, confirmed once the invoice is
// paid; an invoice that expired before payments covered it is the error expired, as pay
// answers it (DogeConnect's statuses have no expired, and unpaid would say it can be paid).
func (g *gigaWallet) relayStatus(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	invoiceID := c.Param("invoiceID")
	if rejection := gw.DecodeRelayStatus(c.Request.Body, invoiceID); rejection != nil {
		g.relayFail(c, rejection)
		return
	}
	invoice, rejection := g.relayInvoice(c, invoiceID)
	if rejection != nil {
		g.relayFail(c, rejection)
		return
	}
	reply := gw.RelayReply{ID: invoiceID, Status: gw.RelayUnpaid}
	switch {
	case invoice.Status == gigawallet.InvoiceExpired && invoice.Incoming.Cmp(invoice.Total) < 0:
		g.relayFail(c, relayExpired())
		return
	case invoice.Status == gigawallet.InvoicePaid:
		reply.Status = gw.RelayConfirmed
		reply.RelayProgress(invoice.RequiredConfirmations, invoice.RequiredConfirmations)
	case invoice.Incoming.Cmp(invoice.Total) >= 0:
		reply.Status = gw.RelayAccepted
		reply.RelayProgress(invoice.RequiredConfirmations, 0)
	}
	c.JSON(http.StatusOK, reply)
}

// relayInvoice reads the invoice a relay URL names.
func (g *gigaWallet) relayInvoice(c *gin.Context, invoiceID string) (*gigawallet.Invoice, *gw.RelayError) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err == nil {
		var invoice *gigawallet.Invoice
		if invoice, err = reader.GetInvoice(g.cfg.ProjectID, "", invoiceID); err == nil {
			return invoice, nil
		}
	}
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == gigawallet.CodeInvoiceNotFound {
		return nil, &gw.RelayError{Status: http.StatusNotFound, Code: gw.RelayErrorNotFound, Message: "no such payment: " + invoiceID}
	}
	answer := gwError("DogeConnectRelay", err)
	return nil, &gw.RelayError{Status: answer.Status, Code: gw.RelayErrorUnavailable, Message: answer.Message, Cause: answer.Cause}
}

// relayFail answers a relay refusal in DogeConnect's error shape, logging a 5xx's cause.
func (g *gigaWallet) relayFail(c *gin.Context, e *gw.RelayError) {
	if e.Status >= http.StatusInternalServerError && e.Status != http.StatusServiceUnavailable {
		g.server.logger.Error("dogeconnect relay failed", "route", c.FullPath(), "code", e.Code, "error", e.Cause)
	}
	c.AbortWithStatusJSON(e.Status, e) // the handler set Cache-Control: no-store
}

// relayExpired is the refusal of an invoice that expired, for pay and status alike.
func relayExpired() *gw.RelayError {
	return &gw.RelayError{Status: http.StatusBadRequest, Code: gw.RelayErrorExpired, Message: "the invoice expired"}
}

// relayPaths are the DogeConnect relay's routes, whose every refusal is in DogeConnect's error
// shape (docs/gigawallet-api.md), including the listener's own: a bad invoice ID in the path,
// a body too large or not JSON.
var relayPaths = map[string]bool{"/dc/:invoiceID/pay": true, "/dc/:invoiceID/status": true}

// inRelayShape is e in DogeConnect's shape when the route is the relay's (nil otherwise).
func inRelayShape(c *gin.Context, e *apiError) *gw.RelayError {
	if !relayPaths[c.FullPath()] && (c.FullPath() != "" || !isRelayPath(c.Request.URL.Path)) {
		return nil // FullPath is "" where no route matched: a method the path does not serve
	}
	code := gw.RelayErrorBadRequest
	switch {
	case e.status == http.StatusNotFound:
		code = gw.RelayErrorNotFound
	case e.status >= http.StatusInternalServerError:
		code = gw.RelayErrorUnavailable
	}
	return &gw.RelayError{Status: e.status, Code: code, Message: e.message}
}

// isRelayPath reports whether path is /dc/{invoiceID}/pay or /dc/{invoiceID}/status.
func isRelayPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/dc/")
	if !ok {
		return false
	}
	id, action, ok := strings.Cut(rest, "/")
	return ok && id != "" && (action == "pay" || action == "status")
}
