package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gigaledger/gigaledger/cluster"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/fsm/ledger"
	"github.com/gigaledger/gigaledger/httpapi"
)

// localShards is N ledgers in this process, each applying its proposals directly: the routing
// layer without Raft.
type localShards struct {
	mu       sync.Mutex
	machines []*fsm.Machine
	ledgers  []*ledger.Ledger
	gigpay   []*gigpay.Reader
	index    []uint64
	nowMs    int64
	counts   []int // proposals per shard
}

func newLocalShards(t *testing.T, n int) *localShards {
	s := &localShards{index: make([]uint64, n), counts: make([]int, n), nowMs: 1_700_000_000_000}
	for i := 0; i < n; i++ {
		// The accounting core and the GigPay family (GigaWallet's needs a chain; its reads are
		// tested in cmd/gigaledger).
		reg := fsm.NewRegistry()
		core := ledger.Register(reg)
		pay := gigpay.Register(reg, core)
		m, err := fsm.Open(t.TempDir(), nil, reg)
		if err != nil {
			t.Fatal(err)
		}
		l := core.Of(m)
		t.Cleanup(func() {
			if err := l.CheckInvariants(); err != nil {
				t.Errorf("shard %d: %v", i, err)
			}
			m.Close()
		})
		s.machines = append(s.machines, m)
		s.ledgers = append(s.ledgers, l)
		s.gigpay = append(s.gigpay, pay.Of(m))
	}
	return s
}

func (s *localShards) ShardCount() int { return len(s.ledgers) }

func (s *localShards) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index[shardID]++
	s.counts[shardID]++
	s.nowMs++
	return s.machines[shardID].ApplyBatch(s.index[shardID], s.nowMs, [][]byte{command})[0], nil
}

func (s *localShards) LinearizableRead(ctx context.Context, shardID int) error { return nil }

func (s *localShards) Ledger(shardID int) *ledger.Ledger { return s.ledgers[shardID] }

func (s *localShards) GigaWallet(shardID int) *gigawallet.Reader { return nil }

func (s *localShards) GigPay(shardID int) *gigpay.Reader { return s.gigpay[shardID] }

func (s *localShards) Outbox(shardID int) Outbox { return s.machines[shardID] }

func (s *localShards) Follows(shardID int) bool { return true }

func (s *localShards) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	return nil, fmt.Errorf("every shard is local here")
}

// QueryLeader answers as the leader would: every shard is local, and leads.
func (s *localShards) QueryLeader(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	return New(s).AnswerQuery(ctx, shardID, query)
}

// partialShards is localShards as a node that hosts only some of them sees them: proposals
// reach every shard (the cluster forwards them to the leader), and the other shards are read
// through the query path, answered by a router that hosts them (as cluster.Config.Query).
type partialShards struct {
	*localShards
	hosted  map[int]bool
	server  *Router
	queries []int // queries per shard
}

func newPartialShards(shards *localShards, hosted ...int) *partialShards {
	p := &partialShards{localShards: shards, hosted: map[int]bool{}, server: New(shards), queries: make([]int, shards.ShardCount())}
	for _, id := range hosted {
		p.hosted[id] = true
	}
	return p
}

func (p *partialShards) Ledger(shardID int) *ledger.Ledger {
	if !p.hosted[shardID] {
		return nil
	}
	return p.localShards.Ledger(shardID)
}

func (p *partialShards) GigPay(shardID int) *gigpay.Reader {
	if !p.hosted[shardID] {
		return nil
	}
	return p.localShards.GigPay(shardID)
}

func (p *partialShards) Outbox(shardID int) Outbox {
	if !p.hosted[shardID] {
		return nil
	}
	return p.localShards.Outbox(shardID)
}

func (p *partialShards) Query(ctx context.Context, shardID int, query []byte) ([]byte, error) {
	p.mu.Lock()
	p.queries[shardID]++
	p.mu.Unlock()
	return p.server.AnswerQuery(ctx, shardID, query)
}

// lastIndex is shard shardID's log length so far.
func (s *localShards) lastIndex(shardID int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index[shardID]
}

func newClient(t *testing.T, shards Shards) *client {
	return &client{t: t, handler: httpapi.NewAdmin(httpapi.AdminConfig{}, New(shards), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)}
}

type client struct {
	t       *testing.T
	handler http.Handler
}

func (c *client) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	rec := httptest.NewRecorder()
	request := httptest.NewRequest(method, path, bytes.NewReader(b))
	// A loopback Host and JSON: the API without a token refuses other Hosts (421) and writes
	// of another type (415).
	request.Host = "127.0.0.1"
	if method != http.MethodGet {
		request.Header.Set("Content-Type", "application/json")
	}
	c.handler.ServeHTTP(rec, request)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body.String(), want)
	}
	return out
}

// The whole API over four shards: every customer's data lands in its slot's shard, project
// data in shard 0, lists merge all shards, and a transaction across shards runs the protocol.
func TestRouterOverFourShards(t *testing.T) {
	shards := newLocalShards(t, 4)
	exerciseFourShards(t, shards, newClient(t, shards))
}

// The same through a node that hosts shard 2 only: every read of another shard (project,
// assets, customers, wallets, entries, transactions, list parts, supply) goes through the
// query path, with the same answers.
func TestRouterOverShardsNotHostedHere(t *testing.T) {
	shards := newLocalShards(t, 4)
	view := newPartialShards(shards, 2)
	exerciseFourShards(t, shards, newClient(t, view))
	for shardID, count := range view.queries {
		if hosted := view.hosted[shardID]; hosted != (count == 0) {
			t.Errorf("shard %d (hosted %v) was queried %d times", shardID, hosted, count)
		}
	}
}

// laggingShards hosts every shard, but the replicas of some lag far behind their leaders:
// their read fence answers cluster.ErrReplicaLagging, as cluster.Node.FenceLocalRead does.
type laggingShards struct {
	*partialShards
	lagging map[int]bool
}

func (l *laggingShards) LinearizableRead(ctx context.Context, shardID int) error {
	if l.lagging[shardID] {
		return fmt.Errorf("shard %d: %w", shardID, cluster.ErrReplicaLagging)
	}
	return nil
}

// Reads of a hosted shard whose replica lags (just restarted, or outside its configuration
// after a move stopped part way) are answered through the query path, by a node that does not
// lag, and the same as everywhere; the other hosted shards are read locally.
func TestRouterReadsALaggingReplicaThroughTheQueryPath(t *testing.T) {
	shards := newLocalShards(t, 4)
	view := &laggingShards{partialShards: newPartialShards(shards, 0, 1, 2, 3), lagging: map[int]bool{1: true, 3: true}}
	exerciseFourShards(t, shards, newClient(t, view))
	for shardID, count := range view.queries {
		if lagging := view.lagging[shardID]; lagging != (count > 0) {
			t.Errorf("shard %d (lagging %v) was queried %d times", shardID, lagging, count)
		}
	}
}

// Creating customers and wallets (in other shards) through a node that does not host shard 0
// writes one entry there, the first wallet's mark of its asset as used, and none for checking
// the project or the asset: those are queries. A node that starts later reads that the asset is used and writes nothing at all.
func TestWalletsThroughANodeWithoutShardZeroWriteNoEntriesThere(t *testing.T) {
	const walletCount = 10
	shards := newLocalShards(t, 4)
	c := newClient(t, newPartialShards(shards, 1, 2, 3))
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	before := shards.lastIndex(MetadataShard)
	// Customers (and so their wallets) of other shards: shard 0 also holds data of its own.
	createWallets := func(c *client, prefix string) {
		for i, created := 0, 0; created < walletCount; i++ {
			customerID := fmt.Sprintf("%s-%d", prefix, i)
			if keyspace.ShardOfSlot(keyspace.SlotOf("shop", customerID), 4) == MetadataShard {
				continue
			}
			c.do("POST", "/projects/shop/customers", map[string]any{"id": customerID}, 200)
			c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": customerID, "assetId": "usd"}, 201)
			created++
		}
	}
	createWallets(c, "first")
	if added := shards.lastIndex(MetadataShard) - before; added != 1 {
		t.Fatalf("%d wallets through a node without shard 0 added %d entries to its log, want 1 (the first mark)", walletCount, added)
	}
	before = shards.lastIndex(MetadataShard)
	createWallets(newClient(t, newPartialShards(shards, 1, 2, 3)), "second")
	if added := shards.lastIndex(MetadataShard) - before; added != 0 {
		t.Fatalf("%d wallets of a used asset through a fresh node added %d entries to shard 0's log, want 0", walletCount, added)
	}
	// A wallet of an asset or project that does not exist is refused, writing nothing.
	c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": "first-1", "assetId": "eur"}, 404)
	c.do("POST", "/projects/nope/wallets", map[string]any{"customerId": "first-1", "assetId": "usd"}, 404)
	if added := shards.lastIndex(MetadataShard) - before; added != 0 {
		t.Fatalf("refused wallets added %d entries to shard 0's log", added)
	}
}

// exerciseFourShards runs the whole API through c over shards.
func exerciseFourShards(t *testing.T, shards *localShards, c *client) {

	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	c.do("POST", "/projects/nope/customers", map[string]any{"id": "x"}, 404)

	// Customers spread over the shards; each with two wallets in its own shard.
	type customer struct {
		id      string
		shard   int
		wallets []string
	}
	var customers []customer
	byShard := map[int][]int{}
	for i := 0; len(customers) < 24; i++ {
		id := fmt.Sprintf("cust-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 4))
		c.do("POST", "/projects/shop/customers", map[string]any{"id": id, "name": id}, 200)
		cu := customer{id: id, shard: shardID}
		for k := 0; k < 2; k++ {
			w := c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)
			walletID := w["id"].(string)
			slot, _ := keyspace.SlotOfID(walletID)
			if int(keyspace.ShardOfSlot(slot, 4)) != shardID {
				t.Fatalf("wallet %s of %s is not in the customer's shard %d", walletID, id, shardID)
			}
			if _, err := shards.ledgers[shardID].GetWallet("shop", walletID); err != nil {
				t.Fatalf("wallet %s not stored in shard %d: %v", walletID, shardID, err)
			}
			cu.wallets = append(cu.wallets, walletID)
		}
		byShard[shardID] = append(byShard[shardID], len(customers))
		customers = append(customers, cu)
	}
	if len(byShard) != 4 {
		t.Fatalf("customers landed in %d shards, want 4", len(byShard))
	}
	// Project data stays in shard 0; the asset is used and cannot be deleted.
	if _, err := shards.ledgers[1].GetProject("shop"); err == nil {
		p, _ := shards.ledgers[1].GetProject("shop")
		if p.Name != "" {
			t.Fatal("a data shard holds the project's name")
		}
	}
	c.do("DELETE", "/projects/shop/assets/usd", nil, 403)

	// Transactions within one customer's shard work, and across shards (the protocol, carried
	// by a driver over every shard as their leaders would).
	driver := NewCrossDriver(shards, func(int) bool { return true }, nil)
	driver.Run(shards.ShardCount())
	t.Cleanup(driver.Close)
	total := 0
	for i, cu := range customers {
		c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "fund-" + cu.id, "operations": []map[string]any{
			{"type": "issue", "to": cu.wallets[0], "amount": 100},
			{"type": "transfer", "from": cu.wallets[0], "to": cu.wallets[1], "amount": 30 + i}}}, 201)
		total += 100
	}
	a, b := customers[byShard[0][0]], customers[byShard[1][0]]
	balance := func(id string) int {
		return int(c.do("GET", "/projects/shop/wallets/"+id, nil, 200)["balance"].(float64))
	}
	a0, b0 := balance(a.wallets[0]), balance(b.wallets[0])
	cross := map[string]any{"referenceId": "cross", "operations": []map[string]any{
		{"type": "transfer", "from": a.wallets[0], "to": b.wallets[0], "amount": 1}}}
	done := c.do("POST", "/projects/shop/transactions", cross, 201)
	if done["status"] != "completed" || balance(a.wallets[0]) != a0-1 || balance(b.wallets[0]) != b0+1 {
		t.Fatalf("cross-shard: %v", done)
	}
	if got := c.do("GET", "/projects/shop/transactions/"+done["id"].(string), nil, 200); got["status"] != "completed" {
		t.Fatalf("cross-shard read back: %v", got)
	}
	if again := c.do("POST", "/projects/shop/transactions", cross, 409); again["error"].(map[string]any)["code"] != "DuplicateReferenceId" ||
		again["transaction"].(map[string]any)["id"] != done["id"] {
		t.Fatalf("cross-shard retry: %v", again)
	}
	cross["operations"].([]map[string]any)[0]["amount"] = 2
	if other := c.do("POST", "/projects/shop/transactions", cross, 409); other["error"].(map[string]any)["code"] != "ReferenceIdMismatch" {
		t.Fatalf("cross-shard mismatch: %v", other)
	}
	// The second operation fails: neither wallet moves, the failure is recorded as it would be
	// on one shard.
	failed := c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "cross-fails", "operations": []map[string]any{
		{"type": "transfer", "from": a.wallets[0], "to": b.wallets[0], "amount": 1},
		{"type": "transfer", "from": b.wallets[0], "to": a.wallets[0], "amount": 1_000_000}}}, 422)
	if failed["error"].(map[string]any)["code"] != "InsufficientFunds" || failed["transaction"].(map[string]any)["failedOperationIndex"] != float64(1) ||
		failed["transaction"].(map[string]any)["status"] != "failed" || balance(a.wallets[0]) != a0-1 || balance(b.wallets[0]) != b0+1 {
		t.Fatalf("failing cross-shard transaction: %v", failed)
	}
	// Two customers in the same shard may trade.
	same := byShard[2]
	if len(same) >= 2 {
		c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": "same-shard", "operations": []map[string]any{
			{"type": "transfer", "from": customers[same[0]].wallets[0], "to": customers[same[1]].wallets[0], "amount": 5}}}, 201)
	}

	// Reads route by ID: wallets, entries, transactions, customers.
	w := c.do("GET", "/projects/shop/wallets/"+a.wallets[1], nil, 200)
	if w["customerId"] != a.id {
		t.Fatalf("wallet %v", w)
	}
	c.do("GET", "/projects/shop/wallets/"+a.wallets[0]+"/entries?page=1&pageSize=10&from=0&to=9999999999999", nil, 200)
	c.do("GET", "/projects/shop/customers/"+a.id, nil, 200)
	c.do("GET", "/projects/shop/customers/"+a.id+"/wallets", nil, 200)
	c.do("GET", "/projects/shop/customers/nobody", nil, 404)
	c.do("GET", "/projects/shop/wallets/w0fffzzzzzzzzzzzzzzzzzzzz", nil, 404)
	c.do("GET", "/projects/shop/wallets/garbage", nil, 404)

	// Project-wide lists merge every shard, in order, page by page.
	var ids []string
	for page := 1; ; page++ {
		out := c.do("GET", fmt.Sprintf("/projects/shop/customers?page=%d&pageSize=5", page), nil, 200)
		for _, item := range out["items"].([]any) {
			ids = append(ids, item.(map[string]any)["id"].(string))
		}
		if out["hasMore"] != true {
			break
		}
	}
	if len(ids) != len(customers) {
		t.Fatalf("customer list has %d, want %d", len(ids), len(customers))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Fatalf("customers out of order: %v", ids)
		}
	}
	var txs []map[string]any
	for page := 1; ; page++ {
		out := c.do("GET", fmt.Sprintf("/projects/shop/transactions?page=%d&pageSize=7&from=0&to=9999999999999", page), nil, 200)
		for _, item := range out["items"].([]any) {
			txs = append(txs, item.(map[string]any))
		}
		if out["hasMore"] != true {
			break
		}
	}
	wantTxs := len(customers) + 2 // and the two cross-shard ones
	if len(same) >= 2 {
		wantTxs++
	}
	if len(txs) != wantTxs {
		t.Fatalf("transaction list has %d, want %d", len(txs), wantTxs)
	}
	got := c.do("GET", "/projects/shop/transactions/"+txs[3]["id"].(string), nil, 200)
	if got["id"] != txs[3]["id"] {
		t.Fatalf("get transaction %v", got)
	}
	// Money is conserved across shards.
	sum := 0
	for _, cu := range customers {
		for _, id := range cu.wallets {
			sum += int(c.do("GET", "/projects/shop/wallets/"+id, nil, 200)["balance"].(float64))
		}
	}
	if sum != total {
		t.Fatalf("wallets hold %d, issued %d", sum, total)
	}
	if supply := c.do("GET", "/projects/shop/assets/usd", nil, 200)["supply"]; supply != float64(total) {
		t.Fatalf("asset supply %v across shards, issued %d", supply, total)
	}
	if assets := c.do("GET", "/projects/shop/assets", nil, 200)["items"].([]any); len(assets) != 1 ||
		assets[0].(map[string]any)["supply"] != float64(total) || assets[0].(map[string]any)["used"] != true {
		t.Fatalf("asset list %v", assets)
	}
	if project := c.do("GET", "/projects/shop", nil, 200); project["name"] != "Shop" || len(project["assets"].([]any)) != 1 ||
		project["assets"].([]any)[0].(map[string]any)["supply"] != float64(total) {
		t.Fatalf("project %v (its asset's supply over the shards: %d)", project, total)
	}
	if projects := c.do("GET", "/projects", nil, 200)["items"].([]any); len(projects) != 1 {
		t.Fatalf("projects %v", projects)
	}
	c.do("GET", "/projects/nope", nil, 404)
	c.do("GET", "/projects/nope/customers/"+a.id, nil, 404)
	c.do("GET", "/projects/shop/transactions/"+txs[3]["id"].(string)+"999", nil, 404) // same shard, no such sequence
	// System wallets live in the project's system slot.
	sys := c.do("POST", "/projects/shop/system-wallets", map[string]any{"assetId": "usd"}, 201)
	list := c.do("GET", "/projects/shop/system-wallets", nil, 200)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != sys["id"] {
		t.Fatalf("system wallets %v", list)
	}
	// Suspending a customer reaches the customer's shard.
	c.do("POST", "/projects/shop/customers/"+b.id+"/suspend", nil, 200)
	if st := c.do("GET", "/projects/shop/wallets/"+b.wallets[0], nil, 200)["status"]; st != "suspended" {
		t.Fatalf("after suspend: %v", st)
	}
	t.Logf("proposals per shard: %v", shards.counts)
}

// Each shard keeps its own wallets' part of an asset's supply, and each part (like every
// balance) is at most 2^128−1, so an asset whose wallets span shards can hold more in total.
// The reads that sum the parts answer that total exactly: they answered 500 ("amount overflows
// 128 bits") for every asset of the project once it passed 2^128−1 (found by a probe).
func TestSupplyPastTheLimitOverShards(t *testing.T) {
	shards := newLocalShards(t, 4)
	c := newClient(t, shards)
	c.do("POST", "/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	c.do("POST", "/projects/shop/assets", map[string]any{"id": "big", "name": "Big", "code": "BIG", "fractions": 1}, 201)
	walletOnShard := map[int]string{}
	for i := 0; len(walletOnShard) < 2; i++ {
		id := fmt.Sprintf("cust-%d", i)
		shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf("shop", id), 4))
		if _, ok := walletOnShard[shardID]; ok {
			continue
		}
		c.do("POST", "/projects/shop/customers", map[string]any{"id": id}, 200)
		walletOnShard[shardID] = c.do("POST", "/projects/shop/wallets", map[string]any{"customerId": id, "assetId": "big"}, 201)["id"].(string)
	}
	const max = "340282366920938463463374607431768211455" // 2^128−1
	n := 0
	for _, wallet := range walletOnShard {
		n++
		c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("mint-%d", n),
			"operations": []map[string]any{{"type": "issue", "to": wallet, "amount": max}}}, 201)
		// One more on the same shard is refused: the part would pass 2^128−1.
		c.do("POST", "/projects/shop/transactions", map[string]any{"referenceId": fmt.Sprintf("more-%d", n),
			"operations": []map[string]any{{"type": "issue", "to": wallet, "amount": 1}}}, 422)
	}
	const twice = "680564733841876926926749214863536422910" // 2 × (2^128−1)
	supplyOf := func(path string, pick func(map[string]any) any) string {
		t.Helper()
		rec := httptest.NewRecorder()
		request := httptest.NewRequest(http.MethodGet, path, nil)
		request.Host = "127.0.0.1"
		c.handler.ServeHTTP(rec, request)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		d := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		d.UseNumber()
		var out map[string]any
		if err := d.Decode(&out); err != nil {
			t.Fatal(err)
		}
		return string(pick(out).(json.Number))
	}
	asset := func(m map[string]any) any { return m["supply"] }
	first := func(key string) func(map[string]any) any {
		return func(m map[string]any) any { return m[key].([]any)[0].(map[string]any)["supply"] }
	}
	if got := supplyOf("/projects/shop/assets/big", asset); got != twice {
		t.Fatalf("asset supply %s, want %s", got, twice)
	}
	if got := supplyOf("/projects/shop/assets", first("items")); got != twice {
		t.Fatalf("asset list supply %s, want %s", got, twice)
	}
	if got := supplyOf("/projects/shop", first("assets")); got != twice {
		t.Fatalf("project's asset supply %s, want %s", got, twice)
	}
}
