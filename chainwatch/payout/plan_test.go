package payout_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/payout"
)

func TestNewPlanRejectsInvalidRequests(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	mainnet := newFixture(t, dogecoin.Mainnet)
	funds := []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, 1000*doge, 10)}
	pay := func(outputs ...payout.Output) payout.Request {
		return payout.Request{Outputs: outputs, Network: dogecoin.Regtest}
	}
	to := f.payTo(t, 0)
	tooMany := make([]payout.Output, payout.OutputsMaxCount+1)
	for i := range tooMany {
		tooMany[i] = payout.Output{Address: to, Koinu: doge}
	}
	tests := []struct {
		name    string
		request payout.Request
		utxos   []payout.UTXO
		want    error
		message string
	}{
		{name: "no outputs", request: pay(), want: payout.ErrNoOutputs},
		{name: "too many outputs", request: pay(tooMany...), want: payout.ErrTooManyOutputs, message: "1001, at most 1000"},
		{name: "below dust", request: pay(payout.Output{Address: to, Koinu: payout.DustKoinu - 1}),
			want: payout.ErrDust, message: "output 0 pays 0.00999999 DOGE, less than 0.01 DOGE"},
		{name: "zero amount", request: pay(payout.Output{Address: to, Koinu: doge}, payout.Output{Address: to}),
			want: payout.ErrDust, message: "output 1"},
		{name: "empty address", request: pay(payout.Output{Koinu: doge}), want: payout.ErrInvalidAddress},
		{name: "not an address", request: pay(payout.Output{Address: "such address, very wow", Koinu: doge}), want: payout.ErrInvalidAddress},
		{name: "bad checksum", request: pay(payout.Output{Address: to[:len(to)-1] + "z", Koinu: doge}), want: payout.ErrInvalidAddress},
		{name: "mainnet address on regtest", request: pay(payout.Output{Address: mainnet.payTo(t, 0), Koinu: doge}),
			want: dogecoin.ErrInvalidAddress, message: "an address of mainnet, not regtest"},
		{name: "shares below 100%", request: pay(
			payout.Output{Address: to, Koinu: doge, DeductFeeShare: 50 * payout.FeeSharePercent},
			payout.Output{Address: to, Koinu: doge, DeductFeeShare: 49*payout.FeeSharePercent + 99_999_999}),
			want: payout.ErrDeductShares, message: "sum to 99.99999999%"},
		{name: "shares above 100%", request: pay(
			payout.Output{Address: to, Koinu: doge, DeductFeeShare: 60 * payout.FeeSharePercent},
			payout.Output{Address: to, Koinu: doge, DeductFeeShare: 41 * payout.FeeSharePercent}),
			want: payout.ErrDeductShares, message: "sum to 101%"},
		{name: "one share above 100%", request: pay(payout.Output{Address: to, Koinu: doge, DeductFeeShare: payout.FeeShareAll + 1}),
			want: payout.ErrDeductShares},
		{name: "output above the money limit", request: pay(payout.Output{Address: to, Koinu: payout.MoneyMaxKoinu + 1}),
			want: payout.ErrAmountOutOfRange},
		{name: "outputs above the money limit together", request: pay(
			payout.Output{Address: to, Koinu: payout.MoneyMaxKoinu}, payout.Output{Address: to, Koinu: doge}),
			want: payout.ErrAmountOutOfRange},
		{name: "explicit fee above the money limit",
			request: payout.Request{Outputs: []payout.Output{{Address: to, Koinu: doge}}, ExplicitFeeKoinu: payout.MoneyMaxKoinu + 1, Network: dogecoin.Regtest},
			want:    payout.ErrAmountOutOfRange},
		{name: "no network", request: payout.Request{Outputs: []payout.Output{{Address: to, Koinu: doge}}},
			want: payout.ErrNetworkMismatch},
		{name: "utxo with a short txid", request: pay(payout.Output{Address: to, Koinu: doge}),
			utxos: []payout.UTXO{{TxID: "abcd", Koinu: doge, Address: address(t, f.payer, dogecoin.External, 0), Height: 1}},
			want:  payout.ErrInvalidUTXO},
		{name: "utxo given twice", request: pay(payout.Output{Address: to, Koinu: doge}),
			utxos: []payout.UTXO{funds[0], funds[0]}, want: payout.ErrInvalidUTXO, message: "given twice"},
		{name: "utxo of another network", request: pay(payout.Output{Address: to, Koinu: doge}),
			utxos: []payout.UTXO{mainnet.utxo(t, 1, dogecoin.External, 0, doge, 1)}, want: payout.ErrInvalidUTXO},
		{name: "utxo at a negative height", request: pay(payout.Output{Address: to, Koinu: doge}),
			utxos: []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, doge, -1)}, want: payout.ErrInvalidUTXO},
		{name: "utxo on branch 2", request: pay(payout.Output{Address: to, Koinu: doge}),
			utxos: []payout.UTXO{{TxID: funds[0].TxID, Koinu: doge, Address: funds[0].Address, Branch: 2, Height: 1}}, want: payout.ErrInvalidUTXO},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			utxos := test.utxos
			if utxos == nil {
				utxos = funds
			}
			plan, err := payout.NewPlan(test.request, utxos)
			if !errors.Is(err, test.want) || plan != nil {
				t.Fatalf("NewPlan = %+v, %v; want %v", plan, err, test.want)
			}
			if !strings.Contains(err.Error(), test.message) {
				t.Fatalf("error %q does not say %q", err, test.message)
			}
		})
	}
}

// TestNewPlanSpendsInOrder: confirmed external outputs oldest first, then own change confirmed
// (oldest first) before unconfirmed, ties by txid; unconfirmed external outputs never.
func TestNewPlanSpendsInOrder(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	var (
		externalAt5     = f.utxo(t, 1, dogecoin.External, 0, doge, 5)
		externalAt3     = f.utxo(t, 2, dogecoin.External, 1, doge, 3)
		externalAt3Too  = f.utxo(t, 3, dogecoin.External, 2, doge, 3)
		changeUnconfirm = f.utxo(t, 4, dogecoin.Change, 0, doge, 0)
		changeAt4       = f.utxo(t, 5, dogecoin.Change, 1, doge, 4)
		externalPending = f.utxo(t, 6, dogecoin.External, 3, 50*doge, 0)
		changeAt2       = f.utxo(t, 7, dogecoin.Change, 2, doge, 2)
		emptyOutput     = f.utxo(t, 8, dogecoin.External, 4, 0, 1)
	)
	utxos := []payout.UTXO{externalAt5, changeUnconfirm, externalPending, changeAt4, externalAt3Too, emptyOutput, changeAt2, externalAt3}
	want := []payout.UTXO{externalAt3, externalAt3Too, externalAt5, changeAt2, changeAt4, changeUnconfirm}
	original := slices.Clone(utxos)
	for count := 1; count <= len(want); count++ {
		// count inputs of 1 DOGE cover count−1 DOGE and the 0.01 DOGE fee.
		request := payout.Request{Outputs: []payout.Output{{Address: f.payTo(t, 0), Koinu: uint64(count-1)*doge + centiDoge/2}}, Network: dogecoin.Regtest}
		if count == 1 {
			request.Outputs[0].Koinu = 90 * centiDoge
		}
		plan, err := payout.NewPlan(request, utxos)
		if err != nil {
			t.Fatalf("%d inputs: %v", count, err)
		}
		if !slices.Equal(plan.Inputs, want[:count]) {
			t.Fatalf("%d inputs: spent %v, want %v", count, txids(plan.Inputs), txids(want[:count]))
		}
	}
	if !slices.Equal(utxos, original) {
		t.Fatal("NewPlan reordered the caller's slice")
	}
	// The pending 50 DOGE is named, not spent.
	request := payout.Request{Outputs: []payout.Output{{Address: f.payTo(t, 0), Koinu: 10 * doge}}, Network: dogecoin.Regtest}
	_, err := payout.NewPlan(request, utxos)
	var shortfall *payout.InsufficientFundsError
	if !errors.As(err, &shortfall) || shortfall.PendingKoinu != 50*doge || shortfall.SpendableKoinu != 6*doge || shortfall.SpendableCount != 6 {
		t.Fatalf("NewPlan(10 DOGE) = %v, want insufficient funds with 6 DOGE spendable in 6 outputs and 50 pending", err)
	}
}

func txids(utxos []payout.UTXO) []string {
	ids := make([]string, len(utxos))
	for i, utxo := range utxos {
		ids[i] = strings.TrimLeft(utxo.TxID, "0")
	}
	return ids
}

// planCase is a request and the plan it must give.
type planCase struct {
	name    string
	request payout.Request
	utxos   []payout.UTXO
	// The plan's expected numbers; inputs is how many of utxos (in spending order) it spends.
	inputs                                        int
	feeKoinu, foldedKoinu, changeKoinu, paidKoinu uint64
	deductedKoinu                                 []uint64
	wantErr                                       error
	wantMessage                                   string
	estimatedBytes                                int
}

func (c planCase) run(t *testing.T) {
	t.Helper()
	plan, err := payout.NewPlan(c.request, c.utxos)
	if c.wantErr != nil {
		if !errors.Is(err, c.wantErr) || plan != nil {
			t.Fatalf("NewPlan = %+v, %v; want %v", plan, err, c.wantErr)
		}
		if !strings.Contains(err.Error(), c.wantMessage) {
			t.Fatalf("error %q does not say %q", err, c.wantMessage)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Inputs) != c.inputs || plan.FeeKoinu != c.feeKoinu || plan.FoldedChangeKoinu != c.foldedKoinu ||
		plan.ChangeKoinu != c.changeKoinu || plan.PaidKoinu != c.paidKoinu || plan.TotalKoinu != c.paidKoinu+c.feeKoinu {
		t.Fatalf("plan: %d inputs, fee %d (folded %d), change %d, paid %d, total %d; want %d inputs, fee %d (folded %d), change %d, paid %d",
			len(plan.Inputs), plan.FeeKoinu, plan.FoldedChangeKoinu, plan.ChangeKoinu, plan.PaidKoinu, plan.TotalKoinu,
			c.inputs, c.feeKoinu, c.foldedKoinu, c.changeKoinu, c.paidKoinu)
	}
	if c.estimatedBytes != 0 && plan.EstimatedBytes != c.estimatedBytes {
		t.Fatalf("estimated %d bytes, want %d", plan.EstimatedBytes, c.estimatedBytes)
	}
	for i, output := range plan.Outputs {
		var deducted uint64
		if c.deductedKoinu != nil {
			deducted = c.deductedKoinu[i]
		}
		if output.DeductedFeeKoinu != deducted || output.Koinu != c.request.Outputs[i].Koinu-deducted || output.Address != c.request.Outputs[i].Address {
			t.Fatalf("output %d = %+v; want %d less %d to %s", i, output, c.request.Outputs[i].Koinu, deducted, c.request.Outputs[i].Address)
		}
	}
	checkInvariants(t, c.request, c.utxos, plan)
}

// checkInvariants asserts what every plan keeps, recomputed from its parts.
func checkInvariants(t testing.TB, request payout.Request, utxos []payout.UTXO, plan *payout.Plan) {
	t.Helper()
	var inputsKoinu, paidKoinu, deductedKoinu uint64
	for _, input := range plan.Inputs {
		inputsKoinu += input.Koinu
		if !slices.Contains(utxos, input) {
			t.Fatalf("input %+v is not one of the utxos", input)
		}
		if input.Branch == dogecoin.External && input.Height == 0 {
			t.Fatalf("input %+v is an unconfirmed external output", input)
		}
	}
	for i, output := range plan.Outputs {
		paidKoinu += output.Koinu
		deductedKoinu += output.DeductedFeeKoinu
		if output.Koinu < payout.DustKoinu {
			t.Fatalf("output %d pays %d, below dust", i, output.Koinu)
		}
		if output.Koinu+output.DeductedFeeKoinu != request.Outputs[i].Koinu {
			t.Fatalf("output %d: %d + deducted %d is not the %d asked", i, output.Koinu, output.DeductedFeeKoinu, request.Outputs[i].Koinu)
		}
	}
	maxFeeKoinu := request.MaxFeeKoinu
	if maxFeeKoinu == 0 {
		maxFeeKoinu = payout.MaxFeeDefaultKoinu
	}
	switch {
	case inputsKoinu != plan.PaidKoinu+plan.FeeKoinu+plan.ChangeKoinu:
		t.Fatalf("inputs %d ≠ paid %d + fee %d + change %d", inputsKoinu, plan.PaidKoinu, plan.FeeKoinu, plan.ChangeKoinu)
	case paidKoinu != plan.PaidKoinu || plan.TotalKoinu != plan.PaidKoinu+plan.FeeKoinu:
		t.Fatalf("paid %d (outputs sum to %d), total %d, fee %d", plan.PaidKoinu, paidKoinu, plan.TotalKoinu, plan.FeeKoinu)
	case request.ExplicitFeeKoinu == 0 && plan.FeeKoinu > maxFeeKoinu:
		t.Fatalf("computed fee %d above the maximum %d", plan.FeeKoinu, maxFeeKoinu)
	case request.ExplicitFeeKoinu == 0 && plan.FeeKoinu < payout.FeeMinKoinu:
		t.Fatalf("computed fee %d below the minimum", plan.FeeKoinu)
	case request.ExplicitFeeKoinu > 0 && plan.FeeKoinu != request.ExplicitFeeKoinu+plan.FoldedChangeKoinu:
		t.Fatalf("fee %d is not the explicit %d + folded %d", plan.FeeKoinu, request.ExplicitFeeKoinu, plan.FoldedChangeKoinu)
	case plan.ChangeKoinu != 0 && plan.ChangeKoinu < payout.DustKoinu:
		t.Fatalf("change %d below dust", plan.ChangeKoinu)
	case plan.FoldedChangeKoinu >= payout.DustKoinu:
		t.Fatalf("folded %d, not below dust", plan.FoldedChangeKoinu)
	case deductedKoinu != 0 && deductedKoinu != plan.FeeKoinu-plan.FoldedChangeKoinu:
		t.Fatalf("deducted %d in all, fee %d less folded %d", deductedKoinu, plan.FeeKoinu, plan.FoldedChangeKoinu)
	}
}

func TestNewPlanFee(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	to := f.payTo(t, 0)
	one := func(koinu uint64) []payout.Output { return []payout.Output{{Address: to, Koinu: koinu}} }
	coins := func(count int, koinu uint64) []payout.UTXO {
		utxos := make([]payout.UTXO, count)
		for i := range utxos {
			utxos[i] = f.utxo(t, i+1, dogecoin.External, uint32(i), koinu, int64(i+1))
		}
		return utxos
	}
	tests := []planCase{
		{
			// 226 bytes at 0.00001 DOGE/byte is 0.00226 DOGE: the 0.01 DOGE minimum applies.
			name:    "minimum fee",
			request: payout.Request{Outputs: one(10 * doge), Network: dogecoin.Regtest},
			utxos:   coins(1, 100*doge), inputs: 1, estimatedBytes: 226,
			feeKoinu: payout.FeeMinKoinu, changeKoinu: 90*doge - payout.FeeMinKoinu, paidKoinu: 10 * doge,
		},
		{
			// 7 inputs: 10 + 7·148 + 2·34 = 1114 bytes at 1000 koinu/byte.
			name:    "floor rate above the minimum fee",
			request: payout.Request{Outputs: one(6*doge + 50*centiDoge), Network: dogecoin.Regtest},
			utxos:   coins(7, doge), inputs: 7, estimatedBytes: 1114,
			feeKoinu: 1_114_000, changeKoinu: 50*centiDoge - 1_114_000, paidKoinu: 6*doge + 50*centiDoge,
		},
		{
			// A node estimate below the floor changes nothing.
			name:    "node rate below the floor",
			request: payout.Request{Outputs: one(6*doge + 50*centiDoge), FeeRateKoinuPerKB: 999_999, Network: dogecoin.Regtest},
			utxos:   coins(7, doge), inputs: 7,
			feeKoinu: 1_114_000, changeKoinu: 50*centiDoge - 1_114_000, paidKoinu: 6*doge + 50*centiDoge,
		},
		{
			// 1114 bytes at 1,000,001 koinu/kB is 1,114,001.114 koinu: rounded up.
			name:    "node rate rounded up",
			request: payout.Request{Outputs: one(6*doge + 50*centiDoge), FeeRateKoinuPerKB: 1_000_001, Network: dogecoin.Regtest},
			utxos:   coins(7, doge), inputs: 7,
			feeKoinu: 1_114_002, changeKoinu: 50*centiDoge - 1_114_002, paidKoinu: 6*doge + 50*centiDoge,
		},
		{
			// 1 DOGE/kB: 0.226 DOGE for one input would do, but 1.5 DOGE needs a second input,
			// which makes the fee 0.374 DOGE (374 bytes).
			name:    "fee re-estimated for the added input",
			request: payout.Request{Outputs: one(150 * centiDoge), FeeRateKoinuPerKB: doge, Network: dogecoin.Regtest},
			utxos:   coins(5, doge), inputs: 2, estimatedBytes: 374,
			feeKoinu: 37_400_000, changeKoinu: 2*doge - 150*centiDoge - 37_400_000, paidKoinu: 150 * centiDoge,
		},
		{
			// 1.7 DOGE + the 2-input fee 0.374 is 2.074 DOGE: a third input, and its fee 0.522.
			name:    "fee re-estimated needs yet another input",
			request: payout.Request{Outputs: one(170 * centiDoge), FeeRateKoinuPerKB: doge, Network: dogecoin.Regtest},
			utxos:   coins(5, doge), inputs: 3, estimatedBytes: 522,
			feeKoinu: 52_200_000, changeKoinu: 3*doge - 170*centiDoge - 52_200_000, paidKoinu: 170 * centiDoge,
		},
		{
			name:    "rate above the maximum fee",
			request: payout.Request{Outputs: one(doge), FeeRateKoinuPerKB: 10 * doge, Network: dogecoin.Regtest},
			utxos:   coins(1, 100*doge), wantErr: payout.ErrFeeAboveMax,
			wantMessage: "spending 1 inputs (226 bytes) costs a fee of 2.26 DOGE, above the maximum fee of 1 DOGE",
		},
		{
			name:    "rate within a raised maximum",
			request: payout.Request{Outputs: one(doge), FeeRateKoinuPerKB: 10 * doge, MaxFeeKoinu: 3 * doge, Network: dogecoin.Regtest},
			utxos:   coins(1, 100*doge), inputs: 1,
			feeKoinu: 226 * centiDoge, changeKoinu: 99*doge - 226*centiDoge, paidKoinu: doge,
		},
		{
			// Inputs of 0.011 DOGE: each adds 148 bytes; at 10 inputs (1558 bytes) the fee
			// 0.01558 passes the maximum 0.015 before the inputs cover 0.1 DOGE.
			name:    "fee grows above the maximum as inputs are added",
			request: payout.Request{Outputs: one(10 * centiDoge), MaxFeeKoinu: 15 * milliDoge, Network: dogecoin.Regtest},
			utxos:   coins(20, 11*milliDoge), wantErr: payout.ErrFeeAboveMax,
			wantMessage: "spending 10 inputs (1558 bytes) costs a fee of 0.01558 DOGE",
		},
		{
			// A maximum beyond any amount is held to MoneyMaxKoinu: the fee of a rate of
			// MaxUint64 koinu/kB saturates and is refused, it does not wrap around.
			name: "absurd rate under an absurd maximum",
			request: payout.Request{Outputs: one(doge), FeeRateKoinuPerKB: math.MaxUint64, MaxFeeKoinu: math.MaxUint64,
				Network: dogecoin.Regtest},
			utxos: coins(1, 100*doge), wantErr: payout.ErrFeeAboveMax,
			wantMessage: "costs a fee of 184467440737.09551615 DOGE, above the maximum fee of 10000000000 DOGE",
		},
		{
			name:    "explicit fee replaces the computed one and ignores the maximum",
			request: payout.Request{Outputs: one(doge), ExplicitFeeKoinu: 5 * doge, FeeRateKoinuPerKB: 100 * doge, Network: dogecoin.Regtest},
			utxos:   coins(1, 100*doge), inputs: 1,
			feeKoinu: 5 * doge, changeKoinu: 94 * doge, paidKoinu: doge,
		},
		{
			name:    "explicit fee below the minimum",
			request: payout.Request{Outputs: one(doge), ExplicitFeeKoinu: 1, Network: dogecoin.Regtest},
			utxos:   coins(1, 100*doge), inputs: 1,
			feeKoinu: 1, changeKoinu: 99*doge - 1, paidKoinu: doge,
		},
		{
			name:    "explicit fee counts toward the inputs needed",
			request: payout.Request{Outputs: one(doge), ExplicitFeeKoinu: 2 * doge, Network: dogecoin.Regtest},
			utxos:   coins(5, doge), inputs: 3,
			feeKoinu: 2 * doge, paidKoinu: doge,
		},
		{
			name:    "too many inputs for a standard transaction",
			request: payout.Request{Outputs: one(doge), MaxFeeKoinu: 100 * doge, Network: dogecoin.Regtest},
			utxos:   coins(700, 2*milliDoge), wantErr: payout.ErrTransactionTooLarge,
			wantMessage: "needs more than 675 inputs",
		},
	}
	for _, test := range tests {
		t.Run(test.name, test.run)
	}
}

func TestNewPlanChange(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	to := f.payTo(t, 0)
	one := func(koinu uint64) []payout.Output { return []payout.Output{{Address: to, Koinu: koinu}} }
	ten := f.utxo(t, 1, dogecoin.External, 0, 10*doge, 1)
	extra := f.utxo(t, 2, dogecoin.External, 1, doge, 2)
	tests := []planCase{
		{
			name:    "change exactly dust is kept",
			request: payout.Request{Outputs: one(10*doge - 2*centiDoge), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, inputs: 1,
			feeKoinu: centiDoge, changeKoinu: centiDoge, paidKoinu: 10*doge - 2*centiDoge,
		},
		{
			name:    "no change",
			request: payout.Request{Outputs: one(10*doge - centiDoge), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, inputs: 1,
			feeKoinu: centiDoge, paidKoinu: 10*doge - centiDoge,
		},
		{
			// 10 − 9.985 − 0.01 = 0.005 DOGE of change: added to the fee, not refused.
			name:    "dust change folded into the fee",
			request: payout.Request{Outputs: one(9985 * milliDoge), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, inputs: 1,
			feeKoinu: 15 * milliDoge, foldedKoinu: 5 * milliDoge, paidKoinu: 9985 * milliDoge,
		},
		{
			name:    "one koinu of change folded",
			request: payout.Request{Outputs: one(10*doge - centiDoge - 1), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, inputs: 1,
			feeKoinu: centiDoge + 1, foldedKoinu: 1, paidKoinu: 10*doge - centiDoge - 1,
		},
		{
			name:    "dust change folded into an explicit fee",
			request: payout.Request{Outputs: one(9975 * milliDoge), ExplicitFeeKoinu: 2 * centiDoge, Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, inputs: 1,
			feeKoinu: 25 * milliDoge, foldedKoinu: 5 * milliDoge, paidKoinu: 9975 * milliDoge,
		},
		{
			// Folding 0.005 would make the fee 0.015, above the 0.012 maximum: one more input
			// turns the change into 1.005 DOGE, kept.
			name:    "folding above the maximum fee spends another input instead",
			request: payout.Request{Outputs: one(9985 * milliDoge), MaxFeeKoinu: 12 * milliDoge, Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{extra, ten}, inputs: 2,
			feeKoinu: centiDoge, changeKoinu: doge + 5*milliDoge, paidKoinu: 9985 * milliDoge,
		},
		{
			name:    "folding above the maximum fee with nothing more to spend",
			request: payout.Request{Outputs: one(9985 * milliDoge), MaxFeeKoinu: 12 * milliDoge, Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{ten}, wantErr: payout.ErrFeeAboveMax,
			wantMessage: "change left would be below 0.01 DOGE",
		},
	}
	for _, test := range tests {
		t.Run(test.name, test.run)
	}
}

func TestNewPlanDeductsTheFeeByShares(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	shared := func(koinu uint64, shares ...payout.FeeShare) []payout.Output {
		outputs := make([]payout.Output, len(shares))
		for i, share := range shares {
			outputs[i] = payout.Output{Address: f.payTo(t, uint32(i)), Koinu: koinu, DeductFeeShare: share}
		}
		return outputs
	}
	hundred := []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, 100*doge, 1)}
	const third = 33_33333333 // 33.33333333%
	tests := []planCase{
		{
			// 10 + 148 + 3·34 = 260 bytes: the 0.01 DOGE minimum, half from each output.
			name:    "halves",
			request: payout.Request{Outputs: shared(10*doge, 50*payout.FeeSharePercent, 50*payout.FeeSharePercent), Network: dogecoin.Regtest},
			utxos:   hundred, inputs: 1, estimatedBytes: 260,
			feeKoinu: centiDoge, changeKoinu: 80 * doge, paidKoinu: 20*doge - centiDoge,
			deductedKoinu: []uint64{centiDoge / 2, centiDoge / 2},
		},
		{
			// 100 koinu by thirds: 33 each and one left over, to the largest remainder (the
			// third output's 33.33333334%).
			name:    "thirds, remainder to the largest remainder",
			request: payout.Request{Outputs: shared(doge, third, third, payout.FeeShareAll-2*third), ExplicitFeeKoinu: 100, Network: dogecoin.Regtest},
			utxos:   hundred, inputs: 1,
			feeKoinu: 100, changeKoinu: 97 * doge, paidKoinu: 3*doge - 100,
			deductedKoinu: []uint64{33, 33, 34},
		},
		{
			name:    "equal remainders, lower index first",
			request: payout.Request{Outputs: shared(doge, 50*payout.FeeSharePercent, 50*payout.FeeSharePercent), ExplicitFeeKoinu: 3, Network: dogecoin.Regtest},
			utxos:   hundred, inputs: 1,
			feeKoinu: 3, changeKoinu: 98 * doge, paidKoinu: 2*doge - 3,
			deductedKoinu: []uint64{2, 1},
		},
		{
			name:    "an output with no share pays nothing",
			request: payout.Request{Outputs: shared(doge, 0, payout.FeeShareAll, 0), ExplicitFeeKoinu: 7, Network: dogecoin.Regtest},
			utxos:   hundred, inputs: 1,
			feeKoinu: 7, changeKoinu: 97 * doge, paidKoinu: 3*doge - 7,
			deductedKoinu: []uint64{0, 7, 0},
		},
		{
			// Seven equal-ish shares of a prime fee: every koinu is accounted for.
			name: "many shares sum exactly",
			request: payout.Request{Outputs: shared(doge, 14_28571428, 14_28571428, 14_28571428, 14_28571429, 14_28571429, 14_28571429, 14_28571429),
				ExplicitFeeKoinu: 1_000_003, Network: dogecoin.Regtest},
			utxos: hundred, inputs: 1,
			feeKoinu: 1_000_003, changeKoinu: 93 * doge, paidKoinu: 7*doge - 1_000_003,
			deductedKoinu: []uint64{142857, 142857, 142857, 142858, 142858, 142858, 142858},
		},
		{
			// Deduct mode selects inputs for the outputs alone: 20 DOGE covers 20 DOGE.
			name:    "inputs cover the outputs only",
			request: payout.Request{Outputs: shared(10*doge, 50*payout.FeeSharePercent, 50*payout.FeeSharePercent), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, 20*doge, 1), f.utxo(t, 2, dogecoin.External, 1, 20*doge, 2)},
			inputs:  1, feeKoinu: centiDoge, paidKoinu: 20*doge - centiDoge,
			deductedKoinu: []uint64{centiDoge / 2, centiDoge / 2},
		},
		{
			// 20.005 DOGE in, 20 out: the 0.005 of change is folded, not deducted.
			name:    "dust change folded in deduct mode",
			request: payout.Request{Outputs: shared(10*doge, 50*payout.FeeSharePercent, 50*payout.FeeSharePercent), Network: dogecoin.Regtest},
			utxos:   []payout.UTXO{f.utxo(t, 1, dogecoin.External, 0, 20*doge+5*milliDoge, 1)},
			inputs:  1, feeKoinu: 15 * milliDoge, foldedKoinu: 5 * milliDoge, paidKoinu: 20*doge - centiDoge,
			deductedKoinu: []uint64{centiDoge / 2, centiDoge / 2},
		},
		{
			name:    "an output left below dust",
			request: payout.Request{Outputs: shared(15*milliDoge, payout.FeeShareAll), Network: dogecoin.Regtest},
			utxos:   hundred, wantErr: payout.ErrDust,
			wantMessage: "output 0 pays 0.015 DOGE; its 0.01 DOGE share of the fee leaves 0.005 DOGE, less than 0.01 DOGE",
		},
		{
			name:    "a fee share larger than the output",
			request: payout.Request{Outputs: shared(doge, payout.FeeShareAll), ExplicitFeeKoinu: 2 * doge, Network: dogecoin.Regtest},
			utxos:   hundred, wantErr: payout.ErrDust,
			wantMessage: "its 2 DOGE share of the fee leaves 0 DOGE",
		},
		{
			name:    "insufficient funds in deduct mode names no fee",
			request: payout.Request{Outputs: shared(100*doge+1, payout.FeeShareAll), Network: dogecoin.Regtest},
			utxos:   hundred, wantErr: payout.ErrInsufficientFunds,
			wantMessage: "100 DOGE spendable in 1 outputs, 100.00000001 DOGE needed (100.00000001 to pay + 0 fee)",
		},
	}
	for _, test := range tests {
		t.Run(test.name, test.run)
	}
}

func TestNewPlanInsufficientFunds(t *testing.T) {
	f := newFixture(t, dogecoin.Regtest)
	request := payout.Request{Outputs: []payout.Output{{Address: f.payTo(t, 0), Koinu: 3 * doge}}, Network: dogecoin.Regtest}
	utxos := []payout.UTXO{
		f.utxo(t, 1, dogecoin.External, 0, doge, 1),
		f.utxo(t, 2, dogecoin.Change, 0, doge, 0),
		f.utxo(t, 3, dogecoin.External, 1, 5*doge, 0),
	}
	_, err := payout.NewPlan(request, utxos)
	var shortfall *payout.InsufficientFundsError
	if !errors.Is(err, payout.ErrInsufficientFunds) || !errors.As(err, &shortfall) {
		t.Fatalf("NewPlan = %v, want ErrInsufficientFunds", err)
	}
	want := payout.InsufficientFundsError{SpendableKoinu: 2 * doge, SpendableCount: 2, PendingKoinu: 5 * doge, OutputsKoinu: 3 * doge, FeeKoinu: centiDoge}
	if *shortfall != want || shortfall.NeededKoinu() != 301*centiDoge {
		t.Fatalf("shortfall = %+v, want %+v", *shortfall, want)
	}
	const message = "insufficient funds: 2 DOGE spendable in 2 outputs, 3.01 DOGE needed (3 to pay + 0.01 fee); 5 DOGE more awaits confirmation"
	if err.Error() != message {
		t.Fatalf("message %q, want %q", err, message)
	}
	// With nothing at all to spend.
	if _, err := payout.NewPlan(request, nil); !errors.As(err, &shortfall) || shortfall.SpendableKoinu != 0 || shortfall.FeeKoinu != centiDoge {
		t.Fatalf("NewPlan(no utxos) = %v", err)
	}
}

func TestFormatDOGE(t *testing.T) {
	for koinu, want := range map[uint64]string{0: "0", 1: "0.00000001", doge: "1", 150 * centiDoge: "1.5", 123456789012: "1234.56789012"} {
		if got := payout.FormatDOGE(koinu); got != want {
			t.Errorf("FormatDOGE(%d) = %q, want %q", koinu, got, want)
		}
	}
}
