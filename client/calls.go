package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The typed calls, one per route of docs/cloudwallet-api.md, in its order. Each returns the
// answer's entity or an error: an *Error for an answer of the API, a *TransportError for none.

// path joins escaped segments: IDs are the caller's (a customer ID may hold spaces or '%').
func path(segments ...string) string {
	var b strings.Builder
	for _, segment := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(segment))
	}
	return b.String()
}

// entity returns out, or nil with the call's error: out is only filled on success.
func entity[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}

// items returns the list of an unpaged answer, or the call's error.
func items[T any](out *itemsResponse[T], err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return out.Items, nil
}

// encode marshals a request body.
func encode(body any) ([]byte, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("gigaledger: encode request: %w", err)
	}
	return data, nil
}

// write runs a write whose body is in and whose answer decodes into out.
func (c *Client) write(ctx context.Context, method, p string, in any, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = encode(in); err != nil {
			return err
		}
	}
	return c.call(ctx, newRequest(method, p, body), out)
}

// read runs a GET whose answer decodes into out.
func (c *Client) read(ctx context.Context, p string, out any) error {
	return c.call(ctx, newRequest(http.MethodGet, p, nil), out)
}

// --- projects

// CreateProject creates a project.
func (c *Client) CreateProject(ctx context.Context, in CreateProjectRequest) (*Project, error) {
	var out Project
	return entity(&out, c.write(ctx, http.MethodPost, "/projects", in, &out))
}

// ListProjects lists every project.
func (c *Client) ListProjects(ctx context.Context) ([]Project, error) {
	var out itemsResponse[Project]
	return items(&out, c.read(ctx, "/projects", &out))
}

// GetProject returns a project with its assets.
func (c *Client) GetProject(ctx context.Context, projectID string) (*Project, error) {
	var out Project
	return entity(&out, c.read(ctx, path("projects", projectID), &out))
}

// RenameProject sets a project's name.
func (c *Client) RenameProject(ctx context.Context, projectID, name string) (*Project, error) {
	var out Project
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "name"), nameBody{name}, &out))
}

// nameBody is the body of the renames.
type nameBody struct {
	Name string `json:"name"`
}

// --- assets

// CreateAsset creates an asset.
func (c *Client) CreateAsset(ctx context.Context, projectID string, in CreateAssetRequest) (*Asset, error) {
	var out Asset
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "assets"), in, &out))
}

// ListAssets lists a project's assets.
func (c *Client) ListAssets(ctx context.Context, projectID string) ([]Asset, error) {
	var out itemsResponse[Asset]
	return items(&out, c.read(ctx, path("projects", projectID, "assets"), &out))
}

// GetAsset returns an asset with its supply.
func (c *Client) GetAsset(ctx context.Context, projectID, assetID string) (*Asset, error) {
	var out Asset
	return entity(&out, c.read(ctx, path("projects", projectID, "assets", assetID), &out))
}

// RenameAsset sets an asset's name.
func (c *Client) RenameAsset(ctx context.Context, projectID, assetID, name string) (*Asset, error) {
	var out Asset
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "assets", assetID, "name"), nameBody{name}, &out))
}

// DeleteAsset deletes an asset no wallet uses (403 AssetInUse once one does).
func (c *Client) DeleteAsset(ctx context.Context, projectID, assetID string) error {
	return c.write(ctx, http.MethodDelete, path("projects", projectID, "assets", assetID), nil, nil)
}

// --- customers

// UpsertCustomer creates the customer with this ID, or updates the fields set in fields
// (POST .../customers).
func (c *Client) UpsertCustomer(ctx context.Context, projectID, customerID string, fields CustomerFields) (*Customer, error) {
	in := struct {
		ID string `json:"id"`
		CustomerFields
	}{customerID, fields}
	var out Customer
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "customers"), in, &out))
}

// UpdateCustomer is UpsertCustomer through PUT .../customers/{customerId}.
func (c *Client) UpdateCustomer(ctx context.Context, projectID, customerID string, fields CustomerFields) (*Customer, error) {
	var out Customer
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "customers", customerID), fields, &out))
}

// ListCustomers returns one page of a project's customers.
func (c *Client) ListCustomers(ctx context.Context, projectID string, page PageRequest) (*Page[Customer], error) {
	var out Page[Customer]
	return entity(&out, c.read(ctx, path("projects", projectID, "customers")+page.query(), &out))
}

// AllCustomers walks every page of a project's customers.
func (c *Client) AllCustomers(ctx context.Context, projectID string, pageSize int) iter.Seq2[Customer, error] {
	return walk(func(page int) (*Page[Customer], error) {
		return c.ListCustomers(ctx, projectID, PageRequest{Page: page, PageSize: pageSize})
	})
}

// GetCustomer returns a customer.
func (c *Client) GetCustomer(ctx context.Context, projectID, customerID string) (*Customer, error) {
	var out Customer
	return entity(&out, c.read(ctx, path("projects", projectID, "customers", customerID), &out))
}

// DeleteCustomer deletes a customer whose wallets are all closed (422 CustomerHasOpenWallets
// otherwise).
func (c *Client) DeleteCustomer(ctx context.Context, projectID, customerID string) error {
	return c.write(ctx, http.MethodDelete, path("projects", projectID, "customers", customerID), nil, nil)
}

// SuspendCustomer suspends a customer and all their wallets.
func (c *Client) SuspendCustomer(ctx context.Context, projectID, customerID string) (*Customer, error) {
	var out Customer
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "customers", customerID, "suspend"), nil, &out))
}

// ResumeCustomer resumes a customer and reopens the listed wallets (the others stay
// suspended).
func (c *Client) ResumeCustomer(ctx context.Context, projectID, customerID string, walletIDs []string) (*Customer, error) {
	var in any
	if walletIDs != nil {
		in = struct {
			WalletIDs []string `json:"walletIds"`
		}{walletIDs}
	}
	var out Customer
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "customers", customerID, "resume"), in, &out))
}

// ListCustomerWallets lists a customer's wallets.
func (c *Client) ListCustomerWallets(ctx context.Context, projectID, customerID string) ([]Wallet, error) {
	var out itemsResponse[Wallet]
	return items(&out, c.read(ctx, path("projects", projectID, "customers", customerID, "wallets"), &out))
}

// --- wallets

// CreateWallet opens a wallet for a customer. A call opens one wallet however often it is
// resent: every attempt carries the call's Idempotency-Key.
func (c *Client) CreateWallet(ctx context.Context, projectID string, in CreateWalletRequest) (*Wallet, error) {
	var out Wallet
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "wallets"), in, &out))
}

// CreateSystemWallet opens a wallet owned by the project.
func (c *Client) CreateSystemWallet(ctx context.Context, projectID string, in CreateSystemWalletRequest) (*Wallet, error) {
	var out Wallet
	return entity(&out, c.write(ctx, http.MethodPost, path("projects", projectID, "system-wallets"), in, &out))
}

// ListSystemWallets lists the project's system wallets.
func (c *Client) ListSystemWallets(ctx context.Context, projectID string) ([]Wallet, error) {
	var out itemsResponse[Wallet]
	return items(&out, c.read(ctx, path("projects", projectID, "system-wallets"), &out))
}

// GetWallet returns a wallet with its balance.
func (c *Client) GetWallet(ctx context.Context, projectID, walletID string) (*Wallet, error) {
	var out Wallet
	return entity(&out, c.read(ctx, path("projects", projectID, "wallets", walletID), &out))
}

// RenameWallet sets a wallet's name.
func (c *Client) RenameWallet(ctx context.Context, projectID, walletID, name string) (*Wallet, error) {
	var out Wallet
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "wallets", walletID, "name"), nameBody{name}, &out))
}

// DescribeWallet sets a wallet's description; "" clears it.
func (c *Client) DescribeWallet(ctx context.Context, projectID, walletID, description string) (*Wallet, error) {
	in := struct {
		Description string `json:"description"`
	}{description}
	var out Wallet
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "wallets", walletID, "description"), in, &out))
}

// SetWalletStatus opens, suspends or closes a wallet (closed is final and needs a zero
// balance, and no active hold).
func (c *Client) SetWalletStatus(ctx context.Context, projectID, walletID string, status WalletStatus) (*Wallet, error) {
	in := struct {
		Status WalletStatus `json:"status"`
	}{status}
	var out Wallet
	return entity(&out, c.write(ctx, http.MethodPut, path("projects", projectID, "wallets", walletID, "status"), in, &out))
}

// ListEntries returns one page of a wallet's entries, oldest first.
func (c *Client) ListEntries(ctx context.Context, projectID, walletID string, page TimePageRequest) (*Page[Entry], error) {
	var out Page[Entry]
	return entity(&out, c.read(ctx, path("projects", projectID, "wallets", walletID, "entries")+page.query(), &out))
}

// AllEntries walks every page of a wallet's entries within the request's time range (its Page
// is ignored).
func (c *Client) AllEntries(ctx context.Context, projectID, walletID string, request TimePageRequest) iter.Seq2[Entry, error] {
	return walk(func(page int) (*Page[Entry], error) {
		request.Page = page
		return c.ListEntries(ctx, projectID, walletID, request)
	})
}

// --- transactions

// CreateTransaction runs a transaction.
//
// It returns the transaction and nil when it completed, and the failed transaction with an
// *Error (422, Code = the failure reason, such as InsufficientFunds) when it was recorded as
// failed. Other refusals return no transaction (409 ReferenceIdMismatch: the referenceId
// belongs to a transaction with other operations).
//
// The referenceId is the transaction's idempotency key, so no Idempotency-Key header is sent
// (it would make the server store a second record of every transaction). An attempt whose
// outcome is unknown is resent with the same referenceId; if the earlier attempt did apply, the
// server answers 409 DuplicateReferenceId with the stored transaction, and the call returns it
// exactly as if the first answer had arrived (completed: no error; failed: the failure).
func (c *Client) CreateTransaction(ctx context.Context, projectID string, in TransactionRequest) (*Transaction, error) {
	body, err := in.appendJSON(make([]byte, 0, 64+len(in.Operations)*96))
	if err != nil {
		return nil, err
	}
	r := newRequest(http.MethodPost, path("projects", projectID, "transactions"), body)
	r.idempotencyKey = "" // the referenceId is the key
	got, err := c.run(ctx, r)
	if err == nil {
		var out Transaction
		if err := got.decode(r, &out); err != nil {
			return nil, err
		}
		return &out, nil
	}
	var apiErr *Error
	if got == nil || !errors.As(err, &apiErr) {
		return nil, err
	}
	return transactionAnswer(got.envelope().Transaction, apiErr)
}

// transactionAnswer turns a refusal of a transaction and the transaction it carried into what
// CreateTransaction returns: a failed transaction with its failure, a duplicate of a completed
// one as the transaction (no error), a duplicate of a failed one with the first answer's failure.
func transactionAnswer(stored *Transaction, apiErr *Error) (*Transaction, error) {
	if stored == nil {
		return nil, apiErr
	}
	switch {
	case apiErr.StatusCode == http.StatusUnprocessableEntity:
		return stored, apiErr
	case apiErr.Code != CodeDuplicateReferenceID:
		// ReferenceIdMismatch names the transaction that holds the reference: not this one.
		return nil, apiErr
	}
	if stored.Status == TransactionCompleted {
		return stored, nil
	}
	if stored.FailureReason == "" {
		return stored, apiErr
	}
	// The failure the first answer carried.
	return stored, &Error{StatusCode: http.StatusUnprocessableEntity, Code: stored.FailureReason, Message: stored.FailureMessage}
}

// TransactionBatchMaxCount is the most transactions one CreateTransactionBatch may carry.
const TransactionBatchMaxCount = 1000

// TransactionBatchResult is one transaction's answer in a batch: what CreateTransaction would
// have returned for it alone (Transaction and Err, an *Error), and the status the server gave
// it.
type TransactionBatchResult struct {
	Status      int
	Transaction *Transaction
	Err         error
}

// transactionBatchAnswer is the body of a batch's answer.
type transactionBatchAnswer struct {
	Results []struct {
		Status int `json:"status"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Transaction *Transaction `json:"transaction"`
	} `json:"results"`
}

// CreateTransactionBatch runs 1..TransactionBatchMaxCount transactions in one request
// (POST /projects/{projectId}/transactions/batch), each atomic on its own, and returns one
// result per transaction in order. Transactions that share a wallet apply in order. The error
// is the request's (a malformed transaction refuses the whole batch, 400 naming it); each
// transaction's own refusal is in its result's Err, as CreateTransaction would return it.
//
// Like CreateTransaction it sends no Idempotency-Key (the route refuses one): the referenceIds
// make a resent batch safe, and a transaction that the first attempt applied answers as if the
// first answer had arrived. A result with 503 OutcomeUnknown (its shard's proposal may or may
// not have applied) can be resent with the same referenceId.
func (c *Client) CreateTransactionBatch(ctx context.Context, projectID string, in []TransactionRequest) ([]TransactionBatchResult, error) {
	if len(in) == 0 || len(in) > TransactionBatchMaxCount {
		return nil, fmt.Errorf("gigaledger: a batch holds 1..%d transactions, not %d", TransactionBatchMaxCount, len(in))
	}
	body := append(make([]byte, 0, 32+len(in)*(64+len(in[0].Operations)*96)), `{"transactions":[`...)
	for i, transaction := range in {
		if i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = transaction.appendJSON(body); err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
	}
	body = append(body, "]}"...)
	r := newRequest(http.MethodPost, path("projects", projectID, "transactions", "batch"), body)
	r.idempotencyKey = "" // the referenceIds are the keys
	var answer transactionBatchAnswer
	if err := c.call(ctx, r, &answer); err != nil {
		return nil, err
	}
	if len(answer.Results) != len(in) {
		return nil, fmt.Errorf("gigaledger: a batch of %d answered %d results", len(in), len(answer.Results))
	}
	out := make([]TransactionBatchResult, len(in))
	for i, result := range answer.Results {
		out[i].Status = result.Status
		if result.Error == nil {
			out[i].Transaction = result.Transaction
			continue
		}
		apiErr := &Error{StatusCode: result.Status, Code: result.Error.Code, Message: result.Error.Message}
		out[i].Transaction, out[i].Err = transactionAnswer(result.Transaction, apiErr)
	}
	return out, nil
}

// GetTransaction returns a transaction by its ID.
func (c *Client) GetTransaction(ctx context.Context, projectID, transactionID string) (*Transaction, error) {
	var out Transaction
	return entity(&out, c.read(ctx, path("projects", projectID, "transactions", transactionID), &out))
}

// ListTransactions returns one page of a project's transactions, oldest first.
func (c *Client) ListTransactions(ctx context.Context, projectID string, page TimePageRequest) (*Page[Transaction], error) {
	var out Page[Transaction]
	return entity(&out, c.read(ctx, path("projects", projectID, "transactions")+page.query(), &out))
}

// AllTransactions walks every page of a project's transactions within the request's time range
// (its Page is ignored).
func (c *Client) AllTransactions(ctx context.Context, projectID string, request TimePageRequest) iter.Seq2[Transaction, error] {
	return walk(func(page int) (*Page[Transaction], error) {
		request.Page = page
		return c.ListTransactions(ctx, projectID, request)
	})
}

// --- holds

// GetHold returns a hold (its ID is the holdId of the hold operation that placed it).
func (c *Client) GetHold(ctx context.Context, projectID, holdID string) (*Hold, error) {
	var out Hold
	return entity(&out, c.read(ctx, path("projects", projectID, "holds", holdID), &out))
}

// CaptureHold moves all or part of an active hold to another wallet in a new transaction and
// releases the rest. It returns the captured hold and the transaction; after 409 HoldResolved
// (the hold was already captured, released or expired), the hold as it is with the *Error;
// after a 422 (the transfer failed: the payee suspended, another asset), the failed transaction
// with the *Error, and the hold stays active.
func (c *Client) CaptureHold(ctx context.Context, projectID, holdID string, in CaptureRequest) (*HoldResolution, error) {
	body, err := encode(in)
	if err != nil {
		return nil, err
	}
	return c.resolveHold(ctx, newRequest(http.MethodPost, path("projects", projectID, "holds", holdID, "capture"), body))
}

// ReleaseHold releases an active hold: its amount is available again. It returns the released
// hold; after 409 HoldResolved, the hold as it is with the *Error.
func (c *Client) ReleaseHold(ctx context.Context, projectID, holdID string) (*Hold, error) {
	out, err := c.resolveHold(ctx, newRequest(http.MethodPost, path("projects", projectID, "holds", holdID, "release"), nil))
	if out == nil {
		return nil, err
	}
	return out.Hold, err
}

// resolveHold runs a capture or a release: the resolution on success, and with an *Error the
// hold or transaction its answer carried (nil when it carried neither).
func (c *Client) resolveHold(ctx context.Context, r *request) (*HoldResolution, error) {
	got, err := c.run(ctx, r)
	if err == nil {
		var out HoldResolution
		if err := got.decode(r, &out); err != nil {
			return nil, err
		}
		if out.Hold == nil {
			return nil, fmt.Errorf("gigaledger: %s %s: answer %d has no hold", r.method, r.path, got.status)
		}
		return &out, nil
	}
	var apiErr *Error
	if got == nil || !errors.As(err, &apiErr) {
		return nil, err
	}
	envelope := got.envelope()
	if envelope.Hold == nil && envelope.Transaction == nil {
		return nil, err
	}
	return &HoldResolution{Hold: envelope.Hold, Transaction: envelope.Transaction}, err
}

// --- operations

// Health returns nil while the node's process is up (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.read(ctx, "/healthz", nil)
}

// Ready returns nil when the node can serve (GET /readyz), else the 503 Unavailable that says
// why.
func (c *Client) Ready(ctx context.Context) error {
	return c.read(ctx, "/readyz", nil)
}

// StateDigest is a replica's ledger digest (hex) at its applied log index: replicas that
// applied the same index agree.
type StateDigest struct {
	Digest       string `json:"digest"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// Shards lists each hosted shard's digest and applied index (nodes that serve them).
	Shards []ShardDigest `json:"shards,omitempty"`
}

// ShardDigest is one shard replica's ledger digest (hex) at its applied log index.
type ShardDigest struct {
	Shard        int    `json:"shard"`
	Digest       string `json:"digest"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// StateDigest reads GET /debug/digest (no read fence: this replica's state as it is).
func (c *Client) StateDigest(ctx context.Context) (*StateDigest, error) {
	var out StateDigest
	return entity(&out, c.read(ctx, "/debug/digest", &out))
}

// ClusterStatus returns GET /cluster as the node wrote it: its shape is not part of the
// contract yet.
func (c *Client) ClusterStatus(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.read(ctx, "/cluster", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// --- pages

// query returns the page's query string.
func (p PageRequest) query() string {
	q := "?page=" + strconv.Itoa(max(p.Page, 1))
	if p.PageSize > 0 {
		q += "&pageSize=" + strconv.Itoa(p.PageSize)
	}
	return q
}

// query returns the page's and the time range's query string. from is always sent (0, the
// epoch, bounds nothing): the Cloud Wallet reference requires it.
func (p TimePageRequest) query() string {
	q := p.PageRequest.query() + "&from=" + strconv.FormatInt(p.FromMs, 10)
	if p.ToMs != 0 {
		q += "&to=" + strconv.FormatInt(p.ToMs, 10)
	}
	return q
}

// walkPagesMax bounds a walk over one list, should a server never stop saying hasMore.
const walkPagesMax = 100_000

// walk yields the items of pages 1, 2, ... until one says it is the last, or an error (yielded
// once, then the walk ends).
func walk[T any](list func(page int) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for page := 1; page <= walkPagesMax; page++ {
			got, err := list(page)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, item := range got.Items {
				if !yield(item, nil) {
					return
				}
			}
			if !got.HasMore {
				return
			}
		}
		yield(zero, fmt.Errorf("gigaledger: list has more than %d pages", walkPagesMax))
	}
}
