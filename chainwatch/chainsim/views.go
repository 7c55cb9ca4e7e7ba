package chainsim

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// The JSON shapes of the server's verbose answers, with Dogecoin Core 1.14's field names.

// koinuJSON writes koinu as a coin amount with eight decimals, as Core writes amounts.
type koinuJSON int64

// MarshalJSON writes 12.50000000 for 1,250,000,000 koinu.
func (k koinuJSON) MarshalJSON() ([]byte, error) {
	value := int64(k)
	sign := ""
	if value < 0 {
		sign, value = "-", -value
	}
	return fmt.Appendf(nil, "%s%d.%08d", sign, value/KoinuPerCoin, value%KoinuPerCoin), nil
}

type headerJSON struct {
	Hash              string  `json:"hash"`
	Confirmations     int64   `json:"confirmations"`
	Height            int64   `json:"height"`
	Version           int32   `json:"version"`
	VersionHex        string  `json:"versionHex"`
	MerkleRoot        string  `json:"merkleroot"`
	Time              int64   `json:"time"`
	MedianTime        int64   `json:"mediantime"`
	Nonce             uint32  `json:"nonce"`
	Bits              string  `json:"bits"`
	Difficulty        float64 `json:"difficulty"` // informational, as Core's; never money
	ChainWork         string  `json:"chainwork"`
	PreviousBlockHash string  `json:"previousblockhash,omitempty"`
	NextBlockHash     string  `json:"nextblockhash,omitempty"`
}

type blockJSON struct {
	headerJSON
	Size         int      `json:"size"`
	Transactions []string `json:"tx"`
}

type blockchainInfoJSON struct {
	Chain                string  `json:"chain"`
	Blocks               int64   `json:"blocks"`
	Headers              int64   `json:"headers"`
	BestBlockHash        string  `json:"bestblockhash"`
	Difficulty           float64 `json:"difficulty"`
	MedianTime           int64   `json:"mediantime"`
	VerificationProgress float64 `json:"verificationprogress"`
	InitialBlockDownload bool    `json:"initialblockdownload"`
	ChainWork            string  `json:"chainwork"`
	Pruned               bool    `json:"pruned"`
}

type transactionJSON struct {
	Hex           string      `json:"hex,omitempty"`
	TxID          string      `json:"txid"`
	Hash          string      `json:"hash"`
	Size          int         `json:"size"`
	VSize         int         `json:"vsize"`
	Version       int32       `json:"version"`
	LockTime      uint32      `json:"locktime"`
	Vin           []txInJSON  `json:"vin"`
	Vout          []txOutJSON `json:"vout"`
	BlockHash     string      `json:"blockhash,omitempty"`
	Confirmations int64       `json:"confirmations,omitempty"`
	Time          int64       `json:"time,omitempty"`
	BlockTime     int64       `json:"blocktime,omitempty"`
}

type txInJSON struct {
	Coinbase  string      `json:"coinbase,omitempty"`
	TxID      string      `json:"txid,omitempty"`
	Vout      *uint32     `json:"vout,omitempty"`
	ScriptSig *scriptJSON `json:"scriptSig,omitempty"`
	Sequence  uint32      `json:"sequence"`
}

type scriptJSON struct {
	Asm string `json:"asm"`
	Hex string `json:"hex"`
}

type txOutJSON struct {
	Value        koinuJSON        `json:"value"`
	N            int              `json:"n"`
	ScriptPubKey scriptPubKeyJSON `json:"scriptPubKey"`
}

type scriptPubKeyJSON struct {
	Asm       string   `json:"asm"`
	Hex       string   `json:"hex"`
	ReqSigs   int      `json:"reqSigs,omitempty"`
	Type      string   `json:"type"`
	Addresses []string `json:"addresses,omitempty"`
}

type mempoolJSON struct {
	Size   int       `json:"size"`
	Fee    koinuJSON `json:"fee"`
	Height int64     `json:"height"`
}

// rawHeader is getblockheader <hash> false: the header and, for a merge-mined block, its
// AuxPoW proof (Dogecoin Core reads an AuxPoW header from disk whole).
func (c *Chain) rawHeader(hash chainhash.Hash) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	return b.serializeHeader(), nil
}

func (c *Chain) headerView(hash chainhash.Hash) (headerJSON, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return headerJSON{}, fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	return c.header(b), nil
}

func (c *Chain) header(b *block) headerJSON {
	view := headerJSON{
		Hash:          b.hash.String(),
		Confirmations: -1,
		Height:        b.height,
		Version:       b.header.Version,
		VersionHex:    fmt.Sprintf("%08x", uint32(b.header.Version)),
		MerkleRoot:    b.header.MerkleRoot.String(),
		Time:          b.header.Timestamp.Unix(),
		MedianTime:    b.header.Timestamp.Unix(),
		Nonce:         b.header.Nonce,
		Bits:          strconv.FormatUint(uint64(b.header.Bits), 16),
		Difficulty:    4.656542373906925e-10,
		ChainWork:     fmt.Sprintf("%064x", 2*(b.height+1)),
	}
	if b.parent != nil {
		view.PreviousBlockHash = b.parent.hash.String()
	}
	if c.onActiveChain(b) {
		view.Confirmations = c.tip().height - b.height + 1
		if b.height < c.tip().height {
			view.NextBlockHash = c.active[b.height+1].hash.String()
		}
	}
	return view
}

func (c *Chain) blockView(hash chainhash.Hash) (blockJSON, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return blockJSON{}, fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	view := blockJSON{headerJSON: c.header(b), Size: len(b.serialize())}
	for _, txid := range b.txids {
		view.Transactions = append(view.Transactions, txid.String())
	}
	return view, nil
}

func (c *Chain) blockchainInfoView() blockchainInfoJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	tip := c.tip()
	return blockchainInfoJSON{
		Chain:                "regtest",
		Blocks:               tip.height,
		Headers:              tip.height,
		BestBlockHash:        tip.hash.String(),
		Difficulty:           4.656542373906925e-10,
		MedianTime:           tip.header.Timestamp.Unix(),
		VerificationProgress: 1,
		InitialBlockDownload: c.initialBlockDownload,
		ChainWork:            fmt.Sprintf("%064x", 2*(tip.height+1)),
	}
}

// transactionView is getrawtransaction's answer for a mempool or active-chain transaction
// (as a node with -txindex has it), or Core's error.
func (c *Chain) transactionView(txid chainhash.Hash) (transactionJSON, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if entry, ok := c.mempool.entries[txid]; ok {
		return c.transaction(entry.transaction), nil
	}
	location, ok := c.txLocations[txid]
	if !ok {
		return transactionJSON{}, &rpcError{Code: CodeInvalidAddressOrKey, Message: "No such mempool or blockchain transaction. Use gettransaction for wallet transactions."}
	}
	if location.block.height == 0 {
		return transactionJSON{}, &rpcError{Code: CodeInvalidAddressOrKey, Message: "The genesis block coinbase is not considered an ordinary transaction and cannot be retrieved"}
	}
	view := c.transaction(location.block.transactions[location.index])
	view.BlockHash = location.block.hash.String()
	view.Confirmations = c.tip().height - location.block.height + 1
	view.Time = location.block.header.Timestamp.Unix()
	view.BlockTime = view.Time
	return view, nil
}

// decodedTransactionView is decoderawtransaction's answer.
func (c *Chain) decodedTransactionView(transaction *wire.MsgTx) transactionJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transaction(transaction)
}

func (c *Chain) transaction(transaction *wire.MsgTx) transactionJSON {
	raw, err := serializeTransaction(transaction)
	if err != nil {
		panic(fmt.Sprintf("chainsim: serialize transaction: %v", err))
	}
	txid := transaction.TxHash().String()
	view := transactionJSON{
		Hex: hex.EncodeToString(raw), TxID: txid, Hash: txid, Size: len(raw), VSize: len(raw),
		Version: transaction.Version, LockTime: transaction.LockTime,
		Vin: []txInJSON{}, Vout: []txOutJSON{},
	}
	for _, input := range transaction.TxIn {
		if isCoinbase(transaction) {
			view.Vin = append(view.Vin, txInJSON{Coinbase: hex.EncodeToString(input.SignatureScript), Sequence: input.Sequence})
			continue
		}
		vout := input.PreviousOutPoint.Index
		asm, _ := txscript.DisasmString(input.SignatureScript)
		view.Vin = append(view.Vin, txInJSON{
			TxID: input.PreviousOutPoint.Hash.String(), Vout: &vout,
			ScriptSig: &scriptJSON{Asm: asm, Hex: hex.EncodeToString(input.SignatureScript)},
			Sequence:  input.Sequence,
		})
	}
	for index, output := range transaction.TxOut {
		view.Vout = append(view.Vout, txOutJSON{Value: koinuJSON(output.Value), N: index, ScriptPubKey: c.scriptPubKey(output.PkScript)})
	}
	return view
}

// scriptPubKey describes an output script as Dogecoin Core 1.14 does: its class and, for
// P2PKH and P2SH, the address on the chain's network.
func (c *Chain) scriptPubKey(script []byte) scriptPubKeyJSON {
	asm, _ := txscript.DisasmString(script)
	view := scriptPubKeyJSON{Asm: asm, Hex: hex.EncodeToString(script)}
	class := txscript.GetScriptClass(script)
	switch class {
	case txscript.PubKeyHashTy:
		view.Type, view.ReqSigs = "pubkeyhash", 1
		view.Addresses = []string{base58.CheckEncode(script[3:23], c.options.Network.P2PKHVersion)}
	case txscript.ScriptHashTy:
		view.Type, view.ReqSigs = "scripthash", 1
		view.Addresses = []string{base58.CheckEncode(script[2:22], c.options.Network.P2SHVersion)}
	case txscript.PubKeyTy:
		view.Type = "pubkey"
	case txscript.MultiSigTy:
		view.Type = "multisig"
	case txscript.NullDataTy:
		view.Type = "nulldata"
	default:
		view.Type = "nonstandard"
	}
	return view
}

func (c *Chain) mempoolView() map[string]mempoolJSON {
	c.mu.Lock()
	defer c.mu.Unlock()
	view := make(map[string]mempoolJSON, len(c.mempool.order))
	for _, txid := range c.mempool.order {
		entry := c.mempool.entries[txid]
		view[txid.String()] = mempoolJSON{Size: entry.transaction.SerializeSizeStripped(), Fee: koinuJSON(entry.feeKoinu), Height: c.tip().height}
	}
	return view
}

// SetFeeRate sets what estimatefee answers, in koinu per 1,000 bytes; a negative rate makes
// it answer -1, Core's "no estimate".
func (c *Chain) SetFeeRate(koinuPerKB int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.feeRateKoinuPerKB = koinuPerKB
}

// SetInitialBlockDownload sets what getblockchaininfo's initialblockdownload says, for a
// follower that must wait while its node catches up.
func (c *Chain) SetInitialBlockDownload(catchingUp bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initialBlockDownload = catchingUp
}

// FeeRate returns what estimatefee answers, in koinu per 1,000 bytes, negative for none.
func (c *Chain) FeeRate() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.feeRateKoinuPerKB
}

// RawTransaction returns a mempool or active-chain transaction's serialization.
func (c *Chain) RawTransaction(txid chainhash.Hash) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if entry, ok := c.mempool.entries[txid]; ok {
		return serializeTransaction(entry.transaction)
	}
	if location, ok := c.txLocations[txid]; ok {
		return serializeTransaction(location.block.transactions[location.index])
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownTransaction, txid)
}

// Confirmations returns how many blocks of the active chain confirm txid: 0 in the mempool,
// -1 when the chain and mempool do not hold it (never seen, or gone with a double spend).
func (c *Chain) Confirmations(txid chainhash.Hash) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if location, ok := c.txLocations[txid]; ok {
		return c.tip().height - location.block.height + 1
	}
	if _, ok := c.mempool.entries[txid]; ok {
		return 0
	}
	return -1
}

func serializeTransaction(transaction *wire.MsgTx) ([]byte, error) {
	var buffer bytes.Buffer
	buffer.Grow(transaction.SerializeSizeStripped())
	if err := transaction.SerializeNoWitness(&buffer); err != nil {
		return nil, err
	}
	return buffer.Bytes(), nil
}
