package gigpay

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/gigaledger/gigaledger/fsm"
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

// Amounts are decimal numbers of the asset ("1", 1.5, "0.01"): a JSON number literal or a
// string holding one, read exactly (digits into an integer and a count of decimals, never a
// float). Only plain decimals are accepted: no sign, no exponent, no leading '.', no spaces.
// Trailing zeros after the point are dropped ("1.50" is 1.5), so they never count as
// precision. More decimals than fsm/gigpay.ScaleMax is AmountTooPrecise; more decimals than
// the asset has is the state machine's AmountTooPrecise (it knows the asset).
const (
	// amountTextMaxBytes bounds an amount's text: 2^128 has 39 digits, plus a point and
	// ScaleMax decimals, with room for trailing zeros.
	amountTextMaxBytes = 80
)

// AmountHint describes the accepted form in messages.
const AmountHint = `a positive decimal number such as 1, 1.5 or "0.01"`

// ParseAmount reads a positive amount from raw (a JSON number or string).
func ParseAmount(field string, raw json.RawMessage) (fsmgigpay.Decimal, *Error) {
	text, apiErr := amountText(field, raw)
	if apiErr != nil {
		return fsmgigpay.Decimal{}, apiErr
	}
	return ParseAmountText(field, text)
}

// ParseAmountText reads a positive plain decimal ("12", "0.5", "3.") into units and a scale.
func ParseAmountText(field, text string) (fsmgigpay.Decimal, *Error) {
	if len(text) > amountTextMaxBytes {
		return fsmgigpay.Decimal{}, invalid("%s is too long; it must be %s", field, AmountHint)
	}
	if strings.HasPrefix(text, "-") {
		return fsmgigpay.Decimal{}, invalid("%s must be positive", field)
	}
	whole, fraction, hasPoint := strings.Cut(text, ".")
	if whole == "" || !allDigits(whole) || (hasPoint && !allDigits(fraction)) {
		return fsmgigpay.Decimal{}, invalid("%s must be %s (no sign, exponent or spaces)", field, AmountHint)
	}
	if len(whole) > 1 && whole[0] == '0' {
		return fsmgigpay.Decimal{}, invalid("%s must not have leading zeros", field)
	}
	fraction = strings.TrimRight(fraction, "0")
	if len(fraction) > fsmgigpay.ScaleMax {
		return fsmgigpay.Decimal{}, newError(CodeAmountTooPrecise, "%s has %d decimals; at most %d are possible", field, len(fraction), fsmgigpay.ScaleMax)
	}
	digits := strings.TrimLeft(whole+fraction, "0")
	if digits == "" {
		return fsmgigpay.Decimal{}, invalid("%s must be positive", field)
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return fsmgigpay.Decimal{}, invalid("%s must be %s", field, AmountHint)
	}
	units, err := fsm.AmountFromBig(n)
	if err != nil {
		return fsmgigpay.Decimal{}, invalid("%s is too large", field)
	}
	return fsmgigpay.Decimal{Units: units, Scale: uint8(len(fraction))}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// amountText is a JSON string's content or a number's literal.
func amountText(field string, raw json.RawMessage) (string, *Error) {
	raw = json.RawMessage(strings.Trim(string(raw), jsonWhiteSpace))
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", invalid("%s is required", field)
	case len(raw) > amountTextMaxBytes+2:
		return "", invalid("%s is too long; it must be %s", field, AmountHint)
	case raw[0] == '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", invalid("%s must be %s", field, AmountHint)
		}
		return text, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", invalid("%s must be %s, as a JSON number or string", field, AmountHint)
}

// Amount is an amount of an asset as stored (Units of the smallest part, Fractions of them to
// one) that marshals as an exact JSON number literal with trailing zeros trimmed: 150 cents is
// 1.5, 100 is 1, 1 is 0.01.
type Amount struct {
	Units     fsm.Amount
	Fractions uint64
}

// String is the amount's decimal text.
func (a Amount) String() string {
	digits := a.Units.String()
	scale := fsmgigpay.Scale(a.Fractions)
	if scale <= 0 {
		return digits // an asset GigPay refuses has no decimal form; never stored
	}
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale+1-len(digits)) + digits
	}
	whole, fraction := digits[:len(digits)-scale], strings.TrimRight(digits[len(digits)-scale:], "0")
	if fraction == "" {
		return whole
	}
	return whole + "." + fraction
}

// MarshalJSON writes the amount as a JSON number literal.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads an amount the API wrote (a JSON number literal, zero included) at the
// finest scale, 10^ScaleMax fractions, so that amounts read back compare and add exactly.
func (a *Amount) UnmarshalJSON(data []byte) error {
	text := string(data)
	if text == "0" {
		*a = Amount{Fractions: scaleMaxFractions}
		return nil
	}
	v, e := ParseAmountText("amount", text)
	if e != nil {
		return e
	}
	n := v.Units.Big()
	n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(fsmgigpay.ScaleMax-int(v.Scale))), nil))
	units, err := fsm.AmountFromBig(n)
	if err != nil {
		return err
	}
	*a = Amount{Units: units, Fractions: scaleMaxFractions}
	return nil
}

// scaleMaxFractions is 10^ScaleMax.
const scaleMaxFractions uint64 = 10_000_000_000_000_000_000
