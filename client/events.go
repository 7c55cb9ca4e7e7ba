package client

import (
	"context"
	"encoding/json"
	"net/http"
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

// Subscription is an event subscription: a webhook that receives the events its Types name
// (categories such as INV or exact types such as LEDGER_TX_COMPLETED), signed with its secret
// (never shown again: SecretSet says whether one is set).
type Subscription struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	URL       string   `json:"url"`
	Types     []string `json:"types"`
	SecretSet bool     `json:"secretSet"`
	CreatedAt int64    `json:"createdAt"`
}

// CreateSubscriptionRequest subscribes a webhook. From is "now" (the default: events after the
// subscription) or "oldest" (every event the shards still keep).
type CreateSubscriptionRequest struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Secret string   `json:"secret,omitempty"`
	Types  []string `json:"types"`
	From   string   `json:"from,omitempty"`
}

// DeadLetter is an event a subscriber's delivery gave up on after its retries.
type DeadLetter struct {
	Subscriber string `json:"subscriber"`
	EventID    string `json:"eventId"`
	Shard      int    `json:"shard"`
	Sequence   uint64 `json:"sequence"`
	EventType  string `json:"eventType"`
	Reason     string `json:"reason"`
	CreatedAt  int64  `json:"createdAt"`
}

// CreateSubscription subscribes a webhook to events.
func (c *Client) CreateSubscription(ctx context.Context, in CreateSubscriptionRequest) (*Subscription, error) {
	var out Subscription
	return entity(&out, c.write(ctx, http.MethodPost, "/subscriptions", in, &out))
}

// ListSubscriptions lists the event subscriptions.
func (c *Client) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	var out itemsResponse[Subscription]
	return items(&out, c.read(ctx, "/subscriptions", &out))
}

// GetSubscription returns an event subscription.
func (c *Client) GetSubscription(ctx context.Context, name string) (*Subscription, error) {
	var out Subscription
	return entity(&out, c.read(ctx, path("subscriptions", name), &out))
}

// DeleteSubscription deletes an event subscription.
func (c *Client) DeleteSubscription(ctx context.Context, name string) error {
	return c.write(ctx, http.MethodDelete, path("subscriptions", name), nil, nil)
}

// ListDeadLetters lists the events a subscriber's delivery gave up on: the first limit (0: the
// server's default) of every shard.
func (c *Client) ListDeadLetters(ctx context.Context, name string, limit int) ([]DeadLetter, error) {
	p := path("subscriptions", name, "dead-letters")
	if limit > 0 {
		p += "?limit=" + strconv.Itoa(limit)
	}
	var out itemsResponse[DeadLetter]
	return items(&out, c.read(ctx, p, &out))
}

// RedriveDeadLetters asks for a subscriber's dead letters to be delivered again (each shard's
// leader delivers them, out of sequence order, within the retry budget; those that arrive leave
// the list) and returns how many were marked. Safe to repeat.
func (c *Client) RedriveDeadLetters(ctx context.Context, name string) (uint64, error) {
	var out struct {
		Marked uint64 `json:"marked"`
	}
	err := c.write(ctx, http.MethodPost, path("subscriptions", name, "dead-letters", "redrive"), nil, &out)
	return out.Marked, err
}
