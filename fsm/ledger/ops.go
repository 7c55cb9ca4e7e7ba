package ledger

import "github.com/gigaledger/gigaledger/fsm"

// The accounting core's operations, each declared once: its typed command, its binary codec,
// its routing key, its apply and the value its result carries. Codes 1–99 belong to this family
// (fsm/DESIGN.md); they are in the log: append only, never reuse.
const (
	OpCreateProject   fsm.Op = 1
	OpRenameProject   fsm.Op = 2
	OpCreateAsset     fsm.Op = 3
	OpRenameAsset     fsm.Op = 4
	OpDeleteAsset     fsm.Op = 5
	OpUpsertCustomer  fsm.Op = 6
	OpSuspendCustomer fsm.Op = 7
	OpResumeCustomer  fsm.Op = 8
	OpDeleteCustomer  fsm.Op = 9
	OpCreateWallet    fsm.Op = 10
	OpRenameWallet    fsm.Op = 11
	OpDescribeWallet  fsm.Op = 12
	OpSetWalletStatus fsm.Op = 13
	OpTransact        fsm.Op = 14
	OpMarkAssetUsed   fsm.Op = 15
	// opCheckProject (16) was a read proposed as a write by the first release; it survives
	// only so that old logs replay. Nothing proposes it.
	opCheckProject fsm.Op = 16
	OpCaptureHold  fsm.Op = 17
	OpReleaseHold  fsm.Op = 18
	// Cross-shard transactions (cross.go).
	OpCrossBegin   fsm.Op = 19
	OpCrossPrepare fsm.Op = 20
	OpCrossDecide  fsm.Op = 21
	OpCrossFinish  fsm.Op = 22
	OpCrossDone    fsm.Op = 23
	// CrossBegin and CrossPrepare with CrossExtras (captures, a hook: crosscapture.go).
	OpCrossBeginExtended   fsm.Op = 24
	OpCrossPrepareExtended fsm.Op = 25
	// CrossPrepare with the coordinator's begin time (and its extras, if any): what the
	// driver sends since finished participations are trimmed (crosstrim.go).
	OpCrossPrepareAt fsm.Op = 26
	// CrossFinish with the coordinator's begin time, likewise.
	OpCrossFinishAt fsm.Op = 27
	// OpTransactBatch (28) is declared in batch.go.
)

// NeedsMetadata is implemented by commands that live on a data shard but need the metadata
// shard's word first (projects and assets live in shard 0): the router checks that the project
// exists — and, for a wallet, marks its asset used and hands over its definition — then calls
// Ensure before proposing. On a data shard that has not met the project yet, an ensured command
// records it.
type NeedsMetadata interface {
	fsm.Command
	// Metadata names the project to check and the asset to mark used ("" for none).
	Metadata() (projectID, assetID string)
	// Ensure records the metadata shard's answer in the command.
	Ensure(asset *AssetDefinition)
}

// AssetDefinition is what a data shard needs to know of an asset defined in the metadata shard.
type AssetDefinition struct {
	Name      string
	Code      string
	Fractions uint64
	CreatedAt int64
}

// ensured is embedded in commands that implement NeedsMetadata.
type ensured struct {
	// EnsureProject says the proposer found the project in the metadata shard; a data shard
	// that has not seen the project yet records it. Projects are never deleted, so that check
	// cannot go stale.
	EnsureProject bool
}

func (e *ensured) ensure() bool { return e.EnsureProject }

func metadataRoute(projectID string) fsm.Route {
	return fsm.Route{Metadata: true, ProjectID: projectID}
}

// CreateProject creates a project in the metadata shard.
type CreateProject struct{ ProjectID, Name string }

// RenameProject renames a project.
type RenameProject struct{ ProjectID, Name string }

// CreateAsset defines an asset of a project.
type CreateAsset struct {
	ProjectID, AssetID, Name, Code string
	Fractions                      uint64
}

// RenameAsset renames an asset.
type RenameAsset struct{ ProjectID, AssetID, Name string }

// DeleteAsset deletes an asset that no wallet ever used.
type DeleteAsset struct{ ProjectID, AssetID string }

// MarkAssetUsed records in the metadata shard that a wallet of the asset is about to be created
// on some shard: from then on the asset cannot be deleted.
type MarkAssetUsed struct{ ProjectID, AssetID string }

// UpsertCustomer creates a customer or updates the fields it sets.
type UpsertCustomer struct {
	ProjectID, CustomerID, Name, Description string
	SetName, SetDescription                  bool
	ensured
}

// SuspendCustomer suspends a customer and its open wallets.
type SuspendCustomer struct {
	ProjectID, CustomerID string
	ensured
}

// ResumeCustomer resumes a customer and reopens the listed wallets.
type ResumeCustomer struct {
	ProjectID, CustomerID string
	WalletIDs             []string
	ensured
}

// DeleteCustomer deletes a customer whose wallets are all closed.
type DeleteCustomer struct {
	ProjectID, CustomerID string
	ensured
}

// CreateWallet creates a wallet of an asset for a customer, or a system wallet ("" customer).
type CreateWallet struct {
	ProjectID, CustomerID, WalletID, AssetID, Name, Description string
	// Asset is the asset's definition from the metadata shard; a data shard that has not seen
	// the asset yet records it. Nil on a single-shard ledger.
	Asset *AssetDefinition
	ensured
}

// RenameWallet renames a wallet.
type RenameWallet struct{ ProjectID, WalletID, Name string }

// DescribeWallet sets a wallet's description.
type DescribeWallet struct{ ProjectID, WalletID, Description string }

// SetWalletStatus opens, suspends or closes a wallet.
type SetWalletStatus struct {
	ProjectID, WalletID string
	Status              WalletStatus
}

// Transact applies a transaction's operations in order, all or nothing. Its ID is IDPrefix (the
// proposer's, carrying the routing slot) followed by the shard's transaction sequence.
type Transact struct {
	ProjectID, IDPrefix, ReferenceID string
	Operations                       []Operation
}

// CaptureHold moves Amount (zero: all) of an active hold to wallet To in a new transaction and
// releases the rest.
type CaptureHold struct {
	ProjectID, HoldID, To, IDPrefix, ReferenceID string
	Amount                                       Amount
}

// ReleaseHold releases an active hold.
type ReleaseHold struct{ ProjectID, HoldID string }

// checkProject is the retired op 16 (see opCheckProject).
type checkProject struct{ ProjectID string }

func (*CreateProject) Op() fsm.Op   { return OpCreateProject }
func (*RenameProject) Op() fsm.Op   { return OpRenameProject }
func (*CreateAsset) Op() fsm.Op     { return OpCreateAsset }
func (*RenameAsset) Op() fsm.Op     { return OpRenameAsset }
func (*DeleteAsset) Op() fsm.Op     { return OpDeleteAsset }
func (*MarkAssetUsed) Op() fsm.Op   { return OpMarkAssetUsed }
func (*UpsertCustomer) Op() fsm.Op  { return OpUpsertCustomer }
func (*SuspendCustomer) Op() fsm.Op { return OpSuspendCustomer }
func (*ResumeCustomer) Op() fsm.Op  { return OpResumeCustomer }
func (*DeleteCustomer) Op() fsm.Op  { return OpDeleteCustomer }
func (*CreateWallet) Op() fsm.Op    { return OpCreateWallet }
func (*RenameWallet) Op() fsm.Op    { return OpRenameWallet }
func (*DescribeWallet) Op() fsm.Op  { return OpDescribeWallet }
func (*SetWalletStatus) Op() fsm.Op { return OpSetWalletStatus }
func (*Transact) Op() fsm.Op        { return OpTransact }
func (*CaptureHold) Op() fsm.Op     { return OpCaptureHold }
func (*ReleaseHold) Op() fsm.Op     { return OpReleaseHold }
func (*checkProject) Op() fsm.Op    { return opCheckProject }

func (c *CreateProject) Route() fsm.Route   { return metadataRoute(c.ProjectID) }
func (c *RenameProject) Route() fsm.Route   { return metadataRoute(c.ProjectID) }
func (c *CreateAsset) Route() fsm.Route     { return metadataRoute(c.ProjectID) }
func (c *RenameAsset) Route() fsm.Route     { return metadataRoute(c.ProjectID) }
func (c *DeleteAsset) Route() fsm.Route     { return metadataRoute(c.ProjectID) }
func (c *MarkAssetUsed) Route() fsm.Route   { return metadataRoute(c.ProjectID) }
func (c *checkProject) Route() fsm.Route    { return metadataRoute(c.ProjectID) }
func (c *UpsertCustomer) Route() fsm.Route  { return customerRoute(c.ProjectID, c.CustomerID) }
func (c *SuspendCustomer) Route() fsm.Route { return customerRoute(c.ProjectID, c.CustomerID) }
func (c *ResumeCustomer) Route() fsm.Route  { return customerRoute(c.ProjectID, c.CustomerID) }
func (c *DeleteCustomer) Route() fsm.Route  { return customerRoute(c.ProjectID, c.CustomerID) }
func (c *CreateWallet) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.CustomerID, IDs: []string{c.WalletID}}
}
func (c *RenameWallet) Route() fsm.Route    { return walletRoute(c.ProjectID, c.WalletID) }
func (c *DescribeWallet) Route() fsm.Route  { return walletRoute(c.ProjectID, c.WalletID) }
func (c *SetWalletStatus) Route() fsm.Route { return walletRoute(c.ProjectID, c.WalletID) }
func (c *ReleaseHold) Route() fsm.Route     { return walletRoute(c.ProjectID, c.HoldID) }
func (c *CaptureHold) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, IDs: []string{c.HoldID, c.To}}
}

// Route is every wallet the transaction names: they must live on one shard.
func (c *Transact) Route() fsm.Route {
	ids := make([]string, 0, 2*len(c.Operations))
	for _, op := range c.Operations {
		for _, id := range []string{op.From, op.To} {
			if id != "" {
				ids = append(ids, id)
			}
		}
	}
	return fsm.Route{ProjectID: c.ProjectID, IDs: ids}
}

func customerRoute(projectID, customerID string) fsm.Route {
	return fsm.Route{ProjectID: projectID, OwnerID: customerID}
}

func walletRoute(projectID, id string) fsm.Route {
	return fsm.Route{ProjectID: projectID, IDs: []string{id}}
}

func (c *UpsertCustomer) Metadata() (string, string)  { return c.ProjectID, "" }
func (c *SuspendCustomer) Metadata() (string, string) { return c.ProjectID, "" }
func (c *ResumeCustomer) Metadata() (string, string)  { return c.ProjectID, "" }
func (c *DeleteCustomer) Metadata() (string, string)  { return c.ProjectID, "" }
func (c *CreateWallet) Metadata() (string, string)    { return c.ProjectID, c.AssetID }

func (e *ensured) Ensure(*AssetDefinition) { e.EnsureProject = true }

// Ensure records the project check and the asset's definition.
func (c *CreateWallet) Ensure(asset *AssetDefinition) {
	c.EnsureProject = true
	c.Asset = asset
}

func (c *CreateProject) Encode(e *fsm.Encoder) { e.String(c.ProjectID); e.String(c.Name) }
func (c *RenameProject) Encode(e *fsm.Encoder) { e.String(c.ProjectID); e.String(c.Name) }
func (c *CreateAsset) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.AssetID)
	e.String(c.Name)
	e.String(c.Code)
	e.Uvarint(c.Fractions)
}
func (c *RenameAsset) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.AssetID)
	e.String(c.Name)
}
func (c *DeleteAsset) Encode(e *fsm.Encoder)   { e.String(c.ProjectID); e.String(c.AssetID) }
func (c *MarkAssetUsed) Encode(e *fsm.Encoder) { e.String(c.ProjectID); e.String(c.AssetID) }
func (c *checkProject) Encode(e *fsm.Encoder)  { e.String(c.ProjectID) }
func (c *UpsertCustomer) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.CustomerID)
	e.String(c.Name)
	e.String(c.Description)
	e.Bool(c.SetName)
	e.Bool(c.SetDescription)
	e.Bool(c.EnsureProject)
}
func (c *SuspendCustomer) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.CustomerID)
	e.Bool(c.EnsureProject)
}
func (c *ResumeCustomer) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.CustomerID)
	e.Strings(c.WalletIDs)
	e.Bool(c.EnsureProject)
}
func (c *DeleteCustomer) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.CustomerID)
	e.Bool(c.EnsureProject)
}
func (c *CreateWallet) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.CustomerID)
	e.String(c.WalletID)
	e.String(c.AssetID)
	e.String(c.Name)
	e.String(c.Description)
	e.Bool(c.EnsureProject)
	e.Bool(c.Asset != nil)
	if c.Asset != nil {
		e.String(c.Asset.Name)
		e.String(c.Asset.Code)
		e.Uvarint(c.Asset.Fractions)
		e.Varint(c.Asset.CreatedAt)
	}
}
func (c *RenameWallet) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.WalletID)
	e.String(c.Name)
}
func (c *DescribeWallet) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.WalletID)
	e.String(c.Description)
}
func (c *SetWalletStatus) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.WalletID)
	e.Byte(byte(c.Status))
}
func (c *Transact) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.IDPrefix)
	e.String(c.ReferenceID)
	encodeOperations(e, c.Operations)
}
func (c *CaptureHold) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.HoldID)
	e.String(c.To)
	e.String(c.IDPrefix)
	e.String(c.ReferenceID)
	e.Amount(c.Amount)
}
func (c *ReleaseHold) Encode(e *fsm.Encoder) { e.String(c.ProjectID); e.String(c.HoldID) }

func valueProject(d *fsm.Decoder) fsm.Value     { return readProject(d) }
func valueAsset(d *fsm.Decoder) fsm.Value       { return readAsset(d) }
func valueCustomer(d *fsm.Decoder) fsm.Value    { return readCustomer(d) }
func valueWallet(d *fsm.Decoder) fsm.Value      { return readWallet(d) }
func valueTransaction(d *fsm.Decoder) fsm.Value { return readTransaction(d) }
func valueResolution(d *fsm.Decoder) fsm.Value  { return readHoldResolution(d) }

// ops declares every operation of the family. Apply functions are wrapped by inProject, the
// cross-cutting check that the command's project exists on this shard.
func (f *Family) ops() []fsm.OpSpec {
	type applyFunc = func(l *Ledger, c fsm.Command) *fsm.Result
	spec := func(op fsm.Op, name string, example fsm.Command, decode func(d *fsm.Decoder) fsm.Command,
		value func(d *fsm.Decoder) fsm.Value, apply applyFunc) fsm.OpSpec {
		return fsm.OpSpec{Op: op, Name: name, Example: example, Decode: decode, DecodeValue: value,
			Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result { return apply(f.in(b), c) }}
	}
	inProject := func(apply applyFunc) applyFunc {
		return func(l *Ledger, c fsm.Command) *fsm.Result {
			if r := l.requireProject(c); r != nil {
				return r
			}
			return apply(l, c)
		}
	}
	return append([]fsm.OpSpec{
		spec(OpCreateProject, "CreateProject", &CreateProject{ProjectID: "p", Name: "n"},
			func(d *fsm.Decoder) fsm.Command { return &CreateProject{ProjectID: d.String(), Name: d.String()} },
			valueProject, func(l *Ledger, c fsm.Command) *fsm.Result { return l.createProject(c.(*CreateProject)) }),
		spec(OpRenameProject, "RenameProject", &RenameProject{ProjectID: "p", Name: "n"},
			func(d *fsm.Decoder) fsm.Command { return &RenameProject{ProjectID: d.String(), Name: d.String()} },
			valueProject, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.renameProject(c.(*RenameProject)) })),
		spec(OpCreateAsset, "CreateAsset", &CreateAsset{ProjectID: "p", AssetID: "a", Name: "n", Code: "C", Fractions: 100},
			func(d *fsm.Decoder) fsm.Command {
				return &CreateAsset{ProjectID: d.String(), AssetID: d.String(), Name: d.String(), Code: d.String(), Fractions: d.Uvarint()}
			},
			valueAsset, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.createAsset(c.(*CreateAsset)) })),
		spec(OpRenameAsset, "RenameAsset", &RenameAsset{ProjectID: "p", AssetID: "a", Name: "n"},
			func(d *fsm.Decoder) fsm.Command {
				return &RenameAsset{ProjectID: d.String(), AssetID: d.String(), Name: d.String()}
			},
			valueAsset, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.renameAsset(c.(*RenameAsset)) })),
		spec(OpDeleteAsset, "DeleteAsset", &DeleteAsset{ProjectID: "p", AssetID: "a"},
			func(d *fsm.Decoder) fsm.Command { return &DeleteAsset{ProjectID: d.String(), AssetID: d.String()} },
			valueAsset, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.deleteAsset(c.(*DeleteAsset)) })),
		spec(OpUpsertCustomer, "UpsertCustomer", &UpsertCustomer{ProjectID: "p", CustomerID: "c", Name: "n", SetName: true},
			func(d *fsm.Decoder) fsm.Command {
				c := &UpsertCustomer{ProjectID: d.String(), CustomerID: d.String(), Name: d.String(), Description: d.String(),
					SetName: d.Bool(), SetDescription: d.Bool()}
				c.EnsureProject = d.Bool()
				return c
			},
			valueCustomer, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.upsertCustomer(c.(*UpsertCustomer)) })),
		spec(OpSuspendCustomer, "SuspendCustomer", &SuspendCustomer{ProjectID: "p", CustomerID: "c"},
			func(d *fsm.Decoder) fsm.Command {
				c := &SuspendCustomer{ProjectID: d.String(), CustomerID: d.String()}
				c.EnsureProject = d.Bool()
				return c
			},
			valueCustomer, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.suspendCustomer(c.(*SuspendCustomer)) })),
		spec(OpResumeCustomer, "ResumeCustomer", &ResumeCustomer{ProjectID: "p", CustomerID: "c", WalletIDs: []string{"w"}},
			func(d *fsm.Decoder) fsm.Command {
				c := &ResumeCustomer{ProjectID: d.String(), CustomerID: d.String(), WalletIDs: d.Strings("wallet ids")}
				c.EnsureProject = d.Bool()
				return c
			},
			valueCustomer, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.resumeCustomer(c.(*ResumeCustomer)) })),
		spec(OpDeleteCustomer, "DeleteCustomer", &DeleteCustomer{ProjectID: "p", CustomerID: "c"},
			func(d *fsm.Decoder) fsm.Command {
				c := &DeleteCustomer{ProjectID: d.String(), CustomerID: d.String()}
				c.EnsureProject = d.Bool()
				return c
			},
			valueCustomer, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.deleteCustomer(c.(*DeleteCustomer)) })),
		spec(OpCreateWallet, "CreateWallet", &CreateWallet{ProjectID: "p", WalletID: "w00000", AssetID: "a",
			Asset: &AssetDefinition{Name: "n", Code: "C", Fractions: 100, CreatedAt: 1}},
			func(d *fsm.Decoder) fsm.Command {
				c := &CreateWallet{ProjectID: d.String(), CustomerID: d.String(), WalletID: d.String(), AssetID: d.String(),
					Name: d.String(), Description: d.String()}
				c.EnsureProject = d.Bool()
				if d.Bool() {
					c.Asset = &AssetDefinition{Name: d.String(), Code: d.String(), Fractions: d.Uvarint(), CreatedAt: d.Varint()}
				}
				return c
			},
			valueWallet, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.createWallet(c.(*CreateWallet)) })),
		spec(OpRenameWallet, "RenameWallet", &RenameWallet{ProjectID: "p", WalletID: "w00000", Name: "n"},
			func(d *fsm.Decoder) fsm.Command {
				return &RenameWallet{ProjectID: d.String(), WalletID: d.String(), Name: d.String()}
			},
			valueWallet, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.renameWallet(c.(*RenameWallet)) })),
		spec(OpDescribeWallet, "DescribeWallet", &DescribeWallet{ProjectID: "p", WalletID: "w00000", Description: "d"},
			func(d *fsm.Decoder) fsm.Command {
				return &DescribeWallet{ProjectID: d.String(), WalletID: d.String(), Description: d.String()}
			},
			valueWallet, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.describeWallet(c.(*DescribeWallet)) })),
		spec(OpSetWalletStatus, "SetWalletStatus", &SetWalletStatus{ProjectID: "p", WalletID: "w00000", Status: WalletSuspendedStatus},
			func(d *fsm.Decoder) fsm.Command {
				return &SetWalletStatus{ProjectID: d.String(), WalletID: d.String(), Status: WalletStatus(d.Byte())}
			},
			valueWallet, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.setWalletStatus(c.(*SetWalletStatus)) })),
		spec(OpTransact, "Transact", &Transact{ProjectID: "p", IDPrefix: "t0000", ReferenceID: "r",
			Operations: []Operation{{Type: OperationTransfer, From: "w00000", To: "w00001", Amount: fsm.AmountFromUint64(1)},
				{Type: OperationHold, From: "w00000", Amount: fsm.AmountFromUint64(1), ExpiresAt: 5}}},
			func(d *fsm.Decoder) fsm.Command {
				return &Transact{ProjectID: d.String(), IDPrefix: d.String(), ReferenceID: d.String(), Operations: decodeOperations(d)}
			},
			valueTransaction, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.transact(c.(*Transact)) })),
		spec(OpMarkAssetUsed, "MarkAssetUsed", &MarkAssetUsed{ProjectID: "p", AssetID: "a"},
			func(d *fsm.Decoder) fsm.Command { return &MarkAssetUsed{ProjectID: d.String(), AssetID: d.String()} },
			valueAsset, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.markAssetUsed(c.(*MarkAssetUsed)) })),
		spec(opCheckProject, "CheckProject (retired)", &checkProject{ProjectID: "p"},
			func(d *fsm.Decoder) fsm.Command { return &checkProject{ProjectID: d.String()} },
			valueProject, inProject(func(l *Ledger, c fsm.Command) *fsm.Result {
				out := *l.projects[c.(*checkProject).ProjectID]
				return &fsm.Result{Value: &out}
			})),
		spec(OpCaptureHold, "CaptureHold", &CaptureHold{ProjectID: "p", HoldID: "h0000.0", To: "w00001", IDPrefix: "t0000", ReferenceID: "r"},
			func(d *fsm.Decoder) fsm.Command {
				return &CaptureHold{ProjectID: d.String(), HoldID: d.String(), To: d.String(), IDPrefix: d.String(),
					ReferenceID: d.String(), Amount: d.Amount()}
			},
			valueResolution, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.captureHold(c.(*CaptureHold)) })),
		spec(OpReleaseHold, "ReleaseHold", &ReleaseHold{ProjectID: "p", HoldID: "h0000.0"},
			func(d *fsm.Decoder) fsm.Command { return &ReleaseHold{ProjectID: d.String(), HoldID: d.String()} },
			valueResolution, inProject(func(l *Ledger, c fsm.Command) *fsm.Result { return l.releaseHold(c.(*ReleaseHold)) })),
	}, append(f.crossOps(spec, inProject), f.batchOps(spec, inProject)...)...)
}

// projectOf returns the project every command of the family names.
func projectOf(c fsm.Command) string { return c.(interface{ project() string }).project() }

func (c *CreateProject) project() string   { return c.ProjectID }
func (c *RenameProject) project() string   { return c.ProjectID }
func (c *CreateAsset) project() string     { return c.ProjectID }
func (c *RenameAsset) project() string     { return c.ProjectID }
func (c *DeleteAsset) project() string     { return c.ProjectID }
func (c *MarkAssetUsed) project() string   { return c.ProjectID }
func (c *checkProject) project() string    { return c.ProjectID }
func (c *UpsertCustomer) project() string  { return c.ProjectID }
func (c *SuspendCustomer) project() string { return c.ProjectID }
func (c *ResumeCustomer) project() string  { return c.ProjectID }
func (c *DeleteCustomer) project() string  { return c.ProjectID }
func (c *CreateWallet) project() string    { return c.ProjectID }
func (c *RenameWallet) project() string    { return c.ProjectID }
func (c *DescribeWallet) project() string  { return c.ProjectID }
func (c *SetWalletStatus) project() string { return c.ProjectID }
func (c *Transact) project() string        { return c.ProjectID }
func (c *CaptureHold) project() string     { return c.ProjectID }
func (c *ReleaseHold) project() string     { return c.ProjectID }

// requireProject is the cross-cutting check of every command but CreateProject: the project
// exists on this shard, or the command was ensured by the metadata shard and records it.
func (l *Ledger) requireProject(c fsm.Command) *fsm.Result {
	e, ok := c.(interface{ ensure() bool })
	return l.requireProjectID(projectOf(c), ok && e.ensure())
}

func (l *Ledger) requireProjectID(projectID string, ensured bool) *fsm.Result {
	if _, ok := l.projects[projectID]; ok {
		return nil
	}
	if !ensured || !fsm.ValidID(projectID, fsm.IDMaxLength) {
		return fail(rejectf(CodeProjectNotFound, "project %q not found", projectID))
	}
	// The metadata shard holds the project; this data shard keeps a record of its ID so its
	// customers and wallets have a home. Its name lives in shard 0 only.
	p := &Project{ID: projectID, CreatedAt: l.b.Now}
	l.projects[p.ID] = p
	l.set(key(prefixProject, p.ID), record(p))
	return nil
}

// MissingRecord is the answer to c from a data shard that has not met c's project when the
// project does exist (in the metadata shard), with the project's ID. A data shard learns a
// project when one of its customers or wallets is created there (NeedsMetadata); until then it
// holds none of the project's records and answers ProjectNotFound to any command of it. The
// router, which can ask the metadata shard, answers instead that the first record c names is
// not there: a wallet ID typed wrong is WalletNotFound whichever shard its slot names. Nil for a
// command whose ProjectNotFound stands.
func MissingRecord(c fsm.Command) (projectID string, missing *fsm.Error) {
	switch c := c.(type) {
	case *Transact:
		return c.ProjectID, firstWalletMissing(c.Operations)
	case *CrossBegin:
		return c.ProjectID, firstWalletMissing(c.Operations)
	case *RenameWallet:
		return c.ProjectID, errMissingWallet(c.WalletID)
	case *DescribeWallet:
		return c.ProjectID, errMissingWallet(c.WalletID)
	case *SetWalletStatus:
		return c.ProjectID, errMissingWallet(c.WalletID)
	case *CaptureHold:
		return c.ProjectID, errMissingHold(c.HoldID)
	case *ReleaseHold:
		return c.ProjectID, errMissingHold(c.HoldID)
	}
	return "", nil
}

// firstWalletMissing is WalletNotFound for the first wallet operations name (nil if none).
func firstWalletMissing(operations []Operation) *fsm.Error {
	for _, op := range operations {
		for _, id := range []string{op.From, op.To} {
			if id != "" {
				return errMissingWallet(id)
			}
		}
	}
	return nil
}
