package payout_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

// fuzzReader hands out values from the fuzzer's bytes, zeros once they run out.
type fuzzReader struct{ data []byte }

func (r *fuzzReader) byte() byte {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b
}

func (r *fuzzReader) uint64() uint64 {
	var buffer [8]byte
	n := copy(buffer[:], r.data)
	r.data = r.data[n:]
	return binary.LittleEndian.Uint64(buffer[:])
}

// amount is an amount at one of several scales, so that small, typical and absurd values all
// come up often.
func (r *fuzzReader) amount() uint64 {
	switch r.byte() % 4 {
	case 0:
		return r.uint64() % (2 * payout.DustKoinu)
	case 1:
		return r.uint64() % (100 * doge)
	case 2:
		return r.uint64() % (100_000 * doge)
	default:
		return r.uint64()
	}
}

// planErrors are the errors NewPlan may return; anything else is a bug.
var planErrors = []error{
	payout.ErrNoOutputs, payout.ErrTooManyOutputs, payout.ErrInvalidAddress, payout.ErrDust,
	payout.ErrDeductShares, payout.ErrAmountOutOfRange, payout.ErrInsufficientFunds,
	payout.ErrFeeAboveMax, payout.ErrTransactionTooLarge, payout.ErrInvalidUTXO,
}

// FuzzNewPlan builds requests and unspent outputs from the fuzzer's bytes: NewPlan must not
// panic (its own invariant checks panic), must return one of its documented errors, and every
// plan must keep the invariants (Σ inputs = paid + fee + change, a computed fee within the
// maximum, every output and any change at least dust) and sign (small plans only: signing
// costs a key derivation per input).
func FuzzNewPlan(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 1, 0, 0, 3})
	f.Add([]byte("\x02\x01\x00\x01\x00\x10\x00\x00\x00\x00\x00\x00\x01\x01\x00\x20\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x05\x00\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte("\x03\x03\x02\x02\xff\xff\xff\xff\x00\x00\x00\x00\x01\x01\x00\x11\x22\x33\x44\x55\x66\x00\x00\x00\x02\x01\x05\x00\x00\x00\x00\x00\x00\x00\x09\x02\x02\x00\x00\x00\x01\x07"))
	f.Fuzz(func(t *testing.T, data []byte) {
		regtest := newFixture(t, dogecoin.Regtest)
		mainnet := newFixture(t, dogecoin.Mainnet)
		addresses := []string{regtest.payTo(t, 0), regtest.payTo(t, 1), regtest.payTo(t, 2), mainnet.payTo(t, 0), "x"}
		r := &fuzzReader{data: data}

		request := payout.Request{Network: dogecoin.Regtest}
		outputCount := int(r.byte() % 6)
		shareMode := r.byte() % 4
		var weights []uint64
		for range outputCount {
			pick := int(r.byte())
			address := addresses[pick%len(addresses)]
			if pick >= 32 { // mostly valid addresses
				address = addresses[pick%3]
			}
			output := payout.Output{Address: address, Koinu: r.amount()}
			switch shareMode {
			case 1:
				output.DeductFeeShare = payout.FeeShare(r.uint64()) % (payout.FeeShareAll + 2)
			case 2, 3:
				weights = append(weights, uint64(r.byte())+1)
			}
			request.Outputs = append(request.Outputs, output)
		}
		if len(weights) > 0 {
			// Shares in proportion to the weights, summing to exactly 100%.
			var total, given uint64
			for _, weight := range weights {
				total += weight
			}
			for i, weight := range weights {
				share := uint64(payout.FeeShareAll) * weight / total
				if i == len(weights)-1 {
					share = uint64(payout.FeeShareAll) - given
				}
				given += share
				request.Outputs[i].DeductFeeShare = payout.FeeShare(share)
			}
		}
		if r.byte()%4 == 0 {
			request.ExplicitFeeKoinu = r.amount()
		}
		switch r.byte() % 4 {
		case 1:
			request.MaxFeeKoinu = r.amount()
		case 2:
			request.MaxFeeKoinu = math.MaxUint64
		}
		switch r.byte() % 4 {
		case 1:
			request.FeeRateKoinuPerKB = r.uint64() % (10 * doge)
		case 2:
			request.FeeRateKoinuPerKB = r.uint64()
		case 3:
			request.FeeRateKoinuPerKB = math.MaxUint64
		}
		utxoCount := int(r.byte() % 16)
		var utxos []payout.UTXO
		for i := range utxoCount {
			branch := dogecoin.Branch(r.byte() % 2)
			index := uint32(r.byte() % 4)
			height := int64(r.byte() % 4)
			koinu := min(r.amount(), payout.MoneyMaxKoinu)
			utxos = append(utxos, regtest.utxo(t, i+1, branch, index, koinu, height))
		}

		plan, err := payout.NewPlan(request, utxos)
		if err != nil {
			for _, known := range planErrors {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("NewPlan returned an undocumented error: %v", err)
		}
		checkInvariants(t, request, utxos, plan)
		if len(plan.Inputs) > 4 {
			return
		}
		signed, err := payout.Sign(plan, address(t, regtest.payer, dogecoin.Change, 0), regtest.keys(), dogecoin.Regtest)
		if err != nil {
			t.Fatalf("Sign(a plan NewPlan made) = %v\nplan: %s", err, fmt.Sprintf("%+v", *plan))
		}
		if len(signed.Raw) > plan.EstimatedBytes {
			t.Fatalf("signed %d bytes, estimated %d", len(signed.Raw), plan.EstimatedBytes)
		}
	})
}
