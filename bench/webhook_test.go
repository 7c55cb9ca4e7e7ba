package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/relay"
)

const testWebhookSecret = "test-secret"

// postEnvelope sends one delivery to url as the relay does, signed with secret, and returns
// the status.
func postEnvelope(t *testing.T, url, secret string, body []byte) int {
	t.Helper()
	request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	timestamp := strconv.FormatInt(time.Now().Unix(), 10)
	request.Header.Set(relay.HeaderTimestamp, timestamp)
	request.Header.Set(relay.HeaderSignature, relay.Sign(secret, timestamp, body))
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	_ = response.Body.Close()
	return response.StatusCode
}

func envelopeBody(shard int, sequence uint64, createdAt time.Time) []byte {
	body, _ := json.Marshal(map[string]any{"event_type": "LEDGER_TX_COMPLETED", "message": map[string]string{},
		"event_id": fmt.Sprintf("s%03d-%020d", shard, sequence), "shard": shard, "sequence": sequence,
		"created_at": createdAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	return body
}

// startReceiver serves receiver on a loopback port below the ephemeral range.
func startReceiver(t *testing.T, receiver *webhookReceiver) string {
	t.Helper()
	listener, err := listenLoopbackLow()
	if err != nil {
		t.Fatal(err)
	}
	if port := listener.Addr().(*net.TCPAddr).Port; port < webhookPortFirst || port > webhookPortLast {
		t.Fatalf("listening on port %d", port)
	}
	server := &http.Server{Handler: receiver, ReadHeaderTimeout: time.Second, ConnState: receiver.connState}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return "http://" + listener.Addr().String() + "/webhook"
}

func TestWebhookReceiverCountsVerifiedDeliveries(t *testing.T) {
	base := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	arrival := base.Add(100 * time.Millisecond) // every request arrives 100 ms after its commit
	receiver := newWebhookReceiver(testWebhookSecret, func() time.Time { return arrival })
	url := startReceiver(t, receiver)

	probe := envelopeBody(0, 1, base)
	if status := postEnvelope(t, url, testWebhookSecret, probe); status != http.StatusNoContent {
		t.Fatalf("probe: %d", status)
	}
	if !receiver.waitFor(context.Background(), 1) {
		t.Fatal("probe not counted")
	}
	receiver.reset(arrival.Add(-10 * time.Second))
	if status := postEnvelope(t, url, testWebhookSecret, probe); status != http.StatusNoContent {
		t.Fatalf("probe again: %d", status)
	}
	for _, sequence := range []uint64{2, 3, 4, 5, 3, 7} { // 3 twice, 6 missing
		if status := postEnvelope(t, url, testWebhookSecret, envelopeBody(0, sequence, base)); status != http.StatusNoContent {
			t.Fatalf("event %d: %d", sequence, status)
		}
	}
	if status := postEnvelope(t, url, testWebhookSecret, envelopeBody(1, 40, base)); status != http.StatusNoContent {
		t.Fatalf("shard 1: %d", status)
	}
	// Refused: a wrong secret, an envelope with an unknown key, a missing created_at, a GET.
	if status := postEnvelope(t, url, "other", envelopeBody(0, 8, base)); status != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", status)
	}
	if status := postEnvelope(t, url, testWebhookSecret, []byte(`{"event_type":"X","event_id":"a","sequence":1,"created_at":"2026-12-05T10:00:00.000Z","extra":1}`)); status != http.StatusBadRequest {
		t.Errorf("unknown key: %d", status)
	}
	if status := postEnvelope(t, url, testWebhookSecret, []byte(`{"event_type":"X","event_id":"a","sequence":1}`)); status != http.StatusBadRequest {
		t.Errorf("no created_at: %d", status)
	}
	if response, err := http.Get(url); err != nil {
		t.Errorf("GET: %v", err)
	} else if _ = response.Body.Close(); response.StatusCode != http.StatusBadRequest {
		t.Errorf("GET: %d", response.StatusCode)
	}
	receiver.endLoad(arrival.Add(-2 * time.Second))
	if status := postEnvelope(t, url, testWebhookSecret, envelopeBody(0, 8, base)); status != http.StatusNoContent {
		t.Fatalf("after the load: %d", status)
	}

	got := receiver.result(7, 1, true, arrival.Add(time.Minute))
	// 2, 3, 4, 5, 7 and 8 of shard 0, 40 of shard 1; the probe and the second 3 are duplicates.
	if got.Received != 7 || got.Duplicates != 2 || got.Rejected != 4 || got.Holes != 1 || got.DuringLoad != 6 {
		t.Errorf("received %d, duplicates %d, rejected %d, holes %d, during load %d; want 7, 2, 4, 1, 6",
			got.Received, got.Duplicates, got.Rejected, got.Holes, got.DuringLoad)
	}
	// http.DefaultClient keeps its connection; the refused requests may close theirs.
	if got.Connections < 0 || got.Connections > 5 {
		t.Errorf("connections %d after the reset", got.Connections)
	}
	if got.Expected != 7 || got.Unknown != 1 || !got.Drained || got.Types["LEDGER_TX_COMPLETED"] != 7 {
		t.Errorf("expected %d, unknown %d, drained %v, types %v", got.Expected, got.Unknown, got.Drained, got.Types)
	}
	if got.Lag.P50Ms < 99.9 || got.Lag.P99Ms > 100.1 || got.Lag.MaxMs > 100.1 {
		t.Errorf("lag %+v, want 100 ms throughout", got.Lag)
	}
	// The load ran 8 s (6 events); the last arrival came 2 s after it, 10 s after its start.
	if got.DrainSeconds != 2 || got.DuringLoadPerSecond != 0.75 || got.OverallPerSecond != 0.7 {
		t.Errorf("drain %.3f s, during load %.3f/s, overall %.3f/s; want 2, 0.75, 0.7", got.DrainSeconds, got.DuringLoadPerSecond, got.OverallPerSecond)
	}
	notDrained := receiver.result(9, 0, false, arrival.Add(time.Minute))
	if notDrained.Drained || notDrained.DrainSeconds != 62 {
		t.Errorf("not drained: %v after %.3f s, want the limit (62 s)", notDrained.Drained, notDrained.DrainSeconds)
	}
	var table strings.Builder
	if err := WriteTable(&table, &Result{System: "gigaledger", Webhook: &got}); err != nil || !strings.Contains(table.String(), "holes 1") {
		t.Errorf("table (%v):\n%s", err, table.String())
	}
}

func TestWebhookWaitForEndsWithItsContext(t *testing.T) {
	receiver := newWebhookReceiver(testWebhookSecret, time.Now)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if receiver.waitFor(ctx, 1) {
		t.Fatal("waitFor reported an event that never came")
	}
	if elapsed := time.Since(begin); elapsed > 5*time.Second {
		t.Fatalf("waitFor returned after %s", elapsed)
	}
}

func TestSmokeWithWebhook(t *testing.T) {
	ledger := newFakeLedger("secret")
	server := httptest.NewServer(ledger.handler())
	defer server.Close()
	args := []string{"--target", server.URL, "--token", "secret", "--scenario", ScenarioTransfer, "--clients", "8",
		"--wallets", "20", "--duration", "500ms", "--webhook", "--webhook-drain", "20s", "--json", "--progress", "off"}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var result Result
	if err := json.Unmarshal(stdout.Bytes(), &result); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	webhook := result.Webhook
	if webhook == nil {
		t.Fatalf("no webhook figures: %s", stdout.String())
	}
	// The fake delivers every event of the run (the probe's before it) and every 50th twice.
	if webhook.Expected != result.OK+result.Business || webhook.Received != webhook.Expected || !webhook.Drained {
		t.Errorf("received %d of %d (ok %d, business %d), drained %v", webhook.Received, webhook.Expected, result.OK, result.Business, webhook.Drained)
	}
	if webhook.Holes != 0 || webhook.Rejected != 0 || webhook.Duplicates < webhook.Expected/fakeHookDuplicateEvery-1 {
		t.Errorf("holes %d, rejected %d, duplicates %d", webhook.Holes, webhook.Rejected, webhook.Duplicates)
	}
	if webhook.Connections > 1 {
		t.Errorf("the fake's one keep-alive connection shows as %d new connections", webhook.Connections)
	}
	if webhook.Lag.MaxMs <= 0 || webhook.DuringLoadPerSecond <= 0 || webhook.Types["LEDGER_TX_COMPLETED"] == 0 {
		t.Errorf("lag %+v, during load %.1f/s, types %v", webhook.Lag, webhook.DuringLoadPerSecond, webhook.Types)
	}
	ledger.mutex.Lock()
	deleted, hook := ledger.requests["DELETE /subscriptions/{name}"], ledger.hook
	ledger.mutex.Unlock()
	if deleted != 1 || hook != nil {
		t.Errorf("subscription deleted %d times, still there: %v", deleted, hook != nil)
	}
}
