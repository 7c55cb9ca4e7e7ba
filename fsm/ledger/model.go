package ledger

import "github.com/gigaledger/gigaledger/fsm"

// The accounting core's model. It carries no API vocabulary: each API family renders it in its
// own views (httpapi/cloudwallet). Times are Unix milliseconds stamped by the leader on the batch
// that made the change.

// Amount is the kernel's 128-bit amount of an asset's smallest parts.
type Amount = fsm.Amount

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
	// OperationHold reserves Amount of From's available balance under a hold (holds.go): the
	// balance stays, the available part shrinks until the hold is captured, released or
	// expires.
	OperationHold
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

// TransactionStatus is a transaction's state: final, but for a cross-shard transaction that
// its coordinator has not decided yet (pending).
type TransactionStatus uint8

// Transaction states; the zero value is invalid. Append only: the values are stored.
const (
	TransactionCompleted TransactionStatus = iota + 1
	TransactionFailed
	TransactionPending
)

// Project groups customers, assets and wallets; transactions never cross projects.
type Project struct {
	ID        string
	Name      string
	CreatedAt int64
	Assets    []Asset
}

// Asset is a kind of value. Fractions is the number of smallest accountable parts in one unit;
// every amount of this asset is a whole number of those parts. Supply is issued − redeemed, and
// always equals the sum of the balances of the asset's wallets.
type Asset struct {
	ProjectID string
	ID        string
	Name      string
	Code      string
	Fractions uint64
	Used      bool
	Supply    Amount
	CreatedAt int64
	// SupplyCarry is set only by a cluster's reads, never stored: how many times the supply
	// summed over the shards passed 2^128−1 (Supply then holds the rest). Each shard keeps its
	// own wallets' part of the supply, and each part (and every balance) is at most 2^128−1,
	// but an asset whose wallets span shards may hold more in total.
	SupplyCarry uint64
}

// Customer is the integrator's record of one of their users; it owns wallets.
type Customer struct {
	ProjectID   string
	ID          string
	Name        string
	Description string
	Status      CustomerStatus
	CreatedAt   int64
	UpdatedAt   int64
}

// Wallet holds a balance of one asset for a customer, or for the project itself (a system
// wallet, CustomerID empty). Available = Balance − Held never goes below zero. EntryCount is the
// number of entries posted so far and the sequence of the next one.
type Wallet struct {
	ID          string
	ProjectID   string
	CustomerID  string
	AssetID     string
	Name        string
	Description string
	Status      WalletStatus
	Balance     Amount
	Held        Amount
	EntryCount  uint64
	CreatedAt   int64
	UpdatedAt   int64
	// NewestEntryIndex is the log index of the batch that appended the wallet's newest entry (0:
	// none appended; entries.go). Stored, never sent between nodes.
	NewestEntryIndex uint64

	dirty bool // apply only: changed in the batch being applied, not yet written
	// fullChange (apply only): the batch changed more than what its entries decide
	// (putWallet), so the record is written even within a wallet epoch.
	fullChange bool
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

// Operation is one step of a transaction. Transfer uses From and To, Issue only To, Redeem and
// Hold only From. A hold may expire at ExpiresAt (batch time, Unix ms; 0 = never); its ID is
// HoldID(transaction ID, operation index).
type Operation struct {
	Type      OperationType
	From      string
	To        string
	Amount    Amount
	ExpiresAt int64
}

// Transaction is an ordered set of operations applied all or nothing. A failed transaction is
// kept, with the index of the operation that failed and why, and holds its reference ID.
type Transaction struct {
	ID                   string
	ProjectID            string
	ReferenceID          string
	Status               TransactionStatus
	Operations           []Operation
	FailedOperationIndex int
	FailureReason        fsm.ErrorCode
	FailureMessage       string
	CreatedAt            int64
	Sequence             uint64
}

// Entry is one posting to one wallet's ledger: never edited, the audit trail of its balance.
type Entry struct {
	WalletID       string
	Sequence       uint64
	TransactionID  string
	OperationIndex int
	Type           EntryType
	Amount         Amount
	BalanceAfter   Amount
	CreatedAt      int64
}

// HoldStatus is a hold's state: active until it resolves, exactly once, as captured, released
// or expired.
type HoldStatus uint8

// Hold states; the zero value is invalid. Append only: the values are stored.
const (
	HoldActive HoldStatus = iota + 1
	HoldCaptured
	HoldReleased
	HoldExpired
)

// Hold reserves part of a wallet's balance (a two-phase transfer's first phase). While it is
// active its Amount counts in the wallet's Held; capture moves all or part of it to another
// wallet in a transaction (the rest is released), release and expiry return it to Available.
type Hold struct {
	ID                   string
	ProjectID            string
	WalletID             string
	Amount               Amount
	Status               HoldStatus
	ExpiresAt            int64  // batch time (Unix ms) at which it expires; 0 = never
	TransactionID        string // the transaction that placed it
	CapturedAmount       Amount
	CaptureTransactionID string
	CreatedAt            int64
	ResolvedAt           int64
	// CrossTransactionID is the cross-shard transaction that captures this active hold, from
	// its participant's prepare to its finish ("" for none): meanwhile the hold can be neither
	// released nor captured by anyone else, and it does not expire (crosscapture.go).
	CrossTransactionID string
}
