package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error codes of the API a caller commonly branches on (docs/cloudwallet-api.md, "Errors").
// Error.Code may hold any code of the contract, including ones added after this package.
const (
	CodeInvalidJSON            = "InvalidJSON"
	CodeInvalidArgument        = "InvalidArgument"
	CodeInvalidAmount          = "InvalidAmount"
	CodeLimitExceeded          = "LimitExceeded"
	CodeUnauthorized           = "Unauthorized"
	CodeNotFound               = "NotFound"
	CodeProjectNotFound        = "ProjectNotFound"
	CodeAssetNotFound          = "AssetNotFound"
	CodeCustomerNotFound       = "CustomerNotFound"
	CodeWalletNotFound         = "WalletNotFound"
	CodeTransactionNotFound    = "TransactionNotFound"
	CodeHoldNotFound           = "HoldNotFound"
	CodeAssetInUse             = "AssetInUse"
	CodeProjectExists          = "ProjectExists"
	CodeAssetExists            = "AssetExists"
	CodeWalletExists           = "WalletExists"
	CodeDuplicateReferenceID   = "DuplicateReferenceId"
	CodeReferenceIDMismatch    = "ReferenceIdMismatch"
	CodeHoldResolved           = "HoldResolved"
	CodeIdempotencyKeyMismatch = "IdempotencyKeyMismatch" // a key reused for another request: never by this client, which makes one per call
	CodeInsufficientFunds      = "InsufficientFunds"
	CodeWalletSuspended        = "WalletSuspended"
	CodeWalletClosed           = "WalletClosed"
	CodeCustomerSuspended      = "CustomerSuspended"
	CodeAssetMismatch          = "AssetMismatch"
	CodeBalanceOverflow        = "BalanceOverflow"
	CodeWalletNotEmpty         = "WalletNotEmpty"
	CodeInvalidStatus          = "InvalidStatusTransition"
	CodeCustomerHasOpenWallets = "CustomerHasOpenWallets"
	CodeCrossShardTransaction  = "CrossShardTransaction"
	CodeParticipantUnavailable = "ParticipantUnavailable" // a cross-shard transaction failed: a shard did not vote in time
	CodeCrossShardHold         = "CrossShardHold"         // a hold of a cross-shard transaction: its transaction resolves it
	CodeUnavailable            = "Unavailable"
	CodeOutcomeUnknown         = "OutcomeUnknown"
	CodeOverloaded             = "Overloaded"
	CodeInternal               = "Internal"
)

// Sentinels for the conditions a caller branches on; test with errors.Is. An *Error and a
// *TransportError match them as their documentation says.
var (
	// ErrUnavailable: the request was certainly not applied (503 Unavailable, or the
	// connection could not be opened); it may be sent again.
	ErrUnavailable = errors.New("gigaledger: unavailable, request not applied")
	// ErrOverloaded: the server shed the request without applying it (503 Overloaded).
	ErrOverloaded = errors.New("gigaledger: overloaded, request not applied")
	// ErrOutcomeUnknown: the request may or may not have been applied (503 OutcomeUnknown,
	// another 5xx, or the connection failed after the request was sent), and the call's retries
	// did not settle it. Read the state, or resend a transaction with the same referenceId, to
	// learn which.
	ErrOutcomeUnknown = errors.New("gigaledger: outcome unknown")
	// ErrNotFound: any 404 (an unknown project, asset, customer, wallet, transaction or route).
	ErrNotFound = errors.New("gigaledger: not found")
)

// Error is an answer of the API that is not a success: its status and the content of the error
// envelope {"error":{"code","message"}}.
type Error struct {
	StatusCode int
	// Code is the envelope's code; "" when the answer had no envelope (a proxy's error page).
	Code    string
	Message string
	// RetryAfter is the wait the server asked for (Retry-After on 503s); zero when it asked for
	// none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = "(" + http.StatusText(e.StatusCode) + ", no error envelope)"
	}
	return fmt.Sprintf("gigaledger: %d %s: %s", e.StatusCode, code, e.Message)
}

// Is matches the sentinels: ErrUnavailable and ErrOverloaded by their 503 codes, ErrNotFound by
// status 404, ErrOutcomeUnknown by 503 OutcomeUnknown and by every other 5xx (a 500 Internal or
// a proxy's 502 or 504 does not say whether a write applied).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable && e.Code == CodeUnavailable
	case ErrOverloaded:
		return e.StatusCode == http.StatusServiceUnavailable && e.Code == CodeOverloaded
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrOutcomeUnknown:
		return e.StatusCode >= 500 && !e.notApplied()
	}
	return false
}

// notApplied reports whether the server says it certainly did not apply the request.
func (e *Error) notApplied() bool {
	return e.StatusCode == http.StatusServiceUnavailable && (e.Code == CodeUnavailable || e.Code == CodeOverloaded)
}

// TransportError is a call that got no answer: the connection could not be opened, broke, or
// timed out. Err is the underlying error (a *url.Error), so errors.Is finds context.Canceled,
// syscall.ECONNREFUSED and the like through it.
type TransportError struct {
	Method, Path string
	// NotSent is set when the request certainly never reached the server (the connection could
	// not be opened): then it matches ErrUnavailable, otherwise ErrOutcomeUnknown.
	NotSent bool
	Err     error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("gigaledger: %s %s: %v", e.Method, e.Path, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Is matches ErrUnavailable when the request was not sent and ErrOutcomeUnknown otherwise.
func (e *TransportError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.NotSent
	case ErrOutcomeUnknown:
		return !e.NotSent
	}
	return false
}

// IsCode reports whether err is (or wraps) an *Error with the given code.
func IsCode(err error, code string) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// StatusCode returns the HTTP status of err's *Error, or 0 when err carries no answer.
func StatusCode(err error) int {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}
