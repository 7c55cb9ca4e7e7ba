package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Read returns a reader for one request (backend.Backend). Every read is a shardQuery: run on
// the local replica when this node hosts the shard, fenced once per request the first time the
// request reads that shard (so a request that reads one shard waits for that shard alone), or
// else sent to a node that hosts it, which fences before it answers. Either way every answer
// is linearizable.
func (r *Router) Read(ctx context.Context) (backend.Reader, error) {
	return r.newReader(ctx), nil
}

func (r *Router) newReader(ctx context.Context) *reader {
	return &reader{ctx: ctx, router: r, fenced: map[int]fence{}}
}

// reader implements backend.Reader across shards. One request uses it from one goroutine.
type reader struct {
	ctx    context.Context
	router *Router
	fenced map[int]fence // hosted shards this request has fenced, and how
}

var _ backend.Reader = (*reader)(nil)

// ask runs q against shardID and returns the answer, or its business rejection as an
// *fsm.Error.
func (rd *reader) ask(shardID int, q shardQuery) (*shardAnswer, error) {
	answer, err := rd.answer(shardID, q)
	if err != nil {
		return nil, err
	}
	if answer.Err != nil {
		return nil, answer.Err
	}
	return answer, nil
}

func (rd *reader) answer(shardID int, q shardQuery) (*shardAnswer, error) {
	ledger := rd.router.shards.Ledger(shardID)
	if ledger == nil {
		return rd.router.askRemote(rd.ctx, shardID, q)
	}
	switch rd.fenced[shardID] {
	case fenceNone:
		err := rd.router.shards.LinearizableRead(rd.ctx, shardID)
		switch {
		case errors.Is(err, cluster.ErrReplicaLagging):
			rd.fenced[shardID] = fenceLagging
			return rd.router.askRemote(rd.ctx, shardID, q)
		case err != nil:
			return nil, backendError(err)
		}
		rd.fenced[shardID] = fenceLocal
	case fenceLagging:
		return rd.router.askRemote(rd.ctx, shardID, q)
	}
	return q.run(rd.router.replica(shardID, ledger))
}

// fence is how a request reads a hosted shard: not fenced yet, on the local replica (fenced),
// or through the leader (the local replica lags: cluster.ErrReplicaLagging).
type fence int

const (
	fenceNone fence = iota
	fenceLocal
	fenceLagging
)

// askData asks a data shard. A data shard that never saw the project says ProjectNotFound for a
// project that may well be there: only then is the metadata shard asked (cached once known),
// and when it has the project, that answer is replaced by unmet, or by an empty answer when
// unmet is nil. So a read of an existing record never waits on shard 0 (as a transfer between
// existing wallets does not: recordMissing).
func (rd *reader) askData(shardID int, q shardQuery, unmet *fsm.Error) (*shardAnswer, error) {
	a, err := rd.ask(shardID, q)
	var rejection *fsm.Error
	if !errors.As(err, &rejection) || rejection.Code != ledger.CodeProjectNotFound {
		return a, err
	}
	if result, err := rd.router.requireProject(rd, q.ProjectID); err != nil {
		return nil, err
	} else if result != nil {
		return nil, result.Err
	}
	if unmet != nil {
		return nil, unmet
	}
	return &shardAnswer{}, nil
}

// notFound is the rejection for a record that is not there, worded as the shard words it
// (kind "wallet", id quoted: wallet "w01..." not found).
func notFound(code fsm.ErrorCode, kind, id string) *fsm.Error {
	return missing(code, fmt.Sprintf("%s %q", kind, id))
}

// missing is the rejection for a record that is not there, what naming it already.
func missing(code fsm.ErrorCode, what string) *fsm.Error {
	return &fsm.Error{Code: code, Message: what + " not found"}
}

func (rd *reader) GetProject(projectID string) (*ledger.Project, error) {
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryGetProject, ProjectID: projectID})
	if err != nil {
		return nil, err
	}
	// Its assets carry their supply over every shard, as GetAsset's do (they carried shard 0's).
	if err := rd.totalSupply(a.Project.Assets); err != nil {
		return nil, err
	}
	return a.Project, nil
}

func (rd *reader) ListProjects() ([]ledger.Project, error) {
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryListProjects})
	if err != nil {
		return nil, err
	}
	return a.Projects, nil
}

func (rd *reader) GetAsset(projectID, assetID string) (*ledger.Asset, error) {
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryGetAsset, ProjectID: projectID, ID: assetID})
	if err != nil {
		return nil, err
	}
	assets := []ledger.Asset{*a.Asset}
	if err := rd.totalSupply(assets); err != nil {
		return nil, err
	}
	return &assets[0], nil
}

// AssetFractions answers a used asset's fractions from the router's cache of used assets
// (usedAssets: a used asset is never deleted and its fractions never change, so the answer is
// the one a read would give); any other asset is read from the metadata shard, and cached once
// that read shows it used. An unused asset is never cached: it may be deleted, and an asset of
// the same ID created again with other fractions.
func (rd *reader) AssetFractions(projectID, assetID string) (uint64, error) {
	if definition, ok := rd.router.usedAssets.Load(usedAssetKey(projectID, assetID)); ok {
		return definition.(ledger.AssetDefinition).Fractions, nil
	}
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryGetAsset, ProjectID: projectID, ID: assetID})
	if err != nil {
		return 0, err
	}
	if a.Asset.Used {
		rd.router.rememberUsedAsset(projectID, assetID, a.Asset)
	}
	return a.Asset.Fractions, nil
}

func (rd *reader) ListAssets(projectID string) ([]ledger.Asset, error) {
	a, err := rd.ask(MetadataShard, shardQuery{Kind: queryListAssets, ProjectID: projectID})
	if err != nil {
		return nil, err
	}
	return a.Assets, rd.totalSupply(a.Assets)
}

// totalSupply adds to each asset (as shard 0 knows it) the supply its wallets hold in every
// other shard: each shard keeps the supply of its own wallets.
func (rd *reader) totalSupply(assets []ledger.Asset) error {
	if len(assets) == 0 {
		return nil
	}
	q := shardQuery{Kind: queryListAssets, ProjectID: assets[0].ProjectID}
	for shardID := 1; shardID < rd.router.shards.ShardCount(); shardID++ {
		parts, err := shardPart(rd, shardID, q, func(a *shardAnswer) []ledger.Asset { return a.Assets })
		if err != nil {
			return err
		}
		for _, part := range parts {
			for i := range assets {
				if assets[i].ID == part.ID {
					// Each part fits 128 bits, the total may not (ledger.Asset.SupplyCarry):
					// a read answers it exactly rather than failing.
					sum, carry := bits.Add64(assets[i].Supply.Lo, part.Supply.Lo, 0)
					hi, carry := bits.Add64(assets[i].Supply.Hi, part.Supply.Hi, carry)
					assets[i].Supply = fsm.Amount{Hi: hi, Lo: sum}
					assets[i].SupplyCarry += carry
				}
			}
		}
	}
	return nil
}

func (rd *reader) customerShard(projectID, customerID string) int {
	return rd.router.customerShard(projectID, customerID)
}

func (rd *reader) GetCustomer(projectID, customerID string) (*ledger.Customer, error) {
	a, err := rd.askData(rd.customerShard(projectID, customerID),
		shardQuery{Kind: queryGetCustomer, ProjectID: projectID, CustomerID: customerID},
		notFound(ledger.CodeCustomerNotFound, "customer", customerID))
	if err != nil {
		return nil, err
	}
	return a.Customer, nil
}

func (rd *reader) ListCustomerWallets(projectID, customerID string) ([]ledger.Wallet, error) {
	a, err := rd.askData(rd.customerShard(projectID, customerID),
		shardQuery{Kind: queryListCustomerWallets, ProjectID: projectID, CustomerID: customerID},
		notFound(ledger.CodeCustomerNotFound, "customer", customerID))
	if err != nil {
		return nil, err
	}
	return a.Wallets, nil
}

// ListSystemWallets: a shard that has not met the project has no system wallets yet.
func (rd *reader) ListSystemWallets(projectID string) ([]ledger.Wallet, error) {
	a, err := rd.askData(rd.customerShard(projectID, ""), shardQuery{Kind: queryListSystemWallets, ProjectID: projectID}, nil)
	if err != nil {
		return nil, err
	}
	return a.Wallets, nil
}

// idShard is the shard of an ID that carries a slot; ok is false for IDs that cannot exist.
func (rd *reader) idShard(id string) (int, bool) {
	slot, ok := keyspace.SlotOfID(id)
	if !ok {
		return 0, false
	}
	return int(keyspace.ShardOfSlot(slot, rd.router.shards.ShardCount())), true
}

// askByID asks the shard of q.ID (a wallet or transaction ID) about it. An ID that carries no
// slot names nothing: missing, once the project is known to exist.
func (rd *reader) askByID(q shardQuery, missing *fsm.Error) (*shardAnswer, error) {
	shardID, ok := rd.idShard(q.ID)
	if !ok {
		if _, err := rd.GetProject(q.ProjectID); err != nil {
			return nil, err
		}
		return nil, missing
	}
	return rd.askData(shardID, q, missing)
}

func (rd *reader) GetWallet(projectID, walletID string) (*ledger.Wallet, error) {
	a, err := rd.askByID(shardQuery{Kind: queryGetWallet, ProjectID: projectID, ID: walletID},
		notFound(ledger.CodeWalletNotFound, "wallet", walletID))
	if err != nil {
		return nil, err
	}
	return a.Wallet, nil
}

func (rd *reader) ListEntries(projectID, walletID string, r ledger.TimeRange, p ledger.PageRequest) ([]ledger.Entry, bool, error) {
	a, err := rd.askByID(shardQuery{Kind: queryListEntries, ProjectID: projectID, ID: walletID, Range: r, Page: p},
		notFound(ledger.CodeWalletNotFound, "wallet", walletID))
	if err != nil {
		return nil, false, err
	}
	return a.Entries, a.HasMore, nil
}

func (rd *reader) GetTransaction(projectID, transactionID string) (*ledger.Transaction, error) {
	a, err := rd.askByID(shardQuery{Kind: queryGetTransaction, ProjectID: projectID, ID: transactionID},
		notFound(ledger.CodeTransactionNotFound, "transaction", transactionID))
	if err != nil {
		return nil, err
	}
	return a.Transaction, nil
}

func (rd *reader) GetHold(projectID, holdID string) (*ledger.Hold, error) {
	a, err := rd.askByID(shardQuery{Kind: queryGetHold, ProjectID: projectID, ID: holdID},
		notFound(ledger.CodeHoldNotFound, "hold", holdID))
	if err != nil {
		return nil, err
	}
	return a.Hold, nil
}

// shardPart returns one shard's part of a project-wide list. A shard that has not met the
// project has no part.
func shardPart[T any](rd *reader, shardID int, q shardQuery, items func(*shardAnswer) []T) ([]T, error) {
	a, err := rd.ask(shardID, q)
	var rejection *fsm.Error
	if errors.As(err, &rejection) && rejection.Code == ledger.CodeProjectNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return items(a), nil
}

// eachShard reads every shard's part of a project-wide list.
func eachShard[T any](rd *reader, q shardQuery, items func(*shardAnswer) []T) ([]T, error) {
	if _, err := rd.GetProject(q.ProjectID); err != nil {
		return nil, err
	}
	var all []T
	for shardID := 0; shardID < rd.router.shards.ShardCount(); shardID++ {
		part, err := shardPart(rd, shardID, q, items)
		if err != nil {
			return nil, err
		}
		all = append(all, part...)
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

// onlyShardPage answers a list of a one-shard cluster from its shard as asked: nothing to merge,
// and the shard skips the page's offset itself (the prefix of every shard that a merge needs
// made page n cost n pages).
func onlyShardPage[T any](rd *reader, q shardQuery, items func(*shardAnswer) []T) ([]T, bool, error) {
	a, err := rd.ask(MetadataShard, q)
	if err != nil {
		return nil, false, err
	}
	return append([]T{}, items(a)...), a.HasMore, nil
}

func (rd *reader) ListCustomers(projectID string, p ledger.PageRequest) ([]ledger.Customer, bool, error) {
	if rd.router.shards.ShardCount() == 1 {
		return onlyShardPage(rd, shardQuery{Kind: queryListCustomers, ProjectID: projectID, Page: p},
			func(a *shardAnswer) []ledger.Customer { return a.Customers })
	}
	q := shardQuery{Kind: queryListCustomers, ProjectID: projectID, Page: prefixPage(p)}
	all, err := eachShard(rd, q, func(a *shardAnswer) []ledger.Customer { return a.Customers })
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(all, func(a, b ledger.Customer) int { return cmp.Compare(a.ID, b.ID) })
	items, more := cut(all, p)
	return items, more, nil
}

func (rd *reader) ListTransactions(projectID string, r ledger.TimeRange, p ledger.PageRequest) ([]ledger.Transaction, bool, error) {
	if rd.router.shards.ShardCount() == 1 {
		return onlyShardPage(rd, shardQuery{Kind: queryListTransactions, ProjectID: projectID, Page: p, Range: r},
			func(a *shardAnswer) []ledger.Transaction { return a.Transactions })
	}
	q := shardQuery{Kind: queryListTransactions, ProjectID: projectID, Page: prefixPage(p), Range: r}
	all, err := eachShard(rd, q, func(a *shardAnswer) []ledger.Transaction { return a.Transactions })
	if err != nil {
		return nil, false, err
	}
	// Each shard's part is in sequence order and the parts come in shard order, so a stable
	// sort by time orders by (time, shard, sequence): a total order, the same on every node.
	slices.SortStableFunc(all, func(a, b ledger.Transaction) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	items, more := cut(all, p)
	return items, more, nil
}

// accountShard asks the shard of a foreign ID's account (its customer's).
func (rd *reader) accountShard(q shardQuery) (*shardAnswer, error) {
	return rd.askData(rd.router.customerShard(q.ProjectID, q.CustomerID), q,
		&fsm.Error{Code: gigawallet.CodeAccountNotFound, Message: "account not found: " + q.CustomerID})
}

func (rd *reader) GetAccount(projectID, foreignID string) (*gigawallet.Account, error) {
	a, err := rd.accountShard(shardQuery{Kind: queryGetAccount, ProjectID: projectID, CustomerID: foreignID})
	if err != nil {
		return nil, err
	}
	return a.Account, nil
}

func (rd *reader) NextAccountIndex(projectID, foreignID string) (uint32, error) {
	a, err := rd.ask(rd.router.customerShard(projectID, foreignID),
		shardQuery{Kind: queryNextAccountIndex, ProjectID: projectID, CustomerID: foreignID})
	if err != nil {
		return 0, err
	}
	return a.AccountIndex, nil
}
