package gigawallet

import (
	"slices"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// chainHarness drives a shard's chain side the way a follower does: blocks extend the cursor,
// each observation is filtered at the index before it.
type chainHarness struct {
	*harness
	height    int64
	hashes    []Hash // hashes[h] is the block at height h
	seenEvent uint64
	txSeq     byte
}

func newChainHarness(t *testing.T) *chainHarness { return newChainHarnessAtRules(t, fsm.RulesVersion) }

func newChainHarnessAtRules(t *testing.T, rules uint32) *chainHarness {
	h := &chainHarness{harness: newHarnessAtRules(t, rules)}
	t.Cleanup(func() {
		if err := h.family.CheckCustody(h.m); err != nil {
			t.Errorf("custody: %v", err)
		}
		// Every event the family emitted decodes exactly (the relay and GET /events render them).
		evs, err := h.m.Events(0, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if _, ok, err := EventSubject(ev); err != nil || (!ok && !strings.HasPrefix(ev.Type, "LEDGER_")) {
				t.Errorf("event %d %s: decoded %v, %v", ev.Sequence, ev.Type, ok, err)
			}
		}
	})
	h.hashes = []Hash{{0xee}}
	return h
}

func (h *chainHarness) invoice(foreignID, address string, koinu uint64, confirmations int32) {
	h.t.Helper()
	a, err := h.family.Of(h.m).GetAccount("gw", foreignID)
	if err != nil {
		h.ok(h.newAccount(foreignID))
		a, _ = h.family.Of(h.m).GetAccount("gw", foreignID)
	}
	h.ok(&CreateInvoice{ProjectID: "gw", ForeignID: foreignID, KeyIndex: a.NextExternal, Address: address,
		Items: []Item{item("item", false, koinu, 1)}, RequiredConfirmations: confirmations})
}

func (h *chainHarness) tx(outputs ...ObservedOutput) ObservedTx {
	h.txSeq++
	return ObservedTx{TxID: Hash{0x70, h.txSeq}, Outputs: outputs}
}

func pay(address string, koinu uint64) ObservedOutput {
	return ObservedOutput{Vout: 0, Address: address, Koinu: koinu}
}

func tags(txs []ObservedTx, extra ...string) []uint32 {
	var out []uint32
	for _, tx := range txs {
		for _, o := range tx.Outputs {
			out = append(out, AddressTag(o.Address))
		}
	}
	for _, a := range extra {
		out = append(out, AddressTag(a))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (h *chainHarness) observe(height int64, txs ...ObservedTx) *fsm.Result {
	c := &ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: height, FilterIndex: h.index, Tags: tags(txs), Txs: txs}
	if height > 0 {
		c.PrevHash = h.hashes[height-1]
		c.Hash = Hash{0xb0, byte(height), byte(len(h.hashes))}
	}
	r := h.apply(c)
	if r.Err == nil && height > 0 {
		h.hashes = append(h.hashes[:height], c.Hash)
		h.height = height
	}
	return r
}

func (h *chainHarness) mine(txs ...ObservedTx) {
	h.t.Helper()
	if r := h.observe(h.height+1, txs...); r.Err != nil {
		h.t.Fatalf("block %d: %v", h.height+1, r.Err)
	}
}

func (h *chainHarness) rewind(height int64) {
	h.t.Helper()
	h.ok(&RewindChain{Height: height, Hash: h.hashes[height]})
	h.hashes = h.hashes[:height+1]
	h.height = height
}

// events returns the types of the events emitted since the last call.
func (h *chainHarness) events() []string {
	h.t.Helper()
	evs, err := h.m.Events(h.seenEvent, 10_000)
	if err != nil {
		h.t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		h.seenEvent = e.Sequence
		if e.Type != EventAccountCreated && e.Type != EventInvoiceCreated && e.Type != EventAccountUpdated &&
			e.Type != ledger.EventTransactionCompleted && !strings.HasPrefix(e.Type, "LEDGER_HOLD_") {
			types = append(types, e.Type)
		}
	}
	return types
}

func (h *chainHarness) wantEvents(want ...string) {
	h.t.Helper()
	if got := h.events(); !slices.Equal(got, want) {
		h.t.Fatalf("events %v, want %v", got, want)
	}
}

func (h *chainHarness) getInvoice(address string) *Invoice {
	h.t.Helper()
	v, err := h.family.Of(h.m).GetInvoice("gw", "", address)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *chainHarness) balance(foreignID string) string {
	a, err := h.family.Of(h.m).GetAccount("gw", foreignID)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.core.Wallet("gw", a.WalletID).Balance.String()
}

func TestPaymentDetectedInMempoolConfirmedAfterN(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 500, 2)
	h.events()
	payment := h.tx(pay("nInv1", 500))
	if r := h.observe(0, payment); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoiceTotalPaymentDetected, EventAccountBalanceChanged)
	v := h.getInvoice("nInv1")
	if v.Incoming.String() != "500" || !v.Confirmed.IsZero() || v.PaidHeight != 0 || v.Status != InvoiceUnpaid {
		t.Fatalf("after mempool %+v", v)
	}
	if a, _ := h.family.Of(h.m).GetAccount("gw", "shop"); a.Incoming.String() != "500" {
		t.Fatalf("incoming %s", a.Incoming)
	}
	// Mined at height 2: GigaWallet's N = 2 means confirmed when the tip reaches 2 + 2.
	h.mine(payment)
	h.mine()
	h.wantEvents()
	if h.balance("shop") != "0" {
		t.Fatalf("credited early: %s", h.balance("shop"))
	}
	h.mine()
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoiceTotalPaymentConfirmed, EventAccountBalanceChanged)
	v = h.getInvoice("nInv1")
	if v.Confirmed.String() != "500" || v.PaidHeight != 4 || v.Status != InvoicePaid || h.balance("shop") != "500" {
		t.Fatalf("after confirmation %+v balance %s", v, h.balance("shop"))
	}
	// A late mempool notice of the mined transaction changes nothing.
	if r := h.observe(0, payment); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.wantEvents()
}

func TestZeroConfirmationsCreditInTheBlock(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv0", 100, 0)
	h.events()
	h.mine(h.tx(pay("nInv0", 60)))
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoicePartPaymentDetected, EventAccountBalanceChanged)
	h.mine(h.tx(pay("nInv0", 60)))
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoiceTotalPaymentDetected, EventInvoiceOverPaymentDetected,
		EventInvoiceTotalPaymentConfirmed, EventInvoiceOverPaymentConfirmed, EventAccountBalanceChanged)
	if v := h.getInvoice("nInv0"); v.PaidHeight != 3 || v.Confirmed.String() != "120" || h.balance("shop") != "120" {
		t.Fatalf("invoice %+v balance %s", v, h.balance("shop"))
	}
}

func TestReorgUnconfirmsAndConfirmsAgain(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 500, 1)
	payment := h.tx(pay("nInv1", 500))
	h.mine(payment) // 2
	h.mine()        // 3: confirmed
	h.events()
	if h.balance("shop") != "500" {
		t.Fatalf("balance %s", h.balance("shop"))
	}
	// A reorg back to 2 takes the confirmation away, not the payment.
	h.rewind(2)
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoicePaymentUnconfirmed, EventAccountBalanceChanged)
	if v := h.getInvoice("nInv1"); v.PaidHeight != 0 || v.Status != InvoiceUnpaid || v.Incoming.String() != "500" || h.balance("shop") != "0" {
		t.Fatalf("after rewind %+v balance %s", v, h.balance("shop"))
	}
	// Back to 1: the payment is unmined, then mined again in the new chain.
	h.rewind(1)
	h.wantEvents()
	pending, err := h.family.Of(h.m).PendingTransactions(Hash{}, 10)
	if err != nil || len(pending) != 1 || pending[0] != payment.TxID {
		t.Fatalf("pending %v %v", pending, err)
	}
	h.mine()
	h.mine(payment) // 3
	h.mine()        // 4
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoiceTotalPaymentConfirmed, EventAccountBalanceChanged)
	if v := h.getInvoice("nInv1"); v.PaidHeight != 4 || h.balance("shop") != "500" {
		t.Fatalf("after re-mining %+v balance %s", v, h.balance("shop"))
	}
	if pending, _ := h.family.Of(h.m).PendingTransactions(Hash{}, 10); len(pending) != 0 {
		t.Fatalf("pending %v", pending)
	}
}

func TestDroppedPaymentIsForgotten(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 500, 1)
	payment := h.tx(pay("nInv1", 500))
	h.observe(0, payment)
	h.events()
	h.ok(&DropTransactions{TxIDs: []Hash{payment.TxID}})
	h.wantEvents(EventInvoiceBalanceChanged, EventInvoicePaymentUnconfirmed, EventAccountBalanceChanged)
	if v := h.getInvoice("nInv1"); !v.Incoming.IsZero() {
		t.Fatalf("after drop %+v", v)
	}
	// Dropping again, or a mined transaction, changes nothing.
	h.ok(&DropTransactions{TxIDs: []Hash{payment.TxID}})
	h.wantEvents()
}

func TestStaleFilterIsRefused(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.ok(h.newAccount("shop"))
	filterIndex := h.index
	h.invoice("shop", "nLate", 500, 1) // registered after the follower's filter read the state
	h.events()
	// The block pays nLate, but the filter did not know it: the tag gives it away.
	c := &ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1],
		FilterIndex: filterIndex, Tags: tags(nil, "nLate", "nOther")}
	if r := h.apply(c); r.Err == nil || r.Err.Code != CodeStaleFilter {
		t.Fatalf("stale filter: %v", r.Err)
	}
	// Filtered again after the registration, it applies and sees the payment.
	c.FilterIndex = h.index
	c.Txs = []ObservedTx{h.tx(pay("nLate", 500))}
	if r := h.apply(c); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.hashes, h.height = append(h.hashes, c.Hash), 2
	if v := h.getInvoice("nLate"); v.Incoming.String() != "500" {
		t.Fatalf("invoice %+v", v)
	}
	// A block that does not pay a recent address is not refused for it.
	h.invoice("shop", "nLater", 1, 1)
	c2 := &ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 3, Hash: Hash{3}, PrevHash: c.Hash,
		FilterIndex: c.FilterIndex, Tags: tags(nil, "nSomeoneElse")}
	if r := h.apply(c2); r.Err != nil {
		t.Fatalf("unrelated block: %v", r.Err)
	}
	// An observation filtered below the floor the last one set is stale.
	c3 := &ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 4, Hash: Hash{4}, PrevHash: c2.Hash,
		FilterIndex: c.FilterIndex - 1}
	if r := h.apply(c3); r.Err == nil || r.Err.Code != CodeStaleFilter {
		t.Fatalf("below floor: %v", r.Err)
	}
}

func TestObservationRejections(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 500, 1)
	before, _ := h.m.Digest()
	cases := map[string]*ObserveChain{
		"wrong genesis": {Network: "regtest", Genesis: Hash{1}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index},
		"wrong network": {Network: "mainnet", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index},
		"gap":           {Network: "regtest", Genesis: Hash{0xee}, Height: 3, Hash: Hash{3}, PrevHash: h.hashes[1], FilterIndex: h.index},
		"fork":          {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: Hash{9}, FilterIndex: h.index},
		"unwatched":     {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index, Tags: tags(nil, "nX"), Txs: []ObservedTx{{TxID: Hash{5}, Outputs: []ObservedOutput{pay("nX", 1)}}}},
		"untagged":      {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index, Txs: []ObservedTx{{TxID: Hash{5}, Outputs: []ObservedOutput{pay("nInv1", 1)}}}},
		"zero output":   {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index, Tags: tags(nil, "nInv1"), Txs: []ObservedTx{{TxID: Hash{5}, Outputs: []ObservedOutput{pay("nInv1", 0)}}}},
		"future filter": {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: 1 << 40},
		"unsorted tags": {Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: h.index, Tags: []uint32{9, 3}},
		"mempool hash":  {Network: "regtest", Genesis: Hash{0xee}, Height: 0, Hash: Hash{2}, FilterIndex: h.index},
	}
	for name, c := range cases {
		if r := h.apply(c); r.Err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	if r := h.apply(&RewindChain{Height: 5, Hash: Hash{5}}); r.Err == nil {
		t.Errorf("rewind above the tip applied")
	}
	// Rejections change nothing but the clock (excluded from the digest).
	if after, _ := h.m.Digest(); after != before {
		t.Fatalf("a rejection changed the state")
	}
	// A rewind to a block the shard did not observe at that height (the node's chain forked
	// below it): refused, the follower walks back first.
	h.mine()
	if r := h.apply(&RewindChain{Height: 1, Hash: Hash{0x99}}); r.Err == nil || r.Err.Code != CodeChainMismatch {
		t.Errorf("rewind to another fork's block: %v", r.Err)
	}
	// Two chain commands in one batch: the second is refused.
	h.index++
	out := h.m.ApplyBatch(h.index, h.now, [][]byte{
		fsm.EncodeCommand(&ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 0, FilterIndex: h.index - 1}),
		fsm.EncodeCommand(&ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 0, FilterIndex: h.index - 1}),
	})
	if r := out[1].(*fsm.Result); r.Err == nil || r.Err.Code != CodeChainBusy {
		t.Fatalf("second chain command: %v", r.Err)
	}
}

func TestReorgAfterSpendLeavesShortfall(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInv1", 500, 0)
	h.invoice("other", "nInv2", 1, 0)
	h.mine(h.tx(pay("nInv1", 500))) // 2: credited at once
	shop, _ := h.family.Of(h.m).GetAccount("gw", "shop")
	other, _ := h.family.Of(h.m).GetAccount("gw", "other")
	// The shop moves 400 to another account's wallet through the Cloud Wallet API.
	h.ok(&ledger.Transact{ProjectID: "gw", IDPrefix: "t0", ReferenceID: "move",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: shop.WalletID, To: other.WalletID, Amount: fsm.AmountFromUint64(400)}}})
	h.rewind(1)
	shop, _ = h.family.Of(h.m).GetAccount("gw", "shop")
	if h.balance("shop") != "0" || shop.Shortfall.String() != "400" {
		t.Fatalf("balance %s shortfall %s", h.balance("shop"), shop.Shortfall)
	}
	// The next confirmed deposit pays the shortfall first.
	h.mine(h.tx(pay("nInv1", 700)))
	shop, _ = h.family.Of(h.m).GetAccount("gw", "shop")
	if h.balance("shop") != "300" || !shop.Shortfall.IsZero() {
		t.Fatalf("balance %s shortfall %s", h.balance("shop"), shop.Shortfall)
	}
}

func TestChainCommandCodec(t *testing.T) {
	for _, c := range []fsm.Command{
		&ObserveChain{Network: "regtest", Genesis: Hash{1}, Height: 9, Hash: Hash{2}, PrevHash: Hash{3}, FilterIndex: 4,
			Tags: []uint32{1, 2}, Txs: []ObservedTx{{TxID: Hash{4}, Outputs: []ObservedOutput{{Vout: 3, Address: "n1", Koinu: 7}}, Spends: []Outpoint{{Hash{5}, 1}}}}},
		&RewindChain{Height: 3, Hash: Hash{3}},
		&DropTransactions{TxIDs: []Hash{{1}, {2}}},
	} {
		e := fsm.Encoder{}
		c.Encode(&e)
		var got fsm.Command
		d := fsm.NewDecoder(e.Buf)
		switch c.(type) {
		case *ObserveChain:
			got = decodeObserveChain(d)
		case *RewindChain:
			got = decodeRewindChain(d)
		case *DropTransactions:
			got = decodeDropTransactions(d)
		}
		if err := d.Finish("command"); err != nil {
			t.Fatal(err)
		}
		e2 := fsm.Encoder{}
		got.Encode(&e2)
		if string(e2.Buf) != string(e.Buf) {
			t.Fatalf("%T round trip differs", c)
		}
	}
}

// Without a follower, the recent registrations are trimmed by age: the store keeps those of the
// last recentRegistrations log entries, and an observation filtered before them is stale.
func TestRecentRegistrationsTrimmedByAge(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nOld", 1, 1)
	oldIndex := h.index
	h.index = oldIndex + recentRegistrations + recentTrimStep // time passes in the log
	h.invoice("shop", "nNew", 1, 1)
	count := 0
	if err := h.m.Store().Scan([]byte{prefixRecentAddr}, func(_, _ []byte) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if count != 1 {
		t.Fatalf("%d recent registrations kept, want 1 (the new one)", count)
	}
	c := &ObserveChain{Network: "regtest", Genesis: Hash{0xee}, Height: 2, Hash: Hash{2}, PrevHash: h.hashes[1], FilterIndex: oldIndex}
	if r := h.apply(c); r.Err == nil || r.Err.Code != CodeStaleFilter {
		t.Fatalf("filtered before the trim floor: %v", r.Err)
	}
	c.FilterIndex = h.index
	if r := h.apply(c); r.Err != nil {
		t.Fatal(r.Err)
	}
}

// The custody check reads one view of the store, so it holds when it runs beside apply: a
// block that credits a deposit changes a wallet and an output together, and a check that read
// them at two moments reported the money as missing.
func TestCustodyCheckBesideApply(t *testing.T) {
	h := newChainHarness(t)
	h.mine()
	h.invoice("shop", "nInvC", 1, 0)
	done := make(chan struct{})
	failures := make(chan error, 1)
	checks := 0
	go func() {
		defer close(failures)
		for {
			select {
			case <-done:
				return
			default:
			}
			checks++
			if err := h.family.CheckCustody(h.m); err != nil {
				failures <- err
				return
			}
		}
	}()
	for i := 0; i < 200; i++ { // txSeq is a byte: fewer than 256 transactions
		h.mine(h.tx(pay("nInvC", 7)))
	}
	close(done)
	if err := <-failures; err != nil {
		t.Fatalf("custody check beside apply: %v", err)
	}
	if h.balance("shop") != "1400" {
		t.Fatalf("balance %s, want 1400", h.balance("shop"))
	}
	t.Logf("%d checks beside 200 blocks", checks)
}
