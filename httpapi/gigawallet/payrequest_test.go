package gigawallet

import (
	"strings"
	"testing"
)

// deduct_fee_percent is a percentage: its refusals say so, whatever is wrong with it (they
// spoke of "a decimal number of DOGE" and of koinu).
func TestDeductFeePercentRefusals(t *testing.T) {
	anyAddress := func(string) error { return nil }
	for _, value := range []string{`"abc"`, `"100.5"`, `101`, `"1.123456789"`, `-1`, `true`} {
		body := `{"pay":[{"amount":"1","to":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu","deduct_fee_percent":` + value + `}]}`
		_, e := DecodePayRequest(strings.NewReader(body), anyAddress)
		if e == nil || e.Code != CodeBadRequest || !strings.Contains(e.Message, "pay[0].deduct_fee_percent must be a percentage") ||
			strings.Contains(e.Message, "DOGE") {
			t.Errorf("deduct_fee_percent %s: %+v", value, e)
		}
	}
	for _, value := range []string{`"0"`, `"100"`, `12.5`, `"33.33333333"`} {
		body := `{"pay":[{"amount":"1","to":"nbMFaHF9pjNoohS4fD1jefKBgDnETK9uPu","deduct_fee_percent":` + value + `}]}`
		if _, e := DecodePayRequest(strings.NewReader(body), anyAddress); e != nil {
			t.Errorf("deduct_fee_percent %s refused: %+v", value, e)
		}
	}
}
