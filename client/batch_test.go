package client_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// CreateTransactionBatch against the real handler: typed results in request order, each what
// CreateTransaction would return; a resent batch changes nothing and answers the same.
func TestCreateTransactionBatch(t *testing.T) {
	baseURL, backend := startServer(t, nil)
	c := newClient(t, baseURL)
	ctx := testutil.Context(t, callLimit)
	f := newFixture(t, ctx, c)
	w, s := f.wallet.ID, f.system.ID
	one := func(ref string, ops ...client.Operation) client.TransactionRequest {
		return client.TransactionRequest{ReferenceID: ref, Operations: ops}
	}
	batch := []client.TransactionRequest{
		one("b1", client.Operation{Type: client.OperationIssue, To: w, Amount: client.AmountFromUint64(10)}),
		one("b2", client.Operation{Type: client.OperationTransfer, From: w, To: s, Amount: client.AmountFromUint64(7)}),
		one("b3", client.Operation{Type: client.OperationTransfer, From: w, To: s, Amount: client.AmountFromUint64(7)}),
		one("b2", client.Operation{Type: client.OperationTransfer, From: w, To: s, Amount: client.AmountFromUint64(1)}),
	}
	check := func(results []client.TransactionBatchResult) {
		t.Helper()
		if len(results) != len(batch) {
			t.Fatalf("%d results for %d transactions", len(results), len(batch))
		}
		for i, r := range results[:2] {
			if r.Err != nil || r.Transaction == nil || r.Transaction.Status != client.TransactionCompleted || r.Transaction.ReferenceID != batch[i].ReferenceID {
				t.Errorf("result %d: %+v", i, r)
			}
		}
		var apiErr *client.Error
		if r := results[2]; !errors.As(r.Err, &apiErr) || apiErr.Code != client.CodeInsufficientFunds || r.Transaction == nil || r.Transaction.Status != client.TransactionFailed {
			t.Errorf("result 2: %+v, want the failed transaction with InsufficientFunds", r)
		}
		if r := results[3]; !errors.As(r.Err, &apiErr) || apiErr.Code != client.CodeReferenceIDMismatch || r.Transaction != nil || r.Status != http.StatusConflict {
			t.Errorf("result 3: %+v, want ReferenceIdMismatch", r)
		}
	}
	first := must[[]client.TransactionBatchResult](t, "batch")(c.CreateTransactionBatch(ctx, f.projectID, batch))
	check(first)
	again := must[[]client.TransactionBatchResult](t, "batch again")(c.CreateTransactionBatch(ctx, f.projectID, batch))
	check(again)
	if again[0].Transaction.ID != first[0].Transaction.ID || again[2].Transaction.ID != first[2].Transaction.ID {
		t.Errorf("the resent batch answered other transactions")
	}
	if got := must[*client.Wallet](t, "get wallet")(c.GetWallet(ctx, f.projectID, w)); got.Balance != "3" {
		t.Errorf("balance %s, want 3", got.Balance)
	}
	proposals := backend.Proposals()
	if _, err := c.CreateTransactionBatch(ctx, f.projectID, nil); err == nil {
		t.Error("an empty batch was sent")
	}
	bad := []client.TransactionRequest{batch[0], one("x", client.Operation{Type: client.OperationIssue, To: w, Amount: "1.5"})}
	if _, err := c.CreateTransactionBatch(ctx, f.projectID, bad); err == nil {
		t.Error("a malformed amount was sent")
	}
	if backend.Proposals() != proposals {
		t.Error("refused batches reached the ledger")
	}
}
