package fsm

import "encoding/json"

// The ledger model. JSON tags are the Cloud Wallet API's vocabulary (docs/cloudwallet-api.md);
// httpapi serves these values as they are. Times are Unix milliseconds stamped by the leader on
// the batch that made the change.

// CustomerStatus is a customer's state.
type CustomerStatus uint8

// Customer states; the zero value is invalid.
const (
	CustomerActive CustomerStatus = iota + 1
	CustomerSuspended
)

// WalletStatus is a wallet's state: open ⇄ suspended, open or suspended → closed (final).
type WalletStatus uint8

// Wallet states; the zero value is invalid.
const (
	WalletOpen WalletStatus = iota + 1
	WalletSuspendedStatus
	WalletClosed
)

// OperationType is the kind of one operation inside a transaction.
type OperationType uint8

// Operation types; the zero value is invalid. Append only: the values are in the log.
const (
	OperationTransfer OperationType = iota + 1
	OperationIssue
	OperationRedeem
)

// EntryType is the kind of one posting to a wallet's ledger.
type EntryType uint8

// Entry types; the zero value is invalid. Append only: the values are stored.
const (
	EntryIssue EntryType = iota + 1
	EntryRedeem
	EntryDebit
	EntryCredit
)

// TransactionStatus is a transaction's final state.
type TransactionStatus uint8

// Transaction states; the zero value is invalid.
const (
	TransactionCompleted TransactionStatus = iota + 1
	TransactionFailed
)

// Project groups customers, assets and wallets; transactions never cross projects.
type Project struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	CreatedAt int64   `json:"createdAt"`
	Assets    []Asset `json:"assets,omitempty"`
}

// Asset is a kind of value. Fractions is the number of smallest accountable parts in one unit;
// every amount of this asset is a whole number of those parts. Supply is issued − redeemed, and
// always equals the sum of the balances of the asset's wallets.
type Asset struct {
	ProjectID string `json:"projectId"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Code      string `json:"code"`
	Fractions uint64 `json:"fractions"`
	Used      bool   `json:"used"`
	Supply    Amount `json:"supply"`
	CreatedAt int64  `json:"createdAt"`
}

// Customer is the integrator's record of one of their users; it owns wallets.
type Customer struct {
	ProjectID   string         `json:"projectId"`
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Status      CustomerStatus `json:"status"`
	CreatedAt   int64          `json:"createdAt"`
	UpdatedAt   int64          `json:"updatedAt"`
}

// Wallet holds a balance of one asset for a customer, or for the project itself (a system
// wallet, CustomerID empty). Available = Balance − Held never goes below zero. EntryCount is the
// number of entries posted so far and the sequence of the next one.
type Wallet struct {
	ID          string       `json:"id"`
	ProjectID   string       `json:"projectId"`
	CustomerID  string       `json:"customerId,omitempty"`
	AssetID     string       `json:"assetId"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Status      WalletStatus `json:"status"`
	Balance     Amount       `json:"balance"`
	Held        Amount       `json:"held"`
	EntryCount  uint64       `json:"-"`
	CreatedAt   int64        `json:"createdAt"`
	UpdatedAt   int64        `json:"updatedAt"`

	dirty bool // apply only: changed in the batch being applied, not yet written
}

// System reports whether the wallet belongs to the project rather than to a customer.
func (w *Wallet) System() bool { return w.CustomerID == "" }

// Available is the part of the balance not reserved by holds. It panics on held > balance,
// which apply never stores (every debit checks the available balance, and apply asserts
// held ≤ balance after each transaction): only a corrupt store gets there.
func (w *Wallet) Available() Amount {
	a, err := w.Balance.Sub(w.Held)
	if err != nil {
		panic("fsm: wallet " + w.ID + " holds more than its balance")
	}
	return a
}

// Operation is one step of a transaction. Transfer uses From and To, Issue only To, Redeem only
// From.
type Operation struct {
	Type   OperationType `json:"type"`
	From   string        `json:"from,omitempty"`
	To     string        `json:"to,omitempty"`
	Amount Amount        `json:"amount"`
}

// Transaction is an ordered set of operations applied all or nothing. A failed transaction is
// kept, with the index of the operation that failed and why, and holds its reference ID.
type Transaction struct {
	ID                   string            `json:"id"`
	ProjectID            string            `json:"projectId"`
	ReferenceID          string            `json:"referenceId"`
	Status               TransactionStatus `json:"status"`
	Operations           []Operation       `json:"operations"`
	FailedOperationIndex int               `json:"failedOperationIndex"`
	FailureReason        ErrorCode         `json:"failureReason,omitempty"`
	FailureMessage       string            `json:"failureMessage,omitempty"`
	CreatedAt            int64             `json:"createdAt"`
	Sequence             uint64            `json:"-"`
}

// Entry is one posting to one wallet's ledger: never edited, the audit trail of its balance.
type Entry struct {
	WalletID       string    `json:"walletId"`
	Sequence       uint64    `json:"-"`
	TransactionID  string    `json:"transactionId"`
	OperationIndex int       `json:"operationIndex"`
	Type           EntryType `json:"type"`
	Amount         Amount    `json:"amount"`
	BalanceAfter   Amount    `json:"balanceAfter"`
	CreatedAt      int64     `json:"createdAt"`
}

// MarshalJSON adds the derived fields the API shows: system and available. A value receiver,
// so wallets marshal the same inside slices, maps and interfaces.
func (w Wallet) MarshalJSON() ([]byte, error) {
	type plain Wallet
	return json.Marshal(struct {
		plain
		System    bool   `json:"system"`
		Available Amount `json:"available"`
	}{plain(w), w.System(), w.Available()})
}

// MarshalJSON leaves out failedOperationIndex unless the transaction failed.
func (t Transaction) MarshalJSON() ([]byte, error) {
	type plain Transaction
	if t.Status == TransactionFailed {
		return json.Marshal(plain(t))
	}
	return json.Marshal(struct {
		plain
		FailedOperationIndex *int `json:"failedOperationIndex,omitempty"`
	}{plain: plain(t)})
}

// UnmarshalJSON reads what MarshalJSON wrote; a missing failedOperationIndex is -1.
func (t *Transaction) UnmarshalJSON(data []byte) error {
	type plain Transaction
	p := plain{FailedOperationIndex: -1}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*t = Transaction(p)
	return nil
}
