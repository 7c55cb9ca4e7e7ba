package httpapi

import (
	"math/rand/v2"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gigaledger/gigaledger/fsm"
)

// printableASCII is a shortcut: whatever it passes, the per-rune checks of checkText and
// checkPrintable pass too, and it passes printable ASCII only.
func TestPrintableASCIIIsAShortcutOfTheRuneChecks(t *testing.T) {
	slow := func(s string) bool {
		if !utf8.ValidString(s) || !fsm.ValidText(s, len(s)) {
			return false
		}
		for _, r := range s {
			if !unicode.IsPrint(r) || fsm.HiddenFormat(r) {
				return false
			}
		}
		return true
	}
	for b := 0; b < 256; b++ {
		s := string([]byte{byte(b)})
		want := b >= 0x20 && b <= 0x7e
		if got := printableASCII(s); got != want {
			t.Errorf("byte %#x: printableASCII %v, want %v", b, got, want)
		}
		if printableASCII(s) && !slow(s) {
			t.Errorf("byte %#x: passed by printableASCII, refused by the rune checks", b)
		}
	}
	alphabet := []string{"a", "Z", "0", " ", "~", "-", "\x7f", "\x00", "\t", "é", "\u200b", "\u00a0", "\xff", "\u2028", "😀"}
	random := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		var s string
		for n := random.IntN(8); n > 0; n-- {
			s += alphabet[random.IntN(len(alphabet))]
		}
		if printableASCII(s) && !slow(s) {
			t.Fatalf("%q: passed by printableASCII, refused by the rune checks", s)
		}
		if got, want := checkPrintable("f", s, 64) == nil, slow(s); got != want {
			t.Fatalf("%q: checkPrintable accepts %v, the rune checks %v", s, got, want)
		}
	}
}
