package gigpay

import (
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// A claim across shards, with the test as router and driver: shards[0] is the payer's (the
// token's, the coordinator), shards[1] the payee's. A close across shards (closeacross_test.go)
// runs the same way with the payee's shard as coordinator.
type claimRun struct {
	t           *testing.T
	shards      [2]*harness
	coordinator int
	x           *ledger.CrossTransaction
	votes       []ledger.ShardVote
	decided     *ledger.Transaction
}

func crossClaimBegin(t *testing.T, shards [2]*harness, tok *Token, payee, payeeCustomer string) *claimRun {
	t.Helper()
	hook := &ClaimAcross{TokenID: tok.ID, DestinationWalletID: payee, DestinationCustomerID: payeeCustomer}
	begin := &ledger.CrossBegin{ProjectID: project, IDPrefix: "t0001",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: tok.SourceWalletID, To: payee, Amount: tok.Amount}},
		Shards:     []ledger.WalletShard{{WalletID: tok.SourceWalletID, Shard: 0}, {WalletID: payee, Shard: 1}},
		CrossExtras: ledger.CrossExtras{Captures: []ledger.HoldCapture{{Index: 0, HoldID: tok.HoldID}},
			Hook: &ledger.CrossHook{Name: ClaimHook, Anchor: tok.SourceWalletID, Data: hook.Encode()}}}
	r := shards[0].ok(begin)
	return &claimRun{t: t, shards: shards, x: r.Value.(*ledger.CrossTransaction)}
}

func (c *claimRun) prepare() *claimRun {
	c.t.Helper()
	for _, p := range c.x.Participants {
		r := c.shards[p.Shard].ok(&ledger.CrossPrepare{ProjectID: project, TransactionID: c.x.Transaction.ID, Wallets: p.Wallets,
			Legs: p.Legs, CrossExtras: p.CrossExtras})
		c.votes = append(c.votes, ledger.ShardVote{Shard: p.Shard, Vote: r.Value.(*ledger.Participation).Vote})
	}
	return c
}

func (c *claimRun) finish() *ledger.Transaction {
	c.t.Helper()
	r := c.shards[c.coordinator].ok(&ledger.CrossDecide{ProjectID: project, TransactionID: c.x.Transaction.ID, Votes: c.votes})
	c.decided = r.Value.(*ledger.CrossTransaction).Transaction
	for _, p := range c.x.Participants {
		c.shards[p.Shard].ok(&ledger.CrossFinish{ProjectID: project, TransactionID: c.x.Transaction.ID, Wallets: p.Wallets, Status: c.decided.Status})
	}
	c.shards[c.coordinator].ok(&ledger.CrossDone{ProjectID: project, TransactionID: c.x.Transaction.ID})
	return c.decided
}

func (h *harness) token(id string) *Token {
	h.t.Helper()
	tok, err := h.family.Of(h.m).GetToken(project, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// The payee's wallet on another shard: the token succeeds with its payment and events as the
// single-shard claim makes them, in the batch that captures the hold.
func TestClaimAcrossShards(t *testing.T) {
	shards := [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	payee := shards[1].wallet("bob", "usd", 0)
	tok := shards[0].mustCreate(shards[0].spec(payer, 250))

	decided := crossClaimBegin(t, shards, tok, payee, "bob").prepare().finish()
	if decided.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", decided)
	}
	shards[0].wantBalance(payer, 750, 750)
	shards[1].wantBalance(payee, 250, 250)
	got := shards[0].token(tok.ID)
	if got.Status != TokenSucceeded || got.DestinationWalletID != payee || got.DestinationCustomerID != "bob" ||
		got.TransactionID != decided.ID || got.PaymentID != PaymentIDOfToken(tok.ID) || got.ClaimTransactionID != "" {
		t.Fatalf("token %+v", got)
	}
	p, err := shards[0].family.Of(shards[0].m).GetPayment(project, got.PaymentID)
	if err != nil || p.Status != PaymentCompleted || p.Destination.WalletID != payee || p.Source.CustomerID != "alice" || p.TransactionID != decided.ID {
		t.Fatalf("payment %+v %v", p, err)
	}
	if want := []string{EventTokenCreated, EventTokenSucceeded, EventPaymentCreated}; !reflect.DeepEqual(shards[0].events(), want) {
		t.Fatalf("events %v, want %v", shards[0].events(), want)
	}
	// Exactly once; and a close sent to the token's shard alone (its reversal runs across
	// shards through the router, closeacross.go) is refused, not a crash.
	wantCode(t, shards[0].apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payer}).Err, CodeTokenNotActive)
	wantCode(t, shards[0].apply(&CloseToken{ProjectID: project, TokenID: tok.ID}).Err, ledger.CodeCrossShardTransaction)
}

// While the claim is in progress the token is the claim's: another claim (here or across
// shards) and a reject are refused with TokenClaimInProgress, and it does not expire. The
// payee closed meanwhile fails the claim: the token is Active again, its hold too, and it can
// be claimed elsewhere.
func TestClaimAcrossShardsInProgress(t *testing.T) {
	shards := [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	local := shards[0].wallet("carol", "usd", 0)
	payee := shards[1].wallet("bob", "usd", 0)
	tok := shards[0].mustCreate(shards[0].spec(payer, 250))

	run := crossClaimBegin(t, shards, tok, payee, "bob").prepare()
	if got := shards[0].token(tok.ID); got.Status != TokenActive || got.ClaimTransactionID != run.x.Transaction.ID {
		t.Fatalf("token %+v", got)
	}
	r := shards[0].apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: local})
	wantCode(t, r.Err, CodeClaimInProgress)
	if r.Value.(*Token).Status != TokenActive {
		t.Fatalf("refusal carries %+v", r.Value)
	}
	wantCode(t, shards[0].apply(&RejectToken{ProjectID: project, Token: tok.Token}).Err, CodeClaimInProgress)
	other := crossClaimBegin(t, shards, tok, payee, "bob").prepare()
	if got := other.finish(); got.FailureReason != CodeClaimInProgress {
		t.Fatalf("a second claim: %+v", got)
	}
	shards[1].ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payee, Status: ledger.WalletSuspendedStatus})
	// Time passes beyond the token's expiry: it does not expire under the claim.
	shards[0].applyAt(tok.ExpiresAt+1, &fsm.Tick{})
	if got := shards[0].token(tok.ID); got.Status != TokenActive {
		t.Fatalf("expired in progress: %+v", got)
	}
	// The payee was open at its prepare: the claim completes even so (the prepare is the
	// transaction's point of checks).
	if got := run.finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if got := shards[0].token(tok.ID); got.Status != TokenSucceeded {
		t.Fatalf("token %+v", got)
	}
}

func TestClaimAcrossShardsFails(t *testing.T) {
	shards := [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	local := shards[0].wallet("carol", "usd", 0)
	closed := shards[1].wallet("bob", "usd", 0)
	shards[1].ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: closed, Status: ledger.WalletClosed})
	euros := shards[1].wallet("dave", "eur", 0)
	tok := shards[0].mustCreate(shards[0].spec(payer, 250))

	for payee, code := range map[string]fsm.ErrorCode{closed: ledger.CodeWalletClosed, euros: ledger.CodeAssetMismatch, "w0009ghost": ledger.CodeWalletNotFound} {
		if got := crossClaimBegin(t, shards, tok, payee, "x").prepare().finish(); got.FailureReason != code {
			t.Fatalf("payee %s: %+v, want %s", payee, got, code)
		}
		if got := shards[0].token(tok.ID); got.Status != TokenActive || got.ClaimTransactionID != "" {
			t.Fatalf("token %+v", got)
		}
		shards[0].wantBalance(payer, 1000, 750)
	}
	// Active again: claimed on its own shard.
	if r := shards[0].ok(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: local}); r.Value.(*Token).Status != TokenSucceeded {
		t.Fatalf("%+v", r.Value)
	}
	// A failure after the token's expiry: it expires at that finish, its hold released.
	tok2 := shards[0].mustCreate(shards[0].spec(payer, 100))
	run := crossClaimBegin(t, shards, tok2, closed, "bob").prepare()
	shards[0].applyAt(tok2.ExpiresAt+1, &fsm.Tick{})
	if got := run.finish(); got.FailureReason != ledger.CodeWalletClosed {
		t.Fatalf("%+v", got)
	}
	if got := shards[0].token(tok2.ID); got.Status != TokenExpired {
		t.Fatalf("token %+v", got)
	}
	shards[0].wantBalance(payer, 750, 750)
	if evs := shards[0].events(); evs[len(evs)-1] != EventTokenExpired {
		t.Fatalf("events %v", evs)
	}
}

// The accounting API reaches a token's hold too (one project, one set of holds): a capture
// across shards of it makes a reject 409 CrossShardHold and postpones the token's expiry until
// the capture's outcome; a hold resolved under the token lets the token end without it. Input,
// never a crash.
func TestTokenHoldTakenByTheAccountingAPI(t *testing.T) {
	shards := [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	payee := shards[1].wallet("bob", "usd", 0)
	tok := shards[0].mustCreate(shards[0].spec(payer, 250))
	begin := &ledger.CrossBegin{ProjectID: project, IDPrefix: "t0001",
		Operations:  []ledger.Operation{{Type: ledger.OperationTransfer, From: payer, To: payee, Amount: tok.Amount}},
		Shards:      []ledger.WalletShard{{WalletID: payer, Shard: 0}, {WalletID: payee, Shard: 1}},
		CrossExtras: ledger.CrossExtras{Captures: []ledger.HoldCapture{{Index: 0, HoldID: tok.HoldID}}}}
	run := &claimRun{t: t, shards: shards, x: shards[0].ok(begin).Value.(*ledger.CrossTransaction)}
	run.prepare()
	wantCode(t, shards[0].apply(&RejectToken{ProjectID: project, Token: tok.Token}).Err, ledger.CodeCrossShardHold)
	shards[0].applyAt(tok.ExpiresAt+1, &fsm.Tick{})
	if got := shards[0].token(tok.ID); got.Status != TokenActive {
		t.Fatalf("token %+v", got)
	}
	if got := run.finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	shards[0].apply(&fsm.Tick{})
	if got := shards[0].token(tok.ID); got.Status != TokenExpired {
		t.Fatalf("token %+v", got)
	}
	// On one shard: the hold released under the token; the token is rejected without it.
	tok2 := shards[0].mustCreate(shards[0].spec(payer, 100))
	shards[0].ok(&ledger.ReleaseHold{ProjectID: project, HoldID: tok2.HoldID})
	if r := shards[0].ok(&RejectToken{ProjectID: project, Token: tok2.Token}); r.Value.(*Token).Status != TokenRejected {
		t.Fatalf("%+v", r.Value)
	}
	shards[0].wantBalance(payer, 750, 750)
}
