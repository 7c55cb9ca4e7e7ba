package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gin-gonic/gin"
)

// invoiceCreateAttemptsMax bounds the retries of an invoice whose key index another invoice of
// the account took meanwhile (concurrent invoices of one account).
const invoiceCreateAttemptsMax = 16

// accountKeysCacheMax bounds the parsed account keys kept in memory; past it the memory starts
// over. Parsing an extended public key and deriving its two branches costs three EC operations,
// more than deriving the one address an invoice needs.
const accountKeysCacheMax = 4096

// accountKeysCache keeps parsed account keys by extended public key (public data: no secret).
type accountKeysCache struct {
	mu   sync.Mutex
	keys map[string]*dogecoin.AccountKeys
}

func (c *accountKeysCache) get(xpub string, network dogecoin.Network) (*dogecoin.AccountKeys, error) {
	c.mu.Lock()
	keys := c.keys[xpub]
	c.mu.Unlock()
	if keys != nil {
		return keys, nil
	}
	keys, err := dogecoin.ParseAccountKeys(xpub, network)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= accountKeysCacheMax {
		c.keys = make(map[string]*dogecoin.AccountKeys)
	}
	c.keys[xpub] = keys
	return keys, nil
}

// createInvoice is POST /account/:foreignID/invoice (and the same path with a trailing slash,
// which the WooCommerce plugin calls): an invoice paid to the account's next external address,
// answered 200 with the public view, as GigaWallet. Validation failures are 400 here (500 in
// GigaWallet).
func (g *gigaWallet) createInvoice(c *gin.Context) {
	idem, apiErr := g.gwIdempotency(c, "CreateInvoice", c.Param("foreignID"))
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	request, apiErr := gw.DecodeInvoiceCreate(c.Request.Body, g.cfg.ConfirmationsNeeded)
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	items := make([]gigawallet.Item, len(request.Items))
	for i, it := range request.Items {
		items[i] = gigawallet.Item{Type: it.Type, Name: it.Name, SKU: it.SKU, Description: it.Description,
			ImageLink: it.ImageLink, Negative: it.Value.Negative, Value: it.Value.Koinu, Quantity: uint64(it.Quantity)}
	}
	unlock, apiErr := g.lockAccount(c, "CreateInvoice", "invoice", c.Param("foreignID"))
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		_, a, ok := g.account(c, "CreateInvoice")
		if !ok {
			return
		}
		keys, err := g.keys.get(a.XPub, g.cfg.Network)
		if err != nil {
			g.fail(c, gw.NewError(gw.CodeUnknownError, "CreateInvoice: the account's stored key: %v", err))
			return
		}
		address, err := keys.InvoiceAddress(a.NextExternal)
		if err != nil {
			g.fail(c, gw.NewError(gw.CodeUnknownError, "CreateInvoice: derive the invoice address: %v", err))
			return
		}
		cmd := &gigawallet.CreateInvoice{ProjectID: a.ProjectID, ForeignID: a.ForeignID, KeyIndex: a.NextExternal,
			Address: address.Address, Items: items, RequiredConfirmations: request.RequiredConfirmations,
			ExpireMinutes: request.ExpireMinutes}
		ctx, cancel := g.withTimeout(c)
		// Under a key, a replay answers the stored invoice (this address is not taken) and a
		// taken index keeps nothing under the key (fsm.StaleRefusals).
		result, err := g.backend.Propose(ctx, fsm.Envelope{Command: cmd, Idempotency: idem})
		cancel()
		if err == nil && result != nil && result.Replayed {
			c.Header(headerIdempotentReplayed, "true")
		}
		switch {
		case err != nil:
			g.fail(c, gwProposeError("CreateInvoice", err))
			return
		case result == nil:
			g.fail(c, gw.NewError(gw.CodeUnknownError, "CreateInvoice: no result"))
			return
		case result.Err != nil && result.Err.Code == gigawallet.CodeInvoiceIndexTaken:
			if attempt+1 < invoiceCreateAttemptsMax {
				continue // another invoice of the account (from another node) took the index: read the account again
			}
			g.fail(c, gw.NewError(gw.CodeDBConflict, "CreateInvoice: other invoices of the account keep taking its next address; try again"))
			return
		case result.Err != nil:
			g.fail(c, gwError("CreateInvoice", result.Err))
			return
		}
		g.ok(c, http.StatusOK, publicInvoiceView(result.Value.(*gigawallet.Invoice)))
		return
	}
}

// listInvoices is GET /account/:foreignID/invoices?cursor=&limit=: oldest first from key index
// cursor; the next cursor is the last key index + 1, or 0 when the page is not full (so an
// exactly full last page is followed by an empty one with cursor 0, as in GigaWallet).
func (g *gigaWallet) listInvoices(c *gin.Context) {
	query, apiErr := gw.ParseInvoiceListQuery(c.Request.URL.Query())
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	reader, a, ok := g.account(c, "ListInvoices")
	if !ok {
		return
	}
	list := gw.InvoiceList{}
	if query.Cursor <= int64(^uint32(0)) {
		invoices, err := reader.ListInvoices(a.ProjectID, a.ForeignID, uint32(query.Cursor), query.Limit)
		if err != nil {
			g.fail(c, gwError("ListInvoices", err))
			return
		}
		for i := range invoices {
			list.Items = append(list.Items, invoiceView(a.Address, &invoices[i]))
		}
		if len(invoices) == query.Limit {
			list.Cursor = int64(invoices[len(invoices)-1].KeyIndex) + 1
		}
	}
	g.ok(c, http.StatusOK, list)
}

// getInvoice is the admin GET /account/:foreignID/invoice/:invoiceID. It computes the payment
// flags, unlike GigaWallet v1.0.6+ (its #149: clients poll this route for
// total_payment_confirmed), and keeps the admin shape's extra keys.
func (g *gigaWallet) getInvoice(c *gin.Context) {
	reader, a, ok := g.account(c, "GetInvoice")
	if !ok {
		return
	}
	v, err := reader.GetInvoice(a.ProjectID, a.ForeignID, c.Param("invoiceID"))
	if err != nil {
		g.fail(c, gwError("GetInvoice", err))
		return
	}
	g.ok(c, http.StatusOK, invoiceView(a.Address, v))
}

// getPublicInvoice is GET /invoice/:invoiceID: the payer's view, by address alone, on every node
// for an invoice of any shard.
func (g *gigaWallet) getPublicInvoice(c *gin.Context) {
	if v, ok := g.publicInvoice(c, "GetInvoice"); ok {
		g.ok(c, http.StatusOK, publicInvoiceView(v))
	}
}

// publicInvoice reads the path's invoice by address; it answers the request itself when it
// cannot.
func (g *gigaWallet) publicInvoice(c *gin.Context, where string) (*gigawallet.Invoice, bool) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err == nil {
		var v *gigawallet.Invoice
		if v, err = reader.GetInvoice(g.cfg.ProjectID, "", c.Param("invoiceID")); err == nil {
			return v, true
		}
	}
	g.fail(c, gwError(where, err))
	return nil, false
}

func itemViews(items []gigawallet.Item) []gw.Item {
	views := make([]gw.Item, len(items))
	for i, it := range items {
		views[i] = gw.Item{Type: it.Type, Name: it.Name, SKU: it.SKU, Description: it.Description,
			Value: gw.SignedAmount{Negative: it.Negative, Koinu: it.Value}, Quantity: int64(it.Quantity), ImageLink: it.ImageLink}
	}
	return views
}

func expiresAtView(v *gigawallet.Invoice) *time.Time {
	if v.ExpiresAt == 0 {
		return nil
	}
	t := time.UnixMilli(v.ExpiresAt)
	return &t
}

// paymentFlags are an invoice's payment flags, from what chainwatch observed (fsm/gigawallet
// CHAIN.md): detected counts payments seen in the mempool or a block, confirmed means paid
// (the confirmed sum reached the total), and payment_unconfirmed is a payment seen and not yet
// confirmed — GigaWallet left it always false, as it never saw the mempool.
type paymentFlags struct{ part, total, confirmed, unconfirmed bool }

func flagsOf(v *gigawallet.Invoice) paymentFlags {
	return paymentFlags{
		part:        !v.Incoming.IsZero(),
		total:       v.Incoming.Cmp(v.Total) >= 0,
		confirmed:   v.PaidHeight != 0,
		unconfirmed: v.Incoming.Cmp(v.Confirmed) > 0,
	}
}

// publicInvoiceView is the invoice as payers see it: its payment flags, not the amounts.
func publicInvoiceView(v *gigawallet.Invoice) gw.PublicInvoice {
	f := flagsOf(v)
	return gw.PublicInvoice{ID: v.Address, Items: itemViews(v.Items), Created: time.UnixMilli(v.CreatedAt),
		Total: gw.Amount(v.Total), PayToAddress: v.Address, RequiredConfirmations: v.RequiredConfirmations,
		PartPaymentDetected: f.part, TotalPaymentDetected: f.total, TotalPaymentConfirmed: f.confirmed, PaymentUnconfirmed: f.unconfirmed,
		InvoiceLife: gw.InvoiceLife{Status: v.Status.String(), ExpiresAt: expiresAtView(v)}}
}

// invoiceView is the admin view: the public one plus the account's address and the amounts
// received (total_incoming: seen, mempool included; total_confirmed: confirmed and credited).
func invoiceView(accountAddress string, v *gigawallet.Invoice) gw.Invoice {
	f := flagsOf(v)
	return gw.Invoice{ID: v.Address, Account: accountAddress, Items: itemViews(v.Items), RequiredConfirmations: v.RequiredConfirmations,
		Created: time.UnixMilli(v.CreatedAt), Total: gw.Amount(v.Total), PayToAddress: v.Address,
		TotalIncoming: gw.Amount(v.Incoming), TotalConfirmed: gw.Amount(v.Confirmed),
		PartPaymentDetected: f.part, TotalPaymentDetected: f.total, TotalPaymentConfirmed: f.confirmed, PaymentUnconfirmed: f.unconfirmed,
		InvoiceLife: gw.InvoiceLife{Status: v.Status.String(), ExpiresAt: expiresAtView(v)}}
}

// checkInvoiceID validates the :invoiceID path parameter: an address, so at most
// gigawallet.InvoiceAddressMax base58 characters. Anything else names no invoice: 404, as
// GigaWallet answers an unknown one.
func checkInvoiceID(field, value string) *apiError {
	if value == "" || len(value) > gigawallet.InvoiceAddressMax || !isBase58Text(value) {
		return &apiError{status: http.StatusNotFound, code: string(gw.CodeNotFound), message: "GetInvoice: invoice not found"}
	}
	return nil
}

func isBase58Text(s string) bool {
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '1' && ch <= '9', ch >= 'A' && ch <= 'Z' && ch != 'I' && ch != 'O', ch >= 'a' && ch <= 'z' && ch != 'l':
		default:
			return false
		}
	}
	return true
}

// connectURL is where the invoice's DogeConnect envelope is served: the public listener's URL.
func (g *gigaWallet) connectURL(address string) string {
	return g.cfg.PubAPIRootURL + "/invoice/" + address + "/connect"
}

// qrContent is the text of the invoice's QR code: GigaWallet's
// dogecoin:<id>?amount=<total>&cxt=<connect URL> (contract §2) when the public URL is plain
// http, and DogeConnect 1.0's dogecoin:<id>?amount=<total>&dc=<URL without https://>&h=<key
// hash> when it is https, which DogeConnect requires. Any wallet pays address and amount.
func (g *gigaWallet) qrContent(v *gigawallet.Invoice) (string, error) {
	total := gw.FormatKoinu(v.Total)
	if !strings.HasPrefix(g.cfg.PubAPIRootURL, "https://") {
		return gw.PaymentURI(v.Address, total, g.connectURL(v.Address)), nil
	}
	signer, err := g.connectSigner()
	if err != nil {
		return "", err
	}
	return gw.ConnectURI(v.Address, total, g.connectURL(v.Address), signer.PublicKey())
}

// getInvoiceQR is GET /invoice/:invoiceID/qr.png?fg=&bg=: the payment QR code, 512 px, colours
// as hex RGB(A) or, for anything else (the WooCommerce plugin's "#rrggbb" arrives empty: the #
// starts a fragment), the defaults. Its content never changes, so it may be cached (GigaWallet
// sends the malformed "max-age:=900, immutable"; this is the valid form).
func (g *gigaWallet) getInvoiceQR(c *gin.Context) {
	v, ok := g.publicInvoice(c, "GetInvoiceQR")
	if !ok {
		return
	}
	content, err := g.qrContent(v)
	if err != nil {
		g.fail(c, gw.NewError(gw.CodeUnknownError, "GetInvoiceQR: %v", err))
		return
	}
	png, err := gw.QRPNG(content, c.Query("fg"), c.Query("bg"))
	if err != nil {
		g.fail(c, gw.NewError(gw.CodeUnknownError, "GetInvoiceQR: %v", err))
		return
	}
	c.Header("Cache-Control", "max-age=900, immutable")
	c.Data(http.StatusOK, "image/png", png)
}

// connectSigner is the cluster's DogeConnect signing key (derived from the seed; it stays in
// this process's memory).
func (g *gigaWallet) connectSigner() (*dogecoin.ConnectSigner, error) {
	g.signerOnce.Do(func() { g.signer, g.signerErr = g.cfg.Keys.ConnectSigner() })
	return g.signer, g.signerErr
}

// getInvoiceConnect is GET /invoice/:invoiceID/connect: the invoice as a DogeConnect 1.0
// payment envelope, signed with BIP-340 Schnorr by the cluster's DogeConnect key (GigaWallet
// v1.0.8 serves an unsigned 0.1 envelope with hash "TODO"). Issued is the invoice's creation,
// its timeout the invoice's expiry (else DogeConnect's default), so the envelope is the same on
// every request and every node.
func (g *gigaWallet) getInvoiceConnect(c *gin.Context) {
	v, ok := g.publicInvoice(c, "GetInvoiceConnect")
	if !ok {
		return
	}
	signer, err := g.connectSigner()
	if err != nil {
		g.fail(c, gw.NewError(gw.CodeUnknownError, "GetInvoiceConnect: the signing key: %v", err))
		return
	}
	payment := gw.ConnectPayment{InvoiceID: v.Address, Total: gw.FormatKoinu8DP(v.Total), Issued: time.UnixMilli(v.CreatedAt).UTC(),
		RelayURL: g.cfg.PubAPIRootURL + "/dc/" + v.Address, VendorName: g.cfg.ServiceName, VendorDomain: g.cfg.ServiceDomain,
		VendorIconURL: g.cfg.ServiceIconURL}
	if v.ExpiresAt != 0 {
		payment.TimeoutSeconds = int((v.ExpiresAt - v.CreatedAt) / 1000)
	} else {
		// An invoice that never expires: the longest timeout an envelope may carry (30 days,
		// the longest expiry), from its creation, so the envelope stays the same everywhere.
		// DogeConnect's 1800 s default made wallets refuse it 30 minutes after checkout.
		payment.TimeoutSeconds = gw.ConnectTimeoutMaxSeconds
	}
	for _, it := range itemViews(v.Items) {
		payment.Items = append(payment.Items, gw.ConnectItemFromInvoice(it))
	}
	envelope, err := gw.ConnectEnvelope(payment, signer)
	if errors.Is(err, gw.ErrConnectPayment) {
		// An invoice GigaWallet's limits allow but DogeConnect's do not (an amount above what
		// its wallets accept): the payer's request is fine, the invoice cannot be paid this way.
		e := gw.NewError(gw.CodeBadRequest, "GetInvoiceConnect: this invoice cannot be paid through DogeConnect: %v", err)
		e.Status = http.StatusUnprocessableEntity
		g.fail(c, e)
		return
	}
	if err != nil {
		e := gw.NewError(gw.CodeUnknownError, "GetInvoiceConnect: internal error")
		e.Cause = err
		g.fail(c, e)
		return
	}
	g.ok(c, http.StatusOK, envelope)
}
