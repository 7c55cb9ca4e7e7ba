package dogecoin

import (
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/wire"
)

// p2pkhScriptBytes is a P2PKH output script's size: OP_DUP OP_HASH160 <20 bytes> OP_EQUALVERIFY
// OP_CHECKSIG.
const p2pkhScriptBytes = 25

// Script opcodes of a P2PKH output.
const (
	opDup         = 0x76
	opHash160     = 0xa9
	opData20      = 0x14
	opEqualVerify = 0x88
	opCheckSig    = 0xac
)

// P2PKHOutput is a transaction output that pays a P2PKH address.
type P2PKHOutput struct {
	// Index is the output's position in the transaction (the vout of an outpoint).
	Index uint32
	// Address is the P2PKH address the output pays, encoded with the network's version byte.
	Address string
	// ValueKoinu is the amount paid, in koinu (1 DOGE = 100,000,000 koinu).
	ValueKoinu int64
}

// P2PKHOutputs lists the outputs of transaction that pay P2PKH addresses, in output order, with
// the addresses encoded for network. Outputs of any other script (P2SH, P2PK, bare multisig,
// OP_RETURN, witness programs, a P2PKH look-alike with extra bytes) are skipped: the follower
// only ever hands out P2PKH addresses, so only those can pay an invoice.
func P2PKHOutputs(transaction *wire.MsgTx, network Network) []P2PKHOutput {
	var outputs []P2PKHOutput
	for index, output := range transaction.TxOut {
		hash, ok := p2pkhScriptHash(output.PkScript)
		if !ok {
			continue
		}
		outputs = append(outputs, P2PKHOutput{
			Index:      uint32(index),
			Address:    base58.CheckEncode(hash, network.P2PKHVersion),
			ValueKoinu: output.Value,
		})
	}
	return outputs
}

// p2pkhScriptHash returns the 20-byte public key hash of an exact P2PKH script.
func p2pkhScriptHash(script []byte) ([]byte, bool) {
	if len(script) != p2pkhScriptBytes ||
		script[0] != opDup || script[1] != opHash160 || script[2] != opData20 ||
		script[23] != opEqualVerify || script[24] != opCheckSig {
		return nil, false
	}
	return script[3:23], true
}

// P2PKHScript returns the output script that pays address, a P2PKH address of network:
// OP_DUP OP_HASH160 <public key hash> OP_EQUALVERIFY OP_CHECKSIG. It refuses what
// ValidateP2PKH refuses, with its error. P2PKHOutputs reads such a script back to the address.
func P2PKHScript(address string, network Network) ([]byte, error) {
	if err := ValidateP2PKH(address, network); err != nil {
		return nil, err
	}
	hash, _, err := base58.CheckDecode(address)
	if err != nil {
		// ValidateP2PKH decoded the same text without an error.
		panic("dogecoin: a validated P2PKH address no longer decodes: " + err.Error())
	}
	script := make([]byte, 0, p2pkhScriptBytes)
	script = append(script, opDup, opHash160, opData20)
	script = append(script, hash...)
	return append(script, opEqualVerify, opCheckSig), nil
}
