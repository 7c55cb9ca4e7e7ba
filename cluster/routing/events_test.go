package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

type eventsPage struct {
	Items []struct {
		EventType string         `json:"event_type"`
		Message   map[string]any `json:"message"`
		EventID   string         `json:"event_id"`
		Shard     int            `json:"shard"`
		Sequence  uint64         `json:"sequence"`
	} `json:"items"`
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
}

func readEventsPage(c *client, query string) eventsPage {
	c.t.Helper()
	out := c.do("GET", "/events"+query, nil, 200)
	data, _ := json.Marshal(out)
	var page eventsPage
	if err := json.Unmarshal(data, &page); err != nil {
		c.t.Fatal(err)
	}
	return page
}

// replayAll pages through every event with limit per page and returns the event IDs and the
// final cursor, checking that each shard's events come in sequence order without a hole.
func replayAll(t *testing.T, c *client, limit int) ([]string, string) {
	t.Helper()
	var ids []string
	lastOfShard := map[int]uint64{}
	cursor := ""
	for range 1000 {
		query := fmt.Sprintf("?limit=%d", limit)
		if cursor != "" {
			query += "&after=" + cursor
		}
		page := readEventsPage(c, query)
		for _, ev := range page.Items {
			if ev.Sequence != lastOfShard[ev.Shard]+1 {
				t.Fatalf("shard %d: event %d after %d", ev.Shard, ev.Sequence, lastOfShard[ev.Shard])
			}
			lastOfShard[ev.Shard] = ev.Sequence
			ids = append(ids, ev.EventID)
		}
		cursor = page.Cursor
		if !page.More {
			return ids, cursor
		}
	}
	t.Fatal("replay did not end")
	return nil, ""
}

// Events of four shards replay through one cursor, each once, with the same IDs through a node
// that hosts one shard only (the others answer the listEvents query); a long poll on that node
// answers when another shard gets an event.
func TestEventsAcrossShards(t *testing.T) {
	shards := newLocalShards(t, 4)
	local := newClient(t, shards)
	local.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	local.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	walletOfShard := map[int]string{}
	for i := 0; len(walletOfShard) < 4; i++ {
		id := fmt.Sprintf("cust-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 4))
		if walletOfShard[shardID] != "" {
			continue
		}
		local.do("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		w := local.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)
		walletOfShard[shardID] = w["id"].(string)
	}
	const perShard = 7
	for k := range perShard {
		for shardID := range 4 {
			local.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("r-%d-%d", shardID, k),
				"operations": []any{map[string]any{"type": "issue", "to": walletOfShard[shardID], "amount": 1 + k}}}, 201)
		}
	}
	remote := newClient(t, newPartialShards(shards, 2))
	for _, c := range []*client{local, remote} {
		for _, limit := range []int{1, 3, 1000} {
			ids, _ := replayAll(t, c, limit)
			if len(ids) != 4*perShard {
				t.Fatalf("limit %d: %d events, want %d", limit, len(ids), 4*perShard)
			}
			sorted := slices.Sorted(slices.Values(ids))
			if len(slices.Compact(sorted)) != len(ids) {
				t.Fatalf("limit %d: duplicates in %v", limit, ids)
			}
		}
	}
	localIDs, cursor := replayAll(t, local, 5)
	remoteIDs, remoteCursor := replayAll(t, remote, 5)
	if !slices.Equal(localIDs, remoteIDs) || cursor != remoteCursor {
		t.Fatalf("two nodes replay differently:\n%v\n%v", localIDs, remoteIDs)
	}
	// A page carries the Cloud Wallet transaction view.
	first := readEventsPage(remote, "?limit=1")
	if first.Items[0].EventType != "LEDGER_TX_COMPLETED" || first.Items[0].Message["referenceId"] != "r-0-0" {
		t.Fatalf("first event %+v", first.Items[0])
	}

	// Long polls through the node hosting shard 2: an event on a shard hosted elsewhere (polled)
	// and one on shard 2 (woken by its apply) each answer the poll.
	for _, shardID := range []int{0, 2} {
		answered := make(chan eventsPage, 1)
		go func() {
			request := httptest.NewRequest("GET", "/events?wait=20&after="+cursor, nil)
			request.Host = "127.0.0.1"
			recorder := httptest.NewRecorder()
			remote.handler.ServeHTTP(recorder, request)
			var page eventsPage
			json.Unmarshal(recorder.Body.Bytes(), &page)
			answered <- page
		}()
		ref := fmt.Sprintf("late-%d", shardID)
		local.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": ref,
			"operations": []any{map[string]any{"type": "issue", "to": walletOfShard[shardID], "amount": 1}}}, 201)
		select {
		case page := <-answered:
			if len(page.Items) != 1 || page.Items[0].Shard != shardID || page.Items[0].Message["referenceId"] != ref {
				t.Fatalf("long poll for shard %d answered %+v", shardID, page)
			}
			cursor = page.Cursor
		case <-time.After(15 * time.Second):
			t.Fatalf("the long poll did not answer an event on shard %d", shardID)
		}
	}
}

// WaitForEvents returns at once when a shard is past the cursor, and on a local apply.
func TestWaitForEvents(t *testing.T) {
	shards := newLocalShards(t, 2)
	router := New(shards)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := router.WaitForEvents(ctx, []uint64{0, 0}); err != context.DeadlineExceeded {
		t.Fatalf("no events: %v", err)
	}
	if err := router.WaitForEvents(context.Background(), []uint64{0}); err == nil {
		t.Fatal("a cursor of one shard for two was accepted")
	}
}

// outsideShards is a node whose replica of one shard is outside the shard's configuration (a
// move stopped before adding it): the replica applies nothing, so its outbox stays as it was
// opened, and its reads are fenced away to the query path.
type outsideShards struct {
	*partialShards
	outside int
	stale   *fsm.Machine
}

func (o *outsideShards) Outbox(shardID int) Outbox {
	if shardID == o.outside {
		return o.stale
	}
	return o.partialShards.Outbox(shardID)
}

func (o *outsideShards) Follows(shardID int) bool { return shardID != o.outside }

func (o *outsideShards) LinearizableRead(ctx context.Context, shardID int) error {
	if shardID == o.outside {
		return fmt.Errorf("shard %d: %w", shardID, cluster.ErrReplicaLagging)
	}
	return nil
}

// A long poll on a node whose replica of a shard is outside its configuration answers an event
// of that shard: the shard is polled through the query path, as one hosted elsewhere is, and
// not waited for on a replica that applies nothing.
func TestLongPollAnswersAShardWhoseReplicaIsOutsideItsConfiguration(t *testing.T) {
	shards := newLocalShards(t, 2)
	c := newClient(t, shards)
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	const outside = 1
	var wallet string
	for i := 0; wallet == ""; i++ {
		id := fmt.Sprintf("cust-%d", i)
		if keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 2) != outside {
			continue
		}
		c.do("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		wallet = c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
	}
	reg := fsm.NewRegistry()
	gigpay.Register(reg, ledger.Register(reg))
	stale, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stale.Close() })
	view := &outsideShards{partialShards: newPartialShards(shards, 0, 1), outside: outside, stale: stale}
	router := New(view)

	after := make([]uint64, 2)
	for shardID := range after {
		_, last, err := shards.machines[shardID].OutboxRange()
		if err != nil {
			t.Fatal(err)
		}
		after[shardID] = last
	}
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		waited <- router.WaitForEvents(ctx, after)
	}()
	c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "late",
		"operations": []any{map[string]any{"type": "issue", "to": wallet, "amount": 1}}}, 201)
	if err := <-waited; err != nil {
		t.Fatalf("the long poll did not answer the event on shard %d: %v", outside, err)
	}
	if view.queries[outside] == 0 {
		t.Fatalf("shard %d was not polled through the query path", outside)
	}
}
