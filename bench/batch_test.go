package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// --batch N sends the transfer scenario as batches of N transactions to the real handler and
// counts every completed transfer.
func TestTransferBatchAgainstTheRealHandler(t *testing.T) {
	server := newRealHandlerServer(t)
	args := []string{"--target", server.URL, "--token", "secret", "--scenario", ScenarioTransfer, "--clients", "2",
		"--wallets", "20", "--ops", "6", "--duration", "30s", "--batch", "50", "--json", "--progress", "off"}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var result Result
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if result.Batch != 50 || result.Errors != 0 || result.Transport != 0 || result.OK+result.Business != result.Requests {
		t.Fatalf("result %+v", result)
	}
	if result.Transfers < result.OK*50 || result.Transfers > result.Requests*50 || result.TransfersPerSecond <= 0 {
		t.Errorf("%d transfers for %d requests (%d ok) of 50", result.Transfers, result.Requests, result.OK)
	}
}

func TestBatchIsValidatedByScenario(t *testing.T) {
	config := testScenario(ScenarioTransfer)
	for _, c := range []struct {
		name  string
		batch int
		ok    bool
	}{{ScenarioTransfer, 1000, true}, {ScenarioTransfer, 1001, false}, {ScenarioTransfer, -1, false}, {ScenarioZipf, 10, false}} {
		config.Name, config.Batch = c.name, c.batch
		if c.name == ScenarioZipf {
			config.ZipfExponent = 1.5
		}
		if err := config.Validate(); (err == nil) != c.ok {
			t.Errorf("%s --batch %d: %v", c.name, c.batch, err)
		}
	}
	config = testScenario(ScenarioTransfer)
	config.Batch = 3
	request := NewGenerator(config, 1, 0).Next()
	if request.Kind != RequestTransactionBatch || len(request.Batch) != 3 {
		t.Fatalf("request %+v", request)
	}
	seen := map[string]bool{}
	for _, tx := range request.Batch {
		if tx.Kind != RequestTransaction || len(tx.Operations) != 1 || seen[tx.ReferenceID] {
			t.Errorf("transaction %+v", tx)
		}
		seen[tx.ReferenceID] = true
	}
}

// newRealHandlerServer serves the real admin handler (token "secret") over an in-memory ledger
// without a cluster (GET /cluster is not found, as on a node without one), until the test ends.
func newRealHandlerServer(t *testing.T) *httptest.Server {
	backend := httpapitest.NewLedgerBackend(t)
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: "secret"}, backend, slog.New(slog.DiscardHandler), nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) { writeError(w, http.StatusNotFound, "NotFound") })
	mux.Handle("/", handler)
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return server
}
