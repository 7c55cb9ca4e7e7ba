//go:build !unix

package bench

import "time"

// processCPUTime is not measured here: the harness's CPU is reported as n/a.
func processCPUTime() (time.Duration, bool) { return 0, false }
