package main

import (
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/rpc/rpctest"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// A real node (make chain-test): a lone GigaLedger node follows litecoind in regtest; a payment
// from litecoind's wallet to an invoice is detected and confirmed, and a payout built and
// signed by GigaLedger is accepted by litecoind, mined and seen as confirmed, with
// PAYMENT_CONFIRMED in the outbox.
func TestPayoutOnLitecoind(t *testing.T) {
	node := rpctest.StartLitecoind(t)
	client := node.Client
	rpctest.Call[map[string]any](t, client, "createwallet", "test")
	miner := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	rpctest.Call[[]string](t, client, "generatetoaddress", 101, miner)

	endpoint, _ := url.Parse(node.URL)
	host, portText, _ := net.SplitHostPort(endpoint.Host)
	port, _ := strconv.Atoi(portText)
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming, Network: "regtest", ConfirmationsNeeded: 1,
		Dogecoind: []dogecoindSpec{{Network: "regtest", RPCHost: host, RPCPort: port,
			RPCUser: rpctest.LitecoindUser, RPCPass: rpctest.LitecoindPassword}},
		ChainStartHeight: 100, ChainPollInterval: 20 * time.Millisecond}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	p := &payoutNode{t: t, admin: "http://" + cfg.AdminAddr}

	var invoice struct{ ID string }
	p.call("POST", "/account/shop", `{}`, nil)
	if status := p.call("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"tea","value":"5","quantity":1}],"required_confirmations":1}`, &invoice); status != 200 {
		t.Fatalf("invoice: %d", status)
	}
	rpctest.Call[string](t, client, "sendtoaddress", invoice.ID, "5")
	testutil.EventuallyWithin(t, 30*time.Second, "the deposit detected in the mempool", func() bool { return p.balance("shop").IncomingBalance == "5" })
	rpctest.Call[[]string](t, client, "generatetoaddress", 2, miner)
	testutil.EventuallyWithin(t, 30*time.Second, "the deposit confirmed", func() bool { return p.balance("shop").CurrentBalance == "5" })

	payee := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	var sent struct{ Hex, Total string }
	if status := p.call("POST", "/account/shop/pay", `{"amount":"2","to":"`+payee+`"}`, &sent); status != 200 {
		t.Fatalf("pay: %d", status)
	}
	mempool := rpctest.Call[[]string](t, client, "getrawmempool")
	found := false
	for _, id := range mempool {
		found = found || id == sent.Hex
	}
	if !found {
		t.Fatalf("litecoind's mempool %v lacks the payout %s", mempool, sent.Hex)
	}
	rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)
	testutil.EventuallyWithin(t, 30*time.Second, "payout on chain", func() bool { return p.payment("shop", sent.Hex).Status == "on_chain" })
	rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)
	testutil.EventuallyWithin(t, 30*time.Second, "payout confirmed", func() bool { return p.payment("shop", sent.Hex).Status == "confirmed" })
	if received := rpctest.Call[float64](t, client, "getreceivedbyaddress", payee, 1); received != 2 {
		t.Fatalf("litecoind's wallet received %v at the payee, want 2", received)
	}
	var events struct {
		Items []struct {
			EventType string `json:"event_type"`
		}
	}
	p.call("GET", "/events?limit=1000", "", &events)
	var confirmed bool
	for _, e := range events.Items {
		confirmed = confirmed || e.EventType == "PAYMENT_CONFIRMED"
	}
	if !confirmed {
		t.Fatalf("no PAYMENT_CONFIRMED among %+v", events.Items)
	}
}
