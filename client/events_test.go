package client_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// ListEvents against the real handler: the whole log page by page through the cursor, a filter,
// a long poll that times out empty, and a refused filter as a typed error.
func TestListEventsAgainstTheRealHandler(t *testing.T) {
	servers := startGigaWalletServer(t, nil)
	c := newClient(t, servers.adminURL)
	ctx := testutil.Context(t, callLimit)
	account := must[*client.GigaWalletAccount](t, "upsert account")(c.UpsertAccount(ctx, "shop", client.AccountSettings{}))
	invoice := must[*client.PublicInvoice](t, "create invoice")(c.CreateInvoice(ctx, "shop", shopInvoice))

	all := must[*client.EventPage](t, "list events")(c.ListEvents(ctx, client.EventsRequest{}))
	var types []string
	for _, ev := range all.Items {
		types = append(types, ev.EventType)
	}
	if len(all.Items) != 2 || all.Items[0].EventType != "ACC_CREATED" || all.Items[1].EventType != "INV_CREATED" || all.More ||
		all.Items[1].EventID != "s000-00000000000000000002" || all.Items[1].CreatedAt.IsZero() {
		t.Fatalf("events %v: %+v", types, all)
	}
	var accountMessage client.GigaWalletAccount
	var invoiceMessage client.Invoice
	if json.Unmarshal(all.Items[0].Message, &accountMessage) != nil || accountMessage != *account ||
		json.Unmarshal(all.Items[1].Message, &invoiceMessage) != nil || invoiceMessage.ID != invoice.ID || invoiceMessage.Total != "3.15" {
		t.Fatalf("messages %s %s", all.Items[0].Message, all.Items[1].Message)
	}
	first := must[*client.EventPage](t, "first page")(c.ListEvents(ctx, client.EventsRequest{Limit: 1}))
	second := must[*client.EventPage](t, "second page")(c.ListEvents(ctx, client.EventsRequest{After: first.Cursor, Limit: 1}))
	if len(first.Items) != 1 || !first.More || len(second.Items) != 1 || second.Items[0].EventID != all.Items[1].EventID || second.Cursor != all.Cursor {
		t.Fatalf("pages %+v %+v", first, second)
	}
	invoices := must[*client.EventPage](t, "INV only")(c.ListEvents(ctx, client.EventsRequest{Types: []string{"INV", "LEDGER_TX_FAILED"}}))
	if len(invoices.Items) != 1 || invoices.Items[0].EventType != "INV_CREATED" {
		t.Fatalf("types INV: %+v", invoices)
	}
	started := time.Now()
	idle := must[*client.EventPage](t, "long poll")(c.ListEvents(ctx, client.EventsRequest{After: all.Cursor, Wait: time.Second}))
	if len(idle.Items) != 0 || idle.Cursor != all.Cursor || time.Since(started) < time.Second {
		t.Fatalf("idle long poll %+v after %v", idle, time.Since(started))
	}
	_, err := c.ListEvents(ctx, client.EventsRequest{Types: []string{"BOGUS"}})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "InvalidArgument" {
		t.Fatalf("types BOGUS: %v", err)
	}
}

// The subscription calls against the real handler: create (the secret never comes back), a
// duplicate as a typed error, list, get, dead letters (none), delete, and not found after.
func TestSubscriptionsAgainstTheRealHandler(t *testing.T) {
	servers := startGigaWalletServer(t, nil)
	c := newClient(t, servers.adminURL)
	ctx := testutil.Context(t, callLimit)
	request := client.CreateSubscriptionRequest{Name: "shop", URL: "https://shop.example/hook", Secret: "s3cret", Types: []string{"INV", "ACC"}}
	created := must[*client.Subscription](t, "create")(c.CreateSubscription(ctx, request))
	if created.Name != "shop" || created.Kind != "webhook" || !created.SecretSet || created.URL != request.URL || len(created.Types) != 2 {
		t.Fatalf("created %+v", created)
	}
	var apiErr *client.Error
	if _, err := c.CreateSubscription(ctx, request); !errors.As(err, &apiErr) || apiErr.Code != "SubscriptionExists" {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.CreateSubscription(ctx, client.CreateSubscriptionRequest{Name: "x", URL: "ftp://x", Types: []string{"ALL"}}); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("ftp URL: %v", err)
	}
	listed := must[[]client.Subscription](t, "list")(c.ListSubscriptions(ctx))
	got := must[*client.Subscription](t, "get")(c.GetSubscription(ctx, "shop"))
	if len(listed) != 1 || !reflect.DeepEqual(*got, *created) {
		t.Fatalf("listed %+v, got %+v", listed, got)
	}
	if letters := must[[]client.DeadLetter](t, "dead letters")(c.ListDeadLetters(ctx, "shop", 10)); len(letters) != 0 {
		t.Fatalf("dead letters %+v", letters)
	}
	// This server runs no relay: a re-drive is refused as unavailable (cmd/gigaledger tests the
	// relay's).
	if _, err := c.RedriveDeadLetters(ctx, "shop"); !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("redrive without a relay: %v", err)
	}
	if err := c.DeleteSubscription(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSubscription(ctx, "shop"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
