package ledger

import (
	"fmt"
	"math"
	"testing"
)

// TestTransactionIDFormat: transactionID writes what fmt's "%s%016x" writes (the format every
// stored transaction ID has), and transactionSequence reads it back (IDs always have a prefix).
func TestTransactionIDFormat(t *testing.T) {
	for _, prefix := range []string{"", "t", "tx_", "プレ"} {
		for _, sequence := range []uint64{0, 1, 15, 16, 0xabcdef, 1 << 40, math.MaxUint64} {
			got, want := transactionID(prefix, sequence), fmt.Sprintf("%s%016x", prefix, sequence)
			if got != want {
				t.Fatalf("transactionID(%q, %d) = %q, want %q", prefix, sequence, got, want)
			}
			if back, ok := transactionSequence(got); prefix != "" && (!ok || back != sequence) {
				t.Fatalf("transactionSequence(%q) = %d, %v", got, back, ok)
			}
		}
	}
}
