package gigpay

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

const project = "gp"

type harness struct {
	t      *testing.T
	m      *fsm.Machine
	core   *ledger.Ledger
	family *Family
	index  uint64
	now    int64
	seq    int
}

func newHarness(t *testing.T) *harness {
	reg := fsm.NewRegistry()
	core := ledger.Register(reg)
	f := Register(reg, core)
	m, err := fsm.Open(t.TempDir(), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, m: m, core: core.Of(m), family: f, now: 1_700_000_000_000}
	t.Cleanup(func() {
		if err := h.core.CheckInvariants(); err != nil {
			t.Errorf("invariants: %v", err)
		}
		m.Close()
	})
	h.ok(&ledger.CreateProject{ProjectID: project, Name: "GigPay"})
	h.ok(&ledger.CreateAsset{ProjectID: project, AssetID: "usd", Name: "US dollar", Code: "USD", Fractions: 100})
	h.ok(&ledger.CreateAsset{ProjectID: project, AssetID: "eur", Name: "Euro", Code: "EUR", Fractions: 100})
	h.ok(&ledger.CreateAsset{ProjectID: project, AssetID: "odd", Name: "Thirds", Code: "ODD", Fractions: 3})
	return h
}

func (h *harness) apply(c fsm.Command) *fsm.Result {
	h.t.Helper()
	return h.applyAt(h.now+1000, c)
}

func (h *harness) applyAt(now int64, c fsm.Command) *fsm.Result {
	h.t.Helper()
	h.index++
	h.now = now
	out := h.m.ApplyBatch(h.index, h.now, [][]byte{fsm.EncodeCommand(c)})
	return out[0].(*fsm.Result)
}

func (h *harness) ok(c fsm.Command) *fsm.Result {
	h.t.Helper()
	r := h.apply(c)
	if r.Err != nil {
		h.t.Fatalf("%T: %v", c, r.Err)
	}
	return r
}

// wallet opens a wallet of asset for customer (all in slot 0001, one shard) funded with cents.
func (h *harness) wallet(customer, asset string, cents uint64) string {
	h.t.Helper()
	h.seq++
	id := fmt.Sprintf("w0001%s%d", customer, h.seq)
	if r := h.apply(&ledger.UpsertCustomer{ProjectID: project, CustomerID: customer}); r.Err != nil {
		h.t.Fatal(r.Err)
	}
	h.ok(&ledger.CreateWallet{ProjectID: project, CustomerID: customer, WalletID: id, AssetID: asset})
	if cents > 0 {
		h.ok(&ledger.Transact{ProjectID: project, IDPrefix: "t0001", ReferenceID: "fund-" + id,
			Operations: []ledger.Operation{{Type: ledger.OperationIssue, To: id, Amount: fsm.AmountFromUint64(cents)}}})
	}
	return id
}

func (h *harness) spec(source string, cents uint64) TokenSpec {
	h.seq++
	return TokenSpec{ID: fmt.Sprintf("k0001tok%d", h.seq), Token: fmt.Sprintf("g0001%022d", h.seq), SourceWalletID: source,
		AssetID: "usd", Amount: Decimal{Units: fsm.AmountFromUint64(cents), Scale: 2}, ExpiresAt: h.now + 60_000, Memo: "lunch"}
}

// create creates one token and returns its result item.
func (h *harness) create(s TokenSpec) TokenResult {
	h.t.Helper()
	r := h.apply(&CreateTokens{ProjectID: project, Items: []TokenSpec{s}})
	if r.Err != nil {
		h.t.Fatalf("create: %v", r.Err)
	}
	return r.Value.(*TokenResults).Items[0]
}

func (h *harness) mustCreate(s TokenSpec) *Token {
	h.t.Helper()
	it := h.create(s)
	if it.Err != nil {
		h.t.Fatalf("create %s: %v", s.ID, it.Err)
	}
	return it.Token
}

func (h *harness) balance(walletID string) (balance, available uint64) {
	h.t.Helper()
	w := h.core.Wallet(project, walletID)
	if w == nil {
		h.t.Fatalf("no wallet %s", walletID)
	}
	return w.Balance.Lo, h.core.Available(project, walletID).Lo
}

func (h *harness) wantBalance(walletID string, balance, available uint64) {
	h.t.Helper()
	if b, a := h.balance(walletID); b != balance || a != available {
		h.t.Fatalf("wallet %s: balance %d available %d, want %d and %d", walletID, b, a, balance, available)
	}
}

func wantCode(t *testing.T, err *fsm.Error, code fsm.ErrorCode) {
	t.Helper()
	if err == nil || err.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func (h *harness) events() []string {
	h.t.Helper()
	evs, err := h.m.Events(0, 10_000)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if _, ok, err := EventSubject(ev); ok {
			if err != nil {
				h.t.Fatal(err)
			}
			out = append(out, ev.Type)
		}
	}
	return out
}

func TestCreateHoldsAndClaimTransfers(t *testing.T) {
	h := newHarness(t)
	payer, payee := h.wallet("alice", "usd", 1000), h.wallet("bob", "usd", 0)
	s := h.spec(payer, 250)
	s.Amount = Decimal{Units: fsm.AmountFromUint64(25), Scale: 1} // 2.5 = 250 cents
	tok := h.mustCreate(s)
	if tok.Status != TokenActive || tok.Amount.Lo != 250 || tok.Fractions != 100 || tok.SourceCustomerID != "alice" || tok.HoldID == "" {
		t.Fatalf("token %+v", tok)
	}
	h.wantBalance(payer, 1000, 750)

	r := h.apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	claimed := r.Value.(*Token)
	if claimed.Status != TokenSucceeded || claimed.DestinationWalletID != payee || claimed.PaymentID != PaymentIDOfToken(tok.ID) || claimed.TransactionID == "" {
		t.Fatalf("claimed %+v", claimed)
	}
	h.wantBalance(payer, 750, 750)
	h.wantBalance(payee, 250, 250)
	p, err := h.family.Of(h.m).GetPayment(project, claimed.PaymentID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != PaymentTransfer || p.Status != PaymentCompleted || p.Amount.Lo != 250 || p.TokenID != tok.ID ||
		p.Source.WalletID != payer || p.Destination.CustomerID != "bob" {
		t.Fatalf("payment %+v", p)
	}
	// Exactly once: a second claim, a reject, are refused with the token's state.
	r = h.apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
	wantCode(t, r.Err, CodeTokenNotActive)
	if r.Value.(*Token).Status != TokenSucceeded {
		t.Fatalf("refusal carries %+v", r.Value)
	}
	wantCode(t, h.apply(&RejectToken{ProjectID: project, Token: tok.Token}).Err, CodeTokenNotActive)
	h.wantBalance(payee, 250, 250)
	want := []string{EventTokenCreated, EventTokenSucceeded, EventPaymentCreated}
	if got := h.events(); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestCreateRefusals(t *testing.T) {
	h := newHarness(t)
	payer := h.wallet("alice", "usd", 100)
	odd := h.wallet("carol", "odd", 9)
	cases := []struct {
		name string
		edit func(*TokenSpec)
		code fsm.ErrorCode
	}{
		{"insufficient", func(s *TokenSpec) { s.Amount.Units = fsm.AmountFromUint64(101) }, ledger.CodeInsufficientFunds},
		{"zero", func(s *TokenSpec) { s.Amount.Units = fsm.Amount{} }, fsm.CodeInvalidArgument},
		{"too precise", func(s *TokenSpec) { s.Amount = Decimal{Units: fsm.AmountFromUint64(1), Scale: 3} }, CodeTooPrecise},
		{"huge", func(s *TokenSpec) { s.Amount = Decimal{Units: fsm.Amount{Hi: 1 << 63}} }, fsm.CodeInvalidArgument},
		{"past", func(s *TokenSpec) { s.ExpiresAt = h.now }, CodeExpiryInvalid},
		{"far", func(s *TokenSpec) { s.ExpiresAt = h.now + TokenLifetimeMaxMs + 10_000 }, CodeExpiryInvalid},
		{"memo", func(s *TokenSpec) { s.Memo = string(make([]byte, MemoMaxLength+1)) }, fsm.CodeInvalidArgument},
		{"memo control", func(s *TokenSpec) { s.Memo = "a\x00b" }, fsm.CodeInvalidArgument},
		{"unknown wallet", func(s *TokenSpec) { s.SourceWalletID = "w0001nobody" }, ledger.CodeWalletNotFound},
		{"other asset", func(s *TokenSpec) { s.AssetID = "eur" }, ledger.CodeAssetMismatch},
		{"unsupported asset", func(s *TokenSpec) { s.SourceWalletID, s.AssetID = odd, "odd" }, CodeUnsupportedAsset},
		{"short token", func(s *TokenSpec) { s.Token = "g0001abc" }, fsm.CodeInvalidArgument},
		{"bad id", func(s *TokenSpec) { s.ID = "k 1" }, fsm.CodeInvalidArgument},
	}
	for _, c := range cases {
		s := h.spec(payer, 50)
		c.edit(&s)
		it := h.create(s)
		if it.Err == nil || it.Err.Code != c.code || it.Token != nil {
			t.Fatalf("%s: %+v, want %s", c.name, it, c.code)
		}
	}
	// Nothing changed: no hold, no failed transaction, no event.
	h.wantBalance(payer, 100, 100)
	if txs, _, err := h.core.ListTransactions(project, ledger.TimeRange{ToMs: 1 << 62}, ledger.PageRequest{Page: 1, PageSize: 100}); err != nil || len(txs) != 2 {
		t.Fatalf("transactions %d (%v), want the two fundings", len(txs), err)
	}
	if evs := h.events(); len(evs) != 0 {
		t.Fatalf("events %v", evs)
	}
	// A suspended source cannot create.
	h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payer, Status: ledger.WalletSuspendedStatus})
	wantCode(t, h.create(h.spec(payer, 10)).Err, ledger.CodeWalletSuspended)
	// A batch is per item, and an empty or oversized batch is refused whole.
	wantCode(t, h.apply(&CreateTokens{ProjectID: project}).Err, fsm.CodeInvalidArgument)
}

func TestRejectAndExpiryReleaseTheHold(t *testing.T) {
	h := newHarness(t)
	payer, payee := h.wallet("alice", "usd", 1000), h.wallet("bob", "usd", 0)
	a, b, c := h.mustCreate(h.spec(payer, 100)), h.mustCreate(h.spec(payer, 200)), h.mustCreate(h.spec(payer, 300))
	h.wantBalance(payer, 1000, 400)
	r := h.apply(&RejectToken{ProjectID: project, Token: a.Token})
	if r.Err != nil || r.Value.(*Token).Status != TokenRejected {
		t.Fatalf("reject: %+v %v", r.Value, r.Err)
	}
	h.wantBalance(payer, 1000, 500)
	wantCode(t, h.apply(&ClaimToken{ProjectID: project, Token: a.Token, DestinationWalletID: payee}).Err, CodeTokenNotActive)

	// The leader's tick at b's expiry expires b (and c, created later, only at its own time).
	// NextDueMs is a lower bound: a's expiry until a batch looks again.
	if due := h.m.NextDueMs(); due == 0 || due > b.ExpiresAt {
		t.Fatalf("next due %d, want at most %d", due, b.ExpiresAt)
	}
	h.applyAt(b.ExpiresAt, &fsm.Tick{})
	got, err := h.family.Of(h.m).GetToken(project, b.ID)
	if err != nil || got.Status != TokenExpired {
		t.Fatalf("b after its expiry: %+v %v", got, err)
	}
	h.wantBalance(payer, 1000, 700)
	// A claim that arrives at c's expiry, before any tick, finds it expired.
	r = h.applyAt(c.ExpiresAt, &ClaimToken{ProjectID: project, Token: c.Token, DestinationWalletID: payee})
	wantCode(t, r.Err, CodeTokenNotActive)
	if r.Value.(*Token).Status != TokenExpired {
		t.Fatalf("c: %+v", r.Value)
	}
	h.wantBalance(payer, 1000, 1000)
	h.wantBalance(payee, 0, 0)
	if due := h.m.NextDueMs(); due != 0 {
		t.Fatalf("next due %d after every token ended", due)
	}
}

func TestClaimRefusals(t *testing.T) {
	h := newHarness(t)
	payer, payee := h.wallet("alice", "usd", 1000), h.wallet("bob", "usd", 0)
	euro := h.wallet("bob", "eur", 0)
	tok := h.mustCreate(h.spec(payer, 100))
	for name, c := range map[string]struct {
		cmd  *ClaimToken
		code fsm.ErrorCode
	}{
		"forged":      {&ClaimToken{ProjectID: project, Token: tok.Token[:len(tok.Token)-1] + "x", DestinationWalletID: payee}, CodeTokenNotFound},
		"truncated":   {&ClaimToken{ProjectID: project, Token: tok.Token[:10], DestinationWalletID: payee}, CodeTokenNotFound},
		"other proj":  {&ClaimToken{ProjectID: "other", Token: tok.Token, DestinationWalletID: payee}, CodeTokenNotFound},
		"no payee":    {&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: "w0001none"}, ledger.CodeWalletNotFound},
		"to itself":   {&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payer}, fsm.CodeInvalidArgument},
		"other asset": {&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: euro}, ledger.CodeAssetMismatch},
	} {
		if r := h.apply(c.cmd); r.Err == nil || r.Err.Code != c.code {
			t.Fatalf("%s: %v, want %s", name, r.Err, c.code)
		}
	}
	// A suspended payer: the claim is refused and the token stays active, claimable later.
	h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payer, Status: ledger.WalletSuspendedStatus})
	r := h.apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
	wantCode(t, r.Err, ledger.CodeWalletSuspended)
	if r.Value.(*Token).Status != TokenActive {
		t.Fatalf("token after a refused claim: %+v", r.Value)
	}
	h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payer, Status: ledger.WalletOpen})
	h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payee, Status: ledger.WalletSuspendedStatus})
	wantCode(t, h.apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee}).Err, ledger.CodeWalletSuspended)
	h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payee, Status: ledger.WalletOpen})
	h.ok(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
	h.wantBalance(payee, 100, 100)
}

func TestCloseCompensates(t *testing.T) {
	h := newHarness(t)
	payer, payee := h.wallet("alice", "usd", 1000), h.wallet("bob", "usd", 0)
	tok := h.mustCreate(h.spec(payer, 400))
	wantCode(t, h.apply(&CloseToken{ProjectID: project, TokenID: tok.ID}).Err, ledger.CodeInvalidStatusTransition)
	h.ok(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
	// The payee spent part of it: the reversal needs the whole amount available.
	other := h.wallet("dave", "usd", 0)
	h.ok(&ledger.Transact{ProjectID: project, IDPrefix: "t0001", ReferenceID: "spend",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: payee, To: other, Amount: fsm.AmountFromUint64(300)}}})
	wantCode(t, h.apply(&CloseToken{ProjectID: project, TokenID: tok.ID, Reason: "masspay"}).Err, ledger.CodeInsufficientFunds)
	h.ok(&ledger.Transact{ProjectID: project, IDPrefix: "t0001", ReferenceID: "back",
		Operations: []ledger.Operation{{Type: ledger.OperationTransfer, From: other, To: payee, Amount: fsm.AmountFromUint64(300)}}})
	r := h.ok(&CloseToken{ProjectID: project, TokenID: tok.ID, Reason: "masspay: payee account closed"})
	closed := r.Value.(*Token)
	if closed.Status != TokenClosed || closed.ReversalTransactionID == "" || closed.Reason == "" {
		t.Fatalf("closed %+v", closed)
	}
	h.wantBalance(payer, 1000, 1000)
	h.wantBalance(payee, 0, 0)
	p, _ := h.family.Of(h.m).GetPayment(project, closed.PaymentID)
	if p.Status != PaymentCanceled || p.ReversalTransactionID != closed.ReversalTransactionID {
		t.Fatalf("payment %+v", p)
	}
	wantCode(t, h.apply(&CloseToken{ProjectID: project, TokenID: tok.ID}).Err, ledger.CodeInvalidStatusTransition)
	h.wantBalance(payer, 1000, 1000)
}

func TestClientReference(t *testing.T) {
	h := newHarness(t)
	payer := h.wallet("alice", "usd", 1000)
	s := h.spec(payer, 100)
	s.ClientReference = "order-1"
	first := h.mustCreate(s)
	retry := s
	retry.ID, retry.Token = "k0001other", "g0001zzzzzzzzzzzzzzzzzzzzzz"
	it := h.create(retry)
	if it.Err != nil || !it.Replayed || it.Token.ID != first.ID {
		t.Fatalf("retry %+v", it)
	}
	retry.Memo = "dinner"
	wantCode(t, h.create(retry).Err, CodeClientReferenceMismatch)
	h.wantBalance(payer, 1000, 900)
	// A batch: good, bad and replayed items, each with its own result.
	bad := h.spec(payer, 5000)
	good := h.spec(payer, 50)
	r := h.ok(&CreateTokens{ProjectID: project, Items: []TokenSpec{good, bad, s}})
	items := r.Value.(*TokenResults).Items
	if items[0].Err != nil || items[1].Err == nil || items[1].Err.Code != ledger.CodeInsufficientFunds || !items[2].Replayed {
		t.Fatalf("batch %+v", items)
	}
	h.wantBalance(payer, 1000, 850)
}

func TestAdminPayments(t *testing.T) {
	h := newHarness(t)
	w := h.wallet("alice", "usd", 0)
	dep := h.ok(&CreatePayment{ProjectID: project, PaymentID: "y0001dep", Type: PaymentDeposit, WalletID: w, AssetID: "usd",
		Amount: Decimal{Units: fsm.AmountFromUint64(1000), Scale: 0}, ExternalStorage: "wire:1", ClientReference: "d1"}).Value.(*Payment)
	if dep.Status != PaymentPending || dep.Amount.Lo != 100_000 || dep.Source.ExternalStorage != "wire:1" || dep.Destination.WalletID != w {
		t.Fatalf("deposit %+v", dep)
	}
	h.wantBalance(w, 0, 0)
	h.ok(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentProcessing})
	h.ok(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentCompleted})
	h.wantBalance(w, 100_000, 100_000)
	// Completing twice changes nothing; a final payment moves no more.
	h.ok(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentCompleted})
	h.wantBalance(w, 100_000, 100_000)
	wantCode(t, h.apply(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentFailed}).Err, ledger.CodeInvalidStatusTransition)
	wantCode(t, h.apply(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentPending}).Err, ledger.CodeInvalidStatusTransition)

	wd := func(id string, units uint64) *fsm.Result {
		return h.apply(&CreatePayment{ProjectID: project, PaymentID: id, Type: PaymentWithdrawal, WalletID: w, AssetID: "usd",
			Amount: Decimal{Units: fsm.AmountFromUint64(units)}, ExternalStorage: "ach:9"})
	}
	wantCode(t, wd("y0001big", 2000).Err, ledger.CodeInsufficientFunds)
	a := wd("y0001wa", 300).Value.(*Payment)
	b := wd("y0001wb", 200).Value.(*Payment)
	h.wantBalance(w, 100_000, 50_000)
	h.ok(&UpdatePayment{ProjectID: project, PaymentID: a.ID, Status: PaymentCompleted})
	h.ok(&UpdatePayment{ProjectID: project, PaymentID: b.ID, Status: PaymentFailed, Reason: "ach returned"})
	h.wantBalance(w, 70_000, 70_000)
	wantCode(t, wd("y0001wa", 1).Err, CodePaymentExists)
	// A deposit replayed by its client reference, and a mismatch.
	r := h.ok(&CreatePayment{ProjectID: project, PaymentID: "y0001dep2", Type: PaymentDeposit, WalletID: w, AssetID: "usd",
		Amount: Decimal{Units: fsm.AmountFromUint64(1000)}, ExternalStorage: "wire:1", ClientReference: "d1"})
	if !r.Replayed || r.Value.(*Payment).ID != dep.ID {
		t.Fatalf("replay %+v", r)
	}
	wantCode(t, h.apply(&CreatePayment{ProjectID: project, PaymentID: "y0001dep3", Type: PaymentDeposit, WalletID: w, AssetID: "usd",
		Amount: Decimal{Units: fsm.AmountFromUint64(999)}, ExternalStorage: "wire:1", ClientReference: "d1"}).Err, CodeClientReferenceMismatch)
	wantCode(t, h.apply(&CreatePayment{ProjectID: project, PaymentID: "y0001t", Type: PaymentTransfer, WalletID: w, AssetID: "usd",
		Amount: Decimal{Units: fsm.AmountFromUint64(1)}}).Err, fsm.CodeInvalidArgument)
}

// TestHoldsAddUp runs a random mix of creates, claims, rejects, closes, withdrawals and clock
// jumps against a model: every wallet's available balance is its balance minus its active
// tokens and pending withdrawals, and the money of the project never changes but by deposits.
func TestHoldsAddUp(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var wallets []string
	for i := range 6 {
		wallets = append(wallets, h.wallet(fmt.Sprintf("c%d", i), "usd", 10_000))
	}
	var tokens []*Token
	type wd struct {
		id     string
		wallet string
		amount uint64
	}
	var withdrawals []wd
	var redeemed uint64
	for step := range 600 {
		switch op := rng.IntN(10); {
		case op < 4:
			s := h.spec(wallets[rng.IntN(len(wallets))], uint64(1+rng.IntN(3000)))
			s.ExpiresAt = h.now + int64(1+rng.IntN(20))*1000
			if it := h.create(s); it.Token != nil {
				tokens = append(tokens, it.Token)
			}
		case op < 6 && len(tokens) > 0:
			tok := tokens[rng.IntN(len(tokens))]
			h.apply(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: wallets[rng.IntN(len(wallets))]})
		case op < 7 && len(tokens) > 0:
			h.apply(&RejectToken{ProjectID: project, Token: tokens[rng.IntN(len(tokens))].Token})
		case op < 8 && len(tokens) > 0:
			h.apply(&CloseToken{ProjectID: project, TokenID: tokens[rng.IntN(len(tokens))].ID})
		case op < 9:
			id := fmt.Sprintf("y0001w%d", step)
			w := wallets[rng.IntN(len(wallets))]
			amount := uint64(1 + rng.IntN(500))
			r := h.apply(&CreatePayment{ProjectID: project, PaymentID: id, Type: PaymentWithdrawal, WalletID: w, AssetID: "usd",
				Amount: Decimal{Units: fsm.AmountFromUint64(amount), Scale: 2}})
			if r.Err == nil {
				withdrawals = append(withdrawals, wd{id, w, amount})
			}
		default:
			if len(withdrawals) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(withdrawals))
				status := []PaymentStatus{PaymentCompleted, PaymentFailed, PaymentCanceled, PaymentProcessing}[rng.IntN(4)]
				r := h.apply(&UpdatePayment{ProjectID: project, PaymentID: withdrawals[i].id, Status: status})
				if r.Err == nil && status == PaymentCompleted {
					redeemed += withdrawals[i].amount
				}
				if r.Err == nil && status != PaymentProcessing {
					withdrawals = slices.Delete(withdrawals, i, i+1)
				}
			} else {
				h.apply(&fsm.Tick{}) // time passes: expiries
				h.now += int64(rng.IntN(5000))
			}
		}
		// The model: what each wallet holds is its active tokens and pending withdrawals.
		held := map[string]uint64{}
		for _, tok := range tokens {
			got, err := h.family.Of(h.m).GetToken(project, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == TokenActive {
				held[got.SourceWalletID] += got.Amount.Lo
			}
		}
		for _, w := range withdrawals {
			held[w.wallet] += w.amount
		}
		var total uint64
		for _, w := range wallets {
			b, a := h.balance(w)
			total += b
			if b-a != held[w] {
				t.Fatalf("step %d: wallet %s holds %d, its active tokens and withdrawals %d", step, w, b-a, held[w])
			}
		}
		if total != 6*10_000-redeemed {
			t.Fatalf("step %d: the wallets hold %d, want %d", step, total, 6*10_000-redeemed)
		}
	}
}

// TestListPayments pages through payments in every order and with every filter, split into
// pieces as shards would answer, and compares with a model.
func TestListPayments(t *testing.T) {
	h := newHarness(t)
	rng := rand.New(rand.NewPCG(3, 4))
	wallets := []string{h.wallet("a", "usd", 1_000_000), h.wallet("b", "usd", 1_000_000), h.wallet("c", "eur", 0)}
	var all []Payment
	for i := range 80 {
		h.now += int64(rng.IntN(3)) * 1000 // several payments share a creation time
		w := wallets[rng.IntN(len(wallets))]
		asset := "usd"
		if w == wallets[2] {
			asset = "eur"
		}
		typ := PaymentDeposit
		if asset == "usd" && rng.IntN(2) == 0 {
			typ = PaymentWithdrawal
		}
		r := h.applyAt(h.now, &CreatePayment{ProjectID: project, PaymentID: fmt.Sprintf("y0001p%02d", i), Type: typ, WalletID: w,
			AssetID: asset, Amount: Decimal{Units: fsm.AmountFromUint64(uint64(1 + rng.IntN(50))), Scale: uint8(rng.IntN(3))}})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		p := r.Value.(*Payment)
		if rng.IntN(3) == 0 {
			p = h.ok(&UpdatePayment{ProjectID: project, PaymentID: p.ID, Status: PaymentCompleted}).Value.(*Payment)
		}
		all = append(all, *p)
	}
	reader := h.family.Of(h.m)
	check := func(q PaymentQuery, limit, pieces int) {
		t.Helper()
		var want []Payment
		for i := range all {
			if q.matches(&all[i]) {
				want = append(want, all[i])
			}
		}
		key := TimeKey
		if q.Sort == SortAmount {
			key = AmountKey
		}
		slices.SortFunc(want, func(a, b Payment) int {
			c := slices.Compare(key(&a), key(&b))
			if q.Descending {
				return -c
			}
			return c
		})
		var got []Payment
		q.Limit = limit
		q.ScanMax = 7 // small: pages stop at scan bounds too
		for range 1000 {
			// The shards' answers: the one store's answer cut into pieces by payment ID, each a
			// shard of its own (a shard answers only its own payments).
			var pages []*PaymentPage
			for piece := range pieces {
				sub := q
				if pieces == 1 {
					page, err := reader.ListPayments(project, &sub)
					if err != nil {
						t.Fatal(err)
					}
					pages = append(pages, page)
					continue
				}
				pages = append(pages, pieceOf(t, reader, &sub, piece, pieces))
			}
			items, next, more := MergePages(&q, pages)
			got = append(got, items...)
			if !more {
				break
			}
			q.After = next
		}
		if len(got) != len(want) {
			t.Fatalf("query %+v limit %d pieces %d: got %d payments, want %d", q, limit, pieces, len(got), len(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("query %+v limit %d pieces %d: item %d is %s, want %s", q, limit, pieces, i, got[i].ID, want[i].ID)
			}
		}
	}
	queries := []PaymentQuery{
		{Sort: SortCreated}, {Sort: SortCreated, Descending: true}, {Sort: SortAmount}, {Sort: SortAmount, Descending: true},
		{Sort: SortCreated, Status: PaymentCompleted}, {Sort: SortAmount, Type: PaymentWithdrawal, Descending: true},
		{Sort: SortCreated, WalletID: wallets[0]}, {Sort: SortCreated, WalletID: wallets[1], Descending: true},
		{Sort: SortAmount, WalletID: wallets[2]}, {Sort: SortCreated, AssetID: "eur"},
		{Sort: SortCreated, FromMs: all[20].CreatedAt, ToMs: all[60].CreatedAt},
		{Sort: SortAmount, FromMs: all[10].CreatedAt, Status: PaymentPending, Descending: true},
	}
	for _, q := range queries {
		for _, limit := range []int{1, 5, 100} {
			for _, pieces := range []int{1, 3} {
				check(q, limit, pieces)
			}
		}
	}
}

// pieceOf answers a query as the shard that holds the payments whose index (their ID's last
// digits) is piece mod pieces would: by filtering a full answer with the same scan bound.
func pieceOf(t *testing.T, r *Reader, q *PaymentQuery, piece, pieces int) *PaymentPage {
	t.Helper()
	// Walk the order one entry at a time, keeping this piece's entries only, with the same
	// limit and scan bound as ListPayments.
	page := &PaymentPage{}
	after := q.After
	scanned := 0
	for {
		all := *q
		all.After, all.Limit, all.ScanMax = after, 1, 1<<20
		all.Status, all.Type, all.WalletID, all.AssetID, all.FromMs, all.ToMs = 0, 0, "", "", 0, 0
		one, err := r.ListPayments(project, &all)
		if err != nil {
			t.Fatal(err)
		}
		if len(one.Items) == 0 {
			page.Exhausted = true
			return page
		}
		p := one.Items[0]
		after = one.Frontier
		if q.Sort == SortCreated && q.WalletID != "" && p.Source.WalletID != q.WalletID && p.Destination.WalletID != q.WalletID {
			continue
		}
		n := int(p.ID[len(p.ID)-1]-'0') + 10*int(p.ID[len(p.ID)-2]-'0')
		if n%pieces != piece {
			continue
		}
		if len(page.Items) == q.Limit || scanned == q.ScanMax {
			return page
		}
		scanned++
		page.Frontier = after
		if q.matches(&p) {
			page.Items = append(page.Items, p)
		}
	}
}

// A deposit or withdrawal whose completion failed (the account suspended) completes once the
// cause is gone, from RulesPaymentRetry: each attempt after a failed one takes a reference of
// its own. Before it, the failed attempt's transaction kept the payment's one reference and
// every later attempt answered DuplicateReferenceId for good (rules below it keep that).
func TestAPaymentCompletesAfterAFailedAttempt(t *testing.T) {
	for _, rules := range []uint32{RulesPaymentRetry, RulesPaymentRetry - 1} {
		h := newHarness(t)
		h.ok(&fsm.RaiseRules{Version: rules})
		w := h.wallet("alice", "usd", 500)
		dep := h.ok(&CreatePayment{ProjectID: project, PaymentID: "y0001dep", Type: PaymentDeposit, WalletID: w, AssetID: "usd",
			Amount: Decimal{Units: fsm.AmountFromUint64(3)}, ExternalStorage: "wire:1"}).Value.(*Payment)
		wd := h.ok(&CreatePayment{ProjectID: project, PaymentID: "y0001wd", Type: PaymentWithdrawal, WalletID: w, AssetID: "usd",
			Amount: Decimal{Units: fsm.AmountFromUint64(2)}, ExternalStorage: "ach:1"}).Value.(*Payment)
		status := func(s ledger.WalletStatus) {
			h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: w, Status: s})
		}
		complete := func(id string) *fsm.Result {
			return h.apply(&UpdatePayment{ProjectID: project, PaymentID: id, Status: PaymentCompleted})
		}
		status(ledger.WalletSuspendedStatus)
		wantCode(t, complete(dep.ID).Err, ledger.CodeWalletSuspended)
		wantCode(t, complete(wd.ID).Err, ledger.CodeWalletSuspended)
		if rules < RulesPaymentRetry {
			status(ledger.WalletOpen)
			wantCode(t, complete(dep.ID).Err, ledger.CodeDuplicateReferenceID)
			wantCode(t, complete(wd.ID).Err, ledger.CodeDuplicateReferenceID)
			h.wantBalance(w, 500, 300)
			continue
		}
		// A second failed attempt: the next one skips both failed references.
		wantCode(t, complete(dep.ID).Err, ledger.CodeWalletSuspended)
		wantCode(t, complete(wd.ID).Err, ledger.CodeWalletSuspended)
		status(ledger.WalletOpen)
		for _, id := range []string{dep.ID, wd.ID} {
			r := complete(id)
			if r.Err != nil || r.Value.(*Payment).Status != PaymentCompleted || r.Value.(*Payment).TransactionID == "" {
				t.Fatalf("completing %s after the account reopened: %+v %v", id, r.Value, r.Err)
			}
		}
		// 500 + the deposit's 300 − the withdrawal's 200, nothing held; a repeat changes nothing.
		h.wantBalance(w, 600, 600)
		h.ok(&UpdatePayment{ProjectID: project, PaymentID: dep.ID, Status: PaymentCompleted})
		h.wantBalance(w, 600, 600)
	}
}

// A claimed token's close that failed in the ledger (the payer's account suspended: the reversal
// cannot credit it) goes through once the account is open again, from RulesPaymentRetry; before
// it, the failed reversal kept the close's reference and the token could never be closed.
func TestACloseGoesThroughAfterAFailedAttempt(t *testing.T) {
	for _, rules := range []uint32{RulesPaymentRetry, RulesPaymentRetry - 1} {
		h := newHarness(t)
		h.ok(&fsm.RaiseRules{Version: rules})
		payer, payee := h.wallet("alice", "usd", 1000), h.wallet("bob", "usd", 0)
		tok := h.mustCreate(h.spec(payer, 400))
		h.ok(&ClaimToken{ProjectID: project, Token: tok.Token, DestinationWalletID: payee})
		status := func(s ledger.WalletStatus) {
			h.ok(&ledger.SetWalletStatus{ProjectID: project, WalletID: payer, Status: s})
		}
		closeToken := func() *fsm.Result { return h.apply(&CloseToken{ProjectID: project, TokenID: tok.ID}) }
		status(ledger.WalletSuspendedStatus)
		wantCode(t, closeToken().Err, ledger.CodeWalletSuspended)
		status(ledger.WalletOpen)
		if rules < RulesPaymentRetry {
			wantCode(t, closeToken().Err, ledger.CodeDuplicateReferenceID)
			h.wantBalance(payer, 600, 600)
			continue
		}
		status(ledger.WalletSuspendedStatus)
		wantCode(t, closeToken().Err, ledger.CodeWalletSuspended) // a second failed attempt
		status(ledger.WalletOpen)
		if r := closeToken(); r.Err != nil || r.Value.(*Token).Status != TokenClosed {
			t.Fatalf("close after the account reopened: %+v %v", r.Value, r.Err)
		}
		h.wantBalance(payer, 1000, 1000)
		h.wantBalance(payee, 0, 0)
	}
}
