package shard

import (
	"bytes"
	"errors"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		time     int64
		commands [][]byte
	}{
		{"one", 1_700_000_000_000, [][]byte{[]byte("a")}},
		{"empty command", 0, [][]byte{{}}},
		{"negative time", -5, [][]byte{[]byte("x"), bytes.Repeat([]byte("y"), 300)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodeEnvelope(nil, c.time, c.commands)
			if len(data) != envelopeSizeBytes(c.time, c.commands) {
				t.Fatalf("size %d, predicted %d", len(data), envelopeSizeBytes(c.time, c.commands))
			}
			gotTime, gotCommands, err := decodeEnvelope(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if gotTime != c.time || len(gotCommands) != len(c.commands) {
				t.Fatalf("got time %d, %d commands", gotTime, len(gotCommands))
			}
			for i := range gotCommands {
				if !bytes.Equal(gotCommands[i], c.commands[i]) {
					t.Fatalf("command %d = %q", i, gotCommands[i])
				}
			}
		})
	}
}

func TestEnvelopeRejectsCorruption(t *testing.T) {
	valid := encodeEnvelope(nil, 42, [][]byte{[]byte("abc"), []byte("de")})
	cases := map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{2}, valid[1:]...),
		"truncated":       valid[:len(valid)-1],
		"trailing byte":   append(append([]byte(nil), valid...), 0),
		"zero commands":   encodeEnvelope(nil, 1, nil),
		"huge count":      {1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"overlong varint": {1, 0x82, 0x00, 2, 0, 0},
	}
	for name, data := range cases {
		if _, _, err := decodeEnvelope(data); !errors.Is(err, errEnvelope) {
			t.Errorf("%s: err = %v, want errEnvelope", name, err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(nil, 42, [][]byte{[]byte("abc"), []byte("de")}))
	f.Add([]byte{1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		timeUnixMs, commands, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes (one canonical form).
		if again := encodeEnvelope(nil, timeUnixMs, commands); !bytes.Equal(again, data) {
			t.Fatalf("re-encoded %x, input %x", again, data)
		}
	})
}
