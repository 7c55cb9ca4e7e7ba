package fsm

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"golang.org/x/sys/unix"
)

// threadNice is the calling thread's nice value (the raw getpriority syscall answers 20 − nice).
func threadNice() (int, error) {
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	return 20 - raw, err
}

// onBackgroundThread runs begin on a goroutine of its own, as Pebble runs a flush or a
// compaction, and reports that thread's ID and nice value after it.
func onBackgroundThread(t *testing.T, begin func()) (tid, nice int) {
	t.Helper()
	type result struct{ tid, nice int }
	done := make(chan result, 1)
	go func() {
		begin()
		n, err := threadNice()
		if err != nil {
			t.Error(err)
		}
		done <- result{unix.Gettid(), n}
	}()
	r := <-done
	return r.tid, r.nice
}

// The store's flushes and compactions start by lowering their own thread's priority; the
// request path's threads keep the process's, and the lowered thread ends with its goroutine,
// so no other goroutine ever runs on it.
func TestFlushesAndCompactionsRunBelowTheRequestPath(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	base, err := threadNice()
	if err != nil {
		t.Fatal(err)
	}
	want := min(base+backgroundNice, 19)
	events := pebbleEvents(nil, "pebble", nil)
	for name, begin := range map[string]func(){
		"flush":      func() { events.FlushBegin(pebble.FlushInfo{}) },
		"compaction": func() { events.CompactionBegin(pebble.CompactionInfo{}) },
	} {
		tid, nice := onBackgroundThread(t, begin)
		if nice != want {
			t.Errorf("%s: thread nice %d, want %d (process %d + %d)", name, nice, want, base, backgroundNice)
		}
		// The runtime ends a thread whose goroutine returned locked to it — but for the main
		// thread, which it parks for good instead (runtime.mexit: "just wedge it"), so no other
		// goroutine runs at its priority either. A goroutine lands there when the main
		// goroutine is blocked, as testing's is.
		if tid == os.Getpid() {
			continue
		}
		task := fmt.Sprintf("/proc/self/task/%d", tid)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: thread %d still runs after its goroutine returned", name, tid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if nice, _ := threadNice(); nice != base {
		t.Errorf("request-path thread nice %d, want the process's %d", nice, base)
	}
}
