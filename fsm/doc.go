// Package fsm is GigaLedger's state-machine kernel: the store, the apply loop, the per-batch
// context (batch time, replicated counters, writes, the outbox's Emit), the append-only registry
// of operations, the binary codec of commands and results, snapshots, the outbox and idempotency
// keys. It holds no business rule: the API families (fsm/ledger, the accounting core that every
// family moves money through; later GigaWallet and GigPay) declare their operations in a
// Registry, and cmd/ composes them. Families import the kernel, never the reverse.
//
// It must never read a clock, a random source or the network, start a goroutine that changes
// state, or let Go map iteration order reach the log, results, stored state or snapshots: the
// same log must give the same state and the same results on every replica. Time and IDs arrive
// in the batch and the commands. Business rejections are results; an undecodable command or a
// broken invariant panics. See DESIGN.md for how to add an operation.
package fsm
