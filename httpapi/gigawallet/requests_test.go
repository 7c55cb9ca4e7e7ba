package gigawallet

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// checkRefused fails unless apiErr is a 4xx bad-request whose message contains want.
func checkRefused(t *testing.T, body string, apiErr *Error, want string) {
	t.Helper()
	switch {
	case apiErr == nil:
		t.Errorf("%.200s: accepted, want a 400 with %q", body, want)
	case apiErr.Code != CodeBadRequest || apiErr.Status < 400 || apiErr.Status > 499:
		t.Errorf("%.200s: %d %s, want a 4xx bad-request", body, apiErr.Status, apiErr.Code)
	case !strings.Contains(apiErr.Message, want):
		t.Errorf("%.200s: message %q, want it to contain %q", body, apiErr.Message, want)
	}
}

// TestDecodeAccountUpsert pins the upsert body: {} is fine, an empty body is not, null is the
// empty value, payout_frequency is a string of seconds.
func TestDecodeAccountUpsert(t *testing.T) {
	str := func(s string) *string { return &s }
	koinu := func(v uint64) *fsm.Amount { a := fsm.AmountFromUint64(v); return &a }
	for _, tc := range []struct {
		body string
		want AccountSettings
	}{
		{`{}`, AccountSettings{}},
		{" \n{ } \n", AccountSettings{}},
		// The WooCommerce plugin's upsert, every minute, with and without an address.
		{`{"payout_address":null,"payout_threshold":"0","payout_frequency":"0"}`,
			AccountSettings{PayoutAddress: str(""), PayoutThreshold: koinu(0), PayoutFrequency: str("0")}},
		{`{"payout_address":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu","payout_threshold":"12.5","payout_frequency":"0"}`,
			AccountSettings{PayoutAddress: str("nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu"), PayoutThreshold: koinu(1250000000), PayoutFrequency: str("0")}},
		// The plugin's settings default is the placeholder "Dxxx…": base58 characters, so only
		// the caller's network check (checksum, version byte) can refuse it.
		{`{"payout_address":"Dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","payout_threshold":"0","payout_frequency":"0"}`,
			AccountSettings{PayoutAddress: str("Dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), PayoutThreshold: koinu(0), PayoutFrequency: str("0")}},
		{`{"payout_threshold":12.5}`, AccountSettings{PayoutThreshold: koinu(1250000000)}},
		{`{"payout_threshold":null}`, AccountSettings{PayoutThreshold: koinu(0)}},
		{`{"payout_frequency":"86400"}`, AccountSettings{PayoutFrequency: str("86400")}},
		{`{"payout_frequency":"007"}`, AccountSettings{PayoutFrequency: str("7")}},
		{`{"payout_frequency":""}`, AccountSettings{PayoutFrequency: str("")}},
		{`{"payout_frequency":null}`, AccountSettings{PayoutFrequency: str("")}},
		{`{"payout_address":""}`, AccountSettings{PayoutAddress: str("")}},
	} {
		got, apiErr := DecodeAccountUpsert(strings.NewReader(tc.body), nil)
		if apiErr != nil {
			t.Errorf("%s: %v", tc.body, apiErr)
			continue
		}
		if !equalSettings(got, tc.want) {
			t.Errorf("%s = %s, want %s", tc.body, describeSettings(got), describeSettings(tc.want))
		}
	}
	for _, tc := range []struct{ body, want string }{
		{``, "body is empty"},
		{"  \n", "body is empty"},
		{`null`, "must be a JSON object"},
		{`[]`, "must be a JSON object"},
		{`{"payout_frequency":5}`, "payout_frequency must be a JSON string"},
		{`{"payout_frequency":"5s"}`, "whole number of seconds"},
		{`{"payout_frequency":"-1"}`, "whole number of seconds"},
		{`{"payout_frequency":"315360001"}`, "whole number of seconds"},
		{`{"payout_address":5}`, "payout_address must be a JSON string"},
		{`{"payout_address":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uP0"}`, "base58"},
		{`{"payout_address":"` + strings.Repeat("n", 65) + `"}`, "at most 64"},
		{`{"payout_threshold":"-1"}`, "must not be negative"},
		{`{"payout_threshold":"0.000000001"}`, "more than 8 decimal places"},
		{`{"payout_threshold":""}`, "empty string"},
		{`{"payout_threshold":true}`, "JSON string or number"},
		{`{"payout_address":"a","payout_address":"b"}`, "duplicate key"},
		{`{"Payout_Address":"a"}`, `keys are case-sensitive: the key is "payout_address"`},
		{`{"payout_adress":"a"}`, `unknown key "payout_adress"`},
		{`{} {}`, "exactly one JSON object"},
		{`{"payout_address":"a"`, "unexpected end"},
		{"{\"payout_address\":\"\xff\"}", "valid UTF-8"},
		{`{"payout_address":"\ud800"}`, "unpaired UTF-16 surrogate"},
	} {
		_, apiErr := DecodeAccountUpsert(strings.NewReader(tc.body), nil)
		checkRefused(t, tc.body, apiErr, tc.want)
	}
	// The network check is the caller's, and its reason reaches the client.
	wrongNetwork := func(string) error { return errors.New("not a testnet P2PKH address") }
	_, apiErr := DecodeAccountUpsert(strings.NewReader(`{"payout_address":"DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L"}`), wrongNetwork)
	checkRefused(t, "mainnet address", apiErr, "not a testnet P2PKH address")
	if _, apiErr := DecodeAccountUpsert(strings.NewReader(`{"payout_address":null}`), wrongNetwork); apiErr != nil {
		t.Errorf("null address went to the network check: %v", apiErr)
	}
}

func equalSettings(a, b AccountSettings) bool {
	return describeSettings(a) == describeSettings(b)
}

func describeSettings(s AccountSettings) string {
	var parts []string
	if s.PayoutAddress != nil {
		parts = append(parts, "address="+*s.PayoutAddress)
	}
	if s.PayoutThreshold != nil {
		parts = append(parts, "threshold="+s.PayoutThreshold.String())
	}
	if s.PayoutFrequency != nil {
		parts = append(parts, "frequency="+*s.PayoutFrequency)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// TestDecodeInvoiceCreate pins GigaWallet's invoice validation, answered 400, and the exact total.
func TestDecodeInvoiceCreate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		body          string
		confirmations int32
		total         string
		expireMinutes int32
	}{
		// The WooCommerce plugin: trailing-slash route, value a string or a number (PHP floats),
		// quantity an int, required_confirmations an int.
		{"plugin strings", `{"required_confirmations":6,"items":[{"type":"item","name":"Doge T-Shirt","quantity":2,"value":"24.89774"},{"type":"shipping","name":"Flat rate","quantity":1,"value":"5"}]}`, 6, "54.79548", 0},
		{"plugin numbers", `{"required_confirmations":1,"items":[{"type":"item","name":"Hat","quantity":1,"value":10.0},{"type":"shipping","name":"Flat rate","quantity":1,"value":0.5}]}`, 1, "10.5", 0},
		{"default confirmations", `{"items":[{"type":"item","quantity":1,"value":1}]}`, 6, "1", 0},
		{"-1 is the default", `{"required_confirmations":-1,"items":[{"type":"item","quantity":1,"value":1}]}`, 6, "1", 0},
		{"zero confirmations", `{"required_confirmations":0,"items":[{"type":"item","quantity":1,"value":1}]}`, 0, "1", 0},
		{"max confirmations", `{"required_confirmations":1440,"items":[{"type":"item","quantity":1,"value":1}]}`, 1440, "1", 0},
		{"0.1 + 0.2", `{"items":[{"type":"item","quantity":1,"value":0.1},{"type":"tax","quantity":1,"value":"0.2"}]}`, 6, "0.3", 0},
		{"quantity × value", `{"items":[{"type":"item","quantity":3,"value":"0.1"}]}`, 6, "0.3", 0},
		{"discount after items", `{"items":[{"type":"item","quantity":2,"value":"10"},{"type":"discount","quantity":1,"value":"-19.99999999"}]}`, 6, "0.00000001", 0},
		{"every type", `{"items":[{"type":"item","quantity":1,"value":1},{"type":"tax","quantity":1,"value":1},{"type":"fee","quantity":1,"value":1},{"type":"shipping","quantity":1,"value":1},{"type":"donation","quantity":1,"value":1},{"type":"discount","quantity":1,"value":-4}]}`, 6, "1", 0},
		{"21 billion DOGE", `{"items":[{"type":"item","quantity":1,"value":"21000000000"}]}`, 6, "21000000000", 0},
		{"8 decimals", `{"items":[{"type":"item","quantity":1,"value":"0.12345678"}]}`, 6, "0.12345678", 0},
		{"largest", `{"items":[{"type":"item","quantity":1000000000,"value":"1e6"}]}`, 6, "1000000000000000", 0},
		{"null strings", `{"items":[{"type":"item","name":null,"sku":null,"quantity":1,"value":1}]}`, 6, "1", 0},
		{"expiry", `{"expire_minutes":60,"items":[{"type":"item","quantity":1,"value":1}]}`, 6, "1", 60},
		{"all fields", `{"items":[{"type":"item","name":"Widget","sku":"W-1","description":"A widget.\nBlue.","value":"1.5","quantity":2,"image_link":"https://shop.example/w.png"}],"required_confirmations":3}`, 3, "3", 0},
		// The plugin as it really builds the body (gigawallet.php process_payment): the
		// line's get_total() (a WooCommerce decimal string, up to 6 places), the line's
		// quantity although the value is already the line total (a client bug kept: the
		// server charges quantity × value), shipping_total when above zero.
		{"plugin process_payment", `{"required_confirmations":3,"items":[{"type":"item","name":"Hoodie &amp; Cap – Blue, XL","quantity":2,"value":"49.795480"},{"type":"shipping","name":"shipping","quantity":1,"value":"4.166667"}]}`, 3, "103.757627", 0},
	} {
		got, apiErr := DecodeInvoiceCreate(strings.NewReader(tc.body), 6)
		if apiErr != nil {
			t.Errorf("%s: %v", tc.name, apiErr)
			continue
		}
		if got.RequiredConfirmations != tc.confirmations || FormatKoinu(got.Total) != tc.total || got.ExpireMinutes != tc.expireMinutes {
			t.Errorf("%s: confirmations %d total %s expire %d, want %d %s %d", tc.name,
				got.RequiredConfirmations, FormatKoinu(got.Total), got.ExpireMinutes, tc.confirmations, tc.total, tc.expireMinutes)
		}
	}
	item := func(fields string) string { return `{"items":[{` + fields + `}]}` }
	for _, tc := range []struct{ body, want string }{
		{``, "body is empty"},
		{`{}`, "missing 'items'"},
		{`{"items":[]}`, "missing 'items'"},
		{`{"items":null}`, "missing 'items'"},
		{`{"items":{}}`, "items must be a JSON array"},
		{item(`"type":"item","quantity":"6","value":1`), "items[0].quantity must be a JSON integer"},
		{item(`"type":"item","quantity":1.5,"value":1`), "items[0].quantity must be a JSON integer"},
		{item(`"type":"item","quantity":1e0,"value":1`), "items[0].quantity must be a JSON integer"},
		{item(`"type":"item","quantity":99999999999999999999,"value":1`), "items[0].quantity must be a JSON integer"},
		{`{"items":[{"type":"item","quantity":1,"value":1},{"type":"item","quantity":1,"value":1},{"type":"item","quantity":"1","value":1}]}`, "items[2].quantity must be a JSON integer"},
		{item(`"type":["item"],"quantity":1,"value":1`), "items[0].type must be a JSON string"},
		{`{"items":"item"}`, "items must be a JSON array"},
		{`{"items":[5]}`, "items[0] must be a JSON object"},
		{`{"items":[[]]}`, "items[0] must be a JSON object"},
		{`{"items":[{"type":{},"quantity":1,"value":1}]}`, "items[0].type must be a JSON string"},
		{`{"items":[{"type":"item","quantity":[1],"value":1}]}`, "items[0].quantity must be a JSON integer"},
		{`{"items":[{"type":"item","quantity":1,"value":{"amount":1}}]}`, "items[0].value must be a decimal number of DOGE as a JSON string or number"},
		{item(`"type":"item","quantity":0,"value":1`), "items[0].quantity must be 1 to"},
		{item(`"type":"item","quantity":-1,"value":1`), "items[0].quantity must be 1 to"},
		{item(`"type":"item","quantity":1000000001,"value":1`), "items[0].quantity must be 1 to"},
		{item(`"type":"item","value":1`), "items[0].quantity is required"},
		{item(`"type":"item","quantity":null,"value":1`), "items[0].quantity is required"},
		{item(`"type":"item","quantity":1`), "items[0].value is required"},
		{item(`"type":"Item","quantity":1,"value":1`), "items[0].type must be one of"},
		{item(`"type":"","quantity":1,"value":1`), "items[0].type must be one of"},
		{item(`"quantity":1,"value":1`), "items[0].type must be one of"},
		{item(`"type":"refund","quantity":1,"value":1`), "items[0].type must be one of"},
		{item(`"type":"item","quantity":1,"value":0`), "items[0].value of an item must be above zero"},
		{item(`"type":"item","quantity":1,"value":null`), "items[0].value of an item must be above zero"},
		{item(`"type":"shipping","quantity":1,"value":"-1"`), "items[0].value of a shipping must be above zero"},
		{item(`"type":"discount","quantity":1,"value":"0"`), "items[0].value of a discount must be below zero"},
		{item(`"type":"discount","quantity":1,"value":"1"`), "items[0].value of a discount must be below zero"},
		{item(`"type":"discount","quantity":1,"value":"-1"`), "total must be greater than zero after items[0]"},
		{item(`"type":"item","quantity":1,"value":"1.123456789"`), "items[0].value has more than 8 decimal places"},
		// A PHP float at full precision (json_encode with serialize_precision -1) has more
		// than 8 places: GigaWallet silently rounds it, here it is refused (issue 10 item 8).
		{item(`"type":"item","quantity":1,"value":16.666666666666668`), "items[0].value has more than 8 decimal places"},
		{item(`"type":"item","quantity":1,"value":"1e16"`), "exceeds the largest amount"},
		{item(`"type":"item","quantity":1000000000,"value":"1e15"`), "invoice total exceeds the largest amount, 1000000000000000 DOGE"},
		{`{"items":[{"type":"item","quantity":1,"value":"1e15"},{"type":"fee","quantity":1,"value":"0.00000001"}]}`, "invoice total exceeds the largest amount"},
		{item(`"type":"item","quantity":1,"value":true`), "JSON string or number"},
		{`{"items":[{"type":"item","quantity":1,"value":"10"},{"type":"discount","quantity":1,"value":"-10"}]}`, "total must be greater than zero after items[1]"},
		{`{"items":[{"type":"discount","quantity":1,"value":"-1"},{"type":"item","quantity":1,"value":"10"}]}`, "after items[0]"},
		{item(`"type":"item","quantity":1,"value":1,"name":"` + strings.Repeat("x", ItemNameMaxBytes+1) + `"`), "items[0].name must be at most 1024 bytes"},
		{item(`"type":"item","quantity":1,"value":1,"sku":"` + strings.Repeat("x", ItemSKUMaxBytes+1) + `"`), "items[0].sku must be at most 128 bytes"},
		{item(`"type":"item","quantity":1,"value":1,"description":"` + strings.Repeat("x", ItemDescriptionMaxBytes+1) + `"`), "items[0].description must be at most 2048 bytes"},
		{item(`"type":"item","quantity":1,"value":1,"image_link":"` + strings.Repeat("x", ItemImageLinkMaxBytes+1) + `"`), "items[0].image_link must be at most 2048 bytes"},
		{item(`"type":"item","quantity":1,"value":1,"name":"a\nb"`), "items[0].name must not contain control characters"},
		{item(`"type":"item","quantity":1,"value":1,"name":"a\u0000b"`), "control characters"},
		{item(`"type":"item","quantity":1,"value":1,"name":5`), "items[0].name must be a JSON string"},
		{item(`"type":"item","quantity":1,"value":1,"Name":"x"`), `unknown key "Name" in items[0] (keys are case-sensitive: the key is "name")`},
		{item(`"type":"item","quantity":1,"value":1,"colour":"red"`), `unknown key "colour" in items[0]`},
		{item(`"type":"item","quantity":1,"value":1,"value":400`), `duplicate key "value" in items[0]`},
		{`{"confirmations":3,"items":[{"type":"item","quantity":1,"value":1}]}`, `unknown key "confirmations"`},
		{`{"required_confirmations":-2,"items":[{"type":"item","quantity":1,"value":1}]}`, "required_confirmations must be -1"},
		{`{"required_confirmations":1441,"items":[{"type":"item","quantity":1,"value":1}]}`, "required_confirmations must be -1"},
		{`{"required_confirmations":"6","items":[{"type":"item","quantity":1,"value":1}]}`, "required_confirmations must be a JSON integer"},
		{`{"expire_minutes":-1,"items":[{"type":"item","quantity":1,"value":1}]}`, "expire_minutes must be 0"},
		{`{"expire_minutes":43201,"items":[{"type":"item","quantity":1,"value":1}]}`, "expire_minutes must be 0"},
		{`{"items":[{"type":"item","quantity":1,"value":1}]}x`, "exactly one JSON object"},
		{`{"items":[{"type":"item","quantity":1,"value":1}]},`, "exactly one JSON object"},
		{`{"items":[{"value":[[[[[[[[1]]]]]]]]}]}`, "nests deeper"},
	} {
		_, apiErr := DecodeInvoiceCreate(strings.NewReader(tc.body), 6)
		checkRefused(t, tc.body, apiErr, tc.want)
	}
}

// TestDecodeInvoiceLimits: too many items are refused while the body is walked, before
// encoding/json builds them; an oversize body is 413 with GigaWallet's bad-request code.
func TestDecodeInvoiceLimits(t *testing.T) {
	items := func(n int) string {
		return `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"type":"item","quantity":1,"value":"0.01"},`, n), ",") + `]}`
	}
	got, apiErr := DecodeInvoiceCreate(strings.NewReader(items(InvoiceItemsMaxCount)), 6)
	if apiErr != nil || len(got.Items) != InvoiceItemsMaxCount || FormatKoinu(got.Total) != "1" {
		t.Errorf("%d items: %v, total %s", InvoiceItemsMaxCount, apiErr, FormatKoinu(got.Total))
	}
	_, apiErr = DecodeInvoiceCreate(strings.NewReader(items(InvoiceItemsMaxCount+1)), 6)
	checkRefused(t, "101 items", apiErr, "items holds more than 100 items")
	_, apiErr = DecodeInvoiceCreate(strings.NewReader(items(10_000)), 6)
	checkRefused(t, "10k items", apiErr, "items holds more than 100 items")
	huge := `{"items":[{"type":"item","quantity":1,"value":1,"name":"` + strings.Repeat("x", RequestBodyMaxBytes) + `"}]}`
	_, apiErr = DecodeInvoiceCreate(strings.NewReader(huge), 6)
	if apiErr == nil || apiErr.Status != http.StatusRequestEntityTooLarge || apiErr.Code != CodeBadRequest {
		t.Errorf("oversize body: %v", apiErr)
	}
}

// TestDecodedItemsKeepTheirValues: the validated items carry what the client sent, values exact.
func TestDecodedItemsKeepTheirValues(t *testing.T) {
	body := `{"items":[{"type":"item","name":"Widget","sku":"W-1","description":"d","value":"1.50","quantity":2,"image_link":"l"},{"type":"discount","name":"Sale","quantity":1,"value":-0.5}]}`
	got, apiErr := DecodeInvoiceCreate(strings.NewReader(body), 6)
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	want := []Item{
		{Type: "item", Name: "Widget", SKU: "W-1", Description: "d", Value: SignedAmount{Koinu: fsm.AmountFromUint64(150000000)}, Quantity: 2, ImageLink: "l"},
		{Type: "discount", Name: "Sale", Value: SignedAmount{Negative: true, Koinu: fsm.AmountFromUint64(50000000)}, Quantity: 1},
	}
	if len(got.Items) != len(want) || got.Items[0] != want[0] || got.Items[1] != want[1] {
		t.Errorf("items = %+v, want %+v", got.Items, want)
	}
	if FormatKoinu(got.Total) != "2.5" {
		t.Errorf("total = %s, want 2.5", FormatKoinu(got.Total))
	}
}
