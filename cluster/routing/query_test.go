package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
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
