package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestGossipWarningsAreRateLimited: junk on the gossip port makes memberlist write one error
// line per packet; the node logs one per kind per gossipLogInterval, then says how many it left
// out, and keeps other kinds and debug lines apart.
func TestGossipWarningsAreRateLimited(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1000, 0)
	w := &slogWriter{logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})),
		now: func() time.Time { return now }}
	write := func(line string) {
		if _, err := w.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		write("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0." + string(rune('0'+i%10)) + ":7946")
	}
	write("[WARN] memberlist: Was able to connect to n2 over TCP but UDP probes failed")
	write("[DEBUG] memberlist: Stream connection from=127.0.0.1:1")
	if got := strings.Count(out.String(), "Decrypt packet failed"); got != 1 {
		t.Fatalf("%d decrypt lines logged within one interval, want 1:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "UDP probes failed") || !strings.Contains(out.String(), "Stream connection") {
		t.Fatalf("other kinds were held back:\n%s", out.String())
	}
	out.Reset()
	now = now.Add(gossipLogInterval)
	write("[ERR] memberlist: Decrypt packet failed: again")
	if !strings.Contains(out.String(), "suppressed_since_last=999") {
		t.Fatalf("the next interval's line does not count what was left out:\n%s", out.String())
	}
}
