package bare

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// call sends method path with body (JSON when not empty) and returns the status and the
// decoded answer.
func call(t *testing.T, server *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	request, err := http.NewRequest(method, server.URL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		request.Header.Set("Content-Type", "application/json")
	}
	response, err := server.Client().Do(request)
	if err != nil {
		t.Fatal(err)
	}
	defer response.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(response.Body).Decode(&answer); err != nil {
		t.Fatalf("%s %s: %d, undecodable answer: %v", method, path, response.StatusCode, err)
	}
	return response.StatusCode, answer
}

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	server := httptest.NewServer(NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	t.Cleanup(server.Close)
	return server
}

// The calls the harness's ledger scenarios make are answered with the status and shape of the
// real API, with unique IDs, and nothing is stored.
func TestAnswersTheHarnessCalls(t *testing.T) {
	server := newServer(t)
	status, project := call(t, server, http.MethodPost, "/projects", `{"id":"bench-x","name":"Bench"}`)
	if status != http.StatusCreated || project["id"] != "bench-x" || project["name"] != "Bench" {
		t.Fatalf("create project: %d %v", status, project)
	}
	status, asset := call(t, server, http.MethodPost, "/projects/bench-x/assets", `{"id":"bench-usd","name":"Bench dollar","code":"BUSD","fractions":100}`)
	if status != http.StatusCreated || asset["id"] != "bench-usd" || asset["fractions"] != 100.0 {
		t.Fatalf("create asset: %d %v", status, asset)
	}
	status, customer := call(t, server, http.MethodPost, "/projects/bench-x/customers", `{"id":"c-0","name":"Bench customer 0"}`)
	if status != http.StatusOK || customer["id"] != "c-0" || customer["status"] != "active" {
		t.Fatalf("upsert customer: %d %v", status, customer)
	}
	wallets := map[string]bool{}
	for range 3 {
		status, wallet := call(t, server, http.MethodPost, "/projects/bench-x/wallets", `{"customerId":"c-0","assetId":"bench-usd","name":"bench"}`)
		id, _ := wallet["id"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(id, "w") || wallet["status"] != "open" || wallets[id] {
			t.Fatalf("create wallet: %d %v (earlier %v)", status, wallet, wallets)
		}
		wallets[id] = true
	}
	status, cluster := call(t, server, http.MethodGet, "/cluster", "")
	if status != http.StatusOK || cluster["shardCount"] != 1.0 {
		t.Fatalf("cluster: %d %v", status, cluster)
	}
	transfer := `{"referenceId":"r-1","operations":[{"type":"transfer","from":"w0001aaaa","to":"w0002bbbb","amount":125}]}`
	transactions := map[string]bool{}
	for range 3 {
		status, transaction := call(t, server, http.MethodPost, "/projects/bench-x/transactions", transfer)
		id, _ := transaction["id"].(string)
		operations, _ := transaction["operations"].([]any)
		if status != http.StatusCreated || transaction["status"] != "completed" || transaction["referenceId"] != "r-1" ||
			len(operations) != 1 || !strings.HasPrefix(id, "t0001") || transactions[id] {
			t.Fatalf("transaction: %d %v (earlier %v)", status, transaction, transactions)
		}
		transactions[id] = true
	}
	status, batch := call(t, server, http.MethodPost, "/projects/bench-x/transactions/batch", `{"transactions":[`+transfer+`,`+transfer+`]}`)
	results, _ := batch["results"].([]any)
	if status != http.StatusOK || len(results) != 2 {
		t.Fatalf("batch: %d %v", status, batch)
	}
	for _, result := range results {
		item, _ := result.(map[string]any)
		if item["status"] != 201.0 || item["transaction"] == nil {
			t.Fatalf("batch item: %v", item)
		}
	}
	status, wallet := call(t, server, http.MethodGet, "/projects/bench-x/wallets/w0001aaaa", "")
	if status != http.StatusOK || wallet["id"] != "w0001aaaa" || wallet["balance"] == nil {
		t.Fatalf("get wallet: %d %v", status, wallet)
	}
	status, page := call(t, server, http.MethodGet, "/projects/bench-x/wallets/w0001aaaa/entries?page=1&pageSize=20&to=9999999999999", "")
	items, _ := page["items"].([]any)
	if status != http.StatusOK || len(items) != 20 || page["hasMore"] != true {
		t.Fatalf("entries: %d %v", status, page)
	}
	// A read the harness never makes is refused cleanly, not served from a store it does not have.
	status, refused := call(t, server, http.MethodGet, "/projects/bench-x", "")
	if detail, _ := refused["error"].(map[string]any); status != http.StatusServiceUnavailable || detail["code"] != "Unavailable" {
		t.Fatalf("get project: %d %v", status, refused)
	}
}

// The transaction route decodes with the node's strict decoder and validates as a node does:
// the same 400s for an unknown (case-variant) key, a missing reference, a transfer to itself
// and a float amount; and the node's middleware refuses a body that is not JSON.
func TestDecodesAndValidatesAsTheNode(t *testing.T) {
	server := newServer(t)
	for _, test := range []struct {
		body, code string
	}{
		{`{"referenceId":"r","Operations":[{"type":"transfer","from":"w1","to":"w2","amount":1}]}`, "InvalidJSON"},
		{`{"operations":[{"type":"transfer","from":"w1","to":"w2","amount":1}]}`, "InvalidArgument"},
		{`{"referenceId":"r","operations":[{"type":"transfer","from":"w1","to":"w1","amount":1}]}`, "InvalidArgument"},
		{`{"referenceId":"r","operations":[{"type":"transfer","from":"w1","to":"w2","amount":1.5}]}`, "InvalidAmount"},
		{`{"referenceId":"r","operations":[]}`, "LimitExceeded"},
	} {
		status, answer := call(t, server, http.MethodPost, "/projects/p/transactions", test.body)
		detail, _ := answer["error"].(map[string]any)
		if status != http.StatusBadRequest || detail["code"] != test.code {
			t.Errorf("%s: %d %v, want 400 %s", test.body, status, answer, test.code)
		}
	}
	response, err := server.Client().Post(server.URL+"/projects/p/transactions", "text/plain", bytes.NewBufferString("{}"))
	if err != nil {
		t.Fatal(err)
	}
	response.Body.Close()
	if response.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a text/plain body: %d, want 415", response.StatusCode)
	}
}

// Main serves on a loopback address until its context ends, and refuses any other address.
func TestMainServesOnLoopbackOnly(t *testing.T) {
	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"--addr", "0.0.0.0:0"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "loopback") {
		t.Fatalf("--addr 0.0.0.0:0: exit %d, %s", code, stderr.String())
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, listener, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	client := &http.Client{Timeout: 5 * time.Second}
	response, err := client.Get("http://" + listener.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	response.Body.Close()
	if response.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", response.StatusCode)
	}
	metrics, err := client.Get("http://" + listener.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(text), "process_cpu_seconds_total") {
		t.Error("/metrics has no process_cpu_seconds_total (the harness reads the server's CPU from it)")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return 10 s after its context ended")
	}
}
