package client

// The API's shapes (docs/cloudwallet-api.md, "Shapes"), with its JSON names. Times are epoch
// milliseconds, as the API writes them.

// Project is a tenant: its assets, customers, wallets and transactions are its own.
type Project struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"createdAt"`
	// Assets is filled by GetProject only.
	Assets []Asset `json:"assets,omitempty"`
}

// Asset is a currency or token of a project.
type Asset struct {
	ID        string `json:"id"`
	ProjectID string `json:"projectId"`
	Name      string `json:"name"`
	Code      string `json:"code"`
	// Fractions is the number of smallest parts per unit; every amount counts those parts.
	Fractions uint64 `json:"fractions"`
	// Used is set once a wallet uses the asset: it can no longer be deleted.
	Used bool `json:"used"`
	// Supply is issued − redeemed: the sum of its wallets' balances over every shard. Each
	// shard's part is at most 2^128−1, so the total of an asset whose wallets span shards may
	// be more: then Valid and Big refuse it, and String still has its exact digits.
	Supply    Amount `json:"supply"`
	CreatedAt int64  `json:"createdAt"`
}

// CustomerStatus says whether a customer's wallets may move money.
type CustomerStatus string

// Customer statuses.
const (
	CustomerActive    CustomerStatus = "active"
	CustomerSuspended CustomerStatus = "suspended"
)

// Customer owns wallets; the API upserts customers by the caller's ID.
type Customer struct {
	ID          string         `json:"id"`
	ProjectID   string         `json:"projectId"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Status      CustomerStatus `json:"status"`
	CreatedAt   int64          `json:"createdAt"`
	UpdatedAt   int64          `json:"updatedAt"`
}

// WalletStatus is a wallet's state; closed is final.
type WalletStatus string

// Wallet statuses.
const (
	WalletOpen      WalletStatus = "open"
	WalletSuspended WalletStatus = "suspended"
	WalletClosed    WalletStatus = "closed"
)

// Wallet holds a balance of one asset for a customer, or for the project itself (System).
type Wallet struct {
	ID        string `json:"id"`
	ProjectID string `json:"projectId"`
	// CustomerID is empty for a system wallet.
	CustomerID  string       `json:"customerId,omitempty"`
	System      bool         `json:"system"`
	AssetID     string       `json:"assetId"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Status      WalletStatus `json:"status"`
	Balance     Amount       `json:"balance"`
	Held        Amount       `json:"held"`
	// Available is Balance − Held: what a debit may take.
	Available Amount `json:"available"`
	CreatedAt int64  `json:"createdAt"`
	UpdatedAt int64  `json:"updatedAt"`
}

// OperationType names what one operation of a transaction does.
type OperationType string

// Operation types.
const (
	OperationIssue    OperationType = "issue"    // create money in To
	OperationRedeem   OperationType = "redeem"   // destroy money in From
	OperationTransfer OperationType = "transfer" // move money from From to To
	OperationHold     OperationType = "hold"     // reserve money in From (see Hold)
)

// Operation is one step of a transaction. Issue names only To; redeem and hold only From.
type Operation struct {
	Type   OperationType `json:"type"`
	From   string        `json:"from,omitempty"`
	To     string        `json:"to,omitempty"`
	Amount Amount        `json:"amount"`
	// ExpiresAt, on a hold only, is when the hold is released by itself (epoch milliseconds of
	// the ledger's time); zero: never.
	ExpiresAt int64 `json:"expiresAt,omitempty"`
	// HoldID is the ID of the hold a hold operation placed. The server sets it in answers; a
	// request never sends it, so the operations of a stored transaction may be resent as they
	// are.
	HoldID string `json:"holdId,omitempty"`
}

// TransactionStatus is a recorded transaction's outcome.
type TransactionStatus string

// Transaction statuses. A cross-shard transaction is pending while its shards apply it: a
// read may show it so, its own answer never does.
const (
	TransactionCompleted TransactionStatus = "completed"
	TransactionFailed    TransactionStatus = "failed"
	TransactionPending   TransactionStatus = "pending"
)

// Transaction is a recorded transaction: all its operations applied (completed), or none of
// them (failed, with the operation that failed and why).
type Transaction struct {
	ID          string            `json:"id"`
	ProjectID   string            `json:"projectId"`
	ReferenceID string            `json:"referenceId"`
	Status      TransactionStatus `json:"status"`
	Operations  []Operation       `json:"operations"`
	// FailedOperationIndex, FailureReason (an error code such as "InsufficientFunds") and
	// FailureMessage are set on failed transactions only.
	FailedOperationIndex *int   `json:"failedOperationIndex,omitempty"`
	FailureReason        string `json:"failureReason,omitempty"`
	FailureMessage       string `json:"failureMessage,omitempty"`
	CreatedAt            int64  `json:"createdAt"`
}

// HoldStatus is a hold's state; every state but active is final.
type HoldStatus string

// Hold statuses.
const (
	HoldActive   HoldStatus = "active"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
	HoldExpired  HoldStatus = "expired"
)

// Hold reserves part of a wallet's available balance (a hold operation of a transaction) until
// it is captured into a transfer, released, or expires: it resolves exactly once.
type Hold struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"projectId"`
	WalletID  string     `json:"walletId"`
	Amount    Amount     `json:"amount"`
	Status    HoldStatus `json:"status"`
	// ExpiresAt is zero for a hold that never expires.
	ExpiresAt int64 `json:"expiresAt,omitempty"`
	// TransactionID is the transaction that placed the hold.
	TransactionID string `json:"transactionId"`
	// CapturedAmount is what a capture moved ("0" until then); CaptureTransactionID is that
	// transfer.
	CapturedAmount       Amount `json:"capturedAmount"`
	CaptureTransactionID string `json:"captureTransactionId,omitempty"`
	CreatedAt            int64  `json:"createdAt"`
	// ResolvedAt is zero while the hold is active.
	ResolvedAt int64 `json:"resolvedAt,omitempty"`
}

// HoldResolution is what a capture returns: the hold and the capture's transaction. After an
// error, CaptureHold returns the entity the answer carried: the hold with 409 HoldResolved
// (Transaction nil), or the failed transaction with a 422 (Hold nil: the hold stays active).
type HoldResolution struct {
	Hold        *Hold        `json:"hold"`
	Transaction *Transaction `json:"transaction"`
}

// EntryType names one posting of an operation on a wallet.
type EntryType string

// Entry types.
const (
	EntryIssue  EntryType = "issue"
	EntryRedeem EntryType = "redeem"
	EntryDebit  EntryType = "debit"
	EntryCredit EntryType = "credit"
)

// Entry is one posting on a wallet, with the balance it left.
type Entry struct {
	WalletID       string    `json:"walletId"`
	TransactionID  string    `json:"transactionId"`
	OperationIndex int       `json:"operationIndex"`
	Type           EntryType `json:"type"`
	Amount         Amount    `json:"amount"`
	BalanceAfter   Amount    `json:"balanceAfter"`
	CreatedAt      int64     `json:"createdAt"`
}

// Page is one page of a paged list: items oldest first, and whether more pages follow.
type Page[T any] struct {
	Items    []T  `json:"items"`
	Page     int  `json:"page"`
	PageSize int  `json:"pageSize"`
	HasMore  bool `json:"hasMore"`
}

// itemsResponse is the shape of the unpaged lists: {"items":[...]}.
type itemsResponse[T any] struct {
	Items []T `json:"items"`
}

// Requests.

// CreateProjectRequest creates a project; an empty ID lets the server choose one.
type CreateProjectRequest struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// CreateAssetRequest creates an asset; an empty ID lets the server choose one.
type CreateAssetRequest struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name"`
	Code      string `json:"code"`
	Fractions uint64 `json:"fractions"`
}

// CustomerFields are the fields an upsert sets; a nil field stays as it is (or empty on a new
// customer).
type CustomerFields struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// CreateWalletRequest opens a wallet for a customer.
type CreateWalletRequest struct {
	CustomerID  string `json:"customerId"`
	AssetID     string `json:"assetId"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// CreateSystemWalletRequest opens a wallet owned by the project.
type CreateSystemWalletRequest struct {
	AssetID     string `json:"assetId"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// TransactionRequest runs operations in order, all or nothing. ReferenceID names the
// transaction for its whole life: the server applies one referenceId at most once, which is
// what makes resending it safe.
type TransactionRequest struct {
	ReferenceID string      `json:"referenceId"`
	Operations  []Operation `json:"operations"`
}

// CaptureRequest captures a hold: a transfer of Amount (empty: the whole hold) from the hold's
// wallet to To, recorded as a transaction with ReferenceID (empty: the transaction's own ID);
// the rest of the hold is released.
type CaptureRequest struct {
	To          string `json:"to"`
	Amount      Amount `json:"amount,omitempty"`
	ReferenceID string `json:"referenceId,omitempty"`
}

// PageRequest selects one page of a list. Zero Page is the first page; zero PageSize is the
// server's default (20).
type PageRequest struct {
	Page     int
	PageSize int
}

// TimePageRequest selects one page of a list of records created within [FromMs, ToMs] (epoch
// milliseconds, both inclusive). Zero FromMs is the epoch; zero ToMs leaves the end unbounded.
type TimePageRequest struct {
	PageRequest
	FromMs, ToMs int64
}

// String returns a pointer to s, for the optional fields of CustomerFields.
func String(s string) *string { return &s }
