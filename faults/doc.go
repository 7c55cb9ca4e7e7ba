// Package faults is GigaLedger's Jepsen-style fault suite: it runs a bank workload (random
// transfers between wallets with a known total, spread over the shards, a share of them across
// shards) against a real 3-node, 4-shard cluster of gigaledger processes (formed by gossip, with
// a spare node that joins it), injects faults scheduled from a seed (kill -9, SIGSTOP,
// partitions, whole-cluster restarts) while shard replicas move between the nodes through the
// admin API (Mover), records every request and response as a JSON-lines history, and checks that
// history and the healed cluster's final state for anomalies: lost or doubled transfers,
// applied failures, negative balances, broken conservation, stranded holds, a transaction seen
// in part after its answer, diverged or stale replicas (per shard) and non-linearizable wallet
// histories (porcupine).
//
// It owns the test network (network namespaces, veth pairs and a bridge that it creates and
// removes itself; loopback without partitions when namespaces are unavailable), the node
// processes it starts, the history format and the checker. It must never send traffic
// anywhere but loopback and the test hosts it created, never touch processes or namespaces it
// did not create, and never run unbounded: every loop has a count or a deadline.
//
// The entry point is cmd/faultrun; the checker runs on its own over a recorded run directory
// (faultrun check --out DIR), so a failed run can be re-checked and studied.
package faults
