package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The GigPay API (seed 002, docs/gigpay-api.md): accounts (wallets of the node's GigPay project),
// payment tokens a payer creates and a payee claims or rejects, and payments (deposits,
// transfers, withdrawals). Its routes live under /api/v1 on the admin listener; the claim and
// reject of a token are also served by the public listener without the admin token (the token
// string authorises them), so a client made without WithToken for the public URL may call
// ClaimPaymentToken and RejectPaymentToken. Keys are camelCase, amounts Decimal (exact JSON
// number literals), times RFC 3339 UTC.
//
// Retries: every write carries the call's Idempotency-Key on each attempt (or the caller's,
// WithIdempotencyKey), which every GigPay write honours, so a call applies once however often it
// is resent. Tokens and payments are also idempotent by their clientReference (kept for good,
// where keys last 24 hours): give every batch item one and a whole batch may be sent again.

// GigPay error codes (besides the shared ones: InvalidArgument, WalletNotFound, AssetNotFound,
// AssetMismatch, InsufficientFunds, WalletSuspended, WalletClosed, CrossShardTransaction,
// IdempotencyKeyMismatch, InvalidStatusTransition).
const (
	CodeAmountTooPrecise = "AmountTooPrecise"
	CodeExpiryInvalid    = "ExpiryInvalid"
	CodeInvalidCursor    = "InvalidCursor"
	CodeTokenNotFound    = "TokenNotFound"
	CodePaymentNotFound  = "PaymentNotFound"
	CodeUnsupportedAsset = "UnsupportedAsset"
	CodeTokenNotActive   = "TokenNotActive"
	// CodeTokenClaimInProgress (409, with the token): a claim across shards holds the token;
	// retry: it ends Succeeded or Active again.
	CodeTokenClaimInProgress = "TokenClaimInProgress"
	// CodeTokenCloseInProgress (409, with the token): a close across shards holds the token;
	// retry: it ends Closed or Succeeded again.
	CodeTokenCloseInProgress    = "TokenCloseInProgress"
	CodeClientReferenceMismatch = "ClientReferenceMismatch"
	CodeTokenExists             = "TokenExists"
	CodePaymentExists           = "PaymentExists"
)

// GigPayAccount is a GigPay account: a wallet (ID) of the GigPay project (BusinessAccountID)
// owned by the customer UserIdentityID, in the asset AssetType. Available = Balance − Held.
type GigPayAccount struct {
	ID                string    `json:"id"`
	BusinessAccountID string    `json:"businessAccountId"`
	UserIdentityID    string    `json:"userIdentityId"`
	AssetType         string    `json:"assetType"`
	Balance           Decimal   `json:"balance"`
	Available         Decimal   `json:"available"`
	Held              Decimal   `json:"held"`
	Status            string    `json:"status"`
	CreatedAtUtc      time.Time `json:"createdAtUtc"`
}

// CreateGigPayAccountRequest opens an account for a user (created with it if new) in an asset
// of the GigPay project ("usd").
type CreateGigPayAccountRequest struct {
	UserIdentityID string `json:"userIdentityId"`
	AssetType      string `json:"assetType"`
}

// PaymentTokenStatus is where a token is: Active until exactly one of Succeeded (claimed),
// Rejected, Expired; a succeeded token whose payment failed downstream is Closed.
type PaymentTokenStatus string

// Payment token statuses (capitalised, as the seed writes them).
const (
	PaymentTokenActive    PaymentTokenStatus = "Active"
	PaymentTokenSucceeded PaymentTokenStatus = "Succeeded"
	PaymentTokenRejected  PaymentTokenStatus = "Rejected"
	PaymentTokenExpired   PaymentTokenStatus = "Expired"
	PaymentTokenClosed    PaymentTokenStatus = "Closed"
)

// PaymentToken is a payer's promise of Amount from SourceAccountID, held there while Active.
// ID is the admin's handle; Token is the unguessable bearer string the payee holds (Link
// carries it), which the claim and reject routes take.
type PaymentToken struct {
	ID              string             `json:"id"`
	Token           string             `json:"token"`
	Status          PaymentTokenStatus `json:"status"`
	Link            string             `json:"link"`
	AssetType       string             `json:"assetType"`
	SourceAccountID string             `json:"sourceAccountId"`
	Amount          Decimal            `json:"amount"`
	ExpiresAtUtc    time.Time          `json:"expiresAtUtc"`
	Memo            string             `json:"memo"`
	ClientReference string             `json:"clientReference,omitempty"`
	CreatedAtUtc    time.Time          `json:"createdAtUtc"`
	ModifiedAtUtc   time.Time          `json:"modifiedAtUtc"`
	// Set by a claim: the payee's account and the transfer payment.
	DestinationAccountID string `json:"destinationAccountId,omitempty"`
	PaymentID            string `json:"paymentId,omitempty"`
	// Reason is a close's.
	Reason string `json:"reason,omitempty"`
}

// CreatePaymentTokenRequest creates a token: Amount of AssetType is held on SourceAccountID
// until the token is claimed, rejected or expires at ExpiresAtUtc (sent in UTC with
// millisecond precision). ClientReference, when set, makes the create idempotent by itself.
type CreatePaymentTokenRequest struct {
	AssetType       string
	SourceAccountID string
	Amount          Decimal
	ExpiresAtUtc    time.Time
	Memo            string
	ClientReference string
}

// gigPayTimeLayout is how the API writes times: RFC 3339 UTC with milliseconds.
const gigPayTimeLayout = "2006-01-02T15:04:05.000Z"

// gigPayTime formats t as the API writes times.
func gigPayTime(t time.Time) string { return t.UTC().Format(gigPayTimeLayout) }

// MarshalJSON writes the request in the seed's shape, the expiry as gigPayTimeLayout.
func (r CreatePaymentTokenRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AssetType       string  `json:"assetType"`
		SourceAccountID string  `json:"sourceAccountId"`
		Amount          Decimal `json:"amount"`
		ExpiresAtUtc    string  `json:"expiresAtUtc"`
		Memo            string  `json:"memo"`
		ClientReference string  `json:"clientReference,omitempty"`
	}{r.AssetType, r.SourceAccountID, r.Amount, gigPayTime(r.ExpiresAtUtc), r.Memo, r.ClientReference})
}

// PaymentTokenBatchResult says what happened to one item of a batch.
type PaymentTokenBatchResult string

// Batch item results.
const (
	BatchItemCreated  PaymentTokenBatchResult = "created"
	BatchItemReplayed PaymentTokenBatchResult = "replayed" // an earlier create of the same client reference
	BatchItemFailed   PaymentTokenBatchResult = "failed"
)

// PaymentTokenBatchItem is one item's result, in request order: the token when created or
// replayed, the reason (an error code and message) when failed.
type PaymentTokenBatchItem struct {
	Index  int                     `json:"index"`
	Result PaymentTokenBatchResult `json:"result"`
	Token  *PaymentToken           `json:"token,omitempty"`
	Error  *BatchItemError         `json:"error,omitempty"`
}

// BatchItemError is why one item of a batch failed.
type BatchItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// GigPayPaymentType is what a payment moves.
type GigPayPaymentType string

// Payment types.
const (
	GigPayDeposit    GigPayPaymentType = "deposit"    // from outside into an account
	GigPayTransfer   GigPayPaymentType = "transfer"   // between accounts: a claimed token
	GigPayWithdrawal GigPayPaymentType = "withdrawal" // out of an account
)

// GigPayPaymentStatus is where a payment is.
type GigPayPaymentStatus string

// Payment statuses.
const (
	GigPayPending    GigPayPaymentStatus = "pending"
	GigPayProcessing GigPayPaymentStatus = "processing"
	GigPayCompleted  GigPayPaymentStatus = "completed"
	GigPayCanceled   GigPayPaymentStatus = "canceled"
	GigPayFailed     GigPayPaymentStatus = "failed"
)

// GigPayParty is one side of a payment: an account (ID, its project and owner), or for the
// outside side of a deposit or withdrawal ID and UserIdentityID "" and ExternalStorage the
// integrator's reference of the external account.
type GigPayParty struct {
	ID                string `json:"id"`
	BusinessAccountID string `json:"businessAccountId"`
	UserIdentityID    string `json:"userIdentityId"`
	ExternalStorage   string `json:"externalStorage"`
}

// GigPayPayment is a payment in the seed's shape.
type GigPayPayment struct {
	PaymentID      string              `json:"paymentId"`
	Amount         Decimal             `json:"amount"`
	AssetType      string              `json:"assetType"`
	Status         GigPayPaymentStatus `json:"status"`
	Type           GigPayPaymentType   `json:"type"`
	CreatedAtUtc   time.Time           `json:"createdAtUtc"`
	ModifiedAtUtc  time.Time           `json:"modifiedAtUtc"`
	Source         GigPayParty         `json:"source"`
	Destination    GigPayParty         `json:"destination"`
	PaymentTokenID string              `json:"paymentTokenId"`
	// ClientReference is the create's, when it had one.
	ClientReference string `json:"clientReference,omitempty"`
	Reason          string `json:"reason,omitempty"`
}

// CreateGigPayPaymentRequest creates an admin payment: a deposit into AccountID or a
// withdrawal from it (which holds its amount), pending until UpdateGigPayPaymentStatus moves it.
type CreateGigPayPaymentRequest struct {
	Type            GigPayPaymentType `json:"type"`
	AccountID       string            `json:"accountId"`
	AssetType       string            `json:"assetType"`
	Amount          Decimal           `json:"amount"`
	ExternalStorage string            `json:"externalStorage"`
	ClientReference string            `json:"clientReference,omitempty"`
}

// GigPayPaymentSort is the key a payments list is sorted by.
type GigPayPaymentSort string

// Sort keys.
const (
	SortByCreated GigPayPaymentSort = "createdAtUtc"
	SortByAmount  GigPayPaymentSort = "amount"
)

// GigPayPaymentQuery filters, sorts and pages the payments list. Zero fields filter nothing
// and take the server's defaults (newest first: createdAtUtc desc, 100 a page). Cursor is a
// page's NextCursor, valid only with the same Sort, Order and filters (else 400
// InvalidCursor).
type GigPayPaymentQuery struct {
	Status    GigPayPaymentStatus
	Type      GigPayPaymentType
	AccountID string
	AssetType string
	// CreatedFrom (inclusive) and CreatedTo (exclusive) bound createdAtUtc; zero: unbounded.
	CreatedFrom, CreatedTo time.Time
	Sort                   GigPayPaymentSort
	// Order is "asc" or "desc" (the default).
	Order string
	// Limit is 1..1000; 0 the server's default (100).
	Limit  int
	Cursor string
}

// query returns the query string ("" when the query sets nothing).
func (q GigPayPaymentQuery) query() string {
	values := url.Values{}
	set := func(key, value string) {
		if value != "" {
			values.Set(key, value)
		}
	}
	set("status", string(q.Status))
	set("type", string(q.Type))
	set("accountId", q.AccountID)
	set("assetType", q.AssetType)
	if !q.CreatedFrom.IsZero() {
		set("createdFromUtc", gigPayTime(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		set("createdToUtc", gigPayTime(q.CreatedTo))
	}
	set("sort", string(q.Sort))
	set("order", q.Order)
	if q.Limit > 0 {
		set("limit", strconv.Itoa(q.Limit))
	}
	set("cursor", q.Cursor)
	if len(values) == 0 {
		return ""
	}
	return "?" + values.Encode()
}

// GigPayPaymentPage is one page of payments; NextCursor is set when HasMore. A page may hold
// fewer than the limit, even none, while HasMore is true (the list is merged from every shard,
// each examining a bounded number of entries per page): follow NextCursor until HasMore is
// false, as AllGigPayPayments does.
type GigPayPaymentPage struct {
	Data       []GigPayPayment `json:"data"`
	HasMore    bool            `json:"hasMore"`
	NextCursor string          `json:"nextCursor,omitempty"`
}

// --- calls

// gigPayPath is the path of a GigPay route.
func gigPayPath(segments ...string) string { return "/api/v1" + path(segments...) }

// CreateGigPayAccount opens an account: a new wallet each time it applies (the user is created
// with the first). A call opens one wallet however often it is resent: every attempt carries
// the call's Idempotency-Key.
func (c *Client) CreateGigPayAccount(ctx context.Context, in CreateGigPayAccountRequest) (*GigPayAccount, error) {
	var out GigPayAccount
	return entity(&out, c.write(ctx, http.MethodPost, gigPayPath("accounts"), in, &out))
}

// GetGigPayAccount returns an account with its balances.
func (c *Client) GetGigPayAccount(ctx context.Context, accountID string) (*GigPayAccount, error) {
	var out GigPayAccount
	return entity(&out, c.read(ctx, gigPayPath("accounts", accountID), &out))
}

// CreatePaymentToken creates a token and holds its amount on the source account. A call
// creates one token however often it is resent (the Idempotency-Key).
func (c *Client) CreatePaymentToken(ctx context.Context, in CreatePaymentTokenRequest) (*PaymentToken, error) {
	var out PaymentToken
	return entity(&out, c.write(ctx, http.MethodPost, gigPayPath("payment-tokens"), in, &out))
}

// CreatePaymentTokens creates up to the server's batch maximum of tokens in one request. The
// batch is not all or nothing: each item has its own result, in request order (a malformed or
// refused item fails alone). An item with a ClientReference is idempotent by it: resent, it is
// "replayed" with the token first created.
func (c *Client) CreatePaymentTokens(ctx context.Context, items []CreatePaymentTokenRequest) ([]PaymentTokenBatchItem, error) {
	in := struct {
		Items []CreatePaymentTokenRequest `json:"items"`
	}{items}
	var out struct {
		Data []PaymentTokenBatchItem `json:"data"`
	}
	if err := c.write(ctx, http.MethodPost, gigPayPath("payment-tokens", "batch"), in, &out); err != nil {
		return nil, err
	}
	if len(out.Data) != len(items) {
		return nil, fmt.Errorf("gigaledger: POST /api/v1/payment-tokens/batch: %d results for %d items", len(out.Data), len(items))
	}
	for index, item := range out.Data {
		if item.Index != index {
			return nil, fmt.Errorf("gigaledger: POST /api/v1/payment-tokens/batch: result %d names item %d", index, item.Index)
		}
	}
	return out.Data, nil
}

// GetPaymentToken returns a token by its ID.
func (c *Client) GetPaymentToken(ctx context.Context, tokenID string) (*PaymentToken, error) {
	var out PaymentToken
	return entity(&out, c.read(ctx, gigPayPath("payment-tokens", tokenID), &out))
}

// PaymentTokenQR returns the PNG QR code of a token's link.
func (c *Client) PaymentTokenQR(ctx context.Context, tokenID string) ([]byte, error) {
	got, err := c.run(ctx, newRequest(http.MethodGet, gigPayPath("payment-tokens", tokenID, "qr.png"), nil))
	if err != nil {
		return nil, err
	}
	return got.body, nil
}

// ClaimPaymentToken claims a token by its bearer string (PaymentToken.Token, not its ID) into
// destinationAccountID: the hold is captured into a transfer payment. It returns the
// Succeeded token; after 409 TokenNotActive (claimed, rejected, expired or closed already:
// also what a resend of a claim that applied gets), the token as it is with the *Error. A
// destination on another shard than the source is claimed across shards; while such a claim
// is in progress, 409 TokenClaimInProgress (retry).
func (c *Client) ClaimPaymentToken(ctx context.Context, token, destinationAccountID string) (*PaymentToken, error) {
	in := struct {
		DestinationAccountID string `json:"destinationAccountId"`
	}{destinationAccountID}
	return c.tokenTransition(ctx, gigPayPath("payment-tokens", token, "claim"), in)
}

// RejectPaymentToken rejects a token by its bearer string: the hold is released. After 409
// TokenNotActive, it returns the token as it is with the *Error.
func (c *Client) RejectPaymentToken(ctx context.Context, token string) (*PaymentToken, error) {
	return c.tokenTransition(ctx, gigPayPath("payment-tokens", token, "reject"), nil)
}

// ClosePaymentToken closes a succeeded token whose payment failed downstream (by its ID): a
// compensating transfer returns the amount and the payment is canceled. Closing a token that
// is not Succeeded is 422 InvalidStatusTransition; a payee without the amount available, 422
// InsufficientFunds. A token claimed into an account of another shard is closed atomically
// across shards, with the same answers; while such a close is in progress another close is
// 409 TokenCloseInProgress (retry). With an error, it returns the token the answer carried, if
// any.
func (c *Client) ClosePaymentToken(ctx context.Context, tokenID, reason string) (*PaymentToken, error) {
	in := struct {
		Reason string `json:"reason"`
	}{reason}
	return c.tokenTransition(ctx, gigPayPath("payment-tokens", tokenID, "close"), in)
}

// tokenTransition runs a claim, reject or close: the token on success, and with an *Error the
// token its answer carried (nil when none: 409 TokenNotActive always carries it, a 422 that
// concerns the token, such as WalletSuspended, does too).
func (c *Client) tokenTransition(ctx context.Context, p string, in any) (*PaymentToken, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = encode(in); err != nil {
			return nil, err
		}
	}
	r := newRequest(http.MethodPost, p, body)
	got, err := c.run(ctx, r)
	if err == nil {
		var out PaymentToken
		if err := got.decode(r, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
	var apiErr *Error
	if got == nil || !errors.As(err, &apiErr) {
		return nil, err
	}
	return got.envelope().Token, err
}

// CreateGigPayPayment creates a deposit or a withdrawal (which holds its amount at once),
// pending. A call creates one payment however often it is resent (the Idempotency-Key); a
// ClientReference makes the create idempotent across calls too.
func (c *Client) CreateGigPayPayment(ctx context.Context, in CreateGigPayPaymentRequest) (*GigPayPayment, error) {
	var out GigPayPayment
	return entity(&out, c.write(ctx, http.MethodPost, gigPayPath("payments"), in, &out))
}

// UpdateGigPayPaymentStatus moves an admin payment to status (processing, completed, canceled
// or failed); reason is optional. Sending the current status again changes nothing; a move
// the payment's state does not allow is 422 InvalidStatusTransition, returned with the payment
// as it is when the answer carried it.
func (c *Client) UpdateGigPayPaymentStatus(ctx context.Context, paymentID string, status GigPayPaymentStatus, reason string) (*GigPayPayment, error) {
	in := struct {
		Status GigPayPaymentStatus `json:"status"`
		Reason string              `json:"reason,omitempty"`
	}{status, reason}
	body, err := encode(in)
	if err != nil {
		return nil, err
	}
	r := newRequest(http.MethodPost, gigPayPath("payments", paymentID, "status"), body)
	got, err := c.run(ctx, r)
	if err == nil {
		var out GigPayPayment
		if err := got.decode(r, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
	var apiErr *Error
	if got == nil || !errors.As(err, &apiErr) {
		return nil, err
	}
	return got.envelope().Payment, err
}

// GetGigPayPayment returns a payment by its ID.
func (c *Client) GetGigPayPayment(ctx context.Context, paymentID string) (*GigPayPayment, error) {
	var out GigPayPayment
	return entity(&out, c.read(ctx, gigPayPath("payments", paymentID), &out))
}

// ListGigPayPayments returns one page of payments matching query.
func (c *Client) ListGigPayPayments(ctx context.Context, query GigPayPaymentQuery) (*GigPayPaymentPage, error) {
	var out GigPayPaymentPage
	if err := c.read(ctx, gigPayPath("payments")+query.query(), &out); err != nil {
		return nil, err
	}
	if out.HasMore && out.NextCursor == "" {
		return nil, fmt.Errorf("gigaledger: GET /api/v1/payments: hasMore without nextCursor")
	}
	return &out, nil
}

// AllGigPayPayments walks every page of payments matching query from its Cursor, following
// each page's NextCursor.
func (c *Client) AllGigPayPayments(ctx context.Context, query GigPayPaymentQuery) iter.Seq2[GigPayPayment, error] {
	return func(yield func(GigPayPayment, error) bool) {
		for range walkPagesMax {
			page, err := c.ListGigPayPayments(ctx, query)
			if err != nil {
				yield(GigPayPayment{}, err)
				return
			}
			for _, payment := range page.Data {
				if !yield(payment, nil) {
					return
				}
			}
			if !page.HasMore {
				return
			}
			query.Cursor = page.NextCursor
		}
		yield(GigPayPayment{}, fmt.Errorf("gigaledger: list has more than %d pages", walkPagesMax))
	}
}
