package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/fsm"
)

// The leaders raise each shard's rules to this binary's version by themselves, once every
// replica says its binary implements it; a version no replica implements is not asked for.
func TestLeadersRaiseTheRules(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-node test")
	}
	tc := newTestCluster(t, 3)
	tc.waitConverged(30 * time.Second) // includes every replica's rules at fsm.RulesVersion
	for i := range tc.nodes {          // operators see it in GET /debug/digest
		status, out, err := tc.call(i, "GET", "/debug/digest", nil)
		if err != nil || status != 200 {
			t.Fatalf("node %d /debug/digest: %d %v", i, status, err)
		}
		if got := out["shards"].([]any)[0].(map[string]any)["rulesVersion"]; got != float64(fsm.RulesVersion) {
			t.Fatalf("node %d /debug/digest rulesVersion %v, want %d", i, got, fsm.RulesVersion)
		}
		// and in /metrics, beside what the binary implements
		resp, err := http.Get(tc.apiURL(i) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"gigaledger_shard_rules_version", "gigaledger_shard_rules_implemented"} {
			want := fmt.Sprintf("%s{shard=\"0\"} %d\n", name, fsm.RulesVersion)
			if !strings.Contains(string(metrics), want) {
				t.Fatalf("node %d /metrics has no %q", i, want)
			}
		}
	}
	leader := tc.waitLeader(clusterWaitMax)
	ctx, cancel := context.WithTimeout(context.Background(), clusterWaitMax)
	defer cancel()
	for _, c := range []struct {
		version uint32
		want    bool
	}{{fsm.RulesVersion, true}, {fsm.RulesVersion + 1, false}} {
		if got, err := tc.node(leader).cluster.ReplicasImplementRules(ctx, 0, c.version); err != nil || got != c.want {
			t.Fatalf("replicas implement rules %d: %v, %v; want %v", c.version, got, err, c.want)
		}
	}
}
