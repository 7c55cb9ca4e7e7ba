package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// eventPage is GET /events as a client reads it, with each item kept raw too.
type eventPage struct {
	Items  []json.RawMessage `json:"items"`
	Cursor string            `json:"cursor"`
	More   bool              `json:"more"`
	Gaps   []httpapi.EventsGap
}

type envelope struct {
	EventType string         `json:"event_type"`
	Message   map[string]any `json:"message"`
	EventID   string         `json:"event_id"`
	Shard     int            `json:"shard"`
	Sequence  uint64         `json:"sequence"`
	CreatedAt string         `json:"created_at"`
}

func (p eventPage) envelopes(t *testing.T) []envelope {
	t.Helper()
	out := make([]envelope, len(p.Items))
	for i, raw := range p.Items {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func getEvents(c *apiClient, query string) eventPage {
	c.t.Helper()
	var page eventPage
	c.do("GET", "/events"+query, nil).expect(200).decode(&page)
	if page.Cursor == "" || page.Items == nil {
		c.t.Fatalf("GET /events%s: no cursor or items: %+v", query, page)
	}
	return page
}

// Every family's events leave in one envelope, with the subject in its product's JSON; pages
// through the cursor give the whole log exactly once; filters, long polls and bad input.
func TestEventsOverOneShard(t *testing.T) {
	c, backend, _ := newGigaWalletServer(t)
	f := setUp(t, c)
	c.do("POST", "/projects/shop/transactions", transaction("fund", issue(f.walletA, 100))).expect(201)
	c.do("POST", "/projects/shop/transactions", transaction("pay", transfer(f.walletA, f.walletB, 30))).expect(201)
	c.do("POST", "/projects/shop/transactions", transaction("too-much", transfer(f.walletA, f.walletB, 1000))).expect(422)
	var held map[string]any
	c.do("POST", "/projects/shop/transactions", transaction("hold", map[string]any{"type": "hold", "from": f.walletA, "amount": 5})).expect(201).decode(&held)
	holdID := held["operations"].([]any)[0].(map[string]any)["holdId"].(string)
	c.do("POST", "/projects/shop/holds/"+holdID+"/release", `{}`).expect(200)
	c.do("PUT", "/projects/shop/wallets/"+f.walletB+"/status", map[string]any{"status": "suspended"}).expect(200)
	var account map[string]any
	c.do("POST", "/account/shop", `{}`).expect(200).decode(&account)
	var invoice map[string]any
	c.do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"Tea","quantity":2,"value":"1.5"}]}`).expect(200).decode(&invoice)

	all := getEvents(c, "?limit=1000")
	events := all.envelopes(t)
	wantTypes := []string{"LEDGER_TX_COMPLETED", "LEDGER_TX_COMPLETED", "LEDGER_TX_FAILED", "LEDGER_TX_COMPLETED",
		"LEDGER_HOLD_RELEASED", "LEDGER_WALLET_STATUS", "ACC_CREATED", "INV_CREATED"}
	var gotTypes []string
	for i, ev := range events {
		gotTypes = append(gotTypes, ev.EventType)
		if ev.Shard != 0 || ev.Sequence != uint64(i+1) || ev.EventID != fmt.Sprintf("s000-%020d", i+1) {
			t.Errorf("event %d: shard %d sequence %d id %s", i, ev.Shard, ev.Sequence, ev.EventID)
		}
		if at, err := time.Parse(time.RFC3339, ev.CreatedAt); err != nil || !strings.HasSuffix(ev.CreatedAt, "Z") ||
			at.UnixMilli() != backend.NowMs() {
			t.Errorf("event %d created_at %q: %v", i, ev.CreatedAt, err)
		}
	}
	if !slices.Equal(gotTypes, wantTypes) {
		t.Fatalf("types %v, want %v", gotTypes, wantTypes)
	}
	if all.More || len(all.Gaps) != 0 {
		t.Fatalf("more %v gaps %v", all.More, all.Gaps)
	}
	// The envelope's keys, in order: GigaWallet's three, then ours.
	keyOrder := regexp.MustCompile(`^\{"event_type":"[A-Z_]+","message":.*,"event_id":"s000-[0-9]{20}","shard":0,"sequence":[0-9]+,"created_at":"[^"]+"\}$`)
	for _, raw := range all.Items {
		if !keyOrder.Match(raw) {
			t.Errorf("envelope %s", raw)
		}
	}
	// Each message is the product's own view: the same JSON its routes answer.
	same := func(what string, message map[string]any, route string) {
		t.Helper()
		var want map[string]any
		c.do("GET", route, nil).expect(200).decode(&want)
		for _, volatile := range []string{"balance", "held", "available", "updatedAt", "status"} {
			if what == "wallet" {
				delete(want, volatile) // the wallet changed after the event
				delete(message, volatile)
			}
		}
		if fmt.Sprint(message) != fmt.Sprint(want) {
			t.Errorf("%s message\n%v\nwant (GET %s)\n%v", what, message, route, want)
		}
	}
	same("transaction", events[1].Message, "/projects/shop/transactions/"+events[1].Message["id"].(string))
	if events[2].Message["status"] != "failed" || events[2].Message["referenceId"] != "too-much" {
		t.Errorf("failed transaction message %v", events[2].Message)
	}
	if events[4].Message["id"] != holdID || events[4].Message["status"] != "released" {
		t.Errorf("hold message %v", events[4].Message)
	}
	if events[5].Message["id"] != f.walletB || events[5].Message["status"] != "suspended" {
		t.Errorf("wallet message %v", events[5].Message)
	}
	same("wallet", events[5].Message, "/projects/shop/wallets/"+f.walletB)
	same("account", events[6].Message, "/account/shop")
	if len(events[6].Message) != 5 {
		t.Errorf("ACC_CREATED message is not AccountPublic: %v", events[6].Message)
	}
	same("invoice", events[7].Message, "/account/shop/invoice/"+invoice["id"].(string))
	if events[7].Message["total"] != "3" || events[7].Message["account"] != account["id"] {
		t.Errorf("INV_CREATED message %v", events[7].Message)
	}

	// Page by page: the same events, each once; the last page's cursor is the whole log's.
	var paged []string
	cursor := ""
	for range 20 {
		query := "?limit=3"
		if cursor != "" {
			query += "&after=" + cursor
		}
		page := getEvents(c, query)
		for _, ev := range page.envelopes(t) {
			paged = append(paged, ev.EventID)
		}
		cursor = page.Cursor
		if !page.More {
			break
		}
	}
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev.EventID)
	}
	if !slices.Equal(paged, ids) || cursor != all.Cursor {
		t.Fatalf("paged %v, want %v; cursor %s, want %s", paged, ids, cursor, all.Cursor)
	}
	if again := getEvents(c, "?after="+cursor); len(again.Items) != 0 || again.Cursor != cursor || again.More {
		t.Fatalf("after the end: %+v", again)
	}

	// Filters: categories and exact types; what they skip still moves the cursor.
	inv := getEvents(c, "?types=INV,ACC")
	if got := inv.envelopes(t); len(got) != 2 || got[0].EventType != "ACC_CREATED" || got[1].EventType != "INV_CREATED" || inv.Cursor != all.Cursor {
		t.Fatalf("types=INV,ACC: %+v", inv)
	}
	failed := getEvents(c, "?types=LEDGER_TX_FAILED&limit=1")
	if got := failed.envelopes(t); len(got) != 1 || got[0].Sequence != 3 {
		t.Fatalf("types=LEDGER_TX_FAILED: %+v", got)
	}
	if got := getEvents(c, "?types=LEDGER_TX_FAILED&after="+failed.Cursor); len(got.Items) != 0 || got.Cursor != all.Cursor {
		t.Fatalf("after the only failure: %+v", got)
	}

	// Bad input.
	otherShape := base64.RawURLEncoding.EncodeToString(binary.AppendUvarint([]byte{1, 2}, 0))
	for query, code := range map[string]string{
		"?types=BOGUS":                httpapi.CodeInvalidArgument,
		"?types=inv":                  httpapi.CodeInvalidArgument,
		"?limit=0":                    httpapi.CodeLimitExceeded,
		"?limit=1001":                 httpapi.CodeLimitExceeded,
		"?limit=x":                    httpapi.CodeInvalidArgument,
		"?wait=31":                    httpapi.CodeInvalidArgument,
		"?wait=-1":                    httpapi.CodeInvalidArgument,
		"?after=":                     httpapi.CodeInvalidCursor,
		"?after=%21%21":               httpapi.CodeInvalidCursor,
		"?after=" + otherShape + "AA": httpapi.CodeInvalidCursor,
		"?after=" + base64.RawURLEncoding.EncodeToString([]byte{1, 2, 0, 0}): httpapi.CodeCursorShardMismatch,
		"?after=" + base64.RawURLEncoding.EncodeToString([]byte{1, 1, 99}):   httpapi.CodeInvalidCursor, // past the newest event
	} {
		c.do("GET", "/events"+query, nil).expectError(400, code)
	}

	// A long poll with nothing new waits its time, then answers empty with the same cursor.
	started := time.Now()
	if idle := getEvents(c, "?wait=1&after="+cursor); len(idle.Items) != 0 || idle.Cursor != cursor {
		t.Fatalf("idle long poll: %+v", idle)
	}
	if waited := time.Since(started); waited < time.Second {
		t.Fatalf("a long poll of 1 s answered after %v", waited)
	}
	// A long poll answers as soon as a matching event is written; one that only a filtered-out
	// event follows keeps waiting.
	answered := make(chan eventPage, 1)
	go func() {
		request := httptest.NewRequest("GET", "/events?types=LEDGER_TX_COMPLETED&wait=30&after="+cursor, nil)
		request.Host = testHost
		request.Header.Set("Authorization", "Bearer "+testToken)
		recorder := httptest.NewRecorder()
		c.handler.ServeHTTP(recorder, request)
		var page eventPage
		if recorder.Code != http.StatusOK || json.NewDecoder(bytes.NewReader(recorder.Body.Bytes())).Decode(&page) != nil {
			page.Cursor = fmt.Sprintf("status %d: %s", recorder.Code, recorder.Body.String())
		}
		answered <- page
	}()
	c.do("PUT", "/projects/shop/wallets/"+f.walletB+"/status", map[string]any{"status": "open"}).expect(200)
	c.do("POST", "/projects/shop/transactions", transaction("late", issue(f.walletA, 1))).expect(201)
	select {
	case page := <-answered:
		got := page.envelopes(t)
		if len(got) != 1 || got[0].EventType != "LEDGER_TX_COMPLETED" || got[0].Message["referenceId"] != "late" {
			t.Fatalf("long poll answered %+v", page)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not answer when the event was written")
	}
}

// Events that retention dropped before the reader got them are reported as a gap, never
// skipped silently; a reader without a cursor starts at the oldest kept event.
func TestEventsReportRetentionGaps(t *testing.T) {
	c, backend, _ := newTestServer(t)
	backend.Machine.Registry().SetOutboxRetention(2)
	f := setUp(t, c)
	c.do("POST", "/projects/shop/transactions", transaction("t1", issue(f.walletA, 1))).expect(201)
	first := getEvents(c, "")
	for i := 2; i <= 5; i++ {
		c.do("POST", "/projects/shop/transactions", transaction(fmt.Sprint("t", i), issue(f.walletA, 1))).expect(201)
	}
	page := getEvents(c, "?after="+first.Cursor)
	got := page.envelopes(t)
	if len(page.Gaps) != 1 || page.Gaps[0] != (httpapi.EventsGap{Shard: 0, From: 2, To: 3}) || len(got) != 2 || got[0].Sequence != 4 {
		t.Fatalf("after retention: gaps %+v, events %+v", page.Gaps, got)
	}
	if fresh := getEvents(c, ""); len(fresh.Gaps) != 0 || fresh.envelopes(t)[0].Sequence != 4 {
		t.Fatalf("without a cursor: %+v", fresh)
	}
}

// At most 256 requests wait at once; the next is refused 503 Overloaded with Retry-After, and
// waiters that leave free their places.
func TestEventsLongPollsAreBounded(t *testing.T) {
	c, _, _ := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	finished := make(chan *httptest.ResponseRecorder, 257)
	for range 257 {
		go func() {
			request := httptest.NewRequest("GET", "/events?wait=30", nil).WithContext(ctx)
			request.Host = testHost
			request.Header.Set("Authorization", "Bearer "+testToken)
			recorder := httptest.NewRecorder()
			c.handler.ServeHTTP(recorder, request)
			finished <- recorder
		}()
	}
	// 256 wait for 30 s; the one refused finishes first.
	select {
	case refused := <-finished:
		if refused.Code != http.StatusServiceUnavailable || !strings.Contains(refused.Body.String(), httpapi.CodeOverloaded) ||
			refused.Header().Get("Retry-After") == "" {
			t.Fatalf("first to finish: %d %s", refused.Code, refused.Body.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no long poll was refused")
	}
	c.do("GET", "/events", nil).expect(200) // polling without wait is never refused
	cancel()
	for range 256 {
		<-finished
	}
	c.do("GET", "/events?wait=1", nil).expect(200)
}

// When the node starts shutting down, a waiting long poll answers at once with what it has
// rather than hold the shutdown's grace period.
func TestEventsLongPollAnswersAtShutdown(t *testing.T) {
	backend := httpapitest.NewLedgerBackend(t)
	lifetime, shutDown := context.WithCancel(context.Background())
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, Lifetime: lifetime}, backend, testLogger(t), nil)
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		request := httptest.NewRequest("GET", "/events?wait=30", nil)
		request.Host = testHost
		request.Header.Set("Authorization", "Bearer "+testToken)
		recorder := httptest.NewRecorder()
		handler.ServeHTTP(recorder, request)
		answered <- recorder
	}()
	shutDown()
	select {
	case recorder := <-answered:
		if recorder.Code != http.StatusOK || !strings.Contains(recorder.Body.String(), `"items":[]`) {
			t.Fatalf("at shutdown: %d %s", recorder.Code, recorder.Body.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll held on after shutdown began")
	}
}
