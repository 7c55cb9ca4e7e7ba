package fsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// keyOrder gives the order of a stable sort by whole key, whatever the keys share or how many
// there are: equal keys, keys that are prefixes of others, keys shorter than 8 bytes past
// their common prefix, empty keys, more keys than fit 16 index bits.
func TestKeyOrderIsAStableSortByKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := map[string]string{"binary": "\x00\x01\xff", "letters": "abcdefghijklmnopqrstuvwxyz0123456789"}
	for _, n := range []int{0, 1, 2, 3, 17, 1000, 70_000} {
		for _, prefix := range []string{"", "p", "#\x00\x00\x00\x00\x00\x00\x01\x01%wallet-"} {
			for name, alphabet := range alphabets {
				t.Run(fmt.Sprintf("n=%d/prefix=%q/%s", n, prefix, name), func(t *testing.T) {
					keys := make([][]byte, n)
					for i := range keys {
						if i > 0 && rng.IntN(8) == 0 {
							keys[i] = slices.Clone(keys[rng.IntN(i)]) // a key written twice
							continue
						}
						k := []byte(prefix)
						for range rng.IntN(14) {
							k = append(k, alphabet[rng.IntN(len(alphabet))])
						}
						keys[i] = k
					}
					want := make([]int, n)
					for i := range want {
						want[i] = i
					}
					slices.SortStableFunc(want, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
					order, mask := keyOrder(n, func(i int) []byte { return keys[i] }, nil)
					if len(order) != n {
						t.Fatalf("%d indexes for %d keys", len(order), n)
					}
					for j, o := range order {
						if got := int(o & mask); got != want[j] {
							t.Fatalf("position %d: index %d (key %q), want %d (key %q)", j, got, keys[got], want[j], keys[want[j]])
						}
					}
				})
			}
		}
	}
}
