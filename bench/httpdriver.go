package bench

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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HTTP client limits.
const (
	// requestTimeout bounds one benchmark request end to end; a request that
	// takes longer counts as a transport timeout.
	requestTimeout = 10 * time.Second
	// responseBytesMax bounds how much of a response body the harness reads;
	// the API's own request limit is 1 MiB, answers are far smaller.
	responseBytesMax = 1 << 20
	// setupAttemptsMax bounds retries of one setup request on 503 or a
	// transport error (a cluster that just elected a leader).
	setupAttemptsMax = 20
	// setupRetryDelay is the pause between setup attempts.
	setupRetryDelay = 250 * time.Millisecond
	// assetID and assetFractions describe the bench asset.
	assetID        = "bench-usd"
	assetFractions = 100
)

// httpDriver drives GigaLedger's Cloud Wallet API (docs/cloudwallet-api.md).
type httpDriver struct {
	targets   []string
	token     string
	client    *http.Client
	next      atomic.Uint64
	projectID string
	// walletIDs maps wallet indexes to API wallet IDs; written by Setup
	// only, read-only afterwards.
	walletIDs []string
}

// newHTTPDriver returns a driver that spreads requests round-robin over
// targets (base URLs without trailing slash) with connections for clients.
func newHTTPDriver(targets []string, token string, clients int) *httpDriver {
	transport := &http.Transport{
		Proxy:               nil, // never send loopback load through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        clients * len(targets) * 2,
		MaxIdleConnsPerHost: clients * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	trimmed := make([]string, len(targets))
	for index, target := range targets {
		trimmed[index] = strings.TrimRight(target, "/")
	}
	return &httpDriver{
		targets: trimmed,
		token:   token,
		client:  &http.Client{Transport: transport, Timeout: requestTimeout},
	}
}

// System implements Driver.
func (d *httpDriver) System() string { return "gigaledger" }

// Close implements Driver.
func (d *httpDriver) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// apiError is the error envelope of every API answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// send makes one request and returns the status and (bounded) body.
func (d *httpDriver) send(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	target := d.targets[d.next.Add(1)%uint64(len(d.targets))]
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	request, err := http.NewRequestWithContext(ctx, method, target+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil || method != http.MethodGet {
		// The API refuses a POST, PUT or PATCH without it (415), body or not.
		request.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		request.Header.Set("Authorization", "Bearer "+d.token)
	}
	response, err := d.client.Do(request)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(response.Body, responseBytesMax))
	if err != nil {
		return response.StatusCode, nil, err
	}
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, response.Body)
	return response.StatusCode, answer, nil
}

// Do implements Driver.
func (d *httpDriver) Do(ctx context.Context, request *Request) Outcome {
	var status int
	var body []byte
	var err error
	switch request.Kind {
	case RequestTransaction:
		status, body, err = d.send(ctx, http.MethodPost, "/projects/"+d.projectID+"/transactions", d.transactionBody(request))
	case RequestWalletBalance:
		status, body, err = d.send(ctx, http.MethodGet, "/projects/"+d.projectID+"/wallets/"+d.walletIDs[request.Wallet], nil)
	case RequestWalletEntries:
		path := "/projects/" + d.projectID + "/wallets/" + d.walletIDs[request.Wallet] +
			"/entries?page=1&pageSize=" + strconv.Itoa(entriesPageSize) +
			"&from=0&to=" + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
		status, body, err = d.send(ctx, http.MethodGet, path, nil)
	default:
		return Outcome{Class: OutcomeError, Kind: "bad request kind"}
	}
	if err != nil {
		return transportOutcome(err)
	}
	return httpOutcome(status, body)
}

// httpOutcome classifies an answer by status and error code.
func httpOutcome(status int, body []byte) Outcome {
	if status >= 200 && status < 300 {
		return Outcome{Class: OutcomeOK, Kind: strconv.Itoa(status)}
	}
	var envelope apiError
	code := "?"
	if json.Unmarshal(body, &envelope) == nil && envelope.Error.Code != "" {
		code = envelope.Error.Code
	}
	class := OutcomeError
	if status == http.StatusUnprocessableEntity {
		class = OutcomeBusiness
	}
	return Outcome{Class: class, Kind: strconv.Itoa(status) + " " + code}
}

// transportOutcome maps a transport error to a few stable labels.
func transportOutcome(err error) Outcome {
	kind := "transport other"
	var netError net.Error
	switch {
	case errors.Is(err, context.Canceled):
		kind = "transport canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netError) && netError.Timeout():
		kind = "transport timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "transport refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "transport reset"
	}
	return Outcome{Class: OutcomeTransport, Kind: kind}
}

// transactionBody encodes a transaction request by hand: it is the hot path
// of the harness and must not cost the 2-core machine more than the server.
func (d *httpDriver) transactionBody(request *Request) []byte {
	body := make([]byte, 0, 64+len(request.Operations)*96)
	body = append(body, `{"referenceId":`...)
	body = strconv.AppendQuote(body, request.ReferenceID)
	body = append(body, `,"operations":[`...)
	for index, operation := range request.Operations {
		if index > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"type":"`...)
		body = append(body, operation.Type.String()...)
		body = append(body, '"')
		if operation.Type != OperationIssue {
			body = append(body, `,"from":`...)
			body = strconv.AppendQuote(body, d.walletIDs[operation.FromWallet])
		}
		if operation.Type != OperationRedeem {
			body = append(body, `,"to":`...)
			body = strconv.AppendQuote(body, d.walletIDs[operation.ToWallet])
		}
		body = append(body, `,"amount":`...)
		body = strconv.AppendInt(body, operation.Amount, 10)
		body = append(body, '}')
	}
	return append(body, "]}"...)
}

// setupCall makes one setup request, retrying 503s and transport errors a
// bounded number of times, and decodes the answer into out when it has the
// wanted status.
func (d *httpDriver) setupCall(ctx context.Context, method, path string, in, out any, wantStatus ...int) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var lastError error
	for attempt := 0; attempt < setupAttemptsMax; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(setupRetryDelay):
			}
		}
		status, answer, err := d.send(ctx, method, path, body)
		if err != nil {
			lastError = fmt.Errorf("%s %s: %w", method, path, err)
			continue
		}
		for _, want := range wantStatus {
			if status == want {
				if out == nil {
					return nil
				}
				if err := json.Unmarshal(answer, out); err != nil {
					return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
				}
				return nil
			}
		}
		lastError = fmt.Errorf("%s %s: status %d: %s", method, path, status, bytes.TrimSpace(answer))
		if status != http.StatusServiceUnavailable {
			return lastError
		}
	}
	return lastError
}

// Setup implements Driver: one project, one asset, and per wallet index a
// customer with one wallet, created by plan.Clients concurrent workers.
func (d *httpDriver) Setup(ctx context.Context, plan SetupPlan) error {
	d.projectID = "bench-" + plan.RunID
	project := map[string]any{"id": d.projectID, "name": "GigaLedger bench " + plan.RunID}
	if err := d.setupCall(ctx, http.MethodPost, "/projects", project, nil, http.StatusCreated); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	asset := map[string]any{"id": assetID, "name": "Bench dollar", "code": "BUSD", "fractions": assetFractions}
	if err := d.setupCall(ctx, http.MethodPost, "/projects/"+d.projectID+"/assets", asset, nil, http.StatusCreated); err != nil {
		return fmt.Errorf("create asset: %w", err)
	}
	d.walletIDs = make([]string, plan.Wallets)
	return forEachParallel(ctx, plan.Wallets, plan.Clients, func(ctx context.Context, index int) error {
		customerID := "c-" + strconv.Itoa(index)
		customer := map[string]any{"id": customerID, "name": "Bench customer " + strconv.Itoa(index)}
		if err := d.setupCall(ctx, http.MethodPost, "/projects/"+d.projectID+"/customers", customer, nil, http.StatusOK, http.StatusCreated); err != nil {
			return fmt.Errorf("create customer %s: %w", customerID, err)
		}
		var wallet struct {
			ID string `json:"id"`
		}
		request := map[string]any{"customerId": customerID, "assetId": assetID, "name": "bench"}
		if err := d.setupCall(ctx, http.MethodPost, "/projects/"+d.projectID+"/wallets", request, &wallet, http.StatusCreated); err != nil {
			return fmt.Errorf("create wallet for %s: %w", customerID, err)
		}
		if wallet.ID == "" {
			return fmt.Errorf("create wallet for %s: answer has no id", customerID)
		}
		d.walletIDs[index] = wallet.ID
		return nil
	})
}

// forEachParallel calls do for 0..count-1 with at most workers goroutines
// and returns the first error (the rest are cancelled).
func forEachParallel(ctx context.Context, count, workers int, do func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var firstError error
	var once sync.Once
	var group sync.WaitGroup
	for range min(workers, count) {
		group.Go(func() {
			for {
				index := int(next.Add(1) - 1)
				if index >= count || ctx.Err() != nil {
					return
				}
				if err := do(ctx, index); err != nil {
					once.Do(func() { firstError = err; cancel() })
					return
				}
			}
		})
	}
	group.Wait()
	if firstError == nil {
		return ctx.Err()
	}
	return firstError
}
