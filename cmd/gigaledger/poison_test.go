package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"
)

// maxAmountText is 2^128−1, the largest amount, as the curl sent it.
const maxAmountText = "340282366920938463463374607431768211455"

// patientClient waits longer than any proposal may take (the server answers 503
// OutcomeUnknown first), so on a loaded machine the client does not give up on a request
// that is still applying.
var patientClient = &http.Client{Timeout: 30 * time.Second}

// rawCall sends a raw JSON body to node i and decodes the answer keeping numbers exact
// (a 128-bit amount does not survive float64).
func (tc *testCluster) rawCall(i int, method, path, body string) (int, map[string]any, error) {
	var reader io.Reader
	if body != "" {
		reader = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, "http://"+tc.configs[i].AdminAddr+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := patientClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	decoder := json.NewDecoder(resp.Body)
	decoder.UseNumber()
	if err := decoder.Decode(&out); err != nil && err != io.EOF {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

// rawSend sends body to live nodes in turn, resending while the cluster answers 503 or cannot
// be reached, until an answer that accept takes (any other answer fails the test). uncertain
// says an earlier attempt left the outcome unknown (503 OutcomeUnknown, a transport error), so
// this one may find it applied.
func (tc *testCluster) rawSend(method, path, body string, accept func(status int, code string, uncertain bool) bool) (int, map[string]any) {
	tc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	uncertain := false
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		i := attempt % len(tc.nodes)
		if tc.node(i) == nil {
			continue
		}
		status, out, err := tc.rawCall(i, method, path, body)
		var code string
		if err == nil {
			if envelope, ok := out["error"].(map[string]any); ok {
				code, _ = envelope["code"].(string)
			}
			if accept(status, code, uncertain) {
				return status, out
			}
			if status != http.StatusServiceUnavailable {
				tc.t.Fatalf("%s %s %s: %d %v", method, path, body, status, out)
			}
		}
		if err != nil || code == "OutcomeUnknown" {
			uncertain = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.t.Fatalf("%s %s: no answer in time", method, path)
	return 0, nil
}

// rawMust expects want; after an uncertain attempt, a 409 with one of appliedCodes (the
// first attempt applied) counts as want too.
func (tc *testCluster) rawMust(method, path, body string, want int, appliedCodes ...string) map[string]any {
	tc.t.Helper()
	_, out := tc.rawSend(method, path, body, func(status int, code string, uncertain bool) bool {
		return status == want || (uncertain && status == http.StatusConflict && slices.Contains(appliedCodes, code))
	})
	return out
}

// transact posts a transaction and returns its outcome as a first answer gives it: 201 and
// the transaction, or 422, the failed transaction and its code. A resend that finds the first
// attempt applied (409 DuplicateReferenceId) answers the stored transaction the same way.
func (tc *testCluster) transact(body string) (status int, transaction map[string]any, code string) {
	tc.t.Helper()
	status, out := tc.rawSend("POST", "/projects/px/transactions", body, func(status int, code string, uncertain bool) bool {
		return status == 201 || status == 422 || (uncertain && status == http.StatusConflict && code == "DuplicateReferenceId")
	})
	if status == 201 {
		return 201, out, ""
	}
	transaction, _ = out["transaction"].(map[string]any)
	if transaction == nil {
		tc.t.Fatalf("no transaction in %v", out)
	}
	if transaction["status"] == "failed" {
		return 422, transaction, transaction["failureReason"].(string)
	}
	return 201, transaction, ""
}

// Issue 8, item 1, over HTTP on a 3-replica shard: the curl sequence, which made every
// replica panic in apply and again on every restart. The second transaction's final state is
// legal (the wallet ends at 2^128−1 again), so it completes; one that would end above the
// limit is a 422 BalanceOverflow recorded as a failed transaction on every replica. The
// replicas stay healthy and equal, and after a stop and start of all three they come back,
// equal, and serve.
func TestPoisonPillDoesNotStopTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	tc.rawMust("POST", "/projects", `{"id":"px","name":"x"}`, 201, "ProjectExists")
	tc.rawMust("POST", "/projects/px/assets", `{"id":"tok","name":"t","code":"T","fractions":1}`, 201, "AssetExists")
	tc.rawMust("POST", "/projects/px/customers", `{"id":"c","name":"c"}`, 200) // an upsert
	// A resend after an unknown outcome may make a second wallet; the test uses the one it is told.
	w, _ := tc.rawMust("POST", "/projects/px/wallets", `{"customerId":"c","assetId":"tok"}`, 201)["id"].(string)
	if w == "" {
		t.Fatal("no wallet id")
	}
	if status, tx, _ := tc.transact(`{"referenceId":"r1","operations":[{"type":"issue","to":"` + w + `","amount":` + maxAmountText + `}]}`); status != 201 {
		t.Fatalf("r1: %d %v", status, tx)
	}
	status, r2, _ := tc.transact(`{"referenceId":"r2","operations":[{"type":"redeem","from":"` + w + `","amount":1},{"type":"issue","to":"` + w + `","amount":1}]}`)
	if status != 201 || r2["status"] != "completed" {
		t.Fatalf("r2: %d %v", status, r2)
	}

	// One more than the limit at the end: rejected with 422, recorded as failed at the issue,
	// and a retry answers that same failure.
	r3Body := `{"referenceId":"r3","operations":[{"type":"redeem","from":"` + w + `","amount":1},{"type":"issue","to":"` + w + `","amount":2}]}`
	status, failed, code := tc.transact(r3Body)
	if status != 422 || code != "BalanceOverflow" || failed["status"] != "failed" || failed["failedOperationIndex"] != json.Number("1") {
		t.Fatalf("r3: %d %s %v", status, code, failed)
	}
	retry := tc.rawMust("POST", "/projects/px/transactions", r3Body, 409)
	if again, _ := retry["transaction"].(map[string]any); again == nil || again["id"] != failed["id"] || again["status"] != "failed" {
		t.Fatalf("r3 retry: %v", retry)
	}

	// Every replica: healthy, equal digests, and the same answers.
	checkReplicas := func(when string) string {
		t.Helper()
		digest := tc.waitConverged(30 * time.Second)
		for i := range tc.nodes {
			if status, out, err := tc.rawCall(i, "GET", "/healthz", ""); err != nil || status != 200 {
				t.Fatalf("%s: node %d /healthz: %d %v %v", when, i, status, out, err)
			}
			status, out, err := tc.rawCall(i, "GET", "/debug/digest", "")
			if err != nil || status != 200 || out["digest"] != digest {
				t.Fatalf("%s: node %d /debug/digest: %d %v %v, want %s", when, i, status, out, err, digest)
			}
			status, out, err = tc.rawCall(i, "GET", "/projects/px/wallets/"+w, "")
			if err != nil || status != 200 || out["balance"] != json.Number(maxAmountText) {
				t.Fatalf("%s: node %d wallet: %d %v %v", when, i, status, out, err)
			}
			status, out, err = tc.rawCall(i, "GET", "/projects/px/transactions/"+failed["id"].(string), "")
			if err != nil || status != 200 || out["status"] != "failed" || out["failureReason"] != "BalanceOverflow" {
				t.Fatalf("%s: node %d r3: %d %v %v", when, i, status, out, err)
			}
			if err := tc.node(i).ledger(0).CheckInvariants(); err != nil {
				t.Fatalf("%s: node %d: %v", when, i, err)
			}
		}
		return digest
	}
	digest := checkReplicas("after the sequence")

	// Stop all three and start them again: the log replays (or the store loads) without a
	// panic, the state is the same, and the cluster serves reads and writes.
	for i := range tc.nodes {
		tc.stop(i)
	}
	for i := range tc.nodes {
		tc.start(i)
	}
	tc.waitLeader(15 * time.Second)
	if after := checkReplicas("after the restart"); after != digest {
		t.Fatal("state changed across the restart")
	}
	if status, tx, _ := tc.transact(`{"referenceId":"r4","operations":[{"type":"redeem","from":"` + w + `","amount":1},{"type":"issue","to":"` + w + `","amount":1}]}`); status != 201 {
		t.Fatalf("r4: %d %v", status, tx)
	}
	checkReplicas("after a write")
}
