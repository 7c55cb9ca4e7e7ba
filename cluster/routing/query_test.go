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
		queryGetProject:       {Project: &ledger.Project{ID: "shop", Name: "Shop", CreatedAt: 5}},
		queryListAssets:       {Assets: []ledger.Asset{{ProjectID: "shop", ID: "usd", Code: "USD", Fractions: 100, Used: true, Supply: fsm.AmountFromUint64(42)}}},
		queryGetWallet:        {Wallet: &ledger.Wallet{ID: "w1", ProjectID: "shop", CustomerID: "c", AssetID: "usd", Status: ledger.WalletOpen, Balance: fsm.AmountFromUint64(9), Held: fsm.AmountFromUint64(2)}},
		queryListCustomers:    {Customers: []ledger.Customer{{ProjectID: "shop", ID: "a", Status: ledger.CustomerActive}, {ProjectID: "shop", ID: "b", Status: ledger.CustomerActive}}, HasMore: true},
		queryListTransactions: {Transactions: []ledger.Transaction{{ID: "t1", ProjectID: "shop", Status: ledger.TransactionCompleted, FailedOperationIndex: -1}}},
		queryListEntries:      {Entries: nil},
		queryGetCustomer:      {Err: &fsm.Error{Code: ledger.CodeCustomerNotFound, Message: "customer c not found"}},
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
	for name, data := range map[string]string{
		"unknown kind":    `{"v":1,"kind":"dropTables","projectId":"shop"}`,
		"no kind":         `{"v":1,"projectId":"shop"}`,
		"unknown version": `{"v":2,"kind":"getProject","projectId":"shop"}`,
		"unknown field":   `{"v":1,"kind":"getProject","projectId":"shop","admin":true}`,
		"trailing data":   `{"v":1,"kind":"getProject","projectId":"shop"}{}`,
		"long ID":         `{"v":1,"kind":"getProject","projectId":"` + strings.Repeat("p", queryIDMaxBytes+1) + `"}`,
		"too large":       `{"v":1,"kind":"getProject","projectId":"shop"}` + strings.Repeat(" ", queryMaxBytes),
		"not JSON":        "\x01\x02",
	} {
		if q, err := decodeQuery([]byte(data)); err == nil {
			t.Errorf("%s: decoded %+v", name, q)
		}
	}
	for name, data := range map[string]string{
		"other kind":     `{"v":1,"kind":"getWallet","items":{"id":"w"}}`,
		"unknown kind":   `{"v":1,"kind":"getSecrets","items":{}}`,
		"unknown field":  `{"v":1,"kind":"getProject","items":{"id":"shop"},"extra":1}`,
		"both":           `{"v":1,"kind":"getProject","items":{"id":"shop"},"error":{"code":"ProjectNotFound","message":"x"}}`,
		"neither":        `{"v":1,"kind":"getProject"}`,
		"null record":    `{"v":1,"kind":"getProject","items":null}`,
		"wrong type":     `{"v":1,"kind":"getProject","items":[1,2]}`,
		"version":        `{"v":0,"kind":"getProject","items":{"id":"shop"}}`,
		"trailing bytes": `{"v":1,"kind":"getProject","items":{"id":"shop"}} x`,
	} {
		if a, err := decodeAnswer(queryGetProject, []byte(data)); err == nil {
			t.Errorf("%s: decoded %+v", name, a)
		}
	}
	if _, err := encodeQuery(shardQuery{Kind: queryKindEnd}); err == nil {
		t.Error("encoded a query of an unknown kind")
	}
}

// FuzzDecodeQuery: any bytes decode or fail without panicking, and what decodes encodes back to
// the same query.
func FuzzDecodeQuery(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"listEntries","projectId":"shop","id":"w0abc","page":2,"pageSize":10,"fromMs":1,"toMs":2}`))
	f.Add([]byte(`{"v":1,"kind":"getProject"}`))
	f.Add([]byte(`{"v":1,"kind":"getProject","projectId":"\u0000"}`))
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
