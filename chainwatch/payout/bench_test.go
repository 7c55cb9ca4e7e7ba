package payout_test

import (
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

// BenchmarkPlanAndSign plans and signs a payout spending 1, 10 and 100 inputs of 1 DOGE each,
// the keys derived from the keychain per input as the leader derives them. Signing dominates:
// a hardened derivation and an ECDSA signature and verification per input.
func BenchmarkPlanAndSign(b *testing.B) {
	f := newFixture(b, dogecoin.Regtest)
	changeAddress := address(b, f.payer, dogecoin.Change, 0)
	for _, inputCount := range []int{1, 10, 100} {
		utxos := make([]payout.UTXO, inputCount)
		for i := range utxos {
			utxos[i] = f.utxo(b, i+1, dogecoin.External, uint32(i), doge, int64(i+1))
		}
		request := payout.Request{
			Outputs: []payout.Output{{Address: f.payTo(b, 0), Koinu: uint64(inputCount-1)*doge + doge/2}},
			Network: dogecoin.Regtest,
		}
		b.Run(fmt.Sprintf("inputs=%d", inputCount), func(b *testing.B) {
			for b.Loop() {
				plan, err := payout.NewPlan(request, utxos)
				if err != nil {
					b.Fatal(err)
				}
				if len(plan.Inputs) != inputCount {
					b.Fatalf("%d inputs, want %d", len(plan.Inputs), inputCount)
				}
				if _, err := payout.Sign(plan, changeAddress, f.keys(), dogecoin.Regtest); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewPlan is planning alone, choosing 100 inputs among 1000.
func BenchmarkNewPlan(b *testing.B) {
	f := newFixture(b, dogecoin.Regtest)
	utxos := make([]payout.UTXO, 1000)
	for i := range utxos {
		utxos[i] = f.utxo(b, i+1, dogecoin.Branch(i%2), uint32(i/2), doge, int64(i%50))
	}
	request := payout.Request{Outputs: []payout.Output{{Address: f.payTo(b, 0), Koinu: 99 * doge}}, Network: dogecoin.Regtest}
	for b.Loop() {
		if _, err := payout.NewPlan(request, utxos); err != nil {
			b.Fatal(err)
		}
	}
}
