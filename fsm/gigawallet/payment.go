package gigawallet

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/wire"
	"github.com/gigaledger/gigaledger/fsm"
)

// Payouts (fsm/gigawallet/CHAIN.md, "Payouts"). The proposer plans and signs the transaction
// (keys derived on demand, never stored); ReservePayment then reserves its inputs and holds its
// total on the account's wallet, or refuses, before anything is broadcast. The transaction is
// public data: it is replicated, so any later leader can broadcast it again.
const (
	OpReservePayment   fsm.Op = 205
	OpPaymentBroadcast fsm.Op = 206
	OpVoidPayment      fsm.Op = 207
	OpSkipAutoPayout   fsm.Op = 208
)

// Events of payouts (GigaWallet's names, with PAYMENT_RELEASED ours).
const (
	EventPaymentSent        = "PAYMENT_SENT"
	EventPaymentOnChain     = "PAYMENT_ON_CHAIN"
	EventPaymentConfirmed   = "PAYMENT_CONFIRMED"
	EventPaymentUnconfirmed = "PAYMENT_UNCONFIRMED"
	// EventPaymentReleased: the payout will not happen (the node refused it, or it was voided):
	// its inputs are free and its hold released.
	EventPaymentReleased = "PAYMENT_RELEASED"
	// EventInvoicePaymentRefunded: an invoice's refund payout is confirmed (GigaWallet declared
	// it and never sent it); the payout is the payload.
	EventInvoicePaymentRefunded = "INV_PAYMENT_REFUNDED"
	// EventAutoPayoutSkipped: an auto-payout period came with nothing to pay (the account is
	// the payload, its AutoPayoutNote the reason).
	EventAutoPayoutSkipped = "ACC_AUTO_PAYOUT_SKIPPED"
)

// Kinds of payout with rules of their own.
const (
	PaymentKindRefund  = "refund"
	PaymentKindAuto    = "auto"
	PaymentKindPayFrom = "payfrom" // pays an invoice (of any shard) once: see payFromKey
)

// Rejections of payouts.
const (
	CodePaymentNotFound        fsm.ErrorCode = "PaymentNotFound"
	CodeInputUnavailable       fsm.ErrorCode = "InputUnavailable" // spent, reserved or unconfirmed meanwhile: plan again
	CodeChangeIndexTaken       fsm.ErrorCode = "ChangeIndexTaken" // another payout took the change address: plan again
	CodeInsufficientFunds      fsm.ErrorCode = "InsufficientFunds"
	CodePaymentExists          fsm.ErrorCode = "PaymentExists"
	CodePaymentNotVoidable     fsm.ErrorCode = "PaymentNotVoidable"
	CodeRefundExists           fsm.ErrorCode = "RefundExists"
	CodeRefundTooLarge         fsm.ErrorCode = "RefundTooLarge"
	CodeAutoPayoutNotDue       fsm.ErrorCode = "AutoPayoutNotDue"
	paymentRecordVersion                     = 1
	paymentOutputsMax                        = 1000
	paymentInputsMax                         = 2000
	paymentRawTxMaxBytes                     = 100_000
	paymentReasonMaxBytes                    = 512
	paymentKindMaxLength                     = 16
	paymentHoldReferencePrefix               = "payout:"
)

// PaymentStatus is where a payout is.
type PaymentStatus uint8

// Payment statuses; stored, never renumber.
const (
	PaymentReserved  PaymentStatus = iota // signed, inputs reserved, total held; not broadcast yet
	PaymentSent                           // the node took it (or it was seen in the mempool)
	PaymentOnChain                        // mined: the hold is captured (the money left)
	PaymentConfirmed                      // the tip passed its block by the confirmations asked
	PaymentReleased                       // refused or voided: inputs free, hold released
	paymentStatusEnd
)

var paymentStatusNames = [paymentStatusEnd]string{"reserved", "sent", "on_chain", "confirmed", "released"}

func (s PaymentStatus) String() string {
	if s >= paymentStatusEnd {
		return fmt.Sprintf("PaymentStatus(%d)", uint8(s))
	}
	return paymentStatusNames[s]
}

// PayOutput is one output a payout pays, as asked (DeductFeePercent as its decimal text).
type PayOutput struct {
	Address          string
	Koinu            uint64
	DeductFeePercent string
}

// Payment is a payout of an account.
type Payment struct {
	ProjectID, ForeignID string
	TxID                 Hash
	Kind                 string // pay, paytx, payfrom
	InvoiceID            string // payfrom: the invoice paid
	Outputs              []PayOutput
	Inputs               []Outpoint
	ChangeAddress        string
	ChangeIndex          uint32
	ChangeKoinu          uint64
	PaidKoinu, FeeKoinu  uint64
	RawTx                []byte
	HoldID               string
	Broadcast            bool // GigaLedger broadcasts it (paytx: the caller does)
	Confirmations        int32
	Status               PaymentStatus
	Height, ConfirmAt    int64
	Reason               string
	Sequence             uint64 // the account's payout number, from 1: the list's order
	CreatedAt, UpdatedAt int64
}

// TotalKoinu is what the payout costs the account: paid + fee.
func (p *Payment) TotalKoinu() uint64 { return p.PaidKoinu + p.FeeKoinu }

func (p *Payment) Encode(e *fsm.Encoder) {
	e.Byte(paymentRecordVersion)
	e.String(p.ProjectID)
	e.String(p.ForeignID)
	e.Raw(p.TxID[:])
	e.String(p.Kind)
	e.String(p.InvoiceID)
	e.Uvarint(uint64(len(p.Outputs)))
	for _, o := range p.Outputs {
		e.String(o.Address)
		e.Uvarint(o.Koinu)
		e.String(o.DeductFeePercent)
	}
	encodeOutpoints(e, p.Inputs)
	e.String(p.ChangeAddress)
	e.Uvarint(uint64(p.ChangeIndex))
	e.Uvarint(p.ChangeKoinu)
	e.Uvarint(p.PaidKoinu)
	e.Uvarint(p.FeeKoinu)
	e.Bytes(p.RawTx)
	e.String(p.HoldID)
	e.Bool(p.Broadcast)
	e.Varint(int64(p.Confirmations))
	e.Byte(byte(p.Status))
	e.Varint(p.Height)
	e.Varint(p.ConfirmAt)
	e.String(p.Reason)
	e.Uvarint(p.Sequence)
	e.Varint(p.CreatedAt)
	e.Varint(p.UpdatedAt)
}

// ReadPayment reads what Encode wrote.
func ReadPayment(d *fsm.Decoder) *Payment {
	if v := d.Byte(); d.Err() == nil && v != paymentRecordVersion {
		d.Fail(fmt.Errorf("unknown payment record version %d", v))
	}
	p := &Payment{ProjectID: d.String(), ForeignID: d.String(), TxID: readHash(d), Kind: d.String(), InvoiceID: d.String()}
	n := d.Count("outputs")
	for i := 0; i < n && d.Err() == nil; i++ {
		p.Outputs = append(p.Outputs, PayOutput{Address: d.String(), Koinu: d.Uvarint(), DeductFeePercent: d.String()})
	}
	p.Inputs = readOutpoints(d)
	p.ChangeAddress = d.String()
	p.ChangeIndex = uint32Of(d)
	p.ChangeKoinu, p.PaidKoinu, p.FeeKoinu = d.Uvarint(), d.Uvarint(), d.Uvarint()
	p.RawTx = bytes.Clone(d.Bytes())
	p.HoldID = d.String()
	p.Broadcast = d.Bool()
	p.Confirmations = int32(d.Varint())
	p.Status = PaymentStatus(d.Byte())
	p.Height, p.ConfirmAt = d.Varint(), d.Varint()
	p.Reason = d.String()
	p.Sequence = d.Uvarint()
	p.CreatedAt, p.UpdatedAt = d.Varint(), d.Varint()
	if d.Err() == nil && p.Status >= paymentStatusEnd {
		d.Fail(fmt.Errorf("unknown payment status %d", p.Status))
	}
	return p
}

// ReservePayment reserves a signed payout's inputs and holds its total. The proposer planned it
// from the account's credited, free outputs and signed it; the FSM checks the transaction
// against the command (its txid, its inputs, its outputs), the inputs against the state, and the
// wallet's available balance, then reserves — or refuses and changes nothing.
type ReservePayment struct {
	ProjectID, ForeignID string
	Kind, InvoiceID      string
	Outputs              []PayOutput
	ChangeAddress        string
	ChangeIndex          uint32
	ChangeKoinu          uint64
	FeeKoinu             uint64
	RawTx                []byte
	Broadcast            bool
	Confirmations        int32
}

// PaymentBroadcast records what the node answered to a payout's broadcast: taken, or refused
// for good (Reason), which releases it.
type PaymentBroadcast struct {
	ProjectID, ForeignID string
	TxID                 Hash
	Refused              bool
	Reason               string
}

// VoidPayment releases a payout that was not seen in the mempool or a block.
type VoidPayment struct {
	ProjectID, ForeignID string
	TxID                 Hash
}

func (*ReservePayment) Op() fsm.Op   { return OpReservePayment }
func (*PaymentBroadcast) Op() fsm.Op { return OpPaymentBroadcast }
func (*VoidPayment) Op() fsm.Op      { return OpVoidPayment }

// Route implements fsm.Command: a payout lives with its account.
func (c *ReservePayment) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID}
}
func (c *PaymentBroadcast) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID}
}
func (c *VoidPayment) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID}
}

func (c *ReservePayment) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.ForeignID)
	e.String(c.Kind)
	e.String(c.InvoiceID)
	e.Uvarint(uint64(len(c.Outputs)))
	for _, o := range c.Outputs {
		e.String(o.Address)
		e.Uvarint(o.Koinu)
		e.String(o.DeductFeePercent)
	}
	e.String(c.ChangeAddress)
	e.Uvarint(uint64(c.ChangeIndex))
	e.Uvarint(c.ChangeKoinu)
	e.Uvarint(c.FeeKoinu)
	e.Bytes(c.RawTx)
	e.Bool(c.Broadcast)
	e.Varint(int64(c.Confirmations))
}

func decodeReservePayment(d *fsm.Decoder) fsm.Command {
	c := &ReservePayment{ProjectID: d.String(), ForeignID: d.String(), Kind: d.String(), InvoiceID: d.String()}
	n := d.Count("outputs")
	for i := 0; i < n && d.Err() == nil; i++ {
		c.Outputs = append(c.Outputs, PayOutput{Address: d.String(), Koinu: d.Uvarint(), DeductFeePercent: d.String()})
	}
	c.ChangeAddress = d.String()
	c.ChangeIndex = uint32Of(d)
	c.ChangeKoinu, c.FeeKoinu = d.Uvarint(), d.Uvarint()
	c.RawTx = bytes.Clone(d.Bytes())
	c.Broadcast = d.Bool()
	c.Confirmations = int32(d.Varint())
	return c
}

func (c *PaymentBroadcast) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.ForeignID)
	e.Raw(c.TxID[:])
	e.Bool(c.Refused)
	e.String(c.Reason)
}

func decodePaymentBroadcast(d *fsm.Decoder) fsm.Command {
	return &PaymentBroadcast{ProjectID: d.String(), ForeignID: d.String(), TxID: readHash(d), Refused: d.Bool(), Reason: d.String()}
}

func (c *VoidPayment) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.ForeignID)
	e.Raw(c.TxID[:])
}

func decodeVoidPayment(d *fsm.Decoder) fsm.Command {
	return &VoidPayment{ProjectID: d.String(), ForeignID: d.String(), TxID: readHash(d)}
}

// SkipAutoPayout records that an auto-payout period came with nothing to pay, and why: the
// period is spent (exactly once per period), and the reason is visible on the account and in
// ACC_AUTO_PAYOUT_SKIPPED.
type SkipAutoPayout struct {
	ProjectID, ForeignID, Reason string
}

func (*SkipAutoPayout) Op() fsm.Op { return OpSkipAutoPayout }
func (c *SkipAutoPayout) Route() fsm.Route {
	return fsm.Route{ProjectID: c.ProjectID, OwnerID: c.ForeignID}
}
func (c *SkipAutoPayout) Encode(e *fsm.Encoder) {
	e.String(c.ProjectID)
	e.String(c.ForeignID)
	e.String(c.Reason)
}
func decodeSkipAutoPayout(d *fsm.Decoder) fsm.Command {
	return &SkipAutoPayout{ProjectID: d.String(), ForeignID: d.String(), Reason: d.String()}
}

// Stored keys of payouts:
//
//	j {project} 0 {foreignID} 0 {sequence, 8 B} → txid: an account's payouts, oldest first
//	J {txid}                                     → Payment
//	B {txid}                                     → (empty) payouts not mined yet, for the broadcaster
//	Q {confirmAt, 8 B} {txid}                    → (empty) mined payouts by the tip height that confirms them
//	E {project} 0 {foreignID}                    → the account's payout count (uvarint)
//	X {project} 0 {foreignID}                    → (empty) accounts with auto-payouts configured
//	$ {project} 0 {invoiceID}                    → txid: the payfrom of an invoice reserved on this shard
const (
	prefixAccountPayment = 'j'
	prefixPayment        = 'J'
	prefixUnmined        = 'B'
	prefixPaymentConfirm = 'Q'
	prefixPaymentCount   = 'E'
	prefixAutoPayout     = 'X'
	prefixPayFrom        = '$' // every letter is taken
)

func paymentKey(txid Hash) []byte        { return append([]byte{prefixPayment}, txid[:]...) }
func unminedKey(txid Hash) []byte        { return append([]byte{prefixUnmined}, txid[:]...) }
func paymentCountKey(p, f string) []byte { return fsm.Key(prefixPaymentCount, p, f) }

// payFromKey names the payfrom that pays an invoice, on the shard of the paying account: the
// invoice lives on its own account's shard, which sees the payment only when the chain does, so
// the payer's shard is where a second payfrom of the same invoice can be refused at once.
func payFromKey(p, invoiceID string) []byte { return fsm.Key(prefixPayFrom, p, invoiceID) }
func accountPaymentKey(p, f string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(fsm.KeyPrefix(prefixAccountPayment, p, f), seq)
}
func paymentConfirmKey(at int64, txid Hash) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{prefixPaymentConfirm}, uint64(at)), txid[:]...)
}

// decodeTx reads a raw transaction strictly (no trailing bytes).
func decodeTx(raw []byte) (*wire.MsgTx, error) {
	tx := wire.NewMsgTx(wire.TxVersion)
	r := bytes.NewReader(raw)
	if err := tx.Deserialize(r); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the transaction", r.Len())
	}
	return tx, nil
}

// StaleRefusal implements fsm.StaleRefusals: an input or the change address another payout took
// meanwhile means the proposer plans again; under an idempotency key that refusal is not kept.
func (*ReservePayment) StaleRefusal(code fsm.ErrorCode) bool {
	return code == CodeInputUnavailable || code == CodeChangeIndexTaken
}

// RulesPayFromOnce is the rules version (fsm/rules.go) from which a shard refuses a second
// payfrom of an invoice while its first is not released, and a payfrom whose one output is not
// the invoice's address; before it, every payfrom was reserved (GigaWallet's behaviour).
const RulesPayFromOnce uint32 = 1

// RulesSettleShortfallOnRelease is the rules version from which a released payout's hold pays
// the account's shortfall first (before it, the wallet showed the released total while the
// account owed the shortfall), and a reorg that unmines a payout emits PAYMENT_UNCONFIRMED with
// the payout as it is then (sent, no height), whether it was confirmed or only mined; and
// ACC_BALANCE_CHANGE's outgoing amount is the account's payouts not yet confirmed (before, the
// wallet's held amount, which fell when a payout was mined); and a void of a released payout
// no longer says the node saw it.
const RulesSettleShortfallOnRelease uint32 = 6
