package gigawallet

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/cockroachdb/apd/v3"
	"github.com/gigaledger/gigaledger/fsm"
)

// DOGE amounts. On the ledger an amount is a whole number of koinu (fsm.Amount, 128 bits); in
// this API it is a decimal number of DOGE, read from a JSON string or number and written as a
// string, the way GigaWallet's CoinAmount (shopspring/decimal) reads and writes it. The text is
// converted with cockroachdb/apd, which is exact: no amount ever passes through a float.
const (
	// KoinuPerDOGE is the number of koinu in one DOGE.
	KoinuPerDOGE = 100_000_000
	// AmountDecimalsMax is the number of decimal places of one koinu. GigaWallet stores any
	// precision and NUMERIC(18,8) silently rounds it; here more places are a 400.
	AmountDecimalsMax = 8
	// AmountMaxDOGE bounds every amount a request carries, so that a sum over a request's
	// limits (items × quantity × value) never comes near 128 bits of koinu. It is several
	// thousand times the DOGE ever issued.
	AmountMaxDOGE = 1_000_000_000_000_000
	// amountTextMaxBytes bounds the text of one amount; the longest amount within the bounds
	// above, written plainly, has 25 characters.
	amountTextMaxBytes = 64
	// amountExponentMaxDigits bounds the exponent of "1e2"-style amounts, so that apd never
	// builds a huge coefficient from a short text.
	amountExponentMaxDigits = 3
)

var (
	amountMax = apd.New(AmountMaxDOGE, 0)
	ten       = big.NewInt(10)
)

// Amount is a non-negative number of koinu that is written in JSON as a decimal string of DOGE
// with trailing zeros trimmed ("100", "24.89774", "0"), as GigaWallet writes every amount.
type Amount fsm.Amount

// MarshalJSON writes a as a quoted decimal string of DOGE.
func (a Amount) MarshalJSON() ([]byte, error) {
	return []byte(`"` + FormatKoinu(fsm.Amount(a)) + `"`), nil
}

// String returns a in DOGE.
func (a Amount) String() string { return FormatKoinu(fsm.Amount(a)) }

// SignedAmount is a signed number of koinu: an invoice item's value, negative for a discount.
// The zero value is zero; zero is never Negative, so equal amounts compare equal with ==.
type SignedAmount struct {
	Negative bool
	Koinu    fsm.Amount
}

// MarshalJSON writes v as a quoted decimal string of DOGE ("-5", "0.5").
func (v SignedAmount) MarshalJSON() ([]byte, error) {
	return []byte(`"` + v.String() + `"`), nil
}

// String returns v in DOGE.
func (v SignedAmount) String() string {
	if v.Negative {
		return "-" + FormatKoinu(v.Koinu)
	}
	return FormatKoinu(v.Koinu)
}

// FormatKoinu writes koinu as decimal DOGE with trailing zeros trimmed, exactly as GigaWallet
// writes its amounts: "100", "24.89774", "0.00000001", "0".
func FormatKoinu(koinu fsm.Amount) string {
	digits := koinu.String()
	if len(digits) <= AmountDecimalsMax {
		digits = strings.Repeat("0", AmountDecimalsMax+1-len(digits)) + digits
	}
	whole, fraction := digits[:len(digits)-AmountDecimalsMax], strings.TrimRight(digits[len(digits)-AmountDecimalsMax:], "0")
	if fraction == "" {
		return whole
	}
	return whole + "." + fraction
}

// ParseAmount reads a non-negative DOGE amount from raw, a JSON string or number ("1.5", 1.5,
// "1e2", 100), as koinu. null is zero, as in GigaWallet; field names the value in messages.
// A caller that needs the amount to be present checks len(raw) first.
func ParseAmount(field string, raw json.RawMessage) (fsm.Amount, *Error) {
	value, apiErr := ParseSignedAmount(field, raw)
	if apiErr != nil {
		return fsm.Amount{}, apiErr
	}
	if value.Negative {
		return fsm.Amount{}, badRequest("%s must not be negative", field)
	}
	return value.Koinu, nil
}

// ParseSignedAmount reads a DOGE amount that may be negative (an item's value) as koinu, with
// ParseAmount's rules otherwise: at most AmountDecimalsMax decimal places and at most
// AmountMaxDOGE in size.
func ParseSignedAmount(field string, raw json.RawMessage) (SignedAmount, *Error) {
	text, apiErr := amountText(field, raw)
	if apiErr != nil {
		return SignedAmount{}, apiErr
	}
	if text == "null" {
		return SignedAmount{}, nil
	}
	if len(text) > amountTextMaxBytes || !isDecimalText(text) {
		return SignedAmount{}, badRequest("%s must be a decimal number of DOGE such as \"1.5\" or 1.5", field)
	}
	var d apd.Decimal
	if _, _, err := d.SetString(text); err != nil {
		// isDecimalText let only what apd parses exactly through; this is a safety net.
		return SignedAmount{}, badRequest("%s must be a decimal number of DOGE such as \"1.5\" or 1.5", field)
	}
	d.Reduce(&d)
	if d.IsZero() {
		return SignedAmount{}, nil
	}
	if d.Exponent < -AmountDecimalsMax {
		return SignedAmount{}, badRequest("%s has more than %d decimal places (1 koinu is 0.00000001 DOGE)", field, AmountDecimalsMax)
	}
	var size apd.Decimal
	size.Abs(&d)
	if size.Cmp(amountMax) > 0 {
		return SignedAmount{}, badRequest("%s exceeds the largest amount, %d DOGE", field, AmountMaxDOGE)
	}
	// koinu = coefficient × 10^(exponent+8); the exponent is at least −8 and, with the size
	// bounded, at most 15.
	koinu := d.Coeff.MathBigInt()
	koinu.Mul(koinu, new(big.Int).Exp(ten, big.NewInt(int64(d.Exponent)+AmountDecimalsMax), nil))
	amount, err := fsm.AmountFromBig(koinu)
	if err != nil {
		// Unreachable within AmountMaxDOGE.
		return SignedAmount{}, badRequest("%s exceeds the largest amount, %d DOGE", field, AmountMaxDOGE)
	}
	return SignedAmount{Negative: d.Negative, Koinu: amount}, nil
}

// amountText returns the text of an amount: a JSON string's content, a number's literal, or
// "null".
func amountText(field string, raw json.RawMessage) (string, *Error) {
	switch {
	case len(raw) == 0:
		return "", badRequest("%s is required", field)
	case raw[0] == '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", badRequest("%s must be a decimal number of DOGE such as \"1.5\" or 1.5", field)
		}
		if text == "" {
			// GigaWallet refuses "" too; it is not zero.
			return "", badRequest("%s must not be an empty string", field)
		}
		if text == "null" {
			return "", badRequest("%s must be a decimal number of DOGE such as \"1.5\" or 1.5", field)
		}
		return text, nil
	case string(raw) == "null", raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", badRequest("%s must be a decimal number of DOGE as a JSON string or number", field)
}

// isDecimalText reports whether text is a plain decimal: an optional sign, digits with an
// optional fraction (".5" and "5." as shopspring/decimal reads them), and an optional exponent
// of at most amountExponentMaxDigits digits. It refuses what apd would read but GigaWallet would
// not (NaN, Infinity) and anything with spaces.
func isDecimalText(text string) bool {
	i := 0
	if i < len(text) && (text[i] == '+' || text[i] == '-') {
		i++
	}
	wholeDigits := countDigits(text[i:])
	i += wholeDigits
	fractionDigits := 0
	if i < len(text) && text[i] == '.' {
		i++
		fractionDigits = countDigits(text[i:])
		i += fractionDigits
	}
	if wholeDigits == 0 && fractionDigits == 0 {
		return false
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			i++
		}
		exponentDigits := countDigits(text[i:])
		if exponentDigits == 0 || exponentDigits > amountExponentMaxDigits {
			return false
		}
		i += exponentDigits
	}
	return i == len(text)
}

// countDigits returns the number of ASCII digits text starts with.
func countDigits(text string) int {
	n := 0
	for n < len(text) && text[n] >= '0' && text[n] <= '9' {
		n++
	}
	return n
}
