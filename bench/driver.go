package bench

import (
	"context"
	"time"
)

// OutcomeClass groups outcomes for the report.
type OutcomeClass int

// Outcome classes; values start at 1 so the zero value is invalid.
const (
	// OutcomeOK is a completed request (2xx, committed database transaction).
	OutcomeOK OutcomeClass = iota + 1
	// OutcomeBusiness is an expected business rejection such as
	// 422 InsufficientFunds: the system worked, the ledger said no.
	OutcomeBusiness
	// OutcomeError is an answer that should not happen under a correct
	// harness: 4xx other than business rejections, 5xx, database errors.
	OutcomeError
	// OutcomeTransport is a request that got no answer: refused, reset,
	// timed out.
	OutcomeTransport
)

// String returns the class name used in the report.
func (c OutcomeClass) String() string {
	switch c {
	case OutcomeOK:
		return "ok"
	case OutcomeBusiness:
		return "business"
	case OutcomeError:
		return "error"
	case OutcomeTransport:
		return "transport"
	}
	return "unknown"
}

// Outcome is the result of one request. Kind is a short, low-cardinality
// label such as "201", "422 InsufficientFunds", "transport timeout" or
// "pg 23514"; the report counts requests by it.
type Outcome struct {
	Class OutcomeClass
	Kind  string
	// Retries counts database-level retries (serialization failure,
	// deadlock) made inside this request; they are reported, never hidden.
	Retries int
	// RetryKind labels the last retried error ("pg 40P01").
	RetryKind string
	// Phases are the latencies of the calls a request is made of, when it is
	// more than one (an invoice's create and read), for the report.
	Phases []Phase
	// Tokens counts the GigPay payment tokens the request created (and, in
	// the token scenario, claimed): 1 for a token request that succeeded, the
	// created items of a batch.
	Tokens int
	// Transfers counts the transactions of a batch request that completed
	// (RequestTransactionBatch); 0 for every other request.
	Transfers int
}

// Phase is one call of a request and its latency.
type Phase struct {
	Name    string
	Latency time.Duration
}

// SetupPlan says what the setup phase creates.
type SetupPlan struct {
	// RunID makes the project (and reference IDs) unique per run.
	RunID string
	// Scenario selects what setup creates: for the invoice scenario, Wallets
	// GigaWallet accounts instead of the project, asset and wallets; for the
	// GigPay scenarios, Wallets pairs of GigPay accounts (payer, payee).
	Scenario string
	Wallets  int
	// Clients bounds the concurrency of setup requests.
	Clients int
}

// Driver runs requests against one system under test.
//
// Setup runs once before the measured phase and creates the project, the
// asset, and Wallets customers with one wallet each (funding happens through
// Do with FundingRequests, so both systems fund through their normal path);
// for the invoice scenario, Wallets GigaWallet accounts.
// Do is called concurrently by all clients after Setup returned; it never
// panics on a failed request but reports it as an Outcome. Close releases
// connections.
type Driver interface {
	// System names the system under test in reports ("gigaledger", "postgresql").
	System() string
	Setup(ctx context.Context, plan SetupPlan) error
	Do(ctx context.Context, request *Request) Outcome
	Close() error
}
