package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
)

// Error codes this package adds to the fsm's business codes. They are part of the API contract
// (docs/cloudwallet-api.md): add new ones, never rename.
const (
	CodeInvalidJSON     = "InvalidJSON"
	CodeInvalidArgument = "InvalidArgument"
	CodeInvalidAmount   = "InvalidAmount"
	CodeLimitExceeded   = "LimitExceeded"
	CodeUnauthorized    = "Unauthorized"
	CodeNotFound        = "NotFound"
	CodeRequestTooLarge = "RequestTooLarge"
	CodeUnavailable     = "Unavailable"
	CodeOutcomeUnknown  = "OutcomeUnknown"
	CodeOverloaded      = "Overloaded"
	CodeInternal        = "Internal"
	// CodeCrossProjectWallet is listed in the contract; the fsm may report a wallet of another
	// project with it (422) or as WalletNotFound (404).
	CodeCrossProjectWallet = "CrossProjectWallet"
	// Refusals of the router and of the browser protections (browser.go).
	CodeMethodNotAllowed     = "MethodNotAllowed"
	CodeOriginNotAllowed     = "OriginNotAllowed"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeMisdirectedRequest   = "MisdirectedRequest"
	// CodeProjectOwned refuses a Cloud Wallet write to the project a family API owns
	// (GigaWallet's): 409.
	CodeProjectOwned = "ProjectOwnedByGigaWallet"
	// CodeProjectOwnedByGigPay refuses a Cloud Wallet transaction or hold capture/release in
	// GigPay's project (guardGigPayProject): 409.
	CodeProjectOwnedByGigPay = "ProjectOwnedByGigPay"
)

// retryAfterSeconds is the Retry-After a 503 carries.
const retryAfterSeconds = "1"

// ErrorBody is the one error envelope of every API:
// {"error":{"code":"...","message":"..."}}, plus the transaction a failed or duplicate
// transaction request refers to.
type ErrorBody struct {
	Error       ErrorDetail              `json:"error"`
	Transaction *cloudwallet.Transaction `json:"transaction,omitempty"`
	Hold        *cloudwallet.Hold        `json:"hold,omitempty"`
	// Token and Payment are the GigPay token or payment a refusal concerns (409 TokenNotActive
	// carries the token's current state).
	Token   *gp.Token   `json:"token,omitempty"`
	Payment *gp.Payment `json:"payment,omitempty"`
}

// ErrorDetail is the inside of the error envelope.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError is an answer that is not a success: a status and the envelope's content.
type apiError struct {
	status      int
	code        string
	message     string
	transaction *cloudwallet.Transaction
	hold        *cloudwallet.Hold
	token       *gp.Token
	payment     *gp.Payment
	// retryAfter adds a Retry-After header (503s).
	retryAfter bool
	// cause is logged, never sent.
	cause error
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func invalidArgument(format string, args ...any) *apiError {
	return badRequest(CodeInvalidArgument, format, args...)
}

func internalError(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: CodeInternal,
		message: "internal error; the request may be retried", cause: cause}
}

// statusByCode maps every business code of the contract's error table to its status. A code
// missing here (one the fsm added later) is answered 422 and logged, see statusOfCode.
var statusByCode = map[string]int{
	string(fsm.CodeInvalidArgument):            http.StatusBadRequest,
	string(ledger.CodeProjectNotFound):         http.StatusNotFound,
	string(ledger.CodeAssetNotFound):           http.StatusNotFound,
	string(ledger.CodeCustomerNotFound):        http.StatusNotFound,
	string(ledger.CodeWalletNotFound):          http.StatusNotFound,
	string(ledger.CodeTransactionNotFound):     http.StatusNotFound,
	string(ledger.CodeProjectExists):           http.StatusConflict,
	string(ledger.CodeAssetExists):             http.StatusConflict,
	string(ledger.CodeWalletExists):            http.StatusConflict,
	string(ledger.CodeDuplicateReferenceID):    http.StatusConflict,
	string(ledger.CodeReferenceIDMismatch):     http.StatusConflict,
	string(ledger.CodeAssetInUse):              http.StatusForbidden,
	string(ledger.CodeInsufficientFunds):       http.StatusUnprocessableEntity,
	string(ledger.CodeWalletSuspended):         http.StatusUnprocessableEntity,
	string(ledger.CodeWalletClosed):            http.StatusUnprocessableEntity,
	string(ledger.CodeCustomerSuspended):       http.StatusUnprocessableEntity,
	string(ledger.CodeAssetMismatch):           http.StatusUnprocessableEntity,
	string(ledger.CodeBalanceOverflow):         http.StatusUnprocessableEntity,
	string(ledger.CodeWalletNotEmpty):          http.StatusUnprocessableEntity,
	string(ledger.CodeInvalidStatusTransition): http.StatusUnprocessableEntity,
	string(ledger.CodeCustomerHasOpenWallets):  http.StatusUnprocessableEntity,
	CodeCrossProjectWallet:                     http.StatusUnprocessableEntity,
	string(ledger.CodeCrossShardTransaction):   http.StatusUnprocessableEntity,
	// Cross-shard transactions (issue 14): a participant that did not vote in time fails the
	// transaction, recorded like any failure; a hold a cross-shard prepare placed is resolved by
	// its transaction only; a protocol step after the participant finished is the driver's.
	string(ledger.CodeParticipantUnavailable): http.StatusUnprocessableEntity,
	string(ledger.CodeCrossShardHold):         http.StatusConflict,
	string(ledger.CodeCrossShardFinished):     http.StatusConflict,
	string(ledger.CodeHoldNotFound):           http.StatusNotFound,
	string(ledger.CodeHoldResolved):           http.StatusConflict,
	string(fsm.CodeIdempotencyKeyMismatch):    http.StatusConflict,
	string(fsm.CodeSubscriptionExists):        http.StatusConflict,
	string(fsm.CodeSubscriptionNameRetired):   http.StatusConflict,
	string(fsm.CodeSubscriptionNotFound):      http.StatusNotFound,
	string(fsm.CodeSubscriptionsLimitReach):   http.StatusUnprocessableEntity,
	// The fsm may check amounts and limits again and answer with this package's codes.
	CodeInvalidAmount: http.StatusBadRequest,
	CodeLimitExceeded: http.StatusBadRequest,
	// GigPay (fsm/gigpay). A wallet or asset that a GigPay command names and that does not exist
	// is 422 there (gigPay.refusal); on a GET it is 404 as here.
	string(gigpay.CodeTokenNotFound):           http.StatusNotFound,
	string(gigpay.CodePaymentNotFound):         http.StatusNotFound,
	string(gigpay.CodeTokenNotActive):          http.StatusConflict,
	string(gigpay.CodeClaimInProgress):         http.StatusConflict,
	string(gigpay.CodeCloseInProgress):         http.StatusConflict,
	string(gigpay.CodeTokenExists):             http.StatusConflict,
	string(gigpay.CodePaymentExists):           http.StatusConflict,
	string(gigpay.CodeClientReferenceMismatch): http.StatusConflict,
	string(gigpay.CodeUnsupportedAsset):        http.StatusUnprocessableEntity,
	string(gigpay.CodeTooPrecise):              http.StatusBadRequest,
	string(gigpay.CodeExpiryInvalid):           http.StatusBadRequest,
}

// statusOfCode returns the status for a business code and whether the code is known.
func statusOfCode(code fsm.ErrorCode) (int, bool) {
	status, ok := statusByCode[string(code)]
	if !ok {
		return http.StatusUnprocessableEntity, false
	}
	return status, true
}

// fromFSMError turns a business rejection into an answer, with the entity it refers to (a failed
// or duplicate transaction, a resolved hold).
func fromFSMError(e *fsm.Error, value fsm.Value) *apiError {
	status, known := statusOfCode(e.Code)
	answer := &apiError{status: status, code: string(e.Code), message: e.Message}
	switch v := value.(type) {
	case *ledger.Transaction:
		t := cloudwallet.TransactionOf(v)
		answer.transaction = &t
	case *ledger.HoldResolution:
		h := cloudwallet.HoldOf(v.Hold)
		answer.hold = &h
		if v.Transaction != nil {
			t := cloudwallet.TransactionOf(v.Transaction)
			answer.transaction = &t
		}
	}
	if !known {
		answer.cause = fmt.Errorf("fsm error code %q missing from statusByCode", e.Code)
	}
	return answer
}

// fromBackendError turns an error of Backend.Propose (proposal true) or Backend.Read / a Reader
// method into an answer. A context that ended while a proposal was in flight leaves its outcome
// unknown, whatever the backend says.
func fromBackendError(err error, proposal bool) *apiError {
	var business *fsm.Error
	switch {
	case errors.As(err, &business):
		return fromFSMError(business, nil)
	case errors.Is(err, ErrOutcomeUnknown),
		proposal && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeOutcomeUnknown,
			message:    "the request may or may not have been applied; retry it with the same referenceId (or read the state) to learn the outcome",
			retryAfter: true, cause: err}
	case errors.Is(err, ErrOverloaded):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeOverloaded,
			message: "the service is overloaded and did not apply the request; retry later", retryAfter: true, cause: err}
	case errors.Is(err, ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			message: "the service cannot serve the request now; retry later", retryAfter: true, cause: err}
	}
	return internalError(err)
}
