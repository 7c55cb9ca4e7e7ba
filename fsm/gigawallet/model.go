package gigawallet

import (
	"fmt"
	"strconv"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
)

// Account is a GigaWallet account: the integrator's foreign ID, its HD account (index N of
// m/44'/3'/N', its extended public key and the P2PKH address that is the account's ID), the
// ledger wallet that holds its balance, and its payout settings (stored; paying out is the
// chainwatch issue's).
type Account struct {
	ProjectID       string
	ForeignID       string
	Index           uint32 // N of m/44'/3'/N': AccountIndex(slot, k), unique cluster-wide
	Address         string // the account's ID: the P2PKH address of m/44'/3'/N'
	XPub            string // the account's extended public key: invoice and change addresses derive from it
	WalletID        string
	PayoutAddress   string
	PayoutThreshold fsm.Amount // koinu
	PayoutFrequency string
	NextExternal    uint32 // the next invoice address index (m/.../0/i)
	NextInternal    uint32 // the next change address index (m/.../1/i)
	CreatedAt       int64
	UpdatedAt       int64
	// Incoming is Σ the outputs seen paying the account's invoice addresses and not yet
	// confirmed (GigaWallet's IncomingBalance), koinu.
	Incoming fsm.Amount
	// Shortfall is what a reorg took back from confirmed deposits that the wallet could no
	// longer give back (it was spent or held meanwhile); later confirmed deposits pay it first.
	Shortfall fsm.Amount
	// Outgoing is Σ the totals (paid + fee) of the account's payouts not yet confirmed
	// (GigaWallet's OutgoingBalance, which there only ever grew).
	Outgoing fsm.Amount
	// LastAutoPayout is the batch time of the last auto-payout (or of its skip), AutoPayoutNote
	// why the last one was skipped ("" when it was not).
	LastAutoPayout int64
	AutoPayoutNote string
}

// AccountIndex is the HD account index of the k-th account (from 0) created in a slot: slots
// own disjoint indexes, so shards assign them without talking to each other, and the index
// stays below 2^31 (a hardened BIP32 index) for AccountsPerSlotMax accounts per slot.
func AccountIndex(slot keyspace.Slot, k uint32) (uint32, error) {
	if k >= AccountsPerSlotMax {
		return 0, fmt.Errorf("gigawallet: slot %d has %d accounts, the most it can hold", slot, k)
	}
	return k*keyspace.SlotCount + uint32(slot), nil
}

// AccountsPerSlotMax bounds the accounts of one slot: 2^31 hardened indexes over 4096 slots
// (2^31 accounts in all).
const AccountsPerSlotMax = (1 << 31) / keyspace.SlotCount

// Encode implements fsm.Value; it is also the stored record.
func (a *Account) Encode(e *fsm.Encoder) {
	e.Byte(recordVersion)
	e.String(a.ProjectID)
	e.String(a.ForeignID)
	e.Uvarint(uint64(a.Index))
	e.String(a.Address)
	e.String(a.XPub)
	e.String(a.WalletID)
	e.String(a.PayoutAddress)
	e.Amount(a.PayoutThreshold)
	e.String(a.PayoutFrequency)
	e.Uvarint(uint64(a.NextExternal))
	e.Uvarint(uint64(a.NextInternal))
	e.Varint(a.CreatedAt)
	e.Varint(a.UpdatedAt)
	e.Amount(a.Incoming)
	e.Amount(a.Shortfall)
	e.Amount(a.Outgoing)
	e.Varint(a.LastAutoPayout)
	e.String(a.AutoPayoutNote)
}

// ReadAccount reads what Encode wrote.
func ReadAccount(d *fsm.Decoder) *Account {
	version := d.Byte()
	if d.Err() == nil && (version < 1 || version > recordVersion) {
		d.Fail(fmt.Errorf("unknown account record version %d", version))
	}
	a := &Account{ProjectID: d.String(), ForeignID: d.String()}
	a.Index = uint32Of(d)
	a.Address, a.XPub, a.WalletID, a.PayoutAddress = d.String(), d.String(), d.String(), d.String()
	a.PayoutThreshold = d.Amount()
	a.PayoutFrequency = d.String()
	a.NextExternal, a.NextInternal = uint32Of(d), uint32Of(d)
	a.CreatedAt, a.UpdatedAt = d.Varint(), d.Varint()
	if version >= 2 {
		a.Incoming, a.Shortfall, a.Outgoing = d.Amount(), d.Amount(), d.Amount()
		a.LastAutoPayout, a.AutoPayoutNote = d.Varint(), d.String()
	}
	return a
}

func uint32Of(d *fsm.Decoder) uint32 {
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.Fail(fmt.Errorf("index %d exceeds 32 bits", v))
	}
	return uint32(v)
}

func decodeAccount(data []byte) (*Account, error) {
	d := fsm.NewDecoder(data)
	a := ReadAccount(d)
	return a, d.Finish("account")
}

// recordVersion 2 added Incoming, Shortfall and Outgoing (version 1 reads as zero).
const recordVersion byte = 2

// Stored keys (prefixes claimed in the registry):
//
//	g {project} 0 {foreignID}   → Account
//	G {slot, 2 bytes}           → accounts created in the slot so far (uvarint)
const (
	prefixAccount   = 'g'
	prefixSlotCount = 'G'
)

func accountKey(projectID, foreignID string) []byte {
	return fsm.Key(prefixAccount, projectID, foreignID)
}

func slotCountKey(slot keyspace.Slot) []byte {
	return []byte{prefixSlotCount, byte(slot >> 8), byte(slot)}
}

// AccountBalance is ACC_BALANCE_CHANGE's payload: the account, its wallet's available balance
// (GigaWallet's CurrentBalance) and the totals of its payouts not yet confirmed
// (OutgoingBalance; the wallet's held amount before RulesSettleShortfallOnRelease) after the
// change.
type AccountBalance struct {
	Account
	Current, Outgoing fsm.Amount
}

// Encode implements fsm.Value.
func (a *AccountBalance) Encode(e *fsm.Encoder) {
	a.Account.Encode(e)
	e.Amount(a.Current)
	e.Amount(a.Outgoing)
}

// ReadAccountBalance reads what Encode wrote.
func ReadAccountBalance(d *fsm.Decoder) *AccountBalance {
	a := ReadAccount(d)
	return &AccountBalance{Account: *a, Current: d.Amount(), Outgoing: d.Amount()}
}

// AutoPayoutDue says whether an auto-payout of the account is due at time now (Unix ms) with
// available koinu in its wallet: its payout_frequency (seconds) has passed since the last one,
// or its payout_threshold is set and reached. periodic tells which: only a periodic due is
// skipped, with a reason, when there is nothing to pay.
func (a *Account) AutoPayoutDue(now int64, available fsm.Amount) (due, periodic bool) {
	if a.PayoutAddress == "" {
		return false, false
	}
	if seconds, err := strconv.ParseInt(a.PayoutFrequency, 10, 64); err == nil && seconds > 0 && now >= a.LastAutoPayout+seconds*1000 {
		return true, true
	}
	return !a.PayoutThreshold.IsZero() && available.Cmp(a.PayoutThreshold) >= 0, false
}

// autoPayouts reports whether the account has auto-payouts configured.
func (a *Account) autoPayouts() bool {
	return a.PayoutAddress != "" && (!a.PayoutThreshold.IsZero() || a.PayoutFrequency != "" && a.PayoutFrequency != "0")
}
