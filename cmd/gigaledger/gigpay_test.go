package main

import (
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// gigPayProject is the GigPay project of a node's default configuration.
const gigPayProject = "gigpay"

// gigPayCustomerOn finds a customer ID (prefix + n) whose wallets live on shard.
func gigPayCustomerOn(prefix string, shard, shardCount int) string {
	for n := 0; ; n++ {
		id := fmt.Sprintf("%s%d", prefix, n)
		if int(keyspace.ShardOfSlot(keyspace.SlotOf(gigPayProject, id), shardCount)) == shard {
			return id
		}
	}
}

// gigPayAccount opens a usd account for a customer and returns its ID.
func (tc *testCluster) gigPayAccount(customer string) string {
	tc.t.Helper()
	out := tc.must("POST", "/api/v1/accounts", map[string]any{"userIdentityId": customer, "assetType": "usd"}, http.StatusCreated)
	id, _ := out["id"].(string)
	if id == "" {
		tc.t.Fatalf("account answer %v", out)
	}
	return id
}

// gigPayDeposit credits an account through a completed admin deposit.
func (tc *testCluster) gigPayDeposit(account, amount string) {
	tc.t.Helper()
	p := tc.must("POST", "/api/v1/payments", map[string]any{"type": "deposit", "accountId": account, "assetType": "usd",
		"amount": amount, "externalStorage": "wire:test", "clientReference": "fund-" + account}, http.StatusCreated)
	tc.must("POST", "/api/v1/payments/"+p["paymentId"].(string)+"/status", map[string]any{"status": "completed"}, http.StatusOK)
}

// gigPayToken creates a token; its client reference makes must's retries safe.
func (tc *testCluster) gigPayToken(source, amount string, expiresAt time.Time, reference string) (id, token string) {
	tc.t.Helper()
	out := tc.must("POST", "/api/v1/payment-tokens", map[string]any{"assetType": "usd", "sourceAccountId": source, "amount": amount,
		"expiresAtUtc": expiresAt.UTC().Format("2006-01-02T15:04:05.000Z"), "memo": "test", "clientReference": reference}, http.StatusCreated)
	id, _ = out["id"].(string)
	token, _ = out["token"].(string)
	if id == "" || token == "" {
		tc.t.Fatalf("token answer %v", out)
	}
	return id, token
}

// gigPayBalance reads an account's balance and available amount, in cents.
func (tc *testCluster) gigPayBalance(account string) (balance, available int64) {
	tc.t.Helper()
	out := tc.must("GET", "/api/v1/accounts/"+account, nil, http.StatusOK)
	return gigPayCents(tc.t, out["balance"]), gigPayCents(tc.t, out["available"])
}

// gigPayCents reads a JSON amount (decoded as float64 by encoding/json's map: exact for the small
// test amounts, which have at most two decimals) as cents.
func gigPayCents(t *testing.T, v any) int64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if !ok {
		t.Fatalf("amount %v", v)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		t.Fatalf("amount %v is not whole cents", v)
	}
	return r.Num().Int64()
}

// claimOutcome is what one claimer finally learned.
type claimOutcome int

const (
	claimWon  claimOutcome = iota + 1 // 200, or a 409 that shows the token claimed into our account
	claimLost                         // 409: another claimer won, or the token expired
)

// gigPayClaim claims a token into dest through any live node, retrying answers that leave the
// outcome unknown (503, a lost connection) or a claim in progress (409 TokenClaimInProgress)
// within a deadline. A retry of a claim that applied
// meets 409 TokenNotActive with the token Succeeded into dest: that is our win.
func (tc *testCluster) gigPayClaim(start int, token, dest string) (claimOutcome, map[string]any) {
	deadline := time.Now().Add(40 * time.Second)
	for attempt := start; time.Now().Before(deadline); attempt++ {
		i := attempt % len(tc.nodes)
		if tc.node(i) == nil {
			continue
		}
		status, out, err := tc.call(i, "POST", "/api/v1/payment-tokens/"+token+"/claim", map[string]any{"destinationAccountId": dest})
		switch {
		case err == nil && status == http.StatusOK:
			return claimWon, out
		case err == nil && status == http.StatusConflict && errorCode(out) == "TokenNotActive":
			tok, _ := out["token"].(map[string]any)
			if tok["status"] == "Succeeded" && tok["destinationAccountId"] == dest {
				return claimWon, out
			}
			return claimLost, out
		case err == nil && status == http.StatusConflict && errorCode(out) == "TokenClaimInProgress":
			// Another claim across shards holds the token: it ends Succeeded or Active again.
		case err == nil && status != http.StatusServiceUnavailable:
			tc.t.Errorf("claim %s: %d %v", token, status, out)
			return 0, out
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.t.Errorf("claim %s: no answer in time", token)
	return 0, nil
}

// TestGigPayOnThreeNodes runs GigPay on three nodes with two shards: 64 claimers race for tokens
// and against their expiries (exactly one outcome per token), the payer's shard leader is
// killed mid-claim (every token still resolves exactly once), a claim into another shard
// succeeds (the cross-shard protocol), and the holds add up throughout.
func TestGigPayOnThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	const shards = 2
	tc := newShardedTestCluster(t, 3, shards)
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led", func() bool { return tc.node(i).ready() == nil })
	}
	payerCustomer := gigPayCustomerOn("payer", 1, shards)
	payer := tc.gigPayAccount(payerCustomer)
	var payees []string
	for k := range 4 {
		payees = append(payees, tc.gigPayAccount(gigPayCustomerOn(fmt.Sprintf("payee%d-", k), 1, shards)))
	}
	far := tc.gigPayAccount(gigPayCustomerOn("far", 0, shards))
	tc.gigPayDeposit(payer, "1000")
	if b, a := tc.gigPayBalance(payer); b != 100_000 || a != 100_000 {
		t.Fatalf("funded payer: balance %d available %d", b, a)
	}

	// A claim into another shard runs the cross-shard protocol: the token succeeds, once.
	_, farToken := tc.gigPayToken(payer, "1", time.Now().Add(time.Hour), "far")
	status, out, err := tc.call(0, "POST", "/api/v1/payment-tokens/"+farToken+"/claim", map[string]any{"destinationAccountId": far})
	if err != nil || status != http.StatusOK || out["status"] != "Succeeded" || out["destinationAccountId"] != far {
		t.Fatalf("cross-shard claim: %d %v %v", status, out, err)
	}
	if b, a := tc.gigPayBalance(far); b != 100 || a != 100 {
		t.Fatalf("cross-shard payee: balance %d available %d", b, a)
	}
	status, out, err = tc.call(1, "POST", "/api/v1/payment-tokens/"+farToken+"/reject", nil)
	if err != nil || status != http.StatusConflict || errorCode(out) != "TokenNotActive" {
		t.Fatalf("reject after a cross-shard claim: %d %v %v", status, out, err)
	}
	const farPaid = 100

	// Race: 32 tokens, two claimers each (64 in all) into different payees; half the tokens
	// expire while their claimers arrive around the expiry.
	type raced struct {
		id, token string
		expiresAt time.Time
		wins      atomic.Int32
	}
	expiry := time.Now().Add(3 * time.Second)
	var tokens []*raced
	for k := range 32 {
		at := time.Now().Add(time.Hour)
		if k%2 == 0 {
			at = expiry
		}
		id, token := tc.gigPayToken(payer, "1.25", at, fmt.Sprintf("race-%d", k))
		tokens = append(tokens, &raced{id: id, token: token, expiresAt: at})
	}
	if b, a := tc.gigPayBalance(payer); b != 100_000-farPaid || a != 100_000-farPaid-32*125 {
		t.Fatalf("32 active tokens of 1.25: balance %d available %d", b, a)
	}
	var wg sync.WaitGroup
	for k, tok := range tokens {
		for c := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Claimers of expiring tokens arrive spread around the expiry.
				if k%2 == 0 {
					offset := time.Duration((k*2+c)%16-8) * 100 * time.Millisecond
					<-time.After(time.Until(expiry.Add(offset)))
				}
				if outcome, _ := tc.gigPayClaim(k+c, tok.token, payees[(k+c)%len(payees)]); outcome == claimWon {
					tok.wins.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	// Once every expiry is due, every token has exactly one end.
	<-time.After(time.Until(expiry.Add(100 * time.Millisecond)))
	var won int64
	for _, tok := range tokens {
		var got map[string]any
		testutil.EventuallyWithin(t, clusterWaitMax, "token "+tok.id+" settled", func() bool {
			got = tc.must("GET", "/api/v1/payment-tokens/"+tok.id, nil, http.StatusOK)
			return got["status"] != "Active"
		})
		wins := tok.wins.Load()
		switch {
		case wins > 1:
			t.Fatalf("token %s won by %d claimers", tok.id, wins)
		case wins == 1 && got["status"] != "Succeeded", wins == 0 && got["status"] != "Expired":
			t.Fatalf("token %s: %d wins, status %v", tok.id, wins, got["status"])
		case wins == 0 && !tok.expiresAt.Equal(expiry):
			t.Fatalf("token %s without expiry was not claimed", tok.id)
		}
		won += int64(wins)
	}
	t.Logf("race: %d of 32 tokens claimed, %d expired", won, 32-won)
	var paid int64
	for _, p := range payees {
		b, a := tc.gigPayBalance(p)
		if a != b {
			t.Fatalf("payee %s: balance %d available %d", p, b, a)
		}
		paid += b
	}
	if b, a := tc.gigPayBalance(payer); b != 100_000-farPaid-won*125 || a != b || paid != won*125 {
		t.Fatalf("after the race: payer balance %d available %d, payees %d; %d claims won", b, a, paid, won)
	}

	// Leader kill mid-claim: 24 claimers, and the payer shard's leader stops under them.
	var killTokens []string
	for k := range 24 {
		_, token := tc.gigPayToken(payer, "2", time.Now().Add(time.Hour), fmt.Sprintf("kill-%d", k))
		killTokens = append(killTokens, token)
	}
	leader := -1
	testutil.EventuallyWithin(t, clusterWaitMax, "a leader of shard 1", func() bool {
		for i := range tc.nodes {
			if n := tc.node(i); n != nil && n.cluster.Shard(1).IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	var started atomic.Int32
	outcomes := make([]claimOutcome, len(killTokens))
	for k, token := range killTokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			outcomes[k], _ = tc.gigPayClaim(k, token, payees[k%len(payees)])
		}()
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "claimers started", func() bool { return started.Load() == int32(len(killTokens)) })
	tc.stop(leader)
	wg.Wait()
	for k, o := range outcomes {
		if o != claimWon {
			t.Fatalf("claim %d of a fresh token across a leader kill: outcome %d", k, o)
		}
	}
	tc.start(leader)
	tc.waitConverged(clusterWaitMax)
	paid = 0
	for _, p := range payees {
		b, _ := tc.gigPayBalance(p)
		paid += b
	}
	want := won*125 + int64(len(killTokens))*200
	if b, a := tc.gigPayBalance(payer); b != 100_000-farPaid-want || a != b || paid != want {
		t.Fatalf("after the kill: payer balance %d available %d, payees %d, want %d paid", b, a, paid, want)
	}
}
