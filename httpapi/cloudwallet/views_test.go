package cloudwallet

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// TestShapes pins what the contract shows: failedOperationIndex only on failed transactions,
// system and available on wallets, enum names, holdId on hold operations.
func TestShapes(t *testing.T) {
	completed := TransactionOf(&ledger.Transaction{ID: "t0001x", Status: ledger.TransactionCompleted, FailedOperationIndex: -1,
		Operations: []ledger.Operation{{Type: ledger.OperationHold, From: "w", Amount: fsm.AmountFromUint64(5), ExpiresAt: 9}}})
	b, _ := json.Marshal(completed)
	for _, want := range []string{`"status":"completed"`, `"type":"hold"`, `"holdId":"h0001x.0"`, `"expiresAt":9`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("completed transaction %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "failedOperationIndex") {
		t.Errorf("completed transaction shows failedOperationIndex: %s", b)
	}
	failed := TransactionOf(&ledger.Transaction{ID: "t2", Status: ledger.TransactionFailed, FailedOperationIndex: 0,
		FailureReason: ledger.CodeInsufficientFunds})
	b, _ = json.Marshal(failed)
	if !strings.Contains(string(b), `"failedOperationIndex":0`) || !strings.Contains(string(b), `"failureReason":"InsufficientFunds"`) {
		t.Errorf("failed transaction: %s", b)
	}
	w := WalletOf(&ledger.Wallet{ID: "w", Balance: fsm.AmountFromUint64(10), Held: fsm.AmountFromUint64(3), Status: ledger.WalletOpen})
	b, _ = json.Marshal(w)
	for _, want := range []string{`"available":7`, `"system":true`, `"status":"open"`, `"held":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("wallet %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "customerId") {
		t.Errorf("a system wallet shows customerId: %s", b)
	}
	if b, _ = json.Marshal(List([]ledger.Entry(nil), EntryOf)); string(b) != "[]" {
		t.Errorf("an empty list is %s, want []", b)
	}
}
