package testutil_test

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gigaledger/gigaledger/cluster/testutil"
)

// fatalTB records a Fatal and stops the calling function (as testing.T's runtime.Goexit would)
// with a panic that the test recovers.
type fatalTB struct {
	testing.TB
	mu      sync.Mutex
	message string
	logs    []string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.message = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

func (f *fatalTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}

// failed runs fn with tb and says whether it ended in Fatal.
func failed(fn func()) (fataled bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
			fataled = true
		}
	}()
	fn()
	return false
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	start := time.Now()
	testutil.Eventually(t, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("condition asked %d times, want 3 (it stops once it holds)", calls)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("three quick polls took %v", took)
	}
}

func TestEventuallyWithinFailsAtTheDeadlineNamingTheCondition(t *testing.T) {
	fake := &fatalTB{TB: t}
	start := time.Now()
	calls := 0
	if !failed(func() {
		testutil.EventuallyWithin(fake, 100*time.Millisecond, "a leader", func() bool { calls++; return false })
	}) {
		t.Fatal("a condition that never holds did not fail the test")
	}
	took := time.Since(start)
	if took < 100*time.Millisecond || took > 2*time.Second {
		t.Fatalf("gave up after %v, want about 100ms", took)
	}
	if want := "timed out after 100ms waiting for a leader"; fake.message != want {
		t.Fatalf("message %q, want %q", fake.message, want)
	}
	if calls < 5 {
		t.Fatalf("condition asked %d times in 100ms; polling is too slow", calls)
	}
}

func TestWaitAsksOnceMoreAtTheDeadline(t *testing.T) {
	if testutil.Wait(0, func() bool { return false }) {
		t.Fatal("Wait reported a false condition as met")
	}
	if !testutil.Wait(0, func() bool { return true }) {
		t.Fatal("Wait(0) did not ask the condition")
	}
}

func TestFreeAddrIsLoopbackBelowTheEphemeralRangeAndBindable(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		addr := testutil.FreeAddr(t)
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(portText)
		if host != "127.0.0.1" || port < 20000 || port >= 32000 {
			t.Fatalf("FreeAddr gave %s, want 127.0.0.1 with a port in [20000, 32000)", addr)
		}
		if seen[addr] {
			t.Fatalf("FreeAddr gave %s twice", addr)
		}
		seen[addr] = true
		listener, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("bind %s: %v", addr, err)
		}
		packet, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("bind udp %s: %v", addr, err)
		}
		packet.Close()
		listener.Close()
	}
}

func TestFreeAddrSkipsAPortInUse(t *testing.T) {
	first := testutil.FreeAddr(t)
	// Hold every port of the next few: FreeAddr must step over them.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	_, portText, _ := net.SplitHostPort(first)
	port, _ := strconv.Atoi(portText)
	for next := port + 1; next < port+4 && next < 32000; next++ {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", next)); err == nil {
			held = append(held, l)
		}
	}
	addr := testutil.FreeAddr(t)
	for _, l := range held {
		if l.Addr().String() == addr {
			t.Fatalf("FreeAddr gave %s, which a listener holds", addr)
		}
	}
}

func TestLoggerAtSendsRecordsAtTheLevelToTheTestLogAndNothingAfterCleanup(t *testing.T) {
	fake := &fatalTB{}
	var cleanups []func()
	fake.TB = cleanupTB{TB: t, add: func(f func()) { cleanups = append(cleanups, f) }}
	logger := testutil.LoggerAt(fake, slog.LevelInfo)
	logger.Debug("too quiet")
	logger.Info("joined", "node", "n1")
	for _, f := range cleanups {
		f()
	}
	logger.Error("after the test") // a goroutine that outlived its test
	if len(fake.logs) != 1 || !strings.Contains(fake.logs[0], "msg=joined node=n1") || strings.HasSuffix(fake.logs[0], "\n") {
		t.Fatalf("test log %q, want the one info record", fake.logs)
	}
}

func TestLoggerIsSilentByDefault(t *testing.T) {
	t.Setenv(testutil.LogEnv, "")
	if testutil.Logger(t).Enabled(t.Context(), slog.LevelError) {
		t.Fatal("Logger logs without " + testutil.LogEnv)
	}
	t.Setenv(testutil.LogEnv, "warn")
	logger := testutil.Logger(t)
	if logger.Enabled(t.Context(), slog.LevelInfo) || !logger.Enabled(t.Context(), slog.LevelWarn) {
		t.Fatalf("%s=warn: not at warn", testutil.LogEnv)
	}
	t.Setenv(testutil.LogEnv, "1")
	if !testutil.Logger(t).Enabled(t.Context(), slog.LevelDebug) {
		t.Fatalf("%s=1: not at debug", testutil.LogEnv)
	}
}

func TestContextEndsAtItsLimit(t *testing.T) {
	ctx := testutil.Context(t, 10*time.Millisecond)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context outlived its limit")
	}
}

// cleanupTB hands Cleanup functions to add, so a test can run them when it likes.
type cleanupTB struct {
	testing.TB
	add func(func())
}

func (c cleanupTB) Cleanup(f func()) { c.add(f) }
