package gigpay

import (
	"fmt"
	"net/http"
)

// Error codes this package answers with (400s). The envelope and the other codes are the Cloud
// Wallet API's (httpapi/errors.go).
const (
	CodeInvalidJSON      = "InvalidJSON"
	CodeInvalidArgument  = "InvalidArgument"
	CodeAmountTooPrecise = "AmountTooPrecise"
	CodeExpiryInvalid    = "ExpiryInvalid"
	CodeInvalidCursor    = "InvalidCursor"
	CodeRequestTooLarge  = "RequestTooLarge"
)

// Error is a refused request: its HTTP status, code and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return newError(CodeInvalidArgument, format, args...)
}
