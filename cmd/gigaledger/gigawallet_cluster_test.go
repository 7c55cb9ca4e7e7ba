package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// gigaWalletCluster is a test cluster (static peers: every node hosts every shard) whose nodes
// share one wallet seed, given by --wallet-seed-file from a folder outside every data
// directory, and the keychain the test derives from the same seed to check what nodes answer.
type gigaWalletCluster struct {
	*testCluster
	// seedHex is the seed file's text, trimmed: the test searches storage for it and its bytes.
	seedHex string
	keys    *dogecoin.Keychain
	http    *http.Client

	// requestKeys numbers postKeyed's idempotency keys.
	requestKeys atomic.Int64

	mu sync.Mutex
	// bodies keeps every answer the cluster gave the test, for the key-leak search.
	bodies [][]byte
}

// newGigaWalletCluster starts size nodes with shards shards and waits until every node has a
// leader for every shard. logs receives the nodes' records (nil: the test log, silent).
func newGigaWalletCluster(t *testing.T, size, shards int, logs slog.Handler) *gigaWalletCluster {
	t.Helper()
	return newConfiguredGigaWalletCluster(t, size, shards, logs, nil)
}

// newConfiguredGigaWalletCluster is newGigaWalletCluster; configure, when not nil, sets what a
// test needs in each node's configuration as well.
func newConfiguredGigaWalletCluster(t *testing.T, size, shards int, logs slog.Handler, configure func(*serveConfig)) *gigaWalletCluster {
	t.Helper()
	t.Setenv(dogecoin.SeedEnvVar, "") // the file is the only seed source
	seedPath := filepath.Join(t.TempDir(), "wallet.seed")
	if _, err := dogecoin.CreateSeedFile(seedPath); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := dogecoin.LoadSeed(seedPath, "")
	if err != nil {
		t.Fatal(err)
	}
	tc := newConfiguredTestCluster(t, size, shards, logs, func(cfg *serveConfig) {
		// One public URL for the cluster, as behind a load balancer: QR codes and DogeConnect
		// envelopes name it, so every node gives the same ones.
		cfg.WalletSeedFile, cfg.PubAPIRootURL = seedPath, "https://pay.example"
		if configure != nil {
			configure(cfg)
		}
	})
	networkName := tc.configs[0].Network
	if networkName == "" {
		networkName = "testnet" // the nodes' default network
	}
	network, err := dogecoin.ParseNetwork(networkName)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, network)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led on "+tc.configs[i].NodeID,
			func() bool { return tc.node(i).ready() == nil })
	}
	// When the test ends, before the nodes stop: the invariants hold on every running replica.
	t.Cleanup(func() {
		for i := range tc.nodes {
			checkCustody(t, tc.node(i))
		}
	})
	return &gigaWalletCluster{testCluster: tc, seedHex: strings.TrimSpace(string(text)), keys: keys,
		http: &http.Client{Timeout: 10 * time.Second}}
}

// send sends one request to a listener and returns the answer's status and body.
func (g *gigaWalletCluster) send(addr, method, path, body string) (int, []byte, error) {
	return g.sendKeyed(addr, method, path, body, "")
}

// sendKeyed is send with an Idempotency-Key (none when key is "").
func (g *gigaWalletCluster) sendKeyed(addr, method, path, body, key string) (int, []byte, error) {
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, data)
	g.mu.Unlock()
	return resp.StatusCode, data, nil
}

// retrySafe sends a request that is safe to repeat (a read, an account upsert with the same
// settings) until it gets an answer other than 503 or a lost connection, within a deadline.
func (g *gigaWalletCluster) retrySafe(addr, method, path, body string) (int, []byte, error) {
	return g.sendUntilAnswered(addr, method, path, body, "")
}

// sendUntilAnswered sends a request until it gets an answer other than 503 or a lost
// connection, or 20 s have passed.
func (g *gigaWalletCluster) sendUntilAnswered(addr, method, path, body, key string) (int, []byte, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, data, err := g.sendKeyed(addr, method, path, body, key)
		if (err == nil && status != http.StatusServiceUnavailable) || time.Now().After(deadline) {
			return status, data, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expect sends a request safe to repeat to node i's admin listener (or its public one) and
// requires want.
func (g *gigaWalletCluster) expect(i int, public bool, method, path, body string, want int) []byte {
	g.t.Helper()
	addr := g.configs[i].AdminAddr
	if public {
		addr = g.configs[i].PublicAddr
	}
	status, data, err := g.retrySafe(addr, method, path, body)
	if err != nil || status != want {
		g.t.Fatalf("%s %s on %s (public %v): %d %s %v, want %d", method, path, g.configs[i].NodeID, public, status, data, err, want)
	}
	return data
}

// postKeyed sends a POST through node i under an Idempotency-Key of its own, and again under
// the same key after a 503 or a lost connection (a loaded machine may elect a new leader while a
// request is in flight: "the outcome is unknown"), within a deadline, as a client should.
func (g *gigaWalletCluster) postKeyed(i int, path, body string) (int, []byte, error) {
	key := fmt.Sprintf("test-%d", g.requestKeys.Add(1))
	return g.sendUntilAnswered(g.configs[i].AdminAddr, http.MethodPost, path, body, key)
}

// createInvoice creates one invoice through node i (postKeyed: without the key, a retry could
// create a second one).
func (g *gigaWalletCluster) createInvoice(i int, foreignID, body string) gigaWalletInvoiceAnswer {
	g.t.Helper()
	status, data, err := g.postKeyed(i, "/account/"+foreignID+"/invoice", body)
	if err != nil || status != http.StatusOK {
		g.t.Fatalf("create an invoice of %s through %s: %d %s %v", foreignID, g.configs[i].NodeID, status, data, err)
	}
	var answer gigaWalletInvoiceAnswer
	if err := json.Unmarshal(data, &answer); err != nil || answer.ID == "" {
		g.t.Fatalf("invoice answer %s: %v", data, err)
	}
	return answer
}

// gigaWalletInvoiceAnswer is what the tests read of an invoice view.
type gigaWalletInvoiceAnswer struct {
	ID           string `json:"id"`
	Account      string `json:"account"`
	PayToAddress string `json:"pay_to_address"`
	Total        string `json:"total"`
}

// fsmAccount reads an account straight from node i's replica of its shard (after
// waitConverged, every replica holds it).
func (g *gigaWalletCluster) fsmAccount(i int, foreignID string) *gigawallet.Account {
	g.t.Helper()
	reader := g.fsmReader(i, foreignID)
	a, err := reader.GetAccount(gigaWalletProjectID, foreignID)
	if err != nil {
		g.t.Fatalf("%s: account %s: %v", g.configs[i].NodeID, foreignID, err)
	}
	return a
}

func (g *gigaWalletCluster) fsmReader(i int, foreignID string) *gigawallet.Reader {
	g.t.Helper()
	n := g.node(i)
	shardID := int(keyspace.ShardOfSlot(keyspace.SlotOf(gigaWalletProjectID, foreignID), n.cluster.ShardCount()))
	machine, ok := n.cluster.StateMachine(shardID).(*fsm.Machine)
	if !ok {
		g.t.Fatalf("%s hosts no replica of shard %d", g.configs[i].NodeID, shardID)
	}
	return n.families.gigawallet.Of(machine)
}

// gigaWalletShardOf is the shard of a GigaWallet account.
func gigaWalletShardOf(foreignID string, shardCount int) int {
	return int(keyspace.ShardOfSlot(keyspace.SlotOf(gigaWalletProjectID, foreignID), shardCount))
}

// testPayoutAddress is a testnet P2PKH address of a keychain that is not the cluster's.
func testPayoutAddress(t *testing.T) string {
	t.Helper()
	seed, err := dogecoin.ParseSeed(hex.EncodeToString(bytes.Repeat([]byte{0x11}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dogecoin.NewKeychain(seed, dogecoin.Testnet)
	if err != nil {
		t.Fatal(err)
	}
	account, err := keys.Account(0)
	if err != nil {
		t.Fatal(err)
	}
	return account.ID()
}

// TestGigaWalletInvoicesOnThreeNodesFourShards: three nodes, four shards, one seed file. Accounts
// in every shard (two of them in one slot, created at once through two nodes) and invoices
// created through rotating nodes are served the same by every node: the public view on each
// public listener, the admin view and the account's list (in key order) on each admin listener.
// Every account's ID and N, and every invoice address, is unique and is what the keychain
// derives for the index the state machine assigned.
func TestGigaWalletInvoicesOnThreeNodesFourShards(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const nodeCount, shardCount, invoicesPerAccount = 3, 4, 3
	g := newGigaWalletCluster(t, nodeCount, shardCount, nil)

	// One foreign ID per shard, then a second one in the first one's slot: the slot's next
	// account gets N = 4096 + slot.
	var foreignIDs []string
	shardsSeen := map[int]bool{}
	for k := 0; len(shardsSeen) < shardCount; k++ {
		if k == 1000 {
			t.Fatalf("1000 foreign IDs cover only %d shards", len(shardsSeen))
		}
		id := fmt.Sprintf("shop-%d", k)
		if shardID := gigaWalletShardOf(id, shardCount); !shardsSeen[shardID] {
			shardsSeen[shardID] = true
			foreignIDs = append(foreignIDs, id)
		}
	}
	firstSlot := keyspace.SlotOf(gigaWalletProjectID, foreignIDs[0])
	for k := 0; ; k++ {
		if k == 1_000_000 {
			t.Fatal("no foreign ID shares the first one's slot")
		}
		id := fmt.Sprintf("twin-%d", k)
		if keyspace.SlotOf(gigaWalletProjectID, id) == firstSlot {
			foreignIDs = append(foreignIDs, id)
			break
		}
	}

	// The accounts at once, each through another node: the nodes race to create the project
	// and its asset, and the slot's two accounts race for its next index.
	payout := testPayoutAddress(t)
	settings := `{"payout_address":"` + payout + `","payout_threshold":"2.5","payout_frequency":"86400"}`
	type upsert struct {
		status int
		body   []byte
		err    error
	}
	upserts := make([]upsert, len(foreignIDs))
	var wg sync.WaitGroup
	for a, id := range foreignIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &upserts[a]
			u.status, u.body, u.err = g.retrySafe(g.configs[a%nodeCount].AdminAddr, http.MethodPost, "/account/"+id, settings)
		}()
	}
	wg.Wait()
	accountIDs := map[string]string{} // foreign ID → account ID (address)
	for a, id := range foreignIDs {
		var view struct {
			ID, ForeignID, PayoutAddress string
		}
		u := upserts[a]
		if u.err != nil || u.status != http.StatusOK {
			t.Fatalf("upsert %s: %d %s %v", id, u.status, u.body, u.err)
		}
		if err := json.Unmarshal(u.body, &view); err != nil {
			t.Fatal(err)
		}
		if view.ID == "" || !strings.Contains(string(u.body), `"payout_address":"`+payout+`"`) {
			t.Fatalf("upsert %s: %s", id, u.body)
		}
		accountIDs[id] = view.ID
	}

	// Invoices through rotating nodes, one account after the other.
	invoices := map[string][]gigaWalletInvoiceAnswer{}
	request := 0
	for j := 0; j < invoicesPerAccount; j++ {
		for _, id := range foreignIDs {
			body := fmt.Sprintf(`{"required_confirmations":%d,"items":[{"type":"item","name":"widget %d","value":"1.25","quantity":%d}]}`, j, j, j+1)
			answer := g.createInvoice(request%nodeCount, id, body)
			request++
			invoices[id] = append(invoices[id], answer)
		}
	}
	g.waitConverged(clusterWaitMax)

	// What the state machine assigned, as every replica holds it, is what the keychain derives.
	unique := map[string]string{} // every account ID and invoice address → what it is
	claim := func(value, what string) {
		t.Helper()
		if other, taken := unique[value]; taken {
			t.Fatalf("%s is both %s and %s", value, other, what)
		}
		unique[value] = what
	}
	accountNumbers := map[uint32]string{}
	for _, id := range foreignIDs {
		a := g.fsmAccount(0, id)
		for i := 1; i < nodeCount; i++ {
			if other := g.fsmAccount(i, id); *other != *a {
				t.Fatalf("%s: %s holds %+v, %s holds %+v", id, g.configs[i].NodeID, other, g.configs[0].NodeID, a)
			}
		}
		if other, taken := accountNumbers[a.Index]; taken {
			t.Fatalf("accounts %s and %s both have N = %d", other, id, a.Index)
		}
		accountNumbers[a.Index] = id
		if slot := keyspace.SlotOf(gigaWalletProjectID, id); a.Index%keyspace.SlotCount != uint32(slot) {
			t.Fatalf("%s: N = %d is not of its slot %d", id, a.Index, slot)
		}
		keys, err := g.keys.Account(a.Index)
		if err != nil {
			t.Fatal(err)
		}
		if a.Address != keys.ID() || accountIDs[id] != keys.ID() || a.XPub != keys.ExtendedPublicKey() {
			t.Fatalf("%s (N = %d): stored %s %s, answered %s; the keychain derives %s %s",
				id, a.Index, a.Address, a.XPub, accountIDs[id], keys.ID(), keys.ExtendedPublicKey())
		}
		claim(a.Address, "the account ID of "+id)
		if a.NextExternal != invoicesPerAccount {
			t.Fatalf("%s: next external index %d after %d invoices", id, a.NextExternal, invoicesPerAccount)
		}
		for j, answer := range invoices[id] {
			want, err := keys.InvoiceAddress(uint32(j))
			if err != nil {
				t.Fatal(err)
			}
			if answer.ID != want.Address || answer.PayToAddress != want.Address {
				t.Fatalf("%s invoice %d: answered %+v, the keychain derives %s for m/44'/3'/%d'/0/%d", id, j, answer, want.Address, a.Index, j)
			}
			for i := 0; i < nodeCount; i++ {
				v, err := g.fsmReader(i, id).GetInvoice(gigaWalletProjectID, id, answer.ID)
				if err != nil || v.KeyIndex != uint32(j) || v.Address != want.Address {
					t.Fatalf("%s: invoice %s of %s: %+v %v, want key index %d", g.configs[i].NodeID, answer.ID, id, v, err, j)
				}
			}
			claim(answer.ID, fmt.Sprintf("invoice %d of %s", j, id))
		}
	}
	twinNumbers := []uint32{g.fsmAccount(0, foreignIDs[0]).Index, g.fsmAccount(0, foreignIDs[len(foreignIDs)-1]).Index}
	slices.Sort(twinNumbers)
	if twinNumbers[0] != uint32(firstSlot) || twinNumbers[1] != keyspace.SlotCount+uint32(firstSlot) {
		t.Fatalf("the two accounts of slot %d have N = %v", firstSlot, twinNumbers)
	}

	// Every node serves every invoice the same: public view, admin view, list in key order.
	sameOnEveryNode := func(what string, read func(i int) []byte) []byte {
		t.Helper()
		first := read(0)
		for i := 1; i < nodeCount; i++ {
			if other := read(i); !bytes.Equal(other, first) {
				t.Fatalf("%s: %s answers %s, %s answers %s", what, g.configs[i].NodeID, other, g.configs[0].NodeID, first)
			}
		}
		return first
	}
	for _, id := range foreignIDs {
		sameOnEveryNode("account "+id, func(i int) []byte {
			return g.expect(i, false, http.MethodGet, "/account/"+id, "", http.StatusOK)
		})
		var listed []string
		for _, answer := range invoices[id] {
			listed = append(listed, answer.ID)
			public := sameOnEveryNode("public invoice "+answer.ID, func(i int) []byte {
				return g.expect(i, true, http.MethodGet, "/invoice/"+answer.ID, "", http.StatusOK)
			})
			// The signed DogeConnect envelope and the QR code too: one key, deterministic signatures.
			sameOnEveryNode("connect envelope "+answer.ID, func(i int) []byte {
				return g.expect(i, true, http.MethodGet, "/invoice/"+answer.ID+"/connect", "", http.StatusOK)
			})
			sameOnEveryNode("QR code "+answer.ID, func(i int) []byte {
				return g.expect(i, true, http.MethodGet, "/invoice/"+answer.ID+"/qr.png", "", http.StatusOK)
			})
			admin := sameOnEveryNode("admin invoice "+answer.ID, func(i int) []byte {
				return g.expect(i, false, http.MethodGet, "/account/"+id+"/invoice/"+answer.ID, "", http.StatusOK)
			})
			var publicView, adminView gigaWalletInvoiceAnswer
			if json.Unmarshal(public, &publicView) != nil || json.Unmarshal(admin, &adminView) != nil ||
				publicView.ID != answer.ID || publicView.Total != answer.Total || adminView.ID != answer.ID ||
				adminView.Account != accountIDs[id] || adminView.PayToAddress != answer.ID {
				t.Fatalf("invoice %s of %s: public %s, admin %s", answer.ID, id, public, admin)
			}
		}
		list := sameOnEveryNode("list of "+id, func(i int) []byte {
			return g.expect(i, false, http.MethodGet, "/account/"+id+"/invoices?limit=100", "", http.StatusOK)
		})
		var page struct {
			Items  []gigaWalletInvoiceAnswer
			Cursor int64
		}
		if err := json.Unmarshal(list, &page); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, item := range page.Items {
			ids = append(ids, item.ID)
		}
		if !slices.Equal(ids, listed) || page.Cursor != 0 {
			t.Fatalf("list of %s: %v cursor %d, want %v cursor 0", id, ids, page.Cursor, listed)
		}
		// Pages of two through each node, following the cursor, give the same order.
		for i := 0; i < nodeCount; i++ {
			var paged []string
			for cursor, pages := int64(0), 0; ; pages++ {
				if pages > invoicesPerAccount {
					t.Fatalf("list of %s on %s: the cursor does not end", id, g.configs[i].NodeID)
				}
				data := g.expect(i, false, http.MethodGet, fmt.Sprintf("/account/%s/invoices?limit=2&cursor=%d", id, cursor), "", http.StatusOK)
				page.Items, page.Cursor = nil, 0
				if err := json.Unmarshal(data, &page); err != nil {
					t.Fatal(err)
				}
				for _, item := range page.Items {
					paged = append(paged, item.ID)
				}
				if cursor = page.Cursor; cursor == 0 {
					break
				}
			}
			if !slices.Equal(paged, listed) {
				t.Fatalf("paged list of %s on %s: %v, want %v", id, g.configs[i].NodeID, paged, listed)
			}
		}
	}
	// An invoice asked of another account is not found, on every node.
	other := foreignIDs[1]
	for i := 0; i < nodeCount; i++ {
		g.expect(i, false, http.MethodGet, "/account/"+other+"/invoice/"+invoices[foreignIDs[0]][0].ID, "", http.StatusNotFound)
	}
	t.Logf("%d accounts over %d shards, %d invoices, read from %d nodes", len(foreignIDs), len(shardsSeen), len(unique)-len(foreignIDs), nodeCount)
}
