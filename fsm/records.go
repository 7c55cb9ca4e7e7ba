package fsm

import (
	"encoding/binary"
	"fmt"
)

// Stored key layout. One prefix byte per record kind; parts joined by 0x00, which IDs may not
// contain. Big-endian fixed-width numbers inside keys keep byte order equal to numeric order.
//
//	m applied                          → last applied log index (excluded from digests)
//	m clock                            → last batch time and transaction sequence
//	p {project}                        → Project (without assets)
//	a {project} 0 {asset}              → Asset
//	c {project} 0 {customer}           → Customer
//	w {wallet}                         → Wallet
//	W {project} 0 {customer} 0 {seq}   → wallet ID (owner's wallets in creation order; customer "" = system)
//	t {project} 0 {sequence}           → Transaction (sequence order is time order)
//	r {project} 0 {referenceId}        → transaction sequence
//	e {wallet} 0 {time} {sequence}     → Entry
const (
	prefixMeta                 = 'm'
	prefixProject              = 'p'
	prefixAsset                = 'a'
	prefixCustomer             = 'c'
	prefixWallet               = 'w'
	prefixOwnerWallet          = 'W'
	prefixTransaction          = 't'
	prefixReference            = 'r'
	prefixTransactionTime      = 'T'
	prefixEntry                = 'e'
	keySeparator               = 0
	recordVersion         byte = 1
)

var (
	keyApplied = []byte("m\x00applied")
	keyClock   = []byte("m\x00clock")
)

func key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+16)
	k = append(k, prefix)
	for i, p := range parts {
		if i > 0 {
			k = append(k, keySeparator)
		}
		k = append(k, p...)
	}
	return k
}

// prefixOf returns the key prefix that every key under parts starts with (parts + separator).
func prefixOf(prefix byte, parts ...string) []byte {
	return append(key(prefix, parts...), keySeparator)
}

func appendTimeSequence(k []byte, timeMs int64, sequence uint64) []byte {
	k = binary.BigEndian.AppendUint64(k, uint64(timeMs))
	return binary.BigEndian.AppendUint64(k, sequence)
}

// prefixEnd returns the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func encodeProject(p *Project) []byte {
	e := encoder{buf: make([]byte, 0, 64)}
	e.byte(recordVersion)
	e.string(p.ID)
	e.string(p.Name)
	e.varint(p.CreatedAt)
	return e.buf
}

func decodeProject(data []byte) (*Project, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	p := &Project{ID: d.string(), Name: d.string(), CreatedAt: d.varint()}
	return p, d.finish("project")
}

func encodeAsset(a *Asset) []byte {
	e := encoder{buf: make([]byte, 0, 96)}
	e.byte(recordVersion)
	e.string(a.ProjectID)
	e.string(a.ID)
	e.string(a.Name)
	e.string(a.Code)
	e.uvarint(a.Fractions)
	e.bool(a.Used)
	e.amount(a.Supply)
	e.varint(a.CreatedAt)
	return e.buf
}

func decodeAsset(data []byte) (*Asset, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	a := &Asset{ProjectID: d.string(), ID: d.string(), Name: d.string(), Code: d.string(),
		Fractions: d.uvarint(), Used: d.bool(), Supply: d.amount(), CreatedAt: d.varint()}
	return a, d.finish("asset")
}

func encodeCustomer(c *Customer) []byte {
	e := encoder{buf: make([]byte, 0, 96)}
	e.byte(recordVersion)
	e.string(c.ProjectID)
	e.string(c.ID)
	e.string(c.Name)
	e.string(c.Description)
	e.byte(byte(c.Status))
	e.varint(c.CreatedAt)
	e.varint(c.UpdatedAt)
	return e.buf
}

func decodeCustomer(data []byte) (*Customer, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	c := &Customer{ProjectID: d.string(), ID: d.string(), Name: d.string(),
		Description: d.string(), Status: CustomerStatus(d.byte()), CreatedAt: d.varint(),
		UpdatedAt: d.varint()}
	return c, d.finish("customer")
}

func encodeWallet(w *Wallet) []byte {
	e := encoder{buf: make([]byte, 0, 128)}
	e.byte(recordVersion)
	e.string(w.ID)
	e.string(w.ProjectID)
	e.string(w.CustomerID)
	e.string(w.AssetID)
	e.string(w.Name)
	e.string(w.Description)
	e.byte(byte(w.Status))
	e.amount(w.Balance)
	e.amount(w.Held)
	e.uvarint(w.EntryCount)
	e.varint(w.CreatedAt)
	e.varint(w.UpdatedAt)
	return e.buf
}

func decodeWallet(data []byte) (*Wallet, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	w := &Wallet{ID: d.string(), ProjectID: d.string(), CustomerID: d.string(),
		AssetID: d.string(), Name: d.string(), Description: d.string(),
		Status: WalletStatus(d.byte()), Balance: d.amount(), Held: d.amount(),
		EntryCount: d.uvarint(), CreatedAt: d.varint(), UpdatedAt: d.varint()}
	return w, d.finish("wallet")
}

func encodeTransaction(t *Transaction) []byte {
	e := encoder{buf: make([]byte, 0, 128)}
	e.byte(recordVersion)
	e.string(t.ID)
	e.string(t.ProjectID)
	e.string(t.ReferenceID)
	e.byte(byte(t.Status))
	encodeOperations(&e, t.Operations)
	e.varint(int64(t.FailedOperationIndex))
	e.string(string(t.FailureReason))
	e.string(t.FailureMessage)
	e.varint(t.CreatedAt)
	e.uvarint(t.Sequence)
	return e.buf
}

func decodeTransaction(data []byte) (*Transaction, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	t := &Transaction{ID: d.string(), ProjectID: d.string(), ReferenceID: d.string(),
		Status: TransactionStatus(d.byte())}
	t.Operations = decodeOperations(&d)
	t.FailedOperationIndex = int(d.varint())
	t.FailureReason = ErrorCode(d.string())
	t.FailureMessage = d.string()
	t.CreatedAt = d.varint()
	t.Sequence = d.uvarint()
	return t, d.finish("transaction")
}

func encodeEntry(en *Entry) []byte {
	e := encoder{buf: make([]byte, 0, 64)}
	e.byte(recordVersion)
	e.uvarint(en.Sequence)
	e.string(en.TransactionID)
	e.uvarint(uint64(en.OperationIndex))
	e.byte(byte(en.Type))
	e.amount(en.Amount)
	e.amount(en.BalanceAfter)
	e.varint(en.CreatedAt)
	return e.buf
}

func decodeEntry(walletID string, data []byte) (*Entry, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	en := &Entry{WalletID: walletID, Sequence: d.uvarint(), TransactionID: d.string(),
		OperationIndex: int(d.uvarint()), Type: EntryType(d.byte()), Amount: d.amount(),
		BalanceAfter: d.amount(), CreatedAt: d.varint()}
	return en, d.finish("entry")
}

func checkVersion(d *decoder) {
	if v := d.byte(); d.err == nil && v != recordVersion {
		d.fail(fmt.Errorf("unknown record version %d", v))
	}
}

// clock is the FSM's own notion of time and order: batch times never go backwards, even when a
// new leader's clock is behind the old one's.
type clock struct {
	lastTimeMs          int64
	transactionSequence uint64
	walletSequence      uint64
}

func encodeClock(c clock) []byte {
	e := encoder{}
	e.byte(recordVersion)
	e.varint(c.lastTimeMs)
	e.uvarint(c.transactionSequence)
	e.uvarint(c.walletSequence)
	return e.buf
}

func decodeClock(data []byte) (clock, error) {
	d := decoder{buf: data}
	checkVersion(&d)
	c := clock{lastTimeMs: d.varint(), transactionSequence: d.uvarint(), walletSequence: d.uvarint()}
	return c, d.finish("clock")
}
