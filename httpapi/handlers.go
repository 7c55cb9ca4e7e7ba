package httpapi

import (
	"fmt"
	"net/http"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gin-gonic/gin"
)

// The Cloud Wallet handlers. Each one validates its input (path parameters are checked by
// checkPathParams before it runs), builds one fsm.Command or one read, and maps the answer;
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

// nonNil keeps an empty list a JSON [] rather than null.
func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

// pathParamChecks validates every path parameter of the contract by name.
var pathParamChecks = map[string]func(field, value string) *apiError{
	"projectId":  func(field, value string) *apiError { return checkSimpleID(field, value, fsm.IDMaxLength) },
	"assetId":    func(field, value string) *apiError { return checkSimpleID(field, value, fsm.IDMaxLength) },
	"customerId": checkCustomerID,
	"walletId":   func(field, value string) *apiError { return checkSimpleID(field, value, fsm.GeneratedIDMaxLength) },
	"txId":       func(field, value string) *apiError { return checkSimpleID(field, value, fsm.GeneratedIDMaxLength) },
}

// checkPathParams answers 400 InvalidArgument for a malformed path parameter before any handler
// runs. A parameter without a check is a programming error.
func (s *server) checkPathParams(c *gin.Context) {
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

// propose hands cmd to the backend. It answers the request itself unless the command
// succeeded; the result is returned whenever there is one (for the transaction metrics).
func (s *server) propose(c *gin.Context, route Route, cmd *fsm.Command) (*fsm.Result, bool) {
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	result, err := s.backend.Propose(ctx, route, cmd)
	switch {
	case err != nil:
		s.fail(c, fromBackendError(err, true))
		return nil, false
	case result == nil:
		s.fail(c, internalError(fmt.Errorf("backend returned no result for %v", cmd.Op)))
		return nil, false
	case result.Err != nil:
		s.fail(c, fromFSMError(result.Err, result.Transaction))
		return result, false
	}
	return result, true
}

// respond writes a created or changed entity, which a successful result must carry.
func respond[T any](s *server, c *gin.Context, status int, entity *T) {
	if entity == nil {
		var zero T
		s.fail(c, internalError(fmt.Errorf("result of %s carries no %T", c.FullPath(), zero)))
		return
	}
	s.ok(c, status, entity)
}

// query runs fn on a linearizable read of route's shard and writes its value (200) or error.
func (s *server) query(c *gin.Context, route Route, fn func(reader Reader) (any, error)) {
	ctx, cancel := s.withTimeout(c)
	defer cancel()
	reader, err := s.backend.Read(ctx, route)
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
	route := Route{ProjectID: projectID}
	if result, ok := s.propose(c, route, &fsm.Command{Op: fsm.OpCreateProject, ProjectID: projectID, Name: name}); ok {
		respond(s, c, http.StatusCreated, result.Project)
	}
}

func (s *server) listProjects(c *gin.Context) {
	s.query(c, Route{}, func(reader Reader) (any, error) {
		projects, err := reader.ListProjects()
		return itemsResponse[fsm.Project]{Items: nonNil(projects)}, err
	})
}

func (s *server) getProject(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		project, err := reader.GetProject(projectID)
		if err != nil {
			return nil, err
		}
		return projectWithAssets{Project: project, Assets: nonNil(project.Assets)}, nil
	})
}

// projectWithAssets shows a project's assets even when there are none: fsm.Project omits an
// empty list, and the contract shows "assets" on GET one.
type projectWithAssets struct {
	*fsm.Project
	Assets []fsm.Asset `json:"assets"`
}

func (s *server) renameProject(c *gin.Context) {
	projectID := c.Param("projectId")
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := &fsm.Command{Op: fsm.OpRenameProject, ProjectID: projectID, Name: name}
	if result, ok := s.propose(c, Route{ProjectID: projectID}, cmd); ok {
		respond(s, c, http.StatusOK, result.Project)
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
	route := Route{ProjectID: projectID}
	if input.ID == "" {
		input.ID = newID(idKindAsset, route)
	}
	cmd := &fsm.Command{Op: fsm.OpCreateAsset, ProjectID: projectID, AssetID: input.ID, Name: input.Name,
		Code: input.Code, Fractions: input.Fractions}
	if result, ok := s.propose(c, route, cmd); ok {
		respond(s, c, http.StatusCreated, result.Asset)
	}
}

func (s *server) listAssets(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		assets, err := reader.ListAssets(projectID)
		return itemsResponse[fsm.Asset]{Items: nonNil(assets)}, err
	})
}

func (s *server) getAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		return reader.GetAsset(projectID, assetID)
	})
}

func (s *server) renameAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := &fsm.Command{Op: fsm.OpRenameAsset, ProjectID: projectID, AssetID: assetID, Name: name}
	if result, ok := s.propose(c, Route{ProjectID: projectID}, cmd); ok {
		respond(s, c, http.StatusOK, result.Asset)
	}
}

func (s *server) deleteAsset(c *gin.Context) {
	projectID, assetID := c.Param("projectId"), c.Param("assetId")
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	cmd := &fsm.Command{Op: fsm.OpDeleteAsset, ProjectID: projectID, AssetID: assetID}
	if _, ok := s.propose(c, Route{ProjectID: projectID}, cmd); ok {
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
	cmd := &fsm.Command{Op: fsm.OpUpsertCustomer, ProjectID: projectID, CustomerID: input.ID}
	if input.Name != nil {
		cmd.Name, cmd.SetName = *input.Name, true
	}
	if input.Description != nil {
		cmd.Description, cmd.SetDescription = *input.Description, true
	}
	if result, ok := s.propose(c, Route{ProjectID: projectID, CustomerID: input.ID}, cmd); ok {
		respond(s, c, http.StatusOK, result.Customer)
	}
}

func (s *server) listCustomers(c *gin.Context) {
	projectID := c.Param("projectId")
	page, apiErr := parsePage(pageQueryOf(c))
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		customers, hasMore, err := reader.ListCustomers(projectID, page)
		return pageResponse[fsm.Customer]{Items: nonNil(customers), Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
	})
}

func (s *server) getCustomer(c *gin.Context) {
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.query(c, Route{ProjectID: projectID, CustomerID: customerID}, func(reader Reader) (any, error) {
		return reader.GetCustomer(projectID, customerID)
	})
}

func (s *server) deleteCustomer(c *gin.Context) {
	s.customerCommand(c, fsm.OpDeleteCustomer, nil)
}

func (s *server) suspendCustomer(c *gin.Context) {
	if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.customerCommand(c, fsm.OpSuspendCustomer, nil)
}

func (s *server) resumeCustomer(c *gin.Context) {
	walletIDs, apiErr := decodeResume(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.customerCommand(c, fsm.OpResumeCustomer, walletIDs)
}

// customerCommand proposes a delete, suspend or resume of the path's customer.
func (s *server) customerCommand(c *gin.Context, op fsm.Op, walletIDs []string) {
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	if op == fsm.OpDeleteCustomer {
		if apiErr := decodeEmpty(c.Request.Body); apiErr != nil {
			s.fail(c, apiErr)
			return
		}
	}
	cmd := &fsm.Command{Op: op, ProjectID: projectID, CustomerID: customerID, WalletIDs: walletIDs}
	result, ok := s.propose(c, Route{ProjectID: projectID, CustomerID: customerID}, cmd)
	switch {
	case !ok:
	case op == fsm.OpDeleteCustomer:
		c.Status(http.StatusNoContent)
	default:
		respond(s, c, http.StatusOK, result.Customer)
	}
}

func (s *server) listCustomerWallets(c *gin.Context) {
	projectID, customerID := c.Param("projectId"), c.Param("customerId")
	s.query(c, Route{ProjectID: projectID, CustomerID: customerID}, func(reader Reader) (any, error) {
		wallets, err := reader.ListCustomerWallets(projectID, customerID)
		return itemsResponse[fsm.Wallet]{Items: nonNil(wallets)}, err
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
	route.WalletID = newID(idKindWallet, route)
	cmd := &fsm.Command{Op: fsm.OpCreateWallet, ProjectID: projectID, CustomerID: input.CustomerID,
		AssetID: input.AssetID, WalletID: route.WalletID, Name: input.Name, Description: input.Description}
	if result, ok := s.propose(c, route, cmd); ok {
		respond(s, c, http.StatusCreated, result.Wallet)
	}
}

func (s *server) listSystemWallets(c *gin.Context) {
	projectID := c.Param("projectId")
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		wallets, err := reader.ListSystemWallets(projectID)
		return itemsResponse[fsm.Wallet]{Items: nonNil(wallets)}, err
	})
}

func (s *server) getWallet(c *gin.Context) {
	projectID, walletID := c.Param("projectId"), c.Param("walletId")
	s.query(c, Route{ProjectID: projectID, WalletID: walletID}, func(reader Reader) (any, error) {
		return reader.GetWallet(projectID, walletID)
	})
}

func (s *server) renameWallet(c *gin.Context) {
	name, apiErr := decodeName(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &fsm.Command{Op: fsm.OpRenameWallet, Name: name})
}

func (s *server) describeWallet(c *gin.Context) {
	description, apiErr := decodeDescription(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &fsm.Command{Op: fsm.OpDescribeWallet, Description: description})
}

func (s *server) setWalletStatus(c *gin.Context) {
	status, apiErr := decodeWalletStatus(c.Request.Body)
	if apiErr != nil {
		s.fail(c, apiErr)
		return
	}
	s.walletCommand(c, &fsm.Command{Op: fsm.OpSetWalletStatus, Status: status})
}

// walletCommand proposes cmd against the path's wallet and answers with the wallet.
func (s *server) walletCommand(c *gin.Context, cmd *fsm.Command) {
	cmd.ProjectID, cmd.WalletID = c.Param("projectId"), c.Param("walletId")
	if result, ok := s.propose(c, Route{ProjectID: cmd.ProjectID, WalletID: cmd.WalletID}, cmd); ok {
		respond(s, c, http.StatusOK, result.Wallet)
	}
}

func (s *server) listEntries(c *gin.Context) {
	projectID, walletID := c.Param("projectId"), c.Param("walletId")
	q := pageQueryOf(c)
	page, apiErr := parsePage(q)
	if apiErr == nil {
		var timeRange fsm.TimeRange
		if timeRange, apiErr = parseTimeRange(q); apiErr == nil {
			s.query(c, Route{ProjectID: projectID, WalletID: walletID}, func(reader Reader) (any, error) {
				entries, hasMore, err := reader.ListEntries(projectID, walletID, timeRange, page)
				return pageResponse[fsm.Entry]{Items: nonNil(entries), Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
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
	// Route by the first wallet the transaction names; cross-shard transactions are issue 3's.
	first := input.Operations[0]
	route := Route{ProjectID: projectID, WalletID: first.From}
	if route.WalletID == "" {
		route.WalletID = first.To
	}
	cmd := &fsm.Command{Op: fsm.OpTransact, ProjectID: projectID, IDPrefix: idPrefix(idKindTransaction, route),
		ReferenceID: input.ReferenceID, Operations: input.Operations}
	result, ok := s.propose(c, route, cmd)
	if result != nil {
		s.metrics.observeTransaction(result)
	}
	if ok {
		respond(s, c, http.StatusCreated, result.Transaction)
	}
}

func (s *server) listTransactions(c *gin.Context) {
	projectID := c.Param("projectId")
	q := pageQueryOf(c)
	page, apiErr := parsePage(q)
	if apiErr == nil {
		var timeRange fsm.TimeRange
		if timeRange, apiErr = parseTimeRange(q); apiErr == nil {
			s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
				transactions, hasMore, err := reader.ListTransactions(projectID, timeRange, page)
				return pageResponse[fsm.Transaction]{Items: nonNil(transactions), Page: page.Page, PageSize: page.PageSize, HasMore: hasMore}, err
			})
			return
		}
	}
	s.fail(c, apiErr)
}

func (s *server) getTransaction(c *gin.Context) {
	projectID, transactionID := c.Param("projectId"), c.Param("txId")
	s.query(c, Route{ProjectID: projectID}, func(reader Reader) (any, error) {
		return reader.GetTransaction(projectID, transactionID)
	})
}
