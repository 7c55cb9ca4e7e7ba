package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The GigaWallet API (GigaWallet v1.0.8's routes and shapes, served on the admin listener when
// the node has a wallet seed; the public invoice view also on the public listener). Its keys
// are snake_case, its amounts DogeAmount, and every success is 200.
//
// Errors come in the same envelope {"error":{"code","message"}} as Cloud Wallet's, with
// GigaWallet's codes (GigaWalletCode*), so they are *Error values like every other answer:
// Code, Message and StatusCode are read the same way, and errors.Is(err, ErrNotFound) holds for
// every 404. GigaWallet's 503 not-available does not say whether a write applied (the node
// answers it for a proposal whose outcome it could not learn too), so it matches
// ErrOutcomeUnknown, not ErrUnavailable.
//
// Retries: UpsertAccount is resent after an unknown outcome (repeating an upsert with the same
// settings changes nothing more). CreateInvoice is not: each applied create makes a new invoice
// at the account's next address, and the GigaWallet routes take no Idempotency-Key, so it is
// resent only when the request certainly did not arrive (the connection could not be opened).
// After ErrOutcomeUnknown, list the account's invoices to learn whether it was created.

// GigaWallet's error codes (its pkg/errors.go); Error.Code holds them on GigaWallet routes.
const (
	GigaWalletCodeBadRequest        = "bad-request"
	GigaWalletCodeNotFound          = "not-found"
	GigaWalletCodeUnauthorized      = "unauthorized"
	GigaWalletCodeNotAvailable      = "not-available"
	GigaWalletCodeAlreadyExists     = "already-exists"
	GigaWalletCodeInvalidTxn        = "invalid-txn"
	GigaWalletCodeInsufficientFunds = "insufficient-funds"
	GigaWalletCodeDBConflict        = "db-conflict"
	GigaWalletCodeUnknownError      = "unknown-error"
)

// AccountSettings are the payout settings an account upsert sets; a nil field is not sent, so
// an existing account keeps it (a new one takes the empty default).
type AccountSettings struct {
	// PayoutAddress is a P2PKH address of the node's network, or "" for none.
	PayoutAddress   *string     `json:"payout_address,omitempty"`
	PayoutThreshold *DogeAmount `json:"payout_threshold,omitempty"`
	// PayoutFrequency is "" or a whole number of seconds, as text (GigaWallet's type).
	PayoutFrequency *string `json:"payout_frequency,omitempty"`
}

// GigaWalletAccount is a GigaWallet account: a customer of the node's GigaWallet project,
// named by the caller's foreign ID, with its own HD key.
type GigaWalletAccount struct {
	// ID is the P2PKH address of the account's key.
	ID              string     `json:"id"`
	ForeignID       string     `json:"foreign_id"`
	PayoutAddress   string     `json:"payout_address"`
	PayoutThreshold DogeAmount `json:"payout_threshold"`
	PayoutFrequency string     `json:"payout_frequency"`
}

// GigaWalletBalance is an account's balances. The keys are PascalCase, as GigaWallet writes
// them.
type GigaWalletBalance struct {
	// IncomingBalance is seen on the chain, not yet confirmed.
	IncomingBalance DogeAmount `json:"IncomingBalance"`
	// CurrentBalance is spendable.
	CurrentBalance DogeAmount `json:"CurrentBalance"`
	// OutgoingBalance is held by payouts not yet confirmed.
	OutgoingBalance DogeAmount `json:"OutgoingBalance"`
}

// InvoiceItem is one line of an invoice. A request needs Type ("item", "tax", "fee",
// "shipping", "discount" or "donation"), Name, Value (per unit; negative for a discount) and
// Quantity (≥ 1); the rest is optional.
type InvoiceItem struct {
	Type        string     `json:"type"`
	Name        string     `json:"name"`
	SKU         string     `json:"sku,omitempty"`
	Description string     `json:"description,omitempty"`
	Value       DogeAmount `json:"value"`
	Quantity    int64      `json:"quantity"`
	ImageLink   string     `json:"image_link,omitempty"`
}

// InvoiceRequest creates an invoice.
type InvoiceRequest struct {
	Items []InvoiceItem `json:"items"`
	// RequiredConfirmations is the blocks after the payment's before it counts (GigaWallet's
	// N); nil: the node's default (--confirmations-needed).
	RequiredConfirmations *int32 `json:"required_confirmations,omitempty"`
	// ExpireMinutes, when > 0, expires the invoice after that many minutes (at most 30 days).
	ExpireMinutes int64 `json:"expire_minutes,omitempty"`
}

// InvoicePayment is the payment state of an invoice, the same in both views.
type InvoicePayment struct {
	PartPaymentDetected      bool  `json:"part_payment_detected"`
	TotalPaymentDetected     bool  `json:"total_payment_detected"`
	TotalPaymentConfirmed    bool  `json:"total_payment_confirmed"`
	PaymentUnconfirmed       bool  `json:"payment_unconfirmed"`
	EstimateSecondsToConfirm int64 `json:"estimate_seconds_to_confirm"`
	// Status is "unpaid" or "expired" (and later states as payments are followed).
	Status string `json:"status"`
	// ExpiresAt is nil for an invoice that never expires.
	ExpiresAt *time.Time `json:"expires_at"`
}

// PublicInvoice is an invoice as the payer sees it: the create answer and GET /invoice/{id}.
type PublicInvoice struct {
	// ID is the invoice's pay-to address.
	ID                    string        `json:"id"`
	Items                 []InvoiceItem `json:"items"`
	Created               time.Time     `json:"created"`
	Total                 DogeAmount    `json:"total"`
	PayToAddress          string        `json:"pay_to_address"`
	RequiredConfirmations int32         `json:"required_confirmations"`
	InvoicePayment
}

// Invoice is the admin view of an invoice: the public one plus its account and the amounts
// received.
type Invoice struct {
	ID string `json:"id"`
	// Account is the account's ID (its key's address), not its foreign ID.
	Account               string        `json:"account"`
	Items                 []InvoiceItem `json:"items"`
	RequiredConfirmations int32         `json:"required_confirmations"`
	Created               time.Time     `json:"created"`
	Total                 DogeAmount    `json:"total"`
	TotalIncoming         DogeAmount    `json:"total_incoming"`
	TotalConfirmed        DogeAmount    `json:"total_confirmed"`
	PayToAddress          string        `json:"pay_to_address"`
	InvoicePayment
}

// InvoicePage is one page of an account's invoices, oldest first. Cursor is the next page's
// cursor (an HD key index), 0 after the last page.
type InvoicePage struct {
	Items  []Invoice `json:"items"`
	Cursor int64     `json:"cursor"`
}

// gigaWalletWrite is a write of the GigaWallet API: by default it carries no Idempotency-Key
// (GigaWallet has none; GigaWallet's own clients send none), see gigaWalletCall.
func gigaWalletWrite(method, p string, body []byte) *request {
	r := newRequest(method, p, body)
	r.idempotencyKey = ""
	return r
}

// gigaWalletWriteKind says how a GigaWallet write may be resent after an unknown outcome.
type gigaWalletWriteKind int

const (
	// gwIdempotent: a repeat changes nothing more (the account upsert).
	gwIdempotent gigaWalletWriteKind = iota + 1
	// gwKeyed: a repeat would apply again unless it carries the first attempt's
	// Idempotency-Key, which the route honours (payouts, invoice creation): with a key from
	// WithIdempotencyKey the call sends it and is resent after an unknown outcome; without one
	// it sends none and is resent only when it certainly did not apply.
	gwKeyed
)

// gigaWalletCall encodes in, runs the write and decodes its answer into out.
// A write that is not idempotent is resent only when it certainly did not apply, unless it
// carries the caller's Idempotency-Key (gwKeyed).
func (c *Client) gigaWalletCall(ctx context.Context, p string, in any, kind gigaWalletWriteKind, out any) error {
	body, err := encode(in)
	if err != nil {
		return err
	}
	r := gigaWalletWrite(http.MethodPost, p, body)
	key, _ := ctx.Value(idempotencyKeyKey{}).(string)
	switch {
	case kind == gwIdempotent:
	case kind == gwKeyed && key != "":
		r.idempotencyKey = key
	default:
		r.notIdempotent = true
	}
	return c.call(ctx, r, out)
}

// UpsertAccount creates the account of foreignID, or applies the settings set in settings to
// the existing one (POST /account/{foreignID}). It is resent after an unknown outcome: a
// repeat changes nothing more. It carries no Idempotency-Key (the route ignores it).
func (c *Client) UpsertAccount(ctx context.Context, foreignID string, settings AccountSettings) (*GigaWalletAccount, error) {
	var out GigaWalletAccount
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID), settings, gwIdempotent, &out))
}

// GetAccount returns the account of foreignID.
func (c *Client) GetAccount(ctx context.Context, foreignID string) (*GigaWalletAccount, error) {
	var out GigaWalletAccount
	return entity(&out, c.read(ctx, path("account", foreignID), &out))
}

// GetAccountBalance returns the balances of the account of foreignID.
func (c *Client) GetAccountBalance(ctx context.Context, foreignID string) (*GigaWalletBalance, error) {
	var out GigaWalletBalance
	return entity(&out, c.read(ctx, path("account", foreignID, "balance"), &out))
}

// CreateInvoice creates an invoice paid to the account's next address (its ID). Without a key
// it is not resent after an unknown outcome (a repeat would create a second invoice): with
// ErrOutcomeUnknown, ListInvoices tells whether it was created. Under WithIdempotencyKey it
// sends the key, is resent after an unknown outcome, and a later call with the same key and
// request (after a restart) answers the same invoice.
func (c *Client) CreateInvoice(ctx context.Context, foreignID string, in InvoiceRequest) (*PublicInvoice, error) {
	var out PublicInvoice
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID, "invoice"), in, gwKeyed, &out))
}

// ListInvoices returns one page of the account's invoices, oldest first, from the HD key
// index cursor (0: the first); limit is 1..100, 0 the server's default (10).
func (c *Client) ListInvoices(ctx context.Context, foreignID string, cursor int64, limit int) (*InvoicePage, error) {
	q := "?cursor=" + strconv.FormatInt(cursor, 10)
	if limit > 0 {
		q += "&limit=" + strconv.Itoa(limit)
	}
	var out InvoicePage
	return entity(&out, c.read(ctx, path("account", foreignID, "invoices")+q, &out))
}

// GetInvoice returns the admin view of an invoice of the account; an invoice of another
// account is ErrNotFound.
func (c *Client) GetInvoice(ctx context.Context, foreignID, invoiceID string) (*Invoice, error) {
	var out Invoice
	return entity(&out, c.read(ctx, path("account", foreignID, "invoice", invoiceID), &out))
}

// GetPublicInvoice returns the payer's view of an invoice (GET /invoice/{id}), served by the
// public listener too (a client of the public listener needs no token).
func (c *Client) GetPublicInvoice(ctx context.Context, invoiceID string) (*PublicInvoice, error) {
	var out PublicInvoice
	return entity(&out, c.read(ctx, path("invoice", invoiceID), &out))
}

// GetInvoiceQR returns the invoice's payment QR code, a 512 px PNG (GET /invoice/{id}/qr.png).
// fg and bg are hex RGB or RGBA colours ("000000", "ff000080"); "" takes the default (black on
// white), as does anything the server cannot read.
func (c *Client) GetInvoiceQR(ctx context.Context, invoiceID, fg, bg string) ([]byte, error) {
	query := url.Values{}
	if fg != "" {
		query.Set("fg", fg)
	}
	if bg != "" {
		query.Set("bg", bg)
	}
	p := path("invoice", invoiceID, "qr.png")
	if len(query) > 0 {
		p += "?" + query.Encode()
	}
	got, err := c.run(ctx, newRequest(http.MethodGet, p, nil))
	if err != nil {
		return nil, err
	}
	return got.body, nil
}

// ConnectEnvelope is a DogeConnect 1.0 payment envelope: Payload is the base64 of the payment
// request JSON, signed (Sig, BIP-340 Schnorr over SHA-256(SHA-256(payload bytes))) by PubKey,
// the cluster's DogeConnect key (32-byte x-only), both hex.
type ConnectEnvelope struct {
	Version string `json:"version"`
	Payload string `json:"payload"`
	PubKey  string `json:"pubkey"`
	Sig     string `json:"sig"`
}

// GetInvoiceConnect returns the invoice's signed DogeConnect envelope (GET
// /invoice/{id}/connect). The client does not check the signature; a wallet does.
func (c *Client) GetInvoiceConnect(ctx context.Context, invoiceID string) (*ConnectEnvelope, error) {
	var out ConnectEnvelope
	return entity(&out, c.read(ctx, path("invoice", invoiceID, "connect"), &out))
}
