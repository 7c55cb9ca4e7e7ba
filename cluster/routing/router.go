// Package routing is the one layer that sends each API request to the shard that owns it. It
// implements backend.Backend over a node's shards: project-level data (projects, assets) lives
// in shard 0, the metadata shard; customers and their wallets live in the shard of their slot;
// a request names its slot through the IDs it carries (see keyspace.SlotOf and SlotOfID).
//
// It owns request placement and the few multi-step flows that placement needs (creating a
// wallet marks its asset used in shard 0 first; project-wide lists merge every shard's part),
// and the query that reads a shard whatever node it is on (query.go).
// It must never apply business rules of its own beyond refusing what no single shard can do
// atomically (a transaction across shards), and never talk to Raft except through Shards. It
// never imports httpapi: the contract it implements lives in package backend.
package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/shard"
)

// MetadataShard holds projects and assets.
const MetadataShard = 0

// Shards is what the router needs of the node: proposals and linearizable read fences per
// shard, the local replica's ledger for reads, and queries for the shards not hosted here.
type Shards interface {
	ShardCount() int
	Propose(ctx context.Context, shardID int, command []byte) (any, error)
	LinearizableRead(ctx context.Context, shardID int) error
	// Ledger is this node's replica of the shard, or nil when the node does not host it.
	Ledger(shardID int) *fsm.Ledger
	// Query runs a shardQuery (encoded) linearizably on a node hosting the shard, which
	// answers it with Router.AnswerQuery.
	Query(ctx context.Context, shardID int, query []byte) ([]byte, error)
}

// Router routes API requests to shards. It is safe for concurrent use.
type Router struct {
	shards Shards
	// knownProjects caches projects found in the metadata shard. Projects are never deleted,
	// so a cached "exists" never goes stale.
	knownProjects sync.Map
	// usedAssets caches the fsm.AssetDefinition of assets marked used in the metadata shard,
	// by usedAssetKey. A used asset can no longer be deleted and its definition's fractions,
	// code and creation time never change, so the entry never goes stale where it matters
	// (a rename changes only shard 0's name, which is the one the API shows).
	usedAssets sync.Map
}

// New returns a router over shards.
func New(shards Shards) *Router { return &Router{shards: shards} }

// ShardOf is the shard a route belongs to: the slot of its wallet ID when it names one, else
// of its (project, customer) key.
func (r *Router) ShardOf(route backend.Route) int {
	if route.WalletID != "" {
		if slot, ok := keyspace.SlotOfID(route.WalletID); ok {
			return int(keyspace.ShardOfSlot(slot, r.shards.ShardCount()))
		}
	}
	return int(keyspace.ShardOfSlot(keyspace.SlotOf(route.ProjectID, route.CustomerID), r.shards.ShardCount()))
}

// Propose sends cmd to the shard that owns it (backend.Backend).
func (r *Router) Propose(ctx context.Context, route backend.Route, cmd *fsm.Command) (*fsm.Result, error) {
	switch cmd.Op {
	case fsm.OpCreateProject, fsm.OpRenameProject, fsm.OpCreateAsset, fsm.OpRenameAsset,
		fsm.OpDeleteAsset, fsm.OpMarkAssetUsed:
		return r.propose(ctx, MetadataShard, cmd)
	case fsm.OpCreateWallet:
		return r.createWallet(ctx, cmd)
	case fsm.OpTransact:
		target, ok := r.transactionShard(cmd)
		if !ok {
			return &fsm.Result{Err: &fsm.Error{Code: fsm.CodeCrossShardTransaction,
				Message: "the transaction's wallets live in different shards; move value between them in separate transactions"}}, nil
		}
		return r.propose(ctx, target, cmd)
	case fsm.OpUpsertCustomer, fsm.OpSuspendCustomer, fsm.OpResumeCustomer, fsm.OpDeleteCustomer:
		if result, err := r.requireProject(r.newReader(ctx), cmd.ProjectID); result != nil || err != nil {
			return result, err
		}
		cmd.EnsureProject = true
		return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, CustomerID: cmd.CustomerID}), cmd)
	default: // wallet updates: the wallet's shard
		return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, WalletID: cmd.WalletID}), cmd)
	}
}

// createWallet makes sure the asset is marked used in the metadata shard, then creates the
// wallet in its owner's shard with the asset's definition. A failure between the two leaves
// the asset marked used with no wallet: it can no longer be deleted, which is conservative and
// never wrong.
func (r *Router) createWallet(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	definition, result, err := r.usedAsset(ctx, cmd.ProjectID, cmd.AssetID)
	if err != nil || result != nil {
		return result, err
	}
	cmd.Asset = &definition
	cmd.EnsureProject = true
	return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, CustomerID: cmd.CustomerID, WalletID: cmd.WalletID}), cmd)
}

func usedAssetKey(projectID, assetID string) string { return projectID + "\x00" + assetID }

// usedAsset returns the definition of an asset marked used in the metadata shard, or the
// rejection (project or asset not found). It reads first (cached, else a query) and proposes
// OpMarkAssetUsed only for an asset no wallet has used yet: creating wallets of a used asset
// writes nothing to shard 0's log.
func (r *Router) usedAsset(ctx context.Context, projectID, assetID string) (fsm.AssetDefinition, *fsm.Result, error) {
	key := usedAssetKey(projectID, assetID)
	if definition, ok := r.usedAssets.Load(key); ok {
		return definition.(fsm.AssetDefinition), nil, nil
	}
	answer, err := r.newReader(ctx).ask(MetadataShard, shardQuery{Kind: queryGetAsset, ProjectID: projectID, ID: assetID})
	var rejection *fsm.Error
	if errors.As(err, &rejection) {
		return fsm.AssetDefinition{}, &fsm.Result{Err: rejection}, nil
	}
	if err != nil {
		return fsm.AssetDefinition{}, nil, err
	}
	asset := answer.Asset
	if !asset.Used {
		marked, err := r.propose(ctx, MetadataShard, &fsm.Command{Op: fsm.OpMarkAssetUsed, ProjectID: projectID, AssetID: assetID})
		if err != nil || marked.Err != nil {
			return fsm.AssetDefinition{}, marked, err
		}
		asset = marked.Asset
	}
	definition := fsm.AssetDefinition{Name: asset.Name, Code: asset.Code, Fractions: asset.Fractions, CreatedAt: asset.CreatedAt}
	r.usedAssets.Store(key, definition)
	r.knownProjects.Store(projectID, struct{}{})
	return definition, nil, nil
}

// transactionShard is the one shard holding every wallet the transaction names. IDs that carry
// no slot cannot name a wallet; they go to the first wallet's shard, which answers not found.
func (r *Router) transactionShard(cmd *fsm.Command) (int, bool) {
	target := -1
	for _, op := range cmd.Operations {
		for _, id := range []string{op.From, op.To} {
			slot, ok := keyspace.SlotOfID(id)
			if !ok {
				continue
			}
			s := int(keyspace.ShardOfSlot(slot, r.shards.ShardCount()))
			if target >= 0 && s != target {
				return 0, false
			}
			target = s
		}
	}
	return max(target, 0), true
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

func (r *Router) propose(ctx context.Context, shardID int, cmd *fsm.Command) (*fsm.Result, error) {
	out, err := r.shards.Propose(ctx, shardID, cmd.Encode(nil))
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
