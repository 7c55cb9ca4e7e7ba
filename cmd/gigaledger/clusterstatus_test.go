package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// clusterView is the part of GET /cluster this test reads.
type clusterView struct {
	Nodes []struct {
		ID, RaftAddr, APIAddr, PublicAddr, State, Reason string
		Hosts, Leads                                     []int
	}
	Shards []struct {
		ID                                  int
		Replicas                            []string
		LeaderID, LeaderAddr, LeaderAPIAddr string
	}
}

func getCluster(t *testing.T, tc *testCluster, i int) (clusterView, string) {
	t.Helper()
	resp, err := tc.client.Get("http://" + tc.configs[i].AdminAddr + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /cluster: %d %s", resp.StatusCode, raw)
	}
	var view clusterView
	if err := json.Unmarshal(raw, &view); err != nil {
		t.Fatal(err)
	}
	return view, string(raw)
}

// With static --peers, /cluster asks every peer over the cluster port: live peers are alive
// with their admin and public API addresses and their shards, the leader's API is named per
// shard, a stopped peer is unreachable with the reason, and no list is null.
func TestClusterStatusStaticPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	tc := newShardedTestCluster(t, 3, 2)
	var view clusterView
	var raw string
	everyShardLed := testutil.Wait(15*time.Second, func() bool {
		view, raw = getCluster(t, tc, 0)
		for _, s := range view.Shards {
			if s.LeaderID == "" {
				return false
			}
		}
		return true
	})
	if !everyShardLed {
		t.Fatalf("not every shard has a leader: %s", raw)
	}
	if strings.Contains(raw, "null") {
		t.Errorf("null in /cluster: %s", raw)
	}
	if len(view.Nodes) != 3 {
		t.Fatalf("nodes: %s", raw)
	}
	apiOf := map[string]string{}
	for i, node := range view.Nodes {
		cfg := tc.configs[i]
		if node.ID != cfg.NodeID || node.State != "alive" || node.APIAddr != cfg.AdminAddr || node.PublicAddr != cfg.PublicAddr ||
			len(node.Hosts) != 2 || node.Reason != "" {
			t.Errorf("node %d: %+v, want alive at %s", i, node, cfg.AdminAddr)
		}
		apiOf[node.ID] = node.APIAddr
	}
	for _, s := range view.Shards {
		if s.LeaderID == "" || s.LeaderAPIAddr != apiOf[s.LeaderID] || len(s.Replicas) != 3 {
			t.Errorf("shard %d: %+v", s.ID, s)
		}
	}

	// Stop n3: n1 reports it unreachable, and why.
	tc.stop(2)
	view, raw = getCluster(t, tc, 0)
	if strings.Contains(raw, "null") {
		t.Errorf("null in /cluster: %s", raw)
	}
	n3 := view.Nodes[2]
	if n3.State != "unreachable" || n3.Reason == "" || n3.Hosts == nil || len(n3.Hosts) != 0 || n3.APIAddr != "" {
		t.Errorf("stopped n3: %+v", n3)
	}
	if view.Nodes[1].State != "alive" {
		t.Errorf("n2 after n3 stopped: %+v", view.Nodes[1])
	}
}

// The cluster CLI refuses an --addr that is a URL (it became http://http//...) and a timeout
// that leaves no time to answer, before sending anything (found by a probe).
func TestClusterCommandRefusesBadAddrAndTimeout(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--addr", "http://127.0.0.1:8081"},
		{"status", "--addr", "127.0.0.1"},
		{"status", "--timeout", "0s"},
		{"status", "--timeout", "-1s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := clusterCommand(context.Background(), args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
