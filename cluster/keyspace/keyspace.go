// Package keyspace owns how the ledger's data is divided: a routing key hashes to one of
// SlotCount slots, IDs carry their slot as four hex digits after a kind letter, and a slot maps
// to a shard by the cluster's fixed shard count.
//
// It is a leaf: pure functions over strings and integers, importing nothing but the standard
// library, so that the HTTP layer (which makes IDs) can use it without pulling in Raft, bolt or
// memberlist. Everything here is part of IDs clients already hold and of data directories on
// disk: a change to any result re-routes existing data (TestKnownIDsRouteAsBefore pins them).
package keyspace

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Slot is one of SlotCount fixed parts of the key space. It is stable for the life of the data:
// IDs carry it, and a slot never moves between shards (the shard count is fixed at bootstrap).
type Slot uint16

// ShardID names one Raft group of the cluster, 0 ≤ ShardID < shard count ≤ ShardCountMax.
// Shard 0 also holds the cluster's project-level data (projects, assets).
type ShardID int

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
func SlotOf(projectID, customerID string) Slot {
	h := sha256.New()
	h.Write([]byte(projectID))
	h.Write([]byte{0})
	h.Write([]byte(customerID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return Slot(binary.BigEndian.Uint16(sum[:2]) % SlotCount)
}

// SlotOfID parses the slot an ID carries: a kind letter (a-z or A-Z), then the slot as exactly
// four lowercase hex digits ("w0a3f..." is slot 0x0a3f). It reports false for anything else,
// including a slot ≥ SlotCount.
func SlotOfID(id string) (Slot, bool) {
	if len(id) < 1+slotHexDigitCount {
		return 0, false
	}
	kind := id[0]
	if !('a' <= kind && kind <= 'z' || 'A' <= kind && kind <= 'Z') {
		return 0, false
	}
	var slot Slot
	for i := 1; i <= slotHexDigitCount; i++ {
		c := id[i]
		var digit Slot
		switch {
		case '0' <= c && c <= '9':
			digit = Slot(c - '0')
		case 'a' <= c && c <= 'f':
			digit = Slot(c-'a') + 10
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
// inverse of SlotOfID's parsing): SlotOfID("w"+SlotHex(s)+rest) == s. A slot ≥ SlotCount is a
// programming error and panics.
func SlotHex(slot Slot) string {
	if slot >= SlotCount {
		panic(fmt.Sprintf("keyspace: slot %d out of range [0, %d)", slot, SlotCount))
	}
	return fmt.Sprintf("%04x", uint16(slot))
}

// ShardOfSlot maps a slot to its shard: slot mod shardCount. shardCount is fixed at bootstrap
// (1..ShardCountMax); anything else is a programming error and panics.
func ShardOfSlot(slot Slot, shardCount int) ShardID {
	if shardCount < 1 || shardCount > ShardCountMax {
		panic(fmt.Sprintf("keyspace: shard count %d out of range [1, %d]", shardCount, ShardCountMax))
	}
	return ShardID(int(slot) % shardCount)
}
