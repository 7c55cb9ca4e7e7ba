package cluster

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// transportLogger is the logger of a shard's raft NetworkTransport. The transport logs every
// read or write error on an inbound connection at ERROR ("failed to decode incoming command",
// "failed to flush response"), including the ones a clean stop causes: closing the port closes
// the connections its handlers are reading ("use of closed network connection"), and a
// command that arrives as the transport closes fails with "transport shutdown". Those are
// the stop working as intended, so they go to DEBUG; a peer that hung up mid-command (it
// stopped or crashed) is that peer's news, at WARN. Every other error keeps its ERROR.
type transportLogger struct {
	hclog.Logger
	// closing reports whether the node is stopping.
	closing func() bool
}

// Error implements hclog.Logger; raft's transport logs its connection errors here.
func (l *transportLogger) Error(msg string, args ...any) {
	switch transportErrorKind(args, l.closing()) {
	case transportStopping:
		l.Logger.Debug(msg, args...)
	case transportPeerGone:
		l.Logger.Warn(msg, args...)
	default:
		l.Logger.Error(msg, args...)
	}
}

// transportErrorKinds classify a transport error for its log level.
const (
	transportFailure  = iota + 1 // anything else: a real failure
	transportStopping            // this node (or this shard's transport) is stopping
	transportPeerGone            // the other side closed or reset the connection
)

// transportErrorKind classifies the "error" argument of a transport log call.
func transportErrorKind(args []any, closing bool) int {
	var err error
	for i := 0; i+1 < len(args); i += 2 {
		if key, _ := args[i].(string); key == "error" {
			err, _ = args[i+1].(error)
		}
	}
	switch {
	case err == nil:
		return transportFailure
	case errors.Is(err, raft.ErrTransportShutdown):
		return transportStopping
	case closing && errors.Is(err, net.ErrClosed):
		return transportStopping
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return transportPeerGone
	}
	return transportFailure
}
