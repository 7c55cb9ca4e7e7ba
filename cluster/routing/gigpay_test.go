package routing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gigaledger/gigaledger/backend"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
)

// gigPayFixture is a GigPay project over four shards: a funded wallet in each shard, deposits
// spread over them (some completed), and one active token per wallet.
type gigPayFixture struct {
	shards   *localShards
	wallets  map[int]string // by shard
	payments []gigpay.Payment
	tokens   []gigpay.Token
}

func newGigPayFixture(t *testing.T) *gigPayFixture {
	t.Helper()
	shards := newLocalShards(t, 4)
	c := newClient(t, shards)
	c.do("POST", "/projects", map[string]any{"id": "gigpay", "name": "GigPay"}, 201)
	c.do("POST", "/projects/gigpay/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	f := &gigPayFixture{shards: shards, wallets: map[int]string{}}
	for i := 0; len(f.wallets) < 4; i++ {
		id := fmt.Sprintf("user-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("gigpay", id), 4))
		if f.wallets[shardID] != "" {
			continue
		}
		c.do("POST", "/projects/gigpay/customers", map[string]any{"id": id}, 200)
		f.wallets[shardID] = c.do("POST", "/projects/gigpay/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
	}
	router := New(shards)
	propose := func(cmd fsm.Command) fsm.Value {
		t.Helper()
		result, err := router.Propose(context.Background(), fsm.Envelope{Command: cmd})
		if err != nil || result.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, result.Err)
		}
		return result.Value
	}
	// Deposits: amounts repeat across shards (ties order by payment ID), times interleave.
	for k := range 6 {
		for shardID := range 4 {
			wallet := f.wallets[shardID]
			id := fmt.Sprintf("y%s-%d", wallet[1:5], k)
			p := propose(&gigpay.CreatePayment{ProjectID: "gigpay", PaymentID: id, Type: gigpay.PaymentDeposit, WalletID: wallet,
				AssetID: "usd", Amount: gigpay.Decimal{Units: fsm.AmountFromUint64(uint64(1 + (k*7+shardID)%5)), Scale: 0},
				ExternalStorage: "bank:1"}).(*gigpay.Payment)
			if k%2 == 0 {
				p = propose(&gigpay.UpdatePayment{ProjectID: "gigpay", PaymentID: id, Status: gigpay.PaymentCompleted}).(*gigpay.Payment)
			}
			f.payments = append(f.payments, *p)
		}
	}
	for shardID := range 4 {
		wallet := f.wallets[shardID]
		results := propose(&gigpay.CreateTokens{ProjectID: "gigpay", Items: []gigpay.TokenSpec{{
			ID: "k" + wallet[1:5] + "tok", Token: "g" + wallet[1:5] + "AbCdEfGhIjKlMnOpQrStUv", SourceWalletID: wallet, AssetID: "usd",
			Amount: gigpay.Decimal{Units: fsm.AmountFromUint64(1), Scale: 0}, ExpiresAt: shards.nowMs + 3_600_000, Memo: "tea"}}}).(*gigpay.TokenResults)
		if results.Items[0].Err != nil {
			t.Fatalf("token on shard %d: %v", shardID, results.Items[0].Err)
		}
		f.tokens = append(f.tokens, *results.Items[0].Token)
	}
	return f
}

// Tokens and payments are read from the shard their IDs (and token strings) name, locally or
// through the query; IDs that name no shard are not found without asking any.
func TestGigPayReadsRouteBySlot(t *testing.T) {
	f := newGigPayFixture(t)
	view := newPartialShards(f.shards, 2)
	for _, shards := range []Shards{f.shards, view} {
		rd, _ := New(shards).Read(context.Background())
		for _, want := range f.tokens {
			if got, err := rd.GetToken("gigpay", want.ID); err != nil || got.ID != want.ID || got.Token != want.Token {
				t.Fatalf("token %s: %+v, %v", want.ID, got, err)
			}
			if got, err := rd.GetTokenByString("gigpay", want.Token); err != nil || got.ID != want.ID {
				t.Fatalf("token by string %s: %+v, %v", want.Token, got, err)
			}
			forged := want.Token[:len(want.Token)-1] + "x"
			if _, err := rd.GetTokenByString("gigpay", forged); !hasCode(err, gigpay.CodeTokenNotFound) {
				t.Fatalf("forged token string: %v", err)
			}
			if _, err := rd.GetTokenByString("gigpay", want.Token[:len(want.Token)-3]); !hasCode(err, gigpay.CodeTokenNotFound) {
				t.Fatalf("truncated token string: %v", err)
			}
		}
		for _, want := range f.payments {
			if got, err := rd.GetGigPayPayment("gigpay", want.ID); err != nil || got.ID != want.ID || got.Status != want.Status {
				t.Fatalf("payment %s: %+v, %v", want.ID, got, err)
			}
		}
		if _, err := rd.GetGigPayPayment("gigpay", "y0fffnothing"); !hasCode(err, gigpay.CodePaymentNotFound) {
			t.Fatalf("missing payment: %v", err)
		}
		if _, err := rd.GetToken("other", f.tokens[0].ID); !hasCode(err, gigpay.CodeTokenNotFound) {
			t.Fatalf("a token of another project: %v", err)
		}
	}
	before := slices.Clone(view.queries)
	rd, _ := New(view).Read(context.Background())
	long := "k0001" + string(bytes.Repeat([]byte("x"), fsm.GeneratedIDMaxLength))
	for name, read := range map[string]func() error{
		"token without slot":   func() error { _, err := rd.GetToken("gigpay", "garbage"); return err },
		"long token ID":        func() error { _, err := rd.GetToken("gigpay", long); return err },
		"string without slot":  func() error { _, err := rd.GetTokenByString("gigpay", "gzzzzAbCdEfGhIjKlMnOpQrStUv"); return err },
		"empty string":         func() error { _, err := rd.GetTokenByString("gigpay", ""); return err },
		"payment without slot": func() error { _, err := rd.GetGigPayPayment("gigpay", "y"); return err },
	} {
		want := gigpay.CodeTokenNotFound
		if name == "payment without slot" {
			want = gigpay.CodePaymentNotFound
		}
		if err := read(); !hasCode(err, want) {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
	if !slices.Equal(view.queries, before) {
		t.Fatalf("reads of IDs without a slot asked shards: %v → %v", before, view.queries)
	}
}

func hasCode(err error, code fsm.ErrorCode) bool {
	var rejection *fsm.Error
	return errors.As(err, &rejection) && rejection.Code == code
}

// The payments list asks every shard and merges their pages: paging through it with any limit,
// scan bound, order and filter yields exactly the matching payments in order, the same through
// a node that hosts one shard only.
func TestGigPayPaymentsListMergesShards(t *testing.T) {
	f := newGigPayFixture(t)
	view := newPartialShards(f.shards, 2)
	for _, shards := range []Shards{f.shards, view} {
		router := New(shards)
		for _, sort := range []gigpay.PaymentSort{gigpay.SortCreated, gigpay.SortAmount} {
			for _, descending := range []bool{false, true} {
				for _, filter := range []gigpay.PaymentQuery{{}, {Status: gigpay.PaymentCompleted}, {WalletID: f.wallets[1]}} {
					want := expectedPayments(f.payments, sort, descending, &filter)
					for _, limit := range []int{1, 3, 1000} {
						for _, scanMax := range []int{0, 2} {
							q := filter
							q.Sort, q.Descending, q.Limit, q.ScanMax = sort, descending, limit, scanMax
							got := pageThrough(t, router, q)
							if !slices.Equal(ids(got), ids(want)) {
								t.Fatalf("sort %d desc %v filter %+v limit %d scan %d:\n got %v\nwant %v",
									sort, descending, filter, limit, scanMax, ids(got), ids(want))
							}
						}
					}
				}
			}
		}
	}
	for shardID, count := range view.queries {
		if hosted := view.hosted[shardID]; hosted != (count == 0) {
			t.Errorf("shard %d (hosted %v) was queried %d times", shardID, hosted, count)
		}
	}
	// A query no shard can take is refused before any is asked.
	rd, _ := New(view).Read(context.Background())
	before := slices.Clone(view.queries)
	for name, q := range map[string]gigpay.PaymentQuery{
		"no sort":    {Limit: 1},
		"no limit":   {Sort: gigpay.SortCreated},
		"long after": {Sort: gigpay.SortCreated, Limit: 1, After: make([]byte, queryArgsMaxBytes)},
		"scan bound": {Sort: gigpay.SortCreated, Limit: 1, ScanMax: paymentScanMax + 1},
	} {
		if _, _, _, err := rd.ListGigPayPayments("gigpay", q); !hasCode(err, fsm.CodeInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !slices.Equal(view.queries, before) {
		t.Fatalf("refused queries asked shards: %v → %v", before, view.queries)
	}
}

// pageThrough reads every page of q and checks that each page moves on.
func pageThrough(t *testing.T, router *Router, q gigpay.PaymentQuery) []gigpay.Payment {
	t.Helper()
	var all []gigpay.Payment
	for range 1000 {
		rd, err := router.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items, next, hasMore, err := rd.ListGigPayPayments("gigpay", q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		all = append(all, items...)
		if !hasMore {
			return all
		}
		if next == nil || bytes.Equal(next, q.After) {
			t.Fatalf("%+v: more, but the position did not move (%x)", q, next)
		}
		q.After = next
	}
	t.Fatalf("%+v: paging did not end", q)
	return nil
}

// expectedPayments is the whole list as one sorted read would give it.
func expectedPayments(all []gigpay.Payment, sort gigpay.PaymentSort, descending bool, filter *gigpay.PaymentQuery) []gigpay.Payment {
	var out []gigpay.Payment
	for _, p := range all {
		if (filter.Status == 0 || p.Status == filter.Status) &&
			(filter.WalletID == "" || p.Source.WalletID == filter.WalletID || p.Destination.WalletID == filter.WalletID) {
			out = append(out, p)
		}
	}
	key := gigpay.TimeKey
	if sort == gigpay.SortAmount {
		key = gigpay.AmountKey
	}
	slices.SortFunc(out, func(a, b gigpay.Payment) int {
		c := bytes.Compare(key(&a), key(&b))
		if descending {
			c = -c
		}
		return c
	})
	return out
}

func ids(payments []gigpay.Payment) []string {
	out := make([]string, len(payments))
	for i, p := range payments {
		out[i] = p.ID
	}
	return out
}

// GigPay events come with their records as subjects, through the query as well.
func TestGigPayEventSubjects(t *testing.T) {
	f := newGigPayFixture(t)
	rd, _ := New(newPartialShards(f.shards, 2)).Read(context.Background())
	seen := map[string]int{}
	for shardID := range 4 {
		part, err := rd.ListEvents(shardID, 0, backend.EventsMaxCount)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range part.Events {
			switch subject := ev.Subject.(type) {
			case *gigpay.Token:
				if ev.Type != gigpay.EventTokenCreated || subject.SourceWalletID != f.wallets[shardID] {
					t.Fatalf("shard %d: %s with token %+v", shardID, ev.Type, subject)
				}
			case *gigpay.Payment:
				if subject.Destination.WalletID != f.wallets[shardID] {
					t.Fatalf("shard %d: %s with payment %+v", shardID, ev.Type, subject)
				}
			default:
				continue
			}
			seen[ev.Type]++
		}
	}
	if seen[gigpay.EventTokenCreated] != 4 || seen[gigpay.EventPaymentCreated] != 24 || seen[gigpay.EventPaymentUpdated] < 12 {
		t.Fatalf("GigPay events with subjects: %v", seen)
	}
}
