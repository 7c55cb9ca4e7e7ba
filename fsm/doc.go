// Package fsm is GigaLedger's deterministic state machine: the ledger model (projects, assets,
// customers, wallets, transactions, entries), the command encoding, apply, snapshot and
// restore, and the read queries over the applied state.
//
// It must never read a clock, a random source or the network, start a goroutine that changes
// state, or let Go map iteration order reach the log, results, stored state or snapshots: the
// same log must give the same state and the same results on every replica. Time and IDs arrive
// in the batch and the commands. Business rejections (insufficient funds, suspended wallet,
// duplicate reference) are results; an undecodable command or a broken invariant panics.
package fsm
