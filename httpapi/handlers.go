package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi/cloudwallet"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	"github.com/gin-gonic/gin"
)

// The Cloud Wallet handlers. Each one validates its input (path parameters are checked by
// checkPathParams before it runs), builds one command or one read, and renders the answer in
// its view (httpapi/cloudwallet);
// none of them decides a business rule.

// itemsResponse is the shape of the unpaged lists: {"items":[...]}.
type itemsResponse[T any] struct {
	Items []T `json:"items"`
}

// pageResponse is the shape of a page: {"items":[...],"page":1,"pageSize":20,"hasMore":false}.
type pageResponse[T any] struct {
	Items    []T  `json:"items"`
	Page     int  `json:"page"`
	PageSize int  `json:"pageSize"`
	HasMore  bool `json:"hasMore"`
}

// pathParamChecks validates every path parameter of the contract by name.
var pathParamChecks = map[string]func(field, value string) *apiError{
	"projectId":  func(field, value string) *apiError { return checkSimpleID(field, value, fsm.IDMaxLength) },
	"assetId":    func(field, value string) *apiError { return checkSimpleID(field, value, fsm.IDMaxLength) },
	"customerId": checkCustomerID,
	"walletId":   func(field, value string) *apiError { return checkSimpleID(field, value, fsm.GeneratedIDMaxLength) },
	"txId":       func(field, value string) *apiError { return checkSimpleID(field, value, fsm.GeneratedIDMaxLength) },
	"holdId":     func(field, value string) *apiError { return checkSimpleID(field, value, fsm.GeneratedIDMaxLength) },
	"foreignID":  checkForeignID,
	"id":         checkGigPayID,
	"invoiceID":  checkInvoiceID,
	"paymentID": func(field, value string) *apiError {
		if _, err := gigawallet.ParseHash(value); err != nil {
			return &apiError{status: http.StatusNotFound, code: string(gw.CodeNotFound), message: "GetPayment: payout not found (a payment id is its 64-hex-digit txid)"}
		}
		return nil
	},
	"height": func(field, value string) *apiError {
		if h, err := strconv.ParseInt(value, 10, 64); err != nil || h < 0 || h > syncHeightMax {
			return &apiError{status: http.StatusBadRequest, code: string(gw.CodeBadRequest), message: fmt.Sprintf("SetSyncHeight: height must be a block height, 0..%d", int64(syncHeightMax))}
		}
		return nil
	},
	"name": func(field, value string) *apiError {
		if !fsm.ValidText(value, fsm.SubscriberMaxLength) {
			return invalidArgument("%s must be 1..%d printable characters", field, fsm.SubscriberMaxLength)
		}
		return nil
	},
}

// checkPathParams answers 400 InvalidArgument for a malformed path parameter before any handler
// runs. A parameter without a check is a programming error.
func (s *server) checkPathParams(c *gin.Context) {
	// A query string that does not decode is refused: Go drops each pair it cannot decode, so
	// GET /events?after=<cursor with a bad %-escape> replayed the whole log as if no cursor had
	// been sent (found by a probe). Most requests (a transfer's POST) have none: no parse.
	// A parameter given twice is refused too: handlers read the first, so
	// /events?after=A&after=B would silently drop B (every decoder is strict).
	if raw := c.Request.URL.RawQuery; raw != "" {
		values, err := url.ParseQuery(raw)
		if err != nil {
			s.fail(c, invalidArgument("the query string does not decode: %v", err))
			return
		}
		for name, given := range values {
			if len(given) > 1 {
				s.fail(c, invalidArgument("query parameter %q is given %d times; give it once", name, len(given)))
				return
			}
		}
	}
	for _, param := range c.Params {
		check, ok := pathParamChecks[param.Key]
		if !ok {
			s.fail(c, internalError(fmt.Errorf("path parameter %q has no check", param.Key)))
			return
		}
		if apiErr := check(param.Key, param.Value); apiErr != nil {
			s.fail(c, apiErr)
			return
		}
	}
	c.Next()
}

// propose hands cmd to the backend, with the request's Idempotency-Key when it has one. It
// answers the request itself unless the command succeeded; the result is returned whenever
// there is one (for the transaction metrics).
func (s *server) propose(c *gin.Context, cmd fsm.Command) (*fsm.Result, bool) {
	env := fsm.Envelope{Command: cmd}
	if idem, apiErr := idempotencyOf(c, cmd); apiErr != nil {
		s.fail(c, apiErr)
		return nil, false
	} else if idem != nil {
		env.Idempotency = idem
	}
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	result, err := s.backend.Propose(ctx, env)
	switch {
	case err != nil:
		s.fail(c, fromBackendError(err, true))
		return nil, false
	case result == nil:
		s.fail(c, internalError(fmt.Errorf("backend returned no result for op %d", cmd.Op())))
		return nil, false
	}
	if result.Replayed {
		c.Header(headerIdempotentReplayed, "true")
	}
	if result.Err != nil {
		s.fail(c, fromFSMError(result.Err, result.Value))
		return result, false
	}
	return result, true
}

// respond writes a created or changed entity in its view; a successful result must carry the
// entity the route promises.
func respond[R, V any](s *server, c *gin.Context, status int, result *fsm.Result, view func(*R) V) {
	entity, ok := any(result.Value).(*R)
	if !ok || entity == nil {
		var zero R
		s.fail(c, internalError(fmt.Errorf("result of %s carries %T, not %T", c.FullPath(), result.Value, &zero)))
		return
	}
	s.ok(c, status, view(entity))
}

// query runs fn on a linearizable read and writes its value (200) or error.
func (s *server) query(c *gin.Context, fn func(reader Reader) (any, error)) {
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	reader, err := s.backend.Read(ctx)
	if err != nil {
		s.fail(c, fromBackendError(err, false))
		return
	}
	value, err := fn(reader)
	if err != nil {
		s.fail(c, fromBackendError(err, false))
		return
	}
	s.ok(c, http.StatusOK, value)
}

// pageQueryOf collects the list query parameters.
func pageQueryOf(c *gin.Context) pageQuery {
	var q pageQuery
	q.page, q.pagePresent = c.GetQuery("page")
	q.pageSize, q.pageSizePresent = c.GetQuery("pageSize")
	q.from, q.fromPresent = c.GetQuery("from")
	q.to, q.toPresent = c.GetQuery("to")
	return q
}

// --- projects

func (s *server) createProject(c *gin.Context) {
	projectID, name, apiErr := decodeCreateProject(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if projectID == "" {
		projectID = newID(idKindProject, Route{})
	}
	if projectID == s.gigaWalletProject && s.gigaWalletProject != "" {
		s.fail(c, s.gigaWalletProjectOwned())
		return
	}
	if projectID == s.gigPayProject && s.gigPayProject != "" {
		// GigPay creates it, with its own asset (gigpay_routes.go, ensureProject).
		s.fail(c, s.gigPayProjectOwned("it creates it the first time it needs it"))
		return
	}
	if result, ok := s.propose(c, &ledger.CreateProject{ProjectID: projectID, Name: name}); ok {
		respond(s, c, http.StatusCreated, result, cloudwallet.ProjectOf)
	}
}

func (s *server) listProjects(c *gin.Context) {
	s.query(c, func(reader Reader) (any, error) {
		projects, err := reader.ListProjects()
		return itemsResponse[cloudwallet.Project]{Items: cloudwallet.List(projects, cloudwallet.ProjectOf)}, err
	})
}

func (s *server) getProject(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, func(reader Reader) (any, error) {
		project, err := reader.GetProject(projectID)
		if err != nil {
			return nil, err
		}
		view := cloudwallet.ProjectOf(project)
		return projectWithAssets{Project: view, Assets: cloudwallet.List(project.Assets, cloudwallet.AssetOf)}, nil
	})
}

// projectWithAssets shows a project's assets even when there are none: the project view omits
// an empty list, and the contract shows "assets" on GET one.
type projectWithAssets struct {
	cloudwallet.Project
	Assets []cloudwallet.Asset `json:"assets"`
}

func (s *server) renameProject(c *gin.Context) {
	projectID := c.Param("projectId")
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if result, ok := s.propose(c, &ledger.RenameProject{ProjectID: projectID, Name: name}); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.ProjectOf)
	}
}

// --- assets

func (s *server) createAsset(c *gin.Context) {
	projectID := c.Param("projectId")
	input, apiErr := decodeCreateAsset(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if input.ID == "" {
		input.ID = newID(idKindAsset, Route{ProjectID: projectID})
	}
	cmd := &ledger.CreateAsset{ProjectID: projectID, AssetID: input.ID, Name: input.Name,
		Code: input.Code, Fractions: input.Fractions}
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusCreated, result, cloudwallet.AssetOf)
	}
}

func (s *server) listAssets(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, func(reader Reader) (any, error) {
		assets, err := reader.ListAssets(projectID)
		return itemsResponse[cloudwallet.Asset]{Items: cloudwallet.List(assets, cloudwallet.AssetOf)}, err
	})
}

func (s *server) getAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	s.query(c, func(reader Reader) (any, error) {
		record, err := reader.GetAsset(projectID, assetID)
		return view(record, err, cloudwallet.AssetOf)
	})
}

func (s *server) renameAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if result, ok := s.propose(c, &ledger.RenameAsset{ProjectID: projectID, AssetID: assetID, Name: name}); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.AssetOf)
	}
}

func (s *server) deleteAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	if _, ok := s.propose(c, &ledger.DeleteAsset{ProjectID: projectID, AssetID: assetID}); ok {
		c.Status(http.StatusNoContent)
	}
}

// --- customers

func (s *server) upsertCustomer(c *gin.Context) {
	s.putCustomer(c, "")
}

func (s *server) updateCustomer(c *gin.Context) {
	s.putCustomer(c, c.Param("customerId"))
}

// putCustomer is the upsert behind POST .../customers (pathCustomerID "") and
// PUT .../customers/{customerId}.
func (s *server) putCustomer(c *gin.Context, pathCustomerID string) {
	projectID := c.Param("projectId")
	input, apiErr := decodeCustomer(c.Request.Body, pathCustomerID)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := &ledger.UpsertCustomer{ProjectID: projectID, CustomerID: input.ID}
	if input.Name != nil {
		cmd.Name, cmd.SetName = *input.Name, true
	}
	if input.Description != nil {
		cmd.Description, cmd.SetDescription = *input.Description, true
	}
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.CustomerOf)
	}
}

func (s *server) listCustomers(c *gin.Context) {
	projectID := c.Param("projectId")
	page, apiErr := parsePage(pageQueryOf(c))
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.query(c, func(reader Reader) (any, error) {
		customers, hasMore, err := reader.ListCustomers(projectID, page)
		return pageResponse[cloudwallet.Customer]{Items: cloudwallet.List(customers, cloudwallet.CustomerOf),
			Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
	})
}

func (s *server) getCustomer(c *gin.Context) {
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.query(c, func(reader Reader) (any, error) {
		record, err := reader.GetCustomer(projectID, customerID)
		return view(record, err, cloudwallet.CustomerOf)
	})
}

func (s *server) deleteCustomer(c *gin.Context) {
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	if _, ok := s.propose(c, &ledger.DeleteCustomer{ProjectID: projectID, CustomerID: customerID}); ok {
		c.Status(http.StatusNoContent)
	}
}

func (s *server) suspendCustomer(c *gin.Context) {
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.customerCommand(c, &ledger.SuspendCustomer{ProjectID: projectID, CustomerID: customerID})
}

func (s *server) resumeCustomer(c *gin.Context) {
	walletIDs, apiErr := decodeResume(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.customerCommand(c, &ledger.ResumeCustomer{ProjectID: projectID, CustomerID: customerID, WalletIDs: walletIDs})
}

// customerCommand proposes a suspend or resume of the path's customer.
func (s *server) customerCommand(c *gin.Context, cmd fsm.Command) {
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.CustomerOf)
	}
}

func (s *server) listCustomerWallets(c *gin.Context) {
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.query(c, func(reader Reader) (any, error) {
		wallets, err := reader.ListCustomerWallets(projectID, customerID)
		return itemsResponse[cloudwallet.Wallet]{Items: cloudwallet.List(wallets, cloudwallet.WalletOf)}, err
	})
}

// --- wallets

func (s *server) createWallet(c *gin.Context) {
	s.openWallet(c, false)
}

func (s *server) createSystemWallet(c *gin.Context) {
	s.openWallet(c, true)
}

// openWallet creates a customer wallet, or a system wallet when system is set, with a wallet ID
// that carries the customer's slot.
func (s *server) openWallet(c *gin.Context, system bool) {
	projectID := c.Param("projectId")
	input, apiErr := decodeCreateWallet(c.Request.Body, system)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	route := Route{ProjectID: projectID, CustomerID: input.CustomerID}
	cmd := &ledger.CreateWallet{ProjectID: projectID, CustomerID: input.CustomerID, AssetID: input.AssetID,
		WalletID: newID(idKindWallet, route), Name: input.Name, Description: input.Description}
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusCreated, result, cloudwallet.WalletOf)
	}
}

func (s *server) listSystemWallets(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, func(reader Reader) (any, error) {
		wallets, err := reader.ListSystemWallets(projectID)
		return itemsResponse[cloudwallet.Wallet]{Items: cloudwallet.List(wallets, cloudwallet.WalletOf)}, err
	})
}

func (s *server) getWallet(c *gin.Context) {
	projectID, walletID := c.Param("projectId"), c.Param("walletId")
	s.query(c, func(reader Reader) (any, error) {
		record, err := reader.GetWallet(projectID, walletID)
		return view(record, err, cloudwallet.WalletOf)
	})
}

func (s *server) renameWallet(c *gin.Context) {
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &ledger.RenameWallet{ProjectID: c.Param("projectId"), WalletID: c.Param("walletId"), Name: name})
}

func (s *server) describeWallet(c *gin.Context) {
	description, apiErr := decodeDescription(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &ledger.DescribeWallet{ProjectID: c.Param("projectId"), WalletID: c.Param("walletId"), Description: description})
}

func (s *server) setWalletStatus(c *gin.Context) {
	status, apiErr := decodeWalletStatus(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &ledger.SetWalletStatus{ProjectID: c.Param("projectId"), WalletID: c.Param("walletId"), Status: status})
}

// walletCommand proposes cmd against the path's wallet and answers with the wallet.
func (s *server) walletCommand(c *gin.Context, cmd fsm.Command) {
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.WalletOf)
	}
}

func (s *server) listEntries(c *gin.Context) {
	projectID, walletID := c.Param("projectId"), c.Param("walletId")
	q := pageQueryOf(c)
	page, apiErr := parsePage(q)
	if apiErr == nil {
		var timeRange ledger.TimeRange
		if timeRange, apiErr = parseTimeRange(q); apiErr == nil {
			s.query(c, func(reader Reader) (any, error) {
				entries, hasMore, err := reader.ListEntries(projectID, walletID, timeRange, page)
				return pageResponse[cloudwallet.Entry]{Items: cloudwallet.List(entries, cloudwallet.EntryOf),
					Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
			})
			return
		}
	}
	s.fail(c, apiErr)
}

// --- transactions

func (s *server) createTransaction(c *gin.Context) {
	projectID := c.Param("projectId")
	input, apiErr := decodeTransaction(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := transactOf(projectID, input)
	result, ok := s.propose(c, &cmd)
	if result != nil {
		s.metrics.observeTransaction(result)
	}
	if ok {
		respond(s, c, http.StatusCreated, result, cloudwallet.TransactionOf)
	}
}

// transactOf is the command of a validated transaction. Its ID prefix carries the slot of the
// first wallet it names: the shard of a single-shard transaction, the coordinator of a
// cross-shard one.
func transactOf(projectID string, input transactionInput) ledger.Transact {
	first := input.Operations[0]
	route := Route{ProjectID: projectID, WalletID: first.From}
	if route.WalletID == "" {
		route.WalletID = first.To
	}
	return ledger.Transact{ProjectID: projectID, IDPrefix: idPrefix(idKindTransaction, route),
		ReferenceID: input.ReferenceID, Operations: input.Operations}
}

// transactionBatchResponse is the answer to POST /projects/{projectId}/transactions/batch: one
// result per transaction, in request order.
type transactionBatchResponse struct {
	Results []transactionBatchResult `json:"results"`
}

// transactionBatchResult is one transaction's answer in a batch: the status and the body that
// POST /projects/{projectId}/transactions would have answered for it alone (the transaction,
// the error, or both).
type transactionBatchResult struct {
	Status      int                      `json:"status"`
	Error       *ErrorDetail             `json:"error,omitempty"`
	Transaction *cloudwallet.Transaction `json:"transaction,omitempty"`
}

// createTransactionBatch runs up to transactionsPerBatchMaxCount transactions, each atomic on
// its own, with one result each in request order (Backend.ProposeTransactions: one proposal
// per shard). The request is 200 once the batch was decoded; each result has its own status.
// Idempotency-Key is refused: each transaction's referenceId already makes a retried batch
// safe (what applied the first time answers 409 DuplicateReferenceId with its transaction),
// and one stored answer for a batch that spans shards could not be kept atomically.
func (s *server) createTransactionBatch(c *gin.Context) {
	if len(c.Request.Header.Values(headerIdempotencyKey)) > 0 {
		s.fail(c, invalidArgument("%s is not accepted on a batch: each transaction's referenceId makes a retried batch safe", headerIdempotencyKey))
		return
	}
	projectID := c.Param("projectId")
	inputs, apiErr := decodeTransactionBatch(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	transactions := make([]ledger.Transact, len(inputs))
	for i := range inputs {
		transactions[i] = transactOf(projectID, inputs[i])
	}
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	outcomes := s.backend.ProposeTransactions(ctx, projectID, transactions)
	if len(outcomes) != len(transactions) {
		s.fail(c, internalError(fmt.Errorf("backend answered %d outcomes for %d transactions", len(outcomes), len(transactions))))
		return
	}
	response := transactionBatchResponse{Results: make([]transactionBatchResult, len(outcomes))}
	for i, outcome := range outcomes {
		response.Results[i] = s.batchResult(c, outcome)
	}
	s.ok(c, http.StatusOK, response)
}

// batchResult renders one outcome of a batch as the single route would answer it.
func (s *server) batchResult(c *gin.Context, outcome backend.Outcome) transactionBatchResult {
	var answer *apiError
	switch {
	case outcome.Err != nil:
		answer = fromBackendError(outcome.Err, true)
	case outcome.Result == nil:
		answer = internalError(errors.New("backend returned no result for a transaction of a batch"))
	default:
		s.metrics.observeTransaction(outcome.Result)
		if outcome.Result.Err != nil {
			answer = fromFSMError(outcome.Result.Err, outcome.Result.Value)
			break
		}
		t, ok := outcome.Result.Value.(*ledger.Transaction)
		if !ok || t == nil {
			answer = internalError(fmt.Errorf("result of a batch's transaction carries %T", outcome.Result.Value))
			break
		}
		view := cloudwallet.TransactionOf(t)
		return transactionBatchResult{Status: http.StatusCreated, Transaction: &view}
	}
	switch {
	case answer.status >= http.StatusInternalServerError && answer.status != http.StatusServiceUnavailable:
		s.logger.Error("transaction of a batch failed", slog.String("route", c.FullPath()), slog.String("code", answer.code),
			slog.Any("error", answer.cause))
	case answer.cause != nil:
		s.logger.Warn("transaction of a batch refused", slog.String("route", c.FullPath()), slog.String("code", answer.code),
			slog.Any("error", answer.cause))
	}
	return transactionBatchResult{Status: answer.status, Error: &ErrorDetail{Code: answer.code, Message: answer.message},
		Transaction: answer.transaction}
}

func (s *server) listTransactions(c *gin.Context) {
	projectID := c.Param("projectId")
	q := pageQueryOf(c)
	page, apiErr := parsePage(q)
	if apiErr == nil {
		var timeRange ledger.TimeRange
		if timeRange, apiErr = parseTimeRange(q); apiErr == nil {
			s.query(c, func(reader Reader) (any, error) {
				transactions, hasMore, err := reader.ListTransactions(projectID, timeRange, page)
				return pageResponse[cloudwallet.Transaction]{Items: cloudwallet.List(transactions, cloudwallet.TransactionOf),
					Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
			})
			return
		}
	}
	s.fail(c, apiErr)
}

func (s *server) getTransaction(c *gin.Context) {
	projectID, transactionID := c.Param("projectId"), c.Param("txId")
	if transactionID == "batch" {
		// The batch's path, which this route's pattern also matches (no transaction ID is
		// "batch"): what the router answers for another method at a known path.
		c.Header("Allow", http.MethodPost)
		s.fail(c, &apiError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
			message: "this method is not served at this path; the Allow header lists those that are"})
		return
	}
	s.query(c, func(reader Reader) (any, error) {
		record, err := reader.GetTransaction(projectID, transactionID)
		return view(record, err, cloudwallet.TransactionOf)
	})
}

// view renders a read's record, or passes its error on.
func view[R, V any](record *R, err error, render func(*R) V) (any, error) {
	if err != nil {
		return nil, err
	}
	return render(record), nil
}

// --- holds

func (s *server) captureHold(c *gin.Context) {
	projectID, holdID := c.Param("projectId"), c.Param("holdId")
	input, apiErr := decodeCapture(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	route := Route{ProjectID: projectID, WalletID: holdID}
	cmd := &ledger.CaptureHold{ProjectID: projectID, HoldID: holdID, To: input.To, Amount: input.Amount,
		IDPrefix: idPrefix(idKindTransaction, route), ReferenceID: input.ReferenceID}
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.HoldResolutionOf)
	}
}

func (s *server) releaseHold(c *gin.Context) {
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := &ledger.ReleaseHold{ProjectID: c.Param("projectId"), HoldID: c.Param("holdId")}
	if result, ok := s.propose(c, cmd); ok {
		respond(s, c, http.StatusOK, result, cloudwallet.HoldResolutionOf)
	}
}

func (s *server) getHold(c *gin.Context) {
	projectID, holdID := c.Param("projectId"), c.Param("holdId")
	s.query(c, func(reader Reader) (any, error) {
		record, err := reader.GetHold(projectID, holdID)
		return view(record, err, cloudwallet.HoldOf)
	})
}
