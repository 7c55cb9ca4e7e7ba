package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Scenario names accepted by --scenario.
const (
	ScenarioTransfer    = "transfer"
	ScenarioZipf        = "zipf"
	ScenarioIssueRedeem = "issue-redeem"
	ScenarioMultiOp     = "multi-op"
	ScenarioReads       = "reads"
	// ScenarioInvoice drives the GigaWallet API: an invoice create and its admin read. The
	// PostgreSQL baseline has no counterpart.
	ScenarioInvoice = "invoice"
	// ScenarioToken drives the GigPay API: a payment token created from a funded payer
	// account, then claimed into a payee account on the same shard (two HTTP calls).
	ScenarioToken = "token"
	// ScenarioTokenBatch drives the GigPay batch endpoint: one request creates
	// tokenBatchSize tokens from one payer account.
	ScenarioTokenBatch = "token-batch"
)

// ScenarioNames lists the scenarios in the order the help text shows them.
var ScenarioNames = []string{ScenarioTransfer, ScenarioZipf, ScenarioIssueRedeem, ScenarioMultiOp, ScenarioReads, ScenarioInvoice,
	ScenarioToken, ScenarioTokenBatch}

// HasPostgresBaseline reports whether the PostgreSQL driver runs scenario: every ledger
// scenario does; the GigaWallet and GigPay ones do not.
func HasPostgresBaseline(scenario string) bool {
	return scenario != ScenarioInvoice && !IsGigPay(scenario)
}

// IsGigPay reports whether scenario drives the GigPay API (its accounts are GigPay accounts,
// funded by admin deposits).
func IsGigPay(scenario string) bool {
	return scenario == ScenarioToken || scenario == ScenarioTokenBatch
}

// Limits and defaults of the generated load. Amounts are whole smallest parts
// of the bench asset (fractions 100, so 100 is one unit).
const (
	// transferAmountMax is the largest amount one generated operation moves;
	// amounts are uniform in 1..transferAmountMax.
	transferAmountMax = 100
	// initialBalanceAmount is what setup issues to every wallet: large enough
	// that random walks of a bench run rarely hit zero, so InsufficientFunds
	// stays a rare, counted business outcome.
	initialBalanceAmount = 1_000_000
	// operationsPerTransactionMax mirrors the API limit (docs/cloudwallet-api.md).
	operationsPerTransactionMax = 100
	// entriesPageSize is the pageSize of generated entries reads.
	entriesPageSize = 20
	// zipfAttemptsMax bounds the redraws when a skewed pick lands on the
	// source wallet again.
	zipfAttemptsMax = 8
	// invoiceItemsMax bounds the items of a generated invoice (1..3), and
	// invoiceQuantityMax each item's quantity (1..5).
	invoiceItemsMax    = 3
	invoiceQuantityMax = 5
	// invoiceValueMaxKoinu bounds an item's unit value: 100 DOGE, drawn in
	// koinu so that values carry up to 8 decimal places.
	invoiceValueMaxKoinu = 100 * 100_000_000
	// tokenBatchSize is the tokens of one token-batch request (the issue's "batches of 100").
	tokenBatchSize = 100
)

// OperationType is the kind of one ledger operation inside a transaction.
type OperationType int

// Operation types; values start at 1 so the zero value is invalid.
const (
	OperationTransfer OperationType = iota + 1
	OperationIssue
	OperationRedeem
)

// String returns the API spelling of the operation type.
func (t OperationType) String() string {
	switch t {
	case OperationTransfer:
		return "transfer"
	case OperationIssue:
		return "issue"
	case OperationRedeem:
		return "redeem"
	}
	return "OperationType(" + strconv.Itoa(int(t)) + ")"
}

// Operation is one generated ledger operation. Wallets are indexes into the
// run's wallet list (0..wallets-1); drivers map them to their own IDs.
// FromWallet is unused by issue, ToWallet by redeem.
type Operation struct {
	Type       OperationType
	FromWallet int
	ToWallet   int
	Amount     int64
}

// RequestKind says what one generated request does.
type RequestKind int

// Request kinds; values start at 1 so the zero value is invalid.
const (
	RequestTransaction RequestKind = iota + 1
	RequestWalletBalance
	RequestWalletEntries
	// RequestInvoice creates a GigaWallet invoice for Wallet's account, then
	// reads it back (the admin view): one request, two HTTP calls.
	RequestInvoice
	// RequestToken creates a GigPay payment token of Amounts[0] from payer
	// Wallet and claims it into payee Wallet: one request, two HTTP calls.
	RequestToken
	// RequestTokenBatch creates len(Amounts) tokens from payer Wallet in one
	// batch request; ReferenceID prefixes the items' client references.
	RequestTokenBatch
	// RequestGigPayDeposit funds payer Wallet with Amounts[0] (setup): an
	// admin deposit, then its move to completed.
	RequestGigPayDeposit
	// RequestTransactionBatch runs the transactions of Batch in one batch
	// request (POST .../transactions/batch).
	RequestTransactionBatch
)

// InvoiceItem is one generated invoice line: a unit value in koinu (1 DOGE
// = 10^8 koinu, so the decimal text is exact) and a quantity.
type InvoiceItem struct {
	ValueKoinu int64
	Quantity   int
}

// Request is one unit of load: one HTTP request against GigaLedger, one
// database transaction (or query) against PostgreSQL.
type Request struct {
	Kind RequestKind
	// ReferenceID is fresh per transaction request, so retries never collide.
	ReferenceID string
	Operations  []Operation
	// Wallet is the wallet index a read targets, or the account index an
	// invoice is for.
	Wallet int
	// Items are an invoice's lines.
	Items []InvoiceItem
	// Amounts are the GigPay requests' amounts, in cents (smallest parts of
	// usd, fractions 100).
	Amounts []int64
	// Span is spanSingleShard or spanCrossShard for a one-transfer transaction
	// when the wallets' shards are known, else "". The driver reports the
	// request's latency under it, as a phase.
	Span string
	// Batch are the transactions of a RequestTransactionBatch, each a
	// RequestTransaction with its own reference.
	Batch []Request
}

// Spans of a transfer on a sharded cluster: both wallets on one shard, or not.
const (
	spanSingleShard = "single-shard"
	spanCrossShard  = "cross-shard"
)

// ScenarioConfig holds the knobs shared by all scenarios.
type ScenarioConfig struct {
	Name            string
	Wallets         int
	OperationsPerTx int
	ZipfExponent    float64
	RunID           string
	AmountMax       int64
	// CrossShare is the share of transfer requests whose two wallets live on
	// different shards, in [0, 1]; nil picks both wallets uniformly (whatever
	// share the placement gives, (S-1)/S on S equal shards).
	CrossShare *float64
	// Placement is where the wallets live, when the system under test told
	// (set by Run after setup); nil otherwise.
	Placement *WalletPlacement
	// Batch is the transfers of one request (--batch) in the transfer
	// scenario: above 1, each request is a RequestTransactionBatch of Batch
	// one-transfer transactions; 0 or 1, one transaction per request.
	Batch int
}

// batchMaxCount is the most transactions of one batch request (the API's limit).
const batchMaxCount = 1000

// Validate reports a configuration error, naming the offending flag.
func (c ScenarioConfig) Validate() error {
	known := false
	for _, name := range ScenarioNames {
		if name == c.Name {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("--scenario %q: unknown (want one of %v)", c.Name, ScenarioNames)
	}
	if c.Wallets < 2 || c.Wallets > walletsMax {
		return fmt.Errorf("--wallets %d: must be in 2..%d", c.Wallets, walletsMax)
	}
	if c.OperationsPerTx < 1 || c.OperationsPerTx > operationsPerTransactionMax {
		return fmt.Errorf("--ops-per-tx %d: must be in 1..%d", c.OperationsPerTx, operationsPerTransactionMax)
	}
	if c.Name == ScenarioZipf && !(c.ZipfExponent > 1) {
		return fmt.Errorf("--zipf-s %v: must be > 1", c.ZipfExponent)
	}
	if c.Batch < 0 || c.Batch > batchMaxCount {
		return fmt.Errorf("--batch %d: must be in 0..%d", c.Batch, batchMaxCount)
	}
	if c.Batch > 1 && c.Name != ScenarioTransfer {
		return fmt.Errorf("--batch: only the %s scenario sends batches", ScenarioTransfer)
	}
	if c.CrossShare != nil {
		if share := *c.CrossShare; !(share >= 0 && share <= 1) {
			return fmt.Errorf("--cross %v: must be in [0, 1]", share)
		}
		if c.Name != ScenarioTransfer {
			return fmt.Errorf("--cross: only the %s scenario chooses its wallets by shard", ScenarioTransfer)
		}
	}
	return nil
}

// Generator produces the requests of one client. It is not safe for
// concurrent use: every client owns one, seeded from --seed and its index, so
// a run's request stream is reproducible.
type Generator struct {
	config   ScenarioConfig
	random   *rand.Rand
	zipf     *rand.Zipf
	client   int
	sequence uint64
}

// NewGenerator returns client's generator for a validated config.
func NewGenerator(config ScenarioConfig, seed uint64, client int) *Generator {
	if config.AmountMax <= 0 {
		config.AmountMax = transferAmountMax
	}
	random := rand.New(rand.NewPCG(seed, uint64(client)+1))
	generator := &Generator{config: config, random: random, client: client}
	if config.Name == ScenarioZipf {
		generator.zipf = rand.NewZipf(random, config.ZipfExponent, 1, uint64(config.Wallets-1))
	}
	return generator
}

// Next returns the next request. The returned value is owned by the caller.
func (g *Generator) Next() Request {
	g.sequence++
	switch g.config.Name {
	case ScenarioToken:
		return Request{Kind: RequestToken, Wallet: g.random.IntN(g.config.Wallets), Amounts: []int64{g.amount()}}
	case ScenarioTokenBatch:
		amounts := make([]int64, tokenBatchSize)
		for index := range amounts {
			amounts[index] = g.amount()
		}
		return Request{Kind: RequestTokenBatch, ReferenceID: g.referenceID(), Wallet: g.random.IntN(g.config.Wallets), Amounts: amounts}
	case ScenarioInvoice:
		items := make([]InvoiceItem, 1+g.random.IntN(invoiceItemsMax))
		for index := range items {
			items[index] = InvoiceItem{ValueKoinu: 1 + g.random.Int64N(invoiceValueMaxKoinu), Quantity: 1 + g.random.IntN(invoiceQuantityMax)}
		}
		return Request{Kind: RequestInvoice, Wallet: g.random.IntN(g.config.Wallets), Items: items}
	case ScenarioReads:
		kind := RequestWalletBalance
		if g.random.IntN(2) == 1 {
			kind = RequestWalletEntries
		}
		return Request{Kind: kind, Wallet: g.random.IntN(g.config.Wallets)}
	case ScenarioIssueRedeem:
		operation := Operation{Type: OperationIssue, ToWallet: g.random.IntN(g.config.Wallets), Amount: g.amount()}
		if g.random.IntN(2) == 1 {
			operation = Operation{Type: OperationRedeem, FromWallet: operation.ToWallet, Amount: operation.Amount}
		}
		return g.transaction([]Operation{operation})
	case ScenarioMultiOp:
		operations := make([]Operation, g.config.OperationsPerTx)
		for index := range operations {
			operations[index] = g.transfer()
		}
		return g.transaction(operations)
	case ScenarioTransfer:
		if g.config.Batch > 1 {
			batch := make([]Request, g.config.Batch)
			for index := range batch {
				if index > 0 {
					g.sequence++
				}
				operation, _ := g.placedTransfer()
				batch[index] = g.transaction([]Operation{operation})
			}
			return Request{Kind: RequestTransactionBatch, Batch: batch}
		}
		fallthrough
	default: // transfer, zipf
		operation, span := g.placedTransfer()
		request := g.transaction([]Operation{operation})
		request.Span = span
		return request
	}
}

func (g *Generator) transaction(operations []Operation) Request {
	return Request{Kind: RequestTransaction, ReferenceID: g.referenceID(), Operations: operations}
}

// referenceID is unique per run (run ID), client and sequence number.
func (g *Generator) referenceID() string {
	return "b-" + g.config.RunID + "-" + strconv.Itoa(g.client) + "-" + strconv.FormatUint(g.sequence, 10)
}

func (g *Generator) amount() int64 {
	return 1 + g.random.Int64N(g.config.AmountMax)
}

// placedTransfer is one transfer and its span on the cluster's shards ("" when unknown). With
// a cross-shard share (the transfer scenario on a known placement) the source is uniform and
// the destination uniform among the other wallets of its shard, or of the other shards, by
// that share; otherwise the pair is drawn as transfer draws it.
func (g *Generator) placedTransfer() (Operation, string) {
	placement := g.config.Placement
	if placement == nil {
		return g.transfer(), ""
	}
	if g.config.CrossShare == nil || !placement.canCross() {
		operation := g.transfer()
		if placement.ShardOf(operation.FromWallet) != placement.ShardOf(operation.ToWallet) {
			return operation, spanCrossShard
		}
		return operation, spanSingleShard
	}
	from := g.random.IntN(g.config.Wallets)
	cross := g.random.Float64() < *g.config.CrossShare
	to, ok := placement.otherWallet(from, !cross, g.random.IntN)
	if !ok {
		// from is alone on its shard (tiny runs): the other kind is the only one there is.
		cross = !cross
		to, _ = placement.otherWallet(from, !cross, g.random.IntN)
	}
	span := spanSingleShard
	if cross {
		span = spanCrossShard
	}
	return Operation{Type: OperationTransfer, FromWallet: from, ToWallet: to, Amount: g.amount()}, span
}

// transfer picks two distinct wallets, uniformly or Zipf-skewed.
func (g *Generator) transfer() Operation {
	from := g.wallet()
	to := g.wallet()
	for attempt := 0; to == from && attempt < zipfAttemptsMax; attempt++ {
		to = g.wallet()
	}
	if to == from {
		to = (from + 1) % g.config.Wallets
	}
	return Operation{Type: OperationTransfer, FromWallet: from, ToWallet: to, Amount: g.amount()}
}

func (g *Generator) wallet() int {
	if g.zipf != nil {
		return int(g.zipf.Uint64())
	}
	return g.random.IntN(g.config.Wallets)
}

// FundingRequests returns the setup transactions that issue
// initialBalanceAmount to every wallet, operationsPerTransactionMax per
// transaction (with a placement, the wallets of one shard per transaction, so
// funding never needs the cross-shard protocol); none for the invoice
// scenario, whose accounts are not funded; for the GigPay scenarios, one
// deposit of initialBalanceAmount cents per payer account.
func FundingRequests(scenario, runID string, wallets int, placement *WalletPlacement) []Request {
	if scenario == ScenarioInvoice {
		return nil
	}
	if IsGigPay(scenario) {
		requests := make([]Request, wallets)
		for wallet := range requests {
			requests[wallet] = Request{Kind: RequestGigPayDeposit, ReferenceID: "fund-" + runID + "-" + strconv.Itoa(wallet),
				Wallet: wallet, Amounts: []int64{initialBalanceAmount}}
		}
		return requests
	}
	order := make([]int, wallets)
	for wallet := range order {
		order[wallet] = wallet
	}
	if placement != nil && placement.Wallets() == wallets {
		order = placement.fundingOrder()
	}
	var requests []Request
	var operations []Operation
	flush := func() {
		if len(operations) == 0 {
			return
		}
		requests = append(requests, Request{
			Kind:        RequestTransaction,
			ReferenceID: "fund-" + runID + "-" + strconv.Itoa(len(requests)),
			Operations:  operations,
		})
		operations = nil
	}
	for position, wallet := range order {
		if position > 0 && placement != nil && placement.Wallets() == wallets && placement.ShardOf(wallet) != placement.ShardOf(order[position-1]) {
			flush()
		}
		operations = append(operations, Operation{Type: OperationIssue, ToWallet: wallet, Amount: initialBalanceAmount})
		if len(operations) == operationsPerTransactionMax {
			flush()
		}
	}
	flush()
	return requests
}
