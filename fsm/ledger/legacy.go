package ledger

import (
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
)

// The first release's command encoding (envelope version 1): one flat struct for every op, its
// fields present by a bit mask. Logs written by that release replay through
// decodeLegacyCommand, which turns each into the typed command of its op. Nothing writes this
// form any more; legacyCommand.encode exists for the tests that prove old logs still replay.

// legacyCommand is one state change proposed to a shard. Which fields matter depends on Op. IDs the
// command creates come from the proposer (wallet IDs), or from the proposer's prefix (which
// carries the routing slot) followed by a shard sequence the FSM assigns (transaction IDs):
// deterministic either way, and a sequence needs no lookup to be unique.
// Inputs are validated by the proposer (httpapi) and again by the FSM, which must never trust
// the log more than the network.
type legacyCommand struct {
	Op             fsm.Op
	ProjectID      string
	AssetID        string
	CustomerID     string
	WalletID       string
	Name           string
	Description    string
	Code           string
	Fractions      uint64
	SetName        bool // upserts: whether Name is given
	SetDescription bool // upserts: whether Description is given
	Status         WalletStatus
	WalletIDs      []string
	IDPrefix       string // OpTransact: the transaction ID's prefix
	ReferenceID    string
	Operations     []Operation

	// EnsureProject says the proposer found ProjectID in the metadata shard (shard 0, which
	// alone holds projects and assets); a data shard that has not seen the project yet records
	// it. Projects are never deleted, so that check cannot go stale.
	EnsureProject bool
	// Asset is the asset's definition for OpCreateWallet, from the metadata shard; a data
	// shard that has not seen the asset yet records it. Nil on a single-shard cluster.
	Asset *AssetDefinition
}

// commandVersion is the first byte of every encoded command.
const commandVersion = 1

// Field presence bits: an encoded command carries only the fields that are set.
const (
	fieldProjectID = 1 << iota
	fieldAssetID
	fieldCustomerID
	fieldWalletID
	fieldName
	fieldDescription
	fieldCode
	fieldFractions
	fieldSetName
	fieldSetDescription
	fieldStatus
	fieldWalletIDs
	fieldIDPrefix
	fieldReferenceID
	fieldOperations
	fieldEnsureProject
	fieldAsset
	fieldEnd // keep last
)

// Encode appends the command's binary form to dst.
func (c *legacyCommand) encode(dst []byte) []byte {
	var mask uint64
	set := func(bit uint64, present bool) {
		if present {
			mask |= bit
		}
	}
	set(fieldProjectID, c.ProjectID != "")
	set(fieldAssetID, c.AssetID != "")
	set(fieldCustomerID, c.CustomerID != "")
	set(fieldWalletID, c.WalletID != "")
	set(fieldName, c.Name != "")
	set(fieldDescription, c.Description != "")
	set(fieldCode, c.Code != "")
	set(fieldFractions, c.Fractions != 0)
	set(fieldSetName, c.SetName)
	set(fieldSetDescription, c.SetDescription)
	set(fieldStatus, c.Status != 0)
	set(fieldWalletIDs, len(c.WalletIDs) != 0)
	set(fieldIDPrefix, c.IDPrefix != "")
	set(fieldReferenceID, c.ReferenceID != "")
	set(fieldOperations, len(c.Operations) != 0)
	set(fieldEnsureProject, c.EnsureProject)
	set(fieldAsset, c.Asset != nil)

	e := fsm.Encoder{Buf: dst}
	e.Byte(commandVersion)
	e.Byte(byte(c.Op))
	e.Uvarint(mask)
	if mask&fieldProjectID != 0 {
		e.String(c.ProjectID)
	}
	if mask&fieldAssetID != 0 {
		e.String(c.AssetID)
	}
	if mask&fieldCustomerID != 0 {
		e.String(c.CustomerID)
	}
	if mask&fieldWalletID != 0 {
		e.String(c.WalletID)
	}
	if mask&fieldName != 0 {
		e.String(c.Name)
	}
	if mask&fieldDescription != 0 {
		e.String(c.Description)
	}
	if mask&fieldCode != 0 {
		e.String(c.Code)
	}
	if mask&fieldFractions != 0 {
		e.Uvarint(c.Fractions)
	}
	if mask&fieldStatus != 0 {
		e.Byte(byte(c.Status))
	}
	if mask&fieldWalletIDs != 0 {
		e.Uvarint(uint64(len(c.WalletIDs)))
		for _, id := range c.WalletIDs {
			e.String(id)
		}
	}
	if mask&fieldIDPrefix != 0 {
		e.String(c.IDPrefix)
	}
	if mask&fieldReferenceID != 0 {
		e.String(c.ReferenceID)
	}
	if mask&fieldOperations != 0 {
		encodeOperations(&e, c.Operations)
	}
	if mask&fieldAsset != 0 {
		e.String(c.Asset.Name)
		e.String(c.Asset.Code)
		e.Uvarint(c.Asset.Fractions)
		e.Varint(c.Asset.CreatedAt)
	}
	return e.Buf
}

// decodeLegacy parses what encode wrote.
func decodeLegacy(data []byte) (legacyCommand, error) {
	d := fsm.NewDecoder(data)
	var c legacyCommand
	if v := d.Byte(); d.Err() == nil && v != commandVersion {
		return c, fmt.Errorf("decode command: unknown version %d", v)
	}
	c.Op = fsm.Op(d.Byte())
	if d.Err() == nil && (c.Op == 0 || c.Op > opCheckProject) {
		return c, fmt.Errorf("decode command: unknown op %d", c.Op)
	}
	mask := d.Uvarint()
	if mask >= fieldEnd {
		return c, fmt.Errorf("decode command: unknown fields %#x", mask)
	}
	if mask&fieldProjectID != 0 {
		c.ProjectID = d.String()
	}
	if mask&fieldAssetID != 0 {
		c.AssetID = d.String()
	}
	if mask&fieldCustomerID != 0 {
		c.CustomerID = d.String()
	}
	if mask&fieldWalletID != 0 {
		c.WalletID = d.String()
	}
	if mask&fieldName != 0 {
		c.Name = d.String()
	}
	if mask&fieldDescription != 0 {
		c.Description = d.String()
	}
	if mask&fieldCode != 0 {
		c.Code = d.String()
	}
	if mask&fieldFractions != 0 {
		c.Fractions = d.Uvarint()
	}
	c.SetName = mask&fieldSetName != 0
	c.SetDescription = mask&fieldSetDescription != 0
	if mask&fieldStatus != 0 {
		c.Status = WalletStatus(d.Byte())
	}
	if mask&fieldWalletIDs != 0 {
		n := d.Uvarint()
		if n > fsm.ListMaxCount {
			return c, fmt.Errorf("decode command: %d wallet ids", n)
		}
		for i := uint64(0); i < n && d.Err() == nil; i++ {
			c.WalletIDs = append(c.WalletIDs, d.String())
		}
	}
	if mask&fieldIDPrefix != 0 {
		c.IDPrefix = d.String()
	}
	if mask&fieldReferenceID != 0 {
		c.ReferenceID = d.String()
	}
	if mask&fieldOperations != 0 {
		c.Operations = decodeOperations(d)
	}
	if (mask&fieldOperations != 0 && len(c.Operations) == 0) || (mask&fieldWalletIDs != 0 && len(c.WalletIDs) == 0) {
		return c, fmt.Errorf("decode command: a list marked present is empty")
	}
	c.EnsureProject = mask&fieldEnsureProject != 0
	if mask&fieldAsset != 0 {
		c.Asset = &AssetDefinition{Name: d.String(), Code: d.String(), Fractions: d.Uvarint(), CreatedAt: d.Varint()}
	}
	return c, d.Finish("command")
}

// decodeLegacyCommand reads a version-1 command as the typed command of its op
// (fsm.Registry.SetLegacyDecoder).
func decodeLegacyCommand(data []byte) (fsm.Command, error) {
	c, err := decodeLegacy(data)
	if err != nil {
		return nil, err
	}
	return c.typed(), nil
}

// typed returns the command of c's op with c's fields. Fields the op did not use are dropped,
// as the first release's apply ignored them.
func (c *legacyCommand) typed() fsm.Command {
	e := ensured{EnsureProject: c.EnsureProject}
	switch c.Op {
	case OpCreateProject:
		return &CreateProject{ProjectID: c.ProjectID, Name: c.Name}
	case OpRenameProject:
		return &RenameProject{ProjectID: c.ProjectID, Name: c.Name}
	case OpCreateAsset:
		return &CreateAsset{ProjectID: c.ProjectID, AssetID: c.AssetID, Name: c.Name, Code: c.Code, Fractions: c.Fractions}
	case OpRenameAsset:
		return &RenameAsset{ProjectID: c.ProjectID, AssetID: c.AssetID, Name: c.Name}
	case OpDeleteAsset:
		return &DeleteAsset{ProjectID: c.ProjectID, AssetID: c.AssetID}
	case OpUpsertCustomer:
		return &UpsertCustomer{ProjectID: c.ProjectID, CustomerID: c.CustomerID, Name: c.Name,
			Description: c.Description, SetName: c.SetName, SetDescription: c.SetDescription, ensured: e}
	case OpSuspendCustomer:
		return &SuspendCustomer{ProjectID: c.ProjectID, CustomerID: c.CustomerID, ensured: e}
	case OpResumeCustomer:
		return &ResumeCustomer{ProjectID: c.ProjectID, CustomerID: c.CustomerID, WalletIDs: c.WalletIDs, ensured: e}
	case OpDeleteCustomer:
		return &DeleteCustomer{ProjectID: c.ProjectID, CustomerID: c.CustomerID, ensured: e}
	case OpCreateWallet:
		return &CreateWallet{ProjectID: c.ProjectID, CustomerID: c.CustomerID, WalletID: c.WalletID,
			AssetID: c.AssetID, Name: c.Name, Description: c.Description, Asset: c.Asset, ensured: e}
	case OpRenameWallet:
		return &RenameWallet{ProjectID: c.ProjectID, WalletID: c.WalletID, Name: c.Name}
	case OpDescribeWallet:
		return &DescribeWallet{ProjectID: c.ProjectID, WalletID: c.WalletID, Description: c.Description}
	case OpSetWalletStatus:
		return &SetWalletStatus{ProjectID: c.ProjectID, WalletID: c.WalletID, Status: c.Status}
	case OpTransact:
		// The flat command leaves out an empty operation list; the current codec reads it as
		// empty, not absent: decode both to the same command.
		operations := c.Operations
		if operations == nil {
			operations = []Operation{}
		}
		return &Transact{ProjectID: c.ProjectID, IDPrefix: c.IDPrefix, ReferenceID: c.ReferenceID, Operations: operations}
	case OpMarkAssetUsed:
		return &MarkAssetUsed{ProjectID: c.ProjectID, AssetID: c.AssetID}
	default: // decodeLegacy admits ops 1..16 only
		return &checkProject{ProjectID: c.ProjectID}
	}
}
