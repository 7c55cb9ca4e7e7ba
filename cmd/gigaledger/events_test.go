package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/httpapi"
)

// replayedEvent is what the test reads of an event envelope.
type replayedEvent struct {
	EventType string         `json:"event_type"`
	Message   map[string]any `json:"message"`
	EventID   string         `json:"event_id"`
	Shard     int            `json:"shard"`
	Sequence  uint64         `json:"sequence"`
	CreatedAt string         `json:"created_at"`
}

type replayedPage struct {
	Items  []replayedEvent     `json:"items"`
	Cursor string              `json:"cursor"`
	More   bool                `json:"more"`
	Gaps   []httpapi.EventsGap `json:"gaps"`
}

// replayEvents pages through GET /events on node i from the start, limit events a page, and
// returns the events in the order served and the final cursor.
func (g *gigaWalletCluster) replayEvents(i, limit int) ([]replayedEvent, string) {
	g.t.Helper()
	var events []replayedEvent
	cursor := ""
	for range 10_000 {
		path := fmt.Sprintf("/events?limit=%d", limit)
		if cursor != "" {
			path += "&after=" + cursor
		}
		var page replayedPage
		if err := json.Unmarshal(g.expect(i, false, http.MethodGet, path, "", http.StatusOK), &page); err != nil {
			g.t.Fatal(err)
		}
		if len(page.Gaps) > 0 {
			g.t.Fatalf("gaps %+v", page.Gaps)
		}
		events = append(events, page.Items...)
		cursor = page.Cursor
		if !page.More {
			return events, cursor
		}
	}
	g.t.Fatal("the replay did not end")
	return nil, ""
}

// TestEventsReplayOnThreeNodesFourShards: Cloud Wallet transfers and GigaWallet accounts and
// invoices in every shard of a three-node cluster are replayed page by page through one cursor
// on every node: each event of every replica's outbox exactly once, per shard in sequence
// order, with the same event IDs on every node and every read; a long poll returns when a new
// invoice is created through another node.
func TestEventsReplayOnThreeNodesFourShards(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount = 3, 4
	g := newGigaWalletCluster(t, nodeCount, shardCount, nil)
	g.must(http.MethodPost, "/projects", map[string]any{"id": "shop", "name": "Shop"}, http.StatusCreated)
	g.must(http.MethodPost, "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, http.StatusCreated)
	// Two wallets of one customer per shard, and a foreign ID per shard.
	type pair struct{ a, b string }
	wallets := map[int]pair{}
	var foreignIDs []string
	for k := 0; len(wallets) < shardCount || len(foreignIDs) < shardCount; k++ {
		if k == 1000 {
			t.Fatal("1000 IDs do not cover every shard")
		}
		customer := fmt.Sprintf("c-%d", k)
		if shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", customer), shardCount)); wallets[shardID].a == "" {
			g.must(http.MethodPost, "/projects/shop/customers", map[string]any{"id": customer}, http.StatusOK)
			a := g.must(http.MethodPost, "/projects/shop/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, http.StatusCreated)
			b := g.must(http.MethodPost, "/projects/shop/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, http.StatusCreated)
			wallets[shardID] = pair{a["id"].(string), b["id"].(string)}
		}
		foreignID := fmt.Sprintf("f-%d", k)
		if shardID := gigaWalletShardOf(foreignID, shardCount); !slices.ContainsFunc(foreignIDs, func(id string) bool {
			return gigaWalletShardOf(id, shardCount) == shardID
		}) {
			foreignIDs = append(foreignIDs, foreignID)
		}
	}
	const rounds = 4
	for r := range rounds {
		for shardID := range shardCount {
			w := wallets[shardID]
			g.must(http.MethodPost, "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("fund-%d-%d", shardID, r),
				"operations": []any{map[string]any{"type": "issue", "to": w.a, "amount": 10}}}, http.StatusCreated)
			g.must(http.MethodPost, "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("pay-%d-%d", shardID, r),
				"operations": []any{map[string]any{"type": "transfer", "from": w.a, "to": w.b, "amount": 3}}}, http.StatusCreated)
		}
	}
	invoiceTotals := map[string]string{}
	for n, foreignID := range foreignIDs {
		g.expect(n%nodeCount, false, http.MethodPost, "/account/"+foreignID, "{}", http.StatusOK)
		for j := range 2 {
			answer := g.createInvoice((n+j)%nodeCount, foreignID,
				fmt.Sprintf(`{"items":[{"type":"item","name":"tea","value":"1.5","quantity":%d}]}`, j+1))
			invoiceTotals[answer.ID] = answer.Total
		}
	}
	g.waitConverged(clusterWaitMax)

	// What every replica's outbox holds: the replay must give exactly these.
	var stored []string
	for shardID := range shardCount {
		machine := g.node(0).cluster.StateMachine(shardID).(*fsm.Machine)
		events, err := machine.Events(0, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			stored = append(stored, httpapi.EventID(shardID, ev.Sequence))
		}
	}
	slices.Sort(stored)

	var reference []string
	var referenceCursor string
	for i := range nodeCount {
		for _, limit := range []int{7, 1000} {
			events, cursor := g.replayEvents(i, limit)
			var ids []string
			last := map[int]uint64{}
			counts := map[string]int{}
			for _, ev := range events {
				if ev.Sequence != last[ev.Shard]+1 {
					t.Fatalf("node %d limit %d: shard %d event %d after %d", i, limit, ev.Shard, ev.Sequence, last[ev.Shard])
				}
				last[ev.Shard] = ev.Sequence
				ids = append(ids, ev.EventID)
				counts[ev.EventType]++
				if ev.EventType == "INV_CREATED" && invoiceTotals[ev.Message["id"].(string)] != ev.Message["total"] {
					t.Fatalf("INV_CREATED %v; the create answered total %s", ev.Message, invoiceTotals[ev.Message["id"].(string)])
				}
			}
			if sorted := slices.Sorted(slices.Values(ids)); !slices.Equal(sorted, stored) {
				t.Fatalf("node %d limit %d replayed %d events, the outboxes hold %d:\n%v\n%v", i, limit, len(sorted), len(stored), sorted, stored)
			}
			if counts["LEDGER_TX_COMPLETED"] != 2*rounds*shardCount || counts["ACC_CREATED"] != shardCount || counts["INV_CREATED"] != 2*shardCount {
				t.Fatalf("node %d: event counts %v", i, counts)
			}
			if reference == nil {
				reference, referenceCursor = ids, cursor
			} else if !slices.Equal(ids, reference) || cursor != referenceCursor {
				t.Fatalf("node %d limit %d replays another order or cursor than node 0", i, limit)
			}
		}
	}

	// A long poll on node 1 answers when an invoice is created through node 2.
	answered := make(chan replayedPage, 1)
	go func() {
		var page replayedPage
		status, data, err := g.send(g.configs[1].AdminAddr, http.MethodGet, "/events?types=INV&wait=25&after="+referenceCursor, "")
		if err != nil || status != http.StatusOK || json.Unmarshal(data, &page) != nil {
			page.Cursor = fmt.Sprintf("%d %s %v", status, data, err)
		}
		answered <- page
	}()
	g.expect(2, false, http.MethodPost, "/account/late", "{}", http.StatusOK)
	late := g.createInvoice(2, "late", `{"items":[{"type":"item","name":"tea","value":"2","quantity":1}]}`)
	select {
	case page := <-answered:
		if len(page.Items) != 1 || page.Items[0].EventType != "INV_CREATED" || page.Items[0].Message["id"] != late.ID {
			t.Fatalf("long poll answered %+v", page)
		}
	case <-time.After(clusterWaitMax):
		t.Fatal("the long poll did not answer the new invoice")
	}
}

// Four nodes, four shards of three replicas: a node replays the shards it does not host through
// the query RPC with the same IDs as the others, and its long poll, which polls those shards,
// answers an event written to one of them.
func TestEventsOnNodesThatDoNotHostEveryShard(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount = 4, 4
	tc := startGossipCluster(t, nodeCount, shardCount)
	outside, missing := -1, -1 // a node and a shard it does not host
	for i := range tc.nodes {
		hosted := tc.node(i).cluster.HostedShards()
		for shardID := range shardCount {
			if !slices.Contains(hosted, shardID) && outside < 0 {
				outside, missing = i, shardID
			}
		}
	}
	if outside < 0 {
		t.Fatal("every node hosts every shard; the test needs one that does not")
	}
	tc.must(http.MethodPost, "/projects", map[string]any{"id": "shop", "name": "Shop"}, http.StatusCreated)
	tc.must(http.MethodPost, "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, http.StatusCreated)
	walletOf := map[int]string{}
	for k := 0; len(walletOf) < shardCount; k++ {
		if k == 1000 {
			t.Fatal("1000 customers do not cover every shard")
		}
		customer := fmt.Sprintf("c-%d", k)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", customer), shardCount))
		if walletOf[shardID] != "" {
			continue
		}
		tc.must(http.MethodPost, "/projects/shop/customers", map[string]any{"id": customer}, http.StatusOK)
		walletOf[shardID] = tc.must(http.MethodPost, "/projects/shop/wallets", map[string]any{"customerId": customer, "assetId": "usd"},
			http.StatusCreated)["id"].(string)
		tc.must(http.MethodPost, "/projects/shop/transactions", map[string]any{"referenceId": "r-" + customer,
			"operations": []any{map[string]any{"type": "issue", "to": walletOf[shardID], "amount": 5}}}, http.StatusCreated)
	}
	// readAll replays node i's /events from the start, 3 a page.
	readAll := func(i int) ([]string, string) {
		t.Helper()
		var ids []string
		cursor := ""
		for range 1000 {
			path := "/events?limit=3"
			if cursor != "" {
				path += "&after=" + cursor
			}
			status, out, err := tc.call(i, http.MethodGet, path, nil)
			if err != nil || status != http.StatusOK {
				t.Fatalf("%s GET %s: %d %v %v", tc.configs[i].NodeID, path, status, out, err)
			}
			data, _ := json.Marshal(out)
			var page replayedPage
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Items {
				ids = append(ids, ev.EventID)
			}
			cursor = page.Cursor
			if !page.More {
				return ids, cursor
			}
		}
		t.Fatal("the replay did not end")
		return nil, ""
	}
	reference, cursor := readAll((outside + 1) % nodeCount)
	if len(reference) != shardCount {
		t.Fatalf("%d events, want one transaction per shard: %v", len(reference), reference)
	}
	if ids, outsideCursor := readAll(outside); !slices.Equal(ids, reference) || outsideCursor != cursor {
		t.Fatalf("%s (without shard %d) replays %v, another node %v", tc.configs[outside].NodeID, missing, ids, reference)
	}
	answered := make(chan replayedPage, 1)
	go func() {
		var page replayedPage
		status, out, err := tc.call(outside, http.MethodGet, "/events?wait=8&after="+cursor, nil) // within the test client's 10 s timeout
		data, _ := json.Marshal(out)
		if err != nil || status != http.StatusOK || json.Unmarshal(data, &page) != nil {
			page.Cursor = fmt.Sprintf("%d %v %v", status, out, err)
		}
		answered <- page
	}()
	tc.must(http.MethodPost, "/projects/shop/transactions", map[string]any{"referenceId": "late",
		"operations": []any{map[string]any{"type": "issue", "to": walletOf[missing], "amount": 1}}}, http.StatusCreated)
	select {
	case page := <-answered:
		if len(page.Items) != 1 || page.Items[0].Shard != missing || page.Items[0].Message["referenceId"] != "late" {
			t.Fatalf("long poll on %s answered %+v", tc.configs[outside].NodeID, page)
		}
	case <-time.After(clusterWaitMax):
		t.Fatal("the long poll did not answer an event of a shard its node does not host")
	}
}
