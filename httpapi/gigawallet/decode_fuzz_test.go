package gigawallet

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire"
)

// FuzzDecodeInvoiceCreate: the invoice decoder never panics, and what it accepts is valid JSON
// that obeys every rule: 1..100 items of known types with quantities in range, values with
// the right sign that read back exactly from what is written, a running total above zero, and
// a Total equal to Σ quantity × value.
func FuzzDecodeInvoiceCreate(f *testing.F) {
	for _, seed := range []string{
		`{"required_confirmations":6,"items":[{"type":"item","name":"Doge T-Shirt","quantity":2,"value":"24.89774"},{"type":"shipping","name":"Flat rate","quantity":1,"value":5}]}`,
		`{"items":[{"type":"item","quantity":1,"value":0.1},{"type":"tax","quantity":1,"value":"0.2"}]}`,
		`{"items":[{"type":"item","quantity":2,"value":"10"},{"type":"discount","quantity":1,"value":"-19.99999999"}],"expire_minutes":5}`,
		`{"items":[{"type":"item","name":"x","sku":"y","description":"z\n","value":"1e2","quantity":1,"image_link":"l"}],"required_confirmations":-1}`,
		`{"items":[{"type":"item","quantity":"6","value":1}]}`,
		`{"items":[{"type":"item","quantity":1,"value":1,"value":2}]}`,
		`{"Items":[]}`,
		`{}`,
		``,
		"{\"items\":[{\"type\":\"item\",\"quantity\":1,\"value\":\"\xff\"}]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		invoice, apiErr := DecodeInvoiceCreate(bytes.NewReader(body), 6)
		if apiErr != nil {
			if apiErr.Code != CodeBadRequest || apiErr.Status < 400 || apiErr.Status > 499 || apiErr.Message == "" {
				t.Fatalf("refusal %d %s %q is not a 4xx bad-request with a message", apiErr.Status, apiErr.Code, apiErr.Message)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if len(invoice.Items) < 1 || len(invoice.Items) > InvoiceItemsMaxCount {
			t.Fatalf("accepted %d items", len(invoice.Items))
		}
		if invoice.RequiredConfirmations < 0 || invoice.RequiredConfirmations > RequiredConfirmationsMax {
			t.Fatalf("accepted required_confirmations %d", invoice.RequiredConfirmations)
		}
		if invoice.ExpireMinutes < 0 || invoice.ExpireMinutes > ExpireMinutesMax {
			t.Fatalf("accepted expire_minutes %d", invoice.ExpireMinutes)
		}
		total := new(big.Int)
		for i, item := range invoice.Items {
			if !isItemType(item.Type) || item.Quantity < 1 || item.Quantity > ItemQuantityMax {
				t.Fatalf("items[%d] accepted: %+v", i, item)
			}
			if item.Value.Negative != (item.Type == ItemTypeDiscount) || item.Value.Koinu.IsZero() {
				t.Fatalf("items[%d] accepted with value %s", i, item.Value)
			}
			back, apiErr := ParseSignedAmount("value", json.RawMessage(`"`+item.Value.String()+`"`))
			if apiErr != nil || back != item.Value {
				t.Fatalf("items[%d] value %s reads back as %s, %v", i, item.Value, back, apiErr)
			}
			total.Add(total, new(big.Int).Mul(item.Value.big(), big.NewInt(item.Quantity)))
			if total.Sign() <= 0 {
				t.Fatalf("running total %s after items[%d] was accepted", total, i)
			}
		}
		if total.Cmp(invoice.Total.Big()) != 0 || total.Cmp(amountMaxKoinu) > 0 {
			t.Fatalf("Total %s koinu, items sum to %s", invoice.Total, total)
		}
	})
}

// FuzzParseAmount checks the apd conversion against an independent one (math/big.Rat): an
// accepted text is exactly the koinu returned, with at most 8 decimal places, within
// AmountMaxDOGE, and what FormatKoinu writes reads back the same.
func FuzzParseAmount(f *testing.F) {
	for _, seed := range []string{`"1.5"`, `1.5`, `"1e2"`, `100`, `"0.00000001"`, `"-19.99999999"`, `"1e-9"`, `".5"`, `"5."`, `"+1"`, `null`, `"1e15"`, `1.000000000`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		value, apiErr := ParseSignedAmount("value", json.RawMessage(raw))
		if apiErr != nil {
			if apiErr.Status != 400 || apiErr.Code != CodeBadRequest {
				t.Fatalf("%q: refused with %d %s", raw, apiErr.Status, apiErr.Code)
			}
			return
		}
		text := string(raw)
		if len(raw) > 0 && raw[0] == '"' {
			if err := json.Unmarshal(raw, &text); err != nil {
				t.Fatalf("%q accepted but is not a JSON string", raw)
			}
		}
		if text == "null" {
			text = "0"
		}
		expected, ok := new(big.Rat).SetString(strings.TrimPrefix(text, "+"))
		if !ok {
			t.Fatalf("%q accepted, but big.Rat cannot read %q", raw, text)
		}
		koinu := new(big.Rat).Mul(expected, new(big.Rat).SetInt64(KoinuPerDOGE))
		if !koinu.IsInt() {
			t.Fatalf("%q accepted with more than 8 decimal places", raw)
		}
		if koinu.Num().Cmp(value.big()) != 0 {
			t.Fatalf("%q = %s koinu, big.Rat says %s", raw, value.big(), koinu.Num())
		}
		if new(big.Rat).Abs(expected).Cmp(new(big.Rat).SetInt64(AmountMaxDOGE)) > 0 {
			t.Fatalf("%q accepted above AmountMaxDOGE", raw)
		}
		back, apiErr := ParseSignedAmount("value", json.RawMessage(value.String()))
		if apiErr != nil || back != value {
			t.Fatalf("%q → %s reads back as %+v, %v", raw, value, back, apiErr)
		}
	})
}

// FuzzDecodeAccountUpsert: the upsert decoder never panics, refuses with a 4xx bad-request, and
// what it accepts is valid JSON with settings in their documented forms.
func FuzzDecodeAccountUpsert(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `null`,
		`{"payout_address":null,"payout_threshold":"0","payout_frequency":"0"}`,
		`{"payout_address":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu","payout_threshold":12.5,"payout_frequency":"86400"}`,
		`{"payout_frequency":5}`, `{"payout_frequency":"007"}`, `{"Payout_Address":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		settings, apiErr := DecodeAccountUpsert(bytes.NewReader(body), nil)
		if apiErr != nil {
			if apiErr.Code != CodeBadRequest || apiErr.Status < 400 || apiErr.Status > 499 || apiErr.Message == "" {
				t.Fatalf("refusal %d %s %q is not a 4xx bad-request with a message", apiErr.Status, apiErr.Code, apiErr.Message)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if address := settings.PayoutAddress; address != nil {
			for _, r := range *address {
				if !isBase58(r) {
					t.Fatalf("accepted payout_address %q", *address)
				}
			}
		}
		if frequency := settings.PayoutFrequency; frequency != nil && *frequency != "" {
			seconds, err := strconv.ParseUint(*frequency, 10, 64)
			if err != nil || strconv.FormatUint(seconds, 10) != *frequency || seconds > PayoutFrequencyMaxSeconds {
				t.Fatalf("accepted payout_frequency %q", *frequency)
			}
		}
		if threshold := settings.PayoutThreshold; threshold != nil && threshold.Big().Cmp(amountMaxKoinu) > 0 {
			t.Fatalf("accepted payout_threshold %s koinu", threshold)
		}
	})
}

// FuzzDecodePayRequest: a payout body is a 4xx bad-request with a message or valid JSON whose
// outputs are positive, bounded, with fee shares of at most 100%.
func FuzzDecodePayRequest(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `null`, `{"amount":"1","to":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu"}`,
		`{"pay":[{"amount":1.5,"to":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu","deduct_fee_percent":"100"}],"max_fee":"2"}`,
		`{"amount":"1","to":"x","pay":[]}`, `{"pay":[{"amount":"-1","to":"a"}]}`, `{"explicit_fee":"1e2","amount":"0.00000001","to":"a"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		request, apiErr := DecodePayRequest(bytes.NewReader(body), func(string) error { return nil })
		if apiErr != nil {
			if apiErr.Status < 400 || apiErr.Status > 499 || apiErr.Message == "" {
				t.Fatalf("refusal %d %s %q is not a 4xx with a message", apiErr.Status, apiErr.Code, apiErr.Message)
			}
			return
		}
		if !json.Valid(body) || len(request.Outputs) == 0 || len(request.Outputs) > PayOutputsMax {
			t.Fatalf("accepted %q as %+v", body, request)
		}
		for _, o := range request.Outputs {
			if o.Koinu == 0 || o.Koinu > 1<<62 || o.DeductFeeShare > 100*KoinuPerDOGE || o.Address == "" {
				t.Fatalf("accepted output %+v of %q", o, body)
			}
		}
	})
}

// FuzzDecodeRelayPay: a relay submission (the public listener's, anyone may send it) is refused
// with a 4xx and a message, or it is valid JSON naming the relay's payment with one whole
// transaction of inputs and outputs that encodes back to exactly the submitted bytes.
func FuzzDecodeRelayPay(f *testing.F) {
	const id = "nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu"
	oneTx := "01000000010100000000000000000000000000000000000000000000000000000000000000000000000151ffffffff01" +
		"80b2e60e000000001976a914" + strings.Repeat("ab", 20) + "88ac00000000"
	for _, seed := range []string{
		`{"id":"` + id + `","tx":"` + oneTx + `"}`, `{"id":"` + id + `","tx":"` + oneTx + `00"}`,
		`{"id":"` + id + `","tx":"zz"}`, `{"id":"x","tx":""}`, `{}`, ``, `{"id":"` + id + `","tx":"00","refund":"a","relay_token":"b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		payment, rejection := DecodeRelayPay(bytes.NewReader(body), id)
		if rejection != nil {
			if rejection.Status < 400 || rejection.Status > 499 || rejection.Message == "" || rejection.Code == "" {
				t.Fatalf("refusal %d %s %q is not a 4xx with a code and a message", rejection.Status, rejection.Code, rejection.Message)
			}
			return
		}
		var again bytes.Buffer
		if err := payment.Tx.BtcEncode(&again, wire.ProtocolVersion, wire.BaseEncoding); err != nil || !bytes.Equal(again.Bytes(), payment.Raw) ||
			!json.Valid(body) || len(payment.Tx.TxIn) == 0 || len(payment.Tx.TxOut) == 0 || len(payment.Raw) > ConnectMaxSizeDefaultBytes {
			t.Fatalf("accepted %q as %d bytes (%v)", body, len(payment.Raw), err)
		}
	})
}
