package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DogeAmount is an amount of the GigaWallet API: a decimal number of DOGE ("1.5", "100",
// "0.00000001"; "-5" for a discount item), kept as text so that no value passes through a
// float. One DOGE is 10^8 koinu, so at most 8 decimal places are meaningful.
//
// Decoding keeps the text of a JSON string or number as it is (the server writes strings);
// Valid and Koinu judge it. Encoding refuses anything but a plain decimal, so a request never
// carries an amount the caller did not mean.
type DogeAmount string

// Limits of a DogeAmount's text.
const (
	// dogeDecimalsMax is the number of decimal places of one koinu.
	dogeDecimalsMax = 8
	// dogeAmountTextMaxBytes bounds the text the client encodes or converts; the server's
	// largest amount (10^18 DOGE) has 28 characters with its 8 decimals.
	dogeAmountTextMaxBytes = 40
)

// ErrDogeAmountSyntax reports an amount that is not a plain decimal of DOGE with at most 8
// decimal places.
var ErrDogeAmountSyntax = errors.New("DOGE amount is not a decimal such as 1.5 with at most 8 decimal places")

// DogeAmountFromKoinu returns koinu (1 DOGE = 10^8 koinu) as a DogeAmount with trailing zeros
// trimmed, as the server writes amounts.
func DogeAmountFromKoinu(koinu int64) DogeAmount {
	return dogeAmountFromBig(big.NewInt(koinu))
}

func dogeAmountFromBig(koinu *big.Int) DogeAmount {
	sign := ""
	if koinu.Sign() < 0 {
		sign = "-"
		koinu = new(big.Int).Neg(koinu)
	}
	digits := koinu.String()
	if len(digits) <= dogeDecimalsMax {
		digits = strings.Repeat("0", dogeDecimalsMax+1-len(digits)) + digits
	}
	whole := digits[:len(digits)-dogeDecimalsMax]
	fraction := strings.TrimRight(digits[len(digits)-dogeDecimalsMax:], "0")
	if fraction == "" {
		return DogeAmount(sign + whole)
	}
	return DogeAmount(sign + whole + "." + fraction)
}

// Valid returns nil when a is an optional '-', one or more digits, and optionally '.' and 1 to 8
// digits; else an error wrapping ErrDogeAmountSyntax.
func (a DogeAmount) Valid() error {
	s := strings.TrimPrefix(string(a), "-")
	whole, fraction, hasPoint := strings.Cut(s, ".")
	if len(a) > dogeAmountTextMaxBytes || !allDigits(whole) || (hasPoint && (!allDigits(fraction) || len(fraction) > dogeDecimalsMax)) {
		return fmt.Errorf("amount %q: %w", string(a), ErrDogeAmountSyntax)
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Koinu returns a in koinu, exactly; a malformed amount is an error.
func (a DogeAmount) Koinu() (*big.Int, error) {
	if err := a.Valid(); err != nil {
		return nil, err
	}
	s := string(a)
	negative := strings.HasPrefix(s, "-")
	whole, fraction, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	koinu, _ := new(big.Int).SetString(whole+fraction+strings.Repeat("0", dogeDecimalsMax-len(fraction)), 10)
	if negative {
		koinu.Neg(koinu)
	}
	return koinu, nil
}

// String returns the text.
func (a DogeAmount) String() string { return string(a) }

// MarshalJSON writes a as a JSON string, as the server writes amounts; a malformed amount is
// an error.
func (a DogeAmount) MarshalJSON() ([]byte, error) {
	if err := a.Valid(); err != nil {
		return nil, err
	}
	return []byte(`"` + string(a) + `"`), nil
}

// UnmarshalJSON keeps the content of a JSON string, or the text of a JSON number, as it is.
func (a *DogeAmount) UnmarshalJSON(data []byte) error {
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) >= 2 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("DOGE amount %s: %w", data, err)
		}
		*a = DogeAmount(s)
	case len(data) > 0 && (data[0] == '-' || (data[0] >= '0' && data[0] <= '9')):
		*a = DogeAmount(data)
	default:
		return fmt.Errorf("DOGE amount %s is neither a JSON number nor a string", data)
	}
	return nil
}
