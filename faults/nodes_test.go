package faults

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// WaitReady's error names the nodes that were not ready, with their /readyz answers, from the
// last round of probes that finished before the deadline; a probe cut short by the deadline
// does not count a node as not ready.
func TestWaitReadyNamesTheNodesNotReady(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"shard 1 has no leader"}}`))
	}))
	defer notReady.Close()
	cluster := &Cluster{client: NewClient("", 5*time.Second, 4), Nodes: []*Node{
		{ID: "n1", AdminURL: ready.URL, cmd: &exec.Cmd{}},
		{ID: "n2", AdminURL: notReady.URL, cmd: &exec.Cmd{}},
		{ID: "n3", AdminURL: ready.URL, cmd: &exec.Cmd{}},
	}}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := cluster.WaitReady(ctx, []int{0, 1, 2})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 of 3 nodes not ready") ||
		!strings.Contains(err.Error(), "n2:") || !strings.Contains(err.Error(), "shard 1 has no leader") {
		t.Fatalf("WaitReady with n2 not ready: %v", err)
	}
	if err := cluster.WaitReady(context.Background(), []int{0, 2}); err != nil {
		t.Fatalf("WaitReady with every node ready: %v", err)
	}
}
