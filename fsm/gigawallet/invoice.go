package gigawallet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/gigaledger/gigaledger/fsm"
)

// OpCreateInvoice creates an invoice paid to the account's next external address.
const OpCreateInvoice fsm.Op = 201

// Events of invoices, with the invoice record as payload.
const (
	// EventInvoiceCreated is INV_CREATED, with the real total (GigaWallet sent "0").
	EventInvoiceCreated = "INV_CREATED"
	// EventInvoiceExpired is INV_EXPIRED: an unpaid invoice reached its expiry (GigaWallet #112).
	EventInvoiceExpired = "INV_EXPIRED"
)

// InvoiceStatus is where an invoice is in its life. Expiry is a state change applied by the
// FSM at the first batch whose time reaches ExpiresAt (as hold expiry), so every replica and
// every reader agrees on it.
type InvoiceStatus uint8

// Invoice statuses; their numbers are stored, never renumber.
const (
	InvoiceUnpaid InvoiceStatus = iota
	InvoiceExpired
	// InvoicePaid: the confirmed payments reach the total (PaidHeight is set); a reorg that
	// takes confirmations away puts the invoice back to unpaid, or expired when its time passed.
	InvoicePaid
	invoiceStatusEnd
)

var invoiceStatusNames = [invoiceStatusEnd]string{InvoiceUnpaid: "unpaid", InvoiceExpired: "expired", InvoicePaid: "paid"}

// String is the status's name in the API.
func (s InvoiceStatus) String() string {
	if s >= invoiceStatusEnd {
		return fmt.Sprintf("InvoiceStatus(%d)", uint8(s))
	}
	return invoiceStatusNames[s]
}

// Limits of what an invoice stores; the API checks the same before proposing.
const (
	InvoiceItemsMax    = 100
	ItemTextMaxBytes   = 2048
	InvoiceAddressMax  = 64
	ConfirmationsMax   = 1440
	ExpireMinutesMax   = 30 * 24 * 60
	invoiceRecordBytes = 256
)

// Item is one line of an invoice. Value is signed (a discount is negative): Negative and the
// size in koinu.
type Item struct {
	Type, Name, SKU, Description, ImageLink string
	Negative                                bool
	Value                                   fsm.Amount
	Quantity                                uint64
}

// Invoice is an invoice of an account: its ID is the address it is paid to, the account's
// external key KeyIndex (m/44'/3'/N'/0/KeyIndex).
type Invoice struct {
	ProjectID             string
	ForeignID             string
	Address               string
	KeyIndex              uint32
	Items                 []Item
	Total                 fsm.Amount // koinu, Σ quantity × value, > 0
	RequiredConfirmations int32
	ExpiresAt             int64 // batch time (Unix ms); 0 = never
	CreatedAt             int64
	Status                InvoiceStatus
	UpdatedAt             int64
	// Incoming is Σ the outputs seen paying the address (mempool or mined, not dropped);
	// Confirmed is Σ those confirmed (credited to the account's wallet), koinu.
	Incoming, Confirmed fsm.Amount
	// PaidHeight is the chain tip when Confirmed first reached Total (GigaWallet's paid_height),
	// 0 while it does not.
	PaidHeight int64
	// Refund is the payout that pays the invoice's payment back (zero: none); an invoice is
	// refunded once, unless that payout is released.
	Refund Hash
}

// invoiceRecordVersion 2 added Status and UpdatedAt (version 1 reads as unpaid); 3 added
// Incoming, Confirmed and PaidHeight (older versions read as nothing received).
const invoiceRecordVersion byte = 3

// Encode implements fsm.Value; it is also the stored record.
func (v *Invoice) Encode(e *fsm.Encoder) {
	e.Byte(invoiceRecordVersion)
	e.String(v.ProjectID)
	e.String(v.ForeignID)
	e.String(v.Address)
	e.Uvarint(uint64(v.KeyIndex))
	encodeItems(e, v.Items)
	e.Amount(v.Total)
	e.Varint(int64(v.RequiredConfirmations))
	e.Varint(v.ExpiresAt)
	e.Varint(v.CreatedAt)
	e.Byte(byte(v.Status))
	e.Varint(v.UpdatedAt)
	e.Amount(v.Incoming)
	e.Amount(v.Confirmed)
	e.Varint(v.PaidHeight)
	e.Raw(v.Refund[:])
}

// ReadInvoice reads what Encode wrote.
func ReadInvoice(d *fsm.Decoder) *Invoice {
	version := d.Byte()
	if d.Err() == nil && (version < 1 || version > invoiceRecordVersion) {
		d.Fail(fmt.Errorf("unknown invoice record version %d", version))
	}
	v := &Invoice{ProjectID: d.String(), ForeignID: d.String(), Address: d.String()}
	v.KeyIndex = uint32Of(d)
	v.Items = decodeItems(d)
	v.Total = d.Amount()
	v.RequiredConfirmations = int32(d.Varint())
	v.ExpiresAt, v.CreatedAt = d.Varint(), d.Varint()
	v.UpdatedAt = v.CreatedAt
	if version >= 2 {
		v.Status = InvoiceStatus(d.Byte())
		v.UpdatedAt = d.Varint()
		if d.Err() == nil && v.Status >= invoiceStatusEnd {
			d.Fail(fmt.Errorf("unknown invoice status %d", v.Status))
		}
	}
	if version >= 3 {
		v.Incoming, v.Confirmed = d.Amount(), d.Amount()
		v.PaidHeight = d.Varint()
		v.Refund = readHash(d)
	}
	return v
}

func encodeItems(e *fsm.Encoder, items []Item) {
	e.Uvarint(uint64(len(items)))
	for _, it := range items {
		e.String(it.Type)
		e.String(it.Name)
		e.String(it.SKU)
		e.String(it.Description)
		e.String(it.ImageLink)
		e.Bool(it.Negative)
		e.Amount(it.Value)
		e.Uvarint(it.Quantity)
	}
}

func decodeItems(d *fsm.Decoder) []Item {
	n := d.Count("items")
	items := make([]Item, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		items = append(items, Item{Type: d.String(), Name: d.String(), SKU: d.String(), Description: d.String(),
			ImageLink: d.String(), Negative: d.Bool(), Value: d.Amount(), Quantity: d.Uvarint()})
	}
	return items
}

// CreateInvoice creates an invoice of an account. The proposer read the account's next external
// key index and derived the address from the account's extended public key; the FSM checks that
// the index is still the next (InvoiceIndexTaken otherwise: read again and retry).
type CreateInvoice struct {
	ProjectID, ForeignID  string
	KeyIndex              uint32
	Address               string
	Items                 []Item
	RequiredConfirmations int32
	ExpireMinutes         int32
}

// CodeInvoiceIndexTaken: another invoice of the account took the key index meanwhile.
const CodeInvoiceIndexTaken fsm.ErrorCode = "InvoiceIndexTaken"

// Op implements fsm.Command.
func (*CreateInvoice) Op() fsm.Op { return OpCreateInvoice }

// Route implements fsm.Command: the invoice lives with its account.
func (c *CreateInvoice) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID}
}

// Encode implements fsm.Command.
func (c *CreateInvoice) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.ForeignID)
	e.Uvarint(uint64(c.KeyIndex))
	e.String(c.Address)
	encodeItems(e, c.Items)
	e.Varint(int64(c.RequiredConfirmations))
	e.Varint(int64(c.ExpireMinutes))
}

func decodeCreateInvoice(d *fsm.Decoder) fsm.Command {
	c := &CreateInvoice{ProjectID: d.String(), ForeignID: d.String()}
	c.KeyIndex = uint32Of(d)
	c.Address = d.String()
	c.Items = decodeItems(d)
	c.RequiredConfirmations = int32(d.Varint())
	c.ExpireMinutes = int32(d.Varint())
	return c
}

// Stored keys:
//
//	v {project} 0 {address}                       → Invoice
//	V {project} 0 {foreignID} 0 {key index, 4 B}  → address (an account's invoices, oldest first)
//	x {expiresAt, 8 B} {project} 0 {address}      → (empty) unpaid invoices that expire, by time
const (
	prefixInvoice        = 'v'
	prefixAccountInvoice = 'V'
	prefixInvoiceExpiry  = 'x'
)

func invoiceExpiryKey(expiresAt int64, projectID, address string) []byte {
	k := binary.BigEndian.AppendUint64([]byte{prefixInvoiceExpiry}, uint64(expiresAt))
	return append(append(append(k, projectID...), 0), address...)
}

func invoiceKey(projectID, address string) []byte { return fsm.Key(prefixInvoice, projectID, address) }

func accountInvoiceKey(projectID, foreignID string, index uint32) []byte {
	return binary.BigEndian.AppendUint32(fsm.KeyPrefix(prefixAccountInvoice, projectID, foreignID), index)
}

// total is Σ quantity × value, checked the way GigaWallet does (§3.1): the running total must
// stay above zero after every item, and no step may pass 2^128−1.
func total(items []Item) (fsm.Amount, *fsm.Error) {
	var sum fsm.Amount
	for i, it := range items {
		line, ok := mulAmount(it.Value, it.Quantity)
		if !ok {
			return fsm.Amount{}, fsm.Rejectf(fsm.CodeInvalidArgument, "items[%d]: value × quantity is too large", i)
		}
		var err error
		if it.Negative {
			sum, err = sum.Sub(line)
		} else if sum, err = sum.Add(line); err != nil {
			return fsm.Amount{}, fsm.Rejectf(fsm.CodeInvalidArgument, "items[%d]: the total is too large", i)
		}
		if err != nil || sum.IsZero() {
			return fsm.Amount{}, fsm.Rejectf(fsm.CodeInvalidArgument, "items[%d]: the running total must stay above zero", i)
		}
	}
	return sum, nil
}

// mulAmount is a × q, or false past 2^128−1.
func mulAmount(a fsm.Amount, q uint64) (fsm.Amount, bool) {
	product := new(big.Int).Mul(a.Big(), new(big.Int).SetUint64(q))
	out, err := fsm.AmountFromBig(product)
	return out, err == nil
}

func validItem(it Item) bool {
	switch {
	case it.Quantity == 0 || it.Value.IsZero():
		return false
	case it.Type == "discount" && !it.Negative, it.Type != "discount" && it.Negative:
		return false
	}
	switch it.Type {
	case "item", "tax", "fee", "shipping", "discount", "donation":
	default:
		return false
	}
	for _, text := range []string{it.Name, it.SKU, it.Description, it.ImageLink} {
		if len(text) > ItemTextMaxBytes || !fsm.ValidText(text, ItemTextMaxBytes) && !validMultiline(text) {
			return false
		}
	}
	return true
}

// validMultiline allows the newlines and tabs a description may carry.
func validMultiline(text string) bool {
	clean := make([]rune, 0, len(text))
	for _, r := range text {
		if r == '\n' || r == '\r' || r == '\t' {
			continue
		}
		clean = append(clean, r)
	}
	return fsm.ValidText(string(clean), ItemTextMaxBytes)
}

func (f *Family) createInvoice(b *fsm.Batch, c *CreateInvoice) *fsm.Result {
	core := f.ledger.In(b)
	if err := core.RequireProject(c.ProjectID, false); err != nil {
		return fsm.Fail(err)
	}
	switch {
	case len(c.Items) == 0 || len(c.Items) > InvoiceItemsMax:
		return fsm.Invalid("an invoice has 1..%d items", InvoiceItemsMax)
	case c.RequiredConfirmations < 0 || c.RequiredConfirmations > ConfirmationsMax:
		return fsm.Invalid("required_confirmations must be 0..%d", ConfirmationsMax)
	case c.ExpireMinutes < 0 || c.ExpireMinutes > ExpireMinutesMax:
		return fsm.Invalid("expire_minutes must be 0..%d", ExpireMinutesMax)
	case c.Address == "" || !fsm.ValidID(c.Address, InvoiceAddressMax):
		return fsm.Invalid("an invoice needs its address")
	}
	for i, it := range c.Items {
		if !validItem(it) {
			return fsm.Invalid("items[%d] is not a valid item", i)
		}
	}
	sum, rejection := total(c.Items)
	if rejection != nil {
		return fsm.Fail(rejection)
	}
	s := b.Module(f.module).(*state)
	a := s.account(b, c.ProjectID, c.ForeignID)
	if a == nil {
		return fsm.Fail(fsm.Rejectf(CodeAccountNotFound, "account not found: %s", c.ForeignID))
	}
	if c.KeyIndex != a.NextExternal {
		return fsm.Fail(fsm.Rejectf(CodeInvoiceIndexTaken, "key index %d is not the account's next (%d)", c.KeyIndex, a.NextExternal))
	}
	if _, taken := s.invoice(b, c.ProjectID, c.Address); taken {
		return fsm.Fail(fsm.Rejectf(CodeInvoiceExists, "an invoice with address %s exists", c.Address))
	}
	v := &Invoice{ProjectID: c.ProjectID, ForeignID: c.ForeignID, Address: c.Address, KeyIndex: c.KeyIndex, Items: c.Items,
		Total: sum, RequiredConfirmations: c.RequiredConfirmations, CreatedAt: b.Now, UpdatedAt: b.Now}
	if c.ExpireMinutes > 0 {
		v.ExpiresAt = b.Now + int64(c.ExpireMinutes)*60_000
		b.Set(invoiceExpiryKey(v.ExpiresAt, v.ProjectID, v.Address), nil)
		s.noteExpiry(v.ExpiresAt)
	}
	next := *a
	next.NextExternal++
	next.UpdatedAt = b.Now
	s.put(b, &next)
	s.putInvoice(b, v)
	b.Set(accountInvoiceKey(v.ProjectID, v.ForeignID, v.KeyIndex), []byte(v.Address))
	s.watch(b, v.Address, &AddressOwner{ProjectID: v.ProjectID, ForeignID: v.ForeignID, Branch: BranchExternal,
		KeyIndex: v.KeyIndex, Invoice: true})
	emitInvoice(b, EventInvoiceCreated, v)
	out := *v
	return &fsm.Result{Value: &out}
}

// CodeInvoiceExists: an invoice with that address exists (a proposer's bug: addresses derive
// from distinct keys).
const CodeInvoiceExists fsm.ErrorCode = "InvoiceExists"

func emitInvoice(b *fsm.Batch, eventType string, v *Invoice) {
	e := fsm.Encoder{Buf: make([]byte, 0, invoiceRecordBytes)}
	v.Encode(&e)
	b.Emit(eventType, e.Buf)
}

// invoiceExpiriesPerBatch bounds the expiries one batch applies; the rest wait for the next.
const invoiceExpiriesPerBatch = 1000

// expireInvoices marks, at the start of a batch, the unpaid invoices whose time has come
// expired, oldest first, and emits INV_EXPIRED for each. The earliest expiry is kept in memory,
// so a batch with nothing due reads nothing.
func (s *state) expireInvoices(b *fsm.Batch) {
	if s.nextExpiryMs == 0 || s.nextExpiryMs > b.Now {
		return
	}
	it, err := s.store.NewIter([]byte{prefixInvoiceExpiry}, []byte{prefixInvoiceExpiry + 1})
	if err != nil {
		panic(fmt.Sprintf("gigawallet: invoice expiries: %v", err)) // the store failed
	}
	type due struct{ key, project, address string }
	var dues []due
	s.nextExpiryMs = 0
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			panic(fmt.Sprintf("gigawallet: invoice expiry key %q", k)) // corruption
		}
		if expiresAt := int64(binary.BigEndian.Uint64(k[1:9])); expiresAt > b.Now || len(dues) == invoiceExpiriesPerBatch {
			s.nextExpiryMs = expiresAt
			break
		}
		project, address, ok := bytes.Cut(k[9:], []byte{0})
		if !ok {
			panic(fmt.Sprintf("gigawallet: invoice expiry key %q", k)) // corruption
		}
		dues = append(dues, due{string(k), string(project), string(address)})
	}
	if err := it.Error(); err != nil {
		panic(fmt.Sprintf("gigawallet: invoice expiries: %v", err))
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("gigawallet: invoice expiries: %v", err))
	}
	for _, d := range dues {
		v, found := s.invoice(b, d.project, d.address)
		if !found || v.Status != InvoiceUnpaid {
			panic(fmt.Sprintf("gigawallet: expiry index names invoice %s/%s that is not unpaid", d.project, d.address)) // corruption
		}
		b.Delete([]byte(d.key))
		if !v.Incoming.IsZero() {
			continue // a payment was seen: the invoice waits for it instead of expiring
		}
		next := *v
		next.Status, next.UpdatedAt = InvoiceExpired, b.Now
		s.putInvoice(b, &next)
		emitInvoice(b, EventInvoiceExpired, &next)
	}
}

// earliestInvoiceExpiry reads the earliest expiry of an unpaid invoice (0: none).
func earliestInvoiceExpiry(store *fsm.Store) (int64, error) {
	it, err := store.NewIter([]byte{prefixInvoiceExpiry}, []byte{prefixInvoiceExpiry + 1})
	if err != nil {
		return 0, err
	}
	var earliest int64
	if it.First() {
		if len(it.Key()) < 9 {
			_ = it.Close()
			return 0, fmt.Errorf("gigawallet: invoice expiry key %q", it.Key())
		}
		earliest = int64(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	return earliest, it.Close()
}

// GetInvoice returns an invoice of the project by its address. With a foreign ID, an invoice
// of another account is not found either ("no such invoice in this account", as GigaWallet).
func (r *Reader) GetInvoice(projectID, foreignID, address string) (*Invoice, error) {
	var v *Invoice
	err := r.store.Read(func() error {
		data, err := r.store.Get(invoiceKey(projectID, address))
		if err != nil {
			return err
		}
		if data == nil && foreignID != "" {
			// The same words whether the invoice is nowhere or another account's on another
			// shard: the account's view does not tell them apart.
			return fsm.Rejectf(CodeInvoiceNotFound, "no such invoice in this account: %s", address)
		}
		if data == nil {
			return fsm.Rejectf(CodeInvoiceNotFound, "invoice not found: %s", address)
		}
		d := fsm.NewDecoder(data)
		v = ReadInvoice(d)
		if err := d.Finish("invoice"); err != nil {
			return err
		}
		if foreignID != "" && v.ForeignID != foreignID {
			return fsm.Rejectf(CodeInvoiceNotFound, "no such invoice in this account: %s", address)
		}
		return nil
	})
	return v, err
}

// CodeInvoiceNotFound: no invoice with that ID.
const CodeInvoiceNotFound fsm.ErrorCode = "InvoiceNotFound"

// ListInvoices returns up to limit invoices of an account with key index ≥ cursor, oldest
// first (GigaWallet's cursor).
func (r *Reader) ListInvoices(projectID, foreignID string, cursor uint32, limit int) ([]Invoice, error) {
	var invoices []Invoice
	err := r.store.Read(func() error {
		prefix := fsm.KeyPrefix(prefixAccountInvoice, projectID, foreignID)
		it, err := r.store.NewIter(accountInvoiceKey(projectID, foreignID, cursor), fsm.PrefixEnd(prefix))
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(invoices) < limit; valid = it.Next() {
			data, err := r.store.Get(invoiceKey(projectID, string(it.Value())))
			if err != nil {
				return err
			}
			if data == nil {
				return fmt.Errorf("gigawallet: index names missing invoice %q", it.Value())
			}
			d := fsm.NewDecoder(data)
			v := ReadInvoice(d)
			if err := d.Finish("invoice"); err != nil {
				return err
			}
			invoices = append(invoices, *v)
		}
		return it.Error()
	})
	return invoices, err
}

// StaleRefusal implements fsm.StaleRefusals: a key index another invoice took meanwhile means the
// proposer reads the account again; under an idempotency key that refusal is not kept.
func (*CreateInvoice) StaleRefusal(code fsm.ErrorCode) bool { return code == CodeInvoiceIndexTaken }
