package chainsim

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// faucetSecret is the faucet's private key: SHA-256 of a fixed phrase, the same in every run
// so that chains are reproducible. It is public; only test chains may pay it.
var faucetSecret = sha256.Sum256([]byte("gigaledger chainsim faucet key, test chains only"))

// PayManyOutputsMax bounds the outputs of one faucet payment.
const PayManyOutputsMax = 2_000

// Output is one output of a faucet payment.
type Output struct {
	// Address is a P2PKH address of any Dogecoin network (mainnet D…, testnet n…, regtest
	// m…/n…): the script is the same, and GigaWallet encodes addresses with mainnet's byte
	// whatever the chain.
	Address    string
	ValueKoinu int64
}

// FaucetAddress returns the faucet's P2PKH address on the chain's network; every coinbase
// pays it.
func (c *Chain) FaucetAddress() string { return c.faucetAddress }

// FaucetBalance returns the faucet's spendable koinu: its mature confirmed coins and the
// change of its payments in the mempool.
func (c *Chain) FaucetBalance() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var total int64
	for _, coin := range c.spendableFaucetCoins() {
		total += coin.output.Value
	}
	return total
}

// Pay sends koinu to a P2PKH address from the faucet: a signed transaction (one output, and
// change back to the faucet) put in the mempool and announced on ZMQ. It returns the txid.
func (c *Chain) Pay(address string, koinu int64) (chainhash.Hash, error) {
	return c.PayMany([]Output{{Address: address, ValueKoinu: koinu}})
}

// PayMany sends one signed faucet transaction with an output per element of outputs, in
// order, and change to the faucet as the last output when there is any.
func (c *Chain) PayMany(outputs []Output) (chainhash.Hash, error) {
	if len(outputs) == 0 || len(outputs) > PayManyOutputsMax {
		return chainhash.Hash{}, fmt.Errorf("%w: %d outputs, want 1..%d", ErrInvalidArgument, len(outputs), PayManyOutputsMax)
	}
	transaction := wire.NewMsgTx(1)
	var totalKoinu int64
	for _, output := range outputs {
		script, err := AddressScript(output.Address)
		if err != nil {
			return chainhash.Hash{}, err
		}
		if output.ValueKoinu <= 0 || output.ValueKoinu > koinuMaxMoney {
			return chainhash.Hash{}, fmt.Errorf("%w: amount %d koinu outside 1..%d", ErrInvalidArgument, output.ValueKoinu, koinuMaxMoney)
		}
		totalKoinu += output.ValueKoinu
		if totalKoinu > koinuMaxMoney {
			return chainhash.Hash{}, fmt.Errorf("%w: total above %d koinu", ErrInvalidArgument, koinuMaxMoney)
		}
		transaction.AddTxOut(wire.NewTxOut(output.ValueKoinu, script))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	needKoinu := totalKoinu + c.options.FaucetFeeKoinu
	coins := c.spendableFaucetCoins()
	var inKoinu int64
	used := 0
	for used < len(coins) && inKoinu < needKoinu {
		transaction.AddTxIn(wire.NewTxIn(&coins[used].outpoint, nil, nil))
		inKoinu += coins[used].output.Value
		used++
	}
	if inKoinu < needKoinu {
		return chainhash.Hash{}, fmt.Errorf("%w: %d koinu spendable, need %d", ErrInsufficientFunds, inKoinu, needKoinu)
	}
	if change := inKoinu - needKoinu; change > 0 {
		transaction.AddTxOut(wire.NewTxOut(change, c.faucetScript))
	}
	if err := c.signFaucetInputs(transaction); err != nil {
		return chainhash.Hash{}, err
	}
	txid := transaction.TxHash()
	rest := coins[used:]
	if err := c.accept(transaction, txid); err != nil {
		return chainhash.Hash{}, fmt.Errorf("chainsim: faucet payment refused: %w", err)
	}
	// The spent coins are gone and the change is the newest coin: keep the cache rather than
	// scan again, so that thousands of payments in a row stay cheap.
	if change := inKoinu - needKoinu; change > 0 {
		last := uint32(len(transaction.TxOut) - 1)
		rest = append(rest, coin{outpoint: wire.OutPoint{Hash: txid, Index: last}, output: transaction.TxOut[last]})
	}
	c.faucetCoins = rest
	for _, output := range transaction.TxOut[:len(outputs)] {
		if bytes.Equal(output.PkScript, c.faucetScript) {
			// A payment to the faucet itself made a coin the cache lacks.
			c.faucetCoins = nil
		}
	}
	return txid, nil
}

// signFaucetInputs signs every input of transaction with the faucet's key (SIGHASH_ALL,
// compressed key), as any P2PKH wallet does.
func (c *Chain) signFaucetInputs(transaction *wire.MsgTx) error {
	for index := range transaction.TxIn {
		script, err := txscript.SignatureScript(transaction, index, c.faucetScript, txscript.SigHashAll, c.faucetKey, true)
		if err != nil {
			return fmt.Errorf("chainsim: sign input %d: %w", index, err)
		}
		transaction.TxIn[index].SignatureScript = script
	}
	return nil
}

// coin is a faucet output it may spend.
type coin struct {
	outpoint wire.OutPoint
	output   *wire.TxOut
}

// spendableFaucetCoins lists the faucet's spendable coins in a fixed order: confirmed ones by
// height, position in block and output index, then mempool change in acceptance order. A
// coin a mempool transaction spends is left out, and so is an immature coinbase.
func (c *Chain) spendableFaucetCoins() []coin {
	if c.faucetCoins != nil {
		return c.faucetCoins
	}
	type confirmed struct {
		coin
		entry *unspentOutput
	}
	spendHeight := c.tip().height + 1
	var chainCoins []confirmed
	for outpoint := range c.faucetUTXOs {
		entry := c.utxos[outpoint]
		if _, spent := c.mempool.spentBy[outpoint]; spent {
			continue
		}
		if entry.coinbase && spendHeight-entry.height < int64(c.options.CoinbaseMaturityBlocks) {
			continue
		}
		chainCoins = append(chainCoins, confirmed{coin: coin{outpoint: outpoint, output: entry.output}, entry: entry})
	}
	slices.SortFunc(chainCoins, func(a, b confirmed) int {
		return cmp.Or(cmp.Compare(a.entry.height, b.entry.height), cmp.Compare(a.entry.txIndex, b.entry.txIndex),
			cmp.Compare(a.outpoint.Index, b.outpoint.Index))
	})
	coins := make([]coin, 0, len(chainCoins))
	for _, confirmed := range chainCoins {
		coins = append(coins, confirmed.coin)
	}
	for _, txid := range c.mempool.order {
		transaction := c.mempool.entries[txid].transaction
		for index, output := range transaction.TxOut {
			outpoint := wire.OutPoint{Hash: txid, Index: uint32(index)}
			if _, spent := c.mempool.spentBy[outpoint]; spent || !bytes.Equal(output.PkScript, c.faucetScript) {
				continue
			}
			coins = append(coins, coin{outpoint: outpoint, output: output})
		}
	}
	c.faucetCoins = coins
	return coins
}

// AddressScript returns the P2PKH output script of a P2PKH address of any Dogecoin network.
func AddressScript(address string) ([]byte, error) {
	for _, network := range dogecoin.Networks() {
		if dogecoin.ValidateP2PKH(address, network) == nil {
			payload, _, err := base58.CheckDecode(address)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
			}
			return p2pkhScript(payload), nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not a P2PKH address of a Dogecoin network", ErrInvalidArgument, address)
}

// p2pkhScript is OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY OP_CHECKSIG.
func p2pkhScript(publicKeyHash []byte) []byte {
	script := make([]byte, 0, 25)
	script = append(script, txscript.OP_DUP, txscript.OP_HASH160, txscript.OP_DATA_20)
	script = append(script, publicKeyHash...)
	return append(script, txscript.OP_EQUALVERIFY, txscript.OP_CHECKSIG)
}

func hash160(data []byte) []byte { return btcutil.Hash160(data) }
