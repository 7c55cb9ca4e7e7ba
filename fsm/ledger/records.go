package ledger

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/gigaledger/gigaledger/fsm"
)

// Stored key layout. One prefix byte per record kind (claimed in the registry); parts joined by
// 0x00, which IDs may not contain. Big-endian fixed-width numbers inside keys keep byte order
// equal to numeric order.
//
//	p {project}                        → Project (without assets)
//	a {project} 0 {asset}              → Asset
//	c {project} 0 {customer}           → Customer
//	w {wallet}                         → Wallet
//	W {project} 0 {customer} 0 {seq}   → wallet ID (owner's wallets in creation order; customer "" = system)
//	t {project} 0 {sequence}           → Transaction (sequence order is time order)
//	r {project} 0 {referenceId}        → transaction sequence
//	e {wallet} 0 {time} {sequence}     → Entry (compact from RulesCompactEntries: the time is the key's)
//	h {project} 0 {hold}               → Hold
//	H {expiresAt} {project} 0 {hold}   → (empty) active holds by expiry
//	+                                  → the log index where the last wallet epoch ended (epochs.go)
//	d {project} 0 {sequence}           → a cross-shard transaction's participants, until done (cross.go)
//	l {project} 0 {transactionId}      → Participation in a cross-shard transaction (cross.go)
const (
	prefixProject     = 'p'
	prefixAsset       = 'a'
	prefixCustomer    = 'c'
	prefixWallet      = 'w'
	prefixOwnerWallet = 'W'
	prefixTransaction = 't'
	prefixReference   = 'r'
	prefixEntry       = 'e'
	prefixHold        = 'h'
	prefixHoldExpiry  = 'H'
	prefixWalletEpoch = '+'
	// From RulesEntriesAppended (entries.go): entries appended to the history store under
	// % {wallet} 0 {sequence} (never a state store key), and every 16th one's place in the state
	// store under & {wallet} 0 {group}.
	prefixEntryAppended    = '%'
	prefixTransactionBatch = 'T'
	prefixEntryGroup       = '&'

	recordVersion byte = 1
)

var prefixOwners = map[byte]string{
	prefixProject: "projects", prefixAsset: "assets", prefixCustomer: "customers",
	prefixWallet: "wallets", prefixOwnerWallet: "wallets by owner", prefixTransaction: "transactions",
	prefixReference: "reference IDs", prefixEntry: "entries", prefixHold: "holds",
	prefixHoldExpiry: "holds by expiry", prefixWalletEpoch: "wallet epoch", prefixCrossCoordinator: "cross-shard transactions (coordinator)",
	prefixCrossParticipant: "cross-shard participations",
	prefixEntryAppended:    "entries (appended to the history store)", prefixEntryGroup: "entries' places by group of 16",
	// 'T' was reserved for a transaction time index that was never written; from
	// RulesTransactionsAppended it finds a batch's appended transactions (transactions.go).
	prefixTransactionBatch: "transactions by batch",
}

// key and prefixOf are fsm.Key and fsm.KeyPrefix as plain functions, small enough to inline:
// a key that does not escape then lives on the stack (through a function variable, every key of
// the apply path was a heap allocation, a fifth of apply's allocations).
func key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	return appendKey(make([]byte, 0, n+16), prefix, parts...)
}

// appendKey appends key(prefix, parts...) to k.
func appendKey(k []byte, prefix byte, parts ...string) []byte {
	k = append(k, prefix)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func prefixOf(prefix byte, parts ...string) []byte { return append(key(prefix, parts...), 0) }

// appendIDSequenceKey appends {prefix} {id} 0 {sequence} to dst: the shape of the keys of
// entries, entry places, transactions and transaction batches.
func appendIDSequenceKey(dst []byte, prefix byte, id string, sequence uint64) []byte {
	return appendSequence(append(appendKey(dst, prefix, id), 0), sequence)
}

// idSequenceKey is appendIDSequenceKey into a new slice.
func idSequenceKey(prefix byte, id string, sequence uint64) []byte {
	return appendIDSequenceKey(make([]byte, 0, 1+len(id)+1+8), prefix, id, sequence)
}

func appendSequence(k []byte, sequence uint64) []byte {
	return binary.BigEndian.AppendUint64(k, sequence)
}

func appendTimeSequence(k []byte, timeMs int64, sequence uint64) []byte {
	k = binary.BigEndian.AppendUint64(k, uint64(timeMs))
	return binary.BigEndian.AppendUint64(k, sequence)
}

// record encodes a value the way the store keeps it: the same bytes travel between nodes as
// results.
func record(v fsm.Value) []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 128)}
	v.Encode(&e)
	return e.Buf
}

// decodeRecord decodes one stored record with its decode function.
func decodeRecord[T any](what string, data []byte, decode func(d *fsm.Decoder) *T) (*T, error) {
	d := fsm.NewDecoder(data)
	v := decode(d)
	return v, d.Finish(what)
}

func checkVersion(d *fsm.Decoder) {
	if v := d.Byte(); d.Err() == nil && v != recordVersion {
		d.Fail(fmt.Errorf("unknown record version %d", v))
	}
}

// Encode implements fsm.Value; it is also the stored record.
func (p *Project) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(p.ID)
	e.String(p.Name)
	e.Varint(p.CreatedAt)
}

func readProject(d *fsm.Decoder) *Project {
	checkVersion(d)
	return &Project{ID: d.String(), Name: d.String(), CreatedAt: d.Varint()}
}

func decodeProject(data []byte) (*Project, error) { return decodeRecord("project", data, readProject) }

// Encode implements fsm.Value; it is also the stored record.
func (a *Asset) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(a.ProjectID)
	e.String(a.ID)
	e.String(a.Name)
	e.String(a.Code)
	e.Uvarint(a.Fractions)
	e.Bool(a.Used)
	e.Amount(a.Supply)
	e.Varint(a.CreatedAt)
}

func readAsset(d *fsm.Decoder) *Asset {
	checkVersion(d)
	return &Asset{ProjectID: d.String(), ID: d.String(), Name: d.String(), Code: d.String(),
		Fractions: d.Uvarint(), Used: d.Bool(), Supply: d.Amount(), CreatedAt: d.Varint()}
}

func decodeAsset(data []byte) (*Asset, error) { return decodeRecord("asset", data, readAsset) }

// Encode implements fsm.Value; it is also the stored record.
func (c *Customer) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(c.ProjectID)
	e.String(c.ID)
	e.String(c.Name)
	e.String(c.Description)
	e.Byte(byte(c.Status))
	e.Varint(c.CreatedAt)
	e.Varint(c.UpdatedAt)
}

func readCustomer(d *fsm.Decoder) *Customer {
	checkVersion(d)
	return &Customer{ProjectID: d.String(), ID: d.String(), Name: d.String(),
		Description: d.String(), Status: CustomerStatus(d.Byte()), CreatedAt: d.Varint(),
		UpdatedAt: d.Varint()}
}

func decodeCustomer(data []byte) (*Customer, error) {
	return decodeRecord("customer", data, readCustomer)
}

// Encode implements fsm.Value; it is also the stored record.
//
// It is the version 1 record, which never carries NewestEntryIndex: that is the store's
// (walletRecord), and a query answer goes between nodes of two releases during an upgrade.
func (w *Wallet) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(w.ID)
	e.String(w.ProjectID)
	e.String(w.CustomerID)
	e.String(w.AssetID)
	e.String(w.Name)
	e.String(w.Description)
	e.Byte(byte(w.Status))
	e.Amount(w.Balance)
	e.Amount(w.Held)
	e.Uvarint(w.EntryCount)
	e.Varint(w.CreatedAt)
	e.Varint(w.UpdatedAt)
}

// walletRecordNewest is the stored wallet record with NewestEntryIndex after the version 1
// fields: written for a wallet with appended entries (RulesEntriesAppended) only.
const walletRecordNewest byte = 3

// walletRecord is a wallet's stored record.
func walletRecord(w *Wallet) []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 128)}
	w.Encode(&e)
	if w.NewestEntryIndex != 0 {
		e.Buf[0] = walletRecordNewest
		e.Uvarint(w.NewestEntryIndex)
	}
	return e.Buf
}

func readWallet(d *fsm.Decoder) *Wallet {
	version := d.Byte()
	if d.Err() == nil && version != recordVersion && version != walletRecordNewest {
		d.Fail(fmt.Errorf("unknown wallet record version %d", version))
	}
	w := &Wallet{ID: d.String(), ProjectID: d.String(), CustomerID: d.String(),
		AssetID: d.String(), Name: d.String(), Description: d.String(),
		Status: WalletStatus(d.Byte()), Balance: d.Amount(), Held: d.Amount(),
		EntryCount: d.Uvarint(), CreatedAt: d.Varint(), UpdatedAt: d.Varint()}
	if version == walletRecordNewest {
		w.NewestEntryIndex = d.Uvarint()
	}
	return w
}

func decodeWallet(data []byte) (*Wallet, error) { return decodeRecord("wallet", data, readWallet) }

// encodeOperations writes a transaction's operations. A hold's expiry follows its amount; the
// other types have none, so records of the first release (which had no holds) read unchanged.
func encodeOperations(e *fsm.Encoder, ops []Operation) {
	e.Uvarint(uint64(len(ops)))
	for i := range ops {
		e.Byte(byte(ops[i].Type))
		e.String(ops[i].From)
		e.String(ops[i].To)
		e.Amount(ops[i].Amount)
		if ops[i].Type == OperationHold {
			e.Varint(ops[i].ExpiresAt)
		}
	}
}

func decodeOperations(d *fsm.Decoder) []Operation {
	n := d.Count("operations")
	ops := make([]Operation, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		op := Operation{Type: OperationType(d.Byte()), From: d.String(), To: d.String(), Amount: d.Amount()}
		if op.Type == OperationHold {
			op.ExpiresAt = d.Varint()
		}
		ops = append(ops, op)
	}
	return ops
}

// Encode implements fsm.Value; it is also the stored record.
func (t *Transaction) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(t.ID)
	e.String(t.ProjectID)
	e.String(t.ReferenceID)
	e.Byte(byte(t.Status))
	encodeOperations(e, t.Operations)
	e.Varint(int64(t.FailedOperationIndex))
	e.String(string(t.FailureReason))
	e.String(t.FailureMessage)
	e.Varint(t.CreatedAt)
	e.Uvarint(t.Sequence)
}

func readTransaction(d *fsm.Decoder) *Transaction {
	checkVersion(d)
	t := &Transaction{ID: d.String(), ProjectID: d.String(), ReferenceID: d.String(),
		Status: TransactionStatus(d.Byte())}
	t.Operations = decodeOperations(d)
	t.FailedOperationIndex = int(d.Varint())
	t.FailureReason = fsm.ErrorCode(d.String())
	t.FailureMessage = d.String()
	t.CreatedAt = d.Varint()
	t.Sequence = d.Uvarint()
	return t
}

func decodeTransaction(data []byte) (*Transaction, error) {
	return decodeRecord("transaction", data, readTransaction)
}

func encodeEntry(en *Entry) []byte {
	e := fsm.Encoder{Buf: make([]byte, 0, 64)}
	e.Byte(recordVersion)
	e.Uvarint(en.Sequence)
	e.String(en.TransactionID)
	e.Uvarint(uint64(en.OperationIndex))
	e.Byte(byte(en.Type))
	e.Amount(en.Amount)
	e.Amount(en.BalanceAfter)
	e.Varint(en.CreatedAt)
	return e.Buf
}

func decodeEntry(walletID string, data []byte) (*Entry, error) {
	return decodeRecord("entry", data, func(d *fsm.Decoder) *Entry {
		checkVersion(d)
		return &Entry{WalletID: walletID, Sequence: d.Uvarint(), TransactionID: d.String(),
			OperationIndex: int(d.Uvarint()), Type: EntryType(d.Byte()), Amount: d.Amount(),
			BalanceAfter: d.Amount(), CreatedAt: d.Varint()}
	})
}

// Compact entry records (rules version RulesCompactEntries). An entry's bytes cost apply
// wherever they sit — in the entry's own key and again in the batch's history chain record,
// carried through every flush and compaction — and the version-1 record repeats the time its
// key holds and spells the transaction's sequence as 16 hex digits. The compact record leaves
// the time to the key and keeps a transaction ID of the usual form (transactionID: a prefix
// and 16 lower-case hex digits) as the prefix and the number: about 20 bytes less an entry.
// Entries travel between nodes (query answers, results) as version 1 (Entry.Encode), which
// every release reads.
//
//	version 2 | sequence | ID prefix (or the whole ID) | number + 1 (0: the whole ID) |
//	operation index | type | amount | balance after
const (
	// RulesCompactEntries is the rules version from which apply stores compact entry records.
	RulesCompactEntries uint32 = 3
	entryRecordCompact  byte   = 2
)

// encodeStoredEntry is an entry's record as apply stores it under the batch's rules.
func (l *Ledger) encodeStoredEntry(en *Entry) []byte {
	if l.b.Rules() < RulesCompactEntries {
		return encodeEntry(en)
	}
	return encodeEntryCompact(en)
}

// encodeEntryCompact is an entry's compact record.
func encodeEntryCompact(en *Entry) []byte { return appendEntryCompact(make([]byte, 0, 48), en) }

// appendEntryCompact appends an entry's compact record to buf.
func appendEntryCompact(buf []byte, en *Entry) []byte {
	e := fsm.Encoder{Buf: buf}
	e.Byte(entryRecordCompact)
	e.Uvarint(en.Sequence)
	if prefix, number, ok := splitTransactionID(en.TransactionID); ok {
		e.String(prefix)
		e.Uvarint(number + 1)
	} else {
		e.String(en.TransactionID)
		e.Uvarint(0)
	}
	e.Uvarint(uint64(en.OperationIndex))
	e.Byte(byte(en.Type))
	e.Amount(en.Amount)
	e.Amount(en.BalanceAfter)
	return e.Buf
}

// splitTransactionID splits an ID that transactionID made back into its prefix and number;
// ok is false for any other ID (and for the largest number, which number + 1 cannot hold).
func splitTransactionID(id string) (prefix string, number uint64, ok bool) {
	if len(id) <= transactionIDDigits {
		return "", 0, false
	}
	digits := id[len(id)-transactionIDDigits:]
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", 0, false
		}
	}
	number, err := strconv.ParseUint(digits, 16, 64)
	if err != nil || number == math.MaxUint64 {
		return "", 0, false
	}
	return id[:len(id)-transactionIDDigits], number, true
}

// decodeStoredEntry decodes a stored entry record of either version under its key
// (e {wallet} 0 {time} {sequence}), which gives a compact record its time and must agree
// with its sequence.
func decodeStoredEntry(walletID string, k, data []byte) (*Entry, error) {
	if len(data) == 0 || data[0] != entryRecordCompact {
		return decodeEntry(walletID, data)
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("entry key %q is too short", k)
	}
	createdAt := int64(binary.BigEndian.Uint64(k[len(k)-16:]))
	keySequence := binary.BigEndian.Uint64(k[len(k)-8:])
	return decodeRecord("entry", data, func(d *fsm.Decoder) *Entry {
		d.Byte() // entryRecordCompact
		e := &Entry{WalletID: walletID, Sequence: d.Uvarint(), CreatedAt: createdAt}
		prefix, numberPlus1 := d.String(), d.Uvarint()
		e.OperationIndex, e.Type = int(d.Uvarint()), EntryType(d.Byte())
		e.Amount, e.BalanceAfter = d.Amount(), d.Amount()
		switch {
		case d.Err() != nil:
		case e.Sequence != keySequence:
			d.Fail(fmt.Errorf("entry %d stored under sequence %d", e.Sequence, keySequence))
		case numberPlus1 == 0:
			e.TransactionID = prefix
		default:
			e.TransactionID = transactionID(prefix, numberPlus1-1)
		}
		return e
	})
}

// Encode implements fsm.Value; it is also the stored record.
//
// Version 2 adds CrossTransactionID at the end; a hold without it is written as version 1, so
// the records of holds that never took part in a cross-shard capture keep their bytes.
func (h *Hold) Encode(e *fsm.Encoder) {
	version := recordVersion
	if h.CrossTransactionID != "" {
		version = holdRecordVersionCross
	}
	e.Byte(version)
	e.String(h.ID)
	e.String(h.ProjectID)
	e.String(h.WalletID)
	e.Amount(h.Amount)
	e.Byte(byte(h.Status))
	e.Varint(h.ExpiresAt)
	e.String(h.TransactionID)
	e.Amount(h.CapturedAmount)
	e.String(h.CaptureTransactionID)
	e.Varint(h.CreatedAt)
	e.Varint(h.ResolvedAt)
	if version == holdRecordVersionCross {
		e.String(h.CrossTransactionID)
	}
}

// holdRecordVersionCross is the hold record with CrossTransactionID.
const holdRecordVersionCross byte = 2

func readHold(d *fsm.Decoder) *Hold {
	version := d.Byte()
	if d.Err() == nil && version != recordVersion && version != holdRecordVersionCross {
		d.Fail(fmt.Errorf("unknown hold record version %d", version))
	}
	h := &Hold{ID: d.String(), ProjectID: d.String(), WalletID: d.String(), Amount: d.Amount(),
		Status: HoldStatus(d.Byte()), ExpiresAt: d.Varint(), TransactionID: d.String(),
		CapturedAmount: d.Amount(), CaptureTransactionID: d.String(), CreatedAt: d.Varint(),
		ResolvedAt: d.Varint()}
	if version == holdRecordVersionCross {
		h.CrossTransactionID = d.String()
		if d.Err() == nil && (h.CrossTransactionID == "" || h.Status != HoldActive) {
			d.Fail(fmt.Errorf("hold %q: a version-2 record names an active hold's cross-shard transaction", h.ID))
		}
	}
	return h
}

func decodeHold(data []byte) (*Hold, error) { return decodeRecord("hold", data, readHold) }

// HoldResolution is the result of capturing or releasing a hold: the hold after it, and the
// capture's transaction (nil for a release).
type HoldResolution struct {
	Hold        *Hold
	Transaction *Transaction
}

// Encode implements fsm.Value.
func (r *HoldResolution) Encode(e *fsm.Encoder) {
	r.Hold.Encode(e)
	e.Bool(r.Transaction != nil)
	if r.Transaction != nil {
		r.Transaction.Encode(e)
	}
}

func readHoldResolution(d *fsm.Decoder) *HoldResolution {
	r := &HoldResolution{Hold: readHold(d)}
	if d.Bool() {
		r.Transaction = readTransaction(d)
	}
	return r
}

// The readers of the records' binary form, for the nodes that receive them (query answers).
// Each reads what the record's Encode wrote; errors go to the decoder.

// ReadProject reads a Project (without its assets).
func ReadProject(d *fsm.Decoder) *Project { return readProject(d) }

// ReadAsset reads an Asset.
func ReadAsset(d *fsm.Decoder) *Asset { return readAsset(d) }

// ReadCustomer reads a Customer.
func ReadCustomer(d *fsm.Decoder) *Customer { return readCustomer(d) }

// ReadWallet reads a Wallet.
func ReadWallet(d *fsm.Decoder) *Wallet { return readWallet(d) }

// ReadTransaction reads a Transaction.
func ReadTransaction(d *fsm.Decoder) *Transaction { return readTransaction(d) }

// ReadHold reads a Hold.
func ReadHold(d *fsm.Decoder) *Hold { return readHold(d) }

// Encode writes an entry with its wallet ID (the store keeps the wallet ID in the key).
func (en *Entry) Encode(e *fsm.Encoder) {
	e.String(en.WalletID)
	e.Bytes(encodeEntry(en))
}

// ReadEntry reads what Entry.Encode wrote.
func ReadEntry(d *fsm.Decoder) *Entry {
	walletID := d.String()
	data := d.Bytes()
	if d.Err() != nil {
		return &Entry{}
	}
	en, err := decodeEntry(walletID, data)
	if err != nil {
		d.Fail(err)
		return &Entry{}
	}
	return en
}
