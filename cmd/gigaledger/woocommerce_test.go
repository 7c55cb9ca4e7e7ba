package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// wooBridge behaves exactly like the WooCommerce plugin's GigaWalletBridge (v0.04,
// dogeorg/gigawallet-wordpress inc/gigawallet-api.php; ../shared/contracts/gigawallet.md §11):
// no Authorization header, Content-Type application/json, the invoice path with a trailing
// slash, item values as numbers or strings, quantity as an int, and every answer but HTTP 200
// (201 included) treated as a failure.
type wooBridge struct {
	t           *testing.T
	admin, pub  string // base URLs
	client      *http.Client
	lastFailure string
}

// call is the bridge's one HTTP helper: it returns the decoded body, or nil when the status is
// not exactly 200.
func (b *wooBridge) call(method, url string, body any) map[string]any {
	b.t.Helper()
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}
	request, err := http.NewRequest(method, url, reader)
	if err != nil {
		b.t.Fatal(err)
	}
	request.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(request)
	if err != nil {
		b.lastFailure = err.Error()
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.lastFailure = fmt.Sprintf("%d %s", resp.StatusCode, data)
		return nil
	}
	var decoded map[string]any
	if err := json.Unmarshal(data, &decoded); err != nil {
		b.t.Fatalf("%s %s: 200 with a body that is not a JSON object: %s", method, url, data)
	}
	return decoded
}

// upsertAccount is what the plugin's cron does every minute.
func (b *wooBridge) upsertAccount(foreignID string, payoutAddress any) map[string]any {
	return b.call("POST", b.admin+"/account/"+foreignID, map[string]any{
		"payout_address": payoutAddress, "payout_threshold": "0", "payout_frequency": "0"})
}

// createInvoice sends an order: WooCommerce line totals (PHP floats, json_encode'd as
// numbers) and shipping, required_confirmations cast to int.
func (b *wooBridge) createInvoice(foreignID string, lines []map[string]any, confirmations int) map[string]any {
	return b.call("POST", b.admin+"/account/"+foreignID+"/invoice/", map[string]any{
		"required_confirmations": confirmations, "items": lines})
}

// TestWooCommercePluginFlow runs the plugin's whole flow against a lone node over real HTTP:
// account upsert every "minute" (idempotent, 200 each time), an order's invoice, the payment
// URI from the answer's id, polling the admin invoice GET for total_payment_confirmed (which
// GigaWallet v1.0.6+ never set, its #149), the balance check of the payout cron, and the QR
// code from the public listener with the colours the plugin's colour pickers produce.
func TestWooCommercePluginFlow(t *testing.T) {
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, ConfirmationsNeeded: 6, raftTiming: testRaftTiming}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b := &wooBridge{t: t, admin: "http://" + cfg.AdminAddr, pub: "http://" + cfg.PublicAddr,
		client: &http.Client{Timeout: 10 * time.Second}}
	testutil.EventuallyWithin(t, 20*time.Second, "the node to serve", func() bool {
		return b.upsertAccount("store-1", nil) != nil
	})
	// The cron's minute-by-minute upsert: the same answer every time.
	first := b.upsertAccount("store-1", nil)
	for range 3 {
		if again := b.upsertAccount("store-1", nil); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("upsert changed: %v, then %v", first, again)
		}
	}
	if first["payout_frequency"] != "0" || first["payout_threshold"] != "0" || first["payout_address"] != "" {
		t.Fatalf("account %v", first)
	}

	// An order: 2 × 12.5 as a number, shipping as a string, 3 confirmations.
	invoice := b.createInvoice("store-1", []map[string]any{
		{"type": "item", "name": "Dogecoin hoodie", "quantity": 2, "value": 12.5},
		{"type": "shipping", "name": "Flat rate", "quantity": 1, "value": "4.2"},
	}, 3)
	if invoice == nil {
		t.Fatalf("create invoice: %s", b.lastFailure)
	}
	id, _ := invoice["id"].(string)
	if id == "" || invoice["total"] != "29.2" || invoice["pay_to_address"] != id {
		t.Fatalf("invoice %v", invoice)
	}
	paymentURI := "dogecoin:" + id + "?amount=" + invoice["total"].(string)
	if !strings.HasPrefix(paymentURI, "dogecoin:n") && !strings.HasPrefix(paymentURI, "dogecoin:m") {
		t.Fatalf("payment URI %s: not a testnet address", paymentURI)
	}

	// The order page polls the admin GET; the flag is there, false until the chain pays it.
	polled := b.call("GET", b.admin+"/account/store-1/invoice/"+id, nil)
	if polled == nil {
		t.Fatalf("poll: %s", b.lastFailure)
	}
	if confirmed, ok := polled["total_payment_confirmed"].(bool); !ok || confirmed {
		t.Fatalf("total_payment_confirmed %v in %v", polled["total_payment_confirmed"], polled)
	}

	// The payout cron reads CurrentBalance and pays only above zero.
	balance := b.call("GET", b.admin+"/account/store-1/balance", nil)
	if balance == nil || balance["CurrentBalance"] != "0" {
		t.Fatalf("balance %v (%s)", balance, b.lastFailure)
	}

	// A float total past 8 decimals (0.1 + 0.2 in PHP) is refused, not rounded: 400, nothing made.
	if bad := b.createInvoice("store-1", []map[string]any{{"type": "item", "name": "x", "quantity": 1, "value": json.Number("0.30000000000000004")}}, 6); bad != nil {
		t.Fatalf("a value with 17 decimals was accepted: %v", bad)
	}
	if !strings.HasPrefix(b.lastFailure, "400 ") {
		t.Fatalf("17 decimals: %s", b.lastFailure)
	}
	wooQRCodes(t, b, id)
}

// wooQRCodes fetches the QR code as the plugin's order page does: from the public listener,
// with fg/bg from its settings ("000000") or from its colour pickers ("#000000": the "#" starts
// a URL fragment, so the server sees empty values and must answer the default image, not an
// error).
func wooQRCodes(t *testing.T, b *wooBridge, id string) {
	t.Helper()
	for _, query := range []string{"?fg=000000&bg=ffffff", "?fg=#000000&bg=#ffffff", ""} {
		resp, err := b.client.Get(b.pub + "/invoice/" + id + "/qr.png" + query)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("qr.png%s: %d %s", query, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil || img.Bounds().Dx() != 512 {
			t.Fatalf("qr.png%s: %v %v", query, img.Bounds(), err)
		}
	}
	// The public view answers on the public listener without any header.
	resp, err := b.client.Get(b.pub + "/invoice/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("public invoice: %d", resp.StatusCode)
	}
}
