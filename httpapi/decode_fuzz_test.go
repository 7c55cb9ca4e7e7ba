package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The fuzz targets decode arbitrary bodies: decoding never panics, every refusal is a 4xx of
// the contract's codes, and whatever is accepted passes the fsm's own checks and decodes to the
// same value again after re-encoding (accept and reject agree with validation). Requests mean
// exactly what they say: an accepted body is valid UTF-8 and nothing in it was replaced by
// U+FFFD; IDs are printable and never "." or ".."; and the canonical form of an accepted body
// with any one key doubled, or spelled in another case, is refused (checkStrictVariants).
//
//	go test ./httpapi -run '^$' -fuzz FuzzDecodeTransaction -fuzztime 30s

// checkRefusal asserts a refusal is a contract 4xx with a message.
func checkRefusal(t *testing.T, apiErr *apiError) {
	t.Helper()
	switch {
	case apiErr.status == http.StatusRequestEntityTooLarge && apiErr.code == CodeRequestTooLarge:
	case apiErr.status == http.StatusBadRequest && (apiErr.code == CodeInvalidJSON || apiErr.code == CodeInvalidArgument ||
		apiErr.code == CodeInvalidAmount || apiErr.code == CodeLimitExceeded):
	default:
		t.Fatalf("refusal %d %s is not a contract 4xx", apiErr.status, apiErr.code)
	}
	if apiErr.message == "" {
		t.Fatalf("refusal %s without a message", apiErr.code)
	}
}

func FuzzDecodeTransaction(f *testing.F) {
	for _, seed := range []string{
		`{"referenceId":"order-42","operations":[{"type":"issue","to":"W1","amount":6},{"type":"transfer","from":"W1","to":"W2","amount":11},{"type":"redeem","from":"W2","amount":"3"}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":340282366920938463463374607431768211455}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":340282366920938463463374607431768211456}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1.5}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1e3}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":-1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":"007"}]}`,
		`{"referenceId":"r","operations":[{"type":"transfer","from":"a","to":"a","amount":1}]}`,
		`{"referenceId":"r","operations":[]}`,
		`{"referenceId":"r","operations":null}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1}]} x`,
		`{"referenceId":"\u0000","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"ReferenceID":"r","Operations":[{"Type":"issue","TO":"w","Amount":1}]}`,
		`null`, `[]`, `"x"`, ``, `{`, `{"referenceId":"r","extra":1}`,
		// Duplicate and case-variant keys, at the top and inside operations.
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1,"amount":400}]}`,
		`{"referenceId":"r","referenceId":"s","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1}],"operations":[{"type":"issue","to":"w","amount":9}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","type":"redeem","from":"w","amount":1}]}`,
		`{"ReferenceId":"r","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"REFERENCEID":"r","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","Amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":1,"AMOUNT":400}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":{"a":1,"a":2}}]}`,
		"{\"re\u017FerenceId\":\"r\",\"operations\":[{\"type\":\"issue\",\"to\":\"w\",\"amount\":1}]}",
		// Invalid UTF-8 and escapes encoding/json would replace by U+FFFD.
		"{\"referenceId\":\"r\xff\",\"operations\":[{\"type\":\"issue\",\"to\":\"w\",\"amount\":1}]}",
		"{\"referenceId\":\"r\xed\xa0\x80\",\"operations\":[{\"type\":\"issue\",\"to\":\"w\",\"amount\":1}]}",
		`{"referenceId":"r\ud800","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r\udc00\ud800","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r\ud83d\ude00","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r\ufffd","operations":[{"type":"issue","to":"w","amount":1}]}`,
		// Invisible characters and dot IDs.
		`{"referenceId":"r\u200b","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"\u202er","operations":[{"type":"issue","to":"w","amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"..","amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"transfer","from":".","to":"w","amount":1}]}`,
		`{"referenceId":"r","operations":[{"type":"issue","to":"w","amount":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		input, apiErr := decodeTransaction(bytes.NewReader(body))
		if apiErr != nil {
			checkRefusal(t, apiErr)
			return
		}
		if input.ReferenceID == "" || !fsm.ValidText(input.ReferenceID, fsm.ReferenceIDMaxLength) || !isPrintable(input.ReferenceID) {
			t.Fatalf("accepted referenceId %q", input.ReferenceID)
		}
		checkNothingReplaced(t, body, input.ReferenceID)
		if n := len(input.Operations); n < 1 || n > fsm.OperationsMaxCount {
			t.Fatalf("accepted %d operations", n)
		}
		for i, op := range input.Operations {
			if op.Amount.IsZero() {
				t.Fatalf("operation %d: accepted zero amount", i)
			}
			hasFrom, hasTo := op.From != "", op.To != ""
			switch op.Type {
			case ledger.OperationTransfer:
				if !hasFrom || !hasTo || op.From == op.To {
					t.Fatalf("operation %d: accepted transfer %+v", i, op)
				}
			case ledger.OperationIssue:
				if hasFrom || !hasTo {
					t.Fatalf("operation %d: accepted issue %+v", i, op)
				}
			case ledger.OperationRedeem:
				if !hasFrom || hasTo {
					t.Fatalf("operation %d: accepted redeem %+v", i, op)
				}
			default:
				t.Fatalf("operation %d: accepted type %v", i, op.Type)
			}
			for _, id := range []string{op.From, op.To} {
				if id != "" && (!fsm.ValidID(id, fsm.GeneratedIDMaxLength) || id == "." || id == "..") {
					t.Fatalf("operation %d: accepted wallet id %q", i, id)
				}
			}
		}
		// Re-encode canonically (amounts as strings) and decode again: the same value.
		canonical := transactionRequest{ReferenceID: input.ReferenceID}
		for _, op := range input.Operations {
			amount, _ := json.Marshal(op.Amount.String())
			canonical.Operations = append(canonical.Operations, operationRequest{Type: op.Type.String(), From: op.From, To: op.To, Amount: amount})
		}
		encoded, err := json.Marshal(canonical)
		if err != nil {
			t.Fatal(err)
		}
		again, apiErr := decodeTransaction(bytes.NewReader(encoded))
		if apiErr != nil {
			t.Fatalf("canonical form %s of an accepted body refused: %v", encoded, apiErr)
		}
		if !reflect.DeepEqual(again, input) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", input, again)
		}
		checkStrictVariants(t, encoded, func(variant []byte) *apiError {
			_, apiErr := decodeTransaction(bytes.NewReader(variant))
			return apiErr
		})
	})
}

// isPrintable reports whether every character of s is printable (unicode.IsPrint), the rule
// for client-chosen identifiers.
func isPrintable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// hasHiddenFormat reports whether free text holds a character checkText refuses beyond control
// characters: format characters (Cf) other than U+200C/U+200D, line and paragraph separators.
func hasHiddenFormat(s string) bool {
	for _, r := range s {
		if r != '\u200c' && r != '\u200d' && (unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)) {
			return true
		}
	}
	return false
}

// checkNothingReplaced fails the test if an accepted body was not valid UTF-8, or if a decoded
// value holds U+FFFD that the body did not spell (as UTF-8 or as the \ufffd escape): then
// decoding replaced something the client sent.
func checkNothingReplaced(t *testing.T, body []byte, values ...string) {
	t.Helper()
	if !utf8.Valid(body) {
		t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
	}
	spelled := bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
	for _, value := range values {
		if strings.ContainsRune(value, utf8.RuneError) && !spelled {
			t.Fatalf("accepted value %q holds U+FFFD the body %q did not send", value, body)
		}
	}
}

// checkStrictVariants takes the canonical encoding of an accepted body (encoding/json's
// output: no white space, keys as the struct tags spell them) and checks that decode refuses
// every variant with one key doubled (the copy first, so a last-wins decoder would take the
// original) or one key in other case: a body never means something else than it says.
func checkStrictVariants(t *testing.T, canonical []byte, decode func([]byte) *apiError) {
	t.Helper()
	keys := regexp.MustCompile(`[{,]("[A-Za-z]+"):`).FindAllSubmatchIndex(canonical, -1)
	for _, match := range keys {
		keyStart, keyEnd := match[2], match[3]
		key := canonical[keyStart:keyEnd]
		// The doubled key carries a value of the same type as the original, so only the
		// duplicate can be the reason to refuse.
		valueEnd := jsonValueEnd(canonical, keyEnd+1)
		member := canonical[keyStart:valueEnd]
		doubled := slices.Concat(canonical[:keyStart], member, []byte(","), canonical[keyStart:])
		if apiErr := decode(doubled); apiErr == nil || apiErr.code != CodeInvalidJSON {
			t.Fatalf("duplicate key %s accepted or refused as %v: %s", key, apiErr, doubled)
		}
		for _, variant := range []string{strings.ToUpper(string(key)), `"` + strings.ToUpper(string(key[1:2])) + string(key[2:])} {
			if variant == string(key) {
				continue
			}
			changed := slices.Concat(canonical[:keyStart], []byte(variant), canonical[keyEnd:])
			if apiErr := decode(changed); apiErr == nil || apiErr.code != CodeInvalidJSON {
				t.Fatalf("case variant %s of %s accepted or refused as %v: %s", variant, key, apiErr, changed)
			}
		}
	}
}

// jsonValueEnd returns the offset just past the JSON value starting at data[start:].
func jsonValueEnd(data []byte, start int) int {
	decoder := json.NewDecoder(bytes.NewReader(data[start:]))
	var value json.RawMessage
	if err := decoder.Decode(&value); err != nil {
		panic(fmt.Sprintf("canonical body %q has no value at %d: %v", data, start, err))
	}
	return start + int(decoder.InputOffset())
}

func FuzzParseAmount(f *testing.F) {
	for _, seed := range []string{"1", `"1"`, "0", `"0"`, "1.5", "1e3", "-1", `"-1"`, "340282366920938463463374607431768211455",
		"340282366920938463463374607431768211456", `"0012"`, "null", "true", `"1 "`, `" 1"`, `"\u0031"`, "{}", "[1]"} {
		f.Add([]byte(seed))
	}
	maxAmount := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		amount, apiErr := parseAmount("amount", raw)
		text := strings.TrimSuffix(strings.TrimPrefix(string(raw), `"`), `"`)
		want, ok := new(big.Int).SetString(text, 10)
		valid := ok && isDigits([]byte(text)) && (text == "0" || text[0] != '0') && want.Sign() > 0 && want.Cmp(maxAmount) <= 0 &&
			(isDigits(raw) || isQuotedDigits(raw))
		if apiErr != nil {
			if apiErr.code != CodeInvalidAmount || apiErr.status != http.StatusBadRequest {
				t.Fatalf("%q refused with %d %s", raw, apiErr.status, apiErr.code)
			}
			if valid {
				t.Fatalf("valid amount %q refused: %s", raw, apiErr.message)
			}
			return
		}
		if !valid || amount.Big().Cmp(want) != 0 {
			t.Fatalf("%q accepted as %s", raw, amount)
		}
	})
}

func FuzzDecodeWallet(f *testing.F) {
	for _, seed := range []string{
		`{"customerId":"alice@example.com","assetId":"usd","name":"main","description":"line"}`,
		`{"customerId":"a/b","assetId":"usd"}`, `{"customerId":"","assetId":"usd"}`, `{"assetId":"usd"}`,
		`{"customerId":"x","assetId":"u s d"}`, `{"customerId":"x","assetId":"usd","name":"\u0007"}`,
		`{"customerId":7,"assetId":"usd"}`, `{"customerId":"x","assetId":"usd","system":true}`, `null`, ``,
		`{"customerId":"x","assetId":"usd","assetId":"eur"}`, `{"customerId":"x","CustomerId":"y","assetId":"usd"}`,
		`{"CUSTOMERID":"x","assetId":"usd"}`, `{"customerId":"x","AssetID":"usd"}`, `{"assetId":"usd","Name":"n"}`,
		"{\"customerId\":\"x\xff\",\"assetId\":\"usd\"}", `{"customerId":"x\udfff","assetId":"usd"}`,
		`{"customerId":"x\u200b","assetId":"usd"}`, `{"customerId":"..","assetId":"usd"}`, `{"customerId":"x","assetId":"."}`,
		`{"customerId":"x","assetId":"usd","name":"\u2066n"}`, `{"customerId":"x","assetId":"usd","name":"👩\u200d💻"}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, system bool) {
		input, apiErr := decodeCreateWallet(bytes.NewReader(body), system)
		if apiErr != nil {
			checkRefusal(t, apiErr)
			return
		}
		if system != (input.CustomerID == "") || (!system && !fsm.ValidCustomerID(input.CustomerID)) ||
			!isPrintable(input.CustomerID) || input.CustomerID == "." || input.CustomerID == ".." ||
			!fsm.ValidID(input.AssetID, fsm.IDMaxLength) || input.AssetID == "." || input.AssetID == ".." ||
			!fsm.ValidText(input.Name, fsm.NameMaxLength) || hasHiddenFormat(input.Name) ||
			!fsm.ValidText(input.Description, fsm.DescriptionMaxLength) || hasHiddenFormat(input.Description) {
			t.Fatalf("accepted %+v (system %v)", input, system)
		}
		checkNothingReplaced(t, body, input.CustomerID, input.Name, input.Description)
		var encoded []byte
		if system {
			encoded, _ = json.Marshal(systemWalletRequest{AssetID: input.AssetID, Name: input.Name, Description: input.Description})
		} else {
			encoded, _ = json.Marshal(createWalletRequest{CustomerID: &input.CustomerID, AssetID: input.AssetID, Name: input.Name, Description: input.Description})
		}
		again, apiErr := decodeCreateWallet(bytes.NewReader(encoded), system)
		if apiErr != nil || again != input {
			t.Fatalf("round trip of %+v: %+v, %v", input, again, apiErr)
		}
		checkStrictVariants(t, encoded, func(variant []byte) *apiError {
			_, apiErr := decodeCreateWallet(bytes.NewReader(variant), system)
			return apiErr
		})
	})
}

func FuzzDecodeCustomer(f *testing.F) {
	for _, seed := range []string{
		`{"id":"alice@example.com","name":"Alice","description":"VIP"}`, `{"id":"42"}`, `{"id":"a/b"}`, `{"id":""}`,
		`{"name":"x"}`, `{"id":"x","name":null}`, `{"id":"x","description":"\n"}`, `{"id":"x","email":"e"}`, `{}`, ``,
		`{"id":"x","id":"y"}`, `{"id":"x","name":"a","name":"b"}`, `{"Id":"x"}`, `{"id":"x","NAME":"n"}`,
		`{"id":"x","Description":"d"}`, "{\"id\":\"x\",\"name\":\"\xc0\xaf\"}", `{"id":"x","name":"\udbff"}`,
		`{"id":"."}`, `{"id":".."}`, `{"id":"\ufeffx"}`, `{"id":"x\u00a0y"}`, `{"id":"x","name":"\u200fa"}`,
		`{"id":"zoë 山田","name":"می\u200cخواهم"}`,
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), "alice@example.com")
	}
	f.Fuzz(func(t *testing.T, body []byte, pathCustomerID string) {
		if pathCustomerID != "" && checkCustomerID("customerId", pathCustomerID) != nil {
			return // the path is checked before the body is read
		}
		input, apiErr := decodeCustomer(bytes.NewReader(body), pathCustomerID)
		if apiErr != nil {
			checkRefusal(t, apiErr)
			return
		}
		if !fsm.ValidCustomerID(input.ID) || (pathCustomerID != "" && input.ID != pathCustomerID) ||
			!isPrintable(input.ID) || input.ID == "." || input.ID == ".." ||
			(input.Name != nil && (!fsm.ValidText(*input.Name, fsm.NameMaxLength) || hasHiddenFormat(*input.Name))) ||
			(input.Description != nil && (!fsm.ValidText(*input.Description, fsm.DescriptionMaxLength) || hasHiddenFormat(*input.Description))) {
			t.Fatalf("accepted %+v", input)
		}
		values := []string{input.ID}
		for _, value := range []*string{input.Name, input.Description} {
			if value != nil {
				values = append(values, *value)
			}
		}
		checkNothingReplaced(t, body, values...)
		encoded, _ := json.Marshal(customerRequest{ID: &input.ID, Name: input.Name, Description: input.Description})
		again, apiErr := decodeCustomer(bytes.NewReader(encoded), pathCustomerID)
		if apiErr != nil || !reflect.DeepEqual(again, input) {
			t.Fatalf("round trip of %+v: %+v, %v", input, again, apiErr)
		}
		checkStrictVariants(t, encoded, func(variant []byte) *apiError {
			_, apiErr := decodeCustomer(bytes.NewReader(variant), pathCustomerID)
			return apiErr
		})
	})
}

// FuzzDecodeTransactionBatch: a batch is accepted only when every transaction in it is one
// decodeTransaction accepts, as the same value; a refusal names the transaction when one item
// is at fault.
func FuzzDecodeTransactionBatch(f *testing.F) {
	for _, seed := range []string{
		`{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"W1","amount":6}]},{"referenceId":"b","operations":[{"type":"transfer","from":"W1","to":"W2","amount":"5"}]}]}`,
		`{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"W1","amount":6}]},{"referenceId":"b","operations":[{"type":"issue","to":"W1","amount":0}]}]}`,
		`{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"W1","amount":6}]},{"referenceId":"b","operations":[{"type":"issue","to":"W1","amount":1}],"x":1}]}`,
		`{"transactions":[{"referenceId":"a","referenceId":"b","operations":[{"type":"issue","to":"W1","amount":6}]}]}`,
		`{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"W1","amount":6}]}],"transactions":[]}`,
		`{"transactions":[{"referenceId":"a","operations":[{"type":7,"to":"W1","amount":6}]}]}`,
		`{"transactions":[]}`, `{"transactions":null}`, `{"transactions":[null]}`, `{"transactions":{}}`, `{}`, `[]`, ``,
		"{\"transactions\":[{\"referenceId\":\"a\xff\",\"operations\":[{\"type\":\"issue\",\"to\":\"W1\",\"amount\":6}]}]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		inputs, apiErr := decodeTransactionBatch(bytes.NewReader(body))
		if apiErr != nil {
			checkRefusal(t, apiErr)
			return
		}
		if n := len(inputs); n < 1 || n > transactionsPerBatchMaxCount {
			t.Fatalf("accepted %d transactions", n)
		}
		checkNothingReplaced(t, body)
		canonical := transactionBatchRequest{}
		for i, input := range inputs {
			item := transactionRequest{ReferenceID: input.ReferenceID}
			for _, op := range input.Operations {
				amount, _ := json.Marshal(op.Amount.String())
				item.Operations = append(item.Operations, operationRequest{Type: op.Type.String(), From: op.From, To: op.To, Amount: amount})
			}
			encoded, err := json.Marshal(item)
			if err != nil {
				t.Fatal(err)
			}
			single, apiErr := decodeTransaction(bytes.NewReader(encoded))
			if apiErr != nil || !reflect.DeepEqual(single, input) {
				t.Fatalf("transaction %d %s: accepted in a batch, alone %+v %v", i, encoded, single, apiErr)
			}
			canonical.Transactions = append(canonical.Transactions, item)
		}
		encoded, err := json.Marshal(canonical)
		if err != nil {
			t.Fatal(err)
		}
		again, apiErr := decodeTransactionBatch(bytes.NewReader(encoded))
		if apiErr != nil || !reflect.DeepEqual(again, inputs) {
			t.Fatalf("canonical form %s of an accepted batch: %+v %v", encoded, again, apiErr)
		}
		checkStrictVariants(t, encoded, func(variant []byte) *apiError {
			_, apiErr := decodeTransactionBatch(bytes.NewReader(variant))
			return apiErr
		})
	})
}
