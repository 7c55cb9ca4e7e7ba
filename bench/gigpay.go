package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// The GigPay scenarios (token, token-batch) against the GigPay API (docs/gigpay-api.md). Setup
// opens Wallets pairs of accounts in the node's GigPay project: payer i (user
// gp-<run>-p<i>) and payee i, a user whose routing slot is payer i's, so that a claim's two
// wallets always live on one shard whatever the cluster's shard count (a claim across shards
// works, but runs the slower cross-shard protocol: the benchmark measures the one-shard path). Payers are funded by admin
// deposits moved to completed.

// GigPay constants of the scenarios.
const (
	// gigPayAsset is the asset the GigPay project is created with (fractions 100).
	gigPayAsset = "usd"
	// gigPayScale is usd's decimals: amounts are generated in cents.
	gigPayScale = 2
	// tokenLifetime is how long a generated token stays claimable: far beyond a run, so that
	// no expiry races the claims (a batch's unclaimed tokens expire after the run).
	tokenLifetime = time.Hour
	// payeeSearchMax bounds the user IDs tried to find one in a payer's slot: with 4096 slots,
	// the chance that 100,000 tries all miss is below 10^-10.
	payeeSearchMax = 100_000
	// gigPayMemo is every generated token's memo.
	gigPayMemo = "gigaledger bench"
)

// gigPayPair is one payer and its payee, both account (wallet) IDs.
type gigPayPair struct {
	payer, payee string
}

// payeeUser returns a user ID for payee index whose slot in project is slot: the first of
// gp-<run>-q<index>-<n> that hashes there.
func payeeUser(project, runID string, index int, slot keyspace.Slot) (string, error) {
	prefix := "gp-" + runID + "-q" + strconv.Itoa(index) + "-"
	for n := range payeeSearchMax {
		user := prefix + strconv.Itoa(n)
		if keyspace.SlotOf(project, user) == slot {
			return user, nil
		}
	}
	return "", fmt.Errorf("no user ID of %d tried for payee %d falls in slot %d", payeeSearchMax, index, slot)
}

// setupGigPay opens plan.Wallets payer/payee pairs with plan.Clients concurrent workers.
func (d *httpDriver) setupGigPay(ctx context.Context, plan SetupPlan) error {
	d.pairs = make([]gigPayPair, plan.Wallets)
	return forEachParallel(ctx, plan.Wallets, plan.Clients, func(ctx context.Context, index int) error {
		payerUser := "gp-" + plan.RunID + "-p" + strconv.Itoa(index)
		payer, err := d.pick(d.setupClients).CreateGigPayAccount(ctx, client.CreateGigPayAccountRequest{UserIdentityID: payerUser, AssetType: gigPayAsset})
		if err != nil {
			return fmt.Errorf("create GigPay account for %s (is the GigPay API on?): %w", payerUser, err)
		}
		slot := keyspace.SlotOf(payer.BusinessAccountID, payerUser)
		if walletSlot, ok := keyspace.SlotOfID(payer.ID); !ok || walletSlot != slot || payer.UserIdentityID != payerUser {
			return fmt.Errorf("GigPay account %q of %s in project %q: want a wallet of that user in slot %d", payer.ID, payerUser, payer.BusinessAccountID, slot)
		}
		payeeUser, err := payeeUser(payer.BusinessAccountID, plan.RunID, index, slot)
		if err != nil {
			return err
		}
		payee, err := d.pick(d.setupClients).CreateGigPayAccount(ctx, client.CreateGigPayAccountRequest{UserIdentityID: payeeUser, AssetType: gigPayAsset})
		if err != nil {
			return fmt.Errorf("create GigPay account for %s: %w", payeeUser, err)
		}
		if walletSlot, ok := keyspace.SlotOfID(payee.ID); !ok || walletSlot != slot {
			return fmt.Errorf("GigPay payee account %q of %s is not in its payer's slot %d", payee.ID, payeeUser, slot)
		}
		d.pairs[index] = gigPayPair{payer: payer.ID, payee: payee.ID}
		return nil
	})
}

// gigPayAmount returns cents as the API's decimal of usd.
func gigPayAmount(cents int64) client.Decimal {
	return client.DecimalFromUnits(uint64(cents), gigPayScale)
}

// sameAmount reports whether an answer's amount is exactly cents.
func sameAmount(got client.Decimal, cents int64) bool {
	canonical, err := got.Canonical()
	return err == nil && canonical == gigPayAmount(cents)
}

// deposit funds a payer in setup: an admin deposit, idempotent by its client reference (so
// the setup client may resend it), then moved to completed.
func (d *httpDriver) deposit(ctx context.Context, request *Request) Outcome {
	api := d.pick(d.setupClients)
	payment, err := api.CreateGigPayPayment(ctx, client.CreateGigPayPaymentRequest{Type: client.GigPayDeposit, AccountID: d.pairs[request.Wallet].payer,
		AssetType: gigPayAsset, Amount: gigPayAmount(request.Amounts[0]), ExternalStorage: "bench-bank", ClientReference: request.ReferenceID})
	if err != nil {
		return Outcome{Class: OutcomeError, Kind: "deposit: " + err.Error()}
	}
	payment, err = api.UpdateGigPayPaymentStatus(ctx, payment.PaymentID, client.GigPayCompleted, "")
	if err != nil {
		return Outcome{Class: OutcomeError, Kind: "complete deposit: " + err.Error()}
	}
	if payment.Status != client.GigPayCompleted || !sameAmount(payment.Amount, request.Amounts[0]) {
		return Outcome{Class: OutcomeError, Kind: fmt.Sprintf("deposit answered %s of %s", payment.Status, payment.Amount)}
	}
	return Outcome{Class: OutcomeOK, Kind: "deposit"}
}

// token creates a token from payer request.Wallet and claims it into its payee through api
// (the same node): one request of the report, each call's latency a phase. A failed call
// names itself in the outcome ("claim 422 CrossShardTransaction"); an answer that does not
// show the token asked for, or a claim that does not succeed into the payee, is an error.
func (d *httpDriver) token(ctx context.Context, api *client.Client, request *Request, lastAnswer func() (int, string)) Outcome {
	pair := d.pairs[request.Wallet]
	cents := request.Amounts[0]
	begin := time.Now()
	created, err := api.CreatePaymentToken(ctx, client.CreatePaymentTokenRequest{AssetType: gigPayAsset, SourceAccountID: pair.payer,
		Amount: gigPayAmount(cents), ExpiresAtUtc: begin.Add(tokenLifetime), Memo: gigPayMemo})
	phases := []Phase{{Name: "create", Latency: time.Since(begin)}}
	status, code := lastAnswer()
	if outcome := callOutcome(status, code, err); outcome.Class != OutcomeOK {
		outcome.Kind, outcome.Phases = "create "+outcome.Kind, phases
		return outcome
	}
	if created.Status != client.PaymentTokenActive || created.SourceAccountID != pair.payer || !sameAmount(created.Amount, cents) || created.Token == "" {
		return Outcome{Class: OutcomeError, Kind: "create wrong token", Phases: phases}
	}
	begin = time.Now()
	claimed, err := api.ClaimPaymentToken(ctx, created.Token, pair.payee)
	phases = append(phases, Phase{Name: "claim", Latency: time.Since(begin)})
	status, code = lastAnswer()
	outcome := callOutcome(status, code, err)
	outcome.Phases = phases
	switch {
	case outcome.Class != OutcomeOK:
		outcome.Kind = "claim " + outcome.Kind
	case claimed.ID != created.ID || claimed.Status != client.PaymentTokenSucceeded || claimed.DestinationAccountID != pair.payee:
		return Outcome{Class: OutcomeError, Kind: "claim wrong token", Phases: phases}
	default:
		outcome.Tokens = 1
	}
	return outcome
}

// tokenBatch creates len(request.Amounts) tokens from payer request.Wallet in one batch
// request, each item with its own client reference. Every item created: ok, Tokens the batch's
// size. Items that failed: the outcome names the first failure's code ("200 items
// InsufficientFunds"), a business outcome when it is the ledger's no (InsufficientFunds),
// else an error; Tokens counts the items created all the same. A created token other than
// the one asked for is an error.
func (d *httpDriver) tokenBatch(ctx context.Context, api *client.Client, request *Request, lastAnswer func() (int, string)) Outcome {
	payer := d.pairs[request.Wallet].payer
	expires := time.Now().Add(tokenLifetime)
	items := make([]client.CreatePaymentTokenRequest, len(request.Amounts))
	for index, cents := range request.Amounts {
		items[index] = client.CreatePaymentTokenRequest{AssetType: gigPayAsset, SourceAccountID: payer, Amount: gigPayAmount(cents),
			ExpiresAtUtc: expires, Memo: gigPayMemo, ClientReference: request.ReferenceID + "-" + strconv.Itoa(index)}
	}
	results, err := api.CreatePaymentTokens(ctx, items)
	status, code := lastAnswer()
	outcome := callOutcome(status, code, err)
	if outcome.Class != OutcomeOK {
		return outcome
	}
	failedCode := ""
	for index, result := range results {
		switch {
		case result.Result == client.BatchItemCreated && result.Token != nil:
			if result.Token.SourceAccountID != payer || !sameAmount(result.Token.Amount, request.Amounts[index]) ||
				result.Token.ClientReference != items[index].ClientReference || result.Token.Status != client.PaymentTokenActive {
				return Outcome{Class: OutcomeError, Kind: "batch wrong token", Tokens: outcome.Tokens}
			}
			outcome.Tokens++
		case result.Result == client.BatchItemFailed && result.Error != nil:
			if failedCode == "" {
				failedCode = result.Error.Code
			}
		default:
			// "replayed" cannot happen: every item's client reference is fresh.
			return Outcome{Class: OutcomeError, Kind: "batch item " + string(result.Result), Tokens: outcome.Tokens}
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
