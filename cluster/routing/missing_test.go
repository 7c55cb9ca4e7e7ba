package routing

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// A data shard learns a project only when one of its customers or wallets is created there.
// Until then every command of the project that names a record of that shard — a wallet typed
// wrong, a hold ID of another project — must answer that the record is not found, as reads do,
// not ProjectNotFound; a project that exists nowhere stays ProjectNotFound; and nothing is
// recorded on the way.
func TestRecordOfAShardThatNeverMetTheProject(t *testing.T) {
	shards := newLocalShards(t, 4)
	c := newClient(t, shards)
	c.do("POST", "/projects", map[string]any{"id": "mall", "name": "Mall"}, 201)
	c.do("POST", "/projects/mall/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	// One funded wallet in shard 0, the metadata shard, which knows every project.
	var funded string
	for i := 0; funded == ""; i++ {
		id := fmt.Sprintf("c0-%d", i)
		if keyspace.ShardOfSlot(keyspace.SlotOf("mall", id), 4) != 0 {
			continue
		}
		c.do("POST", "/projects/mall/customers", map[string]any{"id": id}, 200)
		funded = c.do("POST", "/projects/mall/wallets", map[string]any{"customerId": id, "assetId": "usd"}, 201)["id"].(string)
	}
	c.do("POST", "/projects/mall/transactions", map[string]any{"referenceId": "fund",
		"operations": []any{map[string]any{"type": "issue", "to": funded, "amount": 100}}}, 201)

	// A wallet ID and a hold ID whose slot names each shard but the metadata shard.
	idOn := func(kind string, shardID int) string {
		for slot := keyspace.Slot(0); ; slot++ {
			if int(keyspace.ShardOfSlot(slot, 4)) == shardID {
				return kind + keyspace.SlotHex(slot) + "zzzzzz"
			}
		}
	}
	wantError := func(answer map[string]any, code, message string) {
		t.Helper()
		e, _ := answer["error"].(map[string]any)
		if e["code"] != code || e["message"] != message {
			t.Fatalf("answered %v, want %s %q", answer, code, message)
		}
	}
	for shardID := 1; shardID < 4; shardID++ {
		wallet, hold := idOn("w", shardID), idOn("h", shardID)+".0"
		if _, err := shards.ledgers[shardID].GetProject("mall"); err == nil {
			t.Fatalf("shard %d knows the project before the test asks it", shardID)
		}
		missing := fmt.Sprintf("wallet %q not found", wallet)
		issue := map[string]any{"referenceId": "r" + wallet, "operations": []any{map[string]any{"type": "issue", "to": wallet, "amount": 1}}}
		wantError(c.do("POST", "/projects/mall/transactions", issue, 404), "WalletNotFound", missing)
		batch := c.do("POST", "/projects/mall/transactions/batch", map[string]any{"transactions": []any{issue, issue}}, 200)
		for _, item := range batch["results"].([]any) {
			wantError(item.(map[string]any), "WalletNotFound", missing)
		}
		// Across shards, with the unknown wallet first: its shard coordinates and refuses.
		across := map[string]any{"referenceId": "x" + wallet, "operations": []any{
			map[string]any{"type": "transfer", "from": wallet, "to": funded, "amount": 1}}}
		wantError(c.do("POST", "/projects/mall/transactions", across, 404), "WalletNotFound", missing)
		for _, path := range []string{"name", "description", "status"} {
			body := map[string]any{path: "x"}
			if path == "status" {
				body[path] = "suspended"
			}
			wantError(c.do("PUT", "/projects/mall/wallets/"+wallet+"/"+path, body, 404), "WalletNotFound", missing)
		}
		missingHold := fmt.Sprintf("hold %q not found", hold)
		wantError(c.do("POST", "/projects/mall/holds/"+hold+"/release", nil, 404), "HoldNotFound", missingHold)
		wantError(c.do("POST", "/projects/mall/holds/"+hold+"/capture", map[string]any{"to": funded}, 404), "HoldNotFound", missingHold)
		// Reads answered so already.
		wantError(c.do("GET", "/projects/mall/wallets/"+wallet, nil, 404), "WalletNotFound", missing)
		// A project that exists nowhere is still named as such, from every shard.
		issue["referenceId"] = "n" + wallet
		wantError(c.do("POST", "/projects/nowhere/transactions", issue, 404), "ProjectNotFound", `project "nowhere" not found`)
		// Nothing was recorded: the shard has still not met the project.
		if _, err := shards.ledgers[shardID].GetProject("mall"); err == nil {
			t.Errorf("shard %d recorded the project while refusing", shardID)
		}
	}
	// A wallet ID with no slot at all goes to the project's own slot: a data shard's for this
	// project.
	if keyspace.ShardOfSlot(keyspace.SlotOf("mall", ""), 4) == 0 {
		t.Fatal("the project's own slot is in the metadata shard: pick another project ID")
	}
	issue := map[string]any{"referenceId": "nope", "operations": []any{map[string]any{"type": "issue", "to": "nope", "amount": 1}}}
	wantError(c.do("POST", "/projects/mall/transactions", issue, 404), "WalletNotFound", `wallet "nope" not found`)
	if got := c.do("GET", "/projects/mall/wallets/"+funded, nil, 200)["balance"]; got != float64(100) {
		t.Errorf("funded wallet's balance %v, want 100", got)
	}
}

// A batch to a project that exists nowhere asks the metadata shard once per shard group that
// answered ProjectNotFound, not once per item (a negative answer is not cached: the project may
// be created next).
func TestBatchOfAProjectNowhereAsksShardZeroOncePerGroup(t *testing.T) {
	shards := newLocalShards(t, 4)
	counter := &shardZeroCounter{Shards: newPartialShards(shards, 1, 2, 3)}
	c := newClient(t, counter)
	var transactions []any
	for i := range 300 {
		wallet := fmt.Sprintf("w%s%d", keyspace.SlotHex(keyspace.Slot(1+i%3)), i) // shards 1..3
		transactions = append(transactions, map[string]any{"referenceId": fmt.Sprint("r", i),
			"operations": []any{map[string]any{"type": "issue", "to": wallet, "amount": 1}}})
	}
	before := counter.queryCount()
	answer := c.do("POST", "/projects/nowhere/transactions/batch", map[string]any{"transactions": transactions}, 200)
	for _, item := range answer["results"].([]any) {
		if code := item.(map[string]any)["error"].(map[string]any)["code"]; code != "ProjectNotFound" {
			t.Fatalf("an item answered %v, want ProjectNotFound", item)
		}
	}
	if asked := counter.queryCount() - before; asked > 3 {
		t.Errorf("the metadata shard was queried %d times for a batch of three shard groups", asked)
	}
}

// Under an idempotency key, the answer for a record of a shard that never met the project is
// stored by that shard and replayed as the same rejection, marked replayed.
func TestRecordMissingUnderAnIdempotencyKey(t *testing.T) {
	shards := newLocalShards(t, 4)
	router := New(shards)
	ctx := context.Background()
	if result, err := router.Propose(ctx, fsm.Envelope{Command: &ledger.CreateProject{ProjectID: "mall", Name: "Mall"}}); err != nil || result.Err != nil {
		t.Fatal(result, err)
	}
	wallet := "w" + keyspace.SlotHex(1) + "zz" // shard 1, which never meets the project
	for attempt := range 2 {
		result, err := router.Propose(ctx, fsm.Envelope{
			Command:     &ledger.SetWalletStatus{ProjectID: "mall", WalletID: wallet, Status: ledger.WalletSuspendedStatus},
			Idempotency: &fsm.Idempotency{Scope: "mall", Key: "k1", RequestHash: [32]byte{1}}})
		if err != nil {
			t.Fatal(err)
		}
		if result.Err == nil || result.Err.Code != ledger.CodeWalletNotFound || result.Replayed != (attempt == 1) {
			t.Fatalf("attempt %d: %+v (replayed %v), want WalletNotFound, replayed on the second", attempt, result.Err, result.Replayed)
		}
	}
}

// unreachableShardZero is a cluster whose metadata shard has lost its quorum: every read and
// proposal of shard 0 fails; the data shards serve.
type unreachableShardZero struct{ *localShards }

var errNoQuorum = errors.New("shard 0: no leader")

func (s unreachableShardZero) Propose(ctx context.Context, shardID int, command []byte) (any, error) {
	if shardID == MetadataShard {
		return nil, errNoQuorum
	}
	return s.localShards.Propose(ctx, shardID, command)
}

func (s unreachableShardZero) LinearizableRead(ctx context.Context, shardID int) error {
	if shardID == MetadataShard {
		return errNoQuorum
	}
	return nil
}

// A transaction between existing wallets of a data shard, or a read of them, never waits on the
// metadata shard, not even on a node that has not met the project yet (a restarted router):
// the missing-record check asks shard 0 only when a data shard answers ProjectNotFound, and
// without its word the answer is 503 Unavailable (nothing applied), not a 404 that may be wrong.
func TestDataShardTransactionsServeWithoutShardZero(t *testing.T) {
	shards := newLocalShards(t, 4)
	c := newClient(t, shards)
	c.do("POST", "/projects", map[string]any{"id": "mall", "name": "Mall"}, 201)
	c.do("POST", "/projects/mall/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	customer := usersOnShard("mall", "c", 1, 1)[0]
	c.do("POST", "/projects/mall/customers", map[string]any{"id": customer}, 200)
	var wallets []string
	for range 2 {
		wallets = append(wallets, c.do("POST", "/projects/mall/wallets", map[string]any{"customerId": customer, "assetId": "usd"}, 201)["id"].(string))
	}

	cut := newClient(t, unreachableShardZero{shards}) // a fresh router: nothing cached
	cut.do("POST", "/projects/mall/transactions", map[string]any{"referenceId": "a", "operations": []any{
		map[string]any{"type": "issue", "to": wallets[0], "amount": 10},
		map[string]any{"type": "transfer", "from": wallets[0], "to": wallets[1], "amount": 4}}}, 201)
	batch := cut.do("POST", "/projects/mall/transactions/batch", map[string]any{"transactions": []any{
		map[string]any{"referenceId": "b", "operations": []any{map[string]any{"type": "transfer", "from": wallets[1], "to": wallets[0], "amount": 1}}}}}, 200)
	if status := batch["results"].([]any)[0].(map[string]any)["status"]; status != float64(201) {
		t.Fatalf("batch item answered %v", batch)
	}
	// Reads of existing records too (a cold node asked shard 0 first before this change).
	if got := cut.do("GET", "/projects/mall/wallets/"+wallets[0], nil, 200)["balance"]; got != float64(7) {
		t.Errorf("read without shard 0: balance %v, want 7", got)
	}
	if page := cut.do("GET", "/projects/mall/wallets/"+wallets[0]+"/entries?page=1&pageSize=10", nil, 200); len(page["items"].([]any)) != 3 {
		t.Errorf("entries without shard 0: %v", page)
	}
	// A record missing on a shard that has not met the project: without shard 0's word, neither
	// WalletNotFound nor ProjectNotFound can be said; 503, nothing applied.
	missing := "w" + keyspace.SlotHex(2) + "zz"
	answer := cut.do("POST", "/projects/mall/transactions", map[string]any{"referenceId": "c", "operations": []any{
		map[string]any{"type": "issue", "to": missing, "amount": 1}}}, 503)
	if code := answer["error"].(map[string]any)["code"]; code != "Unavailable" {
		t.Fatalf("without shard 0: %v", answer)
	}
	batch = cut.do("POST", "/projects/mall/transactions/batch", map[string]any{"transactions": []any{
		map[string]any{"referenceId": "d", "operations": []any{map[string]any{"type": "issue", "to": missing, "amount": 1}}}}}, 200)
	if item := batch["results"].([]any)[0].(map[string]any); item["status"] != float64(503) || item["error"].(map[string]any)["code"] != "Unavailable" {
		t.Fatalf("batch item without shard 0: %v", item)
	}
	if got := c.do("GET", "/projects/mall/wallets/"+wallets[0], nil, 200)["balance"]; got != float64(7) {
		t.Errorf("balance %v, want 7", got)
	}
}
