package main

import (
	"bytes"
	"testing"
	"time"

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
