package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
)

// payoutNode is a lone node following a simulated regtest chain.
type payoutNode struct {
	t     *testing.T
	chain *chainsim.Chain
	rpc   *chainsim.Server
	admin string
}

func startPayoutNode(t *testing.T) *payoutNode {
	t.Helper()
	chain, err := chainsim.New(chainsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(3)
	rpcServer := chainsim.NewServer(chain, "user", "pass")
	httpServer := httptest.NewServer(rpcServer)
	t.Cleanup(httpServer.Close)
	endpoint, _ := url.Parse(httpServer.URL)
	host, portText, _ := net.SplitHostPort(endpoint.Host)
	port, _ := strconv.Atoi(portText)
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming, Network: "regtest", ConfirmationsNeeded: 1,
		Dogecoind:        []dogecoindSpec{{Network: "regtest", RPCHost: host, RPCPort: port, RPCUser: "user", RPCPass: "pass"}},
		ChainStartHeight: 1, ChainPollInterval: 20 * time.Millisecond}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	t.Cleanup(func() { checkCustody(t, n) })
	return &payoutNode{t: t, chain: chain, rpc: rpcServer, admin: "http://" + cfg.AdminAddr}
}

// call sends a request and decodes a JSON answer into out (when not nil); it retries while the
// node is not ready (503).
func (p *payoutNode) call(method, path, body string, out any) int {
	p.t.Helper()
	var status int
	var data []byte
	testutil.EventuallyWithin(p.t, 20*time.Second, "a non-503 answer to "+path, func() bool {
		req, _ := http.NewRequest(method, p.admin+path, strings.NewReader(body))
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, _ = io.ReadAll(resp.Body)
		status = resp.StatusCode
		return status != http.StatusServiceUnavailable
	})
	if out != nil && status == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			p.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	if status != http.StatusOK {
		p.t.Logf("%s %s: %d %s", method, path, status, data)
	}
	return status
}

type balanceView struct{ IncomingBalance, CurrentBalance, OutgoingBalance string }

func (p *payoutNode) balance(foreignID string) balanceView {
	var b balanceView
	if status := p.call("GET", "/account/"+foreignID+"/balance", "", &b); status != 200 {
		p.t.Fatalf("balance: %d", status)
	}
	return b
}

type paymentView struct {
	PaymentID string `json:"payment_id"`
	Status    string `json:"status"`
	Total     string `json:"total"`
	Fee       string `json:"fee"`
}

func (p *payoutNode) payment(foreignID, id string) paymentView {
	var v paymentView
	if status := p.call("GET", "/account/"+foreignID+"/payment/"+id, "", &v); status != 200 {
		p.t.Fatalf("payment: %d", status)
	}
	return v
}

// A deposit confirmed, then a payout through the API: reserved and sent at once, accepted by
// the node (which checks its signatures), mined, confirmed; the balances follow. A refused
// broadcast releases its payout; a paytx is voided; bad requests change nothing.
func TestPayoutThroughTheAPI(t *testing.T) {
	p := startPayoutNode(t)
	var invoice struct{ ID string }
	p.call("POST", "/account/shop", `{}`, nil)
	if status := p.call("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"tea","value":"10","quantity":1}],"required_confirmations":1}`, &invoice); status != 200 {
		t.Fatalf("invoice: %d", status)
	}
	if _, err := p.chain.Pay(invoice.ID, 10*100_000_000); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the deposit detected", func() bool { return p.balance("shop").IncomingBalance == "10" })
	p.chain.Mine(2)
	testutil.EventuallyWithin(t, 20*time.Second, "the deposit confirmed", func() bool { return p.balance("shop").CurrentBalance == "10" })

	// Bad requests: 400/422, nothing reserved.
	for _, c := range []struct {
		body   string
		status int
	}{
		{`{"amount":"0.001","to":"` + p.chain.FaucetAddress() + `"}`, 400},                                 // dust
		{`{"amount":"1.123456789","to":"` + p.chain.FaucetAddress() + `"}`, 400},                           // 9 decimals
		{`{"amount":"1","to":"DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L"}`, 400},                                  // mainnet address
		{`{"amount":"1","to":"nonsense"}`, 400},                                                            // not an address
		{`{"amount":"11","to":"` + p.chain.FaucetAddress() + `"}`, 422},                                    // more than available
		{`{"pay":[{"amount":"1","to":"` + p.chain.FaucetAddress() + `","deduct_fee_percent":"50"}]}`, 400}, // shares ≠ 100
		{`{"amount":"1","to":"` + p.chain.FaucetAddress() + `","max_fee":"0.001"}`, 422},                   // fee above max_fee
		{`{"amount":"1","to":"` + p.chain.FaucetAddress() + `","pay":[]}`, 200},                            // empty pay: amount/to (GigaWallet)
	} {
		if c.status == 200 {
			continue
		}
		if status := p.call("POST", "/account/shop/pay", c.body, nil); status != c.status {
			t.Errorf("%s: %d, want %d", c.body, status, c.status)
		}
	}
	if b := p.balance("shop"); b.CurrentBalance != "10" || b.OutgoingBalance != "0" {
		t.Fatalf("bad requests changed the balance: %+v", b)
	}

	var sent struct{ Hex, Tx, Total, Paid, Fee string }
	if status := p.call("POST", "/account/shop/pay", `{"amount":"4","to":"`+p.chain.FaucetAddress()+`"}`, &sent); status != 200 {
		t.Fatalf("pay: %d", status)
	}
	txid, err := chainhash.NewHashFromStr(sent.Hex)
	if err != nil || sent.Paid != "4" || sent.Tx == "" {
		t.Fatalf("pay answer %+v %v", sent, err)
	}
	if !p.chain.InMempool(*txid) {
		t.Fatalf("the payout is not in the node's mempool")
	}
	b := p.balance("shop")
	if b.OutgoingBalance != sent.Total {
		t.Fatalf("after pay: %+v, total %s", b, sent.Total)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "payout sent", func() bool { return p.payment("shop", sent.Hex).Status == "sent" })
	p.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "payout on chain", func() bool { return p.payment("shop", sent.Hex).Status == "on_chain" })
	// Mined, not yet confirmed: still outgoing (a probe saw it fall to 0 at the mining).
	if b := p.balance("shop"); b.OutgoingBalance != sent.Total {
		t.Fatalf("on chain: %+v, total %s", b, sent.Total)
	}
	p.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "payout confirmed", func() bool { return p.payment("shop", sent.Hex).Status == "confirmed" })
	b = p.balance("shop")
	if b.OutgoingBalance != "0" || b.CurrentBalance == "10" {
		t.Fatalf("after confirmation: %+v", b)
	}
	current := b.CurrentBalance

	// The node refuses the next one: 422, released, balance unchanged.
	p.chain.RejectNext(-26, "66: min relay fee not met")
	if status := p.call("POST", "/account/shop/pay", `{"amount":"1","to":"`+p.chain.FaucetAddress()+`"}`, nil); status != 422 {
		t.Fatalf("refused pay: %d", status)
	}
	if b := p.balance("shop"); b.CurrentBalance != current || b.OutgoingBalance != "0" {
		t.Fatalf("after refusal: %+v", b)
	}
	// A paytx is not sent; void releases it.
	var unsent struct{ Hex string }
	if status := p.call("POST", "/account/shop/paytx", `{"amount":"1","to":"`+p.chain.FaucetAddress()+`"}`, &unsent); status != 200 {
		t.Fatalf("paytx: %d", status)
	}
	id, _ := chainhash.NewHashFromStr(unsent.Hex)
	if p.chain.InMempool(*id) {
		t.Fatalf("paytx was sent")
	}
	var voided paymentView
	if status := p.call("POST", "/account/shop/payment/"+unsent.Hex+"/void", "", &voided); status != 200 || voided.Status != "released" {
		t.Fatalf("void: %d %+v", status, voided)
	}
	if b := p.balance("shop"); b.CurrentBalance != current || b.OutgoingBalance != "0" {
		t.Fatalf("after void: %+v", b)
	}
	var list struct {
		Items  []paymentView
		Cursor int
	}
	if status := p.call("GET", "/account/shop/payments?limit=10", "", &list); status != 200 || len(list.Items) != 3 {
		t.Fatalf("payments: %d %+v", status, list)
	}
}

// fund creates the account (when needed) and an invoice of amount DOGE, pays and confirms it.
func (p *payoutNode) fund(foreignID, amount string, koinu int64) string {
	p.t.Helper()
	var invoice struct{ ID string }
	p.call("POST", "/account/"+foreignID, `{}`, nil)
	if status := p.call("POST", "/account/"+foreignID+"/invoice", `{"items":[{"type":"item","name":"tea","value":"`+amount+`","quantity":1}],"required_confirmations":0}`, &invoice); status != 200 {
		p.t.Fatalf("invoice: %d", status)
	}
	before := p.balance(foreignID).CurrentBalance
	if _, err := p.chain.Pay(invoice.ID, koinu); err != nil {
		p.t.Fatal(err)
	}
	p.chain.Mine(1)
	testutil.EventuallyWithin(p.t, 20*time.Second, "the deposit confirmed", func() bool { return p.balance(foreignID).CurrentBalance != before })
	return invoice.ID
}

// A refund pays back at most what the invoice received, once; an auto-payout pays the balance
// to the payout address when its period comes, and a period with nothing to pay is skipped with
// its reason.
func TestRefundAndAutoPayout(t *testing.T) {
	p := startPayoutNode(t)
	invoice := p.fund("shop", "3", 3*100_000_000)
	to := p.chain.FaucetAddress()
	if status := p.call("POST", "/account/shop/invoice/"+invoice+"/refund", `{"to":"`+to+`","amount":"4"}`, nil); status != 422 {
		t.Fatalf("refund above what was received: %d", status)
	}
	var refund struct{ Hex, Paid string }
	if status := p.call("POST", "/account/shop/invoice/"+invoice+"/refund", `{"to":"`+to+`"}`, &refund); status != 422 {
		// 3 DOGE back plus the fee is more than the 3 the account holds: refused, nothing held.
		t.Fatalf("refund of everything with the fee on top: %d", status)
	}
	p.fund("shop", "1", 100_000_000)
	if status := p.call("POST", "/account/shop/invoice/"+invoice+"/refund", `{"to":"`+to+`"}`, &refund); status != 200 || refund.Paid != "3" {
		t.Fatalf("refund: %d %+v", status, refund)
	}
	if status := p.call("POST", "/account/shop/invoice/"+invoice+"/refund", `{"to":"`+to+`","amount":"1"}`, nil); status != 409 {
		t.Fatalf("second refund: %d", status)
	}
	p.chain.Mine(2)
	testutil.EventuallyWithin(t, 20*time.Second, "refund confirmed", func() bool { return p.payment("shop", refund.Hex).Status == "confirmed" })

	// Auto-payouts every second to the faucet: the remaining balance goes out.
	if status := p.call("POST", "/account/shop", `{"payout_address":"`+to+`","payout_frequency":"1"}`, nil); status != 200 {
		t.Fatalf("settings: %d", status)
	}
	var list struct {
		Items []struct {
			Kind, Status, Total string
		}
	}
	testutil.EventuallyWithin(t, 20*time.Second, "an auto-payout", func() bool {
		p.call("GET", "/account/shop/payments?limit=10", "", &list)
		for _, item := range list.Items {
			if item.Kind == "auto" {
				return true
			}
		}
		return false
	})
	p.chain.Mine(2)
	testutil.EventuallyWithin(t, 20*time.Second, "the balance paid out", func() bool { return p.balance("shop").CurrentBalance == "0" })
	// The next period finds nothing to pay: skipped, with the reason in an event.
	var events struct {
		Items []struct {
			EventType string          `json:"event_type"`
			Message   json.RawMessage `json:"message"`
		}
	}
	testutil.EventuallyWithin(t, 20*time.Second, "a skipped period", func() bool {
		p.call("GET", "/events?limit=1000", "", &events)
		for _, e := range events.Items {
			if e.EventType == "ACC_AUTO_PAYOUT_SKIPPED" {
				return true
			}
		}
		return false
	})
}

// The client package's payout calls against a real node: their shapes are the server's.
func TestPayoutThroughTheClient(t *testing.T) {
	p := startPayoutNode(t)
	p.fund("shop", "5", 5*100_000_000)
	c, err := client.New(p.admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, time.Minute)
	amount := client.DogeAmount("1.5")
	sent, err := c.Pay(ctx, "shop", client.PayRequest{Amount: &amount, To: p.chain.FaucetAddress()})
	if err != nil || sent.Paid != "1.5" || sent.TxID == "" || sent.Tx == "" {
		t.Fatalf("Pay: %+v %v", sent, err)
	}
	// The only output is reserved by that payout until it is mined (change is spent once
	// confirmed): a second payout waits for the block.
	if _, err := c.PayTx(ctx, "shop", client.PayRequest{Amount: &amount, To: p.chain.FaucetAddress()}); err == nil {
		t.Fatal("a payout from a reserved output succeeded")
	}
	p.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "payout on chain", func() bool { return p.payment("shop", sent.TxID).Status != "sent" })
	unsent, err := c.PayTx(ctx, "shop", client.PayRequest{Pay: []client.PayTo{{Amount: "1", To: p.chain.FaucetAddress(), DeductFeePercent: "100"}}})
	if err != nil || unsent.Paid != "0.99" {
		t.Fatalf("PayTx: %+v %v", unsent, err)
	}
	voided, err := c.VoidPayment(ctx, "shop", unsent.TxID)
	if err != nil || voided.Status != "released" {
		t.Fatalf("VoidPayment: %+v %v", voided, err)
	}
	got, err := c.GetPayment(ctx, "shop", sent.TxID)
	if err != nil || got.TxID != sent.TxID || len(got.PayTo) != 1 || got.PayTo[0].Amount != "1.5" {
		t.Fatalf("GetPayment: %+v %v", got, err)
	}
	page, err := c.ListPayments(ctx, "shop", 0, 1)
	if err != nil || len(page.Items) != 1 || page.Cursor == 0 {
		t.Fatalf("ListPayments: %+v %v", page, err)
	}
	if _, err := c.GetPayment(ctx, "shop", strings.Repeat("0", 64)); err == nil {
		t.Fatal("GetPayment of an unknown payout succeeded")
	}
	rescan, err := c.SetSyncHeight(ctx, 2)
	if err != nil || rescan.Shards != 1 {
		t.Fatalf("SetSyncHeight: %+v %v", rescan, err)
	}
	// The rescan observes the same blocks again: nothing is counted twice.
	testutil.EventuallyWithin(t, 20*time.Second, "the payout mined again after the rescan", func() bool { return p.payment("shop", sent.TxID).Status != "sent" })
	if b := p.balance("shop"); b.CurrentBalance != "3.49" {
		t.Fatalf("after the rescan: %+v", b)
	}
}

// Three nodes, one shard: a payout is reserved, but its send fails with an unknown outcome (the
// node had not taken it); the shard's leader then stops before its follower records anything.
// The new leader's follower sends the same signed transaction; it is mined and confirmed once,
// with one PAYMENT_SENT, one PAYMENT_ON_CHAIN and one PAYMENT_CONFIRMED, and the account debited
// once.
func TestPayoutLeaderFailover(t *testing.T) {
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, 3, 1, nil, func(cfg *serveConfig) {
		sim.configure(cfg, 200*time.Millisecond)
		cfg.ConfirmationsNeeded = 1
	})
	g.expect(0, false, http.MethodPost, "/account/shop", `{}`, http.StatusOK)
	invoice := g.createInvoice(0, "shop", `{"items":[{"type":"item","name":"tea","value":"5","quantity":1}],"required_confirmations":0}`)
	if _, err := sim.chain.Pay(invoice.PayToAddress, 5*chainsim.KoinuPerCoin); err != nil {
		t.Fatal(err)
	}
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "the deposit confirmed", func() bool { return g.balance(0, "shop").CurrentBalance == "5" })

	leader := g.leader()
	if leader < 0 {
		t.Fatal("no leader of shard 0")
	}
	api := (leader + 1) % 3
	sim.chain.RejectNext(-28, "Loading block index...") // neither taken nor refused: outcome unknown
	var sent struct{ Hex, Total string }
	if err := json.Unmarshal(g.expect(api, false, http.MethodPost, "/account/shop/pay", `{"amount":"2","to":"`+sim.chain.FaucetAddress()+`"}`, http.StatusOK), &sent); err != nil {
		t.Fatal(err)
	}
	g.stop(leader)
	testutil.EventuallyWithin(t, 30*time.Second, "the payout sent by the new leader", func() bool {
		id, _ := chainhash.NewHashFromStr(sent.Hex)
		return sim.chain.InMempool(*id)
	})
	sim.chain.Mine(2)
	state := func() string {
		var v paymentView
		if err := json.Unmarshal(g.expect(api, false, http.MethodGet, "/account/shop/payment/"+sent.Hex, "", http.StatusOK), &v); err != nil {
			t.Fatal(err)
		}
		return v.Status
	}
	testutil.EventuallyWithin(t, 30*time.Second, "the payout confirmed", func() bool { return state() == "confirmed" })
	for _, kind := range []string{"PAYMENT_SENT", "PAYMENT_ON_CHAIN", "PAYMENT_CONFIRMED"} {
		events, _ := g.replayEvents(api, 500)
		count := 0
		for _, e := range events {
			if e.EventType == kind {
				count++
			}
		}
		if count != 1 {
			t.Errorf("%d %s events, want 1", count, kind)
		}
	}
	if b := g.balance(api, "shop"); b.CurrentBalance != "2.99" || b.OutgoingBalance != "0" {
		t.Fatalf("balance: %+v", b)
	}
}

// checkCustody checks, on every shard a running node hosts, the accounting core's invariants and
// the GigaWallet custody invariant (fsm/gigawallet CHAIN.md): the chain tests register it to
// run when they end, before their nodes stop.
func checkCustody(t *testing.T, n *node) {
	t.Helper()
	if n == nil {
		return
	}
	for _, k := range n.cluster.HostedShards() {
		m, ok := n.cluster.StateMachine(k).(*fsm.Machine)
		if !ok || m == nil {
			continue
		}
		if err := n.families.ledger.Of(m).CheckInvariants(); err != nil {
			t.Errorf("%s shard %d: %v", n.cfg.NodeID, k, err)
		}
		if err := n.families.gigawallet.CheckCustody(m); err != nil {
			t.Errorf("%s shard %d: %v", n.cfg.NodeID, k, err)
		}
	}
}
