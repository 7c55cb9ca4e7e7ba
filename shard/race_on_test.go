//go:build race

package shard_test

// raceTimingScale stretches the test timeouts under the race detector, which slows everything.
const raceTimingScale = 4
