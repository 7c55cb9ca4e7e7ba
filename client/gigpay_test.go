package client_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// The GigPay calls against a server that answers canned JSON in the shapes of
// docs/gigpay-api.md (GIGPAY-SPEC): the real handlers are tested against the real client in
// httpapi's own tests; these pin what the client sends and how it reads every field.

// cannedToken is a token view as the server writes it.
const cannedToken = `{"id":"k0a3fAbC","token":"g0a3f_abcdefghijklmnopqrstu","status":"Active",` +
	`"link":"https://wallet.stage.gigpay.com/payment/g0a3f_abcdefghijklmnopqrstu","assetType":"usd",` +
	`"sourceAccountId":"w0a3fPAYER","amount":1.10,"expiresAtUtc":"2024-01-09T18:00:56.246Z","memo":"lunch",` +
	`"clientReference":"ref-1","createdAtUtc":"2024-01-09T17:00:00.001Z","modifiedAtUtc":"2024-01-09T17:00:00.001Z"}`

// cannedPayment is a payment view of a claimed token.
const cannedPayment = `{"paymentId":"y0a3fP","amount":0.01,"assetType":"usd","status":"completed","type":"transfer",` +
	`"createdAtUtc":"2024-01-09T19:19:27.693Z","modifiedAtUtc":"2024-01-09T19:19:28.000Z",` +
	`"source":{"id":"w0a3fPAYER","businessAccountId":"gigpay","userIdentityId":"alice","externalStorage":""},` +
	`"destination":{"id":"w0a3fPAYEE","businessAccountId":"gigpay","userIdentityId":"bob","externalStorage":""},` +
	`"paymentTokenId":"k0a3fAbC"}`

// seen is one request the canned server received.
type seen struct {
	method, path, query, body, key, auth string
}

// cannedServer answers each "METHOD /path" with a fixed status and body, records every
// request, and answers 404 for anything else.
type cannedServer struct {
	mutex    sync.Mutex
	requests []seen
	answers  map[string]func(attempt int) (int, string)
	attempts map[string]int
}

func startCanned(t *testing.T, answers map[string]func(attempt int) (int, string)) (*cannedServer, string) {
	t.Helper()
	s := &cannedServer{answers: answers, attempts: map[string]int{}}
	baseURL := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		route := r.Method + " " + r.URL.EscapedPath()
		s.mutex.Lock()
		s.requests = append(s.requests, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body), r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization")})
		s.attempts[route]++
		attempt := s.attempts[route]
		answer := s.answers[route]
		s.mutex.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if answer == nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"NotFound","message":"no route"}}`)
			return
		}
		status, text := answer(attempt)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	return s, baseURL
}

// always answers status and body on every attempt.
func always(status int, body string) func(int) (int, string) {
	return func(int) (int, string) { return status, body }
}

func (s *cannedServer) last(t *testing.T) seen {
	t.Helper()
	s.mutex.Lock()
	defer s.mutex.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("no request reached the server")
	}
	return s.requests[len(s.requests)-1]
}

// all returns the requests so far.
func (s *cannedServer) all() []seen {
	s.mutex.Lock()
	defer s.mutex.Unlock()
	return append([]seen(nil), s.requests...)
}

func (s *cannedServer) count() int {
	s.mutex.Lock()
	defer s.mutex.Unlock()
	return len(s.requests)
}

// wantRequest fails unless got is method path?query with exactly body (compared as JSON
// text, byte for byte: amounts must travel as the literals given) and, for a write, an
// Idempotency-Key.
func wantRequest(t *testing.T, got seen, method, path, query, body string) {
	t.Helper()
	if got.method != method || got.path != path || got.query != query || got.body != body {
		t.Errorf("request %s %s?%s %s\nwant    %s %s?%s %s", got.method, got.path, got.query, got.body, method, path, query, body)
	}
	if got.auth != "Bearer "+testToken {
		t.Errorf("%s %s: Authorization %q", method, path, got.auth)
	}
	if (method != http.MethodGet) != (got.key != "") {
		t.Errorf("%s %s: Idempotency-Key %q", method, path, got.key)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGigPayCallsSendTheContractAndReadEveryField(t *testing.T) {
	account := `{"id":"w0a3fPAYER","businessAccountId":"gigpay","userIdentityId":"alice","assetType":"usd",` +
		`"balance":10,"available":8.9,"held":1.10,"status":"open","createdAtUtc":"2024-01-09T17:00:00.000Z"}`
	failedItem := `{"index":1,"result":"failed","error":{"code":"InsufficientFunds","message":"available 0"}}`
	canned, baseURL := startCanned(t, map[string]func(int) (int, string){
		"POST /api/v1/accounts":                                          always(201, account),
		"GET /api/v1/accounts/w0a3fPAYER":                                always(200, account),
		"POST /api/v1/payment-tokens":                                    always(201, cannedToken),
		"POST /api/v1/payment-tokens/batch":                              always(200, `{"data":[{"index":0,"result":"created","token":`+cannedToken+`},`+failedItem+`]}`),
		"GET /api/v1/payment-tokens/k0a3fAbC":                            always(200, cannedToken),
		"GET /api/v1/payment-tokens/k0a3fAbC/qr.png":                     always(200, "\x89PNG\r\n"),
		"POST /api/v1/payment-tokens/g0a3f_abcdefghijklmnopqrstu/claim":  always(200, strings.Replace(cannedToken, `"status":"Active"`, `"status":"Succeeded","destinationAccountId":"w0a3fPAYEE","paymentId":"y0a3fP"`, 1)),
		"POST /api/v1/payment-tokens/g0a3f_abcdefghijklmnopqrstu/reject": always(200, strings.Replace(cannedToken, `"status":"Active"`, `"status":"Rejected"`, 1)),
		"POST /api/v1/payment-tokens/k0a3fAbC/close":                     always(200, strings.Replace(cannedToken, `"status":"Active"`, `"status":"Closed","reason":"masspay failed"`, 1)),
		"POST /api/v1/payments":                                          always(201, cannedPayment),
		"POST /api/v1/payments/y0a3fP/status":                            always(200, cannedPayment),
		"GET /api/v1/payments/y0a3fP":                                    always(200, cannedPayment),
		"GET /api/v1/payments":                                           always(200, `{"data":[`+cannedPayment+`],"hasMore":true,"nextCursor":"AQID"}`),
	})
	c := newClient(t, baseURL)
	ctx := testutil.Context(t, callLimit)

	gotAccount := must[*client.GigPayAccount](t, "create account")(c.CreateGigPayAccount(ctx, client.CreateGigPayAccountRequest{UserIdentityID: "alice", AssetType: "usd"}))
	wantRequest(t, canned.last(t), "POST", "/api/v1/accounts", "", `{"userIdentityId":"alice","assetType":"usd"}`)
	want := client.GigPayAccount{ID: "w0a3fPAYER", BusinessAccountID: "gigpay", UserIdentityID: "alice", AssetType: "usd",
		Balance: "10", Available: "8.9", Held: "1.10", Status: "open", CreatedAtUtc: mustTime(t, "2024-01-09T17:00:00Z")}
	if *gotAccount != want {
		t.Errorf("account %+v\nwant    %+v", *gotAccount, want)
	}
	gotAccount = must[*client.GigPayAccount](t, "get account")(c.GetGigPayAccount(ctx, "w0a3fPAYER"))
	wantRequest(t, canned.last(t), "GET", "/api/v1/accounts/w0a3fPAYER", "", "")
	if *gotAccount != want {
		t.Errorf("account %+v", *gotAccount)
	}

	// A token create: the amount travels as the literal given, the expiry in UTC milliseconds.
	expires := time.Date(2024, 1, 9, 20, 0, 56, 246_900_000, time.FixedZone("x", 2*3600))
	create := client.CreatePaymentTokenRequest{AssetType: "usd", SourceAccountID: "w0a3fPAYER", Amount: "1.10", ExpiresAtUtc: expires, Memo: "lunch", ClientReference: "ref-1"}
	token := must[*client.PaymentToken](t, "create token")(c.CreatePaymentToken(ctx, create))
	const createBody = `{"assetType":"usd","sourceAccountId":"w0a3fPAYER","amount":1.10,"expiresAtUtc":"2024-01-09T18:00:56.246Z","memo":"lunch","clientReference":"ref-1"}`
	wantRequest(t, canned.last(t), "POST", "/api/v1/payment-tokens", "", createBody)
	wantToken := client.PaymentToken{ID: "k0a3fAbC", Token: "g0a3f_abcdefghijklmnopqrstu", Status: client.PaymentTokenActive,
		Link: "https://wallet.stage.gigpay.com/payment/g0a3f_abcdefghijklmnopqrstu", AssetType: "usd", SourceAccountID: "w0a3fPAYER",
		Amount: "1.10", ExpiresAtUtc: mustTime(t, "2024-01-09T18:00:56.246Z"), Memo: "lunch", ClientReference: "ref-1",
		CreatedAtUtc: mustTime(t, "2024-01-09T17:00:00.001Z"), ModifiedAtUtc: mustTime(t, "2024-01-09T17:00:00.001Z")}
	if *token != wantToken {
		t.Errorf("token %+v\nwant  %+v", *token, wantToken)
	}
	if units, err := token.Amount.Units(2); err != nil || units.Int64() != 110 {
		t.Errorf("token amount in cents: %v, %v", units, err)
	}

	// A batch: per-item results in order.
	second := create
	second.Amount, second.ClientReference, second.Memo = "0.01", "", ""
	items := must[[]client.PaymentTokenBatchItem](t, "batch")(c.CreatePaymentTokens(ctx, []client.CreatePaymentTokenRequest{create, second}))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payment-tokens/batch", "",
		`{"items":[`+createBody+`,{"assetType":"usd","sourceAccountId":"w0a3fPAYER","amount":0.01,"expiresAtUtc":"2024-01-09T18:00:56.246Z","memo":""}]}`)
	if len(items) != 2 || items[0].Result != client.BatchItemCreated || items[0].Token == nil || *items[0].Token != wantToken || items[0].Error != nil ||
		items[1].Result != client.BatchItemFailed || items[1].Token != nil || items[1].Error == nil || items[1].Error.Code != client.CodeInsufficientFunds {
		t.Errorf("batch items %+v", items)
	}

	token = must[*client.PaymentToken](t, "get token")(c.GetPaymentToken(ctx, "k0a3fAbC"))
	wantRequest(t, canned.last(t), "GET", "/api/v1/payment-tokens/k0a3fAbC", "", "")
	if *token != wantToken {
		t.Errorf("token %+v", *token)
	}
	png := must[[]byte](t, "qr")(c.PaymentTokenQR(ctx, "k0a3fAbC"))
	wantRequest(t, canned.last(t), "GET", "/api/v1/payment-tokens/k0a3fAbC/qr.png", "", "")
	if string(png) != "\x89PNG\r\n" {
		t.Errorf("qr %q", png)
	}

	token = must[*client.PaymentToken](t, "claim")(c.ClaimPaymentToken(ctx, wantToken.Token, "w0a3fPAYEE"))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payment-tokens/g0a3f_abcdefghijklmnopqrstu/claim", "", `{"destinationAccountId":"w0a3fPAYEE"}`)
	if token.Status != client.PaymentTokenSucceeded || token.DestinationAccountID != "w0a3fPAYEE" || token.PaymentID != "y0a3fP" {
		t.Errorf("claimed token %+v", *token)
	}
	token = must[*client.PaymentToken](t, "reject")(c.RejectPaymentToken(ctx, wantToken.Token))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payment-tokens/g0a3f_abcdefghijklmnopqrstu/reject", "", `{}`)
	if token.Status != client.PaymentTokenRejected {
		t.Errorf("rejected token %+v", *token)
	}
	token = must[*client.PaymentToken](t, "close")(c.ClosePaymentToken(ctx, "k0a3fAbC", "masspay failed"))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payment-tokens/k0a3fAbC/close", "", `{"reason":"masspay failed"}`)
	if token.Status != client.PaymentTokenClosed || token.Reason != "masspay failed" {
		t.Errorf("closed token %+v", *token)
	}

	wantPayment := client.GigPayPayment{PaymentID: "y0a3fP", Amount: "0.01", AssetType: "usd", Status: client.GigPayCompleted, Type: client.GigPayTransfer,
		CreatedAtUtc: mustTime(t, "2024-01-09T19:19:27.693Z"), ModifiedAtUtc: mustTime(t, "2024-01-09T19:19:28Z"),
		Source:      client.GigPayParty{ID: "w0a3fPAYER", BusinessAccountID: "gigpay", UserIdentityID: "alice"},
		Destination: client.GigPayParty{ID: "w0a3fPAYEE", BusinessAccountID: "gigpay", UserIdentityID: "bob"}, PaymentTokenID: "k0a3fAbC"}
	payment := must[*client.GigPayPayment](t, "create payment")(c.CreateGigPayPayment(ctx, client.CreateGigPayPaymentRequest{
		Type: client.GigPayDeposit, AccountID: "w0a3fPAYER", AssetType: "usd", Amount: "10000", ExternalStorage: "bank-1", ClientReference: "dep-1"}))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payments", "",
		`{"type":"deposit","accountId":"w0a3fPAYER","assetType":"usd","amount":10000,"externalStorage":"bank-1","clientReference":"dep-1"}`)
	if *payment != wantPayment {
		t.Errorf("payment %+v\nwant    %+v", *payment, wantPayment)
	}
	payment = must[*client.GigPayPayment](t, "status")(c.UpdateGigPayPaymentStatus(ctx, "y0a3fP", client.GigPayCompleted, ""))
	wantRequest(t, canned.last(t), "POST", "/api/v1/payments/y0a3fP/status", "", `{"status":"completed"}`)
	if *payment != wantPayment {
		t.Errorf("payment %+v", *payment)
	}
	payment = must[*client.GigPayPayment](t, "get payment")(c.GetGigPayPayment(ctx, "y0a3fP"))
	wantRequest(t, canned.last(t), "GET", "/api/v1/payments/y0a3fP", "", "")
	if *payment != wantPayment {
		t.Errorf("payment %+v", *payment)
	}

	// The list: every filter, the sort and the cursor in the query.
	page := must[*client.GigPayPaymentPage](t, "list")(c.ListGigPayPayments(ctx, client.GigPayPaymentQuery{
		Status: client.GigPayCompleted, Type: client.GigPayTransfer, AccountID: "w0a3fPAYER", AssetType: "usd",
		CreatedFrom: mustTime(t, "2024-01-09T00:00:00Z"), CreatedTo: mustTime(t, "2024-01-10T00:00:00.5Z"),
		Sort: client.SortByAmount, Order: "desc", Limit: 10, Cursor: "AQ-_"}))
	wantRequest(t, canned.last(t), "GET", "/api/v1/payments",
		"accountId=w0a3fPAYER&assetType=usd&createdFromUtc=2024-01-09T00%3A00%3A00.000Z&createdToUtc=2024-01-10T00%3A00%3A00.500Z&cursor=AQ-_&limit=10&order=desc&sort=amount&status=completed&type=transfer", "")
	if len(page.Data) != 1 || page.Data[0] != wantPayment || !page.HasMore || page.NextCursor != "AQID" {
		t.Errorf("page %+v", page)
	}
	must[*client.GigPayPaymentPage](t, "list")(c.ListGigPayPayments(ctx, client.GigPayPaymentQuery{}))
	wantRequest(t, canned.last(t), "GET", "/api/v1/payments", "", "")
}

// TestTokenTransitionRefusedReturnsTheTokenAsItIs: 409 TokenNotActive carries the token's
// current view, which the call returns beside the *Error; a 404 returns no token.
func TestTokenTransitionRefusedReturnsTheTokenAsItIs(t *testing.T) {
	claimed := strings.Replace(cannedToken, `"status":"Active"`, `"status":"Succeeded","destinationAccountId":"w0a3fOTHER"`, 1)
	_, baseURL := startCanned(t, map[string]func(int) (int, string){
		"POST /api/v1/payment-tokens/gTAKEN/claim":  always(409, `{"error":{"code":"TokenNotActive","message":"token is Succeeded"},"token":`+claimed+`}`),
		"POST /api/v1/payment-tokens/gFORGED/claim": always(404, `{"error":{"code":"TokenNotFound","message":"no such token"}}`),
		"POST /api/v1/payment-tokens/gFAR/claim":    always(422, `{"error":{"code":"CrossShardTransaction","message":"payee on another shard"}}`),
	})
	c := newClient(t, baseURL)
	ctx := testutil.Context(t, callLimit)
	token, err := c.ClaimPaymentToken(ctx, "gTAKEN", "w0a3fPAYEE")
	if !client.IsCode(err, client.CodeTokenNotActive) || client.StatusCode(err) != http.StatusConflict || token == nil ||
		token.Status != client.PaymentTokenSucceeded || token.DestinationAccountID != "w0a3fOTHER" {
		t.Errorf("claim of a claimed token: %+v, %v", token, err)
	}
	token, err = c.ClaimPaymentToken(ctx, "gFORGED", "w0a3fPAYEE")
	if !errors.Is(err, client.ErrNotFound) || !client.IsCode(err, client.CodeTokenNotFound) || token != nil {
		t.Errorf("claim of a forged token: %+v, %v", token, err)
	}
	token, err = c.ClaimPaymentToken(ctx, "gFAR", "w0b00PAYEE")
	if !client.IsCode(err, client.CodeCrossShardTransaction) || client.StatusCode(err) != http.StatusUnprocessableEntity || token != nil {
		t.Errorf("cross-shard claim: %+v, %v", token, err)
	}
}

// TestBatchAnswerMustMatchTheItems: a batch answer with fewer results than items, or results
// out of order, is an error rather than a misattributed token.
func TestBatchAnswerMustMatchTheItems(t *testing.T) {
	item := client.CreatePaymentTokenRequest{AssetType: "usd", SourceAccountID: "w", Amount: "1", ExpiresAtUtc: time.Unix(1e9, 0)}
	for name, answer := range map[string]string{
		"short":    `{"data":[{"index":0,"result":"created","token":` + cannedToken + `}]}`,
		"reversed": `{"data":[{"index":1,"result":"created","token":` + cannedToken + `},{"index":0,"result":"created","token":` + cannedToken + `}]}`,
	} {
		_, baseURL := startCanned(t, map[string]func(int) (int, string){"POST /api/v1/payment-tokens/batch": always(200, answer)})
		if items, err := newClient(t, baseURL).CreatePaymentTokens(testutil.Context(t, callLimit), []client.CreatePaymentTokenRequest{item, item}); err == nil {
			t.Errorf("%s: %+v, no error", name, items)
		}
	}
}

// TestAllGigPayPaymentsFollowsTheCursor walks three pages, each asked for with the previous
// page's cursor and the same filters.
func TestAllGigPayPaymentsFollowsTheCursor(t *testing.T) {
	pages := []string{
		`{"data":[` + cannedPayment + `,` + cannedPayment + `],"hasMore":true,"nextCursor":"c1"}`,
		`{"data":[` + cannedPayment + `],"hasMore":true,"nextCursor":"c2"}`,
		`{"data":[],"hasMore":false}`,
	}
	canned, baseURL := startCanned(t, map[string]func(int) (int, string){
		"GET /api/v1/payments": func(attempt int) (int, string) { return 200, pages[min(attempt, len(pages))-1] },
	})
	count := 0
	for payment, err := range newClient(t, baseURL).AllGigPayPayments(testutil.Context(t, callLimit), client.GigPayPaymentQuery{Type: client.GigPayTransfer, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if payment.PaymentID != "y0a3fP" {
			t.Fatalf("payment %+v", payment)
		}
		count++
	}
	if count != 3 {
		t.Errorf("walked %d payments, want 3", count)
	}
	queries := []string{"limit=2&type=transfer", "cursor=c1&limit=2&type=transfer", "cursor=c2&limit=2&type=transfer"}
	for index, request := range canned.all() {
		if request.query != queries[index] {
			t.Errorf("page %d query %q, want %q", index+1, request.query, queries[index])
		}
	}
	if canned.count() != 3 {
		t.Errorf("%d requests, want 3", canned.count())
	}
}

// TestGigPayRetries: every GigPay write is resent after an unknown outcome under one key, the
// call's or the caller's (WithIdempotencyKey), which the server honours on every GigPay route.
func TestGigPayRetries(t *testing.T) {
	unknownThen := func(status int, body string) func(int) (int, string) {
		return func(attempt int) (int, string) {
			if attempt == 1 {
				return 503, `{"error":{"code":"OutcomeUnknown","message":"leader lost"}}`
			}
			return status, body
		}
	}
	canned, baseURL := startCanned(t, map[string]func(int) (int, string){
		"POST /api/v1/payment-tokens": unknownThen(201, cannedToken),
		"POST /api/v1/payments":       unknownThen(201, cannedPayment),
		"POST /api/v1/accounts":       unknownThen(201, `{"id":"w"}`),
	})
	c := newClient(t, baseURL)
	ctx := client.WithIdempotencyKey(testutil.Context(t, callLimit), "caller-key-1")
	item := client.CreatePaymentTokenRequest{AssetType: "usd", SourceAccountID: "w", Amount: "1", ExpiresAtUtc: time.Unix(1e9, 0)}
	if _, err := c.CreatePaymentToken(ctx, item); err != nil {
		t.Fatal(err)
	}
	plain := testutil.Context(t, callLimit)
	if _, err := c.CreateGigPayPayment(plain, client.CreateGigPayPaymentRequest{Type: client.GigPayDeposit, AccountID: "w", AssetType: "usd", Amount: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateGigPayAccount(plain, client.CreateGigPayAccountRequest{UserIdentityID: "u", AssetType: "usd"}); err != nil {
		t.Fatal(err)
	}
	requests := canned.all()
	if len(requests) != 6 {
		t.Fatalf("%d requests, want 2 attempts of each of 3 calls", len(requests))
	}
	if requests[0].key != "caller-key-1" || requests[1].key != "caller-key-1" {
		t.Errorf("token create keys %q, %q: want the caller's", requests[0].key, requests[1].key)
	}
	for _, pair := range [][2]seen{{requests[2], requests[3]}, {requests[4], requests[5]}} {
		if pair[0].key == "" || pair[0].key != pair[1].key || pair[0].key == "caller-key-1" || pair[0].path != pair[1].path {
			t.Errorf("%s attempts with keys %q and %q: want one fresh key", pair[0].path, pair[0].key, pair[1].key)
		}
	}
	if requests[2].key == requests[4].key {
		t.Error("two calls shared a key")
	}
}

// TestPaymentStatusRefusedReturnsThePayment: 422 InvalidStatusTransition comes back with the
// payment as it is.
func TestPaymentStatusRefusedReturnsThePayment(t *testing.T) {
	_, baseURL := startCanned(t, map[string]func(int) (int, string){
		"POST /api/v1/payments/y0a3fP/status": always(422, `{"error":{"code":"InvalidStatusTransition","message":"completed is final"},"payment":`+cannedPayment+`}`),
	})
	payment, err := newClient(t, baseURL).UpdateGigPayPaymentStatus(testutil.Context(t, callLimit), "y0a3fP", client.GigPayFailed, "late")
	if !client.IsCode(err, client.CodeInvalidStatus) || payment == nil || payment.Status != client.GigPayCompleted || payment.PaymentID != "y0a3fP" {
		t.Errorf("refused status change: %+v, %v", payment, err)
	}
}
