package chainwatch

import (
	"bytes"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// payoutWorld is a shard following a simulated chain, with an account whose keys the test
// holds and a confirmed deposit of 10 DOGE to its first invoice address.
type payoutWorld struct {
	t       *testing.T
	chain   *chainsim.Chain
	server  *chainsim.Server
	client  *rpc.Client
	shard   *testShard
	keys    *dogecoin.Keychain
	account *dogecoin.AccountKeys
}

func newPayoutWorld(t *testing.T) *payoutWorld {
	t.Helper()
	chain, err := chainsim.New(chainsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(2)
	server := chainsim.NewServer(chain, "u", "p")
	httpServer := httptest.NewServer(server)
	t.Cleanup(httpServer.Close)
	client, err := rpc.New(rpc.Config{URL: httpServer.URL, User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	seed, err := dogecoin.NewSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	w := &payoutWorld{t: t, chain: chain, server: server, client: client, shard: newTestShard(t), keys: keys}
	index, _ := w.shard.Reader().NextAccountIndex("gw", "shop")
	if w.account, err = keys.Account(index); err != nil {
		t.Fatal(err)
	}
	address, err := w.account.InvoiceAddress(0)
	if err != nil {
		t.Fatal(err)
	}
	w.shard.invoice("shop", address.Address, 10*100_000_000, 0)
	if _, err := chain.Pay(address.Address, 10*100_000_000); err != nil {
		t.Fatal(err)
	}
	chain.Mine(1)
	w.sync(w.follower())
	if w.shard.balance("shop") != "1000000000" {
		t.Fatalf("deposit not credited: %s", w.shard.balance("shop"))
	}
	return w
}

// follower is a new follower of the shard; the requests that reserved the world's payouts are
// gone (the test plays the API), so it sends them at once.
func (w *payoutWorld) follower() *Follower {
	return NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1, RequestSendGrace: -1}, w.client, 0, w.shard, nil)
}

func (w *payoutWorld) sync(f *Follower) {
	w.t.Helper()
	if err := f.Sync(testutil.Context(w.t, time.Minute)); err != nil {
		w.t.Fatalf("sync: %v", err)
	}
}

// reserve plans, signs and reserves a payout of koinu to the chain's faucet, as the API does.
func (w *payoutWorld) reserve(koinu uint64) *gigawallet.Payment {
	w.t.Helper()
	return w.reserveSent(koinu, true)
}

func (w *payoutWorld) reserveSent(koinu uint64, broadcast bool) *gigawallet.Payment {
	w.t.Helper()
	reader := w.shard.Reader()
	a, err := reader.GetAccount("gw", "shop")
	if err != nil {
		w.t.Fatal(err)
	}
	spendable, err := reader.SpendableUTXOs("gw", "shop", 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var candidates []payout.UTXO
	for _, u := range spendable {
		candidates = append(candidates, payout.UTXO{TxID: u.TxID.String(), Vout: u.Vout, Koinu: u.Koinu, Address: u.Address,
			Branch: dogecoin.Branch(u.Branch), Index: u.KeyIndex, Height: u.Height})
	}
	plan, err := payout.NewPlan(payout.Request{Outputs: []payout.Output{{Address: w.chain.FaucetAddress(), Koinu: koinu}},
		Network: dogecoin.Regtest}, candidates)
	if err != nil {
		w.t.Fatal(err)
	}
	change, _ := w.account.ChangeAddress(a.NextInternal)
	signed, err := payout.Sign(plan, change.Address, payout.AccountKeySource{Keychain: w.keys, Account: w.account.Account()}, dogecoin.Regtest)
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := &gigawallet.ReservePayment{ProjectID: "gw", ForeignID: "shop", Kind: "pay", FeeKoinu: plan.FeeKoinu, RawTx: signed.Raw,
		Broadcast: broadcast, Confirmations: 1, ChangeAddress: change.Address, ChangeIndex: a.NextInternal, ChangeKoinu: plan.ChangeKoinu,
		Outputs: []gigawallet.PayOutput{{Address: w.chain.FaucetAddress(), Koinu: plan.Outputs[0].Koinu, DeductFeePercent: "0"}}}
	return w.shard.apply(cmd).Value.(*gigawallet.Payment)
}

func (w *payoutWorld) status(p *gigawallet.Payment) gigawallet.PaymentStatus {
	w.t.Helper()
	got, err := w.shard.Reader().GetPayment("gw", "shop", p.TxID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got.Status
}

// The node that reserved a payout died before sending it: the next leader's follower sends the
// same signed transaction; it is mined and confirmed once.
func TestLeaderDiesBetweenReserveAndBroadcast(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserve(4 * 100_000_000)
	next := w.follower() // a new leader
	w.sync(next)
	if !w.chain.InMempool(chainhash.Hash(p.TxID)) || w.status(p) != gigawallet.PaymentSent {
		t.Fatalf("not sent by the next leader: status %s", w.status(p))
	}
	w.chain.Mine(1)
	w.sync(next)
	w.chain.Mine(1)
	w.sync(w.follower()) // and another leader after it
	if w.status(p) != gigawallet.PaymentConfirmed || w.shard.balance("shop") != "599000000" {
		t.Fatalf("status %s balance %s", w.status(p), w.shard.balance("shop"))
	}
}

// The send's answer was lost (the node took it): the payout stays reserved, the follower sends
// it again, the node already has it, and it is recorded as sent once.
func TestBroadcastAnswerLost(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserve(4 * 100_000_000)
	w.server.DropNextSendAnswer()
	f := w.follower()
	if err := f.Sync(testutil.Context(t, time.Minute)); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if !w.chain.InMempool(chainhash.Hash(p.TxID)) {
		t.Fatal("the node did not take it")
	}
	w.sync(f) // in the mempool now: recorded as sent
	if w.status(p) != gigawallet.PaymentSent {
		t.Fatalf("status %s", w.status(p))
	}
	w.chain.Mine(2)
	w.sync(f)
	if w.status(p) != gigawallet.PaymentConfirmed {
		t.Fatalf("status %s", w.status(p))
	}
}

// The node refuses the payout for good: the follower releases it (inputs free, hold released),
// and the money is spendable again.
func TestRefusedPayoutIsReleased(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserve(4 * 100_000_000)
	w.chain.RejectNext(-26, "66: min relay fee not met")
	w.sync(w.follower())
	if w.status(p) != gigawallet.PaymentReleased {
		t.Fatalf("status %s", w.status(p))
	}
	if spendable, _ := w.shard.Reader().SpendableUTXOs("gw", "shop", 10); len(spendable) != 1 {
		t.Fatalf("spendable after release: %+v", spendable)
	}
	// Paid again from the same output (a new change address: another transaction).
	q := w.reserve(4 * 100_000_000)
	w.sync(w.follower())
	w.chain.Mine(2)
	w.sync(w.follower())
	if w.status(q) != gigawallet.PaymentConfirmed || w.shard.balance("shop") != "599000000" {
		t.Fatalf("again: %s balance %s", w.status(q), w.shard.balance("shop"))
	}
}

// A re-send the node refuses (a full mempool) does not release the payout at once: an earlier
// send of it may still reach the node (a probe's delayed request did, after the release, and
// the payout the client was told would not happen went out). The payout is released only when
// the node still refuses it a send grace later; one that lands meanwhile is recorded as sent.
func TestRefusedResendReleasesOnlyWhenRefusedAgainLater(t *testing.T) {
	const grace = 50 * time.Millisecond
	w := newPayoutWorld(t)
	f := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1, RequestSendGrace: grace}, w.client, 0, w.shard, nil)
	waitGrace := func() { time.Sleep(grace + 10*time.Millisecond) } // a threshold on the clock, not a wait for an event

	landed := w.reserve(4 * 100_000_000)
	waitGrace() // the request's time to send it is over
	w.chain.RejectNext(-26, "mempool full")
	w.sync(f)
	if w.status(landed) != gigawallet.PaymentReserved {
		t.Fatalf("after one refusal: %s, want still reserved", w.status(landed))
	}
	// The earlier send arrives now.
	if _, err := w.client.SendRawTransaction(testutil.Context(t, time.Minute), hex.EncodeToString(landed.RawTx)); err != nil {
		t.Fatal(err)
	}
	waitGrace()
	w.sync(f)
	if w.status(landed) != gigawallet.PaymentSent {
		t.Fatalf("after it landed: %s, want sent", w.status(landed))
	}
	w.chain.Mine(2)
	w.sync(f)

	refused := w.reserve(2 * 100_000_000)
	waitGrace()
	w.chain.RejectNext(-26, "66: min relay fee not met")
	w.chain.RejectNext(-26, "66: min relay fee not met")
	w.sync(f)
	if w.status(refused) != gigawallet.PaymentReserved {
		t.Fatalf("after one refusal: %s, want still reserved", w.status(refused))
	}
	waitGrace()
	w.sync(f)
	if w.status(refused) != gigawallet.PaymentReleased {
		t.Fatalf("refused again a grace later: %s, want released", w.status(refused))
	}
}

// A reorg unmines a confirmed payout: the money is held again, the payout waits in the
// mempool, is mined again and confirmed once; the custody check (in the harness) holds.
func TestPayoutThroughAReorg(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserve(4 * 100_000_000)
	f := w.follower()
	w.sync(f)
	w.chain.Mine(2)
	w.sync(f)
	if w.status(p) != gigawallet.PaymentConfirmed {
		t.Fatalf("status %s", w.status(p))
	}
	if _, err := w.chain.Reorg(2, 1, chainsim.ReorgOptions{EmptyBlocks: true}); err != nil {
		t.Fatal(err)
	}
	w.sync(f)
	if w.status(p) != gigawallet.PaymentSent {
		t.Fatalf("after the reorg: %s", w.status(p))
	}
	w.chain.Mine(2)
	w.sync(f)
	if w.status(p) != gigawallet.PaymentConfirmed || w.shard.balance("shop") != "599000000" {
		t.Fatalf("after re-mining: %s balance %s", w.status(p), w.shard.balance("shop"))
	}
}

// A paytx payout the caller never sends is voided once its time has passed: inputs free, hold
// released.
func TestUnsentPaytxIsVoided(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserveSent(4*100_000_000, false)
	f := w.follower()
	w.sync(f)
	if w.status(p) != gigawallet.PaymentReserved || w.chain.InMempool(chainhash.Hash(p.TxID)) {
		t.Fatalf("a paytx was sent: %s", w.status(p))
	}
	f.cfg.PaytxUnseenMax = time.Nanosecond
	w.sync(f)
	if w.status(p) != gigawallet.PaymentReleased {
		t.Fatalf("status %s", w.status(p))
	}
	if spendable, _ := w.shard.Reader().SpendableUTXOs("gw", "shop", 10); len(spendable) != 1 {
		t.Fatalf("spendable after the void: %+v", spendable)
	}
}

// A payout its request reserved a moment ago is that request's to send: the follower leaves it
// (two sends would race, and a refusal of one would release what the other got into the
// mempool), and sends it once the grace has passed.
func TestFollowerLeavesAFreshPayoutToItsRequest(t *testing.T) {
	w := newPayoutWorld(t)
	p := w.reserve(4 * 100_000_000)
	patient := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: 1, RequestSendGrace: time.Hour}, w.client, 0, w.shard, nil)
	w.sync(patient)
	if w.chain.InMempool(chainhash.Hash(p.TxID)) || w.status(p) != gigawallet.PaymentReserved {
		t.Fatalf("sent within its request's grace: status %s", w.status(p))
	}
	w.sync(w.follower()) // no grace: the request is gone
	if !w.chain.InMempool(chainhash.Hash(p.TxID)) || w.status(p) != gigawallet.PaymentSent {
		t.Fatalf("not sent after the grace: status %s", w.status(p))
	}
}
