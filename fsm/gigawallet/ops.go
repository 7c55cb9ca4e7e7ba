package gigawallet

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Op codes 200–299 belong to this family (fsm/DESIGN.md): append only, never reuse.
const (
	OpUpsertAccount fsm.Op = 200
)

// Rejections of this family (GigaWallet's API maps them to its own codes).
const (
	// CodeAccountIndexTaken: the HD index the proposer derived the account's keys for was taken
	// by another account of the slot meanwhile; the proposer reads the next one and retries.
	CodeAccountIndexTaken fsm.ErrorCode = "AccountIndexTaken"
	CodeAccountNotFound   fsm.ErrorCode = "AccountNotFound"
)

// Events into the outbox.
const (
	EventAccountCreated = "ACC_CREATED"
	EventAccountUpdated = "ACC_UPDATED"
)

// Limits of what an account stores.
const (
	PayoutAddressMaxLength   = 64
	PayoutFrequencyMaxLength = 64
	AddressMaxLength         = 64
	XPubMaxLength            = 128
)

// UpsertAccount creates the account of a foreign ID, or applies the payout settings it sets to
// the existing one (GigaWallet ignored them: its #134). For a new account the proposer read the
// slot's next HD index (Family.NextAccountIndex), derived the account's keys for it and sends
// the public results; the FSM checks that the index is still the next one.
type UpsertAccount struct {
	ProjectID, AssetID, ForeignID string
	Index                         uint32
	Address, XPub, WalletID       string

	PayoutAddress, PayoutFrequency       string
	PayoutThreshold                      fsm.Amount
	SetPayoutAddress, SetPayoutFrequency bool
	SetPayoutThreshold                   bool

	// EnsureProject and Asset: the router's word from the metadata shard (ledger.NeedsMetadata).
	EnsureProject bool
	Asset         *ledger.AssetDefinition
}

// Op implements fsm.Command.
func (*UpsertAccount) Op() fsm.Op { return OpUpsertAccount }

// Route implements fsm.Command: the account lives with its customer, (project, foreign ID); its
// wallet ID carries the same slot.
func (c *UpsertAccount) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID, IDs: []string{c.WalletID}}
}

// Metadata implements ledger.NeedsMetadata: the project, and the DOGE asset marked used.
func (c *UpsertAccount) Metadata() (string, string) { return c.ProjectID, c.AssetID }

// Ensure implements ledger.NeedsMetadata.
func (c *UpsertAccount) Ensure(asset *ledger.AssetDefinition) {
	c.EnsureProject = true
	c.Asset = asset
}

// Encode implements fsm.Command.
func (c *UpsertAccount) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.AssetID)
	e.String(c.ForeignID)
	e.Uvarint(uint64(c.Index))
	e.String(c.Address)
	e.String(c.XPub)
	e.String(c.WalletID)
	e.String(c.PayoutAddress)
	e.String(c.PayoutFrequency)
	e.Amount(c.PayoutThreshold)
	e.Bool(c.SetPayoutAddress)
	e.Bool(c.SetPayoutFrequency)
	e.Bool(c.SetPayoutThreshold)
	e.Bool(c.EnsureProject)
	e.Bool(c.Asset != nil)
	if c.Asset != nil {
		e.String(c.Asset.Name)
		e.String(c.Asset.Code)
		e.Uvarint(c.Asset.Fractions)
		e.Varint(c.Asset.CreatedAt)
	}
}

func decodeUpsertAccount(d *fsm.Decoder) fsm.Command {
	c := &UpsertAccount{ProjectID: d.String(), AssetID: d.String(), ForeignID: d.String()}
	c.Index = uint32Of(d)
	c.Address, c.XPub, c.WalletID = d.String(), d.String(), d.String()
	c.PayoutAddress, c.PayoutFrequency = d.String(), d.String()
	c.PayoutThreshold = d.Amount()
	c.SetPayoutAddress, c.SetPayoutFrequency, c.SetPayoutThreshold = d.Bool(), d.Bool(), d.Bool()
	c.EnsureProject = d.Bool()
	if d.Bool() {
		c.Asset = &ledger.AssetDefinition{Name: d.String(), Code: d.String(), Fractions: d.Uvarint(), CreatedAt: d.Varint()}
	}
	return c
}

// Family is the GigaWallet family registered in one fsm.Registry.
type Family struct {
	module fsm.ModuleID
	ledger *ledger.Family
}

// Register adds the family to reg, on the accounting core registered there.
func Register(reg *fsm.Registry, core *ledger.Family) *Family {
	f := &Family{ledger: core}
	reg.ClaimPrefix(prefixAccount, "gigawallet: accounts")
	reg.ClaimPrefix(prefixSlotCount, "gigawallet: accounts per slot")
	reg.ClaimPrefix(prefixInvoice, "gigawallet: invoices")
	reg.ClaimPrefix(prefixAccountInvoice, "gigawallet: invoices by account")
	reg.ClaimPrefix(prefixInvoiceExpiry, "gigawallet: unpaid invoices by expiry")
	reg.ClaimPrefix(prefixChainCursor, "gigawallet: chain cursor")
	reg.ClaimPrefix(prefixAddress, "gigawallet: watched addresses")
	reg.ClaimPrefix(prefixRecentAddr, "gigawallet: addresses registered lately")
	reg.ClaimPrefix(prefixUTXO, "gigawallet: outputs paid to the shard")
	reg.ClaimPrefix(prefixConfirmAt, "gigawallet: outputs by confirmation height")
	reg.ClaimPrefix(prefixMinedAt, "gigawallet: outputs by block height")
	reg.ClaimPrefix(prefixSpentAt, "gigawallet: spent outputs by spender height")
	reg.ClaimPrefix(prefixSpender, "gigawallet: outputs by spender")
	reg.ClaimPrefix(prefixPendingTx, "gigawallet: unmined transactions")
	reg.ClaimPrefix(prefixAccountUTXO, "gigawallet: outputs by account")
	reg.ClaimPrefix(prefixBlockHash, "gigawallet: observed blocks by height")
	reg.ClaimPrefix(prefixAccountPayment, "gigawallet: payouts by account")
	reg.ClaimPrefix(prefixPayment, "gigawallet: payouts")
	reg.ClaimPrefix(prefixUnmined, "gigawallet: payouts not mined yet")
	reg.ClaimPrefix(prefixPaymentConfirm, "gigawallet: mined payouts by confirmation height")
	reg.ClaimPrefix(prefixPaymentCount, "gigawallet: payouts per account")
	reg.ClaimPrefix(prefixAutoPayout, "gigawallet: accounts with auto-payouts")
	reg.ClaimPrefix(prefixPayFrom, "gigawallet: payfrom payouts by invoice")
	f.module = reg.AddModule(func(s *fsm.Store) fsm.Module { return &state{store: s} })
	reg.Add(fsm.OpSpec{Op: OpUpsertAccount, Name: "UpsertAccount", Decode: decodeUpsertAccount,
		Example: &UpsertAccount{ProjectID: "p", AssetID: "doge", ForeignID: "f", Index: 7, Address: "n1", XPub: "tpub",
			WalletID: "w0000", SetPayoutThreshold: true, PayoutThreshold: fsm.AmountFromUint64(1)},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.upsertAccount(b, c.(*UpsertAccount))
		},
		DecodeValue: func(d *fsm.Decoder) fsm.Value { return ReadAccount(d) }})
	reg.Add(fsm.OpSpec{Op: OpCreateInvoice, Name: "CreateInvoice", Decode: decodeCreateInvoice,
		Example: &CreateInvoice{ProjectID: "p", ForeignID: "f", KeyIndex: 3, Address: "n1", RequiredConfirmations: 6,
			Items: []Item{{Type: "item", Name: "tea", Value: fsm.AmountFromUint64(150_000_000), Quantity: 2}}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.createInvoice(b, c.(*CreateInvoice))
		},
		DecodeValue: func(d *fsm.Decoder) fsm.Value { return ReadInvoice(d) }})
	cursorValue := func(d *fsm.Decoder) fsm.Value { return ReadChainCursor(d) }
	reg.Add(fsm.OpSpec{Op: OpObserveChain, Name: "ObserveChain", Decode: decodeObserveChain,
		Example: &ObserveChain{Network: "regtest", Height: 7, Hash: Hash{7}, PrevHash: Hash{6}, FilterIndex: 3,
			Tags: []uint32{AddressTag("n1")}, Txs: []ObservedTx{{TxID: Hash{1}, Outputs: []ObservedOutput{{Vout: 1, Address: "n1", Koinu: 5}},
				Spends: []Outpoint{{TxID: Hash{2}, Vout: 0}}}}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.observeChain(b, c.(*ObserveChain))
		},
		DecodeValue: cursorValue})
	reg.Add(fsm.OpSpec{Op: OpRewindChain, Name: "RewindChain", Decode: decodeRewindChain,
		Example: &RewindChain{Height: 5, Hash: Hash{5}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.rewindChain(b, c.(*RewindChain))
		},
		DecodeValue: cursorValue})
	reg.Add(fsm.OpSpec{Op: OpDropTransactions, Name: "DropTransactions", Decode: decodeDropTransactions,
		Example: &DropTransactions{TxIDs: []Hash{{1}}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.dropTransactions(b, c.(*DropTransactions))
		},
		DecodeValue: cursorValue})
	paymentValue := func(d *fsm.Decoder) fsm.Value { return ReadPayment(d) }
	reg.Add(fsm.OpSpec{Op: OpReservePayment, Name: "ReservePayment", Decode: decodeReservePayment,
		Example: &ReservePayment{ProjectID: "p", ForeignID: "f", Kind: "pay", Outputs: []PayOutput{{Address: "n1", Koinu: 5, DeductFeePercent: "0"}},
			ChangeAddress: "n2", ChangeIndex: 1, ChangeKoinu: 3, FeeKoinu: 1, RawTx: []byte{1, 2}, Broadcast: true, Confirmations: 6},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.reservePayment(b, c.(*ReservePayment))
		},
		DecodeValue: paymentValue})
	reg.Add(fsm.OpSpec{Op: OpPaymentBroadcast, Name: "PaymentBroadcast", Decode: decodePaymentBroadcast,
		Example: &PaymentBroadcast{ProjectID: "p", ForeignID: "f", TxID: Hash{1}, Refused: true, Reason: "-26: min relay fee not met"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.paymentBroadcast(b, c.(*PaymentBroadcast))
		},
		DecodeValue: paymentValue})
	reg.Add(fsm.OpSpec{Op: OpVoidPayment, Name: "VoidPayment", Decode: decodeVoidPayment,
		Example: &VoidPayment{ProjectID: "p", ForeignID: "f", TxID: Hash{1}},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.voidPayment(b, c.(*VoidPayment))
		},
		DecodeValue: paymentValue})
	reg.Add(fsm.OpSpec{Op: OpSkipAutoPayout, Name: "SkipAutoPayout", Decode: decodeSkipAutoPayout,
		Example: &SkipAutoPayout{ProjectID: "p", ForeignID: "f", Reason: "below the dust limit"},
		Apply: func(b *fsm.Batch, c fsm.Command) *fsm.Result {
			return f.skipAutoPayout(b, c.(*SkipAutoPayout))
		},
		DecodeValue: func(d *fsm.Decoder) fsm.Value { return ReadAccount(d) }})
	return f
}

// state is the family's per-shard memory: what the batch being applied wrote, which the store
// shows only once the batch commits.
type state struct {
	store      *fsm.Store
	accounts   map[string]*Account
	invoices   map[string]*Invoice
	slotCounts map[keyspace.Slot]uint32
	// nextExpiryMs is the earliest expiry of an unpaid invoice (0: none), so that a batch looks
	// for due invoices only when there are some; dueMs is its copy for other goroutines
	// (fsm.Timed: the leader proposes a tick when it is due).
	nextExpiryMs int64
	dueMs        atomic.Int64
	chainMemory
}

func (s *state) Load() error {
	s.accounts = map[string]*Account{}
	s.invoices = map[string]*Invoice{}
	s.slotCounts = map[keyspace.Slot]uint32{}
	s.chainMemory.reset()
	var err error
	if s.nextExpiryMs, err = earliestInvoiceExpiry(s.store); err != nil {
		return fmt.Errorf("load gigawallet: %w", err)
	}
	s.dueMs.Store(s.nextExpiryMs)
	return nil
}

// NextDueMs is the earliest expiry of an unpaid invoice, 0 for none (fsm.Timed).
func (s *state) NextDueMs() int64 { return s.dueMs.Load() }

// BeginBatch expires the invoices whose time has come (fsm.Module).
func (s *state) BeginBatch(b *fsm.Batch) { s.expireInvoices(b) }

func (s *state) EndBatch(*fsm.Batch) {
	s.dueMs.Store(s.nextExpiryMs)
	clear(s.accounts)
	clear(s.invoices)
	clear(s.slotCounts)
	s.chainMemory.reset()
}

// noteExpiry records a new expiry in memory.
func (s *state) noteExpiry(expiresAt int64) {
	if s.nextExpiryMs == 0 || expiresAt < s.nextExpiryMs {
		s.nextExpiryMs = expiresAt
	}
}

// invoice reads an invoice as the batch left it.
func (s *state) invoice(b *fsm.Batch, projectID, address string) (*Invoice, bool) {
	k := invoiceKey(projectID, address)
	if v := s.invoices[string(k)]; v != nil {
		return v, true
	}
	data, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: read invoice: %v", err)) // the store failed
	}
	if data == nil {
		return nil, false
	}
	d := fsm.NewDecoder(data)
	v := ReadInvoice(d)
	if err := d.Finish("invoice"); err != nil {
		panic(fmt.Sprintf("gigawallet: invoice %q: %v", k, err)) // corruption
	}
	return v, true
}

func (s *state) putInvoice(b *fsm.Batch, v *Invoice) {
	k := invoiceKey(v.ProjectID, v.Address)
	e := fsm.Encoder{Buf: make([]byte, 0, invoiceRecordBytes)}
	v.Encode(&e)
	b.Set(k, e.Buf)
	s.invoices[string(k)] = v
}

func (s *state) account(b *fsm.Batch, projectID, foreignID string) *Account {
	k := accountKey(projectID, foreignID)
	if a := s.accounts[string(k)]; a != nil {
		return a
	}
	v, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: read account: %v", err)) // the store failed
	}
	if v == nil {
		return nil
	}
	a, err := decodeAccount(v)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: account %q: %v", k, err)) // corruption
	}
	return a
}

func (s *state) slotCount(b *fsm.Batch, slot keyspace.Slot) uint32 {
	if n, ok := s.slotCounts[slot]; ok {
		return n
	}
	v, err := b.Get(slotCountKey(slot))
	if err != nil {
		panic(fmt.Sprintf("gigawallet: read slot count: %v", err))
	}
	if v == nil {
		return 0
	}
	n, size := binary.Uvarint(v)
	if size <= 0 || n > AccountsPerSlotMax {
		panic(fmt.Sprintf("gigawallet: slot %d count %x", slot, v)) // corruption
	}
	return uint32(n)
}

func (s *state) put(b *fsm.Batch, a *Account) {
	k := accountKey(a.ProjectID, a.ForeignID)
	e := fsm.Encoder{}
	a.Encode(&e)
	b.Set(k, e.Buf)
	s.accounts[string(k)] = a
}

func validText(s string, max int) bool { return fsm.ValidText(s, max) }

func (f *Family) upsertAccount(b *fsm.Batch, c *UpsertAccount) *fsm.Result {
	core := f.ledger.In(b)
	if err := core.RequireProject(c.ProjectID, c.EnsureProject); err != nil {
		return fsm.Fail(err)
	}
	switch {
	case !fsm.ValidCustomerID(c.ForeignID):
		return fsm.Invalid("foreign id must be 1..%d printable characters without '/'", fsm.CustomerIDMaxLength)
	case c.SetPayoutAddress && !validText(c.PayoutAddress, PayoutAddressMaxLength):
		return fsm.Invalid("payout_address must be at most %d printable characters", PayoutAddressMaxLength)
	case c.SetPayoutFrequency && !validText(c.PayoutFrequency, PayoutFrequencyMaxLength):
		return fsm.Invalid("payout_frequency must be at most %d printable characters", PayoutFrequencyMaxLength)
	}
	s := b.Module(f.module).(*state)
	if a := s.account(b, c.ProjectID, c.ForeignID); a != nil {
		changed := *a
		if c.SetPayoutAddress {
			changed.PayoutAddress = c.PayoutAddress
		}
		if c.SetPayoutFrequency && c.PayoutFrequency != a.PayoutFrequency {
			// A period counts from when the frequency is set: the first payout comes one
			// period later, not at once.
			changed.PayoutFrequency, changed.LastAutoPayout = c.PayoutFrequency, b.Now
		}
		if c.SetPayoutThreshold {
			changed.PayoutThreshold = c.PayoutThreshold
		}
		if changed != *a {
			changed.UpdatedAt = b.Now
			s.put(b, &changed)
			s.indexAutoPayouts(b, &changed)
			emit(b, EventAccountUpdated, &changed)
		}
		out := changed
		return &fsm.Result{Value: &out}
	}
	// A new account: the index the proposer derived for must still be the slot's next.
	slot := keyspace.SlotOf(c.ProjectID, c.ForeignID)
	k := s.slotCount(b, slot)
	want, err := AccountIndex(slot, k)
	if err != nil {
		return fsm.Fail(fsm.Rejectf(fsm.CodeInvalidArgument, "%v", err))
	}
	switch {
	case c.Index != want:
		return fsm.Fail(fsm.Rejectf(CodeAccountIndexTaken, "account index %d is not the next of slot %d (%d)", c.Index, slot, want))
	case c.Address == "" || !validText(c.Address, AddressMaxLength) || c.XPub == "" || !validText(c.XPub, XPubMaxLength):
		return fsm.Invalid("a new account needs its address and extended public key")
	}
	if _, rejection := core.OpenCustomerWallet(c.ProjectID, c.ForeignID, c.WalletID, c.AssetID, c.Asset); rejection != nil {
		return fsm.Fail(rejection)
	}
	a := &Account{ProjectID: c.ProjectID, ForeignID: c.ForeignID, Index: c.Index, Address: c.Address, XPub: c.XPub,
		WalletID: c.WalletID, PayoutAddress: c.PayoutAddress, PayoutThreshold: c.PayoutThreshold,
		PayoutFrequency: c.PayoutFrequency, CreatedAt: b.Now, UpdatedAt: b.Now, LastAutoPayout: b.Now}
	s.slotCounts[slot] = k + 1
	b.Set(slotCountKey(slot), binary.AppendUvarint(nil, uint64(k+1)))
	s.put(b, a)
	s.indexAutoPayouts(b, a)
	emit(b, EventAccountCreated, a)
	out := *a
	return &fsm.Result{Value: &out}
}

func emit(b *fsm.Batch, eventType string, a *Account) {
	e := fsm.Encoder{}
	a.Encode(&e)
	b.Emit(eventType, e.Buf)
}

// Of returns the family's read side over a machine built from the registry f was registered in.
func (f *Family) Of(m *fsm.Machine) *Reader { return &Reader{store: m.Store()} }

// Reader reads the family's records from a shard's store (linearizable once the caller has
// fenced a read index).
type Reader struct{ store *fsm.Store }

// GetAccount returns the account of a foreign ID.
func (r *Reader) GetAccount(projectID, foreignID string) (*Account, error) {
	var a *Account
	err := r.store.Read(func() error {
		v, err := r.store.Get(accountKey(projectID, foreignID))
		if err != nil {
			return err
		}
		if v == nil {
			return fsm.Rejectf(CodeAccountNotFound, "account not found: %s", foreignID)
		}
		a, err = decodeAccount(v)
		return err
	})
	return a, err
}

// NextAccountIndex is the HD index the next account created in the foreign ID's slot gets.
func (r *Reader) NextAccountIndex(projectID, foreignID string) (uint32, error) {
	slot := keyspace.SlotOf(projectID, foreignID)
	var index uint32
	err := r.store.Read(func() error {
		v, err := r.store.Get(slotCountKey(slot))
		if err != nil {
			return err
		}
		var k uint64
		if v != nil {
			var size int
			if k, size = binary.Uvarint(v); size <= 0 {
				return fmt.Errorf("gigawallet: slot %d count %x", slot, v)
			}
		}
		index, err = AccountIndex(slot, uint32(k))
		return err
	})
	return index, err
}

// EventSubject returns the subject of one of the family's events, the record it carries:
// *Account (ACC_*) or *Invoice (INV_*); ok is false for another family's event.
func EventSubject(ev fsm.Event) (subject fsm.Value, ok bool, err error) {
	d := fsm.NewDecoder(ev.Data)
	switch ev.Type {
	case EventAccountCreated, EventAccountUpdated:
		subject = ReadAccount(d)
	case EventInvoiceCreated, EventInvoiceExpired, EventInvoiceBalanceChanged, EventInvoicePartPaymentDetected,
		EventInvoiceTotalPaymentDetected, EventInvoiceOverPaymentDetected, EventInvoiceTotalPaymentConfirmed,
		EventInvoiceOverPaymentConfirmed, EventInvoicePaymentUnconfirmed:
		subject = ReadInvoice(d)
	case EventAccountBalanceChanged:
		subject = ReadAccountBalance(d)
	case EventAutoPayoutSkipped:
		subject = ReadAccount(d)
	case EventPaymentSent, EventPaymentOnChain, EventPaymentConfirmed, EventPaymentUnconfirmed, EventPaymentReleased, EventInvoicePaymentRefunded:
		subject = ReadPayment(d)
	default:
		return nil, false, nil
	}
	if err := d.Finish(ev.Type + " event"); err != nil {
		return nil, true, err
	}
	return subject, true, nil
}

// StaleRefusal implements fsm.StaleRefusals: an HD index another account of the slot took
// meanwhile means the proposer reads the next one; under an idempotency key that refusal is not
// kept.
func (*UpsertAccount) StaleRefusal(code fsm.ErrorCode) bool { return code == CodeAccountIndexTaken }
