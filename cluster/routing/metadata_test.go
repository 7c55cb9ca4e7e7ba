package routing

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/httpapi"
)

// shardZeroCounter counts what a router asks of the metadata shard: proposals, read fences
// (on a node that hosts it) and queries (on one that does not).
type shardZeroCounter struct {
	Shards
	mu                         sync.Mutex
	proposals, fences, queries int
}

func (s *shardZeroCounter) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	if shardID == MetadataShard {
		s.mu.Lock()
		s.proposals++
		s.mu.Unlock()
	}
	return s.Shards.Propose(ctx, shardID, command)
}

func (s *shardZeroCounter) LinearizableRead(ctx context.Context, shardID int) error {
	if shardID == MetadataShard {
		s.mu.Lock()
		s.fences++
		s.mu.Unlock()
	}
	return s.Shards.LinearizableRead(ctx, shardID)
}

func (s *shardZeroCounter) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	if shardID == MetadataShard {
		s.mu.Lock()
		s.queries++
		s.mu.Unlock()
	}
	return s.Shards.Query(ctx, shardID, query)
}

// asked is everything asked of shard 0 so far.
func (s *shardZeroCounter) asked() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d proposals, %d read fences, %d queries", s.proposals, s.fences, s.queries)
}

func (s *shardZeroCounter) queryCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// usersOnShard returns count IDs prefix-<n> whose slot in project lives on shardID of 4.
func usersOnShard(project, prefix string, shardID, count int) []string {
	var users []string
	for n := 0; len(users) < count; n++ {
		id := prefix + "-" + strconv.Itoa(n)
		if int(keyspace.ShardOfSlot(keyspace.SlotOf(project, id), 4)) == shardID {
			users = append(users, id)
		}
	}
	return users
}

// Issue 14 item 3: once a node has met a project and its asset, the requests that live on data
// shards ask nothing of the metadata shard — Cloud Wallet transfers (within one shard and
// across shards), customers and wallets of a used asset, wallet, entries and transaction reads,
// and GigPay accounts, deposits, tokens and claims — on a node that hosts shard 0 (no read fence
// there) and on one that does not (no query to it).
func TestDataShardRequestsAskNothingOfShardZeroOnceWarm(t *testing.T) {
	for _, hosted := range [][]int{{0, 1, 2, 3}, {1, 2, 3}} {
		t.Run(fmt.Sprintf("hosting %v", hosted), func(t *testing.T) {
			shards := newLocalShards(t, 4)
			var view Shards = shards
			if !slices.Contains(hosted, MetadataShard) {
				view = newPartialShards(shards, hosted...)
			}
			counter := &shardZeroCounter{Shards: view}
			clock := func() int64 {
				shards.mu.Lock()
				defer shards.mu.Unlock()
				return shards.nowMs
			}
			c := &client{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{GigPay: &httpapi.GigPayConfig{ProjectID: "gigpay", Clock: clock}},
				New(counter), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)}
			// The cross-shard protocol, carried by a driver over every shard as their leaders
			// would; its own steps are not the router's requests.
			driver := NewCrossDriver(shards, func(int) bool { return true }, nil)
			driver.Run(shards.ShardCount())
			t.Cleanup(driver.Close)

			c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
			c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
			one, two := usersOnShard("shop", "c", 1, 8), usersOnShard("shop", "c", 2, 8)
			wallet := func(customerID string) string {
				c.do("POST", "/projects/shop/customers", map[string]any{"id": customerID}, 200)
				return c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": customerID, "assetId": "usd"}, 201)["id"].(string)
			}
			reference := 0
			transact := func(operations ...map[string]any) string {
				reference++
				return c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "r" + strconv.Itoa(reference), "operations": operations}, 201)["id"].(string)
			}
			transfer := func(from, to string) string {
				return transact(map[string]any{"type": "transfer", "from": from, "to": to, "amount": 1})
			}
			gigPayAccount := func(user string) string {
				return c.do("POST", "/api/v1/accounts", map[string]any{"userIdentityId": user, "assetType": "usd"}, 201)["id"].(string)
			}
			payers, payees := usersOnShard("gigpay", "p", 3, 4), usersOnShard("gigpay", "q", 3, 4)
			deposit := func(account string) {
				id := c.do("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": account, "assetType": "usd",
					"amount": "10.00", "externalStorage": "bank"}, 201)["paymentId"].(string)
				c.do("POST", "/api/v1/payments/"+id+"/status", map[string]any{"status": "completed"}, 200)
			}
			token := func(payer, payee string) {
				created := c.do("POST", "/api/v1/payment-tokens", map[string]any{"sourceAccountId": payer, "assetType": "usd", "amount": "0.25",
					"expiresAtUtc": time.UnixMilli(clock() + 3_600_000).UTC().Format(time.RFC3339)}, 201)
				claimed := c.do("POST", "/api/v1/payment-tokens/"+created["token"].(string)+"/claim", map[string]any{"destinationAccountId": payee}, 200)
				if claimed["status"] != "Succeeded" {
					t.Fatalf("claim: %v", claimed)
				}
				c.do("GET", "/api/v1/payment-tokens/"+created["id"].(string), nil, 200)
			}
			// Everything once: the node meets the projects and their assets.
			a, b, x := wallet(one[0]), wallet(one[1]), wallet(two[0])
			transact(map[string]any{"type": "issue", "to": a, "amount": 1000})
			transfer(a, b)
			transfer(a, x)
			payer, payee := gigPayAccount(payers[0]), gigPayAccount(payees[0])
			deposit(payer)
			token(payer, payee)
			c.do("GET", "/api/v1/accounts/"+payer, nil, 200)

			before := counter.asked()
			for i := 1; i < 3; i++ {
				w := wallet(one[1+i])
				y := wallet(two[i])
				transfer(a, w)
				id := transfer(a, y) // across shards
				c.do("GET", "/projects/shop/wallets/"+w, nil, 200)
				c.do("GET", "/projects/shop/wallets/"+y+"/entries?page=1&pageSize=10&from=0&to=9999999999999", nil, 200)
				c.do("GET", "/projects/shop/transactions/"+id, nil, 200)
				c.do("GET", "/projects/shop/customers/"+one[1+i], nil, 200)
				p, q := gigPayAccount(payers[i]), gigPayAccount(payees[i])
				deposit(p)
				token(p, q)
				c.do("GET", "/api/v1/accounts/"+q, nil, 200)
			}
			if after := counter.asked(); after != before {
				t.Fatalf("data-shard requests asked shard 0: before them %s, after %s", before, after)
			}
		})
	}
}

// An asset's fractions are cached only once it is used: an unused asset may be deleted, and one
// of the same ID created again with other fractions, and the answer follows it; a used one is
// answered without asking shard 0 again, renamed or not, and the rename shows where the API
// shows names (GET asset, always read from shard 0).
func TestAssetFractionsAreCachedOnlyForUsedAssets(t *testing.T) {
	shards := newLocalShards(t, 4)
	counter := &shardZeroCounter{Shards: newPartialShards(shards, 1, 2, 3)}
	router := New(counter)
	c := &client{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, router, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)}
	fractions := func() (uint64, error) {
		t.Helper()
		return router.newReader(context.Background()).AssetFractions("shop", "gold")
	}
	want := func(expected uint64) {
		t.Helper()
		if got, err := fractions(); err != nil || got != expected {
			t.Fatalf("fractions of gold: %d %v, want %d", got, err, expected)
		}
	}
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "gold", "name": "Gold", "code": "XAU", "fractions": 100}, 201)
	want(100)
	c.do("DELETE", "/projects/shop/assets/gold", nil, 204)
	if _, err := fractions(); err == nil {
		t.Fatal("a deleted asset has fractions")
	}
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "gold", "name": "Gold", "code": "XAU", "fractions": 1000}, 201)
	want(1000)

	customer := usersOnShard("shop", "c", 1, 1)[0]
	c.do("POST", "/projects/shop/customers", map[string]any{"id": customer}, 200)
	c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": customer, "assetId": "gold"}, 201)
	before := counter.asked()
	want(1000)
	if after := counter.asked(); after != before {
		t.Fatalf("the fractions of a used asset asked shard 0: %s, then %s", before, after)
	}
	c.do("DELETE", "/projects/shop/assets/gold", nil, 403)
	c.do("PUT", "/projects/shop/assets/gold/name", map[string]any{"name": "Fine gold"}, 200)
	want(1000)
	if name := c.do("GET", "/projects/shop/assets/gold", nil, 200)["name"]; name != "Fine gold" {
		t.Fatalf("GET asset after a rename: name %v", name)
	}

	// A node that meets the asset already used learns it from one read and caches it.
	fresh := New(counter)
	queries := counter.queryCount()
	for range 3 {
		if got, err := fresh.newReader(context.Background()).AssetFractions("shop", "gold"); err != nil || got != 1000 {
			t.Fatalf("fresh node: %d %v", got, err)
		}
	}
	if asked := counter.queryCount() - queries; asked != 1 {
		t.Fatalf("a fresh node asked shard 0 %d times for a used asset's fractions, want once", asked)
	}
}
