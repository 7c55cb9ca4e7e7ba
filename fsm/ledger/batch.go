package ledger

import (
	"github.com/gigaledger/gigaledger/fsm"
)

// TransactBatch is one shard's part of a batch of Cloud Wallet transactions (POST
// /projects/{projectId}/transactions/batch): transactions of one project whose wallets all live
// on this shard, applied one after another in order, each atomic on its own with its own
// result, exactly as the same Transacts proposed one by one in one log entry would be. It exists
// so that a batch costs one proposal per shard instead of one per transaction.
type TransactBatch struct {
	ProjectID string
	// Items are the transactions in request order; their ProjectID is the batch's (it is not
	// encoded per item).
	Items []Transact
}

// TransactBatchItemsMaxCount bounds the transactions of one TransactBatch. The API's own limit
// (httpapi, transactionsPerBatchMaxCount) is below it; a command over it applies nothing and
// answers Invalid (the decoder's list bound, fsm.ListMaxCount, is far above it).
const TransactBatchItemsMaxCount = 8192

// TransactBatchResult is the value of a TransactBatch: one result per item, in order.
type TransactBatchResult struct {
	Items []TransactBatchItem
}

// TransactBatchItem is one transaction's answer in a batch: what a Transact of its own would
// have answered (a rejection, the transaction, or both).
type TransactBatchItem struct {
	Err         *fsm.Error
	Transaction *Transaction
}

// OpTransactBatch applies a TransactBatch (batch.go).
const OpTransactBatch fsm.Op = 28

func (*TransactBatch) Op() fsm.Op { return OpTransactBatch }

func (c *TransactBatch) project() string { return c.ProjectID }

// Route is every wallet every item names: they must live on one shard.
func (c *TransactBatch) Route() fsm.Route {
	var ids []string
	for i := range c.Items {
		ids = append(ids, c.Items[i].Route().IDs...)
	}
	return fsm.Route{ProjectID: c.ProjectID, IDs: ids}
}

func (c *TransactBatch) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.Uvarint(uint64(len(c.Items)))
	for i := range c.Items {
		e.String(c.Items[i].IDPrefix)
		e.String(c.Items[i].ReferenceID)
		encodeOperations(e, c.Items[i].Operations)
	}
}

func decodeTransactBatch(d *fsm.Decoder) fsm.Command {
	c := &TransactBatch{ProjectID: d.String()}
	n := d.Count("batch items")
	c.Items = make([]Transact, 0, min(n, 64))
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Items = append(c.Items, Transact{ProjectID: c.ProjectID, IDPrefix: d.String(), ReferenceID: d.String(),
			Operations: decodeOperations(d)})
	}
	return c
}

// Encode implements fsm.Value.
func (r *TransactBatchResult) Encode(e *fsm.Encoder) {
	e.Uvarint(uint64(len(r.Items)))
	for _, item := range r.Items {
		e.Bool(item.Err != nil)
		if item.Err != nil {
			e.String(string(item.Err.Code))
			e.String(item.Err.Message)
		}
		e.Bool(item.Transaction != nil)
		if item.Transaction != nil {
			item.Transaction.Encode(e)
		}
	}
}

func valueTransactBatch(d *fsm.Decoder) fsm.Value {
	n := d.Count("batch results")
	r := &TransactBatchResult{Items: make([]TransactBatchItem, 0, min(n, 64))}
	for i := 0; i < n && d.Err() == nil; i++ {
		var item TransactBatchItem
		if d.Bool() {
			item.Err = &fsm.Error{Code: fsm.ErrorCode(d.String()), Message: d.String()}
		}
		if d.Bool() {
			item.Transaction = readTransaction(d)
		}
		r.Items = append(r.Items, item)
	}
	return r
}

// ItemResult is item i's answer as the result a Transact of its own would have given.
func (r *TransactBatchResult) ItemResult(i int) *fsm.Result {
	item := r.Items[i]
	result := &fsm.Result{Op: OpTransact, Err: item.Err}
	if item.Transaction != nil {
		result.Value = item.Transaction
	}
	return result
}

// transactBatch applies each item as l.transact would apply a Transact of its own: a rejection
// of one item is that item's result and never stops the others. Items see what earlier items
// wrote (the ledger keeps a batch's writes in memory until EndBatch), so items that touch the
// same wallets apply in order.
func (l *Ledger) transactBatch(c *TransactBatch) *fsm.Result {
	if len(c.Items) == 0 || len(c.Items) > TransactBatchItemsMaxCount {
		return invalid("a transaction batch has 1..%d transactions", TransactBatchItemsMaxCount)
	}
	out := &TransactBatchResult{Items: make([]TransactBatchItem, len(c.Items))}
	for i := range c.Items {
		item := c.Items[i]
		item.ProjectID = c.ProjectID
		r := l.transact(&item)
		out.Items[i].Err = r.Err
		if t, ok := r.Value.(*Transaction); ok {
			out.Items[i].Transaction = t
		}
	}
	return &fsm.Result{Value: out}
}

// batchOps declares TransactBatch, urgent: the router proposes a batch request's waves one
// after the other, each after the last has applied, and a group carries many transactions
// already, so group commit holding it for more commands would only add a wait per wave
// (fsm.OpSpec.Urgent).
func (f *Family) batchOps(spec func(op fsm.Op, name string, example fsm.Command, decode func(d *fsm.Decoder) fsm.Command,
	value func(d *fsm.Decoder) fsm.Value, apply func(l *Ledger, c fsm.Command) *fsm.Result) fsm.OpSpec,
	inProject func(func(l *Ledger, c fsm.Command) *fsm.Result) func(l *Ledger, c fsm.Command) *fsm.Result) []fsm.OpSpec {
	one := fsm.AmountFromUint64(1)
	specs := []fsm.OpSpec{
		spec(OpTransactBatch, "TransactBatch", &TransactBatch{ProjectID: "p", Items: []Transact{
			{ProjectID: "p", IDPrefix: "t0000", ReferenceID: "r1",
				Operations: []Operation{{Type: OperationTransfer, From: "w00000", To: "w00001", Amount: one}}},
			{ProjectID: "p", IDPrefix: "t0000", ReferenceID: "r2",
				Operations: []Operation{{Type: OperationHold, From: "w00000", Amount: one, ExpiresAt: 5}}}}},
			decodeTransactBatch, valueTransactBatch,
			inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.transactBatch(c.(*TransactBatch)) })),
	}
	specs[0].Urgent = true
	return specs
}
