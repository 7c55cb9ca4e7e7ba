package chainsim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/chainsim"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

const (
	testUser     = "follower"
	testPassword = "chainsim-test-password"
)

// newChain returns a chain, a server for it and a client of that server.
func newChain(t *testing.T, options chainsim.Options) (*chainsim.Chain, *chainsim.Server, *rpc.Client) {
	t.Helper()
	chain, err := chainsim.New(options)
	if err != nil {
		t.Fatal(err)
	}
	server := chainsim.NewServer(chain, testUser, testPassword)
	httpServer := httptest.NewServer(server)
	t.Cleanup(httpServer.Close)
	client, err := rpc.New(rpc.Config{URL: httpServer.URL, User: testUser, Password: testPassword, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return chain, server, client
}

// testKey is a key the test owns, to receive coins and spend them as a payout would.
type testKey struct {
	private *btcec.PrivateKey
	script  []byte
	address string
}

func newTestKey(t *testing.T, seed byte) testKey {
	t.Helper()
	private, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{seed}, 32))
	address, err := dogecoin.P2PKHAddress(private.PubKey().SerializeCompressed(), dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	script, err := chainsim.AddressScript(address)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{private: private, script: script, address: address}
}

// spend signs a transaction spending outpoint (paying key) to outputs.
func (k testKey) spend(t *testing.T, outpoints []wire.OutPoint, outputs ...*wire.TxOut) *wire.MsgTx {
	t.Helper()
	transaction := wire.NewMsgTx(1)
	for i := range outpoints {
		transaction.AddTxIn(wire.NewTxIn(&outpoints[i], nil, nil))
	}
	for _, output := range outputs {
		transaction.AddTxOut(output)
	}
	for index := range transaction.TxIn {
		script, err := txscript.SignatureScript(transaction, index, k.script, txscript.SigHashAll, k.private, true)
		if err != nil {
			t.Fatal(err)
		}
		transaction.TxIn[index].SignatureScript = script
	}
	return transaction
}

func rawHex(t *testing.T, transaction *wire.MsgTx) string {
	t.Helper()
	var buffer bytes.Buffer
	if err := transaction.SerializeNoWitness(&buffer); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buffer.Bytes())
}

// outputTo finds the output of txid that pays script.
func outputTo(t *testing.T, chain *chainsim.Chain, txid chainhash.Hash, script []byte) (wire.OutPoint, int64) {
	t.Helper()
	raw, err := chain.RawTransaction(txid)
	if err != nil {
		t.Fatal(err)
	}
	var transaction wire.MsgTx
	if err := transaction.Deserialize(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	for index, output := range transaction.TxOut {
		if bytes.Equal(output.PkScript, script) {
			return wire.OutPoint{Hash: txid, Index: uint32(index)}, output.Value
		}
	}
	t.Fatalf("%s pays nothing to the script", txid)
	return wire.OutPoint{}, 0
}

func nodeErrorCode(err error) int {
	var nodeError *rpc.Error
	if errors.As(err, &nodeError) {
		return nodeError.Code
	}
	return 0
}

func TestGenesisIsDogecoinRegtestsAndTheClientReadsTheChain(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	info, err := client.GetBlockchainInfo(ctx)
	if err != nil || info.Chain != "regtest" || info.Blocks != 0 || info.BestBlockHash != chainsim.RegtestGenesisHash {
		t.Fatalf("GetBlockchainInfo = %+v, %v", info, err)
	}
	genesis, err := client.GetBlockHash(ctx, 0)
	if err != nil || genesis != chainsim.RegtestGenesisHash {
		t.Fatalf("GetBlockHash(0) = %s, %v", genesis, err)
	}
	hashes := chain.Mine(3)
	if count, err := client.GetBlockCount(ctx); err != nil || count != 3 {
		t.Fatalf("GetBlockCount = %d, %v", count, err)
	}
	for height, hash := range append([]chainhash.Hash{chain.GenesisHash()}, hashes...) {
		header, err := client.GetBlockHeader(ctx, hash.String())
		if err != nil || header.Height != int64(height) || header.Confirmations != int64(4-height) {
			t.Fatalf("header %d = %+v, %v", height, header, err)
		}
		if height < 3 && header.NextBlockHash != hashes[height].String() {
			t.Fatalf("header %d next %q", height, header.NextBlockHash)
		}
		if height > 0 && header.PreviousBlockHash != append([]chainhash.Hash{chain.GenesisHash()}, hashes...)[height-1].String() {
			t.Fatalf("header %d previous %q", height, header.PreviousBlockHash)
		}
		headerHex, err := client.GetBlockHeaderHex(ctx, hash.String())
		if err != nil || len(headerHex) != 160 {
			t.Fatalf("header hex %d = %q, %v", height, headerHex, err)
		}
		blockHex, err := client.GetBlockHex(ctx, hash.String())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := hex.DecodeString(blockHex)
		block, err := dogecoin.ParseBlock(raw)
		if err != nil || block.Hash != hash || !bytes.HasPrefix(raw, mustDecode(t, headerHex)) {
			t.Fatalf("block %d: %v (hash %v)", height, err, block)
		}
	}
	if best, err := client.GetBestBlockHash(ctx); err != nil || best != hashes[2].String() {
		t.Fatalf("GetBestBlockHash = %s, %v", best, err)
	}
	if _, err := client.GetBlockHash(ctx, 4); nodeErrorCode(err) != -8 {
		t.Fatalf("GetBlockHash(4) = %v, want -8", err)
	}
	if _, err := client.GetBlockHeader(ctx, chainsim.RegtestGenesisHash[:63]+"0"); nodeErrorCode(err) != -5 {
		t.Fatalf("unknown header: %v, want -5", err)
	}
	if err := client.Call(ctx, "generate", []any{1}, nil); !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Fatalf("unknown method: %v", err)
	}
}

func mustDecode(t *testing.T, text string) []byte {
	t.Helper()
	raw, err := hex.DecodeString(text)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAWrongPasswordIs401(t *testing.T) {
	chain, _ := chainsim.New(chainsim.Options{})
	httpServer := httptest.NewServer(chainsim.NewServer(chain, testUser, testPassword))
	t.Cleanup(httpServer.Close)
	client, _ := rpc.New(rpc.Config{URL: httpServer.URL, User: testUser, Password: "wrong"})
	_, err := client.GetBlockCount(context.Background())
	var status *rpc.HTTPStatusError
	if !errors.As(err, &status) || status.StatusCode != 401 {
		t.Fatalf("err = %v, want 401", err)
	}
}

func TestFaucetPaymentsConfirmAndTheClientDecodesThem(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	if _, err := chain.Pay(newTestKey(t, 1).address, 1); !errors.Is(err, chainsim.ErrInsufficientFunds) {
		t.Fatalf("Pay from an empty faucet: %v", err)
	}
	chain.Mine(1)
	key := newTestKey(t, 1)
	// GigaWallet encodes addresses with mainnet's byte: the same script, paid alike.
	mainnetAddress, _ := dogecoin.P2PKHAddress(key.private.PubKey().SerializeCompressed(), dogecoin.Mainnet)
	txid, err := chain.PayMany([]chainsim.Output{{Address: key.address, ValueKoinu: 12_5000_0000}, {Address: mainnetAddress, ValueKoinu: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if mempool, err := client.GetRawMempool(ctx); err != nil || !slices.Equal(mempool, []string{txid.String()}) {
		t.Fatalf("GetRawMempool = %v, %v", mempool, err)
	}
	transaction, err := client.GetRawTransaction(ctx, txid.String())
	if err != nil || transaction.Confirmations != 0 || transaction.Vout[0].Value != 12_5000_0000 ||
		transaction.Vout[0].ScriptPubKey.Addresses[0] != key.address || transaction.Vout[1].ScriptPubKey.Addresses[0] != key.address {
		t.Fatalf("GetRawTransaction = %+v, %v", transaction, err)
	}
	decoded, err := client.DecodeRawTransaction(ctx, transaction.Hex)
	if err != nil || decoded.TxID != txid.String() || decoded.Hex != "" {
		t.Fatalf("DecodeRawTransaction = %+v, %v", decoded, err)
	}
	block := chain.Mine(1)[0]
	transaction, err = client.GetRawTransaction(ctx, txid.String())
	if err != nil || transaction.Confirmations != 1 || transaction.BlockHash != block.String() {
		t.Fatalf("mined: %+v, %v", transaction, err)
	}
	if mempool, err := client.GetRawMempool(ctx); err != nil || len(mempool) != 0 {
		t.Fatalf("GetRawMempool after mining = %v, %v", mempool, err)
	}
	raw, _ := chain.RawBlock(block)
	parsed, err := dogecoin.ParseBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	outputs := dogecoin.P2PKHOutputs(parsed.Transactions[1], dogecoin.Regtest)
	if len(parsed.Transactions) != 2 || outputs[0].Address != key.address || outputs[0].ValueKoinu != 12_5000_0000 {
		t.Fatalf("block holds %d transactions, outputs %+v", len(parsed.Transactions), outputs)
	}
	// The coinbase took the fee.
	if parsed.Transactions[0].TxOut[0].Value != chainsim.DefaultBlockRewardKoinu+chainsim.DefaultFaucetFeeKoinu {
		t.Fatalf("coinbase pays %d", parsed.Transactions[0].TxOut[0].Value)
	}
}

func TestSendRawTransactionVerifiesInputsAmountsAndScripts(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	chain.Mine(1)
	key, other := newTestKey(t, 1), newTestKey(t, 2)
	funding, err := chain.Pay(key.address, 100*chainsim.KoinuPerCoin)
	if err != nil {
		t.Fatal(err)
	}
	outpoint, value := outputTo(t, chain, funding, key.script)

	// Signed by the wrong key: the script fails.
	forged := other.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-chainsim.KoinuPerCoin, other.script))
	if _, err := client.SendRawTransaction(ctx, rawHex(t, forged)); nodeErrorCode(err) != -26 {
		t.Fatalf("wrong key: %v, want -26", err)
	}
	// Outputs above inputs.
	greedy := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value+1, other.script))
	if _, err := client.SendRawTransaction(ctx, rawHex(t, greedy)); nodeErrorCode(err) != -26 {
		t.Fatalf("outputs above inputs: %v, want -26", err)
	}
	// A signature over other outputs than the ones sent.
	tampered := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-chainsim.KoinuPerCoin, other.script))
	tampered.TxOut[0].Value--
	if _, err := client.SendRawTransaction(ctx, rawHex(t, tampered)); nodeErrorCode(err) != -26 {
		t.Fatalf("tampered: %v, want -26", err)
	}
	// An input that does not exist.
	missing := key.spend(t, []wire.OutPoint{{Hash: chainhash.Hash{1}, Index: 0}}, wire.NewTxOut(1, other.script))
	if _, err := client.SendRawTransaction(ctx, rawHex(t, missing)); nodeErrorCode(err) != -25 {
		t.Fatalf("missing input: %v, want -25", err)
	}
	if _, err := client.SendRawTransaction(ctx, "00"); nodeErrorCode(err) != -22 {
		t.Fatalf("garbage: %v, want -22", err)
	}

	// A good payout, spending an unconfirmed output: accepted, and again (as Core does).
	payout := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(60*chainsim.KoinuPerCoin, other.script), wire.NewTxOut(value-61*chainsim.KoinuPerCoin, key.script))
	for range 2 {
		txid, err := client.SendRawTransaction(ctx, rawHex(t, payout))
		if err != nil || txid != payout.TxHash().String() {
			t.Fatalf("payout: %s, %v", txid, err)
		}
	}
	// Its double spend conflicts.
	conflict := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-2*chainsim.KoinuPerCoin, key.script))
	if _, err := client.SendRawTransaction(ctx, rawHex(t, conflict)); nodeErrorCode(err) != -26 {
		t.Fatalf("conflict: %v, want -26", err)
	}
	chain.Mine(1)
	if chain.Confirmations(payout.TxHash()) != 1 || chain.Confirmations(funding) != 1 {
		t.Fatalf("confirmations %d and %d", chain.Confirmations(payout.TxHash()), chain.Confirmations(funding))
	}
	if _, err := client.SendRawTransaction(ctx, rawHex(t, payout)); nodeErrorCode(err) != -27 {
		t.Fatalf("a mined transaction again: %v, want -27", err)
	}
	if _, err := client.SendRawTransaction(ctx, rawHex(t, conflict)); nodeErrorCode(err) != -25 {
		t.Fatalf("spending a spent output: %v, want -25", err)
	}
}

func TestCoinbaseMaturityHoldsTheFaucetBack(t *testing.T) {
	chain, err := chainsim.New(chainsim.Options{CoinbaseMaturityBlocks: 3})
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(2)
	if _, err := chain.Pay(newTestKey(t, 1).address, 1); !errors.Is(err, chainsim.ErrInsufficientFunds) {
		t.Fatalf("Pay with immature coinbases: %v", err)
	}
	chain.Mine(1)
	if _, err := chain.Pay(newTestKey(t, 1).address, 1); err != nil {
		t.Fatalf("Pay with a mature coinbase: %v", err)
	}
}

func TestRejectNextAndALostAnswer(t *testing.T) {
	chain, server, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	chain.Mine(1)
	key, other := newTestKey(t, 1), newTestKey(t, 2)
	funding, _ := chain.Pay(key.address, 10*chainsim.KoinuPerCoin)
	outpoint, value := outputTo(t, chain, funding, key.script)
	payout := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-chainsim.KoinuPerCoin, other.script))

	chain.RejectNext(-26, "66: min relay fee not met")
	_, err := client.SendRawTransaction(ctx, rawHex(t, payout))
	var nodeError *rpc.Error
	if !errors.As(err, &nodeError) || nodeError.Code != -26 || nodeError.Message != "66: min relay fee not met" {
		t.Fatalf("rejected send: %v", err)
	}
	if chain.InMempool(payout.TxHash()) {
		t.Fatal("a rejected transaction is in the mempool")
	}
	server.DropNextSendAnswer()
	if _, err := client.SendRawTransaction(ctx, rawHex(t, payout)); !errors.Is(err, rpc.ErrOutcomeUnknown) {
		t.Fatalf("lost answer: %v, want ErrOutcomeUnknown", err)
	}
	if !chain.InMempool(payout.TxHash()) {
		t.Fatal("the node did not keep the transaction whose answer was lost")
	}
	if txid, err := client.SendRawTransaction(ctx, rawHex(t, payout)); err != nil || txid != payout.TxHash().String() {
		t.Fatalf("resend: %s, %v", txid, err)
	}
}

func TestEstimateFee(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	if fee, err := client.EstimateFee(ctx, 6); err != nil || int64(fee) != chainsim.DefaultFeeRateKoinuPerKB {
		t.Fatalf("EstimateFee = %d, %v", fee, err)
	}
	chain.SetFeeRate(123_4567_8901)
	if fee, err := client.EstimateFee(ctx, 6); err != nil || fee != 123_4567_8901 {
		t.Fatalf("EstimateFee = %d, %v", fee, err)
	}
	chain.SetFeeRate(-1)
	if fee, err := client.EstimateFee(ctx, 6); err != nil || fee >= 0 {
		t.Fatalf("EstimateFee without an estimate = %d, %v; want negative", fee, err)
	}
}

// checkAuxPoW checks a block's proof as Dogecoin Core's CAuxPow::check does (without the
// parent's proof of work), from ParseBlock's decoding alone.
func checkAuxPoW(t *testing.T, block *dogecoin.Block) {
	t.Helper()
	proof := block.AuxPoW
	if proof == nil || !dogecoin.HasAuxPoW(block.Header.Version) || block.Header.Version>>16 != 0x62 {
		t.Fatalf("block %s: version %#x, proof %v", block.Hash, block.Header.Version, proof)
	}
	if proof.CoinbaseBranch.Index != 0 {
		t.Fatal("AuxPow is not a generate")
	}
	if proof.ParentHeader.Version>>16 == 0x62 {
		t.Fatal("Aux POW parent has our chain ID")
	}
	branchRoot := func(hash chainhash.Hash, branch dogecoin.MerkleBranch) chainhash.Hash {
		index := branch.Index
		for _, sibling := range branch.Hashes {
			if index&1 == 1 {
				hash = chainhash.DoubleHashH(append(sibling[:], hash[:]...))
			} else {
				hash = chainhash.DoubleHashH(append(hash[:], sibling[:]...))
			}
			index >>= 1
		}
		return hash
	}
	root := branchRoot(block.Hash, proof.ChainBranch)
	reversed := slices.Clone(root[:])
	slices.Reverse(reversed)
	if branchRoot(proof.CoinbaseTransaction.TxHash(), proof.CoinbaseBranch) != proof.ParentHeader.MerkleRoot {
		t.Fatal("Aux POW merkle root incorrect")
	}
	script := proof.CoinbaseTransaction.TxIn[0].SignatureScript
	magic := []byte{0xfa, 0xbe, 'm', 'm'}
	head, at := bytes.Index(script, magic), bytes.Index(script, reversed)
	if at < 0 || head < 0 || head+len(magic) != at || bytes.Count(script, magic) != 1 {
		t.Fatalf("commitment: magic at %d, root at %d in %x", head, at, script)
	}
	rest := script[at+len(reversed):]
	if len(rest) < 8 {
		t.Fatal("Aux POW missing chain merkle tree size and nonce in parent coinbase")
	}
	size, nonce := binary.LittleEndian.Uint32(rest), binary.LittleEndian.Uint32(rest[4:])
	if size != 1<<len(proof.ChainBranch.Hashes) {
		t.Fatalf("Aux POW merkle branch size %d does not match parent coinbase", size)
	}
	random := nonce*1103515245 + 12345
	random = (random+0x62)*1103515245 + 12345
	if uint32(proof.ChainBranch.Index) != random%(1<<len(proof.ChainBranch.Hashes)) {
		t.Fatal("Aux POW wrong index")
	}
}

func TestAuxPoWBlocksCarryAStructurallyValidProof(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{AuxPoW: true})
	ctx := context.Background()
	chain.Mine(1)
	if _, err := chain.Pay(newTestKey(t, 1).address, chainsim.KoinuPerCoin); err != nil {
		t.Fatal(err)
	}
	hashes := chain.Mine(2)
	hashes = append(hashes, chain.MineWith(1, chainsim.MineOptions{AuxPoW: chainsim.AuxPoWOff})...)
	for i, hash := range hashes {
		blockHex, err := client.GetBlockHex(ctx, hash.String())
		if err != nil {
			t.Fatal(err)
		}
		block, err := dogecoin.ParseBlock(mustDecode(t, blockHex))
		if err != nil {
			t.Fatal(err)
		}
		headerHex, err := client.GetBlockHeaderHex(ctx, hash.String())
		if err != nil || !bytes.HasPrefix(mustDecode(t, blockHex), mustDecode(t, headerHex)) {
			t.Fatalf("header hex %v", err)
		}
		if i == 2 {
			if block.AuxPoW != nil || len(headerHex) != 160 {
				t.Fatalf("a plain block has a proof")
			}
			continue
		}
		checkAuxPoW(t, block)
		if len(headerHex) <= 160 {
			t.Fatalf("an AuxPoW block's header hex is %d digits: Dogecoin Core answers it with the proof", len(headerHex))
		}
	}
}

func TestReorgLeavesStaleBlocksAndReturnsTransactions(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	chain.Mine(2)
	key := newTestKey(t, 1)
	paid, _ := chain.Pay(key.address, 5*chainsim.KoinuPerCoin)
	old := chain.Mine(2)
	replacement, err := chain.Reorg(2, 3, chainsim.ReorgOptions{EmptyBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, hash := range old {
		header, err := client.GetBlockHeader(ctx, hash.String())
		if err != nil || header.Confirmations != -1 || header.NextBlockHash != "" {
			t.Fatalf("stale header %+v, %v", header, err)
		}
	}
	fork, _ := chain.BlockHash(2)
	if header, _ := client.GetBlockHeader(ctx, fork.String()); header.NextBlockHash != replacement[0].String() {
		t.Fatalf("fork's next %q, want %s", header.NextBlockHash, replacement[0])
	}
	if count, _ := client.GetBlockCount(ctx); count != 5 {
		t.Fatalf("count %d", count)
	}
	if chain.Confirmations(paid) != 0 {
		t.Fatalf("the reorged payment has %d confirmations, want 0 (back in the mempool)", chain.Confirmations(paid))
	}
	chain.Mine(1)
	if chain.Confirmations(paid) != 1 {
		t.Fatal("the returned payment did not confirm again")
	}

	// Dropped instead.
	again, _ := chain.Pay(key.address, 6*chainsim.KoinuPerCoin)
	chain.Mine(1)
	if _, err := chain.Reorg(1, 1, chainsim.ReorgOptions{DropTransactions: true}); err != nil {
		t.Fatal(err)
	}
	if chain.Confirmations(again) != -1 {
		t.Fatalf("a dropped transaction has %d confirmations", chain.Confirmations(again))
	}
}

func TestReorgWithADoubleSpendInvalidatesThePayment(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{AuxPoW: true})
	ctx := context.Background()
	chain.Mine(1)
	key := newTestKey(t, 1)
	paid, _ := chain.Pay(key.address, 5*chainsim.KoinuPerCoin)
	// A child of the payment goes with it.
	outpoint, value := outputTo(t, chain, paid, key.script)
	child := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-chainsim.KoinuPerCoin, key.script))
	if _, err := client.SendRawTransaction(ctx, rawHex(t, child)); err != nil {
		t.Fatal(err)
	}
	chain.Mine(1)
	replacement, err := chain.Reorg(1, 2, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{paid}})
	if err != nil {
		t.Fatal(err)
	}
	if chain.Confirmations(paid) != -1 || chain.Confirmations(child.TxHash()) != -1 {
		t.Fatalf("double-spent payment %d, child %d confirmations; want -1", chain.Confirmations(paid), chain.Confirmations(child.TxHash()))
	}
	raw, _ := chain.RawBlock(replacement[0])
	block, err := dogecoin.ParseBlock(raw)
	if err != nil || len(block.Transactions) != 2 {
		t.Fatalf("replacement block: %v, %d transactions", err, len(block.Transactions))
	}
	checkAuxPoW(t, block)
	if dogecoin.P2PKHOutputs(block.Transactions[1], dogecoin.Regtest)[0].Address != chain.FaucetAddress() {
		t.Fatal("the conflict does not pay the faucet")
	}
	if mempool, _ := client.GetRawMempool(ctx); len(mempool) != 0 {
		t.Fatalf("mempool %v", mempool)
	}
	if _, err := chain.Reorg(1, 1, chainsim.ReorgOptions{DoubleSpend: []chainhash.Hash{{9}}}); !errors.Is(err, chainsim.ErrUnknownTransaction) {
		t.Fatalf("double spend of an unknown txid: %v", err)
	}
}

func TestInvalidateAndReconsiderBlock(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	hashes := chain.Mine(3)
	if err := chain.InvalidateBlock(hashes[1]); err != nil {
		t.Fatal(err)
	}
	if chain.Height() != 1 || chain.TipHash() != hashes[0] {
		t.Fatalf("after invalidateblock: height %d", chain.Height())
	}
	if header, _ := client.GetBlockHeader(ctx, hashes[2].String()); header.Confirmations != -1 {
		t.Fatalf("invalidated descendant %+v", header)
	}
	if err := chain.ReconsiderBlock(hashes[1]); err != nil {
		t.Fatal(err)
	}
	if chain.TipHash() != hashes[2] {
		t.Fatal("reconsiderblock did not restore the chain")
	}
}

func TestChainsAreDeterministic(t *testing.T) {
	run := func() chainhash.Hash {
		chain, _ := chainsim.New(chainsim.Options{AuxPoW: true})
		chain.Mine(2)
		for i := range 5 {
			if _, err := chain.Pay(newTestKey(t, byte(i+1)).address, int64(i+1)*chainsim.KoinuPerCoin); err != nil {
				t.Fatal(err)
			}
		}
		chain.Mine(1)
		if _, err := chain.Reorg(1, 2, chainsim.ReorgOptions{}); err != nil {
			t.Fatal(err)
		}
		return chain.TipHash()
	}
	if first, second := run(), run(); first != second {
		t.Fatalf("tips %s and %s", first, second)
	}
}

// payMany makes count faucet payments to distinct addresses.
func payMany(tb testing.TB, chain *chainsim.Chain, count int) {
	tb.Helper()
	for i := range count {
		private, _ := btcec.PrivKeyFromBytes(binary.BigEndian.AppendUint64(make([]byte, 24), uint64(i+1)))
		address, _ := dogecoin.P2PKHAddress(private.PubKey().SerializeCompressed(), dogecoin.Regtest)
		if _, err := chain.Pay(address, chainsim.KoinuPerCoin); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestABlockOfTwoThousandPayments(t *testing.T) {
	chain, _ := chainsim.New(chainsim.Options{})
	chain.Mine(1)
	payMany(t, chain, 2000)
	hash := chain.Mine(1)[0]
	raw, _ := chain.RawBlock(hash)
	block, err := dogecoin.ParseBlock(raw)
	if err != nil || len(block.Transactions) != 2001 {
		t.Fatalf("block: %v, %d transactions", err, len(block.Transactions))
	}
	if len(chain.Mempool()) != 0 {
		t.Fatal("mempool not empty")
	}
}

func TestBlockTransactionsMaxSplitsTheMempool(t *testing.T) {
	chain, _ := chainsim.New(chainsim.Options{BlockTransactionsMax: 3})
	chain.Mine(1)
	payMany(t, chain, 7)
	hashes := chain.Mine(3)
	for i, want := range []int{4, 4, 2} {
		raw, _ := chain.RawBlock(hashes[i])
		block, err := dogecoin.ParseBlock(raw)
		if err != nil || len(block.Transactions) != want {
			t.Fatalf("block %d: %v, %d transactions, want %d", i, err, len(block.Transactions), want)
		}
	}
}

func BenchmarkTwoThousandPaymentBlock(b *testing.B) {
	chain, _ := chainsim.New(chainsim.Options{})
	chain.Mine(1)
	for b.Loop() {
		payMany(b, chain, 2000)
		chain.Mine(1)
	}
}

// A payout as GigaLedger signs one: the key of an invoice address of the cluster's keychain.
func TestAPayoutSignedWithAKeychainKeyIsAccepted(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{})
	ctx := context.Background()
	seed, err := dogecoin.NewSeed(bytes.Repeat([]byte{7}, dogecoin.SeedMinBytes))
	if err != nil {
		t.Fatal(err)
	}
	keychain, err := dogecoin.NewKeychain(seed, dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	account, err := keychain.Account(0)
	if err != nil {
		t.Fatal(err)
	}
	invoice, err := account.InvoiceAddress(3)
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(1)
	paid, err := chain.Pay(invoice.Address, 40*chainsim.KoinuPerCoin)
	if err != nil {
		t.Fatal(err)
	}
	chain.Mine(1)
	private, err := keychain.DerivePrivateKeyForSigning(invoice.Path)
	if err != nil {
		t.Fatal(err)
	}
	key := testKey{private: private, address: invoice.Address}
	key.script, _ = chainsim.AddressScript(invoice.Address)
	outpoint, value := outputTo(t, chain, paid, key.script)
	payout := key.spend(t, []wire.OutPoint{outpoint}, wire.NewTxOut(value-chainsim.DefaultFaucetFeeKoinu, newTestKey(t, 9).script))
	if txid, err := client.SendRawTransaction(ctx, rawHex(t, payout)); err != nil || txid != payout.TxHash().String() {
		t.Fatalf("payout: %s, %v", txid, err)
	}
}

func TestTheServerListensOnAnAddressAndAcceptsIntegerVerbosity(t *testing.T) {
	chain, _ := chainsim.New(chainsim.Options{})
	server := chainsim.NewServer(chain, testUser, testPassword)
	url, err := server.Listen(testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	client, _ := rpc.New(rpc.Config{URL: url, User: testUser, Password: testPassword, Timeout: 5 * time.Second})
	hash := chain.Mine(1)[0]
	// btcd-style callers send an integer verbosity.
	var blockHex string
	if err := client.Call(context.Background(), "getblock", []any{hash.String(), 0}, &blockHex); err != nil {
		t.Fatal(err)
	}
	var verbose struct {
		Hash string   `json:"hash"`
		Tx   []string `json:"tx"`
	}
	if err := client.Call(context.Background(), "getblock", []any{hash.String(), 1}, &verbose); err != nil || verbose.Hash != hash.String() || len(verbose.Tx) != 1 {
		t.Fatalf("verbose getblock = %+v, %v", verbose, err)
	}
	raw, _ := chain.RawBlock(hash)
	if blockHex != hex.EncodeToString(raw) {
		t.Fatal("getblock 0 is not the raw block")
	}
}

// FuzzSendRawTransaction: no bytes make the node panic or accept what it cannot spend.
func FuzzSendRawTransaction(f *testing.F) {
	chain, _ := chainsim.New(chainsim.Options{})
	chain.Mine(1)
	txid, _ := chain.Pay(chain.FaucetAddress(), chainsim.KoinuPerCoin)
	good, _ := chain.RawTransaction(txid)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := chain.SendRawTransaction(raw); err == nil {
			var transaction wire.MsgTx
			if err := transaction.Deserialize(bytes.NewReader(raw)); err != nil || !chain.InMempool(transaction.TxHash()) {
				t.Fatalf("accepted %x, which is not in the mempool", raw)
			}
		}
	})
}

// Payments, blocks, reorgs and RPC reads at once: the mutex keeps the chain whole (run under
// -race in make test), and every block stays readable and valid.
func TestConcurrentUse(t *testing.T) {
	chain, _, client := newChain(t, chainsim.Options{AuxPoW: true})
	chain.Mine(5)
	ctx := testutil.Context(t, time.Minute)
	done := make(chan error, 3)
	key := newTestKey(t, 1)
	go func() {
		for range 50 {
			if _, err := chain.Pay(key.address, chainsim.KoinuPerCoin); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for range 20 {
			chain.Mine(1)
			if _, err := chain.Reorg(1, 1, chainsim.ReorgOptions{}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for range 50 {
			best, err := client.GetBestBlockHash(ctx)
			if err != nil {
				done <- err
				return
			}
			if _, err := client.GetBlockHex(ctx, best); err != nil {
				done <- err
				return
			}
			if _, err := client.GetRawMempool(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for height := int64(1); height <= chain.Height(); height++ {
		hash, _ := chain.BlockHash(height)
		raw, _ := chain.RawBlock(hash)
		if _, err := dogecoin.ParseBlock(raw); err != nil {
			t.Fatalf("block %d: %v", height, err)
		}
	}
}
