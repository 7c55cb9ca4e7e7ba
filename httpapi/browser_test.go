package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/gin-gonic/gin"
)

// Issue 8, item 3: a browser cannot drive the API, and item 4's 405.

// withHeader returns a client like c that adds header name: value to every request.
func (c *apiClient) withHeader(pairs ...string) *apiClient {
	header := http.Header{}
	for name, values := range c.header {
		header[name] = slices.Clone(values)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		header.Set(pairs[i], pairs[i+1])
	}
	return &apiClient{t: c.t, handler: c.handler, token: c.token, header: header}
}

// concretePath fills a gin route's parameters with values of the fixture.
func concretePath(route string, f fixture) string {
	replacer := strings.NewReplacer(":projectId", f.projectID, ":assetId", f.assetID, ":customerId", f.customerA,
		":walletId", f.walletA, ":txId", "t0000nosuchtransaction0", ":holdId", "h0000nosuchhold.0")
	return replacer.Replace(route)
}

// TestContentTypeRequired: every POST and PUT route of the admin engine (so every API family
// registered there), with or without a body, refuses anything but application/json with 415
// and proposes nothing; a DELETE with a body needs it too; a bodyless DELETE does not.
func TestContentTypeRequired(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	before := ledgerState(c, f)
	engine := c.handler.(*gin.Engine)
	mutating := 0
	for _, route := range engine.Routes() {
		if route.Method != http.MethodPost && route.Method != http.MethodPut {
			continue
		}
		mutating++
		path := concretePath(route.Path, f)
		for _, contentType := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
			"multipart/form-data; boundary=x", "application/jsonx", "application/json; charset=latin1", "application/json;;"} {
			for _, body := range []any{nil, `{}`} {
				proposals := backend.Proposals()
				c.withHeader("Content-Type", contentType).do(route.Method, path, body).expectError(415, httpapi.CodeUnsupportedMediaType)
				if backend.Proposals() != proposals {
					t.Errorf("%s %s with Content-Type %q reached the backend", route.Method, path, contentType)
				}
			}
		}
	}
	if mutating < 15 {
		t.Fatalf("only %d POST/PUT routes found", mutating)
	}
	if after := ledgerState(c, f); after != before {
		t.Fatalf("415s changed the state:\nbefore %s\nafter  %s", before, after)
	}
	// Two Content-Type headers, even both JSON, are refused alike.
	for _, second := range []string{"application/json", "text/plain"} {
		twice := c.withHeader("Content-Type", "application/json")
		twice.header.Add("Content-Type", second)
		twice.do("POST", "/projects", map[string]any{"id": "twice", "name": "x"}).expectError(415, httpapi.CodeUnsupportedMediaType)
	}
	// JSON with parameters and any case is JSON.
	for i, contentType := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8", "application/json;foo=bar"} {
		c.withHeader("Content-Type", contentType).do("POST", "/projects", map[string]any{"id": "ct" + string(rune('a'+i)), "name": "x"}).expect(201)
	}
	before = ledgerState(c, f)
	// The reproduction of the issue: a cross-site text/plain POST moves no money (403 for its
	// Origin; 415 for its type without one).
	body := `{"referenceId":"csrf","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1000}]}`
	c.withHeader("Content-Type", "text/plain", "Origin", "http://evil.example").do("POST", "/projects/shop/transactions", body).
		expectError(403, httpapi.CodeOriginNotAllowed)
	c.withHeader("Content-Type", "text/plain").do("POST", "/projects/shop/transactions", body).expectError(415, httpapi.CodeUnsupportedMediaType)
	// DELETE: a body must be JSON; no body needs no type.
	c.withHeader("Content-Type", "text/plain").do("DELETE", "/projects/shop/assets/usd", "x").expectError(415, httpapi.CodeUnsupportedMediaType)
	c.withHeader("Content-Type", "").do("DELETE", "/projects/shop/assets/usd", nil).expectError(403, "AssetInUse")
	// Reads need none; unknown routes stay 404.
	c.withHeader("Content-Type", "text/plain").do("GET", "/projects", nil).expect(200)
	c.withHeader("Content-Type", "text/plain").do("POST", "/projects/shop/nothing", "x").expectError(404, httpapi.CodeNotFound)
	if after := ledgerState(c, f); after != before {
		t.Fatalf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

// TestHostCheck: without an admin token only loopback names and --allowed-hosts are served
// (DNS rebinding); with a token, or on a public listener without RestrictHosts, any Host.
func TestHostCheck(t *testing.T) {
	backend := httpapitest.NewLedgerBackend(t)
	open := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{AllowedHosts: []string{"ledger.internal", "10.1.2.3"}},
		backend, testLogger(t), nil)}
	served := []string{"localhost", "localhost:8081", "LOCALHOST:1", "localhost.", "127.0.0.1", "127.0.0.1:8081",
		"127.9.8.7:80", "[::1]", "[::1]:8081", "ledger.internal", "LEDGER.internal:443", "10.1.2.3:8081"}
	refused := []string{"evil.example", "evil.example:8081", "localhost.evil.example", "127.0.0.1.evil.example",
		"10.0.0.1:8081", "[::2]:8081", "0.0.0.0:8081", "sub.ledger.internal", "[::ffff:10.1.2.4]"}
	for i, host := range served {
		open.withHeader("Host", host).do("GET", "/projects", nil).expect(200)
		open.withHeader("Host", host).do("POST", "/projects", map[string]any{"id": "h" + string(rune('a'+i)), "name": "x"}).expect(201)
	}
	proposals := backend.Proposals()
	for _, host := range refused {
		open.withHeader("Host", host).do("GET", "/projects", nil).expectError(421, httpapi.CodeMisdirectedRequest)
		open.withHeader("Host", host).do("POST", "/projects", map[string]any{"name": "rebound"}).expectError(421, httpapi.CodeMisdirectedRequest)
		open.withHeader("Host", host).do("GET", "/healthz", nil).expectError(421, httpapi.CodeMisdirectedRequest)
	}
	if backend.Proposals() != proposals {
		t.Fatal("a request for a foreign Host reached the backend")
	}
	// An empty Host (HTTP/1.0) is no loopback name either.
	request := newRawRequest("GET", "/projects", "")
	request.Host = ""
	if status := serve(open.handler, request).Code; status != 421 {
		t.Errorf("empty Host: %d, want 421", status)
	}

	// With a token the Host is not checked: the token is the defence.
	withToken, _, _ := newTestServer(t)
	withToken.withHeader("Host", "ledger.example.com").do("GET", "/projects", nil).expect(200)

	// The public listener checks only when told to (the serve command does so without a token).
	restricted := &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{RestrictHosts: true}, testLogger(t), nil)}
	restricted.withHeader("Host", "evil.example").do("GET", "/healthz", nil).expectError(421, httpapi.CodeMisdirectedRequest)
	restricted.withHeader("Host", "127.0.0.1:8082").do("GET", "/healthz", nil).expect(200)
	public := &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{}, testLogger(t), nil)}
	public.withHeader("Host", "pay.example.com").do("GET", "/healthz", nil).expect(200)
}

// TestCORS: no CORS headers unless the origin is listed; listed origins get preflights and
// CORS answers; a mutating request from any other origin is refused 403.
func TestCORS(t *testing.T) {
	backend := httpapitest.NewLedgerBackend(t)
	const app = "https://app.example"
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, CORSOrigins: []string{app, "http://localhost:3000"}},
		backend, testLogger(t), nil)
	c := &apiClient{t: t, handler: handler, token: testToken}
	f := setUp(t, c)
	before := ledgerState(c, f)

	// Not a browser (no Origin): no CORS headers.
	r := c.do("GET", "/projects", nil).expect(200)
	checkNoCORS(t, r)

	// An unlisted origin: reads answered without CORS headers, preflights and writes refused.
	for _, origin := range []string{"http://evil.example", "https://app.example.evil", "http://app.example", "null", "https://app.example:444"} {
		evil := c.withHeader("Origin", origin)
		checkNoCORS(t, evil.do("GET", "/projects", nil).expect(200))
		for _, method := range []string{"POST", "PUT", "DELETE"} {
			path := "/projects/shop/transactions"
			switch method {
			case "PUT":
				path = "/projects/shop/name"
			case "DELETE":
				path = "/projects/shop/assets/usd"
			}
			checkNoCORS(t, evil.do(method, path, `{"name":"x"}`).expectError(403, httpapi.CodeOriginNotAllowed))
		}
		preflight := evil.withHeader("Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		checkNoCORS(t, preflight.do("OPTIONS", "/projects", nil).expectError(403, httpapi.CodeOriginNotAllowed))
	}
	if after := ledgerState(c, f); after != before {
		t.Fatalf("an unlisted origin changed the state:\nbefore %s\nafter  %s", before, after)
	}

	// A listed origin: the preflight needs no token and allows the API's methods and headers.
	anonymous := &apiClient{t: t, handler: handler}
	preflight := anonymous.withHeader("Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	r = preflight.do("OPTIONS", "/projects/shop/transactions", nil).expect(204)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("preflight Access-Control-Allow-Origin %q", got)
	}
	methods := r.header.Get("Access-Control-Allow-Methods")
	for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
		if !strings.Contains(methods, method) {
			t.Errorf("preflight allows methods %q, lacking %s", methods, method)
		}
	}
	headers := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
	for _, header := range []string{"authorization", "content-type"} {
		if !strings.Contains(headers, header) {
			t.Errorf("preflight allows headers %q, lacking %s", headers, header)
		}
	}
	if r.header.Get("Access-Control-Max-Age") == "" || !slices.Contains(r.header.Values("Vary"), "Origin") {
		t.Errorf("preflight headers %v", r.header)
	}
	if r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("credentials allowed: a bearer token needs no cookies")
	}
	// A preflight needs no token, so it must not map the API: a known path and an unknown one
	// get the same answer, without Allow.
	unknown := preflight.do("OPTIONS", "/no/such/route", nil).expect(204)
	if allow := r.header.Values("Allow"); len(allow) != 0 || len(unknown.header.Values("Allow")) != 0 {
		t.Errorf("a preflight without a token told which methods a path serves: Allow %v", allow)
	}

	// The request itself: served with CORS headers, and still needs the token and JSON.
	browser := c.withHeader("Origin", app)
	r = browser.do("POST", "/projects/shop/transactions", transaction("from-app", issue(f.walletA, 5))).expect(201)
	if r.header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("CORS answer headers %v", r.header)
	}
	anonymous.withHeader("Origin", app).do("POST", "/projects", `{"name":"x"}`).expectError(401, httpapi.CodeUnauthorized)
	browser.withHeader("Content-Type", "text/plain").do("POST", "/projects", `{"name":"x"}`).expectError(415, httpapi.CodeUnsupportedMediaType)
	c.withHeader("Origin", "http://localhost:3000").do("GET", "/projects", nil).expect(200)

	// Without --cors-origins no response carries CORS headers, whatever the Origin.
	plain := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, httpapitest.NewLedgerBackend(t), testLogger(t), nil), token: testToken}
	checkNoCORS(t, plain.withHeader("Origin", app).do("GET", "/projects", nil).expect(200))
	checkNoCORS(t, plain.withHeader("Origin", app).do("POST", "/projects", `{"name":"x"}`).expectError(403, httpapi.CodeOriginNotAllowed))
	checkNoCORS(t, plain.withHeader("Origin", app, "Access-Control-Request-Method", "POST").do("OPTIONS", "/projects", nil).
		expectError(403, httpapi.CodeOriginNotAllowed))
	if vary := plain.do("GET", "/projects", nil).header.Values("Vary"); len(vary) != 0 {
		t.Errorf("Vary %v without CORS origins", vary)
	}
}

// checkNoCORS fails the test if r carries any CORS header.
func checkNoCORS(t *testing.T, r *response) {
	t.Helper()
	for name := range r.header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("unexpected CORS header %s: %v", name, r.header[name])
		}
	}
}

// TestMethodNotAllowed: a wrong method on a known path is 405 with Allow listing the path's
// methods, in the error envelope; an unknown path stays 404; a client without the token learns
// nothing about the routes.
func TestMethodNotAllowed(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	cases := []struct {
		method, path string
		allow        []string
	}{
		{"DELETE", "/projects", []string{"GET", "HEAD", "POST"}},
		{"PATCH", "/projects/shop", []string{"GET", "HEAD"}},
		{"POST", "/projects/shop/name", []string{"PUT"}},
		{"GET", "/projects/shop/name", []string{"PUT"}},
		{"HEAD", "/projects/shop/name", []string{"PUT"}},
		{"PUT", "/projects/shop/assets/usd", []string{"DELETE", "GET", "HEAD"}},
		{"POST", "/projects/shop/customers/" + f.customerA, []string{"DELETE", "GET", "HEAD", "PUT"}},
		{"GET", "/projects/shop/customers/" + f.customerA + "/suspend", []string{"POST"}},
		{"DELETE", "/projects/shop/transactions", []string{"GET", "HEAD", "POST"}},
		{"POST", "/healthz", []string{"GET", "HEAD"}},
		{"OPTIONS", "/projects", []string{"GET", "HEAD", "POST"}},
		// The batch's path, which the route of one transaction's pattern matches too.
		{"GET", "/projects/shop/transactions/batch", []string{"POST"}},
		{"HEAD", "/projects/shop/transactions/batch", []string{"POST"}},
	}
	proposals := backend.Proposals()
	for _, tc := range cases {
		r := c.do(tc.method, tc.path, nil).expectError(405, httpapi.CodeMethodNotAllowed)
		allow := strings.Split(r.header.Get("Allow"), ", ")
		slices.Sort(allow)
		if !slices.Equal(allow, tc.allow) {
			t.Errorf("%s %s: Allow %q, want %v", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
	if backend.Proposals() != proposals {
		t.Fatal("a 405 reached the backend")
	}
	c.do("PATCH", "/projects/shop/nothing", nil).expectError(404, httpapi.CodeNotFound)
	anonymous := &apiClient{t: t, handler: c.handler}
	if r := anonymous.do("DELETE", "/projects", nil).expectError(401, httpapi.CodeUnauthorized); r.header.Get("Allow") != "" {
		t.Errorf("401 tells an anonymous client the methods: Allow %q", r.header.Get("Allow"))
	}
	public := &apiClient{t: t, handler: httpapi.NewPublic(httpapi.PublicConfig{}, testLogger(t), nil)}
	if r := public.do("POST", "/readyz", nil).expectError(405, httpapi.CodeMethodNotAllowed); r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("public 405 Allow %q", r.header.Get("Allow"))
	}
}

// TestHeadAnswersAsGet: HEAD on a GET route answers what GET answers, headers only (HTTP's
// "general-purpose servers support GET and HEAD"; a monitor probing /healthz with HEAD got
// 405), on a real server so that net/http's dropping of the body is what is tested; the auth
// applies to it as to GET.
func TestHeadAnswersAsGet(t *testing.T) {
	c, _, _ := newTestServer(t)
	setUp(t, c)
	server := httptest.NewServer(c.handler)
	defer server.Close()
	call := func(method, path string, token bool) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, server.URL+path, nil)
		if token {
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		resp, err := server.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	for _, path := range []string{"/healthz", "/projects/shop", "/openapi.json"} {
		get, getBody := call("GET", path, true)
		head, headBody := call("HEAD", path, true)
		if get.StatusCode != 200 || head.StatusCode != 200 || len(headBody) != 0 || len(getBody) == 0 ||
			head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("%s: GET %d %q (%d bytes), HEAD %d %q (%d bytes)", path, get.StatusCode, get.Header.Get("Content-Type"), len(getBody),
				head.StatusCode, head.Header.Get("Content-Type"), len(headBody))
		}
	}
	if head, _ := call("HEAD", "/projects/shop", false); head.StatusCode != http.StatusUnauthorized {
		t.Errorf("HEAD without the token: %d", head.StatusCode)
	}
	if head, _ := call("HEAD", "/projects/nowhere", true); head.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a missing project: %d", head.StatusCode)
	}
}

// TestStrictKeysNamed: duplicate and case-variant keys are refused with a message naming the
// key (and where it is), at every level of the body.
func TestStrictKeysNamed(t *testing.T) {
	c, _, _ := newTestServer(t)
	f := setUp(t, c)
	cases := []struct{ body, want string }{
		{`{"referenceId":"r","operations":[{"type":"issue","to":"` + f.walletA + `","amount":1,"amount":400}]}`, `duplicate key "amount" in operations[0]`},
		{`{"referenceId":"r","referenceId":"s","operations":[]}`, `duplicate key "referenceId"`},
		{`{"ReferenceId":"r","operations":[]}`, `unknown field "ReferenceId" (keys are case-sensitive: the field is "referenceId")`},
		{`{"REFERENCEID":"r","operations":[]}`, `"REFERENCEID"`},
		{`{"referenceId":"r","operations":[{"type":"issue","to":"x","amount":1},{"type":"issue","to":"x","Amount":1}]}`, `"Amount" in operations[1]`},
		{`{"referenceId":"r","operations":[],"memo":"hi"}`, `unknown field "memo"`},
	}
	for _, tc := range cases {
		var envelope struct {
			Error struct{ Code, Message string }
		}
		c.do("POST", "/projects/shop/transactions", tc.body).expectError(400, httpapi.CodeInvalidJSON).decode(&envelope)
		if !strings.Contains(envelope.Error.Message, tc.want) {
			t.Errorf("%s: message %q lacks %s", tc.body, envelope.Error.Message, tc.want)
		}
	}
	// What is printable stays accepted: accents, CJK, emoji sequences joined by U+200D.
	c.do("POST", "/projects/shop/customers", map[string]any{"id": "zoë 山田", "name": "👩\u200d💻 Zoë"}).expect(200)
	c.do("PUT", "/projects/shop/name", map[string]any{"name": "می\u200cخواهم"}).expect(200) // Persian, with U+200C
	c.do("POST", "/projects", map[string]any{"id": "a.b", "name": "dots inside are fine"}).expect(201)
}

// newRawRequest makes a request to testHost with body as is and no headers.
func newRawRequest(method, path, body string) *http.Request {
	request := httptest.NewRequest(method, path, strings.NewReader(body))
	request.Host = testHost
	return request
}

// serve runs one request through handler.
func serve(handler http.Handler, request *http.Request) *httptest.ResponseRecorder {
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, request)
	return recorder
}
