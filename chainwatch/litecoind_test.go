package chainwatch

import (
	"slices"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc/rpctest"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// A real node: a payment from litecoind's wallet to an invoice address is detected in the
// mempool, confirmed after N blocks (GigaWallet's N), unconfirmed by invalidateblock, confirmed
// again by reconsiderblock — with the wallet credited, debited and credited again.
func TestFollowerOnLitecoind(t *testing.T) {
	node := rpctest.StartLitecoind(t)
	client := node.Client
	rpctest.Call[map[string]any](t, client, "createwallet", "test")
	miner := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	rpctest.Call[[]string](t, client, "generatetoaddress", 101, miner)

	shard := newTestShard(t)
	invoiceAddress := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	if err := dogecoin.ValidateP2PKH(invoiceAddress, dogecoin.Regtest); err != nil {
		t.Fatalf("litecoind's legacy address %s is not a Dogecoin regtest P2PKH address: %v", invoiceAddress, err)
	}
	shard.invoice("shop", invoiceAddress, 250_000_000, 2)

	f := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 95}, client, 0, shard, nil)
	ctx := testutil.Context(t, 2*time.Minute)
	sync := func() {
		t.Helper()
		if err := f.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	sync()
	if c, _ := shard.Reader().ChainCursor(); c.Height != 101 {
		t.Fatalf("cursor at %d, want 101", c.Height)
	}

	// In the mempool: detected at 0 confirmations.
	txid := rpctest.Call[string](t, client, "sendtoaddress", invoiceAddress, "2.5")
	sync()
	v := shard.getInvoice(invoiceAddress)
	if v.Incoming.String() != "250000000" || !v.Confirmed.IsZero() {
		t.Fatalf("after mempool: %+v", v)
	}
	if !slices.Contains(shard.eventTypes(), gigawallet.EventInvoiceTotalPaymentDetected) {
		t.Fatalf("no detection event: %v", shard.eventTypes())
	}
	// Mined at 102; N = 2 confirms it when the tip reaches 104.
	blocks := rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)
	sync()
	if pending, _ := shard.Reader().PendingTransactions(gigawallet.Hash{}, 10); len(pending) != 0 {
		t.Fatalf("still pending after its block: %v", pending)
	}
	rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)
	sync()
	if shard.balance("shop") != "0" {
		t.Fatalf("credited at tip 103: %s", shard.balance("shop"))
	}
	tip := rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)
	sync()
	v = shard.getInvoice(invoiceAddress)
	if v.PaidHeight != 104 || v.Status != gigawallet.InvoicePaid || shard.balance("shop") != "250000000" {
		t.Fatalf("at 104: %+v balance %s", v, shard.balance("shop"))
	}
	// invalidateblock of the tip: 103 is the new tip, the payment is no longer confirmed.
	rpctest.Call[any](t, client, "invalidateblock", tip[0])
	sync()
	v = shard.getInvoice(invoiceAddress)
	if v.PaidHeight != 0 || shard.balance("shop") != "0" {
		t.Fatalf("after invalidateblock: %+v balance %s", v, shard.balance("shop"))
	}
	// invalidateblock of the payment's block: back in the mempool, still detected.
	rpctest.Call[any](t, client, "invalidateblock", blocks[0])
	sync()
	if pending, _ := shard.Reader().PendingTransactions(gigawallet.Hash{}, 10); len(pending) != 1 || pending[0].String() != txid {
		t.Fatalf("pending after unmining: %v, want %s", pending, txid)
	}
	if v = shard.getInvoice(invoiceAddress); v.Incoming.String() != "250000000" {
		t.Fatalf("after unmining: %+v", v)
	}
	// reconsiderblock: the old chain is back and longer; confirmed again.
	rpctest.Call[any](t, client, "reconsiderblock", blocks[0])
	rpctest.Call[any](t, client, "reconsiderblock", tip[0])
	sync()
	v = shard.getInvoice(invoiceAddress)
	if v.PaidHeight != 104 || shard.balance("shop") != "250000000" {
		t.Fatalf("after reconsiderblock: %+v balance %s", v, shard.balance("shop"))
	}
	want := []string{gigawallet.EventInvoiceTotalPaymentConfirmed, gigawallet.EventInvoicePaymentUnconfirmed, gigawallet.EventInvoiceTotalPaymentConfirmed}
	var got []string
	for _, e := range shard.eventTypes() {
		if e == gigawallet.EventInvoiceTotalPaymentConfirmed || e == gigawallet.EventInvoicePaymentUnconfirmed {
			got = append(got, e)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("confirmation events %v, want %v", got, want)
	}
}
