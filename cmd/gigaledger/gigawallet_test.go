package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// TestGigaWalletOnALoneNode: a node alone creates its wallet seed (0600) on first start, serves
// the GigaWallet account routes, and keeps the seed across a restart; the seed's bytes appear
// in no other file of the data directory.
func TestGigaWalletOnALoneNode(t *testing.T) {
	cfg := &serveConfig{NodeID: "n1", DataDir: filepath.Join(t.TempDir(), "n1"), AdminAddr: testutil.FreeAddr(t),
		PublicAddr: testutil.FreeAddr(t), RaftAddr: testutil.FreeAddr(t), LogLevel: "error", ShutdownMax: 5 * time.Second,
		Shards: 1, Replicas: 1, raftTiming: testRaftTiming}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	n, err := startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	seedPath := filepath.Join(cfg.DataDir, walletSeedFileName)
	info, err := os.Stat(seedPath)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", info, err)
	}
	post := func(path, body string) (int, string) {
		var status int
		var answer string
		testutil.EventuallyWithin(t, 20*time.Second, "a non-503 answer", func() bool {
			resp, err := http.Post("http://"+cfg.AdminAddr+path, "application/json", strings.NewReader(body))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			status, answer = resp.StatusCode, string(data)
			return status != http.StatusServiceUnavailable
		})
		return status, answer
	}
	status, first := post("/account/shop-42", `{}`)
	if status != 200 || !strings.Contains(first, `"foreign_id":"shop-42"`) {
		t.Fatalf("upsert: %d %s", status, first)
	}
	n.Close()

	n, err = startNode(cfg, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if status, again := post("/account/shop-42", `{}`); status != 200 || again != first {
		t.Fatalf("after restart: %d %s, want %s", status, again, first)
	}
	// The seed (hex in its file) is nowhere else in the data directory, raw or as hex.
	text, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.Walk(cfg.DataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || path == seedPath {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, raw) || bytes.Contains(data, []byte(strings.TrimSpace(string(text)))) {
			t.Errorf("the seed is in %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
