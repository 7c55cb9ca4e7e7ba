// Package bare is the bench's bare-HTTP ceiling (issue 15): GigaLedger's own admin API handler
// (httpapi.NewAdmin: the same gin engine, middleware, strict JSON decoders, validation, command
// building and answer views a node runs) over a Backend that does no ledger work. Every write
// is answered as if it had committed, with a record made from the command the handler built
// (the IDs the handler chose, a fresh transaction sequence); every read is answered with a
// record of the right shape made from the path. Nothing is stored, replicated or synced.
//
// What a node does beyond this server is Raft and the state machine (proposal, group commit,
// log fsyncs, replication, apply, the read index), request forwarding between nodes, and the
// shard-leader response headers (cmd/gigaledger). Driven by the same harness with the same
// clients, its throughput is the ceiling of one HTTP process on the machine: a node's figure
// over it says how much of the HTTP budget the ledger leaves.
//
// It serves the Cloud Wallet routes the harness's ledger scenarios call (projects, assets,
// customers, wallets, transactions and their batch route, the wallet and entries reads, GET
// /cluster for the shard count) and /healthz, /readyz, /metrics. It has no GigaWallet or GigPay
// API. It is not part of the product binary: bench/cmd/gigaledger-bare runs it.
package bare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/prometheus/client_golang/prometheus"
)

// errNotServed answers the routes the bare server does not fake (503: nothing applied).
var errNotServed = fmt.Errorf("the bare-HTTP server does no ledger work: %w", httpapi.ErrUnavailable)

// transactionIDDigits is the width of a transaction ID's sequence part, as the ledger writes it
// (fsm/ledger's transactionID: the handler's prefix, then the sequence in hex).
const transactionIDDigits = 16

// NewHandler returns the admin API handler of the bare server: httpapi.NewAdmin with no token
// (loopback only, as a node without one), a one-shard Operator for GET /cluster and a Backend
// that answers every write as committed. registry receives the same request metrics a node's
// does (nil: none).
func NewHandler(logger *slog.Logger, registry *prometheus.Registry) http.Handler {
	b := &Backend{}
	return httpapi.NewAdmin(httpapi.AdminConfig{Operator: operator{}}, b, logger, registry)
}

// Backend is an httpapi.Backend that does no ledger work: Propose answers the command as
// committed, Read answers from the path alone. Safe for concurrent use.
type Backend struct {
	// sequence numbers transactions, as a shard's transaction sequence does, so that every
	// transaction ID it hands out is unique.
	sequence atomic.Uint64
}

var _ httpapi.Backend = (*Backend)(nil)

// Propose implements httpapi.Backend: the record a committed command would answer.
func (b *Backend) Propose(_ context.Context, env fsm.Envelope) (*fsm.Result, error) {
	now := time.Now().UnixMilli()
	var value fsm.Value
	switch cmd := env.Command.(type) {
	case *ledger.Transact:
		value = b.transaction(cmd, now)
	case *ledger.CreateProject:
		value = &ledger.Project{ID: cmd.ProjectID, Name: cmd.Name, CreatedAt: now}
	case *ledger.CreateAsset:
		value = &ledger.Asset{ProjectID: cmd.ProjectID, ID: cmd.AssetID, Name: cmd.Name, Code: cmd.Code,
			Fractions: cmd.Fractions, CreatedAt: now}
	case *ledger.UpsertCustomer:
		value = &ledger.Customer{ProjectID: cmd.ProjectID, ID: cmd.CustomerID, Name: cmd.Name,
			Description: cmd.Description, Status: ledger.CustomerActive, CreatedAt: now, UpdatedAt: now}
	case *ledger.CreateWallet:
		value = &ledger.Wallet{ID: cmd.WalletID, ProjectID: cmd.ProjectID, CustomerID: cmd.CustomerID,
			AssetID: cmd.AssetID, Name: cmd.Name, Description: cmd.Description, Status: ledger.WalletOpen,
			CreatedAt: now, UpdatedAt: now}
	default:
		return nil, errNotServed
	}
	return &fsm.Result{Op: env.Command.Op(), Value: value}, nil
}

// ProposeTransactions implements httpapi.Backend: every transaction of a batch committed.
func (b *Backend) ProposeTransactions(_ context.Context, projectID string, transactions []ledger.Transact) []backend.Outcome {
	now := time.Now().UnixMilli()
	outcomes := make([]backend.Outcome, len(transactions))
	for i := range transactions {
		outcomes[i].Result = &fsm.Result{Op: transactions[i].Op(), Value: b.transaction(&transactions[i], now)}
	}
	return outcomes
}

// transaction is the completed transaction of cmd, with the next sequence in its ID.
func (b *Backend) transaction(cmd *ledger.Transact, now int64) *ledger.Transaction {
	sequence := b.sequence.Add(1)
	id := make([]byte, 0, len(cmd.IDPrefix)+transactionIDDigits)
	id = append(id, cmd.IDPrefix...)
	hex := strconv.FormatUint(sequence, 16)
	for range transactionIDDigits - len(hex) {
		id = append(id, '0')
	}
	id = append(id, hex...)
	return &ledger.Transaction{ID: string(id), ProjectID: cmd.ProjectID, ReferenceID: cmd.ReferenceID,
		Status: ledger.TransactionCompleted, Operations: cmd.Operations, CreatedAt: now, Sequence: sequence}
}

// Read implements httpapi.Backend: a reader that answers from its arguments.
func (b *Backend) Read(context.Context) (httpapi.Reader, error) { return reader{}, nil }

// WaitForEvents implements httpapi.Backend: there are no events.
func (b *Backend) WaitForEvents(context.Context, []uint64) error { return errNotServed }

// entriesPageMax bounds the entries a page answer fabricates.
const entriesPageMax = 100

// reader answers the reads of the harness's reads scenario (a wallet, a page of its entries)
// and the shard count; the other Cloud Wallet reads answer 503 Unavailable. The GigaWallet and
// GigPay reads are left to the embedded nil Reader: their APIs are off, no route calls them.
type reader struct{ httpapi.Reader }

func (reader) GetProject(string) (*ledger.Project, error)           { return nil, errNotServed }
func (reader) ListProjects() ([]ledger.Project, error)              { return nil, errNotServed }
func (reader) GetAsset(string, string) (*ledger.Asset, error)       { return nil, errNotServed }
func (reader) AssetFractions(string, string) (uint64, error)        { return 0, errNotServed }
func (reader) ListAssets(string) ([]ledger.Asset, error)            { return nil, errNotServed }
func (reader) GetCustomer(string, string) (*ledger.Customer, error) { return nil, errNotServed }
func (reader) ListCustomers(string, ledger.PageRequest) ([]ledger.Customer, bool, error) {
	return nil, false, errNotServed
}
func (reader) ListCustomerWallets(string, string) ([]ledger.Wallet, error) { return nil, errNotServed }
func (reader) ListSystemWallets(string) ([]ledger.Wallet, error)           { return nil, errNotServed }
func (reader) GetTransaction(string, string) (*ledger.Transaction, error)  { return nil, errNotServed }
func (reader) ListTransactions(string, ledger.TimeRange, ledger.PageRequest) ([]ledger.Transaction, bool, error) {
	return nil, false, errNotServed
}
func (reader) GetHold(string, string) (*ledger.Hold, error) { return nil, errNotServed }
func (reader) ListEvents(int, uint64, int) (*backend.ShardEvents, error) {
	return nil, errNotServed
}
func (reader) ListSubscriptions() ([]fsm.Subscription, error) { return nil, errNotServed }
func (reader) ListDeadLetters(int, string, uint64, int) ([]fsm.DeadLetter, error) {
	return nil, errNotServed
}

func (reader) ShardCount() int { return 1 }

// GetWallet is an open wallet of the path's ID with a balance (no wallet is stored).
func (reader) GetWallet(projectID, walletID string) (*ledger.Wallet, error) {
	return &ledger.Wallet{ID: walletID, ProjectID: projectID, CustomerID: "c", AssetID: "a", Status: ledger.WalletOpen,
		Balance: fsm.AmountFromUint64(1_000_000), EntryCount: 1}, nil
}

// ListEntries is a full page of credit entries of the wallet, with more after it.
func (reader) ListEntries(projectID, walletID string, _ ledger.TimeRange, page ledger.PageRequest) ([]ledger.Entry, bool, error) {
	entries := make([]ledger.Entry, min(max(page.PageSize, 0), entriesPageMax))
	for i := range entries {
		entries[i] = ledger.Entry{WalletID: walletID, Sequence: uint64(i + 1), TransactionID: "t0000" + fmt.Sprintf("%016x", i+1),
			Type: ledger.EntryCredit, Amount: fsm.AmountFromUint64(100), BalanceAfter: fsm.AmountFromUint64(uint64(100 * (i + 1)))}
	}
	return entries, true, nil
}

// operator answers GET /cluster as a one-node, one-shard cluster; it does nothing else.
type operator struct{}

var errNoCluster = errors.New("the bare-HTTP server is not a cluster")

// clusterStatus is GET /cluster's answer, in cluster.Status's shape.
type clusterStatus struct {
	NodeID       string `json:"nodeId"`
	SlotCount    int    `json:"slotCount"`
	ShardCount   int    `json:"shardCount"`
	ReplicaCount int    `json:"replicaCount"`
	Nodes        []any  `json:"nodes"`
	Shards       []any  `json:"shards"`
}

func (operator) ClusterStatus(context.Context) (any, error) {
	return clusterStatus{NodeID: "bare", SlotCount: keyspace.SlotCount, ShardCount: 1, ReplicaCount: 1, Nodes: []any{}, Shards: []any{}}, nil
}

func (operator) StateDigest(context.Context) (string, uint64, error) { return "", 0, errNoCluster }

func (operator) ShardDigest(context.Context, int) (string, uint64, error) { return "", 0, errNoCluster }

func (operator) ReplaceNode(context.Context, string, string, string) error { return errNoCluster }

func (operator) MoveReplica(context.Context, int, string, string) (httpapi.ReplicaMove, error) {
	return httpapi.ReplicaMove{}, errNoCluster
}

func (operator) BalanceLeaders(context.Context) (any, error) { return nil, errNoCluster }

func (operator) BalanceReplicas(context.Context) (any, error) { return nil, errNoCluster }
