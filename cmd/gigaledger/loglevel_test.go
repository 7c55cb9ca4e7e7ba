package main

import (
	"bytes"
	"testing"
)

// TestLogLevelFlag: the levels the help names are taken (debug+2 shows the storage events
// without the access log); anything else is refused at start instead of silently becoming info.
func TestLogLevelFlag(t *testing.T) {
	for _, good := range []string{"debug", "debug+2", "DEBUG+2", "info", "warn", "error"} {
		if _, err := parseServeFlags([]string{"--log-level", good}, &bytes.Buffer{}); err != nil {
			t.Errorf("--log-level %s: %v", good, err)
		}
	}
	for _, bad := range []string{"", "verbose", "debug+", "trace", "info2"} {
		if _, err := parseServeFlags([]string{"--log-level", bad}, &bytes.Buffer{}); err == nil {
			t.Errorf("--log-level %q accepted", bad)
		}
	}
}
