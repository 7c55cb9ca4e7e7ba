package dogecoin_test

import (
	"errors"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// P2PKHScript and P2PKHOutputs are inverses on every network, and the script is what
// btcd's txscript builds for the same public key hash.
func TestP2PKHScriptRoundTripsThroughP2PKHOutputs(t *testing.T) {
	publicKey := mustHex(t, "0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2")
	for _, network := range dogecoin.Networks() {
		address, err := dogecoin.P2PKHAddress(publicKey, network)
		if err != nil {
			t.Fatal(err)
		}
		script, err := dogecoin.P2PKHScript(address, network)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(script) != 25 || script[0] != 0x76 || script[1] != 0xa9 || script[2] != 0x14 || script[23] != 0x88 || script[24] != 0xac {
			t.Fatalf("%s: script %x is not OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG", network, script)
		}
		transaction := wire.NewMsgTx(1)
		transaction.AddTxOut(wire.NewTxOut(12345, script))
		outputs := dogecoin.P2PKHOutputs(transaction, network)
		if len(outputs) != 1 || outputs[0].Address != address || outputs[0].ValueKoinu != 12345 {
			t.Fatalf("%s: P2PKHOutputs = %+v, want %s", network, outputs, address)
		}
	}
}

func TestP2PKHScriptRefusesWhatValidateP2PKHRefuses(t *testing.T) {
	mainnetAddress := "D9uQrqyJ7Guz3aHVTTcxVhNnthobME3o4w"
	for _, address := range []string{"", "D9uQrqyJ7Guz3aHVTTcxVhNnthobME3o4x", "not an address", mainnetAddress} {
		if _, err := dogecoin.P2PKHScript(address, dogecoin.Regtest); !errors.Is(err, dogecoin.ErrInvalidAddress) {
			t.Errorf("P2PKHScript(%q, regtest) error = %v, want ErrInvalidAddress", address, err)
		}
	}
}
