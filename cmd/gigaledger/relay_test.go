package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/httpapi"
)

// webhookReceiver is a subscriber's endpoint on loopback: it verifies every request's HMAC and
// that every request for one event_id carries the same body, and keeps what it accepted; fail
// makes it answer 500 to the next n requests, refuse (when set) answers the status it returns
// for an event type instead of accepting (0: accept).
type webhookReceiver struct {
	t      *testing.T
	secret string
	url    string

	mu       sync.Mutex
	got      []map[string]any // accepted envelopes, in order of arrival
	posts    int
	fail     int
	refuse   func(eventType string) int
	bodies   map[string][]byte // by event_id, as first posted
	attempts map[string]int    // requests by event_id
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	r := &webhookReceiver{t: t, secret: secret, bodies: map[string][]byte{}, attempts: map[string]int{}}
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(listener)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + listener.Addr().String() + "/hook"
	return r
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if err := relay.Verify(r.secret, req.Header, body); err != nil || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("request %d: signature %v, content type %q", r.posts, err, req.Header.Get("Content-Type"))
	}
	var envelope map[string]any
	if err := json.Unmarshal(body, &envelope); err != nil {
		r.t.Errorf("body %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	eventID, _ := envelope["event_id"].(string)
	eventType, _ := envelope["event_type"].(string)
	if first, ok := r.bodies[eventID]; !ok {
		r.bodies[eventID] = body
	} else if !bytes.Equal(first, body) {
		r.t.Errorf("event %s posted again with another body:\n%s\n%s", eventID, first, body)
	}
	r.attempts[eventID]++
	if r.fail > 0 {
		r.fail--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if r.refuse != nil {
		if status := r.refuse(eventType); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	r.got = append(r.got, envelope)
}

// setRefuse replaces refuse.
func (r *webhookReceiver) setRefuse(refuse func(eventType string) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = refuse
}

func (r *webhookReceiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var types []string
	for _, e := range r.got {
		types = append(types, e["event_type"].(string))
	}
	return types
}

// TestWebhookDelivery: a subscription made through the admin API receives, HMAC-signed, the
// events its filter wants that happen after it ("from now"), and gets an event its receiver
// refused twice on the third attempt.
func TestWebhookDelivery(t *testing.T) {
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming}
	// A webhook of the configuration (--callback, or [callbacks.cfg] of a config.toml) starts
	// with the oldest event.
	configured := newWebhookReceiver(t, "k2")
	if err := (callbackFlags{list: &cfg.Callbacks}).Set(`{"name":"cfg","url":"` + configured.url + `","types":["ACC"],"secret":"k2"}`); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	admin := "http://" + cfg.AdminAddr
	post := func(path, body string, want int) string {
		t.Helper()
		var status int
		var answer string
		testutil.EventuallyWithin(t, 20*time.Second, "a non-503 answer to "+path, func() bool {
			resp, err := http.Post(admin+path, "application/json", strings.NewReader(body))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			status, answer = resp.StatusCode, string(data)
			return status != http.StatusServiceUnavailable
		})
		if status != want {
			t.Fatalf("POST %s: %d %s, want %d", path, status, answer, want)
		}
		return answer
	}
	post("/account/before", `{}`, 200) // before the subscription: not delivered

	receiver := newWebhookReceiver(t, "s3cret")
	receiver.fail = 2
	created := post("/subscriptions", `{"name":"shop","url":"`+receiver.url+`","secret":"s3cret","types":["ACC","INV"]}`, 201)
	if strings.Contains(created, "s3cret") || !strings.Contains(created, `"secretSet":true`) {
		t.Fatalf("created %s", created)
	}
	post("/subscriptions", `{"name":"shop","url":"`+receiver.url+`","types":["ALL"]}`, 409)
	post("/subscriptions", `{"name":"self","url":"http://`+cfg.AdminAddr+`/projects","types":["ALL"]}`, 400)
	post("/subscriptions", `{"name":"bad","url":"ftp://x","types":["ALL"]}`, 400)
	post("/subscriptions", `{"name":"bad","url":"`+receiver.url+`","types":["NOPE"]}`, 400)
	post("/subscriptions", `{"name":"callbacks.cfg","url":"`+receiver.url+`","types":["ALL"]}`, 400)
	post("/subscriptions", `{"name":"a\u200bb","url":"`+receiver.url+`","types":["ALL"]}`, 400) // looks like "ab"

	post("/account/shop", `{}`, 200)
	post("/account/shop/invoice", `{"items":[{"type":"item","name":"Tea","quantity":1,"value":"2"}]}`, 200)
	post("/projects", `{"id":"p1","name":"Not for this subscriber"}`, 201)
	testutil.EventuallyWithin(t, 30*time.Second, "ACC_CREATED and INV_CREATED at the receiver", func() bool {
		return len(receiver.types()) >= 2
	})
	if got := strings.Join(receiver.types(), ","); got != "ACC_CREATED,INV_CREATED" {
		t.Fatalf("received %s", got)
	}
	receiver.mu.Lock()
	first, posts := receiver.got[0], receiver.posts
	receiver.mu.Unlock()
	if posts != 4 || first["message"].(map[string]any)["foreign_id"] != "shop" || !strings.HasPrefix(first["event_id"].(string), "s000-") {
		t.Fatalf("%d posts; first %v", posts, first)
	}
	testutil.EventuallyWithin(t, 30*time.Second, "both accounts at the configured webhook", func() bool {
		return len(configured.types()) >= 2
	})
	if got := strings.Join(configured.types(), ","); got != "ACC_CREATED,ACC_CREATED" {
		t.Fatalf("the configured webhook received %s", got)
	}
	var listed struct{ Items []map[string]any }
	resp, err := http.Get(admin + "/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if len(listed.Items) != 1 || listed.Items[0]["name"] != "shop" {
		t.Fatalf("listed %v", listed)
	}
}

// TestWebhookDeadLetter: an event its receiver keeps refusing (every INV_CREATED answered 500)
// is dead-lettered after the retry budget, listed by GET /subscriptions/:name/dead-letters with
// its event_id and the reason, and delivery goes on with the next event; the replicated cursor
// passes it. Once the receiver accepts, POST .../dead-letters/redrive delivers it (and nothing
// else) again and empties the list.
func TestWebhookDeadLetter(t *testing.T) {
	const attemptCount = 3
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming,
		relayRetry: &relay.RetryPolicy{AttemptMaxCount: attemptCount, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}}
	receiver := newWebhookReceiver(t, "s3cret")
	// A subscriber of the configuration (--callback) beside the API's: its dead letters are
	// re-driven the same way (a probe found them listed and every re-drive 404).
	invoices, err := relay.ParseFilter([]string{"INV"})
	if err != nil {
		t.Fatal(err)
	}
	configured := newWebhookReceiver(t, "s3cret")
	configured.setRefuse(func(string) int { return http.StatusInternalServerError })
	cfg.Callbacks = []relay.Subscription{{Name: "callbacks.cb", Kind: relay.KindWebhook, URL: configured.url, Secret: "s3cret", Filter: invoices}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	admin := "http://" + cfg.AdminAddr
	send := func(method, path, body string, want int) []byte {
		t.Helper()
		var status int
		var answer []byte
		testutil.EventuallyWithin(t, 20*time.Second, "a non-503 answer to "+path, func() bool {
			req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			answer, _ = io.ReadAll(resp.Body)
			status = resp.StatusCode
			return status != http.StatusServiceUnavailable
		})
		if status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, status, answer, want)
		}
		return answer
	}
	receiver.setRefuse(func(eventType string) int {
		if eventType == "INV_CREATED" {
			return http.StatusInternalServerError
		}
		return 0
	})
	send(http.MethodPost, "/subscriptions", `{"name":"shop","url":"`+receiver.url+`","secret":"s3cret","types":["ACC","INV"]}`, 201)
	send(http.MethodPost, "/account/a", `{}`, 200)
	send(http.MethodPost, "/account/a/invoice", `{"items":[{"type":"item","name":"Tea","quantity":1,"value":"2"}]}`, 200)
	send(http.MethodPost, "/account/b", `{}`, 200)

	testutil.EventuallyWithin(t, 30*time.Second, "both ACC_CREATED at the receiver", func() bool {
		return len(receiver.types()) >= 2
	})
	if got := strings.Join(receiver.types(), ","); got != "ACC_CREATED,ACC_CREATED" {
		t.Fatalf("received %s", got)
	}
	var letters struct{ Items []httpapi.DeadLetter }
	if err := json.Unmarshal(send(http.MethodGet, "/subscriptions/shop/dead-letters", "", 200), &letters); err != nil {
		t.Fatal(err)
	}
	if len(letters.Items) != 1 {
		t.Fatalf("dead letters %+v", letters.Items)
	}
	letter := letters.Items[0]
	receiver.mu.Lock()
	attempts, body := receiver.attempts[letter.EventID], receiver.bodies[letter.EventID]
	receiver.mu.Unlock()
	var refused replayedEvent
	if err := json.Unmarshal(body, &refused); err != nil || refused.EventType != "INV_CREATED" || refused.Sequence != letter.Sequence {
		t.Fatalf("dead letter %+v; the receiver refused %s (%v)", letter, body, err)
	}
	if attempts != attemptCount || letter.Subscriber != "shop" || letter.EventType != "INV_CREATED" ||
		!strings.Contains(letter.Reason, "3 attempts") || !strings.Contains(letter.Reason, "500") {
		t.Fatalf("dead letter %+v after %d attempts", letter, attempts)
	}
	// b's ACC_CREATED, after the invoice, was delivered; the cursor passed the dead letter.
	receiver.mu.Lock()
	next := receiver.got[1]
	receiver.mu.Unlock()
	if next["message"].(map[string]any)["foreign_id"] != "b" || uint64(next["sequence"].(float64)) <= letter.Sequence {
		t.Fatalf("delivered %v after dead letter %+v", next, letter)
	}
	machine := n.cluster.StateMachine(0).(*fsm.Machine)
	_, newest, err := machine.OutboxRange()
	if err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 10*time.Second, "the cursor at the newest event", func() bool {
		cursor, err := machine.OutboxCursor("shop")
		return err == nil && cursor == newest && cursor > letter.Sequence
	})

	// Re-drive: the receiver accepts now; the dead letter arrives, leaves the list, and nothing
	// else is delivered again (the cursor stays).
	receiver.setRefuse(nil)
	send(http.MethodPost, "/subscriptions/nobody/dead-letters/redrive", "", 404)
	send(http.MethodGet, "/subscriptions/nobody/dead-letters", "", 404) // as the re-drive: no such subscriber
	var answer httpapi.RedriveAnswer
	if err := json.Unmarshal(send(http.MethodPost, "/subscriptions/shop/dead-letters/redrive", "", 200), &answer); err != nil || answer.Marked != 1 {
		t.Fatalf("redrive answered %+v %v", answer, err)
	}
	testutil.EventuallyWithin(t, 10*time.Second, "INV_CREATED at the receiver", func() bool { return len(receiver.types()) >= 3 })
	testutil.EventuallyWithin(t, 10*time.Second, "no dead letter left", func() bool {
		letters.Items = nil
		err := json.Unmarshal(send(http.MethodGet, "/subscriptions/shop/dead-letters", "", 200), &letters)
		return err == nil && len(letters.Items) == 0
	})
	if got := strings.Join(receiver.types(), ","); got != "ACC_CREATED,ACC_CREATED,INV_CREATED" {
		t.Fatalf("received %s", got)
	}
	receiver.mu.Lock()
	redriven := receiver.got[2]
	attempts = receiver.attempts[letter.EventID]
	receiver.mu.Unlock()
	if redriven["event_id"] != letter.EventID || attempts != attemptCount+1 {
		t.Fatalf("re-drove %v, %d attempts of %s", redriven, attempts, letter.EventID)
	}
	if cursor, _ := machine.OutboxCursor("shop"); cursor != newest {
		t.Fatalf("cursor %d after the re-drive, want %d", cursor, newest)
	}
	if err := json.Unmarshal(send(http.MethodPost, "/subscriptions/shop/dead-letters/redrive", "{}", 200), &answer); err != nil || answer.Marked != 0 {
		t.Fatalf("redrive again answered %+v %v", answer, err)
	}

	// The configuration's subscriber: its INV_CREATED was refused too, and re-drives.
	testutil.EventuallyWithin(t, 30*time.Second, "callbacks.cb's dead letter", func() bool {
		letters.Items = nil
		err := json.Unmarshal(send(http.MethodGet, "/subscriptions/callbacks.cb/dead-letters", "", 200), &letters)
		return err == nil && len(letters.Items) == 1 && letters.Items[0].EventType == "INV_CREATED"
	})
	configured.setRefuse(nil)
	if err := json.Unmarshal(send(http.MethodPost, "/subscriptions/callbacks.cb/dead-letters/redrive", "", 200), &answer); err != nil || answer.Marked != 1 {
		t.Fatalf("redrive of callbacks.cb answered %+v %v", answer, err)
	}
	testutil.EventuallyWithin(t, 10*time.Second, "callbacks.cb's INV_CREATED at its receiver", func() bool {
		return strings.Join(configured.types(), ",") == "INV_CREATED"
	})
}
