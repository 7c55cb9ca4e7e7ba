package ledger

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// batchItems is a batch that exercises every kind of per-item answer: success, a transaction
// that depends on an earlier item (order), a failed one (insufficient funds, recorded), a
// duplicate and a mismatch of a reference used earlier in the same batch, a wallet not found,
// an invalid item, a hold, and a reference used before the batch.
func batchItems() []Transact {
	item := func(ref string, ops ...Operation) Transact {
		return Transact{ProjectID: "p1", IDPrefix: "t", ReferenceID: ref, Operations: ops}
	}
	return []Transact{
		item("b1", issue("W1", 10)),
		item("b2", transfer("W1", "W2", 7)), // needs b1
		item("b3", transfer("W1", "W2", 7)), // 3 left: insufficient funds
		item("b1", issue("W1", 10)),         // duplicate of b1
		item("b2", transfer("W1", "W2", 1)), // b2 with other operations: mismatch
		item("b4", transfer("W1", "nope", 1)),
		item("b5", Operation{Type: OperationIssue, To: "W1"}), // zero amount: invalid
		item("b6", Operation{Type: OperationHold, From: "W2", Amount: amt(2), ExpiresAt: 1_800_000_000_000}),
		item("before", issue("W2", 5)), // used before the batch, with the same operations
		item("b7", transfer("W2", "W1", 5), redeem("W1", 1)),
	}
}

// TestTransactBatchEqualsTransactsOneByOne applies the same transactions as one TransactBatch
// and as Transacts of their own in a log entry of the same time: the per-item results and the
// stored state (its digest) must be the same.
func TestTransactBatchEqualsTransactsOneByOne(t *testing.T) {
	const batchTimeMs = 1_700_000_100_000
	items := batchItems()
	run := func(asBatch bool) ([]*Result, [32]byte) {
		tl := newTestLedger(t)
		tl.setup()
		tl.ok(tx("before", issue("W2", 5)))
		tl.index++
		var results []*Result
		if asBatch {
			out := tl.ledger.ApplyBatch(tl.index, batchTimeMs, [][]byte{fsm.EncodeCommand(&TransactBatch{ProjectID: "p1", Items: items})})
			r := out[0].(*fsm.Result)
			if r.Err != nil {
				t.Fatalf("batch rejected: %v", r.Err)
			}
			value := r.Value.(*TransactBatchResult)
			if len(value.Items) != len(items) {
				t.Fatalf("%d results for %d items", len(value.Items), len(items))
			}
			for i := range value.Items {
				results = append(results, flatten(value.ItemResult(i)))
			}
		} else {
			raw := make([][]byte, len(items))
			for i := range items {
				raw[i] = fsm.EncodeCommand(&items[i])
			}
			for _, r := range tl.ledger.ApplyBatch(tl.index, batchTimeMs, raw) {
				results = append(results, flatten(r.(*fsm.Result)))
			}
		}
		tl.checkInvariants()
		return results, tl.digest()
	}
	batched, batchedDigest := run(true)
	single, singleDigest := run(false)
	if batchedDigest != singleDigest {
		t.Errorf("digest of the batch %x, of the transactions one by one %x", batchedDigest, singleDigest)
	}
	wantCodes := []ErrorCode{"", "", CodeInsufficientFunds, CodeDuplicateReferenceID, CodeReferenceIDMismatch,
		CodeWalletNotFound, fsm.CodeInvalidArgument, "", CodeDuplicateReferenceID, ""}
	for i := range items {
		if !reflect.DeepEqual(batched[i], single[i]) {
			t.Errorf("item %d: batched %+v (err %v), one by one %+v (err %v)", i, batched[i], batched[i].Err, single[i], single[i].Err)
		}
		var code ErrorCode
		if batched[i].Err != nil {
			code = batched[i].Err.Code
		}
		if code != wantCodes[i] {
			t.Errorf("item %d: code %q, want %q", i, code, wantCodes[i])
		}
	}
	if batched[1].Transaction == nil || batched[1].Transaction.Status != TransactionCompleted {
		t.Errorf("item 1 (needs item 0's issue) did not complete: %+v", batched[1].Transaction)
	}
	if batched[3].Transaction == nil || batched[3].Transaction.ID != batched[0].Transaction.ID {
		t.Errorf("the duplicate of item 0 does not answer item 0's transaction")
	}
}

// TestTransactBatchRejectsAsAWhole: an unknown project and an empty or oversized batch apply
// nothing and answer one rejection for the batch.
func TestTransactBatchRejectsAsAWhole(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	before := tl.digest()
	one := Transact{IDPrefix: "t", ReferenceID: "r", Operations: []Operation{issue("W1", 1)}}
	tooMany := make([]Transact, TransactBatchItemsMaxCount+1)
	for i := range tooMany {
		tooMany[i] = one
	}
	for _, c := range []struct {
		name  string
		batch *TransactBatch
		code  ErrorCode
	}{
		{"unknown project", &TransactBatch{ProjectID: "nope", Items: []Transact{one}}, CodeProjectNotFound},
		{"empty", &TransactBatch{ProjectID: "p1"}, fsm.CodeInvalidArgument},
		{"too many", &TransactBatch{ProjectID: "p1", Items: tooMany}, fsm.CodeInvalidArgument},
	} {
		r := tl.applyTyped(c.batch)
		if r.Err == nil || r.Err.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, r.Err, c.code)
		}
	}
	if tl.digest() != before {
		t.Error("a rejected batch changed the state")
	}
}

// TestTransactBatchResultCodec round-trips a batch's value through the result codec (the trip
// from a shard's leader to a forwarding node).
func TestTransactBatchResultCodec(t *testing.T) {
	tl := newTestLedger(t)
	tl.setup()
	reg := fsm.NewRegistry()
	Register(reg)
	tl.index++
	out := tl.ledger.ApplyBatch(tl.index, tl.nowMs+1000, [][]byte{fsm.EncodeCommand(&TransactBatch{ProjectID: "p1", Items: batchItems()})})
	encoded, err := reg.EncodeResult(out[0])
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := reg.DecodeResult(encoded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(decoded, out[0]) {
		t.Errorf("decoded %+v, want %+v", decoded, out[0])
	}
}
