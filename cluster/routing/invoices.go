package routing

import (
	"errors"
	"sync"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// An invoice lives in its account's shard, but the public routes name it by its address alone,
// which says nothing of the account. GetInvoice without a foreign ID therefore asks every shard
// at once (reads only: no write to any central index on the hot path of creating an invoice)
// and remembers where it found the address: payers' browsers poll the same invoice, and an
// invoice never moves (the shard count is fixed for the cluster's life).

// invoiceShardsMax bounds the remembered invoice locations; past it the memory starts over.
const invoiceShardsMax = 1 << 16

// invoiceShards remembers which shard holds an invoice, by project and address.
type invoiceShards struct {
	mu     sync.Mutex
	shards map[string]int
}

func invoiceShardKey(projectID, address string) string { return projectID + "\x00" + address }

func (c *invoiceShards) get(projectID, address string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	shardID, ok := c.shards[invoiceShardKey(projectID, address)]
	return shardID, ok
}

func (c *invoiceShards) put(projectID, address string, shardID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shards == nil || len(c.shards) >= invoiceShardsMax {
		c.shards = make(map[string]int)
	}
	c.shards[invoiceShardKey(projectID, address)] = shardID
}

// GetInvoice reads an invoice by its address: from the account's shard when foreignID is set
// (an invoice of another account is not found), else from whichever shard holds it.
func (rd *reader) GetInvoice(projectID, foreignID, address string) (*gigawallet.Invoice, error) {
	q := shardQuery{Kind: queryGetInvoice, ProjectID: projectID, CustomerID: foreignID, ID: address}
	unmet := &fsm.Error{Code: gigawallet.CodeInvoiceNotFound, Message: "invoice not found: " + address}
	if foreignID != "" {
		a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, unmet)
		if err != nil {
			return nil, err
		}
		return a.Invoice, nil
	}
	if shardID, ok := rd.router.invoiceShards.get(projectID, address); ok {
		if a, err := rd.ask(shardID, q); err == nil {
			return a.Invoice, nil
		} else if !isNotFound(err) {
			return nil, err
		}
	}
	count := rd.router.shards.ShardCount()
	type found struct {
		invoice *gigawallet.Invoice
		err     error
	}
	answers := make([]found, count)
	var wg sync.WaitGroup
	for shardID := range count {
		wg.Go(func() {
			// Each shard is asked through a reader of its own: a reader serves one goroutine.
			a, err := rd.router.newReader(rd.ctx).ask(shardID, q)
			if err == nil {
				answers[shardID].invoice = a.Invoice
			} else if !isNotFound(err) {
				answers[shardID].err = err
			}
		})
	}
	wg.Wait()
	var failure error
	for shardID, answer := range answers {
		if answer.invoice != nil {
			rd.router.invoiceShards.put(projectID, address, shardID)
			return answer.invoice, nil
		}
		if failure == nil {
			failure = answer.err
		}
	}
	if failure != nil {
		return nil, failure // a shard that could not answer may hold it
	}
	return nil, unmet
}

// isNotFound reports whether a shard's answer says the invoice (or its project) is not there.
func isNotFound(err error) bool {
	var rejection *fsm.Error
	return errors.As(err, &rejection) &&
		(rejection.Code == gigawallet.CodeInvoiceNotFound || rejection.Code == ledger.CodeProjectNotFound)
}

// ListInvoices reads a page of an account's invoices from its shard: key index ≥ cursor,
// oldest first, at most limit.
func (rd *reader) ListInvoices(projectID, foreignID string, cursor uint32, limit int) ([]gigawallet.Invoice, error) {
	q := shardQuery{Kind: queryListInvoices, ProjectID: projectID, CustomerID: foreignID,
		Page: ledger.PageRequest{Page: int(cursor), PageSize: limit}}
	a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, nil)
	if err != nil {
		return nil, err
	}
	return a.Invoices, nil
}

// SpendableUTXOs reads an account's outputs a payout may spend, from its shard.
func (rd *reader) SpendableUTXOs(projectID, foreignID string, limit int) ([]gigawallet.UTXO, error) {
	q := shardQuery{Kind: queryListSpendable, ProjectID: projectID, CustomerID: foreignID, Page: ledger.PageRequest{PageSize: limit}}
	a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, nil)
	if err != nil {
		return nil, err
	}
	return a.UTXOs, nil
}

// GetPayment reads a payout of an account, from its shard.
func (rd *reader) GetPayment(projectID, foreignID string, txid gigawallet.Hash) (*gigawallet.Payment, error) {
	q := shardQuery{Kind: queryGetPayment, ProjectID: projectID, CustomerID: foreignID, ID: txid.String()}
	unmet := &fsm.Error{Code: gigawallet.CodePaymentNotFound, Message: "payout not found: " + txid.String()}
	a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, unmet)
	if err != nil {
		return nil, err
	}
	return a.Payment, nil
}

// GetPayFrom reads the unreleased payfrom of an invoice from the shard of the paying account.
func (rd *reader) GetPayFrom(projectID, foreignID, invoiceID string) (*gigawallet.Payment, error) {
	q := shardQuery{Kind: queryGetPayFrom, ProjectID: projectID, CustomerID: foreignID, ID: invoiceID}
	unmet := &fsm.Error{Code: gigawallet.CodePaymentNotFound, Message: "no payfrom of invoice " + invoiceID}
	a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, unmet)
	if err != nil {
		return nil, err
	}
	return a.Payment, nil
}

// ListPayments reads a page of an account's payouts from its shard.
func (rd *reader) ListPayments(projectID, foreignID string, cursor uint64, limit int) ([]gigawallet.Payment, error) {
	if cursor > 1<<62 {
		return nil, nil
	}
	q := shardQuery{Kind: queryListPayments, ProjectID: projectID, CustomerID: foreignID,
		Page: ledger.PageRequest{Page: int(cursor), PageSize: limit}}
	a, err := rd.askData(rd.router.customerShard(projectID, foreignID), q, nil)
	if err != nil {
		return nil, err
	}
	return a.Payments, nil
}
