package httpapi_test

import (
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// newGigaWalletServer is the admin handler with the GigaWallet API on, over a ledger without
// Raft, with a fixed test seed on testnet.
func newGigaWalletServer(t *testing.T) (*apiClient, *httpapitest.LedgerBackend, *dogecoin.Keychain) {
	t.Helper()
	seed, err := dogecoin.ParseSeed(strings.Repeat("5a", 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, dogecoin.Testnet)
	if err != nil {
		t.Fatal(err)
	}
	backend := httpapitest.NewLedgerBackend(t)
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: &httpapi.GigaWalletConfig{
		ProjectID: "gigawallet", AssetID: "doge", Network: dogecoin.Testnet, Keys: keys}}, backend, testLogger(t), nil)
	return &apiClient{t: t, handler: handler, token: testToken}, backend, keys
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
}
