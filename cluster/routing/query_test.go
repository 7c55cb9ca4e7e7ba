package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Every kind's query survives the wire, and so does an answer of each kind.
func TestQueryWireRoundTrip(t *testing.T) {
	for kind := queryGetProject; kind < queryKindEnd; kind++ {
		q := shardQuery{Kind: kind, ProjectID: "shop", CustomerID: "alice@example.com", ID: "w0a1b2c3d4",
			Page: ledger.PageRequest{Page: 3, PageSize: 7}, Range: ledger.TimeRange{FromMs: 1, ToMs: 1_700_000_000_000}}
		data, err := encodeQuery(q)
		if err != nil {
			t.Fatalf("%v: encode: %v", kind, err)
		}
		got, err := decodeQuery(data)
		if err != nil || got != q {
			t.Fatalf("%v: decoded %+v, %v; want %+v", kind, got, err, q)
		}
	}
	answers := map[queryKind]*shardAnswer{
		queryGetProject: {Project: &ledger.Project{ID: "shop", Name: "Shop", CreatedAt: 5,
			Assets: []ledger.Asset{{ProjectID: "shop", ID: "usd", Code: "USD", Fractions: 100}}}},
		queryListAssets: {Assets: []ledger.Asset{{ProjectID: "shop", ID: "usd", Code: "USD", Fractions: 100, Used: true, Supply: fsm.AmountFromUint64(42)}}},
		queryGetWallet: {Wallet: &ledger.Wallet{ID: "w1", ProjectID: "shop", CustomerID: "c", AssetID: "usd", Status: ledger.WalletOpen,
			Balance: fsm.AmountFromUint64(9), Held: fsm.AmountFromUint64(2), EntryCount: 4}},
		queryListCustomers: {Customers: []ledger.Customer{{ProjectID: "shop", ID: "a", Status: ledger.CustomerActive},
			{ProjectID: "shop", ID: "b", Status: ledger.CustomerActive}}, HasMore: true},
		queryListTransactions: {Transactions: []ledger.Transaction{{ID: "t1", ProjectID: "shop", Status: ledger.TransactionCompleted,
			FailedOperationIndex: -1, Sequence: 1,
			Operations: []ledger.Operation{{Type: ledger.OperationHold, From: "w1", Amount: fsm.AmountFromUint64(3), ExpiresAt: 9}}}}},
		queryListEntries: {Entries: []ledger.Entry{{WalletID: "w1", TransactionID: "t1", Type: ledger.EntryCredit,
			Amount: fsm.AmountFromUint64(3), BalanceAfter: fsm.AmountFromUint64(3), CreatedAt: 7}}},
		queryListSystemWallets: {Wallets: nil},
		queryGetHold:           {Hold: &ledger.Hold{ID: "h1.0", ProjectID: "shop", WalletID: "w1", Amount: fsm.AmountFromUint64(3), Status: ledger.HoldActive}},
		queryGetCustomer:       {Err: &fsm.Error{Code: ledger.CodeCustomerNotFound, Message: "customer c not found"}},
		queryListEvents:        {Events: eventsAnswer()},
	}
	for kind, want := range answers {
		data, err := encodeAnswer(kind, want)
		if err != nil {
			t.Fatalf("%v: encode answer: %v", kind, err)
		}
		got, err := decodeAnswer(kind, data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%v: decoded %+v, %v; want %+v", kind, got, err, want)
		}
	}
}

// eventsAnswer is a listEvents answer with a subject of every kind.
func eventsAnswer() *backend.ShardEvents {
	account := &gigawallet.Account{ProjectID: "gw", ForeignID: "shop", Index: 7, Address: "nAcct", XPub: "tpub", WalletID: "w9",
		PayoutThreshold: fsm.AmountFromUint64(5), CreatedAt: 3, UpdatedAt: 4}
	return &backend.ShardEvents{First: 4, Last: 20, Events: []backend.Event{
		{Sequence: 4, TimeMs: 10, Type: ledger.EventTransactionCompleted, Subject: &ledger.Transaction{ID: "t1", ProjectID: "shop",
			Status: ledger.TransactionCompleted, FailedOperationIndex: -1, Sequence: 1,
			Operations: []ledger.Operation{{Type: ledger.OperationIssue, To: "w1", Amount: fsm.AmountFromUint64(3)}}}},
		{Sequence: 5, TimeMs: 10, Type: ledger.EventWalletStatusChanged, Subject: &ledger.Wallet{ID: "w1", ProjectID: "shop",
			CustomerID: "c", AssetID: "usd", Status: ledger.WalletSuspendedStatus, Balance: fsm.AmountFromUint64(3)}},
		{Sequence: 6, TimeMs: 11, Type: ledger.EventHoldReleased, Subject: &ledger.Hold{ID: "h1.0", ProjectID: "shop", WalletID: "w1",
			Amount: fsm.AmountFromUint64(1), Status: ledger.HoldReleased}},
		{Sequence: 7, TimeMs: 12, Type: gigawallet.EventAccountCreated, Subject: account},
		{Sequence: 8, TimeMs: 12, Type: gigawallet.EventInvoiceCreated, Account: account, Subject: &gigawallet.Invoice{ProjectID: "gw",
			ForeignID: "shop", Address: "nInv", Total: fsm.AmountFromUint64(300), CreatedAt: 12, UpdatedAt: 12,
			Items: []gigawallet.Item{{Type: "item", Name: "Tea", Value: fsm.AmountFromUint64(150), Quantity: 2}}}},
		{Sequence: 9, TimeMs: 13, Type: gigawallet.EventInvoiceExpired, Subject: &gigawallet.Invoice{ProjectID: "gw", ForeignID: "gone",
			Address: "nX", Total: fsm.AmountFromUint64(1), Status: gigawallet.InvoiceExpired,
			Items: []gigawallet.Item{{Type: "item", Name: "Cup", Value: fsm.AmountFromUint64(1), Quantity: 1}}}},
		{Sequence: 20, TimeMs: 14, Type: "TOKEN_CLAIMED"}, // a family this node does not run: no subject
	}}
}

// A listEvents answer is as strict as the others: ordered sequences within the range, bounded
// types, known subject kinds, and no more events than a page.
func TestListEventsAnswerIsStrict(t *testing.T) {
	encode := func(part *backend.ShardEvents) []byte {
		t.Helper()
		data, err := encodeAnswer(queryListEvents, &shardAnswer{Events: part})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	ev := func(sequence uint64, eventType string) backend.Event {
		return backend.Event{Sequence: sequence, Type: eventType, Subject: &ledger.Hold{ID: "h"}}
	}
	valid := encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(1, "LEDGER_HOLD_EXPIRED")}})
	tooMany := &backend.ShardEvents{First: 1, Last: backend.EventsMaxCount + 1}
	for i := range backend.EventsMaxCount + 1 {
		tooMany.Events = append(tooMany.Events, backend.Event{Sequence: uint64(i + 1), Type: "X_Y"})
	}
	unknownKind := append([]byte(nil), valid...)
	unknownKind[3+1+1+1+1+1+1+len("LEDGER_HOLD_EXPIRED")] = byte(subjectKindEnd) // header, first, last, count, seq, time, type
	for name, data := range map[string][]byte{
		"descending":    encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(2, "A_B"), ev(1, "A_B")}}),
		"repeated":      encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(2, "A_B"), ev(2, "A_B")}}),
		"out of range":  encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(4, "A_B")}}),
		"range reverse": encode(&backend.ShardEvents{First: 5, Last: 3}),
		"no type":       encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(1, "")}}),
		"long type":     encode(&backend.ShardEvents{First: 1, Last: 3, Events: []backend.Event{ev(1, strings.Repeat("A", eventTypeMaxBytes+1))}}),
		"too many":      encode(tooMany),
		"unknown kind":  unknownKind,
		"truncated":     valid[:len(valid)-1],
		"trailing":      append(append([]byte(nil), valid...), 0),
	} {
		if a, err := decodeAnswer(queryListEvents, data); err == nil {
			t.Errorf("%s: decoded %+v", name, a.Events)
		}
	}
	if _, err := encodeAnswer(queryListEvents, &shardAnswer{}); err == nil {
		t.Error("encoded a listEvents answer without its events")
	}
	// An answer stops adding events at its byte budget; the reader's cursor moves only over
	// those it got.
	big := &backend.ShardEvents{First: 1, Last: backend.EventsMaxCount}
	for i := range backend.EventsMaxCount {
		big.Events = append(big.Events, backend.Event{Sequence: uint64(i + 1), Type: "A_B",
			Subject: &ledger.Wallet{ID: "w", Description: strings.Repeat("d", 16<<10)}})
	}
	a, err := decodeAnswer(queryListEvents, encode(big))
	if err != nil || len(a.Events.Events) == 0 || len(a.Events.Events) >= backend.EventsMaxCount {
		t.Fatalf("a 16 MiB answer: %v events, %v", len(a.Events.Events), err)
	}
}

// The decoders refuse what they do not know instead of guessing.
func TestQueryWireIsStrict(t *testing.T) {
	valid, err := encodeQuery(shardQuery{Kind: queryGetProject, ProjectID: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	with := func(i int, b byte) []byte {
		out := append([]byte(nil), valid...)
		out[i] = b
		return out
	}
	long, _ := encodeQuery(shardQuery{Kind: queryGetProject, ProjectID: strings.Repeat("p", queryIDMaxBytes+1)})
	for name, data := range map[string][]byte{
		"unknown kind":    with(1, byte(queryKindEnd)),
		"no kind":         with(1, 0),
		"unknown version": with(0, 1),
		"trailing data":   append(append([]byte(nil), valid...), 0),
		"truncated":       valid[:len(valid)-1],
		"long ID":         long,
		"too large":       append(append([]byte(nil), valid...), make([]byte, queryMaxBytes)...),
		"JSON":            []byte(`{"v":1,"kind":"getProject","projectId":"shop"}`),
	} {
		if q, err := decodeQuery(data); err == nil {
			t.Errorf("%s: decoded %+v", name, q)
		}
	}
	answer, err := encodeAnswer(queryGetProject, &shardAnswer{Project: &ledger.Project{ID: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	both := []byte{queryWireVersion, byte(queryGetProject), answerHasError | answerHasMore, 0, 0}
	for name, data := range map[string][]byte{
		"other kind":     append([]byte{queryWireVersion, byte(queryGetWallet)}, answer[2:]...),
		"unknown flags":  append([]byte{queryWireVersion, byte(queryGetProject), 0x80}, answer[3:]...),
		"error and more": both,
		"truncated":      answer[:len(answer)-1],
		"trailing bytes": append(append([]byte(nil), answer...), 1),
		"version":        append([]byte{1}, answer[1:]...),
	} {
		if a, err := decodeAnswer(queryGetProject, data); err == nil {
			t.Errorf("%s: decoded %+v", name, a)
		}
	}
	if _, err := encodeAnswer(queryGetWallet, &shardAnswer{}); err == nil {
		t.Error("encoded a single-record answer without its record")
	}
	if _, err := encodeQuery(shardQuery{Kind: queryKindEnd}); err == nil {
		t.Error("encoded a query of an unknown kind")
	}
}

// FuzzDecodeQuery: any bytes decode or fail without panicking, and what decodes encodes back to
// the same query.
func FuzzDecodeQuery(f *testing.F) {
	for kind := queryGetProject; kind < queryKindEnd; kind++ {
		data, _ := encodeQuery(shardQuery{Kind: kind, ProjectID: "shop", ID: "w0abc", Page: ledger.PageRequest{Page: 2, PageSize: 10},
			Range: ledger.TimeRange{FromMs: 1, ToMs: 2}})
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := decodeQuery(data)
		if err != nil {
			return
		}
		encoded, err := encodeQuery(q)
		if err != nil {
			t.Fatalf("a decoded query does not encode: %+v: %v", q, err)
		}
		again, err := decodeQuery(encoded)
		if err != nil || again != q {
			t.Fatalf("round trip of %+v: %+v, %v", q, again, err)
		}
	})
}
