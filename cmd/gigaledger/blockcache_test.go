package main

import (
	"bytes"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// --block-cache-mib: fsm's default unless given, refused outside its bounds.
func TestBlockCacheFlag(t *testing.T) {
	cfg, err := parseServeFlags(nil, &bytes.Buffer{})
	if err != nil || int64(cfg.BlockCacheMiB)<<20 != fsm.DefaultBlockCacheBytes {
		t.Fatalf("default --block-cache-mib %d (%v), want %d MiB", cfg.BlockCacheMiB, err, fsm.DefaultBlockCacheBytes>>20)
	}
	if cfg, err = parseServeFlags([]string{"--block-cache-mib", "64"}, &bytes.Buffer{}); err != nil || cfg.BlockCacheMiB != 64 {
		t.Fatalf("--block-cache-mib 64: %v, %v", cfg, err)
	}
	for _, bad := range []string{"0", "-1", "15", "1048577", "1e3", "big"} {
		if _, err := parseServeFlags([]string{"--block-cache-mib", bad}, &bytes.Buffer{}); err == nil {
			t.Fatalf("--block-cache-mib %s accepted", bad)
		}
	}
}
