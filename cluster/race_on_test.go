//go:build race

package cluster_test

// raceTimingScale stretches Raft and gossip timeouts under the race detector, which slows
// every TLS handshake and vote enough that 300 ms elections keep restarting.
const raceTimingScale = 4
