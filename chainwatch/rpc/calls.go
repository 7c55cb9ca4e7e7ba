package rpc

import (
	"context"
	"encoding/hex"
	"fmt"
)

// hashHexLength is the length of a block hash or transaction id in hex.
const hashHexLength = 64

// BlockHeader is getblockheader's verbose answer, the fields the follower walks by.
type BlockHeader struct {
	Hash string `json:"hash"`
	// Confirmations is -1 when the block is not on the node's active chain (a reorg or
	// invalidateblock took it out), else 1 for the tip and more below it.
	Confirmations     int64  `json:"confirmations"`
	Height            int64  `json:"height"`
	Version           int64  `json:"version"`
	MerkleRoot        string `json:"merkleroot"`
	Time              int64  `json:"time"`
	PreviousBlockHash string `json:"previousblockhash"` // empty for the genesis block
	NextBlockHash     string `json:"nextblockhash"`     // empty at the tip or off the active chain
}

// BlockchainInfo is the part of getblockchaininfo the follower needs.
type BlockchainInfo struct {
	Chain                string `json:"chain"` // main, test or regtest
	Blocks               int64  `json:"blocks"`
	Headers              int64  `json:"headers"`
	BestBlockHash        string `json:"bestblockhash"`
	InitialBlockDownload bool   `json:"initialblockdownload"`
}

// Transaction is getrawtransaction's verbose answer and decoderawtransaction's (which lacks
// Hex and the block fields).
type Transaction struct {
	TxID          string  `json:"txid"`
	Hash          string  `json:"hash"`
	Version       int64   `json:"version"`
	LockTime      int64   `json:"locktime"`
	Vin           []TxIn  `json:"vin"`
	Vout          []TxOut `json:"vout"`
	Hex           string  `json:"hex"`
	BlockHash     string  `json:"blockhash"`
	Confirmations int64   `json:"confirmations"`
}

// TxIn is one input of a Transaction; Coinbase is set instead of TxID and Vout for a coinbase.
type TxIn struct {
	TxID     string `json:"txid"`
	Vout     uint32 `json:"vout"`
	Coinbase string `json:"coinbase"`
	Sequence uint32 `json:"sequence"`
}

// TxOut is one output of a Transaction.
type TxOut struct {
	Value        Amount       `json:"value"`
	N            uint32       `json:"n"`
	ScriptPubKey ScriptPubKey `json:"scriptPubKey"`
}

// ScriptPubKey is an output's script. Nodes of the 0.21 era list addresses in Addresses;
// later ones give one Address.
type ScriptPubKey struct {
	Hex       string   `json:"hex"`
	Type      string   `json:"type"`
	Address   string   `json:"address"`
	Addresses []string `json:"addresses"`
}

// GetBlockHash returns the hash of the active chain's block at height.
func (c *Client) GetBlockHash(ctx context.Context, height int64) (string, error) {
	var hash string
	if err := c.Call(ctx, "getblockhash", []any{height}, &hash); err != nil {
		return "", err
	}
	if err := checkHash("getblockhash", hash); err != nil {
		return "", err
	}
	return hash, nil
}

// GetBestBlockHash returns the hash of the active chain's tip.
func (c *Client) GetBestBlockHash(ctx context.Context) (string, error) {
	var hash string
	if err := c.Call(ctx, "getbestblockhash", nil, &hash); err != nil {
		return "", err
	}
	if err := checkHash("getbestblockhash", hash); err != nil {
		return "", err
	}
	return hash, nil
}

// GetBlockCount returns the height of the active chain's tip.
func (c *Client) GetBlockCount(ctx context.Context) (int64, error) {
	var count int64
	if err := c.Call(ctx, "getblockcount", nil, &count); err != nil {
		return 0, err
	}
	return count, nil
}

// GetBlockHeader returns the verbose header of the block hash, on the active chain or not.
func (c *Client) GetBlockHeader(ctx context.Context, hash string) (BlockHeader, error) {
	if err := checkArgumentHash("getblockheader", hash); err != nil {
		return BlockHeader{}, err
	}
	var header BlockHeader
	if err := c.Call(ctx, "getblockheader", []any{hash, true}, &header); err != nil {
		return BlockHeader{}, err
	}
	if header.Hash != hash {
		return BlockHeader{}, fmt.Errorf("rpc getblockheader: %w: asked for %s, got %q", ErrBadResponse, hash, header.Hash)
	}
	return header, nil
}

// GetBlockHeaderHex returns the serialized header of the block hash in hex (80 bytes for a
// plain header; a Dogecoin header with AuxPoW is longer).
func (c *Client) GetBlockHeaderHex(ctx context.Context, hash string) (string, error) {
	if err := checkArgumentHash("getblockheader", hash); err != nil {
		return "", err
	}
	return c.hexCall(ctx, "getblockheader", []any{hash, false})
}

// GetBlockHex returns the serialized block hash in hex (getblock with verbosity false, the
// boolean form Dogecoin Core expects).
func (c *Client) GetBlockHex(ctx context.Context, hash string) (string, error) {
	if err := checkArgumentHash("getblock", hash); err != nil {
		return "", err
	}
	return c.hexCall(ctx, "getblock", []any{hash, false})
}

// GetBlockchainInfo returns the node's chain, heights and whether it is still catching up.
func (c *Client) GetBlockchainInfo(ctx context.Context) (BlockchainInfo, error) {
	var info BlockchainInfo
	if err := c.Call(ctx, "getblockchaininfo", nil, &info); err != nil {
		return BlockchainInfo{}, err
	}
	if info.Chain == "" {
		return BlockchainInfo{}, fmt.Errorf("rpc getblockchaininfo: %w: no chain", ErrBadResponse)
	}
	return info, nil
}

// GetRawTransactionHex returns the serialized transaction txid in hex. A node without
// -txindex knows only mempool and wallet transactions.
func (c *Client) GetRawTransactionHex(ctx context.Context, txid string) (string, error) {
	if err := checkArgumentHash("getrawtransaction", txid); err != nil {
		return "", err
	}
	return c.hexCall(ctx, "getrawtransaction", []any{txid, false})
}

// GetRawTransaction returns the decoded transaction txid with its hex and, once mined, its
// block.
func (c *Client) GetRawTransaction(ctx context.Context, txid string) (Transaction, error) {
	if err := checkArgumentHash("getrawtransaction", txid); err != nil {
		return Transaction{}, err
	}
	var transaction Transaction
	if err := c.Call(ctx, "getrawtransaction", []any{txid, true}, &transaction); err != nil {
		return Transaction{}, err
	}
	if transaction.TxID != txid {
		return Transaction{}, fmt.Errorf("rpc getrawtransaction: %w: asked for %s, got %q", ErrBadResponse, txid, transaction.TxID)
	}
	return transaction, nil
}

// DecodeRawTransaction returns the node's decoding of the serialized transaction rawHex.
func (c *Client) DecodeRawTransaction(ctx context.Context, rawHex string) (Transaction, error) {
	if err := checkArgumentHex("decoderawtransaction", rawHex); err != nil {
		return Transaction{}, err
	}
	var transaction Transaction
	if err := c.Call(ctx, "decoderawtransaction", []any{rawHex}, &transaction); err != nil {
		return Transaction{}, err
	}
	if err := checkHash("decoderawtransaction", transaction.TxID); err != nil {
		return Transaction{}, err
	}
	return transaction, nil
}

// SendRawTransaction hands the signed transaction rawHex to the node and returns its id. It
// is sent once: a transport error wraps ErrOutcomeUnknown, and the caller finds out whether
// the node has the transaction (by its id, known before sending) before sending it again.
func (c *Client) SendRawTransaction(ctx context.Context, rawHex string) (string, error) {
	if err := checkArgumentHex("sendrawtransaction", rawHex); err != nil {
		return "", err
	}
	var txid string
	if err := c.Call(ctx, "sendrawtransaction", []any{rawHex}, &txid); err != nil {
		return "", err
	}
	if err := checkHash("sendrawtransaction", txid); err != nil {
		return "", err
	}
	return txid, nil
}

// EstimateFee returns the node's fee estimate per 1,000 bytes for confirmation within blocks
// blocks, negative when it has no estimate. A node without estimatefee (litecoind, Bitcoin
// Core) gives an error matching ErrMethodNotFound.
func (c *Client) EstimateFee(ctx context.Context, blocks int) (Amount, error) {
	var fee Amount
	if err := c.Call(ctx, "estimatefee", []any{blocks}, &fee); err != nil {
		return 0, err
	}
	return fee, nil
}

// GetRawMempool returns the ids of the transactions in the node's mempool (getrawmempool
// with verbose false), in the node's order. The list can be long on a busy node: the answer
// is bounded by Config.ResponseMaxBytes like any other.
func (c *Client) GetRawMempool(ctx context.Context) ([]string, error) {
	var txids []string
	if err := c.Call(ctx, "getrawmempool", []any{false}, &txids); err != nil {
		return nil, err
	}
	if txids == nil {
		return nil, fmt.Errorf("rpc getrawmempool: %w: result is not an array", ErrBadResponse)
	}
	for _, txid := range txids {
		if err := checkHash("getrawmempool", txid); err != nil {
			return nil, err
		}
	}
	return txids, nil
}

// hexCall calls a method whose result is a hex string and checks that it is one.
func (c *Client) hexCall(ctx context.Context, method string, params []any) (string, error) {
	var text string
	if err := c.Call(ctx, method, params, &text); err != nil {
		return "", err
	}
	if text == "" || len(text)%2 != 0 {
		return "", fmt.Errorf("rpc %s: %w: result is not hex", method, ErrBadResponse)
	}
	if _, err := hex.DecodeString(text); err != nil {
		return "", fmt.Errorf("rpc %s: %w: result is not hex", method, ErrBadResponse)
	}
	return text, nil
}

// isHash reports whether text is a block hash or transaction id: 64 hex digits.
func isHash(text string) bool {
	if len(text) != hashHexLength {
		return false
	}
	_, err := hex.DecodeString(text)
	return err == nil
}

func checkHash(method, hash string) error {
	if !isHash(hash) {
		return fmt.Errorf("rpc %s: %w: %q is not a 64-hex-digit hash", method, ErrBadResponse, excerpt([]byte(hash)))
	}
	return nil
}

func checkArgumentHash(method, hash string) error {
	if !isHash(hash) {
		return fmt.Errorf("rpc %s: %w: %q is not a 64-hex-digit hash", method, ErrInvalidArgument, excerpt([]byte(hash)))
	}
	return nil
}

func checkArgumentHex(method, text string) error {
	if text == "" || len(text)%2 != 0 {
		return fmt.Errorf("rpc %s: %w: not hex", method, ErrInvalidArgument)
	}
	if _, err := hex.DecodeString(text); err != nil {
		return fmt.Errorf("rpc %s: %w: not hex", method, ErrInvalidArgument)
	}
	return nil
}
