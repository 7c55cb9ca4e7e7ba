package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// Amount is a whole number of an asset's smallest parts (fractions per unit), unsigned and at
// most 2^128−1, kept as the decimal digits the API writes so that no value is ever rounded.
//
// Decoding keeps the text of any JSON number or string as it is, without judging it: one odd
// value in a page of entries must not hide the rest of the page from a checker that wants to
// report it. Uint64, Big and Valid are where a malformed value (negative, fractional, too large)
// is caught. Encoding refuses anything but canonical digits, so a request never carries an
// amount the client did not mean.
type Amount string

// amountMaxDigits is the length of 2^128−1 in decimal.
const amountMaxDigits = 39

// amountMax is the largest amount the API accepts or writes: 2^128−1.
var amountMax = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// ErrAmountSyntax reports an amount that is not the canonical decimal text of a whole number
// from 0 to 2^128−1.
var ErrAmountSyntax = errors.New("amount is not a whole number from 0 to 2^128-1 in canonical decimal")

// AmountFromUint64 returns v as an Amount.
func AmountFromUint64(v uint64) Amount { return Amount(strconv.FormatUint(v, 10)) }

// AmountFromBig returns v as an Amount, or ErrAmountSyntax when v is negative or above 2^128−1.
func AmountFromBig(v *big.Int) (Amount, error) {
	if v.Sign() < 0 || v.Cmp(amountMax) > 0 {
		return "", fmt.Errorf("amount %s: %w", v, ErrAmountSyntax)
	}
	return Amount(v.String()), nil
}

// ParseAmount returns s as an Amount if it is canonical decimal digits of a value in range.
func ParseAmount(s string) (Amount, error) {
	a := Amount(s)
	if err := a.Valid(); err != nil {
		return "", err
	}
	return a, nil
}

// Valid returns nil when a is canonical decimal digits (no sign, no leading zero) of a value
// from 0 to 2^128−1, else an error wrapping ErrAmountSyntax.
func (a Amount) Valid() error {
	s := string(a)
	if s == "" || len(s) > amountMaxDigits || (len(s) > 1 && s[0] == '0') {
		return fmt.Errorf("amount %q: %w", s, ErrAmountSyntax)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("amount %q: %w", s, ErrAmountSyntax)
		}
	}
	if len(s) == amountMaxDigits {
		if v, _ := new(big.Int).SetString(s, 10); v.Cmp(amountMax) > 0 {
			return fmt.Errorf("amount %q: %w", s, ErrAmountSyntax)
		}
	}
	return nil
}

// Uint64 returns a as a uint64; a malformed amount or one above 2^64−1 is an error.
func (a Amount) Uint64() (uint64, error) {
	if err := a.Valid(); err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(a), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q does not fit in 64 bits: %w", string(a), err)
	}
	return v, nil
}

// Big returns a as a big.Int; a malformed amount is an error.
func (a Amount) Big() (*big.Int, error) {
	if err := a.Valid(); err != nil {
		return nil, err
	}
	v, _ := new(big.Int).SetString(string(a), 10)
	return v, nil
}

// String returns the digits.
func (a Amount) String() string { return string(a) }

// MarshalJSON writes a as a JSON integer with every digit exact; a malformed amount is an error.
func (a Amount) MarshalJSON() ([]byte, error) {
	if err := a.Valid(); err != nil {
		return nil, err
	}
	return []byte(a), nil
}

// UnmarshalJSON keeps the text of a JSON number, or the content of a JSON string, as it is.
func (a *Amount) UnmarshalJSON(data []byte) error {
	text, ok, err := numberText(data, "amount")
	if ok {
		*a = Amount(text)
	}
	return err
}

// numberText is the text of a JSON number, or the content of a JSON string, as it is; ok is
// false for null (the value stays as it was). what names the value in errors.
func numberText(data []byte, what string) (text string, ok bool, err error) {
	switch {
	case bytes.Equal(data, []byte("null")):
		return "", false, nil
	case len(data) >= 2 && data[0] == '"':
		if err := json.Unmarshal(data, &text); err != nil {
			return "", false, fmt.Errorf("%s %s: %w", what, data, err)
		}
		return text, true, nil
	case len(data) > 0 && (data[0] == '-' || (data[0] >= '0' && data[0] <= '9')):
		return string(data), true, nil
	}
	return "", false, fmt.Errorf("%s %s is neither a JSON number nor a string", what, data)
}

// appendJSON appends a as MarshalJSON writes it; the caller has validated it.
func (a Amount) appendJSON(buf []byte) []byte { return append(buf, a...) }
