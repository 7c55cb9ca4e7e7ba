package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/prometheus/client_golang/prometheus"
)

// testToken is the admin token of the test servers.
const testToken = "client-test-token"

// testRetries retries quickly: the server's Retry-After of 1 s is capped by BackoffMax.
var testRetries = client.RetryPolicy{MaxAttempts: 4, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}

// callLimit bounds every call of a test.
const callLimit = 10 * time.Second

// startServer serves the real admin handler over a ledger without Raft on a loopback test
// port; wrap, when set, stands between the client and the handler.
func startServer(t *testing.T, wrap func(http.Handler) http.Handler) (string, *httpapitest.LedgerBackend) {
	t.Helper()
	backend := httpapitest.NewLedgerBackend(t)
	var handler http.Handler = httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, backend, testutil.Logger(t), prometheus.NewRegistry())
	if wrap != nil {
		handler = wrap(handler)
	}
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)
	return server.URL, backend
}

// newClient returns a client of baseURL with the test token and quick retries.
func newClient(t *testing.T, baseURL string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, append([]client.Option{client.WithToken(testToken), client.WithRetryPolicy(testRetries)}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// must fails the test on err and returns v.
func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// ledgerFixture is a project with an asset, a customer with a funded wallet, and a system
// wallet.
type ledgerFixture struct {
	projectID, assetID, customerID string
	wallet, system                 *client.Wallet
	// spareAssetID and holdID are set by the tests that need them.
	spareAssetID, holdID string
}

func newFixture(t *testing.T, ctx context.Context, c *client.Client) ledgerFixture {
	t.Helper()
	f := ledgerFixture{projectID: "p1", assetID: "usd", customerID: "alice"}
	must[*client.Project](t, "create project")(c.CreateProject(ctx, client.CreateProjectRequest{ID: f.projectID, Name: "Project one"}))
	must[*client.Asset](t, "create asset")(c.CreateAsset(ctx, f.projectID, client.CreateAssetRequest{ID: f.assetID, Name: "Dollar", Code: "USD", Fractions: 100}))
	must[*client.Customer](t, "upsert customer")(c.UpsertCustomer(ctx, f.projectID, f.customerID, client.CustomerFields{Name: client.String("Alice")}))
	f.wallet = must[*client.Wallet](t, "create wallet")(c.CreateWallet(ctx, f.projectID, client.CreateWalletRequest{CustomerID: f.customerID, AssetID: f.assetID, Name: "main"}))
	f.system = must[*client.Wallet](t, "create system wallet")(c.CreateSystemWallet(ctx, f.projectID, client.CreateSystemWalletRequest{AssetID: f.assetID, Name: "treasury"}))
	return f
}

func TestEveryCallAgainstTheRealHandler(t *testing.T) {
	baseURL, _ := startServer(t, nil)
	c := newClient(t, baseURL, client.WithUserAgent("client-test"))
	ctx := testutil.Context(t, callLimit)
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	f := newFixture(t, ctx, c)

	// Projects.
	projects := must[[]client.Project](t, "list projects")(c.ListProjects(ctx))
	if len(projects) != 1 || projects[0].ID != f.projectID {
		t.Fatalf("projects = %+v", projects)
	}
	renamed := must[*client.Project](t, "rename project")(c.RenameProject(ctx, f.projectID, "Renamed"))
	project := must[*client.Project](t, "get project")(c.GetProject(ctx, f.projectID))
	if renamed.Name != "Renamed" || project.Name != "Renamed" || len(project.Assets) != 1 || project.Assets[0].ID != f.assetID {
		t.Fatalf("renamed %+v, got %+v", renamed, project)
	}

	// Assets: a second one is renamed and deleted; the used one refuses deletion.
	spare := must[*client.Asset](t, "create spare asset")(c.CreateAsset(ctx, f.projectID, client.CreateAssetRequest{Name: "Spare", Code: "SPR", Fractions: 1}))
	if spare.ID == "" {
		t.Fatal("generated asset id is empty")
	}
	if got := must[*client.Asset](t, "rename asset")(c.RenameAsset(ctx, f.projectID, spare.ID, "Spare two")); got.Name != "Spare two" {
		t.Fatalf("renamed asset %+v", got)
	}
	if got := must[[]client.Asset](t, "list assets")(c.ListAssets(ctx, f.projectID)); len(got) != 2 {
		t.Fatalf("assets = %+v", got)
	}
	if err := c.DeleteAsset(ctx, f.projectID, spare.ID); err != nil {
		t.Fatalf("delete asset: %v", err)
	}
	if _, err := c.GetAsset(ctx, f.projectID, spare.ID); !errors.Is(err, client.ErrNotFound) || !client.IsCode(err, client.CodeAssetNotFound) {
		t.Fatalf("get deleted asset: %v", err)
	}
	if err := c.DeleteAsset(ctx, f.projectID, f.assetID); !client.IsCode(err, client.CodeAssetInUse) || client.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("delete used asset: %v", err)
	}

	// Transactions and exact amounts: the largest amount the API takes goes in and out.
	const amountMax = client.Amount("340282366920938463463374607431768211455") // 2^128−1
	issued, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "issue-max",
		Operations: []client.Operation{{Type: client.OperationIssue, To: f.system.ID, Amount: amountMax}}})
	if err != nil || issued.Status != client.TransactionCompleted || issued.Operations[0].Amount != amountMax || issued.FailedOperationIndex != nil {
		t.Fatalf("issue max: %+v, %v", issued, err)
	}
	if got := must[*client.Wallet](t, "get system wallet")(c.GetWallet(ctx, f.projectID, f.system.ID)); got.Balance != amountMax || got.Available != amountMax || !got.System {
		t.Fatalf("system wallet %+v", got)
	}
	if got := must[*client.Asset](t, "get asset")(c.GetAsset(ctx, f.projectID, f.assetID)); got.Supply != amountMax || !got.Used {
		t.Fatalf("asset %+v", got)
	}
	moved := must[*client.Transaction](t, "transfer and redeem")(c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "move",
		Operations: []client.Operation{
			{Type: client.OperationTransfer, From: f.system.ID, To: f.wallet.ID, Amount: "1500"},
			{Type: client.OperationRedeem, From: f.system.ID, Amount: "340282366920938463463374607431768209955"},
		}}))
	if got := must[*client.Transaction](t, "get transaction")(c.GetTransaction(ctx, f.projectID, moved.ID)); got.ReferenceID != "move" || len(got.Operations) != 2 {
		t.Fatalf("transaction %+v", got)
	}
	page := must[*client.Page[client.Transaction]](t, "list transactions")(c.ListTransactions(ctx, f.projectID, client.TimePageRequest{PageRequest: client.PageRequest{PageSize: 1}}))
	if len(page.Items) != 1 || !page.HasMore || page.Items[0].ID != issued.ID || page.PageSize != 1 {
		t.Fatalf("first page %+v", page)
	}
	var ids []string
	for tx, err := range c.AllTransactions(ctx, f.projectID, client.TimePageRequest{PageRequest: client.PageRequest{PageSize: 1}, FromMs: 1, ToMs: httpapitest.ClockStartMs}) {
		if err != nil {
			t.Fatalf("all transactions: %v", err)
		}
		ids = append(ids, tx.ID)
	}
	if !slices.Equal(ids, []string{issued.ID, moved.ID}) {
		t.Fatalf("all transactions = %v", ids)
	}
	var entries []client.Entry
	for entry, err := range c.AllEntries(ctx, f.projectID, f.system.ID, client.TimePageRequest{PageRequest: client.PageRequest{PageSize: 2}}) {
		if err != nil {
			t.Fatalf("all entries: %v", err)
		}
		entries = append(entries, entry)
	}
	if len(entries) != 3 || entries[0].Type != client.EntryIssue || entries[1].Type != client.EntryDebit || entries[2].BalanceAfter != "0" {
		t.Fatalf("entries %+v", entries)
	}
	if got := must[*client.Page[client.Entry]](t, "list entries")(c.ListEntries(ctx, f.projectID, f.wallet.ID, client.TimePageRequest{})); len(got.Items) != 1 || got.Items[0].Amount != "1500" {
		t.Fatalf("wallet entries %+v", got)
	}

	// Wallets.
	if got := must[*client.Wallet](t, "rename wallet")(c.RenameWallet(ctx, f.projectID, f.wallet.ID, "renamed")); got.Name != "renamed" {
		t.Fatalf("renamed wallet %+v", got)
	}
	if got := must[*client.Wallet](t, "describe wallet")(c.DescribeWallet(ctx, f.projectID, f.wallet.ID, "savings")); got.Description != "savings" {
		t.Fatalf("described wallet %+v", got)
	}
	if got := must[[]client.Wallet](t, "list system wallets")(c.ListSystemWallets(ctx, f.projectID)); len(got) != 1 || got[0].ID != f.system.ID {
		t.Fatalf("system wallets %+v", got)
	}

	// Customers: suspend, resume with the wallet, then close the emptied wallet and delete.
	if got := must[*client.Customer](t, "suspend")(c.SuspendCustomer(ctx, f.projectID, f.customerID)); got.Status != client.CustomerSuspended {
		t.Fatalf("suspended customer %+v", got)
	}
	if got := must[*client.Wallet](t, "get wallet")(c.GetWallet(ctx, f.projectID, f.wallet.ID)); got.Status != client.WalletSuspended {
		t.Fatalf("wallet of suspended customer %+v", got)
	}
	if got := must[*client.Customer](t, "resume")(c.ResumeCustomer(ctx, f.projectID, f.customerID, []string{f.wallet.ID})); got.Status != client.CustomerActive {
		t.Fatalf("resumed customer %+v", got)
	}
	if got := must[*client.Customer](t, "update customer")(c.UpdateCustomer(ctx, f.projectID, f.customerID, client.CustomerFields{Description: client.String("vip")})); got.Name != "Alice" || got.Description != "vip" {
		t.Fatalf("updated customer %+v", got)
	}
	if got := must[*client.Customer](t, "get customer")(c.GetCustomer(ctx, f.projectID, f.customerID)); got.Description != "vip" {
		t.Fatalf("customer %+v", got)
	}
	must[*client.Customer](t, "second customer")(c.UpsertCustomer(ctx, f.projectID, "bob with spaces%?#", client.CustomerFields{}))
	if got := must[*client.Page[client.Customer]](t, "list customers")(c.ListCustomers(ctx, f.projectID, client.PageRequest{PageSize: 1})); len(got.Items) != 1 || !got.HasMore {
		t.Fatalf("customer page %+v", got)
	}
	var customers []string
	for customer, err := range c.AllCustomers(ctx, f.projectID, 1) {
		if err != nil {
			t.Fatalf("all customers: %v", err)
		}
		customers = append(customers, customer.ID)
	}
	if len(customers) != 2 {
		t.Fatalf("customers %v", customers)
	}
	must[*client.Transaction](t, "empty the wallet")(c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "empty",
		Operations: []client.Operation{{Type: client.OperationRedeem, From: f.wallet.ID, Amount: "1500"}}}))
	if err := c.DeleteCustomer(ctx, f.projectID, f.customerID); !client.IsCode(err, client.CodeCustomerHasOpenWallets) {
		t.Fatalf("delete customer with an open wallet: %v", err)
	}
	if got := must[*client.Wallet](t, "close wallet")(c.SetWalletStatus(ctx, f.projectID, f.wallet.ID, client.WalletClosed)); got.Status != client.WalletClosed {
		t.Fatalf("closed wallet %+v", got)
	}
	if got := must[[]client.Wallet](t, "customer wallets")(c.ListCustomerWallets(ctx, f.projectID, f.customerID)); len(got) != 1 || got[0].Status != client.WalletClosed {
		t.Fatalf("customer wallets %+v", got)
	}
	if err := c.DeleteCustomer(ctx, f.projectID, f.customerID); err != nil {
		t.Fatalf("delete customer: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	baseURL, backend := startServer(t, nil)
	c := newClient(t, baseURL)
	ctx := testutil.Context(t, callLimit)
	f := newFixture(t, ctx, c)

	_, err := c.GetProject(ctx, "nope")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != client.CodeProjectNotFound ||
		apiErr.Message == "" || !errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("missing project: %#v", err)
	}

	// A failed transaction comes back with its error and its record.
	tx, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "too-much",
		Operations: []client.Operation{{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: "1"}}})
	if !client.IsCode(err, client.CodeInsufficientFunds) || client.StatusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("overdraft error: %v", err)
	}
	if tx == nil || tx.Status != client.TransactionFailed || tx.ReferenceID != "too-much" || tx.FailureReason != client.CodeInsufficientFunds ||
		tx.FailedOperationIndex == nil || *tx.FailedOperationIndex != 0 {
		t.Fatalf("failed transaction %+v", tx)
	}
	// Resending its reference gives the same pair, from the stored record.
	again, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "too-much",
		Operations: []client.Operation{{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: "1"}}})
	if !client.IsCode(err, client.CodeInsufficientFunds) || again == nil || again.ID != tx.ID {
		t.Fatalf("resent failure: %+v, %v", again, err)
	}
	// The same reference with another body is a mismatch, and no transaction.
	other, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "too-much",
		Operations: []client.Operation{{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: "2"}}})
	if !client.IsCode(err, client.CodeReferenceIDMismatch) || client.StatusCode(err) != http.StatusConflict || other != nil {
		t.Fatalf("mismatch: %+v, %v", other, err)
	}

	// The server refuses a zero amount; the client refuses to send a malformed one.
	if _, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "zero",
		Operations: []client.Operation{{Type: client.OperationIssue, To: f.wallet.ID, Amount: "0"}}}); !client.IsCode(err, client.CodeInvalidAmount) {
		t.Fatalf("zero amount: %v", err)
	}
	before := backend.Proposals()
	for _, bad := range []client.Operation{
		{Type: client.OperationIssue, To: f.wallet.ID, Amount: "-1"},
		{Type: client.OperationIssue, To: f.wallet.ID, Amount: "1.5"},
		{Type: client.OperationIssue, To: f.wallet.ID, Amount: "340282366920938463463374607431768211456"},
		{Type: client.OperationIssue, From: f.wallet.ID, To: f.wallet.ID, Amount: "1"},
		{Type: "mint", To: f.wallet.ID, Amount: "1"},
		{Type: client.OperationHold, To: f.wallet.ID, Amount: "1"},
		{Type: client.OperationHold, From: f.wallet.ID, Amount: "1", ExpiresAt: -1},
		{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: "1", ExpiresAt: httpapitest.ClockStartMs},
	} {
		if _, err := c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "bad", Operations: []client.Operation{bad}}); err == nil || client.StatusCode(err) != 0 {
			t.Errorf("operation %+v: %v, want a client-side error", bad, err)
		}
	}
	if backend.Proposals() != before {
		t.Fatal("a malformed operation reached the server")
	}

	// A key reused for another request is refused: the client never does it, a proxy might.
	reused := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: fixedKey{"reused-key"}}))
	request := client.CreateWalletRequest{CustomerID: f.customerID, AssetID: f.assetID, Name: "first"}
	must[*client.Wallet](t, "wallet under a fixed key")(reused.CreateWallet(ctx, f.projectID, request))
	request.Name = "second"
	var attempts []client.Attempt
	if _, err := reused.CreateWallet(recordAttempts(ctx, &attempts), f.projectID, request); !client.IsCode(err, client.CodeIdempotencyKeyMismatch) ||
		client.StatusCode(err) != http.StatusConflict || errors.Is(err, client.ErrOutcomeUnknown) || len(attempts) != 1 {
		t.Fatalf("reused key: %v after %d attempts", err, len(attempts))
	}

	anonymous, err := client.New(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anonymous.ListProjects(ctx); !client.IsCode(err, client.CodeUnauthorized) || client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("no token: %v", err)
	}
}

// fixedKey sends every request under one Idempotency-Key, as a caller that reuses a key would.
type fixedKey struct{ key string }

func (k fixedKey) RoundTrip(request *http.Request) (*http.Response, error) {
	request = request.Clone(request.Context())
	request.Header.Set("Idempotency-Key", k.key)
	return http.DefaultTransport.RoundTrip(request)
}

// lossyTransport forwards requests to the server and, for those drop selects, throws the
// answer away and reports a broken connection: the request reached the server and was
// applied, but the client cannot know. It records each request's Idempotency-Key.
type lossyTransport struct {
	next http.RoundTripper
	drop func(request *http.Request, sent int) bool

	mu   sync.Mutex
	sent int
	keys []string
}

var errConnectionLost = errors.New("connection reset after the request was sent")

func (l *lossyTransport) RoundTrip(request *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.sent++
	sent := l.sent
	l.keys = append(l.keys, request.Header.Get("Idempotency-Key"))
	l.mu.Unlock()
	response, err := l.next.RoundTrip(request)
	if err != nil || !l.drop(request, sent) {
		return response, err
	}
	_, _ = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	return nil, errConnectionLost
}

// dropFirstPost loses the answers to the first n POST requests.
func dropFirstPost(n int) func(*http.Request, int) bool {
	var mu sync.Mutex
	dropped := 0
	return func(request *http.Request, _ int) bool {
		mu.Lock()
		defer mu.Unlock()
		if request.Method != http.MethodPost || dropped >= n {
			return false
		}
		dropped++
		return true
	}
}

// referenceCount counts the project's transactions with the reference.
func referenceCount(t *testing.T, ctx context.Context, c *client.Client, projectID, referenceID string) int {
	t.Helper()
	count := 0
	for tx, err := range c.AllTransactions(ctx, projectID, client.TimePageRequest{}) {
		if err != nil {
			t.Fatalf("list transactions: %v", err)
		}
		if tx.ReferenceID == referenceID {
			count++
		}
	}
	return count
}

func TestLostAnswerIsResentWithTheSameReferenceAndAppliesOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		amount  client.Amount
		status  client.TransactionStatus
		errCode string
	}{
		{"completed", "5", client.TransactionCompleted, ""},
		{"failed", "500", client.TransactionFailed, client.CodeInsufficientFunds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseURL, _ := startServer(t, nil)
			ctx := testutil.Context(t, callLimit)
			f := newFixture(t, ctx, newClient(t, baseURL))
			plain := newClient(t, baseURL)
			must[*client.Transaction](t, "fund")(plain.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: "fund",
				Operations: []client.Operation{{Type: client.OperationIssue, To: f.wallet.ID, Amount: "100"}}}))

			lossy := &lossyTransport{next: http.DefaultTransport, drop: dropFirstPost(2)}
			c := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
			var attempts []client.Attempt
			tx, err := c.CreateTransaction(recordAttempts(ctx, &attempts), f.projectID, client.TransactionRequest{ReferenceID: "pay-1",
				Operations: []client.Operation{{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: tc.amount}}})
			if tc.errCode == "" && err != nil || tc.errCode != "" && !client.IsCode(err, tc.errCode) {
				t.Fatalf("error %v, want code %q", err, tc.errCode)
			}
			if tx == nil || tx.Status != tc.status || tx.ReferenceID != "pay-1" {
				t.Fatalf("transaction %+v", tx)
			}
			// The third attempt, with the same referenceId (a transaction's idempotency key; no
			// Idempotency-Key header is sent), is answered with the stored transaction.
			if len(attempts) != 3 || !errors.Is(attempts[0].Err, client.ErrOutcomeUnknown) || !errors.Is(attempts[1].Err, errConnectionLost) ||
				attempts[2].StatusCode != http.StatusConflict || attempts[2].Code != client.CodeDuplicateReferenceID {
				t.Fatalf("attempts %+v", attempts)
			}
			if len(lossy.keys) != 3 || lossy.keys[0] != "" || lossy.keys[2] != "" {
				t.Fatalf("idempotency keys %q, want none: the referenceId is the key", lossy.keys)
			}
			if n := referenceCount(t, ctx, plain, f.projectID, "pay-1"); n != 1 {
				t.Fatalf("%d transactions hold pay-1, want 1", n)
			}

			// A new call with the same reference (a new key) is answered from the transaction
			// the reference names: 409 DuplicateReferenceId, returned as the stored outcome.
			attempts = nil
			again, err := plain.CreateTransaction(recordAttempts(ctx, &attempts), f.projectID, client.TransactionRequest{ReferenceID: "pay-1",
				Operations: []client.Operation{{Type: client.OperationTransfer, From: f.wallet.ID, To: f.system.ID, Amount: tc.amount}}})
			if tc.errCode == "" && err != nil || tc.errCode != "" && !client.IsCode(err, tc.errCode) || again == nil || again.ID != tx.ID {
				t.Fatalf("resent reference: %+v, %v; want %s", again, err, tx.ID)
			}
			if len(attempts) != 1 || attempts[0].StatusCode != http.StatusConflict || attempts[0].Code != client.CodeDuplicateReferenceID || attempts[0].Replayed {
				t.Fatalf("attempts of the resent reference %+v", attempts)
			}
			wantBalance := client.Amount("95")
			if tc.status == client.TransactionFailed {
				wantBalance = "100"
			}
			if got := must[*client.Wallet](t, "get wallet")(plain.GetWallet(ctx, f.projectID, f.wallet.ID)); got.Balance != wantBalance {
				t.Fatalf("balance %s, want %s", got.Balance, wantBalance)
			}
		})
	}
}

// posts selects the POST requests whose path ends with suffix and whose rank among those is
// within [first, last] (from 1).
func posts(suffix string, first, last int) func(*http.Request) bool {
	var mu sync.Mutex
	seen := 0
	return func(r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, suffix) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		return seen >= first && seen <= last
	}
}

// serverSays answers the requests intercept selects itself, with status and code and a
// Retry-After of 1 s, as the server does when it cannot serve; apply says whether the request
// is handed to the server first (503 OutcomeUnknown: it applied, but the node could not
// confirm it).
func serverSays(intercept func(*http.Request) bool, status int, code string, apply bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !intercept(r) {
				next.ServeHTTP(w, r)
				return
			}
			if apply {
				next.ServeHTTP(httptest.NewRecorder(), r)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"error":{"code":"`+code+`","message":"test"}}`)
		})
	}
}

// recordAttempts returns a context that appends each attempt of a call to *attempts.
func recordAttempts(ctx context.Context, attempts *[]client.Attempt) context.Context {
	return client.WithAttemptHook(ctx, func(a client.Attempt) { *attempts = append(*attempts, a) })
}

func TestOutcomeUnknownAnswerIsResolvedByTheStoredTransaction(t *testing.T) {
	baseURL, _ := startServer(t, serverSays(posts("/transactions", 1, 1), http.StatusServiceUnavailable, client.CodeOutcomeUnknown, true))
	ctx := testutil.Context(t, callLimit)
	c := newClient(t, baseURL)
	f := newFixture(t, ctx, c)
	var attempts []client.Attempt
	tx, err := c.CreateTransaction(recordAttempts(ctx, &attempts), f.projectID, client.TransactionRequest{ReferenceID: "issue-1",
		Operations: []client.Operation{{Type: client.OperationIssue, To: f.wallet.ID, Amount: "7"}}})
	if err != nil || tx.Status != client.TransactionCompleted {
		t.Fatalf("transaction %+v, %v", tx, err)
	}
	if len(attempts) != 2 || attempts[0].StatusCode != http.StatusServiceUnavailable || attempts[0].Code != client.CodeOutcomeUnknown ||
		attempts[1].StatusCode != http.StatusConflict || attempts[1].Code != client.CodeDuplicateReferenceID {
		t.Fatalf("attempts %+v", attempts)
	}
	if n := referenceCount(t, ctx, c, f.projectID, "issue-1"); n != 1 {
		t.Fatalf("%d transactions hold issue-1, want 1", n)
	}
	if got := must[*client.Wallet](t, "get wallet")(c.GetWallet(ctx, f.projectID, f.wallet.ID)); got.Balance != "7" {
		t.Fatalf("balance %s, want 7", got.Balance)
	}
}

func TestNotAppliedAnswersAreRetriedForEveryCall(t *testing.T) {
	for _, code := range []string{client.CodeUnavailable, client.CodeOverloaded} {
		t.Run(code, func(t *testing.T) {
			baseURL, _ := startServer(t, serverSays(posts("/projects", 1, 2), http.StatusServiceUnavailable, code, false))
			c := newClient(t, baseURL)
			ctx := testutil.Context(t, callLimit)
			var attempts int
			project, err := c.CreateProject(client.WithAttemptHook(ctx, func(client.Attempt) { attempts++ }), client.CreateProjectRequest{ID: "p", Name: "P"})
			if err != nil || project.ID != "p" || attempts != 3 {
				t.Fatalf("create project after two 503 %s: %+v, %v, %d attempts", code, project, err, attempts)
			}
		})
	}
	t.Run("gives up after MaxAttempts", func(t *testing.T) {
		baseURL, backend := startServer(t, serverSays(posts("/projects", 1, 100), http.StatusServiceUnavailable, client.CodeUnavailable, false))
		c := newClient(t, baseURL)
		_, err := c.CreateProject(testutil.Context(t, callLimit), client.CreateProjectRequest{ID: "p", Name: "P"})
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || !errors.Is(err, client.ErrUnavailable) || apiErr.RetryAfter != time.Second || errors.Is(err, client.ErrOutcomeUnknown) {
			t.Fatalf("error %#v", err)
		}
		if backend.Proposals() != 0 {
			t.Fatal("an unavailable answer reached the ledger")
		}
	})
}

func TestLostWalletCreationIsRetriedUnderItsKeyAndOpensOneWallet(t *testing.T) {
	baseURL, _ := startServer(t, nil)
	ctx := testutil.Context(t, callLimit)
	f := newFixture(t, ctx, newClient(t, baseURL))
	plain := newClient(t, baseURL)
	request := client.CreateWalletRequest{CustomerID: f.customerID, AssetID: f.assetID}

	lossy := &lossyTransport{next: http.DefaultTransport, drop: dropFirstPost(1)}
	c := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
	var attempts []client.Attempt
	wallet, err := c.CreateWallet(recordAttempts(ctx, &attempts), f.projectID, request)
	if err != nil || wallet.ID == "" {
		t.Fatalf("wallet creation with a lost answer: %+v, %v", wallet, err)
	}
	if len(attempts) != 2 || !errors.Is(attempts[0].Err, errConnectionLost) || attempts[1].StatusCode != http.StatusCreated || !attempts[1].Replayed {
		t.Fatalf("attempts %+v, want a lost answer, then the stored one", attempts)
	}
	if len(lossy.keys) != 2 || lossy.keys[0] == "" || lossy.keys[0] != lossy.keys[1] {
		t.Fatalf("idempotency keys %q, want one key on both attempts", lossy.keys)
	}
	wallets := must[[]client.Wallet](t, "wallets")(plain.ListCustomerWallets(ctx, f.projectID, f.customerID))
	if len(wallets) != 2 || !slices.ContainsFunc(wallets, func(w client.Wallet) bool { return w.ID == wallet.ID }) {
		t.Fatalf("wallets %+v, want the fixture's and %s only", wallets, wallet.ID)
	}

	// A new logical call gets a new key, and opens a new wallet.
	second := must[*client.Wallet](t, "second wallet")(c.CreateWallet(ctx, f.projectID, request))
	if len(lossy.keys) != 3 || lossy.keys[2] == lossy.keys[0] || second.ID == wallet.ID {
		t.Fatalf("idempotency keys %q, wallet %s: want a fresh key and wallet per call", lossy.keys, second.ID)
	}
	if got := must[[]client.Wallet](t, "wallets")(plain.ListCustomerWallets(ctx, f.projectID, f.customerID)); len(got) != 3 {
		t.Fatalf("%d wallets, want 3", len(got))
	}
}

func TestLostAnswersOfEveryKindOfWriteAreReplayed(t *testing.T) {
	// Writes that are not repeatable by nature: a repeat without the key would answer
	// ProjectExists, AssetNotFound, InvalidStatusTransition or HoldResolved for what succeeded.
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, c *client.Client, f ledgerFixture) error
	}{
		{"create project", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			_, err := c.CreateProject(ctx, client.CreateProjectRequest{ID: "p2", Name: "Two"})
			return err
		}},
		{"delete asset", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			return c.DeleteAsset(ctx, f.projectID, f.spareAssetID)
		}},
		{"suspend customer", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			_, err := c.SuspendCustomer(ctx, f.projectID, f.customerID)
			return err
		}},
		{"close wallet", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			_, err := c.SetWalletStatus(ctx, f.projectID, f.wallet.ID, client.WalletClosed)
			return err
		}},
		{"release hold", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			_, err := c.ReleaseHold(ctx, f.projectID, f.holdID)
			return err
		}},
		{"capture hold", func(ctx context.Context, c *client.Client, f ledgerFixture) error {
			_, err := c.CaptureHold(ctx, f.projectID, f.holdID, client.CaptureRequest{To: f.system.ID})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			baseURL, _ := startServer(t, nil)
			ctx := testutil.Context(t, callLimit)
			plain := newClient(t, baseURL)
			f := newFixture(t, ctx, plain)
			f.spareAssetID = must[*client.Asset](t, "spare asset")(plain.CreateAsset(ctx, f.projectID, client.CreateAssetRequest{Name: "Spare", Code: "SPR", Fractions: 1})).ID
			if strings.HasSuffix(tc.name, "hold") {
				issue(t, ctx, plain, f, "fund", f.wallet.ID, "1")
				f.holdID = placeHold(t, ctx, plain, f, "hold", "1", 0)
			}
			lossy := &lossyTransport{next: http.DefaultTransport, drop: func(r *http.Request, sent int) bool { return sent == 1 }}
			c := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
			var attempts []client.Attempt
			if err := tc.call(recordAttempts(ctx, &attempts), c, f); err != nil {
				t.Fatalf("error %v, want the first attempt's success", err)
			}
			if len(attempts) != 2 || attempts[0].Err == nil || attempts[1].StatusCode >= 300 || !attempts[1].Replayed {
				t.Fatalf("attempts %+v, want a lost answer, then the stored one", attempts)
			}
		})
	}
}

func TestUnknownThenNotAppliedStaysUnknown(t *testing.T) {
	// The first attempt applies and its answer is lost; every later one is refused as not
	// applied. The call must not report "not applied": its first attempt did apply.
	baseURL, _ := startServer(t, serverSays(posts("/transactions", 2, 100), http.StatusServiceUnavailable, client.CodeUnavailable, false))
	ctx := testutil.Context(t, callLimit)
	plain := newClient(t, baseURL)
	f := newFixture(t, ctx, plain)
	lossy := &lossyTransport{next: http.DefaultTransport, drop: func(r *http.Request, sent int) bool { return sent == 1 }}
	c := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
	var attempts []client.Attempt
	_, err := c.CreateTransaction(recordAttempts(ctx, &attempts), f.projectID, client.TransactionRequest{ReferenceID: "issue-2",
		Operations: []client.Operation{{Type: client.OperationIssue, To: f.wallet.ID, Amount: "3"}}})
	if !errors.Is(err, client.ErrOutcomeUnknown) || errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("error %v, want an unknown outcome", err)
	}
	if len(attempts) != testRetries.MaxAttempts || attempts[len(attempts)-1].Code != client.CodeUnavailable {
		t.Fatalf("attempts %+v", attempts)
	}
	if n := referenceCount(t, ctx, plain, f.projectID, "issue-2"); n != 1 {
		t.Fatalf("%d transactions hold issue-2, want 1", n)
	}
}

func TestConnectionRefusedIsNotAppliedAndRetried(t *testing.T) {
	addr := testutil.FreeAddr(t) // nothing listens there
	c := newClient(t, "http://"+addr)
	var attempts int
	_, err := c.CreateTransaction(client.WithAttemptHook(testutil.Context(t, callLimit), func(client.Attempt) { attempts++ }), "p",
		client.TransactionRequest{ReferenceID: "r", Operations: []client.Operation{{Type: client.OperationIssue, To: "w", Amount: "1"}}})
	var transportErr *client.TransportError
	if !errors.As(err, &transportErr) || !transportErr.NotSent || !errors.Is(err, client.ErrUnavailable) ||
		errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("error %#v", err)
	}
	if attempts != testRetries.MaxAttempts {
		t.Fatalf("%d attempts, want %d", attempts, testRetries.MaxAttempts)
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	for _, tc := range []struct {
		baseURL string
		opts    []client.Option
	}{
		{"127.0.0.1:8081", nil},
		{"ftp://127.0.0.1", nil},
		{"http://127.0.0.1:8081?x=1", nil},
		{"http://127.0.0.1:8081", []client.Option{client.WithRetryPolicy(client.RetryPolicy{})}},
		{"http://127.0.0.1:8081", []client.Option{client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 2, BackoffMin: time.Second})}},
	} {
		if _, err := client.New(tc.baseURL, tc.opts...); err == nil {
			t.Errorf("New(%q) accepted", tc.baseURL)
		}
	}
}

func TestRetryAfterIsHonouredUpToBackoffMax(t *testing.T) {
	baseURL, _ := startServer(t, serverSays(posts("/projects", 1, 1), http.StatusServiceUnavailable, client.CodeUnavailable, false))
	c := newClient(t, baseURL, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 2, BackoffMin: time.Millisecond, BackoffMax: time.Minute}))
	start := time.Now()
	if _, err := c.CreateProject(testutil.Context(t, callLimit), client.CreateProjectRequest{ID: "p", Name: "P"}); err != nil {
		t.Fatalf("create project: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("retried after %v, before the server's Retry-After of 1s", waited)
	}
}

func TestRetriesEndWithTheContext(t *testing.T) {
	baseURL, _ := startServer(t, serverSays(posts("/projects", 1, 100), http.StatusServiceUnavailable, client.CodeUnavailable, false))
	c := newClient(t, baseURL, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 100, BackoffMin: time.Minute, BackoffMax: time.Minute}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var attempts int
	_, err := c.CreateProject(client.WithAttemptHook(ctx, func(client.Attempt) { attempts++ }), client.CreateProjectRequest{ID: "p", Name: "P"})
	if !errors.Is(err, client.ErrUnavailable) || attempts != 1 {
		t.Fatalf("error %v after %d attempts, want the first 503 Unavailable", err, attempts)
	}
	// The pause would outlast the context, so the call gives up at once rather than sleep.
	if waited := time.Since(start); waited > callLimit/2 {
		t.Fatalf("the call took %v", waited)
	}
}

func TestReadsAreRetriedAfterAnyFailure(t *testing.T) {
	// A proxy's 502 page without the envelope, then a lost answer, then the real answer.
	proxyPage := func(next http.Handler) http.Handler {
		var mu sync.Mutex
		answered := false
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first := r.Method == http.MethodGet && !answered
			answered = answered || first
			mu.Unlock()
			if !first {
				next.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
		})
	}
	baseURL, _ := startServer(t, proxyPage)
	ctx := testutil.Context(t, callLimit)
	f := newFixture(t, ctx, newClient(t, baseURL))
	lossy := &lossyTransport{next: http.DefaultTransport, drop: func(r *http.Request, sent int) bool { return sent == 2 }}
	c := newClient(t, baseURL, client.WithHTTPClient(&http.Client{Transport: lossy}))
	var attempts []client.Attempt
	wallet, err := c.GetWallet(recordAttempts(ctx, &attempts), f.projectID, f.wallet.ID)
	if err != nil || wallet.ID != f.wallet.ID {
		t.Fatalf("get wallet: %+v, %v", wallet, err)
	}
	if len(attempts) != 3 || attempts[0].StatusCode != http.StatusBadGateway || attempts[0].Code != "" || attempts[1].Err == nil || attempts[2].StatusCode != http.StatusOK {
		t.Fatalf("attempts %+v", attempts)
	}
	// Without retries the proxy's answer is the error: no code, the page as the message.
	baseURL, _ = startServer(t, proxyPage)
	_, err = newClient(t, baseURL, client.WithRetryPolicy(client.NoRetries)).ListProjects(ctx)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "" || apiErr.Message != "<html>bad gateway</html>" ||
		!errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("proxy page: %#v", err)
	}
}

// issue creates amount in walletID.
func issue(t *testing.T, ctx context.Context, c *client.Client, f ledgerFixture, referenceID, walletID string, amount client.Amount) {
	t.Helper()
	must[*client.Transaction](t, "issue "+referenceID)(c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: referenceID,
		Operations: []client.Operation{{Type: client.OperationIssue, To: walletID, Amount: amount}}}))
}

// placeHold holds amount of the fixture's wallet and returns the hold's ID.
func placeHold(t *testing.T, ctx context.Context, c *client.Client, f ledgerFixture, referenceID string, amount client.Amount, expiresAtMs int64) string {
	t.Helper()
	tx := must[*client.Transaction](t, "hold "+referenceID)(c.CreateTransaction(ctx, f.projectID, client.TransactionRequest{ReferenceID: referenceID,
		Operations: []client.Operation{{Type: client.OperationHold, From: f.wallet.ID, Amount: amount, ExpiresAt: expiresAtMs}}}))
	if len(tx.Operations) != 1 || tx.Operations[0].HoldID == "" || tx.Operations[0].ExpiresAt != expiresAtMs || tx.Operations[0].Amount != amount {
		t.Fatalf("hold transaction %+v", tx)
	}
	return tx.Operations[0].HoldID
}

// wantBalances fails unless the fixture's wallet has these balance, held and available.
func wantBalances(t *testing.T, ctx context.Context, c *client.Client, f ledgerFixture, balance, held, available client.Amount) {
	t.Helper()
	got := must[*client.Wallet](t, "get wallet")(c.GetWallet(ctx, f.projectID, f.wallet.ID))
	if got.Balance != balance || got.Held != held || got.Available != available {
		t.Fatalf("wallet balance %s held %s available %s, want %s %s %s", got.Balance, got.Held, got.Available, balance, held, available)
	}
}

func TestHoldCaptureAndRelease(t *testing.T) {
	baseURL, backend := startServer(t, nil)
	ctx := testutil.Context(t, callLimit)
	c := newClient(t, baseURL)
	f := newFixture(t, ctx, c)
	issue(t, ctx, c, f, "fund", f.wallet.ID, "100")

	// A hold of 60 with an expiry: the balance stays, the available part shrinks.
	expiresAtMs := backend.NowMs() + 3_600_000
	holdID := placeHold(t, ctx, c, f, "hold-1", "60", expiresAtMs)
	hold := must[*client.Hold](t, "get hold")(c.GetHold(ctx, f.projectID, holdID))
	if hold.ID != holdID || hold.WalletID != f.wallet.ID || hold.Amount != "60" || hold.Status != client.HoldActive ||
		hold.ExpiresAt != expiresAtMs || hold.CapturedAmount != "0" || hold.TransactionID == "" || hold.ResolvedAt != 0 {
		t.Fatalf("hold %+v", hold)
	}
	wantBalances(t, ctx, c, f, "100", "60", "40")

	// Capture 25 of it: a transfer of 25, and the other 35 is available again.
	captured, err := c.CaptureHold(ctx, f.projectID, holdID, client.CaptureRequest{To: f.system.ID, Amount: "25", ReferenceID: "capture-1"})
	if err != nil || captured.Hold.Status != client.HoldCaptured || captured.Hold.CapturedAmount != "25" || captured.Transaction == nil ||
		captured.Transaction.Status != client.TransactionCompleted || captured.Transaction.ReferenceID != "capture-1" ||
		captured.Hold.CaptureTransactionID != captured.Transaction.ID {
		t.Fatalf("capture: %+v, %v", captured, err)
	}
	if op := captured.Transaction.Operations; len(op) != 1 || op[0].Type != client.OperationTransfer || op[0].From != f.wallet.ID ||
		op[0].To != f.system.ID || op[0].Amount != "25" {
		t.Fatalf("capture operations %+v", op)
	}
	wantBalances(t, ctx, c, f, "75", "0", "75")

	// It resolved once: a second capture, and a release, are refused with the hold as it is.
	again, err := c.CaptureHold(ctx, f.projectID, holdID, client.CaptureRequest{To: f.system.ID})
	if !client.IsCode(err, client.CodeHoldResolved) || client.StatusCode(err) != http.StatusConflict || again == nil ||
		again.Hold == nil || again.Hold.Status != client.HoldCaptured || again.Hold.CapturedAmount != "25" || again.Transaction != nil {
		t.Fatalf("second capture: %+v, %v", again, err)
	}
	refused, err := c.ReleaseHold(ctx, f.projectID, holdID)
	if !client.IsCode(err, client.CodeHoldResolved) || refused == nil || refused.Status != client.HoldCaptured {
		t.Fatalf("release of a captured hold: %+v, %v", refused, err)
	}
	wantBalances(t, ctx, c, f, "75", "0", "75")

	// A capture whose transfer fails (the payee is suspended) records the failed transaction;
	// the hold stays active, and is then released whole.
	holdID = placeHold(t, ctx, c, f, "hold-2", "30", 0)
	payee := must[*client.Wallet](t, "payee")(c.CreateSystemWallet(ctx, f.projectID, client.CreateSystemWalletRequest{AssetID: f.assetID}))
	must[*client.Wallet](t, "suspend payee")(c.SetWalletStatus(ctx, f.projectID, payee.ID, client.WalletSuspended))
	failed, err := c.CaptureHold(ctx, f.projectID, holdID, client.CaptureRequest{To: payee.ID})
	if !client.IsCode(err, client.CodeWalletSuspended) || client.StatusCode(err) != http.StatusUnprocessableEntity || failed == nil ||
		failed.Hold != nil || failed.Transaction == nil || failed.Transaction.Status != client.TransactionFailed ||
		failed.Transaction.FailureReason != client.CodeWalletSuspended {
		t.Fatalf("failed capture: %+v, %v", failed, err)
	}
	if got := must[*client.Hold](t, "get hold")(c.GetHold(ctx, f.projectID, holdID)); got.Status != client.HoldActive {
		t.Fatalf("hold after a failed capture %+v", got)
	}
	wantBalances(t, ctx, c, f, "75", "30", "45")
	released := must[*client.Hold](t, "release")(c.ReleaseHold(ctx, f.projectID, holdID))
	if released.Status != client.HoldReleased || released.CapturedAmount != "0" || released.ResolvedAt == 0 {
		t.Fatalf("released hold %+v", released)
	}
	wantBalances(t, ctx, c, f, "75", "0", "75")

	// A hold past its expiry is released by the next write.
	holdID = placeHold(t, ctx, c, f, "hold-3", "10", backend.NowMs()+1000)
	backend.Advance(2000)
	issue(t, ctx, c, f, "after-expiry", f.system.ID, "1")
	if got := must[*client.Hold](t, "get hold")(c.GetHold(ctx, f.projectID, holdID)); got.Status != client.HoldExpired {
		t.Fatalf("hold after its expiry %+v", got)
	}
	wantBalances(t, ctx, c, f, "75", "0", "75")

	if _, err := c.GetHold(ctx, f.projectID, "h0000nothere.0"); !errors.Is(err, client.ErrNotFound) || !client.IsCode(err, client.CodeHoldNotFound) {
		t.Fatalf("unknown hold: %v", err)
	}
}
