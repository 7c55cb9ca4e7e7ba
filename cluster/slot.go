package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// SlotCount is the fixed number of slots keys hash into. It is part of every ID a client holds
// (see SlotOfID), so it can never change.
const SlotCount = 4096

// ShardCountMax bounds the shard count a cluster may bootstrap with (shard IDs travel as two
// bytes on the wire, and node metadata carries hosted shards as a bitmap that must fit
// memberlist's 512-byte limit).
const ShardCountMax = 256

// slotHexDigitCount is how many lowercase hex digits follow the kind letter of a slotted ID.
const slotHexDigitCount = 4

// SlotOf is the slot of a routing key: the first two bytes (big-endian) of
// SHA-256(projectID + 0x00 + customerID), mod SlotCount. System wallets use customerID "", so
// all of a project's system wallets share one slot.
func SlotOf(projectID, customerID string) uint16 {
	h := sha256.New()
	h.Write([]byte(projectID))
	h.Write([]byte{0})
	h.Write([]byte(customerID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint16(sum[:2]) % SlotCount
}

// SlotOfID parses the slot an ID carries: a kind letter (a-z or A-Z), then the slot as exactly
// four lowercase hex digits ("w0a3f..." is slot 0x0a3f). It reports false for anything else,
// including a slot ≥ SlotCount.
func SlotOfID(id string) (uint16, bool) {
	if len(id) < 1+slotHexDigitCount {
		return 0, false
	}
	kind := id[0]
	if !('a' <= kind && kind <= 'z' || 'A' <= kind && kind <= 'Z') {
		return 0, false
	}
	var slot uint16
	for i := 1; i <= slotHexDigitCount; i++ {
		c := id[i]
		var digit uint16
		switch {
		case '0' <= c && c <= '9':
			digit = uint16(c - '0')
		case 'a' <= c && c <= 'f':
			digit = uint16(c-'a') + 10
		default:
			return 0, false
		}
		slot = slot<<4 | digit
	}
	if slot >= SlotCount {
		return 0, false
	}
	return slot, true
}

// SlotHex is the four lowercase hex digits that follow the kind letter in an ID of slot (the
// inverse of SlotOfID's parsing): SlotOfID("w"+SlotHex(s)+rest) == s.
func SlotHex(slot uint16) string {
	if slot >= SlotCount {
		panic(fmt.Sprintf("cluster: slot %d out of range [0, %d)", slot, SlotCount))
	}
	return fmt.Sprintf("%04x", slot)
}

// ShardOfSlot maps a slot to its shard: slot mod shardCount. shardCount is fixed at bootstrap
// (1..ShardCountMax); anything else is a programming error and panics.
func ShardOfSlot(slot uint16, shardCount int) int {
	if shardCount < 1 || shardCount > ShardCountMax {
		panic(fmt.Sprintf("cluster: shard count %d out of range [1, %d]", shardCount, ShardCountMax))
	}
	return int(slot) % shardCount
}
