package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/zmqsub"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
)

// simNode is a simulated Dogecoin node for serve: a chainsim chain behind a JSON-RPC listener
// and a ZMQ publisher, both on 127.0.0.1 below the ephemeral range.
type simNode struct {
	chain            *chainsim.Chain
	rpcPort, zmqPort int
}

// simStartHeight is the simulated chain's height when the node starts following it.
const simStartHeight = 20

func startSimNode(t *testing.T) *simNode {
	t.Helper()
	chain, err := chainsim.New(chainsim.Options{AuxPoW: true})
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(simStartHeight)
	server := chainsim.NewServer(chain, "gigawallet", "rpc-secret")
	rpcURL, err := server.Listen(testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	endpoint, err := chain.ListenZMQ("tcp://" + testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.CloseZMQ() })
	return &simNode{chain: chain, rpcPort: portOf(t, rpcURL), zmqPort: portOf(t, endpoint)}
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// configure points a node at the simulated chain: regtest, from block 1, polling every
// pollInterval (ZMQ wakes it otherwise).
func (s *simNode) configure(cfg *serveConfig, pollInterval time.Duration) {
	cfg.Network = "regtest"
	cfg.Dogecoind = []dogecoindSpec{{Network: "regtest", RPCHost: "127.0.0.1", RPCPort: s.rpcPort, RPCUser: "gigawallet",
		RPCPass: "rpc-secret", Host: "127.0.0.1", ZMQPort: s.zmqPort}}
	cfg.ChainStartHeight = 1
	cfg.ChainPollInterval = pollInterval
}

// invoiceState is what the chain tests read of the admin invoice view.
type invoiceState struct {
	TotalIncoming         string `json:"total_incoming"`
	TotalConfirmed        string `json:"total_confirmed"`
	TotalPaymentDetected  bool   `json:"total_payment_detected"`
	TotalPaymentConfirmed bool   `json:"total_payment_confirmed"`
	PaymentUnconfirmed    bool   `json:"payment_unconfirmed"`
	Status                string `json:"status"`
}

func (g *gigaWalletCluster) invoiceState(i int, foreignID, address string) invoiceState {
	g.t.Helper()
	var v invoiceState
	if err := json.Unmarshal(g.expect(i, false, http.MethodGet, "/account/"+foreignID+"/invoice/"+address, "", http.StatusOK), &v); err != nil {
		g.t.Fatal(err)
	}
	return v
}

// balanceState is GET /account/:foreignID/balance, amounts as the API writes them.
type balanceState struct {
	IncomingBalance, CurrentBalance, OutgoingBalance string
}

func (g *gigaWalletCluster) balance(i int, foreignID string) balanceState {
	g.t.Helper()
	var b balanceState
	if err := json.Unmarshal(g.expect(i, false, http.MethodGet, "/account/"+foreignID+"/balance", "", http.StatusOK), &b); err != nil {
		g.t.Fatal(err)
	}
	return b
}

// chainCursors is the chain part of GET /cluster on node i: shard → height.
func (g *gigaWalletCluster) chainCursors(i int) map[int]int64 {
	g.t.Helper()
	var view struct {
		Chain ChainStatus `json:"chain"`
	}
	if err := json.Unmarshal(g.expect(i, false, http.MethodGet, "/cluster", "", http.StatusOK), &view); err != nil {
		g.t.Fatal(err)
	}
	if view.Chain.Network != "regtest" {
		g.t.Fatalf("/cluster chain network %q", view.Chain.Network)
	}
	out := map[int]int64{}
	for _, s := range view.Chain.Shards {
		out[s.Shard] = s.Height
	}
	return out
}

// eventsOf lists node i's events of type kind about invoice address.
func (g *gigaWalletCluster) eventsOf(i int, kind, address string) []replayedEvent {
	g.t.Helper()
	events, _ := g.replayEvents(i, 500)
	var out []replayedEvent
	for _, e := range events {
		if e.EventType == kind && e.Message["invoice_id"] == address {
			out = append(out, e)
		}
	}
	return out
}

const (
	chainTestKoinu = 250 * chainsim.KoinuPerCoin
	chainTestBody  = `{"items":[{"type":"item","name":"tea","value":"250","quantity":1}],"required_confirmations":2}`
)

// A lone node follows a simulated Dogecoin node (regtest, AuxPoW blocks) through serve's
// --dogecoind, woken by ZMQ: the poll interval is an hour, so everything observed within the
// test's deadlines came through a notification. A payment to an invoice is detected in the
// mempool (admin view, GET /events with GigaWallet's InvPaymentEvent payload, the balance's
// IncomingBalance), confirmed after N = 2 blocks (CurrentBalance, and both events on a
// --callback webhook); /cluster shows every shard's
// cursor; POST /admin/setsyncheight rewinds and the node observes the blocks again without
// crediting twice.
func TestChainFollowerOnALoneNode(t *testing.T) {
	sim := startSimNode(t)
	hook := newWebhookReceiver(t, "hook-secret")
	g := newConfiguredGigaWalletCluster(t, 1, 2, nil, func(cfg *serveConfig) {
		cfg.Replicas = 1
		sim.configure(cfg, time.Hour)
		if err := (callbackFlags{list: &cfg.Callbacks}).Set(`{"name":"shop","url":"` + hook.url + `","types":["INV"],"secret":"hook-secret"}`); err != nil {
			t.Fatal(err)
		}
	})
	total := gw.FormatKoinu(fsm.AmountFromUint64(uint64(chainTestKoinu)))
	atHeight := func(height int64) func() bool {
		return func() bool {
			cursors := g.chainCursors(0)
			return len(cursors) == 2 && cursors[0] == height && cursors[1] == height
		}
	}
	testutil.EventuallyWithin(t, 20*time.Second, "every shard at the start tip", atHeight(simStartHeight))
	// ZMQ drops what is published before a subscription arrives.
	testutil.EventuallyWithin(t, 20*time.Second, "the ZMQ subscription", func() bool {
		return sim.chain.ZMQSubscribed(zmqsub.TopicHashBlock) && sim.chain.ZMQSubscribed(zmqsub.TopicHashTx)
	})

	var account struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(g.expect(0, false, http.MethodPost, "/account/shop", `{}`, http.StatusOK), &account); err != nil {
		t.Fatal(err)
	}
	invoice := g.createInvoice(0, "shop", chainTestBody)
	if _, err := sim.chain.Pay(invoice.PayToAddress, chainTestKoinu); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the payment detected through hashtx", func() bool {
		return g.invoiceState(0, "shop", invoice.ID).TotalPaymentDetected
	})
	v := g.invoiceState(0, "shop", invoice.ID)
	if !v.PaymentUnconfirmed || v.TotalPaymentConfirmed || v.TotalIncoming != total || v.TotalConfirmed != "0" {
		t.Fatalf("detected: %+v", v)
	}
	if b := g.balance(0, "shop"); b.IncomingBalance != total || b.CurrentBalance != "0" {
		t.Fatalf("balance while detected: %+v", b)
	}
	detectedEvents := g.eventsOf(0, "INV_TOTAL_PAYMENT_DETECTED", invoice.ID)
	if len(detectedEvents) != 1 {
		t.Fatalf("detection events %+v", detectedEvents)
	}
	if m := detectedEvents[0].Message; m["foreign_id"] != "shop" || m["account_id"] != account.ID ||
		m["invoice_total"] != total || m["total_incoming"] != total || m["total_confirmed"] != "0" {
		t.Fatalf("INV_TOTAL_PAYMENT_DETECTED payload %v", m)
	}

	// Mined at 21; N = 2 confirms it when the tip reaches 23. Each block arrives through
	// hashblock: the cursor follows block by block.
	for range 2 {
		sim.chain.Mine(1)
		testutil.EventuallyWithin(t, 20*time.Second, "the block observed through hashblock", atHeight(sim.chain.Height()))
		if v := g.invoiceState(0, "shop", invoice.ID); v.TotalPaymentConfirmed {
			t.Fatalf("confirmed at tip %d: %+v", sim.chain.Height(), v)
		}
	}
	sim.chain.Mine(1)
	testutil.EventuallyWithin(t, 20*time.Second, "the payment confirmed", func() bool {
		return g.invoiceState(0, "shop", invoice.ID).TotalPaymentConfirmed
	})
	v = g.invoiceState(0, "shop", invoice.ID)
	if v.PaymentUnconfirmed || v.TotalConfirmed != total || v.Status != "paid" {
		t.Fatalf("confirmed: %+v", v)
	}
	if b := g.balance(0, "shop"); b.IncomingBalance != "0" || b.CurrentBalance != total {
		t.Fatalf("balance once confirmed: %+v", b)
	}

	// The --callback webhook got both, with GigaWallet's InvPaymentEvent payload.
	testutil.EventuallyWithin(t, 20*time.Second, "the payment events on the webhook", func() bool {
		types := hook.types()
		return slices.Contains(types, "INV_TOTAL_PAYMENT_DETECTED") && slices.Contains(types, "INV_TOTAL_PAYMENT_CONFIRMED")
	})
	hook.mu.Lock()
	for _, envelope := range hook.got {
		if envelope["event_type"] != "INV_TOTAL_PAYMENT_CONFIRMED" {
			continue
		}
		m, _ := envelope["message"].(map[string]any)
		if m["invoice_id"] != invoice.ID || m["account_id"] != account.ID || m["total_confirmed"] != total || m["total_incoming"] != total {
			t.Errorf("INV_TOTAL_PAYMENT_CONFIRMED on the webhook: %v", envelope)
		}
	}
	hook.mu.Unlock()

	// A rescan from below the payment: observed again, credited once.
	var answer gw.SyncHeight
	if err := json.Unmarshal(g.expect(0, false, http.MethodPost, fmt.Sprintf("/admin/setsyncheight/%d", simStartHeight-5), `{}`, http.StatusOK), &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Height != simStartHeight-5 || answer.Shards != 2 {
		t.Fatalf("setsyncheight answered %+v", answer)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "every shard back at the tip", atHeight(sim.chain.Height()))
	if b := g.balance(0, "shop"); b.IncomingBalance != "0" || b.CurrentBalance != total {
		t.Fatalf("balance after the rescan: %+v", b)
	}
	if v := g.invoiceState(0, "shop", invoice.ID); !v.TotalPaymentConfirmed || v.TotalConfirmed != total {
		t.Fatalf("after the rescan: %+v", v)
	}
}

// Three nodes, one shard: the shard's leader detects a payment, then stops; the new leader's
// follower resumes from the replicated cursor and confirms the payment exactly once (one
// INV_TOTAL_PAYMENT_CONFIRMED, the amount credited once).
func TestChainFollowerLeaderFailover(t *testing.T) {
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, 3, 1, nil, func(cfg *serveConfig) {
		sim.configure(cfg, 200*time.Millisecond)
	})
	total := gw.FormatKoinu(fsm.AmountFromUint64(uint64(chainTestKoinu)))
	g.expect(0, false, http.MethodPost, "/account/shop", `{}`, http.StatusOK)
	invoice := g.createInvoice(0, "shop", chainTestBody)
	if _, err := sim.chain.Pay(invoice.PayToAddress, chainTestKoinu); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the payment detected", func() bool {
		return g.invoiceState(0, "shop", invoice.ID).TotalPaymentDetected
	})

	leader := g.leader()
	if leader < 0 {
		t.Fatal("no leader of shard 0")
	}
	g.stop(leader)
	survivor := (leader + 1) % 3
	sim.chain.Mine(3)
	testutil.EventuallyWithin(t, 30*time.Second, "the payment confirmed by the new leader", func() bool {
		return g.invoiceState(survivor, "shop", invoice.ID).TotalPaymentConfirmed
	})
	if b := g.balance(survivor, "shop"); b.IncomingBalance != "0" || b.CurrentBalance != total {
		t.Fatalf("balance: %+v", b)
	}
	// The new leader keeps following: more blocks change nothing.
	sim.chain.Mine(2)
	testutil.EventuallyWithin(t, 20*time.Second, "the new leader at the tip", func() bool {
		return g.chainCursors(survivor)[0] == sim.chain.Height()
	})
	confirmations := g.eventsOf(survivor, "INV_TOTAL_PAYMENT_CONFIRMED", invoice.ID)
	detections := g.eventsOf(survivor, "INV_TOTAL_PAYMENT_DETECTED", invoice.ID)
	if len(confirmations) != 1 || len(detections) != 1 {
		t.Fatalf("%d confirmation and %d detection events, want one each", len(confirmations), len(detections))
	}
	if b := g.balance(survivor, "shop"); b.CurrentBalance != total {
		t.Fatalf("balance at the end: %+v", b)
	}
}

// ZMQ's gap is a wake-up too: a block mined while the node's publisher is down sends no
// notification, and the node polls only every hour here; when the publisher is back, the
// subscriber reconnects, reports a gap, and the follower reads the node and finds the block.
func TestChainFollowerWakesOnAZMQGap(t *testing.T) {
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, 1, 1, nil, func(cfg *serveConfig) {
		cfg.Replicas = 1
		sim.configure(cfg, time.Hour)
	})
	atHeight := func(height int64) func() bool {
		return func() bool { return g.chainCursors(0)[0] == height }
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the shard at the start tip", atHeight(simStartHeight))
	testutil.EventuallyWithin(t, 20*time.Second, "the ZMQ subscription", func() bool {
		return sim.chain.ZMQSubscribed(zmqsub.TopicHashBlock)
	})
	if err := sim.chain.CloseZMQ(); err != nil {
		t.Fatal(err)
	}
	sim.chain.Mine(1) // published to nobody
	if _, err := sim.chain.ListenZMQ(fmt.Sprintf("tcp://127.0.0.1:%d", sim.zmqPort)); err != nil {
		t.Fatal(err)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the block found after the reconnection's gap", atHeight(simStartHeight+1))
}

// POST /admin/setsyncheight while a shard's cursor is on a fork the node has left (here no ZMQ
// and an hourly poll, so nothing has told the follower about the reorg) is refused, and wakes
// the follower, which walks the reorg back (the payment, mined only on the old fork, leaves the
// invoice); then the rescan is accepted. Rewinding the stale cursor to the new chain's block
// instead would have kept the old fork's payment credited.
func TestChainSetSyncHeightWaitsForAReorgWalkBack(t *testing.T) {
	sim := startSimNode(t)
	g := newConfiguredGigaWalletCluster(t, 1, 1, nil, func(cfg *serveConfig) {
		cfg.Replicas = 1
		sim.configure(cfg, time.Hour)
		cfg.Dogecoind[0].ZMQPort = 0
	})
	cursor := func() (int64, string) {
		var view struct {
			Chain ChainStatus `json:"chain"`
		}
		if err := json.Unmarshal(g.expect(0, false, http.MethodGet, "/cluster", "", http.StatusOK), &view); err != nil || len(view.Chain.Shards) != 1 {
			t.Fatalf("/cluster: %+v %v", view, err)
		}
		return view.Chain.Shards[0].Height, view.Chain.Shards[0].Hash
	}
	atTip := func() bool {
		height, hash := cursor()
		return height == sim.chain.Height() && hash == sim.chain.TipHash().String()
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the shard at the start tip", atTip)
	setSyncHeight := func(height int64) (int, []byte) {
		status, body, err := g.send(g.configs[0].AdminAddr, http.MethodPost, fmt.Sprintf("/admin/setsyncheight/%d", height), `{}`)
		if err != nil {
			t.Fatal(err)
		}
		return status, body
	}

	g.expect(0, false, http.MethodPost, "/account/shop", `{}`, http.StatusOK)
	invoice := g.createInvoice(0, "shop", `{"items":[{"type":"item","name":"tea","value":"250","quantity":1}],"required_confirmations":0}`)
	if _, err := sim.chain.Pay(invoice.PayToAddress, chainTestKoinu); err != nil {
		t.Fatal(err)
	}
	sim.chain.Mine(3)
	if status, body := setSyncHeight(simStartHeight); status != http.StatusOK { // a rescan from where it stands: wakes it
		t.Fatalf("setsyncheight: %d %s", status, body)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the payment confirmed", func() bool {
		return g.invoiceState(0, "shop", invoice.ID).TotalPaymentConfirmed && atTip()
	})

	if _, err := sim.chain.Reorg(3, 3, chainsim.ReorgOptions{DropTransactions: true}); err != nil {
		t.Fatal(err)
	}
	if status, body := setSyncHeight(simStartHeight + 2); status == http.StatusOK {
		t.Fatalf("setsyncheight from a stale fork answered %d %s", status, body)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the reorg walked back", atTip)
	// The walk-back unmines the payment; the same sync round then drops it (the node no longer
	// has it), after the cursor reached the tip.
	testutil.EventuallyWithin(t, 20*time.Second, "the dropped payment gone", func() bool {
		v := g.invoiceState(0, "shop", invoice.ID)
		return v.TotalIncoming == "0" && !v.TotalPaymentConfirmed
	})
	if status, body := setSyncHeight(simStartHeight + 2); status != http.StatusOK {
		t.Fatalf("setsyncheight after the walk-back: %d %s", status, body)
	}
	testutil.EventuallyWithin(t, 20*time.Second, "the shard at the tip again", atTip)
	if b := g.balance(0, "shop"); b.CurrentBalance != "0" || b.IncomingBalance != "0" {
		t.Fatalf("balance: %+v", b)
	}
}
