package ledger

import (
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
)

// The accounting core as other families use it: in their own apply, on the batch's ledger
// (Family.In). Each call checks what it needs before it writes, and answers a rejection as an
// *fsm.Error; money moves only through these calls and the ledger's own ops, so conservation
// and held ≤ balance stay checked in one place.

// In returns the ledger of the batch's machine, for a family's apply.
func (f *Family) In(b *fsm.Batch) *Ledger { return f.in(b) }

// RequireProject is the cross-cutting project check for another family's command: the project
// exists on this shard, or the router ensured it in the metadata shard (see NeedsMetadata) and
// this shard records it.
func (l *Ledger) RequireProject(projectID string, ensured bool) *fsm.Error {
	if r := l.requireProjectID(projectID, ensured); r != nil {
		return r.Err
	}
	return nil
}

// OpenCustomerWallet makes sure the customer exists (creating it, active and unnamed, if not)
// and opens a new wallet of the asset for it. asset is the metadata shard's definition (nil on
// a one-shard ledger that holds the asset). Nothing is written when it is rejected: a suspended
// customer, an unknown asset, a taken or malformed wallet ID.
func (l *Ledger) OpenCustomerWallet(projectID, customerID, walletID, assetID string, asset *AssetDefinition) (*Wallet, *fsm.Error) {
	switch {
	case !fsm.ValidCustomerID(customerID):
		return nil, rejectf(CodeInvalidArgument, "customer id must be 1..%d printable characters without '/'", fsm.CustomerIDMaxLength)
	case !fsm.ValidID(walletID, fsm.GeneratedIDMaxLength):
		return nil, rejectf(CodeInvalidArgument, "wallet id must be 1..%d of [A-Za-z0-9_.-]", fsm.GeneratedIDMaxLength)
	}
	if cu := l.customers[customerKey(projectID, customerID)]; cu != nil && cu.Status == CustomerSuspended {
		return nil, rejectf(CodeCustomerSuspended, "customer %q is suspended", customerID)
	}
	if l.hasWallet(walletID) {
		return nil, rejectf(CodeWalletExists, "wallet %q already exists", walletID)
	}
	if l.assets[assetKey(projectID, assetID)] == nil && asset == nil {
		return nil, rejectf(CodeAssetNotFound, "asset %q not found", assetID)
	}
	if l.customers[customerKey(projectID, customerID)] == nil {
		if r := l.upsertCustomer(&UpsertCustomer{ProjectID: projectID, CustomerID: customerID}); r.Err != nil {
			return nil, r.Err
		}
	}
	r := l.createWallet(&CreateWallet{ProjectID: projectID, CustomerID: customerID, WalletID: walletID, AssetID: assetID, Asset: asset})
	if r.Err != nil {
		return nil, r.Err
	}
	return r.Value.(*Wallet), nil
}

// Wallet returns a wallet of the project as the batch left it (a copy), or nil.
func (l *Ledger) Wallet(projectID, walletID string) *Wallet {
	w := l.peekWallet(walletID)
	if w == nil || w.ProjectID != projectID {
		return nil
	}
	return w
}

// Issue credits amount of the wallet's asset to a wallet of the project in a transaction of
// its own, recorded under referenceID (unique in the project). The transaction ID carries the
// wallet's slot. It answers the transaction, or the rejection (an unknown or closed wallet, a
// reference already used, a balance that would pass 2^128−1), after which nothing changed but
// a failed transaction's record.
func (l *Ledger) Issue(projectID, walletID, referenceID string, amount Amount) (*Transaction, *fsm.Error) {
	return l.single(projectID, referenceID, Operation{Type: OperationIssue, To: walletID, Amount: amount}, walletID)
}

// Redeem debits amount of a wallet's available balance (balance − held) in a transaction of
// its own: the asset leaves the ledger. Insufficient funds is a rejection, recorded as a
// failed transaction.
func (l *Ledger) Redeem(projectID, walletID, referenceID string, amount Amount) (*Transaction, *fsm.Error) {
	return l.single(projectID, referenceID, Operation{Type: OperationRedeem, From: walletID, Amount: amount}, walletID)
}

// Available is a wallet's balance minus what it holds, as the batch left it; zero for a wallet
// that does not exist.
func (l *Ledger) Available(projectID, walletID string) Amount {
	w := l.peekWallet(walletID)
	if w == nil || w.ProjectID != projectID {
		return Amount{}
	}
	return mustSub(w.Balance, w.Held)
}

// Hold places a hold of amount on a wallet's available balance in a transaction of its own and
// answers the hold's ID. Insufficient funds is a rejection, recorded as a failed transaction:
// a caller that must not burn the reference checks Available first.
func (l *Ledger) Hold(projectID, walletID, referenceID string, amount Amount) (string, *fsm.Error) {
	t, r := l.single(projectID, referenceID, Operation{Type: OperationHold, From: walletID, Amount: amount}, walletID)
	if r != nil {
		return "", r
	}
	return HoldID(t.ID, 0), nil
}

// IssueAndHold credits amount to a wallet and holds it there, in one transaction (a payout
// whose capture a reorg undid: the money is back, and still promised). Answers the hold's ID.
func (l *Ledger) IssueAndHold(projectID, walletID, referenceID string, amount Amount) (string, *fsm.Error) {
	t, r := l.single(projectID, referenceID, Operation{Type: OperationIssue, To: walletID, Amount: amount}, walletID,
		Operation{Type: OperationHold, From: walletID, Amount: amount})
	if r != nil {
		return "", r
	}
	return HoldID(t.ID, 1), nil
}

// ReleaseHold releases an active hold.
func (l *Ledger) ReleaseHold(projectID, holdID string) *fsm.Error {
	return l.releaseHold(&ReleaseHold{ProjectID: projectID, HoldID: holdID}).Err
}

// RedeemHold captures an active hold whole as a redeem: the held amount leaves the ledger (a
// payout on the chain). A failure leaves the hold active.
func (l *Ledger) RedeemHold(projectID, holdID, referenceID string) (*Transaction, *fsm.Error) {
	h, r := l.activeHold(projectID, holdID)
	if r != nil {
		return nil, r.Err
	}
	slot, ok := keyspace.SlotOfID(h.WalletID)
	if !ok {
		return nil, rejectf(CodeInvalidArgument, "wallet id %q carries no slot", h.WalletID)
	}
	tx := &Transact{ProjectID: projectID, IDPrefix: "t" + keyspace.SlotHex(slot), ReferenceID: referenceID,
		Operations: []Operation{{Type: OperationRedeem, From: h.WalletID, Amount: h.Amount}}}
	result := l.runTransaction(tx, h)
	t, _ := result.Value.(*Transaction)
	if result.Err != nil || t == nil || t.Status != TransactionCompleted {
		return t, result.Err
	}
	h.CapturedAmount = h.Amount
	h.CaptureTransactionID = t.ID
	l.finishHold(h, HoldCaptured)
	return t, nil
}

func (l *Ledger) single(projectID, referenceID string, op Operation, walletID string, more ...Operation) (*Transaction, *fsm.Error) {
	slot, ok := keyspace.SlotOfID(walletID)
	if !ok {
		return nil, rejectf(CodeInvalidArgument, "wallet id %q carries no slot", walletID)
	}
	c := &Transact{ProjectID: projectID, IDPrefix: "t" + keyspace.SlotHex(slot), ReferenceID: referenceID,
		Operations: append([]Operation{op}, more...)}
	r := l.runTransaction(c, nil)
	t, _ := r.Value.(*Transaction)
	if r.Err != nil {
		return t, r.Err
	}
	return t, nil
}

// Asset returns an asset of the project as this shard knows it (a copy), or nil. A data shard
// knows the assets its wallets use.
func (l *Ledger) Asset(projectID, assetID string) *Asset {
	as, r := l.findAsset(projectID, assetID)
	if r != nil {
		return nil
	}
	out := *as
	return &out
}

// Transfer moves amount from one wallet's available balance to another wallet of the same
// asset in a transaction of its own (a compensating entry). Insufficient funds, a suspended or
// closed wallet, or an asset mismatch is a rejection, recorded as a failed transaction: a
// caller that must not burn the reference checks first.
func (l *Ledger) Transfer(projectID, fromWalletID, toWalletID, referenceID string, amount Amount) (*Transaction, *fsm.Error) {
	return l.single(projectID, referenceID, Operation{Type: OperationTransfer, From: fromWalletID, To: toWalletID, Amount: amount}, fromWalletID)
}

// CaptureHoldTo captures an active hold whole into a transfer to another wallet of the same
// asset, in a transaction recorded under referenceID. A failure (the hold's wallet suspended,
// the payee closed, another asset) is recorded as a failed transaction and leaves the hold
// active; a resolved hold is a HoldResolved rejection.
func (l *Ledger) CaptureHoldTo(projectID, holdID, toWalletID, referenceID string) (*Transaction, *fsm.Error) {
	h, r := l.activeHold(projectID, holdID)
	if r != nil {
		return nil, r.Err
	}
	slot, ok := keyspace.SlotOfID(h.WalletID)
	if !ok {
		return nil, rejectf(CodeInvalidArgument, "wallet id %q carries no slot", h.WalletID)
	}
	result := l.captureHold(&CaptureHold{ProjectID: projectID, HoldID: holdID, To: toWalletID,
		IDPrefix: "t" + keyspace.SlotHex(slot), ReferenceID: referenceID})
	if result.Err != nil {
		var t *Transaction
		if v, ok := result.Value.(*Transaction); ok {
			t = v
		}
		return t, result.Err
	}
	res, _ := result.Value.(*HoldResolution)
	if res == nil || res.Transaction == nil {
		t, _ := result.Value.(*Transaction)
		return t, rejectf(CodeInvalidArgument, "capture of hold %q did not complete", holdID)
	}
	return res.Transaction, nil
}
