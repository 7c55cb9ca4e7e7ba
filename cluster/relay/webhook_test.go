package relay

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// verifyIndependently checks a request's signature the way GigaWallet's documentation tells a
// receiver to, sharing no code with Sign.
func verifyIndependently(secret string, header http.Header, body []byte) error {
	timestamp := header.Get("X-Giga-Timestamp")
	if _, err := strconv.ParseInt(timestamp, 10, 64); err != nil {
		return fmt.Errorf("timestamp %q: %v", timestamp, err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "." + string(body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); header.Get("X-Giga-Signature") != want {
		return fmt.Errorf("signature %q, want %q", header.Get("X-Giga-Signature"), want)
	}
	return nil
}

func TestSignMatchesGigaWalletsScheme(t *testing.T) {
	header := http.Header{}
	body := []byte(`{"event_type":"INV_CREATED"}`)
	header.Set(HeaderTimestamp, "1700000000")
	header.Set(HeaderSignature, Sign("s3cret", "1700000000", body))
	if err := verifyIndependently("s3cret", header, body); err != nil {
		t.Fatal(err)
	}
	if err := Verify("s3cret", header, body); err != nil {
		t.Fatal(err)
	}
	if err := Verify("other", header, body); err == nil {
		t.Fatal("a wrong secret verified")
	}
	if err := Verify("s3cret", header, append(body, ' ')); err == nil {
		t.Fatal("a changed body verified")
	}
}

func TestWebhookAttemptHeadersAndStatuses(t *testing.T) {
	now := time.Unix(1700000000, 0)
	statuses := []int{http.StatusNoContent, http.StatusFound, http.StatusBadRequest}
	r := newReceiver(t, "k", func(_ received, attempt int) int { return statuses[attempt-1] })
	w := NewWebhook(WebhookOptions{Now: func() time.Time { return now }})
	defer w.CloseIdleConnections()
	sub := webhook("s", r.url, "k", "ALL")
	env := Envelope{Shard: 1, Sequence: 7, EventID: "1-7", Type: "INV_CREATED", Body: []byte(`{"event_id":"1-7","shard":1,"sequence":7}`)}
	if err := w.Attempt(context.Background(), sub, env); err != nil {
		t.Fatalf("204 is delivery: %v", err)
	}
	var status *StatusError
	if err := w.Attempt(context.Background(), sub, env); !errors.As(err, &status) || status.StatusCode != http.StatusFound {
		t.Fatalf("a redirect must not be followed and is not delivery: %v", err)
	}
	if err := w.Attempt(context.Background(), sub, env); !errors.As(err, &status) || status.StatusCode != http.StatusBadRequest {
		t.Fatalf("400: %v", err)
	}
	if got := r.got(); len(got) != 3 || string(got[2].body) != string(env.Body) {
		t.Fatalf("received %v", got)
	}
}

func TestWebhookAttemptTimesOutAndKeepsTheURLOutOfTheError(t *testing.T) {
	release := make(chan struct{})
	r := newReceiver(t, "", func(received, int) int { <-release; return 200 })
	defer close(release)
	w := NewWebhook(WebhookOptions{AttemptTimeout: 50 * time.Millisecond})
	defer w.CloseIdleConnections()
	start := time.Now()
	err := w.Attempt(context.Background(), webhook("s", r.url, "", "ALL"), Envelope{EventID: "1-1", Body: []byte(`{"event_id":"1-1"}`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want a deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("attempt took %s", elapsed)
	}
	if s := err.Error(); strings.Contains(s, "token") || strings.Contains(s, "127.0.0.1") {
		t.Fatalf("error names the URL: %s", s)
	}
}

// A node delivers every shard it leads to the same receiver at once, each shard's delivery in
// its own goroutine with one request at a time: each must keep its connection between events,
// rather than open one per event (the standard transport keeps only 2 idle per host).
func TestWebhookKeepsAConnectionPerConcurrentDelivery(t *testing.T) {
	const deliveries, eventsEach = 8, 200
	var opened atomic.Int64
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	// Answers take varying time, as a real receiver's do, so deliveries return their connections
	// at different moments.
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(rand.N(200 * time.Microsecond))
		w.WriteHeader(http.StatusNoContent)
	}))
	server.Listener.Close()
	server.Listener = listener
	server.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			opened.Add(1)
		}
	}
	server.Start()
	t.Cleanup(server.Close)
	w := NewWebhook(WebhookOptions{})
	defer w.CloseIdleConnections()
	sub := webhook("s", server.URL+"/hook", "k", "ALL")
	var group sync.WaitGroup
	failures := make(chan error, deliveries*eventsEach)
	for shard := range deliveries {
		group.Go(func() {
			for sequence := range uint64(eventsEach) {
				env := Envelope{Shard: shard, Sequence: sequence + 1, EventID: fmt.Sprintf("%d-%d", shard, sequence+1), Body: []byte(`{}`)}
				if err := w.Attempt(context.Background(), sub, env); err != nil {
					failures <- err
				}
			}
		})
	}
	group.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	// One each, and a few more when the first requests race to dial (a dial that loses the
	// race to a returned connection still adds an idle one).
	if got := opened.Load(); got > 2*deliveries {
		t.Fatalf("%d deliveries of %d events each opened %d connections, want at most %d", deliveries, eventsEach, got, 2*deliveries)
	}
}
