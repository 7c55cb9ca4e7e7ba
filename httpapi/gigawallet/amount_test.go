package gigawallet

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// TestParseAmount pins what an amount may be: a JSON string or number, exact, at most 8
// decimals, never negative, within AmountMaxDOGE.
func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		wantKoinu string // "" when refused
		wantError string
	}{
		{raw: `"1.5"`, wantKoinu: "150000000"},
		{raw: `1.5`, wantKoinu: "150000000"},
		{raw: `"1e2"`, wantKoinu: "10000000000"},
		{raw: `1e2`, wantKoinu: "10000000000"},
		{raw: `100`, wantKoinu: "10000000000"},
		{raw: `"100"`, wantKoinu: "10000000000"},
		{raw: `0`, wantKoinu: "0"},
		{raw: `"0.00000000"`, wantKoinu: "0"},
		{raw: `null`, wantKoinu: "0"},
		{raw: `"-0"`, wantKoinu: "0"},
		{raw: `"0.00000001"`, wantKoinu: "1"},
		{raw: `1E-8`, wantKoinu: "1"},
		{raw: `"12.345678900000"`, wantKoinu: "1234567890"},
		{raw: `".5"`, wantKoinu: "50000000"},
		{raw: `"5."`, wantKoinu: "500000000"},
		{raw: `"+5"`, wantKoinu: "500000000"},
		{raw: `"21000000000"`, wantKoinu: "2100000000000000000"},
		{raw: `21000000000.12345678`, wantKoinu: "2100000000012345678"},
		{raw: `"1000000000000000"`, wantKoinu: "100000000000000000000000"},
		{raw: `"0.000000001"`, wantError: "more than 8 decimal places"},
		{raw: `1.123456789`, wantError: "more than 8 decimal places"},
		{raw: `"1e-9"`, wantError: "more than 8 decimal places"},
		{raw: `"1000000000000000.00000001"`, wantError: "exceeds the largest amount"},
		{raw: `1e16`, wantError: "exceeds the largest amount"},
		{raw: `"1e999"`, wantError: "exceeds the largest amount"},
		{raw: `"1e1000"`, wantError: "decimal number"},
		{raw: `"-1"`, wantError: "must not be negative"},
		{raw: `-0.5`, wantError: "must not be negative"},
		{raw: `""`, wantError: "empty string"},
		{raw: `" 1"`, wantError: "decimal number"},
		{raw: `"1,5"`, wantError: "decimal number"},
		{raw: `"NaN"`, wantError: "decimal number"},
		{raw: `"Infinity"`, wantError: "decimal number"},
		{raw: `"0x10"`, wantError: "decimal number"},
		{raw: `"."`, wantError: "decimal number"},
		{raw: `"e5"`, wantError: "decimal number"},
		{raw: `"null"`, wantError: "decimal number"},
		{raw: `true`, wantError: "JSON string or number"},
		{raw: `{}`, wantError: "JSON string or number"},
		{raw: `["1"]`, wantError: "JSON string or number"},
		{raw: `"` + strings.Repeat("1", 65) + `"`, wantError: "decimal number"},
		{raw: ``, wantError: "is required"},
	} {
		got, apiErr := ParseAmount("amount", json.RawMessage(tc.raw))
		switch {
		case tc.wantError != "":
			if apiErr == nil {
				t.Errorf("ParseAmount(%s) = %s, want an error with %q", tc.raw, got, tc.wantError)
			} else if apiErr.Status != 400 || apiErr.Code != CodeBadRequest || !strings.Contains(apiErr.Message, tc.wantError) {
				t.Errorf("ParseAmount(%s): %d %v, want 400 bad-request with %q", tc.raw, apiErr.Status, apiErr, tc.wantError)
			}
		case apiErr != nil:
			t.Errorf("ParseAmount(%s): %v", tc.raw, apiErr)
		case got.String() != tc.wantKoinu:
			t.Errorf("ParseAmount(%s) = %s koinu, want %s", tc.raw, got, tc.wantKoinu)
		}
	}
}

// TestParseSignedAmount pins negative values (discounts) and that zero is never negative.
func TestParseSignedAmount(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want SignedAmount
	}{
		{`"-5"`, SignedAmount{Negative: true, Koinu: fsm.AmountFromUint64(500000000)}},
		{`-0.00000001`, SignedAmount{Negative: true, Koinu: fsm.AmountFromUint64(1)}},
		{`"-0.0"`, SignedAmount{}},
		{`-0`, SignedAmount{}},
		{`"2.5"`, SignedAmount{Koinu: fsm.AmountFromUint64(250000000)}},
	} {
		got, apiErr := ParseSignedAmount("value", json.RawMessage(tc.raw))
		if apiErr != nil || got != tc.want {
			t.Errorf("ParseSignedAmount(%s) = %+v, %v; want %+v", tc.raw, got, apiErr, tc.want)
		}
	}
	if _, apiErr := ParseSignedAmount("value", json.RawMessage(`"-1000000000000001"`)); apiErr == nil {
		t.Error("a value below -AmountMaxDOGE was accepted")
	}
}

// TestFormatKoinu pins GigaWallet's output: trailing zeros trimmed, no exponent, "0" for zero.
func TestFormatKoinu(t *testing.T) {
	big, _ := fsm.ParseAmount("100000000000000000000000")
	for _, tc := range []struct {
		koinu fsm.Amount
		want  string
	}{
		{fsm.Amount{}, "0"},
		{fsm.AmountFromUint64(1), "0.00000001"},
		{fsm.AmountFromUint64(10), "0.0000001"},
		{fsm.AmountFromUint64(100000000), "1"},
		{fsm.AmountFromUint64(10000000000), "100"},
		{fsm.AmountFromUint64(2489774000), "24.89774"},
		{fsm.AmountFromUint64(2100000000000000000), "21000000000"},
		{fsm.AmountFromUint64(2100000000012345678), "21000000000.12345678"},
		{big, "1000000000000000"},
		{fsm.Amount{Hi: ^uint64(0), Lo: ^uint64(0)}, "3402823669209384634633746074317.68211455"},
	} {
		if got := FormatKoinu(tc.koinu); got != tc.want {
			t.Errorf("FormatKoinu(%s) = %q, want %q", tc.koinu, got, tc.want)
		}
	}
	b, _ := json.Marshal(struct {
		A Amount
		S SignedAmount
		Z SignedAmount
	}{Amount(fsm.AmountFromUint64(150000000)), SignedAmount{Negative: true, Koinu: fsm.AmountFromUint64(50000000)}, SignedAmount{}})
	if string(b) != `{"A":"1.5","S":"-0.5","Z":"0"}` {
		t.Errorf("amounts marshal as %s", b)
	}
}

// TestAmountRoundTrip: every text written is read back to the same koinu.
func TestAmountRoundTrip(t *testing.T) {
	for _, koinu := range []uint64{0, 1, 9, 10, 99999999, 100000000, 100000001, 123456789012345678} {
		text := FormatKoinu(fsm.AmountFromUint64(koinu))
		for _, raw := range []string{`"` + text + `"`, text} {
			got, apiErr := ParseAmount("amount", json.RawMessage(raw))
			if apiErr != nil || got != fsm.AmountFromUint64(koinu) {
				t.Errorf("%d koinu → %s → %v, %v", koinu, raw, got, apiErr)
			}
		}
	}
}
