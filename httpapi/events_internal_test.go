package httpapi

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

// A cursor survives its text form for every shard count the cluster allows.
func TestEventsCursorRoundTrip(t *testing.T) {
	for _, after := range [][]uint64{{0}, {1, 0, 300}, {1<<63 - 1, 127, 128}, make([]uint64, 256)} {
		text := encodeEventsCursor(after)
		if len(text) > cursorMaxChars || strings.ContainsAny(text, "+/=") {
			t.Fatalf("cursor %q of %d shards: %d chars (max %d) or not base64url", text, len(after), len(text), cursorMaxChars)
		}
		got, err := decodeEventsCursor(text)
		if err != nil || !slices.Equal(got, after) {
			t.Fatalf("round trip of %v: %v, %v", after, got, err)
		}
	}
	// Longest cursor: 256 shards at the largest sequence.
	long := make([]uint64, 256)
	for i := range long {
		long[i] = 1<<63 - 1
	}
	if text := encodeEventsCursor(long); len(text) > cursorMaxChars {
		t.Fatalf("longest cursor has %d chars, bound %d", len(text), cursorMaxChars)
	}
}

// Anything a client could send that this API did not write is refused.
func TestEventsCursorIsStrict(t *testing.T) {
	raw := func(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	valid := encodeEventsCursor([]uint64{5, 6})
	for name, text := range map[string]string{
		"empty":             "",
		"not base64":        "!!!",
		"padded":            base64.URLEncoding.EncodeToString([]byte{1, 2, 0, 0}),
		"std alphabet":      strings.ReplaceAll(strings.ReplaceAll(raw(1, 1, 0xfb, 0xff, 0x01), "-", "+"), "_", "/"),
		"unknown version":   raw(2, 1, 0),
		"no shards":         raw(1, 0),
		"too many shards":   raw(1, 0x81, 0x02), // 257
		"truncated":         raw(1, 2, 5),
		"trailing":          valid + "AA",
		"non-canonical":     raw(1, 1, 0x80, 0x00),
		"sequence too high": raw(append([]byte{1, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)...),
		"too long":          strings.Repeat("A", cursorMaxChars+1),
	} {
		if after, err := decodeEventsCursor(text); err == nil {
			t.Errorf("%s: decoded %q as %v", name, text, after)
		}
	}
}

// FuzzDecodeEventsCursor: any text decodes or fails without panicking, and what decodes
// encodes back to the same text (one cursor, one text).
func FuzzDecodeEventsCursor(f *testing.F) {
	f.Add(encodeEventsCursor([]uint64{0}))
	f.Add(encodeEventsCursor([]uint64{1, 2, 3, 1 << 40}))
	f.Add("AQEA")
	f.Fuzz(func(t *testing.T, text string) {
		after, err := decodeEventsCursor(text)
		if err != nil {
			return
		}
		if again := encodeEventsCursor(after); again != text {
			t.Fatalf("%q decodes to %v, which encodes to %q", text, after, again)
		}
	})
}

func TestEventCategoryAndFilter(t *testing.T) {
	for eventType, want := range map[string]string{"LEDGER_TX_COMPLETED": "LEDGER", "ACC_CREATED": "ACC", "INV_EXPIRED": "INV",
		"PAYMENT_RECEIVED": "PAYMENT", "SYS": "SYS"} {
		if got := EventCategory(eventType); got != want {
			t.Errorf("category of %s: %s, want %s", eventType, got, want)
		}
	}
	f, apiErr := parseEventFilter("INV, LEDGER_TX_FAILED")
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	for eventType, want := range map[string]bool{"INV_CREATED": true, "LEDGER_TX_FAILED": true, "LEDGER_TX_COMPLETED": false, "ACC_CREATED": false} {
		if f.matches(eventType) != want {
			t.Errorf("INV,LEDGER_TX_FAILED matches %s: %v", eventType, !want)
		}
	}
	if all, _ := parseEventFilter("ALL"); !all.matches("TOKEN_CLAIMED") {
		t.Error("ALL does not match everything")
	}
	if none, _ := parseEventFilter(""); !none.matches("ACC_UPDATED") {
		t.Error("no filter does not match everything")
	}
	for _, bad := range []string{"BOGUS", "inv", "INV,", "LEDGER_tx", "WEBHOOK_FIRED", "INV;ACC", strings.Repeat("INV,", eventsTypesMaxCount) + "INV"} {
		if _, apiErr := parseEventFilter(bad); apiErr == nil {
			t.Errorf("types=%q accepted", bad)
		}
	}
}
