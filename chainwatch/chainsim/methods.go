package chainsim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// methodHandler decodes one method's params and answers it.
type methodHandler func(s *Server, params []json.RawMessage) (any, error)

// methods is the server's method table: the calls chainwatch/rpc's client makes.
var methods = map[string]methodHandler{
	"getblockhash":         getBlockHash,
	"getbestblockhash":     getBestBlockHash,
	"getblockcount":        getBlockCount,
	"getblockheader":       getBlockHeader,
	"getblock":             getBlock,
	"getblockchaininfo":    getBlockchainInfo,
	"getrawtransaction":    getRawTransaction,
	"decoderawtransaction": decodeRawTransaction,
	"sendrawtransaction":   sendRawTransaction,
	"estimatefee":          estimateFee,
	"getrawmempool":        getRawMempool,
}

// Param decoding errors, as Core's RPCTypeCheck reports them.
const codeTypeError = -3

func wrongParams(method string, minCount, maxCount int, params []json.RawMessage) error {
	if len(params) < minCount || len(params) > maxCount {
		return &rpcError{Code: CodeMiscError, Message: fmt.Sprintf("%s takes %d to %d parameters, got %d", method, minCount, maxCount, len(params))}
	}
	return nil
}

func paramInt(raw json.RawMessage) (int64, error) {
	value, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return 0, &rpcError{Code: codeTypeError, Message: "Expected type number, got " + jsonType(raw)}
	}
	return value, nil
}

// paramVerbose reads a verbosity given as a bool (Dogecoin Core 1.14) or a number (later
// Cores): false and 0 mean hex, true and any other number verbose.
func paramVerbose(params []json.RawMessage, index int) (bool, error) {
	if index >= len(params) {
		return false, errMissing
	}
	switch text := string(bytes.TrimSpace(params[index])); text {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	default:
		number, err := paramInt(params[index])
		if err != nil {
			return false, &rpcError{Code: codeTypeError, Message: "Expected type bool, got " + jsonType(params[index])}
		}
		return number != 0, nil
	}
}

var errMissing = errors.New("missing parameter")

func paramString(raw json.RawMessage) (string, error) {
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", &rpcError{Code: codeTypeError, Message: "Expected type string, got " + jsonType(raw)}
	}
	return text, nil
}

// paramHash reads a hash in display hex, as Core's ParseHashV.
func paramHash(raw json.RawMessage, name string) (chainhash.Hash, error) {
	text, err := paramString(raw)
	if err != nil {
		return chainhash.Hash{}, err
	}
	if _, err := hex.DecodeString(text); err != nil || len(text) != 2*chainhash.HashSize {
		return chainhash.Hash{}, &rpcError{Code: CodeInvalidParameter, Message: fmt.Sprintf("%s must be of length 64 (not %d, for '%s')", name, len(text), text)}
	}
	hash, err := chainhash.NewHashFromStr(text)
	if err != nil {
		return chainhash.Hash{}, &rpcError{Code: CodeInvalidParameter, Message: name + " must be hexadecimal string"}
	}
	return *hash, nil
}

func paramHex(raw json.RawMessage) ([]byte, error) {
	text, err := paramString(raw)
	if err != nil {
		return nil, err
	}
	decoded, err := hex.DecodeString(text)
	if err != nil {
		return nil, &rpcError{Code: CodeDeserializationError, Message: "TX decode failed"}
	}
	return decoded, nil
}

func jsonType(raw json.RawMessage) string {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return "nothing"
	case trimmed[0] == '"':
		return "string"
	case trimmed[0] == '{':
		return "object"
	case trimmed[0] == '[':
		return "array"
	case trimmed[0] == 't' || trimmed[0] == 'f':
		return "bool"
	case trimmed[0] == 'n':
		return "null"
	}
	return "number"
}

func getBlockHash(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getblockhash", 1, 1, params); err != nil {
		return nil, err
	}
	height, err := paramInt(params[0])
	if err != nil {
		return nil, err
	}
	hash, err := s.chain.BlockHash(height)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidParameter, Message: "Block height out of range"}
	}
	return hash.String(), nil
}

func getBestBlockHash(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getbestblockhash", 0, 0, params); err != nil {
		return nil, err
	}
	return s.chain.TipHash().String(), nil
}

func getBlockCount(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getblockcount", 0, 0, params); err != nil {
		return nil, err
	}
	return s.chain.Height(), nil
}

func getBlockHeader(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getblockheader", 1, 2, params); err != nil {
		return nil, err
	}
	hash, err := paramHash(params[0], "hash")
	if err != nil {
		return nil, err
	}
	verbose := true
	if len(params) > 1 {
		if verbose, err = paramVerbose(params, 1); err != nil {
			return nil, err
		}
	}
	if !verbose {
		raw, err := s.chain.rawHeader(hash)
		if err != nil {
			return nil, &rpcError{Code: CodeInvalidAddressOrKey, Message: "Block not found"}
		}
		return hex.EncodeToString(raw), nil
	}
	header, err := s.chain.headerView(hash)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidAddressOrKey, Message: "Block not found"}
	}
	return header, nil
}

func getBlock(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getblock", 1, 2, params); err != nil {
		return nil, err
	}
	hash, err := paramHash(params[0], "blockhash")
	if err != nil {
		return nil, err
	}
	verbose := true
	if len(params) > 1 {
		if verbose, err = paramVerbose(params, 1); err != nil {
			return nil, err
		}
	}
	if !verbose {
		raw, err := s.chain.RawBlock(hash)
		if err != nil {
			return nil, &rpcError{Code: CodeInvalidAddressOrKey, Message: "Block not found"}
		}
		return hex.EncodeToString(raw), nil
	}
	view, err := s.chain.blockView(hash)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidAddressOrKey, Message: "Block not found"}
	}
	return view, nil
}

func getBlockchainInfo(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getblockchaininfo", 0, 0, params); err != nil {
		return nil, err
	}
	return s.chain.blockchainInfoView(), nil
}

func getRawTransaction(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getrawtransaction", 1, 2, params); err != nil {
		return nil, err
	}
	txid, err := paramHash(params[0], "parameter 1")
	if err != nil {
		return nil, err
	}
	verbose := false
	if len(params) > 1 {
		if verbose, err = paramVerbose(params, 1); err != nil {
			return nil, err
		}
	}
	view, err := s.chain.transactionView(txid)
	if err != nil {
		return nil, err
	}
	if !verbose {
		return view.Hex, nil
	}
	return view, nil
}

func decodeRawTransaction(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("decoderawtransaction", 1, 1, params); err != nil {
		return nil, err
	}
	raw, err := paramHex(params[0])
	if err != nil {
		return nil, err
	}
	transaction, err := decodeTransaction(raw)
	if err != nil {
		return nil, toRPCError(err)
	}
	view := s.chain.decodedTransactionView(transaction)
	view.Hex = ""
	return view, nil
}

func sendRawTransaction(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("sendrawtransaction", 1, 2, params); err != nil {
		return nil, err
	}
	raw, err := paramHex(params[0])
	if err != nil {
		return nil, err
	}
	txid, err := s.chain.SendRawTransaction(raw)
	if err != nil {
		return nil, toRPCError(err)
	}
	return txid.String(), nil
}

func estimateFee(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("estimatefee", 1, 1, params); err != nil {
		return nil, err
	}
	if _, err := paramInt(params[0]); err != nil {
		return nil, err
	}
	rate := s.chain.FeeRate()
	if rate < 0 {
		return json.RawMessage("-1"), nil
	}
	return koinuJSON(rate), nil
}

func getRawMempool(s *Server, params []json.RawMessage) (any, error) {
	if err := wrongParams("getrawmempool", 0, 1, params); err != nil {
		return nil, err
	}
	verbose := false
	if len(params) > 0 {
		var err error
		if verbose, err = paramVerbose(params, 0); err != nil {
			return nil, err
		}
	}
	if verbose {
		return s.chain.mempoolView(), nil
	}
	txids := s.chain.Mempool()
	answer := make([]string, len(txids))
	for i, txid := range txids {
		answer[i] = txid.String()
	}
	return answer, nil
}

// toRPCError turns a chain error into the node error it answers with.
func toRPCError(err error) error {
	var rejection *RejectError
	if errors.As(err, &rejection) {
		return &rpcError{Code: rejection.Code, Message: rejection.Message}
	}
	return &rpcError{Code: CodeMiscError, Message: err.Error()}
}
