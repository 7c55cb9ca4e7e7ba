package httpapi

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// The fuzz targets decode arbitrary bodies: decoding never panics, every refusal is a 4xx of
// the contract's codes, and whatever is accepted passes the fsm's own checks and decodes to the
// same value again after re-encoding (accept and reject agree with validation).
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
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		input, apiErr := decodeTransaction(bytes.NewReader(body))
		if apiErr != nil {
			checkRefusal(t, apiErr)
			return
		}
		if input.ReferenceID == "" || !fsm.ValidText(input.ReferenceID, fsm.ReferenceIDMaxLength) {
			t.Fatalf("accepted referenceId %q", input.ReferenceID)
		}
		if n := len(input.Operations); n < 1 || n > fsm.OperationsMaxCount {
			t.Fatalf("accepted %d operations", n)
		}
		for i, op := range input.Operations {
			if op.Amount.IsZero() {
				t.Fatalf("operation %d: accepted zero amount", i)
			}
			hasFrom, hasTo := op.From != "", op.To != ""
			switch op.Type {
			case fsm.OperationTransfer:
				if !hasFrom || !hasTo || op.From == op.To {
					t.Fatalf("operation %d: accepted transfer %+v", i, op)
				}
			case fsm.OperationIssue:
				if hasFrom || !hasTo {
					t.Fatalf("operation %d: accepted issue %+v", i, op)
				}
			case fsm.OperationRedeem:
				if !hasFrom || hasTo {
					t.Fatalf("operation %d: accepted redeem %+v", i, op)
				}
			default:
				t.Fatalf("operation %d: accepted type %v", i, op.Type)
			}
			for _, id := range []string{op.From, op.To} {
				if id != "" && !fsm.ValidID(id, fsm.GeneratedIDMaxLength) {
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
	})
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
			!fsm.ValidID(input.AssetID, fsm.IDMaxLength) || !fsm.ValidText(input.Name, fsm.NameMaxLength) ||
			!fsm.ValidText(input.Description, fsm.DescriptionMaxLength) {
			t.Fatalf("accepted %+v (system %v)", input, system)
		}
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
	})
}

func FuzzDecodeCustomer(f *testing.F) {
	for _, seed := range []string{
		`{"id":"alice@example.com","name":"Alice","description":"VIP"}`, `{"id":"42"}`, `{"id":"a/b"}`, `{"id":""}`,
		`{"name":"x"}`, `{"id":"x","name":null}`, `{"id":"x","description":"\n"}`, `{"id":"x","email":"e"}`, `{}`, ``,
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
			(input.Name != nil && !fsm.ValidText(*input.Name, fsm.NameMaxLength)) ||
			(input.Description != nil && !fsm.ValidText(*input.Description, fsm.DescriptionMaxLength)) {
			t.Fatalf("accepted %+v", input)
		}
		encoded, _ := json.Marshal(customerRequest{ID: &input.ID, Name: input.Name, Description: input.Description})
		again, apiErr := decodeCustomer(bytes.NewReader(encoded), pathCustomerID)
		if apiErr != nil || !reflect.DeepEqual(again, input) {
			t.Fatalf("round trip of %+v: %+v, %v", input, again, apiErr)
		}
	})
}
