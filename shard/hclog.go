package shard

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// NewRaftLogger returns an hclog.Logger whose lines go to logger at the matching slog level,
// so hashicorp libraries (raft, its transports) log in the same stream and are as quiet as
// logger is. A nil logger discards everything.
func NewRaftLogger(logger *slog.Logger, name string) hclog.Logger {
	logger = quietLogger(logger)
	level := hclog.Error
	switch {
	case logger.Enabled(context.Background(), slog.LevelDebug):
		level = hclog.Debug
	case logger.Enabled(context.Background(), slog.LevelInfo):
		level = hclog.Info
	case logger.Enabled(context.Background(), slog.LevelWarn):
		level = hclog.Warn
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:        name,
		Level:       level,
		Output:      &slogLineWriter{logger: logger},
		DisableTime: true,
	})
}

// slogLineWriter receives hclog's formatted lines ("[WARN]  raft: message: k=v").
type slogLineWriter struct {
	logger *slog.Logger
}

var hclogLevelPrefixes = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[TRACE]"), slog.LevelDebug - 4},
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[ERROR]"), slog.LevelError},
}

func (w *slogLineWriter) Write(line []byte) (int, error) {
	level := slog.LevelInfo
	message := bytes.TrimSpace(line)
	for _, candidate := range hclogLevelPrefixes {
		if bytes.HasPrefix(message, candidate.prefix) {
			level = candidate.level
			message = bytes.TrimSpace(message[len(candidate.prefix):])
			break
		}
	}
	if level == slog.LevelWarn && firstElection(message) {
		level = slog.LevelInfo
	}
	w.logger.Log(context.Background(), level, string(message))
	return len(line), nil
}

// firstElection reports whether message is raft's warning that a follower starts an election
// while it has never heard of a leader ("last-leader-id=" with no value): every new or
// restarted replica says it once before its first election, a single node at every start,
// which is not something for an operator to act on. The same warning after a leader was
// known (a lost leader) stays a warning.
func firstElection(message []byte) bool {
	// raft passes a raft.ServerID, which hclog prints bare; a plain empty string prints as "".
	return bytes.HasPrefix(message, []byte("raft: heartbeat timeout reached, starting election:")) &&
		(bytes.HasSuffix(message, []byte(" last-leader-id=")) || bytes.HasSuffix(message, []byte(` last-leader-id=""`)))
}
