package shard

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// A replica's first election is said at info; an election after a known leader was lost stays
// a warning; raft's other warnings keep their level.
func TestRaftLoggerFirstElectionIsNotAWarning(t *testing.T) {
	var out bytes.Buffer
	raftLogger := NewRaftLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")

	// As raft says it (its own types, printed bare) and as a plain string would.
	raftLogger.Warn("heartbeat timeout reached, starting election", "last-leader-addr", raft.ServerAddress(""), "last-leader-id", raft.ServerID(""))
	raftLogger.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	raftLogger.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "127.0.0.1:7002", "last-leader-id", "n2")
	raftLogger.Warn("failed to contact", "server-id", "n3")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %d:\n%s", len(lines), out.String())
	}
	for i, want := range []string{"level=INFO", "level=INFO", "level=WARN", "level=WARN"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: want %s, got %s", i, want, lines[i])
		}
	}
	if !strings.Contains(lines[0], "starting election") || !strings.Contains(lines[2], "last-leader-id=n2") {
		t.Errorf("messages changed:\n%s", out.String())
	}
}
