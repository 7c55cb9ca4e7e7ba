package chainsim

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// JSON-RPC error codes of Dogecoin Core's sendrawtransaction (and the others this package
// answers with), as rpc/protocol.h numbers them.
const (
	CodeMiscError            = -1
	CodeInvalidAddressOrKey  = -5 // unknown block or transaction
	CodeInvalidParameter     = -8 // a height out of range
	CodeDeserializationError = -22
	CodeVerifyError          = -25 // "Missing inputs"
	CodeVerifyRejected       = -26 // policy or consensus rejection: "16: bad-txns-in-belowout"
	CodeVerifyAlreadyInChain = -27
	CodeMethodNotFound       = -32601
	CodeInvalidRequest       = -32600
	CodeParseError           = -32700
)

// Reject codes inside a -26 message, as Dogecoin Core 1.14 (Bitcoin Core 0.14) writes them:
// "<code>: <reason>".
const (
	rejectInvalid         = 16
	rejectNonstandard     = 64
	rejectInsufficientFee = 66
	rejectConflict        = 258
)

// RejectError is a refusal of a transaction, with the JSON-RPC code and message Dogecoin Core
// answers sendrawtransaction with.
type RejectError struct {
	Code    int
	Message string
}

// Error returns the code and message.
func (e *RejectError) Error() string {
	return fmt.Sprintf("chainsim: rejected (%d): %s", e.Code, e.Message)
}

func rejected(rejectCode int, reason string) *RejectError {
	return &RejectError{Code: CodeVerifyRejected, Message: fmt.Sprintf("%d: %s", rejectCode, reason)}
}

// mempool holds accepted transactions in acceptance order, which keeps every parent before
// its children, so a block that takes a prefix of the order is valid.
type mempool struct {
	order   []chainhash.Hash
	entries map[chainhash.Hash]*mempoolEntry
	// spentBy finds the mempool transaction that spends an outpoint.
	spentBy map[wire.OutPoint]chainhash.Hash
}

type mempoolEntry struct {
	transaction *wire.MsgTx
	txid        chainhash.Hash
	feeKoinu    int64
}

func newMempool() mempool {
	return mempool{entries: make(map[chainhash.Hash]*mempoolEntry), spentBy: make(map[wire.OutPoint]chainhash.Hash)}
}

func (m *mempool) add(entry mempoolEntry) {
	m.order = append(m.order, entry.txid)
	m.entries[entry.txid] = &entry
	for _, input := range entry.transaction.TxIn {
		m.spentBy[input.PreviousOutPoint] = entry.txid
	}
}

// entriesInOrder lists the entries in acceptance order.
func (m *mempool) entriesInOrder() []mempoolEntry {
	entries := make([]mempoolEntry, 0, len(m.order))
	for _, txid := range m.order {
		entries = append(entries, *m.entries[txid])
	}
	return entries
}

// SendRawTransaction is sendrawtransaction: it decodes raw, checks it against the active
// chain and the mempool (inputs exist and are unspent, coinbases mature, inputs cover outputs,
// every input script runs with standard flags) and adds it to the mempool, announcing it on
// ZMQ. It returns the txid, or a *RejectError with Core's code and message. A transaction
// already in the mempool is accepted again without change, as Core does. A rejection queued
// with RejectNext is returned first, before any check.
func (c *Chain) SendRawTransaction(raw []byte) (chainhash.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rejections) > 0 {
		rejection := c.rejections[0]
		c.rejections = c.rejections[1:]
		return chainhash.Hash{}, rejection
	}
	transaction, err := decodeTransaction(raw)
	if err != nil {
		return chainhash.Hash{}, err
	}
	txid := transaction.TxHash()
	if _, ok := c.mempool.entries[txid]; ok {
		return txid, nil
	}
	if err := c.accept(transaction, txid); err != nil {
		return chainhash.Hash{}, err
	}
	return txid, nil
}

// RejectNext makes the next sendrawtransaction (over RPC or SendRawTransaction) fail with the
// JSON-RPC error code and message, before any check: -26 "66: min relay fee not met", -25
// "Missing inputs", -27 "transaction already in block chain". Calls queue up.
func (c *Chain) RejectNext(code int, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejections = append(c.rejections, &RejectError{Code: code, Message: message})
}

// Mempool returns the mempool's txids in acceptance order (getrawmempool's answer).
func (c *Chain) Mempool() []chainhash.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chainhash.Hash(nil), c.mempool.order...)
}

// InMempool reports whether txid waits in the mempool.
func (c *Chain) InMempool(txid chainhash.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mempool.entries[txid]
	return ok
}

// decodeTransaction decodes a legacy-serialized transaction; Dogecoin has no segwit, so
// witness data or trailing bytes are a decode failure, as for Core's DecodeHexTx.
func decodeTransaction(raw []byte) (*wire.MsgTx, error) {
	if len(raw) > TransactionMaxBytes*2 {
		return nil, &RejectError{Code: CodeDeserializationError, Message: "TX decode failed"}
	}
	transaction := &wire.MsgTx{}
	reader := bytes.NewReader(raw)
	if err := transaction.BtcDecode(reader, wire.ProtocolVersion, wire.BaseEncoding); err != nil || reader.Len() != 0 {
		return nil, &RejectError{Code: CodeDeserializationError, Message: "TX decode failed"}
	}
	return transaction, nil
}

// accept checks transaction, then adds it to the mempool and announces it.
func (c *Chain) accept(transaction *wire.MsgTx, txid chainhash.Hash) error {
	if _, inChain := c.txLocations[txid]; inChain {
		return &RejectError{Code: CodeVerifyAlreadyInChain, Message: "transaction already in block chain"}
	}
	if len(c.mempool.order) >= MempoolTransactionsMax {
		return rejected(rejectInsufficientFee, "mempool full")
	}
	fee, rejection := c.checkTransaction(transaction, txid, true)
	if rejection != nil {
		return rejection
	}
	c.mempool.add(mempoolEntry{transaction: transaction, txid: txid, feeKoinu: fee})
	c.faucetCoins = nil
	c.publishTransaction(transaction, txid)
	return nil
}

// checkTransaction checks transaction against the active chain and the mempool and returns
// its fee. verifyScripts runs every input's script; a transaction checked before (back from a
// disconnected block, or staying in the mempool) skips it, since its inputs, whose txids
// commit to their scripts and amounts, are the same.
func (c *Chain) checkTransaction(transaction *wire.MsgTx, txid chainhash.Hash, verifyScripts bool) (int64, *RejectError) {
	switch {
	case len(transaction.TxIn) == 0:
		return 0, rejected(rejectInvalid, "bad-txns-vin-empty")
	case len(transaction.TxOut) == 0:
		return 0, rejected(rejectInvalid, "bad-txns-vout-empty")
	case transaction.SerializeSizeStripped() > TransactionMaxBytes:
		return 0, rejected(rejectNonstandard, "tx-size")
	case isCoinbase(transaction):
		return 0, rejected(rejectInvalid, "coinbase")
	}
	var outKoinu int64
	for _, output := range transaction.TxOut {
		if output.Value < 0 {
			return 0, rejected(rejectInvalid, "bad-txns-vout-negative")
		}
		if output.Value > koinuMaxMoney {
			return 0, rejected(rejectInvalid, "bad-txns-vout-toolarge")
		}
		outKoinu += output.Value
		if outKoinu > koinuMaxMoney {
			return 0, rejected(rejectInvalid, "bad-txns-txouttotal-toolarge")
		}
	}
	seen := make(map[wire.OutPoint]struct{}, len(transaction.TxIn))
	previousOutputs := make(map[wire.OutPoint]*wire.TxOut, len(transaction.TxIn))
	var inKoinu int64
	spendHeight := c.tip().height + 1
	for _, input := range transaction.TxIn {
		outpoint := input.PreviousOutPoint
		if _, duplicate := seen[outpoint]; duplicate {
			return 0, rejected(rejectInvalid, "bad-txns-inputs-duplicate")
		}
		seen[outpoint] = struct{}{}
		if spender, conflict := c.mempool.spentBy[outpoint]; conflict && spender != txid {
			return 0, rejected(rejectConflict, "txn-mempool-conflict")
		}
		output, ok := c.mempoolOutput(outpoint)
		if !ok {
			entry, unspent := c.utxos[outpoint]
			if !unspent {
				return 0, &RejectError{Code: CodeVerifyError, Message: "Missing inputs"}
			}
			if entry.coinbase && spendHeight-entry.height < int64(c.options.CoinbaseMaturityBlocks) {
				return 0, rejected(rejectInvalid, "bad-txns-premature-spend-of-coinbase")
			}
			output = entry.output
		}
		previousOutputs[outpoint] = output
		inKoinu += output.Value
	}
	if inKoinu < outKoinu {
		return 0, rejected(rejectInvalid, "bad-txns-in-belowout")
	}
	if verifyScripts {
		fetcher := txscript.NewMultiPrevOutFetcher(previousOutputs)
		hashes := txscript.NewTxSigHashes(transaction, fetcher)
		for index, input := range transaction.TxIn {
			previous := previousOutputs[input.PreviousOutPoint]
			engine, err := txscript.NewEngine(previous.PkScript, transaction, index, txscript.StandardVerifyFlags, nil, hashes, previous.Value, fetcher)
			if err == nil {
				err = engine.Execute()
			}
			if err != nil {
				return 0, rejected(rejectInvalid, fmt.Sprintf("mandatory-script-verify-flag-failed (%v)", err))
			}
		}
	}
	return inKoinu - outKoinu, nil
}

// mempoolOutput returns an output of a mempool transaction.
func (c *Chain) mempoolOutput(outpoint wire.OutPoint) (*wire.TxOut, bool) {
	entry, ok := c.mempool.entries[outpoint.Hash]
	if !ok || outpoint.Index >= uint32(len(entry.transaction.TxOut)) {
		return nil, false
	}
	return entry.transaction.TxOut[outpoint.Index], true
}

func isCoinbase(transaction *wire.MsgTx) bool {
	return len(transaction.TxIn) == 1 && transaction.TxIn[0].PreviousOutPoint.Index == wire.MaxPrevOutIndex &&
		transaction.TxIn[0].PreviousOutPoint.Hash == chainhash.Hash{}
}
