package httpapi

import (
	"bytes"
	"fmt"
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
	return checkFastDecodeOf[transactionRequest, plainTransactionRequest](t, body, strictRules,
		transactionRequest{ReferenceID: "untouched"})
}

// checkFastDecodeOf is checkFastDecode for any request type T with a hand decoder; Plain is T
// without it (the same fields, what encoding/json makes of a body).
func checkFastDecodeOf[T any, Plain any, P interface {
	*T
	jsonstrict.CheckedDecoder
}](t *testing.T, body []byte, rules jsonstrict.Rules, sentinel T) (fast bool) {
	t.Helper()
	if jsonstrict.Check(body, reflect.TypeFor[P](), rules) != nil {
		return false
	}
	got := sentinel
	if !P(&got).DecodeChecked(body) {
		if !reflect.DeepEqual(got, sentinel) {
			t.Fatalf("%q: gave up but changed the value to %+v", body, got)
		}
		return false
	}
	var want Plain
	if p := jsonstrict.Decode(body, &want, rules); p != nil {
		t.Fatalf("%q: hand decoder took what encoding/json refuses: %+v", body, p)
	}
	if !reflect.DeepEqual(reflect.ValueOf(got).Interface(), reflect.ValueOf(want).Convert(reflect.TypeFor[T]()).Interface()) {
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

// plainTransactionBatchRequest is transactionBatchRequest without its own decoder (its items
// keep theirs, which encoding/json does not call).
type plainTransactionBatchRequest transactionBatchRequest

// fastBatchBodies are batch bodies for the hand decoder, as fastDecodeBodies; every transfer
// body above is also tried as a batch of one and of two.
var fastBatchBodies = []struct {
	body string
	fast bool
}{
	{`{"transactions":[{"referenceId":"a","operations":[{"type":"transfer","from":"w1","to":"w2","amount":"5"}]},{"referenceId":"b","operations":[{"type":"issue","to":"w1","amount":7}]}]}`, true},
	{" { \"transactions\" : [ ] } ", true},
	{`{}`, true},
	{`{"transactions":[{}]}`, true},
	{`{"transactions":null}`, false},
	{`{"transactions":[null]}`, false},
	{`{"transactions":[{"referenceId":"a"},null]}`, false},
	{`{"transactions":[{"referenceId":"a\u0041"}]}`, false},
	{`{"transactions":[{"referenceId":"a"}]} []`, false},
	{`{"transactions":[{"referenceId":"a"}}`, false},
	{`{"transactions":{}}`, false},
	{`{"transactions":[1]}`, false},
}

func checkFastBatchDecode(t *testing.T, body []byte) bool {
	t.Helper()
	return checkFastDecodeOf[transactionBatchRequest, plainTransactionBatchRequest](t, body, batchRules,
		transactionBatchRequest{Transactions: []transactionRequest{{ReferenceID: "untouched"}}})
}

func TestTransactionBatchDecodeChecked(t *testing.T) {
	for _, c := range fastBatchBodies {
		if fast := checkFastBatchDecode(t, []byte(c.body)); fast != c.fast {
			t.Errorf("%s: hand decoder took it: %v, want %v", c.body, fast, c.fast)
		}
	}
	for _, c := range fastDecodeBodies {
		for _, body := range []string{`{"transactions":[` + c.body + `]}`, `{"transactions":[{"referenceId":"x"},` + c.body + `]}`} {
			fast := checkFastBatchDecode(t, []byte(body))
			// Bodies with trailing data are not one JSON value inside an array: Check refuses them.
			if want := c.fast && jsonstrict.Check([]byte(body), reflect.TypeFor[*transactionBatchRequest](), batchRules) == nil; fast != want {
				t.Errorf("%s: hand decoder took it: %v, want %v", body, fast, want)
			}
		}
	}
}

// go test ./httpapi -run '^$' -fuzz FuzzTransactionBatchDecodeChecked -fuzztime 60s
func FuzzTransactionBatchDecodeChecked(f *testing.F) {
	for _, c := range fastBatchBodies {
		f.Add([]byte(c.body))
	}
	for _, c := range fastDecodeBodies {
		f.Add([]byte(`{"transactions":[` + c.body + `]}`))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastBatchDecode(t, body) })
}

// BenchmarkDecodeTransactionBatch decodes the bench harness's batch of 1,000 transfers
// (bench --batch 1000), through the hand decoder and through encoding/json.
//
//	go test ./httpapi -run '^$' -bench DecodeTransactionBatch -benchmem
func BenchmarkDecodeTransactionBatch(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"transactions":[`)
	for i := range 1000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"referenceId":"bench-%08d","operations":[{"type":"transfer","from":"w%04d","to":"w%04d","amount":"1"}]}`, i, i%1000, (i+1)%1000)
	}
	body.WriteString(`]}`)
	decoders := map[string]func() (int, *jsonstrict.Problem){
		"hand": func() (int, *jsonstrict.Problem) {
			var request transactionBatchRequest
			p := jsonstrict.Decode(body.Bytes(), &request, batchRules)
			return len(request.Transactions), p
		},
		"encoding-json": func() (int, *jsonstrict.Problem) {
			var request plainTransactionBatchRequest
			p := jsonstrict.Decode(body.Bytes(), &request, batchRules)
			return len(request.Transactions), p
		},
	}
	for _, name := range []string{"hand", "encoding-json"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(body.Len()))
			for b.Loop() {
				if n, p := decoders[name](); p != nil || n != 1000 {
					b.Fatal(p)
				}
			}
		})
	}
}
