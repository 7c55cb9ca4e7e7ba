package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// The transport's connection errors get the level of what they mean: our own stop is DEBUG,
// a peer hanging up is WARN, anything else stays ERROR.
func TestTransportErrorKind(t *testing.T) {
	closedRead := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	cases := []struct {
		name    string
		args    []any
		closing bool
		want    int
	}{
		{"transport shutdown", []any{"error", raft.ErrTransportShutdown}, false, transportStopping},
		{"closed conn while stopping", []any{"error", closedRead}, true, transportStopping},
		{"closed conn while running", []any{"error", closedRead}, false, transportFailure},
		{"peer reset", []any{"error", reset}, false, transportPeerGone},
		{"peer hung up mid-command", []any{"error", fmt.Errorf("decode: %w", io.ErrUnexpectedEOF)}, true, transportPeerGone},
		{"garbage", []any{"error", errors.New("msgpack decode error")}, true, transportFailure},
		{"no error argument", []any{"peer", "x"}, true, transportFailure},
	}
	for _, c := range cases {
		if got := transportErrorKind(c.args, c.closing); got != c.want {
			t.Errorf("%s: kind %d, want %d", c.name, got, c.want)
		}
	}
}
