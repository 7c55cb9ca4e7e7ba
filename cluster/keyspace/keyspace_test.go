package keyspace_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

func TestSlotOf(t *testing.T) {
	// The reference computation, spelled out once more, so a change to SlotOf (which would
	// re-route every existing ID) fails here.
	reference := func(projectID, customerID string) keyspace.Slot {
		sum := sha256.Sum256([]byte(projectID + "\x00" + customerID))
		return keyspace.Slot(binary.BigEndian.Uint16(sum[:2]) % keyspace.SlotCount)
	}
	tests := []struct {
		projectID, customerID string
	}{
		{"p1", "c1"},
		{"p1", ""},
		{"", "p1"},
		{"project-with-a-long-name", "customer/with/slashes"},
		{"p", "1c"},
		{"p1", "c"},
	}
	for _, tt := range tests {
		got := keyspace.SlotOf(tt.projectID, tt.customerID)
		if want := reference(tt.projectID, tt.customerID); got != want {
			t.Errorf("SlotOf(%q, %q) = %d, want %d", tt.projectID, tt.customerID, got, want)
		}
		if got >= keyspace.SlotCount {
			t.Errorf("SlotOf(%q, %q) = %d ≥ SlotCount", tt.projectID, tt.customerID, got)
		}
	}
	// Pinned values: slots are in IDs clients hold and must never change.
	pinned := []struct {
		projectID, customerID string
		slot                  keyspace.Slot
	}{
		{"p1", "c1", 501},
		{"p1", "", 2112},
		{"proj", "alice", 361},
	}
	for _, p := range pinned {
		if got := keyspace.SlotOf(p.projectID, p.customerID); got != p.slot {
			t.Errorf("SlotOf(%q, %q) = %d, pinned %d", p.projectID, p.customerID, got, p.slot)
		}
	}
}

func TestSlotOfID(t *testing.T) {
	tests := []struct {
		id   string
		slot keyspace.Slot
		ok   bool
	}{
		{"w0a3f", 0x0a3f, true},
		{"w0a3f0000000000000001", 0x0a3f, true},
		{"t0000xyz", 0, true},
		{"T0fffabc", 0x0fff, true},
		{"w1000", 0, false}, // slot 4096 is out of range
		{"wffff", 0, false},
		{"w0A3F", 0, false}, // uppercase hex is not the canonical spelling
		{"w0a3", 0, false},  // too short
		{"", 0, false},
		{"00a3f", 0, false}, // kind must be a letter
		{"-0a3f", 0, false},
		{"w0a3g", 0, false},
		{"w 0a3", 0, false},
	}
	for _, tt := range tests {
		slot, ok := keyspace.SlotOfID(tt.id)
		if ok != tt.ok || slot != tt.slot {
			t.Errorf("SlotOfID(%q) = %d, %v; want %d, %v", tt.id, slot, ok, tt.slot, tt.ok)
		}
	}
	for _, slot := range []keyspace.Slot{0, 1, 0x0a3f, keyspace.SlotCount - 1} {
		got, ok := keyspace.SlotOfID("w" + keyspace.SlotHex(slot) + "rest")
		if !ok || got != slot {
			t.Errorf("SlotHex(%d) does not round-trip: %d, %v", slot, got, ok)
		}
	}
}

func TestShardOfSlot(t *testing.T) {
	tests := []struct {
		slot       keyspace.Slot
		shardCount int
		shard      keyspace.ShardID
	}{
		{0, 1, 0},
		{4095, 1, 0},
		{5, 4, 1},
		{4095, 4, 3},
		{4095, 256, 255},
		{256, 256, 0},
		{7, 3, 1},
	}
	for _, tt := range tests {
		if got := keyspace.ShardOfSlot(tt.slot, tt.shardCount); got != tt.shard {
			t.Errorf("ShardOfSlot(%d, %d) = %d, want %d", tt.slot, tt.shardCount, got, tt.shard)
		}
	}
	for _, bad := range []int{0, -1, 257} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ShardOfSlot(1, %d) did not panic", bad)
				}
			}()
			keyspace.ShardOfSlot(1, bad)
		}()
	}
}

// TestKnownIDsRouteAsBefore pins the routing of fixed keys and IDs to the values the code
// computed before it moved here from package cluster (cluster/slot.go): IDs in clients' hands
// and in existing data directories must keep landing on the same slot and shard.
func TestKnownIDsRouteAsBefore(t *testing.T) {
	keys := []struct {
		projectID, customerID string
		slot                  keyspace.Slot
		shardOf1, shardOf4    keyspace.ShardID
		shardOf7              keyspace.ShardID
	}{
		{"p1", "c1", 501, 0, 1, 4},
		{"p1", "", 2112, 0, 0, 5},
		{"proj", "alice", 361, 0, 1, 4},
		{"shop", "bob", 764, 0, 0, 1},
		{"shop", "", 788, 0, 0, 4},
		{"pabcdefghijklmnopqrstu", "cust-42", 3938, 0, 2, 4},
		{"", "", 3636, 0, 0, 3},
		{"a", "b\x00c", 2989, 0, 1, 0},
	}
	for _, k := range keys {
		slot := keyspace.SlotOf(k.projectID, k.customerID)
		if slot != k.slot {
			t.Errorf("SlotOf(%q, %q) = %d, was %d", k.projectID, k.customerID, slot, k.slot)
			continue
		}
		for _, c := range []struct {
			shardCount int
			shard      keyspace.ShardID
		}{{1, k.shardOf1}, {4, k.shardOf4}, {7, k.shardOf7}} {
			if got := keyspace.ShardOfSlot(slot, c.shardCount); got != c.shard {
				t.Errorf("ShardOfSlot(%d, %d) = %d, was %d", slot, c.shardCount, got, c.shard)
			}
		}
	}
	ids := []struct {
		id       string
		slot     keyspace.Slot
		shardOf4 keyspace.ShardID
	}{
		{"w01f5abcdefghijklmnopqrst", 501, 1},
		{"t08400000000000000017", 2112, 0},
		{"p0169zzzzzzzzzzzzzzzzzzzz", 361, 1},
		{"a0fffqqqqqqqqqqqqqqqqqqqq", 4095, 3},
		{"W0000x", 0, 0},
	}
	for _, tt := range ids {
		slot, ok := keyspace.SlotOfID(tt.id)
		if !ok || slot != tt.slot {
			t.Errorf("SlotOfID(%q) = %d, %v; was %d, true", tt.id, slot, ok, tt.slot)
			continue
		}
		if got := keyspace.ShardOfSlot(slot, 4); got != tt.shardOf4 {
			t.Errorf("ShardOfSlot(SlotOfID(%q), 4) = %d, was %d", tt.id, got, tt.shardOf4)
		}
		if prefix := tt.id[:1] + keyspace.SlotHex(slot); prefix != tt.id[:5] {
			t.Errorf("SlotHex(%d) re-encodes %q as %q", slot, tt.id[:5], prefix)
		}
	}
}
