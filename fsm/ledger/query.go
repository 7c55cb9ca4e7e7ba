package ledger

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"
	"github.com/gigaledger/gigaledger/fsm"
)

// Queries read the store, never the apply goroutine's memory: each sees the state as of the
// last committed batch. Callers that need linearizable reads wait for the shard's read index
// first (cluster.LinearizableRead); the ledger itself only promises committed, consistent data.

// PageRequest selects one page of a list: Page counts from 1.
type PageRequest struct {
	Page, PageSize int
}

// TimeRange selects by creation time in Unix milliseconds, both ends inclusive.
type TimeRange struct {
	FromMs, ToMs int64
}

func (p PageRequest) offset() (skip, take int, err error) {
	if p.Page < 1 || p.PageSize < 1 {
		return 0, 0, fmt.Errorf("fsm: bad page %d/%d", p.Page, p.PageSize)
	}
	if p.Page-1 > math.MaxInt/p.PageSize {
		return 0, 0, fmt.Errorf("fsm: page %d too far", p.Page)
	}
	return (p.Page - 1) * p.PageSize, p.PageSize, nil
}

// read runs fn with the store held against Restore swapping it.
func (l *Ledger) read(fn func() error) error { return l.store.Read(fn) }

// GetProject returns a project with its assets.
func (l *Ledger) GetProject(projectID string) (*Project, error) {
	var p *Project
	err := l.read(func() error {
		v, err := l.get(key(prefixProject, projectID))
		if err != nil {
			return err
		}
		if v == nil {
			return rejectf(CodeProjectNotFound, "project %q not found", projectID)
		}
		if p, err = decodeProject(v); err != nil {
			return err
		}
		p.Assets, err = l.listAssets(projectID)
		return err
	})
	return p, err
}

// ListProjects returns every project (without assets), by ID.
func (l *Ledger) ListProjects() ([]Project, error) {
	projects := []Project{}
	err := l.read(func() error {
		return l.store.Scan([]byte{prefixProject}, func(k, v []byte) error {
			p, err := decodeProject(v)
			if err == nil {
				projects = append(projects, *p)
			}
			return err
		})
	})
	return projects, err
}

func (l *Ledger) projectExists(projectID string) error {
	v, err := l.get(key(prefixProject, projectID))
	if err != nil {
		return err
	}
	if v == nil {
		return rejectf(CodeProjectNotFound, "project %q not found", projectID)
	}
	return nil
}

func (l *Ledger) listAssets(projectID string) ([]Asset, error) {
	assets := []Asset{}
	err := l.store.Scan(prefixOf(prefixAsset, projectID), func(k, v []byte) error {
		a, err := decodeAsset(v)
		if err == nil {
			assets = append(assets, *a)
		}
		return err
	})
	return assets, err
}

// ListAssets returns a project's assets by ID.
func (l *Ledger) ListAssets(projectID string) ([]Asset, error) {
	var assets []Asset
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		var err error
		assets, err = l.listAssets(projectID)
		return err
	})
	return assets, err
}

// GetAsset returns one asset.
func (l *Ledger) GetAsset(projectID, assetID string) (*Asset, error) {
	return getInProject(l, projectID, key(prefixAsset, projectID, assetID),
		rejectf(CodeAssetNotFound, "asset %q not found", assetID), decodeAsset)
}

// AssetFractions returns an asset's fractions (backend.Reader).
func (l *Ledger) AssetFractions(projectID, assetID string) (uint64, error) {
	asset, err := l.GetAsset(projectID, assetID)
	if err != nil {
		return 0, err
	}
	return asset.Fractions, nil
}

// GetCustomer returns one customer.
func (l *Ledger) GetCustomer(projectID, customerID string) (*Customer, error) {
	return getInProject(l, projectID, key(prefixCustomer, projectID, customerID),
		rejectf(CodeCustomerNotFound, "customer %q not found", customerID), decodeCustomer)
}

// getInProject reads one record of a project: ProjectNotFound when the project is missing,
// missing when the record is.
func getInProject[T any](l *Ledger, projectID string, k []byte, missing *fsm.Error, decode func([]byte) (*T, error)) (*T, error) {
	var record *T
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		v, err := l.get(k)
		if err != nil {
			return err
		}
		if v == nil {
			return missing
		}
		record, err = decode(v)
		return err
	})
	return record, err
}

// pageScan calls fn for the page's records in [lower, upper), in key order, and reports
// whether more follow.
func (l *Ledger) pageScan(lower, upper []byte, p PageRequest, fn func(k, v []byte) error) (bool, error) {
	if _, _, err := p.offset(); err != nil {
		return false, err
	}
	it, err := l.store.NewIter(lower, upper)
	if err != nil {
		return false, err
	}
	defer it.Close()
	return pageOf(it, p, fn)
}

// pageOf calls fn for the page's records of it, within its bounds, and reports whether more
// follow.
func pageOf(it *pebble.Iterator, p PageRequest, fn func(k, v []byte) error) (bool, error) {
	skip, take, err := p.offset()
	if err != nil {
		return false, err
	}
	hasMore := false
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if n < skip {
			n++
			continue
		}
		if n >= skip+take {
			hasMore = true
			break
		}
		if err := fn(it.Key(), it.Value()); err != nil {
			return false, err
		}
		n++
	}
	return hasMore, it.Error()
}

// ListCustomers returns one page of a project's customers, by ID.
func (l *Ledger) ListCustomers(projectID string, p PageRequest) ([]Customer, bool, error) {
	customers := []Customer{}
	var hasMore bool
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		prefix := prefixOf(prefixCustomer, projectID)
		var err error
		hasMore, err = l.pageScan(prefix, fsm.PrefixEnd(prefix), p, func(k, v []byte) error {
			c, err := decodeCustomer(v)
			if err == nil {
				customers = append(customers, *c)
			}
			return err
		})
		return err
	})
	return customers, hasMore, err
}

func (l *Ledger) ownerWallets(projectID, customerID string) ([]Wallet, error) {
	wallets := []Wallet{}
	err := l.store.Scan(prefixOf(prefixOwnerWallet, projectID, customerID), func(k, v []byte) error {
		w, err := l.walletByID(string(v))
		if err == nil {
			wallets = append(wallets, *w)
		}
		return err
	})
	return wallets, err
}

// WalletsInView returns a reader of the project's wallets as a View of the store holds them
// (nil when there is none), for checkers that compare them with other records of the same
// view. It replays the view's open wallet epoch (the chain records since it began) once and
// lays those balances over the records.
func (l *Ledger) WalletsInView(view *fsm.View) (func(projectID, walletID string) (*Wallet, error), error) {
	balances, err := viewEpochBalances(view)
	if err != nil {
		return nil, err
	}
	return func(projectID, walletID string) (*Wallet, error) {
		v, err := fsm.GetView(view, key(prefixWallet, walletID))
		if err != nil || v == nil {
			return nil, err
		}
		w, err := decodeWallet(v)
		if err != nil || w.ProjectID != projectID {
			return nil, err
		}
		balances[walletID].layOn(w)
		return w, nil
	}, nil
}

func (l *Ledger) walletByID(walletID string) (*Wallet, error) {
	w, err := l.storedWallet(walletID)
	if err == nil && w == nil {
		err = errMissingWallet(walletID)
	}
	return w, err
}

// storedWallet reads a wallet's record with the open epoch's balance laid over it (nil when
// there is none). See walletOverlay for why the lock spans the read.
func (l *Ledger) storedWallet(walletID string) (*Wallet, error) {
	l.overlay.mu.RLock()
	defer l.overlay.mu.RUnlock()
	v, err := l.get(key(prefixWallet, walletID))
	if err != nil || v == nil {
		return nil, err
	}
	w, err := decodeWallet(v)
	if err != nil {
		return nil, err
	}
	l.overlay.lay(w)
	return w, nil
}

func errMissingWallet(walletID string) *fsm.Error {
	return rejectf(CodeWalletNotFound, "wallet %q not found", walletID)
}

func errMissingHold(holdID string) *fsm.Error {
	return rejectf(CodeHoldNotFound, "hold %q not found", holdID)
}

// ListCustomerWallets returns a customer's wallets in creation order, closed ones included.
func (l *Ledger) ListCustomerWallets(projectID, customerID string) ([]Wallet, error) {
	var wallets []Wallet
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		v, err := l.get(key(prefixCustomer, projectID, customerID))
		if err != nil {
			return err
		}
		if v == nil {
			return rejectf(CodeCustomerNotFound, "customer %q not found", customerID)
		}
		wallets, err = l.ownerWallets(projectID, customerID)
		return err
	})
	return wallets, err
}

// ListSystemWallets returns a project's system wallets in creation order.
func (l *Ledger) ListSystemWallets(projectID string) ([]Wallet, error) {
	var wallets []Wallet
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		var err error
		wallets, err = l.ownerWallets(projectID, "")
		return err
	})
	return wallets, err
}

// GetWallet returns one wallet of a project; another project's wallet is not found.
//
// The wallet is read first: a wallet of the project proves the project is here (the ledger
// creates a wallet only in a project this shard holds, in the same batch at the latest, and
// deletes neither), so the project is read only to tell a missing project from a missing
// wallet. One store read instead of two on the common path.
func (l *Ledger) GetWallet(projectID, walletID string) (*Wallet, error) {
	var w *Wallet
	err := l.read(func() error {
		var err error
		if w, err = l.storedWallet(walletID); err != nil || w != nil && w.ProjectID == projectID {
			return err
		}
		w = nil
		return l.missingWallet(projectID, walletID)
	})
	return w, err
}

// missingWallet is the rejection for a wallet that is not the project's: ProjectNotFound when
// the project is not here either.
func (l *Ledger) missingWallet(projectID, walletID string) error {
	if err := l.projectExists(projectID); err != nil {
		return err
	}
	return errMissingWallet(walletID)
}

func timeBounds(prefix []byte, r TimeRange) (lower, upper []byte) {
	lower = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(max(r.FromMs, 0)))
	if r.ToMs < 0 || r.ToMs == math.MaxInt64 {
		if r.ToMs < 0 {
			return lower, lower
		}
		return lower, fsm.PrefixEnd(prefix)
	}
	upper = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), uint64(r.ToMs+1))
	return lower, upper
}

// ListEntries returns one page of a wallet's entries created within r, oldest first.
func (l *Ledger) ListEntries(projectID, walletID string, r TimeRange, p PageRequest) ([]Entry, bool, error) {
	var entries []Entry
	var hasMore bool
	err := l.read(func() error {
		skip, take, err := p.offset()
		if err != nil {
			return err
		}
		// The wallet proves its project is here (GetWallet); its entry count and newest entry
		// are the state the page is read as of (entries.go).
		w, err := l.storedWallet(walletID)
		if err != nil {
			return err
		}
		if w == nil || w.ProjectID != projectID {
			return l.missingWallet(projectID, walletID)
		}
		we, err := l.storeSource().entriesOf(w)
		if err != nil {
			return err
		}
		entries, hasMore, err = we.page(r, skip, take)
		return err
	})
	if entries == nil {
		entries = []Entry{}
	}
	return entries, hasMore, err
}

// GetTransaction returns one transaction of a project. The ID's last digits are the shard's
// transaction sequence, which is the record's key.
func (l *Ledger) GetTransaction(projectID, transactionID string) (*Transaction, error) {
	var t *Transaction
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		missing := rejectf(CodeTransactionNotFound, "transaction %q not found", transactionID)
		sequence, ok := transactionSequence(transactionID)
		if !ok {
			return missing
		}
		v, err := l.transactionRecord(projectID, sequence)
		if err != nil {
			return err
		}
		if v == nil {
			return missing
		}
		if t, err = decodeTransaction(v); err == nil && t.ID != transactionID {
			t, err = nil, missing
		}
		return err
	})
	return t, err
}

// ListTransactions returns one page of a project's transactions created within r, oldest first.
func (l *Ledger) ListTransactions(projectID string, r TimeRange, p PageRequest) ([]Transaction, bool, error) {
	transactions := []Transaction{}
	var hasMore bool
	err := l.read(func() error {
		if err := l.projectExists(projectID); err != nil {
			return err
		}
		skip, take, err := p.offset()
		if err != nil {
			return err
		}
		transactions, hasMore, err = l.listTransactions(projectID, r, skip, take)
		return err
	})
	return transactions, hasMore, err
}

// firstSequenceAtOrAfter finds, by binary search over sequences, the first transaction created
// at or after fromMs: sequences grow with time, so the search needs no time index.
func firstSequenceAtOrAfter(it *pebble.Iterator, prefix []byte, fromMs int64) (uint64, error) {
	if !it.Last() {
		return 0, it.Error()
	}
	low, high := uint64(0), binary.BigEndian.Uint64(it.Key()[len(prefix):])+1
	for low < high {
		mid := low + (high-low)/2
		if !it.SeekGE(appendSequence(append([]byte(nil), prefix...), mid)) {
			high = mid
			continue
		}
		t, err := decodeTransaction(it.Value())
		if err != nil {
			return 0, err
		}
		if t.CreatedAt < fromMs {
			low = t.Sequence + 1
		} else {
			high = mid
		}
	}
	return low, nil
}

// GetHold returns one hold of a project.
func (l *Ledger) GetHold(projectID, holdID string) (*Hold, error) {
	return getInProject(l, projectID, holdKey(projectID, holdID),
		errMissingHold(holdID), decodeHold)
}
