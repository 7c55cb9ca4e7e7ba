package cluster_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/gigaledger/gigaledger/cluster"
)

func TestSlotOf(t *testing.T) {
	// The reference computation, spelled out once more, so a change to SlotOf (which would
	// re-route every existing ID) fails here.
	reference := func(projectID, customerID string) uint16 {
		sum := sha256.Sum256([]byte(projectID + "\x00" + customerID))
		return binary.BigEndian.Uint16(sum[:2]) % cluster.SlotCount
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
		got := cluster.SlotOf(tt.projectID, tt.customerID)
		if want := reference(tt.projectID, tt.customerID); got != want {
			t.Errorf("SlotOf(%q, %q) = %d, want %d", tt.projectID, tt.customerID, got, want)
		}
		if got >= cluster.SlotCount {
			t.Errorf("SlotOf(%q, %q) = %d ≥ SlotCount", tt.projectID, tt.customerID, got)
		}
	}
	// Pinned values: slots are in IDs clients hold and must never change.
	pinned := []struct {
		projectID, customerID string
		slot                  uint16
	}{
		{"p1", "c1", 501},
		{"p1", "", 2112},
		{"proj", "alice", 361},
	}
	for _, p := range pinned {
		if got := cluster.SlotOf(p.projectID, p.customerID); got != p.slot {
			t.Errorf("SlotOf(%q, %q) = %d, pinned %d", p.projectID, p.customerID, got, p.slot)
		}
	}
}

func TestSlotOfID(t *testing.T) {
	tests := []struct {
		id   string
		slot uint16
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
		slot, ok := cluster.SlotOfID(tt.id)
		if ok != tt.ok || slot != tt.slot {
			t.Errorf("SlotOfID(%q) = %d, %v; want %d, %v", tt.id, slot, ok, tt.slot, tt.ok)
		}
	}
	for _, slot := range []uint16{0, 1, 0x0a3f, cluster.SlotCount - 1} {
		got, ok := cluster.SlotOfID("w" + cluster.SlotHex(slot) + "rest")
		if !ok || got != slot {
			t.Errorf("SlotHex(%d) does not round-trip: %d, %v", slot, got, ok)
		}
	}
}

func TestShardOfSlot(t *testing.T) {
	tests := []struct {
		slot       uint16
		shardCount int
		shard      int
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
		if got := cluster.ShardOfSlot(tt.slot, tt.shardCount); got != tt.shard {
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
			cluster.ShardOfSlot(1, bad)
		}()
	}
}
