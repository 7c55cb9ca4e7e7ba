package gigawallet

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/gigaledger/gigaledger/fsm"
)

func (f *Family) reservePayment(b *fsm.Batch, c *ReservePayment) *fsm.Result {
	s := b.Module(f.module).(*state)
	core := f.ledger.In(b)
	switch {
	case len(c.Outputs) == 0 || len(c.Outputs) > paymentOutputsMax:
		return fsm.Invalid("a payout has 1..%d outputs", paymentOutputsMax)
	case len(c.RawTx) == 0 || len(c.RawTx) > paymentRawTxMaxBytes:
		return fsm.Invalid("a payout's transaction is 1..%d bytes", paymentRawTxMaxBytes)
	case !fsm.ValidID(c.Kind, paymentKindMaxLength):
		return fsm.Invalid("a payout names its kind")
	case c.Confirmations < 0 || c.Confirmations > ConfirmationsMax:
		return fsm.Invalid("confirmations must be 0..%d", ConfirmationsMax)
	}
	a := s.account(b, c.ProjectID, c.ForeignID)
	if a == nil {
		return fsm.Fail(fsm.Rejectf(CodeAccountNotFound, "account not found: %s", c.ForeignID))
	}
	tx, err := decodeTx(c.RawTx)
	if err != nil {
		return fsm.Invalid("the payout's transaction does not decode: %v", err)
	}
	txid := Hash(tx.TxHash())
	// A released payout may be reserved again (signing is deterministic: the same plan is the
	// same transaction); it keeps its place in the account's list.
	prior := s.payment(b, txid)
	if prior != nil && prior.Status != PaymentReleased {
		return fsm.Fail(fsm.Rejectf(CodePaymentExists, "payout %s exists (%s)", txid, prior.Status))
	}
	// The transaction pays exactly the outputs asked, then the change (if any), from inputs the
	// account may spend.
	want := len(c.Outputs)
	if c.ChangeKoinu > 0 {
		want++
	}
	if len(tx.TxOut) != want || len(tx.TxIn) == 0 || len(tx.TxIn) > paymentInputsMax {
		return fsm.Invalid("the payout's transaction has %d outputs and %d inputs; want %d outputs", len(tx.TxOut), len(tx.TxIn), want)
	}
	var paid uint64
	for i, o := range c.Outputs {
		if !paysTo(tx.TxOut[i].PkScript, o.Address) || tx.TxOut[i].Value <= 0 || uint64(tx.TxOut[i].Value) != o.Koinu ||
			!fsm.ValidText(o.DeductFeePercent, 32) {
			return fsm.Invalid("output %d of the transaction is not %d koinu to %s", i, o.Koinu, o.Address)
		}
		paid += o.Koinu
	}
	if c.ChangeKoinu > 0 {
		if c.ChangeIndex != a.NextInternal {
			return fsm.Fail(fsm.Rejectf(CodeChangeIndexTaken, "change index %d is not the account's next (%d)", c.ChangeIndex, a.NextInternal))
		}
		last := tx.TxOut[len(tx.TxOut)-1]
		if !paysTo(last.PkScript, c.ChangeAddress) || uint64(last.Value) != c.ChangeKoinu || !fsm.ValidID(c.ChangeAddress, AddressMaxLength) {
			return fsm.Invalid("the last output is not the change, %d koinu to %s", c.ChangeKoinu, c.ChangeAddress)
		}
	}
	var in uint64
	inputs := make([]Outpoint, 0, len(tx.TxIn))
	seen := map[Outpoint]bool{}
	for i, txIn := range tx.TxIn {
		op := Outpoint{TxID: Hash(txIn.PreviousOutPoint.Hash), Vout: txIn.PreviousOutPoint.Index}
		u := s.utxo(b, op)
		switch {
		case seen[op]:
			return fsm.Invalid("input %d is spent twice", i)
		case u == nil || u.ProjectID != c.ProjectID || u.ForeignID != c.ForeignID:
			return fsm.Fail(fsm.Rejectf(CodeInputUnavailable, "input %d (%s) is not an output of the account", i, op))
		case !u.Credited || u.Spent() || u.Reservation != (Hash{}):
			return fsm.Fail(fsm.Rejectf(CodeInputUnavailable, "input %d (%s) is unconfirmed, spent or reserved", i, op))
		}
		seen[op] = true
		inputs = append(inputs, op)
		in += u.Koinu
	}
	if in != paid+c.FeeKoinu+c.ChangeKoinu || c.FeeKoinu == 0 {
		return fsm.Invalid("inputs %d ≠ paid %d + fee %d + change %d", in, paid, c.FeeKoinu, c.ChangeKoinu)
	}
	total := fsm.AmountFromUint64(paid + c.FeeKoinu)
	var refunded *Invoice
	switch c.Kind {
	case PaymentKindRefund:
		v, found := s.invoice(b, c.ProjectID, c.InvoiceID)
		switch {
		case !found || v.ForeignID != c.ForeignID:
			return fsm.Fail(fsm.Rejectf(CodeInvoiceNotFound, "no such invoice in this account: %s", c.InvoiceID))
		case v.Refund != (Hash{}):
			return fsm.Fail(fsm.Rejectf(CodeRefundExists, "invoice %s is refunded by payout %s", c.InvoiceID, v.Refund))
		case len(c.Outputs) != 1 || fsm.AmountFromUint64(paid).Cmp(v.Confirmed) > 0:
			return fsm.Fail(fsm.Rejectf(CodeRefundTooLarge, "a refund pays one output of at most what the invoice received confirmed, %s koinu", v.Confirmed))
		}
		refunded = v
	case PaymentKindPayFrom:
		// One payfrom per invoice among the accounts of this shard (a retry after a lost
		// answer, two clicks): the prior one stands unless it was released. A rule of rules
		// version RulesPayFromOnce: a log written before it replays as it applied then.
		if b.Rules() < RulesPayFromOnce {
			break
		}
		if !fsm.ValidID(c.InvoiceID, AddressMaxLength) || len(c.Outputs) != 1 || c.Outputs[0].Address != c.InvoiceID {
			return fsm.Invalid("a payfrom pays one output to the invoice's address")
		}
		if v := s.get(b, payFromKey(c.ProjectID, c.InvoiceID), "payfrom"); len(v) == len(Hash{}) {
			if q := s.payment(b, Hash(v)); q != nil && q.Status != PaymentReleased {
				return fsm.Fail(fsm.Rejectf(CodePaymentExists, "invoice %s is paid by payout %s (%s)", c.InvoiceID, q.TxID, q.Status))
			}
		}
	case PaymentKindAuto:
		due, _ := a.AutoPayoutDue(b.Now, core.Available(c.ProjectID, a.WalletID))
		if !due || len(c.Outputs) != 1 || c.Outputs[0].Address != a.PayoutAddress {
			return fsm.Fail(fsm.Rejectf(CodeAutoPayoutNotDue, "no auto-payout of the account to its payout address is due"))
		}
	}
	if core.Available(c.ProjectID, a.WalletID).Cmp(total) < 0 {
		return fsm.Fail(fsm.Rejectf(CodeInsufficientFunds, "the wallet has %s koinu available, the payout needs %s",
			core.Available(c.ProjectID, a.WalletID), total))
	}
	// Checked: reserve.
	holdID, rejected := core.Hold(c.ProjectID, a.WalletID, fmt.Sprintf("%s%s:%d", paymentHoldReferencePrefix, txid, b.Index), total)
	if rejected != nil {
		return fsm.Fail(rejected) // not reached: the wallet's availability was checked
	}
	for _, op := range inputs {
		next := *s.utxo(b, op)
		next.Reservation = txid
		s.putUTXO(b, &next)
	}
	next := *a
	if c.ChangeKoinu > 0 {
		s.watch(b, c.ChangeAddress, &AddressOwner{ProjectID: c.ProjectID, ForeignID: c.ForeignID, Branch: BranchInternal, KeyIndex: c.ChangeIndex})
		next.NextInternal++
	}
	next.Outgoing = mustAdd(next.Outgoing, total)
	next.UpdatedAt = b.Now
	if c.Kind == PaymentKindAuto {
		next.LastAutoPayout, next.AutoPayoutNote = b.Now, ""
	}
	s.put(b, &next)
	if c.Kind == PaymentKindPayFrom && b.Rules() >= RulesPayFromOnce {
		b.Set(payFromKey(c.ProjectID, c.InvoiceID), txid[:])
	}
	if refunded != nil {
		v := *refunded
		v.Refund, v.UpdatedAt = txid, b.Now
		s.putInvoice(b, &v)
	}
	p := &Payment{ProjectID: c.ProjectID, ForeignID: c.ForeignID, TxID: txid, Kind: c.Kind, InvoiceID: c.InvoiceID,
		Outputs: c.Outputs, Inputs: inputs, ChangeAddress: c.ChangeAddress, ChangeIndex: c.ChangeIndex, ChangeKoinu: c.ChangeKoinu,
		PaidKoinu: paid, FeeKoinu: c.FeeKoinu, RawTx: c.RawTx, HoldID: holdID, Broadcast: c.Broadcast,
		Confirmations: c.Confirmations, Status: PaymentReserved, CreatedAt: b.Now, UpdatedAt: b.Now}
	if prior != nil {
		p.Sequence, p.CreatedAt = prior.Sequence, prior.CreatedAt
	} else {
		p.Sequence = s.nextPaymentSequence(b, c.ProjectID, c.ForeignID)
		b.Set(accountPaymentKey(c.ProjectID, c.ForeignID, p.Sequence), txid[:])
	}
	b.Set(unminedKey(txid), nil)
	s.putPayment(b, p)
	out := *p
	return &fsm.Result{Value: &out}
}

// paysTo reports whether script is the P2PKH script of address (any network's version byte:
// the API checked the network).
func paysTo(script []byte, address string) bool {
	hash, _, err := base58.CheckDecode(address)
	if err != nil || len(hash) != 20 {
		return false
	}
	want := append(append([]byte{0x76, 0xa9, 0x14}, hash...), 0x88, 0xac)
	return bytes.Equal(script, want)
}

func (f *Family) paymentBroadcast(b *fsm.Batch, c *PaymentBroadcast) *fsm.Result {
	s := b.Module(f.module).(*state)
	p := s.payment(b, c.TxID)
	if p == nil || p.ProjectID != c.ProjectID || p.ForeignID != c.ForeignID {
		return fsm.Fail(fsm.Rejectf(CodePaymentNotFound, "payout not found: %s", c.TxID))
	}
	if len(c.Reason) > paymentReasonMaxBytes || !fsm.ValidText(c.Reason, paymentReasonMaxBytes) {
		return fsm.Invalid("reason must be at most %d printable characters", paymentReasonMaxBytes)
	}
	if p.Status != PaymentReserved && p.Status != PaymentSent {
		out := *p
		return &fsm.Result{Value: &out} // mined or released meanwhile: nothing to record
	}
	next := *p
	if c.Refused {
		if f.observed(b, s, p) {
			out := *p
			return &fsm.Result{Value: &out} // seen in the mempool: a refusal of a resend
		}
		f.release(b, s, &next, "refused by the node: "+c.Reason)
	} else if next.Status == PaymentReserved {
		next.Status, next.UpdatedAt = PaymentSent, b.Now
		s.putPayment(b, &next)
		emitPayment(b, EventPaymentSent, &next)
	}
	out := next
	return &fsm.Result{Value: &out}
}

func (f *Family) voidPayment(b *fsm.Batch, c *VoidPayment) *fsm.Result {
	s := b.Module(f.module).(*state)
	p := s.payment(b, c.TxID)
	if p == nil || p.ProjectID != c.ProjectID || p.ForeignID != c.ForeignID {
		return fsm.Fail(fsm.Rejectf(CodePaymentNotFound, "payout not found: %s", c.TxID))
	}
	if (p.Status != PaymentReserved && p.Status != PaymentSent) || f.observed(b, s, p) {
		out := *p
		message := fmt.Sprintf("payout %s is %s and was seen by the node: it cannot be voided", p.TxID, p.Status)
		if b.Rules() >= RulesSettleShortfallOnRelease && p.Status != PaymentReserved && p.Status != PaymentSent {
			// A released payout was not necessarily seen (a probe voided a voided paytx).
			message = fmt.Sprintf("payout %s is %s: only a payout the node has not taken can be voided", p.TxID, p.Status)
		}
		return &fsm.Result{Err: fsm.Rejectf(CodePaymentNotVoidable, "%s", message), Value: &out}
	}
	next := *p
	f.release(b, s, &next, "voided")
	out := next
	return &fsm.Result{Value: &out}
}

// observed reports whether the payout's transaction was seen spending its inputs.
func (f *Family) observed(b *fsm.Batch, s *state, p *Payment) bool {
	for _, op := range p.Inputs {
		if u := s.utxo(b, op); u != nil && u.Spender == p.TxID {
			return true
		}
	}
	return false
}

// release ends a payout that will not happen: inputs free, hold released, outgoing down.
func (f *Family) release(b *fsm.Batch, s *state, p *Payment, reason string) {
	core := f.ledger.In(b)
	for _, op := range p.Inputs {
		if u := s.utxo(b, op); u != nil && u.Reservation == p.TxID {
			next := *u
			next.Reservation = Hash{}
			s.putUTXO(b, &next)
		}
	}
	if r := core.ReleaseHold(p.ProjectID, p.HoldID); r != nil {
		panic(fmt.Sprintf("gigawallet: payout %s hold %s: %v", p.TxID, p.HoldID, r)) // corruption: an unmined payout's hold is active
	}
	a := s.account(b, p.ProjectID, p.ForeignID)
	next := *a
	next.Outgoing = mustSub(next.Outgoing, fsm.AmountFromUint64(p.TotalKoinu()))
	if b.Rules() >= RulesSettleShortfallOnRelease && !next.Shortfall.IsZero() {
		// The hold's money is back in the wallet: it pays what a reorg left the account owing
		// first, as a confirmed deposit does (a payout unmined by the reorg that also took back
		// the deposit it spent is released with its total, of which only part is still there).
		settleShortfall(core, &next, fmt.Sprintf("chain-settle:%s:released:%d", p.TxID, b.Index))
	}
	s.put(b, &next)
	b.Delete(unminedKey(p.TxID))
	if p.Kind == PaymentKindRefund {
		if v, found := s.invoice(b, p.ProjectID, p.InvoiceID); found && v.Refund == p.TxID {
			next := *v
			next.Refund, next.UpdatedAt = Hash{}, b.Now
			s.putInvoice(b, &next)
		}
	}
	p.Status, p.Reason, p.UpdatedAt = PaymentReleased, reason, b.Now
	s.putPayment(b, p)
	emitPayment(b, EventPaymentReleased, p)
}

func (f *Family) skipAutoPayout(b *fsm.Batch, c *SkipAutoPayout) *fsm.Result {
	s := b.Module(f.module).(*state)
	if len(c.Reason) == 0 || len(c.Reason) > paymentReasonMaxBytes || !fsm.ValidText(c.Reason, paymentReasonMaxBytes) {
		return fsm.Invalid("a skip names its reason, at most %d printable characters", paymentReasonMaxBytes)
	}
	a := s.account(b, c.ProjectID, c.ForeignID)
	if a == nil {
		return fsm.Fail(fsm.Rejectf(CodeAccountNotFound, "account not found: %s", c.ForeignID))
	}
	if due, periodic := a.AutoPayoutDue(b.Now, f.ledger.In(b).Available(c.ProjectID, a.WalletID)); !due || !periodic {
		return fsm.Fail(fsm.Rejectf(CodeAutoPayoutNotDue, "no periodic auto-payout of the account is due"))
	}
	next := *a
	next.LastAutoPayout, next.AutoPayoutNote, next.UpdatedAt = b.Now, c.Reason, b.Now
	s.put(b, &next)
	emit(b, EventAutoPayoutSkipped, &next)
	out := next
	return &fsm.Result{Value: &out}
}

// indexAutoPayouts keeps the account in the index of accounts with auto-payouts, or out of it.
func (s *state) indexAutoPayouts(b *fsm.Batch, a *Account) {
	k := fsm.Key(prefixAutoPayout, a.ProjectID, a.ForeignID)
	if a.autoPayouts() {
		b.Set(k, nil)
	} else {
		b.Delete(k)
	}
}

func emitPayment(b *fsm.Batch, eventType string, p *Payment) {
	e := fsm.Encoder{}
	p.Encode(&e)
	b.Emit(eventType, e.Buf)
}

// The chain side of payouts, called from the chain commands.

// paymentSeen handles a payout's transaction seen spending its inputs, in the mempool (height 0)
// or mined.
func (x *chainApply) paymentSeen(txid Hash, height int64) {
	p := x.s.payment(x.b, txid)
	if p == nil {
		return
	}
	next := *p
	switch {
	case height == 0 && next.Status == PaymentReserved:
		next.Status, next.UpdatedAt = PaymentSent, x.b.Now
		x.s.putPayment(x.b, &next)
		emitPayment(x.b, EventPaymentSent, &next)
	case height > 0 && (next.Status == PaymentReserved || next.Status == PaymentSent || next.Status == PaymentReleased):
		x.capture(&next, height)
	}
}

// capture records a payout mined at height: the hold becomes a redeem (the money left the
// ledger). A released payout that was mined anyway (voided after the node took it) is redeemed
// from the wallet's available balance; what it cannot give is shortfall.
func (x *chainApply) capture(p *Payment, height int64) {
	b, s := x.b, x.s
	a := x.account(p.ProjectID, p.ForeignID)
	x.noteBalance(a)
	ref := fmt.Sprintf("%s%s:mined:%d:%d", paymentHoldReferencePrefix, p.TxID, height, b.Index)
	total := fsm.AmountFromUint64(p.TotalKoinu())
	if p.Status == PaymentReleased {
		takeOrOwe(x.core, a, ref, total)
		a.Outgoing = mustAdd(a.Outgoing, total)
	} else if _, r := x.core.RedeemHold(p.ProjectID, p.HoldID, ref); r != nil {
		panic(fmt.Sprintf("gigawallet: payout %s: capture hold %s: %v", p.TxID, p.HoldID, r)) // corruption
	}
	s.put(b, a)
	b.Delete(unminedKey(p.TxID))
	p.Status, p.Height, p.UpdatedAt = PaymentOnChain, height, b.Now
	p.ConfirmAt = height + int64(p.Confirmations)
	s.putPayment(b, p)
	emitPayment(b, EventPaymentOnChain, p)
	if p.ConfirmAt <= height {
		x.confirmPayment(p)
	} else {
		b.Set(paymentConfirmKey(p.ConfirmAt, p.TxID), nil)
	}
}

func (x *chainApply) confirmPayment(p *Payment) {
	a := x.account(p.ProjectID, p.ForeignID)
	a.Outgoing = mustSub(a.Outgoing, fsm.AmountFromUint64(p.TotalKoinu()))
	x.s.put(x.b, a)
	x.b.Delete(paymentConfirmKey(p.ConfirmAt, p.TxID))
	p.Status, p.UpdatedAt = PaymentConfirmed, x.b.Now
	x.s.putPayment(x.b, p)
	emitPayment(x.b, EventPaymentConfirmed, p)
	if p.Kind == PaymentKindRefund {
		emitPayment(x.b, EventInvoicePaymentRefunded, p)
	}
}

// confirmPaymentsDue confirms the mined payouts whose confirmation height the tip reached.
func (x *chainApply) confirmPaymentsDue(tip int64) {
	var due []Hash
	upper := binary.BigEndian.AppendUint64([]byte{prefixPaymentConfirm}, uint64(tip)+1)
	x.mustScan([]byte{prefixPaymentConfirm}, upper, func(k []byte) bool {
		var h Hash
		copy(h[:], k[len(k)-32:])
		due = append(due, h)
		return true
	})
	for _, txid := range due {
		if p := x.s.payment(x.b, txid); p != nil && p.Status == PaymentOnChain && p.ConfirmAt <= tip {
			next := *p
			x.confirmPayment(&next)
		}
	}
}

// unminePayment undoes a payout's capture when a reorg takes its block away: the money is back
// in the wallet and held again, and the payout waits to be mined again (the broadcaster sends
// it again if the node lost it).
func (x *chainApply) unminePayment(txid Hash, rewindTo int64) {
	p := x.s.payment(x.b, txid)
	if p == nil || p.Height <= rewindTo || (p.Status != PaymentOnChain && p.Status != PaymentConfirmed) {
		return
	}
	b, s := x.b, x.s
	next := *p
	a := x.account(p.ProjectID, p.ForeignID)
	x.noteBalance(a)
	total := fsm.AmountFromUint64(p.TotalKoinu())
	holdID, r := x.core.IssueAndHold(p.ProjectID, a.WalletID, fmt.Sprintf("%s%s:unmined:%d:%d", paymentHoldReferencePrefix, p.TxID, p.Height, b.Index), total)
	if r != nil {
		panic(fmt.Sprintf("gigawallet: payout %s: hold again: %v", p.TxID, r)) // corruption: issue and hold of a fresh amount cannot fail
	}
	// Before RulesSettleShortfallOnRelease the event went out for a confirmed payout only, with
	// the record as it was (confirmed, its height); a log written then replays as it applied.
	eventAsItIs := b.Rules() >= RulesSettleShortfallOnRelease
	if next.Status == PaymentConfirmed {
		a.Outgoing = mustAdd(a.Outgoing, total)
		if !eventAsItIs {
			emitPayment(b, EventPaymentUnconfirmed, &next)
		}
	} else {
		b.Delete(paymentConfirmKey(p.ConfirmAt, p.TxID))
	}
	s.put(b, a)
	next.HoldID, next.Status, next.Height, next.ConfirmAt, next.UpdatedAt = holdID, PaymentSent, 0, 0, b.Now
	b.Set(unminedKey(txid), nil)
	s.putPayment(b, &next)
	if eventAsItIs {
		emitPayment(b, EventPaymentUnconfirmed, &next)
	}
	// Its inputs are its own again (a payout voided and mined anyway had let them go): no
	// other payout may select them while this one waits to be mined again.
	for _, op := range p.Inputs {
		if u := s.utxo(b, op); u != nil && u.Reservation != txid {
			reserved := *u
			reserved.Reservation = txid
			s.putUTXO(b, &reserved)
		}
	}
}

// unconfirmPayment puts a payout confirmed in a block at or below a rewind's new tip, whose
// confirmation height is above it, back to on_chain.
func (x *chainApply) unconfirmPayment(txid Hash, rewindTo int64) {
	p := x.s.payment(x.b, txid)
	if p == nil || p.Status != PaymentConfirmed || p.Height > rewindTo || p.ConfirmAt <= rewindTo {
		return
	}
	next := *p
	a := x.account(p.ProjectID, p.ForeignID)
	a.Outgoing = mustAdd(a.Outgoing, fsm.AmountFromUint64(p.TotalKoinu()))
	x.s.put(x.b, a)
	next.Status, next.UpdatedAt = PaymentOnChain, x.b.Now
	x.b.Set(paymentConfirmKey(next.ConfirmAt, next.TxID), nil)
	x.s.putPayment(x.b, &next)
	emitPayment(x.b, EventPaymentUnconfirmed, &next)
}

// spentElsewhere accounts for a credited output that a transaction other than a payout spent
// in a block (only a leaked key or a foreign wallet holding the seed can do that): its amount
// left custody, so it leaves the wallet (shortfall when the wallet cannot give it). A reorg
// that unmines the spend gives it back (restoreSpent).
func (x *chainApply) spentElsewhere(u *UTXO) {
	if !u.Credited || u.Branch != BranchExternal && u.Branch != BranchInternal {
		return
	}
	a := x.account(u.ProjectID, u.ForeignID)
	x.noteBalance(a)
	takeOrOwe(x.core, a, fmt.Sprintf("chain-spent:%s:%d:%s:%d", u.TxID, u.Vout, u.Spender, x.b.Index), fsm.AmountFromUint64(u.Koinu))
	x.s.put(x.b, a)
}

// restoreSpent gives back what spentElsewhere took, paying the shortfall first.
func (x *chainApply) restoreSpent(u *UTXO) {
	if !u.Credited {
		return
	}
	a := x.account(u.ProjectID, u.ForeignID)
	x.noteBalance(a)
	amount := fsm.AmountFromUint64(u.Koinu)
	settle := minAmount(amount, a.Shortfall)
	a.Shortfall = mustSub(a.Shortfall, settle)
	if rest := mustSub(amount, settle); !rest.IsZero() {
		ref := fmt.Sprintf("chain-unspent:%s:%d:%d", u.TxID, u.Vout, x.b.Index)
		// A closed wallet cannot take it back: the custody check reports the difference.
		_, _ = x.core.Issue(u.ProjectID, a.WalletID, ref, rest)
	}
	x.s.put(x.b, a)
}

// nextPaymentSequence is the account's next payout number.
func (s *state) nextPaymentSequence(b *fsm.Batch, projectID, foreignID string) uint64 {
	k := paymentCountKey(projectID, foreignID)
	var n uint64
	if v := s.get(b, k, "payout count"); v != nil {
		var size int
		if n, size = binary.Uvarint(v); size <= 0 {
			panic(fmt.Sprintf("gigawallet: payout count %x", v)) // corruption
		}
	}
	if cached, ok := s.paymentCounts[string(k)]; ok {
		n = cached
	}
	n++
	s.paymentCounts[string(k)] = n
	b.Set(k, binary.AppendUvarint(nil, n))
	return n
}

func (s *state) payment(b *fsm.Batch, txid Hash) *Payment {
	if p := s.payments[txid]; p != nil {
		return p
	}
	v := s.get(b, paymentKey(txid), "payout")
	if v == nil {
		return nil
	}
	d := fsm.NewDecoder(v)
	p := ReadPayment(d)
	if err := d.Finish("payout"); err != nil {
		panic(fmt.Sprintf("gigawallet: %v", err)) // corruption
	}
	return p
}

func (s *state) putPayment(b *fsm.Batch, p *Payment) {
	e := fsm.Encoder{}
	p.Encode(&e)
	b.Set(paymentKey(p.TxID), e.Buf)
	s.payments[p.TxID] = p
}
