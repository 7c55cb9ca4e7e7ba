package payout

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// transactionVersion is the version of a payout transaction: 1, as Dogecoin Core 1.14 and
// libdogecoin write (no relative lock times are used).
const transactionVersion = 1

// KeySource gives Sign the private keys of the paying account.
type KeySource interface {
	// PrivateKey returns the private key of the account's address branch/index: a fresh value
	// on every call, which Sign zeroes when done with it. The key must not be kept, logged or
	// put into the error.
	PrivateKey(branch dogecoin.Branch, index uint32) (*btcec.PrivateKey, error)
}

// AccountKeySource is the KeySource of account m/44'/3'/Account' of a keychain: the leader's,
// at payout time.
type AccountKeySource struct {
	Keychain *dogecoin.Keychain
	Account  uint32
}

// PrivateKey derives the key of m/44'/3'/Account'/branch/index.
func (s AccountKeySource) PrivateKey(branch dogecoin.Branch, index uint32) (*btcec.PrivateKey, error) {
	return s.Keychain.DerivePrivateKeyForSigning(dogecoin.Path{Account: s.Account, Branch: branch, Index: index})
}

// Signed is a signed payout transaction, ready for sendrawtransaction.
type Signed struct {
	Tx *wire.MsgTx
	// Raw is Tx serialized: what is broadcast (hex-encoded).
	Raw []byte
	// TxID is the transaction's id in display hex, known before it is broadcast.
	TxID string
}

// Sign builds plan's transaction on network and signs every input with keys. The outputs are
// the plan's in order, then the change, if the plan has any, to changeAddress (a P2PKH address
// of network; ignored when there is no change). Every input is signed SIGHASH_ALL with its
// compressed key and verified by btcd's script engine before Sign returns. Signatures are
// deterministic (RFC 6979): the same plan and change address always give the same
// transaction id.
//
// network must be the plan's (ErrNetworkMismatch), and the plan must keep its invariants
// (ErrInvalidPlan): a plan may come back from storage, so Sign trusts nothing of it.
func Sign(plan *Plan, changeAddress string, keys KeySource, network dogecoin.Network) (*Signed, error) {
	if plan == nil {
		return nil, fmt.Errorf("%w: nil", ErrInvalidPlan)
	}
	if plan.Network != network {
		return nil, fmt.Errorf("%w: the plan is for %s, signing for %s", ErrNetworkMismatch, plan.Network, network)
	}
	if err := plan.check(); err != nil {
		return nil, err
	}
	transaction := wire.NewMsgTx(transactionVersion)
	// previousOutputs are the spent outputs, by input: the script each signature commits to.
	previousOutputs := make([]*wire.TxOut, len(plan.Inputs))
	fetcher := txscript.NewMultiPrevOutFetcher(nil)
	for i, input := range plan.Inputs {
		hash, err := chainhash.NewHashFromStr(input.TxID)
		if err != nil {
			return nil, fmt.Errorf("%w: input %d txid %q: %w", ErrInvalidPlan, i, input.TxID, err)
		}
		script, err := dogecoin.P2PKHScript(input.Address, network)
		if err != nil {
			return nil, fmt.Errorf("%w: input %d: %w", ErrInvalidPlan, i, err)
		}
		outpoint := wire.OutPoint{Hash: *hash, Index: input.Vout}
		if fetcher.FetchPrevOutput(outpoint) != nil {
			return nil, fmt.Errorf("%w: input %d spends %s a second time", ErrInvalidPlan, i, outpoint)
		}
		previousOutputs[i] = wire.NewTxOut(int64(input.Koinu), script)
		fetcher.AddPrevOut(outpoint, previousOutputs[i])
		transaction.AddTxIn(wire.NewTxIn(&outpoint, nil, nil))
	}
	for i, output := range plan.Outputs {
		script, err := dogecoin.P2PKHScript(output.Address, network)
		if err != nil {
			return nil, fmt.Errorf("%w: output %d: %w", ErrInvalidPlan, i, err)
		}
		transaction.AddTxOut(wire.NewTxOut(int64(output.Koinu), script))
	}
	if plan.ChangeKoinu > 0 {
		script, err := dogecoin.P2PKHScript(changeAddress, network)
		if err != nil {
			return nil, fmt.Errorf("change address: %w", err)
		}
		transaction.AddTxOut(wire.NewTxOut(int64(plan.ChangeKoinu), script))
	}

	for i, input := range plan.Inputs {
		if err := signInput(transaction, i, input, previousOutputs[i].PkScript, keys, network); err != nil {
			return nil, err
		}
	}
	signatureHashes := txscript.NewTxSigHashes(transaction, fetcher)
	for i, previous := range previousOutputs {
		engine, err := txscript.NewEngine(previous.PkScript, transaction, i, txscript.StandardVerifyFlags,
			nil, signatureHashes, previous.Value, fetcher)
		if err == nil {
			err = engine.Execute()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: input %d: %w", ErrSignatureInvalid, i, err)
		}
	}

	var raw bytes.Buffer
	raw.Grow(transaction.SerializeSize())
	if err := transaction.Serialize(&raw); err != nil {
		return nil, fmt.Errorf("serialize the payout transaction: %w", err)
	}
	if raw.Len() > TransactionMaxBytes {
		return nil, fmt.Errorf("%w: the signed transaction is %d bytes, over %d", ErrTransactionTooLarge, raw.Len(), TransactionMaxBytes)
	}
	return &Signed{Tx: transaction, Raw: raw.Bytes(), TxID: transaction.TxHash().String()}, nil
}

// signInput signs input i of transaction, which spends previousScript, with the key of the
// input's path, after checking that the key owns the input's address.
func signInput(transaction *wire.MsgTx, i int, input UTXO, previousScript []byte, keys KeySource, network dogecoin.Network) error {
	key, err := keys.PrivateKey(input.Branch, input.Index)
	if err != nil {
		return fmt.Errorf("input %d: key %d/%d: %w", i, input.Branch, input.Index, err)
	}
	if key == nil {
		return fmt.Errorf("input %d: key %d/%d: the key source returned no key", i, input.Branch, input.Index)
	}
	defer key.Zero()
	address, err := dogecoin.P2PKHAddress(key.PubKey().SerializeCompressed(), network)
	if err != nil {
		return fmt.Errorf("input %d: key %d/%d: %w", i, input.Branch, input.Index, err)
	}
	if address != input.Address {
		return fmt.Errorf("%w: input %d pays %s, the key at %d/%d owns %s",
			ErrKeyMismatch, i, input.Address, input.Branch, input.Index, address)
	}
	signatureScript, err := txscript.SignatureScript(transaction, i, previousScript, txscript.SigHashAll, key, true)
	if err != nil {
		// btcd's signing errors name the script or the hash type, never the key.
		return fmt.Errorf("input %d: sign: %w", i, err)
	}
	transaction.TxIn[i].SignatureScript = signatureScript
	return nil
}
