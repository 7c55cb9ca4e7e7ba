package gigawallet

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

// PayOutputsMax bounds the outputs of one payout (chainwatch/payout's limit).
const PayOutputsMax = 1000

// payRequest is GigaWallet's PayToAddressRequest: {amount, to} or {pay: [{amount, to,
// deduct_fee_percent}]}, each with optional explicit_fee and max_fee. Amounts are decimal DOGE
// as JSON strings or numbers.
type payRequest struct {
	Amount      json.RawMessage `json:"amount"`
	To          json.RawMessage `json:"to"`
	Pay         []payToRequest  `json:"pay"`
	ExplicitFee json.RawMessage `json:"explicit_fee"`
	MaxFee      json.RawMessage `json:"max_fee"`
}

type payToRequest struct {
	Amount           json.RawMessage `json:"amount"`
	To               json.RawMessage `json:"to"`
	DeductFeePercent json.RawMessage `json:"deduct_fee_percent"`
}

// PayTo is one validated output: koinu to an address, and its share of the fee in deduct mode
// in hundred-millionths of a percent (100% = 10^10), with the percent as the client wrote it.
type PayTo struct {
	Address          string
	Koinu            uint64
	DeductFeeShare   uint64
	DeductFeePercent string
}

// PayRequest is a validated payout request. ExplicitFee and MaxFee are koinu, 0 when absent.
type PayRequest struct {
	Outputs     []PayTo
	ExplicitFee uint64
	MaxFee      uint64
}

// DecodePayRequest reads a payout request strictly: the shape, the amounts (at most 8 decimals,
// positive), the addresses (checkAddress: the configured network's P2PKH). The payout rules
// (dust, fee shares summing to 100, funds) are chainwatch/payout's.
func DecodePayRequest(body io.Reader, checkAddress AddressCheck) (PayRequest, *Error) {
	var request payRequest
	if apiErr := decodeBody(body, &request); apiErr != nil {
		return PayRequest{}, apiErr
	}
	items := request.Pay
	if len(items) == 0 {
		if request.Amount == nil || request.To == nil {
			return PayRequest{}, badRequest("a payout needs amount and to, or pay: [{amount, to}]")
		}
		items = []payToRequest{{Amount: request.Amount, To: request.To}}
	} else if request.Amount != nil || request.To != nil {
		return PayRequest{}, badRequest("give amount and to, or pay, not both")
	}
	if len(items) > PayOutputsMax {
		return PayRequest{}, badRequest("a payout has at most %d outputs", PayOutputsMax)
	}
	var out PayRequest
	for i, item := range items {
		koinu, apiErr := positiveKoinu("amount", item.Amount)
		if apiErr != nil {
			return PayRequest{}, atOutput(i, apiErr)
		}
		address, apiErr := nullableString("to", item.To)
		if apiErr != nil {
			return PayRequest{}, atOutput(i, apiErr)
		}
		if address == "" || len(address) > PayoutAddressMaxBytes {
			return PayRequest{}, badRequest("pay[%d].to must be a Dogecoin address", i)
		}
		if err := checkAddress(address); err != nil {
			return PayRequest{}, badRequest("pay[%d].to: %v", i, err)
		}
		to := PayTo{Address: address, Koinu: koinu, DeductFeePercent: "0"}
		if item.DeductFeePercent != nil {
			// A percentage, read with the amounts' parser (8 decimal places at most); its
			// refusals speak of a percentage, not of DOGE.
			share, apiErr := ParseAmount("deduct_fee_percent", item.DeductFeePercent)
			if apiErr != nil || share.Cmp(fsm.AmountFromUint64(100*KoinuPerDOGE)) > 0 {
				return PayRequest{}, badRequest("pay[%d].deduct_fee_percent must be a percentage from 0 to 100 with at most 8 decimal places, such as \"50\" or 12.5", i)
			}
			to.DeductFeeShare = share.Lo
			to.DeductFeePercent = FormatKoinu(share)
		}
		out.Outputs = append(out.Outputs, to)
	}
	for _, fee := range []struct {
		name string
		raw  json.RawMessage
		dst  *uint64
	}{{"explicit_fee", request.ExplicitFee, &out.ExplicitFee}, {"max_fee", request.MaxFee, &out.MaxFee}} {
		if fee.raw == nil {
			continue
		}
		koinu, apiErr := ParseAmount(fee.name, fee.raw)
		if apiErr != nil {
			return PayRequest{}, apiErr
		}
		if koinu.Hi != 0 {
			return PayRequest{}, badRequest("%s is too large", fee.name)
		}
		*fee.dst = koinu.Lo
	}
	return out, nil
}

// positiveKoinu reads a required amount above zero that fits a transaction output.
func positiveKoinu(field string, raw json.RawMessage) (uint64, *Error) {
	if raw == nil || string(raw) == "null" {
		return 0, badRequest("%s is required", field)
	}
	koinu, apiErr := ParseAmount(field, raw)
	if apiErr != nil {
		return 0, apiErr
	}
	if koinu.IsZero() {
		return 0, badRequest("%s must be above zero", field)
	}
	if koinu.Hi != 0 || koinu.Lo > 1<<62 {
		return 0, badRequest("%s is too large", field)
	}
	return koinu.Lo, nil
}

// SendFundsResult is the answer of /pay, /paytx and payfrom (GigaWallet's): hex is the txid,
// tx the signed transaction in hex ("" for payfrom), total = paid + fee.
type SendFundsResult struct {
	TxID  string `json:"hex"`
	Total Amount `json:"total"`
	Paid  Amount `json:"paid"`
	Fee   Amount `json:"fee"`
	Tx    string `json:"tx"`
}

// PayToView is one output of a payout as the payout views show it (GigaWallet's pay_to).
type PayToView struct {
	Amount           Amount `json:"amount"`
	To               string `json:"to"`
	DeductFeePercent string `json:"deduct_fee_percent"`
}

// Payment is a payout as GET /account/:foreignID/payment(s) and the PAYMENT_* events show it:
// GigaWallet's PaymentEvent keys (payment_id, account_id, foreign_id, pay_to, total — paid,
// without the fee — and txid), then what GigaWallet did not show.
type Payment struct {
	PaymentID string      `json:"payment_id"`
	AccountID string      `json:"account_id"`
	ForeignID string      `json:"foreign_id"`
	PayTo     []PayToView `json:"pay_to"`
	Total     Amount      `json:"total"`
	TxID      string      `json:"txid"`
	Fee       Amount      `json:"fee"`
	Status    string      `json:"status"`
	Kind      string      `json:"kind"`
	InvoiceID string      `json:"invoice_id,omitempty"`
	Height    int64       `json:"height,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	Created   time.Time   `json:"created"`
	Cursor    uint64      `json:"cursor"`
}

// PaymentList is GET /account/:foreignID/payments: a page, oldest first, and the next page's
// cursor (0 after the last), as the invoice list.
type PaymentList struct {
	Items  []Payment `json:"items"`
	Cursor uint64    `json:"cursor"`
}

// MarshalJSON writes an empty page as "items":[].
func (l PaymentList) MarshalJSON() ([]byte, error) {
	type plain PaymentList
	if l.Items == nil {
		l.Items = []Payment{}
	}
	return json.Marshal(plain(l))
}

// atOutput names the output an error is about.
func atOutput(i int, e *Error) *Error {
	return &Error{Status: e.Status, Code: e.Code, Message: "pay[" + strconv.Itoa(i) + "]." + e.Message}
}

// refundRequest is the body of POST /account/:foreignID/invoice/:invoiceID/refund.
type refundRequest struct {
	To     json.RawMessage `json:"to"`
	Amount json.RawMessage `json:"amount"`
}

// RefundRequest is a validated refund: the address to pay back, and the amount (0: what the
// invoice received, confirmed).
type RefundRequest struct {
	To    string
	Koinu uint64
}

// DecodeRefund reads a refund request strictly.
func DecodeRefund(body io.Reader, checkAddress AddressCheck) (RefundRequest, *Error) {
	var request refundRequest
	if apiErr := decodeBody(body, &request); apiErr != nil {
		return RefundRequest{}, apiErr
	}
	to, apiErr := nullableString("to", request.To)
	if apiErr != nil {
		return RefundRequest{}, apiErr
	}
	if to == "" || len(to) > PayoutAddressMaxBytes {
		return RefundRequest{}, badRequest("to must be the Dogecoin address to pay back")
	}
	if err := checkAddress(to); err != nil {
		return RefundRequest{}, badRequest("to: %v", err)
	}
	out := RefundRequest{To: to}
	if request.Amount != nil && string(request.Amount) != "null" {
		koinu, apiErr := positiveKoinu("amount", request.Amount)
		if apiErr != nil {
			return RefundRequest{}, apiErr
		}
		out.Koinu = koinu
	}
	return out, nil
}
