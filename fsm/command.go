package fsm

import "fmt"

// Op is a command's operation code. The values are in the Raft log: only add to the end.
type Op uint8

// Command operation codes.
const (
	OpCreateProject Op = iota + 1
	OpRenameProject
	OpCreateAsset
	OpRenameAsset
	OpDeleteAsset
	OpUpsertCustomer
	OpSuspendCustomer
	OpResumeCustomer
	OpDeleteCustomer
	OpCreateWallet
	OpRenameWallet
	OpDescribeWallet
	OpSetWalletStatus
	OpTransact
	OpMarkAssetUsed
	OpCheckProject
	opEnd // keep last
)

var opNames = [...]string{"", "CreateProject", "RenameProject", "CreateAsset", "RenameAsset",
	"DeleteAsset", "UpsertCustomer", "SuspendCustomer", "ResumeCustomer", "DeleteCustomer",
	"CreateWallet", "RenameWallet", "DescribeWallet", "SetWalletStatus", "Transact", "MarkAssetUsed", "CheckProject"}

func (o Op) String() string {
	if o > 0 && o < opEnd {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// Command is one state change proposed to a shard. Which fields matter depends on Op. IDs the
// command creates come from the proposer (wallet IDs), or from the proposer's prefix (which
// carries the routing slot) followed by a shard sequence the FSM assigns (transaction IDs):
// deterministic either way, and a sequence needs no lookup to be unique.
// Inputs are validated by the proposer (httpapi) and again by the FSM, which must never trust
// the log more than the network.
type Command struct {
	Op             Op
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

// AssetDefinition is what a data shard needs to know of an asset defined in the metadata shard.
type AssetDefinition struct {
	Name      string
	Code      string
	Fractions uint64
	CreatedAt int64
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
func (c *Command) Encode(dst []byte) []byte {
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

	e := encoder{buf: dst}
	e.byte(commandVersion)
	e.byte(byte(c.Op))
	e.uvarint(mask)
	if mask&fieldProjectID != 0 {
		e.string(c.ProjectID)
	}
	if mask&fieldAssetID != 0 {
		e.string(c.AssetID)
	}
	if mask&fieldCustomerID != 0 {
		e.string(c.CustomerID)
	}
	if mask&fieldWalletID != 0 {
		e.string(c.WalletID)
	}
	if mask&fieldName != 0 {
		e.string(c.Name)
	}
	if mask&fieldDescription != 0 {
		e.string(c.Description)
	}
	if mask&fieldCode != 0 {
		e.string(c.Code)
	}
	if mask&fieldFractions != 0 {
		e.uvarint(c.Fractions)
	}
	if mask&fieldStatus != 0 {
		e.byte(byte(c.Status))
	}
	if mask&fieldWalletIDs != 0 {
		e.uvarint(uint64(len(c.WalletIDs)))
		for _, id := range c.WalletIDs {
			e.string(id)
		}
	}
	if mask&fieldIDPrefix != 0 {
		e.string(c.IDPrefix)
	}
	if mask&fieldReferenceID != 0 {
		e.string(c.ReferenceID)
	}
	if mask&fieldOperations != 0 {
		encodeOperations(&e, c.Operations)
	}
	if mask&fieldAsset != 0 {
		e.string(c.Asset.Name)
		e.string(c.Asset.Code)
		e.uvarint(c.Asset.Fractions)
		e.varint(c.Asset.CreatedAt)
	}
	return e.buf
}

func encodeOperations(e *encoder, ops []Operation) {
	e.uvarint(uint64(len(ops)))
	for i := range ops {
		e.byte(byte(ops[i].Type))
		e.string(ops[i].From)
		e.string(ops[i].To)
		e.amount(ops[i].Amount)
	}
}

// listMaxCount bounds decoded lists (operations, wallet IDs) against corrupt counts.
const listMaxCount = 1 << 16

func decodeOperations(d *decoder) []Operation {
	n := d.uvarint()
	if n > listMaxCount {
		d.fail(fmt.Errorf("fsm: %d operations", n))
		return nil
	}
	ops := make([]Operation, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		ops = append(ops, Operation{
			Type:   OperationType(d.byte()),
			From:   d.string(),
			To:     d.string(),
			Amount: d.amount(),
		})
	}
	return ops
}

// DecodeCommand parses what Encode wrote. Any malformed input is an error; the FSM treats an
// error here as divergence and panics.
func DecodeCommand(data []byte) (Command, error) {
	d := decoder{buf: data}
	var c Command
	if v := d.byte(); d.err == nil && v != commandVersion {
		return c, fmt.Errorf("decode command: unknown version %d", v)
	}
	c.Op = Op(d.byte())
	if d.err == nil && (c.Op == 0 || c.Op >= opEnd) {
		return c, fmt.Errorf("decode command: unknown op %d", c.Op)
	}
	mask := d.uvarint()
	if mask >= fieldEnd {
		return c, fmt.Errorf("decode command: unknown fields %#x", mask)
	}
	if mask&fieldProjectID != 0 {
		c.ProjectID = d.string()
	}
	if mask&fieldAssetID != 0 {
		c.AssetID = d.string()
	}
	if mask&fieldCustomerID != 0 {
		c.CustomerID = d.string()
	}
	if mask&fieldWalletID != 0 {
		c.WalletID = d.string()
	}
	if mask&fieldName != 0 {
		c.Name = d.string()
	}
	if mask&fieldDescription != 0 {
		c.Description = d.string()
	}
	if mask&fieldCode != 0 {
		c.Code = d.string()
	}
	if mask&fieldFractions != 0 {
		c.Fractions = d.uvarint()
	}
	c.SetName = mask&fieldSetName != 0
	c.SetDescription = mask&fieldSetDescription != 0
	if mask&fieldStatus != 0 {
		c.Status = WalletStatus(d.byte())
	}
	if mask&fieldWalletIDs != 0 {
		n := d.uvarint()
		if n > listMaxCount {
			return c, fmt.Errorf("decode command: %d wallet ids", n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			c.WalletIDs = append(c.WalletIDs, d.string())
		}
	}
	if mask&fieldIDPrefix != 0 {
		c.IDPrefix = d.string()
	}
	if mask&fieldReferenceID != 0 {
		c.ReferenceID = d.string()
	}
	if mask&fieldOperations != 0 {
		c.Operations = decodeOperations(&d)
	}
	if (mask&fieldOperations != 0 && len(c.Operations) == 0) || (mask&fieldWalletIDs != 0 && len(c.WalletIDs) == 0) {
		return c, fmt.Errorf("decode command: a list marked present is empty")
	}
	c.EnsureProject = mask&fieldEnsureProject != 0
	if mask&fieldAsset != 0 {
		c.Asset = &AssetDefinition{Name: d.string(), Code: d.string(), Fractions: d.uvarint(), CreatedAt: d.varint()}
	}
	return c, d.finish("command")
}
