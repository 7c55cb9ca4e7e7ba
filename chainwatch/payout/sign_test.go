package payout_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

// planWithChange plans 2 outputs from three inputs of the payer with change.
func planWithChange(t *testing.T, f *fixture) *payout.Plan {
	t.Helper()
	request := payout.Request{
		Outputs: []payout.Output{{Address: f.payTo(t, 0), Koinu: 3 * doge}, {Address: f.payTo(t, 1), Koinu: 250 * centiDoge}},
		Network: f.network,
	}
	utxos := []payout.UTXO{
		f.utxo(t, 1, dogecoin.External, 0, 2*doge, 1),
		f.utxo(t, 2, dogecoin.Change, 7, 3*doge, 0),
		f.utxo(t, 3, dogecoin.External, 5, 2*doge, 2),
	}
	plan, err := payout.NewPlan(request, utxos)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Inputs) != 3 || plan.ChangeKoinu == 0 {
		t.Fatalf("plan of %d inputs, change %d; want 3 and change", len(plan.Inputs), plan.ChangeKoinu)
	}
	return plan
}

func TestSignBuildsAVerifiedTransaction(t *testing.T) {
	for _, network := range dogecoin.Networks() {
		t.Run(network.Name, func(t *testing.T) {
			f := newFixture(t, network)
			plan := planWithChange(t, f)
			changeAddress := address(t, f.payer, dogecoin.Change, 8)
			signed, err := payout.Sign(plan, changeAddress, f.keys(), network)
			if err != nil {
				t.Fatal(err)
			}
			transaction := signed.Tx
			if transaction.Version != 1 || transaction.LockTime != 0 || len(transaction.TxIn) != 3 || len(transaction.TxOut) != 3 {
				t.Fatalf("transaction version %d, lock time %d, %d inputs, %d outputs", transaction.Version, transaction.LockTime, len(transaction.TxIn), len(transaction.TxOut))
			}
			for i, input := range plan.Inputs {
				outpoint := transaction.TxIn[i].PreviousOutPoint
				if outpoint.Hash.String() != input.TxID || outpoint.Index != input.Vout || transaction.TxIn[i].Sequence != wire.MaxTxInSequenceNum {
					t.Fatalf("input %d spends %s, want %s:%d", i, outpoint, input.TxID, input.Vout)
				}
			}
			// The outputs in order, the change last, all P2PKH of the network.
			outputs := dogecoin.P2PKHOutputs(transaction, network)
			want := []dogecoin.P2PKHOutput{
				{Index: 0, Address: plan.Outputs[0].Address, ValueKoinu: int64(plan.Outputs[0].Koinu)},
				{Index: 1, Address: plan.Outputs[1].Address, ValueKoinu: int64(plan.Outputs[1].Koinu)},
				{Index: 2, Address: changeAddress, ValueKoinu: int64(plan.ChangeKoinu)},
			}
			if fmt.Sprint(outputs) != fmt.Sprint(want) {
				t.Fatalf("outputs %v, want %v", outputs, want)
			}
			// The raw bytes are the transaction, its id the hash, its size within the estimate
			// the fee was computed for.
			var decoded wire.MsgTx
			if err := decoded.Deserialize(bytes.NewReader(signed.Raw)); err != nil {
				t.Fatal(err)
			}
			if decoded.TxHash().String() != signed.TxID || transaction.TxHash().String() != signed.TxID {
				t.Fatalf("raw hashes to %s, Tx to %s, TxID %s", decoded.TxHash(), transaction.TxHash(), signed.TxID)
			}
			if len(signed.Raw) > plan.EstimatedBytes {
				t.Fatalf("signed transaction of %d bytes, above the %d estimated", len(signed.Raw), plan.EstimatedBytes)
			}
			// Every input verifies on its own, with btcd's engine, independently of Sign's check.
			for i, input := range plan.Inputs {
				script, err := dogecoin.P2PKHScript(input.Address, network)
				if err != nil {
					t.Fatal(err)
				}
				engine, err := txscript.NewEngine(script, &decoded, i, txscript.StandardVerifyFlags, nil, nil, int64(input.Koinu),
					txscript.NewCannedPrevOutputFetcher(script, int64(input.Koinu)))
				if err != nil {
					t.Fatal(err)
				}
				if err := engine.Execute(); err != nil {
					t.Fatalf("input %d: %v", i, err)
				}
				// Compressed keys: the signature script ends with a 33-byte key push.
				sigScript := decoded.TxIn[i].SignatureScript
				if len(sigScript) < 34 || sigScript[len(sigScript)-34] != 33 {
					t.Fatalf("input %d: signature script %x does not end with a compressed key", i, sigScript)
				}
			}

			// Deterministic: the same plan signs to the same bytes.
			again, err := payout.Sign(plan, changeAddress, f.keys(), network)
			if err != nil {
				t.Fatal(err)
			}
			if again.TxID != signed.TxID || !bytes.Equal(again.Raw, signed.Raw) {
				t.Fatalf("signing twice gave %s then %s", signed.TxID, again.TxID)
			}
		})
	}
}

func TestSignWithoutChangeIgnoresTheChangeAddress(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	request := payout.Request{Outputs: []payout.Output{{Address: f.payTo(t, 0), Koinu: 10*doge - centiDoge}}, Network: dogecoin.Regtest}
	plan, err := payout.NewPlan(request, []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, 10*doge, 1)})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := payout.Sign(plan, "", f.keys(), dogecoin.Regtest)
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Tx.TxOut) != 1 || signed.Tx.TxOut[0].Value != int64(10*doge-centiDoge) {
		t.Fatalf("outputs %v, want the one payment", signed.Tx.TxOut)
	}
}

// keySourceFunc adapts a function to payout.KeySource.
type keySourceFunc func(dogecoin.Branch, uint32) (*btcec.PrivateKey, error)

func (f keySourceFunc) PrivateKey(branch dogecoin.Branch, index uint32) (*btcec.PrivateKey, error) {
	return f(branch, index)
}

func TestSignRefuses(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	changeAddress := address(t, f.payer, dogecoin.Change, 8)
	// Every private key the tests could touch, as hex and WIF: none may appear in an error.
	var secrets []string
	for _, branch := range []dogecoin.Branch{dogecoin.External, dogecoin.Change} {
		for index := range uint32(10) {
			key, err := f.keys().PrivateKey(branch, index)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, hex.EncodeToString(key.Serialize()), dogecoin.EncodeWIF(key, dogecoin.Regtest))
		}
	}
	tests := []struct {
		name string
		// change alters a valid plan; nilPlan signs nil instead.
		change  func(plan *payout.Plan)
		nilPlan bool
		// changeAddress replaces the valid change address when set; noChangeAddress gives "".
		changeAddress   string
		noChangeAddress bool
		// keys and network replace the payer's keys and regtest when set.
		keys    payout.KeySource
		network dogecoin.Network
		want    error
		message string
	}{
		{name: "change without a change address", noChangeAddress: true, want: payout.ErrInvalidAddress, message: "change address"},
		{name: "change to another network", changeAddress: address(t, newFixture(t, dogecoin.Mainnet).payer, dogecoin.Change, 0), want: payout.ErrInvalidAddress},
		{name: "another network", network: dogecoin.Testnet, want: payout.ErrNetworkMismatch},
		{name: "a nil plan", nilPlan: true, want: payout.ErrInvalidPlan},
		{name: "fee altered", change: func(plan *payout.Plan) { plan.FeeKoinu++ }, want: payout.ErrInvalidPlan},
		{name: "change below dust", change: func(plan *payout.Plan) {
			moved := plan.ChangeKoinu - 1
			plan.ChangeKoinu = 1
			plan.FeeKoinu += moved
			plan.TotalKoinu += moved
		}, want: payout.ErrInvalidPlan, message: "change 1 below the dust limit"},
		{name: "output below dust", change: func(plan *payout.Plan) {
			moved := plan.Outputs[0].Koinu - 1
			plan.Outputs[0].Koinu = 1
			plan.ChangeKoinu += moved
			plan.PaidKoinu -= moved
			plan.TotalKoinu -= moved
		}, want: payout.ErrInvalidPlan},
		{name: "an input spent twice", change: func(plan *payout.Plan) {
			plan.Inputs[1].TxID, plan.Inputs[1].Vout = plan.Inputs[0].TxID, plan.Inputs[0].Vout
		}, want: payout.ErrInvalidPlan},
		{name: "an output address of another network", change: func(plan *payout.Plan) {
			plan.Outputs[0].Address = newFixture(t, dogecoin.Mainnet).payTo(t, 0)
		}, want: payout.ErrInvalidAddress},
		{name: "a key that does not own the input", change: func(plan *payout.Plan) { plan.Inputs[0].Index++ },
			want: payout.ErrKeyMismatch, message: "the key at 0/1 owns"},
		{name: "a key source that fails", keys: keySourceFunc(func(dogecoin.Branch, uint32) (*btcec.PrivateKey, error) {
			return nil, errors.New("keychain locked")
		}), message: "keychain locked"},
		{name: "a key source that gives no key", keys: keySourceFunc(func(dogecoin.Branch, uint32) (*btcec.PrivateKey, error) {
			return nil, nil
		}), message: "no key"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			plan := planWithChange(t, f)
			if test.change != nil {
				test.change(plan)
			}
			if test.nilPlan {
				plan = nil
			}
			changeTo := changeAddress
			switch {
			case test.noChangeAddress:
				changeTo = ""
			case test.changeAddress != "":
				changeTo = test.changeAddress
			}
			keys := test.keys
			if keys == nil {
				keys = f.keys()
			}
			network := test.network
			if network == (dogecoin.Network{}) {
				network = dogecoin.Regtest
			}
			signed, err := payout.Sign(plan, changeTo, keys, network)
			if err == nil || signed != nil {
				t.Fatalf("Sign = %+v, %v; want an error", signed, err)
			}
			if test.want != nil && !errors.Is(err, test.want) {
				t.Fatalf("Sign error %v, want %v", err, test.want)
			}
			if !strings.Contains(err.Error(), test.message) {
				t.Fatalf("error %q does not say %q", err, test.message)
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q holds a private key", err)
				}
			}
		})
	}
}
