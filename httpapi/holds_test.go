package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
)

// TestHoldsOverHTTP is the check: hold, capture part (the rest is released), a second
// capture is refused with the hold's state, an expired hold frees its amount; the invariant
// checker runs over the ledger afterwards.
func TestHoldsOverHTTP(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund",
		"operations": []any{map[string]any{"type": "issue", "to": f.walletA, "amount": 1000}}}).expect(201)

	// Place a hold: the balance stays, available shrinks, the operation names the hold.
	var placed cloudwallet.Transaction
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "hold-1",
		"operations": []any{map[string]any{"type": "hold", "from": f.walletA, "amount": "600"}}}).expect(201).decode(&placed)
	holdID := placed.Operations[0].HoldID
	if placed.Operations[0].Type != "hold" || holdID == "" {
		t.Fatalf("hold operation %+v", placed.Operations[0])
	}
	// A hold that fails (more than available) places nothing and shows no hold ID.
	var failed struct {
		Transaction cloudwallet.Transaction `json:"transaction"`
	}
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "hold-too-much",
		"operations": []any{map[string]any{"type": "hold", "from": f.walletA, "amount": "5000"}}}).
		expectError(422, "InsufficientFunds").decode(&failed)
	if failed.Transaction.Status != "failed" || failed.Transaction.Operations[0].HoldID != "" {
		t.Fatalf("failed hold transaction %+v", failed.Transaction)
	}
	wallet := func(id string) cloudwallet.Wallet {
		var w cloudwallet.Wallet
		c.do("GET", "/projects/shop/wallets/"+id, nil).expect(200).decode(&w)
		return w
	}
	if w := wallet(f.walletA); w.Balance.String() != "1000" || w.Held.String() != "600" || w.Available.String() != "400" {
		t.Fatalf("after hold: %+v", w)
	}
	var hold cloudwallet.Hold
	c.do("GET", "/projects/shop/holds/"+holdID, nil).expect(200).decode(&hold)
	if hold.Status != "active" || hold.Amount.String() != "600" || hold.WalletID != f.walletA {
		t.Fatalf("hold %+v", hold)
	}

	// Capture 250 into wallet B; the other 350 is released.
	var captured cloudwallet.HoldResolution
	c.do("POST", "/projects/shop/holds/"+holdID+"/capture", map[string]any{"to": f.walletB, "amount": 250}).
		expect(200).decode(&captured)
	if captured.Hold.Status != "captured" || captured.Hold.CapturedAmount.String() != "250" || captured.Transaction == nil ||
		captured.Transaction.Status != "completed" {
		t.Fatalf("capture %+v", captured)
	}
	if a, b := wallet(f.walletA), wallet(f.walletB); a.Balance.String() != "750" || a.Held.String() != "0" || b.Balance.String() != "250" {
		t.Fatalf("after capture: A %+v B %+v", a, b)
	}

	// A second capture, or a release, is refused with the hold's state; nothing moves.
	proposals := backend.Proposals()
	var refused struct {
		Hold *cloudwallet.Hold `json:"hold"`
	}
	c.do("POST", "/projects/shop/holds/"+holdID+"/capture", map[string]any{"to": f.walletB}).
		expectError(http.StatusConflict, "HoldResolved").decode(&refused)
	if refused.Hold == nil || refused.Hold.Status != "captured" {
		t.Fatalf("second capture: %+v", refused)
	}
	c.do("POST", "/projects/shop/holds/"+holdID+"/release", nil).expectError(http.StatusConflict, "HoldResolved")
	if backend.Proposals() != proposals+2 || wallet(f.walletB).Balance.String() != "250" {
		t.Fatal("a refused resolution moved money")
	}

	// Release gives the whole amount back.
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "hold-2",
		"operations": []any{map[string]any{"type": "hold", "from": f.walletA, "amount": 700}}}).expect(201).decode(&placed)
	c.do("POST", "/projects/shop/holds/"+placed.Operations[0].HoldID+"/release", nil).expect(200)
	if w := wallet(f.walletA); w.Available.String() != "750" {
		t.Fatalf("after release: %+v", w)
	}

	// An expiring hold frees its amount at the first write at or after its time.
	expiresAt := backend.NowMs() + 60_000
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "hold-3",
		"operations": []any{map[string]any{"type": "hold", "from": f.walletA, "amount": 500, "expiresAt": expiresAt}}}).
		expect(201).decode(&placed)
	if w := wallet(f.walletA); w.Available.String() != "250" {
		t.Fatalf("before expiry: %+v", w)
	}
	backend.Advance(60_000)
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "tick",
		"operations": []any{map[string]any{"type": "issue", "to": f.systemWallet, "amount": 1}}}).expect(201)
	if w := wallet(f.walletA); w.Available.String() != "750" || w.Held.String() != "0" {
		t.Fatalf("after expiry: %+v", w)
	}
	c.do("GET", "/projects/shop/holds/"+placed.Operations[0].HoldID, nil).expect(200).decode(&hold)
	if hold.Status != "expired" || hold.ResolvedAt < expiresAt {
		t.Fatalf("expired hold %+v", hold)
	}

	// Bad input: expiresAt on another type, a hold with a to, an unknown hold.
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "bad-1",
		"operations": []any{map[string]any{"type": "issue", "to": f.walletA, "amount": 1, "expiresAt": expiresAt + 1e6}}}).
		expectError(400, "InvalidArgument")
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "bad-2",
		"operations": []any{map[string]any{"type": "hold", "from": f.walletA, "to": f.walletB, "amount": 1}}}).
		expectError(400, "InvalidArgument")
	c.do("POST", "/projects/shop/holds/h0000nosuchhold.0/release", nil).expectError(404, "HoldNotFound")
	c.do("GET", "/projects/shop/holds/"+fmt.Sprintf("h%s.9", placed.ID[1:]), nil).expectError(404, "HoldNotFound")

	if err := backend.Ledger.CheckInvariants(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
}

// TestIdempotencyKeyOverHTTP: a retried wallet creation with the same key opens one wallet and
// answers the same; the same key with another body is refused.
func TestIdempotencyKeyOverHTTP(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	keyed := c.withHeader("Idempotency-Key", "open-wallet-1")
	body := map[string]any{"customerId": f.customerA, "assetId": f.assetID, "name": "savings"}
	first := keyed.do("POST", "/projects/shop/wallets", body).expect(201)
	second := keyed.do("POST", "/projects/shop/wallets", body).expect(201)
	if string(first.body) != string(second.body) || second.header.Get("Idempotent-Replayed") != "true" ||
		first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("replay differs:\n%s\n%s (%v)", first.body, second.body, second.header)
	}
	var wallets struct{ Items []cloudwallet.Wallet }
	c.do("GET", "/projects/shop/customers/"+f.customerA+"/wallets", nil).expect(200).decode(&wallets)
	savings := 0
	for _, w := range wallets.Items {
		if w.Name == "savings" {
			savings++
		}
	}
	if savings != 1 {
		t.Fatalf("%d savings wallets after a retried creation, want 1", savings)
	}
	body["name"] = "other"
	keyed.do("POST", "/projects/shop/wallets", body).expectError(http.StatusConflict, "IdempotencyKeyMismatch")
	// The key is per project and per request: the same key on another route is a mismatch too.
	keyed.do("PUT", "/projects/shop/wallets/"+f.walletA+"/name", map[string]any{"name": "x"}).
		expectError(http.StatusConflict, "IdempotencyKeyMismatch")
	// Two keys, or an unprintable one, are refused before anything is proposed.
	proposals := backend.Proposals()
	c.withHeader("Idempotency-Key", "a\x01b").do("POST", "/projects/shop/wallets", body).expectError(400, "InvalidArgument")
	if backend.Proposals() != proposals {
		t.Fatal("a bad key reached the ledger")
	}
}
