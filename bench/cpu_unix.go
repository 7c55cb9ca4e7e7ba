//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user and system) this process has used so far; ok is false
// when the system does not say.
func processCPUTime() (cpu time.Duration, ok bool) {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0, false
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()), true
}
