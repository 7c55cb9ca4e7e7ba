// Package bench owns GigaLedger's load generator: the `gigaledger bench`
// subcommand, its scenarios, the report, and the PostgreSQL baseline driver
// that runs the same scenarios with the same ledger semantics so that every
// performance claim is a ratio measured in one run.
//
// It must never load anything but loopback (or hosts the operator names with
// --allow-remote), it always stops by itself (duration and operation bounds),
// and it never imports the server's packages: it talks to GigaLedger only
// through the documented HTTP contract (docs/cloudwallet-api.md), exactly as
// an integrator would.
package bench
