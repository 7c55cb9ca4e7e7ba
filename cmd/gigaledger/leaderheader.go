package main

import (
	"bufio"
	"net"
	"net/http"
	"strconv"

	"github.com/gigaledger/gigaledger/backend"
)

// The response headers that let a client find a shard's leader (docs/cloudwallet-api.md,
// "Finding the leader"). They are set on every answer to a request whose write one shard
// served: which shard, how many the cluster has, and, when this node knows it, the base URL of
// that shard's leader's admin API. A client that sends its writes there saves the follower's
// HTTP, JSON and forwarding work. On a cluster of several shards the leader named is only that
// shard's: the client package follows it only when the cluster has one shard.
const (
	headerShard       = "GigaLedger-Shard"
	headerShardCount  = "GigaLedger-Shard-Count"
	headerShardLeader = "GigaLedger-Shard-Leader"
)

// shardLeaders is what the headers need of the node.
type shardLeaders interface {
	ShardCount() int
	// LeaderAPIURL is the shard leader's advertised API base URL, "" when not known.
	LeaderAPIURL(shardID int) string
}

// withShardLeader sets the shard and leader headers on every answer of next whose write one
// shard served (backend.RecordServedShard), just before the answer's headers leave.
func withShardLeader(next http.Handler, leaders shardLeaders) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, served := backend.WithServedShard(r.Context())
		next.ServeHTTP(&leaderHeaderWriter{ResponseWriter: w, served: served, leaders: leaders}, r.WithContext(ctx))
	})
}

// leaderHeaderWriter adds the headers when the status is written (explicitly or by the first
// Write).
type leaderHeaderWriter struct {
	http.ResponseWriter
	served  *backend.ServedShard
	leaders shardLeaders
	wrote   bool
}

func (w *leaderHeaderWriter) WriteHeader(status int) {
	if !w.wrote && status >= 200 { // 1xx answers come before the final one
		w.wrote = true
		if shardID, ok := w.served.Shard(); ok {
			header := w.Header()
			header.Set(headerShard, strconv.Itoa(shardID))
			header.Set(headerShardCount, strconv.Itoa(w.leaders.ShardCount()))
			if url := w.leaders.LeaderAPIURL(shardID); url != "" {
				header.Set(headerShardLeader, url)
			}
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *leaderHeaderWriter) Write(data []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(data)
}

// Flush, Hijack and Unwrap keep what the wrapped writer can do (gin's Flush asserts
// http.Flusher; long polls flush).
func (w *leaderHeaderWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *leaderHeaderWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *leaderHeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
