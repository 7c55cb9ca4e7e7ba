package faults

import (
	"errors"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestClassifyKeepsTheCheckersOutcomes(t *testing.T) {
	completed := &client.Transaction{Status: client.TransactionCompleted}
	failed := &client.Transaction{Status: client.TransactionFailed}
	lost := &client.TransportError{Method: "POST", Path: "/x", Err: errors.New("connection reset")}
	for _, test := range []struct {
		name     string
		attempt  client.Attempt
		tx       *client.Transaction
		err      error
		outcome  Outcome
		txStatus string
	}{
		{"created", client.Attempt{Number: 1, StatusCode: 201}, completed, nil, OutcomeApplied, "completed"},
		{"duplicate of completed", client.Attempt{Number: 1, StatusCode: 409, Code: "DuplicateReferenceId"}, completed, nil, OutcomeApplied, "completed"},
		{"duplicate of failed", client.Attempt{Number: 1, StatusCode: 409, Code: "DuplicateReferenceId"}, failed, &client.Error{StatusCode: 422}, OutcomeFailed, "failed"},
		{"duplicate without record", client.Attempt{Number: 1, StatusCode: 409, Code: "DuplicateReferenceId"}, nil, &client.Error{StatusCode: 409}, OutcomeRejected, ""},
		{"failed", client.Attempt{Number: 1, StatusCode: 422, Code: "InsufficientFunds"}, failed, &client.Error{StatusCode: 422}, OutcomeFailed, "failed"},
		{"refused by rule", client.Attempt{Number: 1, StatusCode: 422, Code: "CrossShardTransaction"}, nil, &client.Error{StatusCode: 422}, OutcomeFailed, ""},
		{"unavailable", client.Attempt{Number: 1, StatusCode: 503, Code: "Unavailable"}, nil, &client.Error{StatusCode: 503}, OutcomeRejected, ""},
		{"overloaded", client.Attempt{Number: 1, StatusCode: 503, Code: "Overloaded"}, nil, &client.Error{StatusCode: 503}, OutcomeRejected, ""},
		{"outcome unknown", client.Attempt{Number: 1, StatusCode: 503, Code: "OutcomeUnknown"}, nil, &client.Error{StatusCode: 503}, OutcomeUnknown, ""},
		{"internal", client.Attempt{Number: 1, StatusCode: 500, Code: "Internal"}, nil, &client.Error{StatusCode: 500}, OutcomeUnknown, ""},
		{"no answer", client.Attempt{Number: 1, Err: lost}, nil, lost, OutcomeUnknown, ""},
		{"mismatch", client.Attempt{Number: 1, StatusCode: 409, Code: "ReferenceIdMismatch"}, nil, &client.Error{StatusCode: 409}, OutcomeRejected, ""},
		{"not found", client.Attempt{Number: 1, StatusCode: 404, Code: "WalletNotFound"}, nil, &client.Error{StatusCode: 404}, OutcomeRejected, ""},
	} {
		got := classify(test.attempt, test.tx, test.err)
		if got.Outcome != test.outcome || got.TxStatus != test.txStatus || got.Status != test.attempt.StatusCode || got.Code != test.attempt.Code {
			t.Errorf("%s: %+v, want %s with tx status %q", test.name, got, test.outcome, test.txStatus)
		}
	}
}

// TestTransactAgainstTheRealHandler sends attempts through the real admin handler over a
// ledger without Raft: the first is applied, a resend is a duplicate of it, an overdraft is a
// recorded failure, and a node that does not listen is an unknown outcome.
func TestTransactAgainstTheRealHandler(t *testing.T) {
	backend := httpapitest.NewLedgerBackend(t)
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: "t"}, backend, testutil.Logger(t), prometheus.NewRegistry())
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)

	c := NewClient("t", 5*time.Second, 4)
	ctx := testutil.Context(t, 10*time.Second)
	api, err := c.API(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateProject(ctx, client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateAsset(ctx, "p", client.CreateAssetRequest{ID: "coin", Name: "Coin", Code: "C", Fractions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.UpsertCustomer(ctx, "p", "bank", client.CustomerFields{}); err != nil {
		t.Fatal(err)
	}
	var wallets []string
	for range 2 {
		wallet, err := api.CreateWallet(ctx, "p", client.CreateWalletRequest{CustomerID: "bank", AssetID: "coin"})
		if err != nil {
			t.Fatal(err)
		}
		wallets = append(wallets, wallet.ID)
	}
	issue := []client.Operation{{Type: client.OperationIssue, To: wallets[0], Amount: "10"}}
	transfer := []client.Operation{{Type: client.OperationTransfer, From: wallets[0], To: wallets[1], Amount: "11"}}
	txIDs := map[string]string{}
	for _, step := range []struct {
		ref        string
		operations []client.Operation
		want       AttemptResult
	}{
		{"r1", issue, AttemptResult{Outcome: OutcomeApplied, Status: 201, TxStatus: "completed"}},
		{"r1", issue, AttemptResult{Outcome: OutcomeApplied, Status: 409, Code: "DuplicateReferenceId", TxStatus: "completed"}},
		{"r2", transfer, AttemptResult{Outcome: OutcomeFailed, Status: 422, Code: "InsufficientFunds", TxStatus: "failed"}},
		{"r2", transfer, AttemptResult{Outcome: OutcomeFailed, Status: 409, Code: "DuplicateReferenceId", TxStatus: "failed"}},
		{"r1", transfer, AttemptResult{Outcome: OutcomeRejected, Status: 409, Code: "ReferenceIdMismatch"}},
	} {
		got := c.Transact(ctx, server.URL, "p", step.ref, step.operations)
		// The answer names its transaction, the same one on a retry.
		if (got.TxID != "") != (step.want.TxStatus != "") || got.TxID != "" && got.TxCreatedAt == 0 ||
			txIDs[step.ref] != "" && got.TxID != "" && got.TxID != txIDs[step.ref] {
			t.Errorf("%s: transaction %q created %d (before: %q)", step.ref, got.TxID, got.TxCreatedAt, txIDs[step.ref])
		}
		if got.TxID != "" {
			txIDs[step.ref] = got.TxID
		}
		got.TxID, got.TxCreatedAt = "", 0
		if got != step.want {
			t.Errorf("%s: %+v, want %+v", step.ref, got, step.want)
		}
	}
	transactions, err := c.ListTransactions(ctx, server.URL, "p")
	if err != nil || len(transactions) != 2 {
		t.Fatalf("transactions %+v, %v", transactions, err)
	}
	entries, err := c.ListEntries(ctx, server.URL, "p", wallets[0])
	if err != nil || len(entries) != 1 || entries[0].BalanceAfter != "10" {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	if err := c.Ready(ctx, server.URL); err != nil {
		t.Fatalf("the server is not ready: %v", err)
	}

	down := "http://" + testutil.FreeAddr(t) // nothing listens there
	if got := c.Transact(ctx, down, "p", "r3", issue); got.Outcome != OutcomeUnknown || got.Status != 0 || got.Err == "" {
		t.Fatalf("no listener: %+v", got)
	}
	if _, err := c.Digest(ctx, server.URL); err == nil || errors.Is(err, errNoEndpoint) {
		// The handler without an operator answers 503, not 404: the route exists.
		t.Fatalf("digest without an operator: %v", err)
	}
}
