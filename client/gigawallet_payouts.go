package client

import (
	"context"
	"strconv"
)

// PayRequest is a payout (GigaWallet's PayToAddressRequest): one output as Amount and To, or
// several in Pay; ExplicitFee replaces the fee estimate, MaxFee bounds it (default 1 DOGE).
type PayRequest struct {
	Amount      *DogeAmount `json:"amount,omitempty"`
	To          string      `json:"to,omitempty"`
	Pay         []PayTo     `json:"pay,omitempty"`
	ExplicitFee *DogeAmount `json:"explicit_fee,omitempty"`
	MaxFee      *DogeAmount `json:"max_fee,omitempty"`
}

// PayTo is one output of a payout; DeductFeePercent (all zero, or summing to 100) takes its
// share of the fee out of the amount.
type PayTo struct {
	Amount           DogeAmount `json:"amount"`
	To               string     `json:"to"`
	DeductFeePercent DogeAmount `json:"deduct_fee_percent,omitempty"`
}

// SendFundsResult answers a payout: TxID (GigaWallet's "hex") is the transaction's id, Tx the
// signed transaction in hex ("" for PayInvoiceFrom), Total = Paid + Fee.
type SendFundsResult struct {
	TxID  string     `json:"hex"`
	Total DogeAmount `json:"total"`
	Paid  DogeAmount `json:"paid"`
	Fee   DogeAmount `json:"fee"`
	Tx    string     `json:"tx"`
}

// PaymentOutput is one output of a payout as the server shows it.
type PaymentOutput struct {
	Amount           DogeAmount `json:"amount"`
	To               string     `json:"to"`
	DeductFeePercent string     `json:"deduct_fee_percent"`
}

// Payment is a payout: its id is its txid; Status is reserved, sent, on_chain, confirmed or
// released (Reason says why); Total is what the outputs receive, Fee on top.
type Payment struct {
	PaymentID string          `json:"payment_id"`
	AccountID string          `json:"account_id"`
	ForeignID string          `json:"foreign_id"`
	PayTo     []PaymentOutput `json:"pay_to"`
	Total     DogeAmount      `json:"total"`
	TxID      string          `json:"txid"`
	Fee       DogeAmount      `json:"fee"`
	Status    string          `json:"status"`
	Kind      string          `json:"kind"`
	InvoiceID string          `json:"invoice_id"`
	Height    int64           `json:"height"`
	Reason    string          `json:"reason"`
	Created   string          `json:"created"`
	Cursor    uint64          `json:"cursor"`
}

// PaymentPage is one page of an account's payouts; Cursor is the next page's (0 after the last).
type PaymentPage struct {
	Items  []Payment `json:"items"`
	Cursor uint64    `json:"cursor"`
}

// RefundRequest pays an invoice's payment back to To; Amount nil is what it received.
type RefundRequest struct {
	To     string      `json:"to"`
	Amount *DogeAmount `json:"amount,omitempty"`
}

// SyncHeight answers SetSyncHeight.
type SyncHeight struct {
	Height int64 `json:"height"`
	Shards int   `json:"shards"`
}

// Pay pays DOGE from the account (POST /account/{foreignID}/pay). Without a key it is not
// resent after an unknown outcome (a repeat would pay twice): with ErrOutcomeUnknown,
// ListPayments tells. Under WithIdempotencyKey it sends the key and is resent after an unknown
// outcome: the server answers the first payout, never a second one; keep the key with the work
// it pays for to resend the same request after a restart (kept 24 hours, per account). The same
// holds for PayTx, PayInvoiceFrom and RefundInvoice.
func (c *Client) Pay(ctx context.Context, foreignID string, in PayRequest) (*SendFundsResult, error) {
	var out SendFundsResult
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID, "pay"), in, gwKeyed, &out))
}

// PayTx plans, signs and reserves a payout without sending it (POST /account/{foreignID}/paytx):
// the caller broadcasts Tx; VoidPayment releases it until the node has it.
func (c *Client) PayTx(ctx context.Context, foreignID string, in PayRequest) (*SendFundsResult, error) {
	var out SendFundsResult
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID, "paytx"), in, gwKeyed, &out))
}

// PayInvoiceFrom pays an invoice's total from an account (POST /invoice/{id}/payfrom/{foreignID}).
func (c *Client) PayInvoiceFrom(ctx context.Context, invoiceID, foreignID string) (*SendFundsResult, error) {
	var out SendFundsResult
	return entity(&out, c.gigaWalletCall(ctx, path("invoice", invoiceID, "payfrom", foreignID), struct{}{}, gwKeyed, &out))
}

// RefundInvoice pays an invoice's payment back (POST /account/{foreignID}/invoice/{id}/refund),
// at most what it received, once.
func (c *Client) RefundInvoice(ctx context.Context, foreignID, invoiceID string, in RefundRequest) (*SendFundsResult, error) {
	var out SendFundsResult
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID, "invoice", invoiceID, "refund"), in, gwKeyed, &out))
}

// GetPayment returns a payout of the account by its txid.
func (c *Client) GetPayment(ctx context.Context, foreignID, paymentID string) (*Payment, error) {
	var out Payment
	return entity(&out, c.read(ctx, path("account", foreignID, "payment", paymentID), &out))
}

// ListPayments returns one page of the account's payouts, oldest first, from cursor (0: the
// first); limit is 1..100, 0 the server's default (10).
func (c *Client) ListPayments(ctx context.Context, foreignID string, cursor uint64, limit int) (*PaymentPage, error) {
	q := "?cursor=" + strconv.FormatUint(cursor, 10)
	if limit > 0 {
		q += "&limit=" + strconv.Itoa(limit)
	}
	var out PaymentPage
	return entity(&out, c.read(ctx, path("account", foreignID, "payments")+q, &out))
}

// VoidPayment releases a payout the node has not taken (409 ErrConflict-like answer once it was
// seen). Resent after an unknown outcome: a repeat changes nothing more.
func (c *Client) VoidPayment(ctx context.Context, foreignID, paymentID string) (*Payment, error) {
	var out Payment
	return entity(&out, c.gigaWalletCall(ctx, path("account", foreignID, "payment", paymentID, "void"), struct{}{}, gwIdempotent, &out))
}

// SetSyncHeight rewinds every shard's chain cursor to height: the blocks above it are observed
// again (POST /admin/setsyncheight/{height}).
func (c *Client) SetSyncHeight(ctx context.Context, height int64) (*SyncHeight, error) {
	var out SyncHeight
	return entity(&out, c.gigaWalletCall(ctx, path("admin", "setsyncheight", strconv.FormatInt(height, 10)), struct{}{}, gwIdempotent, &out))
}
