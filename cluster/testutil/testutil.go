// Package testutil holds the helpers every test package of GigaLedger shares: waiting for a
// condition with a deadline, loopback addresses on ports a node can bind again, a context that
// ends with the test, and a logger for the code under test.
//
// It imports only the standard library, so the tests of any package (shard below cluster,
// httpapi beside it) may use it without pulling in Raft, bolt or memberlist. It lives under
// cluster/ because the top-level folders are fixed (DESIGN.md) and its heaviest users are tests
// that run nodes on loopback. It must never be imported by non-test code.
package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitMax is how long Eventually waits: long enough for elections and catch-up on a loaded
// two-core machine, short enough that a hang fails well inside go test's own timeout.
const WaitMax = 20 * time.Second

// Polling starts at pollFirst and doubles up to pollMax: a condition that holds at once costs
// about a millisecond, and one that needs an election is asked at most every pollMax (a
// condition may make HTTP calls to every node).
const (
	pollFirst = time.Millisecond
	pollMax   = 20 * time.Millisecond
)

// Wait asks condition until it holds or limit has passed, and says whether it held. It is for
// callers that report a timeout their own way (with the last state they saw); the others use
// Eventually. A condition is asked once more at the deadline.
func Wait(limit time.Duration, condition func() bool) bool {
	deadline := time.Now().Add(limit)
	poll := pollFirst
	for {
		if condition() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(poll)
		poll = min(2*poll, pollMax)
	}
}

// Eventually waits up to WaitMax for condition to hold and fails the test if it does not;
// what names the condition in the failure ("a ready leader"). Call it from the test's
// goroutine: it ends the test with Fatal. The condition may call tb.Fatal itself (for an
// answer that can never turn into the awaited one).
func Eventually(tb testing.TB, what string, condition func() bool) {
	tb.Helper()
	EventuallyWithin(tb, WaitMax, what, condition)
}

// EventuallyWithin is Eventually with a deadline of limit, for waits that have a reason to be
// shorter or longer than WaitMax.
func EventuallyWithin(tb testing.TB, limit time.Duration, what string, condition func() bool) {
	tb.Helper()
	if !Wait(limit, condition) {
		tb.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}

// Context returns a context that ends after limit, or when the test ends, whichever is first.
func Context(tb testing.TB, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), limit)
	tb.Cleanup(cancel)
	return ctx
}

// Test ports come from [portLow, portHigh), below the kernel's ephemeral range (32768 and up
// on Linux): a port that the kernel picked for a listener on :0 and that the test then closed
// can be taken as the local port of any outbound connection (a Raft dial, gossip) before the
// node binds it again. Each test process starts at its own offset and walks the range, so two
// test binaries running at once rarely try the same port, and a port that is in use is skipped.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portMu   sync.Mutex
	portNext = portLow + int(time.Now().UnixNano()%int64(portHigh-portLow))
)

// FreeAddr returns a 127.0.0.1 address whose port was free for both TCP and UDP a moment ago
// (memberlist binds both) and is outside the ephemeral range, so nothing but another test's
// listener can take it before the caller binds it. Safe for concurrent use.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range portHigh - portLow {
		port := portNext
		portNext++
		if portNext >= portHigh {
			portNext = portLow
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if portFree(addr) {
			return addr
		}
	}
	tb.Fatalf("no free test port in [%d, %d)", portLow, portHigh)
	return ""
}

func portFree(addr string) bool {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer listener.Close()
	packet, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	_ = packet.Close()
	return true
}

// LogEnv names the environment variable that turns on the logs of code under test for
// Logger: a level (debug, info, warn, error), or any other non-empty value for debug.
const LogEnv = "GIGALEDGER_TEST_LOG"

// Logger is the logger to hand to code under test: silent, unless LogEnv is set, when records
// at its level and up go to the test log (shown with -v, or for a failing test).
func Logger(tb testing.TB) *slog.Logger {
	value := os.Getenv(LogEnv)
	if value == "" {
		return slog.New(slog.DiscardHandler)
	}
	level := slog.LevelDebug
	if err := level.UnmarshalText([]byte(value)); err != nil {
		level = slog.LevelDebug
	}
	return LoggerAt(tb, level)
}

// LoggerAt sends records at level and up to the test log. Records written after the test
// has started its cleanup (by goroutines that outlive it) are dropped, not sent to a test
// that has ended.
func LoggerAt(tb testing.TB, level slog.Level) *slog.Logger {
	w := &testLogWriter{tb: tb}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testLogWriter passes each record (slog's text handler writes one per Write) to tb.Log.
type testLogWriter struct {
	tb      testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// Retry calls attempt until it succeeds, fails with an error retryable does not accept, or ctx
// ends, pausing pause between attempts; it returns attempt's last answer (and ctx's error joined
// to it when ctx ended). It is what a client does with a proposal whose outcome is unknown (an
// election on a loaded machine cut it) or that reached a replica no longer leading: send it
// again. The command may then apply twice; tests using it compare replicas, not counts, or
// treat "exists already" as success. retried says whether an earlier attempt was made.
func Retry[T any](ctx context.Context, pause time.Duration, retryable func(error) bool, attempt func(retried bool) (T, error)) (T, error) {
	for retried := false; ; retried = true {
		result, err := attempt(retried)
		if err == nil || !retryable(err) {
			return result, err
		}
		select {
		case <-ctx.Done():
			return result, fmt.Errorf("%w (then: %w)", err, ctx.Err())
		case <-time.After(pause):
		}
	}
}
