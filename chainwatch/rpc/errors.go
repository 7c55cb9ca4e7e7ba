package rpc

import (
	"errors"
	"fmt"
)

// Error codes a Dogecoin-Core-family node returns that callers branch on.
const (
	// CodeMethodNotFound is JSON-RPC's "Method not found": the node does not know the method
	// (litecoind has no estimatefee).
	CodeMethodNotFound = -32601
)

var (
	// ErrMethodNotFound matches (errors.Is) an *Error whose code is CodeMethodNotFound, so a
	// caller can fall back when a node lacks a method.
	ErrMethodNotFound = errors.New("method not found")

	// ErrTransport marks a failure to carry the call or its answer (connection refused or
	// reset, a timeout, a body cut short): the node's answer, if any, is unknown.
	ErrTransport = errors.New("transport error")

	// ErrOutcomeUnknown marks a transport error on a method that changes the node's state
	// (sendrawtransaction): the node may or may not have acted on it. Such calls are never
	// retried; the caller finds out what happened before it sends again.
	ErrOutcomeUnknown = errors.New("outcome unknown")

	// ErrBadResponse marks an answer that is not a valid response to the call: not JSON, a
	// wrong id, no result, a result of the wrong shape, a body over the size limit.
	ErrBadResponse = errors.New("bad response")

	// ErrInvalidArgument marks an argument the client refuses before sending (a block hash
	// that is not 64 hex digits).
	ErrInvalidArgument = errors.New("invalid argument")
)

// Error is an error the node returned in the response's "error" field.
type Error struct {
	Code    int
	Message string
}

// Error returns the node's code and message.
func (e *Error) Error() string { return fmt.Sprintf("node error %d: %s", e.Code, e.Message) }

// Is makes errors.Is(err, ErrMethodNotFound) true for the code CodeMethodNotFound.
func (e *Error) Is(target error) bool {
	return target == ErrMethodNotFound && e.Code == CodeMethodNotFound
}

// HTTPStatusError is a non-200 answer whose body carries no JSON-RPC error, such as 401 for a
// wrong user or password (the node sends an empty body) or a proxy's 502.
type HTTPStatusError struct {
	StatusCode int
	// Body is the start of the answer's body, at most httpErrorBodyMaxBytes, for the reader
	// of a log line.
	Body string
}

// Error names the status and, for 401, the likely cause.
func (e *HTTPStatusError) Error() string {
	message := fmt.Sprintf("HTTP status %d", e.StatusCode)
	if e.StatusCode == 401 {
		message += " (the node refused the RPC user or password)"
	}
	if e.Body != "" {
		message += ": " + e.Body
	}
	return message
}
