package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// fakeNode answers every request 201 (or 200 for a GET) with an empty object, setting the
// headers header returns, and counts its writes.
type fakeNode struct {
	url    string
	writes atomic.Int64
	server *httptest.Server
}

func startFakeNode(t *testing.T, header func() http.Header) *fakeNode {
	t.Helper()
	node := &fakeNode{}
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	node.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if r.Method != http.MethodGet {
			node.writes.Add(1)
			status = http.StatusCreated
			for name, values := range header() {
				w.Header()[name] = values
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"id":"p","name":"p"}`))
	}))
	node.server.Listener.Close()
	node.server.Listener = listener
	node.server.Start()
	t.Cleanup(node.server.Close)
	node.url = node.server.URL
	return node
}

// With leader routing, writes go to the leader a one-shard cluster names, reads stay on the
// configured node, and a leader that cannot be reached is forgotten: the write goes to the
// configured node (it was not sent). Hints of a cluster of several shards, or that would leave
// https for http, are not followed; without the option nothing is.
func TestLeaderRoutingFollowsTheNamedLeader(t *testing.T) {
	ctx := context.Background()
	leader := startFakeNode(t, func() http.Header { return nil })
	var named atomic.Value
	named.Store(http.Header{"Gigaledger-Shard-Count": {"1"}, "Gigaledger-Shard-Leader": {leader.url}})
	follower := startFakeNode(t, func() http.Header { return named.Load().(http.Header) })

	api := newClient(t, follower.url, client.WithLeaderRouting())
	for range 3 {
		if _, err := api.CreateProject(ctx, client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	if follower.writes.Load() != 1 || leader.writes.Load() != 2 || api.Leader() != leader.url {
		t.Fatalf("writes: follower %d, leader %d (leader %q): want 1 and 2", follower.writes.Load(), leader.writes.Load(), api.Leader())
	}
	if _, err := api.GetProject(ctx, "p"); err != nil {
		t.Fatal(err)
	}

	leader.server.Close() // the leader's port refuses: not sent, so the next attempt goes to the follower
	if _, err := api.CreateProject(ctx, client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if follower.writes.Load() != 2 {
		t.Fatalf("follower writes %d after the leader died, want 2", follower.writes.Load())
	}

	for _, hint := range []http.Header{
		{"Gigaledger-Shard-Count": {"2"}, "Gigaledger-Shard-Leader": {"http://127.0.0.1:1"}},
		{"Gigaledger-Shard-Count": {"1"}, "Gigaledger-Shard-Leader": {"ftp://127.0.0.1:1"}},
		{"Gigaledger-Shard-Count": {"1"}, "Gigaledger-Shard-Leader": {"http://127.0.0.1:1/?x"}},
	} {
		named.Store(hint)
		fresh := newClient(t, follower.url, client.WithLeaderRouting())
		if _, err := fresh.CreateProject(ctx, client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil || fresh.Leader() != "" {
			t.Fatalf("hint %v: err %v, leader %q", hint, err, fresh.Leader())
		}
	}
	named.Store(http.Header{"Gigaledger-Shard-Count": {"1"}, "Gigaledger-Shard-Leader": {"http://127.0.0.1:1"}})
	plain := newClient(t, follower.url)
	if _, err := plain.CreateProject(ctx, client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil || plain.Leader() != "" {
		t.Fatalf("without leader routing: err %v, leader %q", err, plain.Leader())
	}
}

// A client of an https node never follows a leader named with http.
func TestLeaderRoutingNeverLeavesHTTPS(t *testing.T) {
	node := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("GigaLedger-Shard-Count", "1")
		w.Header().Set("GigaLedger-Shard-Leader", "http://127.0.0.1:2")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	}))
	listener, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	node.Listener.Close()
	node.Listener = listener
	node.StartTLS()
	t.Cleanup(node.Close)
	secure := newClient(t, node.URL, client.WithLeaderRouting(), client.WithHTTPClient(node.Client()))
	if _, err := secure.CreateProject(context.Background(), client.CreateProjectRequest{ID: "p", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if secure.Leader() != "" {
		t.Fatalf("an https client follows %q", secure.Leader())
	}
}
