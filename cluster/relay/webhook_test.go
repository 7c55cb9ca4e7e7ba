package relay

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
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
