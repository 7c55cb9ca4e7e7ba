package httpapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/prometheus/client_golang/prometheus"
)

// testToken is the admin token of the test servers.
const testToken = "s3cret-token"

// apiClient sends requests to a handler through httptest, as a client with the token would: to
// Host testHost, with Content-Type application/json on every body and every POST, PUT or PATCH.
type apiClient struct {
	t       *testing.T
	handler http.Handler
	token   string
	// header, when set, is added to (and replaces the same headers of) every request.
	header http.Header
}

// testHost is the Host the test client names: loopback, as a local client's would be.
const testHost = "localhost:8081"

// response is one answer, with helpers to read it.
type response struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

func newTestServer(t *testing.T) (*apiClient, *httpapitest.LedgerBackend, *prometheus.Registry) {
	t.Helper()
	backend := httpapitest.NewLedgerBackend(t)
	registry := prometheus.NewRegistry()
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, backend, testLogger(t), registry)
	return &apiClient{t: t, handler: handler, token: testToken}, backend, registry
}

// testLogger sends the handler's logs at info and up to the test log.
func testLogger(t *testing.T) *slog.Logger { return testutil.LoggerAt(t, slog.LevelInfo) }

// do sends body: nil (no body), a string or []byte (sent as is), or anything else (as JSON).
func (c *apiClient) do(method, path string, body any) *response {
	c.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("marshal request: %v", err)
		}
		reader = bytes.NewReader(encoded)
	}
	request := httptest.NewRequest(method, path, reader)
	request.Host = testHost
	if reader != nil || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		request.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		request.Header.Set("Authorization", "Bearer "+c.token)
	}
	for name, values := range c.header {
		request.Header.Del(name)
		for _, value := range values {
			request.Header.Add(name, value)
		}
	}
	if host := c.header.Get("Host"); host != "" {
		request.Host = host
	}
	recorder := httptest.NewRecorder()
	c.handler.ServeHTTP(recorder, request)
	return &response{t: c.t, status: recorder.Code, header: recorder.Header(), body: recorder.Body.Bytes()}
}

// doAtOnce sends the same request n times at once and returns the answers in order.
func (c *apiClient) doAtOnce(n int, method, path string, body any) []*response {
	answers := make([]*response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = c.do(method, path, body)
		}()
	}
	wg.Wait()
	return answers
}

// expect fails the test unless the status is want; it returns r for chaining.
func (r *response) expect(want int) *response {
	r.t.Helper()
	if r.status != want {
		r.t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
	return r
}

// expectError checks the status and the envelope's code.
func (r *response) expectError(status int, code string) *response {
	r.t.Helper()
	r.expect(status)
	var envelope struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &envelope); err != nil {
		r.t.Fatalf("error body %s is not the envelope: %v", r.body, err)
	}
	if envelope.Error.Code != code || envelope.Error.Message == "" {
		r.t.Fatalf("error code %q message %q, want code %q; body %s", envelope.Error.Code, envelope.Error.Message, code, r.body)
	}
	return r
}

// decode unmarshals the body into v.
func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.body, err)
	}
}

// object decodes the body as a JSON object, numbers kept exact.
func (r *response) object() map[string]any {
	r.t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(r.body))
	decoder.UseNumber()
	var v map[string]any
	if err := decoder.Decode(&v); err != nil {
		r.t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

// fixture is a project with one asset, two customers, their wallets and a system wallet.
type fixture struct {
	projectID, assetID   string
	customerA, customerB string
	walletA, walletB     string
	systemWallet         string
	otherProjectID       string
	otherProjectWallet   string
}

func setUp(t *testing.T, c *apiClient) fixture {
	t.Helper()
	f := fixture{projectID: "shop", assetID: "usd", customerA: "alice@example.com", customerB: "42"}
	c.do("POST", "/projects", map[string]any{"id": f.projectID, "name": "Shop"}).expect(201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": f.assetID, "name": "US dollar", "code": "USD", "fractions": 100}).expect(201)
	for _, customer := range []string{f.customerA, f.customerB} {
		c.do("POST", "/projects/shop/customers", map[string]any{"id": customer, "name": "N " + customer}).expect(200)
	}
	var w cloudwallet.Wallet
	c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": f.customerA, "assetId": "usd", "name": "main"}).expect(201).decode(&w)
	f.walletA = w.ID
	c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": f.customerB, "assetId": "usd"}).expect(201).decode(&w)
	f.walletB = w.ID
	c.do("POST", "/projects/shop/system-wallets", map[string]any{"assetId": "usd", "name": "fees"}).expect(201).decode(&w)
	f.systemWallet = w.ID

	f.otherProjectID = "other"
	c.do("POST", "/projects", map[string]any{"id": "other", "name": "Other"}).expect(201)
	c.do("POST", "/projects/other/assets", map[string]any{"id": "usd", "name": "US dollar", "code": "USD", "fractions": 100}).expect(201)
	c.do("POST", "/projects/other/system-wallets", map[string]any{"assetId": "usd"}).expect(201).decode(&w)
	f.otherProjectWallet = w.ID
	return f
}

func transaction(referenceID string, operations ...map[string]any) map[string]any {
	return map[string]any{"referenceId": referenceID, "operations": operations}
}

func issue(to string, amount any) map[string]any {
	return map[string]any{"type": "issue", "to": to, "amount": amount}
}

func transfer(from, to string, amount any) map[string]any {
	return map[string]any{"type": "transfer", "from": from, "to": to, "amount": amount}
}

func redeem(from string, amount any) map[string]any {
	return map[string]any{"type": "redeem", "from": from, "amount": amount}
}

// balance reads a wallet's balance as decimal text.
func balance(c *apiClient, projectID, walletID string) string {
	c.t.Helper()
	w := c.do("GET", "/projects/"+projectID+"/wallets/"+walletID, nil).expect(200).object()
	return fmt.Sprint(w["balance"])
}

func TestEveryRouteHappyPath(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)

	// Projects.
	var created cloudwallet.Project
	c.do("POST", "/projects", map[string]any{"name": "Generated"}).expect(201).decode(&created)
	if !validSlottedID(created.ID, 'p') || len(created.ID) != 25 || created.Name != "Generated" {
		t.Fatalf("generated project %+v", created)
	}
	var projects struct{ Items []cloudwallet.Project }
	c.do("GET", "/projects", nil).expect(200).decode(&projects)
	if len(projects.Items) != 3 {
		t.Fatalf("projects %+v", projects)
	}
	var project cloudwallet.Project
	c.do("GET", "/projects/shop", nil).expect(200).decode(&project)
	if project.Name != "Shop" || len(project.Assets) != 1 || project.Assets[0].ID != "usd" {
		t.Fatalf("project %+v", project)
	}
	c.do("PUT", "/projects/shop/name", map[string]any{"name": "Shop 2"}).expect(200).decode(&project)
	if project.Name != "Shop 2" {
		t.Fatalf("renamed project %+v", project)
	}
	if got := c.do("GET", "/projects/"+created.ID, nil).expect(200).object(); got["assets"] == nil {
		t.Fatalf("project without assets shows no assets list: %v", got)
	}

	// Assets.
	var asset cloudwallet.Asset
	c.do("POST", "/projects/shop/assets", map[string]any{"name": "Hours", "code": "HRS", "fractions": "24"}).expect(400)
	c.do("POST", "/projects/shop/assets", map[string]any{"name": "Hours", "code": "HRS", "fractions": 24}).expect(201).decode(&asset)
	if !validSlottedID(asset.ID, 'a') || asset.Fractions != 24 || asset.Used {
		t.Fatalf("asset %+v", asset)
	}
	hours := asset.ID
	var assets struct{ Items []cloudwallet.Asset }
	c.do("GET", "/projects/shop/assets", nil).expect(200).decode(&assets)
	if len(assets.Items) != 2 {
		t.Fatalf("assets %+v", assets)
	}
	c.do("GET", "/projects/shop/assets/usd", nil).expect(200).decode(&asset)
	if !asset.Used || asset.Code != "USD" {
		t.Fatalf("used asset %+v", asset)
	}
	c.do("PUT", "/projects/shop/assets/usd/name", map[string]any{"name": "Dollar"}).expect(200).decode(&asset)
	if asset.Name != "Dollar" {
		t.Fatalf("renamed asset %+v", asset)
	}
	c.do("DELETE", "/projects/shop/assets/usd", nil).expectError(403, "AssetInUse")
	r := c.do("DELETE", "/projects/shop/assets/"+hours, nil).expect(204)
	if len(r.body) != 0 {
		t.Fatalf("204 with body %q", r.body)
	}
	c.do("GET", "/projects/shop/assets/"+hours, nil).expectError(404, "AssetNotFound")

	// Customers.
	var customer cloudwallet.Customer
	c.do("PUT", "/projects/shop/customers/bob", map[string]any{"name": "Bob"}).expect(200).decode(&customer)
	if customer.ID != "bob" || customer.Name != "Bob" || customer.Status != "active" {
		t.Fatalf("customer %+v", customer)
	}
	c.do("PUT", "/projects/shop/customers/bob", map[string]any{"description": "VIP"}).expect(200).decode(&customer)
	if customer.Name != "Bob" || customer.Description != "VIP" {
		t.Fatalf("partial update lost a field: %+v", customer)
	}
	c.do("PUT", "/projects/shop/customers/bob", nil).expect(200)
	c.do("GET", "/projects/shop/customers/bob", nil).expect(200).decode(&customer)
	if customer.Description != "VIP" {
		t.Fatalf("customer %+v", customer)
	}
	var customers struct {
		Items    []cloudwallet.Customer
		Page     int
		PageSize int
		HasMore  bool
	}
	c.do("GET", "/projects/shop/customers?page=1&pageSize=2", nil).expect(200).decode(&customers)
	if len(customers.Items) != 2 || !customers.HasMore || customers.Page != 1 || customers.PageSize != 2 {
		t.Fatalf("customers page 1 %+v", customers)
	}
	c.do("GET", "/projects/shop/customers?page=2&pageSize=2", nil).expect(200).decode(&customers)
	if len(customers.Items) != 1 || customers.HasMore {
		t.Fatalf("customers page 2 %+v", customers)
	}
	c.do("GET", "/projects/shop/customers?page=1", nil).expect(200).decode(&customers)
	if customers.PageSize != 20 || len(customers.Items) != 3 {
		t.Fatalf("default page size %+v", customers)
	}
	var bobWallet cloudwallet.Wallet
	c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": "bob", "assetId": "usd"}).expect(201).decode(&bobWallet)
	c.do("POST", "/projects/shop/customers/bob/suspend", nil).expect(200).decode(&customer)
	if customer.Status != "suspended" {
		t.Fatalf("suspended %+v", customer)
	}
	c.do("GET", "/projects/shop/wallets/"+bobWallet.ID, nil).expect(200).decode(&bobWallet)
	if bobWallet.Status != "suspended" {
		t.Fatalf("wallet of suspended customer %+v", bobWallet)
	}
	c.do("POST", "/projects/shop/customers/bob/resume", map[string]any{"walletIds": []string{bobWallet.ID}}).expect(200).decode(&customer)
	c.do("GET", "/projects/shop/wallets/"+bobWallet.ID, nil).expect(200).decode(&bobWallet)
	if customer.Status != "active" || bobWallet.Status != "open" {
		t.Fatalf("resumed %+v %+v", customer, bobWallet)
	}
	c.do("POST", "/projects/shop/customers/bob/suspend", "{}").expect(200)
	c.do("POST", "/projects/shop/customers/bob/resume", nil).expect(200)
	var wallets struct{ Items []cloudwallet.Wallet }
	c.do("GET", "/projects/shop/customers/bob/wallets", nil).expect(200).decode(&wallets)
	if len(wallets.Items) != 1 || wallets.Items[0].Status != "suspended" {
		t.Fatalf("bob's wallets %+v", wallets)
	}
	c.do("DELETE", "/projects/shop/customers/bob", nil).expectError(422, "CustomerHasOpenWallets")
	c.do("PUT", "/projects/shop/wallets/"+bobWallet.ID+"/status", map[string]any{"status": "closed"}).expect(200)
	c.do("DELETE", "/projects/shop/customers/bob", nil).expect(204)
	c.do("GET", "/projects/shop/customers/bob", nil).expectError(404, "CustomerNotFound")

	// Wallets.
	w := c.do("GET", "/projects/shop/wallets/"+f.walletA, nil).expect(200).object()
	for _, field := range []string{"id", "projectId", "customerId", "system", "assetId", "name", "description", "status", "balance", "held", "available", "createdAt", "updatedAt"} {
		if _, ok := w[field]; !ok {
			t.Errorf("wallet lacks %q: %v", field, w)
		}
	}
	if !validSlottedID(f.walletA, 'w') || len(f.walletA) != 25 {
		t.Errorf("wallet id %q", f.walletA)
	}
	sw := c.do("GET", "/projects/shop/wallets/"+f.systemWallet, nil).expect(200).object()
	if _, has := sw["customerId"]; has || sw["system"] != true {
		t.Errorf("system wallet %v", sw)
	}
	c.do("GET", "/projects/shop/system-wallets", nil).expect(200).decode(&wallets)
	if len(wallets.Items) != 1 || wallets.Items[0].ID != f.systemWallet {
		t.Fatalf("system wallets %+v", wallets)
	}
	c.do("GET", "/projects/shop/customers/"+f.customerA+"/wallets", nil).expect(200).decode(&wallets)
	if len(wallets.Items) != 1 || wallets.Items[0].ID != f.walletA {
		t.Fatalf("alice's wallets %+v", wallets)
	}
	var wallet cloudwallet.Wallet
	c.do("PUT", "/projects/shop/wallets/"+f.walletA+"/name", map[string]any{"name": "savings"}).expect(200).decode(&wallet)
	c.do("PUT", "/projects/shop/wallets/"+f.walletA+"/description", map[string]any{"description": "for a rainy day"}).expect(200).decode(&wallet)
	if wallet.Name != "savings" || wallet.Description != "for a rainy day" {
		t.Fatalf("wallet %+v", wallet)
	}
	c.do("PUT", "/projects/shop/wallets/"+f.walletB+"/status", map[string]any{"status": "suspended"}).expect(200).decode(&wallet)
	if wallet.Status != "suspended" {
		t.Fatalf("wallet %+v", wallet)
	}
	c.do("PUT", "/projects/shop/wallets/"+f.walletB+"/status", map[string]any{"status": "open"}).expect(200)

	// Transactions and entries.
	startMs := backend.NowMs()
	var tx cloudwallet.Transaction
	c.do("POST", "/projects/shop/transactions", transaction("order-1", issue(f.walletA, 1000), transfer(f.walletA, f.walletB, "300"), redeem(f.walletB, 100))).
		expect(201).decode(&tx)
	if tx.Status != "completed" || !validSlottedID(tx.ID, 't') || len(tx.Operations) != 3 || tx.ReferenceID != "order-1" {
		t.Fatalf("transaction %+v", tx)
	}
	if balance(c, "shop", f.walletA) != "700" || balance(c, "shop", f.walletB) != "200" {
		t.Fatalf("balances %s %s", balance(c, "shop", f.walletA), balance(c, "shop", f.walletB))
	}
	backend.Advance(1000)
	var tx2 cloudwallet.Transaction
	c.do("POST", "/projects/shop/transactions", transaction("order-2", transfer(f.walletB, f.systemWallet, 50))).expect(201).decode(&tx2)
	var got cloudwallet.Transaction
	c.do("GET", "/projects/shop/transactions/"+tx.ID, nil).expect(200).decode(&got)
	if got.ID != tx.ID || got.Status != "completed" {
		t.Fatalf("get transaction %+v", got)
	}
	c.do("GET", "/projects/shop/transactions/t0000nosuchtransaction0", nil).expectError(404, "TransactionNotFound")
	var txPage struct {
		Items   []cloudwallet.Transaction
		HasMore bool
	}
	path := fmt.Sprintf("/projects/shop/transactions?page=1&pageSize=10&from=%d&to=%d", startMs, startMs+1000)
	c.do("GET", path, nil).expect(200).decode(&txPage)
	if len(txPage.Items) != 2 || txPage.Items[0].ID != tx.ID || txPage.Items[1].ID != tx2.ID || txPage.HasMore {
		t.Fatalf("transactions %+v", txPage)
	}
	path = fmt.Sprintf("/projects/shop/transactions?page=1&from=%d&to=%d", startMs, startMs+999)
	c.do("GET", path, nil).expect(200).decode(&txPage)
	if len(txPage.Items) != 1 || txPage.Items[0].ID != tx.ID {
		t.Fatalf("transactions in the first second %+v", txPage)
	}
	var entries struct {
		Items   []cloudwallet.Entry
		HasMore bool
	}
	path = fmt.Sprintf("/projects/shop/wallets/%s/entries?page=1&pageSize=1&from=%d&to=%d", f.walletB, startMs, startMs+1000)
	c.do("GET", path, nil).expect(200).decode(&entries)
	if len(entries.Items) != 1 || !entries.HasMore || entries.Items[0].Type != "credit" || entries.Items[0].BalanceAfter.String() != "300" {
		t.Fatalf("entries page 1 %+v", entries)
	}
	path = fmt.Sprintf("/projects/shop/wallets/%s/entries?page=1&pageSize=10&from=%d&to=%d", f.walletB, startMs, startMs+1000)
	c.do("GET", path, nil).expect(200).decode(&entries)
	types := []string{}
	for _, e := range entries.Items {
		types = append(types, e.Type+":"+e.BalanceAfter.String())
	}
	if strings.Join(types, ",") != "credit:300,redeem:200,debit:150" {
		t.Fatalf("entries %v", types)
	}
	// from and to may be left out: no bound on that side.
	for _, query := range []string{"page=1", "page=1&from=0", fmt.Sprintf("page=1&to=%d", startMs+1000), fmt.Sprintf("page=1&from=%d", startMs)} {
		var open struct{ Items []cloudwallet.Entry }
		c.do("GET", fmt.Sprintf("/projects/shop/wallets/%s/entries?%s", f.walletB, query), nil).expect(200).decode(&open)
		if len(open.Items) != len(entries.Items) {
			t.Errorf("entries?%s: %d items, want %d", query, len(open.Items), len(entries.Items))
		}
	}
	if r := c.do("GET", fmt.Sprintf("/projects/shop/transactions?page=1&to=%d", startMs-1), nil).expect(200); !strings.Contains(string(r.body), `"items":[]`) {
		t.Errorf("transactions before the first: %s", r.body)
	}
}

// TestSeedExample is seed 001's W1 = 5, W2 = 7 example: the operations run in order and the
// balance may not dip below zero after any of them.
func TestSeedExample(t *testing.T) {
	c, _, _ := newTestServer(t)
	f := setUp(t, c)
	w1, w2 := f.walletA, f.walletB
	c.do("POST", "/projects/shop/transactions", transaction("setup", issue(w1, 5), issue(w2, 7))).expect(201)

	// Transfer 11 from W1, then issue 6 to W1: fails at operation 0, nothing changes.
	r := c.do("POST", "/projects/shop/transactions", transaction("transfer-first", transfer(w1, w2, 11), issue(w1, 6)))
	r.expectError(422, "InsufficientFunds")
	var failed struct {
		Transaction *cloudwallet.Transaction `json:"transaction"`
	}
	r.decode(&failed)
	if failed.Transaction == nil || failed.Transaction.Status != "failed" ||
		failed.Transaction.FailedOperationIndex == nil || *failed.Transaction.FailedOperationIndex != 0 || failed.Transaction.FailureReason != string(ledger.CodeInsufficientFunds) {
		t.Fatalf("failed transaction %s", r.body)
	}
	if balance(c, "shop", w1) != "5" || balance(c, "shop", w2) != "7" {
		t.Fatalf("a failed transaction changed balances: %s %s", balance(c, "shop", w1), balance(c, "shop", w2))
	}
	var stored cloudwallet.Transaction
	c.do("GET", "/projects/shop/transactions/"+failed.Transaction.ID, nil).expect(200).decode(&stored)
	if stored.Status != "failed" {
		t.Fatalf("stored failed transaction %+v", stored)
	}

	// Issue first, then transfer: completes, W1 = 0, W2 = 18.
	c.do("POST", "/projects/shop/transactions", transaction("issue-first", issue(w1, 6), transfer(w1, w2, 11))).expect(201)
	if balance(c, "shop", w1) != "0" || balance(c, "shop", w2) != "18" {
		t.Fatalf("balances %s %s, want 0 18", balance(c, "shop", w1), balance(c, "shop", w2))
	}
}

func TestIdempotentRetry(t *testing.T) {
	c, _, registry := newTestServer(t)
	f := setUp(t, c)
	body := transaction("order-7", issue(f.walletA, 10))
	var first cloudwallet.Transaction
	c.do("POST", "/projects/shop/transactions", body).expect(201).decode(&first)

	// The same request again: 409 with the stored transaction, applied once.
	r := c.do("POST", "/projects/shop/transactions", body).expectError(409, "DuplicateReferenceId")
	var duplicate struct {
		Transaction *cloudwallet.Transaction `json:"transaction"`
	}
	r.decode(&duplicate)
	if duplicate.Transaction == nil || duplicate.Transaction.ID != first.ID || duplicate.Transaction.Status != "completed" {
		t.Fatalf("duplicate answer %s", r.body)
	}
	// The amount as a string is the same body.
	c.do("POST", "/projects/shop/transactions", transaction("order-7", issue(f.walletA, "10"))).expectError(409, "DuplicateReferenceId")
	if balance(c, "shop", f.walletA) != "10" {
		t.Fatalf("retry applied twice: balance %s", balance(c, "shop", f.walletA))
	}

	// A different body under the same referenceId is a mismatch, and applies nothing.
	c.do("POST", "/projects/shop/transactions", transaction("order-7", issue(f.walletA, 11))).expectError(409, "ReferenceIdMismatch")
	if balance(c, "shop", f.walletA) != "10" {
		t.Fatalf("mismatch applied: balance %s", balance(c, "shop", f.walletA))
	}

	// A failed transaction consumes its referenceId: the retry answers the same failure.
	c.do("POST", "/projects/shop/transactions", transaction("order-8", redeem(f.walletB, 1))).expectError(422, "InsufficientFunds")
	c.do("POST", "/projects/shop/transactions", transaction("order-8", redeem(f.walletB, 1))).expectError(409, "DuplicateReferenceId")

	// The metrics counted each outcome.
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, family := range families {
		if family.GetName() != "gigaledger_transactions_total" {
			continue
		}
		for _, metric := range family.GetMetric() {
			labels := ""
			for _, label := range metric.GetLabel() {
				labels += label.GetName() + "=" + label.GetValue() + ","
			}
			counts[labels] = metric.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"outcome=completed,reason=,":                     1,
		"outcome=duplicate,reason=DuplicateReferenceId,": 3,
		"outcome=duplicate,reason=ReferenceIdMismatch,":  1,
		"outcome=failed,reason=InsufficientFunds,":       1,
	}
	for labels, n := range want {
		if counts[labels] != n {
			t.Errorf("transactions_total{%s} = %v, want %v (all: %v)", labels, counts[labels], n, counts)
		}
	}
}

func TestLargestAmountIsExact(t *testing.T) {
	c, _, _ := newTestServer(t)
	f := setUp(t, c)
	const max = "340282366920938463463374607431768211455" // 2^128 - 1
	c.do("POST", "/projects/shop/transactions", `{"referenceId":"big","operations":[{"type":"issue","to":"`+f.walletA+`","amount":`+max+`}]}`).expect(201)
	r := c.do("GET", "/projects/shop/wallets/"+f.walletA, nil).expect(200)
	if !bytes.Contains(r.body, []byte(`"balance":`+max+`,`)) {
		t.Fatalf("balance not exact: %s", r.body)
	}
	c.do("POST", "/projects/shop/transactions", transaction("more", issue(f.walletA, 1))).expectError(422, "BalanceOverflow")
}

// ledgerState is every read the API offers about the fixture, to prove a refused request
// changed nothing.
func ledgerState(c *apiClient, f fixture) string {
	c.t.Helper()
	var b strings.Builder
	for _, path := range []string{
		"/projects",
		"/projects/shop",
		"/projects/other",
		"/projects/shop/customers?page=1&pageSize=1000",
		"/projects/shop/customers/" + f.customerA + "/wallets",
		"/projects/shop/customers/" + f.customerB + "/wallets",
		"/projects/shop/system-wallets",
		"/projects/other/system-wallets",
		"/projects/shop/transactions?page=1&pageSize=1000&from=0&to=9223372036854775807",
		"/projects/shop/wallets/" + f.walletA + "/entries?page=1&pageSize=1000&from=0&to=9223372036854775807",
		"/projects/shop/wallets/" + f.walletB + "/entries?page=1&pageSize=1000&from=0&to=9223372036854775807",
	} {
		r := c.do("GET", path, nil).expect(200)
		b.Write(r.body)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestBadInputChangesNothing(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	c.do("POST", "/projects/shop/transactions", transaction("seed", issue(f.walletA, 50))).expect(201)
	before := ledgerState(c, f)
	tooMany := make([]map[string]any, 101)
	for i := range tooMany {
		tooMany[i] = issue(f.walletA, 1)
	}
	transactionWith := func(amount string) string {
		return `{"referenceId":"bad","operations":[{"type":"transfer","from":"` + f.walletA + `","to":"` + f.walletB + `","amount":` + amount + `}]}`
	}
	huge := `{"referenceId":"big","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	wA := "/projects/shop/wallets/" + f.walletA
	cases := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		// reachesFSM marks refusals the fsm makes (unknown or foreign wallets): the handler
		// cannot know, so it proposes; nothing may change all the same.
		reachesFSM bool
	}{
		{"malformed JSON", "POST", "/projects/shop/transactions", `{"referenceId":"bad",`, 400, "InvalidJSON", false},
		{"not an object", "POST", "/projects/shop/transactions", `[1,2]`, 400, "InvalidJSON", false},
		{"trailing data", "POST", "/projects/shop/transactions", transactionWith("1") + `{}`, 400, "InvalidJSON", false},
		{"empty body", "POST", "/projects/shop/transactions", "", 400, "InvalidJSON", false},
		{"wrong type referenceId", "POST", "/projects/shop/transactions", `{"referenceId":7,"operations":[]}`, 400, "InvalidJSON", false},
		{"wrong type operations", "POST", "/projects/shop/transactions", `{"referenceId":"x","operations":{}}`, 400, "InvalidJSON", false},
		{"unknown field", "POST", "/projects/shop/transactions", `{"referenceId":"x","operations":[],"memo":"hi"}`, 400, "InvalidJSON", false},
		{"fractional amount", "POST", "/projects/shop/transactions", transactionWith("1.5"), 400, "InvalidAmount", false},
		{"fractional amount string", "POST", "/projects/shop/transactions", transactionWith(`"1.5"`), 400, "InvalidAmount", false},
		{"exponent amount", "POST", "/projects/shop/transactions", transactionWith("1e3"), 400, "InvalidAmount", false},
		{"zero amount", "POST", "/projects/shop/transactions", transactionWith("0"), 400, "InvalidAmount", false},
		{"zero amount string", "POST", "/projects/shop/transactions", transactionWith(`"0"`), 400, "InvalidAmount", false},
		{"negative amount", "POST", "/projects/shop/transactions", transactionWith("-5"), 400, "InvalidAmount", false},
		{"2^128 amount", "POST", "/projects/shop/transactions", transactionWith("340282366920938463463374607431768211456"), 400, "InvalidAmount", false},
		{"huge amount", "POST", "/projects/shop/transactions", transactionWith(strings.Repeat("9", 400)), 400, "InvalidAmount", false},
		{"non-numeric amount", "POST", "/projects/shop/transactions", transactionWith(`"ten"`), 400, "InvalidAmount", false},
		{"boolean amount", "POST", "/projects/shop/transactions", transactionWith("true"), 400, "InvalidAmount", false},
		{"null amount", "POST", "/projects/shop/transactions", transactionWith("null"), 400, "InvalidAmount", false},
		{"missing amount", "POST", "/projects/shop/transactions", transaction("bad", map[string]any{"type": "issue", "to": f.walletA}), 400, "InvalidAmount", false},
		{"no operations", "POST", "/projects/shop/transactions", transaction("bad"), 400, "LimitExceeded", false},
		{"101 operations", "POST", "/projects/shop/transactions", transaction("bad", tooMany...), 400, "LimitExceeded", false},
		{"missing referenceId", "POST", "/projects/shop/transactions", transaction("", issue(f.walletA, 1)), 400, "InvalidArgument", false},
		{"overlong referenceId", "POST", "/projects/shop/transactions", transaction(strings.Repeat("r", 129), issue(f.walletA, 1)), 400, "InvalidArgument", false},
		{"transfer to itself", "POST", "/projects/shop/transactions", transaction("bad", transfer(f.walletA, f.walletA, 1)), 400, "InvalidArgument", false},
		{"issue with from", "POST", "/projects/shop/transactions", transaction("bad", map[string]any{"type": "issue", "from": f.walletB, "to": f.walletA, "amount": 1}), 400, "InvalidArgument", false},
		{"unknown operation type", "POST", "/projects/shop/transactions", transaction("bad", map[string]any{"type": "mint", "to": f.walletA, "amount": 1}), 400, "InvalidArgument", false},
		{"bad wallet id characters", "POST", "/projects/shop/transactions", transaction("bad", issue("w 1/2", 1)), 400, "InvalidArgument", false},
		{"unknown wallet", "POST", "/projects/shop/transactions", transaction("bad", transfer(f.walletA, "w0000doesnotexist000000", 1)), 404, "WalletNotFound", true},
		{"another project's wallet", "POST", "/projects/shop/transactions", transaction("bad", transfer(f.walletA, f.otherProjectWallet, 1)), 404, "WalletNotFound", true},
		{"oversize body", "POST", "/projects/shop/transactions", huge, 413, "RequestTooLarge", false},
		{"unknown project", "POST", "/projects/nope/transactions", transaction("bad", issue(f.walletA, 1)), 404, "ProjectNotFound", true},

		{"project name missing", "POST", "/projects", `{"id":"p2"}`, 400, "InvalidArgument", false},
		{"project id bad characters", "POST", "/projects", `{"id":"a b","name":"x"}`, 400, "InvalidArgument", false},
		{"project id overlong", "POST", "/projects", map[string]any{"id": strings.Repeat("p", 31), "name": "x"}, 400, "InvalidArgument", false},
		{"project id empty", "POST", "/projects", `{"id":"","name":"x"}`, 400, "InvalidArgument", false},
		{"project exists", "POST", "/projects", `{"id":"shop","name":"again"}`, 409, "ProjectExists", true},
		{"project name wrong type", "POST", "/projects", `{"name":5}`, 400, "InvalidJSON", false},
		{"project name control chars", "POST", "/projects", `{"name":"a\u0000b"}`, 400, "InvalidArgument", false},
		{"project name overlong", "PUT", "/projects/shop/name", map[string]any{"name": strings.Repeat("n", 201)}, 400, "InvalidArgument", false},
		{"project rename empty", "PUT", "/projects/shop/name", `{"name":""}`, 400, "InvalidArgument", false},

		{"asset fractions zero", "POST", "/projects/shop/assets", `{"name":"x","code":"X","fractions":0}`, 400, "InvalidArgument", false},
		{"asset fractions fractional", "POST", "/projects/shop/assets", `{"name":"x","code":"X","fractions":1.5}`, 400, "InvalidJSON", false},
		{"asset fractions negative", "POST", "/projects/shop/assets", `{"name":"x","code":"X","fractions":-1}`, 400, "InvalidJSON", false},
		{"asset fractions past uint64", "POST", "/projects/shop/assets", `{"name":"x","code":"X","fractions":18446744073709551616}`, 400, "InvalidJSON", false},
		{"asset code overlong", "POST", "/projects/shop/assets", `{"name":"x","code":"ABCDEFGHIJKLMNOPQ","fractions":1}`, 400, "InvalidArgument", false},
		{"asset exists", "POST", "/projects/shop/assets", `{"id":"usd","name":"x","code":"X","fractions":1}`, 409, "AssetExists", true},
		{"asset path id bad", "GET", "/projects/shop/assets/a%20b", nil, 400, "InvalidArgument", false},

		{"customer id missing", "POST", "/projects/shop/customers", `{"name":"x"}`, 400, "InvalidArgument", false},
		{"customer id with slash", "POST", "/projects/shop/customers", `{"id":"a/b"}`, 400, "InvalidArgument", false},
		{"customer id overlong", "POST", "/projects/shop/customers", map[string]any{"id": strings.Repeat("c", 129)}, 400, "InvalidArgument", false},
		{"customer body id differs", "PUT", "/projects/shop/customers/" + f.customerA, `{"id":"someone-else"}`, 400, "InvalidArgument", false},
		{"customer description wrong type", "PUT", "/projects/shop/customers/" + f.customerA, `{"description":["x"]}`, 400, "InvalidJSON", false},
		{"customer unknown field", "POST", "/projects/shop/customers", `{"id":"x","email":"x@y"}`, 400, "InvalidJSON", false},
		{"resume with bad wallet id", "POST", "/projects/shop/customers/" + f.customerA + "/resume", `{"walletIds":["a b"]}`, 400, "InvalidArgument", false},
		{"resume with another customer's wallet", "POST", "/projects/shop/customers/" + f.customerA + "/resume", map[string]any{"walletIds": []string{f.walletB}}, 404, "WalletNotFound", true},
		{"suspend with a body", "POST", "/projects/shop/customers/" + f.customerA + "/suspend", `{"now":true}`, 400, "InvalidJSON", false},
		{"unknown customer", "POST", "/projects/shop/customers/nobody/suspend", nil, 404, "CustomerNotFound", true},

		{"wallet customer missing", "POST", "/projects/shop/wallets", `{"assetId":"usd"}`, 400, "InvalidArgument", false},
		{"wallet asset missing", "POST", "/projects/shop/wallets", map[string]any{"customerId": f.customerA}, 400, "InvalidArgument", false},
		{"wallet unknown asset", "POST", "/projects/shop/wallets", map[string]any{"customerId": f.customerA, "assetId": "eur"}, 404, "AssetNotFound", true},
		{"wallet unknown customer", "POST", "/projects/shop/wallets", map[string]any{"customerId": "ghost", "assetId": "usd"}, 404, "CustomerNotFound", true},
		{"system wallet with customer", "POST", "/projects/shop/system-wallets", map[string]any{"customerId": f.customerA, "assetId": "usd"}, 400, "InvalidJSON", false},
		{"wallet status unknown", "PUT", wA + "/status", `{"status":"frozen"}`, 400, "InvalidArgument", false},
		{"wallet status wrong type", "PUT", wA + "/status", `{"status":1}`, 400, "InvalidJSON", false},
		{"close a wallet with money", "PUT", wA + "/status", `{"status":"closed"}`, 422, "WalletNotEmpty", true},
		{"wallet description missing", "PUT", wA + "/description", `{}`, 400, "InvalidArgument", false},
		{"wallet name overlong", "PUT", wA + "/name", map[string]any{"name": strings.Repeat("é", 101)}, 400, "InvalidArgument", false},
		{"another project's wallet by path", "PUT", "/projects/shop/wallets/" + f.otherProjectWallet + "/name", `{"name":"mine"}`, 404, "WalletNotFound", true},
		{"get another project's wallet", "GET", "/projects/shop/wallets/" + f.otherProjectWallet, nil, 404, "WalletNotFound", false},

		{"page missing", "GET", "/projects/shop/customers", nil, 400, "InvalidArgument", false},
		{"page zero", "GET", "/projects/shop/customers?page=0", nil, 400, "InvalidArgument", false},
		{"page not a number", "GET", "/projects/shop/customers?page=one", nil, 400, "InvalidArgument", false},
		{"pageSize zero", "GET", "/projects/shop/customers?page=1&pageSize=0", nil, 400, "InvalidArgument", false},
		{"pageSize too large", "GET", "/projects/shop/customers?page=1&pageSize=1001", nil, 400, "LimitExceeded", false},
		{"from empty but given", "GET", "/projects/shop/transactions?page=1&from=&to=x", nil, 400, "InvalidArgument", false},
		{"to not a number", "GET", wA + "/entries?page=1&to=soon", nil, 400, "InvalidArgument", false},
		{"from after to", "GET", "/projects/shop/transactions?page=1&from=6&to=5", nil, 400, "InvalidArgument", false},
		{"from fractional", "GET", "/projects/shop/transactions?page=1&from=1.5&to=5", nil, 400, "InvalidArgument", false},
		{"from with a plus sign", "GET", "/projects/shop/transactions?page=1&from=%2B5", nil, 400, "InvalidArgument", false},
		{"from negative", "GET", "/projects/shop/transactions?page=1&from=-5", nil, 400, "InvalidArgument", false},
		{"to negative", "GET", wA + "/entries?page=1&to=-1", nil, 400, "InvalidArgument", false},
		{"page with a plus sign", "GET", "/projects/shop/customers?page=%2B1", nil, 400, "InvalidArgument", false},
		{"unknown route", "GET", "/projects/shop/nothing", nil, 404, "NotFound", false},
		{"trailing slash", "GET", "/projects/", nil, 404, "NotFound", false},

		// Requests mean exactly what they say (issue 8, item 4).
		{"duplicate amount", "POST", "/projects/shop/transactions", `{"referenceId":"dup","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1,"amount":400}]}`, 400, "InvalidJSON", false},
		{"duplicate referenceId key", "POST", "/projects/shop/transactions", `{"referenceId":"a","referenceId":"b","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}]}`, 400, "InvalidJSON", false},
		{"duplicate name", "PUT", "/projects/shop/name", `{"name":"a","name":"b"}`, 400, "InvalidJSON", false},
		{"case variant ReferenceId", "POST", "/projects/shop/transactions", `{"ReferenceId":"cv","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}]}`, 400, "InvalidJSON", false},
		{"case variant REFERENCEID", "POST", "/projects/shop/transactions", `{"REFERENCEID":"cv","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}]}`, 400, "InvalidJSON", false},
		{"case variant Amount", "POST", "/projects/shop/transactions", `{"referenceId":"cv","operations":[{"type":"issue","to":"` + f.walletA + `","Amount":1}]}`, 400, "InvalidJSON", false},
		{"case variant beside exact key", "POST", "/projects/shop/transactions", `{"referenceId":"cv","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1,"AMOUNT":400}]}`, 400, "InvalidJSON", false},
		{"case variant customer key", "POST", "/projects/shop/customers", `{"ID":"x"}`, 400, "InvalidJSON", false},
		{"invalid UTF-8 referenceId", "POST", "/projects/shop/transactions", []byte("{\"referenceId\":\"r\xff\",\"operations\":[{\"type\":\"issue\",\"to\":\"" + f.walletA + "\",\"amount\":1}]}"), 400, "InvalidJSON", false},
		{"invalid UTF-8 name", "POST", "/projects", []byte("{\"name\":\"\xc3\x28\"}"), 400, "InvalidJSON", false},
		{"unpaired surrogate escape", "POST", "/projects/shop/transactions", `{"referenceId":"r\ud800","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}]}`, 400, "InvalidJSON", false},
		{"project id dot", "POST", "/projects", `{"id":".","name":"x"}`, 400, "InvalidArgument", false},
		{"project id dot dot", "POST", "/projects", `{"id":"..","name":"x"}`, 400, "InvalidArgument", false},
		{"asset id dot dot", "POST", "/projects/shop/assets", `{"id":"..","name":"x","code":"X","fractions":1}`, 400, "InvalidArgument", false},
		{"customer id dot", "POST", "/projects/shop/customers", `{"id":"."}`, 400, "InvalidArgument", false},
		{"customer id dot dot", "POST", "/projects/shop/customers", `{"id":".."}`, 400, "InvalidArgument", false},
		{"customer id zero-width space", "POST", "/projects/shop/customers", `{"id":"ali\u200bce"}`, 400, "InvalidArgument", false},
		{"customer id bidi override", "POST", "/projects/shop/customers", `{"id":"\u202eecila"}`, 400, "InvalidArgument", false},
		{"customer id BOM", "POST", "/projects/shop/customers", `{"id":"\ufeffalice"}`, 400, "InvalidArgument", false},
		{"customer id no-break space", "POST", "/projects/shop/customers", `{"id":"ali\u00a0ce"}`, 400, "InvalidArgument", false},
		{"customer id in path zero-width", "GET", "/projects/shop/customers/ali%E2%80%8Bce", nil, 400, "InvalidArgument", false},
		{"wallet customer id LRM", "POST", "/projects/shop/wallets", `{"customerId":"alice\u200e","assetId":"usd"}`, 400, "InvalidArgument", false},
		{"referenceId zero-width", "POST", "/projects/shop/transactions", `{"referenceId":"r\u200b","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}]}`, 400, "InvalidArgument", false},
		{"name bidi isolate", "PUT", "/projects/shop/name", `{"name":"\u2067shop"}`, 400, "InvalidArgument", false},
		{"name line separator", "PUT", "/projects/shop/name", `{"name":"a\u2028b"}`, 400, "InvalidArgument", false},
		{"description zero-width", "PUT", wA + "/description", `{"description":"a\u200bb"}`, 400, "InvalidArgument", false},
		{"too deep", "POST", "/projects/shop/transactions", `{"referenceId":"deep","operations":[{"type":"issue","to":"` + f.walletA + `","amount":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}]}`, 400, "InvalidJSON", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &apiClient{t: t, handler: c.handler, token: c.token}
			proposalsBefore := backend.Proposals()
			c.do(tc.method, tc.path, tc.body).expectError(tc.status, tc.code)
			if proposed := backend.Proposals() - proposalsBefore; !tc.reachesFSM && proposed != 0 {
				t.Errorf("bad input reached the backend (%d proposals)", proposed)
			}
			if after := ledgerState(c, f); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	c, _, _ := newTestServer(t)
	setUp(t, c)
	anonymous := &apiClient{t: t, handler: c.handler}
	for _, path := range []string{"/projects", "/projects/shop", "/openapi.json", "/projects/shop/nothing"} {
		r := anonymous.do("GET", path, nil).expectError(401, "Unauthorized")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", path)
		}
	}
	anonymous.do("POST", "/projects", `{"name":"sneaky"}`).expectError(401, "Unauthorized")
	wrong := &apiClient{t: t, handler: c.handler, token: "s3cret-tokem"}
	wrong.do("GET", "/projects", nil).expectError(401, "Unauthorized")
	prefix := &apiClient{t: t, handler: c.handler, token: "s3cret"}
	prefix.do("GET", "/projects", nil).expectError(401, "Unauthorized")
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		anonymous.do("GET", path, nil).expect(200)
	}
	request := httptest.NewRequest("GET", "/projects", nil)
	request.Header.Set("Authorization", "Basic "+testToken)
	recorder := httptest.NewRecorder()
	c.handler.ServeHTTP(recorder, request)
	if recorder.Code != 401 {
		t.Errorf("Basic scheme accepted: %d", recorder.Code)
	}
	var projects struct{ Items []cloudwallet.Project }
	c.do("GET", "/projects", nil).expect(200).decode(&projects)
	if len(projects.Items) != 2 {
		t.Errorf("anonymous request created a project: %+v", projects)
	}

	// Without a token the API is open.
	open := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, httpapitest.NewLedgerBackend(t), testLogger(t), nil)}
	open.do("GET", "/projects", nil).expect(200)
}

func TestBackendErrors(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{fmt.Errorf("no leader: %w", httpapi.ErrUnavailable), 503, "Unavailable", true},
		{fmt.Errorf("leader lost: %w", httpapi.ErrOutcomeUnknown), 503, "OutcomeUnknown", true},
		{fmt.Errorf("queue full: %w", httpapi.ErrOverloaded), 503, "Overloaded", true},
		{errors.New("pebble: disk on fire at /var/lib/secret"), 500, "Internal", false},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			fake := &httpapitest.FakeBackend{ProposeErr: tc.err, ReadErr: tc.err}
			c := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, fake, testLogger(t), nil)}
			for _, r := range []*response{
				c.do("POST", "/projects/shop/transactions", transaction("x", issue("w1", 1))),
				c.do("GET", "/projects/shop/wallets/w1", nil),
			} {
				if tc.code == "OutcomeUnknown" && r.status == 503 && r.object()["error"].(map[string]any)["code"] == "OutcomeUnknown" &&
					!strings.Contains(fmt.Sprint(r.object()["error"]), "referenceId") {
					t.Errorf("OutcomeUnknown message does not tell the client to retry with the same referenceId: %s", r.body)
				}
				r.expectError(tc.status, tc.code)
				if got := r.header.Get("Retry-After") != ""; got != tc.retryAfter {
					t.Errorf("Retry-After present %v, want %v", got, tc.retryAfter)
				}
				if bytes.Contains(r.body, []byte("pebble")) || bytes.Contains(r.body, []byte("secret")) {
					t.Errorf("internal detail leaked: %s", r.body)
				}
			}
		})
	}

	// A proposal whose wait ends has an unknown outcome, whatever the backend says.
	fake := &httpapitest.FakeBackend{ProposeErr: fmt.Errorf("wait: %w", errContextDeadline)}
	c := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, fake, testLogger(t), nil)}
	c.do("POST", "/projects/shop/transactions", transaction("x", issue("w1", 1))).expectError(503, "OutcomeUnknown")
}

// errContextDeadline stands for the context.DeadlineExceeded a backend returns on timeout.
var errContextDeadline = contextDeadline()

func TestPanicIsEnvelope(t *testing.T) {
	fake := &httpapitest.FakeBackend{Reader: panickyReader{}}
	c := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, fake, testLogger(t), nil)}
	c.do("GET", "/projects", nil).expectError(500, "Internal")
}

// panickyReader panics on every read.
type panickyReader struct{ httpapi.Reader }

func (panickyReader) ListProjects() ([]ledger.Project, error) { panic("boom") }

func TestOperationalRoutes(t *testing.T) {
	ready := errors.New("no leader yet")
	backend := httpapitest.NewLedgerBackend(t)
	registry := prometheus.NewRegistry()
	admin := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{Ready: func() error { return ready }}, backend, testLogger(t), registry)}
	public := &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{Ready: func() error { return ready }}, testLogger(t), registry)}
	for _, c := range []*apiClient{admin, public} {
		c.do("GET", "/healthz", nil).expect(200)
	}
	// The admin listener says why it is not ready; the public one (payers) does not.
	if r := admin.do("GET", "/readyz", nil).expectError(503, "Unavailable"); !strings.Contains(string(r.body), `"not ready: no leader yet"`) {
		t.Errorf("admin readyz does not say why: %s", r.body)
	}
	if r := public.do("GET", "/readyz", nil).expectError(503, "Unavailable"); strings.Contains(string(r.body), "leader") {
		t.Errorf("public readyz leaked the reason: %s", r.body)
	}
	ready = nil
	admin.do("GET", "/readyz", nil).expect(200)
	public.do("GET", "/readyz", nil).expect(200)
	public.do("GET", "/projects", nil).expectError(404, "NotFound")
	public.do("GET", "/metrics", nil).expectError(404, "NotFound")

	admin.do("POST", "/projects", `{"id":"p1","name":"P"}`).expect(201)
	admin.do("GET", "/projects/p1", nil).expect(200)
	admin.do("GET", "/projects/p2", nil).expect(404)
	// Methods a client makes up are one label, "other": each would be a series for good.
	for i := range 20 {
		public.do(fmt.Sprintf("PUBX%d", i), "/invoice/x", nil)
	}
	metrics := string(admin.do("GET", "/metrics", nil).expect(200).body)
	if strings.Contains(metrics, "PUBX") || !strings.Contains(metrics, `method="other"`) {
		t.Errorf("made-up methods are metric labels")
	}
	for _, want := range []string{
		`gigaledger_http_request_duration_seconds_count{code="200",listener="admin",method="GET",route="/projects/:projectId"} 1`,
		`gigaledger_http_request_duration_seconds_count{code="404",listener="admin",method="GET",route="/projects/:projectId"} 1`,
		`gigaledger_http_request_duration_seconds_count{code="201",listener="admin",method="POST",route="/projects"} 1`,
		`gigaledger_http_request_duration_seconds_count{code="404",listener="public",method="GET",route="unmatched"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `route="/projects/p1"`) {
		t.Errorf("metrics use the raw path")
	}
}

// TestOversizeBodyWithoutLength sends a body larger than the limit without a Content-Length
// (chunked), so the limit is enforced while reading.
func TestOversizeBodyWithoutLength(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	before := ledgerState(c, f)
	proposals := backend.Proposals()
	body := `{"referenceId":"big","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1}],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	request := httptest.NewRequest("POST", "/projects/shop/transactions", io.MultiReader(strings.NewReader(body)))
	request.ContentLength = -1
	request.Header.Set("Authorization", "Bearer "+testToken)
	request.Header.Set("Content-Type", "application/json")
	recorder := httptest.NewRecorder()
	c.handler.ServeHTTP(recorder, request)
	(&response{t: t, status: recorder.Code, header: recorder.Header(), body: recorder.Body.Bytes()}).expectError(413, "RequestTooLarge")
	if backend.Proposals() != proposals || ledgerState(c, f) != before {
		t.Fatal("an oversize body changed something")
	}
}

// validSlottedID reports whether id is kind, then a slot any node can route by.
func validSlottedID(id string, kind byte) bool {
	_, ok := keyspace.SlotOfID(id)
	return ok && id[0] == kind
}

// An integer field's type error names its range: -1 and 2^64 for fractions both say why.
func TestIntegerFieldsSayTheirRange(t *testing.T) {
	c, _, _ := newTestServer(t)
	setUp(t, c)
	for _, fractions := range []string{"-1", "18446744073709551616"} {
		r := c.do("POST", "/projects/shop/assets", `{"name":"x","code":"X","fractions":`+fractions+`}`).expectError(400, "InvalidJSON")
		if want := "fractions must be a JSON integer from 0 to 18446744073709551615"; !strings.Contains(string(r.body), want) {
			t.Errorf("fractions %s: %s, want %q", fractions, r.body, want)
		}
	}
	// A field of an array's item is named with the item's index.
	r := c.do("POST", "/projects/shop/transactions", `{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1},`+
		`{"type":"hold","from":"w","amount":1,"expiresAt":"soon"}]}`).expectError(400, "InvalidJSON")
	if want := "operations[1].expiresAt must be a JSON integer from"; !strings.Contains(string(r.body), want) {
		t.Errorf("a hold's expiresAt of the wrong type: %s, want %q", r.body, want)
	}
}
