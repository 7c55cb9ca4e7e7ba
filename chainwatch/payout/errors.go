package payout

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// Errors a client's request caused: its shape (HTTP 400).
var (
	// ErrNoOutputs: a request that pays nobody.
	ErrNoOutputs = errors.New("payout has no outputs")
	// ErrTooManyOutputs: more than OutputsMaxCount outputs.
	ErrTooManyOutputs = errors.New("payout has too many outputs")
	// ErrInvalidAddress: an output (or the change) address that is not a P2PKH address of the
	// network. It is dogecoin.ErrInvalidAddress, so errors.Is matches either name.
	ErrInvalidAddress = dogecoin.ErrInvalidAddress
	// ErrDust: an output below DustKoinu, as asked or after its share of the fee.
	ErrDust = errors.New("output below the dust limit")
	// ErrDeductShares: fee shares that are neither all zero nor summing to 100%.
	ErrDeductShares = errors.New("invalid fee deduction shares")
	// ErrAmountOutOfRange: an amount or a sum above MoneyMaxKoinu.
	ErrAmountOutOfRange = errors.New("amount out of range")
)

// Errors of the account's state: the request is well formed but cannot be paid now (HTTP 422).
var (
	// ErrInsufficientFunds: the spendable outputs do not cover the payout and its fee. The
	// error is an *InsufficientFundsError, which says how much is spendable and how much is
	// needed.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrFeeAboveMax: the computed fee is above the request's maximum fee.
	ErrFeeAboveMax = errors.New("fee above the maximum fee")
	// ErrTransactionTooLarge: the payout needs more inputs and outputs than a standard
	// transaction may hold (TransactionMaxBytes).
	ErrTransactionTooLarge = errors.New("transaction too large")
)

// Errors of the caller's own data: bugs, not the client's doing (HTTP 500).
var (
	// ErrInvalidUTXO: an unspent output handed to Plan that cannot be spent as described.
	ErrInvalidUTXO = errors.New("invalid unspent output")
	// ErrInvalidPlan: a plan handed to Sign that breaks a plan's invariants.
	ErrInvalidPlan = errors.New("invalid payout plan")
	// ErrNetworkMismatch: a plan signed for another network than it was planned on, or a
	// request of no known network.
	ErrNetworkMismatch = errors.New("network mismatch")
	// ErrKeyMismatch: the key source's key of an input's path does not own the input's
	// address.
	ErrKeyMismatch = errors.New("signing key does not own the input")
	// ErrSignatureInvalid: a signed input failed script verification.
	ErrSignatureInvalid = errors.New("signed input does not verify")
)

// InsufficientFundsError is ErrInsufficientFunds with the numbers a client needs to act on it.
type InsufficientFundsError struct {
	// SpendableKoinu is the sum of the outputs Plan may spend, SpendableCount their number.
	SpendableKoinu uint64
	SpendableCount int
	// PendingKoinu is the sum of unconfirmed outputs of external addresses: not spendable
	// until confirmed.
	PendingKoinu uint64
	// OutputsKoinu is what the outputs ask; FeeKoinu the fee of a transaction spending every
	// spendable output (0 in deduct mode, where the outputs pay it).
	OutputsKoinu uint64
	FeeKoinu     uint64
}

// NeededKoinu is what the payout needs: its outputs and the fee it adds.
func (e *InsufficientFundsError) NeededKoinu() uint64 { return e.OutputsKoinu + e.FeeKoinu }

func (e *InsufficientFundsError) Error() string {
	message := fmt.Sprintf("%s: %s DOGE spendable in %d outputs, %s DOGE needed (%s to pay + %s fee)",
		ErrInsufficientFunds, FormatDOGE(e.SpendableKoinu), e.SpendableCount, FormatDOGE(e.NeededKoinu()),
		FormatDOGE(e.OutputsKoinu), FormatDOGE(e.FeeKoinu))
	if e.PendingKoinu > 0 {
		message += fmt.Sprintf("; %s DOGE more awaits confirmation", FormatDOGE(e.PendingKoinu))
	}
	return message
}

// Is makes errors.Is(err, ErrInsufficientFunds) hold.
func (e *InsufficientFundsError) Is(target error) bool { return target == ErrInsufficientFunds }

// FormatDOGE writes koinu as a decimal count of DOGE without trailing zeros: 150000000 is
// "1.5", 100000000 is "1", 1 is "0.00000001". For messages; no float is involved.
func FormatDOGE(koinu uint64) string {
	whole := strconv.FormatUint(koinu/KoinuPerDoge, 10)
	fraction := koinu % KoinuPerDoge
	if fraction == 0 {
		return whole
	}
	return whole + "." + strings.TrimRight(fmt.Sprintf("%08d", fraction), "0")
}
