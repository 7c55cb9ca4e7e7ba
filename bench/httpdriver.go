package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gigaledger/gigaledger/client"
)

// HTTP client limits.
const (
	// requestTimeout bounds one benchmark request end to end; a request that
	// takes longer counts as a transport timeout.
	requestTimeout = 10 * time.Second
	// setupAttemptsMax bounds retries of one setup request on 503 or a
	// transport error (a cluster that just elected a leader).
	setupAttemptsMax = 20
	// setupRetryDelay is the pause between setup attempts.
	setupRetryDelay = 250 * time.Millisecond
	// assetID and assetFractions describe the bench asset.
	assetID        = "bench-usd"
	assetFractions = 100
	// userAgent names the harness in the server's access log.
	userAgent = "gigaledger-bench"
)

// setupRetries rides out a cluster that is still electing leaders. Writes
// whose outcome is unknown are retried too, under the call's Idempotency-Key,
// so a repeated wallet creation still opens one wallet.
var setupRetries = client.RetryPolicy{MaxAttempts: setupAttemptsMax, BackoffMin: setupRetryDelay, BackoffMax: setupRetryDelay}

// httpDriver drives GigaLedger's Cloud Wallet API (docs/cloudwallet-api.md)
// through the Go client, one client per target.
type httpDriver struct {
	httpClient *http.Client
	// clients send the measured requests, one attempt each: a retry would
	// hide the answer the report must count. setupClients retry.
	clients, setupClients []*client.Client
	next                  atomic.Uint64
	projectID             string
	// walletIDs maps wallet indexes to API wallet IDs; written by Setup
	// only, read-only afterwards.
	walletIDs []string
	// accountIDs maps account indexes to GigaWallet foreign IDs (the
	// invoice scenario); written by Setup only.
	accountIDs []string
	// pairs are the GigPay scenarios' payer and payee accounts by index;
	// written by Setup only.
	pairs []gigPayPair
	// placement is where walletIDs live on the cluster's shards (nil when the
	// cluster did not say); written by Setup only.
	placement *WalletPlacement
	// routing counts who answered the measured requests.
	routing *routingCounter
	// system names the system under test in the report: systemGigaLedger, or systemBare for
	// the bare-HTTP ceiling (bench/bare), which serves the same API.
	system string
}

// Placement returns where the ledger scenarios' wallets live, nil when unknown (Run reads it
// after Setup).
func (d *httpDriver) Placement() *WalletPlacement { return d.placement }

// newHTTPDriver returns a driver that spreads requests round-robin over
// targets (base URLs) with connections for clients; with routing
// routingLeader, each target's client sends writes to the leader an answer
// named instead (client.WithLeaderRouting).
func newHTTPDriver(targets []string, token string, clients int, routing string) (*httpDriver, error) {
	transport := &http.Transport{
		Proxy:               nil, // never send loopback load through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        clients * len(targets) * 2,
		MaxIdleConnsPerHost: clients * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	d := &httpDriver{httpClient: &http.Client{Transport: transport, Timeout: requestTimeout}, routing: &routingCounter{mode: routing},
		system: systemGigaLedger}
	for _, target := range targets {
		common := []client.Option{client.WithHTTPClient(d.httpClient), client.WithToken(token), client.WithUserAgent(userAgent)}
		if routing == routingLeader {
			common = append(common, client.WithLeaderRouting())
		}
		measured, err := client.New(target, append(common, client.WithRetryPolicy(client.NoRetries))...)
		if err != nil {
			return nil, err
		}
		setup, err := client.New(target, append(common, client.WithRetryPolicy(setupRetries))...)
		if err != nil {
			return nil, err
		}
		d.clients, d.setupClients = append(d.clients, measured), append(d.setupClients, setup)
	}
	return d, nil
}

// System implements Driver.
func (d *httpDriver) System() string { return d.system }

// Close implements Driver.
func (d *httpDriver) Close() error {
	d.httpClient.CloseIdleConnections()
	return nil
}

// pick returns the next target's client of clients, round-robin.
func (d *httpDriver) pick(clients []*client.Client) *client.Client {
	return clients[d.next.Add(1)%uint64(len(clients))]
}

// Do implements Driver.
func (d *httpDriver) Do(ctx context.Context, request *Request) Outcome {
	// The answer's status and code, as the wire had them: a 409
	// DuplicateReferenceId the client turns into the stored transaction is
	// still a harness error here (every request has a fresh reference).
	var status int
	var code string
	ctx = client.WithAttemptHook(ctx, func(attempt client.Attempt) {
		status, code = attempt.StatusCode, attempt.Code
		d.routing.observe(attempt)
	})
	api := d.pick(d.clients)
	var err error
	switch request.Kind {
	case RequestTransaction:
		begin := time.Now()
		_, err = api.CreateTransaction(ctx, d.projectID, d.transactionRequest(request))
		if request.Span != "" {
			// Single- and cross-shard transfers, each latency apart (a phase per span).
			outcome := callOutcome(status, code, err)
			outcome.Phases = []Phase{{Name: request.Span, Latency: time.Since(begin)}}
			return outcome
		}
	case RequestWalletBalance:
		_, err = api.GetWallet(ctx, d.projectID, d.walletIDs[request.Wallet])
	case RequestWalletEntries:
		_, err = api.ListEntries(ctx, d.projectID, d.walletIDs[request.Wallet], client.TimePageRequest{
			PageRequest: client.PageRequest{Page: 1, PageSize: entriesPageSize},
			ToMs:        time.Now().Add(time.Hour).UnixMilli(),
		})
	case RequestInvoice:
		return d.invoice(ctx, api, request, func() (int, string) { return status, code })
	case RequestToken:
		return d.token(ctx, api, request, func() (int, string) { return status, code })
	case RequestTokenBatch:
		return d.tokenBatch(ctx, api, request, func() (int, string) { return status, code })
	case RequestTransactionBatch:
		return d.transactionBatch(ctx, api, request, func() (int, string) { return status, code })
	case RequestGigPayDeposit:
		return d.deposit(ctx, request)
	default:
		return Outcome{Class: OutcomeError, Kind: "bad request kind"}
	}
	return callOutcome(status, code, err)
}

// invoice creates an invoice and reads it back (the admin view) through api,
// on the same node: one request of the report, with each call's latency as a
// phase. lastAnswer returns the status and code of the call just made. A
// failed call names itself in the outcome ("create 404 not-found"); an answer
// whose total is not the exact sum of the items, or a read that does not
// show the created invoice, is an error.
func (d *httpDriver) invoice(ctx context.Context, api *client.Client, request *Request, lastAnswer func() (int, string)) Outcome {
	foreignID := d.accountIDs[request.Wallet]
	items := make([]client.InvoiceItem, len(request.Items))
	var totalKoinu int64 // ≤ 3 items × 5 × 10^10 koinu: far inside int64
	for index, item := range request.Items {
		items[index] = client.InvoiceItem{Type: "item", Name: "bench item " + strconv.Itoa(index),
			Value: client.DogeAmountFromKoinu(item.ValueKoinu), Quantity: int64(item.Quantity)}
		totalKoinu += item.ValueKoinu * int64(item.Quantity)
	}
	begin := time.Now()
	created, err := api.CreateInvoice(ctx, foreignID, client.InvoiceRequest{Items: items})
	phases := []Phase{{Name: "create", Latency: time.Since(begin)}}
	status, code := lastAnswer()
	if outcome := callOutcome(status, code, err); outcome.Class != OutcomeOK {
		outcome.Kind, outcome.Phases = "create "+outcome.Kind, phases
		return outcome
	}
	if created.Total != client.DogeAmountFromKoinu(totalKoinu) {
		return Outcome{Class: OutcomeError, Kind: "create wrong total", Phases: phases}
	}
	begin = time.Now()
	read, err := api.GetInvoice(ctx, foreignID, created.ID)
	phases = append(phases, Phase{Name: "read", Latency: time.Since(begin)})
	status, code = lastAnswer()
	outcome := callOutcome(status, code, err)
	outcome.Phases = phases
	switch {
	case outcome.Class != OutcomeOK:
		outcome.Kind = "read " + outcome.Kind
	case read.ID != created.ID || read.Total != created.Total:
		return Outcome{Class: OutcomeError, Kind: "read other invoice", Phases: phases}
	}
	return outcome
}

// callOutcome classifies a call by the last answer's status and code, or by
// its transport error when no answer came.
func callOutcome(status int, code string, err error) Outcome {
	var transportErr *client.TransportError
	switch {
	case errors.As(err, &transportErr):
		return transportOutcome(err)
	case status == 0:
		// Refused before sending: the request could not be encoded.
		return Outcome{Class: OutcomeError, Kind: "client error"}
	case err != nil && status < 300:
		return Outcome{Class: OutcomeError, Kind: strconv.Itoa(status) + " undecodable"}
	}
	return httpOutcome(status, code)
}

// httpOutcome classifies an answer by status and error code ("" when the
// answer had no error envelope).
func httpOutcome(status int, code string) Outcome {
	if status >= 200 && status < 300 {
		return Outcome{Class: OutcomeOK, Kind: strconv.Itoa(status)}
	}
	if code == "" {
		code = "?"
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

// transactionRequest translates a generated request into the API's terms.
func (d *httpDriver) transactionRequest(request *Request) client.TransactionRequest {
	operations := make([]client.Operation, len(request.Operations))
	for index, operation := range request.Operations {
		converted := client.Operation{Type: client.OperationType(operation.Type.String()), Amount: client.AmountFromUint64(uint64(operation.Amount))}
		if operation.Type != OperationIssue {
			converted.From = d.walletIDs[operation.FromWallet]
		}
		if operation.Type != OperationRedeem {
			converted.To = d.walletIDs[operation.ToWallet]
		}
		operations[index] = converted
	}
	return client.TransactionRequest{ReferenceID: request.ReferenceID, Operations: operations}
}

// Setup implements Driver: one project, one asset, and per wallet index a
// customer with one wallet, created by plan.Clients concurrent workers; for
// the invoice scenario, one GigaWallet account per index instead; for the
// GigPay scenarios, one payer and one payee GigPay account per index.
func (d *httpDriver) Setup(ctx context.Context, plan SetupPlan) error {
	if plan.Scenario == ScenarioInvoice {
		return d.setupAccounts(ctx, plan)
	}
	if IsGigPay(plan.Scenario) {
		return d.setupGigPay(ctx, plan)
	}
	d.projectID = "bench-" + plan.RunID
	project := client.CreateProjectRequest{ID: d.projectID, Name: "GigaLedger bench " + plan.RunID}
	if _, err := d.pick(d.setupClients).CreateProject(ctx, project); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	asset := client.CreateAssetRequest{ID: assetID, Name: "Bench dollar", Code: "BUSD", Fractions: assetFractions}
	if _, err := d.pick(d.setupClients).CreateAsset(ctx, d.projectID, asset); err != nil {
		return fmt.Errorf("create asset: %w", err)
	}
	d.walletIDs = make([]string, plan.Wallets)
	err := forEachParallel(ctx, plan.Wallets, plan.Clients, func(ctx context.Context, index int) error {
		customerID := "c-" + strconv.Itoa(index)
		name := "Bench customer " + strconv.Itoa(index)
		if _, err := d.pick(d.setupClients).UpsertCustomer(ctx, d.projectID, customerID, client.CustomerFields{Name: &name}); err != nil {
			return fmt.Errorf("create customer %s: %w", customerID, err)
		}
		wallet, err := d.pick(d.setupClients).CreateWallet(ctx, d.projectID, client.CreateWalletRequest{CustomerID: customerID, AssetID: assetID, Name: "bench"})
		if err != nil {
			return fmt.Errorf("create wallet for %s: %w", customerID, err)
		}
		if wallet.ID == "" {
			return fmt.Errorf("create wallet for %s: answer has no id", customerID)
		}
		d.walletIDs[index] = wallet.ID
		return nil
	})
	if err != nil {
		return err
	}
	d.placement, err = d.discoverPlacement(ctx)
	return err
}

// setupAccounts upserts plan.Wallets GigaWallet accounts, foreign IDs
// b-<run id>-<index>, so runs never share an account.
func (d *httpDriver) setupAccounts(ctx context.Context, plan SetupPlan) error {
	d.accountIDs = make([]string, plan.Wallets)
	return forEachParallel(ctx, plan.Wallets, plan.Clients, func(ctx context.Context, index int) error {
		foreignID := "b-" + plan.RunID + "-" + strconv.Itoa(index)
		account, err := d.pick(d.setupClients).UpsertAccount(ctx, foreignID, client.AccountSettings{})
		if err != nil {
			return fmt.Errorf("upsert GigaWallet account %s (is the GigaWallet API on? a cluster needs --wallet-seed-file): %w", foreignID, err)
		}
		if account.ForeignID != foreignID {
			return fmt.Errorf("upsert GigaWallet account %s: answer names %q", foreignID, account.ForeignID)
		}
		d.accountIDs[index] = foreignID
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

// transactionBatch runs request.Batch in one batch request. Every transaction completed: ok,
// Transfers the batch's size. Some did not: the outcome names the first failure's code ("200
// items InsufficientFunds"), a business outcome when it is the ledger's no, else an error;
// Transfers counts the completed ones all the same. A result for another reference is an error.
func (d *httpDriver) transactionBatch(ctx context.Context, api *client.Client, request *Request, lastAnswer func() (int, string)) Outcome {
	batch := make([]client.TransactionRequest, len(request.Batch))
	for index := range request.Batch {
		batch[index] = d.transactionRequest(&request.Batch[index])
	}
	results, err := api.CreateTransactionBatch(ctx, d.projectID, batch)
	status, code := lastAnswer()
	outcome := callOutcome(status, code, err)
	if outcome.Class != OutcomeOK {
		return outcome
	}
	failedCode := ""
	for index, result := range results {
		var apiErr *client.Error
		switch {
		case result.Err == nil && result.Transaction != nil:
			if result.Transaction.ReferenceID != batch[index].ReferenceID {
				return Outcome{Class: OutcomeError, Kind: "batch other transaction", Transfers: outcome.Transfers}
			}
			outcome.Transfers++
		case errors.As(result.Err, &apiErr):
			if failedCode == "" {
				failedCode = apiErr.Code
			}
		default:
			return Outcome{Class: OutcomeError, Kind: "batch item without answer", Transfers: outcome.Transfers}
		}
	}
	if failedCode != "" {
		outcome.Class, outcome.Kind = OutcomeError, outcome.Kind+" items "+failedCode
		if failedCode == client.CodeInsufficientFunds {
			outcome.Class = OutcomeBusiness
		}
	}
	return outcome
}
