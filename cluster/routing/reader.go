package routing

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Read returns a reader for one request (backend.Backend). It fences each shard it reads once,
// the first time it reads it, so every answer is linearizable and a request that reads one
// shard waits for that shard alone.
func (r *Router) Read(ctx context.Context) (backend.Reader, error) {
	return &reader{ctx: ctx, router: r, fenced: map[int]*ledger.Ledger{}}, nil
}

// reader implements backend.Reader across shards. One request uses it from one goroutine.
type reader struct {
	ctx    context.Context
	router *Router
	fenced map[int]*ledger.Ledger
}

var _ backend.Reader = (*reader)(nil)

func (rd *reader) ledger(shardID int) (*ledger.Ledger, error) {
	if l, ok := rd.fenced[shardID]; ok {
		return l, nil
	}
	l, err := rd.router.fenced(rd.ctx, shardID)
	if err != nil {
		return nil, err
	}
	rd.fenced[shardID] = l
	return l, nil
}

func (rd *reader) meta() (*ledger.Ledger, error) { return rd.ledger(MetadataShard) }

// dataShard returns the replica of a data shard after making sure the project exists: a data
// shard that never saw the project would otherwise say ProjectNotFound for a project that is
// there.
func (rd *reader) dataShard(projectID string, shardID int) (*ledger.Ledger, error) {
	if result, err := rd.router.requireProject(rd.ctx, projectID); err != nil {
		return nil, err
	} else if result != nil {
		return nil, result.Err
	}
	return rd.ledger(shardID)
}

// missingAs turns a data shard's ProjectNotFound (it has not met the project yet) into the
// answer the caller would get from a shard that has.
func missingAs(err error, code fsm.ErrorCode, what string) error {
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == ledger.CodeProjectNotFound {
		return &fsm.Error{Code: code, Message: what + " not found"}
	}
	return err
}

func (rd *reader) GetProject(projectID string) (*ledger.Project, error) {
	l, err := rd.meta()
	if err != nil {
		return nil, err
	}
	return l.GetProject(projectID)
}

func (rd *reader) ListProjects() ([]ledger.Project, error) {
	l, err := rd.meta()
	if err != nil {
		return nil, err
	}
	return l.ListProjects()
}

func (rd *reader) GetAsset(projectID, assetID string) (*ledger.Asset, error) {
	l, err := rd.meta()
	if err != nil {
		return nil, err
	}
	a, err := l.GetAsset(projectID, assetID)
	if err != nil {
		return nil, err
	}
	assets := []ledger.Asset{*a}
	if err := rd.totalSupply(assets); err != nil {
		return nil, err
	}
	return &assets[0], nil
}

func (rd *reader) ListAssets(projectID string) ([]ledger.Asset, error) {
	l, err := rd.meta()
	if err != nil {
		return nil, err
	}
	assets, err := l.ListAssets(projectID)
	if err != nil {
		return nil, err
	}
	return assets, rd.totalSupply(assets)
}

// totalSupply adds to each asset (as shard 0 knows it) the supply its wallets hold in every
// other shard: each shard keeps the supply of its own wallets.
func (rd *reader) totalSupply(assets []ledger.Asset) error {
	if len(assets) == 0 {
		return nil
	}
	projectID := assets[0].ProjectID
	q := shardQuery{Kind: "assets", ProjectID: projectID}
	for shardID := 1; shardID < rd.router.shards.ShardCount(); shardID++ {
		parts, err := shardPart(rd, shardID, q, func(l *ledger.Ledger) ([]ledger.Asset, error) { return l.ListAssets(projectID) })
		if err != nil {
			return err
		}
		for _, part := range parts {
			for i := range assets {
				if assets[i].ID == part.ID {
					if assets[i].Supply, err = assets[i].Supply.Add(part.Supply); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (rd *reader) customerShard(projectID, customerID string) (*ledger.Ledger, error) {
	return rd.dataShard(projectID, rd.router.customerShard(projectID, customerID))
}

func (rd *reader) GetCustomer(projectID, customerID string) (*ledger.Customer, error) {
	l, err := rd.customerShard(projectID, customerID)
	if err != nil {
		return nil, err
	}
	c, err := l.GetCustomer(projectID, customerID)
	return c, missingAs(err, ledger.CodeCustomerNotFound, "customer "+customerID)
}

func (rd *reader) ListCustomerWallets(projectID, customerID string) ([]ledger.Wallet, error) {
	l, err := rd.customerShard(projectID, customerID)
	if err != nil {
		return nil, err
	}
	ws, err := l.ListCustomerWallets(projectID, customerID)
	return ws, missingAs(err, ledger.CodeCustomerNotFound, "customer "+customerID)
}

func (rd *reader) ListSystemWallets(projectID string) ([]ledger.Wallet, error) {
	l, err := rd.customerShard(projectID, "")
	if err != nil {
		return nil, err
	}
	ws, err := l.ListSystemWallets(projectID)
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == ledger.CodeProjectNotFound {
		return []ledger.Wallet{}, nil // the shard has not met the project: no system wallets yet
	}
	return ws, err
}

// idShard is the shard of an ID that carries a slot; ok is false for IDs that cannot exist.
func (rd *reader) idShard(id string) (int, bool) {
	slot, ok := keyspace.SlotOfID(id)
	if !ok {
		return 0, false
	}
	return int(keyspace.ShardOfSlot(slot, rd.router.shards.ShardCount())), true
}

func (rd *reader) walletShard(projectID, walletID string) (*ledger.Ledger, error) {
	shardID, ok := rd.idShard(walletID)
	if !ok {
		if _, err := rd.GetProject(projectID); err != nil {
			return nil, err
		}
		return nil, &fsm.Error{Code: ledger.CodeWalletNotFound, Message: "wallet " + walletID + " not found"}
	}
	return rd.dataShard(projectID, shardID)
}

func (rd *reader) GetWallet(projectID, walletID string) (*ledger.Wallet, error) {
	l, err := rd.walletShard(projectID, walletID)
	if err != nil {
		return nil, err
	}
	w, err := l.GetWallet(projectID, walletID)
	return w, missingAs(err, ledger.CodeWalletNotFound, "wallet "+walletID)
}

func (rd *reader) ListEntries(projectID, walletID string, r ledger.TimeRange, p ledger.PageRequest) ([]ledger.Entry, bool, error) {
	l, err := rd.walletShard(projectID, walletID)
	if err != nil {
		return nil, false, err
	}
	es, more, err := l.ListEntries(projectID, walletID, r, p)
	return es, more, missingAs(err, ledger.CodeWalletNotFound, "wallet "+walletID)
}

func (rd *reader) GetTransaction(projectID, transactionID string) (*ledger.Transaction, error) {
	shardID, ok := rd.idShard(transactionID)
	missing := &fsm.Error{Code: ledger.CodeTransactionNotFound, Message: "transaction " + transactionID + " not found"}
	if !ok {
		if _, err := rd.GetProject(projectID); err != nil {
			return nil, err
		}
		return nil, missing
	}
	l, err := rd.dataShard(projectID, shardID)
	if err != nil {
		return nil, err
	}
	t, err := l.GetTransaction(projectID, transactionID)
	return t, missingAs(err, ledger.CodeTransactionNotFound, "transaction "+transactionID)
}

// eachShard reads every shard's part of a project-wide list, locally or from a node that
// hosts the shard.
func eachShard[T any](rd *reader, q shardQuery, list func(*ledger.Ledger) ([]T, error)) ([]T, error) {
	if _, err := rd.GetProject(q.ProjectID); err != nil {
		return nil, err
	}
	var all []T
	for shardID := 0; shardID < rd.router.shards.ShardCount(); shardID++ {
		items, err := shardPart(rd, shardID, q, list)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	return all, nil
}

// prefixPage asks a shard for everything up to the end of page p: merged with the other shards'
// prefixes and cut, it gives exactly page p of the whole list. The cost grows with the page
// number; page sizes are bounded and deep pages are rare.
func prefixPage(p ledger.PageRequest) ledger.PageRequest {
	return ledger.PageRequest{Page: 1, PageSize: p.Page*p.PageSize + 1}
}

func cut[T any](all []T, p ledger.PageRequest) ([]T, bool) {
	start := min((p.Page-1)*p.PageSize, len(all))
	end := min(start+p.PageSize, len(all))
	return append([]T{}, all[start:end]...), len(all) > end
}

func (rd *reader) ListCustomers(projectID string, p ledger.PageRequest) ([]ledger.Customer, bool, error) {
	q := shardQuery{Kind: "customers", ProjectID: projectID, Page: prefixPage(p)}
	all, err := eachShard(rd, q, func(l *ledger.Ledger) ([]ledger.Customer, error) {
		items, _, err := l.ListCustomers(projectID, q.Page)
		return items, err
	})
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(all, func(a, b ledger.Customer) int { return cmp.Compare(a.ID, b.ID) })
	items, more := cut(all, p)
	return items, more, nil
}

func (rd *reader) ListTransactions(projectID string, r ledger.TimeRange, p ledger.PageRequest) ([]ledger.Transaction, bool, error) {
	q := shardQuery{Kind: "transactions", ProjectID: projectID, Page: prefixPage(p), Range: r}
	all, err := eachShard(rd, q, func(l *ledger.Ledger) ([]ledger.Transaction, error) {
		items, _, err := l.ListTransactions(projectID, r, q.Page)
		return items, err
	})
	if err != nil {
		return nil, false, err
	}
	// Each shard's part is in sequence order and the parts come in shard order, so a stable
	// sort by time orders by (time, shard, sequence): a total order, the same on every node.
	slices.SortStableFunc(all, func(a, b ledger.Transaction) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	items, more := cut(all, p)
	return items, more, nil
}

func (rd *reader) GetHold(projectID, holdID string) (*ledger.Hold, error) {
	l, err := rd.walletShard(projectID, holdID)
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == ledger.CodeWalletNotFound {
		return nil, &fsm.Error{Code: ledger.CodeHoldNotFound, Message: "hold " + holdID + " not found"}
	}
	if err != nil {
		return nil, err
	}
	h, err := l.GetHold(projectID, holdID)
	return h, missingAs(err, ledger.CodeHoldNotFound, "hold "+holdID)
}
