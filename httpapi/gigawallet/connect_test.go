package gigawallet

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/fsm"
)

// The cluster's signer is an EnvelopeSigner.
var _ EnvelopeSigner = (*dogecoin.ConnectSigner)(nil)

// testConnectSigner is the DogeConnect signer of a fixed 64-byte seed (libdogecoin's, as in
// chainwatch/dogecoin's master key vectors).
func testConnectSigner(t testing.TB) *dogecoin.ConnectSigner {
	t.Helper()
	seed, err := dogecoin.ParseSeed("3779b041fab425e9c0fd55846b2a03e9a388fb12784067bd8ebdb464c2574a05" +
		"bcc7a8eb54d7b2a2c8420ff60f630722ea5132d28605dbc996c8ca7d7a8311c0")
	if err != nil {
		t.Fatal(err)
	}
	keychain, err := dogecoin.NewKeychain(seed, dogecoin.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keychain.ConnectSigner()
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func signed(koinu uint64, negative bool) SignedAmount {
	return SignedAmount{Negative: negative, Koinu: fsm.AmountFromUint64(koinu)}
}

// pluginConnectPayment is the WooCommerce plugin's two-line order with shipping and a
// discount, as a handler would build it from the invoice.
func pluginConnectPayment() ConnectPayment {
	items := []Item{
		{Type: ItemTypeItem, Name: "Doge T-Shirt - Blue, XL", SKU: "TS-BL-XL", Description: "Soft <cotton> & shiba",
			Value: signed(4_979_548_000, false), Quantity: 2, ImageLink: "https://shop.example.com/ts.png"},
		{Type: ItemTypeItem, Name: "Cap", Value: signed(1_250_000_000, false), Quantity: 1},
		{Type: ItemTypeShipping, Name: "shipping", Value: signed(416_666_700, false), Quantity: 1},
		{Type: ItemTypeDiscount, Name: "", Value: signed(100_000_000, true), Quantity: 3},
		{Type: ItemTypeTax, Name: "VAT", Value: signed(12_345_678, false), Quantity: 1},
	}
	connectItems := make([]ConnectItem, len(items))
	for i, item := range items {
		connectItems[i] = ConnectItemFromInvoice(item)
	}
	return ConnectPayment{
		InvoiceID:     testInvoiceAddress,
		Total:         "113.38108378", // 99.59096 + 12.5 + 4.166667 − 3 + 0.12345678
		Items:         connectItems,
		Issued:        time.Date(2026, 12, 5, 13, 20, 59, 987_000_000, time.FixedZone("AEDT", 11*3600)),
		RelayURL:      "https://pay.example.com/dc/" + testInvoiceAddress,
		VendorName:    "Example Dogecoin Store",
		VendorDomain:  "example.com",
		VendorIconURL: "https://example.com/icon.png",
	}
}

// wantPluginPayload is the payment JSON of pluginConnectPayment, byte for byte: what is signed.
const wantPluginPayload = `{"type":"payment","id":"DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL","issued":"2026-12-05T02:20:59Z",` +
	`"timeout":1800,"relay":"https://pay.example.com/dc/DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL","fee_per_kb":"0.01000000",` +
	`"max_size":100000,"vendor_icon":"https://example.com/icon.png","vendor_name":"Example Dogecoin Store",` +
	`"vendor_url":"https://example.com","total":"113.38108378","taxes":"0.12345678","items":[` +
	`{"type":"item","id":"TS-BL-XL","icon":"https://shop.example.com/ts.png","name":"Doge T-Shirt - Blue, XL",` +
	`"desc":"Soft \u003ccotton\u003e \u0026 shiba","count":2,"unit":"49.79548000","total":"99.59096000"},` +
	`{"type":"item","id":"2","name":"Cap","count":1,"unit":"12.50000000","total":"12.50000000"},` +
	`{"type":"shipping","id":"3","name":"shipping","count":1,"unit":"4.16666700","total":"4.16666700"},` +
	`{"type":"discount","id":"4","name":"discount","count":3,"unit":"-1.00000000","total":"-3.00000000"},` +
	`{"type":"tax","id":"5","name":"VAT","count":1,"unit":"0.12345678","total":"0.12345678"}],` +
	`"outputs":[{"address":"DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL","amount":"113.38108378"}]}`

// verifyLikeAWallet checks env the way the DogeConnect specification tells wallets to, with no
// code of this package: the pubkey against the URI's hash, the BIP-340 signature over the
// double SHA-256 of the base64-decoded payload. It returns the payload bytes.
func verifyLikeAWallet(t *testing.T, env Envelope, keyHash []byte) []byte {
	t.Helper()
	if env.Version != "1.0" {
		t.Fatalf("version %q", env.Version)
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(env.Payload)
	if err != nil {
		t.Fatalf("payload is not standard base64: %v", err)
	}
	publicKeyBytes, err := hex.DecodeString(env.PubKey)
	if err != nil || len(publicKeyBytes) != 32 || env.PubKey != strings.ToLower(env.PubKey) {
		t.Fatalf("pubkey %q: %v", env.PubKey, err)
	}
	signatureBytes, err := hex.DecodeString(env.Sig)
	if err != nil || len(signatureBytes) != 64 || env.Sig != strings.ToLower(env.Sig) {
		t.Fatalf("sig %q: %v", env.Sig, err)
	}
	if keyHashFull := sha256.Sum256(publicKeyBytes); !bytes.Equal(keyHashFull[:15], keyHash) {
		t.Fatalf("SHA-256(pubkey)[:15] = %x, URI says %x", keyHashFull[:15], keyHash)
	}
	first := sha256.Sum256(payload)
	message := sha256.Sum256(first[:])
	publicKey, err := schnorr.ParsePubKey(publicKeyBytes)
	if err != nil {
		t.Fatal(err)
	}
	signature, err := schnorr.ParseSignature(signatureBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !signature.Verify(message[:], publicKey) {
		t.Fatal("signature does not verify over SHA-256(SHA-256(payload))")
	}
	return payload
}

// uriKeyHash returns the h= of a DogeConnect URI, decoded.
func uriKeyHash(t *testing.T, uri string) (dc string, keyHash []byte) {
	t.Helper()
	parsed, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	query := parsed.Query()
	keyHash, err = base64.URLEncoding.DecodeString(query.Get("h"))
	if err != nil || len(keyHash) != 15 || len(query.Get("h")) != 20 {
		t.Fatalf("h=%q: %v", query.Get("h"), err)
	}
	return query.Get("dc"), keyHash
}

// TestConnectEnvelopeVerifies builds, signs and then checks an envelope as a wallet would,
// from the URI to the payment's fields.
func TestConnectEnvelopeVerifies(t *testing.T) {
	signer := testConnectSigner(t)
	payment := pluginConnectPayment()
	env, err := ConnectEnvelope(payment, signer)
	if err != nil {
		t.Fatal(err)
	}
	uri, err := ConnectURI(testInvoiceAddress, "113.38108378", payment.RelayURL, signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	dc, keyHash := uriKeyHash(t, uri)
	if "https://"+dc != payment.RelayURL {
		t.Errorf("dc=%q, want the envelope URL without https://", dc)
	}
	payload := verifyLikeAWallet(t, env, keyHash)
	if string(payload) != wantPluginPayload {
		t.Errorf("payload\n%s\nwant\n%s", payload, wantPluginPayload)
	}

	// The payload reads back, strictly, into the same payment, and writes out the same bytes.
	decoder := json.NewDecoder(bytes.NewReader(payload))
	decoder.DisallowUnknownFields()
	var decoded ConnectPaymentPayload
	if err := decoder.Decode(&decoded); err != nil {
		t.Fatal(err)
	}
	built, err := connectPaymentPayload(payment)
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(decoded)
	if err != nil || string(again) != string(payload) {
		t.Errorf("round trip gives\n%s\n(err %v)", again, err)
	}
	builtJSON, _ := json.Marshal(built)
	if string(builtJSON) != string(payload) {
		t.Errorf("signed payload differs from connectPaymentPayload's")
	}

	// The same payment signs to the same envelope (deterministic nonces).
	if second, err := ConnectEnvelope(payment, signer); err != nil || second != env {
		t.Errorf("second envelope %+v (err %v), want %+v", second, err, env)
	}
	// The caller's items are not rewritten.
	if payment.Items[3].ID != "" || payment.Items[3].Name != "" {
		t.Errorf("ConnectEnvelope changed the caller's items: %+v", payment.Items[3])
	}
}

// TestConnectEnvelopeTamper: the wallet's check fails when anything signed changes.
func TestConnectEnvelopeTamper(t *testing.T) {
	signer := testConnectSigner(t)
	env, err := ConnectEnvelope(pluginConnectPayment(), signer)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	tampered := bytes.Replace(payload, []byte(`"113.38108378"}]`), []byte(`"1.38108378"}]`), 1)
	if bytes.Equal(tampered, payload) {
		t.Fatal("tamper found nothing to replace")
	}
	signature, _ := hex.DecodeString(env.Sig)
	publicKey, _ := schnorr.ParsePubKey(signer.PublicKey())
	parsed, _ := schnorr.ParseSignature(signature)
	first := sha256.Sum256(tampered)
	message := sha256.Sum256(first[:])
	if parsed.Verify(message[:], publicKey) {
		t.Fatal("signature verifies over a tampered payload")
	}
}

// TestConnectEnvelopeDefaultsAndOptions: timeout, fee, size defaults; explicit values; a
// payment without items; fees summed; relay token written.
func TestConnectEnvelopeDefaultsAndOptions(t *testing.T) {
	payment := ConnectPayment{
		InvoiceID: testInvoiceAddress, Total: "5", Issued: time.Unix(1_700_000_000, 0),
		RelayURL: "http://localhost:8082/dc/x", VendorName: "V", TimeoutSeconds: 60,
		FeePerKB: "0.001", MaxSizeBytes: 10_000, RelayToken: "tok",
	}
	payload, err := connectPaymentPayload(payment)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(payload)
	want := `{"type":"payment","id":"DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL","issued":"2023-11-14T22:13:20Z","timeout":60,` +
		`"relay":"http://localhost:8082/dc/x","relay_token":"tok","fee_per_kb":"0.00100000","max_size":10000,"vendor_name":"V",` +
		`"total":"5.00000000","items":[],"outputs":[{"address":"DQ6dt7wCjLDxtdSwCYSAMFHwrD5Q1xybmL","amount":"5.00000000"}]}`
	if string(got) != want {
		t.Errorf("payload\n%s\nwant\n%s", got, want)
	}

	payment.Items = []ConnectItem{
		{Type: ItemTypeItem, Name: "a", Count: 1, Unit: "4", Total: "4.0"},
		{Type: ItemTypeFee, Name: "service", Count: 2, Unit: "0.25", Total: "0.5", Tax: "0.1"},
		{Type: ItemTypeFee, Name: "card", Count: 1, Unit: "0.5", Total: "0.50000000"},
	}
	payload, err = connectPaymentPayload(payment)
	if err != nil {
		t.Fatal(err)
	}
	if payload.Fees != "1.00000000" || payload.Taxes != "" || payload.Items[1].Tax != "0.10000000" || payload.Items[0].Total != "4.00000000" {
		t.Errorf("fees %q taxes %q items %+v", payload.Fees, payload.Taxes, payload.Items)
	}
}

// TestConnectEnvelopeRefuses: every bad payment is ErrConnectPayment with a message, and nothing
// is signed.
func TestConnectEnvelopeRefuses(t *testing.T) {
	signer := testConnectSigner(t)
	tests := []struct {
		name   string
		change func(*ConnectPayment)
	}{
		{"9 decimals", func(p *ConnectPayment) { p.Total, p.Items = "1.123456789", nil }},
		{"exponent", func(p *ConnectPayment) { p.Total, p.Items = "1e2", nil }},
		{"plus sign", func(p *ConnectPayment) { p.Total, p.Items = "+1", nil }},
		{"space", func(p *ConnectPayment) { p.Total, p.Items = " 1", nil }},
		{"empty total", func(p *ConnectPayment) { p.Total, p.Items = "", nil }},
		{"dot only", func(p *ConnectPayment) { p.Total, p.Items = "1.", nil }},
		{"no whole part", func(p *ConnectPayment) { p.Total, p.Items = ".5", nil }},
		{"zero total", func(p *ConnectPayment) { p.Total, p.Items = "0", nil }},
		{"negative total", func(p *ConnectPayment) { p.Total, p.Items = "-1", nil }},
		{"above max money", func(p *ConnectPayment) { p.Total, p.Items = "10000000000.00000001", nil }},
		{"too many digits", func(p *ConnectPayment) { p.Total, p.Items = "000000000001", nil }},
		{"total with 9 decimals", func(p *ConnectPayment) { p.Total = "113.381083780" }},
		{"items add to another total", func(p *ConnectPayment) { p.Total = "113.38108379" }},
		{"line total not count × unit", func(p *ConnectPayment) { p.Items[0].Total = "49.79548" }},
		{"positive discount", func(p *ConnectPayment) {
			p.Items[3].Unit, p.Items[3].Total, p.Total = "1", "3", "119.38108378"
		}},
		{"negative item", func(p *ConnectPayment) {
			p.Items[1].Unit, p.Items[1].Total, p.Total = "-12.5", "-12.5", "88.38108378"
		}},
		{"zero item", func(p *ConnectPayment) { p.Items[1].Unit, p.Items[1].Total, p.Total = "0", "0", "100.88108378" }},
		{"unknown type", func(p *ConnectPayment) { p.Items[0].Type = "Item" }},
		{"count zero", func(p *ConnectPayment) { p.Items[1].Count = 0 }},
		{"negative tax", func(p *ConnectPayment) { p.Items[1].Tax = "-1" }},
		{"too many items", func(p *ConnectPayment) {
			p.Items = make([]ConnectItem, InvoiceItemsMaxCount+1)
		}},
		{"item name too long", func(p *ConnectPayment) { p.Items[1].Name = strings.Repeat("n", ConnectTextMaxBytes+1) }},
		{"item name not UTF-8", func(p *ConnectPayment) { p.Items[1].Name = "caf\xe9" }},
		{"no invoice ID", func(p *ConnectPayment) { p.InvoiceID = "" }},
		{"no vendor name", func(p *ConnectPayment) { p.VendorName = "" }},
		{"vendor domain with a path", func(p *ConnectPayment) { p.VendorDomain = "example.com/shop" }},
		{"vendor domain with a scheme", func(p *ConnectPayment) { p.VendorDomain = "https://example.com" }},
		{"no relay", func(p *ConnectPayment) { p.RelayURL = "" }},
		{"relay not http", func(p *ConnectPayment) { p.RelayURL = "ftp://example.com/dc" }},
		{"relay without host", func(p *ConnectPayment) { p.RelayURL = "https:///dc" }},
		{"no issued time", func(p *ConnectPayment) { p.Issued = time.Time{} }},
		{"negative timeout", func(p *ConnectPayment) { p.TimeoutSeconds = -1 }},
		{"timeout too long", func(p *ConnectPayment) { p.TimeoutSeconds = ConnectTimeoutMaxSeconds + 1 }},
		{"negative fee", func(p *ConnectPayment) { p.FeePerKB = "-0.01" }},
		{"bad fee", func(p *ConnectPayment) { p.FeePerKB = "0.01 DOGE" }},
		{"negative size", func(p *ConnectPayment) { p.MaxSizeBytes = -1 }},
		{"size above standard", func(p *ConnectPayment) { p.MaxSizeBytes = ConnectMaxSizeDefaultBytes + 1 }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			payment := pluginConnectPayment()
			test.change(&payment)
			env, err := ConnectEnvelope(payment, signer)
			if !errors.Is(err, ErrConnectPayment) {
				t.Fatalf("err %v, want ErrConnectPayment", err)
			}
			if env != (Envelope{}) {
				t.Errorf("an envelope came with the error: %+v", env)
			}
		})
	}
	// The unchanged payment is accepted, so each case fails for its own change.
	if _, err := ConnectEnvelope(pluginConnectPayment(), signer); err != nil {
		t.Fatal(err)
	}
}

// brokenSigner is an EnvelopeSigner that misbehaves one way or another.
type brokenSigner struct {
	publicKey []byte
	signature [64]byte
	err       error
}

func (s brokenSigner) PublicKey() []byte               { return s.publicKey }
func (s brokenSigner) Sign([32]byte) ([64]byte, error) { return s.signature, s.err }

// TestConnectEnvelopeSignerFailures: a signer with a bad key, an error or a signature that does
// not verify gives ErrConnectSigner and no envelope.
func TestConnectEnvelopeSignerFailures(t *testing.T) {
	good := testConnectSigner(t)
	otherHash := sha256.Sum256([]byte("something else"))
	signatureOfOther, err := good.Sign(otherHash)
	if err != nil {
		t.Fatal(err)
	}
	notOnCurve := bytes.Repeat([]byte{0xff}, 32) // above the field size
	tests := map[string]EnvelopeSigner{
		"short key":            brokenSigner{publicKey: good.PublicKey()[:31]},
		"compressed key":       brokenSigner{publicKey: append([]byte{2}, good.PublicKey()...)},
		"key not on curve":     brokenSigner{publicKey: notOnCurve},
		"sign error":           brokenSigner{publicKey: good.PublicKey(), err: errors.New("hardware wallet unplugged")},
		"zero signature":       brokenSigner{publicKey: good.PublicKey()},
		"signature of other":   brokenSigner{publicKey: good.PublicKey(), signature: signatureOfOther},
		"another signer's key": brokenSigner{publicKey: testOtherKey(t), signature: signatureOfOther},
	}
	for name, signer := range tests {
		t.Run(name, func(t *testing.T) {
			env, err := ConnectEnvelope(pluginConnectPayment(), signer)
			if !errors.Is(err, ErrConnectSigner) || env != (Envelope{}) {
				t.Fatalf("env %+v, err %v; want ErrConnectSigner", env, err)
			}
		})
	}
}

// testOtherKey is a valid x-only key that is not the test signer's.
func testOtherKey(t *testing.T) []byte {
	t.Helper()
	seed, err := dogecoin.NewSeed(bytes.Repeat([]byte{7}, 64))
	if err != nil {
		t.Fatal(err)
	}
	keychain, err := dogecoin.NewKeychain(seed, dogecoin.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keychain.ConnectSigner()
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

// TestConnectURI pins the URI's shape and refuses what a wallet could not use.
func TestConnectURI(t *testing.T) {
	publicKey := testConnectSigner(t).PublicKey()
	uri, err := ConnectURI(testInvoiceAddress, "43.61", "https://example.com/dc/1234", publicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyHash := sha256.Sum256(publicKey)
	want := "dogecoin:" + testInvoiceAddress + "?amount=43.61&dc=example.com%2Fdc%2F1234&h=" +
		base64.URLEncoding.EncodeToString(keyHash[:15])
	if uri != want {
		t.Errorf("ConnectURI = %s\nwant         %s", uri, want)
	}
	if dc, hash := uriKeyHash(t, uri); dc != "example.com/dc/1234" || !bytes.Equal(hash, keyHash[:15]) {
		t.Errorf("dc %q h %x", dc, hash)
	}
	if !strings.HasSuffix(uri, "&h="+strings.TrimRight(base64.URLEncoding.EncodeToString(keyHash[:15]), "=")) {
		t.Error("h= has padding")
	}

	for _, bad := range []string{"http://example.com/dc/1", "example.com/dc/1", "https://", "HTTPS://example.com/dc", ""} {
		if _, err := ConnectURI(testInvoiceAddress, "1", bad, publicKey); !errors.Is(err, ErrConnectURL) {
			t.Errorf("ConnectURI(%q): err %v, want ErrConnectURL", bad, err)
		}
	}
	if _, err := ConnectURI(testInvoiceAddress, "1", "https://example.com/dc/1", publicKey[:31]); !errors.Is(err, ErrConnectSigner) {
		t.Errorf("31-byte key: err %v, want ErrConnectSigner", err)
	}
}

// TestFormat8DP: exactly 8 decimal places, signs, amounts above 64 bits.
func TestFormat8DP(t *testing.T) {
	tests := []struct {
		koinu fsm.Amount
		want  string
	}{
		{fsm.AmountFromUint64(0), "0.00000000"},
		{fsm.AmountFromUint64(1), "0.00000001"},
		{fsm.AmountFromUint64(2_489_774_000), "24.89774000"},
		{fsm.AmountFromUint64(100_000_000), "1.00000000"},
		{fsm.AmountFromUint64(12_345_678_912_345_678), "123456789.12345678"},
		{fsm.Amount{Hi: 1, Lo: 0}, "184467440737.09551616"},
	}
	for _, test := range tests {
		if got := FormatKoinu8DP(test.koinu); got != test.want {
			t.Errorf("FormatKoinu8DP(%s) = %s, want %s", test.koinu, got, test.want)
		}
	}
	if got := signed(500_000_000, true).Format8DP(); got != "-5.00000000" {
		t.Errorf("-5 DOGE = %s", got)
	}
	if got := signed(1, true).Format8DP(); got != "-0.00000001" {
		t.Errorf("-1 koinu = %s", got)
	}
	if got := (SignedAmount{}).Format8DP(); got != "0.00000000" {
		t.Errorf("zero = %s", got)
	}
}

// TestParse8DP: what the reference parser reads, within its MaxMoney.
func TestParse8DP(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 100_000_000, "1.5": 150_000_000, "0.00000001": 1, "-0.5": -50_000_000,
		"007.10": 710_000_000, "10000000000": 1_000_000_000_000_000_000, "-10000000000.00000000": -1_000_000_000_000_000_000,
	}
	for text, want := range good {
		got, err := parse8DP("x", text)
		if err != nil || got.Int64() != want {
			t.Errorf("parse8DP(%q) = %v, %v; want %d", text, got, err, want)
		}
	}
	for _, text := range []string{"", "-", ".", "1.", ".1", "1.123456789", "1e8", "0x10", "1,5", "--1", "- 1", "1 ", "١", "10000000000.00000001", "99999999999"} {
		if got, err := parse8DP("x", text); !errors.Is(err, ErrConnectPayment) {
			t.Errorf("parse8DP(%q) = %v, %v; want ErrConnectPayment", text, got, err)
		}
	}
	// Too large says so, however many digits (it said "not a decimal number" past 11 digits).
	for _, text := range []string{"10000000000.00000001", "99999999999", "1000000000000.00000000", "-" + strings.Repeat("9", 400)} {
		if _, err := parse8DP("x", text); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("parse8DP(%q): %v, want an error saying it exceeds the maximum", text, err)
		}
	}
}

// TestConnectItemFromInvoice maps an invoice item to its DogeConnect line.
func TestConnectItemFromInvoice(t *testing.T) {
	got := ConnectItemFromInvoice(Item{Type: ItemTypeDiscount, Name: "Loyalty", SKU: "L1", Description: "10% off",
		Value: signed(250_000_000, true), Quantity: 4, ImageLink: "https://example.com/l.png"})
	want := ConnectItem{Type: ItemTypeDiscount, ID: "L1", Icon: "https://example.com/l.png", Name: "Loyalty",
		Description: "10% off", Count: 4, Unit: "-2.50000000", Total: "-10.00000000"}
	if got != want {
		t.Errorf("ConnectItemFromInvoice = %+v\nwant %+v", got, want)
	}
}

// BenchmarkConnectEnvelope measures building and signing the plugin's envelope (one signature
// and one verification).
func BenchmarkConnectEnvelope(b *testing.B) {
	signer := testConnectSigner(b)
	payment := pluginConnectPayment()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ConnectEnvelope(payment, signer); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzConnectEnvelopeOfInvoice: every invoice the create decoder accepts makes an envelope that
// verifies like a wallet checks it and reads back to the invoice's items and total, unless an
// amount is beyond what DogeConnect wallets accept (ConnectAmountMaxDOGE); nothing panics.
func FuzzConnectEnvelopeOfInvoice(f *testing.F) {
	for _, seed := range []string{
		pluginInvoiceBody,
		`{"items":[{"type":"item","name":"x","sku":"y","description":"z\n","value":"1e2","quantity":1,"image_link":"l"}]}`,
		`{"items":[{"type":"item","quantity":2,"value":"10"},{"type":"discount","quantity":1,"value":"-19.99999999"}]}`,
		`{"items":[{"type":"fee","quantity":1000000000,"value":"10.5"}]}`,
		`{"items":[{"type":"tax","name":"<&>\u2028","quantity":1,"value":"0.00000001"}]}`,
	} {
		f.Add([]byte(seed))
	}
	signer := testConnectSigner(f)
	keyHash := sha256.Sum256(signer.PublicKey())
	f.Fuzz(func(t *testing.T, body []byte) {
		invoice, apiErr := DecodeInvoiceCreate(bytes.NewReader(body), 6)
		if apiErr != nil {
			return
		}
		payment := ConnectPayment{
			InvoiceID: testInvoiceAddress, Total: FormatKoinu8DP(invoice.Total), Issued: time.Unix(1_700_000_000, 0),
			RelayURL: "https://pay.example.com/dc/" + testInvoiceAddress, VendorName: "V",
		}
		beyondWallets := invoice.Total.Big().Cmp(connectAmountMaxBig) > 0
		for _, item := range invoice.Items {
			connectItem := ConnectItemFromInvoice(item)
			payment.Items = append(payment.Items, connectItem)
			lineTotal := new(big.Int).Mul(item.Value.big(), big.NewInt(item.Quantity))
			if new(big.Int).Abs(lineTotal).Cmp(connectAmountMaxBig) > 0 || item.Value.Koinu.Big().Cmp(connectAmountMaxBig) > 0 {
				beyondWallets = true
			}
		}
		env, err := ConnectEnvelope(payment, signer)
		if err != nil {
			if !beyondWallets || !errors.Is(err, ErrConnectPayment) {
				t.Fatalf("invoice %s: %v", body, err)
			}
			return
		}
		if beyondWallets {
			t.Fatalf("invoice %s: envelope with an amount beyond %d DOGE", body, ConnectAmountMaxDOGE)
		}
		var decoded ConnectPaymentPayload
		if err := json.Unmarshal(verifyLikeAWallet(t, env, keyHash[:15]), &decoded); err != nil {
			t.Fatal(err)
		}
		if decoded.Total != payment.Total || len(decoded.Items) != len(invoice.Items) || decoded.Outputs[0].Amount != payment.Total {
			t.Fatalf("payload %+v does not match invoice %s", decoded, body)
		}
		for i, item := range decoded.Items {
			if item.Unit != invoice.Items[i].Value.Format8DP() || item.Count != invoice.Items[i].Quantity || item.Type != invoice.Items[i].Type {
				t.Fatalf("items[%d] %+v does not match %+v", i, item, invoice.Items[i])
			}
		}
	})
}
