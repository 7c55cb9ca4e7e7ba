package gigawallet

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/gigaledger/gigaledger/fsm"
)

// The chain side of the family: what a shard's leader sees on the Dogecoin chain enters the log
// as commands that carry the data (chainwatch follows the node; nothing here talks to it), so
// every replica applies the same observation. See fsm/gigawallet/CHAIN.md for the model.
const (
	OpObserveChain            fsm.Op = 202
	OpRewindChain             fsm.Op = 203
	OpDropTransactions        fsm.Op = 204
	observedTxsMax                   = 1 << 16
	observedOutputsMax               = 1 << 12
	observedTagsMax                  = fsm.ListMaxCount
	recentRegistrations              = 1 << 16 // log entries a filter may lag behind the command's own
	recentTrimStep                   = 1 << 12 // trim the recent registrations by age at most this often
	creditReferencePrefix            = "chain:"
	reversalReferencePrefix          = "chain-reversal:"
	chainNetworkNameMaxLength        = 16
	addressOwnerRecordVersion        = 1
	utxoRecordVersion                = 1
	chainCursorRecordVersion         = 1
	pendingRecordValue               = "p"
	maxBlockHeight                   = 1 << 40
)

// Rejections of the chain ops. Each leaves the state unchanged; the follower reads again and
// proposes anew.
const (
	// CodeStaleFilter: an address was registered after the state the follower filtered against,
	// and one of the observed transactions may pay it.
	CodeStaleFilter fsm.ErrorCode = "StaleFilter"
	// CodeChainMismatch: the observation does not extend the shard's chain cursor (another
	// observation moved it, or a reorg the follower has not walked back yet).
	CodeChainMismatch fsm.ErrorCode = "ChainMismatch"
	// CodeWrongChain: the node follows another chain (genesis) or network than the shard.
	CodeWrongChain fsm.ErrorCode = "WrongChain"
)

// Hash is a block hash or transaction ID in internal byte order (as wire.MsgTx.TxHash).
type Hash [32]byte

// String is the hash in display order (byte-reversed hex), as nodes and explorers show it.
func (h Hash) String() string {
	var r [32]byte
	for i := range h {
		r[31-i] = h[i]
	}
	return hex.EncodeToString(r[:])
}

// ParseHash reads a hash in display order.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("gigawallet: %q is not a 32-byte hash in hex", s)
	}
	for i := range b {
		h[31-i] = b[i]
	}
	return h, nil
}

// Outpoint names a transaction output.
type Outpoint struct {
	TxID Hash
	Vout uint32
}

func (o Outpoint) String() string { return fmt.Sprintf("%s:%d", o.TxID, o.Vout) }

// ObservedOutput is an output of an observed transaction that pays an address of the shard.
type ObservedOutput struct {
	Vout    uint32
	Address string
	Koinu   uint64
}

// ObservedTx is a transaction as far as it touches the shard: the outputs that pay its
// addresses and the inputs that spend its outputs. A transaction that touches nothing is left
// out of the command.
type ObservedTx struct {
	TxID    Hash
	Outputs []ObservedOutput
	Spends  []Outpoint
}

// ObserveChain is one block of the active chain (Height > 0) or a set of mempool transactions
// (Height 0), filtered by the shard's leader against the shard's state at FilterIndex.
//
// Tags are AddressTag of every P2PKH output address of every transaction the observation
// covers, not only the shard's: the FSM checks the addresses registered after FilterIndex
// against them, so an invoice created while the follower filtered is never missed.
type ObserveChain struct {
	Network     string
	Genesis     Hash
	Height      int64
	Hash        Hash
	PrevHash    Hash
	FilterIndex uint64
	Tags        []uint32
	Txs         []ObservedTx
}

// RewindChain takes the shard's chain cursor back to a block of the active chain (the fork
// point of a reorg, or a rescan's start): every effect of the blocks above Height is undone, and
// the transactions they held are back in the mempool state until seen again or dropped.
type RewindChain struct {
	Height int64
	Hash   Hash
}

// DropTransactions forgets unmined transactions the node no longer has (evicted, or replaced
// by a double spend that was mined): their outputs are gone and the outputs they spent are
// unspent again.
type DropTransactions struct {
	TxIDs []Hash
}

func (*ObserveChain) Op() fsm.Op     { return OpObserveChain }
func (*RewindChain) Op() fsm.Op      { return OpRewindChain }
func (*DropTransactions) Op() fsm.Op { return OpDropTransactions }

// Route implements fsm.Command: a follower proposes to the shard it follows for.
func (*ObserveChain) Route() fsm.Route     { return fsm.Route{Pinned: true} }
func (*RewindChain) Route() fsm.Route      { return fsm.Route{Pinned: true} }
func (*DropTransactions) Route() fsm.Route { return fsm.Route{Pinned: true} }

// AddressTag is the 32-bit tag of an address in ObserveChain.Tags.
func AddressTag(address string) uint32 { return crc32.ChecksumIEEE([]byte(address)) }

func (c *ObserveChain) Encode(e *fsm.Encoder) {
	e.String(c.Network)
	e.Raw(c.Genesis[:])
	e.Varint(c.Height)
	e.Raw(c.Hash[:])
	e.Raw(c.PrevHash[:])
	e.Uvarint(c.FilterIndex)
	e.Uvarint(uint64(len(c.Tags)))
	for _, t := range c.Tags {
		e.Raw(binary.BigEndian.AppendUint32(nil, t))
	}
	e.Uvarint(uint64(len(c.Txs)))
	for _, tx := range c.Txs {
		e.Raw(tx.TxID[:])
		e.Uvarint(uint64(len(tx.Outputs)))
		for _, o := range tx.Outputs {
			e.Uvarint(uint64(o.Vout))
			e.String(o.Address)
			e.Uvarint(o.Koinu)
		}
		encodeOutpoints(e, tx.Spends)
	}
}

func encodeOutpoints(e *fsm.Encoder, ops []Outpoint) {
	e.Uvarint(uint64(len(ops)))
	for _, o := range ops {
		e.Raw(o.TxID[:])
		e.Uvarint(uint64(o.Vout))
	}
}

func readHash(d *fsm.Decoder) Hash {
	var h Hash
	copy(h[:], d.RawN(32))
	return h
}

func readOutpoints(d *fsm.Decoder) []Outpoint {
	n := d.Count("outpoints")
	out := make([]Outpoint, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		out = append(out, Outpoint{TxID: readHash(d), Vout: uint32Of(d)})
	}
	return out
}

func decodeObserveChain(d *fsm.Decoder) fsm.Command {
	c := &ObserveChain{Network: d.String(), Genesis: readHash(d), Height: d.Varint(), Hash: readHash(d),
		PrevHash: readHash(d), FilterIndex: d.Uvarint()}
	n := d.Count("tags")
	c.Tags = make([]uint32, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Tags = append(c.Tags, binary.BigEndian.Uint32(d.RawN(4)))
	}
	n = d.Count("transactions")
	c.Txs = make([]ObservedTx, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		tx := ObservedTx{TxID: readHash(d)}
		m := d.Count("outputs")
		for j := 0; j < m && d.Err() == nil; j++ {
			tx.Outputs = append(tx.Outputs, ObservedOutput{Vout: uint32Of(d), Address: d.String(), Koinu: d.Uvarint()})
		}
		tx.Spends = readOutpoints(d)
		c.Txs = append(c.Txs, tx)
	}
	return c
}

func (c *RewindChain) Encode(e *fsm.Encoder) {
	e.Varint(c.Height)
	e.Raw(c.Hash[:])
}

func decodeRewindChain(d *fsm.Decoder) fsm.Command {
	return &RewindChain{Height: d.Varint(), Hash: readHash(d)}
}

func (c *DropTransactions) Encode(e *fsm.Encoder) {
	e.Uvarint(uint64(len(c.TxIDs)))
	for _, h := range c.TxIDs {
		e.Raw(h[:])
	}
}

func decodeDropTransactions(d *fsm.Decoder) fsm.Command {
	n := d.Count("transactions")
	c := &DropTransactions{TxIDs: make([]Hash, 0, n)}
	for i := 0; i < n && d.Err() == nil; i++ {
		c.TxIDs = append(c.TxIDs, readHash(d))
	}
	return c
}

// ChainCursor is the shard's place on the chain: the last block observed, on the network and
// chain (genesis) the shard follows. Height 0 with a zero hash: nothing observed yet.
type ChainCursor struct {
	Network   string
	Genesis   Hash
	Height    int64
	Hash      Hash
	UpdatedAt int64
	// RecentFloor is the highest filter index an observation was applied with: the addresses
	// registered at or below it are forgotten, and an observation filtered below it is stale.
	RecentFloor uint64
}

func (c *ChainCursor) Encode(e *fsm.Encoder) {
	e.Byte(chainCursorRecordVersion)
	e.String(c.Network)
	e.Raw(c.Genesis[:])
	e.Varint(c.Height)
	e.Raw(c.Hash[:])
	e.Varint(c.UpdatedAt)
	e.Uvarint(c.RecentFloor)
}

// ReadChainCursor reads what Encode wrote.
func ReadChainCursor(d *fsm.Decoder) *ChainCursor {
	if v := d.Byte(); d.Err() == nil && v != chainCursorRecordVersion {
		d.Fail(fmt.Errorf("unknown chain cursor record version %d", v))
	}
	return &ChainCursor{Network: d.String(), Genesis: readHash(d), Height: d.Varint(), Hash: readHash(d), UpdatedAt: d.Varint(), RecentFloor: d.Uvarint()}
}

// Branch numbers of an account's keys (m/44'/3'/N'/branch/index).
const (
	BranchExternal uint8 = 0 // invoice addresses
	BranchInternal uint8 = 1 // change addresses
)

// AddressOwner is who an address the shard watches belongs to.
type AddressOwner struct {
	ProjectID, ForeignID string
	Branch               uint8
	KeyIndex             uint32
	Invoice              bool // the address is an invoice's ID
}

func (a *AddressOwner) Encode(e *fsm.Encoder) {
	e.Byte(addressOwnerRecordVersion)
	e.String(a.ProjectID)
	e.String(a.ForeignID)
	e.Byte(a.Branch)
	e.Uvarint(uint64(a.KeyIndex))
	e.Bool(a.Invoice)
}

// ReadAddressOwner reads what Encode wrote.
func ReadAddressOwner(d *fsm.Decoder) *AddressOwner {
	if v := d.Byte(); d.Err() == nil && v != addressOwnerRecordVersion {
		d.Fail(fmt.Errorf("unknown address record version %d", v))
	}
	a := &AddressOwner{ProjectID: d.String(), ForeignID: d.String(), Branch: d.Byte()}
	a.KeyIndex = uint32Of(d)
	a.Invoice = d.Bool()
	return a
}

// UTXO is an output paid to an address of the shard, from the moment it is seen (mempool or
// block) until the transaction that spends it is confirmed, or it is dropped.
type UTXO struct {
	Outpoint
	ProjectID, ForeignID, Address string
	Branch                        uint8
	KeyIndex                      uint32
	Invoice                       bool
	Koinu                         uint64
	Height                        int64 // the block that holds it; 0 while in the mempool
	ConfirmAt                     int64 // the tip height at which it counts as confirmed (Height + N); 0 in the mempool
	Credited                      bool  // its amount is in the account's wallet
	Credits                       uint32
	Spender                       Hash  // the transaction that spends it; zero: unspent
	SpentHeight                   int64 // the block that holds the spender; 0 in the mempool
	SeenAt                        int64 // batch time it was first seen
	Reservation                   Hash  // the payout that will spend it; zero: free
}

// Spent reports whether a transaction spending u was seen.
func (u *UTXO) Spent() bool { return u.Spender != Hash{} }

func (u *UTXO) Encode(e *fsm.Encoder) {
	e.Byte(utxoRecordVersion)
	e.Raw(u.TxID[:])
	e.Uvarint(uint64(u.Vout))
	e.String(u.ProjectID)
	e.String(u.ForeignID)
	e.String(u.Address)
	e.Byte(u.Branch)
	e.Uvarint(uint64(u.KeyIndex))
	e.Bool(u.Invoice)
	e.Uvarint(u.Koinu)
	e.Varint(u.Height)
	e.Varint(u.ConfirmAt)
	e.Bool(u.Credited)
	e.Uvarint(uint64(u.Credits))
	e.Raw(u.Spender[:])
	e.Varint(u.SpentHeight)
	e.Varint(u.SeenAt)
	e.Raw(u.Reservation[:])
}

// ReadUTXO reads what Encode wrote.
func ReadUTXO(d *fsm.Decoder) *UTXO {
	if v := d.Byte(); d.Err() == nil && v != utxoRecordVersion {
		d.Fail(fmt.Errorf("unknown utxo record version %d", v))
	}
	u := &UTXO{}
	u.TxID = readHash(d)
	u.Vout = uint32Of(d)
	u.ProjectID, u.ForeignID, u.Address = d.String(), d.String(), d.String()
	u.Branch = d.Byte()
	u.KeyIndex = uint32Of(d)
	u.Invoice = d.Bool()
	u.Koinu = d.Uvarint()
	u.Height, u.ConfirmAt = d.Varint(), d.Varint()
	u.Credited = d.Bool()
	u.Credits = uint32Of(d)
	u.Spender = readHash(d)
	u.SpentHeight, u.SeenAt = d.Varint(), d.Varint()
	u.Reservation = readHash(d)
	return u
}

// Stored keys of the chain side:
//
//	k                                  → ChainCursor
//	b {address}                        → AddressOwner: the addresses the shard watches
//	n {log index, 8 B} {address}       → (empty) addresses registered lately, for the stale-filter check
//	u {txid, 32 B} {vout, 4 B}         → UTXO
//	q {confirmAt, 8 B} {txid} {vout}   → (empty) mined UTXOs not yet credited, by the tip height that confirms them
//	Y {height, 8 B} {txid} {vout}      → (empty) mined UTXOs by the height of their block
//	y {spent height, 8 B} {txid} {vout}→ (empty) UTXOs spent by a mined transaction, by its height
//	z {spender txid} {txid} {vout}     → (empty) UTXOs by the transaction that spends them
//	P {txid}                           → (empty) unmined transactions that touch the shard
//	F {project} 0 {foreignID} 0 {txid} {vout} → (empty) an account's outputs
//	K {height, 8 B}                    → the hash of the block the shard observed at that height
const (
	prefixChainCursor  = 'k'
	prefixAddress      = 'b'
	prefixRecentAddr   = 'n'
	prefixUTXO         = 'u'
	prefixConfirmAt    = 'q'
	prefixMinedAt      = 'Y'
	prefixSpentAt      = 'y'
	prefixSpender      = 'z'
	prefixPendingTx    = 'P'
	prefixAccountUTXO  = 'F'
	prefixBlockHash    = 'K'
	outpointKeyBytes   = 36
	heightKeyPrefixLen = 9
)

var (
	chainCursorKey = []byte{prefixChainCursor}
	// recentTrimFloorKey holds the log index below which registrations were trimmed by age.
	recentTrimFloorKey = []byte{prefixChainCursor, 1}
)

func addressKey(address string) []byte { return append([]byte{prefixAddress}, address...) }

func recentAddressKey(index uint64, address string) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{prefixRecentAddr}, index), address...)
}

func appendOutpoint(k []byte, o Outpoint) []byte {
	return binary.BigEndian.AppendUint32(append(k, o.TxID[:]...), o.Vout)
}

func utxoKey(o Outpoint) []byte { return appendOutpoint([]byte{prefixUTXO}, o) }

func heightKey(prefix byte, height int64, o Outpoint) []byte {
	return appendOutpoint(binary.BigEndian.AppendUint64([]byte{prefix}, uint64(height)), o)
}

func spenderKey(spender Hash, o Outpoint) []byte {
	return appendOutpoint(append([]byte{prefixSpender}, spender[:]...), o)
}

func pendingKey(txid Hash) []byte { return append([]byte{prefixPendingTx}, txid[:]...) }

func blockHashKey(height int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixBlockHash}, uint64(height))
}

func accountUTXOKey(projectID, foreignID string, o Outpoint) []byte {
	return appendOutpoint(fsm.KeyPrefix(prefixAccountUTXO, projectID, foreignID), o)
}

func outpointOf(k []byte) (Outpoint, bool) {
	if len(k) < outpointKeyBytes {
		return Outpoint{}, false
	}
	tail := k[len(k)-outpointKeyBytes:]
	var o Outpoint
	copy(o.TxID[:], tail[:32])
	o.Vout = binary.BigEndian.Uint32(tail[32:])
	return o, true
}

// validate checks what an observation carries, before anything is read.
func (c *ObserveChain) validate() *fsm.Error {
	switch {
	case c.Network == "" || len(c.Network) > chainNetworkNameMaxLength || !fsm.ValidID(c.Network, chainNetworkNameMaxLength):
		return fsm.Rejectf(fsm.CodeInvalidArgument, "network must be a network name")
	case c.Height < 0 || c.Height > maxBlockHeight:
		return fsm.Rejectf(fsm.CodeInvalidArgument, "height %d is out of range", c.Height)
	case c.Height == 0 && (c.Hash != Hash{} || c.PrevHash != Hash{}):
		return fsm.Rejectf(fsm.CodeInvalidArgument, "a mempool observation names no block")
	case c.Height > 0 && c.Hash == Hash{}:
		return fsm.Rejectf(fsm.CodeInvalidArgument, "a block observation needs the block hash")
	case len(c.Txs) > observedTxsMax || len(c.Tags) > observedTagsMax:
		return fsm.Rejectf(fsm.CodeInvalidArgument, "an observation carries at most %d transactions and %d tags", observedTxsMax, observedTagsMax)
	case !slices.IsSorted(c.Tags):
		return fsm.Rejectf(fsm.CodeInvalidArgument, "tags must be sorted")
	}
	seen := map[Outpoint]bool{}
	for i, tx := range c.Txs {
		if len(tx.Outputs) > observedOutputsMax || len(tx.Spends) > observedOutputsMax {
			return fsm.Rejectf(fsm.CodeInvalidArgument, "transaction %d: too many outputs or spends", i)
		}
		for _, o := range tx.Outputs {
			op := Outpoint{TxID: tx.TxID, Vout: o.Vout}
			if seen[op] || o.Koinu == 0 || o.Koinu > maxKoinu || !fsm.ValidID(o.Address, AddressMaxLength) {
				return fsm.Rejectf(fsm.CodeInvalidArgument, "transaction %d: output %d is malformed or repeated", i, o.Vout)
			}
			seen[op] = true
			if _, ok := slices.BinarySearch(c.Tags, AddressTag(o.Address)); !ok {
				return fsm.Rejectf(fsm.CodeInvalidArgument, "transaction %d: output %d's address has no tag", i, o.Vout)
			}
		}
		for _, s := range tx.Spends {
			if s.TxID == tx.TxID {
				return fsm.Rejectf(fsm.CodeInvalidArgument, "transaction %d spends itself", i)
			}
		}
	}
	return nil
}

// maxKoinu bounds one output: Dogecoin's amounts are int64 koinu.
const maxKoinu = 1<<63 - 1
