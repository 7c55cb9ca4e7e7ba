package fsm

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// keyOrder sorts the indexes 0..n-1 of n keys (key(i) is the i-th) by key, equal keys by index,
// into order (reused, returned): the j-th smallest key's index is order[j]&mask.
//
// Apply hands Pebble each batch's writes in key order, because Pebble's memtable inserts keys
// in order almost for free (batchwrites.go). Sorting them by comparing whole keys cost about as
// much as the inserts it saved (bench/RESULTS.md, session 23: 0.49 s of a 1M-transfer apply
// against 0.98 s of inserts in apply order). Here one sort of 64-bit words does most of it:
// each word is 8 key bytes after the prefix every key shares, above the key's index; only the
// runs of keys whose 8 bytes are equal (a tie, or keys that differ further on) are sorted again
// by whole key.
func keyOrder(n int, key func(i int) []byte, order []uint64) (sorted []uint64, mask uint64) {
	order = order[:0]
	if n == 0 {
		return order, 0
	}
	shift := bits.Len(uint(n - 1)) // index bits
	mask = 1<<shift - 1
	// The longest prefix every key shares: the bytes after it are what tells them apart.
	first := key(0)
	common := len(first)
	for i := 1; i < n && common > 0; i++ {
		k := key(i)
		limit := min(common, len(k))
		j := 0
		for j < limit && k[j] == first[j] {
			j++
		}
		common = j
	}
	for i := range n {
		var word [8]byte
		copy(word[:], key(i)[common:])
		order = append(order, binary.BigEndian.Uint64(word[:])&^mask|uint64(i))
	}
	slices.Sort(order)
	for start := 0; start < n; {
		end := start + 1
		for end < n && order[end]&^mask == order[start]&^mask {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(order[start:end], func(a, b uint64) int {
				if c := bytes.Compare(key(int(a&mask)), key(int(b&mask))); c != 0 {
					return c
				}
				return int(a&mask) - int(b&mask)
			})
		}
		start = end
	}
	return order, mask
}
