package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

// The relay's subscription reads fail until the metadata shard has a leader: a node's start is
// not worth a warning, a read failing long after the start or after reads worked is (once per
// run of failures).
func TestRelaySubscriptionReadFailuresWarnOncePastTheStart(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	fail := true
	s := &relaySubscriptions{
		logger: slog.New(slog.NewTextHandler(&logs, nil)),
		now:    func() time.Time { return now },
		read: func(context.Context) ([]fsm.Subscription, error) {
			if fail {
				return nil, errors.New("read index: context deadline exceeded")
			}
			return nil, nil
		},
	}
	warnings := func() int { return strings.Count(logs.String(), "cannot read the subscriptions") }
	step := func(d time.Duration) {
		now = now.Add(d)
		s.refresh(context.Background())
	}

	for range 14 { // an election that takes a while
		step(time.Second)
	}
	if warnings() != 0 {
		t.Fatalf("warned during the start: %s", logs.String())
	}
	step(2 * time.Second) // 15 s without a read
	step(time.Second)
	if warnings() != 1 {
		t.Fatalf("%d warnings once reads had failed past the start, want 1: %s", warnings(), logs.String())
	}

	fail = false
	step(time.Second)
	fail = true
	step(time.Second) // reads worked: a failure now is worth saying at once
	step(time.Second)
	if warnings() != 2 {
		t.Fatalf("%d warnings after a read worked and failed again, want 2: %s", warnings(), logs.String())
	}
}
