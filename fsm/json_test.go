package fsm

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONShapes(t *testing.T) {
	completed := Transaction{ID: "t1", Status: TransactionCompleted, FailedOperationIndex: -1}
	b, _ := json.Marshal(completed)
	if strings.Contains(string(b), "failedOperationIndex") {
		t.Fatalf("completed transaction shows failedOperationIndex: %s", b)
	}
	failed := Transaction{ID: "t2", Status: TransactionFailed, FailedOperationIndex: 0, FailureReason: CodeInsufficientFunds}
	b, _ = json.Marshal([]Transaction{failed})
	if !strings.Contains(string(b), `"failedOperationIndex":0`) || !strings.Contains(string(b), `"status":"failed"`) {
		t.Fatalf("failed transaction: %s", b)
	}
	var back Transaction
	raw, _ := json.Marshal(completed)
	if err := json.Unmarshal(raw, &back); err != nil || back.FailedOperationIndex != -1 || back.Status != TransactionCompleted {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	w := Wallet{ID: "w", Balance: AmountFromUint64(10), Held: AmountFromUint64(3), Status: WalletOpen}
	b, _ = json.Marshal(map[string]any{"w": w})
	if !strings.Contains(string(b), `"available":7`) || !strings.Contains(string(b), `"system":true`) {
		t.Fatalf("wallet: %s", b)
	}
}
