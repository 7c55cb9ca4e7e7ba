package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// postWithHeaders sends a JSON write to node i and returns the answer's status and headers.
func (tc *testCluster) postWithHeaders(i int, path string, body any) (int, http.Header, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+tc.configs[i].AdminAddr+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tc.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// apiURL is node i's admin API base URL as the test reaches it.
func (tc *testCluster) apiURL(i int) string { return "http://" + tc.configs[i].AdminAddr }

// A write answered by any node names the shard and its leader's API URL, from the leader and
// from followers (which learn the URL from the leader itself); after the leader stops, the
// answers name the new leader, never the old one once the new leader has served them.
func TestShardLeaderHeaderFollowsTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	tc.must("POST", "/projects", map[string]any{"id": "bank", "name": "bank"}, 201)
	tc.must("POST", "/projects/bank/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	wallet := tc.must("POST", "/projects/bank/system-wallets", map[string]any{"assetId": "usd"}, 201)["id"]
	reference := 0
	issue := func(i int) (int, http.Header, error) {
		reference++
		return tc.postWithHeaders(i, "/projects/bank/transactions", map[string]any{"referenceId": fmt.Sprintf("r%d", reference),
			"operations": []map[string]any{{"type": "issue", "to": wallet, "amount": 1}}})
	}
	// namesLeader: a write through node i is answered 201 naming shard 0 of 1 and the leader.
	namesLeader := func(i, leader int) bool {
		status, header, err := issue(i)
		return err == nil && status == http.StatusCreated && header.Get(headerShard) == "0" &&
			header.Get(headerShardCount) == "1" && header.Get(headerShardLeader) == tc.apiURL(leader)
	}

	leader := tc.waitLeader(clusterWaitMax)
	for i := range tc.nodes {
		testutil.EventuallyWithin(t, clusterWaitMax, fmt.Sprintf("node %d names leader %d", i, leader), func() bool {
			return tc.leader() != leader || namesLeader(i, leader)
		})
	}
	if tc.leader() != leader {
		t.Skip("the leader changed while the test looked at it")
	}

	// A read is served by no write: no leader header.
	status, out, err := tc.call(leader, http.MethodGet, "/projects/bank", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET project: %d %v %v", status, out, err)
	}

	// A batch that one shard served names it as a single transaction does.
	for i := range tc.nodes {
		reference++
		status, header, err := tc.postWithHeaders(i, "/projects/bank/transactions/batch", map[string]any{"transactions": []map[string]any{
			{"referenceId": fmt.Sprintf("r%d", reference), "operations": []map[string]any{{"type": "issue", "to": wallet, "amount": 1}}}}})
		if err != nil || status != http.StatusOK || header.Get(headerShard) != "0" || header.Get(headerShardLeader) != tc.apiURL(leader) {
			if tc.leader() == leader {
				t.Fatalf("batch through node %d: %d %v, headers %v", i, status, err, header)
			}
		}
	}

	tc.stop(leader)
	var next int
	testutil.EventuallyWithin(t, clusterWaitMax, "a new leader", func() bool {
		next = tc.leader()
		return next >= 0 && next != leader
	})
	for i := range tc.nodes {
		if i == leader {
			continue
		}
		testutil.EventuallyWithin(t, clusterWaitMax, fmt.Sprintf("node %d names the new leader %d", i, next), func() bool {
			return tc.leader() != next || namesLeader(i, next)
		})
		// Once it has, it does not name the stopped one again while the leader stays.
		for range 5 {
			status, header, err := issue(i)
			if err == nil && status == http.StatusCreated && tc.leader() == next && header.Get(headerShardLeader) == tc.apiURL(leader) {
				t.Fatalf("node %d names the stopped leader %s", i, tc.apiURL(leader))
			}
		}
	}
}

// A node whose admin API binds every interface advertises no URL unless --api-url gives one,
// and the scheme follows the listener.
func TestAdvertisedAPIURL(t *testing.T) {
	for _, c := range []struct {
		adminAddr, apiURL, tlsCert, want string
	}{
		{adminAddr: "127.0.0.1:8081", want: "http://127.0.0.1:8081"},
		{adminAddr: "127.0.0.1:8081", tlsCert: "cert.pem", want: "https://127.0.0.1:8081"},
		{adminAddr: "[::1]:8081", want: "http://[::1]:8081"},
		{adminAddr: "0.0.0.0:8081", want: ""},
		{adminAddr: "[::]:8081", want: ""},
		{adminAddr: ":8081", want: ""},
		{adminAddr: "0.0.0.0:8081", apiURL: "https://node1.example.com/ledger/", want: "https://node1.example.com/ledger"},
	} {
		cfg := &serveConfig{AdminAddr: c.adminAddr, APIURL: c.apiURL, HTTPTLSCert: c.tlsCert}
		if got := cfg.advertisedAPIURL(); got != c.want {
			t.Errorf("admin %s, --api-url %q, cert %q: advertised %q, want %q", c.adminAddr, c.apiURL, c.tlsCert, got, c.want)
		}
	}
	for _, bad := range []string{"ftp://node1", "node1:8081", "http://", "http://node1/?x=1", "http://user@node1"} {
		cfg, err := parseServeFlags([]string{"--api-url", bad, "--data-dir", t.TempDir()}, io.Discard)
		if err == nil {
			t.Errorf("--api-url %q accepted as %q", bad, cfg.APIURL)
		}
	}
}

// The client with leader routing, configured with a follower, sends its writes to the leader
// once an answer names it; when the leader dies it falls back to the configured node, learns
// the new leader, and no write applies twice (each transaction issues 1 to one wallet: the
// balance counts the transactions applied).
func TestClientRoutesWritesToTheLeaderAndSurvivesItsDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	tc.must("POST", "/projects", map[string]any{"id": "bank", "name": "bank"}, 201)
	tc.must("POST", "/projects/bank/assets", map[string]any{"id": "usd", "name": "USD", "code": "USD", "fractions": 100}, 201)
	wallet := tc.must("POST", "/projects/bank/system-wallets", map[string]any{"assetId": "usd"}, 201)["id"].(string)

	leader := tc.waitLeader(clusterWaitMax)
	configured := (leader + 1) % len(tc.nodes)
	api, err := client.New(tc.apiURL(configured), client.WithLeaderRouting(), client.WithHTTPClient(tc.client),
		client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 100, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	var lastBase string
	// send makes one transaction; every call must complete (the retry policy rides out the
	// election).
	send := func() error {
		sent++
		ctx, cancel := context.WithTimeout(context.Background(), clusterWaitMax)
		defer cancel()
		ctx = client.WithAttemptHook(ctx, func(a client.Attempt) { lastBase = a.BaseURL })
		_, err := api.CreateTransaction(ctx, "bank", client.TransactionRequest{ReferenceID: fmt.Sprintf("r%d", sent),
			Operations: []client.Operation{{Type: client.OperationIssue, To: wallet, Amount: client.AmountFromUint64(1)}}})
		if err != nil {
			return fmt.Errorf("transaction r%d: %w", sent, err)
		}
		return nil
	}
	issue := func() {
		t.Helper()
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.EventuallyWithin(t, clusterWaitMax, "the client learns the leader", func() bool {
		issue()
		return api.Leader() != ""
	})
	if tc.leader() == leader {
		if api.Leader() != tc.apiURL(leader) {
			t.Fatalf("the client's leader is %q, want %q", api.Leader(), tc.apiURL(leader))
		}
		issue()
		if tc.leader() == leader && lastBase != tc.apiURL(leader) {
			t.Fatalf("a write went to %s, not to the leader %s", lastBase, tc.apiURL(leader))
		}
	}

	// The leader dies while writes keep coming: each call still completes, exactly once.
	leader = tc.leader()
	if leader == configured || leader < 0 {
		t.Skip("the leader moved to the configured node; nothing to kill but it")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if err := send(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	tc.kill(leader)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	var next int
	testutil.EventuallyWithin(t, clusterWaitMax, "a new leader", func() bool {
		next = tc.leader()
		return next >= 0 && next != leader
	})
	testutil.EventuallyWithin(t, clusterWaitMax, "the client follows the new leader", func() bool {
		issue()
		return api.Leader() == tc.apiURL(tc.leader())
	})

	got := tc.must("GET", "/projects/bank/wallets/"+wallet, nil, http.StatusOK)["balance"]
	if balance, _ := got.(float64); int(balance) != sent {
		t.Fatalf("balance %v after %d transactions of 1", got, sent)
	}
}
