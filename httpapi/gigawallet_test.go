package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/schnorr"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/httpapi"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// newGigaWalletServer is the admin handler with the GigaWallet API on, over a ledger without
// Raft, with a fixed test seed on testnet.
func newGigaWalletServer(t *testing.T) (*apiClient, *httpapitest.LedgerBackend, *dogecoin.Keychain) {
	t.Helper()
	keys := testKeychain(t)
	backend := httpapitest.NewLedgerBackend(t)
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: gigaWalletTestConfig(keys)}, backend, testLogger(t), nil)
	return &apiClient{t: t, handler: handler, token: testToken}, backend, keys
}

// testKeychain derives from a fixed test seed on testnet.
func testKeychain(t *testing.T) *dogecoin.Keychain {
	t.Helper()
	seed, err := dogecoin.ParseSeed(strings.Repeat("5a", 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, dogecoin.Testnet)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func gigaWalletTestConfig(keys *dogecoin.Keychain) *httpapi.GigaWalletConfig {
	return &httpapi.GigaWalletConfig{ProjectID: "gigawallet", AssetID: "doge", Network: dogecoin.Testnet, Keys: keys,
		ConfirmationsNeeded: 6, PubAPIRootURL: "http://pay.example", ServiceName: "Shop", ServiceDomain: "shop.example"}
}

// newPublicClient is the public listener's handler over the same backend: no token.
func newPublicClient(t *testing.T, backend httpapi.Backend, keys *dogecoin.Keychain) *apiClient {
	handler := httpapi.NewPublic(httpapi.PublicConfig{GigaWallet: gigaWalletTestConfig(keys), Backend: backend}, testLogger(t), nil)
	return &apiClient{t: t, handler: handler}
}

// TestGigaWalletAccount: the seed's example (POST {} /account/123456789), the account's shape,
// get, balance, and an upsert that sets the payout settings of the existing account (#134).
func TestGigaWalletAccount(t *testing.T) {
	c, backend, keys := newGigaWalletServer(t)
	var created map[string]any
	c.do("POST", "/account/123456789", `{}`).expect(200).decode(&created)
	want, err := keys.Account(uint32(keyspace.SlotOf("gigawallet", "123456789")))
	if err != nil {
		t.Fatal(err)
	}
	if created["id"] != want.ID() || created["foreign_id"] != "123456789" || created["payout_threshold"] != "0" ||
		created["payout_address"] != "" || created["payout_frequency"] != "" || len(created) != 5 {
		t.Fatalf("created %v, want id %s", created, want.ID())
	}
	var got map[string]any
	c.do("GET", "/account/123456789", nil).expect(200).decode(&got)
	if got["id"] != created["id"] {
		t.Fatalf("get %v", got)
	}
	body := c.do("GET", "/account/123456789/balance", nil).expect(200).body
	if string(body) != `{"IncomingBalance":"0","CurrentBalance":"0","OutgoingBalance":"0"}` {
		t.Fatalf("balance %s", body)
	}
	// The upsert of an existing account applies the settings it sets and keeps its key.
	address := want.ID() // a testnet P2PKH address, as good as any
	c.do("POST", "/account/123456789", `{"payout_address":"`+address+`","payout_threshold":"12.5","payout_frequency":"3600"}`).
		expect(200).decode(&got)
	if got["id"] != created["id"] || got["payout_address"] != address || got["payout_threshold"] != "12.5" || got["payout_frequency"] != "3600" {
		t.Fatalf("updated %v", got)
	}
	// The same account is a customer with a DOGE wallet in the Cloud Wallet API.
	var wallets struct{ Items []map[string]any }
	c.do("GET", "/projects/gigawallet/customers/123456789/wallets", nil).expect(200).decode(&wallets)
	if len(wallets.Items) != 1 || wallets.Items[0]["assetId"] != "doge" {
		t.Fatalf("wallets %v", wallets)
	}
	if err := backend.Ledger.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	// The Cloud Wallet API reads GigaWallet's project but does not write to it: a payout's hold
	// released or captured beside GigaWallet stopped every replica before.
	walletID, _ := wallets.Items[0]["id"].(string)
	for _, write := range []struct{ method, path, body string }{
		{"POST", "/projects", `{"id":"gigawallet","name":"mine"}`},
		{"PUT", "/projects/gigawallet/name", `{"name":"mine"}`},
		{"POST", "/projects/gigawallet/assets", `{"id":"x","name":"x","code":"X","fractions":1}`},
		{"PUT", "/projects/gigawallet/customers/123456789", `{"name":"x"}`},
		{"DELETE", "/projects/gigawallet/customers/123456789", ``},
		{"POST", "/projects/gigawallet/customers/123456789/suspend", `{}`},
		{"POST", "/projects/gigawallet/wallets", `{"customerId":"123456789","assetId":"doge"}`},
		{"PUT", "/projects/gigawallet/wallets/" + walletID + "/status", `{"status":"suspended"}`},
		{"POST", "/projects/gigawallet/transactions", `{"referenceId":"r","operations":[{"type":"issue","to":"` + walletID + `","amount":1}]}`},
		{"POST", "/projects/gigawallet/transactions/batch", `{"transactions":[{"referenceId":"r","operations":[{"type":"issue","to":"` + walletID + `","amount":1}]}]}`},
		{"POST", "/projects/gigawallet/holds/h0000.t0000a.0/release", `{}`},
		{"POST", "/projects/gigawallet/holds/h0000.t0000a.0/capture", `{"to":"` + walletID + `"}`},
	} {
		var refusal struct{ Error struct{ Code string } }
		c.do(write.method, write.path, write.body).expect(409).decode(&refusal)
		if refusal.Error.Code != "ProjectOwnedByGigaWallet" {
			t.Fatalf("%s %s: %+v", write.method, write.path, refusal)
		}
	}
	c.do("GET", "/projects/gigawallet/wallets/"+walletID, nil).expect(200)
}

// TestGigaWalletBadInput: a clear 4xx with GigaWallet's envelope, nothing created.
func TestGigaWalletBadInput(t *testing.T) {
	c, backend, _ := newGigaWalletServer(t)
	for _, tc := range []struct{ path, body, code string }{
		{"/account/a1", ``, "bad-request"},
		{"/account/a1", `{"payout_address":"Dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, "bad-request"},
		{"/account/a1", `{"payout_frequency":5}`, "bad-request"},
		{"/account/a1", `{"payout_threshold":"1.123456789"}`, "bad-request"},
		{"/account/a1", `{"payout_threshold":"1","payout_threshold":"2"}`, "bad-request"},
		// Foreign IDs that would look like another (zero-width space, bidi override, no-break
		// space) and that the Cloud Wallet API would not address.
		{"/account/a1%E2%80%8B", `{}`, "bad-request"},
		{"/account/%E2%80%AEa1", `{}`, "bad-request"},
		{"/account/a%C2%A01", `{}`, "bad-request"},
		{"/account/.", `{}`, "bad-request"},
		{"/account/..", `{}`, "bad-request"},
	} {
		c.do("POST", tc.path, tc.body).expectError(400, tc.code)
	}
	if backend.Proposals() != 0 {
		t.Fatalf("bad input proposed %d commands", backend.Proposals())
	}
	var envelope map[string]map[string]string
	c.do("GET", "/account/nobody", nil).expectError(404, "not-found").decode(&envelope)
	if !strings.Contains(envelope["error"]["message"], "nobody") {
		t.Fatalf("not-found message %q", envelope["error"]["message"])
	}
	c.do("GET", "/account/nobody/balance", nil).expectError(404, "not-found")
	// A well-formed txid the account never paid is not found (it was a 500 unknown-error).
	c.do("POST", "/account/a1", `{}`).expect(200)
	c.do("GET", "/account/a1/payment/"+strings.Repeat("0", 64), nil).expectError(404, "not-found")
}

// TestGigaWalletInvoices: create (both paths), the shapes, list with GigaWallet's cursor, the
// admin GET with its extra keys and flags, the public view, another account's invoice.
func TestGigaWalletInvoices(t *testing.T) {
	c, backend, keys := newGigaWalletServer(t)
	public := newPublicClient(t, backend, keys)
	c.do("POST", "/account/shop", `{}`).expect(200)
	c.do("POST", "/account/other", `{}`).expect(200)
	account, err := keys.Account(uint32(keyspace.SlotOf("gigawallet", "shop")))
	if err != nil {
		t.Fatal(err)
	}
	// The WooCommerce plugin's body: trailing slash, a string value and a number value.
	r := c.do("POST", "/account/shop/invoice/", `{"required_confirmations":3,"items":[`+
		`{"type":"item","name":"Tea","quantity":2,"value":"1.5"},{"type":"shipping","name":"Post","quantity":1,"value":0.25}]}`).expect(200)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	var created map[string]any
	r.decode(&created)
	first, err := account.InvoiceAddress(0)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"id", "items", "created", "total", "pay_to_address", "required_confirmations", "part_payment_detected",
		"total_payment_detected", "total_payment_confirmed", "payment_unconfirmed", "estimate_seconds_to_confirm", "status", "expires_at"}
	if created["id"] != first.Address || created["pay_to_address"] != first.Address || created["total"] != "3.25" ||
		created["required_confirmations"] != float64(3) || created["status"] != "unpaid" || created["expires_at"] != nil ||
		len(created) != len(wantKeys) {
		t.Fatalf("created %v, want id %s", created, first.Address)
	}
	for _, k := range wantKeys {
		if _, ok := created[k]; !ok {
			t.Errorf("public invoice lacks %q", k)
		}
	}
	items := created["items"].([]any)
	if items[0].(map[string]any)["value"] != "1.5" || items[1].(map[string]any)["value"] != "0.25" {
		t.Fatalf("items %v", items)
	}
	// Without the slash; the default confirmations; an expiry.
	var second map[string]any
	c.do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"Mug","quantity":1,"value":"7"}],"expire_minutes":30}`).
		expect(200).decode(&second)
	next, _ := account.InvoiceAddress(1)
	if second["id"] != next.Address || second["required_confirmations"] != float64(6) || second["expires_at"] == nil {
		t.Fatalf("second %v", second)
	}
	for i := 0; i < 3; i++ {
		c.do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":1}]}`).expect(200)
	}
	// Five invoices, pages of two: cursors 2, 4, then 0 after the short last page.
	var pages [][]string
	cursor := "0"
	for range 4 {
		var page struct {
			Items  []map[string]any
			Cursor int64
		}
		c.do("GET", "/account/shop/invoices?limit=2&cursor="+cursor, nil).expect(200).decode(&page)
		var ids []string
		for _, it := range page.Items {
			if it["account"] != account.ID() || it["total_incoming"] != "0" || it["total_confirmed"] != "0" {
				t.Fatalf("list item %v", it)
			}
			ids = append(ids, it["id"].(string))
		}
		pages = append(pages, ids)
		if page.Cursor == 0 {
			break
		}
		cursor = fmt.Sprint(page.Cursor)
	}
	if len(pages) != 3 || len(pages[0]) != 2 || pages[0][0] != first.Address || pages[0][1] != next.Address || len(pages[2]) != 1 {
		t.Fatalf("pages %v", pages)
	}
	// An exactly full last page is followed by an empty one with cursor 0, as in GigaWallet.
	body := c.do("GET", "/account/shop/invoices?cursor=5", nil).expect(200).body
	if string(body) != `{"items":[],"cursor":0}` {
		t.Fatalf("empty page %s", body)
	}
	c.do("GET", "/account/shop/invoices?limit=101", nil).expectError(400, "bad-request")
	c.do("GET", "/account/shop/invoices?cursor=-1", nil).expectError(400, "bad-request")
	c.do("GET", "/account/nobody/invoices", nil).expectError(404, "not-found")

	// The admin GET: the admin shape with its payment flags and pay_to_address (GigaWallet #149).
	var admin map[string]any
	c.do("GET", "/account/shop/invoice/"+first.Address, nil).expect(200).decode(&admin)
	if admin["account"] != account.ID() || admin["pay_to_address"] != first.Address || admin["total_payment_confirmed"] != false ||
		admin["total"] != "3.25" || len(admin) != len(wantKeys)+3 {
		t.Fatalf("admin invoice %v", admin)
	}
	c.do("GET", "/account/other/invoice/"+first.Address, nil).expectError(404, "not-found")
	// GigaWallet's words for both: an unknown invoice and another account's (a probe saw
	// "invoice not found" for another account's invoice on another shard).
	for _, path := range []string{"/account/other/invoice/" + first.Address, "/account/shop/invoice/nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"} {
		if body := string(c.do("GET", path, nil).expectError(404, "not-found").body); !strings.Contains(body, "no such invoice in this account") {
			t.Errorf("GET %s: %s, want GigaWallet's \"no such invoice in this account\"", path, body)
		}
	}

	// The public view, on the public listener without a token: the create response's shape.
	var viewed map[string]any
	public.do("GET", "/invoice/"+first.Address, nil).expect(200).decode(&viewed)
	if fmt.Sprint(viewed) != fmt.Sprint(created) {
		t.Fatalf("public view %v\ncreate answer %v", viewed, created)
	}
	public.do("GET", "/invoice/nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", nil).expectError(404, "not-found")
	public.do("GET", "/invoice/0OIl", nil).expectError(404, "not-found")
	public.do("GET", "/account/shop", nil).expect(404)
	public.do("POST", "/account/shop/invoice", `{}`).expect(404)

	// Half an hour later the second invoice has expired, everywhere.
	backend.Advance(30 * 60_000)
	c.do("POST", "/account/shop", `{}`).expect(200) // any write: the batch expires what is due
	public.do("GET", "/invoice/"+next.Address, nil).expect(200).decode(&viewed)
	if viewed["status"] != "expired" {
		t.Fatalf("after its expiry: %v", viewed)
	}
}

// TestGigaWalletInvoiceBadInput: GigaWallet's validation answered 400 (it said 500), and the
// size bounds; nothing is created.
func TestGigaWalletInvoiceBadInput(t *testing.T) {
	c, backend, _ := newGigaWalletServer(t)
	c.do("POST", "/account/shop", `{}`).expect(200)
	proposals := backend.Proposals()
	many := `{"items":[` + strings.Repeat(`{"type":"item","name":"x","quantity":1,"value":1},`, 9999) + `{"type":"item","name":"x","quantity":1,"value":1}]}`
	for name, body := range map[string]string{
		"empty body":        ``,
		"malformed":         `{"items":[`,
		"no items":          `{"items":[]}`,
		"quantity string":   `{"items":[{"type":"item","name":"x","quantity":"6","value":1}]}`,
		"quantity fraction": `{"items":[{"type":"item","name":"x","quantity":1.5,"value":1}]}`,
		"quantity zero":     `{"items":[{"type":"item","name":"x","quantity":0,"value":1}]}`,
		"nine decimals":     `{"items":[{"type":"item","name":"x","quantity":1,"value":"0.123456789"}]}`,
		"positive discount": `{"items":[{"type":"item","name":"x","quantity":1,"value":1},{"type":"discount","name":"d","quantity":1,"value":1}]}`,
		"discount first":    `{"items":[{"type":"discount","name":"d","quantity":1,"value":-1},{"type":"item","name":"x","quantity":1,"value":5}]}`,
		"unknown type":      `{"items":[{"type":"gift","name":"x","quantity":1,"value":1}]}`,
		"confirmations":     `{"items":[{"type":"item","name":"x","quantity":1,"value":1}],"required_confirmations":"6"}`,
		"huge name":         `{"items":[{"type":"item","name":"` + strings.Repeat("n", 100_000) + `","quantity":1,"value":1}]}`,
		"10k items":         many,
		"value as object":   `{"items":[{"type":"item","name":"x","quantity":1,"value":{}}]}`,
	} {
		r := c.do("POST", "/account/shop/invoice", body)
		if r.status != 400 && r.status != 413 {
			t.Errorf("%s: status %d, body %s", name, r.status, r.body)
		}
	}
	c.do("POST", "/account/nobody/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":1}]}`).expectError(404, "not-found")
	if backend.Proposals() != proposals {
		t.Fatalf("bad input proposed %d commands", backend.Proposals()-proposals)
	}
	var page struct{ Items []any }
	c.do("GET", "/account/shop/invoices", nil).expect(200).decode(&page)
	if len(page.Items) != 0 {
		t.Fatalf("bad input created %d invoices", len(page.Items))
	}
}

// TestGigaWalletQRAndConnect: the public QR code (512 px PNG, lenient colours) and the signed
// DogeConnect envelope, as a wallet checks it.
func TestGigaWalletQRAndConnect(t *testing.T) {
	c, backend, keys := newGigaWalletServer(t)
	public := newPublicClient(t, backend, keys)
	c.do("POST", "/account/shop", `{}`).expect(200)
	var invoice map[string]any
	c.do("POST", "/account/shop/invoice/", `{"items":[{"type":"item","name":"Tea","sku":"T1","quantity":2,"value":"1.5"},`+
		`{"type":"discount","name":"Sale","quantity":1,"value":"-0.5"}],"expire_minutes":60}`).expect(200).decode(&invoice)
	id := invoice["id"].(string)

	for _, query := range []string{"", "?fg=000000&bg=ffffff", "?fg=&bg=", "?fg=ff000080&bg=zz"} {
		r := public.do("GET", "/invoice/"+id+"/qr.png"+query, nil).expect(200)
		if r.header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s: content type %q", query, r.header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(r.body))
		if err != nil || img.Bounds().Dx() != 512 || img.Bounds().Dy() != 512 {
			t.Fatalf("%s: PNG %v %v", query, img.Bounds(), err)
		}
	}
	public.do("GET", "/invoice/nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/qr.png", nil).expectError(404, "not-found")
	// The code says GigaWallet's URI (the public URL is plain http here): the encoder is
	// deterministic, so the same text gives the same bytes.
	want, err := gw.QRPNG("dogecoin:"+id+"?amount=2.5&cxt=http%3A%2F%2Fpay.example%2Finvoice%2F"+id+"%2Fconnect", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := public.do("GET", "/invoice/"+id+"/qr.png?fg=", nil).body; !bytes.Equal(got, want) {
		t.Fatal("the QR code does not encode dogecoin:<id>?amount=<total>&cxt=<connect URL>")
	}

	var envelope struct{ Version, Payload, PubKey, Sig string }
	r := public.do("GET", "/invoice/"+id+"/connect", nil).expect(200)
	r.decode(&envelope)
	payloadJSON, err := base64.StdEncoding.DecodeString(envelope.Payload)
	if err != nil || envelope.Version != "1.0" {
		t.Fatalf("envelope %+v: %v", envelope, err)
	}
	keyBytes, _ := hex.DecodeString(envelope.PubKey)
	sigBytes, _ := hex.DecodeString(envelope.Sig)
	key, err := schnorr.ParsePubKey(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := schnorr.ParseSignature(sigBytes)
	if err != nil {
		t.Fatal(err)
	}
	first := sha256.Sum256(payloadJSON)
	hash := sha256.Sum256(first[:])
	if !sig.Verify(hash[:], key) {
		t.Fatal("the envelope's signature does not verify")
	}
	var payment struct {
		Type, ID, Total, Issued string
		Timeout                 int
		VendorName              string `json:"vendor_name"`
		Outputs                 []struct{ Address, Amount string }
		Items                   []map[string]any
	}
	if err := json.Unmarshal(payloadJSON, &payment); err != nil {
		t.Fatal(err)
	}
	if payment.Type != "payment" || payment.ID != id || payment.Total != "2.50000000" || payment.Timeout != 3600 ||
		payment.VendorName != "Shop" || len(payment.Outputs) != 1 || payment.Outputs[0].Address != id ||
		payment.Outputs[0].Amount != "2.50000000" || len(payment.Items) != 2 {
		t.Fatalf("payment %s", payloadJSON)
	}
	// The same envelope on every request (and so on every node): issued is the invoice's creation.
	if again := public.do("GET", "/invoice/"+id+"/connect", nil).expect(200).body; !bytes.Equal(again, r.body) {
		t.Fatalf("a second envelope differs:\n%s\n%s", r.body, again)
	}

	// An invoice within GigaWallet's limits but above what a DogeConnect wallet accepts (a
	// total, or one item's unit, above 10^10 DOGE): the payer's browser gets a 422 that says
	// so, not a 500.
	for _, items := range []string{
		`[{"type":"item","name":"b","value":"10000000000.00000001","quantity":1}]`,
		`[{"type":"item","name":"b","value":"1000000000000","quantity":1}]`,
		`[{"type":"item","name":"b","value":"20000000000","quantity":1},{"type":"discount","name":"d","value":"-15000000000","quantity":1}]`,
	} {
		var big map[string]any
		c.do("POST", "/account/shop/invoice/", `{"items":`+items+`}`).expect(200).decode(&big)
		var refusal map[string]map[string]string
		public.do("GET", "/invoice/"+big["id"].(string)+"/connect", nil).expectError(422, "bad-request").decode(&refusal)
		if msg := refusal["error"]["message"]; !strings.Contains(msg, "cannot be paid through DogeConnect") || !strings.Contains(msg, "exceeds") {
			t.Fatalf("%s: message %q", items, msg)
		}
	}
}

// TestGigaWalletRoutesSpeakGigaWalletCodes: a refusal the listener's own checks make on a
// GigaWallet route (no token, a body too large with or without Content-Length, no JSON media
// type) carries GigaWallet's code, as docs/gigawallet-api.md promises; a Cloud Wallet route
// keeps the Cloud Wallet code. A probe met "Unauthorized", "RequestTooLarge" and
// "UnsupportedMediaType" on GigaWallet routes, and a 400 for a chunked oversize body.
func TestGigaWalletRoutesSpeakGigaWalletCodes(t *testing.T) {
	c, backend, _ := newGigaWalletServer(t)
	anonymous := &apiClient{t: t, handler: c.handler}
	anonymous.do("GET", "/account/a1", nil).expectError(401, "unauthorized")
	anonymous.do("POST", "/account/a1/pay", `{}`).expectError(401, "unauthorized")
	anonymous.do("GET", "/projects", nil).expectError(401, "Unauthorized")

	big := `{"items":[{"type":"item","name":"x","value":"1","quantity":1}],"z":"` + strings.Repeat("a", 2<<20) + `"}`
	c.do("POST", "/account/a1", `{}`).expect(200)
	proposals := backend.Proposals()
	c.do("POST", "/account/a1/invoice", big).expectError(413, "bad-request")
	chunked := httptest.NewRequest("POST", "/account/a1/invoice", io.MultiReader(strings.NewReader(big)))
	chunked.ContentLength = -1
	chunked.Host = testHost
	chunked.Header.Set("Content-Type", "application/json")
	chunked.Header.Set("Authorization", "Bearer "+testToken)
	recorder := httptest.NewRecorder()
	c.handler.ServeHTTP(recorder, chunked)
	(&response{t: t, status: recorder.Code, header: recorder.Header(), body: recorder.Body.Bytes()}).expectError(413, "bad-request")

	c.withHeader("Content-Type", "text/plain").do("POST", "/account/a2", `{}`).expectError(415, "bad-request")
	c.withHeader("Content-Type", "text/plain").do("POST", "/projects", `{}`).expectError(415, "UnsupportedMediaType")
	if backend.Proposals() != proposals {
		t.Fatalf("%d proposals after the refusals, %d before", backend.Proposals(), proposals)
	}
}

// A query string that does not decode is 400 on every route, never a request run as if the
// broken parameter were absent: GET /events?after=<bad %-escape> replayed the whole log
// (found by a probe). So is a parameter given twice, of which handlers would read only the
// first. On a GigaWallet route it carries GigaWallet's code.
func TestUndecodableQueryIsRefused(t *testing.T) {
	c, _, _ := newTestServer(t)
	for _, path := range []string{"/events?after=AQEC%ZZ", "/events?types=INV%ZZ", "/projects?page=%ZZ", "/projects?page=1&x=100%",
		"/events?limit=1&limit=2", "/events?types=A&types=B", "/projects?limit=1&limit="} {
		c.do("GET", path, nil).expectError(400, "InvalidArgument")
	}
	c.do("GET", "/events?limit=1", nil).expect(200)
	g, _, _ := newGigaWalletServer(t)
	g.do("GET", "/account/a1/invoices?cursor=%ZZ", nil).expectError(400, "bad-request")
	g.do("GET", "/account/a1/invoices?limit=5&limit=6", nil).expectError(400, "bad-request")
}

// Invoices created at once on one account (a shop's checkouts) each get the account's next
// key index: every one succeeds, with addresses 0..n−1. Each reads the next index and
// proposes it; 30 at once ran out of the retries of a taken index and answered 500.
func TestGigaWalletInvoicesAtOnce(t *testing.T) {
	keys := testKeychain(t)
	// A consensus round takes a while: every proposal waits 2 ms before it applies, so
	// invoices that read the account together propose the same index.
	backend := slowBackend{Backend: httpapitest.NewLedgerBackend(t), delay: 2 * time.Millisecond}
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: gigaWalletTestConfig(keys)}, backend, testLogger(t), nil)
	c := &apiClient{t: t, handler: handler, token: testToken}
	c.do("POST", "/account/shop", `{}`).expect(200)
	account, err := keys.Account(uint32(keyspace.SlotOf("gigawallet", "shop")))
	if err != nil {
		t.Fatal(err)
	}
	const n = 48
	answers := c.doAtOnce(n, "POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"Tea","quantity":1,"value":"1"}]}`)
	want := map[string]bool{}
	for i := range n {
		a, err := account.InvoiceAddress(uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		want[a.Address] = true
	}
	for i, r := range answers {
		if r.status != 200 {
			t.Errorf("invoice %d: %d %s", i, r.status, r.body)
			continue
		}
		var created struct{ ID string }
		r.decode(&created)
		if !want[created.ID] {
			t.Errorf("invoice %d: address %s is not one of the first %d or is taken twice", i, created.ID, n)
		}
		delete(want, created.ID)
	}
}

// slowBackend delays every proposal.
type slowBackend struct {
	httpapi.Backend
	delay time.Duration
}

func (b slowBackend) Propose(ctx context.Context, env fsm.Envelope) (*fsm.Result, error) {
	time.Sleep(b.delay)
	return b.Backend.Propose(ctx, env)
}
