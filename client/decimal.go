package client

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Decimal is an amount of the GigPay API (docs/gigpay-api.md): a non-negative decimal number of
// an asset's units ("1", "1.5", "0.01" for one cent of usd), kept as text so that no value ever
// passes through a float. The API answers amounts as exact JSON number literals with trailing
// zeros trimmed (150 cents is 1.5); it accepts numbers or strings.
//
// Decoding keeps the text of a JSON number or the content of a JSON string as it is, without
// judging it (a number such as 1.10 keeps both its digits, and is written back as 1.10), so that
// one odd value does not hide the rest of a page; Valid, Units and Canonical judge it. Encoding
// refuses anything but a plain decimal and writes it as a JSON number literal, digit for digit.
type Decimal string

// Limits of a Decimal's text.
const (
	// decimalScaleMax is the most decimals an amount may carry (an asset of 10^19 fractions).
	decimalScaleMax = 19
	// decimalTextMaxBytes bounds the text the client encodes or converts: 2^128−1 smallest
	// parts has 39 digits, plus the point.
	decimalTextMaxBytes = 41
)

// ErrDecimalSyntax reports an amount that is not a plain non-negative decimal such as 1.5.
var ErrDecimalSyntax = errors.New("GigPay amount is not a non-negative decimal such as 1.5 (no sign, exponent or leading zeros, at most 19 decimals)")

// DecimalFromUnits returns units smallest parts of an asset with scale decimals (fractions =
// 10^scale: 2 for usd) as a Decimal with trailing zeros trimmed, as the server writes
// amounts: DecimalFromUnits(150, 2) is "1.5", (100, 2) is "1", (1, 2) is "0.01".
func DecimalFromUnits(units uint64, scale int) Decimal {
	return DecimalFromBig(new(big.Int).SetUint64(units), scale)
}

// DecimalFromBig is DecimalFromUnits for any non-negative units; a negative value or a scale
// outside 0..19 is written as it would be refused ("" for the scale), so that it never encodes.
func DecimalFromBig(units *big.Int, scale int) Decimal {
	if units.Sign() < 0 || scale < 0 || scale > decimalScaleMax {
		return ""
	}
	digits := units.String()
	if scale == 0 {
		return Decimal(digits)
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale+1-len(digits)) + digits
	}
	whole := digits[:len(digits)-scale]
	fraction := strings.TrimRight(digits[len(digits)-scale:], "0")
	if fraction == "" {
		return Decimal(whole)
	}
	return Decimal(whole + "." + fraction)
}

// Valid returns nil when d is digits (one "0", or no leading zero), optionally followed by a
// point and 1..19 digits; else an error wrapping ErrDecimalSyntax.
func (d Decimal) Valid() error {
	s := string(d)
	whole, fraction, hasPoint := strings.Cut(s, ".")
	switch {
	case len(s) > decimalTextMaxBytes, !allDigits(whole), len(whole) > 1 && whole[0] == '0',
		hasPoint && (!allDigits(fraction) || len(fraction) > decimalScaleMax):
		return fmt.Errorf("amount %q: %w", s, ErrDecimalSyntax)
	}
	return nil
}

// Units returns d in smallest parts of an asset with scale decimals (usd: 2), exactly: "1.5" at
// scale 2 is 150. More non-zero decimals than scale is an error (the server answers 400
// AmountTooPrecise for them); trailing zeros beyond it are not.
func (d Decimal) Units(scale int) (*big.Int, error) {
	if err := d.Valid(); err != nil {
		return nil, err
	}
	if scale < 0 || scale > decimalScaleMax {
		return nil, fmt.Errorf("amount %q: scale %d is not in 0..%d", string(d), scale, decimalScaleMax)
	}
	whole, fraction, _ := strings.Cut(string(d), ".")
	fraction = strings.TrimRight(fraction, "0")
	if len(fraction) > scale {
		return nil, fmt.Errorf("amount %q has more than %d decimals", string(d), scale)
	}
	units, _ := new(big.Int).SetString(whole+fraction+strings.Repeat("0", scale-len(fraction)), 10)
	return units, nil
}

// Canonical returns d as the server writes it: trailing zeros of the fraction trimmed ("1.50"
// is "1.5", "2.00" is "2"). Two valid amounts are equal exactly when their canonical forms are.
// A malformed d is an error.
func (d Decimal) Canonical() (Decimal, error) {
	if err := d.Valid(); err != nil {
		return "", err
	}
	whole, fraction, _ := strings.Cut(string(d), ".")
	if fraction = strings.TrimRight(fraction, "0"); fraction == "" {
		return Decimal(whole), nil
	}
	return Decimal(whole + "." + fraction), nil
}

// String returns the text.
func (d Decimal) String() string { return string(d) }

// MarshalJSON writes d as a JSON number literal, exactly as its text; a malformed amount is an
// error.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if err := d.Valid(); err != nil {
		return nil, err
	}
	return []byte(d), nil
}

// UnmarshalJSON keeps the text of a JSON number, or the content of a JSON string, as it is.
func (d *Decimal) UnmarshalJSON(data []byte) error {
	text, ok, err := numberText(data, "GigPay amount")
	if ok {
		*d = Decimal(text)
	}
	return err
}
