package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHTTPDriverTransfer measures the harness's own cost per transfer
// request (generate, encode, send, read, classify) against a server that
// answers 201 at once: the share of the 2 cores the harness takes from the
// system under test.
func BenchmarkHTTPDriverTransfer(b *testing.B) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"t","status":"completed"}`))
	}))
	defer server.Close()
	driver, err := newHTTPDriver([]string{server.URL}, "token", 64, routingRoundRobin)
	if err != nil {
		b.Fatal(err)
	}
	defer driver.Close()
	driver.projectID = "bench-x"
	config := testScenario(ScenarioTransfer)
	for index := range config.Wallets {
		driver.walletIDs = append(driver.walletIDs, "wallet-"+string(rune('a'+index%26)))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		generator := NewGenerator(config, 1, 0)
		for pb.Next() {
			request := generator.Next()
			if outcome := driver.Do(context.Background(), &request); outcome.Class != OutcomeOK {
				b.Fatalf("outcome %+v", outcome)
			}
		}
	})
}
