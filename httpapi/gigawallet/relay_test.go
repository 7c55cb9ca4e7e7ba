package gigawallet

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

// A relayed transaction whose outputs pay a value no node takes (one output or their sum past
// MAX_MONEY, or below zero) is invalid_tx before any output is compared with the invoice: two
// outputs of 2^63−1 koinu each passed the check of what pays the invoice.
func TestRelayPayRefusesImpossibleValues(t *testing.T) {
	const moneyMax = int64(payout.MoneyMaxKoinu)
	pay := func(values ...int64) *RelayError {
		tx := wire.NewMsgTx(1)
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}}, []byte{0x51}, nil))
		for _, v := range values {
			tx.AddTxOut(wire.NewTxOut(v, []byte{0x51}))
		}
		var raw bytes.Buffer
		if err := tx.BtcEncode(&raw, wire.ProtocolVersion, wire.BaseEncoding); err != nil {
			t.Fatal(err)
		}
		_, e := DecodeRelayPay(strings.NewReader(`{"id":"nPay","tx":"`+hex.EncodeToString(raw.Bytes())+`"}`), "nPay")
		return e
	}
	for _, values := range [][]int64{{moneyMax + 1}, {moneyMax, 1}, {1<<63 - 1, 1<<63 - 1}, {-1}, {moneyMax / 2, moneyMax / 2, 1}} {
		if e := pay(values...); e == nil || e.Code != RelayErrorInvalidTx || !strings.Contains(e.Message, "out of range") {
			t.Errorf("outputs %v: %+v", values, e)
		}
	}
	if e := pay(moneyMax/2, moneyMax/2); e != nil {
		t.Errorf("outputs summing to MAX_MONEY: %+v", e)
	}
}
