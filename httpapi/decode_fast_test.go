package httpapi

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// plainTransactionRequest is transactionRequest without its own decoder: what encoding/json
// makes of a body.
type plainTransactionRequest transactionRequest

// fastDecodeBodies are transaction bodies for the hand decoder: the ones marked fast must take
// it; every one must decode to what encoding/json makes of it.
var fastDecodeBodies = []struct {
	body string
	fast bool
}{
	{`{"referenceId":"r-1","operations":[{"type":"transfer","from":"w1","to":"w2","amount":125}]}`, true},
	{" \n{ \"operations\" : [ { \"amount\" : \"7\" , \"to\" : \"w\" , \"type\" : \"issue\" } , {\"type\":\"hold\",\"from\":\"w\",\"amount\":1,\"expiresAt\":-5} ] , \"referenceId\" : \"caf\u00e9\" }\t", true},
	{`{"referenceId":"r","operations":[]}`, true},
	{`{"referenceId":"","operations":[{}]}`, true},
	{`{}`, true},
	{`{"referenceId":"r","operations":[{"amount":0},{"amount":"x"},{"amount":""},{"expiresAt":9223372036854775807}]}`, true},
	{`{"referenceId":"r","operations":null}`, false},
	{`{"referenceId":null}`, false},
	{`{"referenceId":"a\"b"}`, false},
	{`{"referenceId":"a\u0041"}`, false},
	{`{"referenceId":"r","operations":[null]}`, false},
	{`{"referenceId":"r","operations":[{"amount":-1}]}`, false},
	{`{"referenceId":"r","operations":[{"amount":1.5}]}`, false},
	{`{"referenceId":"r","operations":[{"amount":1e3}]}`, false},
	{`{"referenceId":"r","operations":[{"amount":true}]}`, false},
	{`{"referenceId":"r","operations":[{"amount":{"a":1}}]}`, false},
	{`{"referenceId":"r","operations":[{"amount":"\u0031"}]}`, false},
	{`{"referenceId":"r","operations":[{"expiresAt":9223372036854775808}]}`, false},
	{`{"referenceId":"r","operations":[{"expiresAt":1.0}]}`, false},
	{`{"referenceId":"r","operations":[{"expiresAt":null}]}`, false},
	{`{"referenceId":"r","operations":[{"type":5}]}`, false},
	{`{"referenceId":"r"} {}`, false},
	{`{"referenceId":"r"} x`, false},
}

// checkFastDecode: when the hand decoder takes a body Check accepted, encoding/json accepts
// it too and makes the same value of it; when it gives up, it changed nothing.
func checkFastDecode(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	if jsonstrict.Check(body, reflect.TypeFor[*transactionRequest](), strictRules) != nil {
		return false
	}
	sentinel := transactionRequest{ReferenceID: "untouched"}
	got := sentinel
	if !got.DecodeChecked(body) {
		if !reflect.DeepEqual(got, sentinel) {
			t.Fatalf("%q: gave up but changed the value to %+v", body, got)
		}
		return false
	}
	var want plainTransactionRequest
	if p := jsonstrict.Decode(body, &want, strictRules); p != nil {
		t.Fatalf("%q: hand decoder took what encoding/json refuses: %+v", body, p)
	}
	if !reflect.DeepEqual(got, transactionRequest(want)) {
		t.Fatalf("%q: hand decoder made %+v, encoding/json %+v", body, got, want)
	}
	return true
}

func TestTransactionDecodeChecked(t *testing.T) {
	for _, c := range fastDecodeBodies {
		if fast := checkFastDecode(t, []byte(c.body)); fast != c.fast {
			t.Errorf("%s: hand decoder took it: %v, want %v", c.body, fast, c.fast)
		}
	}
}

// go test ./httpapi -run '^$' -fuzz FuzzTransactionDecodeChecked -fuzztime 60s
func FuzzTransactionDecodeChecked(f *testing.F) {
	for _, c := range fastDecodeBodies {
		f.Add([]byte(c.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastDecode(t, body) })
}
