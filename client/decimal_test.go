package client_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/gigaledger/gigaledger/client"
)

func TestDecimalValidation(t *testing.T) {
	for _, good := range []string{"0", "1", "1.5", "0.01", "10.10", "340282366920938463463374607431768211455", "0.0000000000000000001"} {
		if err := client.Decimal(good).Valid(); err != nil {
			t.Errorf("Valid(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "01", "00.5", ".5", "1.", "1e2", "1E2", " 1", "1,5", "0x10", "1.00000000000000000001", "NaN",
		"1111111111111111111111111111111111111111111"} {
		if err := client.Decimal(bad).Valid(); !errors.Is(err, client.ErrDecimalSyntax) {
			t.Errorf("Valid(%q) = %v, want ErrDecimalSyntax", bad, err)
		}
		if _, err := json.Marshal(client.Decimal(bad)); err == nil {
			t.Errorf("Marshal(%q) succeeded", bad)
		}
	}
}

func TestDecimalUnitsAreExact(t *testing.T) {
	for _, c := range []struct {
		text  client.Decimal
		scale int
		units string
	}{
		{"1", 2, "100"}, {"1.5", 2, "150"}, {"0.01", 2, "1"}, {"1.50", 2, "150"}, {"1.500", 2, "150"}, {"7", 0, "7"},
		{"340282366920938463463374607431768211.455", 3, "340282366920938463463374607431768211455"},
		{"0.0000000000000000001", 19, "1"},
	} {
		units, err := c.text.Units(c.scale)
		if err != nil || units.String() != c.units {
			t.Errorf("%q.Units(%d) = %v, %v; want %s", c.text, c.scale, units, err, c.units)
		}
		back := client.DecimalFromBig(units, c.scale)
		canonical, err := c.text.Canonical()
		if err != nil || back != canonical {
			t.Errorf("DecimalFromBig(%s, %d) = %q, want the canonical %q (%v)", units, c.scale, back, canonical, err)
		}
	}
	if _, err := client.Decimal("0.001").Units(2); err == nil {
		t.Error("0.001 at scale 2: no error")
	}
	if _, err := client.Decimal("1").Units(20); err == nil {
		t.Error("scale 20: no error")
	}
	for units, want := range map[uint64]client.Decimal{0: "0", 1: "0.01", 10: "0.1", 100: "1", 150: "1.5", 123456: "1234.56"} {
		if got := client.DecimalFromUnits(units, 2); got != want {
			t.Errorf("DecimalFromUnits(%d, 2) = %q, want %q", units, got, want)
		}
	}
	if got := client.DecimalFromBig(big.NewInt(-1), 2); got.Valid() == nil {
		t.Errorf("DecimalFromBig(-1) = %q is valid", got)
	}
}

// TestDecimalJSONRoundTripsEveryDigit: a number literal is kept as its text (no float on the
// way) and written back digit for digit; a string decodes to the same text and encodes as a
// number.
func TestDecimalJSONRoundTripsEveryDigit(t *testing.T) {
	for _, literal := range []string{"1", "1.10", "0.01", "9007199254740993", "340282366920938463463374607431768211.455", "0.1000000000000000001"} {
		var got struct {
			Amount client.Decimal `json:"amount"`
		}
		if err := json.Unmarshal([]byte(`{"amount":`+literal+`}`), &got); err != nil {
			t.Fatal(err)
		}
		if string(got.Amount) != literal {
			t.Errorf("decoded %s as %q", literal, got.Amount)
		}
		out, err := json.Marshal(got)
		if err != nil || string(out) != `{"amount":`+literal+`}` {
			t.Errorf("re-encoded %s as %s, %v", literal, out, err)
		}
		var fromString client.Decimal
		if err := json.Unmarshal([]byte(`"`+literal+`"`), &fromString); err != nil || string(fromString) != literal {
			t.Errorf("string %q decoded as %q, %v", literal, fromString, err)
		}
	}
	var d client.Decimal
	if err := json.Unmarshal([]byte(`true`), &d); err == nil {
		t.Error("a JSON boolean decoded as an amount")
	}
}
