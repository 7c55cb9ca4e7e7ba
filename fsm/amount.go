package fsm

import (
	"errors"
	"math/big"
	"math/bits"
	"strconv"
)

// Amount is a non-negative whole number of an asset's smallest parts, 128 bits wide. Balances,
// supplies and operation amounts all use it; arithmetic is checked and never wraps.
type Amount struct {
	Hi, Lo uint64
}

// ErrAmountOverflow reports a sum that does not fit in 128 bits.
var ErrAmountOverflow = errors.New("amount overflows 128 bits")

// ErrAmountUnderflow reports a difference below zero.
var ErrAmountUnderflow = errors.New("amount below zero")

// ErrAmountSyntax reports text that is not a whole non-negative decimal number.
var ErrAmountSyntax = errors.New("amount is not a whole non-negative decimal number")

// AmountFromUint64 returns v as an Amount.
func AmountFromUint64(v uint64) Amount { return Amount{Lo: v} }

// IsZero reports whether a is zero.
func (a Amount) IsZero() bool { return a.Hi == 0 && a.Lo == 0 }

// Cmp returns -1, 0 or 1 as a is less than, equal to or greater than b.
func (a Amount) Cmp(b Amount) int {
	switch {
	case a.Hi < b.Hi:
		return -1
	case a.Hi > b.Hi:
		return 1
	case a.Lo < b.Lo:
		return -1
	case a.Lo > b.Lo:
		return 1
	}
	return 0
}

// Add returns a+b, or ErrAmountOverflow.
func (a Amount) Add(b Amount) (Amount, error) {
	lo, carry := bits.Add64(a.Lo, b.Lo, 0)
	hi, overflow := bits.Add64(a.Hi, b.Hi, carry)
	if overflow != 0 {
		return Amount{}, ErrAmountOverflow
	}
	return Amount{Hi: hi, Lo: lo}, nil
}

// Sub returns a-b, or ErrAmountUnderflow when b > a.
func (a Amount) Sub(b Amount) (Amount, error) {
	lo, borrow := bits.Sub64(a.Lo, b.Lo, 0)
	hi, underflow := bits.Sub64(a.Hi, b.Hi, borrow)
	if underflow != 0 {
		return Amount{}, ErrAmountUnderflow
	}
	return Amount{Hi: hi, Lo: lo}, nil
}

// AmountChange is the signed difference between two Amounts (after − before): a sign and a
// 128-bit size, so every such difference fits and no comparison of changes needs a sum that
// could overflow. The zero change is never a decrease, so equal changes compare equal with ==.
type AmountChange struct {
	decrease bool
	size     Amount
}

// ChangeOf returns after − before.
func ChangeOf(before, after Amount) AmountChange {
	if after.Cmp(before) >= 0 {
		size, _ := after.Sub(before)
		return AmountChange{size: size}
	}
	size, _ := before.Sub(after)
	return AmountChange{decrease: true, size: size}
}

// Big returns a as a big.Int.
func (a Amount) Big() *big.Int {
	v := new(big.Int).SetUint64(a.Hi)
	v.Lsh(v, 64)
	return v.Or(v, new(big.Int).SetUint64(a.Lo))
}

var maxAmount = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// AmountFromBig converts v, failing when it is negative or wider than 128 bits.
func AmountFromBig(v *big.Int) (Amount, error) {
	if v.Sign() < 0 {
		return Amount{}, ErrAmountUnderflow
	}
	if v.Cmp(maxAmount) > 0 {
		return Amount{}, ErrAmountOverflow
	}
	lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
	hi := new(big.Int).Rsh(v, 64).Uint64()
	return Amount{Hi: hi, Lo: lo}, nil
}

// ParseAmount parses a whole non-negative decimal number ("0", "1500"); signs, fractions,
// exponents, spaces and leading zeros on a non-zero value are syntax errors.
func ParseAmount(s string) (Amount, error) {
	if s == "" || len(s) > 40 || (len(s) > 1 && s[0] == '0') {
		return Amount{}, ErrAmountSyntax
	}
	if a, err := strconv.ParseUint(s, 10, 64); err == nil {
		return Amount{Lo: a}, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Amount{}, ErrAmountSyntax
		}
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return Amount{}, ErrAmountSyntax
	}
	return AmountFromBig(v)
}

// String formats a in decimal.
func (a Amount) String() string {
	if a.Hi == 0 {
		return strconv.FormatUint(a.Lo, 10)
	}
	return a.Big().String()
}

// MarshalJSON writes a as a JSON integer with every digit exact.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON accepts a JSON integer or a string holding one.
func (a *Amount) UnmarshalJSON(data []byte) error {
	s := string(data)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := ParseAmount(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
