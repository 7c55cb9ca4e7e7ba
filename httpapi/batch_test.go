package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// batchAnswer is the body of POST /projects/{projectId}/transactions/batch.
type batchAnswer struct {
	Results []batchItem `json:"results"`
}

type batchItem struct {
	Status int `json:"status"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Transaction *cloudwallet.Transaction `json:"transaction"`
}

func (i batchItem) code() string {
	if i.Error == nil {
		return ""
	}
	return i.Error.Code
}

func batch(transactions ...map[string]any) map[string]any {
	return map[string]any{"transactions": transactions}
}

func postBatch(c *apiClient, projectID string, body any) batchAnswer {
	c.t.Helper()
	var answer batchAnswer
	c.do("POST", "/projects/"+projectID+"/transactions/batch", body).expect(http.StatusOK).decode(&answer)
	return answer
}

// A batch answers one result per transaction in request order, each what the single route
// answers; transactions on the same wallets apply in order; the whole batch is one proposal.
func TestTransactionBatchResultsInRequestOrder(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	a, b := f.walletA, f.walletB
	proposals := backend.Proposals()
	body := batch(
		transaction("b1", issue(a, 10)),
		transaction("b2", transfer(a, b, 7)), // needs b1
		transaction("b3", transfer(a, b, 7)), // 3 left
		transaction("b1", issue(a, 10)),      // the same as b1
		transaction("b2", transfer(a, b, 1)), // b2 with other operations
		transaction("b4", transfer(a, "w0000nope", 1)),
		transaction("b5", transfer(b, a, 7), redeem(a, 1)),
	)
	answer := postBatch(c, f.projectID, body)
	if got := backend.Proposals() - proposals; got != 1 {
		t.Errorf("a one-shard batch took %d proposals, want 1", got)
	}
	want := []struct {
		status int
		code   string
	}{{201, ""}, {201, ""}, {422, "InsufficientFunds"}, {409, "DuplicateReferenceId"}, {409, "ReferenceIdMismatch"},
		{404, "WalletNotFound"}, {201, ""}}
	if len(answer.Results) != len(want) {
		t.Fatalf("%d results for %d transactions", len(answer.Results), len(want))
	}
	for i, w := range want {
		got := answer.Results[i]
		if got.Status != w.status || got.code() != w.code {
			t.Errorf("result %d: %d %q, want %d %q", i, got.Status, got.code(), w.status, w.code)
		}
	}
	if tx := answer.Results[3].Transaction; tx == nil || tx.ID != answer.Results[0].Transaction.ID {
		t.Errorf("the duplicate does not carry the first transaction: %+v", tx)
	}
	if tx := answer.Results[2].Transaction; tx == nil || tx.Status != "failed" {
		t.Errorf("the failed transfer is not recorded as failed: %+v", tx)
	}
	if got := balance(c, f.projectID, a); got != "9" {
		t.Errorf("wallet a holds %s, want 9 (10 issued, 7 out, 7 back, 1 redeemed)", got)
	}

	// The same batch again: every transaction answers what the single route answers for it
	// now, status, error and transaction alike.
	again := postBatch(c, f.projectID, body)
	for i, item := range body["transactions"].([]map[string]any) {
		single := c.do("POST", "/projects/"+f.projectID+"/transactions", item)
		var envelope struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			Transaction *cloudwallet.Transaction `json:"transaction"`
		}
		single.decode(&envelope)
		got := again.Results[i]
		if got.Status != single.status || !reflect.DeepEqual(got.Error, envelope.Error) || !reflect.DeepEqual(got.Transaction, envelope.Transaction) {
			t.Errorf("result %d of the retried batch %+v; the single route answers %d %s", i, got, single.status, single.body)
		}
		if got.Status != http.StatusConflict && got.Status != http.StatusNotFound {
			t.Errorf("result %d of the retried batch: %d, want a duplicate (409) or not found", i, got.Status)
		}
	}
	if got := balance(c, f.projectID, a); got != "9" {
		t.Errorf("the retried batch moved money: wallet a holds %s", got)
	}
}

// A malformed transaction, an empty or oversized batch, or an Idempotency-Key refuses the whole
// batch, naming the transaction at fault; nothing is proposed.
func TestTransactionBatchRefusals(t *testing.T) {
	c, backend, _ := newTestServer(t)
	f := setUp(t, c)
	good := transaction("ok", issue(f.walletA, 1))
	many := make([]map[string]any, 1001)
	for i := range many {
		many[i] = transaction(fmt.Sprintf("r%d", i), issue(f.walletA, 1))
	}
	path := "/projects/" + f.projectID + "/transactions/batch"
	proposals := backend.Proposals()
	for _, tc := range []struct {
		name, body, code, names string
		status                  int
	}{
		{"bad amount", mustJSON(t, batch(good, transaction("x", issue(f.walletA, "1.5")))), "InvalidAmount", "transactions[1].operations[0].amount", 400},
		{"no reference", mustJSON(t, batch(good, good, map[string]any{"operations": []any{issue(f.walletA, 1)}})), "InvalidArgument", "transactions[2].referenceId", 400},
		{"unknown key", `{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"w","amount":1}],"extra":1}]}`, "InvalidJSON", "extra", 400},
		{"wrong type", `{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"w","amount":1}]},{"referenceId":7,"operations":[]}]}`, "InvalidJSON", "transactions[1].referenceId", 400},
		{"null item", `{"transactions":[{"referenceId":"a","operations":[{"type":"issue","to":"w","amount":1}]},null]}`, "InvalidJSON", "transactions[1] must be a JSON object", 400},
		{"null operation", `{"transactions":[{"referenceId":"a","operations":[null]}]}`, "InvalidJSON", "transactions[0].operations[0] must be a JSON object", 400},
		{"duplicate key", `{"transactions":[{"referenceId":"a","referenceId":"b","operations":[{"type":"issue","to":"w","amount":1}]}]}`, "InvalidJSON", "referenceId", 400},
		{"empty", `{"transactions":[]}`, "LimitExceeded", "transactions", 400},
		{"absent", `{}`, "InvalidArgument", "transactions is required", 400},
		{"null", `{"transactions":null}`, "InvalidArgument", "transactions is required", 400},
		{"too many", mustJSON(t, map[string]any{"transactions": many}), "LimitExceeded", "1000", 400},
		{"no body", ``, "InvalidJSON", "", 400},
		{"too large", `{"transactions":[{"referenceId":"` + strings.Repeat("a", 1<<20) + `","operations":[]}]}`, "RequestTooLarge", "", 413},
	} {
		r := c.do("POST", path, tc.body).expectError(tc.status, tc.code)
		if !strings.Contains(string(r.body), tc.names) {
			t.Errorf("%s: %s does not name %q", tc.name, r.body, tc.names)
		}
	}
	keyed := &apiClient{t: t, handler: c.handler, token: c.token, header: http.Header{"Idempotency-Key": {"k1"}}}
	keyed.do("POST", path, batch(good)).expectError(400, "InvalidArgument")
	if got := backend.Proposals(); got != proposals {
		t.Errorf("refused batches proposed %d commands", got-proposals)
	}
	// A project that does not exist: every transaction answers 404 ProjectNotFound.
	answer := postBatch(c, "nope", batch(good, good))
	for i, item := range answer.Results {
		if item.Status != 404 || item.code() != "ProjectNotFound" {
			t.Errorf("result %d in a missing project: %+v", i, item)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A proposal whose outcome is unknown answers every transaction it carried 503 OutcomeUnknown,
// never a success.
func TestTransactionBatchOutcomeUnknown(t *testing.T) {
	fake := &httpapitest.FakeBackend{ProposeErr: fmt.Errorf("leader lost: %w", httpapi.ErrOutcomeUnknown)}
	c := &apiClient{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken}, fake, testLogger(t), nil), token: testToken}
	answer := postBatch(c, "shop", batch(transaction("a", issue("w0000a", 1)), transaction("b", issue("w0000b", 1))))
	for i, item := range answer.Results {
		if item.Status != http.StatusServiceUnavailable || item.code() != httpapi.CodeOutcomeUnknown || item.Transaction != nil {
			t.Errorf("result %d: %+v, want 503 OutcomeUnknown", i, item)
		}
	}
}
