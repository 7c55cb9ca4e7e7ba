package gigawallet

import (
	"encoding/json"
	"time"
)

// Response bodies, with GigaWallet's JSON names in GigaWallet's order (encoding/json writes
// struct fields in declaration order; the order is part of what the tests pin). Every amount is
// an Amount or SignedAmount, a decimal string of DOGE.

// AccountPublic is an account as the account routes answer it.
type AccountPublic struct {
	// ID is the P2PKH address of the account's key.
	ID              string `json:"id"`
	ForeignID       string `json:"foreign_id"`
	PayoutAddress   string `json:"payout_address"`
	PayoutThreshold Amount `json:"payout_threshold"`
	// PayoutFrequency is "" or whole seconds; a string, as in GigaWallet.
	PayoutFrequency string `json:"payout_frequency"`
}

// Balance is GET /account/:foreignID/balance. Its keys are PascalCase (GigaWallet serialises
// the Go struct without tags), unlike every other key of the API.
type Balance struct {
	IncomingBalance Amount `json:"IncomingBalance"`
	CurrentBalance  Amount `json:"CurrentBalance"`
	OutgoingBalance Amount `json:"OutgoingBalance"`
}

// Item is an invoice item, in requests (validated) and responses alike.
type Item struct {
	Type        string       `json:"type"`
	Name        string       `json:"name"`
	SKU         string       `json:"sku"`
	Description string       `json:"description"`
	Value       SignedAmount `json:"value"`
	Quantity    int64        `json:"quantity"`
	ImageLink   string       `json:"image_link"`
}

// Invoice is the admin view of an invoice: the invoice list's items, the admin single GET and
// the INV_CREATED payload. Unlike GigaWallet v1.0.6+, the admin GET computes the flags too
// (GigaWallet #149: clients poll it for total_payment_confirmed).
type Invoice struct {
	// ID is the invoice's pay-to address.
	ID                    string `json:"id"`
	Account               string `json:"account"`
	Items                 []Item `json:"items"`
	RequiredConfirmations int32  `json:"required_confirmations"`
	// Created is written as RFC 3339 with nanoseconds (time.Time's JSON form).
	Created                  time.Time `json:"created"`
	Total                    Amount    `json:"total"`
	TotalIncoming            Amount    `json:"total_incoming"`
	TotalConfirmed           Amount    `json:"total_confirmed"`
	PayToAddress             string    `json:"pay_to_address"`
	PartPaymentDetected      bool      `json:"part_payment_detected"`
	TotalPaymentDetected     bool      `json:"total_payment_detected"`
	TotalPaymentConfirmed    bool      `json:"total_payment_confirmed"`
	PaymentUnconfirmed       bool      `json:"payment_unconfirmed"`
	EstimateSecondsToConfirm int64     `json:"estimate_seconds_to_confirm"`
	InvoiceLife
}

// InvoiceLife is what GigaWallet lacked (its #112): the invoice's status, "unpaid" or "expired"
// (an invoice created with expire_minutes, once that time has passed), and when it expires
// (null: never). Keys beyond GigaWallet's, at the end.
type InvoiceLife struct {
	Status    string     `json:"status"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// PublicInvoice is the invoice as the create response and the public GET show it: no account,
// no amounts received.
type PublicInvoice struct {
	ID                       string    `json:"id"`
	Items                    []Item    `json:"items"`
	Created                  time.Time `json:"created"`
	Total                    Amount    `json:"total"`
	PayToAddress             string    `json:"pay_to_address"`
	RequiredConfirmations    int32     `json:"required_confirmations"`
	PartPaymentDetected      bool      `json:"part_payment_detected"`
	TotalPaymentDetected     bool      `json:"total_payment_detected"`
	TotalPaymentConfirmed    bool      `json:"total_payment_confirmed"`
	PaymentUnconfirmed       bool      `json:"payment_unconfirmed"`
	EstimateSecondsToConfirm int64     `json:"estimate_seconds_to_confirm"`
	InvoiceLife
}

// InvoiceList is GET /account/:foreignID/invoices: a page of invoices, oldest first, and the
// cursor of the next page (the next key index), 0 when this page was the last.
type InvoiceList struct {
	Items  []Invoice `json:"items"`
	Cursor int64     `json:"cursor"`
}

// MarshalJSON writes an empty page as "items":[] rather than null, so a client can always
// iterate it.
func (l InvoiceList) MarshalJSON() ([]byte, error) {
	type plain InvoiceList
	if l.Items == nil {
		l.Items = []Invoice{}
	}
	return json.Marshal(plain(l))
}

// SyncHeight answers POST /admin/setsyncheight/:height: the height every shard's chain cursor
// went back to, and how many shards were rewound (a shard that has observed no block yet starts
// at its configured height instead).
type SyncHeight struct {
	Height int64 `json:"height"`
	Shards int   `json:"shards"`
}

// InvoicePaymentEvent is the payload of the INV_* payment events (GigaWallet's InvPaymentEvent);
// INV_OVER_PAYMENT_CONFIRMED adds the overpayment_* keys, which carry the totals as GigaWallet's
// do (not the excess).
type InvoicePaymentEvent struct {
	InvoiceID            string  `json:"invoice_id"`
	AccountID            string  `json:"account_id"`
	ForeignID            string  `json:"foreign_id"`
	InvoiceTotal         Amount  `json:"invoice_total"`
	TotalIncoming        Amount  `json:"total_incoming"`
	TotalConfirmed       Amount  `json:"total_confirmed"`
	OverpaymentIncoming  *Amount `json:"overpayment_incoming,omitempty"`
	OverpaymentConfirmed *Amount `json:"overpayment_confirmed,omitempty"`
}

// AccountBalanceEvent is ACC_BALANCE_CHANGE's payload (GigaWallet's).
type AccountBalanceEvent struct {
	AccountID       string `json:"account_id"`
	ForeignID       string `json:"foreign_id"`
	CurrentBalance  Amount `json:"current_balance"`
	IncomingBalance Amount `json:"incoming_balance"`
	OutgoingBalance Amount `json:"outgoing_balance"`
}
