package client_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/gigaledger/gigaledger/client"
)

func TestAmountValidation(t *testing.T) {
	for _, good := range []string{"0", "1", "18446744073709551616", "340282366920938463463374607431768211455"} {
		if _, err := client.ParseAmount(good); err != nil {
			t.Errorf("ParseAmount(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "-1", "+1", "01", "1.5", "1e3", " 1", "0x10", "340282366920938463463374607431768211456", "9999999999999999999999999999999999999999"} {
		if _, err := client.ParseAmount(bad); !errors.Is(err, client.ErrAmountSyntax) {
			t.Errorf("ParseAmount(%q) = %v, want ErrAmountSyntax", bad, err)
		}
	}
}

func TestAmountConversionsAreExact(t *testing.T) {
	if v, err := client.Amount("18446744073709551615").Uint64(); err != nil || v != 1<<64-1 {
		t.Fatalf("Uint64 = %d, %v", v, err)
	}
	if _, err := client.Amount("18446744073709551616").Uint64(); err == nil {
		t.Fatal("Uint64 of 2^64 succeeded")
	}
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	a, err := client.AmountFromBig(max)
	if err != nil || a != "340282366920938463463374607431768211455" {
		t.Fatalf("AmountFromBig(2^128-1) = %q, %v", a, err)
	}
	if back, err := a.Big(); err != nil || back.Cmp(max) != 0 {
		t.Fatalf("Big = %v, %v", back, err)
	}
	if _, err := client.AmountFromBig(new(big.Int).Add(max, big.NewInt(1))); err == nil {
		t.Fatal("AmountFromBig(2^128) succeeded")
	}
	if got := client.AmountFromUint64(42); got != "42" {
		t.Fatalf("AmountFromUint64(42) = %q", got)
	}
}

func TestAmountJSON(t *testing.T) {
	var decoded struct{ A, B, C, D client.Amount }
	// Numbers and strings keep their text, odd ones included, so a checker can report them.
	if err := json.Unmarshal([]byte(`{"A":340282366920938463463374607431768211455,"B":"15","C":-3,"D":null}`), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.A != "340282366920938463463374607431768211455" || decoded.B != "15" || decoded.C != "-3" || decoded.D != "" {
		t.Fatalf("decoded %+v", decoded)
	}
	if decoded.C.Valid() == nil {
		t.Fatal("a negative amount is valid")
	}
	if err := json.Unmarshal([]byte(`{"A":true}`), &decoded); err == nil {
		t.Fatal("a boolean amount decoded")
	}
	encoded, err := json.Marshal(struct{ A client.Amount }{"340282366920938463463374607431768211455"})
	if err != nil || string(encoded) != `{"A":340282366920938463463374607431768211455}` {
		t.Fatalf("encoded %s, %v", encoded, err)
	}
	if _, err := json.Marshal(struct{ A client.Amount }{"1.5"}); err == nil {
		t.Fatal("a fractional amount encoded")
	}
}
