package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

// Client limits.
const (
	// listPageSize is the page size used to walk transactions and entries (the API's maximum).
	listPageSize = 1000
	// listTimeToMs is the upper end of the time range used to list everything.
	listTimeToMs = int64(1) << 52
	// userAgent names the suite in the nodes' access logs.
	userAgent = "gigaledger-faults"
)

// Client speaks the Cloud Wallet API of one cluster's admin listeners through the client
// package, one client.Client per node over one shared transport. Every call makes exactly one
// attempt (client.NoRetries): the workload decides every resend itself and records each
// attempt in the history. It is safe for concurrent use.
type Client struct {
	http  *http.Client
	token string

	mu      sync.Mutex
	apis    map[string]*client.Client // by admin base URL
	patient map[string]*client.Client // the same, retrying reads (the final state)
}

// NewClient returns a client whose every request ends after requestTimeout.
func NewClient(token string, requestTimeout time.Duration, connectionsPerHost int) *Client {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: requestTimeout}).DialContext,
		MaxIdleConns:        3 * connectionsPerHost,
		MaxIdleConnsPerHost: connectionsPerHost,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: transport, Timeout: requestTimeout}, token: token,
		apis: map[string]*client.Client{}, patient: map[string]*client.Client{}}
}

// CloseIdle drops idle connections (after a node restarts, so the next request dials anew).
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// API returns the API client of the node at base.
func (c *Client) API(base string) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if api, ok := c.apis[base]; ok {
		return api, nil
	}
	api, err := client.New(base, client.WithHTTPClient(c.http), client.WithToken(c.token),
		client.WithUserAgent(userAgent), client.WithRetryPolicy(client.NoRetries))
	if err != nil {
		return nil, err
	}
	c.apis[base] = api
	return api, nil
}

// finalReadRetries is how the final state is read: after healing, a read may still meet an
// election (a loaded machine delays heartbeats), and a read is safe to repeat; the caller's
// context (finalReadMax) bounds the whole.
var finalReadRetries = client.RetryPolicy{MaxAttempts: 30, BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second}

// patientAPI returns the API client of the node at base that retries reads (finalReadRetries).
// The workload never uses it: it records every attempt itself.
func (c *Client) patientAPI(base string) (*client.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if api, ok := c.patient[base]; ok {
		return api, nil
	}
	api, err := client.New(base, client.WithHTTPClient(c.http), client.WithToken(c.token),
		client.WithUserAgent(userAgent), client.WithRetryPolicy(finalReadRetries))
	if err != nil {
		return nil, err
	}
	c.patient[base] = api
	return api, nil
}

// ReadWallet reads one wallet for the final state, retrying as patientAPI does.
func (c *Client) ReadWallet(ctx context.Context, base, projectID, walletID string) (*client.Wallet, error) {
	api, err := c.patientAPI(base)
	if err != nil {
		return nil, err
	}
	return api.GetWallet(ctx, projectID, walletID)
}

// AttemptResult is what one attempt of a transaction learned.
type AttemptResult struct {
	Outcome  Outcome
	Status   int
	Code     string
	TxStatus string
	Err      string
	// TxID and TxCreatedAt are the transaction the answer carried (201, 422, 409), if any.
	TxID        string
	TxCreatedAt int64
}

// Transact sends one transaction attempt to base and classifies the answer. The same
// referenceId and operations may be sent any number of times.
func (c *Client) Transact(ctx context.Context, base, projectID, referenceID string, operations []client.Operation) AttemptResult {
	api, err := c.API(base)
	if err != nil {
		return AttemptResult{Outcome: OutcomeRejected, Err: err.Error()}
	}
	var attempt client.Attempt
	ctx = client.WithAttemptHook(ctx, func(a client.Attempt) { attempt = a })
	tx, err := api.CreateTransaction(ctx, projectID, client.TransactionRequest{ReferenceID: referenceID, Operations: operations})
	return classify(attempt, tx, err)
}

// classify maps one attempt of a transaction onto an outcome by the answer as the wire had it
// (docs/cloudwallet-api.md: 503 Unavailable is certainly not applied, 503 OutcomeUnknown may
// be). tx is the transaction the answer carried (201, 422, 409 DuplicateReferenceId), err the
// call's error.
func classify(attempt client.Attempt, tx *client.Transaction, err error) AttemptResult {
	r := AttemptResult{Status: attempt.StatusCode, Code: attempt.Code}
	var txStatus string
	if tx != nil {
		txStatus = string(tx.Status)
		r.TxID, r.TxCreatedAt = tx.ID, tx.CreatedAt
	}
	switch {
	case attempt.Err != nil:
		// No whole answer: refused, reset or timed out. A refused connection counts as unknown
		// too: the checker expects every certainly-not-applied answer to be a 503.
		r.Outcome, r.Err = OutcomeUnknown, shortError(attempt.Err)
	case attempt.Number == 0:
		// Never sent: the client refused to encode the request.
		r.Outcome, r.Err = OutcomeRejected, shortError(err)
	case r.Status == http.StatusCreated,
		r.Status == http.StatusConflict && r.Code == client.CodeDuplicateReferenceID && tx != nil:
		r.TxStatus = txStatus
		r.Outcome = OutcomeApplied
		if txStatus != string(client.TransactionCompleted) {
			r.Outcome = OutcomeFailed
		}
	case r.Status == http.StatusUnprocessableEntity:
		r.Outcome, r.TxStatus = OutcomeFailed, txStatus
	case r.Status == http.StatusServiceUnavailable && (r.Code == client.CodeUnavailable || r.Code == client.CodeOverloaded):
		r.Outcome = OutcomeRejected
	case r.Status >= 500:
		r.Outcome = OutcomeUnknown
	default:
		// 400, 401, 404, 409 ReferenceIdMismatch: this attempt did not apply. The checker
		// flags the unexpected ones.
		r.Outcome = OutcomeRejected
	}
	return r
}

// GetWallet reads one wallet.
func (c *Client) GetWallet(ctx context.Context, base, projectID, walletID string) (*client.Wallet, error) {
	api, err := c.API(base)
	if err != nil {
		return nil, err
	}
	return api.GetWallet(ctx, projectID, walletID)
}

// GetAsset reads one asset (its supply summed over the shards).
func (c *Client) GetAsset(ctx context.Context, base, projectID, assetID string) (*client.Asset, error) {
	api, err := c.API(base)
	if err != nil {
		return nil, err
	}
	return api.GetAsset(ctx, projectID, assetID)
}

// ReadAsset reads one asset for the final state, retrying as patientAPI does.
func (c *Client) ReadAsset(ctx context.Context, base, projectID, assetID string) (*client.Asset, error) {
	api, err := c.patientAPI(base)
	if err != nil {
		return nil, err
	}
	return api.GetAsset(ctx, projectID, assetID)
}

// EntriesPage reads one page (listPageSize) of a wallet's entries created at or after fromMs.
func (c *Client) EntriesPage(ctx context.Context, base, projectID, walletID string, fromMs int64, page int) (*client.Page[client.Entry], error) {
	api, err := c.API(base)
	if err != nil {
		return nil, err
	}
	return api.ListEntries(ctx, projectID, walletID, client.TimePageRequest{
		PageRequest: client.PageRequest{Page: page, PageSize: listPageSize}, FromMs: fromMs, ToMs: listTimeToMs})
}

// collect gathers every item of a walk.
func collect[T any](items iter.Seq2[T, error]) ([]T, error) {
	var all []T
	for item, err := range items {
		if err != nil {
			return nil, err
		}
		all = append(all, item)
	}
	return all, nil
}

// everything is the list request that walks a whole list.
var everything = client.TimePageRequest{PageRequest: client.PageRequest{PageSize: listPageSize}, ToMs: listTimeToMs}

// ListTransactions returns every transaction of a project, oldest first (final state: retries).
func (c *Client) ListTransactions(ctx context.Context, base, projectID string) ([]client.Transaction, error) {
	api, err := c.patientAPI(base)
	if err != nil {
		return nil, err
	}
	return collect(api.AllTransactions(ctx, projectID, everything))
}

// ListEntries returns every entry of a wallet, oldest first (final state: retries).
func (c *Client) ListEntries(ctx context.Context, base, projectID, walletID string) ([]client.Entry, error) {
	api, err := c.patientAPI(base)
	if err != nil {
		return nil, err
	}
	return collect(api.AllEntries(ctx, projectID, walletID, everything))
}

// Ready reports whether a node answers GET /readyz with 200.
func (c *Client) Ready(ctx context.Context, base string) error {
	api, err := c.API(base)
	if err != nil {
		return err
	}
	return api.Ready(ctx)
}

// ClusterView is what GET /cluster tells about Raft leadership. The endpoint is young, so
// the answer is searched rather than decoded: the first object (at the top, or inside a list
// of shards or replicas) with a leaderId or leader field, and its state or raftState.
type ClusterView struct {
	LeaderID string
	State    string
	// ShardLeaders lists the leader this node names for each shard of "shards", when there is
	// more than one.
	ShardLeaders []string
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
	api, err := c.API(base)
	if err != nil {
		return ClusterView{}, err
	}
	status, err := api.ClusterStatus(ctx)
	if errors.Is(err, client.ErrNotFound) {
		return ClusterView{}, errNoEndpoint
	}
	if err != nil {
		return ClusterView{}, err
	}
	var v any
	if err := json.Unmarshal(status, &v); err != nil {
		return ClusterView{}, err
	}
	view, _ := findClusterView(v, 0)
	if top, ok := v.(map[string]any); ok {
		if shards, ok := top["shards"].([]any); ok && len(shards) > 1 {
			for _, shard := range shards {
				if m, ok := shard.(map[string]any); ok {
					if leader, _ := m["leaderId"].(string); leader != "" {
						view.ShardLeaders = append(view.ShardLeaders, leader)
					}
				}
			}
		}
	}
	return view, nil
}

// Digest reads GET /debug/digest; errNoEndpoint when the node does not serve it.
func (c *Client) Digest(ctx context.Context, base string) (client.StateDigest, error) {
	api, err := c.API(base)
	if err != nil {
		return client.StateDigest{}, err
	}
	digest, err := api.StateDigest(ctx)
	if errors.Is(err, client.ErrNotFound) {
		return client.StateDigest{}, errNoEndpoint
	}
	if err != nil {
		return client.StateDigest{}, err
	}
	return *digest, nil
}

// statusAndCode returns the status and error code of an answer that was an error; 0 and ""
// when no answer came.
func statusAndCode(err error) (int, string) {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode, apiErr.Code
	}
	return 0, ""
}

// shortErrorMaxLength bounds an error message in the history.
const shortErrorMaxLength = 120

// shortError keeps an error message readable in the history: the URL adds nothing.
func shortError(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	msg := err.Error()
	if len(msg) > shortErrorMaxLength {
		msg = msg[:shortErrorMaxLength]
	}
	return msg
}

// TransactionEvents counts, per transaction of the project, the LEDGER_TX_* events the
// cluster's outboxes hold, read page by page through GET /events (final state: retries). lost
// is how many events retention dropped before they could be read (their transactions cannot be
// checked).
func (c *Client) TransactionEvents(ctx context.Context, base, projectID string) (counts map[string]int, lost uint64, err error) {
	api, err := c.patientAPI(base)
	if err != nil {
		return nil, 0, err
	}
	counts = map[string]int{}
	request := client.EventsRequest{Limit: 1000, Types: []string{"LEDGER_TX_COMPLETED", "LEDGER_TX_FAILED"}}
	for {
		page, err := api.ListEvents(ctx, request)
		if err != nil {
			return nil, 0, err
		}
		for _, gap := range page.Gaps {
			lost += gap.To - gap.From + 1
		}
		for _, ev := range page.Items {
			var tx struct {
				ID        string `json:"id"`
				ProjectID string `json:"projectId"`
			}
			if err := json.Unmarshal(ev.Message, &tx); err != nil || tx.ID == "" {
				return nil, 0, fmt.Errorf("event %s: message %s is not a transaction", ev.EventID, ev.Message)
			}
			if tx.ProjectID == projectID {
				counts[tx.ID]++
			}
		}
		if !page.More {
			return counts, lost, nil
		}
		request.After = page.Cursor
	}
}

// ShardLayout is one shard's membership as GET /cluster on its leader shows it: the leader's
// own raft configuration.
type ShardLayout struct {
	ID        int      `json:"id"`
	Replicas  []string `json:"replicas"`
	Nonvoters []string `json:"nonvoters"`
	LeaderID  string   `json:"leaderId"`
	Hosted    bool     `json:"hosted"`
}

// Voters are the replicas that vote.
func (s ShardLayout) Voters() []string {
	var voters []string
	for _, id := range s.Replicas {
		if !slices.Contains(s.Nonvoters, id) {
			voters = append(voters, id)
		}
	}
	return voters
}

// clusterLayout is the part of GET /cluster the move nemesis reads.
type clusterLayout struct {
	NodeID string        `json:"nodeId"`
	Shards []ShardLayout `json:"shards"`
}

// Layout reads GET /cluster from the node at base and returns the shards it leads (their
// configuration as raft holds it there: the truth about membership).
func (c *Client) Layout(ctx context.Context, base string) (map[int]ShardLayout, error) {
	api, err := c.API(base)
	if err != nil {
		return nil, err
	}
	status, err := api.ClusterStatus(ctx)
	if err != nil {
		return nil, err
	}
	var view clusterLayout
	if err := json.Unmarshal(status, &view); err != nil {
		return nil, fmt.Errorf("GET /cluster: %w", err)
	}
	led := map[int]ShardLayout{}
	for _, s := range view.Shards {
		if s.Hosted && s.LeaderID == view.NodeID {
			led[s.ID] = s
		}
	}
	return led, nil
}

// MoveReplica asks the node at base to move shardID's replica from one node to another (POST
// /cluster/move-replica), waiting up to timeout: the status code (0 when no answer came) and
// the answer's body.
func (c *Client) MoveReplica(ctx context.Context, base string, shardID int, from, to string, timeout time.Duration) (int, string, error) {
	body, err := json.Marshal(map[string]any{"shard": shardID, "fromNodeId": from, "toNodeId": to})
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/cluster/move-replica", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", userAgent)
	// Its own client: the shared one ends every request after the workload's timeout, and a
	// move waits for a catch-up.
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, strings.TrimSpace(string(answer)), err
}
