package gigpay

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		units string
		scale uint8
		code  string
	}{
		{`1`, "1", 0, ""},
		{`1.5`, "15", 1, ""},
		{`"1.5"`, "15", 1, ""},
		{`"0.01"`, "1", 2, ""},
		{`1.50`, "15", 1, ""},
		{`"3."`, "3", 0, ""},
		{`100`, "100", 0, ""},
		{`340282366920938463463374607431768211455`, "340282366920938463463374607431768211455", 0, ""},
		{`"0.` + strings.Repeat("0", 18) + `1"`, "1", 19, ""},
		{`0.` + strings.Repeat("0", 19) + `1`, "", 0, CodeAmountTooPrecise},
		{`340282366920938463463374607431768211456`, "", 0, CodeInvalidArgument},
		{`0`, "", 0, CodeInvalidArgument},
		{`"0.000"`, "", 0, CodeInvalidArgument},
		{`-1`, "", 0, CodeInvalidArgument},
		{`"-0.5"`, "", 0, CodeInvalidArgument},
		{`1e2`, "", 0, CodeInvalidArgument},
		{`1E400`, "", 0, CodeInvalidArgument},
		{`".5"`, "", 0, CodeInvalidArgument},
		{`"01"`, "", 0, CodeInvalidArgument},
		{`" 1"`, "", 0, CodeInvalidArgument},
		{`"1 "`, "", 0, CodeInvalidArgument},
		{`""`, "", 0, CodeInvalidArgument},
		{`null`, "", 0, CodeInvalidArgument},
		{`true`, "", 0, CodeInvalidArgument},
		{`"NaN"`, "", 0, CodeInvalidArgument},
		{`"Infinity"`, "", 0, CodeInvalidArgument},
		{`"0x10"`, "", 0, CodeInvalidArgument},
		{`"1,5"`, "", 0, CodeInvalidArgument},
		{`"١"`, "", 0, CodeInvalidArgument},
		{strings.Repeat("9", 100), "", 0, CodeInvalidArgument},
	} {
		v, e := ParseAmount("amount", json.RawMessage(tc.raw))
		switch {
		case tc.code != "" && (e == nil || e.Code != tc.code):
			t.Errorf("%s: got %v %v, want %s", tc.raw, v, e, tc.code)
		case tc.code == "" && (e != nil || v.Units.String() != tc.units || v.Scale != tc.scale):
			t.Errorf("%s: got %s×10^-%d %v, want %s×10^-%d", tc.raw, v.Units, v.Scale, e, tc.units, tc.scale)
		}
	}
}

func TestAmountRendering(t *testing.T) {
	for _, tc := range []struct {
		units     uint64
		fractions uint64
		want      string
	}{
		{150, 100, "1.5"}, {100, 100, "1"}, {1, 100, "0.01"}, {0, 100, "0"}, {10, 100, "0.1"},
		{123456, 1000, "123.456"}, {5, 1, "5"}, {1, 10_000_000_000_000_000_000, "0.0000000000000000001"},
	} {
		a := Amount{Units: fsm.AmountFromUint64(tc.units), Fractions: tc.fractions}
		data, err := json.Marshal(a)
		if err != nil || string(data) != tc.want {
			t.Errorf("%d/%d: %s %v, want %s", tc.units, tc.fractions, data, err, tc.want)
		}
		var back Amount
		if err := json.Unmarshal(data, &back); err != nil || back.String() != tc.want {
			t.Errorf("%s read back as %s (%v)", data, back, err)
		}
	}
	// The largest amount at 2 decimals, exactly.
	max, _ := fsm.ParseAmount("340282366920938463463374607431768211455")
	if got := (Amount{Units: max, Fractions: 100}).String(); got != "3402823669209384634633746074317682114.55" {
		t.Errorf("largest amount %s", got)
	}
}

func TestTimes(t *testing.T) {
	ms, e := ParseTime("t", "2024-01-09T18:00:56.246Z")
	if e != nil || FormatTime(ms) != "2024-01-09T18:00:56.246Z" {
		t.Fatalf("%d %v %s", ms, e, FormatTime(ms))
	}
	if ms2, e := ParseTime("t", "2024-01-09T19:00:56.246+01:00"); e != nil || ms2 != ms {
		t.Fatalf("offset: %d %v", ms2, e)
	}
	if ms4, e := ParseTime("t", "2024-01-10T17:59:56.246+23:59"); e != nil || ms4 != ms {
		t.Fatalf("the largest offset: %d %v", ms4, e)
	}
	if ms3, e := ParseTime("t", "2024-01-09T18:00:56Z"); e != nil || FormatTime(ms3) != "2024-01-09T18:00:56.000Z" {
		t.Fatalf("no fraction: %d %v", ms3, e)
	}
	// RFC 3339 5.6: "T" and "Z" may be lowercase.
	for _, lower := range []string{"2024-01-09t18:00:56.246z", "2024-01-09t18:00:56.246Z", "2024-01-09T18:00:56.246z",
		"2024-01-09t19:00:56.246+01:00"} {
		if got, e := ParseTime("t", lower); e != nil || got != ms {
			t.Errorf("%q: %d %v", lower, got, e)
		}
	}
	for _, bad := range []string{"", "2024-01-09", "2024-01-09T18:00:56.2461Z", "2024-01-09x18:00:56Z", "2024-01-09T18:00:56.246y", "2024-01-09 18:00:56Z", "1969-12-31T23:59:59Z",
		"tomorrow", strings.Repeat("9", 100), "2024-13-01T00:00:00Z",
		// Offsets RFC 3339 does not have, which Go's parser takes (+24:00 and +05:60 as hours).
		"2030-01-01T00:00:00+24:00", "2030-01-01T00:00:00-24:00", "2030-01-01T00:00:00+05:60"} {
		if _, e := ParseTime("t", bad); e == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCursor(t *testing.T) {
	pos := append(make([]byte, 32), "y0001abc"...)
	pos[31] = 7
	text := EncodeCursor(fsmgigpay.SortAmount, true, pos)
	got, e := DecodeCursor(text, fsmgigpay.SortAmount, true)
	if e != nil || string(got) != string(pos) {
		t.Fatalf("round trip: %x %v", got, e)
	}
	for _, tc := range []struct {
		text       string
		sort       fsmgigpay.PaymentSort
		descending bool
	}{
		{text, fsmgigpay.SortAmount, false},
		{text, fsmgigpay.SortCreated, true},
		{text + "A", fsmgigpay.SortAmount, true},
		{text + "=", fsmgigpay.SortAmount, true},
		{"", fsmgigpay.SortAmount, true},
		{EncodeCursor(fsmgigpay.SortAmount, true, pos[:32]), fsmgigpay.SortAmount, true},
		{EncodeCursor(fsmgigpay.SortCreated, false, []byte("12345678y/x")), fsmgigpay.SortCreated, false},
		{strings.Repeat("A", CursorMaxChars+4), fsmgigpay.SortAmount, true},
	} {
		if _, e := DecodeCursor(tc.text, tc.sort, tc.descending); e == nil || e.Code != CodeInvalidCursor {
			t.Errorf("%q accepted for sort %d desc %v: %v", tc.text, tc.sort, tc.descending, e)
		}
	}
}

func TestParsePaymentQuery(t *testing.T) {
	q, e := ParsePaymentQuery(url.Values{})
	if e != nil || q.Sort != fsmgigpay.SortCreated || !q.Descending || q.Limit != PageLimitDefault {
		t.Fatalf("defaults %+v %v", q, e)
	}
	values, _ := url.ParseQuery("status=failed&type=withdrawal&accountId=w0001x&assetType=usd&createdFromUtc=2024-01-01T00:00:00Z" +
		"&createdToUtc=2024-01-02T00:00:00.500Z&sort=amount&order=asc&limit=1000")
	q, e = ParsePaymentQuery(values)
	if e != nil || q.Status != fsmgigpay.PaymentFailed || q.Type != fsmgigpay.PaymentWithdrawal || q.WalletID != "w0001x" ||
		q.AssetID != "usd" || q.FromMs != 1704067200000 || q.ToMs != 1704153600500 || q.Sort != fsmgigpay.SortAmount || q.Descending || q.Limit != 1000 {
		t.Fatalf("%+v %v", q, e)
	}
}

// FuzzDecoders: no input crashes a decoder, and whatever a decoder accepts satisfies its limits.
func FuzzDecoders(f *testing.F) {
	for _, seed := range []string{
		`{"assetType":"usd","sourceAccountId":"w0001abc","amount":1.5,"expiresAtUtc":"2024-01-09T18:00:56.246Z","memo":"m"}`,
		`{"items":[{"assetType":"usd","sourceAccountId":"w0001abc","amount":"1","expiresAtUtc":"2024-01-09T18:00:56.246Z"},{}]}`,
		`{"destinationAccountId":"w0001abc"}`, `{}`, ``, `{"reason":"x"}`, `{"status":"completed","reason":"r"}`,
		`{"type":"deposit","accountId":"w1","assetType":"usd","amount":"0.01","externalStorage":"x","clientReference":"c"}`,
		`{"userIdentityId":"alice","assetType":"usd"}`, `{"amount":1e400}`, `{"a":{"b":{"c":{"d":[[[[[[]]]]]]}}}}`,
		"{\"memo\":\"\\ud800\"}", `{"items":[` + strings.Repeat(`{},`, 10) + `{}]}`, `{"amount":"` + strings.Repeat("9", 90) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	const now = 1704067200000
	f.Fuzz(func(t *testing.T, data []byte) {
		if in, e := DecodeToken(strings.NewReader(string(data)), now); e == nil {
			if in.ExpiresAt <= now || !fsm.ValidText(in.Memo, fsmgigpay.MemoMaxLength) || in.Amount.Units.IsZero() || in.Amount.Scale > fsmgigpay.ScaleMax {
				t.Fatalf("accepted %+v", in)
			}
		}
		if items, e := DecodeBatch(strings.NewReader(string(data)), now); e == nil && (len(items) == 0 || len(items) > fsmgigpay.BatchMaxItems) {
			t.Fatalf("accepted a batch of %d", len(items))
		}
		if dest, e := DecodeClaim(strings.NewReader(string(data))); e == nil && !fsm.ValidID(dest, fsm.GeneratedIDMaxLength) {
			t.Fatalf("accepted destination %q", dest)
		}
		_ = DecodeEmpty(strings.NewReader(string(data)))
		_, _ = DecodeClose(strings.NewReader(string(data)))
		_, _, _ = DecodePaymentStatus(strings.NewReader(string(data)))
		if p, e := DecodePayment(strings.NewReader(string(data))); e == nil && (p.Amount.Units.IsZero() || p.Type == fsmgigpay.PaymentTransfer) {
			t.Fatalf("accepted payment %+v", p)
		}
		_, _ = DecodeAccount(strings.NewReader(string(data)))
		_, _ = ParseAmount("amount", json.RawMessage(data))
		values, err := url.ParseQuery(string(data))
		if err == nil {
			_, _ = ParsePaymentQuery(values)
		}
	})
}
