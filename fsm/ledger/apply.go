package ledger

import (
	"github.com/gigaledger/gigaledger/fsm"
)

func (l *Ledger) createProject(c *CreateProject) *fsm.Result {
	if !fsm.ValidID(c.ProjectID, fsm.IDMaxLength) {
		return invalid("project id must be 1..%d of [A-Za-z0-9_.-]", fsm.IDMaxLength)
	}
	if !fsm.ValidText(c.Name, fsm.NameMaxLength) {
		return invalid("name must be at most %d printable characters", fsm.NameMaxLength)
	}
	if _, ok := l.projects[c.ProjectID]; ok {
		return fail(rejectf(CodeProjectExists, "project %q already exists", c.ProjectID))
	}
	p := &Project{ID: c.ProjectID, Name: c.Name, CreatedAt: l.b.Now}
	l.projects[p.ID] = p
	l.set(key(prefixProject, p.ID), record(p))
	out := *p
	return &fsm.Result{Value: &out}
}

func (l *Ledger) renameProject(c *RenameProject) *fsm.Result {
	if !fsm.ValidText(c.Name, fsm.NameMaxLength) {
		return invalid("name must be at most %d printable characters", fsm.NameMaxLength)
	}
	p := l.projects[c.ProjectID]
	p.Name = c.Name
	l.set(key(prefixProject, p.ID), record(p))
	out := *p
	return &fsm.Result{Value: &out}
}

func assetKey(projectID, assetID string) string { return projectID + "\x00" + assetID }

func (l *Ledger) putAsset(as *Asset) {
	l.set(key(prefixAsset, as.ProjectID, as.ID), record(as))
}

func (l *Ledger) createAsset(c *CreateAsset) *fsm.Result {
	switch {
	case !fsm.ValidID(c.AssetID, fsm.IDMaxLength):
		return invalid("asset id must be 1..%d of [A-Za-z0-9_.-]", fsm.IDMaxLength)
	case c.Name == "" || !fsm.ValidText(c.Name, fsm.NameMaxLength):
		return invalid("asset name must be 1..%d printable characters", fsm.NameMaxLength)
	case c.Code == "" || !fsm.ValidText(c.Code, fsm.CodeMaxLength):
		return invalid("asset code must be 1..%d printable characters", fsm.CodeMaxLength)
	case c.Fractions == 0:
		return invalid("fractions must be at least 1")
	}
	k := assetKey(c.ProjectID, c.AssetID)
	if _, ok := l.assets[k]; ok {
		return fail(rejectf(CodeAssetExists, "asset %q already exists", c.AssetID))
	}
	as := &Asset{ProjectID: c.ProjectID, ID: c.AssetID, Name: c.Name, Code: c.Code,
		Fractions: c.Fractions, CreatedAt: l.b.Now}
	l.assets[k] = as
	l.putAsset(as)
	out := *as
	return &fsm.Result{Value: &out}
}

func (l *Ledger) findAsset(projectID, assetID string) (*Asset, *fsm.Result) {
	as := l.assets[assetKey(projectID, assetID)]
	if as == nil {
		return nil, fail(rejectf(CodeAssetNotFound, "asset %q not found", assetID))
	}
	return as, nil
}

func (l *Ledger) renameAsset(c *RenameAsset) *fsm.Result {
	if c.Name == "" || !fsm.ValidText(c.Name, fsm.NameMaxLength) {
		return invalid("asset name must be 1..%d printable characters", fsm.NameMaxLength)
	}
	as, r := l.findAsset(c.ProjectID, c.AssetID)
	if r != nil {
		return r
	}
	as.Name = c.Name
	l.putAsset(as)
	out := *as
	return &fsm.Result{Value: &out}
}

func (l *Ledger) deleteAsset(c *DeleteAsset) *fsm.Result {
	as, r := l.findAsset(c.ProjectID, c.AssetID)
	if r != nil {
		return r
	}
	if as.Used {
		return fail(rejectf(CodeAssetInUse, "asset %q is used by a wallet and cannot be deleted", as.ID))
	}
	delete(l.assets, assetKey(as.ProjectID, as.ID))
	l.delete(key(prefixAsset, as.ProjectID, as.ID))
	out := *as
	return &fsm.Result{Value: &out}
}

func customerKey(projectID, customerID string) string { return projectID + "\x00" + customerID }

func (l *Ledger) putCustomer(cu *Customer) {
	cu.UpdatedAt = l.b.Now
	l.set(key(prefixCustomer, cu.ProjectID, cu.ID), record(cu))
}

func (l *Ledger) findCustomer(projectID, customerID string) (*Customer, *fsm.Result) {
	cu := l.customers[customerKey(projectID, customerID)]
	if cu == nil {
		return nil, fail(rejectf(CodeCustomerNotFound, "customer %q not found", customerID))
	}
	return cu, nil
}

func (l *Ledger) upsertCustomer(c *UpsertCustomer) *fsm.Result {
	switch {
	case !fsm.ValidCustomerID(c.CustomerID):
		return invalid("customer id must be 1..%d printable characters without '/'", fsm.CustomerIDMaxLength)
	case !fsm.ValidText(c.Name, fsm.NameMaxLength):
		return invalid("name must be at most %d printable characters", fsm.NameMaxLength)
	case !fsm.ValidText(c.Description, fsm.DescriptionMaxLength):
		return invalid("description must be at most %d printable characters", fsm.DescriptionMaxLength)
	}
	k := customerKey(c.ProjectID, c.CustomerID)
	cu := l.customers[k]
	if cu == nil {
		cu = &Customer{ProjectID: c.ProjectID, ID: c.CustomerID, Status: CustomerActive, CreatedAt: l.b.Now}
		l.customers[k] = cu
	}
	if c.SetName {
		cu.Name = c.Name
	}
	if c.SetDescription {
		cu.Description = c.Description
	}
	l.putCustomer(cu)
	out := *cu
	return &fsm.Result{Value: &out}
}

// liveOwnerWallets returns the wallets of a customer ("" = the project's system wallets) in
// creation order.
func (l *Ledger) liveOwnerWallets(projectID, customerID string) []*Wallet {
	return l.liveOwnerWalletsOf(projectID, customerID)
}

// putWallet marks a wallet changed; the batch writes each changed wallet once, at its end, so a
// hot wallet in many transactions of one batch costs one write.
func (l *Ledger) putWallet(w *Wallet) {
	l.changeWallet(w)
	w.fullChange = true
}

// putWalletBalance marks a wallet whose only change is entries a transaction posted (its
// balance, entry count and update time follow from the newest): a wallet epoch may defer its
// write (epochs.go).
func (l *Ledger) putWalletBalance(w *Wallet) { l.changeWallet(w) }

func (l *Ledger) changeWallet(w *Wallet) {
	w.UpdatedAt = l.b.Now
	if !w.dirty {
		w.dirty = true
		lw, ok := l.wallets.live[w.ID]
		if !ok || lw.w != w {
			// Not one of the batch's own wallets (Ledger.wallet, addWallet), which no code
			// changes: its record is written at once, never deferred.
			lw = liveWallet{w: w, slot: noSlot}
			w.fullChange = true
		}
		l.dirtyWallets = append(l.dirtyWallets, lw)
	}
}

func (l *Ledger) suspendCustomer(c *SuspendCustomer) *fsm.Result {
	cu, r := l.findCustomer(c.ProjectID, c.CustomerID)
	if r != nil {
		return r
	}
	cu.Status = CustomerSuspended
	l.putCustomer(cu)
	for _, w := range l.liveOwnerWallets(cu.ProjectID, cu.ID) {
		if w.Status == WalletOpen {
			w.Status = WalletSuspendedStatus
			l.putWallet(w)
			l.emitWalletStatus(w)
		}
	}
	out := *cu
	return &fsm.Result{Value: &out}
}

func (l *Ledger) resumeCustomer(c *ResumeCustomer) *fsm.Result {
	cu, r := l.findCustomer(c.ProjectID, c.CustomerID)
	if r != nil {
		return r
	}
	if len(c.WalletIDs) > fsm.ResumeWalletIDsMaxCount {
		return invalid("at most %d wallet ids", fsm.ResumeWalletIDsMaxCount)
	}
	// Check every listed wallet before changing anything: all or nothing.
	reopen := make([]*Wallet, 0, len(c.WalletIDs))
	for _, id := range c.WalletIDs {
		w := l.wallet(id)
		if w == nil || w.ProjectID != cu.ProjectID || w.CustomerID != cu.ID {
			return fail(rejectf(CodeWalletNotFound, "wallet %q not found for customer %q", id, cu.ID))
		}
		if w.Status == WalletClosed {
			return fail(rejectf(CodeInvalidStatusTransition, "wallet %q is closed and cannot be reopened", id))
		}
		reopen = append(reopen, w)
	}
	cu.Status = CustomerActive
	l.putCustomer(cu)
	for _, w := range reopen {
		if w.Status != WalletOpen {
			w.Status = WalletOpen
			l.putWallet(w)
			l.emitWalletStatus(w)
		}
	}
	out := *cu
	return &fsm.Result{Value: &out}
}

func (l *Ledger) deleteCustomer(c *DeleteCustomer) *fsm.Result {
	cu, r := l.findCustomer(c.ProjectID, c.CustomerID)
	if r != nil {
		return r
	}
	for _, w := range l.liveOwnerWallets(cu.ProjectID, cu.ID) {
		if w.Status != WalletClosed {
			return fail(rejectf(CodeCustomerHasOpenWallets, "customer %q has wallet %q that is not closed", cu.ID, w.ID))
		}
	}
	delete(l.customers, customerKey(cu.ProjectID, cu.ID))
	l.delete(key(prefixCustomer, cu.ProjectID, cu.ID))
	out := *cu
	return &fsm.Result{Value: &out}
}

// markAssetUsed records, in the metadata shard, that a wallet of the asset is about to be
// created on some shard: from now on the asset cannot be deleted.
func (l *Ledger) markAssetUsed(c *MarkAssetUsed) *fsm.Result {
	as, r := l.findAsset(c.ProjectID, c.AssetID)
	if r != nil {
		return r
	}
	if !as.Used {
		as.Used = true
		l.putAsset(as)
	}
	out := *as
	return &fsm.Result{Value: &out}
}

// assetForWallet finds the wallet's asset, recording it from the command's definition when a
// data shard meets it for the first time.
func (l *Ledger) assetForWallet(c *CreateWallet) (*Asset, *fsm.Result) {
	if as := l.assets[assetKey(c.ProjectID, c.AssetID)]; as != nil {
		if c.Asset != nil && c.Asset.Fractions != as.Fractions {
			return nil, invalid("asset %q has %d fractions here, the command says %d", as.ID, as.Fractions, c.Asset.Fractions)
		}
		return as, nil
	}
	if c.Asset == nil {
		return nil, fail(rejectf(CodeAssetNotFound, "asset %q not found", c.AssetID))
	}
	d := c.Asset
	if !fsm.ValidID(c.AssetID, fsm.IDMaxLength) || d.Fractions == 0 || !fsm.ValidText(d.Name, fsm.NameMaxLength) || !fsm.ValidText(d.Code, fsm.CodeMaxLength) {
		return nil, invalid("bad asset definition for %q", c.AssetID)
	}
	as := &Asset{ProjectID: c.ProjectID, ID: c.AssetID, Name: d.Name, Code: d.Code, Fractions: d.Fractions, CreatedAt: d.CreatedAt}
	l.assets[assetKey(as.ProjectID, as.ID)] = as
	l.putAsset(as)
	return as, nil
}

func (l *Ledger) createWallet(c *CreateWallet) *fsm.Result {
	switch {
	case !fsm.ValidID(c.WalletID, fsm.GeneratedIDMaxLength):
		return invalid("wallet id must be 1..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
	case !fsm.ValidText(c.Name, fsm.NameMaxLength):
		return invalid("name must be at most %d printable characters", fsm.NameMaxLength)
	case !fsm.ValidText(c.Description, fsm.DescriptionMaxLength):
		return invalid("description must be at most %d printable characters", fsm.DescriptionMaxLength)
	}
	as, r := l.assetForWallet(c)
	if r != nil {
		return r
	}
	if c.CustomerID != "" {
		cu, r := l.findCustomer(c.ProjectID, c.CustomerID)
		if r != nil {
			return r
		}
		if cu.Status == CustomerSuspended {
			return fail(rejectf(CodeCustomerSuspended, "customer %q is suspended", cu.ID))
		}
	}
	if l.hasWallet(c.WalletID) {
		return fail(rejectf(CodeWalletExists, "wallet %q already exists", c.WalletID))
	}
	w := &Wallet{ID: c.WalletID, ProjectID: c.ProjectID, CustomerID: c.CustomerID,
		AssetID: as.ID, Name: c.Name, Description: c.Description, Status: WalletOpen,
		CreatedAt: l.b.Now}
	owner := customerKey(c.ProjectID, c.CustomerID)
	l.addWallet(w)
	l.batchOwnerWallets[owner] = append(l.batchOwnerWallets[owner], w.ID)
	ownerKey := appendSequence(prefixOf(prefixOwnerWallet, c.ProjectID, c.CustomerID), l.b.Next(l.family.walletSequence))
	l.set(ownerKey, []byte(w.ID))
	l.putWallet(w)
	if !as.Used {
		as.Used = true
		l.putAsset(as)
	}
	out := *w
	return &fsm.Result{Value: &out}
}

// findWallet returns a wallet of the command's project; another project's wallet is as
// invisible as a missing one.
func (l *Ledger) findWallet(projectID, walletID string) (*Wallet, *fsm.Result) {
	w := l.wallet(walletID)
	if w == nil || w.ProjectID != projectID {
		return nil, fail(rejectf(CodeWalletNotFound, "wallet %q not found", walletID))
	}
	return w, nil
}

func (l *Ledger) renameWallet(c *RenameWallet) *fsm.Result {
	if !fsm.ValidText(c.Name, fsm.NameMaxLength) {
		return invalid("name must be at most %d printable characters", fsm.NameMaxLength)
	}
	w, r := l.findWallet(c.ProjectID, c.WalletID)
	if r != nil {
		return r
	}
	w.Name = c.Name
	l.putWallet(w)
	out := *w
	return &fsm.Result{Value: &out}
}

func (l *Ledger) describeWallet(c *DescribeWallet) *fsm.Result {
	if !fsm.ValidText(c.Description, fsm.DescriptionMaxLength) {
		return invalid("description must be at most %d printable characters", fsm.DescriptionMaxLength)
	}
	w, r := l.findWallet(c.ProjectID, c.WalletID)
	if r != nil {
		return r
	}
	w.Description = c.Description
	l.putWallet(w)
	out := *w
	return &fsm.Result{Value: &out}
}

func (l *Ledger) setWalletStatus(c *SetWalletStatus) *fsm.Result {
	if c.Status < WalletOpen || c.Status > WalletClosed {
		return invalid("status must be open, suspended or closed")
	}
	w, r := l.findWallet(c.ProjectID, c.WalletID)
	if r != nil {
		return r
	}
	switch {
	case w.Status == c.Status:
		out := *w
		return &fsm.Result{Value: &out}
	case w.Status == WalletClosed:
		return fail(rejectf(CodeInvalidStatusTransition, "wallet %q is closed; closed is final", w.ID))
	case c.Status == WalletClosed && (!w.Balance.IsZero() || !w.Held.IsZero()):
		return fail(rejectf(CodeWalletNotEmpty, "wallet %q holds %s and cannot be closed", w.ID, w.Balance))
	case c.Status == WalletClosed && l.crossInFlight(w.ID):
		return fail(rejectf(CodeWalletNotEmpty, "wallet %q takes part in a cross-shard transaction in flight and cannot be closed", w.ID))
	case c.Status == WalletOpen && !w.System():
		if cu := l.customers[customerKey(w.ProjectID, w.CustomerID)]; cu != nil && cu.Status == CustomerSuspended {
			return fail(rejectf(CodeCustomerSuspended, "customer %q is suspended; resume the customer first", cu.ID))
		}
	}
	w.Status = c.Status
	l.putWallet(w)
	l.emitWalletStatus(w)
	out := *w
	return &fsm.Result{Value: &out}
}
