package main

import (
	"bytes"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// --block-cache-mib: fsm's default unless given (or 0), refused outside its bounds.
func TestBlockCacheFlag(t *testing.T) {
	for _, args := range [][]string{nil, {"--block-cache-mib", "0"}} {
		cfg, err := parseServeFlags(args, &bytes.Buffer{})
		if err != nil || cfg.blockCacheBytes() != fsm.DefaultBlockCacheBytes {
			t.Fatalf("%v: --block-cache-mib %d (%v), want %d MiB", args, cfg.BlockCacheMiB, err, fsm.DefaultBlockCacheBytes>>20)
		}
	}
	if cfg, err := parseServeFlags([]string{"--block-cache-mib", "64"}, &bytes.Buffer{}); err != nil || cfg.blockCacheBytes() != 64<<20 {
		t.Fatalf("--block-cache-mib 64: %v, %v", cfg, err)
	}
	for _, bad := range []string{"-1", "15", "1048577", "1e3", "big"} {
		if _, err := parseServeFlags([]string{"--block-cache-mib", bad}, &bytes.Buffer{}); err == nil {
			t.Fatalf("--block-cache-mib %s accepted", bad)
		}
	}
}
