package httpapi_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/gin-gonic/gin"
)

// TestOpenAPIMatchesRoutes proves that every route the admin engine serves is in
// /openapi.json and every documented path and method is served, that the Cloud Wallet paths are
// exactly the contract's, and that every schema reference resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, &httpapitest.FakeBackend{}, testLogger(t), nil)
	engine, ok := handler.(*gin.Engine)
	if !ok {
		t.Fatalf("NewAdmin returned %T, want *gin.Engine", handler)
	}
	registered := map[string]bool{}
	for _, route := range documentedRoutes(t, engine) {
		registered[route.Method+" "+route.Path] = true
	}

	c := &apiClient{t: t, handler: handler, token: testToken}
	r := c.do("GET", "/openapi.json", nil).expect(200)
	var document struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	r.decode(&document)
	if !strings.HasPrefix(document.OpenAPI, "3.0") {
		t.Fatalf("openapi version %q", document.OpenAPI)
	}
	documented := map[string]bool{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for path, operations := range document.Paths {
		for method, operation := range operations {
			documented[strings.ToUpper(method)+" "+param.ReplaceAllString(path, ":$1")] = true
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
				Parameters  []struct{ Name, In string }
			}
			if err := json.Unmarshal(operation, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.OperationID == "" || len(op.Responses) == 0 {
				t.Errorf("%s %s lacks an operationId or responses", method, path)
			}
			for _, match := range param.FindAllStringSubmatch(path, -1) {
				found := false
				for _, p := range op.Parameters {
					found = found || p.In == "path" && p.Name == match[1]
				}
				if !found {
					t.Errorf("%s %s does not describe path parameter %s", method, path, match[1])
				}
			}
		}
	}
	for route := range registered {
		if !documented[route] {
			t.Errorf("registered but not documented: %s", route)
		}
	}
	for route := range documented {
		if !registered[route] {
			t.Errorf("documented but not registered: %s", route)
		}
	}

	// The contract's route table (docs/cloudwallet-api.md), verbatim.
	contract := []string{
		"POST /projects", "GET /projects", "GET /projects/{projectId}", "PUT /projects/{projectId}/name",
		"POST /projects/{projectId}/assets", "GET /projects/{projectId}/assets", "GET /projects/{projectId}/assets/{assetId}",
		"PUT /projects/{projectId}/assets/{assetId}/name", "DELETE /projects/{projectId}/assets/{assetId}",
		"POST /projects/{projectId}/customers", "GET /projects/{projectId}/customers", "GET /projects/{projectId}/customers/{customerId}",
		"PUT /projects/{projectId}/customers/{customerId}", "DELETE /projects/{projectId}/customers/{customerId}",
		"POST /projects/{projectId}/customers/{customerId}/suspend", "POST /projects/{projectId}/customers/{customerId}/resume",
		"GET /projects/{projectId}/customers/{customerId}/wallets", "POST /projects/{projectId}/wallets",
		"POST /projects/{projectId}/system-wallets", "GET /projects/{projectId}/system-wallets",
		"GET /projects/{projectId}/wallets/{walletId}", "PUT /projects/{projectId}/wallets/{walletId}/name",
		"PUT /projects/{projectId}/wallets/{walletId}/description", "PUT /projects/{projectId}/wallets/{walletId}/status",
		"GET /projects/{projectId}/wallets/{walletId}/entries", "POST /projects/{projectId}/transactions",
		"POST /projects/{projectId}/transactions/batch",
		"GET /projects/{projectId}/transactions", "GET /projects/{projectId}/transactions/{txId}",
		"GET /projects/{projectId}/holds/{holdId}", "POST /projects/{projectId}/holds/{holdId}/capture",
		"POST /projects/{projectId}/holds/{holdId}/release",
	}
	var served []string
	for route := range registered {
		if strings.Contains(route, " /projects") {
			served = append(served, param.ReplaceAllString(regexp.MustCompile(`:(\w+)`).ReplaceAllString(route, "{$1}"), "{$1}"))
		}
	}
	sort.Strings(served)
	sort.Strings(contract)
	if strings.Join(served, "\n") != strings.Join(contract, "\n") {
		t.Errorf("served Cloud Wallet routes differ from the contract:\nserved   %v\ncontract %v", served, contract)
	}
	for _, route := range []string{"GET /openapi.json", "GET /metrics", "GET /healthz", "GET /readyz", "GET /events"} {
		if !registered[route] {
			t.Errorf("%s not served", route)
		}
	}

	// Every $ref names a schema the document defines.
	for _, match := range regexp.MustCompile(`"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(r.body), -1) {
		if _, ok := document.Components.Schemas[match[1]]; !ok {
			t.Errorf("dangling $ref %s", match[1])
		}
	}
}

// TestOpenAPIGigaWalletRoutes: with the GigaWallet API on, the admin engine serves exactly the
// contract's admin routes of GigaWallet (../shared/contracts/gigawallet.md §2; payouts come
// with chainwatch) and the public invoice routes, the public engine serves the public ones, and
// the document describes each.
func TestOpenAPIGigaWalletRoutes(t *testing.T) {
	keys := testKeychain(t)
	admin := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: gigaWalletTestConfig(keys)},
		&httpapitest.FakeBackend{}, testLogger(t), nil).(*gin.Engine)
	public := httpapi.NewPublic(httpapi.PublicConfig{GigaWallet: gigaWalletTestConfig(keys), Backend: &httpapitest.FakeBackend{}},
		testLogger(t), nil).(*gin.Engine)
	served := func(e *gin.Engine) []string {
		var routes []string
		for _, route := range documentedRoutes(t, e) {
			if !strings.HasPrefix(route.Path, "/projects") && !strings.HasPrefix(route.Path, "/cluster") &&
				!strings.HasPrefix(route.Path, "/debug") && !strings.HasPrefix(route.Path, "/subscriptions") && route.Path != "/openapi.json" && route.Path != "/metrics" &&
				route.Path != "/healthz" && route.Path != "/readyz" && route.Path != "/events" {
				routes = append(routes, route.Method+" "+route.Path)
			}
		}
		sort.Strings(routes)
		return routes
	}
	publicRoutes := []string{"GET /invoice/:invoiceID", "GET /invoice/:invoiceID/connect", "GET /invoice/:invoiceID/qr.png",
		"POST /dc/:invoiceID/pay", "POST /dc/:invoiceID/status"}
	adminRoutes := append([]string{
		"GET /account/:foreignID", "GET /account/:foreignID/balance", "GET /account/:foreignID/invoice/:invoiceID",
		"GET /account/:foreignID/invoices", "POST /account/:foreignID", "POST /account/:foreignID/invoice",
		"POST /account/:foreignID/invoice/", "POST /admin/setsyncheight/:height",
		"GET /account/:foreignID/payment/:paymentID", "GET /account/:foreignID/payments", "POST /account/:foreignID/pay",
		"POST /account/:foreignID/payment/:paymentID/void", "POST /account/:foreignID/paytx", "POST /invoice/:invoiceID/payfrom/:foreignID",
		"POST /account/:foreignID/invoice/:invoiceID/refund",
	}, publicRoutes...)
	sort.Strings(adminRoutes)
	if got := served(admin); strings.Join(got, "\n") != strings.Join(adminRoutes, "\n") {
		t.Errorf("admin serves\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(adminRoutes, "\n"))
	}
	if got := served(public); strings.Join(got, "\n") != strings.Join(publicRoutes, "\n") {
		t.Errorf("public serves\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(publicRoutes, "\n"))
	}
	c := &apiClient{t: t, handler: admin, token: testToken}
	var document struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	c.do("GET", "/openapi.json", nil).expect(200).decode(&document)
	for _, route := range adminRoutes {
		method, path, _ := strings.Cut(route, " ")
		path = regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		if _, ok := document.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("%s is not documented", route)
		}
	}
	// Idempotency-Key: documented on the routes that take it (payouts, invoice creation), with
	// GigaWallet's 409 code; not on those that ignore it (the idempotent upsert, void, rescan).
	keyed := map[string]bool{
		"POST /account/:foreignID/pay": true, "POST /account/:foreignID/paytx": true, "POST /invoice/:invoiceID/payfrom/:foreignID": true,
		"POST /account/:foreignID/invoice": true, "POST /account/:foreignID/invoice/": true, "POST /account/:foreignID/invoice/:invoiceID/refund": true,
		"POST /account/:foreignID": false, "POST /account/:foreignID/payment/:paymentID/void": false, "POST /admin/setsyncheight/:height": false,
	}
	for route, want := range keyed {
		method, path, _ := strings.Cut(route, " ")
		path = regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		var operation struct {
			Parameters []struct{ Name, In, Description string }
			Responses  map[string]struct{ Description string }
		}
		if err := json.Unmarshal(document.Paths[path][strings.ToLower(method)], &operation); err != nil {
			t.Fatalf("%s: %v", route, err)
		}
		got := false
		for _, p := range operation.Parameters {
			if p.Name == "Idempotency-Key" && p.In == "header" {
				got = true
				if !strings.Contains(p.Description, "409 already-exists") || !strings.Contains(p.Description, "per account") {
					t.Errorf("%s: Idempotency-Key described as %q", route, p.Description)
				}
			}
		}
		if got != want {
			t.Errorf("%s documents Idempotency-Key: %v, want %v", route, got, want)
		}
		if conflict := operation.Responses["409"].Description; want && !strings.Contains(conflict, "already-exists") {
			t.Errorf("%s: 409 described as %q", route, conflict)
		}
	}
}

// TestOpenAPIGigPayRoutes: with the GigPay API on, the admin engine serves every GigPay route of
// the contract (GIGPAY-SPEC), the public engine only claim and reject, and the document
// describes each, with the public ones saying that the token string authorises them.
func TestOpenAPIGigPayRoutes(t *testing.T) {
	cfg := &httpapi.GigPayConfig{ProjectID: "gigpay"}
	admin := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigPay: cfg}, &httpapitest.FakeBackend{}, testLogger(t), nil).(*gin.Engine)
	public := httpapi.NewPublic(httpapi.PublicConfig{GigPay: cfg, Backend: &httpapitest.FakeBackend{}}, testLogger(t), nil).(*gin.Engine)
	served := func(e *gin.Engine) []string {
		var routes []string
		for _, route := range documentedRoutes(t, e) {
			if strings.HasPrefix(route.Path, "/api/v1/") {
				routes = append(routes, route.Method+" "+route.Path)
			}
		}
		sort.Strings(routes)
		return routes
	}
	publicRoutes := []string{"POST /api/v1/payment-tokens/:id/claim", "POST /api/v1/payment-tokens/:id/reject"}
	adminRoutes := append([]string{
		"POST /api/v1/accounts", "GET /api/v1/accounts/:id",
		"POST /api/v1/payment-tokens", "POST /api/v1/payment-tokens/batch", "GET /api/v1/payment-tokens/:id",
		"GET /api/v1/payment-tokens/:id/qr.png", "POST /api/v1/payment-tokens/:id/close",
		"POST /api/v1/payments", "GET /api/v1/payments", "GET /api/v1/payments/:id", "POST /api/v1/payments/:id/status",
	}, publicRoutes...)
	sort.Strings(adminRoutes)
	if got := served(admin); strings.Join(got, "\n") != strings.Join(adminRoutes, "\n") {
		t.Errorf("admin serves\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(adminRoutes, "\n"))
	}
	if got := served(public); strings.Join(got, "\n") != strings.Join(publicRoutes, "\n") {
		t.Errorf("public serves\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(publicRoutes, "\n"))
	}
	c := &apiClient{t: t, handler: admin, token: testToken}
	r := c.do("GET", "/openapi.json", nil).expect(200)
	var document struct {
		Paths map[string]map[string]struct {
			Summary    string `json:"summary"`
			Parameters []struct{ Name, In string }
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	r.decode(&document)
	registered := map[string]bool{}
	adminServed := documentedRoutes(t, admin)
	for _, route := range adminServed {
		registered[route.Method+" "+route.Path] = true
	}
	documented := 0
	for path, operations := range document.Paths {
		for method := range operations {
			documented++
			if !registered[strings.ToUpper(method)+" "+regexp.MustCompile(`\{([^}]+)\}`).ReplaceAllString(path, ":$1")] {
				t.Errorf("documented but not registered: %s %s", method, path)
			}
		}
	}
	if documented != len(adminServed) {
		t.Errorf("%d operations documented, %d routes registered", documented, len(adminServed))
	}
	for _, route := range adminRoutes {
		method, path, _ := strings.Cut(route, " ")
		path = regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		op, ok := document.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is not documented", route)
			continue
		}
		if slices.Contains(publicRoutes, route) && !strings.Contains(op.Summary, "token string authorises") {
			t.Errorf("%s does not say the token string authorises it: %q", route, op.Summary)
		}
	}
	for _, q := range []string{"status", "type", "accountId", "assetType", "createdFromUtc", "createdToUtc", "sort", "order", "limit", "cursor"} {
		found := false
		for _, p := range document.Paths["/api/v1/payments"]["get"].Parameters {
			found = found || (p.In == "query" && p.Name == q)
		}
		if !found {
			t.Errorf("GET /api/v1/payments does not describe %s", q)
		}
	}
	for _, match := range regexp.MustCompile(`"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(r.body), -1) {
		if _, ok := document.Components.Schemas[match[1]]; !ok {
			t.Errorf("dangling $ref %s", match[1])
		}
	}
}

// documentedRoutes is what the OpenAPI document describes of e's routes: every one but HEAD,
// which each GET route answers too and no other route does (checked here), as HTTP has it.
func documentedRoutes(t *testing.T, e *gin.Engine) gin.RoutesInfo {
	t.Helper()
	var out gin.RoutesInfo
	gets, heads := map[string]bool{}, map[string]bool{}
	for _, route := range e.Routes() {
		switch route.Method {
		case http.MethodHead:
			heads[route.Path] = true
			continue
		case http.MethodGet:
			gets[route.Path] = true
		}
		out = append(out, route)
	}
	if !maps.Equal(gets, heads) {
		t.Errorf("HEAD is not served exactly where GET is:\nGET  %v\nHEAD %v", slices.Sorted(maps.Keys(gets)), slices.Sorted(maps.Keys(heads)))
	}
	return out
}

// What the document says a request may send is what the server takes: the batch of
// transactions refuses Idempotency-Key (so it is not listed), and the time bounds of the
// lists may be left out.
func TestOpenAPIParametersAsServed(t *testing.T) {
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, &httpapitest.FakeBackend{}, testLogger(t), nil)
	c := &apiClient{t: t, handler: handler, token: testToken}
	var document struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In string
				Required bool
			}
		}
	}
	c.do("GET", "/openapi.json", nil).expect(200).decode(&document)
	for _, p := range document.Paths["/projects/{projectId}/transactions/batch"]["post"].Parameters {
		if p.Name == "Idempotency-Key" {
			t.Error("the batch of transactions lists Idempotency-Key, which it refuses")
		}
	}
	for _, path := range []string{"/projects/{projectId}/transactions", "/projects/{projectId}/wallets/{walletId}/entries"} {
		found := 0
		for _, p := range document.Paths[path]["get"].Parameters {
			if p.Name == "from" || p.Name == "to" {
				found++
				if p.Required {
					t.Errorf("GET %s: %s is required, the server takes it absent", path, p.Name)
				}
			}
		}
		if found != 2 {
			t.Errorf("GET %s documents %d of from and to", path, found)
		}
	}
}
