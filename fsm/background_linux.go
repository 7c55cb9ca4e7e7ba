package fsm

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// backgroundNice is how many nice steps Pebble's flushes and compactions run below the request
// path: the lowest priority, as RocksDB's LowerThreadPoolCPUPriority gives its compaction
// threads. It only orders work when the cores are contended; an idle core runs a compaction at
// full speed. Apply cannot outrun a starved compaction for long: with L0 full, apply stalls,
// the request path waits and the compaction gets the cores. Measured (bench/RESULTS.md,
// 2026-12-06, session 14): no write stall in 90 s at saturation, the same sustained rate, and GC
// stop-the-world phases no longer than before.
const backgroundNice = 19

// lowerBackgroundPriority runs the rest of the calling goroutine on an OS thread of its own at
// backgroundNice steps below the process's CPU priority. It is only for goroutines that end
// with their work — Pebble's flush and compaction goroutines, from their Begin events: the
// goroutine never unlocks its thread, so when it returns the Go runtime ends the thread and
// its priority with it (an unprivileged process could not raise it back); the main thread,
// which the runtime never ends, it parks for good instead, so no other goroutine runs on it.
// A failure leaves the thread as it was: the work runs, only not behind the request path.
func lowerBackgroundPriority() {
	runtime.LockOSThread()
	tid := unix.Gettid()
	// The raw getpriority syscall answers 20 − nice, so that no answer is negative.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return
	}
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, min(20-raw+backgroundNice, 19))
}
