// Package backend is the contract between the API layer and the cluster: what a handler asks of
// the ledger (Backend: propose a command, which names its own shard through fsm.Route; read
// linearizably), and the sentinel errors a backend wraps so that handlers answer honestly.
//
// It holds no implementation. It must not import HTTP, Raft or cluster code, so that httpapi
// (the caller) and cluster/routing (the implementation) both import it and neither imports the
// other.
package backend

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Backend is what the handlers need from the cluster: one way to change state and one way to
// read it. cluster/routing implements it over a node's shards; httpapi's tests implement it over
// a ledger.Ledger (see httpapitest).
//
// Both methods are called concurrently from many requests. Errors should wrap ErrUnavailable,
// ErrOutcomeUnknown or ErrOverloaded where those apply; any other error is answered 500 and
// logged. Business rejections are never errors here: they come back inside fsm.Result.Err (for
// Propose) or as an *fsm.Error (for Reader methods).
type Backend interface {
	// Propose replicates the command through the leader of the shard its route names and
	// returns its result. ctx bounds the wait; when it ends after the command may have reached
	// the log, return ErrOutcomeUnknown.
	Propose(ctx context.Context, env fsm.Envelope) (*fsm.Result, error)
	// ProposeTransactions replicates a batch of Cloud Wallet transactions of one project, each
	// atomic on its own, and returns one Outcome per transaction, in order: what Propose of that
	// transaction alone would have returned. Transactions that touch the same wallets apply in
	// the order given. The implementation should cost one proposal per shard, not one per
	// transaction (ledger.TransactBatch).
	ProposeTransactions(ctx context.Context, projectID string, transactions []ledger.Transact) []Outcome
	// Read returns the ledger state after waiting until it reflects every write acknowledged
	// before the call (linearizable).
	Read(ctx context.Context) (Reader, error)
	// WaitForEvents returns nil once some shard may hold an event with a sequence above
	// after[shard] (len(after) is the shard count), or ctx's error when it ends first. It may
	// return early; the caller reads again and decides. Long polls use it instead of reading
	// in a loop.
	WaitForEvents(ctx context.Context, after []uint64) error
}

// Outcome is one transaction's answer in a batch (Backend.ProposeTransactions): its Result, or
// the Err its own Propose would have returned (ErrOutcomeUnknown when the proposal carrying it
// may or may not have applied, ErrUnavailable when it certainly did not).
type Outcome struct {
	Result *fsm.Result
	Err    error
}

// EventsMaxCount bounds the events one ListEvents returns.
const EventsMaxCount = 1000

// ShardEvents is one shard's part of the event log: events after a sequence, oldest first, and
// the range the shard's outbox retains. Sequences are contiguous in the outbox; an event below
// First was dropped by retention.
type ShardEvents struct {
	// First and Last are the oldest and newest retained sequence; 0, 0 before the first event.
	First, Last uint64
	Events      []Event
}

// Event is an outbox event with its subject read back from the shard that emitted it.
type Event struct {
	Sequence uint64
	TimeMs   int64 // the time of the batch that emitted it, Unix milliseconds
	Type     string
	// Subject is the event's record as its family resolves it: *ledger.Transaction,
	// *ledger.Wallet or *ledger.Hold (LEDGER_*), *gigawallet.Account (ACC_*) or
	// *gigawallet.Invoice (INV_*), *gigpay.Token (GIGPAY_TOKEN_*) or *gigpay.Payment
	// (GIGPAY_PAYMENT_*); nil for an event of a family this node does not run.
	Subject fsm.Value
	// Account is the account of an invoice subject, read on the same shard (the admin invoice
	// view shows the account's address); nil otherwise.
	Account *gigawallet.Account
}

// Reader is the query side of the ledger: the read methods of *ledger.Ledger. A missing entity
// is an *fsm.Error with a NotFound code; any other error is a storage failure.
type Reader interface {
	GetProject(projectID string) (*ledger.Project, error)
	ListProjects() ([]ledger.Project, error)
	GetAsset(projectID, assetID string) (*ledger.Asset, error)
	// AssetFractions reads an asset's fractions alone: what a handler needs to turn amounts
	// into decimals. An asset's fractions never change, and a used asset can never be deleted,
	// so a backend may answer it for a used asset without reading (routing caches it); for any
	// other asset it is a linearizable read like GetAsset's, without the supply.
	AssetFractions(projectID, assetID string) (uint64, error)
	ListAssets(projectID string) ([]ledger.Asset, error)
	GetCustomer(projectID, customerID string) (*ledger.Customer, error)
	ListCustomers(projectID string, page ledger.PageRequest) (items []ledger.Customer, hasMore bool, err error)
	ListCustomerWallets(projectID, customerID string) ([]ledger.Wallet, error)
	ListSystemWallets(projectID string) ([]ledger.Wallet, error)
	GetWallet(projectID, walletID string) (*ledger.Wallet, error)
	ListEntries(projectID, walletID string, timeRange ledger.TimeRange, page ledger.PageRequest) (items []ledger.Entry, hasMore bool, err error)
	GetTransaction(projectID, transactionID string) (*ledger.Transaction, error)
	ListTransactions(projectID string, timeRange ledger.TimeRange, page ledger.PageRequest) (items []ledger.Transaction, hasMore bool, err error)
	GetHold(projectID, holdID string) (*ledger.Hold, error)
	// GigaWallet family.
	GetAccount(projectID, foreignID string) (*gigawallet.Account, error)
	// NextAccountIndex is the HD account index the next account of the foreign ID's slot gets.
	NextAccountIndex(projectID, foreignID string) (uint32, error)
	// GetInvoice reads an invoice by its address; with a foreign ID only that account's (a
	// NotFound otherwise), without one whichever account's (the public routes).
	GetInvoice(projectID, foreignID, address string) (*gigawallet.Invoice, error)
	// ListInvoices reads up to limit invoices of an account with key index ≥ cursor, oldest
	// first.
	ListInvoices(projectID, foreignID string, cursor uint32, limit int) ([]gigawallet.Invoice, error)
	// SpendableUTXOs reads up to limit outputs of an account a payout may spend (confirmed,
	// unspent, not reserved).
	SpendableUTXOs(projectID, foreignID string, limit int) ([]gigawallet.UTXO, error)
	// GetPayment reads a payout of an account by its txid.
	GetPayment(projectID, foreignID string, txid gigawallet.Hash) (*gigawallet.Payment, error)
	// ListPayments reads up to limit payouts of an account with sequence ≥ cursor, oldest first.
	ListPayments(projectID, foreignID string, cursor uint64, limit int) ([]gigawallet.Payment, error)
	// GetPayFrom reads, from the shard of the account foreignID, the payfrom of an invoice one
	// of that shard's accounts reserved and did not release (PaymentNotFound: none).
	GetPayFrom(projectID, foreignID, invoiceID string) (*gigawallet.Payment, error)
	// GigPay family. GetToken reads a token by its ID, GetTokenByString by its bearer string
	// (constant-time; a forged string is TokenNotFound), GetGigPayPayment a payment by its ID.
	GetToken(projectID, tokenID string) (*gigpay.Token, error)
	GetTokenByString(projectID, token string) (*gigpay.Token, error)
	GetGigPayPayment(projectID, paymentID string) (*gigpay.Payment, error)
	// ListGigPayPayments reads one page of a project's payments from every shard, merged
	// (gigpay.MergePages): the page, the position the next page continues from (q.After), and
	// whether more may follow.
	ListGigPayPayments(projectID string, q gigpay.PaymentQuery) (items []gigpay.Payment, next []byte, hasMore bool, err error)
	// Events: the outbox has one part per shard.
	ShardCount() int
	// ListEvents returns up to limit (0..EventsMaxCount) events of a shard's outbox with a
	// sequence above after, and the retained range; limit 0 asks for the range alone. It may
	// return fewer than limit although more exist (an answer's byte bound).
	ListEvents(shardID int, after uint64, limit int) (*ShardEvents, error)
	// ListSubscriptions reads the cluster's event subscriptions (the metadata shard's).
	ListSubscriptions() ([]fsm.Subscription, error)
	// ListDeadLetters reads up to limit (1..EventsMaxCount) dead letters of a shard with a
	// sequence above after, of one subscriber ("" for every one), oldest first.
	ListDeadLetters(shardID int, subscriber string, after uint64, limit int) ([]fsm.DeadLetter, error)
}

// Sentinel errors a Backend wraps so that handlers answer honestly. Match them with errors.Is.
var (
	// ErrUnavailable means the shard cannot serve now (no leader, shutting down) and the
	// request certainly did not apply: 503 Unavailable with Retry-After.
	ErrUnavailable = errors.New("shard unavailable")
	// ErrOutcomeUnknown means a proposal may or may not have applied (the leader was lost or
	// the wait ended after it was sent): 503 OutcomeUnknown; the client retries with the same
	// referenceId, which is safe.
	ErrOutcomeUnknown = errors.New("proposal outcome unknown")
	// ErrOverloaded means the shard refused the request because its queues are full and it did
	// not apply: 503 Overloaded with Retry-After.
	ErrOverloaded = errors.New("shard overloaded")
)

// ServedShard records, for one API request, the shard that served its write, so that the
// response can name that shard's leader (the node serving the API sets it up per request with
// WithServedShard and reads it before the answer's headers leave). A request that wrote to
// several shards (a cross-shard transaction) or to none records nothing.
type ServedShard struct {
	shardID atomic.Int64 // shard ID + 1; 0 while none is recorded
}

type servedShardKey struct{}

// WithServedShard returns a context under which a backend records the shard that serves the
// request's write, and the record to read it from.
func WithServedShard(ctx context.Context) (context.Context, *ServedShard) {
	served := &ServedShard{}
	return context.WithValue(ctx, servedShardKey{}, served), served
}

// RecordServedShard notes, when ctx carries a ServedShard, that shardID served the request's
// write (a later write of the same request replaces it).
func RecordServedShard(ctx context.Context, shardID int) {
	if served, _ := ctx.Value(servedShardKey{}).(*ServedShard); served != nil {
		served.shardID.Store(int64(shardID) + 1)
	}
}

// Shard is the recorded shard; false when none is.
func (s *ServedShard) Shard() (int, bool) {
	id := s.shardID.Load()
	return int(id - 1), id > 0
}
