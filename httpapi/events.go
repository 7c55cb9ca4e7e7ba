package httpapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
	"github.com/gin-gonic/gin"
)

// Events leave the node in one envelope whatever their family (docs/events.md): GigaWallet's
// three keys first (contract §6.1), then where the event lives. GET /events replays and polls
// them across shards with an opaque cursor.

// pathEvents is the replay and polling route.
const pathEvents = "/events"

// Limits of GET /events.
const (
	eventsPageDefaultCount = 100
	eventsPageMaxCount     = backend.EventsMaxCount
	eventsWaitMaxSeconds   = 30
	// eventsLongPollsMaxCount bounds the requests waiting at once; more are refused 503
	// Overloaded (each holds a connection and a goroutine for up to eventsWaitMaxSeconds).
	eventsLongPollsMaxCount = 256
	// eventsTypesMaxCount bounds the entries of the types filter.
	eventsTypesMaxCount = 64
	// eventsFilteredReadsMaxCount bounds the reads of one request (between waits) whose events
	// the filter skips: a page may answer fewer items than its limit, with more set.
	eventsFilteredReadsMaxCount = 16
	// eventTypeMaxLength bounds one entry of the types filter.
	eventTypeMaxLength = 64
)

// Error codes of GET /events.
const (
	// CodeInvalidCursor: the cursor is not one this cluster wrote (malformed, or past a
	// shard's newest event).
	CodeInvalidCursor = "InvalidCursor"
	// CodeCursorShardMismatch: the cursor was written by a cluster of another shard count.
	CodeCursorShardMismatch = "CursorShardMismatch"
)

// Event categories, GigaWallet's (contract §6.2) and ours. An event's category is its type's
// prefix before the first '_' (LEDGER_TX_COMPLETED is LEDGER); ALL matches every event.
const (
	CategoryAll     = "ALL"
	CategorySys     = "SYS"
	CategoryAccount = "ACC"
	CategoryInvoice = "INV"
	CategoryPayment = "PAYMENT"
	CategoryLedger  = "LEDGER"
	CategoryToken   = "TOKEN"
	// CategoryGigPay is the GigPay family's: GIGPAY_TOKEN_* and GIGPAY_PAYMENT_*.
	CategoryGigPay = "GIGPAY"
	// CategoryNet is accepted so that GigaWallet filters keep working; GigaWallet declared its
	// NET_* events but never sent one, and neither does this node.
	CategoryNet = "NET"
)

// eventCategories are the relay's (one list for GET /events and for subscriptions).
var eventCategories = relay.Categories

// EventCategory is the category of an event type: its prefix before the first '_' (the whole
// type when it has none).
func EventCategory(eventType string) string {
	category, _, _ := strings.Cut(eventType, "_")
	return category
}

// EventEnvelope is an event as every delivery sends it: webhook body, MQTT payload, and the
// items of GET /events.
type EventEnvelope struct {
	EventType string `json:"event_type"`
	// Message is the subject in its product's JSON: a Cloud Wallet transaction, wallet or hold
	// (LEDGER_*), a GigaWallet AccountPublic (ACC_*) or admin Invoice (INV_*), a GigPay token
	// (GIGPAY_TOKEN_*) or payment (GIGPAY_PAYMENT_*); null for an event
	// of a family this node does not render.
	Message any `json:"message"`
	// EventID is stable: EventID(shard, sequence).
	EventID   string `json:"event_id"`
	Shard     int    `json:"shard"`
	Sequence  uint64 `json:"sequence"`
	CreatedAt string `json:"created_at"`
}

// EventID is an event's stable ID: "s" + the shard in 3 digits + "-" + the outbox sequence in
// 20 digits ("s002-00000000000000000123"). Zero-padded, so IDs sort as (shard, sequence):
// keyspace.ShardCountMax is 256 and a sequence is a uint64.
func EventID(shardID int, sequence uint64) string {
	return fmt.Sprintf("s%03d-%020d", shardID, sequence)
}

// eventTimeLayout is RFC 3339 in UTC with milliseconds, fixed width so that it sorts as text.
const eventTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// RenderEventIn is the envelope of one event of a shard, with GigPay token links of the wallet
// app's environment gigPayEnv (GigPayConfig.Env; "" is production).
func RenderEventIn(shardID int, ev backend.Event, gigPayEnv string) EventEnvelope {
	return EventEnvelope{EventType: ev.Type, Message: eventMessage(ev, gigPayEnv), EventID: EventID(shardID, ev.Sequence),
		Shard: shardID, Sequence: ev.Sequence, CreatedAt: time.UnixMilli(ev.TimeMs).UTC().Format(eventTimeLayout)}
}

func eventMessage(ev backend.Event, gigPayEnv string) any {
	switch subject := ev.Subject.(type) {
	case *gigpay.Token:
		return gp.TokenOf(subject, gigPayEnv)
	case *gigpay.Payment:
		return gp.PaymentOf(subject)
	case *ledger.Transaction:
		return cloudwallet.TransactionOf(subject)
	case *ledger.Wallet:
		return cloudwallet.WalletOf(subject)
	case *ledger.Hold:
		return cloudwallet.HoldOf(subject)
	case *gigawallet.Account:
		return accountView(subject)
	case *gigawallet.Payment:
		var accountAddress string
		if ev.Account != nil {
			accountAddress = ev.Account.Address
		}
		return paymentView(accountAddress, subject)
	case *gigawallet.AccountBalance:
		return gw.AccountBalanceEvent{AccountID: subject.Address, ForeignID: subject.ForeignID,
			CurrentBalance: gw.Amount(subject.Current), IncomingBalance: gw.Amount(subject.Incoming), OutgoingBalance: gw.Amount(subject.Outgoing)}
	case *gigawallet.Invoice:
		var accountAddress string
		if ev.Account != nil {
			accountAddress = ev.Account.Address
		}
		if ev.Type == gigawallet.EventInvoiceCreated || ev.Type == gigawallet.EventInvoiceExpired {
			return invoiceView(accountAddress, subject)
		}
		// A payment event: GigaWallet's InvPaymentEvent.
		payment := gw.InvoicePaymentEvent{InvoiceID: subject.Address, AccountID: accountAddress, ForeignID: subject.ForeignID,
			InvoiceTotal: gw.Amount(subject.Total), TotalIncoming: gw.Amount(subject.Incoming), TotalConfirmed: gw.Amount(subject.Confirmed)}
		if ev.Type == gigawallet.EventInvoiceOverPaymentConfirmed {
			incoming, confirmed := gw.Amount(subject.Incoming), gw.Amount(subject.Confirmed)
			payment.OverpaymentIncoming, payment.OverpaymentConfirmed = &incoming, &confirmed
		}
		return payment
	}
	return nil
}

// The cursor's wire form: base64url (no padding) of version 1, the shard count (uvarint), and
// each shard's sequence (uvarint). Opaque to clients; strict: canonical varints only, no
// trailing bytes, shard count 1..keyspace.ShardCountMax.
const (
	cursorVersion = 1
	// cursorMaxChars bounds an encoded cursor: 2 + 256×10 bytes in base64.
	cursorMaxChars = (2 + 2 + keyspace.ShardCountMax*binary.MaxVarintLen64) * 4 / 3
)

func encodeEventsCursor(after []uint64) string {
	buf := make([]byte, 0, 2+len(after)*3)
	buf = append(buf, cursorVersion)
	buf = binary.AppendUvarint(buf, uint64(len(after)))
	for _, sequence := range after {
		buf = binary.AppendUvarint(buf, sequence)
	}
	return base64.RawURLEncoding.EncodeToString(buf)
}

var errCursor = errors.New("not a cursor of this API")

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// decodeEventsCursor reads a cursor; the caller checks its shard count against the cluster's.
func decodeEventsCursor(text string) ([]uint64, error) {
	// The base64 decoder skips '\r' and '\n': only the alphabet itself is a cursor.
	if text == "" || len(text) > cursorMaxChars || strings.Trim(text, base64URLAlphabet) != "" {
		return nil, errCursor
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if err != nil || len(raw) < 2 || raw[0] != cursorVersion {
		return nil, errCursor
	}
	rest := raw[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(rest)
		if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
			return 0, false // truncated, overflowing or not canonical
		}
		rest = rest[n:]
		return v, true
	}
	count, ok := next()
	if !ok || count < 1 || count > keyspace.ShardCountMax {
		return nil, errCursor
	}
	after := make([]uint64, count)
	for i := range after {
		if after[i], ok = next(); !ok || after[i] > 1<<63-1 {
			return nil, errCursor
		}
	}
	if len(rest) != 0 {
		return nil, errCursor
	}
	return after, nil
}

// eventFilter is the types parameter: categories and exact types. Empty matches everything.
type eventFilter struct {
	categories map[string]bool
	types      map[string]bool
}

// all says the filter matches every event.
func (f eventFilter) all() bool {
	return f.categories == nil && f.types == nil || f.categories[CategoryAll]
}

func (f eventFilter) matches(eventType string) bool {
	if f.all() {
		return true
	}
	return f.categories[CategoryAll] || f.categories[EventCategory(eventType)] || f.types[eventType]
}

// parseEventFilter reads types: a comma list of categories and/or exact event types. An entry
// without '_' must be a category; an entry with one is an event type, which must be of a known
// category and made of A-Z, 0-9 and '_'.
func parseEventFilter(raw string) (eventFilter, *apiError) {
	var f eventFilter
	if raw == "" {
		return f, nil
	}
	entries := strings.Split(raw, ",")
	if len(entries) > eventsTypesMaxCount {
		return f, badRequest(CodeLimitExceeded, "query parameter types lists at most %d entries", eventsTypesMaxCount)
	}
	f.categories, f.types = map[string]bool{}, map[string]bool{}
	for _, entry := range entries {
		entry = strings.TrimSpace(entry)
		valid := entry != "" && len(entry) <= eventTypeMaxLength && strings.Trim(entry, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
		if !valid || !slices.Contains(eventCategories, EventCategory(entry)) {
			return f, invalidArgument("query parameter types: unknown category or event type %q (categories: %s)",
				entry, strings.Join(eventCategories, ", "))
		}
		if strings.Contains(entry, "_") {
			f.types[entry] = true
		} else {
			f.categories[entry] = true
		}
	}
	return f, nil
}

// eventsRequest is a parsed GET /events.
type eventsRequest struct {
	// cursor is the last sequence delivered (or skipped by the filter) per shard; nil when
	// absent: start at each shard's oldest kept event.
	cursor []uint64
	// reportGaps is false for an absent cursor, which misses nothing by starting at the oldest
	// kept events.
	reportGaps bool
	limit      int
	filter     eventFilter
	waitMax    time.Duration
}

func parseEventsRequest(c *gin.Context) (eventsRequest, *apiError) {
	r := eventsRequest{limit: eventsPageDefaultCount}
	if text, present := c.GetQuery("after"); present {
		cursor, err := decodeEventsCursor(text)
		if err != nil {
			return r, badRequest(CodeInvalidCursor, "query parameter after is not a cursor this API wrote; omit it to start from the oldest event")
		}
		r.cursor, r.reportGaps = cursor, true
	}
	limitText, limitPresent := c.GetQuery("limit")
	limit, given, apiErr := parseIntQuery("limit", limitText, limitPresent, false)
	if apiErr != nil {
		return r, apiErr
	}
	if given {
		if limit < 1 || limit > eventsPageMaxCount {
			return r, badRequest(CodeLimitExceeded, "query parameter limit must be between 1 and %d", eventsPageMaxCount)
		}
		r.limit = int(limit)
	}
	if r.filter, apiErr = parseEventFilter(c.Query("types")); apiErr != nil {
		return r, apiErr
	}
	waitText, waitPresent := c.GetQuery("wait")
	wait, given, apiErr := parseIntQuery("wait", waitText, waitPresent, false)
	if apiErr != nil {
		return r, apiErr
	}
	if given && (wait < 0 || wait > eventsWaitMaxSeconds) {
		return r, invalidArgument("query parameter wait must be between 0 and %d seconds", eventsWaitMaxSeconds)
	}
	r.waitMax = time.Duration(wait) * time.Second
	return r, nil
}

// EventsGap is a run of a shard's events that retention dropped before this reader got them.
type EventsGap struct {
	Shard int    `json:"shard"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

// EventsPage is the answer of GET /events.
type EventsPage struct {
	Items []EventEnvelope `json:"items"`
	// Cursor is where the next request continues (after=...), also when Items is empty.
	Cursor string `json:"cursor"`
	// More says some shard holds events beyond Cursor: ask again without waiting.
	More bool `json:"more"`
	// Gaps lists events lost to retention between the request's cursor and this page.
	Gaps []EventsGap `json:"gaps,omitempty"`
}

// listEvents is GET /events: one page of events across shards after the cursor, matching the
// filter; with wait, a long poll that answers as soon as a matching event exists.
func (s *server) listEvents(c *gin.Context) {
	r, apiErr := parseEventsRequest(c)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if r.waitMax > 0 {
		select {
		case s.longPolls <- struct{}{}:
			defer func() { <-s.longPolls }()
		default:
			s.fail(c, &apiError{status: http.StatusServiceUnavailable, code: CodeOverloaded, retryAfter: true,
				message: fmt.Sprintf("%d long polls are waiting already; retry, or poll without wait", eventsLongPollsMaxCount)})
			return
		}
	}
	deadline := time.Now().Add(r.waitMax)
	answer := EventsPage{Items: []EventEnvelope{}}
	for reads := 1; ; reads++ {
		page, next, apiErr := s.readEventsPage(c, &r, r.limit-len(answer.Items))
		if apiErr != nil {
			s.fail(c, apiErr)
			return
		}
		answer.Items = append(answer.Items, page.Items...)
		answer.Gaps = append(answer.Gaps, page.Gaps...)
		answer.Cursor, answer.More = page.Cursor, page.More
		// The cursor moves over what the filter skipped: go on from there.
		r.cursor, r.reportGaps = next, true
		switch {
		case len(answer.Items) == r.limit:
		case page.More && reads < eventsFilteredReadsMaxCount:
			continue // the filter skipped a whole read: read on rather than answer empty-handed
		case len(answer.Items) > 0 || page.More || !time.Now().Before(deadline) || s.lifetime.Err() != nil:
		default:
			ctx, cancel := context.WithDeadline(c.Request.Context(), deadline)
			stop := context.AfterFunc(s.lifetime, cancel) // the node shuts down: answer now
			err := s.backend.WaitForEvents(ctx, next)
			stop()
			cancel()
			if c.Request.Context().Err() != nil {
				return // the client left
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.fail(c, fromBackendError(err, false))
				return
			}
			continue
		}
		s.ok(c, http.StatusOK, answer)
		return
	}
}

// readEventsPage reads one page: each shard's events after the cursor, merged by (time, shard,
// sequence) and cut at the limit. A shard is read limit events at a time; the merge stops at
// the first shard whose part ran out while the shard has more, since its next events are not
// known to sort after the rest. It returns the page and the next cursor.
func (s *server) readEventsPage(c *gin.Context, r *eventsRequest, limit int) (EventsPage, []uint64, *apiError) {
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	reader, err := s.backend.Read(ctx)
	if err != nil {
		return EventsPage{}, nil, fromBackendError(err, false)
	}
	shardCount := reader.ShardCount()
	if r.cursor != nil && len(r.cursor) != shardCount {
		return EventsPage{}, nil, badRequest(CodeCursorShardMismatch,
			"the cursor is of a cluster with %d shards; this one has %d: omit after to start from the oldest event", len(r.cursor), shardCount)
	}
	next := make([]uint64, shardCount)
	if r.cursor != nil {
		copy(next, r.cursor)
	}
	page := EventsPage{Items: []EventEnvelope{}}
	type shardEvent struct {
		shard int
		event backend.Event
	}
	var merged []shardEvent
	parts := make([]*backend.ShardEvents, shardCount)
	fetch := limit
	if !r.filter.all() {
		fetch = max(limit, eventsPageDefaultCount) // a filter skips some: read a little ahead
	}
	for shardID := range shardCount {
		part, err := reader.ListEvents(shardID, next[shardID], fetch)
		if err != nil {
			return EventsPage{}, nil, fromBackendError(err, false)
		}
		parts[shardID] = part
		if next[shardID] > part.Last {
			return EventsPage{}, nil, badRequest(CodeInvalidCursor,
				"the cursor is past shard %d's newest event (%d): it was written by another cluster", shardID, part.Last)
		}
		// Sequences are contiguous: whatever lies between the cursor and the first event
		// returned (or the oldest kept) was dropped by retention.
		oldest := part.First
		if len(part.Events) > 0 {
			oldest = part.Events[0].Sequence
		}
		if oldest > next[shardID]+1 {
			if r.reportGaps {
				page.Gaps = append(page.Gaps, EventsGap{Shard: shardID, From: next[shardID] + 1, To: oldest - 1})
			}
			next[shardID] = oldest - 1
		}
		for _, ev := range part.Events {
			merged = append(merged, shardEvent{shardID, ev})
		}
	}
	slices.SortStableFunc(merged, func(a, b shardEvent) int { return cmp.Compare(a.event.TimeMs, b.event.TimeMs) })
	for _, item := range merged {
		if len(page.Items) == limit {
			break
		}
		next[item.shard] = item.event.Sequence
		if r.filter.matches(item.event.Type) {
			page.Items = append(page.Items, RenderEventIn(item.shard, item.event, s.gigPayEnv))
		}
		part := parts[item.shard]
		if item.event.Sequence == part.Events[len(part.Events)-1].Sequence && part.Last > item.event.Sequence {
			break
		}
	}
	for shardID, part := range parts {
		page.More = page.More || part.Last > next[shardID]
	}
	page.Cursor = encodeEventsCursor(next)
	return page, next, nil
}
