package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// EventsRequest asks GET /events for one page of events (docs/events.md).
type EventsRequest struct {
	// After is the Cursor of the previous page; empty starts at each shard's oldest kept event.
	After string
	// Limit is the number of events per page, 1..1000; 0 means the server's default (100).
	Limit int
	// Types filters by category (ALL, SYS, ACC, INV, PAYMENT, LEDGER, TOKEN) or exact event
	// type; empty means every event. Events filtered out still advance the cursor.
	Types []string
	// Wait makes the call a long poll: when no event matches yet, the server waits up to this
	// long (whole seconds, at most 30 s) for one. 0 answers at once.
	Wait time.Duration
}

// Event is an event as every delivery sends it.
type Event struct {
	EventType string `json:"event_type"`
	// Message is the subject in its product's JSON: a Transaction, Wallet or Hold (LEDGER_*),
	// an Account (ACC_*) or an Invoice (INV_*); null for an event the node cannot render.
	Message json.RawMessage `json:"message"`
	// EventID is stable across reads and nodes: deduplicate on it.
	EventID   string    `json:"event_id"`
	Shard     int       `json:"shard"`
	Sequence  uint64    `json:"sequence"`
	CreatedAt time.Time `json:"created_at"`
}

// EventsGap is a run of a shard's events that retention dropped before the reader got them.
type EventsGap struct {
	Shard int    `json:"shard"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

// EventPage is one answer of GET /events.
type EventPage struct {
	Items []Event `json:"items"`
	// Cursor continues after this page (EventsRequest.After), also when Items is empty.
	Cursor string `json:"cursor"`
	// More says events past Cursor exist already: ask again without waiting.
	More bool        `json:"more"`
	Gaps []EventsGap `json:"gaps"`
}

// ListEvents returns the next page of events across every shard after the request's cursor.
// Keep the returned Cursor (also of an empty page) and pass it as After to continue.
func (c *Client) ListEvents(ctx context.Context, in EventsRequest) (*EventPage, error) {
	q := url.Values{}
	if in.After != "" {
		q.Set("after", in.After)
	}
	if in.Limit != 0 {
		q.Set("limit", strconv.Itoa(in.Limit))
	}
	if len(in.Types) > 0 {
		q.Set("types", strings.Join(in.Types, ","))
	}
	if in.Wait > 0 {
		q.Set("wait", strconv.Itoa(int(in.Wait/time.Second)))
	}
	p := "/events"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out EventPage
	return entity(&out, c.read(ctx, p, &out))
}
