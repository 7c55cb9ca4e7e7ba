package gigpay

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gigaledger/gigaledger/fsm"
	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
)

// Request bodies. Amounts are raw JSON (a number or a string); every other value is a string.

type accountRequest struct {
	UserIdentityID string `json:"userIdentityId"`
	AssetType      string `json:"assetType"`
}

// AccountInput is a validated POST /api/v1/accounts.
type AccountInput struct {
	CustomerID, AssetID string
}

// Free text (memo, reason, externalStorage) is checked as the Cloud Wallet API checks names and
// descriptions: no control characters and nothing that hides or reorders what a reader sees
// (fsm.HiddenFormat). A clientReference is an identifier the client chooses: printable
// characters only (fsm.Printable), so that two that look alike are alike. Apply checks less
// (fsm.ValidText), so that no stored value becomes one a replica refuses.
const (
	textRule      = "no control, zero-width, bidirectional or line-separator characters"
	referenceRule = "no control, invisible, format or other space characters"
)

func validText(s string, maxBytes int) bool {
	return fsm.ValidText(s, maxBytes) && fsm.VisibleText(s)
}

func validReference(s string) bool {
	return fsm.ValidText(s, fsmgigpay.ClientReferenceMaxLength) && fsm.Printable(s)
}

// DecodeAccount reads POST /api/v1/accounts.
func DecodeAccount(body io.Reader) (AccountInput, *Error) {
	var r accountRequest
	if e := decodeBody(body, &r, false); e != nil {
		return AccountInput{}, e
	}
	if !fsm.ValidCustomerID(r.UserIdentityID) || !fsm.Printable(r.UserIdentityID) || r.UserIdentityID == "." || r.UserIdentityID == ".." {
		return AccountInput{}, invalid("userIdentityId must be 1..%d printable characters without '/', not \".\" or \"..\" (no invisible, format or other space characters; it is a Cloud Wallet customer ID)", fsm.CustomerIDMaxLength)
	}
	if e := checkAssetType(r.AssetType); e != nil {
		return AccountInput{}, e
	}
	return AccountInput{CustomerID: r.UserIdentityID, AssetID: r.AssetType}, nil
}

func checkAssetType(assetType string) *Error {
	if !fsm.ValidID(assetType, fsm.IDMaxLength) {
		return invalid("assetType must be an asset ID, 1..%d of [A-Za-z0-9_.-]", fsm.IDMaxLength)
	}
	return nil
}

func checkAccountID(field, id string) *Error {
	if !fsm.ValidID(id, fsm.GeneratedIDMaxLength) {
		return invalid("%s must be an account ID, 1..%d of [A-Za-z0-9_.-]", field, fsm.GeneratedIDMaxLength)
	}
	return nil
}

type tokenRequest struct {
	AssetType       string          `json:"assetType"`
	SourceAccountID string          `json:"sourceAccountId"`
	Amount          json.RawMessage `json:"amount"`
	ExpiresAtUtc    string          `json:"expiresAtUtc"`
	Memo            string          `json:"memo"`
	ClientReference string          `json:"clientReference"`
}

// TokenInput is a validated token to create.
type TokenInput struct {
	AssetID, SourceWalletID string
	Amount                  fsmgigpay.Decimal
	ExpiresAt               int64 // Unix ms
	Memo, ClientReference   string
}

// DecodeToken reads POST /api/v1/payment-tokens. nowMs is the handler's clock: an expiry not
// after it is ExpiryInvalid before anything is proposed (the state machine checks again on its
// batch time).
func DecodeToken(body io.Reader, nowMs int64) (TokenInput, *Error) {
	var r tokenRequest
	if e := decodeBody(body, &r, false); e != nil {
		return TokenInput{}, e
	}
	return checkToken(&r, nowMs)
}

func checkToken(r *tokenRequest, nowMs int64) (TokenInput, *Error) {
	if e := checkAssetType(r.AssetType); e != nil {
		return TokenInput{}, e
	}
	if e := checkAccountID("sourceAccountId", r.SourceAccountID); e != nil {
		return TokenInput{}, e
	}
	amount, e := ParseAmount("amount", r.Amount)
	if e != nil {
		return TokenInput{}, e
	}
	expiresAt, e := ParseTime("expiresAtUtc", r.ExpiresAtUtc)
	if e != nil {
		e.Code = CodeExpiryInvalid
		return TokenInput{}, e
	}
	switch {
	case expiresAt <= nowMs:
		return TokenInput{}, newError(CodeExpiryInvalid, "expiresAtUtc must be in the future")
	case expiresAt-nowMs > fsmgigpay.TokenLifetimeMaxMs:
		return TokenInput{}, newError(CodeExpiryInvalid, "expiresAtUtc must be at most 366 days ahead")
	case !validText(r.Memo, fsmgigpay.MemoMaxLength):
		return TokenInput{}, invalid("memo must be at most %d bytes of printable UTF-8 (%s)", fsmgigpay.MemoMaxLength, textRule)
	case !validReference(r.ClientReference):
		return TokenInput{}, invalid("clientReference must be at most %d bytes of printable characters (%s)", fsmgigpay.ClientReferenceMaxLength, referenceRule)
	}
	return TokenInput{AssetID: r.AssetType, SourceWalletID: r.SourceAccountID, Amount: amount, ExpiresAt: expiresAt,
		Memo: r.Memo, ClientReference: r.ClientReference}, nil
}

type batchRequest struct {
	Items []json.RawMessage `json:"items"`
}

// BatchItem is one item of a batch: its input, or why it cannot be created.
type BatchItem struct {
	Input TokenInput
	Err   *Error
}

// DecodeBatch reads POST /api/v1/payment-tokens/batch: the body as a whole must be well formed
// with 1..BatchMaxItems items; each item is then checked on its own, and a bad item fails alone.
func DecodeBatch(body io.Reader, nowMs int64) ([]BatchItem, *Error) {
	var r batchRequest
	if e := decodeBody(body, &r, false); e != nil {
		return nil, e
	}
	if len(r.Items) == 0 || len(r.Items) > fsmgigpay.BatchMaxItems {
		return nil, invalid("items must hold 1..%d tokens", fsmgigpay.BatchMaxItems)
	}
	out := make([]BatchItem, len(r.Items))
	for i, raw := range r.Items {
		var item tokenRequest
		if e := decodeBytes(raw, &item, false); e != nil {
			e.Message = fmt.Sprintf("items[%d]: %s", i, e.Message)
			out[i].Err = e
			continue
		}
		if out[i].Input, out[i].Err = checkToken(&item, nowMs); out[i].Err != nil {
			out[i].Err.Message = fmt.Sprintf("items[%d]: %s", i, out[i].Err.Message)
		}
	}
	return out, nil
}

type claimRequest struct {
	DestinationAccountID string `json:"destinationAccountId"`
}

// DecodeClaim reads POST /api/v1/payment-tokens/{token}/claim.
func DecodeClaim(body io.Reader) (string, *Error) {
	var r claimRequest
	if e := decodeBody(body, &r, false); e != nil {
		return "", e
	}
	if e := checkAccountID("destinationAccountId", r.DestinationAccountID); e != nil {
		return "", e
	}
	return r.DestinationAccountID, nil
}

type emptyRequest struct{}

// DecodeEmpty reads a body that may be absent or {} (reject).
func DecodeEmpty(body io.Reader) *Error {
	var r emptyRequest
	return decodeBody(body, &r, true)
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

// DecodeClose reads POST /api/v1/payment-tokens/{id}/close: an optional reason.
func DecodeClose(body io.Reader) (string, *Error) {
	var r reasonRequest
	if e := decodeBody(body, &r, true); e != nil {
		return "", e
	}
	if !validText(r.Reason, fsmgigpay.ReasonMaxLength) {
		return "", invalid("reason must be at most %d bytes of printable UTF-8 (%s)", fsmgigpay.ReasonMaxLength, textRule)
	}
	return r.Reason, nil
}

type paymentRequest struct {
	Type            string          `json:"type"`
	AccountID       string          `json:"accountId"`
	AssetType       string          `json:"assetType"`
	Amount          json.RawMessage `json:"amount"`
	ExternalStorage string          `json:"externalStorage"`
	ClientReference string          `json:"clientReference"`
}

// PaymentInput is a validated admin payment.
type PaymentInput struct {
	Type                       fsmgigpay.PaymentType
	WalletID, AssetID          string
	Amount                     fsmgigpay.Decimal
	ExternalStorage, ClientRef string
}

// DecodePayment reads POST /api/v1/payments.
func DecodePayment(body io.Reader) (PaymentInput, *Error) {
	var r paymentRequest
	if e := decodeBody(body, &r, false); e != nil {
		return PaymentInput{}, e
	}
	t, ok := fsmgigpay.ParsePaymentType(r.Type)
	if !ok || t == fsmgigpay.PaymentTransfer {
		return PaymentInput{}, invalid("type must be \"deposit\" or \"withdrawal\" (transfers are made by claiming a token)")
	}
	if e := checkAccountID("accountId", r.AccountID); e != nil {
		return PaymentInput{}, e
	}
	if e := checkAssetType(r.AssetType); e != nil {
		return PaymentInput{}, e
	}
	amount, e := ParseAmount("amount", r.Amount)
	if e != nil {
		return PaymentInput{}, e
	}
	switch {
	case !validText(r.ExternalStorage, fsmgigpay.ExternalStorageMaxLength):
		return PaymentInput{}, invalid("externalStorage must be at most %d bytes of printable UTF-8 (%s)", fsmgigpay.ExternalStorageMaxLength, textRule)
	case !validReference(r.ClientReference):
		return PaymentInput{}, invalid("clientReference must be at most %d bytes of printable characters (%s)", fsmgigpay.ClientReferenceMaxLength, referenceRule)
	}
	return PaymentInput{Type: t, WalletID: r.AccountID, AssetID: r.AssetType, Amount: amount,
		ExternalStorage: r.ExternalStorage, ClientRef: r.ClientReference}, nil
}

type statusRequest struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// DecodePaymentStatus reads POST /api/v1/payments/{id}/status.
func DecodePaymentStatus(body io.Reader) (fsmgigpay.PaymentStatus, string, *Error) {
	var r statusRequest
	if e := decodeBody(body, &r, false); e != nil {
		return 0, "", e
	}
	s, ok := fsmgigpay.ParsePaymentStatus(r.Status)
	if !ok || s == fsmgigpay.PaymentPending {
		return 0, "", invalid("status must be processing, completed, canceled or failed")
	}
	if !validText(r.Reason, fsmgigpay.ReasonMaxLength) {
		return 0, "", invalid("reason must be at most %d bytes of printable UTF-8 (%s)", fsmgigpay.ReasonMaxLength, textRule)
	}
	return s, r.Reason, nil
}
