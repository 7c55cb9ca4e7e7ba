//go:build !race

package shard_test

// raceTimingScale stretches the test timeouts under the race detector; without it, 1.
const raceTimingScale = 1
