package fsm

import "fmt"

// ErrorCode names a business rejection. Codes are part of the APIs' contracts: add new ones,
// never rename. Each family declares its own; the kernel's are below.
type ErrorCode string

// The kernel's rejections.
const (
	CodeInvalidArgument ErrorCode = "InvalidArgument"
	// CodeIdempotencyKeyMismatch: the idempotency key was used before for a different request.
	CodeIdempotencyKeyMismatch ErrorCode = "IdempotencyKeyMismatch"
)

// Error is a business rejection: a result computed identically by every replica, not a failure
// of the replica.
type Error struct {
	Code    ErrorCode
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Rejectf returns a rejection.
func Rejectf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an InvalidArgument result.
func Invalid(format string, args ...any) *Result {
	return Fail(Rejectf(CodeInvalidArgument, format, args...))
}
