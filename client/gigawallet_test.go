package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/prometheus/client_golang/prometheus"
)

// gigaWalletServers are the admin and public listeners of one node with the GigaWallet API on.
type gigaWalletServers struct {
	adminURL, publicURL string
	backend             *httpapitest.LedgerBackend
}

// startGigaWalletServer serves the real admin and public handlers with the GigaWallet API on
// (a fixed test seed, testnet) over one ledger without Raft; wrap, when set, stands between
// the client and the admin handler.
func startGigaWalletServer(t *testing.T, wrap func(http.Handler) http.Handler) gigaWalletServers {
	t.Helper()
	seed, err := dogecoin.ParseSeed(strings.Repeat("5a", 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, dogecoin.Testnet)
	if err != nil {
		t.Fatal(err)
	}
	config := &httpapi.GigaWalletConfig{ProjectID: "gigawallet", AssetID: "doge", Network: dogecoin.Testnet, Keys: keys,
		ConfirmationsNeeded: 6, PubAPIRootURL: "http://pay.example", ServiceName: "Shop", ServiceDomain: "shop.example"}
	backend := httpapitest.NewLedgerBackend(t)
	gigPay := &httpapi.GigPayConfig{ProjectID: "gigpay", Env: "test"}
	var admin http.Handler = httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: config, GigPay: gigPay}, backend, testutil.Logger(t), prometheus.NewRegistry())
	if wrap != nil {
		admin = wrap(admin)
	}
	public := httpapi.NewPublic(httpapi.PublicConfig{GigaWallet: config, GigPay: gigPay, Backend: backend}, testutil.Logger(t), prometheus.NewRegistry())
	return gigaWalletServers{adminURL: serve(t, admin), publicURL: serve(t, public), backend: backend}
}

// serve serves handler on a loopback test port and returns its URL.
func serve(t *testing.T, handler http.Handler) string {
	t.Helper()
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)
	return server.URL
}

// shopInvoice is an invoice of three lines: 2 × 1.5 + 0.25 − 0.1 = 3.15 DOGE.
var shopInvoice = client.InvoiceRequest{Items: []client.InvoiceItem{
	{Type: "item", Name: "T-shirt", SKU: "ts-1", Value: "1.5", Quantity: 2},
	{Type: "shipping", Name: "Post", Value: "0.25", Quantity: 1},
	{Type: "discount", Name: "Coupon", Value: "-0.1", Quantity: 1},
}}

func TestGigaWalletCallsAgainstTheRealHandler(t *testing.T) {
	servers := startGigaWalletServer(t, nil)
	c := newClient(t, servers.adminURL)
	ctx := testutil.Context(t, callLimit)

	// Accounts: an upsert that sets nothing sends {}, and a second one sets the payouts.
	account := must[*client.GigaWalletAccount](t, "upsert account")(c.UpsertAccount(ctx, "shop 1", client.AccountSettings{}))
	if account.ID == "" || account.ForeignID != "shop 1" || account.PayoutThreshold != "0" || account.PayoutAddress != "" {
		t.Fatalf("account %+v", account)
	}
	threshold := client.DogeAmount("12.5")
	updated := must[*client.GigaWalletAccount](t, "update account")(c.UpsertAccount(ctx, "shop 1",
		client.AccountSettings{PayoutThreshold: &threshold, PayoutFrequency: client.String("3600")}))
	if updated.ID != account.ID || updated.PayoutThreshold != "12.5" || updated.PayoutFrequency != "3600" {
		t.Fatalf("updated %+v", updated)
	}
	if got := must[*client.GigaWalletAccount](t, "get account")(c.GetAccount(ctx, "shop 1")); *got != *updated {
		t.Fatalf("get account %+v, want %+v", got, updated)
	}
	balance := must[*client.GigaWalletBalance](t, "balance")(c.GetAccountBalance(ctx, "shop 1"))
	if *balance != (client.GigaWalletBalance{IncomingBalance: "0", CurrentBalance: "0", OutgoingBalance: "0"}) {
		t.Fatalf("balance %+v", balance)
	}

	// Invoices: exact totals, the three views agree.
	created := must[*client.PublicInvoice](t, "create invoice")(c.CreateInvoice(ctx, "shop 1", shopInvoice))
	if created.ID == "" || created.PayToAddress != created.ID || created.Total != "3.15" || len(created.Items) != 3 ||
		created.Items[2].Value != "-0.1" || created.RequiredConfirmations != 6 || created.Status != "unpaid" || created.ExpiresAt != nil {
		t.Fatalf("created %+v", created)
	}
	admin := must[*client.Invoice](t, "get invoice")(c.GetInvoice(ctx, "shop 1", created.ID))
	if admin.ID != created.ID || admin.Account != account.ID || admin.Total != "3.15" || admin.TotalIncoming != "0" || !admin.Created.Equal(created.Created) {
		t.Fatalf("admin view %+v", admin)
	}
	confirmations := int32(0)
	second := must[*client.PublicInvoice](t, "second invoice")(c.CreateInvoice(ctx, "shop 1", client.InvoiceRequest{
		Items: shopInvoice.Items[:1], RequiredConfirmations: &confirmations, ExpireMinutes: 30}))
	if second.ID == created.ID || second.RequiredConfirmations != 0 || second.ExpiresAt == nil || second.Total != "3" {
		t.Fatalf("second invoice %+v", second)
	}
	page := must[*client.InvoicePage](t, "list invoices")(c.ListInvoices(ctx, "shop 1", 0, 1))
	if len(page.Items) != 1 || page.Items[0].ID != created.ID || page.Cursor == 0 {
		t.Fatalf("first page %+v", page)
	}
	page = must[*client.InvoicePage](t, "list invoices")(c.ListInvoices(ctx, "shop 1", page.Cursor, 0))
	if len(page.Items) != 1 || page.Items[0].ID != second.ID || page.Cursor != 0 {
		t.Fatalf("last page %+v", page)
	}

	// The payer's view, on the public listener without a token and on the admin one.
	anonymous, err := client.New(servers.publicURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range []*client.Client{anonymous, c} {
		public := must[*client.PublicInvoice](t, "public invoice")(api.GetPublicInvoice(ctx, created.ID))
		if public.ID != created.ID || public.Total != "3.15" || len(public.Items) != 3 {
			t.Fatalf("public view %+v", public)
		}
		png := must[[]byte](t, "QR code")(api.GetInvoiceQR(ctx, created.ID, "ff0000", ""))
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n")) {
			t.Fatalf("QR code starts %q", png[:min(8, len(png))])
		}
		envelope := must[*client.ConnectEnvelope](t, "connect")(api.GetInvoiceConnect(ctx, created.ID))
		if envelope.Version != "1.0" || envelope.Payload == "" || len(envelope.PubKey) != 64 || len(envelope.Sig) != 128 {
			t.Fatalf("envelope %+v", envelope)
		}
	}
}

func TestGigaWalletErrors(t *testing.T) {
	servers := startGigaWalletServer(t, nil)
	c := newClient(t, servers.adminURL)
	ctx := testutil.Context(t, callLimit)
	must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(ctx, "shop", client.AccountSettings{}))
	must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(ctx, "other", client.AccountSettings{}))
	other := must[*client.PublicInvoice](t, "other's invoice")(c.CreateInvoice(ctx, "other", shopInvoice))

	_, err := c.GetAccount(ctx, "nobody")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != client.GigaWalletCodeNotFound ||
		!strings.Contains(apiErr.Message, "nobody") || !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown account: %#v", err)
	}
	if _, err := c.GetInvoice(ctx, "shop", other.ID); !errors.Is(err, client.ErrNotFound) || !client.IsCode(err, client.GigaWalletCodeNotFound) {
		t.Fatalf("another account's invoice: %v", err)
	}
	if _, err := c.CreateInvoice(ctx, "nobody", shopInvoice); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("invoice of an unknown account: %v", err)
	}
	bad := client.InvoiceRequest{Items: []client.InvoiceItem{{Type: "item", Name: "x", Value: "1", Quantity: 0}}}
	if _, err := c.CreateInvoice(ctx, "shop", bad); !client.IsCode(err, client.GigaWalletCodeBadRequest) || client.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("quantity 0: %v", err)
	}
	// The client refuses to send an amount it cannot write exactly.
	float := client.InvoiceRequest{Items: []client.InvoiceItem{{Type: "item", Name: "x", Value: "1e-9", Quantity: 1}}}
	if _, err := c.CreateInvoice(ctx, "shop", float); err == nil || client.StatusCode(err) != 0 {
		t.Fatalf("malformed amount: %v", err)
	}
	anonymous, err := client.New(servers.adminURL, client.WithRetryPolicy(client.NoRetries))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anonymous.GetAccount(ctx, "shop"); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("no token: %v", err)
	}
	if n := invoiceCount(t, ctx, c, "shop"); n != 0 {
		t.Fatalf("%d invoices after refusals, want 0", n)
	}
}

// invoiceCount counts the account's invoices (bounded: one page of the largest size).
func invoiceCount(t *testing.T, ctx context.Context, c *client.Client, foreignID string) int {
	t.Helper()
	page := must[*client.InvoicePage](t, "list invoices")(c.ListInvoices(ctx, foreignID, 0, 100))
	return len(page.Items)
}

// TestInvoiceCreateIsNotResentAfterAnUnknownOutcome: the answer to an applied create is lost,
// or the node says not-available after applying it; either way the client makes one attempt
// (a second would create a second invoice) and returns ErrOutcomeUnknown.
func TestInvoiceCreateIsNotResentAfterAnUnknownOutcome(t *testing.T) {
	t.Run("lost answer", func(t *testing.T) {
		servers := startGigaWalletServer(t, nil)
		ctx := testutil.Context(t, callLimit)
		plain := newClient(t, servers.adminURL)
		must[*client.GigaWalletAccount](t, "upsert")(plain.UpsertAccount(ctx, "shop", client.AccountSettings{}))
		lossy := &lossyTransport{next: http.DefaultTransport, drop: dropFirstPost(1)}
		c := newClient(t, servers.adminURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
		var attempts []client.Attempt
		_, err := c.CreateInvoice(recordAttempts(ctx, &attempts), "shop", shopInvoice)
		if !errors.Is(err, client.ErrOutcomeUnknown) || len(attempts) != 1 {
			t.Fatalf("create with a lost answer: %v after %d attempts, want outcome unknown after 1", err, len(attempts))
		}
		if lossy.keys[0] != "" {
			t.Fatalf("a GigaWallet write sent Idempotency-Key %q, which its routes ignore", lossy.keys[0])
		}
		if n := invoiceCount(t, ctx, plain, "shop"); n != 1 {
			t.Fatalf("%d invoices, want the 1 that applied", n)
		}
	})
	t.Run("not-available after applying", func(t *testing.T) {
		servers := startGigaWalletServer(t, serverSays(posts("/invoice", 1, 1), http.StatusServiceUnavailable, client.GigaWalletCodeNotAvailable, true))
		ctx := testutil.Context(t, callLimit)
		c := newClient(t, servers.adminURL)
		must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(ctx, "shop", client.AccountSettings{}))
		var attempts []client.Attempt
		_, err := c.CreateInvoice(recordAttempts(ctx, &attempts), "shop", shopInvoice)
		if !errors.Is(err, client.ErrOutcomeUnknown) || errors.Is(err, client.ErrUnavailable) || len(attempts) != 1 ||
			attempts[0].Code != client.GigaWalletCodeNotAvailable {
			t.Fatalf("create answered not-available: %v, attempts %+v", err, attempts)
		}
		if n := invoiceCount(t, ctx, c, "shop"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
	})
	t.Run("shed before applying is resent", func(t *testing.T) {
		servers := startGigaWalletServer(t, serverSays(posts("/invoice", 1, 1), http.StatusServiceUnavailable, client.CodeOverloaded, false))
		ctx := testutil.Context(t, callLimit)
		c := newClient(t, servers.adminURL)
		must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(ctx, "shop", client.AccountSettings{}))
		var attempts []client.Attempt
		if _, err := c.CreateInvoice(recordAttempts(ctx, &attempts), "shop", shopInvoice); err != nil || len(attempts) != 2 {
			t.Fatalf("create after a shed attempt: %v, attempts %+v", err, attempts)
		}
		if n := invoiceCount(t, ctx, c, "shop"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
	})
}

// TestAccountUpsertIsResentAfterAnUnknownOutcome: a repeated upsert changes nothing more, so a
// lost answer is resent and the call succeeds with the one account.
func TestAccountUpsertIsResentAfterAnUnknownOutcome(t *testing.T) {
	servers := startGigaWalletServer(t, nil)
	ctx := testutil.Context(t, callLimit)
	lossy := &lossyTransport{next: http.DefaultTransport, drop: dropFirstPost(1)}
	c := newClient(t, servers.adminURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
	var attempts []client.Attempt
	account, err := c.UpsertAccount(recordAttempts(ctx, &attempts), "shop", client.AccountSettings{PayoutFrequency: client.String("60")})
	if err != nil || len(attempts) != 2 || !errors.Is(attempts[0].Err, errConnectionLost) || account.PayoutFrequency != "60" {
		t.Fatalf("upsert with a lost answer: %+v, %v, attempts %+v", account, err, attempts)
	}
	if got := must[*client.GigaWalletAccount](t, "get")(c.GetAccount(ctx, "shop")); got.ID != account.ID {
		t.Fatalf("account %+v, want %+v", got, account)
	}
}

func TestDogeAmount(t *testing.T) {
	for _, tc := range []struct {
		amount client.DogeAmount
		koinu  string
	}{
		{"0", "0"}, {"1", "100000000"}, {"1.5", "150000000"}, {"0.00000001", "1"}, {"-0.1", "-10000000"},
		{"1000000000000000000", "100000000000000000000000000"}, {"24.89774000", "2489774000"},
	} {
		koinu, err := tc.amount.Koinu()
		if err != nil || koinu.String() != tc.koinu {
			t.Errorf("%q.Koinu() = %v, %v; want %s", tc.amount, koinu, err, tc.koinu)
		}
	}
	for _, bad := range []client.DogeAmount{"", "-", ".5", "1.", "1.123456789", "1e2", "+1", "1,5", " 1", "0x10", "--1",
		client.DogeAmount(strings.Repeat("9", 41))} {
		if _, err := bad.Koinu(); !errors.Is(err, client.ErrDogeAmountSyntax) {
			t.Errorf("%q.Koinu() error = %v, want ErrDogeAmountSyntax", bad, err)
		}
		if _, err := json.Marshal(bad); err == nil {
			t.Errorf("%q marshalled", bad)
		}
	}
	for koinu, want := range map[int64]client.DogeAmount{0: "0", 1: "0.00000001", 150_000_000: "1.5", -10_000_000: "-0.1", 2489774000: "24.89774"} {
		if got := client.DogeAmountFromKoinu(koinu); got != want {
			t.Errorf("DogeAmountFromKoinu(%d) = %q, want %q", koinu, got, want)
		}
		if back, _ := want.Koinu(); back.Cmp(big.NewInt(koinu)) != 0 {
			t.Errorf("%q.Koinu() = %v, want %d", want, back, koinu)
		}
	}
	var decoded struct{ A, B, C client.DogeAmount }
	if err := json.Unmarshal([]byte(`{"A":"1.5","B":2.25,"C":null}`), &decoded); err != nil || decoded.A != "1.5" || decoded.B != "2.25" || decoded.C != "" {
		t.Fatalf("decoded %+v, %v", decoded, err)
	}
	if data, err := json.Marshal(client.DogeAmount("1.5")); err != nil || string(data) != `"1.5"` {
		t.Fatalf("marshal = %s, %v", data, err)
	}
}

// TestKeyedGigaWalletWritesAreResent: under WithIdempotencyKey, an invoice create whose answer
// was lost (or that the node answered not-available after applying) is resent with the same key
// and answered the one invoice (Replayed); a later call with the key answers it again, and the
// key with another request is already-exists. Payout calls send the key the same way.
func TestKeyedGigaWalletWritesAreResent(t *testing.T) {
	t.Run("lost answer", func(t *testing.T) {
		servers := startGigaWalletServer(t, nil)
		ctx := testutil.Context(t, callLimit)
		plain := newClient(t, servers.adminURL)
		must[*client.GigaWalletAccount](t, "upsert")(plain.UpsertAccount(ctx, "shop", client.AccountSettings{}))
		lossy := &lossyTransport{next: http.DefaultTransport, drop: dropFirstPost(1)}
		c := newClient(t, servers.adminURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
		keyed := client.WithIdempotencyKey(ctx, "order-1042")
		var attempts []client.Attempt
		invoice, err := c.CreateInvoice(recordAttempts(keyed, &attempts), "shop", shopInvoice)
		if err != nil || len(attempts) != 2 || !attempts[1].Replayed {
			t.Fatalf("keyed create with a lost answer: %v, attempts %+v", err, attempts)
		}
		if len(lossy.keys) != 2 || lossy.keys[0] != "order-1042" || lossy.keys[1] != "order-1042" {
			t.Fatalf("keys sent %q", lossy.keys)
		}
		if n := invoiceCount(t, ctx, plain, "shop"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
		again := must[*client.PublicInvoice](t, "create again")(plain.CreateInvoice(keyed, "shop", shopInvoice))
		if again.ID != invoice.ID {
			t.Fatalf("the key answered invoice %s, then %s", invoice.ID, again.ID)
		}
		other := shopInvoice
		one := int32(1)
		other.RequiredConfirmations = &one
		var apiErr *client.Error
		if _, err := plain.CreateInvoice(keyed, "shop", other); !errors.As(err, &apiErr) || apiErr.Code != client.GigaWalletCodeAlreadyExists {
			t.Fatalf("the key with another request: %v", err)
		}
		// Unkeyed calls send no key.
		must[*client.PublicInvoice](t, "create")(c.CreateInvoice(ctx, "shop", shopInvoice))
		if got := lossy.keys[len(lossy.keys)-1]; got != "" {
			t.Fatalf("an unkeyed create sent Idempotency-Key %q", got)
		}
	})
	t.Run("not-available after applying", func(t *testing.T) {
		servers := startGigaWalletServer(t, serverSays(posts("/invoice", 1, 1), http.StatusServiceUnavailable, client.GigaWalletCodeNotAvailable, true))
		ctx := testutil.Context(t, callLimit)
		c := newClient(t, servers.adminURL)
		must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(ctx, "shop", client.AccountSettings{}))
		var attempts []client.Attempt
		if _, err := c.CreateInvoice(recordAttempts(client.WithIdempotencyKey(ctx, "k"), &attempts), "shop", shopInvoice); err != nil ||
			len(attempts) != 2 || !attempts[1].Replayed {
			t.Fatalf("keyed create answered not-available: %v, attempts %+v", err, attempts)
		}
		if n := invoiceCount(t, ctx, c, "shop"); n != 1 {
			t.Fatalf("%d invoices, want 1", n)
		}
	})
	t.Run("payouts send the key", func(t *testing.T) {
		servers := startGigaWalletServer(t, nil)
		ctx := testutil.Context(t, callLimit)
		lossy := &lossyTransport{next: http.DefaultTransport, drop: func(*http.Request, int) bool { return false }}
		c := newClient(t, servers.adminURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
		must[*client.GigaWalletAccount](t, "upsert")(c.UpsertAccount(client.WithIdempotencyKey(ctx, "u"), "shop", client.AccountSettings{}))
		keyed := client.WithIdempotencyKey(ctx, "p")
		_, _ = c.Pay(keyed, "shop", client.PayRequest{To: "nothing", Amount: nil})
		_, _ = c.PayTx(keyed, "shop", client.PayRequest{})
		_, _ = c.PayInvoiceFrom(keyed, "nXXX", "shop")
		_, _ = c.RefundInvoice(keyed, "shop", "nXXX", client.RefundRequest{To: "x"})
		if want := []string{"", "p", "p", "p", "p"}; strings.Join(lossy.keys, ",") != strings.Join(want, ",") {
			t.Fatalf("keys sent %q, want %q", lossy.keys, want)
		}
	})
}
