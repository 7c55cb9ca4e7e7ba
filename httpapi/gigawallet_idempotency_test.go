package httpapi_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/httpapi"
	"github.com/gigaledger/gigaledger/httpapi/httpapitest"
)

// fakeChain is the Dogecoin node as the GigaWallet API uses it: it takes every transaction and
// counts what it was sent.
type fakeChain struct {
	mu     sync.Mutex
	sent   [][]byte
	refuse bool // refuse every transaction for good
}

type refusal struct{}

func (refusal) Error() string         { return "refused" }
func (refusal) RefusalReason() string { return "bad-txns-inputs-missingorspent" }

func (f *fakeChain) SetSyncHeight(context.Context, int64) (int, error) { return 1, nil }
func (f *fakeChain) FeeRateKoinuPerKB(context.Context) (uint64, error) { return 0, nil }
func (f *fakeChain) Broadcast(_ context.Context, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, bytes.Clone(raw))
	if f.refuse {
		return refusal{}
	}
	return nil
}

func (f *fakeChain) broadcasts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// payoutServer is the admin handler with GigaWallet on, a node that takes every transaction, and
// accounts shop and other holding confirmed deposits: shop 10, 5 and 5 DOGE, other 10 and 10.
type payoutServer struct {
	t       *testing.T
	c       *apiClient
	backend *httpapitest.LedgerBackend
	chain   *fakeChain
	height  int64
}

func newPayoutServer(t *testing.T) *payoutServer {
	t.Helper()
	s := newEmptyPayoutServer(t, 0)
	s.deposit("shop", "10")
	s.deposit("shop", "5")
	s.deposit("shop", "5")
	s.deposit("other", "10")
	s.deposit("other", "10")
	s.mine(nil)
	return s
}

// newEmptyPayoutServer is a payoutServer without deposits whose API's proposals each wait
// delay (a consensus round) before they apply.
func newEmptyPayoutServer(t *testing.T, delay time.Duration) *payoutServer {
	t.Helper()
	keys := testKeychain(t)
	backend := httpapitest.NewLedgerBackend(t)
	chain := &fakeChain{}
	cfg := gigaWalletTestConfig(keys)
	cfg.Chain = chain
	handler := httpapi.NewAdmin(httpapi.AdminConfig{Token: testToken, GigaWallet: cfg}, slowBackend{Backend: backend, delay: delay}, testLogger(t), nil)
	return &payoutServer{t: t, c: &apiClient{t: t, handler: handler, token: testToken}, backend: backend, chain: chain}
}

// Payouts of one account at once (an exchange's withdrawals) each plan from the outputs the
// others have not reserved: every one succeeds. Each reads the free outputs and proposes its
// plan; 12 at once ran out of the retries of a taken input.
func TestGigaWalletPayoutsAtOnce(t *testing.T) {
	s := newEmptyPayoutServer(t, 2*time.Millisecond)
	const n = 12
	for range n {
		s.deposit("shop", "1")
	}
	s.mine(nil)
	to := s.payTo()
	answers := s.c.doAtOnce(n, "POST", "/account/shop/pay", `{"pay":[{"amount":"0.5","to":"`+to+`"}]}`)
	for i, r := range answers {
		if r.status != 200 {
			t.Errorf("payout %d: %d %s", i, r.status, r.body)
		}
	}
	if got := s.payments("shop"); got != n || s.chain.broadcasts() != n {
		t.Fatalf("%d payouts, %d broadcasts; want %d", got, s.chain.broadcasts(), n)
	}
}

// deposit creates an invoice of the account (confirmed in its block) and mines a payment of it.
func (s *payoutServer) deposit(foreignID, amount string) string {
	s.t.Helper()
	s.c.do("POST", "/account/"+foreignID, `{}`).expect(200)
	var invoice struct{ ID string }
	s.c.do("POST", "/account/"+foreignID+"/invoice", `{"required_confirmations":0,"items":[{"type":"item","name":"x","quantity":1,"value":"`+amount+`"}]}`).
		expect(200).decode(&invoice)
	whole, err := strconv.ParseUint(amount, 10, 64) // whole DOGE
	if err != nil {
		s.t.Fatal(err)
	}
	s.mine(&gigawallet.ObservedOutput{Vout: 0, Address: invoice.ID, Koinu: whole * 100_000_000})
	return invoice.ID
}

// mine observes the next block, paying out when not nil.
func (s *payoutServer) mine(out *gigawallet.ObservedOutput) {
	s.t.Helper()
	s.height++
	c := &gigawallet.ObserveChain{Network: "testnet", Genesis: gigawallet.Hash{0xee}, Height: s.height,
		Hash: gigawallet.Hash{0xb0, byte(s.height)}, PrevHash: gigawallet.Hash{0xb0, byte(s.height - 1)}}
	if out != nil {
		c.Tags = []uint32{gigawallet.AddressTag(out.Address)}
		c.Txs = []gigawallet.ObservedTx{{TxID: gigawallet.Hash{0x70, byte(s.height)}, Outputs: []gigawallet.ObservedOutput{*out}}}
	}
	if s.height == 1 {
		c.PrevHash = c.Genesis
	}
	result, err := s.backend.Propose(context.Background(), fsm.Envelope{Command: c})
	if err != nil || result.Err != nil {
		s.t.Fatalf("observe block %d: %v %v", s.height, err, result.Err)
	}
}

// keyed sends a request with an Idempotency-Key ("" for none).
func (s *payoutServer) keyed(key, method, path, body string) *response {
	s.t.Helper()
	c := s.c
	if key != "" {
		c = c.withHeader("Idempotency-Key", key)
	}
	return c.do(method, path, body)
}

func (s *payoutServer) payments(foreignID string) int {
	s.t.Helper()
	var list struct{ Items []map[string]any }
	s.c.do("GET", "/account/"+foreignID+"/payments?limit=100", nil).expect(200).decode(&list)
	return len(list.Items)
}

func (s *payoutServer) balance(foreignID string) string {
	s.t.Helper()
	var b struct{ CurrentBalance, OutgoingBalance string }
	s.c.do("GET", "/account/"+foreignID+"/balance", nil).expect(200).decode(&b)
	return b.CurrentBalance + "/" + b.OutgoingBalance
}

// payTo is an address of the test network outside the accounts (a third account's invoice).
func (s *payoutServer) payTo() string {
	s.t.Helper()
	s.c.do("POST", "/account/payee", `{}`).expect(200)
	var invoice struct{ ID string }
	s.c.do("POST", "/account/payee/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"1"}]}`).expect(200).decode(&invoice)
	return invoice.ID
}

// TestGigaWalletPayIdempotencyKey: a payout retried with its key is answered the same payout and
// changes nothing — no second plan, signature, reservation or broadcast; the same key with
// another body is 409 already-exists and changes nothing; another key is another payout; the
// same key on another account is that account's own.
func TestGigaWalletPayIdempotencyKey(t *testing.T) {
	s := newPayoutServer(t)
	to := s.payTo()
	body := `{"pay":[{"amount":"3","to":"` + to + `"}]}`
	first := s.keyed("pay-1", "POST", "/account/shop/pay", body).expect(200)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first payout is marked replayed")
	}
	afterFirst, proposals := s.balance("shop"), s.backend.Proposals()
	if s.payments("shop") != 1 || s.chain.broadcasts() != 1 {
		t.Fatalf("%d payouts, %d broadcasts after one payout", s.payments("shop"), s.chain.broadcasts())
	}

	// The same key and body: the same answer, byte for byte; one check proposed, nothing else.
	again := s.keyed("pay-1", "POST", "/account/shop/pay", body).expect(200)
	if !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay answered %s (replayed %q), first %s", again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	if got := s.backend.Proposals() - proposals; got != 1 {
		t.Fatalf("a replay proposed %d commands, want the one check", got)
	}
	if s.payments("shop") != 1 || s.chain.broadcasts() != 1 || s.balance("shop") != afterFirst {
		t.Fatalf("after a replay: %d payouts, %d broadcasts, balance %s (was %s)", s.payments("shop"), s.chain.broadcasts(), s.balance("shop"), afterFirst)
	}

	// The same key, another body (or another route): 409 already-exists, nothing changed.
	s.keyed("pay-1", "POST", "/account/shop/pay", `{"pay":[{"amount":"4","to":"`+to+`"}]}`).expectError(409, "already-exists")
	s.keyed("pay-1", "POST", "/account/shop/paytx", body).expectError(409, "already-exists")
	s.keyed("pay-1", "POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"1"}]}`).expectError(409, "already-exists")
	if s.payments("shop") != 1 || s.chain.broadcasts() != 1 || s.balance("shop") != afterFirst {
		t.Fatalf("after a mismatch: %d payouts, %d broadcasts", s.payments("shop"), s.chain.broadcasts())
	}

	// Another key: another payout (the first one's inputs are reserved: it plans from the rest).
	second := s.keyed("pay-2", "POST", "/account/shop/pay", body).expect(200)
	if bytes.Equal(second.body, first.body) || s.payments("shop") != 2 || s.chain.broadcasts() != 2 {
		t.Fatalf("a second key: %s, %d payouts, %d broadcasts", second.body, s.payments("shop"), s.chain.broadcasts())
	}
	// Without a key: a payout each time, as before.
	s.keyed("", "POST", "/account/shop/pay", `{"pay":[{"amount":"1","to":"`+to+`"}]}`).expect(200).header.Get("Idempotent-Replayed")
	if s.payments("shop") != 3 {
		t.Fatalf("an unkeyed payout: %d payouts", s.payments("shop"))
	}

	// The same key on another account is that account's: a payout of its own.
	other := s.keyed("pay-1", "POST", "/account/other/pay", body).expect(200)
	if other.header.Get("Idempotent-Replayed") != "" || bytes.Equal(other.body, first.body) || s.payments("other") != 1 {
		t.Fatalf("the key on another account: %s (replayed %q), %d payouts", other.body, other.header.Get("Idempotent-Replayed"), s.payments("other"))
	}
	// And the first account's key still answers its own payout.
	s.keyed("pay-1", "POST", "/account/shop/pay", body).expect(200)
	if again := s.keyed("pay-1", "POST", "/account/shop/pay", body); !bytes.Equal(again.body, first.body) {
		t.Fatalf("shop's key answered %s", again.body)
	}
}

// TestGigaWalletPayTxAndPayFromIdempotencyKey: paytx (not sent) and payfrom replay the same way.
func TestGigaWalletPayTxAndPayFromIdempotencyKey(t *testing.T) {
	s := newPayoutServer(t)
	to := s.payTo()
	body := `{"pay":[{"amount":"2","to":"` + to + `"}]}`
	first := s.keyed("tx-1", "POST", "/account/shop/paytx", body).expect(200)
	again := s.keyed("tx-1", "POST", "/account/shop/paytx", body).expect(200)
	if !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" ||
		s.payments("shop") != 1 || s.chain.broadcasts() != 0 {
		t.Fatalf("paytx replay: %s vs %s, %d payouts, %d broadcasts", again.body, first.body, s.payments("shop"), s.chain.broadcasts())
	}
	var tx struct{ Tx string }
	first.decode(&tx)
	if tx.Tx == "" {
		t.Fatal("paytx answered no transaction")
	}

	// payfrom: other pays payee's invoice, once.
	var invoice struct{ ID string }
	s.c.do("POST", "/account/payee/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"4"}]}`).expect(200).decode(&invoice)
	path := "/invoice/" + invoice.ID + "/payfrom/other"
	paid := s.keyed("from-1", "POST", path, "").expect(200)
	replayed := s.keyed("from-1", "POST", path, "").expect(200)
	if !bytes.Equal(paid.body, replayed.body) || replayed.header.Get("Idempotent-Replayed") != "true" ||
		s.payments("other") != 1 || s.chain.broadcasts() != 1 {
		t.Fatalf("payfrom replay: %s vs %s, %d payouts, %d broadcasts", replayed.body, paid.body, s.payments("other"), s.chain.broadcasts())
	}
	// Without a key (or under another) the invoice is not paid twice: 409, nothing new.
	s.keyed("", "POST", path, "").expectError(409, "already-exists")
	s.keyed("from-2", "POST", path, "").expectError(409, "already-exists")
	if s.payments("other") != 1 || s.chain.broadcasts() != 1 {
		t.Fatalf("payfrom repeated: %d payouts, %d broadcasts", s.payments("other"), s.chain.broadcasts())
	}

	// An invoice above what one transaction can move (Core's MAX_MONEY) says so: it was called
	// "below the dust limit" once its total passed 2^64 koinu.
	for _, value := range []string{"10000000001", "1000000000000"} {
		var huge struct{ ID string }
		s.c.do("POST", "/account/payee/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"`+value+`"}]}`).expect(200).decode(&huge)
		var refusal map[string]map[string]string
		s.keyed("", "POST", "/invoice/"+huge.ID+"/payfrom/other", "").expectError(422, "invalid-txn").decode(&refusal)
		if msg := refusal["error"]["message"]; !strings.Contains(msg, "exceeds the most one transaction can pay") {
			t.Fatalf("payfrom of a %s DOGE invoice: %q", value, msg)
		}
	}
	if s.payments("other") != 1 || s.chain.broadcasts() != 1 {
		t.Fatalf("huge payfroms: %d payouts, %d broadcasts", s.payments("other"), s.chain.broadcasts())
	}
}

// TestGigaWalletInvoiceIdempotencyKey: an invoice created with a key is answered again, not
// created twice; another body under the key is 409; the key on another account is its own.
func TestGigaWalletInvoiceIdempotencyKey(t *testing.T) {
	c, _, _ := newGigaWalletServer(t)
	c.do("POST", "/account/shop", `{}`).expect(200)
	c.do("POST", "/account/other", `{}`).expect(200)
	body := `{"items":[{"type":"item","name":"Tea","quantity":1,"value":"1.5"}]}`
	keyed := c.withHeader("Idempotency-Key", "order-17")
	first := keyed.do("POST", "/account/shop/invoice", body).expect(200)
	again := keyed.do("POST", "/account/shop/invoice", body).expect(200)
	if !bytes.Equal(first.body, again.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %s, first %s", again.body, first.body)
	}
	keyed.do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"Tea","quantity":2,"value":"1.5"}]}`).expectError(409, "already-exists")
	var list struct{ Items []any }
	c.do("GET", "/account/shop/invoices", nil).expect(200).decode(&list)
	if len(list.Items) != 1 {
		t.Fatalf("%d invoices, want 1", len(list.Items))
	}
	if r := keyed.do("POST", "/account/other/invoice", body).expect(200); bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the key on another account answered %s", r.body)
	}
	// Without a key, a new invoice each time, as before.
	c.do("POST", "/account/shop/invoice", body).expect(200)
	c.do("GET", "/account/shop/invoices", nil).expect(200).decode(&list)
	if len(list.Items) != 2 {
		t.Fatalf("%d invoices, want 2", len(list.Items))
	}
}

// TestGigaWalletIdempotencyKeyBounds: an empty, oversize, control-character or repeated key is
// 400 bad-request before anything is proposed.
func TestGigaWalletIdempotencyKeyBounds(t *testing.T) {
	c, backend, _ := newGigaWalletServer(t)
	c.do("POST", "/account/shop", `{}`).expect(200)
	proposals := backend.Proposals()
	pay := `{"pay":[{"amount":"1","to":"nXXX"}]}`
	for name, key := range map[string]string{"oversize": strings.Repeat("k", fsm.IdempotencyKeyMaxLength+1), "control": "a\x01b", "invalid UTF-8": "a\xffb"} {
		for _, route := range []struct{ path, body string }{
			{"/account/shop/pay", pay}, {"/account/shop/paytx", pay}, {"/invoice/nXXX/payfrom/shop", ""},
			{"/account/shop/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"1"}]}`},
			{"/account/shop/invoice/nXXX/refund", `{"to":"nXXX"}`},
		} {
			r := c.withHeader("Idempotency-Key", key).do("POST", route.path, route.body)
			if r.status != 400 || !strings.Contains(string(r.body), "bad-request") {
				t.Errorf("%s key on %s: %d %s", name, route.path, r.status, r.body)
			}
		}
	}
	twice := c.withHeader()
	twice.header.Add("Idempotency-Key", "a")
	twice.header.Add("Idempotency-Key", "b")
	twice.do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"1"}]}`).expectError(400, "bad-request")
	if got := backend.Proposals() - proposals; got != 0 {
		t.Fatalf("bad keys proposed %d commands", got)
	}
	// The longest key is taken.
	c.withHeader("Idempotency-Key", strings.Repeat("k", fsm.IdempotencyKeyMaxLength)).
		do("POST", "/account/shop/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"1"}]}`).expect(200)
}

// TestGigaWalletReleasedPayoutIsNotReplayedAsASuccess: a payout the node refused (released) is
// answered 422 invalid-txn again on a retry with its key, never 200; a voided paytx likewise.
func TestGigaWalletReleasedPayoutIsNotReplayedAsASuccess(t *testing.T) {
	s := newPayoutServer(t)
	to := s.payTo()
	body := `{"pay":[{"amount":"3","to":"` + to + `"}]}`
	s.chain.mu.Lock()
	s.chain.refuse = true
	s.chain.mu.Unlock()
	s.keyed("refused", "POST", "/account/shop/pay", body).expectError(422, "invalid-txn")
	again := s.keyed("refused", "POST", "/account/shop/pay", body).expectError(422, "invalid-txn")
	if again.header.Get("Idempotent-Replayed") != "true" || s.chain.broadcasts() != 1 || s.payments("shop") != 1 {
		t.Fatalf("replay of a refused payout: replayed %q, %d broadcasts, %d payouts", again.header.Get("Idempotent-Replayed"), s.chain.broadcasts(), s.payments("shop"))
	}

	var paid struct{ Hex string }
	s.keyed("tx", "POST", "/account/shop/paytx", body).expect(200).decode(&paid)
	s.c.do("POST", "/account/shop/payment/"+paid.Hex+"/void", `{}`).expect(200)
	s.keyed("tx", "POST", "/account/shop/paytx", body).expectError(422, "invalid-txn")
	if s.payments("shop") != 2 {
		t.Fatalf("%d payouts, want 2", s.payments("shop"))
	}
}

// A refund of an invoice that received nothing is the same 422 with or without an amount (it
// was a 400 dust error without one, found by a probe).
func TestGigaWalletRefundOfNothing(t *testing.T) {
	s := newPayoutServer(t)
	s.c.do("POST", "/account/payee", `{}`).expect(200)
	var invoice struct{ ID string }
	s.c.do("POST", "/account/payee/invoice", `{"items":[{"type":"item","name":"x","quantity":1,"value":"4"}]}`).expect(200).decode(&invoice)
	for _, body := range []string{`{"to":"` + s.payTo() + `"}`, `{"to":"` + s.payTo() + `","amount":"1"}`} {
		var refusal map[string]map[string]string
		s.keyed("", "POST", "/account/payee/invoice/"+invoice.ID+"/refund", body).expectError(422, "invalid-txn").decode(&refusal)
		if msg := refusal["error"]["message"]; !strings.Contains(msg, "received 0 DOGE confirmed") {
			t.Fatalf("%s: %q", body, msg)
		}
	}
	if s.payments("payee") != 0 || s.chain.broadcasts() != 0 {
		t.Fatalf("%d payouts, %d broadcasts", s.payments("payee"), s.chain.broadcasts())
	}
}
