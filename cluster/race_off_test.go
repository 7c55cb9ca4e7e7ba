//go:build !race

package cluster_test

// raceTimingScale is 1 without the race detector (race_on_test.go).
const raceTimingScale = 1
