package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// TestHoldExpiresWithoutWrites: the leader proposes a tick when a hold is due, so an expiring
// hold frees its amount on a shard that nothing else writes to.
func TestHoldExpiresWithoutWrites(t *testing.T) {
	tc := newTestCluster(t, 1)
	tc.rawMust("POST", "/projects", `{"id":"px","name":"x"}`, 201, "ProjectExists")
	tc.rawMust("POST", "/projects/px/assets", `{"id":"tok","name":"t","code":"T","fractions":1}`, 201, "AssetExists")
	tc.rawMust("POST", "/projects/px/customers", `{"id":"c","name":"c"}`, 200)
	w, _ := tc.rawMust("POST", "/projects/px/wallets", `{"customerId":"c","assetId":"tok"}`, 201)["id"].(string)
	if status, tx, _ := tc.transact(`{"referenceId":"fund","operations":[{"type":"issue","to":"` + w + `","amount":100}]}`); status != 201 {
		t.Fatalf("fund: %d %v", status, tx)
	}
	expiresAt := time.Now().Add(time.Second).UnixMilli()
	status, placed, _ := tc.transact(fmt.Sprintf(`{"referenceId":"hold","operations":[{"type":"hold","from":"%s","amount":60,"expiresAt":%d}]}`, w, expiresAt))
	if status != 201 {
		t.Fatalf("hold: %d %v", status, placed)
	}
	holdID := placed["operations"].([]any)[0].(map[string]any)["holdId"].(string)
	if got := tc.rawMust("GET", "/projects/px/wallets/"+w, "", 200)["available"]; fmt.Sprint(got) != "40" {
		t.Fatalf("available %v after the hold", got)
	}
	testutil.EventuallyWithin(t, 15*time.Second, "the hold to expire with no other write", func() bool {
		return tc.rawMust("GET", "/projects/px/holds/"+holdID, "", 200)["status"] == "expired"
	})
	wallet := tc.rawMust("GET", "/projects/px/wallets/"+w, "", 200)
	if fmt.Sprint(wallet["available"]) != "100" || fmt.Sprint(wallet["held"]) != "0" {
		t.Fatalf("after expiry: %v", wallet)
	}
}
