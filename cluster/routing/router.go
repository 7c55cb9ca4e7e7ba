// Package routing is the one layer that sends each API request to the shard that owns it. It
// implements backend.Backend over a node's shards: project-level data (projects, assets) lives
// in shard 0, the metadata shard; customers and their wallets live in the shard of their slot;
// a request names its slot through the IDs it carries (see keyspace.SlotOf and SlotOfID).
//
// It owns request placement and the few multi-step flows that placement needs (creating a
// wallet marks its asset used in shard 0 first; project-wide lists merge every shard's part).
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
// shard, and the local replica's ledger for reads.
type Shards interface {
	ShardCount() int
	Propose(ctx context.Context, shardID int, command []byte) (any, error)
	LinearizableRead(ctx context.Context, shardID int) error
	// Ledger is this node's replica of the shard, or nil when the node does not host it.
	Ledger(shardID int) *fsm.Ledger
	// APIAddrFor names the admin API of a node that hosts the shard (its leader if known).
	APIAddrFor(shardID int) (string, bool)
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
		fsm.OpDeleteAsset, fsm.OpMarkAssetUsed, fsm.OpCheckProject:
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
		if result, err := r.requireProject(ctx, cmd.ProjectID); result != nil || err != nil {
			return result, err
		}
		cmd.EnsureProject = true
		return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, CustomerID: cmd.CustomerID}), cmd)
	default: // wallet updates: the wallet's shard
		return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, WalletID: cmd.WalletID}), cmd)
	}
}

// createWallet marks the asset used in the metadata shard, then creates the wallet in its
// owner's shard with the asset's definition. A failure between the two leaves the asset marked
// used with no wallet: it can no longer be deleted, which is conservative and never wrong.
func (r *Router) createWallet(ctx context.Context, cmd *fsm.Command) (*fsm.Result, error) {
	marked, err := r.propose(ctx, MetadataShard, &fsm.Command{Op: fsm.OpMarkAssetUsed, ProjectID: cmd.ProjectID, AssetID: cmd.AssetID})
	if err != nil || marked.Err != nil {
		return marked, err
	}
	r.knownProjects.Store(cmd.ProjectID, struct{}{})
	a := marked.Asset
	cmd.Asset = &fsm.AssetDefinition{Name: a.Name, Code: a.Code, Fractions: a.Fractions, CreatedAt: a.CreatedAt}
	cmd.EnsureProject = true
	return r.propose(ctx, r.ShardOf(backend.Route{ProjectID: cmd.ProjectID, CustomerID: cmd.CustomerID, WalletID: cmd.WalletID}), cmd)
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

// requireProject answers ProjectNotFound (as a result) unless the metadata shard has the project.
func (r *Router) requireProject(ctx context.Context, projectID string) (*fsm.Result, error) {
	if _, ok := r.knownProjects.Load(projectID); ok {
		return nil, nil
	}
	if r.shards.Ledger(MetadataShard) == nil {
		// No local replica of the metadata shard: ask its leader, through the log.
		result, err := r.propose(ctx, MetadataShard, &fsm.Command{Op: fsm.OpCheckProject, ProjectID: projectID})
		if err != nil || result.Err != nil {
			return result, err
		}
		r.knownProjects.Store(projectID, struct{}{})
		return nil, nil
	}
	ledger, err := r.fenced(ctx, MetadataShard)
	if err != nil {
		return nil, err
	}
	if _, err := ledger.GetProject(projectID); err != nil {
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

// fenced waits for a linearizable read point on the shard and returns the local replica.
func (r *Router) fenced(ctx context.Context, shardID int) (*fsm.Ledger, error) {
	ledger := r.shards.Ledger(shardID)
	if ledger == nil {
		if addr, ok := r.shards.APIAddrFor(shardID); ok {
			return nil, &backend.ElsewhereError{APIAddr: addr, Shard: shardID}
		}
		return nil, fmt.Errorf("shard %d: %w", shardID, errors.Join(backend.ErrUnavailable, cluster.ErrNotHosted))
	}
	if err := r.shards.LinearizableRead(ctx, shardID); err != nil {
		return nil, backendError(err)
	}
	return ledger, nil
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
