package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The capture leg and the hook on 3 nodes and 4 shards (issue 14): a hold captured to a wallet
// of another shard, and GigPay claims whose payee lives on another shard than the token.

// placeHold places a hold on a wallet and returns its ID.
func (f *crossFixture) placeHold(wallet string, amount int, ref string) string {
	tx := f.tc.must("POST", "/projects/shop/transactions", map[string]any{"referenceId": ref,
		"operations": []map[string]any{{"type": "hold", "from": wallet, "amount": amount}}}, 201)
	return tx["operations"].([]any)[0].(map[string]any)["holdId"].(string)
}

// callKeyed sends a request with an Idempotency-Key to node i.
func (tc *testCluster) callKeyed(i int, method, path string, body any, key string) (int, map[string]any) {
	tc.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+tc.configs[i].AdminAddr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := tc.client.Do(req)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tc.t.Fatal(err)
	}
	return resp.StatusCode, out
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// A hold on shard 0 captured to a wallet of shard 3 answers as the single-shard capture does:
// 200 with the captured hold and the transaction, 409 HoldResolved on a second capture or a
// retry, 422 with the failed transaction when the payee is closed (the hold stays active and
// can be released), 409 ReferenceIdMismatch under another transaction's reference.
func TestCrossShardHoldCaptureOnThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	f := newCrossFixture(t, 2, 1000)
	tc := f.tc
	a, a2, b := f.byShard[0][0], f.byShard[0][1], f.byShard[3][0]

	h := f.placeHold(a, 300, "hold-1")
	capture := map[string]any{"to": b, "amount": 200, "referenceId": "cap-1"}
	start := time.Now()
	out := tc.must("POST", "/projects/shop/holds/"+h+"/capture", capture, 200)
	crossLatency := []time.Duration{time.Since(start)}
	hold, tx := out["hold"].(map[string]any), out["transaction"].(map[string]any)
	if hold["status"] != "captured" || hold["capturedAmount"] != float64(200) || tx["status"] != "completed" ||
		tx["referenceId"] != "cap-1" || hold["captureTransactionId"] != tx["id"] {
		t.Fatalf("cross-shard capture: %v", out)
	}
	if f.balance(a) != 800 || f.balance(b) != 1200 {
		t.Fatalf("balances %d %d", f.balance(a), f.balance(b))
	}
	if w := tc.must("GET", "/projects/shop/wallets/"+a, nil, 200); w["available"] != float64(800) {
		t.Fatalf("the rest of the hold is not released: %v", w)
	}
	// A retry, a second capture: 409 HoldResolved with the hold, as on one shard.
	for _, body := range []map[string]any{capture, {"to": b, "amount": 1}} {
		again := tc.must("POST", "/projects/shop/holds/"+h+"/capture", body, 409)
		if errorCode(again) != "HoldResolved" || again["hold"].(map[string]any)["status"] != "captured" {
			t.Fatalf("capture again: %v", again)
		}
	}
	// The payee closed: 422 WalletClosed with the failed transaction; the hold stays active.
	closed := tc.must("POST", "/projects/shop/wallets", map[string]any{"customerId": walletOwner(tc, b), "assetId": "usd"}, 201)["id"].(string)
	tc.must("PUT", "/projects/shop/wallets/"+closed+"/status", map[string]any{"status": "closed"}, 200)
	h2 := f.placeHold(a, 100, "hold-2")
	failed := tc.must("POST", "/projects/shop/holds/"+h2+"/capture", map[string]any{"to": closed}, 422)
	if errorCode(failed) != "WalletClosed" || failed["transaction"].(map[string]any)["status"] != "failed" {
		t.Fatalf("capture to a closed wallet: %v", failed)
	}
	if got := tc.must("GET", "/projects/shop/holds/"+h2, nil, 200); got["status"] != "active" {
		t.Fatalf("hold after the failed capture: %v", got)
	}
	// An Idempotency-Key: the replay answers what the first request answered (200), through
	// any node, although the hold is captured by then.
	hk := f.placeHold(a, 40, "hold-keyed")
	status, first := tc.callKeyed(1, "POST", "/projects/shop/holds/"+hk+"/capture", map[string]any{"to": b}, "key-capture-1")
	if status != 200 || first["hold"].(map[string]any)["status"] != "captured" {
		t.Fatalf("keyed capture: %d %v", status, first)
	}
	status, replay := tc.callKeyed(2, "POST", "/projects/shop/holds/"+hk+"/capture", map[string]any{"to": b}, "key-capture-1")
	if status != 200 || replay["transaction"].(map[string]any)["id"] != first["transaction"].(map[string]any)["id"] {
		t.Fatalf("keyed capture replayed: %d %v, first %v", status, replay, first)
	}
	// A payee that does not exist: 404 WalletNotFound, nothing recorded, as on one shard.
	ghost := "w" + b[1:5] + "ghost"
	if out := tc.must("POST", "/projects/shop/holds/"+h2+"/capture", map[string]any{"to": ghost, "referenceId": "cap-ghost"}, 404); errorCode(out) != "WalletNotFound" || out["transaction"] != nil {
		t.Fatalf("capture to a missing wallet: %v", out)
	}
	tc.must("POST", "/projects/shop/holds/"+h2+"/release", nil, 200)

	// Latency: more cross-shard captures, and single-shard ones for comparison.
	var singleLatency []time.Duration
	for k := range 5 {
		hx := f.placeHold(a, 10, fmt.Sprintf("lat-x-%d", k))
		start := time.Now()
		tc.must("POST", "/projects/shop/holds/"+hx+"/capture", map[string]any{"to": b}, 200)
		crossLatency = append(crossLatency, time.Since(start))
		hs := f.placeHold(a, 10, fmt.Sprintf("lat-s-%d", k))
		start = time.Now()
		tc.must("POST", "/projects/shop/holds/"+hs+"/capture", map[string]any{"to": a2}, 200)
		singleLatency = append(singleLatency, time.Since(start))
	}
	if f.balance(a) != 660 || f.balance(b) != 1290 || f.balance(a2) != 1050 {
		t.Fatalf("balances %d %d %d", f.balance(a), f.balance(b), f.balance(a2))
	}
	// A capture under a reference that a completed transaction used (another hold's capture
	// with the same transfer, or a plain transfer): 409 ReferenceIdMismatch with that
	// transaction, not "already applied"; the hold stays active, as on one shard.
	hm := f.placeHold(a, 200, "hold-mismatch")
	tc.must("POST", "/projects/shop/transactions", map[string]any{"referenceId": "plain-1",
		"operations": []map[string]any{{"type": "transfer", "from": a, "to": b, "amount": 200}}}, 201)
	for _, ref := range []string{"cap-1", "plain-1"} {
		out := tc.must("POST", "/projects/shop/holds/"+hm+"/capture", map[string]any{"to": b, "referenceId": ref}, 409)
		if errorCode(out) != "ReferenceIdMismatch" || out["transaction"].(map[string]any)["referenceId"] != ref {
			t.Fatalf("capture under reference %q: %v", ref, out)
		}
	}
	if got := tc.must("GET", "/projects/shop/holds/"+hm, nil, 200); got["status"] != "active" {
		t.Fatalf("hold after the mismatched captures: %v", got)
	}
	tc.must("POST", "/projects/shop/holds/"+hm+"/release", nil, 200)
	if f.balance(a) != 460 || f.balance(b) != 1490 {
		t.Fatalf("balances %d %d", f.balance(a), f.balance(b))
	}
	f.check(t)
	t.Logf("hold capture over HTTP: cross-shard median %v (%d), single-shard median %v (%d)",
		median(crossLatency), len(crossLatency), median(singleLatency), len(singleLatency))
}

// walletOwner reads a wallet's customer.
func walletOwner(tc *testCluster, wallet string) string {
	return tc.must("GET", "/projects/shop/wallets/"+wallet, nil, 200)["customerId"].(string)
}

// GigPay claims into accounts of other shards: one completes (latency against one shard); the
// close of a token claimed across shards completes, replays under an Idempotency-Key and is
// refused for funds as on one shard; a payee closed or missing fails with the single-shard answer and the token is Active again,
// claimable elsewhere; claimers racing on one token across shards: exactly one wins; the
// leader of the payer's shard (the coordinator) killed under claims: each token claimed
// exactly once, balances conserved across shards.
func TestGigPayCrossShardOnThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newShardedTestCluster(t, 3, crossShards)
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, "every shard led", func() bool { return tc.node(i).ready() == nil })
	}
	const payerShard = 1
	payer := tc.gigPayAccount(gigPayCustomerOn("payer", payerShard, crossShards))
	near := tc.gigPayAccount(gigPayCustomerOn("near", payerShard, crossShards))
	var far []string // payees on every other shard
	for s := range crossShards {
		if s != payerShard {
			far = append(far, tc.gigPayAccount(gigPayCustomerOn(fmt.Sprintf("far%d-", s), s, crossShards)))
		}
	}
	tc.gigPayDeposit(payer, "1000")
	var paid int64 // cents moved to payees
	claim := func(token, dest string, want int) (map[string]any, time.Duration) {
		t.Helper()
		start := time.Now()
		out := tc.must("POST", "/api/v1/payment-tokens/"+token+"/claim", map[string]any{"destinationAccountId": dest}, want)
		return out, time.Since(start)
	}

	// One claim into another shard, and latencies against one shard.
	var crossLatency, singleLatency []time.Duration
	for k := range 5 {
		_, tok := tc.gigPayToken(payer, "1", time.Now().Add(time.Hour), fmt.Sprintf("x-%d", k))
		out, d := claim(tok, far[k%len(far)], http.StatusOK)
		if out["status"] != "Succeeded" || out["destinationAccountId"] != far[k%len(far)] || out["paymentId"] == nil {
			t.Fatalf("cross-shard claim: %v", out)
		}
		crossLatency = append(crossLatency, d)
		_, tok = tc.gigPayToken(payer, "1", time.Now().Add(time.Hour), fmt.Sprintf("s-%d", k))
		_, d = claim(tok, near, http.StatusOK)
		singleLatency = append(singleLatency, d)
		paid += 200
	}

	// An Idempotency-Key: the replay answers 200 with the Succeeded token again.
	_, keyedToken := tc.gigPayToken(payer, "1", time.Now().Add(time.Hour), "keyed")
	for i := range 2 {
		status, out := tc.callKeyed(i, "POST", "/api/v1/payment-tokens/"+keyedToken+"/claim", map[string]any{"destinationAccountId": far[0]}, "key-claim-1")
		if status != http.StatusOK || out["status"] != "Succeeded" {
			t.Fatalf("keyed claim, attempt %d: %d %v", i, status, out)
		}
	}
	paid += 100

	// Closing a token claimed across shards: the reversal is a transfer from the payee back to
	// the payer across shards. It completes (200, Closed); a second close answers what it
	// answers on one shard (422 InvalidStatusTransition); with an Idempotency-Key the replay
	// through another node answers 200 again. Each close gives back what its claim paid.
	closeToken := func(id string, want int) map[string]any {
		t.Helper()
		return tc.must("POST", "/api/v1/payment-tokens/"+id+"/close", map[string]any{"reason": "masspay: payee account closed"}, want)
	}
	closeID, tok := tc.gigPayToken(payer, "2", time.Now().Add(time.Hour), "close-1")
	claim(tok, far[0], http.StatusOK)
	before, _ := tc.gigPayBalance(far[0])
	closeStart := time.Now()
	out := closeToken(closeID, http.StatusOK)
	closeLatency := time.Since(closeStart)
	if out["status"] != "Closed" || out["reason"] != "masspay: payee account closed" {
		t.Fatalf("cross-shard close: %v", out)
	}
	if after, _ := tc.gigPayBalance(far[0]); after != before-200 {
		t.Fatalf("payee after the close: %d, before %d", after, before)
	}
	if out := closeToken(closeID, http.StatusUnprocessableEntity); errorCode(out) != "InvalidStatusTransition" || out["token"].(map[string]any)["status"] != "Closed" {
		t.Fatalf("second close: %v", out)
	}
	payment := tc.must("GET", "/api/v1/payments/"+tc.must("GET", "/api/v1/payment-tokens/"+closeID, nil, 200)["paymentId"].(string), nil, 200)
	if payment["status"] != "canceled" {
		t.Fatalf("payment after the close: %v", payment)
	}
	keyedID, tok := tc.gigPayToken(payer, "1", time.Now().Add(time.Hour), "close-keyed")
	claim(tok, far[1], http.StatusOK)
	for i := range 2 {
		status, out := tc.callKeyed(i, "POST", "/api/v1/payment-tokens/"+keyedID+"/close", map[string]any{"reason": "keyed"}, "key-close-1")
		if status != http.StatusOK || out["status"] != "Closed" {
			t.Fatalf("keyed close, attempt %d: %d %v", i, status, out)
		}
	}
	// Refused for funds: the payee (on its own shard) holds part of what it received for a
	// token of its own; 422 InsufficientFunds with the token Succeeded, nothing moved. Once the
	// payee's token is rejected (its hold released) the close completes.
	poor := tc.gigPayAccount(gigPayCustomerOn("poor", 3, crossShards))
	poorID, tok := tc.gigPayToken(payer, "3", time.Now().Add(time.Hour), "close-poor")
	claim(tok, poor, http.StatusOK)
	_, spent := tc.gigPayToken(poor, "2", time.Now().Add(time.Hour), "poor-spends")
	out = closeToken(poorID, http.StatusUnprocessableEntity)
	if errorCode(out) != "InsufficientFunds" || out["token"].(map[string]any)["status"] != "Succeeded" {
		t.Fatalf("close without the funds: %v", out)
	}
	if b, a := tc.gigPayBalance(poor); b != 300 || a != 100 {
		t.Fatalf("poor payee after the refused close: balance %d available %d", b, a)
	}
	tc.must("POST", "/api/v1/payment-tokens/"+spent+"/reject", nil, http.StatusOK)
	if out := closeToken(poorID, http.StatusOK); out["status"] != "Closed" {
		t.Fatalf("close once funded: %v", out)
	}
	if b, a := tc.gigPayBalance(poor); b != 0 || a != 0 {
		t.Fatalf("poor payee after the close: balance %d available %d", b, a)
	}

	// A closed payee on another shard: 422 WalletClosed with the token, Active again.
	closedCustomer := gigPayCustomerOn("closed", 2, crossShards)
	closed := tc.gigPayAccount(closedCustomer)
	tc.must("PUT", "/projects/"+gigPayProject+"/wallets/"+closed+"/status", map[string]any{"status": "closed"}, 200)
	id, tok := tc.gigPayToken(payer, "2", time.Now().Add(time.Hour), "to-closed")
	out, _ = claim(tok, closed, http.StatusUnprocessableEntity)
	if errorCode(out) != "WalletClosed" || out["token"].(map[string]any)["status"] != "Active" {
		t.Fatalf("claim into a closed account: %v", out)
	}
	// A missing payee of another shard: 422 WalletNotFound, as on one shard.
	missing := "w" + far[0][1:5] + "nosuchaccount"
	if out, _ := claim(tok, missing, http.StatusUnprocessableEntity); errorCode(out) != "WalletNotFound" {
		t.Fatalf("claim into a missing account: %v", out)
	}
	if got := tc.must("GET", "/api/v1/payment-tokens/"+id, nil, 200); got["status"] != "Active" {
		t.Fatalf("token after failed claims: %v", got)
	}
	if out, _ := claim(tok, far[1], http.StatusOK); out["status"] != "Succeeded" {
		t.Fatalf("claim elsewhere: %v", out)
	}
	paid += 200
	// Rejected after a failed cross-shard claim.
	_, tok = tc.gigPayToken(payer, "2", time.Now().Add(time.Hour), "to-closed-then-reject")
	claim(tok, closed, http.StatusUnprocessableEntity)
	tc.must("POST", "/api/v1/payment-tokens/"+tok+"/reject", nil, http.StatusOK)

	// Racing claimers on one token, into payees of three shards: exactly one wins each.
	const raced = 8
	var wg sync.WaitGroup
	payees := append([]string{near}, far...)
	for k := range raced {
		_, tok := tc.gigPayToken(payer, "1.5", time.Now().Add(time.Hour), fmt.Sprintf("race-%d", k))
		var wins atomic.Int32
		for c := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if o, _ := tc.gigPayClaim(k+c, tok, payees[(k+c)%len(payees)]); o == claimWon {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("token race-%d: %d winners", k, w)
		}
		paid += 150
	}

	// The payer's shard leader (the coordinator of every claim) killed under 12 claims into
	// other shards; the claimers retry on 503 and lost answers.
	var killTokens []string
	for k := range 12 {
		_, tok := tc.gigPayToken(payer, "3", time.Now().Add(time.Hour), fmt.Sprintf("kill-%d", k))
		killTokens = append(killTokens, tok)
	}
	victim := -1
	testutil.EventuallyWithin(t, clusterWaitMax, "a leader of the payer's shard", func() bool {
		for i := range tc.nodes {
			if n := tc.node(i); n != nil && n.cluster.Shard(payerShard).IsLeader() {
				victim = i
				return true
			}
		}
		return false
	})
	outcomes := make([]claimOutcome, len(killTokens))
	var started atomic.Int32
	for k, tok := range killTokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Add(1)
			outcomes[k], _ = tc.gigPayClaim(k, tok, far[k%len(far)])
		}()
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "claimers started", func() bool { return started.Load() == int32(len(killTokens)) })
	testutil.Wait(2*time.Second, func() bool { return tc.node(victim).cross.InFlight() > 0 })
	carried := tc.node(victim).cross.InFlight()
	killedAt := time.Now()
	tc.kill(victim)
	wg.Wait()
	answered := time.Since(killedAt)
	for k, o := range outcomes {
		if o != claimWon {
			t.Fatalf("claim %d across the kill: outcome %d", k, o)
		}
		paid += 300
	}
	tc.start(victim)
	testutil.EventuallyWithin(t, clusterWaitMax, "restarted node ready", func() bool { return tc.node(victim).ready() == nil })
	tc.waitConverged(30 * time.Second)

	// Conservation: the payer paid exactly what the payees received, each token once.
	var received int64
	for _, p := range payees {
		b, a := tc.gigPayBalance(p)
		if a != b {
			t.Fatalf("payee %s: balance %d available %d", p, b, a)
		}
		received += b
	}
	if b, a := tc.gigPayBalance(payer); b != 100_000-paid || a != b || received != paid {
		t.Fatalf("payer balance %d available %d, payees %d, want %d paid", b, a, received, paid)
	}
	for i := range tc.nodes {
		n := tc.node(i)
		var ledgers []*ledger.Ledger
		for k := range crossShards {
			l := n.ledger(k)
			if err := l.CheckInvariants(); err != nil {
				t.Fatalf("%s shard %d: %v", tc.configs[i].NodeID, k, err)
			}
			if pending, err := l.PendingCross(10); err != nil || len(pending) != 0 {
				t.Fatalf("%s shard %d: records not done %+v %v", tc.configs[i].NodeID, k, pending, err)
			}
			ledgers = append(ledgers, l)
		}
		sums, err := ledger.SupplyAcross(ledgers...)
		if err != nil {
			t.Fatal(err)
		}
		if got := sums[ledger.AssetRef{ProjectID: gigPayProject, AssetID: "usd"}]; got != fsm.AmountFromUint64(100_000) {
			t.Fatalf("%s: supplies sum to %s, deposited 100000", tc.configs[i].NodeID, got)
		}
	}
	t.Logf("claim over HTTP: cross-shard median %v (%d), single-shard median %v (%d); a close across shards %v; kill: %d claims in flight on %s, all answered %v after the kill",
		median(crossLatency), len(crossLatency), median(singleLatency), len(singleLatency), closeLatency, carried, tc.configs[victim].NodeID,
		answered.Round(time.Millisecond))
}
