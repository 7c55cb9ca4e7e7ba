package shard

import (
	"testing"
	"time"
)

func TestLingerPolicyHold(t *testing.T) {
	policy := lingerPolicy{spacing: 2 * time.Millisecond, countMin: 32}
	long := time.Duration(1<<63 - 1) // no batch yet: the zero time is this far back
	for _, tc := range []struct {
		name      string
		policy    lingerPolicy
		count     int
		sinceLast time.Duration
		inFlight  int
		want      time.Duration
	}{
		{"first batch ever goes at once", policy, 1, long, 1, 0},
		{"nothing in flight: a lone client never waits", policy, 1, 0, 0, 0},
		{"small batch right after the previous one waits a whole spacing", policy, 1, 0, 1, 2 * time.Millisecond},
		{"the hold is what is left of the spacing", policy, 5, 1500 * time.Microsecond, 1, 500 * time.Microsecond},
		{"spacing already passed: at once", policy, 5, 2 * time.Millisecond, 1, 0},
		{"low rate: previous batch long gone", policy, 1, 50 * time.Millisecond, 1, 0},
		{"a batch of countMin goes at once", policy, 32, 0, 1, 0},
		{"a larger batch goes at once", policy, 400, 0, 1, 0},
		{"one below countMin still waits", policy, 31, time.Millisecond, 1, time.Millisecond},
		{"several in flight", policy, 1, 0, 3, 2 * time.Millisecond},
		{"clock stepped back: at most one spacing", policy, 1, -time.Hour, 1, 2 * time.Millisecond},
		{"off", lingerPolicy{spacing: -1, countMin: 32}, 1, 0, 1, 0},
		{"zero spacing is off", lingerPolicy{countMin: 32}, 1, 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.policy.hold(tc.count, tc.sinceLast, tc.inFlight); got != tc.want {
				t.Fatalf("hold(%d, %v, %d) = %v, want %v", tc.count, tc.sinceLast, tc.inFlight, got, tc.want)
			}
		})
	}
}

// The hold never exceeds the spacing, and batches below countMin are at least a spacing apart:
// whatever the arrivals, a small batch goes when sinceLast+hold reaches the spacing.
func TestLingerPolicyBounds(t *testing.T) {
	policy := lingerPolicy{spacing: 3 * time.Millisecond, countMin: 8}
	for count := 1; count <= 10; count++ {
		for since := -time.Millisecond; since <= 5*time.Millisecond; since += 250 * time.Microsecond {
			hold := policy.hold(count, since, 1)
			if hold < 0 || hold > policy.spacing {
				t.Fatalf("hold(%d, %v) = %v outside [0, %v]", count, since, hold, policy.spacing)
			}
			if count < policy.countMin && since >= 0 && since+hold < policy.spacing {
				t.Fatalf("hold(%d, %v) = %v: batch would go %v after the previous one", count, since, hold, since+hold)
			}
		}
	}
}
