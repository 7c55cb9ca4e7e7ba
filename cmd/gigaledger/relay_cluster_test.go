package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
)

// testRelayRetry paces the relay's retries in milliseconds rather than minutes, with attempts
// enough (about 100 × 250 ms on average) that an event outlasts a receiver down for seconds
// without being dead-lettered.
var testRelayRetry = &relay.RetryPolicy{AttemptMaxCount: relay.AttemptMaxCountLimit,
	BackoffBase: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond}

// TestWebhookDeliveryAcrossLeaderKill (issue 11): three nodes, two shards, one webhook
// subscription to every event. The receiver answers 503 while accounts and invoices are
// written in both shards and while the node leading the metadata shard is stopped, with
// writes going on through another node (the
// harness's stop is a graceful Close: its relay ends before its replicas); then it comes back.
// Every event the outboxes hold arrives, each request's HMAC verifies, every request for one
// event_id carries the same body (the one GET /events serves), each shard's events first
// arrive in sequence order, nothing is dead-lettered, and every replica's cursor, the stopped
// one's after its restart too, reaches its shard's newest event.
func TestWebhookDeliveryAcrossLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount, subscriber = 3, 2, "shop"
	g := newConfiguredGigaWalletCluster(t, nodeCount, shardCount, nil, func(cfg *serveConfig) { cfg.relayRetry = testRelayRetry })
	receiver := newWebhookReceiver(t, "failover-s3cret")
	g.must(http.MethodPost, "/subscriptions", map[string]any{"name": subscriber, "url": receiver.url, "secret": "failover-s3cret",
		"types": []string{"ALL"}, "from": "oldest"}, http.StatusCreated)

	// writeRound creates, through node via, an account and an invoice in every shard.
	round := 0
	writeRound := func(via int) {
		t.Helper()
		round++
		for shardID := range shardCount {
			foreignID := ""
			for k := 0; foreignID == ""; k++ {
				if k == 1000 {
					t.Fatalf("1000 IDs do not reach shard %d", shardID)
				}
				if id := fmt.Sprintf("r%d-%d", round, k); gigaWalletShardOf(id, shardCount) == shardID {
					foreignID = id
				}
			}
			g.expect(via, false, http.MethodPost, "/account/"+foreignID, "{}", http.StatusOK)
			g.createInvoice(via, foreignID, `{"items":[{"type":"item","name":"tea","value":"1.5","quantity":1}]}`)
		}
	}

	// Up: the first events arrive and are acked.
	writeRound(0)
	g.waitDelivered(receiver, 0)

	// Down, while the leader of shard 0 is stopped between writes.
	receiver.setRefuse(func(string) int { return http.StatusServiceUnavailable })
	victim := -1
	for i := range nodeCount {
		if g.node(i).cluster.Shard(0).IsLeader() {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatal("shard 0 has no leader")
	}
	survivor := (victim + 1) % nodeCount
	writeRound(survivor)
	// The victim is retrying an event of its shard when it stops.
	testutil.EventuallyWithin(t, clusterWaitMax, "the receiver refused an event of shard 0", func() bool {
		return slices.Contains(receiver.refusedShards(), 0)
	})
	// Accounts are written through the survivor while the victim stops; a write that fails in
	// the election may or may not have made its event, which the check reads from the outbox.
	stopWriting := make(chan struct{})
	writerDone := make(chan struct{})
	var written atomic.Int64
	go func() {
		defer close(writerDone)
		for k := 0; k < 10_000; k++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			status, _, err := g.send(g.configs[survivor].AdminAddr, http.MethodPost, fmt.Sprintf("/account/during-%d", k), "{}")
			if err == nil && status == http.StatusOK {
				written.Add(1)
			}
		}
	}()
	g.stop(victim)
	writtenAtStop := written.Load()
	testutil.EventuallyWithin(t, clusterWaitMax, "a new leader of shard 0", func() bool {
		for i := range nodeCount {
			if i != victim && g.node(i).cluster.Shard(0).IsLeader() {
				return true
			}
		}
		return false
	})
	testutil.EventuallyWithin(t, clusterWaitMax, "writes after the stop", func() bool { return written.Load() >= writtenAtStop+8 })
	close(stopWriting)
	<-writerDone
	writeRound(survivor)
	if letters := g.deadLetters(survivor, subscriber); len(letters) > 0 {
		t.Fatalf("dead letters while the receiver was down: %+v", letters)
	}

	// Up again: everything arrives.
	receiver.setRefuse(nil)
	outbox := g.waitDelivered(receiver, survivor)
	if letters := g.deadLetters(survivor, subscriber); len(letters) > 0 {
		t.Fatalf("dead letters: %+v", letters)
	}
	// A re-drive through any node reaches every shard's leader (forwarded): nothing to mark.
	var redrive struct{ Marked *uint64 }
	if err := json.Unmarshal(g.expect(survivor, false, http.MethodPost, "/subscriptions/"+subscriber+"/dead-letters/redrive", "{}", http.StatusOK),
		&redrive); err != nil || redrive.Marked == nil || *redrive.Marked != 0 {
		t.Fatalf("redrive: %v %v", redrive.Marked, err)
	}
	if again, _ := g.replayEvents(survivor, 1000); !reflect.DeepEqual(again, outbox) {
		t.Fatalf("the outboxes changed after delivery: %d events, then %d", len(outbox), len(again))
	}

	// Per shard, the first arrival of each event is in sequence order.
	seen := map[string]bool{}
	last := map[int]uint64{}
	for _, envelope := range receiver.accepted() {
		if seen[envelope.EventID] {
			continue
		}
		seen[envelope.EventID] = true
		if envelope.Sequence <= last[envelope.Shard] {
			t.Fatalf("shard %d: event %d first arrived after %d", envelope.Shard, envelope.Sequence, last[envelope.Shard])
		}
		last[envelope.Shard] = envelope.Sequence
	}

	// The replicated cursor reaches each shard's newest event on every replica, the restarted
	// one's too.
	newest := map[int]uint64{}
	for _, ev := range outbox {
		newest[ev.Shard] = max(newest[ev.Shard], ev.Sequence)
	}
	g.start(victim)
	for i := range nodeCount {
		for shardID := range shardCount {
			testutil.EventuallyWithin(t, clusterWaitMax, fmt.Sprintf("the cursor of shard %d on %s at %d", shardID, g.configs[i].NodeID, newest[shardID]),
				func() bool {
					machine, ok := g.node(i).cluster.StateMachine(shardID).(*fsm.Machine)
					if !ok {
						t.Fatalf("%s hosts no replica of shard %d", g.configs[i].NodeID, shardID)
					}
					cursor, err := machine.OutboxCursor(subscriber)
					if err != nil {
						t.Fatal(err)
					}
					return cursor == newest[shardID]
				})
		}
	}
	receiver.mu.Lock()
	t.Logf("%d events, %d requests, %d accepted", len(outbox), receiver.posts, len(receiver.got))
	receiver.mu.Unlock()
}

// waitDelivered waits until the receiver has accepted every event that GET /events on node i
// serves, and checks that each was accepted with the body GET /events gives and that nothing
// else was accepted. It returns the events.
func (g *gigaWalletCluster) waitDelivered(receiver *webhookReceiver, i int) []replayedEvent {
	g.t.Helper()
	outbox, _ := g.replayEvents(i, 1000)
	want := map[string]replayedEvent{}
	for _, ev := range outbox {
		want[ev.EventID] = ev
	}
	var missing []string
	delivered := testutil.Wait(clusterWaitMax, func() bool {
		got := map[string]bool{}
		for _, envelope := range receiver.accepted() {
			got[envelope.EventID] = true
		}
		missing = missing[:0]
		for id := range want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	if !delivered {
		slices.Sort(missing)
		g.t.Fatalf("%d of %d events not delivered: %s", len(missing), len(outbox), strings.Join(missing, " "))
	}
	for _, envelope := range receiver.accepted() {
		if ev, ok := want[envelope.EventID]; !ok || !reflect.DeepEqual(envelope, ev) {
			g.t.Fatalf("received %+v; GET /events serves %+v", envelope, ev)
		}
	}
	return outbox
}

// deadLetters lists a subscriber's dead letters through node i.
func (g *gigaWalletCluster) deadLetters(i int, subscriber string) []map[string]any {
	g.t.Helper()
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal(g.expect(i, false, http.MethodGet, "/subscriptions/"+subscriber+"/dead-letters", "", http.StatusOK), &list); err != nil {
		g.t.Fatal(err)
	}
	return list.Items
}

// accepted decodes the envelopes the receiver accepted, in order of arrival.
func (r *webhookReceiver) accepted() []replayedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	envelopes := make([]replayedEvent, 0, len(r.got))
	for _, got := range r.got {
		id, _ := got["event_id"].(string)
		var envelope replayedEvent
		if err := json.Unmarshal(r.bodies[id], &envelope); err != nil {
			r.t.Fatalf("event %s: %v", id, err)
		}
		envelopes = append(envelopes, envelope)
	}
	return envelopes
}

// refusedShards lists the shards of the events posted to the receiver and never accepted.
func (r *webhookReceiver) refusedShards() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	accepted := map[string]bool{}
	for _, got := range r.got {
		id, _ := got["event_id"].(string)
		accepted[id] = true
	}
	var shards []int
	for id, body := range r.bodies {
		var envelope replayedEvent
		if !accepted[id] && json.Unmarshal(body, &envelope) == nil {
			shards = append(shards, envelope.Shard)
		}
	}
	return shards
}
