package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// samplePaymentQuery is a payments query with every field set, and its args.
func samplePaymentQuery(t testing.TB) (*gigpay.PaymentQuery, string) {
	pq := &gigpay.PaymentQuery{Sort: gigpay.SortAmount, Descending: true, After: []byte("\x00\x01pos"), Limit: 100,
		Status: gigpay.PaymentCompleted, Type: gigpay.PaymentWithdrawal, WalletID: "w0a1bxyz", AssetID: "usd",
		FromMs: 1, ToMs: 1_700_000_000_000, ScanMax: 500}
	args, err := encodePaymentQuery(pq)
	if err != nil {
		t.Fatal(err)
	}
	return pq, args
}

func sampleGigPayPayment() gigpay.Payment {
	return gigpay.Payment{ID: "y0a1bxyz", ProjectID: "gigpay", Type: gigpay.PaymentTransfer, Status: gigpay.PaymentCompleted,
		AssetID: "usd", Fractions: 100, Amount: fsm.AmountFromUint64(150),
		Source:      gigpay.Party{WalletID: "w0a1bsrc", CustomerID: "alice"},
		Destination: gigpay.Party{WalletID: "w0a1bdst", CustomerID: "bob"},
		TokenID:     "k0a1bxyz", CreatedAt: 5, ModifiedAt: 6}
}

// sampleToken is a claimed token with every field set.
func sampleToken() *gigpay.Token {
	return &gigpay.Token{ID: "k0a1bxyz", Token: "g0a1bAAAAAAAAAAAAAAAAAAAAAA", ProjectID: "gigpay", AssetID: "usd", Fractions: 100,
		Amount: fsm.AmountFromUint64(150), SourceWalletID: "w0a1bsrc", SourceCustomerID: "alice", ExpiresAt: 99,
		Memo: "tea", ClientReference: "r1", Status: gigpay.TokenSucceeded, HoldID: "h1.0",
		DestinationWalletID: "w0a1bdst", DestinationCustomerID: "bob", PaymentID: "y0a1bxyz", TransactionID: "t1",
		CreatedAt: 5, ModifiedAt: 6}
}

// Every kind's query survives the wire, and so does an answer of each kind.
func TestQueryWireRoundTrip(t *testing.T) {
	payment := sampleGigPayPayment()
	_, args := samplePaymentQuery(t)
	for kind := queryGetProject; kind < queryKindEnd; kind++ {
		q := shardQuery{Kind: kind, ProjectID: "shop", CustomerID: "alice@example.com", ID: "w0a1b2c3d4",
			Page: ledger.PageRequest{Page: 3, PageSize: 7}, Range: ledger.TimeRange{FromMs: 1, ToMs: 1_700_000_000_000}}
		if kind == queryListGigPayPayments {
			q.Args = args
		}
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
		queryGetCrossTransaction: {Cross: &ledger.CrossTransaction{Transaction: &ledger.Transaction{ID: "t1", ProjectID: "shop",
			Status: ledger.TransactionPending, FailedOperationIndex: -1, Sequence: 1,
			Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: "w1", To: "w2", Amount: fsm.AmountFromUint64(3)}}},
			Participants: []ledger.CrossParticipant{{Shard: 0, Wallets: []string{"w1"},
				Legs: []ledger.CrossLeg{{Index: 0, Operation: ledger.Operation{Type: ledger.OperationTransfer, From: "w1", To: "w2", Amount: fsm.AmountFromUint64(3)}}}},
				{Shard: 3, Wallets: []string{"w2"}, Legs: []ledger.CrossLeg{{Index: 0, Operation: ledger.Operation{Type: ledger.OperationTransfer, From: "w1", To: "w2", Amount: fsm.AmountFromUint64(3)}}}}}}},
		queryGetHold:          {Hold: &ledger.Hold{ID: "h1.0", ProjectID: "shop", WalletID: "w1", Amount: fsm.AmountFromUint64(3), Status: ledger.HoldActive}},
		queryGetCustomer:      {Err: &fsm.Error{Code: ledger.CodeCustomerNotFound, Message: "customer c not found"}},
		queryListEvents:       {Events: eventsAnswer()},
		queryGetToken:         {Token: sampleToken()},
		queryGetTokenByString: {Err: &fsm.Error{Code: gigpay.CodeTokenNotFound, Message: "token not found"}},
		queryGetGigPayPayment: {GigPayPayment: &payment},
		queryListGigPayPayments: {PaymentPage: &gigpay.PaymentPage{Items: []gigpay.Payment{payment, payment},
			Frontier: []byte("\x00\x07y0a1bxyz")}},
	}
	// An exhausted page with nothing in it, as a shard that never saw the project answers.
	for _, page := range []*gigpay.PaymentPage{{Exhausted: true}, {Items: []gigpay.Payment{payment}, Frontier: []byte{1}, Exhausted: true}} {
		data, err := encodeAnswer(queryListGigPayPayments, &shardAnswer{PaymentPage: page})
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeAnswer(queryListGigPayPayments, data)
		if err != nil || !reflect.DeepEqual(got.PaymentPage, page) {
			t.Fatalf("page %+v: decoded %+v, %v", page, got.PaymentPage, err)
		}
	}
	answers[queryAwaitCrossTransaction] = answers[queryGetCrossTransaction]
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
		{Sequence: 10, TimeMs: 13, Type: gigpay.EventTokenSucceeded, Subject: sampleToken()},
		{Sequence: 11, TimeMs: 13, Type: gigpay.EventPaymentCreated, Subject: func() *gigpay.Payment { p := sampleGigPayPayment(); return &p }()},
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

// A query's args are strict too: only listGigPayPayments takes them, it must have them, they
// are bounded, and they are the payments query's own encoding (nothing after it, no limit the
// decoder would have to clamp).
func TestQueryArgsAreStrict(t *testing.T) {
	pq, args := samplePaymentQuery(t)
	q := shardQuery{Kind: queryListGigPayPayments, ProjectID: "gigpay", Args: args}
	data, err := encodeQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeQuery(data)
	if err != nil || got != q {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	back, err := decodePaymentQuery(got.Args)
	if err != nil || !reflect.DeepEqual(back, pq) {
		t.Fatalf("payments query %+v, %v; want %+v", back, err, pq)
	}
	overLimit := func() string {
		var e fsm.Encoder
		(&gigpay.PaymentQuery{Sort: gigpay.SortCreated, Limit: fsm.ListMaxCount + 1}).Encode(&e)
		return string(e.Buf)
	}()
	longAfter := func() string {
		var e fsm.Encoder
		(&gigpay.PaymentQuery{Sort: gigpay.SortCreated, Limit: 1, After: make([]byte, queryArgsMaxBytes)}).Encode(&e)
		return string(e.Buf)
	}()
	for name, bad := range map[string]shardQuery{
		"no args":        {Kind: queryListGigPayPayments, ProjectID: "gigpay"},
		"trailing args":  {Kind: queryListGigPayPayments, ProjectID: "gigpay", Args: args + "\x00"},
		"truncated args": {Kind: queryListGigPayPayments, ProjectID: "gigpay", Args: args[:len(args)-1]},
		"clamped limit":  {Kind: queryListGigPayPayments, ProjectID: "gigpay", Args: overLimit},
		"long args":      {Kind: queryListGigPayPayments, ProjectID: "gigpay", Args: longAfter},
		"args elsewhere": {Kind: queryGetToken, ProjectID: "gigpay", ID: "k0a1b", Args: args},
	} {
		data, err := encodeQuery(bad)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > queryMaxBytes {
			t.Fatalf("%s: %d bytes; the test means the args, not the query's bound", name, len(data))
		}
		if q, err := decodeQuery(data); err == nil {
			t.Errorf("%s: decoded %+v", name, q)
		}
	}
	// The largest query a reader sends fits: the longest IDs and args.
	long := strings.Repeat("x", queryIDMaxBytes)
	data, err = encodeQuery(shardQuery{Kind: queryListGigPayPayments, ProjectID: long, CustomerID: long, ID: long,
		Page: ledger.PageRequest{Page: -1 << 62, PageSize: -1 << 62}, Range: ledger.TimeRange{FromMs: -1 << 62, ToMs: -1 << 62},
		Args: func() string {
			var e fsm.Encoder
			(&gigpay.PaymentQuery{Sort: gigpay.SortAmount, Limit: fsm.ListMaxCount, After: make([]byte, 32+fsm.GeneratedIDMaxLength),
				WalletID: strings.Repeat("w", fsm.GeneratedIDMaxLength), AssetID: strings.Repeat("a", fsm.IDMaxLength),
				FromMs: -1 << 62, ToMs: -1 << 62, ScanMax: paymentScanMax}).Encode(&e)
			return string(e.Buf)
		}()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeQuery(data); err != nil {
		t.Fatalf("the largest query: %v", err)
	}
	// A listGigPayPayments answer must carry its page; a page's payments are strict records.
	if _, err := encodeAnswer(queryListGigPayPayments, &shardAnswer{}); err == nil {
		t.Error("encoded a listGigPayPayments answer without its page")
	}
	page, err := encodeAnswer(queryListGigPayPayments, &shardAnswer{PaymentPage: &gigpay.PaymentPage{Items: []gigpay.Payment{sampleGigPayPayment()}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated": page[:len(page)-1],
		"trailing":  append(append([]byte(nil), page...), 0),
		"bad bool":  append(append([]byte(nil), page[:len(page)-1]...), 2),
	} {
		if a, err := decodeAnswer(queryListGigPayPayments, data); err == nil {
			t.Errorf("%s: decoded %+v", name, a.PaymentPage)
		}
	}
}

// FuzzDecodeQuery: any bytes decode or fail without panicking, and what decodes encodes back to
// the same query.
func FuzzDecodeQuery(f *testing.F) {
	for kind := queryGetProject; kind < queryKindEnd; kind++ {
		q := shardQuery{Kind: kind, ProjectID: "shop", ID: "w0abc", Page: ledger.PageRequest{Page: 2, PageSize: 10},
			Range: ledger.TimeRange{FromMs: 1, ToMs: 2}}
		if kind == queryListGigPayPayments {
			_, q.Args = samplePaymentQuery(f)
		}
		data, _ := encodeQuery(q)
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
