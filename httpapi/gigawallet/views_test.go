package gigawallet

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

func doge(koinu uint64) Amount { return Amount(fsm.AmountFromUint64(koinu)) }

// marshal returns v's JSON; the shapes below must always marshal.
func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return string(b)
}

// TestShapes pins every response body byte for byte: GigaWallet's names, its order, amounts
// as strings, PascalCase balance keys, RFC 3339 nano times.
func TestShapes(t *testing.T) {
	created := time.Date(2026, 12, 5, 1, 2, 3, 4500, time.UTC)
	items := []Item{
		{Type: "item", Name: "Doge T-Shirt", SKU: "TS-1", Description: "", Value: SignedAmount{Koinu: fsm.AmountFromUint64(2489774000)}, Quantity: 2, ImageLink: ""},
		{Type: "discount", Name: "Sale", Value: SignedAmount{Negative: true, Koinu: fsm.AmountFromUint64(100000000)}, Quantity: 1},
	}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"account", AccountPublic{ID: "nXYZ", ForeignID: "123456789", PayoutAddress: "", PayoutThreshold: doge(0), PayoutFrequency: ""},
			`{"id":"nXYZ","foreign_id":"123456789","payout_address":"","payout_threshold":"0","payout_frequency":""}`},
		{"balance", Balance{IncomingBalance: doge(0), CurrentBalance: doge(10000000000), OutgoingBalance: doge(2489774000)},
			`{"IncomingBalance":"0","CurrentBalance":"100","OutgoingBalance":"24.89774"}`},
		{"public invoice", PublicInvoice{ID: "nInv", Items: items, Created: created, Total: doge(4879548000), PayToAddress: "nInv", RequiredConfirmations: 6,
			InvoiceLife: InvoiceLife{Status: "unpaid", ExpiresAt: &created}},
			`{"id":"nInv","items":[{"type":"item","name":"Doge T-Shirt","sku":"TS-1","description":"","value":"24.89774","quantity":2,"image_link":""},` +
				`{"type":"discount","name":"Sale","sku":"","description":"","value":"-1","quantity":1,"image_link":""}],` +
				`"created":"2026-12-05T01:02:03.0000045Z","total":"48.79548","pay_to_address":"nInv","required_confirmations":6,` +
				`"part_payment_detected":false,"total_payment_detected":false,"total_payment_confirmed":false,"payment_unconfirmed":false,"estimate_seconds_to_confirm":0,` +
				`"status":"unpaid","expires_at":"2026-12-05T01:02:03.0000045Z"}`},
		{"admin invoice", Invoice{ID: "nInv", Account: "nAcc", Items: items[:1], RequiredConfirmations: 0, Created: created, Total: doge(4979548000),
			TotalIncoming: doge(4979548000), TotalConfirmed: doge(1), PayToAddress: "nInv", PartPaymentDetected: true, TotalPaymentDetected: true, TotalPaymentConfirmed: true,
			InvoiceLife: InvoiceLife{Status: "expired"}},
			`{"id":"nInv","account":"nAcc","items":[{"type":"item","name":"Doge T-Shirt","sku":"TS-1","description":"","value":"24.89774","quantity":2,"image_link":""}],` +
				`"required_confirmations":0,"created":"2026-12-05T01:02:03.0000045Z","total":"49.79548","total_incoming":"49.79548","total_confirmed":"0.00000001",` +
				`"pay_to_address":"nInv","part_payment_detected":true,"total_payment_detected":true,"total_payment_confirmed":true,"payment_unconfirmed":false,"estimate_seconds_to_confirm":0,` +
				`"status":"expired","expires_at":null}`},
		{"empty list", InvoiceList{}, `{"items":[],"cursor":0}`},
		{"list", InvoiceList{Items: []Invoice{{ID: "a", Items: items[:1], Created: created, InvoiceLife: InvoiceLife{Status: "unpaid"}}}, Cursor: 11},
			`{"items":[{"id":"a","account":"","items":[{"type":"item","name":"Doge T-Shirt","sku":"TS-1","description":"","value":"24.89774","quantity":2,"image_link":""}],` +
				`"required_confirmations":0,"created":"2026-12-05T01:02:03.0000045Z","total":"0","total_incoming":"0","total_confirmed":"0","pay_to_address":"",` +
				`"part_payment_detected":false,"total_payment_detected":false,"total_payment_confirmed":false,"payment_unconfirmed":false,"estimate_seconds_to_confirm":0,"status":"unpaid","expires_at":null}],"cursor":11}`},
		{"list by pointer", &InvoiceList{Cursor: 3}, `{"items":[],"cursor":3}`},
		{"error", NewError(CodeNotFound, "GetAccount: account not found: %s", "x").Body(),
			`{"error":{"code":"not-found","message":"GetAccount: account not found: x"}}`},
	} {
		if got := marshal(t, tc.v); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestStatusOf pins GigaWallet's statuses and the fixes: already-exists 409 (GigaWallet 500),
// payment refusals 422 (500), validation bad-request 400 (500 unknown-error).
func TestStatusOf(t *testing.T) {
	for code, want := range map[Code]int{
		CodeBadRequest:        http.StatusBadRequest,
		CodeNotFound:          http.StatusNotFound,
		CodeUnauthorized:      http.StatusUnauthorized,
		CodeNotAvailable:      http.StatusServiceUnavailable,
		CodeAlreadyExists:     http.StatusConflict,
		CodeInvalidTxn:        http.StatusUnprocessableEntity,
		CodeInsufficientFunds: http.StatusUnprocessableEntity,
		CodeDBConflict:        http.StatusServiceUnavailable,
		CodeLibdogeError:      http.StatusInternalServerError,
		CodeUnknownError:      http.StatusInternalServerError,
		Code("something-new"): http.StatusInternalServerError,
	} {
		if got := StatusOf(code); got != want {
			t.Errorf("StatusOf(%s) = %d, want %d", code, got, want)
		}
		if code != "something-new" && NewError(code, "x").Status != want {
			t.Errorf("NewError(%s) has status %d, want %d", code, NewError(code, "x").Status, want)
		}
	}
}

// TestErrorEnvelopeIsJSON: a message with control characters and invalid UTF-8 still gives
// valid JSON (GigaWallet builds the envelope with %q and does not).
func TestErrorEnvelopeIsJSON(t *testing.T) {
	data := MarshalError(NewError(CodeBadRequest, "bad \x00 \xff \"quoted\""))
	var back ErrorBody
	if err := json.Unmarshal(data, &back); err != nil || !json.Valid(data) {
		t.Fatalf("envelope %q is not JSON: %v", data, err)
	}
	if back.Error.Code != CodeBadRequest {
		t.Errorf("code %q", back.Error.Code)
	}
}
