package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// Request bodies. Decoding is strict and the same for every body of every API family: the body
// must be one JSON object of the documented shape and nothing after it, in valid UTF-8, with
// every key spelled exactly as documented and none twice (jsonstrict.Check). Malformed JSON, a
// wrong type, an unknown, duplicate or case-variant key, or trailing data is 400 InvalidJSON
// naming the key (the body is not the documented shape); a body of the right shape with a bad
// value (missing, too long, bad characters) is 400 InvalidArgument naming the field; amounts are
// 400 InvalidAmount; counts over a limit are 400 LimitExceeded. Amounts are decoded as raw JSON
// so that they never pass through float64.
//
// Every decodeX function reads the whole body and returns validated values or an *apiError; they
// do no I/O besides reading and are fuzzed (decode_fuzz_test.go).

// decodeBody decodes one JSON object from body into dst (jsonstrict.Decode with this API's
// rules, strict.go). An empty body (or only white space) is an error when required and leaves
// dst untouched otherwise. It reads at most requestBodyMaxBytes (limitBody bounds the request
// body too; this bounds any other caller).
func decodeBody(body io.Reader, dst any, required bool) *apiError {
	return decodeBodyWith(body, dst, required, strictRules)
}

// decodeBodyWith is decodeBody with other strict rules.
func decodeBodyWith(body io.Reader, dst any, required bool, rules jsonstrict.Rules) *apiError {
	data, err := io.ReadAll(io.LimitReader(body, requestBodyMaxBytes+1))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || len(data) > requestBodyMaxBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: CodeRequestTooLarge,
			message: fmt.Sprintf("request body exceeds %d bytes", requestBodyMaxBytes)}
	}
	if err != nil {
		return badRequest(CodeInvalidJSON, "reading the request body: %v", err)
	}
	p := jsonstrict.Decode(data, dst, rules)
	switch {
	case p == nil:
		return nil
	case p.Kind == jsonstrict.Empty && !required:
		return nil
	case p.Kind == jsonstrict.Empty:
		return badRequest(CodeInvalidJSON, "request body is required")
	case p.Kind == jsonstrict.TooManyItems:
		return badRequest(CodeLimitExceeded, "%s", p.Message)
	}
	return badRequest(CodeInvalidJSON, "%s", p.Message)
}

// createProjectRequest is the body of POST /projects.
type createProjectRequest struct {
	ID   *string `json:"id"`
	Name string  `json:"name"`
}

// decodeCreateProject returns the project ID ("" when the client leaves the choice to us) and
// the name.
func decodeCreateProject(body io.Reader) (projectID, name string, apiErr *apiError) {
	var request createProjectRequest
	if apiErr = decodeBody(body, &request, true); apiErr != nil {
		return "", "", apiErr
	}
	if request.ID != nil {
		if apiErr = checkSimpleID("id", *request.ID, fsm.IDMaxLength); apiErr != nil {
			return "", "", apiErr
		}
		projectID = *request.ID
	}
	if apiErr = checkRequiredText("name", request.Name, fsm.NameMaxLength); apiErr != nil {
		return "", "", apiErr
	}
	return projectID, request.Name, nil
}

// nameRequest is the body of the rename routes.
type nameRequest struct {
	Name string `json:"name"`
}

// decodeName returns the new name of a rename request.
func decodeName(body io.Reader) (string, *apiError) {
	var request nameRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return "", apiErr
	}
	if apiErr := checkRequiredText("name", request.Name, fsm.NameMaxLength); apiErr != nil {
		return "", apiErr
	}
	return request.Name, nil
}

// descriptionRequest is the body of PUT .../wallets/{walletId}/description.
type descriptionRequest struct {
	Description *string `json:"description"`
}

// decodeDescription returns the new description; an empty one clears it.
func decodeDescription(body io.Reader) (string, *apiError) {
	var request descriptionRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return "", apiErr
	}
	if request.Description == nil {
		return "", invalidArgument("description is required")
	}
	if apiErr := checkText("description", *request.Description, fsm.DescriptionMaxLength); apiErr != nil {
		return "", apiErr
	}
	return *request.Description, nil
}

// createAssetRequest is the body of POST /projects/{projectId}/assets.
type createAssetRequest struct {
	ID        *string `json:"id"`
	Name      string  `json:"name"`
	Code      string  `json:"code"`
	Fractions *uint64 `json:"fractions"`
}

// assetInput is a validated createAssetRequest; ID is "" when the client leaves it to us.
type assetInput struct {
	ID, Name, Code string
	Fractions      uint64
}

// decodeCreateAsset validates an asset creation.
func decodeCreateAsset(body io.Reader) (assetInput, *apiError) {
	var request createAssetRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return assetInput{}, apiErr
	}
	var input assetInput
	if request.ID != nil {
		if apiErr := checkSimpleID("id", *request.ID, fsm.IDMaxLength); apiErr != nil {
			return assetInput{}, apiErr
		}
		input.ID = *request.ID
	}
	if apiErr := checkRequiredText("name", request.Name, fsm.NameMaxLength); apiErr != nil {
		return assetInput{}, apiErr
	}
	if apiErr := checkRequiredText("code", request.Code, fsm.CodeMaxLength); apiErr != nil {
		return assetInput{}, apiErr
	}
	if request.Fractions == nil {
		return assetInput{}, invalidArgument("fractions is required")
	}
	if *request.Fractions < 1 {
		return assetInput{}, invalidArgument("fractions must be at least 1 (the number of smallest parts in one unit)")
	}
	input.Name, input.Code, input.Fractions = request.Name, request.Code, *request.Fractions
	return input, nil
}

// customerRequest is the body of POST /projects/{projectId}/customers (with id) and of
// PUT /projects/{projectId}/customers/{customerId} (without).
type customerRequest struct {
	ID          *string `json:"id"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// customerInput is a validated customer upsert: nil fields are left as they are.
type customerInput struct {
	ID          string
	Name        *string
	Description *string
}

// decodeCustomer validates a customer upsert. The POST form (pathCustomerID "") needs the id in
// the body and a body at all; the PUT form takes the id from the path, refuses one in the body
// that differs, and allows an empty body.
func decodeCustomer(body io.Reader, pathCustomerID string) (customerInput, *apiError) {
	var request customerRequest
	if apiErr := decodeBody(body, &request, pathCustomerID == ""); apiErr != nil {
		return customerInput{}, apiErr
	}
	input := customerInput{ID: pathCustomerID, Name: request.Name, Description: request.Description}
	switch {
	case pathCustomerID == "" && request.ID == nil:
		return customerInput{}, invalidArgument("id is required")
	case pathCustomerID == "":
		input.ID = *request.ID
	case request.ID != nil && *request.ID != pathCustomerID:
		return customerInput{}, invalidArgument("id in the body must match customerId in the path")
	}
	if apiErr := checkCustomerID("id", input.ID); apiErr != nil {
		return customerInput{}, apiErr
	}
	if input.Name != nil {
		if apiErr := checkText("name", *input.Name, fsm.NameMaxLength); apiErr != nil {
			return customerInput{}, apiErr
		}
	}
	if input.Description != nil {
		if apiErr := checkText("description", *input.Description, fsm.DescriptionMaxLength); apiErr != nil {
			return customerInput{}, apiErr
		}
	}
	return input, nil
}

// emptyRequest is the (optional) body of routes that take none, e.g. suspend.
type emptyRequest struct{}

// decodeEmpty accepts no body, or an empty JSON object.
func decodeEmpty(body io.Reader) *apiError {
	return decodeBody(body, &emptyRequest{}, false)
}

// resumeRequest is the optional body of POST .../customers/{customerId}/resume.
type resumeRequest struct {
	WalletIDs []string `json:"walletIds"`
}

// decodeResume returns the wallets to reopen with the customer (none when the body is absent).
func decodeResume(body io.Reader) ([]string, *apiError) {
	var request resumeRequest
	if apiErr := decodeBody(body, &request, false); apiErr != nil {
		return nil, apiErr
	}
	if len(request.WalletIDs) > resumeWalletIDsMaxCount {
		return nil, badRequest(CodeLimitExceeded, "walletIds may list at most %d wallets", resumeWalletIDsMaxCount)
	}
	for i, walletID := range request.WalletIDs {
		if apiErr := checkSimpleID(fmt.Sprintf("walletIds[%d]", i), walletID, fsm.GeneratedIDMaxLength); apiErr != nil {
			return nil, apiErr
		}
	}
	return request.WalletIDs, nil
}

// createWalletRequest is the body of POST .../wallets (customer wallet) and
// POST .../system-wallets (no customerId).
type createWalletRequest struct {
	CustomerID  *string `json:"customerId"`
	AssetID     string  `json:"assetId"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
}

// systemWalletRequest is createWalletRequest without customerId: a system wallet belongs to
// the project, and naming a customer is refused as an unknown field.
type systemWalletRequest struct {
	AssetID     string `json:"assetId"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// walletInput is a validated wallet creation; CustomerID is "" for a system wallet.
type walletInput struct {
	CustomerID, AssetID, Name, Description string
}

// decodeCreateWallet validates a wallet creation: a customer wallet, or a system wallet when
// system is set.
func decodeCreateWallet(body io.Reader, system bool) (walletInput, *apiError) {
	var input walletInput
	if system {
		var request systemWalletRequest
		if apiErr := decodeBody(body, &request, true); apiErr != nil {
			return walletInput{}, apiErr
		}
		input = walletInput{AssetID: request.AssetID, Name: request.Name, Description: request.Description}
	} else {
		var request createWalletRequest
		if apiErr := decodeBody(body, &request, true); apiErr != nil {
			return walletInput{}, apiErr
		}
		if request.CustomerID == nil {
			return walletInput{}, invalidArgument("customerId is required")
		}
		if apiErr := checkCustomerID("customerId", *request.CustomerID); apiErr != nil {
			return walletInput{}, apiErr
		}
		input = walletInput{CustomerID: *request.CustomerID, AssetID: request.AssetID, Name: request.Name, Description: request.Description}
	}
	if apiErr := checkSimpleID("assetId", input.AssetID, fsm.IDMaxLength); apiErr != nil {
		return walletInput{}, apiErr
	}
	if apiErr := checkText("name", input.Name, fsm.NameMaxLength); apiErr != nil {
		return walletInput{}, apiErr
	}
	if apiErr := checkText("description", input.Description, fsm.DescriptionMaxLength); apiErr != nil {
		return walletInput{}, apiErr
	}
	return input, nil
}

// walletStatusRequest is the body of PUT .../wallets/{walletId}/status.
type walletStatusRequest struct {
	Status string `json:"status"`
}

// decodeWalletStatus returns the requested wallet status.
func decodeWalletStatus(body io.Reader) (ledger.WalletStatus, *apiError) {
	var request walletStatusRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return 0, apiErr
	}
	if request.Status == "" {
		return 0, invalidArgument("status is required")
	}
	return parseWalletStatus("status", request.Status)
}

// transactionRequest is the body of POST /projects/{projectId}/transactions.
type transactionRequest struct {
	ReferenceID string             `json:"referenceId"`
	Operations  []operationRequest `json:"operations"`
}

// operationRequest is one operation of a transactionRequest. Amount stays raw JSON until
// parseAmount reads it, so that no amount passes through float64.
type operationRequest struct {
	Type      string          `json:"type"`
	From      string          `json:"from"`
	To        string          `json:"to"`
	Amount    json.RawMessage `json:"amount"`
	ExpiresAt *int64          `json:"expiresAt"`
}

// transactionInput is a validated transaction request.
type transactionInput struct {
	ReferenceID string
	Operations  []ledger.Operation
}

// decodeTransaction validates a transaction request: a referenceId, 1..100 operations, each with
// the wallets its type needs (and no others), distinct wallets for a transfer, and a positive
// amount. Whether the wallets exist, belong to the project and hold enough is the fsm's
// business.
func decodeTransaction(body io.Reader) (transactionInput, *apiError) {
	var request transactionRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return transactionInput{}, apiErr
	}
	return checkTransaction("", &request)
}

// checkTransaction validates a decoded transaction request; prefix names it in messages ("" for
// the body itself, "transactions[3]." for an item of a batch).
func checkTransaction(prefix string, request *transactionRequest) (transactionInput, *apiError) {
	if request.ReferenceID == "" {
		return transactionInput{}, invalidArgument("%sreferenceId is required", prefix)
	}
	if apiErr := checkPrintable(prefix+"referenceId", request.ReferenceID, fsm.ReferenceIDMaxLength); apiErr != nil {
		return transactionInput{}, apiErr
	}
	if len(request.Operations) < 1 || len(request.Operations) > operationsPerTransactionMaxCount {
		return transactionInput{}, badRequest(CodeLimitExceeded, "%soperations must hold 1 to %d operations, not %d",
			prefix, operationsPerTransactionMaxCount, len(request.Operations))
	}
	input := transactionInput{ReferenceID: request.ReferenceID, Operations: make([]ledger.Operation, len(request.Operations))}
	for i := range request.Operations {
		operation, apiErr := checkOperation(prefix, i, &request.Operations[i])
		if apiErr != nil {
			return transactionInput{}, apiErr
		}
		input.Operations[i] = operation
	}
	return input, nil
}

// transactionBatchRequest is the body of POST /projects/{projectId}/transactions/batch.
type transactionBatchRequest struct {
	Transactions []transactionRequest `json:"transactions"`
}

// batchRules are strictRules with shapes checked: a value of the wrong type is named with its
// item's index ("transactions[3].operations[0].amount"), which encoding/json would leave out.
var batchRules = func() jsonstrict.Rules {
	rules := strictRules
	rules.Shapes = true
	return rules
}()

// decodeTransactionBatch validates a batch: 1..transactionsPerBatchMaxCount transactions, each
// as decodeTransaction checks one. Any malformed item refuses the whole batch, naming the item
// (transactions[i]); nothing is proposed.
func decodeTransactionBatch(body io.Reader) ([]transactionInput, *apiError) {
	var request transactionBatchRequest
	if apiErr := decodeBodyWith(body, &request, true, batchRules); apiErr != nil {
		return nil, apiErr
	}
	if request.Transactions == nil { // absent or null
		return nil, invalidArgument("transactions is required: an array of 1 to %d transactions", transactionsPerBatchMaxCount)
	}
	if len(request.Transactions) < 1 || len(request.Transactions) > transactionsPerBatchMaxCount {
		return nil, badRequest(CodeLimitExceeded, "transactions must hold 1 to %d transactions, not %d",
			transactionsPerBatchMaxCount, len(request.Transactions))
	}
	inputs := make([]transactionInput, len(request.Transactions))
	for i := range request.Transactions {
		input, apiErr := checkTransaction(fmt.Sprintf("transactions[%d].", i), &request.Transactions[i])
		if apiErr != nil {
			return nil, apiErr
		}
		inputs[i] = input
	}
	return inputs, nil
}

// checkOperation validates the operation at index i of a transaction request.
func checkOperation(prefix string, i int, request *operationRequest) (ledger.Operation, *apiError) {
	field := func(name string) string { return fmt.Sprintf("%soperations[%d].%s", prefix, i, name) }
	if request.Type == "" {
		return ledger.Operation{}, invalidArgument("%s is required", field("type"))
	}
	// The checks below run with no field name first, and only a refusal runs again with its
	// name: the names cost a fmt.Sprintf each, and nearly every operation passes.
	kind, apiErr := parseOperationType("", request.Type)
	if apiErr != nil {
		_, apiErr = parseOperationType(field("type"), request.Type)
		return ledger.Operation{}, apiErr
	}
	needsFrom := kind == ledger.OperationTransfer || kind == ledger.OperationRedeem || kind == ledger.OperationHold
	needsTo := kind == ledger.OperationTransfer || kind == ledger.OperationIssue
	for _, wallet := range []struct {
		name   string
		value  string
		needed bool
	}{{"from", request.From, needsFrom}, {"to", request.To, needsTo}} {
		switch {
		case wallet.needed:
			if checkSimpleID("", wallet.value, fsm.GeneratedIDMaxLength) != nil {
				return ledger.Operation{}, checkSimpleID(field(wallet.name), wallet.value, fsm.GeneratedIDMaxLength)
			}
		case wallet.value != "":
			return ledger.Operation{}, invalidArgument("%s is not allowed for a %s operation", field(wallet.name), request.Type)
		}
	}
	if kind == ledger.OperationTransfer && request.From == request.To {
		return ledger.Operation{}, invalidArgument("%s and %s must be different wallets", field("from"), field("to"))
	}
	amount, apiErr := parseAmount("", request.Amount)
	if apiErr != nil {
		_, apiErr = parseAmount(field("amount"), request.Amount)
		return ledger.Operation{}, apiErr
	}
	op := ledger.Operation{Type: kind, From: request.From, To: request.To, Amount: amount}
	if request.ExpiresAt != nil {
		if kind != ledger.OperationHold {
			return ledger.Operation{}, invalidArgument("%s is allowed only for a hold operation", field("expiresAt"))
		}
		if *request.ExpiresAt <= 0 {
			return ledger.Operation{}, invalidArgument("%s must be a time in Unix milliseconds", field("expiresAt"))
		}
		op.ExpiresAt = *request.ExpiresAt
	}
	return op, nil
}

// captureRequest is the body of POST /projects/{projectId}/holds/{holdId}/capture.
type captureRequest struct {
	To          string          `json:"to"`
	Amount      json.RawMessage `json:"amount"`
	ReferenceID string          `json:"referenceId"`
}

// captureInput is a validated capture request; a zero Amount captures the whole hold.
type captureInput struct {
	To          string
	Amount      fsm.Amount
	ReferenceID string
}

// decodeCapture validates a capture: the wallet to pay, an optional positive amount (default:
// the whole hold) and an optional referenceId (default: the capture transaction's own ID).
func decodeCapture(body io.Reader) (captureInput, *apiError) {
	var request captureRequest
	if apiErr := decodeBody(body, &request, true); apiErr != nil {
		return captureInput{}, apiErr
	}
	if apiErr := checkSimpleID("to", request.To, fsm.GeneratedIDMaxLength); apiErr != nil {
		return captureInput{}, apiErr
	}
	input := captureInput{To: request.To, ReferenceID: request.ReferenceID}
	if request.ReferenceID != "" {
		if apiErr := checkPrintable("referenceId", request.ReferenceID, fsm.ReferenceIDMaxLength); apiErr != nil {
			return captureInput{}, apiErr
		}
	}
	if request.Amount != nil {
		amount, apiErr := parseAmount("amount", request.Amount)
		if apiErr != nil {
			return captureInput{}, apiErr
		}
		input.Amount = amount
	}
	return input, nil
}
