// Package cloudwallet holds the Cloud Wallet API's views of the accounting core: the JSON shapes
// of docs/cloudwallet-api.md, built from fsm/ledger's records. The ledger carries no API
// vocabulary; this package is the only place that names its fields in JSON.
package cloudwallet

import (
	"math/big"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Amount is a whole number of an asset's smallest parts, written as a JSON number literal of
// any size (fsm.Amount's JSON form).
type Amount = fsm.Amount

// Project is a project; Assets is shown on GET one (always) and omitted elsewhere.
type Project struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	CreatedAt int64   `json:"createdAt"`
	Assets    []Asset `json:"assets,omitempty"`
}

// Asset is an asset with its supply.
type Asset struct {
	ProjectID string `json:"projectId"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Code      string `json:"code"`
	Fractions uint64 `json:"fractions"`
	Used      bool   `json:"used"`
	Supply    Supply `json:"supply"`
	CreatedAt int64  `json:"createdAt"`
}

// Supply is an asset's supply summed over the shards: an Amount, plus (Carry) how many times
// the sum passed 2^128−1, which only an asset whose wallets span shards can do (each shard's
// part is at most 2^128−1). It is written as one exact JSON integer.
type Supply struct {
	Amount
	Carry uint64
}

// MarshalJSON writes the supply's digits, past 2^128−1 too.
func (s Supply) MarshalJSON() ([]byte, error) {
	if s.Carry == 0 {
		return s.Amount.MarshalJSON()
	}
	total := new(big.Int).Lsh(new(big.Int).SetUint64(s.Carry), 128)
	return []byte(total.Add(total, s.Amount.Big()).String()), nil
}

// Customer is a customer.
type Customer struct {
	ProjectID   string `json:"projectId"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	CreatedAt   int64  `json:"createdAt"`
	UpdatedAt   int64  `json:"updatedAt"`
}

// Wallet is a wallet with its derived fields, system and available.
type Wallet struct {
	ID          string `json:"id"`
	ProjectID   string `json:"projectId"`
	CustomerID  string `json:"customerId,omitempty"`
	AssetID     string `json:"assetId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Balance     Amount `json:"balance"`
	Held        Amount `json:"held"`
	CreatedAt   int64  `json:"createdAt"`
	UpdatedAt   int64  `json:"updatedAt"`
	System      bool   `json:"system"`
	Available   Amount `json:"available"`
}

// Operation is one step of a transaction. A hold shows its ID and, when set, its expiry.
type Operation struct {
	Type      string `json:"type"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Amount    Amount `json:"amount"`
	ExpiresAt int64  `json:"expiresAt,omitempty"`
	HoldID    string `json:"holdId,omitempty"`
}

// Transaction is a transaction; FailedOperationIndex is shown only when it failed.
type Transaction struct {
	ID                   string      `json:"id"`
	ProjectID            string      `json:"projectId"`
	ReferenceID          string      `json:"referenceId"`
	Status               string      `json:"status"`
	Operations           []Operation `json:"operations"`
	FailedOperationIndex *int        `json:"failedOperationIndex,omitempty"`
	FailureReason        string      `json:"failureReason,omitempty"`
	FailureMessage       string      `json:"failureMessage,omitempty"`
	CreatedAt            int64       `json:"createdAt"`
}

// Entry is one posting to a wallet.
type Entry struct {
	WalletID       string `json:"walletId"`
	TransactionID  string `json:"transactionId"`
	OperationIndex int    `json:"operationIndex"`
	Type           string `json:"type"`
	Amount         Amount `json:"amount"`
	BalanceAfter   Amount `json:"balanceAfter"`
	CreatedAt      int64  `json:"createdAt"`
}

// Hold is a hold on a wallet's funds.
type Hold struct {
	ID                   string `json:"id"`
	ProjectID            string `json:"projectId"`
	WalletID             string `json:"walletId"`
	Amount               Amount `json:"amount"`
	Status               string `json:"status"`
	ExpiresAt            int64  `json:"expiresAt,omitempty"`
	TransactionID        string `json:"transactionId"`
	CapturedAmount       Amount `json:"capturedAmount"`
	CaptureTransactionID string `json:"captureTransactionId,omitempty"`
	CreatedAt            int64  `json:"createdAt"`
	ResolvedAt           int64  `json:"resolvedAt,omitempty"`
}

// HoldResolution is the answer to a capture or a release: the hold, and the capture's
// transaction.
type HoldResolution struct {
	Hold        Hold         `json:"hold"`
	Transaction *Transaction `json:"transaction,omitempty"`
}

// ProjectOf is the view of a project (with the assets it carries).
func ProjectOf(p *ledger.Project) Project {
	v := Project{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt}
	if len(p.Assets) > 0 {
		v.Assets = List(p.Assets, AssetOf)
	}
	return v
}

// AssetOf is the view of an asset.
func AssetOf(a *ledger.Asset) Asset {
	return Asset{ProjectID: a.ProjectID, ID: a.ID, Name: a.Name, Code: a.Code, Fractions: a.Fractions,
		Used: a.Used, Supply: Supply{Amount: a.Supply, Carry: a.SupplyCarry}, CreatedAt: a.CreatedAt}
}

// CustomerOf is the view of a customer.
func CustomerOf(c *ledger.Customer) Customer {
	return Customer{ProjectID: c.ProjectID, ID: c.ID, Name: c.Name, Description: c.Description,
		Status: c.Status.String(), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// WalletOf is the view of a wallet.
func WalletOf(w *ledger.Wallet) Wallet {
	return Wallet{ID: w.ID, ProjectID: w.ProjectID, CustomerID: w.CustomerID, AssetID: w.AssetID,
		Name: w.Name, Description: w.Description, Status: w.Status.String(), Balance: w.Balance,
		Held: w.Held, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, System: w.System(),
		Available: w.Available()}
}

// TransactionOf is the view of a transaction.
func TransactionOf(t *ledger.Transaction) Transaction {
	v := Transaction{ID: t.ID, ProjectID: t.ProjectID, ReferenceID: t.ReferenceID, Status: t.Status.String(),
		Operations: make([]Operation, len(t.Operations)), FailureReason: string(t.FailureReason),
		FailureMessage: t.FailureMessage, CreatedAt: t.CreatedAt}
	for i, op := range t.Operations {
		v.Operations[i] = Operation{Type: op.Type.String(), From: op.From, To: op.To, Amount: op.Amount, ExpiresAt: op.ExpiresAt}
		if op.Type == ledger.OperationHold && t.Status != ledger.TransactionFailed {
			// A failed transaction placed no hold: no ID that GET /holds would not find.
			v.Operations[i].HoldID = ledger.HoldID(t.ID, i)
		}
	}
	if t.Status == ledger.TransactionFailed {
		index := t.FailedOperationIndex
		v.FailedOperationIndex = &index
	}
	return v
}

// EntryOf is the view of an entry.
func EntryOf(e *ledger.Entry) Entry {
	return Entry{WalletID: e.WalletID, TransactionID: e.TransactionID, OperationIndex: e.OperationIndex,
		Type: e.Type.String(), Amount: e.Amount, BalanceAfter: e.BalanceAfter, CreatedAt: e.CreatedAt}
}

// HoldOf is the view of a hold.
func HoldOf(h *ledger.Hold) Hold {
	return Hold{ID: h.ID, ProjectID: h.ProjectID, WalletID: h.WalletID, Amount: h.Amount, Status: h.Status.String(),
		ExpiresAt: h.ExpiresAt, TransactionID: h.TransactionID, CapturedAmount: h.CapturedAmount,
		CaptureTransactionID: h.CaptureTransactionID, CreatedAt: h.CreatedAt, ResolvedAt: h.ResolvedAt}
}

// HoldResolutionOf is the view of a capture's or a release's result.
func HoldResolutionOf(r *ledger.HoldResolution) HoldResolution {
	v := HoldResolution{Hold: HoldOf(r.Hold)}
	if r.Transaction != nil {
		t := TransactionOf(r.Transaction)
		v.Transaction = &t
	}
	return v
}

// List converts a list of records, keeping an empty list a JSON [] rather than null.
func List[R, V any](records []R, view func(*R) V) []V {
	out := make([]V, len(records))
	for i := range records {
		out[i] = view(&records[i])
	}
	return out
}
