package rpc

import (
	"bytes"
	"fmt"
	"math"
)

// Amount is a value in the coin's smallest unit (1e-8 of a coin: the koinu of Dogecoin). Nodes
// write amounts as JSON decimals such as 12.50000000; Amount parses them exactly, never
// through a float.
type Amount int64

// amountDecimalsMax is how many digits may follow the point: one coin is 1e8 units.
const amountDecimalsMax = 8

// UnmarshalJSON parses a JSON number with at most eight decimals and no exponent.
func (a *Amount) UnmarshalJSON(data []byte) error {
	text := bytes.TrimSpace(data)
	negative := false
	if len(text) > 0 && text[0] == '-' {
		negative = true
		text = text[1:]
	}
	whole, fraction, hasPoint := bytes.Cut(text, []byte("."))
	if len(whole) == 0 || (hasPoint && len(fraction) == 0) || len(fraction) > amountDecimalsMax {
		return fmt.Errorf("amount %s: not a decimal with at most %d places", excerpt(data), amountDecimalsMax)
	}
	var units uint64
	digits := append(append([]byte{}, whole...), fraction...)
	for range amountDecimalsMax - len(fraction) {
		digits = append(digits, '0')
	}
	for _, digit := range digits {
		if digit < '0' || digit > '9' {
			return fmt.Errorf("amount %s: not a decimal with at most %d places", excerpt(data), amountDecimalsMax)
		}
		if units > (math.MaxInt64-uint64(digit-'0'))/10 {
			return fmt.Errorf("amount %s: out of range", excerpt(data))
		}
		units = units*10 + uint64(digit-'0')
	}
	*a = Amount(units)
	if negative {
		*a = -*a
	}
	return nil
}
