package main

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/shard"
)

// --batch-linger: the shard default unless given, 0 turns holding off (a negative value for
// shard.Config, whose zero is the default), and values outside [0, 100ms] are refused.
func TestBatchLingerFlag(t *testing.T) {
	cfg, err := parseServeFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchLinger != shard.DefaultBatchLinger || cfg.shardBatchLinger() != shard.DefaultBatchLinger {
		t.Fatalf("default --batch-linger %v (shard %v), want %v", cfg.BatchLinger, cfg.shardBatchLinger(), shard.DefaultBatchLinger)
	}
	cfg, err = parseServeFlags([]string{"--batch-linger", "0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.shardBatchLinger(); got >= 0 {
		t.Fatalf("--batch-linger 0 gives shard.Config.BatchLinger %v, want negative (off)", got)
	}
	cfg, err = parseServeFlags([]string{"--batch-linger", "1ms"}, &bytes.Buffer{})
	if err != nil || cfg.shardBatchLinger() != time.Millisecond {
		t.Fatalf("--batch-linger 1ms: %v, %v", cfg, err)
	}
	for _, bad := range []string{"-1ms", "101ms"} {
		if _, err := parseServeFlags([]string{"--batch-linger", bad}, &bytes.Buffer{}); err == nil {
			t.Fatalf("--batch-linger %s accepted", bad)
		}
	}
}

// The shards a node hosts never hold the steps of a cross-shard transaction or a batch
// request's groups for more commands, and hold every other command as --batch-linger says.
func TestShardTemplateHoldsNoProtocolStep(t *testing.T) {
	cfg, err := parseServeFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	fams := newFamilies()
	template := cfg.shardTemplate(prometheus.NewRegistry(), fams)
	if template.Urgent == nil {
		t.Fatal("shard template without Urgent: group commit would hold every protocol step")
	}
	want := []fsm.Op{ledger.OpCrossBegin, ledger.OpCrossPrepare, ledger.OpCrossDecide, ledger.OpCrossFinish, ledger.OpCrossDone,
		ledger.OpCrossBeginExtended, ledger.OpCrossPrepareExtended, ledger.OpCrossPrepareAt, ledger.OpCrossFinishAt, ledger.OpTransactBatch}
	var urgent []fsm.Op
	for _, spec := range fams.registry.Specs() {
		command := fsm.EncodeCommand(spec.Example)
		if template.Urgent(command) {
			urgent = append(urgent, spec.Op)
		}
		// With an idempotency key the envelope's op is read the same way.
		keyed := fsm.EncodeEnvelope(fsm.Envelope{Command: spec.Example, Idempotency: &fsm.Idempotency{Scope: "s", Key: "k"}})
		if template.Urgent(keyed) != template.Urgent(command) {
			t.Errorf("%s: urgent %v with an idempotency key, %v without", spec.Name, template.Urgent(keyed), template.Urgent(command))
		}
	}
	slices.Sort(urgent)
	slices.Sort(want)
	if !slices.Equal(urgent, want) {
		t.Fatalf("urgent ops %v, want %v (the cross-shard protocol and TransactBatch)", urgent, want)
	}
	for _, malformed := range [][]byte{nil, {}, {1}, {2}, {2, 0x80}, {2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if template.Urgent(malformed) {
			t.Errorf("malformed command %x reported urgent", malformed)
		}
	}
}
