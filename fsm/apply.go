package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// ApplyBatch applies one log entry (shard.StateMachine). Every command gets a *Result; the
// batch's writes and the applied index commit to the store together, so a crash never leaves
// half a batch behind.
func (l *Ledger) ApplyBatch(index uint64, timeUnixMs int64, commands [][]byte) []any {
	if index <= l.applied.Load() {
		return nil
	}
	if timeUnixMs > l.clock.lastTimeMs {
		l.clock.lastTimeMs = timeUnixMs
	}
	a := applier{Ledger: l, batch: l.db.NewBatch(), now: l.clock.lastTimeMs}
	results := make([]any, len(commands))
	for i, raw := range commands {
		cmd, err := DecodeCommand(raw)
		if err != nil {
			// Divergence: the proposer encoded every command, within limits far below the
			// decoder's bounds (a request body is at most 1 MiB, a log entry at most 64 MiB;
			// a string or list may be 1 MiB or 65536 long). A command that does not decode
			// is a corrupt log or a bug, and no replica may guess at it.
			panic(fmt.Sprintf("fsm: log entry %d command %d: %v", index, i, err))
		}
		results[i] = a.apply(&cmd)
	}
	a.flushWallets()
	var indexBytes [8]byte
	binary.BigEndian.PutUint64(indexBytes[:], index)
	a.set(keyApplied, indexBytes[:])
	a.set(keyClock, encodeClock(l.clock))
	if err := a.batch.Commit(pebble.NoSync); err != nil {
		// The store failed (disk, corruption): this replica cannot go on, and must not
		// answer as if the batch were applied.
		panic(fmt.Sprintf("fsm: commit log entry %d: %v", index, err))
	}
	a.batch.Close()
	l.applied.Store(index)
	clear(l.pendingReferences)
	return results
}

// applier applies the commands of one batch into one Pebble batch.
type applier struct {
	*Ledger
	batch        *pebble.Batch
	now          int64
	dirtyWallets []*Wallet // changed in this batch, in first-change order
}

// set and delete panic only on a store failure: a batch refuses writes when it is closed, or
// past Pebble's 4 GiB batch limit, which a 64 MiB log entry's writes stay far below.
func (a *applier) set(k, v []byte) {
	if err := a.batch.Set(k, v, nil); err != nil {
		panic(fmt.Sprintf("fsm: batch set: %v", err))
	}
}

func (a *applier) delete(k []byte) {
	if err := a.batch.Delete(k, nil); err != nil {
		panic(fmt.Sprintf("fsm: batch delete: %v", err))
	}
}

func (a *applier) apply(c *Command) *Result {
	if c.Op != OpCreateProject {
		if _, ok := a.projects[c.ProjectID]; !ok {
			if !c.EnsureProject || !ValidID(c.ProjectID, IDMaxLength) {
				return fail(rejectf(CodeProjectNotFound, "project %q not found", c.ProjectID))
			}
			// The metadata shard holds the project; this data shard keeps a record of its ID
			// so its customers and wallets have a home. Its name lives in shard 0 only.
			p := &Project{ID: c.ProjectID, CreatedAt: a.now}
			a.projects[p.ID] = p
			a.set(key(prefixProject, p.ID), encodeProject(p))
		}
	}
	switch c.Op {
	case OpCreateProject:
		return a.createProject(c)
	case OpRenameProject:
		return a.renameProject(c)
	case OpCreateAsset:
		return a.createAsset(c)
	case OpRenameAsset:
		return a.renameAsset(c)
	case OpDeleteAsset:
		return a.deleteAsset(c)
	case OpUpsertCustomer:
		return a.upsertCustomer(c)
	case OpSuspendCustomer:
		return a.suspendCustomer(c)
	case OpResumeCustomer:
		return a.resumeCustomer(c)
	case OpDeleteCustomer:
		return a.deleteCustomer(c)
	case OpCreateWallet:
		return a.createWallet(c)
	case OpRenameWallet, OpDescribeWallet:
		return a.updateWallet(c)
	case OpSetWalletStatus:
		return a.setWalletStatus(c)
	case OpTransact:
		return a.transact(c)
	case OpMarkAssetUsed:
		return a.markAssetUsed(c)
	case OpCheckProject:
		// A linearizable "does the project exist" for a node that holds no replica of the
		// metadata shard; apply's project check above has answered already (the project is
		// in the map, or the command was rejected). Changes nothing.
		out := *a.projects[c.ProjectID]
		return &Result{Project: &out}
	}
	// A bug only: DecodeCommand refuses op codes outside 1..opEnd−1, and each has a case.
	panic(fmt.Sprintf("fsm: no apply for op %v", c.Op))
}

func fail(err *Error) *Result { return &Result{Err: err} }

func invalid(format string, args ...any) *Result {
	return fail(rejectf(CodeInvalidArgument, format, args...))
}

func (a *applier) createProject(c *Command) *Result {
	if !ValidID(c.ProjectID, IDMaxLength) {
		return invalid("project id must be 1..%d of [A-Za-z0-9_.-]", IDMaxLength)
	}
	if !ValidText(c.Name, NameMaxLength) {
		return invalid("name must be at most %d printable characters", NameMaxLength)
	}
	if _, ok := a.projects[c.ProjectID]; ok {
		return fail(rejectf(CodeProjectExists, "project %q already exists", c.ProjectID))
	}
	p := &Project{ID: c.ProjectID, Name: c.Name, CreatedAt: a.now}
	a.projects[p.ID] = p
	a.set(key(prefixProject, p.ID), encodeProject(p))
	out := *p
	return &Result{Project: &out}
}

func (a *applier) renameProject(c *Command) *Result {
	if !ValidText(c.Name, NameMaxLength) {
		return invalid("name must be at most %d printable characters", NameMaxLength)
	}
	p := a.projects[c.ProjectID]
	p.Name = c.Name
	a.set(key(prefixProject, p.ID), encodeProject(p))
	out := *p
	return &Result{Project: &out}
}

func assetKey(projectID, assetID string) string { return projectID + "\x00" + assetID }

func (a *applier) putAsset(as *Asset) {
	a.set(key(prefixAsset, as.ProjectID, as.ID), encodeAsset(as))
}

func (a *applier) createAsset(c *Command) *Result {
	switch {
	case !ValidID(c.AssetID, IDMaxLength):
		return invalid("asset id must be 1..%d of [A-Za-z0-9_.-]", IDMaxLength)
	case c.Name == "" || !ValidText(c.Name, NameMaxLength):
		return invalid("asset name must be 1..%d printable characters", NameMaxLength)
	case c.Code == "" || !ValidText(c.Code, CodeMaxLength):
		return invalid("asset code must be 1..%d printable characters", CodeMaxLength)
	case c.Fractions == 0:
		return invalid("fractions must be at least 1")
	}
	k := assetKey(c.ProjectID, c.AssetID)
	if _, ok := a.assets[k]; ok {
		return fail(rejectf(CodeAssetExists, "asset %q already exists", c.AssetID))
	}
	as := &Asset{ProjectID: c.ProjectID, ID: c.AssetID, Name: c.Name, Code: c.Code,
		Fractions: c.Fractions, CreatedAt: a.now}
	a.assets[k] = as
	a.putAsset(as)
	out := *as
	return &Result{Asset: &out}
}

func (a *applier) findAsset(c *Command) (*Asset, *Result) {
	as := a.assets[assetKey(c.ProjectID, c.AssetID)]
	if as == nil {
		return nil, fail(rejectf(CodeAssetNotFound, "asset %q not found", c.AssetID))
	}
	return as, nil
}

func (a *applier) renameAsset(c *Command) *Result {
	if c.Name == "" || !ValidText(c.Name, NameMaxLength) {
		return invalid("asset name must be 1..%d printable characters", NameMaxLength)
	}
	as, r := a.findAsset(c)
	if r != nil {
		return r
	}
	as.Name = c.Name
	a.putAsset(as)
	out := *as
	return &Result{Asset: &out}
}

func (a *applier) deleteAsset(c *Command) *Result {
	as, r := a.findAsset(c)
	if r != nil {
		return r
	}
	if as.Used {
		return fail(rejectf(CodeAssetInUse, "asset %q is used by a wallet and cannot be deleted", as.ID))
	}
	delete(a.assets, assetKey(as.ProjectID, as.ID))
	a.delete(key(prefixAsset, as.ProjectID, as.ID))
	out := *as
	return &Result{Asset: &out}
}

func customerKey(projectID, customerID string) string { return projectID + "\x00" + customerID }

func (a *applier) putCustomer(cu *Customer) {
	cu.UpdatedAt = a.now
	a.set(key(prefixCustomer, cu.ProjectID, cu.ID), encodeCustomer(cu))
}

func (a *applier) findCustomer(c *Command) (*Customer, *Result) {
	cu := a.customers[customerKey(c.ProjectID, c.CustomerID)]
	if cu == nil {
		return nil, fail(rejectf(CodeCustomerNotFound, "customer %q not found", c.CustomerID))
	}
	return cu, nil
}

func (a *applier) upsertCustomer(c *Command) *Result {
	switch {
	case !ValidCustomerID(c.CustomerID):
		return invalid("customer id must be 1..%d printable characters without '/'", CustomerIDMaxLength)
	case !ValidText(c.Name, NameMaxLength):
		return invalid("name must be at most %d printable characters", NameMaxLength)
	case !ValidText(c.Description, DescriptionMaxLength):
		return invalid("description must be at most %d printable characters", DescriptionMaxLength)
	}
	k := customerKey(c.ProjectID, c.CustomerID)
	cu := a.customers[k]
	if cu == nil {
		cu = &Customer{ProjectID: c.ProjectID, ID: c.CustomerID, Status: CustomerActive, CreatedAt: a.now}
		a.customers[k] = cu
	}
	if c.SetName {
		cu.Name = c.Name
	}
	if c.SetDescription {
		cu.Description = c.Description
	}
	a.putCustomer(cu)
	out := *cu
	return &Result{Customer: &out}
}

// ownerWallets returns the wallets of a customer ("" = the project's system wallets) in
// creation order.
func (a *applier) ownerWallets(projectID, customerID string) []*Wallet {
	ids := a.customerWallets[customerKey(projectID, customerID)]
	ws := make([]*Wallet, len(ids))
	for i, id := range ids {
		ws[i] = a.wallets[id]
	}
	return ws
}

// putWallet marks a wallet changed; the batch writes each changed wallet once, at its end, so a
// hot wallet in many transactions of one batch costs one write.
func (a *applier) putWallet(w *Wallet) {
	w.UpdatedAt = a.now
	if !w.dirty {
		w.dirty = true
		a.dirtyWallets = append(a.dirtyWallets, w)
	}
}

func (a *applier) flushWallets() {
	for _, w := range a.dirtyWallets {
		a.set(key(prefixWallet, w.ID), encodeWallet(w))
		w.dirty = false
	}
	a.dirtyWallets = a.dirtyWallets[:0]
}

func (a *applier) suspendCustomer(c *Command) *Result {
	cu, r := a.findCustomer(c)
	if r != nil {
		return r
	}
	cu.Status = CustomerSuspended
	a.putCustomer(cu)
	for _, w := range a.ownerWallets(cu.ProjectID, cu.ID) {
		if w.Status == WalletOpen {
			w.Status = WalletSuspendedStatus
			a.putWallet(w)
		}
	}
	out := *cu
	return &Result{Customer: &out}
}

func (a *applier) resumeCustomer(c *Command) *Result {
	cu, r := a.findCustomer(c)
	if r != nil {
		return r
	}
	if len(c.WalletIDs) > ResumeWalletIDsMaxCount {
		return invalid("at most %d wallet ids", ResumeWalletIDsMaxCount)
	}
	// Check every listed wallet before changing anything: all or nothing.
	reopen := make([]*Wallet, 0, len(c.WalletIDs))
	for _, id := range c.WalletIDs {
		w := a.wallets[id]
		if w == nil || w.ProjectID != cu.ProjectID || w.CustomerID != cu.ID {
			return fail(rejectf(CodeWalletNotFound, "wallet %q not found for customer %q", id, cu.ID))
		}
		if w.Status == WalletClosed {
			return fail(rejectf(CodeInvalidStatusTransition, "wallet %q is closed and cannot be reopened", id))
		}
		reopen = append(reopen, w)
	}
	cu.Status = CustomerActive
	a.putCustomer(cu)
	for _, w := range reopen {
		if w.Status != WalletOpen {
			w.Status = WalletOpen
			a.putWallet(w)
		}
	}
	out := *cu
	return &Result{Customer: &out}
}

func (a *applier) deleteCustomer(c *Command) *Result {
	cu, r := a.findCustomer(c)
	if r != nil {
		return r
	}
	for _, w := range a.ownerWallets(cu.ProjectID, cu.ID) {
		if w.Status != WalletClosed {
			return fail(rejectf(CodeCustomerHasOpenWallets, "customer %q has wallet %q that is not closed", cu.ID, w.ID))
		}
	}
	delete(a.customers, customerKey(cu.ProjectID, cu.ID))
	a.delete(key(prefixCustomer, cu.ProjectID, cu.ID))
	out := *cu
	return &Result{Customer: &out}
}

// markAssetUsed records, in the metadata shard, that a wallet of the asset is about to be
// created on some shard: from now on the asset cannot be deleted.
func (a *applier) markAssetUsed(c *Command) *Result {
	as, r := a.findAsset(c)
	if r != nil {
		return r
	}
	if !as.Used {
		as.Used = true
		a.putAsset(as)
	}
	out := *as
	return &Result{Asset: &out}
}

// assetForWallet finds the wallet's asset, recording it from the command's definition when a
// data shard meets it for the first time.
func (a *applier) assetForWallet(c *Command) (*Asset, *Result) {
	if as := a.assets[assetKey(c.ProjectID, c.AssetID)]; as != nil {
		if c.Asset != nil && c.Asset.Fractions != as.Fractions {
			return nil, invalid("asset %q has %d fractions here, the command says %d", as.ID, as.Fractions, c.Asset.Fractions)
		}
		return as, nil
	}
	if c.Asset == nil {
		return nil, fail(rejectf(CodeAssetNotFound, "asset %q not found", c.AssetID))
	}
	d := c.Asset
	if !ValidID(c.AssetID, IDMaxLength) || d.Fractions == 0 || !ValidText(d.Name, NameMaxLength) || !ValidText(d.Code, CodeMaxLength) {
		return nil, invalid("bad asset definition for %q", c.AssetID)
	}
	as := &Asset{ProjectID: c.ProjectID, ID: c.AssetID, Name: d.Name, Code: d.Code, Fractions: d.Fractions, CreatedAt: d.CreatedAt}
	a.assets[assetKey(as.ProjectID, as.ID)] = as
	a.putAsset(as)
	return as, nil
}

func (a *applier) createWallet(c *Command) *Result {
	switch {
	case !ValidID(c.WalletID, GeneratedIDMaxLength):
		return invalid("wallet id must be 1..%d of [A-Za-z0-9_.-]", GeneratedIDMaxLength)
	case !ValidText(c.Name, NameMaxLength):
		return invalid("name must be at most %d printable characters", NameMaxLength)
	case !ValidText(c.Description, DescriptionMaxLength):
		return invalid("description must be at most %d printable characters", DescriptionMaxLength)
	}
	as, r := a.assetForWallet(c)
	if r != nil {
		return r
	}
	if c.CustomerID != "" {
		cu, r := a.findCustomer(c)
		if r != nil {
			return r
		}
		if cu.Status == CustomerSuspended {
			return fail(rejectf(CodeCustomerSuspended, "customer %q is suspended", cu.ID))
		}
	}
	if _, ok := a.wallets[c.WalletID]; ok {
		return fail(rejectf(CodeWalletExists, "wallet %q already exists", c.WalletID))
	}
	w := &Wallet{ID: c.WalletID, ProjectID: c.ProjectID, CustomerID: c.CustomerID,
		AssetID: as.ID, Name: c.Name, Description: c.Description, Status: WalletOpen,
		CreatedAt: a.now}
	a.wallets[w.ID] = w
	owner := customerKey(c.ProjectID, c.CustomerID)
	a.customerWallets[owner] = append(a.customerWallets[owner], w.ID)
	// A uint64 counter of log commands: 2^64 of them, at a billion a second, take 584 years.
	a.clock.walletSequence++
	ownerKey := appendSequence(prefixOf(prefixOwnerWallet, c.ProjectID, c.CustomerID), a.clock.walletSequence)
	a.set(ownerKey, []byte(w.ID))
	a.putWallet(w)
	if !as.Used {
		as.Used = true
		a.putAsset(as)
	}
	out := *w
	return &Result{Wallet: &out}
}

func appendSequence(k []byte, sequence uint64) []byte {
	return binary.BigEndian.AppendUint64(k, sequence)
}

// findWallet returns a wallet of the command's project; another project's wallet is as
// invisible as a missing one.
func (a *applier) findWallet(projectID, walletID string) (*Wallet, *Result) {
	w := a.wallets[walletID]
	if w == nil || w.ProjectID != projectID {
		return nil, fail(rejectf(CodeWalletNotFound, "wallet %q not found", walletID))
	}
	return w, nil
}

func (a *applier) updateWallet(c *Command) *Result {
	w, r := a.findWallet(c.ProjectID, c.WalletID)
	if r != nil {
		return r
	}
	if c.Op == OpRenameWallet {
		if !ValidText(c.Name, NameMaxLength) {
			return invalid("name must be at most %d printable characters", NameMaxLength)
		}
		w.Name = c.Name
	} else {
		if !ValidText(c.Description, DescriptionMaxLength) {
			return invalid("description must be at most %d printable characters", DescriptionMaxLength)
		}
		w.Description = c.Description
	}
	a.putWallet(w)
	out := *w
	return &Result{Wallet: &out}
}

func (a *applier) setWalletStatus(c *Command) *Result {
	if c.Status < WalletOpen || c.Status > WalletClosed {
		return invalid("status must be open, suspended or closed")
	}
	w, r := a.findWallet(c.ProjectID, c.WalletID)
	if r != nil {
		return r
	}
	switch {
	case w.Status == c.Status:
		out := *w
		return &Result{Wallet: &out}
	case w.Status == WalletClosed:
		return fail(rejectf(CodeInvalidStatusTransition, "wallet %q is closed; closed is final", w.ID))
	case c.Status == WalletClosed && (!w.Balance.IsZero() || !w.Held.IsZero()):
		return fail(rejectf(CodeWalletNotEmpty, "wallet %q holds %s and cannot be closed", w.ID, w.Balance))
	case c.Status == WalletOpen && !w.System():
		if cu := a.customers[customerKey(w.ProjectID, w.CustomerID)]; cu != nil && cu.Status == CustomerSuspended {
			return fail(rejectf(CodeCustomerSuspended, "customer %q is suspended; resume the customer first", cu.ID))
		}
	}
	w.Status = c.Status
	a.putWallet(w)
	out := *w
	return &Result{Wallet: &out}
}
