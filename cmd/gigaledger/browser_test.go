package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBrowserFlags: --allowed-hosts and --cors-origins are parsed and checked at start-up.
func TestBrowserFlags(t *testing.T) {
	t.Setenv(adminTokenEnv, "")
	cfg, err := parseServeFlags([]string{"--allowed-hosts", "ledger.internal, 10.0.0.5", "--cors-origins", "https://app.example,http://localhost:3000"}, &bytes.Buffer{})
	if err != nil || cfg.AllowedHosts != "ledger.internal, 10.0.0.5" || cfg.CORSOrigins != "https://app.example,http://localhost:3000" {
		t.Fatalf("browser flags: %v %+v", err, cfg)
	}
	for _, bad := range [][]string{
		{"--allowed-hosts", "http://ledger.internal"}, {"--allowed-hosts", "ledger.internal:8081"}, {"--allowed-hosts", "*.example"},
		{"--cors-origins", "*"}, {"--cors-origins", "https://app.example/path"}, {"--cors-origins", "app.example"},
		{"--cors-origins", "ftp://app.example"},
	} {
		if _, err := parseServeFlags(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestNodeRefusesBrowsers: a real node without a token, started with --allowed-hosts and
// --cors-origins, refuses a foreign Host (421, both listeners), a text/plain write (415) and a
// write from an unlisted Origin (403), and answers a listed origin's preflight.
func TestNodeRefusesBrowsers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	tc := newTestCluster(t, 1)
	tc.stop(0)
	cfg := tc.configs[0]
	cfg.AllowedHosts, cfg.CORSOrigins = "ledger.internal", "https://app.example"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	tc.start(0)
	tc.waitLeader(15 * time.Second)

	send := func(addr, method, path, host, body string, header ...string) *http.Response {
		t.Helper()
		request, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			request.Host = host
		}
		for i := 0; i+1 < len(header); i += 2 {
			request.Header.Set(header[i], header[i+1])
		}
		response, err := tc.client.Do(request)
		if err != nil {
			t.Fatal(err)
		}
		response.Body.Close()
		return response
	}
	expect := func(response *http.Response, want int) {
		t.Helper()
		if response.StatusCode != want {
			t.Errorf("%s %s (Host %s): %d, want %d", response.Request.Method, response.Request.URL.Path, response.Request.Host, response.StatusCode, want)
		}
	}
	const project = `{"id":"p","name":"P"}`
	expect(send(cfg.AdminAddr, "GET", "/projects", "evil.example", ""), 421)
	expect(send(cfg.AdminAddr, "POST", "/projects", "evil.example:80", project, "Content-Type", "application/json"), 421)
	expect(send(cfg.PublicAddr, "GET", "/healthz", "evil.example", ""), 421)
	expect(send(cfg.AdminAddr, "GET", "/projects", "ledger.internal:8081", ""), 200)
	expect(send(cfg.PublicAddr, "GET", "/healthz", "localhost", ""), 200)
	expect(send(cfg.AdminAddr, "POST", "/projects", "", project, "Content-Type", "text/plain"), 415)
	expect(send(cfg.AdminAddr, "POST", "/projects", "", project, "Content-Type", "application/json", "Origin", "http://evil.example"), 403)
	preflight := send(cfg.AdminAddr, "OPTIONS", "/projects", "", "", "Origin", "https://app.example", "Access-Control-Request-Method", "POST")
	expect(preflight, 204)
	if preflight.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight headers %v", preflight.Header)
	}
	expect(send(cfg.AdminAddr, "DELETE", "/projects", "", ""), 405)
	expect(send(cfg.AdminAddr, "POST", "/projects", "", project, "Content-Type", "application/json; charset=utf-8"), 201)
}

// TestPprofHostCheck: /debug/pprof/, served beside the API without a token, refuses a foreign
// Host as the API does (DNS rebinding would otherwise read profiles).
func TestPprofHostCheck(t *testing.T) {
	handler := withPprof(http.NotFoundHandler(), "", []string{"ledger.internal"})
	for host, want := range map[string]int{"evil.example": 421, "evil.example:8081": 421, "localhost:8081": 200,
		"127.0.0.1": 200, "ledger.internal": 200} {
		request := httptest.NewRequest("GET", "/debug/pprof/", nil)
		request.Host = host
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, request)
		if recorder.Code != want {
			t.Errorf("Host %s: %d, want %d", host, recorder.Code, want)
		}
	}
}

// TestPprofNeedsTheToken: with a token, /debug/pprof/ answers only the right bearer token, in
// the same constant-time check as the API (any Host then).
func TestPprofNeedsTheToken(t *testing.T) {
	handler := withPprof(http.NotFoundHandler(), "s3cret", nil)
	for authorization, want := range map[string]int{"": 401, "Bearer wrong": 401, "Bearer s3cret-and-more": 401,
		"Basic s3cret": 401, "Bearer s3cret": 200, "bearer s3cret": 200} {
		request := httptest.NewRequest("GET", "/debug/pprof/", nil)
		request.Host = "evil.example"
		if authorization != "" {
			request.Header.Set("Authorization", authorization)
		}
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, request)
		if recorder.Code != want {
			t.Errorf("Authorization %q: %d, want %d", authorization, recorder.Code, want)
		}
	}
}
