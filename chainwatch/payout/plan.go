package payout

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// Amounts, rates and limits. Amounts are koinu.
const (
	// KoinuPerDoge is one DOGE in koinu.
	KoinuPerDoge uint64 = 100_000_000
	// DustKoinu is the smallest output a payout pays and the smallest change it keeps: 0.01
	// DOGE, GigaWallet's limit (Dogecoin Core's soft dust limit, below which every output
	// costs an extra fee).
	DustKoinu uint64 = 1_000_000
	// FeeMinKoinu is the smallest computed fee: 0.01 DOGE.
	FeeMinKoinu uint64 = 1_000_000
	// FeeRateMinKoinuPerByte is the lowest fee rate: 0.00001 DOGE per byte (0.01 DOGE per kB).
	FeeRateMinKoinuPerByte uint64 = 1_000
	// MaxFeeDefaultKoinu is the maximum computed fee when a request gives none: 1 DOGE.
	MaxFeeDefaultKoinu uint64 = KoinuPerDoge
	// MoneyMaxKoinu bounds every amount and every sum: Dogecoin Core's MAX_MONEY, 10 billion
	// DOGE. It keeps sums of up to OutputsMaxCount amounts far from overflowing a uint64, and
	// every value within a transaction output's int64.
	MoneyMaxKoinu uint64 = 10_000_000_000 * KoinuPerDoge
	// OutputsMaxCount bounds a request's outputs (change not counted).
	OutputsMaxCount = 1000
	// TransactionMaxBytes bounds a payout transaction's estimated size: Dogecoin Core's
	// MAX_STANDARD_TX_SIZE, the largest transaction nodes relay.
	TransactionMaxBytes = 100_000
)

// GigaWallet's size estimate of a transaction: its fixed part, one P2PKH input with a
// compressed key (its largest size), one P2PKH output.
const (
	estimateOverheadBytes = 10
	estimateInputBytes    = 148
	estimateOutputBytes   = 34
)

// FeeShare is an output's share of the fee in deduct mode, in hundred-millionths of a percent:
// GigaWallet's deduct_fee_percent, a decimal with up to eight places, as an exact integer.
// 12.5% is 12.5·FeeSharePercent = 1_250_000_000.
type FeeShare uint64

const (
	// FeeSharePercent is one percent.
	FeeSharePercent FeeShare = 100_000_000
	// FeeShareAll is one hundred percent: the sum of the shares in deduct mode.
	FeeShareAll FeeShare = 100 * FeeSharePercent
)

// Request is a payout to make from one account.
type Request struct {
	// Outputs are paid in this order (the change, if any, follows them).
	Outputs []Output
	// ExplicitFeeKoinu, when above zero, is the fee, whatever the size and MaxFeeKoinu.
	ExplicitFeeKoinu uint64
	// MaxFeeKoinu bounds the computed fee; 0 means MaxFeeDefaultKoinu, and a value above
	// MoneyMaxKoinu means MoneyMaxKoinu.
	MaxFeeKoinu uint64
	// FeeRateKoinuPerKB is the node's fee estimate (estimatefee) in koinu per 1000 bytes; 0
	// when unknown, leaving FeeRateMinKoinuPerByte.
	FeeRateKoinuPerKB uint64
	// Network is the network the addresses and the transaction belong to.
	Network dogecoin.Network
}

// Output is one payment of a Request.
type Output struct {
	// Address is a P2PKH address of the request's network.
	Address string
	// Koinu is the amount asked, before any fee share is deducted.
	Koinu uint64
	// DeductFeeShare is the share of the fee this output pays (deduct mode); zero in every
	// output otherwise.
	DeductFeeShare FeeShare
}

// UTXO is an unspent P2PKH output of the paying account, as the caller tracks it: what Plan
// needs to choose and order it, and Sign to find its key (the account's path /Branch/Index).
type UTXO struct {
	// TxID is the id of the transaction holding the output, in display hex (as nodes print
	// it); Vout is its index there.
	TxID string
	Vout uint32
	// Koinu is the output's value.
	Koinu uint64
	// Address is the output's P2PKH address: the address of the account's key Branch/Index.
	Address string
	// Branch is dogecoin.External for an invoice address's output, dogecoin.Change for our
	// own change.
	Branch dogecoin.Branch
	// Index is the address's index in its branch.
	Index uint32
	// Height is the height of the block that confirmed the output; 0 while unconfirmed.
	Height int64
}

// Plan is a payout decided but not signed: the inputs to spend, the outputs after fee
// deduction, the fee and the change. A Plan satisfies, and Sign checks again:
// Σ Inputs.Koinu = PaidKoinu + FeeKoinu + ChangeKoinu, PaidKoinu = Σ Outputs.Koinu,
// TotalKoinu = PaidKoinu + FeeKoinu, every output ≥ DustKoinu, ChangeKoinu = 0 or ≥ DustKoinu.
type Plan struct {
	Network dogecoin.Network
	// Inputs are spent in this order: the order of selection.
	Inputs []UTXO
	// Outputs are the request's, in its order, with their fee shares deducted.
	Outputs []PlannedOutput
	// ChangeKoinu returns to the account as the last output; 0 for none.
	ChangeKoinu uint64
	// FeeKoinu is the transaction's fee, including FoldedChangeKoinu.
	FeeKoinu uint64
	// FoldedChangeKoinu is change below DustKoinu that was added to the fee; 0 if none.
	FoldedChangeKoinu uint64
	// PaidKoinu is what the outputs receive (after deduction), TotalKoinu that plus the fee:
	// what the account spends (GigaWallet's paid and total).
	PaidKoinu  uint64
	TotalKoinu uint64
	// EstimatedBytes is GigaWallet's size estimate for Inputs and Outputs (and a change
	// output, always counted), on which a computed fee is based; Sign checks it is that.
	EstimatedBytes int
}

// PlannedOutput is one output of a Plan.
type PlannedOutput struct {
	Address string
	// Koinu is what the output pays: the amount asked less DeductedFeeKoinu.
	Koinu uint64
	// DeductedFeeKoinu is this output's share of the fee (deduct mode), 0 otherwise.
	DeductedFeeKoinu uint64
}

// NewPlan decides how to pay req from utxos, the account's unspent outputs not reserved by
// another payout, in any order. It returns an error wrapping one of the package's sentinels
// (see the package documentation for the rules) and never a partial plan.
func NewPlan(req Request, utxos []UTXO) (*Plan, error) {
	checked, err := checkRequest(req)
	if err != nil {
		return nil, err
	}
	spendable, pendingKoinu, err := spendableInOrder(utxos, req.Network)
	if err != nil {
		return nil, err
	}
	selection, err := selectInputs(req, checked, spendable, pendingKoinu)
	if err != nil {
		return nil, err
	}
	plan := &Plan{
		Network:           req.Network,
		Inputs:            selection.inputs,
		ChangeKoinu:       selection.changeKoinu,
		FeeKoinu:          selection.feeKoinu + selection.foldedKoinu,
		FoldedChangeKoinu: selection.foldedKoinu,
		EstimatedBytes:    selection.estimatedBytes,
	}
	var deducted []uint64
	if checked.deductMode {
		deducted = splitFee(selection.feeKoinu, req.Outputs)
	}
	for i, output := range req.Outputs {
		planned := PlannedOutput{Address: output.Address, Koinu: output.Koinu}
		if deducted != nil {
			planned.DeductedFeeKoinu = deducted[i]
			if deducted[i] > output.Koinu || output.Koinu-deducted[i] < DustKoinu {
				return nil, fmt.Errorf("%w: output %d pays %s DOGE; its %s DOGE share of the fee leaves %s DOGE, less than %s DOGE",
					ErrDust, i, FormatDOGE(output.Koinu), FormatDOGE(deducted[i]),
					FormatDOGE(output.Koinu-min(deducted[i], output.Koinu)), FormatDOGE(DustKoinu))
			}
			planned.Koinu -= deducted[i]
		}
		plan.PaidKoinu += planned.Koinu
		plan.Outputs = append(plan.Outputs, planned)
	}
	plan.TotalKoinu = plan.PaidKoinu + plan.FeeKoinu
	if err := plan.check(); err != nil {
		// A rule above let through a plan that breaks an invariant: a bug, not a rejection.
		panic(fmt.Sprintf("payout: NewPlan built an invalid plan: %v", err))
	}
	if !checked.explicitFee && plan.FeeKoinu > checked.maxFeeKoinu {
		panic(fmt.Sprintf("payout: NewPlan's computed fee %d is above the maximum %d", plan.FeeKoinu, checked.maxFeeKoinu))
	}
	return plan, nil
}

// checkedRequest is what checkRequest learned of a valid request.
type checkedRequest struct {
	outputsKoinu uint64
	maxFeeKoinu  uint64
	deductMode   bool
	explicitFee  bool
}

// checkRequest applies the rules on the request alone, before any output is chosen.
func checkRequest(req Request) (checkedRequest, error) {
	if !slices.Contains(dogecoin.Networks(), req.Network) {
		return checkedRequest{}, fmt.Errorf("%w: the request's network %q is not a known Dogecoin network", ErrNetworkMismatch, req.Network.Name)
	}
	switch {
	case len(req.Outputs) == 0:
		return checkedRequest{}, fmt.Errorf("%w: give at least one address and amount", ErrNoOutputs)
	case len(req.Outputs) > OutputsMaxCount:
		return checkedRequest{}, fmt.Errorf("%w: %d, at most %d", ErrTooManyOutputs, len(req.Outputs), OutputsMaxCount)
	}
	checked := checkedRequest{
		maxFeeKoinu: req.MaxFeeKoinu,
		explicitFee: req.ExplicitFeeKoinu > 0,
	}
	if checked.maxFeeKoinu == 0 {
		checked.maxFeeKoinu = MaxFeeDefaultKoinu
	}
	// A maximum above any amount means no maximum; holding it to MoneyMaxKoinu keeps
	// outputs + fee within a uint64.
	checked.maxFeeKoinu = min(checked.maxFeeKoinu, MoneyMaxKoinu)
	var sharesTotal FeeShare
	for i, output := range req.Outputs {
		if err := dogecoin.ValidateP2PKH(output.Address, req.Network); err != nil {
			return checkedRequest{}, fmt.Errorf("output %d: %w", i, err)
		}
		switch {
		case output.Koinu < DustKoinu:
			return checkedRequest{}, fmt.Errorf("%w: output %d pays %s DOGE, less than %s DOGE",
				ErrDust, i, FormatDOGE(output.Koinu), FormatDOGE(DustKoinu))
		case output.Koinu > MoneyMaxKoinu:
			return checkedRequest{}, fmt.Errorf("%w: output %d pays more than %s DOGE", ErrAmountOutOfRange, i, FormatDOGE(MoneyMaxKoinu))
		case output.DeductFeeShare > FeeShareAll:
			return checkedRequest{}, fmt.Errorf("%w: output %d deducts more than 100%% of the fee", ErrDeductShares, i)
		}
		// No overflow: at most OutputsMaxCount terms, each at most MoneyMaxKoinu or FeeShareAll.
		checked.outputsKoinu += output.Koinu
		sharesTotal += output.DeductFeeShare
	}
	if checked.outputsKoinu > MoneyMaxKoinu {
		return checkedRequest{}, fmt.Errorf("%w: the outputs pay more than %s DOGE in all", ErrAmountOutOfRange, FormatDOGE(MoneyMaxKoinu))
	}
	if req.ExplicitFeeKoinu > MoneyMaxKoinu {
		return checkedRequest{}, fmt.Errorf("%w: explicit fee above %s DOGE", ErrAmountOutOfRange, FormatDOGE(MoneyMaxKoinu))
	}
	switch sharesTotal {
	case 0:
	case FeeShareAll:
		checked.deductMode = true
	default:
		return checkedRequest{}, fmt.Errorf("%w: the outputs' fee percentages sum to %s%%; they must all be 0 or sum to exactly 100%%",
			ErrDeductShares, formatShare(sharesTotal))
	}
	return checked, nil
}

// spendOrderClass ranks unspent outputs for spending: external confirmed, own change
// confirmed, own change unconfirmed.
func spendOrderClass(utxo UTXO) int {
	switch {
	case utxo.Branch == dogecoin.External:
		return 0
	case utxo.Height > 0:
		return 1
	default:
		return 2
	}
}

// compareSpendOrder orders unspent outputs for spending (the package documentation's rule).
func compareSpendOrder(a, b UTXO) int {
	return cmp.Or(
		cmp.Compare(spendOrderClass(a), spendOrderClass(b)),
		cmp.Compare(a.Height, b.Height),
		strings.Compare(a.TxID, b.TxID),
		cmp.Compare(a.Vout, b.Vout),
	)
}

// spendableInOrder checks utxos and returns the spendable ones in spending order, with the sum
// of those not spendable until confirmed. Outputs of zero value are left out: spending one
// costs fee and adds nothing.
func spendableInOrder(utxos []UTXO, network dogecoin.Network) ([]UTXO, uint64, error) {
	spendable := make([]UTXO, 0, len(utxos))
	seen := make(map[wire.OutPoint]struct{}, len(utxos))
	var pendingKoinu uint64
	for i, utxo := range utxos {
		outpoint, err := checkUTXO(utxo, network)
		if err != nil {
			return nil, 0, fmt.Errorf("unspent output %d: %w", i, err)
		}
		if _, duplicate := seen[outpoint]; duplicate {
			return nil, 0, fmt.Errorf("%w: %s:%d given twice", ErrInvalidUTXO, utxo.TxID, utxo.Vout)
		}
		seen[outpoint] = struct{}{}
		switch {
		case utxo.Koinu == 0:
		case utxo.Branch == dogecoin.External && utxo.Height == 0:
			// Bounded: MoneyMaxKoinu per output, and a uint64 holds over 18 of them; beyond
			// that the sum saturates (it only feeds a message).
			pendingKoinu = addSaturating(pendingKoinu, utxo.Koinu)
		default:
			spendable = append(spendable, utxo)
		}
	}
	slices.SortFunc(spendable, compareSpendOrder)
	return spendable, pendingKoinu, nil
}

// checkUTXO returns the outpoint of utxo if it describes a spendable output of network.
func checkUTXO(utxo UTXO, network dogecoin.Network) (wire.OutPoint, error) {
	if len(utxo.TxID) != 2*chainhash.HashSize {
		return wire.OutPoint{}, fmt.Errorf("%w: txid %q is not %d hex digits", ErrInvalidUTXO, utxo.TxID, 2*chainhash.HashSize)
	}
	hash, err := chainhash.NewHashFromStr(utxo.TxID)
	if err != nil {
		return wire.OutPoint{}, fmt.Errorf("%w: txid %q: %w", ErrInvalidUTXO, utxo.TxID, err)
	}
	switch {
	case utxo.Koinu > MoneyMaxKoinu:
		return wire.OutPoint{}, fmt.Errorf("%w: %s:%d holds more than %s DOGE", ErrInvalidUTXO, utxo.TxID, utxo.Vout, FormatDOGE(MoneyMaxKoinu))
	case utxo.Height < 0:
		return wire.OutPoint{}, fmt.Errorf("%w: %s:%d at height %d", ErrInvalidUTXO, utxo.TxID, utxo.Vout, utxo.Height)
	case utxo.Branch != dogecoin.External && utxo.Branch != dogecoin.Change:
		return wire.OutPoint{}, fmt.Errorf("%w: %s:%d on branch %d", ErrInvalidUTXO, utxo.TxID, utxo.Vout, utxo.Branch)
	case utxo.Index > dogecoin.IndexMax:
		return wire.OutPoint{}, fmt.Errorf("%w: %s:%d at address index %d", ErrInvalidUTXO, utxo.TxID, utxo.Vout, utxo.Index)
	}
	if err := dogecoin.ValidateP2PKH(utxo.Address, network); err != nil {
		return wire.OutPoint{}, fmt.Errorf("%w: %s:%d: %w", ErrInvalidUTXO, utxo.TxID, utxo.Vout, err)
	}
	return wire.OutPoint{Hash: *hash, Index: utxo.Vout}, nil
}

// selection is what selectInputs chose.
type selection struct {
	inputs []UTXO
	// feeKoinu is the fee before folding (the part deduct mode splits), foldedKoinu the dust
	// change added to it.
	feeKoinu       uint64
	foldedKoinu    uint64
	changeKoinu    uint64
	estimatedBytes int
}

// selectInputs adds spendable outputs, in order, until they pay the request (see the package
// documentation).
func selectInputs(req Request, checked checkedRequest, spendable []UTXO, pendingKoinu uint64) (selection, error) {
	var inputsKoinu uint64
	// foldBlocked records that the last input count covered the payout but only with change
	// too small to keep and too large to fold under the maximum fee.
	foldBlocked := false
	for count := 1; count <= len(spendable); count++ {
		// No overflow: the loop stops once the inputs cover at most 2·MoneyMaxKoinu, and each
		// input holds at most MoneyMaxKoinu.
		inputsKoinu += spendable[count-1].Koinu
		estimatedBytes := estimateBytes(count, len(req.Outputs))
		if estimatedBytes > TransactionMaxBytes {
			return selection{}, fmt.Errorf("%w: paying %d outputs needs more than %d inputs, over %d bytes",
				ErrTransactionTooLarge, len(req.Outputs), count-1, TransactionMaxBytes)
		}
		feeKoinu := req.ExplicitFeeKoinu
		if !checked.explicitFee {
			feeKoinu = computeFeeKoinu(estimatedBytes, req.FeeRateKoinuPerKB)
			if feeKoinu > checked.maxFeeKoinu {
				return selection{}, fmt.Errorf("%w: spending %d inputs (%d bytes) costs a fee of %s DOGE, above the maximum fee of %s DOGE",
					ErrFeeAboveMax, count, estimatedBytes, FormatDOGE(feeKoinu), FormatDOGE(checked.maxFeeKoinu))
			}
		}
		neededKoinu := checked.outputsKoinu
		if !checked.deductMode {
			neededKoinu += feeKoinu
		}
		if inputsKoinu < neededKoinu {
			continue
		}
		chosen := selection{
			inputs:         slices.Clone(spendable[:count]),
			feeKoinu:       feeKoinu,
			changeKoinu:    inputsKoinu - neededKoinu,
			estimatedBytes: estimatedBytes,
		}
		if chosen.changeKoinu > 0 && chosen.changeKoinu < DustKoinu {
			if !checked.explicitFee && feeKoinu+chosen.changeKoinu > checked.maxFeeKoinu {
				foldBlocked = true
				continue
			}
			chosen.foldedKoinu, chosen.changeKoinu = chosen.changeKoinu, 0
		}
		return chosen, nil
	}
	if foldBlocked {
		return selection{}, fmt.Errorf("%w: the change left would be below %s DOGE and adding it to the fee would take the fee above the maximum of %s DOGE; raise the maximum fee or change the amounts",
			ErrFeeAboveMax, FormatDOGE(DustKoinu), FormatDOGE(checked.maxFeeKoinu))
	}
	shortfall := &InsufficientFundsError{
		SpendableCount: len(spendable),
		PendingKoinu:   pendingKoinu,
		OutputsKoinu:   checked.outputsKoinu,
	}
	for _, utxo := range spendable {
		shortfall.SpendableKoinu += utxo.Koinu
	}
	if !checked.deductMode {
		shortfall.FeeKoinu = req.ExplicitFeeKoinu
		if !checked.explicitFee {
			shortfall.FeeKoinu = computeFeeKoinu(estimateBytes(max(1, len(spendable)), len(req.Outputs)), req.FeeRateKoinuPerKB)
		}
	}
	return selection{}, shortfall
}

// estimateBytes is GigaWallet's estimate of a transaction's size: 10 + 148·inputs +
// 34·(outputs+1), a change output always counted.
func estimateBytes(inputCount, outputCount int) int {
	return estimateOverheadBytes + estimateInputBytes*inputCount + estimateOutputBytes*(outputCount+1)
}

// computeFeeKoinu is the fee of a transaction of sizeBytes: the largest of
// ⌈size·rate/1000⌉, size·FeeRateMinKoinuPerByte and FeeMinKoinu. It saturates at MaxUint64
// rather than overflow (any maximum fee refuses that).
func computeFeeKoinu(sizeBytes int, rateKoinuPerKB uint64) uint64 {
	size := uint64(sizeBytes)
	byRate := uint64(math.MaxUint64)
	if high, low := bits.Mul64(size, rateKoinuPerKB); high == 0 {
		byRate = low/1000 + min(low%1000, 1)
	}
	return max(byRate, size*FeeRateMinKoinuPerByte, FeeMinKoinu)
}

// splitFee divides feeKoinu among outputs by their shares (which sum to FeeShareAll): each
// gets ⌊fee·share/FeeShareAll⌋, and the koinu left over go one each to the outputs with the
// largest remainders, ties to the lower index. The parts sum to feeKoinu exactly.
func splitFee(feeKoinu uint64, outputs []Output) []uint64 {
	parts := make([]uint64, len(outputs))
	remainders := make([]uint64, len(outputs))
	var assigned uint64
	for i, output := range outputs {
		high, low := bits.Mul64(feeKoinu, uint64(output.DeductFeeShare))
		// high < share ≤ FeeShareAll, so the quotient fits and Div64 does not panic.
		parts[i], remainders[i] = bits.Div64(high, low, uint64(FeeShareAll))
		assigned += parts[i]
	}
	leftover := feeKoinu - assigned
	if leftover == 0 {
		return parts
	}
	order := make([]int, len(outputs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(remainders[b], remainders[a]) })
	// The remainders sum to leftover·FeeShareAll and each is below FeeShareAll, so at least
	// leftover outputs have a remainder above zero: an output with no share gets nothing.
	for _, i := range order[:leftover] {
		parts[i]++
	}
	return parts
}

// check returns an error if the plan breaks a plan's invariants (see Plan).
func (p *Plan) check() error {
	switch {
	case len(p.Inputs) == 0:
		return fmt.Errorf("%w: no inputs", ErrInvalidPlan)
	case len(p.Outputs) == 0 || len(p.Outputs) > OutputsMaxCount:
		return fmt.Errorf("%w: %d outputs, want 1..%d", ErrInvalidPlan, len(p.Outputs), OutputsMaxCount)
	case p.EstimatedBytes != estimateBytes(len(p.Inputs), len(p.Outputs)) || p.EstimatedBytes > TransactionMaxBytes:
		return fmt.Errorf("%w: %d inputs and %d outputs estimated at %d bytes (at most %d)",
			ErrInvalidPlan, len(p.Inputs), len(p.Outputs), p.EstimatedBytes, TransactionMaxBytes)
	case p.ChangeKoinu > 0 && p.ChangeKoinu < DustKoinu:
		return fmt.Errorf("%w: change %d below the dust limit", ErrInvalidPlan, p.ChangeKoinu)
	case p.ChangeKoinu > MoneyMaxKoinu || p.FeeKoinu > MoneyMaxKoinu || p.PaidKoinu > MoneyMaxKoinu:
		return fmt.Errorf("%w: change, fee or paid above the money limit", ErrInvalidPlan)
	case p.FoldedChangeKoinu > p.FeeKoinu:
		return fmt.Errorf("%w: folded change %d above the fee %d", ErrInvalidPlan, p.FoldedChangeKoinu, p.FeeKoinu)
	}
	var inputsKoinu uint64
	for i, input := range p.Inputs {
		if input.Koinu == 0 || input.Koinu > MoneyMaxKoinu {
			return fmt.Errorf("%w: input %d holds %d koinu", ErrInvalidPlan, i, input.Koinu)
		}
		inputsKoinu += input.Koinu // under 700 inputs (the size limit) of at most 2^60 each: no overflow
	}
	var paidKoinu uint64
	for i, output := range p.Outputs {
		if output.Koinu < DustKoinu || output.Koinu > MoneyMaxKoinu {
			return fmt.Errorf("%w: output %d pays %d koinu", ErrInvalidPlan, i, output.Koinu)
		}
		paidKoinu += output.Koinu
	}
	switch {
	case paidKoinu != p.PaidKoinu:
		return fmt.Errorf("%w: outputs sum to %d, paid is %d", ErrInvalidPlan, paidKoinu, p.PaidKoinu)
	case p.TotalKoinu != p.PaidKoinu+p.FeeKoinu:
		return fmt.Errorf("%w: total %d is not paid %d + fee %d", ErrInvalidPlan, p.TotalKoinu, p.PaidKoinu, p.FeeKoinu)
	case inputsKoinu != p.TotalKoinu+p.ChangeKoinu:
		return fmt.Errorf("%w: inputs sum to %d, not total %d + change %d", ErrInvalidPlan, inputsKoinu, p.TotalKoinu, p.ChangeKoinu)
	}
	return nil
}

// addSaturating returns a + b, or MaxUint64 if that overflows.
func addSaturating(a, b uint64) uint64 {
	sum, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}

// formatShare writes a fee share as a percentage without trailing zeros.
func formatShare(share FeeShare) string {
	return FormatDOGE(uint64(share)) // a percent has eight decimals, as a DOGE does
}
