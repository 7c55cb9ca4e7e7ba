package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// shardCommandMaxBytes is shard.DefaultBatchMaxBytes (this package does not import the
// consensus layer): the largest command a shard accepts.
const shardCommandMaxBytes = 1 << 20

// The largest batches the API accepts, by body size and by count, encode into TransactBatch
// commands that a shard accepts, even all on one shard: the limits need no raising.
func TestLargestBatchesFitOneShardCommand(t *testing.T) {
	wallet := func(i int) string {
		return fmt.Sprintf("w%04x%s", i%4096, strings.Repeat("a", fsm.GeneratedIDMaxLength-5))
	}
	var bodies [][]byte
	// Long: every field at its longest, 100 operations per transaction, as many as 1 MiB holds.
	var long transactionBatchRequest
	for i := 0; ; i++ {
		item := transactionRequest{ReferenceID: fmt.Sprintf("%0*d", fsm.ReferenceIDMaxLength, i)}
		for k := range operationsPerTransactionMaxCount {
			item.Operations = append(item.Operations, operationRequest{Type: "transfer", From: wallet(k), To: wallet(k + 1),
				Amount: json.RawMessage("340282366920938463463374607431768211455")})
		}
		long.Transactions = append(long.Transactions, item)
		body, _ := json.Marshal(long)
		if len(body) > requestBodyMaxBytes {
			long.Transactions = long.Transactions[:len(long.Transactions)-1]
			body, _ = json.Marshal(long)
			bodies = append(bodies, body)
			break
		}
	}
	// Many: the most transactions, each as short as the API allows.
	var many transactionBatchRequest
	for i := range transactionsPerBatchMaxCount {
		many.Transactions = append(many.Transactions, transactionRequest{ReferenceID: fmt.Sprint(i),
			Operations: []operationRequest{{Type: "issue", To: "w", Amount: json.RawMessage("1")}}})
	}
	body, _ := json.Marshal(many)
	bodies = append(bodies, body)
	for _, body := range bodies {
		inputs, apiErr := decodeTransactionBatch(bytes.NewReader(body))
		if apiErr != nil {
			t.Fatalf("a body of %d bytes refused: %v", len(body), apiErr)
		}
		command := &ledger.TransactBatch{ProjectID: strings.Repeat("p", fsm.IDMaxLength)}
		for _, input := range inputs {
			command.Items = append(command.Items, transactOf(command.ProjectID, input))
		}
		encoded := fsm.EncodeEnvelope(fsm.Envelope{Command: command})
		if len(encoded) >= shardCommandMaxBytes {
			t.Errorf("%d transactions in %d bytes of JSON encode into a command of %d bytes", len(inputs), len(body), len(encoded))
		}
		t.Logf("%d transactions: %d bytes of JSON, %d bytes of command", len(inputs), len(body), len(encoded))
	}
}
