package gigawallet

import (
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// testAddress is a well-formed regtest P2PKH address for seed n.
func testAddress(n byte) string {
	hash := make([]byte, 20)
	hash[0] = n
	return base58.CheckEncode(hash, 0x6f)
}

func p2pkh(address string) []byte {
	hash, _, _ := base58.CheckDecode(address)
	return append(append([]byte{0x76, 0xa9, 0x14}, hash...), 0x88, 0xac)
}

// payoutTx builds the (unsigned: the FSM does not check signatures) transaction of a payout.
func payoutTx(inputs []Outpoint, outputs []PayOutput, changeAddress string, change uint64) []byte {
	tx := wire.NewMsgTx(1)
	for _, in := range inputs {
		tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint((*chainhash.Hash)(&in.TxID), in.Vout), nil, nil))
	}
	for _, o := range outputs {
		tx.AddTxOut(wire.NewTxOut(int64(o.Koinu), p2pkh(o.Address)))
	}
	if change > 0 {
		tx.AddTxOut(wire.NewTxOut(int64(change), p2pkh(changeAddress)))
	}
	var buf []byte
	w := &byteWriter{&buf}
	if err := tx.Serialize(w); err != nil {
		panic(err)
	}
	return buf
}

type byteWriter struct{ buf *[]byte }

func (w *byteWriter) Write(p []byte) (int, error) { *w.buf = append(*w.buf, p...); return len(p), nil }

const doge = 100_000_000

// A payout: reserved (held, inputs reserved), sent, mined (captured, change credited),
// confirmed; a reorg puts it back to sent with the money held again; mined again.
func TestPayoutLifecycle(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 10*doge, 0)
	deposit := h.tx(pay("nInv1", 10*doge))
	h.mine(deposit) // 2: credited at once
	h.events()
	input := Outpoint{TxID: deposit.TxID, Vout: 0}
	payee, change := testAddress(1), testAddress(2)
	outputs := []PayOutput{{Address: payee, Koinu: 4 * doge, DeductFeePercent: "0"}}
	raw := payoutTx([]Outpoint{input}, outputs, change, 6*doge-1_000_000)
	reserve := &ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: "pay", Outputs: outputs, ChangeAddress: change,
		ChangeIndex: 0, ChangeKoinu: 6*doge - 1_000_000, FeeKoinu: 1_000_000, RawTx: raw, Broadcast: true, Confirmations: 1}
	p := h.ok(reserve).Value.(*Payment)
	if p.Status != PaymentReserved || p.TotalKoinu() != 4*doge+1_000_000 || p.Sequence != 1 {
		t.Fatalf("reserved %+v", p)
	}
	shop, _ := h.family.Of(h.m).GetAccount("gw", "shop")
	w := h.core.Wallet("gw", shop.WalletID)
	if w.Balance.String() != "1000000000" || w.Held.String() != "401000000" || shop.Outgoing.String() != "401000000" || shop.NextInternal != 1 {
		t.Fatalf("after reserve: wallet %+v account %+v", w, shop)
	}
	// The same input again, or the same transaction: refused, nothing changed.
	if r := h.apply(reserve); r.Err == nil || r.Err.Code != CodePaymentExists {
		t.Fatalf("again: %v", r.Err)
	}
	other := *reserve
	other.ChangeIndex, other.ChangeAddress = 1, testAddress(3)
	other.Outputs = []PayOutput{{Address: payee, Koinu: 3 * doge, DeductFeePercent: "0"}}
	other.ChangeKoinu = 7*doge - 1_000_000
	other.RawTx = payoutTx([]Outpoint{input}, other.Outputs, other.ChangeAddress, other.ChangeKoinu)
	if r := h.apply(&other); r.Err == nil || r.Err.Code != CodeInputUnavailable {
		t.Fatalf("input taken: %v", r.Err)
	}
	h.ok(&PaymentBroadcast{ProjectID: "gw", ForeignID: "shop", TxID: p.TxID})
	h.wantEvents(EventPaymentSent)

	// Seen in the mempool, then mined at 3: captured; change credited; confirmed at 4 (N = 1).
	payout := ObservedTx{TxID: p.TxID, Spends: []Outpoint{input}, Outputs: []ObservedOutput{{Vout: 1, Address: change, Koinu: 6*doge - 1_000_000}}}
	if r := h.observe(0, payout); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.mine(payout) // 3
	h.wantEvents(EventPaymentOnChain)
	w = h.core.Wallet("gw", shop.WalletID)
	if w.Balance.String() != "599000000" || !w.Held.IsZero() {
		t.Fatalf("after mining: wallet %+v", w)
	}
	h.mine() // 4
	h.wantEvents(EventPaymentConfirmed, EventAccountBalanceChanged)
	if shop, _ = h.family.Of(h.m).GetAccount("gw", "shop"); !shop.Outgoing.IsZero() {
		t.Fatalf("outgoing after confirmation %s", shop.Outgoing)
	}
	// The change can pay the next payout.
	spendable, err := h.family.Of(h.m).SpendableUTXOs("gw", "shop", 10)
	if err != nil || len(spendable) != 1 || spendable[0].Outpoint != (Outpoint{TxID: p.TxID, Vout: 1}) {
		t.Fatalf("spendable %+v %v", spendable, err)
	}

	// A reorg back to 2: the payout is unmined and held again; the change is unconfirmed.
	h.events()
	since := h.seenEvent
	h.rewind(2)
	evs, err := h.m.Events(since, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == EventPaymentUnconfirmed {
			// The payout as it is now (a probe saw the record as it was: confirmed, its height).
			if p := ReadPayment(fsm.NewDecoder(e.Data)); p.Status != PaymentSent || p.Height != 0 {
				t.Fatalf("PAYMENT_UNCONFIRMED carries status %s height %d, want sent, 0", p.Status, p.Height)
			}
			since = 0
		}
	}
	if since != 0 {
		t.Fatal("no PAYMENT_UNCONFIRMED after the reorg took a confirmed payout's block")
	}
	got, _ := h.family.Of(h.m).GetPayment("gw", "shop", p.TxID)
	w = h.core.Wallet("gw", shop.WalletID)
	if got.Status != PaymentSent || w.Balance.String() != "1000000000" || w.Held.String() != "401000000" {
		t.Fatalf("after rewind: payout %s wallet %+v", got.Status, w)
	}
	unmined, _ := h.family.Of(h.m).UnminedPayments(10)
	if len(unmined) != 1 || unmined[0].TxID != p.TxID {
		t.Fatalf("unmined %+v", unmined)
	}
	h.mine(payout) // 3 again
	h.mine()
	if got, _ = h.family.Of(h.m).GetPayment("gw", "shop", p.TxID); got.Status != PaymentConfirmed {
		t.Fatalf("after re-mining: %s", got.Status)
	}
	list, err := h.family.Of(h.m).ListPayments("gw", "shop", 0, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
}

func TestPayoutVoidAndRefusal(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 10*doge, 0)
	deposit := h.tx(pay("nInv1", 10*doge), ObservedOutput{Vout: 1, Address: "nInv1", Koinu: 5 * doge})
	h.mine(deposit)
	shop, _ := h.family.Of(h.m).GetAccount("gw", "shop")
	payee := testAddress(1)
	reserve := func(vout uint32, amount uint64) *Payment {
		outputs := []PayOutput{{Address: payee, Koinu: amount - 1_000_000, DeductFeePercent: "0"}}
		c := &ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: "pay", Outputs: outputs, FeeKoinu: 1_000_000,
			RawTx: payoutTx([]Outpoint{{deposit.TxID, vout}}, outputs, "", 0), Broadcast: true}
		return h.ok(c).Value.(*Payment)
	}
	// Voided before the node saw it: inputs free, hold released.
	p := reserve(0, 10*doge)
	v := h.ok(&VoidPayment{ProjectID: "gw", ForeignID: "shop", TxID: p.TxID}).Value.(*Payment)
	if v.Status != PaymentReleased || !h.core.Wallet("gw", shop.WalletID).Held.IsZero() {
		t.Fatalf("voided %+v", v)
	}
	if r := h.apply(&VoidPayment{ProjectID: "gw", ForeignID: "shop", TxID: p.TxID}); r.Err == nil || r.Err.Code != CodePaymentNotVoidable ||
		!strings.HasSuffix(r.Err.Message, " is released: only a payout the node has not taken can be voided") {
		t.Fatalf("void twice: %v", r.Err)
	}
	// Refused by the node: released.
	q := reserve(1, 5*doge)
	h.ok(&PaymentBroadcast{ProjectID: "gw", ForeignID: "shop", TxID: q.TxID, Refused: true, Reason: "-26: min relay fee not met"})
	if got, _ := h.family.Of(h.m).GetPayment("gw", "shop", q.TxID); got.Status != PaymentReleased {
		t.Fatalf("refused %+v", got)
	}
	// Seen in the mempool: no longer voidable.
	r := reserve(1, 5*doge)
	h.observe(0, ObservedTx{TxID: r.TxID, Spends: []Outpoint{{deposit.TxID, 1}}})
	if res := h.apply(&VoidPayment{ProjectID: "gw", ForeignID: "shop", TxID: r.TxID}); res.Err == nil || res.Err.Code != CodePaymentNotVoidable {
		t.Fatalf("void of a seen payout: %v", res.Err)
	}
	// More than the wallet has available (2 DOGE moved to another account through the core):
	// refused, nothing held.
	h.invoice("other", "nInv2", 1, 0)
	other, _ := h.family.Of(h.m).GetAccount("gw", "other")
	h.ok(&ledger.Transact{ProjectID: "gw", IDPrefix: "t0", ReferenceID: "move",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: shop.WalletID, To: other.WalletID, Amount: fsm.AmountFromUint64(2 * doge)}}})
	outputs := []PayOutput{{Address: payee, Koinu: 9 * doge, DeductFeePercent: "0"}}
	c := &ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: "pay", Outputs: outputs, FeeKoinu: 1_000_000, ChangeKoinu: doge - 1_000_000,
		ChangeIndex: 0, ChangeAddress: testAddress(9), RawTx: payoutTx([]Outpoint{{deposit.TxID, 0}}, outputs, testAddress(9), doge-1_000_000)}
	before, _ := h.m.Digest()
	if res := h.apply(c); res.Err == nil || res.Err.Code != CodeInsufficientFunds {
		t.Fatalf("too much: %v", res.Err)
	}
	if after, _ := h.m.Digest(); after != before {
		t.Fatalf("a refused payout changed the state")
	}
}

// A payfrom pays an invoice once per shard of payers: a second reservation for the same invoice,
// by the same or another account of the shard, with other inputs, is refused while the first is
// not released; once it is released, the invoice may be paid again. The invoice need not live
// on the payers' shard (here it does not exist on it at all).
func TestPayFromOncePerInvoice(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 10*doge, 0)
	h.invoice("other", "nInv2", 10*doge, 0)
	deposit := h.tx(pay("nInv1", 5*doge), ObservedOutput{Vout: 1, Address: "nInv1", Koinu: 5 * doge}, ObservedOutput{Vout: 2, Address: "nInv2", Koinu: 5 * doge})
	h.mine(deposit)
	invoice := testAddress(7) // an invoice of another shard
	payFrom := func(foreignID string, vout uint32) *ReservePayment {
		outputs := []PayOutput{{Address: invoice, Koinu: 4 * doge, DeductFeePercent: "0"}}
		return &ReservePayment{ProjectID: "gw", ForeignID: foreignID, Kind: PaymentKindPayFrom, InvoiceID: invoice, Outputs: outputs,
			FeeKoinu: doge, RawTx: payoutTx([]Outpoint{{deposit.TxID, vout}}, outputs, "", 0), Broadcast: true}
	}
	first := h.ok(payFrom("shop", 0)).Value.(*Payment)
	if got, err := h.family.Of(h.m).GetPayFrom("gw", invoice); err != nil || got.TxID != first.TxID {
		t.Fatalf("GetPayFrom: %+v %v", got, err)
	}
	for _, c := range []*ReservePayment{payFrom("shop", 1), payFrom("other", 2)} {
		before, _ := h.m.Digest()
		if r := h.apply(c); r.Err == nil || r.Err.Code != CodePaymentExists {
			t.Fatalf("second payfrom by %s: %v", c.ForeignID, r.Err)
		}
		if after, _ := h.m.Digest(); after != before {
			t.Fatalf("a refused payfrom changed the state")
		}
	}
	// A payfrom that does not pay the invoice it names is not one.
	wrong := payFrom("shop", 1)
	wrong.InvoiceID = testAddress(8)
	if r := h.apply(wrong); r.Err == nil || r.Err.Code != fsm.CodeInvalidArgument {
		t.Fatalf("payfrom to another address than its invoice: %v", r.Err)
	}
	h.ok(&VoidPayment{ProjectID: "gw", ForeignID: "shop", TxID: first.TxID})
	if _, err := h.family.Of(h.m).GetPayFrom("gw", invoice); err == nil {
		t.Fatal("GetPayFrom finds a released payfrom")
	}
	second := h.ok(payFrom("other", 2)).Value.(*Payment)
	if got, err := h.family.Of(h.m).GetPayFrom("gw", invoice); err != nil || got.TxID != second.TxID || got.ForeignID != "other" {
		t.Fatalf("GetPayFrom after the release: %+v %v", got, err)
	}
}

// Before rules version RulesPayFromOnce (a log an older release wrote, replayed by this one),
// a second payfrom of an invoice is reserved as it was then, and no payfrom record is kept;
// once the shard's leader raises the rules, the next one is refused.
func TestPayFromOnceOnlyFromItsRulesVersion(t *testing.T) {
	h := newChainHarnessAtRules(t, 0)
	h.mine()
	h.invoice("shop", "nInv1", 10*doge, 0)
	deposit := h.tx(pay("nInv1", 3*doge), ObservedOutput{Vout: 1, Address: "nInv1", Koinu: 3 * doge},
		ObservedOutput{Vout: 2, Address: "nInv1", Koinu: 3 * doge}, ObservedOutput{Vout: 3, Address: "nInv1", Koinu: 3 * doge})
	h.mine(deposit)
	invoice := testAddress(7)
	payFrom := func(vout uint32) *ReservePayment {
		outputs := []PayOutput{{Address: invoice, Koinu: 2 * doge, DeductFeePercent: "0"}}
		return &ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: PaymentKindPayFrom, InvoiceID: invoice, Outputs: outputs,
			FeeKoinu: doge, RawTx: payoutTx([]Outpoint{{deposit.TxID, vout}}, outputs, "", 0), Broadcast: true}
	}
	h.ok(payFrom(0))
	h.ok(payFrom(1)) // the old rule: every payfrom is reserved
	if _, err := h.family.Of(h.m).GetPayFrom("gw", invoice); err == nil {
		t.Fatal("a payfrom record was kept before its rules version")
	}
	if got := h.m.Rules(); got != 0 {
		t.Fatalf("rules %d before any raise", got)
	}
	h.ok(&fsm.RaiseRules{Version: RulesPayFromOnce})
	h.ok(&fsm.RaiseRules{Version: 0}) // lowering changes nothing
	if got := h.m.Rules(); got != RulesPayFromOnce {
		t.Fatalf("rules %d after the raise", got)
	}
	third := h.ok(payFrom(2)).Value.(*Payment) // the first recorded payfrom of the invoice
	if got, err := h.family.Of(h.m).GetPayFrom("gw", invoice); err != nil || got.TxID != third.TxID {
		t.Fatalf("GetPayFrom after the raise: %+v %v", got, err)
	}
}

// A reorg that takes back a deposit a mined payout had spent (a double spend of the deposit)
// unmines the payout, holding its total again, and takes back from the deposit only what is
// available: the rest is shortfall. When the node then refuses the payout (its input is gone)
// and the hold is released, the shortfall is paid from it first: the wallet shows what the
// chain holds, not the payout's total on top (a probe's finding: 12.01 shown, 5 held).
func TestReleaseAfterADoubleSpentDepositPaysTheShortfall(t *testing.T) {
	t.Run("rules", func(t *testing.T) { releaseAfterADoubleSpentDeposit(t, fsm.RulesVersion) })
	// A log written before the rule replays as it applied then: the shortfall stays, and the
	// event goes out for confirmed payouts only.
	t.Run("rules before", func(t *testing.T) { releaseAfterADoubleSpentDeposit(t, RulesSettleShortfallOnRelease-1) })
}

func releaseAfterADoubleSpentDeposit(t *testing.T, rules uint32) {
	h := newChainHarnessAtRules(t, rules)
	settles := rules >= RulesSettleShortfallOnRelease
	h.mine()
	h.invoice("shop", "nInv1", 15*doge, 0)
	first := h.tx(pay("nInv1", 5*doge))
	h.mine(first) // 2
	second := h.tx(pay("nInv1", 10*doge))
	h.mine(second) // 3
	inputs := []Outpoint{{TxID: first.TxID}, {TxID: second.TxID}}
	outputs := []PayOutput{{Address: testAddress(1), Koinu: 12 * doge, DeductFeePercent: "0"}}
	change := testAddress(2)
	reserve := &ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: "pay", Outputs: outputs, ChangeAddress: change,
		ChangeKoinu: 3*doge - 1_000_000, FeeKoinu: 1_000_000, RawTx: payoutTx(inputs, outputs, change, 3*doge-1_000_000),
		Broadcast: true, Confirmations: 1}
	p := h.ok(reserve).Value.(*Payment)
	h.ok(&PaymentBroadcast{ProjectID: "gw", ForeignID: "shop", TxID: p.TxID})
	h.mine(ObservedTx{TxID: p.TxID, Spends: inputs, Outputs: []ObservedOutput{{Vout: 1, Address: change, Koinu: 3*doge - 1_000_000}}}) // 4
	if h.balance("shop") != "299000000" {
		t.Fatalf("after the payout: %s", h.balance("shop"))
	}
	// The reorg: blocks 3 and 4 go; the second deposit is double-spent in the new chain.
	h.events()
	before := h.seenEvent
	h.rewind(2)
	// The payout was mined, not yet confirmed: PAYMENT_UNCONFIRMED says it is sent again.
	evs, err := h.m.Events(before, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	var unconfirmed []*Payment
	for _, e := range evs {
		if e.Type == EventPaymentUnconfirmed {
			unconfirmed = append(unconfirmed, ReadPayment(fsm.NewDecoder(e.Data)))
		}
	}
	if settles && (len(unconfirmed) != 1 || unconfirmed[0].Status != PaymentSent || unconfirmed[0].Height != 0) {
		t.Fatalf("PAYMENT_UNCONFIRMED events %+v, want one of the payout sent again", unconfirmed)
	}
	if !settles && len(unconfirmed) != 0 {
		t.Fatalf("PAYMENT_UNCONFIRMED events %+v before the rule, want none (the payout was not confirmed)", unconfirmed)
	}
	h.ok(&DropTransactions{TxIDs: []Hash{second.TxID}})
	if err := h.family.CheckCustody(h.m); err != nil {
		t.Fatalf("custody after the reorg: %v", err)
	}
	h.events()
	h.ok(&PaymentBroadcast{ProjectID: "gw", ForeignID: "shop", TxID: p.TxID, Refused: true, Reason: "-25: Missing inputs"})
	shop, _ := h.family.Of(h.m).GetAccount("gw", "shop")
	w := h.core.Wallet("gw", shop.WalletID)
	if settles && (w.Balance.String() != "500000000" || !w.Held.IsZero() || !shop.Shortfall.IsZero()) {
		t.Fatalf("after the release: wallet %s held %s shortfall %s, want 500000000, 0, 0 (what the chain holds)", w.Balance, w.Held, shop.Shortfall)
	}
	if !settles && (w.Balance.String() != "1201000000" || shop.Shortfall.String() != "701000000") {
		t.Fatalf("after the release before the rule: wallet %s shortfall %s, want 1201000000 and 701000000", w.Balance, shop.Shortfall)
	}
	if err := h.family.CheckCustody(h.m); err != nil {
		t.Fatalf("custody after the release: %v", err)
	}
}
