package payout_test

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/chainwatch/rpc/rpctest"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// TestLitecoindAcceptsSignedPayouts: coins mined to an address of our keychain are paid out
// by NewPlan and Sign; a real node (litecoind in regtest, whose legacy P2PKH addresses share
// Dogecoin regtest's version byte) accepts the transaction, mines it, and the payee's wallet
// sees it confirmed. A second payout, in deduct mode, spends the first one's change.
func TestLitecoindAcceptsSignedPayouts(t *testing.T) {
	node := rpctest.StartLitecoind(t)
	client := node.Client
	ctx := testutil.Context(t, 2*time.Minute)
	f := newFixture(t, dogecoin.Regtest)

	// 102 blocks to our invoice address 0: the coinbases at heights 1 and 2 are mature for a
	// transaction in block 103 (coinbase maturity 100). Litecoin regtest pays 50 coins a block.
	funding := address(t, f.payer, dogecoin.External, 0)
	mined := rpctest.Call[[]string](t, client, "generatetoaddress", 102, funding)
	var utxos []payout.UTXO
	for height := int64(2); height >= 1; height-- { // newest first: NewPlan orders them
		coinbase := blockTransactions(t, client, mined[height-1])[0]
		for _, output := range dogecoin.P2PKHOutputs(coinbase, dogecoin.Regtest) {
			if output.Address == funding {
				utxos = append(utxos, payout.UTXO{
					TxID: coinbase.TxHash().String(), Vout: output.Index, Koinu: uint64(output.ValueKoinu),
					Address: funding, Branch: dogecoin.External, Index: 0, Height: height,
				})
			}
		}
	}
	if len(utxos) != 2 || utxos[0].Koinu != 50*doge {
		t.Fatalf("coinbase outputs to %s: %+v, want two of 50 coins", funding, utxos)
	}

	rpctest.Call[map[string]any](t, client, "createwallet", "payee")
	payee := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	request := payout.Request{Outputs: []payout.Output{{Address: payee, Koinu: 60 * doge}}, Network: dogecoin.Regtest}
	plan, err := payout.NewPlan(request, utxos)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Inputs) != 2 || plan.Inputs[0].Height != 1 || plan.FeeKoinu != payout.FeeMinKoinu || plan.ChangeKoinu != 40*doge-payout.FeeMinKoinu {
		t.Fatalf("plan: %+v; want both coinbases, the oldest first, fee 0.01 and change 39.99", plan)
	}
	changeAddress := address(t, f.payer, dogecoin.Change, 0)
	signed, err := payout.Sign(plan, changeAddress, f.keys(), dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	broadcastAndMine(t, client, signed, funding)
	// The payee's wallet holds the payment, confirmed.
	received := rpctest.Call[rpc.Amount](t, client, "getreceivedbyaddress", payee, 1)
	if received != rpc.Amount(60*doge) {
		t.Fatalf("payee received %d, want 60 coins", received)
	}
	walletTransaction := rpctest.Call[struct{ Confirmations int64 }](t, client, "gettransaction", signed.TxID)
	if walletTransaction.Confirmations != 1 {
		t.Fatalf("payout %s has %d confirmations, want 1", signed.TxID, walletTransaction.Confirmations)
	}
	// The node decodes the same transaction we built.
	decoded, err := client.DecodeRawTransaction(ctx, hex.EncodeToString(signed.Raw))
	if err != nil || decoded.TxID != signed.TxID || len(decoded.Vout) != 2 {
		t.Fatalf("decoderawtransaction = %+v, %v", decoded, err)
	}

	// Second payout from the change (our change key 1/0), the fee deducted 25/75 from two
	// outputs, its own change to change address 1.
	change := payout.UTXO{TxID: signed.TxID, Vout: 1, Koinu: plan.ChangeKoinu, Address: changeAddress,
		Branch: dogecoin.Change, Index: 0, Height: 103}
	other := f.payTo(t, 0)
	deductRequest := payout.Request{
		Outputs: []payout.Output{
			{Address: payee, Koinu: 10 * doge, DeductFeeShare: 25 * payout.FeeSharePercent},
			{Address: other, Koinu: 5 * doge, DeductFeeShare: 75 * payout.FeeSharePercent},
		},
		FeeRateKoinuPerKB: 4 * payout.KoinuPerDoge / 1000, // 0.004 coins/kB: below the floor
		Network:           dogecoin.Regtest,
	}
	deductPlan, err := payout.NewPlan(deductRequest, []payout.UTXO{change})
	if err != nil {
		t.Fatal(err)
	}
	if deductPlan.Outputs[0].DeductedFeeKoinu != payout.FeeMinKoinu/4 || deductPlan.PaidKoinu != 15*doge-payout.FeeMinKoinu {
		t.Fatalf("deduct plan: %+v", deductPlan)
	}
	secondChange := address(t, f.payer, dogecoin.Change, 1)
	deductSigned, err := payout.Sign(deductPlan, secondChange, f.keys(), dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	broadcastAndMine(t, client, deductSigned, funding)
	outputs := dogecoin.P2PKHOutputs(deductSigned.Tx, dogecoin.Regtest)
	want := []dogecoin.P2PKHOutput{
		{Index: 0, Address: payee, ValueKoinu: int64(10*doge - payout.FeeMinKoinu/4)},
		{Index: 1, Address: other, ValueKoinu: int64(5*doge - payout.FeeMinKoinu*3/4)},
		{Index: 2, Address: secondChange, ValueKoinu: int64(change.Koinu - 15*doge)},
	}
	if !slices.Equal(outputs, want) {
		t.Fatalf("second payout's outputs %+v, want %+v", outputs, want)
	}
	if received := rpctest.Call[rpc.Amount](t, client, "getreceivedbyaddress", payee, 1); received != rpc.Amount(70*doge-payout.FeeMinKoinu/4) {
		t.Fatalf("payee received %d in all, want 69.9975 coins", received)
	}
}

// broadcastAndMine sends signed, checks the node took it into its mempool under our txid,
// mines a block to miner and checks the block holds it.
func broadcastAndMine(t *testing.T, client *rpc.Client, signed *payout.Signed, miner string) {
	t.Helper()
	ctx := testutil.Context(t, time.Minute)
	txid, err := client.SendRawTransaction(ctx, hex.EncodeToString(signed.Raw))
	if err != nil {
		t.Fatalf("sendrawtransaction: %v", err)
	}
	if txid != signed.TxID {
		t.Fatalf("node's txid %s, ours %s", txid, signed.TxID)
	}
	if mempool := rpctest.Call[[]string](t, client, "getrawmempool"); !slices.Contains(mempool, txid) {
		t.Fatalf("mempool %v lacks %s", mempool, txid)
	}
	block := rpctest.Call[[]string](t, client, "generatetoaddress", 1, miner)[0]
	if !slices.ContainsFunc(blockTransactions(t, client, block), func(transaction *wire.MsgTx) bool {
		return transaction.TxHash().String() == txid
	}) {
		t.Fatalf("block %s does not hold %s", block, txid)
	}
	if mempool := rpctest.Call[[]string](t, client, "getrawmempool"); len(mempool) != 0 {
		t.Fatalf("mempool after mining: %v", mempool)
	}
}

// blockTransactions returns the transactions of the block hash.
func blockTransactions(t *testing.T, client *rpc.Client, hash string) []*wire.MsgTx {
	t.Helper()
	blockHex, err := client.GetBlockHex(testutil.Context(t, time.Minute), hash)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(blockHex)
	if err != nil {
		t.Fatal(err)
	}
	var block wire.MsgBlock
	if err := block.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatalf("block %s: %v", hash, err)
	}
	return block.Transactions
}
