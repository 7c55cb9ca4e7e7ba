package rpc_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/chainwatch/rpc/rpctest"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

func TestLitecoindFollowsBroadcastsAndReorgs(t *testing.T) {
	client := rpctest.StartLitecoind(t).Client
	ctx := testutil.Context(t, 2*time.Minute)

	rpctest.Call[map[string]any](t, client, "createwallet", "test")
	address := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	if !strings.HasPrefix(address, "m") && !strings.HasPrefix(address, "n") {
		t.Fatalf("legacy regtest address %q does not start with m or n (version byte 0x6f)", address)
	}
	mined := rpctest.Call[[]string](t, client, "generatetoaddress", 101, address)
	if len(mined) != 101 {
		t.Fatalf("generatetoaddress mined %d blocks, want 101", len(mined))
	}

	// The follower's view: count, hashes by height, headers and raw blocks agree.
	count, err := client.GetBlockCount(ctx)
	if err != nil || count != 101 {
		t.Fatalf("GetBlockCount = %d, %v; want 101", count, err)
	}
	best, err := client.GetBestBlockHash(ctx)
	if err != nil || best != mined[100] {
		t.Fatalf("GetBestBlockHash = %s, %v; want %s", best, err, mined[100])
	}
	info, err := client.GetBlockchainInfo(ctx)
	if err != nil || info.Blocks != 101 || info.BestBlockHash != best {
		t.Fatalf("GetBlockchainInfo = %+v, %v", info, err)
	}
	for _, height := range []int64{1, 50, 100, 101} {
		hash, err := client.GetBlockHash(ctx, height)
		if err != nil || hash != mined[height-1] {
			t.Fatalf("GetBlockHash(%d) = %s, %v; want %s", height, hash, err, mined[height-1])
		}
		header, err := client.GetBlockHeader(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		if header.Height != height || header.Confirmations != 102-height {
			t.Fatalf("header at %d: height %d, confirmations %d", height, header.Height, header.Confirmations)
		}
		if height < 101 && header.NextBlockHash != mined[height] {
			t.Fatalf("header at %d: next %q, want %s", height, header.NextBlockHash, mined[height])
		}
		if height > 1 && header.PreviousBlockHash != mined[height-2] {
			t.Fatalf("header at %d: previous %q, want %s", height, header.PreviousBlockHash, mined[height-2])
		}
		headerHex, err := client.GetBlockHeaderHex(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		var wireHeader wire.BlockHeader
		if err := wireHeader.Deserialize(hexReader(t, headerHex)); err != nil {
			t.Fatalf("header hex at %d: %v", height, err)
		}
		if wireHeader.BlockHash().String() != hash || wireHeader.Timestamp.Unix() != header.Time {
			t.Fatalf("header hex at %d hashes to %s (time %d), want %s (time %d)", height, wireHeader.BlockHash(), wireHeader.Timestamp.Unix(), hash, header.Time)
		}
		blockHex, err := client.GetBlockHex(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		var block wire.MsgBlock
		if err := block.Deserialize(hexReader(t, blockHex)); err != nil {
			t.Fatalf("block hex at %d: %v", height, err)
		}
		if block.BlockHash().String() != hash || len(block.Transactions) == 0 {
			t.Fatalf("block hex at %d: hash %s with %d transactions, want %s", height, block.BlockHash(), len(block.Transactions), hash)
		}
	}

	// Broadcast: a transaction the wallet funds and signs goes out through SendRawTransaction
	// and comes back through the getrawtransaction and decoderawtransaction calls.
	recipient := rpctest.Call[string](t, client, "getnewaddress", "", "legacy")
	unfunded := rpctest.Call[string](t, client, "createrawtransaction", []any{}, map[string]any{recipient: "0.5"})
	funded := rpctest.Call[struct{ Hex string }](t, client, "fundrawtransaction", unfunded)
	signed := rpctest.Call[struct {
		Hex      string
		Complete bool
	}](t, client, "signrawtransactionwithwallet", funded.Hex)
	if !signed.Complete {
		t.Fatal("the wallet did not sign the whole transaction")
	}
	var msgTx wire.MsgTx
	if err := msgTx.Deserialize(hexReader(t, signed.Hex)); err != nil {
		t.Fatal(err)
	}
	decoded, err := client.DecodeRawTransaction(ctx, signed.Hex)
	if err != nil || decoded.TxID != msgTx.TxHash().String() {
		t.Fatalf("DecodeRawTransaction = %s, %v; want %s", decoded.TxID, err, msgTx.TxHash())
	}
	txid, err := client.SendRawTransaction(ctx, signed.Hex)
	if err != nil || txid != msgTx.TxHash().String() {
		t.Fatalf("SendRawTransaction = %s, %v; want %s", txid, err, msgTx.TxHash())
	}
	transaction, err := client.GetRawTransaction(ctx, txid)
	if err != nil {
		t.Fatal(err)
	}
	if !paysTo(transaction, recipient, 5000_0000) || transaction.Hex != signed.Hex {
		t.Fatalf("GetRawTransaction(%s) = %+v; want 0.5 to %s", txid, transaction, recipient)
	}
	if rawHex, err := client.GetRawTransactionHex(ctx, txid); err != nil || rawHex != signed.Hex {
		t.Fatalf("GetRawTransactionHex = %.20s…, %v", rawHex, err)
	}
	// A wallet payment too, as a node operator's sendtoaddress would make.
	walletTxID := rpctest.Call[string](t, client, "sendtoaddress", recipient, "1.25")
	if walletTransaction, err := client.GetRawTransaction(ctx, walletTxID); err != nil || !paysTo(walletTransaction, recipient, 1_2500_0000) {
		t.Fatalf("GetRawTransaction(%s) = %+v, %v; want 1.25 to %s", walletTxID, walletTransaction, err, recipient)
	}
	// Both wait in the mempool until a block takes them.
	mempool, err := client.GetRawMempool(ctx)
	if err != nil || !slices.Contains(mempool, txid) || !slices.Contains(mempool, walletTxID) {
		t.Fatalf("GetRawMempool = %v, %v; want %s and %s", mempool, err, txid, walletTxID)
	}
	tip := rpctest.Call[[]string](t, client, "generatetoaddress", 1, address)[0]
	if mempool, err := client.GetRawMempool(ctx); err != nil || len(mempool) != 0 {
		t.Fatalf("GetRawMempool after a block = %v, %v; want empty", mempool, err)
	}

	// Reorg: an invalidated tip's header reports -1 confirmations and the chain steps back;
	// reconsidering it restores it.
	rpctest.Call[any](t, client, "invalidateblock", tip)
	header, err := client.GetBlockHeader(ctx, tip)
	if err != nil || header.Confirmations != -1 {
		t.Fatalf("invalidated tip's header = %+v, %v; want confirmations -1", header, err)
	}
	if count, err := client.GetBlockCount(ctx); err != nil || count != 101 {
		t.Fatalf("GetBlockCount after invalidateblock = %d, %v; want 101", count, err)
	}
	if parent, err := client.GetBlockHeader(ctx, header.PreviousBlockHash); err != nil || parent.Confirmations != 1 || parent.NextBlockHash != "" {
		t.Fatalf("new tip's header = %+v, %v; want the tip with no next", parent, err)
	}
	rpctest.Call[any](t, client, "reconsiderblock", tip)
	if header, err := client.GetBlockHeader(ctx, tip); err != nil || header.Confirmations != 1 || header.Height != 102 {
		t.Fatalf("reconsidered tip's header = %+v, %v; want confirmations 1 at 102", header, err)
	}

	// litecoind has no estimatefee: the typed error lets the caller fall back.
	if _, err := client.EstimateFee(ctx, 6); !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Fatalf("EstimateFee = %v, want ErrMethodNotFound", err)
	}
	// A node error keeps its code.
	var nodeError *rpc.Error
	if _, err := client.GetBlockHash(ctx, 1000); !errors.As(err, &nodeError) || nodeError.Code != -8 {
		t.Fatalf("GetBlockHash(1000) = %v, want node error -8 (out of range)", err)
	}
}

func TestLitecoindRefusesAWrongPassword(t *testing.T) {
	node := rpctest.StartLitecoind(t)
	wrong, err := rpc.New(rpc.Config{URL: node.URL, User: rpctest.LitecoindUser, Password: "wrong-" + rpctest.LitecoindPassword})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetBlockCount(testutil.Context(t, time.Minute))
	var statusError *rpc.HTTPStatusError
	if !errors.As(err, &statusError) || statusError.StatusCode != 401 || strings.Contains(err.Error(), rpctest.LitecoindPassword) {
		t.Fatalf("err = %v, want HTTP 401 without the password", err)
	}
}

func hexReader(t *testing.T, text string) *bytes.Reader {
	t.Helper()
	raw, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(raw)
}

// paysTo reports whether transaction has an output of exactly amount to address.
func paysTo(transaction rpc.Transaction, address string, amount rpc.Amount) bool {
	for _, output := range transaction.Vout {
		if output.Value != amount {
			continue
		}
		if output.ScriptPubKey.Address == address || (len(output.ScriptPubKey.Addresses) == 1 && output.ScriptPubKey.Addresses[0] == address) {
			return true
		}
	}
	return false
}
