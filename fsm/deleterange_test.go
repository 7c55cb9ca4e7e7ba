package fsm

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestRangeDeletionsOfFewKeysAreKeysDeleted: the outbox's trims (records, dead letters, re-drive
// marks) leave the store as range deletions would, but write a range deletion only when the range
// holds more than deleteRangePointsMax keys — including a dead letter written in the batch that
// trims it, a trim of more keys than that, and a trim after a range deletion in one batch.
func TestRangeDeletionsOfFewKeysAreKeysDeleted(t *testing.T) {
	run := func(pointsMax int) (digests [][32]byte, rangeDeletions uint64) {
		saved := deleteRangePointsMax
		deleteRangePointsMax = pointsMax
		defer func() { deleteRangePointsMax = saved }()
		reg := testRegistry()
		reg.SetOutboxRetention(150)
		tm := newTestMachine(t, reg)
		bumps := func(n int) (envs []Envelope) {
			for range n {
				envs = append(envs, Envelope{Command: &bump{Name: "a", By: 1}})
			}
			return envs
		}
		for i := 0; i < 400; i++ {
			envs := bumps(1 + i%3)
			switch {
			case i%7 == 0:
				// A dead letter of the oldest event the outbox keeps, in the batch that trims it.
				first, _, err := tm.m.OutboxRange()
				if err != nil {
					t.Fatal(err)
				}
				envs = append([]Envelope{{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: first, EventType: "BUMPED", Reason: "HTTP 500"}}}, envs...)
			case i%11 == 0:
				_, last, _ := tm.m.OutboxRange()
				envs = append(envs, Envelope{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: last, EventType: "BUMPED", Reason: "timeout"}},
					Envelope{Command: &OutboxRedrive{Subscriber: "hook"}})
			case i == 300:
				// A batch that trims more records than deleteRangePointsMax, with a dead letter of
				// an event it trims: the records go by a range deletion, which writes the batch's
				// writes before it, so the dead letter is no longer among the batch's own.
				first, _, _ := tm.m.OutboxRange()
				envs = append([]Envelope{{Command: &OutboxDeadLetter{Subscriber: "hook", Sequence: first, EventType: "BUMPED"}}}, bumps(200)...)
			case i == 200:
				// More dead letters of one event than deleteRangePointsMax: trimmed with a range
				// deletion.
				_, last, _ := tm.m.OutboxRange()
				for s := range saved + 10 {
					envs = append(envs, Envelope{Command: &OutboxDeadLetter{Subscriber: fmt.Sprintf("s%03d", s), Sequence: last, EventType: "BUMPED"}})
				}
			}
			for _, r := range tm.apply(envs...) {
				if r.Err != nil {
					t.Fatalf("batch %d: %+v", i, r.Err)
				}
			}
			digest, err := tm.m.Digest()
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, digest)
		}
		if letters, err := tm.m.DeadLetters("", 0, 1000); err != nil || len(letters) == 0 || len(letters) > 150 {
			t.Fatalf("%d dead letters kept, %v", len(letters), err)
		}
		db := tm.m.store.db
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		levels, err := db.SSTables(pebble.WithProperties())
		if err != nil {
			t.Fatal(err)
		}
		for _, tables := range levels {
			for _, table := range tables {
				rangeDeletions += table.Properties.NumRangeDeletions
			}
		}
		return digests, rangeDeletions
	}
	rangesDigests, ranges := run(-1) // every trim a range deletion, as before
	digests, deletions := run(deleteRangePointsMax)
	for i := range digests {
		if digests[i] != rangesDigests[i] {
			t.Fatalf("after batch %d, deleting keys one by one left another store than range deletions", i)
		}
	}
	if ranges < 400 || deletions == 0 || deletions > 6 {
		t.Fatalf("range deletions stored: %d with points, %d without (want 1..6 and ≥ 400)", deletions, ranges)
	}
}
