package gigawallet

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/gigaledger/gigaledger/fsm"
)

// OpCreateInvoice creates an invoice paid to the account's next external address.
const OpCreateInvoice fsm.Op = 201

// EventInvoiceCreated is INV_CREATED, with the invoice (and its real total: GigaWallet sent "0").
const EventInvoiceCreated = "INV_CREATED"

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
}

// Encode implements fsm.Value; it is also the stored record.
func (v *Invoice) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(v.ProjectID)
	e.String(v.ForeignID)
	e.String(v.Address)
	e.Uvarint(uint64(v.KeyIndex))
	encodeItems(e, v.Items)
	e.Amount(v.Total)
	e.Varint(int64(v.RequiredConfirmations))
	e.Varint(v.ExpiresAt)
	e.Varint(v.CreatedAt)
}

// ReadInvoice reads what Encode wrote.
func ReadInvoice(d *fsm.Decoder) *Invoice {
	if v := d.Byte(); d.Err() == nil && v != recordVersion {
		d.Fail(fmt.Errorf("unknown invoice record version %d", v))
	}
	v := &Invoice{ProjectID: d.String(), ForeignID: d.String(), Address: d.String()}
	v.KeyIndex = uint32Of(d)
	v.Items = decodeItems(d)
	v.Total = d.Amount()
	v.RequiredConfirmations = int32(d.Varint())
	v.ExpiresAt, v.CreatedAt = d.Varint(), d.Varint()
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
const (
	prefixInvoice        = 'v'
	prefixAccountInvoice = 'V'
)

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
	v := &Invoice{ProjectID: c.ProjectID, ForeignID: c.ForeignID, Address: c.Address, KeyIndex: c.KeyIndex, Items: c.Items,
		Total: sum, RequiredConfirmations: c.RequiredConfirmations, CreatedAt: b.Now}
	if c.ExpireMinutes > 0 {
		v.ExpiresAt = b.Now + int64(c.ExpireMinutes)*60_000
	}
	next := *a
	next.NextExternal++
	next.UpdatedAt = b.Now
	s.put(b, &next)
	e := fsm.Encoder{Buf: make([]byte, 0, invoiceRecordBytes)}
	v.Encode(&e)
	b.Set(invoiceKey(v.ProjectID, v.Address), e.Buf)
	b.Set(accountInvoiceKey(v.ProjectID, v.ForeignID, v.KeyIndex), []byte(v.Address))
	b.Emit(EventInvoiceCreated, e.Buf)
	out := *v
	return &fsm.Result{Value: &out}
}

// GetInvoice returns an invoice of the project by its address.
func (r *Reader) GetInvoice(projectID, address string) (*Invoice, error) {
	var v *Invoice
	err := r.store.Read(func() error {
		data, err := r.store.Get(invoiceKey(projectID, address))
		if err != nil {
			return err
		}
		if data == nil {
			return fsm.Rejectf(CodeInvoiceNotFound, "invoice not found: %s", address)
		}
		d := fsm.NewDecoder(data)
		v = ReadInvoice(d)
		return d.Finish("invoice")
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
