package gigawallet

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Code is a GigaWallet error code, the "code" of the error envelope. These are GigaWallet's own
// (pkg/errors.go of v1.0.8); clients branch on them, so they are never renamed.
type Code string

// GigaWallet's error codes.
const (
	CodeBadRequest        Code = "bad-request"
	CodeNotFound          Code = "not-found"
	CodeUnauthorized      Code = "unauthorized"
	CodeNotAvailable      Code = "not-available"
	CodeAlreadyExists     Code = "already-exists"
	CodeInvalidTxn        Code = "invalid-txn"
	CodeInsufficientFunds Code = "insufficient-funds"
	CodeLibdogeError      Code = "libdoge-error"
	CodeDBConflict        Code = "db-conflict"
	CodeUnknownError      Code = "unknown-error"
)

// statusByCode is the HTTP status of each code. GigaWallet answers 500 for already-exists and
// for every payment refusal, and 500 unknown-error for invoice validation; those are client
// mistakes or conflicts, so here they are 409 and 422 (validation is bad-request, 400). The
// codes stay GigaWallet's, so a client that branches on the code is unaffected, and its
// "anything but 200 is an error" check (the WooCommerce plugin's) still holds.
var statusByCode = map[Code]int{
	CodeBadRequest:        http.StatusBadRequest,
	CodeNotFound:          http.StatusNotFound,
	CodeUnauthorized:      http.StatusUnauthorized,
	CodeNotAvailable:      http.StatusServiceUnavailable,
	CodeAlreadyExists:     http.StatusConflict,
	CodeInvalidTxn:        http.StatusUnprocessableEntity,
	CodeInsufficientFunds: http.StatusUnprocessableEntity,
	// A conflict between concurrent writers is worth a retry, as not-available is.
	CodeDBConflict:   http.StatusServiceUnavailable,
	CodeLibdogeError: http.StatusInternalServerError,
	CodeUnknownError: http.StatusInternalServerError,
}

// KnownCode returns code's status and whether code is one of GigaWallet's.
func KnownCode(code Code) (int, bool) {
	status, ok := statusByCode[code]
	return status, ok
}

// StatusOf returns the HTTP status of code; a code not listed (none should be) is 500, as
// GigaWallet answers every code it does not name.
func StatusOf(code Code) int {
	if status, ok := statusByCode[code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Error is an answer that is not a success: the envelope's code and message and the HTTP
// status. Status is StatusOf(Code) except where a more precise status exists for the same code
// (413 for an oversize body, still bad-request to a client that reads the code).
type Error struct {
	Status  int
	Code    Code
	Message string
	// Cause is what the node logs beside an answer it could not give (a 5xx); never sent.
	Cause error
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Body returns the envelope to send.
func (e *Error) Body() ErrorBody {
	return ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}}
}

// NewError returns an error with code's status.
func NewError(code Code, format string, args ...any) *Error {
	return &Error{Status: StatusOf(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

// badRequest is a 400 bad-request: the request is malformed or a value in it is invalid.
func badRequest(format string, args ...any) *Error {
	return NewError(CodeBadRequest, format, args...)
}

// ErrorBody is GigaWallet's error envelope: {"error":{"code":"...","message":"..."}}. It is
// written with encoding/json, never with %q as GigaWallet does (which gives invalid JSON for
// control characters and invalid UTF-8 in a message).
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of the envelope.
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// MarshalError returns e's envelope as JSON.
func MarshalError(e *Error) []byte {
	data, err := json.Marshal(e.Body())
	if err != nil {
		// Two strings always marshal (invalid UTF-8 becomes U+FFFD).
		panic(fmt.Sprintf("marshal error envelope: %v", err))
	}
	return data
}
