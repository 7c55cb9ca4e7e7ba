package chainwatch

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// spendFromSimAddress signs a transaction spending output vout of txid, paid to
// simAddress(seed), to another address: what a payout of the shard's coins looks like to the
// node.
func spendFromSimAddress(t *testing.T, chain *chainsim.Chain, seed string, txid gigawallet.Hash, vout uint32, koinu int64) gigawallet.Hash {
	t.Helper()
	secret := sha256.Sum256([]byte(seed))
	key, _ := btcec.PrivKeyFromBytes(secret[:])
	from, err := chainsim.AddressScript(simAddress(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	to, err := chainsim.AddressScript(simAddress(t, seed+"/spent-to"))
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(1)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(txid), Index: vout}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(koinu-chainsim.KoinuPerCoin/100, to))
	script, err := txscript.SignatureScript(tx, 0, from, txscript.SigHashAll, key, true)
	if err != nil {
		t.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = script
	var raw bytes.Buffer
	if err := tx.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	id, err := chain.SendRawTransaction(raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return gigawallet.Hash(id)
}

// A double spend takes the payment's descendants with it: an unmined transaction spending the
// payment's output (as a payout would) leaves the node's mempool with it, and the follower's
// one DropTransactions of the payment forgets both (the FSM drops the spender first).
func TestFollowerSimDoubleSpendDropsDescendants(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	address := simAddress(t, "parent")
	s.shard.invoice("shop", address, uint64(payKoinu), 1)
	f := s.follower()
	s.sync(f)
	parent := s.pay(address, payKoinu)
	child := spendFromSimAddress(t, s.chain, "parent", parent, 0, payKoinu)
	s.sync(f)
	s.check("detected", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
	if pending, _ := s.shard.Reader().PendingTransactions(gigawallet.Hash{}, 10); len(pending) != 2 {
		t.Fatalf("pending %v, want the payment %s and its spender %s", pending, parent, child)
	}
	if u, _ := s.shard.Reader().UTXO(gigawallet.Outpoint{TxID: parent, Vout: 0}); u == nil || u.Spender != child {
		t.Fatalf("the payment's output: %+v, want spent by %s", u, child)
	}

	if _, err := s.chain.Reorg(1, 1, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{chainhash.Hash(parent)}}); err != nil {
		t.Fatal(err)
	}
	if len(s.chain.Mempool()) != 0 {
		t.Fatalf("mempool after the double spend: %v", s.chain.Mempool())
	}
	s.sync(f)
	s.check("dropped", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
	if pending, _ := s.shard.Reader().PendingTransactions(gigawallet.Hash{}, 10); len(pending) != 0 {
		t.Fatalf("pending after the drop: %v", pending)
	}
	s.checkEvents("dropped", detected, unconfirmed)
}

// A reorg to a shorter chain: the payment confirmed (N = 1) on the old chain is mined again in
// the single replacement block, one confirmation short: the credit is redeemed until the next
// block.
func TestFollowerSimReorgToAShorterChain(t *testing.T) {
	s := newSimChain(t, chainsim.Options{AuxPoW: true})
	address := simAddress(t, "shorter")
	s.shard.invoice("shop", address, uint64(payKoinu), 1)
	f := s.follower()
	s.sync(f)
	s.pay(address, payKoinu)
	s.chain.Mine(3)
	s.sync(f)
	s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 2,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	if _, err := s.chain.Reorg(3, 1, chainsim.ReorgOptions{}); err != nil {
		t.Fatal(err)
	}
	s.sync(f)
	s.check("one confirmation short", "shop", address, want{incoming: payText, confirmed: "0", balance: "0", accountIncoming: payText})
	s.chain.Mine(1)
	s.sync(f)
	s.check("confirmed again", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 2,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
}

// A reorg whose fork point is below the first block the shard observed (it started at the
// node's tip): the follower rewinds to a block it never saw and must not get stuck.
func TestFollowerSimReorgBelowTheStartBlock(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	address := simAddress(t, "below")
	s.shard.invoice("shop", address, uint64(payKoinu), 0)
	f := NewFollower(Config{Network: dogecoin.Regtest, StartHeight: simStartHeight}, s.client, 0, s.shard, nil)
	s.sync(f)
	s.pay(address, payKoinu)
	s.chain.Mine(1)
	s.sync(f)
	s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight + 1,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	if _, err := s.chain.Reorg(5, 6, chainsim.ReorgOptions{}); err != nil {
		t.Fatal(err)
	}
	s.sync(f)
	s.check("re-mined below", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: simStartHeight - 3,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
}

// A payment and a spend of its output in one block (the follower did not see them in the
// mempool): the filter must count the spend although the output it spends is only created by
// the block's earlier transaction. The same holds for one mempool read (the test above).
func TestFollowerSimPaymentAndItsSpendInOneBlock(t *testing.T) {
	s := newSimChain(t, chainsim.Options{AuxPoW: true})
	address := simAddress(t, "same-block")
	s.shard.invoice("shop", address, uint64(payKoinu), 5)
	f := s.follower()
	s.sync(f)
	payment := s.pay(address, payKoinu)
	spender := spendFromSimAddress(t, s.chain, "same-block", payment, 0, payKoinu)
	s.chain.Mine(1)
	s.sync(f)
	u, err := s.shard.Reader().UTXO(gigawallet.Outpoint{TxID: payment, Vout: 0})
	if err != nil || u == nil {
		t.Fatalf("the payment's output: %v %v", u, err)
	}
	if u.Height != simStartHeight+1 || u.Spender != spender || u.SpentHeight != simStartHeight+1 {
		t.Fatalf("the payment's output %+v: want mined and spent by %s at %d", u, spender, simStartHeight+1)
	}
}

// A rescan (RewindTo, setsyncheight) while the shard's cursor is still on a fork the node has
// left: the active chain's block at the rescan height is not an ancestor of the shard's
// cursor, and rewinding to it would keep the stale blocks between the fork and that height as
// if mined (a dropped payment credited for good). The rescan refuses until the follower has
// walked the reorg back; after a sync it works.
func TestFollowerSimRescanFromAStaleFork(t *testing.T) {
	s := newSimChain(t, chainsim.Options{})
	address := simAddress(t, "stale-rescan")
	s.shard.invoice("shop", address, uint64(payKoinu), 0)
	f := s.follower()
	s.sync(f)
	fork := s.chain.Height()
	s.pay(address, payKoinu)
	s.chain.Mine(5)
	s.sync(f)
	s.check("confirmed", "shop", address, want{incoming: payText, confirmed: payText, paidHeight: fork + 1,
		status: gigawallet.InvoicePaid, balance: payText, accountIncoming: "0"})
	if _, err := s.chain.Reorg(5, 5, chainsim.ReorgOptions{DropTransactions: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.RewindTo(s.ctx, fork+3); !errors.Is(err, ErrStaleCursor) {
		t.Fatalf("a rescan from a stale fork: %v, want ErrStaleCursor", err)
	}
	s.sync(f)
	s.check("dropped", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
	if err := f.RewindTo(s.ctx, fork+3); err != nil {
		t.Fatalf("a rescan once the reorg is walked back: %v", err)
	}
	s.sync(f)
	s.check("rescanned", "shop", address, want{incoming: "0", confirmed: "0", balance: "0", accountIncoming: "0"})
}
