package fsm

import "testing"

var maxAmountValue = Amount{Hi: ^uint64(0), Lo: ^uint64(0)}

func TestAmountChange(t *testing.T) {
	one := AmountFromUint64(1)
	for _, c := range []struct {
		before, after Amount
		want          AmountChange
	}{
		{Amount{}, Amount{}, AmountChange{}},
		{maxAmountValue, maxAmountValue, AmountChange{}},
		{Amount{}, maxAmountValue, AmountChange{size: maxAmountValue}},
		{maxAmountValue, Amount{}, AmountChange{decrease: true, size: maxAmountValue}},
		{Amount{Lo: ^uint64(0)}, Amount{Hi: 1}, AmountChange{size: one}},
		{Amount{Hi: 1}, Amount{Lo: ^uint64(0)}, AmountChange{decrease: true, size: one}},
	} {
		if got := ChangeOf(c.before, c.after); got != c.want {
			t.Errorf("ChangeOf(%s, %s) = %+v, want %+v", c.before, c.after, got, c.want)
		}
	}
}

func TestAmountParse(t *testing.T) {
	for in, ok := range map[string]bool{"0": true, "1500": true, "340282366920938463463374607431768211455": true,
		"340282366920938463463374607431768211456": false, "-1": false, "1.5": false, "1e3": false, "": false,
		"01": false, " 1": false, "0x10": false, "18446744073709551616": true} {
		_, err := ParseAmount(in)
		if (err == nil) != ok {
			t.Errorf("ParseAmount(%q) err=%v", in, err)
		}
	}
	v, _ := ParseAmount("18446744073709551616")
	if v != (Amount{Hi: 1}) || v.String() != "18446744073709551616" {
		t.Fatalf("2^64 = %+v %s", v, v)
	}
}
