package rpc

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// FuzzDecodeEnvelope feeds arbitrary answers to the envelope decoder: it must never panic,
// must return exactly one of a result, a node error or ErrBadResponse, and must accept an
// answer only when it echoes the id.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"result":"00","error":null,"id":7}`,
		`{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":7}`,
		`{"result":1,"error":null,"id":8}`,
		`{"result":1,"error":null,"id":"7"}`,
		`{"result":1,"error":null,"id":7,"jsonrpc":"2.0"}`,
		`{"result":1,"error":"x","id":7}`,
		`{"id":7}`,
		`[1,2]`,
		`{"result":1,"error":null,"id":7}{}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		decoded, err := decodeEnvelope(answer, 7)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		if (decoded.nodeError == nil) == (decoded.result == nil) {
			t.Fatalf("accepted %q with result %q and node error %v", answer, decoded.result, decoded.nodeError)
		}
		var echoed struct{ ID json.RawMessage }
		if json.Unmarshal(answer, &echoed) != nil {
			// Decoding the first object only; a trailing value would have been refused.
			t.Fatalf("accepted %q, which is not one JSON value", answer)
		}
		if id, err := strconv.ParseFloat(string(echoed.ID), 64); err != nil || id != 7 {
			t.Fatalf("accepted %q with id %s", answer, echoed.ID)
		}
	})
}

// FuzzParseAmount checks that Amount parses a decimal exactly and refuses the rest without a
// panic: an accepted amount prints back to the same value with eight decimals.
func FuzzParseAmount(f *testing.F) {
	for _, seed := range []string{"0", "-1", "0.01000000", "1.23456789", "92233720368.54775807", "92233720368.54775808", "1e8", "0.000000001", "1.", ".1", "-", "- 1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var amount Amount
		if err := json.Unmarshal([]byte(text), &amount); err != nil {
			return
		}
		var number json.Number
		if err := json.Unmarshal([]byte(text), &number); err != nil {
			t.Fatalf("accepted %q, which is not a JSON number", text)
		}
		magnitude := int64(amount)
		sign := ""
		if magnitude < 0 {
			sign, magnitude = "-", -magnitude
		}
		formatted := sign + strconv.FormatInt(magnitude/1_0000_0000, 10) + "." + leftPad(strconv.FormatInt(magnitude%1_0000_0000, 10), 8)
		var again Amount
		if err := json.Unmarshal([]byte(formatted), &again); err != nil || again != amount {
			t.Fatalf("%q parsed to %d, which formats as %s and parses back to %d (%v)", text, amount, formatted, again, err)
		}
	})
}

func leftPad(digits string, width int) string {
	for len(digits) < width {
		digits = "0" + digits
	}
	return digits
}
