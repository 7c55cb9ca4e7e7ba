package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// logRecord is one record a logRecorder kept, flattened for assertions.
type logRecord struct {
	level   slog.Level
	message string
	attrs   map[string]string
}

func (r logRecord) String() string {
	return fmt.Sprintf("%s %s %v", r.level, r.message, r.attrs)
}

// logRecorder is a slog.Handler that keeps every record at or above its level, for tests that
// assert what a node logged.
type logRecorder struct {
	level slog.Level
	attrs []slog.Attr

	mu      *sync.Mutex
	records *[]logRecord
}

func newLogRecorder(level slog.Level) *logRecorder {
	return &logRecorder{level: level, mu: &sync.Mutex{}, records: new([]logRecord)}
}

func (h *logRecorder) Enabled(_ context.Context, level slog.Level) bool { return level >= h.level }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	record := logRecord{level: r.Level, message: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		record.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { record.attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, record)
	return nil
}

func (h *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &c
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// since returns the records kept from index on, and the index to continue from.
func (h *logRecorder) since(index int) ([]logRecord, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), (*h.records)[index:]...), len(*h.records)
}

// A clean stop logs no ERROR. Stopping a node closes its port under the raft connections its
// peers opened to it; that is the stop working, not a failure, on the node itself. The
// peers that are still running may say at ERROR that they cannot reach the stopped one
// (hashicorp/raft's "failed to heartbeat to"), which is true; nothing else.
func TestCleanShutdownLogsNoError(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	logs := newLogRecorder(slog.LevelDebug)
	tc := newLoggedTestCluster(t, 3, 2, logs)
	tc.must("POST", "/projects", map[string]any{"id": "p", "name": "p"}, 201)
	tc.waitConverged(15 * time.Second)

	records, next := logs.since(0)
	// Nodes start one after another, and each opens its shards one after another: an early
	// election may find a peer not yet listening, or listening before that shard's transport
	// is up (the connection is closed: EOF). Raft reports those as errors naming the peer; they
	// are news about a peer, not what this test is about.
	everyPeer := map[string]bool{}
	for _, cfg := range tc.configs {
		everyPeer[cfg.RaftAddr] = true
	}
	for _, r := range records {
		if r.level >= slog.LevelError && !aboutStoppedPeer(r, everyPeer, "") {
			t.Errorf("ERROR while running: %s", r)
		}
	}
	stopped := map[string]bool{} // raft addresses of the nodes stopped so far
	for i, cfg := range tc.configs {
		tc.stop(i)
		stopped[cfg.RaftAddr] = true
		records, next = logs.since(next)
		for _, r := range records {
			if r.level < slog.LevelError {
				continue
			}
			// A node that is still replicating (the one stopping, too, until its shards close)
			// may report a peer stopped before it as unreachable.
			if aboutStoppedPeer(r, stopped, tc.configs[nodeIndex(tc, r.attrs["node"])].RaftAddr) {
				continue
			}
			t.Errorf("ERROR while stopping %s: %s", cfg.NodeID, r)
		}
	}
	// The stop of the whole cluster said something, so the recorder did see the nodes.
	if records, _ := logs.since(0); !hasMessage(records, "shard closed") {
		t.Fatal("no 'shard closed' record: the recorder saw nothing")
	}
}

// aboutStoppedPeer reports whether r is a live node's raft saying that it cannot reach a peer
// the test stopped: heartbeats, appendEntries, and the (pre-)vote requests of the election that
// follows a leader's stop all name the peer's address. That is true news about another node,
// not noise from the stop itself.
func aboutStoppedPeer(r logRecord, stopped map[string]bool, ownAddr string) bool {
	if !strings.HasPrefix(r.message, "raft: failed to ") {
		return false
	}
	for addr := range stopped {
		if addr != ownAddr && strings.Contains(r.message, addr) {
			return true
		}
	}
	return false
}

// nodeIndex is the index of the node with id; the test fails if there is none.
func nodeIndex(tc *testCluster, id any) int {
	for i, cfg := range tc.configs {
		if cfg.NodeID == id {
			return i
		}
	}
	tc.t.Fatalf("log record from unknown node %v", id)
	return -1
}

func hasMessage(records []logRecord, message string) bool {
	for _, r := range records {
		if r.message == message {
			return true
		}
	}
	return false
}

// syncBuffer is a bytes.Buffer safe for a node writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Ctrl-C (SIGINT) and SIGTERM stop `gigaledger serve` with exit status 0 and no ERROR in its
// log: the signal goes through main's own handler, as in a terminal or `docker stop`.
func TestServeExitsZeroOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Setenv(adminTokenEnv, "")
			admin := testutil.FreeAddr(t)
			var stdout, stderr syncBuffer
			exit := make(chan int, 1)
			go func() {
				exit <- run([]string{"serve", "--data-dir", t.TempDir(), "--admin-addr", admin,
					"--public-addr", testutil.FreeAddr(t), "--raft-addr", testutil.FreeAddr(t)}, &stdout, &stderr)
			}()
			waitReady(t, "http://"+admin, exit)
			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-exit:
				if code != 0 {
					t.Fatalf("exit status %d after %s; log:\n%s", code, sig, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("still running 30s after %s", sig)
			}
			if log := stderr.String(); strings.Contains(log, `"level":"ERROR"`) || !strings.Contains(log, "shutting down") {
				t.Fatalf("log of a clean stop:\n%s", log)
			}
		})
	}
}

// waitReady waits until the node at base answers /readyz with 200, failing the test if it
// exits first or takes longer than 30 s.
func waitReady(t *testing.T, base string, exit <-chan int) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	ready := testutil.Wait(30*time.Second, func() bool {
		select {
		case code := <-exit:
			t.Fatalf("node exited with %d before it was ready", code)
		default:
		}
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatal("node not ready within 30s")
	}
}
