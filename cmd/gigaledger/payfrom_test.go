package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// koinuOf reads a DOGE amount as the GigaWallet API writes it ("12", "3.5", "0.0226") as koinu.
func koinuOf(t *testing.T, amount string) int64 {
	t.Helper()
	whole, fraction, _ := strings.Cut(amount, ".")
	if len(fraction) > 8 {
		t.Fatalf("amount %q has more than 8 decimals", amount)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		t.Fatalf("amount %q: %v", amount, err)
	}
	f := int64(0)
	if fraction != "" {
		if f, err = strconv.ParseInt(fraction+strings.Repeat("0", 8-len(fraction)), 10, 64); err != nil {
			t.Fatalf("amount %q: %v", amount, err)
		}
	}
	return w*chainsim.KoinuPerCoin + f
}

// chainTransaction finds a mined transaction on the simulated chain's active chain.
func chainTransaction(t *testing.T, chain *chainsim.Chain, txid chainhash.Hash) *wire.MsgTx {
	t.Helper()
	for h := int64(1); h <= chain.Height(); h++ {
		hash, err := chain.BlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := chain.RawBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		block, err := dogecoin.ParseBlock(raw)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		for _, tx := range block.Transactions {
			if tx.TxHash() == txid {
				return tx
			}
		}
	}
	t.Fatalf("transaction %s is not on the chain", txid)
	return nil
}

// chainOutputsTo lists, over every block of the simulated chain's active chain, the outputs
// that pay address: which transaction, how much.
func chainOutputsTo(t *testing.T, chain *chainsim.Chain, address string) map[chainhash.Hash][]int64 {
	t.Helper()
	script, err := chainsim.AddressScript(address)
	if err != nil {
		t.Fatal(err)
	}
	out := map[chainhash.Hash][]int64{}
	for h := int64(1); h <= chain.Height(); h++ {
		hash, err := chain.BlockHash(h)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := chain.RawBlock(hash)
		if err != nil {
			t.Fatal(err)
		}
		block, err := dogecoin.ParseBlock(raw)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		for _, tx := range block.Transactions {
			for _, o := range tx.TxOut {
				if bytes.Equal(o.PkScript, script) {
					out[tx.TxHash()] = append(out[tx.TxHash()], o.Value)
				}
			}
		}
	}
	return out
}

// payFromAnswer is GigaWallet's SendFundsResult.
type payFromAnswer struct{ Hex, Tx, Total, Paid, Fee string }

// TestGigaWalletPayFromAcrossShards: three nodes, four shards, a simulated chain. Account A
// (payer) and account B (merchant) live on different shards. A is funded on chain; B creates an
// invoice; A pays it with POST /invoice/{id}/payfrom/{A}, through a third node. A is debited the
// invoice's total plus the fee, and its payout reaches the chain paying the invoice's address
// exactly once; once confirmed, B's invoice is paid, B's balance holds the total and its events
// say so; what A lost is what B gained plus the fee the chain kept. A second payfrom of the same
// invoice, before the first is mined, after the invoice is paid, and two at once through two
// nodes, is 409 and pays nothing; a payfrom A cannot afford is 422 insufficient-funds and
// changes nothing on either shard. The custody invariant is checked on every replica at the end.
func TestGigaWalletPayFromAcrossShards(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount = 3, 4
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, nodeCount, shardCount, nil, func(cfg *serveConfig) {
		sim.configure(cfg, 100*time.Millisecond)
		cfg.ConfirmationsNeeded = 1
	})

	// A payer and a merchant on different shards.
	payer, merchant := "payer", ""
	for k := 0; merchant == ""; k++ {
		if k == 1000 {
			t.Fatal("1000 foreign IDs share the payer's shard")
		}
		if id := fmt.Sprintf("merchant-%d", k); gigaWalletShardOf(id, shardCount) != gigaWalletShardOf(payer, shardCount) {
			merchant = id
		}
	}
	// Paying an invoice once is a rule of rules version 1: the leaders raise it on their own.
	g.waitConverged(clusterWaitMax)
	payerShard, merchantShard := gigaWalletShardOf(payer, shardCount), gigaWalletShardOf(merchant, shardCount)
	if payerShard == merchantShard {
		t.Fatalf("payer and merchant both on shard %d", payerShard)
	}
	t.Logf("payer %q on shard %d, merchant %q on shard %d", payer, payerShard, merchant, merchantShard)
	g.expect(0, false, http.MethodPost, "/account/"+payer, `{}`, http.StatusOK)
	g.expect(1, false, http.MethodPost, "/account/"+merchant, `{}`, http.StatusOK)

	// A is funded on chain: 10 DOGE to one of its invoices, mined (N = 0: confirmed at once).
	const fundKoinu = 10 * chainsim.KoinuPerCoin
	funding := g.createInvoice(0, payer, `{"items":[{"type":"item","name":"top-up","value":"10","quantity":1}],"required_confirmations":0}`)
	fundingTx, err := sim.chain.Pay(funding.PayToAddress, fundKoinu)
	if err != nil {
		t.Fatal(err)
	}
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "A's deposit confirmed", func() bool { return g.balance(2, payer).CurrentBalance == "10" })

	// B's invoice: 3 DOGE, paid once the payment has one block on top (N = 1).
	const priceKoinu = 3 * chainsim.KoinuPerCoin
	invoice := g.createInvoice(1, merchant, `{"items":[{"type":"item","name":"tea","value":"1.5","quantity":2}],"required_confirmations":1}`)
	if invoice.Total != "3" {
		t.Fatalf("invoice total %q, want 3", invoice.Total)
	}
	merchantBefore, payerBefore := g.balance(0, merchant), g.balance(0, payer)
	if merchantBefore != (balanceState{"0", "0", "0"}) || payerBefore != (balanceState{"0", "10", "0"}) {
		t.Fatalf("before: merchant %+v, payer %+v", merchantBefore, payerBefore)
	}

	// A pays it, through the node that took neither account's requests.
	status, data, err := g.postKeyed(2, "/invoice/"+invoice.ID+"/payfrom/"+payer, `{}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("payfrom: %d %s %v", status, data, err)
	}
	var paid payFromAnswer
	if err := json.Unmarshal(data, &paid); err != nil {
		t.Fatal(err)
	}
	fee := koinuOf(t, paid.Fee)
	if paid.Tx != "" || koinuOf(t, paid.Paid) != priceKoinu || fee <= 0 || koinuOf(t, paid.Total) != priceKoinu+fee {
		t.Fatalf("payfrom answer %s: want paid 3, total = paid + fee, tx empty", data)
	}
	txid, err := chainhash.NewHashFromStr(paid.Hex)
	if err != nil {
		t.Fatalf("payfrom txid %q: %v", paid.Hex, err)
	}
	if !sim.chain.InMempool(*txid) {
		t.Fatal("the payout is not in the node's mempool")
	}
	// Paying it again at once (a retry after a lost answer, a second click), through another
	// node: 409, whichever shard notices first (A's refuses a second payfrom of the invoice; B's
	// may already have seen the first in the mempool). Nothing more is sent.
	status, data, err = g.send(g.configs[0].AdminAddr, http.MethodPost, "/invoice/"+invoice.ID+"/payfrom/"+payer, `{}`)
	if err != nil || status != http.StatusConflict || !strings.Contains(string(data), `"code":"already-exists"`) {
		t.Fatalf("payfrom again before the first is mined: %d %s %v, want 409 already-exists", status, data, err)
	}
	if mempool := sim.chain.Mempool(); len(mempool) != 1 || mempool[0] != *txid {
		t.Fatalf("mempool %v, want only the payout %s", mempool, txid)
	}
	// Reserved on A's shard: the total is outgoing, A cannot spend it again.
	if b := g.balance(0, payer); koinuOf(t, b.OutgoingBalance) != priceKoinu+fee {
		t.Fatalf("payer after payfrom: %+v, total %s", b, paid.Total)
	}
	// B's shard sees the payment in the mempool.
	testutil.EventuallyWithin(t, 20*time.Second, "the payment detected on B's shard", func() bool {
		return g.invoiceState(2, merchant, invoice.ID).TotalPaymentDetected
	})

	// Mined, then one block on top: B's invoice is paid, A's payout confirmed.
	sim.chain.Mine(1)
	paymentOf := func(i int) paymentView {
		var v paymentView
		if err := json.Unmarshal(g.expect(i, false, http.MethodGet, "/account/"+payer+"/payment/"+paid.Hex, "", http.StatusOK), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the payout on chain", func() bool { return paymentOf(1).Status == "on_chain" })
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "B's invoice paid", func() bool {
		return g.invoiceState(0, merchant, invoice.ID).Status == "paid"
	})
	testutil.EventuallyWithin(t, 20*time.Second, "the payout confirmed", func() bool { return paymentOf(2).Status == "confirmed" })

	// What every node answers: B holds the price, A lost price + fee; the invoice's view agrees.
	for i := 0; i < nodeCount; i++ {
		if b := g.balance(i, merchant); b != (balanceState{"0", "3", "0"}) {
			t.Fatalf("%s: merchant balance %+v, want 3 current", g.configs[i].NodeID, b)
		}
		if b := g.balance(i, payer); koinuOf(t, b.CurrentBalance) != fundKoinu-priceKoinu-fee || b.IncomingBalance != "0" || b.OutgoingBalance != "0" {
			t.Fatalf("%s: payer balance %+v, want 10 - 3 - %s", g.configs[i].NodeID, b, paid.Fee)
		}
		v := g.invoiceState(i, merchant, invoice.ID)
		if !v.TotalPaymentConfirmed || v.PaymentUnconfirmed || v.TotalConfirmed != "3" || v.TotalIncoming != "3" {
			t.Fatalf("%s: invoice %+v", g.configs[i].NodeID, v)
		}
	}

	// The chain: the invoice's address was paid once, 3 DOGE, by A's payout; A's balance is
	// exactly the change that payout returned (conservation: 10 = 3 + fee + change).
	outputs := chainOutputsTo(t, sim.chain, invoice.ID)
	if len(outputs) != 1 || len(outputs[*txid]) != 1 || outputs[*txid][0] != priceKoinu {
		t.Fatalf("outputs paying the invoice on chain: %v, want one of %d koinu by %s", outputs, priceKoinu, txid)
	}
	payoutTx := chainTransaction(t, sim.chain, *txid)
	if len(payoutTx.TxIn) != 1 || payoutTx.TxIn[0].PreviousOutPoint.Hash != fundingTx || len(payoutTx.TxOut) != 2 {
		t.Fatalf("the payout spends %d inputs (want A's deposit %s) into %d outputs (want the invoice and change)", len(payoutTx.TxIn), fundingTx, len(payoutTx.TxOut))
	}
	change := payoutTx.TxOut[1].Value
	if change != koinuOf(t, g.balance(1, payer).CurrentBalance) || fundKoinu != priceKoinu+fee+change {
		t.Fatalf("conservation: A's deposit %d ≠ price %d + fee %d + change %d, or A's balance is not its change", fundKoinu, priceKoinu, fee, change)
	}

	// B's events: detected and confirmed once each, from B's shard; A's payout sent, mined and
	// confirmed once each.
	events, _ := g.replayEvents(0, 500)
	count := map[string]int{}
	for _, e := range events {
		switch {
		case e.Message["payment_id"] == paid.Hex:
			if e.Shard != payerShard {
				t.Errorf("%s about A's payout from shard %d, want %d", e.EventType, e.Shard, payerShard)
			}
			count[e.EventType]++
		case e.Message["invoice_id"] == invoice.ID:
			if e.Shard != merchantShard {
				t.Errorf("%s about B's invoice from shard %d, want %d", e.EventType, e.Shard, merchantShard)
			}
			count[e.EventType]++
		}
	}
	for _, kind := range []string{"INV_TOTAL_PAYMENT_DETECTED", "INV_TOTAL_PAYMENT_CONFIRMED", "PAYMENT_SENT", "PAYMENT_ON_CHAIN", "PAYMENT_CONFIRMED"} {
		if count[kind] != 1 {
			t.Errorf("%d %s events, want 1 (all: %v)", count[kind], kind, count)
		}
	}
	if count["INV_OVER_PAYMENT_DETECTED"]+count["INV_OVER_PAYMENT_CONFIRMED"] != 0 {
		t.Errorf("over-payment events: %v", count)
	}

	// Once it is paid, a payfrom of the invoice is refused and pays nothing.
	payerAfter, merchantAfter := g.balance(0, payer), g.balance(0, merchant)
	status, data, err = g.send(g.configs[0].AdminAddr, http.MethodPost, "/invoice/"+invoice.ID+"/payfrom/"+payer, `{}`)
	if err != nil || status != http.StatusConflict || !strings.Contains(string(data), `"code":"already-exists"`) {
		t.Fatalf("payfrom of the paid invoice: %d %s %v, want 409 already-exists", status, data, err)
	}
	if len(sim.chain.Mempool()) != 0 {
		t.Fatalf("the refused payfrom left %d transactions in the mempool", len(sim.chain.Mempool()))
	}

	// A payfrom A cannot afford: 422 insufficient-funds, nothing changes on either shard.
	big := g.createInvoice(2, merchant, `{"items":[{"type":"item","name":"teapot","value":"100","quantity":1}],"required_confirmations":1}`)
	status, data, err = g.send(g.configs[1].AdminAddr, http.MethodPost, "/invoice/"+big.ID+"/payfrom/"+payer, `{}`)
	if err != nil || status != http.StatusUnprocessableEntity || !strings.Contains(string(data), `"code":"insufficient-funds"`) {
		t.Fatalf("payfrom beyond A's balance: %d %s %v, want 422 insufficient-funds", status, data, err)
	}
	if len(sim.chain.Mempool()) != 0 {
		t.Fatalf("the refused payfrom left %d transactions in the mempool", len(sim.chain.Mempool()))
	}
	// Nothing was reserved or paid anywhere: a block later, every node still says the same.
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "both shards at the tip", func() bool {
		cursors := g.chainCursors(0)
		return cursors[payerShard] == sim.chain.Height() && cursors[merchantShard] == sim.chain.Height()
	})
	for i := 0; i < nodeCount; i++ {
		if b := g.balance(i, payer); b != payerAfter {
			t.Fatalf("%s: payer %+v after the refusals, was %+v", g.configs[i].NodeID, b, payerAfter)
		}
		if b := g.balance(i, merchant); b != merchantAfter {
			t.Fatalf("%s: merchant %+v after the refusals, was %+v", g.configs[i].NodeID, b, merchantAfter)
		}
		if v := g.invoiceState(i, merchant, big.ID); v.Status != "unpaid" || v.TotalIncoming != "0" {
			t.Fatalf("%s: the unaffordable invoice %+v", g.configs[i].NodeID, v)
		}
	}
	var list struct{ Items []paymentView }
	if err := json.Unmarshal(g.expect(2, false, http.MethodGet, "/account/"+payer+"/payments?limit=100", "", http.StatusOK), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].PaymentID != paid.Hex {
		t.Fatalf("payer's payouts %+v, want only %s", list.Items, paid.Hex)
	}
	if outputs := chainOutputsTo(t, sim.chain, invoice.ID); len(outputs) != 1 {
		t.Fatalf("outputs paying the invoice on chain at the end: %v", outputs)
	}
	if outputs := chainOutputsTo(t, sim.chain, big.ID); len(outputs) != 0 {
		t.Fatalf("outputs paying the unaffordable invoice: %v", outputs)
	}

	// Two payfroms of one invoice at once, through two nodes, while A has two spendable
	// outputs (its change and a new deposit), so both can be planned: one pays, the other is 409
	// (A's shard takes one payfrom per invoice), and the chain sees one payment.
	topUp := g.createInvoice(0, payer, `{"items":[{"type":"item","name":"top-up","value":"5","quantity":1}],"required_confirmations":0}`)
	if _, err := sim.chain.Pay(topUp.PayToAddress, 5*chainsim.KoinuPerCoin); err != nil {
		t.Fatal(err)
	}
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "A's second deposit confirmed", func() bool {
		return koinuOf(t, g.balance(2, payer).CurrentBalance) == fundKoinu-priceKoinu-fee+5*chainsim.KoinuPerCoin
	})
	third := g.createInvoice(1, merchant, `{"items":[{"type":"item","name":"cup","value":"2","quantity":1}],"required_confirmations":0}`)
	type answer struct {
		status int
		data   []byte
		err    error
	}
	answers := make([]answer, 2)
	var wg sync.WaitGroup
	for k := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[k]
			a.status, a.data, a.err = g.send(g.configs[k+1].AdminAddr, http.MethodPost, "/invoice/"+third.ID+"/payfrom/"+payer, `{}`)
		}()
	}
	wg.Wait()
	var winner payFromAnswer
	statuses := map[int]int{}
	for _, a := range answers {
		if a.err != nil {
			t.Fatal(a.err)
		}
		statuses[a.status]++
		switch a.status {
		case http.StatusOK:
			if err := json.Unmarshal(a.data, &winner); err != nil {
				t.Fatal(err)
			}
		case http.StatusConflict:
			if !strings.Contains(string(a.data), `"code":"already-exists"`) {
				t.Fatalf("concurrent payfrom refused with %s", a.data)
			}
			t.Logf("the concurrent payfrom refused: %s", a.data)
		}
	}
	if statuses[http.StatusOK] != 1 || statuses[http.StatusConflict] != 1 {
		t.Fatalf("two payfroms at once answered %v (%s | %s), want one 200 and one 409", statuses, answers[0].data, answers[1].data)
	}
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "the third invoice paid", func() bool {
		return g.invoiceState(0, merchant, third.ID).Status == "paid"
	})
	if outputs := chainOutputsTo(t, sim.chain, third.ID); len(outputs) != 1 || len(outputs[mustHash(t, winner.Hex)]) != 1 {
		t.Fatalf("outputs paying the third invoice: %v, want one by %s", outputs, winner.Hex)
	}
	if b := g.balance(0, merchant); b.CurrentBalance != "5" {
		t.Fatalf("merchant after the third invoice: %+v, want 5", b)
	}
}

func mustHash(t *testing.T, s string) chainhash.Hash {
	t.Helper()
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatalf("txid %q: %v", s, err)
	}
	return *h
}
