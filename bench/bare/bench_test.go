package bare

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// discardWriter is an http.ResponseWriter that keeps only the status, so that the benchmark
// measures the handler rather than a recorder's buffers.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkTransferHandler: the admin handler's CPU for one transfer request, as the bench
// harness sends it (headers and body shape of client.CreateTransaction), with a backend that
// does no ledger work: the HTTP share of a node's CPU per transfer, without the socket.
func BenchmarkTransferHandler(b *testing.B) {
	handler := NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	bodies := make([]string, 1024)
	for i := range bodies {
		bodies[i] = `{"referenceId":"bench-r1-` + strconv.Itoa(i) + `-000042","operations":[{"type":"transfer","from":"w0001a1b2c3d4e5f60718","to":"w0001f0e1d2c3b4a59687","amount":` + strconv.Itoa(100+i) + `}]}`
	}
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		request := httptest.NewRequest(http.MethodPost, "/projects/bench-x/transactions", strings.NewReader(bodies[i%len(bodies)]))
		request.Host = "127.0.0.1:20001"
		request.Header.Set("Accept", "application/json")
		request.Header.Set("Content-Type", "application/json")
		request.Header.Set("User-Agent", "gigaledger-bench")
		clear(w.header)
		w.status = 0
		handler.ServeHTTP(w, request)
		if w.status != http.StatusCreated {
			b.Fatalf("status %d", w.status)
		}
	}
}
