package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client limits.
const (
	// responseMaxBytes bounds one response body (a page of 1000 transactions fits).
	responseMaxBytes = 32 << 20
	// listPageSize is the page size used to walk transactions and entries (the API's maximum).
	listPageSize = 1000
	// listPagesMax bounds a walk over one list.
	listPagesMax = 100_000
	// listTimeToMs is the upper end of the time range used to list everything.
	listTimeToMs = int64(1) << 52
)

// Client speaks the Cloud Wallet API of one cluster's admin listeners. It is safe for
// concurrent use.
type Client struct {
	http  *http.Client
	token string
}

// NewClient returns a client whose every request ends after requestTimeout.
func NewClient(token string, requestTimeout time.Duration, connectionsPerHost int) *Client {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: requestTimeout}).DialContext,
		MaxIdleConns:        3 * connectionsPerHost,
		MaxIdleConnsPerHost: connectionsPerHost,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: transport, Timeout: requestTimeout}, token: token}
}

// CloseIdle drops idle connections (after a node restarts, so the next request dials anew).
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Response is one HTTP answer: status, the error envelope's code, and the body.
type Response struct {
	Status int
	Code   string
	Body   []byte
}

// Do sends one request to base+path with an optional JSON body.
func (c *Client) Do(ctx context.Context, method, base, path string, body any) (Response, error) {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return Response{}, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, reader)
	if err != nil {
		return Response{}, err
	}
	if body != nil || method != http.MethodGet {
		// The API refuses a POST, PUT or PATCH without it (415), body or not.
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, responseMaxBytes))
	if err != nil {
		return Response{Status: resp.StatusCode}, err
	}
	out := Response{Status: resp.StatusCode, Body: data}
	if resp.StatusCode >= 300 {
		var envelope struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &envelope) == nil {
			out.Code = envelope.Error.Code
		}
	}
	return out, nil
}

// Amount is an amount as the API writes it (a JSON integer or a decimal string), kept as
// text so that a malformed or negative value is caught rather than silently parsed.
type Amount string

// UnmarshalJSON accepts a JSON number or string.
func (a *Amount) UnmarshalJSON(data []byte) error {
	*a = Amount(strings.Trim(string(data), `"`))
	return nil
}

// Uint64 parses the amount; a negative, fractional or too large value is an error.
func (a Amount) Uint64() (uint64, error) {
	v, err := strconv.ParseUint(string(a), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", string(a), err)
	}
	return v, nil
}

// WireOperation is one operation of a transaction as the API shows it.
type WireOperation struct {
	Type   string `json:"type"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Amount Amount `json:"amount"`
}

// WireTransaction is a transaction as the API shows it.
type WireTransaction struct {
	ID                   string          `json:"id"`
	ReferenceID          string          `json:"referenceId"`
	Status               string          `json:"status"`
	Operations           []WireOperation `json:"operations"`
	FailedOperationIndex int             `json:"failedOperationIndex"`
	FailureReason        string          `json:"failureReason,omitempty"`
	CreatedAt            int64           `json:"createdAt"`
}

// WireEntry is one wallet entry as the API shows it.
type WireEntry struct {
	WalletID       string `json:"walletId"`
	TransactionID  string `json:"transactionId"`
	OperationIndex int    `json:"operationIndex"`
	Type           string `json:"type"`
	Amount         Amount `json:"amount"`
	BalanceAfter   Amount `json:"balanceAfter"`
	CreatedAt      int64  `json:"createdAt"`
}

// WireWallet is a wallet as the API shows it.
type WireWallet struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Balance   Amount `json:"balance"`
	Held      Amount `json:"held"`
	UpdatedAt int64  `json:"updatedAt"`
}

// transferRequest is the body of a one-transfer transaction.
type transferRequest struct {
	ReferenceID string          `json:"referenceId"`
	Operations  []WireOperation `json:"operations"`
}

// AttemptResult is what one attempt of a transaction learned.
type AttemptResult struct {
	Outcome  Outcome
	Status   int
	Code     string
	TxStatus string
	Err      string
}

// Transact sends one transaction attempt to base and classifies the answer. The same
// referenceId and operations may be sent any number of times.
func (c *Client) Transact(ctx context.Context, base, projectID, referenceID string, operations []WireOperation) AttemptResult {
	resp, err := c.Do(ctx, http.MethodPost, base, "/projects/"+projectID+"/transactions",
		transferRequest{ReferenceID: referenceID, Operations: operations})
	if err != nil {
		return AttemptResult{Outcome: OutcomeUnknown, Status: resp.Status, Err: shortError(err)}
	}
	return classify(resp)
}

// classify maps an answer to a transaction request onto an outcome (see docs/cloudwallet-api.md
// and the brief: 503 Unavailable is certainly not applied, 503 OutcomeUnknown may be).
func classify(resp Response) AttemptResult {
	r := AttemptResult{Status: resp.Status, Code: resp.Code}
	var body struct {
		Status      string           `json:"status"`
		Transaction *WireTransaction `json:"transaction"`
	}
	_ = json.Unmarshal(resp.Body, &body)
	switch {
	case resp.Status == http.StatusCreated:
		r.TxStatus = body.Status
		r.Outcome = OutcomeApplied
		if body.Status != "completed" {
			r.Outcome = OutcomeFailed
		}
	case resp.Status == http.StatusConflict && resp.Code == "DuplicateReferenceId" && body.Transaction != nil:
		r.TxStatus = body.Transaction.Status
		r.Outcome = OutcomeApplied
		if body.Transaction.Status != "completed" {
			r.Outcome = OutcomeFailed
		}
	case resp.Status == http.StatusUnprocessableEntity:
		r.Outcome = OutcomeFailed
		if body.Transaction != nil {
			r.TxStatus = body.Transaction.Status
		}
	case resp.Status == http.StatusServiceUnavailable && (resp.Code == "Unavailable" || resp.Code == "Overloaded"):
		r.Outcome = OutcomeRejected
	case resp.Status >= 500:
		r.Outcome = OutcomeUnknown
	default:
		// 400, 401, 404, 409 ReferenceIdMismatch: this attempt did not apply. The checker
		// flags the unexpected ones.
		r.Outcome = OutcomeRejected
	}
	return r
}

// GetWallet reads one wallet.
func (c *Client) GetWallet(ctx context.Context, base, projectID, walletID string) (WireWallet, Response, error) {
	var w WireWallet
	resp, err := c.Do(ctx, http.MethodGet, base, "/projects/"+projectID+"/wallets/"+walletID, nil)
	if err != nil {
		return w, resp, err
	}
	if resp.Status != http.StatusOK {
		return w, resp, fmt.Errorf("get wallet %s: %d %s", walletID, resp.Status, resp.Code)
	}
	return w, resp, json.Unmarshal(resp.Body, &w)
}

// page is one page of a list.
type page[T any] struct {
	Items   []T  `json:"items"`
	HasMore bool `json:"hasMore"`
}

// listAll walks every page of a list route.
func listAll[T any](ctx context.Context, c *Client, base, path string) ([]T, error) {
	var all []T
	for pageNumber := 1; pageNumber <= listPagesMax; pageNumber++ {
		query := fmt.Sprintf("?page=%d&pageSize=%d&from=0&to=%d", pageNumber, listPageSize, listTimeToMs)
		resp, err := c.Do(ctx, http.MethodGet, base, path+query, nil)
		if err != nil {
			return nil, err
		}
		if resp.Status != http.StatusOK {
			return nil, fmt.Errorf("GET %s page %d: %d %s", path, pageNumber, resp.Status, resp.Code)
		}
		var p page[T]
		if err := json.Unmarshal(resp.Body, &p); err != nil {
			return nil, fmt.Errorf("GET %s page %d: %w", path, pageNumber, err)
		}
		all = append(all, p.Items...)
		if !p.HasMore {
			return all, nil
		}
	}
	return nil, fmt.Errorf("GET %s: more than %d pages", path, listPagesMax)
}

// ListTransactions returns every transaction of a project, oldest first.
func (c *Client) ListTransactions(ctx context.Context, base, projectID string) ([]WireTransaction, error) {
	return listAll[WireTransaction](ctx, c, base, "/projects/"+projectID+"/transactions")
}

// ListEntries returns every entry of a wallet, oldest first.
func (c *Client) ListEntries(ctx context.Context, base, projectID, walletID string) ([]WireEntry, error) {
	return listAll[WireEntry](ctx, c, base, "/projects/"+projectID+"/wallets/"+walletID+"/entries")
}

// Ready reports whether a node answers GET /readyz with 200.
func (c *Client) Ready(ctx context.Context, base string) bool {
	resp, err := c.Do(ctx, http.MethodGet, base, "/readyz", nil)
	return err == nil && resp.Status == http.StatusOK
}

// ClusterView is what GET /cluster tells about Raft leadership. The endpoint is young, so
// the answer is searched rather than decoded: the first object (at the top, or inside a list
// of shards or replicas) with a leaderId or leader field, and its state or raftState.
type ClusterView struct {
	LeaderID string
	State    string
}

// clusterSearchDepthMax bounds the search through a /cluster answer.
const clusterSearchDepthMax = 4

func findClusterView(v any, depth int) (ClusterView, bool) {
	if depth > clusterSearchDepthMax {
		return ClusterView{}, false
	}
	switch x := v.(type) {
	case map[string]any:
		leader, _ := x["leaderId"].(string)
		if leader == "" {
			leader, _ = x["leader"].(string)
		}
		state, _ := x["state"].(string)
		if state == "" {
			state, _ = x["raftState"].(string)
		}
		if leader != "" || state != "" {
			return ClusterView{LeaderID: leader, State: state}, true
		}
		for _, key := range []string{"shards", "replicas", "shard", "raft"} {
			if view, ok := findClusterView(x[key], depth+1); ok {
				return view, true
			}
		}
	case []any:
		for _, item := range x {
			if view, ok := findClusterView(item, depth+1); ok {
				return view, true
			}
		}
	}
	return ClusterView{}, false
}

// errNoEndpoint means the node does not serve the route (404 NotFound).
var errNoEndpoint = errors.New("endpoint not served")

// Cluster reads GET /cluster from a node: the leader it names ("" if none) and its own state.
func (c *Client) Cluster(ctx context.Context, base string) (ClusterView, error) {
	resp, err := c.Do(ctx, http.MethodGet, base, "/cluster", nil)
	if err != nil {
		return ClusterView{}, err
	}
	if resp.Status == http.StatusNotFound {
		return ClusterView{}, errNoEndpoint
	}
	if resp.Status != http.StatusOK {
		return ClusterView{}, fmt.Errorf("GET /cluster: %d %s", resp.Status, resp.Code)
	}
	var v any
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		return ClusterView{}, err
	}
	view, _ := findClusterView(v, 0)
	return view, nil
}

// NodeDigest is what GET /debug/digest answers.
type NodeDigest struct {
	Digest       string `json:"digest"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// Digest reads GET /debug/digest; errNoEndpoint when the node does not serve it.
func (c *Client) Digest(ctx context.Context, base string) (NodeDigest, error) {
	var d NodeDigest
	resp, err := c.Do(ctx, http.MethodGet, base, "/debug/digest", nil)
	if err != nil {
		return d, err
	}
	if resp.Status == http.StatusNotFound {
		return d, errNoEndpoint
	}
	if resp.Status != http.StatusOK {
		return d, fmt.Errorf("GET /debug/digest: %d %s", resp.Status, resp.Code)
	}
	return d, json.Unmarshal(resp.Body, &d)
}

// shortError keeps an error message readable in the history: the URL adds nothing.
func shortError(err error) string {
	var urlErr interface{ Unwrap() error }
	if errors.As(err, &urlErr) {
		if inner := urlErr.Unwrap(); inner != nil {
			err = inner
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	msg := err.Error()
	const maxLength = 120
	if len(msg) > maxLength {
		msg = msg[:maxLength]
	}
	return msg
}
