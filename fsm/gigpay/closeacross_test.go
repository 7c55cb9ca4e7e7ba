package gigpay

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// crossCloseBegin begins the close of a token claimed across shards as the router does: one
// transfer of the token's amount from the payee (shards[1], the coordinator) back to the payer
// (shards[0]), with the close hook anchored on the payer.
func crossCloseBegin(t *testing.T, shards [2]*harness, tok *Token, reason string) *claimRun {
	t.Helper()
	return crossCloseOf(t, shards, tok, ledger.Operation{Type: ledger.OperationTransfer, From: tok.DestinationWalletID,
		To: tok.SourceWalletID, Amount: tok.Amount}, reason)
}

func crossCloseOf(t *testing.T, shards [2]*harness, tok *Token, op ledger.Operation, reason string) *claimRun {
	t.Helper()
	hook := &CloseAcross{TokenID: tok.ID, Reason: reason}
	// The transaction's ID carries the coordinator's slot: the payee's shard here.
	begin := &ledger.CrossBegin{ProjectID: project, IDPrefix: "t0002", Operations: []ledger.Operation{op},
		Shards:      []ledger.WalletShard{{WalletID: op.From, Shard: 1}, {WalletID: op.To, Shard: 0}},
		CrossExtras: ledger.CrossExtras{Hook: &ledger.CrossHook{Name: CloseHook, Anchor: tok.SourceWalletID, Data: hook.Encode()}}}
	r := shards[1].ok(begin)
	return &claimRun{t: t, shards: shards, coordinator: 1, x: r.Value.(*ledger.CrossTransaction)}
}

// claimedAcross is a token of 250 from alice (shards[0], 1000) claimed by bob (shards[1]).
func claimedAcross(t *testing.T) (shards [2]*harness, tok *Token) {
	shards = [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	payee := shards[1].wallet("bob", "usd", 0)
	created := shards[0].mustCreate(shards[0].spec(payer, 250))
	if got := crossClaimBegin(t, shards, created, payee, "bob").prepare().finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("claim %+v", got)
	}
	return shards, shards[0].token(created.ID)
}

// The close of a token claimed across shards: the reversal moves the amount back, the token
// is Closed and its payment Canceled with the events of the single-shard close. While it is
// in progress another close (here or across shards) is refused with TokenCloseInProgress.
func TestCloseAcrossShards(t *testing.T) {
	shards, tok := claimedAcross(t)
	payer, payee := tok.SourceWalletID, tok.DestinationWalletID
	eventsBefore := shards[0].events()

	run := crossCloseBegin(t, shards, tok, "masspay: payee account closed").prepare()
	if got := shards[0].token(tok.ID); got.Status != TokenSucceeded || got.CloseTransactionID != run.x.Transaction.ID {
		t.Fatalf("in progress: %+v", got)
	}
	r := shards[0].apply(&CloseToken{ProjectID: project, TokenID: tok.ID, Reason: "again"})
	wantCode(t, r.Err, CodeCloseInProgress)
	if v := r.Value.(*Token); v.Status != TokenSucceeded {
		t.Fatalf("refusal carries %+v", v)
	}
	second := crossCloseBegin(t, shards, tok, "again").prepare()
	if got := second.finish(); got.Status != ledger.TransactionFailed || got.FailureReason != CodeCloseInProgress {
		t.Fatalf("a second close: %+v", got)
	}
	shards[1].wantBalance(payee, 250, 0) // the first close holds the amount until its finish

	decided := run.finish()
	if decided.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", decided)
	}
	shards[0].wantBalance(payer, 1000, 1000)
	shards[1].wantBalance(payee, 0, 0)
	got := shards[0].token(tok.ID)
	if got.Status != TokenClosed || got.ReversalTransactionID != decided.ID || got.Reason != "masspay: payee account closed" ||
		got.CloseTransactionID != "" || got.TransactionID != tok.TransactionID {
		t.Fatalf("token %+v", got)
	}
	p, err := shards[0].family.Of(shards[0].m).GetPayment(project, got.PaymentID)
	if err != nil || p.Status != PaymentCanceled || p.ReversalTransactionID != decided.ID || p.Reason != got.Reason {
		t.Fatalf("payment %+v %v", p, err)
	}
	if want := append(slices.Clone(eventsBefore), EventTokenClosed, EventPaymentUpdated); !reflect.DeepEqual(shards[0].events(), want) {
		t.Fatalf("events %v, want %v", shards[0].events(), want)
	}
	// Once: a close of the Closed token is refused as on one shard, here and across shards.
	wantCode(t, shards[0].apply(&CloseToken{ProjectID: project, TokenID: tok.ID}).Err, ledger.CodeInvalidStatusTransition)
	if got := crossCloseBegin(t, shards, tok, "").prepare().finish(); got.FailureReason != ledger.CodeInvalidStatusTransition {
		t.Fatalf("a close of a closed token: %+v", got)
	}
	shards[0].wantBalance(payer, 1000, 1000)
	shards[1].wantBalance(payee, 0, 0)
}

// A close refused by the payee's shard (the funds spent, the account suspended) leaves the
// token Succeeded and unmarked, nothing moved and no event; it can be closed later.
func TestCloseAcrossShardsFails(t *testing.T) {
	shards, tok := claimedAcross(t)
	payer, payee := tok.SourceWalletID, tok.DestinationWalletID
	other := shards[1].wallet("dave", "usd", 0)
	// The payee's own transactions carry another slot than the claim's (coordinated on shard 0
	// with slot 0001): in a cluster a slot names one shard, so transaction IDs never repeat
	// across shards, and the invariant checker pairs a transfer's two sides by ID.
	shards[1].ok(&ledger.Transact{ProjectID: project, IDPrefix: "t0002", ReferenceID: "spend",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: payee, To: other, Amount: fsm.AmountFromUint64(100)}}})
	eventsBefore := shards[0].events()

	run := crossCloseBegin(t, shards, tok, "masspay").prepare()
	if got := shards[0].token(tok.ID); got.CloseTransactionID != run.x.Transaction.ID {
		t.Fatalf("the payer's side prepared: %+v", got)
	}
	if got := run.finish(); got.Status != ledger.TransactionFailed || got.FailureReason != ledger.CodeInsufficientFunds {
		t.Fatalf("%+v", got)
	}
	check := func() {
		t.Helper()
		if got := shards[0].token(tok.ID); got.Status != TokenSucceeded || got.CloseTransactionID != "" || got.ReversalTransactionID != "" {
			t.Fatalf("token %+v", got)
		}
		if p, _ := shards[0].family.Of(shards[0].m).GetPayment(project, tok.PaymentID); p.Status != PaymentCompleted {
			t.Fatalf("payment %+v", p)
		}
		if !reflect.DeepEqual(shards[0].events(), eventsBefore) {
			t.Fatalf("events %v", shards[0].events())
		}
		shards[0].wantBalance(payer, 750, 750)
	}
	check()
	shards[1].ok(&ledger.Transact{ProjectID: project, IDPrefix: "t0002", ReferenceID: "back",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: other, To: payee, Amount: fsm.AmountFromUint64(100)}}})
	shards[1].ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payee, Status: ledger.WalletSuspendedStatus})
	if got := crossCloseBegin(t, shards, tok, "masspay").prepare().finish(); got.FailureReason != ledger.CodeWalletSuspended {
		t.Fatalf("%+v", got)
	}
	check()
	// Not the token's reversal (another amount): refused by the token's shard, nothing marked.
	shards[1].ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payee, Status: ledger.WalletOpen})
	wrong := ledger.Operation{Type: ledger.OperationTransfer, From: payee, To: payer, Amount: fsm.AmountFromUint64(1)}
	if got := crossCloseOf(t, shards, tok, wrong, "").prepare().finish(); got.FailureReason != fsm.CodeInvalidArgument {
		t.Fatalf("%+v", got)
	}
	check()
	shards[1].wantBalance(payee, 250, 250)
	if got := crossCloseBegin(t, shards, tok, "masspay").prepare().finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if got := shards[0].token(tok.ID); got.Status != TokenClosed {
		t.Fatalf("token %+v", got)
	}
}

// A close while the token's claim across shards is in progress: the token is Active (not yet
// Succeeded), so the close fails with InvalidStatusTransition and the claim goes on untouched;
// once the claim completed the token closes.
func TestCloseAcrossShardsDuringClaim(t *testing.T) {
	shards := [2]*harness{newHarness(t), newHarness(t)}
	payer := shards[0].wallet("alice", "usd", 1000)
	payee := shards[1].wallet("bob", "usd", 0)
	created := shards[0].mustCreate(shards[0].spec(payer, 250))
	claim := crossClaimBegin(t, shards, created, payee, "bob").prepare()
	// What the router would send, built from the claim's fields (the token has no payee yet).
	claiming := *created
	claiming.DestinationWalletID = payee
	if got := crossCloseBegin(t, shards, &claiming, "").prepare().finish(); got.FailureReason != ledger.CodeInvalidStatusTransition {
		t.Fatalf("%+v", got)
	}
	wantCode(t, shards[0].apply(&CloseToken{ProjectID: project, TokenID: created.ID}).Err, ledger.CodeInvalidStatusTransition)
	if got := shards[0].token(created.ID); got.ClaimTransactionID != claim.x.Transaction.ID || got.CloseTransactionID != "" {
		t.Fatalf("token %+v", got)
	}
	if got := claim.finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("claim %+v", got)
	}
	tok := shards[0].token(created.ID)
	// The longest reason the API takes fits the hook's data.
	reason := strings.Repeat("r", ReasonMaxLength)
	if got := crossCloseBegin(t, shards, tok, reason).prepare().finish(); got.Status != ledger.TransactionCompleted {
		t.Fatalf("%+v", got)
	}
	if got := shards[0].token(created.ID); got.Status != TokenClosed || got.Reason != reason {
		t.Fatalf("token %+v", got)
	}
	shards[0].wantBalance(payer, 1000, 1000)
	shards[1].wantBalance(payee, 0, 0)
}

// A token record in each version reads back as written; a close mark on a token that is not
// Succeeded is refused by the decoder, not trusted.
func TestTokenRecordVersions(t *testing.T) {
	base := Token{ID: "k0001a", Token: "g0001b", ProjectID: project, AssetID: "usd", Fractions: 100,
		Amount: fsm.AmountFromUint64(5), SourceWalletID: "w0001x", Status: TokenSucceeded, HoldID: "h0001c"}
	closing := base
	closing.CloseTransactionID = "t0002d"
	claiming := base
	claiming.Status, claiming.ClaimTransactionID = TokenActive, "t0001e"
	for _, tok := range []Token{base, closing, claiming} {
		e := fsm.Encoder{}
		tok.Encode(&e)
		d := fsm.NewDecoder(e.Buf)
		got := ReadToken(d)
		if err := d.Finish("token"); err != nil || !reflect.DeepEqual(*got, tok) {
			t.Fatalf("%+v: read %+v, %v", tok, got, err)
		}
		if want := byte(1); tok == base && e.Buf[0] != want {
			t.Fatalf("a token without marks is version %d", e.Buf[0])
		}
	}
	bad := closing
	bad.Status = TokenActive
	e := fsm.Encoder{}
	bad.Encode(&e)
	d := fsm.NewDecoder(e.Buf)
	ReadToken(d)
	if d.Finish("token") == nil {
		t.Fatal("a close mark on an Active token decoded")
	}
}
