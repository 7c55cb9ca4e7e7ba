package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gin-gonic/gin"
)

// GigaWalletConfig turns on the GigaWallet API (docs: ../shared/contracts/gigawallet.md):
// accounts are customers of ProjectID with a wallet of AssetID (DOGE, 10^8 koinu), their keys
// derived from Keys on Network.
type GigaWalletConfig struct {
	ProjectID string
	AssetID   string
	Network   dogecoin.Network
	// Keys derives account keys from the cluster's seed; it stays in this process's memory.
	Keys *dogecoin.Keychain
	// ConfirmationsNeeded is the default of an invoice's required_confirmations (GigaWallet's
	// config ConfirmationsNeeded, 6 by default).
	ConfirmationsNeeded int32
	// PubAPIRootURL is the public listener's URL as payers reach it, without a trailing slash:
	// QR codes link to PubAPIRootURL + "/invoice/<id>/connect".
	PubAPIRootURL string
	// ServiceName, ServiceDomain and ServiceIconURL name the merchant in DogeConnect envelopes.
	ServiceName, ServiceDomain, ServiceIconURL string
	// Chain is the Dogecoin node as the API uses it (rescans, fee rates, broadcasts); nil: no
	// node configured (setsyncheight answers 503, payouts are reserved and wait for one).
	Chain ChainService
}

// ChainService is what the GigaWallet API asks of the chain follower.
type ChainService interface {
	// SetSyncHeight rewinds every shard's chain cursor to a height, so the blocks above it are
	// observed again.
	SetSyncHeight(ctx context.Context, height int64) (shards int, err error)
	// FeeRateKoinuPerKB is the node's fee estimate (0: none; the floor applies).
	FeeRateKoinuPerKB(ctx context.Context) (uint64, error)
	// Broadcast sends a signed transaction: nil when the node has it, an error with a
	// RefusalReason() string method when it refuses it for good, any other error when the
	// outcome is unknown.
	Broadcast(ctx context.Context, raw []byte) error
}

// gigaWallet serves the GigaWallet routes.
type gigaWallet struct {
	*server
	cfg GigaWalletConfig
	// ready records that the project and its DOGE asset exist (both are never deleted once a
	// wallet uses the asset).
	mu    sync.Mutex
	ready bool
	// keys caches parsed account keys, to derive invoice addresses.
	keys accountKeysCache
	// accounts serializes an account's invoice creations and payouts on this node.
	accounts accountLocks
	// signer signs DogeConnect envelopes; derived once.
	signerOnce sync.Once
	signer     *dogecoin.ConnectSigner
	signerErr  error
}

// accountCreateAttemptsMax bounds the retries of a new account whose HD index another account
// of its slot took meanwhile.
const accountCreateAttemptsMax = 8

// lockAccount takes the account's lock of one kind of write (accountLocks: "invoice" for the
// external key index, "payout" for the outputs and the change index) within the request's
// time; a request that waits longer is answered not-available.
func (g *gigaWallet) lockAccount(c *gin.Context, where, kind, foreignID string) (func(), *gw.Error) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	unlock, err := g.accounts.lock(ctx, kind+"\x00"+foreignID)
	if err != nil {
		return nil, gw.NewError(gw.CodeNotAvailable, "%s: other requests of the account were ahead of this one for too long; try again", where)
	}
	return unlock, nil
}

// fail answers with GigaWallet's envelope and codes.
func (g *gigaWallet) fail(c *gin.Context, e *gw.Error) {
	cause := e.Cause
	if cause == nil && e.Status >= http.StatusInternalServerError {
		cause = errors.New(e.Message)
	}
	g.server.fail(c, &apiError{status: e.Status, code: string(e.Code), message: e.Message, cause: cause})
}

// ok answers a success as GigaWallet does: 200 (whatever status is asked), JSON, and
// Cache-Control: no-store.
func (g *gigaWallet) ok(c *gin.Context, _ int, value any) {
	c.Header("Cache-Control", "no-store")
	g.server.ok(c, http.StatusOK, value)
}

// gwProposeError is gwError for a proposal's error: a proposal that may have applied says so
// (GigaWallet has no code for it: not-available, 503, with the message saying what to check).
func gwProposeError(where string, err error) *gw.Error {
	if answer := fromBackendError(err, true); answer.code == CodeOutcomeUnknown {
		return gw.NewError(gw.CodeNotAvailable, "%s: the outcome is unknown: the request may or may not have been applied; sending it again with the same Idempotency-Key is safe (it answers the first outcome), without one read the state before sending it again", where)
	}
	return gwError(where, err)
}

// gwError turns a rejection or a backend error into GigaWallet's answer.
func gwError(where string, err error) *gw.Error {
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		switch rejection.Code {
		case gigawallet.CodeAccountNotFound, gigawallet.CodeInvoiceNotFound, gigawallet.CodePaymentNotFound, ledger.CodeCustomerNotFound, ledger.CodeWalletNotFound, ledger.CodeProjectNotFound:
			return gw.NewError(gw.CodeNotFound, "%s: %s", where, rejection.Message)
		case fsm.CodeInvalidArgument:
			return gw.NewError(gw.CodeBadRequest, "%s: %s", where, rejection.Message)
		case fsm.CodeIdempotencyKeyMismatch:
			return gw.NewError(gw.CodeAlreadyExists, "%s: %s", where, rejection.Message)
		}
		return gw.NewError(gw.CodeUnknownError, "%s: %s", where, rejection.Message)
	}
	answer := fromBackendError(err, false)
	if answer.status == http.StatusServiceUnavailable {
		return gw.NewError(gw.CodeNotAvailable, "%s: %s", where, answer.message)
	}
	e := gw.NewError(gw.CodeUnknownError, "%s: internal error", where)
	e.Cause = err
	return e
}

// ensureProject creates the GigaWallet project and its DOGE asset the first time an account is
// upserted; either may exist already (another node, an earlier run). A failure is tried again
// by the next request.
func (g *gigaWallet) ensureProject(c *gin.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ready {
		return nil
	}
	for _, cmd := range []fsm.Command{
		&ledger.CreateProject{ProjectID: g.cfg.ProjectID, Name: "GigaWallet"},
		&ledger.CreateAsset{ProjectID: g.cfg.ProjectID, AssetID: g.cfg.AssetID, Name: "Dogecoin", Code: "DOGE", Fractions: gw.KoinuPerDOGE},
	} {
		ctx, cancel := g.withTimeout(c)
		result, err := g.backend.Propose(ctx, fsm.Envelope{Command: cmd})
		cancel()
		if err != nil {
			return err // the caller answers not-available; both commands are safe to send again
		}
		if result.Err != nil && result.Err.Code != ledger.CodeProjectExists && result.Err.Code != ledger.CodeAssetExists {
			return result.Err
		}
	}
	g.ready = true
	return nil
}

func accountView(a *gigawallet.Account) gw.AccountPublic {
	return gw.AccountPublic{ID: a.Address, ForeignID: a.ForeignID, PayoutAddress: a.PayoutAddress,
		PayoutThreshold: gw.Amount(a.PayoutThreshold), PayoutFrequency: a.PayoutFrequency}
}

// upsertAccount is POST /account/:foreignID: creates the account, or applies the settings the
// body sets to the existing one (GigaWallet ignored them, its #134).
func (g *gigaWallet) upsertAccount(c *gin.Context) {
	foreignID := c.Param("foreignID")
	if isDotSegment(foreignID) {
		// A customer ID the Cloud Wallet API's paths cannot address (its view of the account);
		// refused where accounts are made, so that none exists to lock out of other routes.
		g.fail(c, gw.NewError(gw.CodeBadRequest, "UpsertAccount: foreign ID %q cannot be a customer ID (a URL path cannot address it)", foreignID))
		return
	}
	settings, apiErr := gw.DecodeAccountUpsert(c.Request.Body, func(address string) error {
		return dogecoin.ValidateP2PKH(address, g.cfg.Network)
	})
	if apiErr != nil {
		g.fail(c, apiErr)
		return
	}
	if err := g.ensureProject(c); err != nil {
		g.fail(c, gwError("UpsertAccount", err))
		return
	}
	cmd := &gigawallet.UpsertAccount{ProjectID: g.cfg.ProjectID, AssetID: g.cfg.AssetID, ForeignID: foreignID}
	if settings.PayoutAddress != nil {
		cmd.PayoutAddress, cmd.SetPayoutAddress = *settings.PayoutAddress, true
	}
	if settings.PayoutThreshold != nil {
		cmd.PayoutThreshold, cmd.SetPayoutThreshold = *settings.PayoutThreshold, true
	}
	if settings.PayoutFrequency != nil {
		cmd.PayoutFrequency, cmd.SetPayoutFrequency = *settings.PayoutFrequency, true
	}
	for attempt := 0; ; attempt++ {
		if err := g.prepareNewAccount(c, cmd); err != nil {
			g.fail(c, err)
			return
		}
		result, ok := g.proposeAccount(c, cmd)
		if !ok {
			return
		}
		if result.Err != nil && result.Err.Code == gigawallet.CodeAccountIndexTaken && attempt+1 < accountCreateAttemptsMax {
			continue // another account of the slot took the index: read the next one
		}
		if result.Err != nil {
			g.fail(c, gwError("UpsertAccount", result.Err))
			return
		}
		g.ok(c, http.StatusOK, accountView(result.Value.(*gigawallet.Account)))
		return
	}
}

// prepareNewAccount fills in the keys of a new account for the slot's next HD index; an
// existing account needs none (its stored keys stay).
func (g *gigaWallet) prepareNewAccount(c *gin.Context, cmd *gigawallet.UpsertAccount) *gw.Error {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err != nil {
		return gwError("UpsertAccount", err)
	}
	if _, err := reader.GetAccount(cmd.ProjectID, cmd.ForeignID); err == nil {
		cmd.Index, cmd.Address, cmd.XPub = 0, "", ""
		if cmd.WalletID == "" {
			cmd.WalletID = newID(idKindWallet, Route{ProjectID: cmd.ProjectID, CustomerID: cmd.ForeignID})
		}
		return nil
	} else if !isCode(err, gigawallet.CodeAccountNotFound) {
		return gwError("UpsertAccount", err)
	}
	index, err := reader.NextAccountIndex(cmd.ProjectID, cmd.ForeignID)
	if err != nil {
		return gwError("UpsertAccount", err)
	}
	keys, err := g.cfg.Keys.Account(index)
	if err != nil {
		return gw.NewError(gw.CodeUnknownError, "UpsertAccount: derive the account key: %v", err)
	}
	cmd.Index, cmd.Address, cmd.XPub = index, keys.ID(), keys.ExtendedPublicKey()
	cmd.WalletID = newID(idKindWallet, Route{ProjectID: cmd.ProjectID, CustomerID: cmd.ForeignID})
	return nil
}

func isCode(err error, code fsm.ErrorCode) bool {
	var rejection *fsm.Error
	return errors.As(err, &rejection) && rejection.Code == code
}

// proposeAccount proposes the upsert; it answers the request itself on a backend error.
func (g *gigaWallet) proposeAccount(c *gin.Context, cmd *gigawallet.UpsertAccount) (*fsm.Result, bool) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	result, err := g.backend.Propose(ctx, fsm.Envelope{Command: cmd})
	if err != nil {
		g.fail(c, gwProposeError("UpsertAccount", err))
		return nil, false
	}
	if result == nil {
		g.fail(c, gw.NewError(gw.CodeUnknownError, "UpsertAccount: no result"))
		return nil, false
	}
	return result, true
}

// account reads the path's account; it answers the request itself when it cannot.
func (g *gigaWallet) account(c *gin.Context, where string) (Reader, *gigawallet.Account, bool) {
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	reader, err := g.backend.Read(ctx)
	if err == nil {
		var a *gigawallet.Account
		if a, err = reader.GetAccount(g.cfg.ProjectID, c.Param("foreignID")); err == nil {
			return reader, a, true
		}
	}
	g.fail(c, gwError(where, err))
	return nil, nil, false
}

// getAccount is GET /account/:foreignID.
func (g *gigaWallet) getAccount(c *gin.Context) {
	if _, a, ok := g.account(c, "GetAccount"); ok {
		g.ok(c, http.StatusOK, accountView(a))
	}
}

// getBalance is GET /account/:foreignID/balance: the account's wallet in the ledger. Current is
// what it can spend (available), outgoing the totals of its payouts not yet confirmed (held
// until mined, then spent: it falls at the confirmation, as the docs say; a probe saw it fall
// at the mining when this was the wallet's held amount), incoming the payments seen on the
// chain (mempool included) and not yet confirmed.
func (g *gigaWallet) getBalance(c *gin.Context) {
	reader, a, ok := g.account(c, "GetAccountBalance")
	if !ok {
		return
	}
	w, err := reader.GetWallet(a.ProjectID, a.WalletID)
	if err != nil {
		g.fail(c, gwError("GetAccountBalance", err))
		return
	}
	g.ok(c, http.StatusOK, gw.Balance{IncomingBalance: gw.Amount(a.Incoming), CurrentBalance: gw.Amount(w.Available()), OutgoingBalance: gw.Amount(a.Outgoing)})
}

// checkForeignID validates the :foreignID path parameter (a customer ID of the ledger), as the
// Cloud Wallet API checks customer IDs: printable characters only, so that an account is never
// created under an ID that looks like another one (a zero-width space, a bidi override) nor one
// the Cloud Wallet API cannot address.
func checkForeignID(field, value string) *apiError {
	if !fsm.ValidCustomerID(value) || !fsm.Printable(value) {
		return &apiError{status: http.StatusBadRequest, code: string(gw.CodeBadRequest),
			message: fmt.Sprintf("%s must be 1..%d printable characters without '/' (no invisible, format or other space characters)", field, fsm.CustomerIDMaxLength)}
	}
	return nil
}

// tagGigaWallet is the OpenAPI tag of the GigaWallet routes.
const tagGigaWallet = "gigawallet"

// gigaWalletPaths are the GigaWallet routes' paths (the same whichever listener serves them);
// set once, by init, and only read after.
var gigaWalletPaths map[string]bool

func init() {
	gigaWalletPaths = map[string]bool{}
	for _, spec := range (&gigaWallet{}).routes() {
		gigaWalletPaths[spec.path] = true
	}
}

// inGigaWalletCode gives a refusal on a GigaWallet route the GigaWallet code of its status when
// the listener's own checks made it (a missing token, a body too large, a media type), which
// speak the Cloud Wallet API's codes: docs/gigawallet-api.md promises GigaWallet's codes on
// every GigaWallet route. The status stays (413, 415 are more precise than GigaWallet's 400).
func inGigaWalletCode(c *gin.Context, e *apiError) *apiError {
	if !gigaWalletPaths[c.FullPath()] {
		return e
	}
	if _, ours := gw.KnownCode(gw.Code(e.code)); ours {
		return e
	}
	code := gw.CodeBadRequest
	switch {
	case e.status == http.StatusUnauthorized:
		code = gw.CodeUnauthorized
	case e.status == http.StatusNotFound:
		code = gw.CodeNotFound
	case e.status == http.StatusServiceUnavailable:
		code = gw.CodeNotAvailable
	case e.status >= http.StatusInternalServerError:
		code = gw.CodeUnknownError
	}
	translated := *e
	translated.code = string(code)
	return &translated
}

// routes are the GigaWallet routes at GigaWallet's exact paths: the admin listener serves them
// all, the public listener those marked public (GigaWallet's public server). Every success is
// 200, as GigaWallet answers.
func (g *gigaWallet) routes() []routeSpec {
	ok := http.StatusOK
	invoiceCreate := func(path string) routeSpec {
		return routeSpec{method: http.MethodPost, path: path, operationID: "gigawalletCreateInvoice", tag: tagGigaWallet,
			handler: g.createInvoice, request: "GigaWalletInvoiceRequest", success: ok, response: "GigaWalletPublicInvoice",
			summary: "Create an invoice paid to the account's next external address m/44'/3'/N'/0/i (its id).",
			errors:  []int{http.StatusNotFound}}
	}
	slashed := invoiceCreate("/account/:foreignID/invoice/")
	slashed.operationID = "gigawalletCreateInvoiceSlash"
	slashed.summary = "The same, at the path with a trailing slash that the WooCommerce plugin calls (no redirect)."
	return []routeSpec{
		{method: http.MethodPost, path: "/account/:foreignID", operationID: "gigawalletUpsertAccount", tag: tagGigaWallet, keyless: true,
			handler: g.upsertAccount, request: "GigaWalletAccountRequest", success: ok, response: "GigaWalletAccount",
			summary: "Create the account of a foreign ID, or apply the payout settings the body sets to it (a body is required; {} sets nothing).",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/account/:foreignID", operationID: "gigawalletGetAccount", tag: tagGigaWallet,
			handler: g.getAccount, success: ok, response: "GigaWalletAccount", summary: "Get an account.", errors: []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/account/:foreignID/balance", operationID: "gigawalletGetBalance", tag: tagGigaWallet,
			handler: g.getBalance, success: ok, response: "GigaWalletBalance",
			summary: "The account's balances, DOGE as decimal strings: Current (spendable), Outgoing (held by payouts), Incoming (unconfirmed).",
			errors:  []int{http.StatusNotFound}},
		invoiceCreate("/account/:foreignID/invoice"), slashed,
		{method: http.MethodGet, path: "/account/:foreignID/invoices", operationID: "gigawalletListInvoices", tag: tagGigaWallet,
			handler: g.listInvoices, query: []string{"cursor", "limit"}, success: ok, response: "GigaWalletInvoiceList",
			summary: "The account's invoices, oldest first, from key index cursor; the answer's cursor is the next page's, 0 after the last.",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/account/:foreignID/invoice/:invoiceID", operationID: "gigawalletGetInvoice", tag: tagGigaWallet,
			handler: g.getInvoice, success: ok, response: "GigaWalletInvoice",
			summary: "An invoice of the account, with its payment flags computed (GigaWallet v1.0.6+ left them false, its #149).",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodPost, path: "/account/:foreignID/pay", operationID: "gigawalletPay", tag: tagGigaWallet,
			handler: g.pay(true), request: "GigaWalletPayRequest", success: ok, response: "GigaWalletSendFundsResult",
			summary: "Pay DOGE from the account: inputs reserved and the total held before the signed transaction is sent; hex is the txid, tx the signed transaction.",
			errors:  []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}},
		{method: http.MethodPost, path: "/account/:foreignID/paytx", operationID: "gigawalletPayTx", tag: tagGigaWallet,
			handler: g.pay(false), request: "GigaWalletPayRequest", success: ok, response: "GigaWalletSendFundsResult",
			summary: "The same, not sent: the caller broadcasts tx; until the node has it, void releases it.",
			errors:  []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}},
		{method: http.MethodPost, path: "/invoice/:invoiceID/payfrom/:foreignID", operationID: "gigawalletPayFrom", tag: tagGigaWallet,
			handler: g.payFrom, requestOptional: true, success: ok, response: "GigaWalletSendFundsResult",
			summary: "The account pays the invoice's total to its address (any account's invoice), once (409 when it already received its total or the payer's shard holds an unreleased payfrom of it); tx is empty, as GigaWallet's.",
			errors:  []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}},
		{method: http.MethodPost, path: "/account/:foreignID/invoice/:invoiceID/refund", operationID: "gigawalletRefundInvoice", tag: tagGigaWallet,
			handler: g.refund, request: "GigaWalletRefundRequest", success: ok, response: "GigaWalletSendFundsResult",
			summary: "Pay an invoice's payment back to an address: at most what it received (confirmed), once (again only if that payout is released).",
			errors:  []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}},
		{method: http.MethodGet, path: "/account/:foreignID/payments", operationID: "gigawalletListPayments", tag: tagGigaWallet,
			handler: g.listPayments, query: []string{"cursor", "limit"}, success: ok, response: "GigaWalletPaymentList",
			summary: "The account's payouts, oldest first, from cursor; the answer's cursor is the next page's, 0 after the last.",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/account/:foreignID/payment/:paymentID", operationID: "gigawalletGetPayment", tag: tagGigaWallet,
			handler: g.getPayment, success: ok, response: "GigaWalletPayment", summary: "A payout of the account, by its txid.",
			errors: []int{http.StatusNotFound}},
		{method: http.MethodPost, path: "/account/:foreignID/payment/:paymentID/void", operationID: "gigawalletVoidPayment", tag: tagGigaWallet, keyless: true,
			handler: g.voidPayment, requestOptional: true, success: ok, response: "GigaWalletPayment",
			summary: "Release a payout the node has not taken: inputs free, hold released (409 once it was seen in the mempool or a block).",
			errors:  []int{http.StatusNotFound, http.StatusConflict}},
		{method: http.MethodPost, path: "/admin/setsyncheight/:height", operationID: "gigawalletSetSyncHeight", tag: tagGigaWallet, keyless: true,
			handler: g.setSyncHeight, requestOptional: true, success: ok, response: "GigaWalletSyncHeight",
			summary: "Rescan: every shard's chain cursor goes back to the block at height, and the blocks above it are observed again (reorg-safe: credits above it are undone first).",
			errors:  []int{http.StatusBadRequest, http.StatusServiceUnavailable}},
		{method: http.MethodGet, path: "/invoice/:invoiceID", operationID: "gigawalletGetPublicInvoice", tag: tagGigaWallet,
			handler: g.getPublicInvoice, success: ok, response: "GigaWalletPublicInvoice", public: true,
			summary: "Public listener (and admin): the payer's view of an invoice, from any node.", errors: []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/invoice/:invoiceID/qr.png", operationID: "gigawalletGetInvoiceQR", tag: tagGigaWallet,
			handler: g.getInvoiceQR, query: []string{"fg", "bg"}, success: ok, contentType: "image/png", public: true,
			summary: "Public listener (and admin): the invoice's payment QR code, a 512 px PNG; fg/bg hex RGB(A), anything else the defaults.",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodGet, path: "/invoice/:invoiceID/connect", operationID: "gigawalletGetInvoiceConnect", tag: tagGigaWallet,
			handler: g.getInvoiceConnect, success: ok, response: "DogeConnectEnvelope", public: true,
			summary: "Public listener (and admin): the invoice as a signed DogeConnect 1.0 payment envelope.",
			errors:  []int{http.StatusNotFound}},
		{method: http.MethodPost, path: "/dc/:invoiceID/pay", operationID: "dogeconnectRelayPay", tag: tagGigaWallet, keyless: true,
			handler: g.relayPay, request: "DogeConnectPaymentResponse", success: ok, response: "DogeConnectRelayReply", public: true,
			summary: "Public listener (and admin): the DogeConnect 1.0 relay (the envelope's relay URL is /dc/<invoice>). A wallet submits the signed transaction that pays the invoice; it goes to the node: accepted, or declined with the node's reason. 400 invalid_tx or invalid_outputs (it does not pay the invoice's total to its address), 400 expired, 404 not_found; errors are {\"error\",\"message\"}.",
			errors:  []int{http.StatusBadRequest, http.StatusNotFound, http.StatusServiceUnavailable}},
		{method: http.MethodPost, path: "/dc/:invoiceID/status", operationID: "dogeconnectRelayStatus", tag: tagGigaWallet, keyless: true,
			handler: g.relayStatus, request: "DogeConnectStatusQuery", success: ok, response: "DogeConnectRelayReply", public: true,
			summary: "Public listener (and admin): the payment's status: unpaid until the chain follower has seen payments covering the total, accepted until the invoice is paid, then confirmed. 400 expired for an invoice that expired before payments covered it.",
			errors:  []int{http.StatusBadRequest, http.StatusNotFound}},
	}
}

// syncHeightMax bounds a rescan height (far above any chain's).
const syncHeightMax = 1 << 40

// setSyncHeight is POST /admin/setsyncheight/:height (GigaWallet's setsyncheight).
func (g *gigaWallet) setSyncHeight(c *gin.Context) {
	height, err := strconv.ParseInt(c.Param("height"), 10, 64)
	if err != nil || height < 0 || height > syncHeightMax {
		g.fail(c, gw.NewError(gw.CodeBadRequest, "SetSyncHeight: height must be a block height, 0..%d", int64(syncHeightMax)))
		return
	}
	if g.cfg.Chain == nil {
		g.fail(c, gw.NewError(gw.CodeNotAvailable, "SetSyncHeight: no Dogecoin node is configured (--dogecoind)"))
		return
	}
	ctx, cancel := g.withTimeout(c)
	defer cancel()
	shards, err := g.cfg.Chain.SetSyncHeight(ctx, height)
	if err != nil {
		g.fail(c, gwError("SetSyncHeight", err))
		return
	}
	g.ok(c, http.StatusOK, gw.SyncHeight{Height: height, Shards: shards})
}
