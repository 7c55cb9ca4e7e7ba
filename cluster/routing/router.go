// Package routing is the one layer that sends each API request to the shard that owns it. It
// implements backend.Backend over a node's shards: project-level data (projects, assets) lives
// in shard 0, the metadata shard; customers and their wallets live in the shard of their slot;
// a request names its slot through the IDs it carries (see keyspace.SlotOf and SlotOfID).
//
// It owns request placement and the few multi-step flows that placement needs (creating a
// wallet marks its asset used in shard 0 first; project-wide lists merge every shard's part),
// and the query that reads a shard whatever node it is on (query.go), including each shard's
// outbox with the events' subjects resolved where they live (events.go).
// It must never apply business rules of its own beyond refusing what no single shard can do
// atomically (a command whose IDs span shards that the cross-shard protocol does not carry),
// and never talk to Raft except through Shards. A Cloud Wallet transaction, a hold capture
// and a GigPay claim across shards run the cross-shard protocol (cross.go, crossfamily.go; its
// driver is CrossDriver, crossdriver.go). It never imports httpapi: the contract it implements
// lives in package backend.
package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/shard"
)

// MetadataShard holds projects and assets.
const MetadataShard = 0

// Shards is what the router needs of the node: proposals and linearizable read fences per
// shard, the local replica's ledger for reads, and queries for the shards not hosted here.
type Shards interface {
	ShardCount() int
	Propose(ctx context.Context, shardID int, command []byte) (any, error)
	// LinearizableRead fences a read of the local replica (cluster.Node.FenceLocalRead);
	// cluster.ErrReplicaLagging means the replica lags: the read asks the leader (Query).
	LinearizableRead(ctx context.Context, shardID int) error
	// Ledger is this node's replica of the shard, or nil when the node does not host it.
	Ledger(shardID int) *ledger.Ledger
	// GigaWallet reads the GigaWallet family of the same replica (nil when not hosted, or when
	// the node runs without the family).
	GigaWallet(shardID int) *gigawallet.Reader
	// GigPay reads the GigPay family of the same replica (nil when not hosted, or when the node
	// runs without the family).
	GigPay(shardID int) *gigpay.Reader
	// Query runs a shardQuery (encoded) linearizably on a node hosting the shard, which
	// answers it with Router.AnswerQuery.
	Query(ctx context.Context, shardID int, query []byte) ([]byte, error)
	// QueryLeader runs a shardQuery (encoded) on the shard's leader (cluster.Node.QueryLeader):
	// for a query whose answer waits for what the leader applies first.
	QueryLeader(ctx context.Context, shardID int, query []byte) ([]byte, error)
	// Outbox is the event log of this node's replica of the shard, or nil (an untyped nil) when
	// the node does not host it.
	Outbox(shardID int) Outbox
	// Follows reports whether this node's replica of the shard is in the shard's configuration,
	// so that it applies the log as the log grows (cluster.Node.ReplicaState: led or
	// leaderless). A replica outside it — opened by a move that stopped before adding it —
	// applies nothing, and its outbox never changes.
	Follows(shardID int) bool
}

// Outbox reads a replica's event log; *fsm.Machine implements it. Its methods are called from
// any goroutine.
type Outbox interface {
	Events(after uint64, limit int) ([]fsm.Event, error)
	OutboxRange() (first, last uint64, err error)
	EventsChanged() <-chan struct{}
	DeadLetters(subscriber string, after uint64, limit int) ([]fsm.DeadLetter, error)
	Subscriptions() ([]fsm.Subscription, error)
}

var _ Outbox = (*fsm.Machine)(nil)

// Router routes API requests to shards. It is safe for concurrent use.
type Router struct {
	shards Shards
	// knownProjects caches projects found in the metadata shard. Projects are never deleted,
	// so a cached "exists" never goes stale.
	knownProjects sync.Map
	// usedAssets caches the ledger.AssetDefinition of assets marked used in the metadata shard,
	// by usedAssetKey. A used asset can no longer be deleted and its definition's fractions,
	// code and creation time never change, so the entry never goes stale where it matters
	// (a rename changes only shard 0's name, which is the one the API shows).
	usedAssets sync.Map
	// invoiceShards remembers the shards of invoices found by address alone (invoices.go).
	invoiceShards invoiceShards
	// crossAwaiting counts this router's waits held by a coordinator's leader (cross.go).
	crossAwaiting atomic.Int64
}

// New returns a router over shards.
func New(shards Shards) *Router { return &Router{shards: shards} }

// ShardOf is the shard a route belongs to: the metadata shard for project-level data; else the
// one shard of the IDs it names (which carry their slot); else the slot of its (project, owner)
// key. ok is false when the IDs live in different shards, or for a pinned route, which names its
// shard itself and is never routed.
func (r *Router) ShardOf(route fsm.Route) (shardID int, ok bool) {
	count := r.shards.ShardCount()
	switch {
	case route.Pinned:
		return 0, false
	case route.Metadata:
		return MetadataShard, true
	}
	target := -1
	for _, id := range route.IDs {
		slot, ok := keyspace.SlotOfID(id)
		if !ok {
			continue // an ID without a slot names nothing; the shard answers not found
		}
		s := int(keyspace.ShardOfSlot(slot, count))
		if target >= 0 && s != target {
			return 0, false
		}
		target = s
	}
	if target >= 0 {
		return target, true
	}
	return int(keyspace.ShardOfSlot(keyspace.SlotOf(route.ProjectID, route.OwnerID), count)), true
}

// customerShard is the shard of a customer's data.
func (r *Router) customerShard(projectID, customerID string) int {
	shardID, _ := r.ShardOf(fsm.Route{ProjectID: projectID, OwnerID: customerID})
	return shardID
}

// Propose sends a command to the shard its route names (backend.Backend); a Cloud Wallet
// transaction, a hold capture or a GigPay claim whose IDs live on several shards, and the
// close of a GigPay token claimed into a wallet of another shard, run the cross-shard
// protocol, any other command whose IDs span shards is refused (CrossShardTransaction). A
// command that needs the metadata shard's word first (ledger.NeedsMetadata) gets it here: the
// project checked, or the asset marked used with its definition (usedAsset). Any other command
// of a data shard goes there without asking the metadata shard, so a transaction between
// existing wallets never waits on shard 0; only a data shard's ProjectNotFound is checked
// against it (recordMissing).
func (r *Router) Propose(ctx context.Context, env fsm.Envelope) (*fsm.Result, error) {
	if needs, ok := env.Command.(ledger.NeedsMetadata); ok {
		projectID, assetID := needs.Metadata()
		var asset *ledger.AssetDefinition
		if assetID != "" {
			definition, result, err := r.usedAsset(ctx, projectID, assetID)
			if err != nil || result != nil {
				return result, err
			}
			asset = &definition
		} else if result, err := r.requireProject(r.newReader(ctx), projectID); result != nil || err != nil {
			return result, err
		}
		needs.Ensure(asset)
	}
	if c, ok := env.Command.(*gigpay.CloseToken); ok {
		return r.closeToken(ctx, env, c)
	}
	shardID, ok := r.ShardOf(env.Command.Route())
	if !ok {
		switch c := env.Command.(type) {
		case *ledger.Transact:
			return r.transactAcross(ctx, env, c) // cross.go
		case *ledger.CaptureHold:
			return r.captureAcross(ctx, env, c) // crossfamily.go
		case *gigpay.ClaimToken:
			return r.claimAcross(ctx, env, c) // crossfamily.go
		}
		return &fsm.Result{Err: &fsm.Error{Code: ledger.CodeCrossShardTransaction,
			Message: "the transaction's wallets live in different shards; move value between them in separate transactions"}}, nil
	}
	result, err := r.propose(ctx, shardID, env)
	if err != nil {
		return nil, err
	}
	backend.RecordServedShard(ctx, shardID) // the response names this shard's leader
	return r.recordMissing(ctx, shardID, env.Command, result)
}

// recordMissing answers a data shard's ProjectNotFound to c as the metadata shard sees it: when
// the project exists there, the record c names is what is missing (ledger.MissingRecord); the
// data shard only had not met the project yet. The metadata shard's own answer stands, as does
// any other result. Without an answer from the metadata shard it is ErrUnavailable: nothing was
// applied, and a 404 would tell the client that a project which may well exist does not. A
// replay of an answer stored under an idempotency key is answered the same way and stays a
// replay (one stored while the project did not exist yet is answered as a missing record once
// it does).
func (r *Router) recordMissing(ctx context.Context, shardID int, c fsm.Command, result *fsm.Result) (*fsm.Result, error) {
	if !r.mayMissProject(shardID, result) {
		return result, nil
	}
	projectID, missing := ledger.MissingRecord(c)
	if missing == nil {
		return result, nil
	}
	known, err := r.projectKnown(ctx, projectID)
	switch {
	case err != nil:
		return nil, err
	case !known:
		return result, nil // a project that is nowhere
	}
	return &fsm.Result{Op: result.Op, Err: missing, Replayed: result.Replayed}, nil
}

// mayMissProject reports whether result is a data shard's ProjectNotFound, which the metadata
// shard may contradict.
func (r *Router) mayMissProject(shardID int, result *fsm.Result) bool {
	return shardID != MetadataShard && result != nil && result.Err != nil && result.Err.Code == ledger.CodeProjectNotFound
}

// projectKnown reports whether the metadata shard has the project (cached once it has). An
// error, whatever its cause (the request's deadline among them), is ErrUnavailable: it comes
// after the shard's answer to a command that changed nothing, so never OutcomeUnknown.
func (r *Router) projectKnown(ctx context.Context, projectID string) (bool, error) {
	rejection, err := r.requireProject(r.newReader(ctx), projectID)
	if err != nil {
		return false, fmt.Errorf("routing: the metadata shard did not say whether project %q exists (%v): %w", projectID, err, backend.ErrUnavailable)
	}
	return rejection == nil, nil
}

func usedAssetKey(projectID, assetID string) string { return projectID + "\x00" + assetID }

// usedAsset returns the definition of an asset marked used in the metadata shard, or the
// rejection (project or asset not found). It reads first (cached, else a query) and proposes
// OpMarkAssetUsed only for an asset no wallet has used yet: creating wallets of a used asset
// writes nothing to shard 0's log.
func (r *Router) usedAsset(ctx context.Context, projectID, assetID string) (ledger.AssetDefinition, *fsm.Result, error) {
	key := usedAssetKey(projectID, assetID)
	if definition, ok := r.usedAssets.Load(key); ok {
		return definition.(ledger.AssetDefinition), nil, nil
	}
	answer, err := r.newReader(ctx).ask(MetadataShard, shardQuery{Kind: queryGetAsset, ProjectID: projectID, ID: assetID})
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		return ledger.AssetDefinition{}, &fsm.Result{Err: rejection}, nil
	}
	if err != nil {
		return ledger.AssetDefinition{}, nil, err
	}
	asset := answer.Asset
	if !asset.Used {
		marked, err := r.propose(ctx, MetadataShard, fsm.Envelope{Command: &ledger.MarkAssetUsed{ProjectID: projectID, AssetID: assetID}})
		if err != nil || marked.Err != nil {
			return ledger.AssetDefinition{}, marked, err
		}
		asset = marked.Value.(*ledger.Asset)
	}
	return r.rememberUsedAsset(projectID, assetID, asset), nil, nil
}

// rememberUsedAsset caches the definition of an asset the metadata shard says is used (and so
// its project as known): from then on it can be neither deleted nor given other fractions.
func (r *Router) rememberUsedAsset(projectID, assetID string, asset *ledger.Asset) ledger.AssetDefinition {
	definition := ledger.AssetDefinition{Name: asset.Name, Code: asset.Code, Fractions: asset.Fractions, CreatedAt: asset.CreatedAt}
	r.usedAssets.Store(usedAssetKey(projectID, assetID), definition)
	r.knownProjects.Store(projectID, struct{}{})
	return definition
}

// requireProject answers ProjectNotFound (as a result) unless the metadata shard has the
// project: cached, else read with rd (a query when this node does not host shard 0; never a
// log entry).
func (r *Router) requireProject(rd *reader, projectID string) (*fsm.Result, error) {
	if _, ok := r.knownProjects.Load(projectID); ok {
		return nil, nil
	}
	if _, err := rd.GetProject(projectID); err != nil {
		var rejection *fsm.Error
		if errors.As(err, &rejection) {
			return &fsm.Result{Err: rejection}, nil
		}
		return nil, err
	}
	r.knownProjects.Store(projectID, struct{}{})
	return nil, nil
}

func (r *Router) propose(ctx context.Context, shardID int, env fsm.Envelope) (*fsm.Result, error) {
	out, err := r.shards.Propose(ctx, shardID, fsm.EncodeEnvelope(env))
	if err != nil {
		return nil, backendError(err)
	}
	result, ok := out.(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("routing: shard %d answered %T", shardID, out)
	}
	return result, nil
}

// backendError gives shard and cluster errors the backend identity (ErrUnavailable, ...) that
// decides the HTTP answer.
func backendError(err error) error {
	switch {
	case errors.Is(err, shard.ErrOutcomeUnknown):
		return fmt.Errorf("%w: %w", backend.ErrOutcomeUnknown, err)
	case errors.Is(err, shard.ErrOverloaded):
		return fmt.Errorf("%w: %w", backend.ErrOverloaded, err)
	case errors.Is(err, shard.ErrNotLeader), errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotHosted):
		return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
	}
	return err
}
