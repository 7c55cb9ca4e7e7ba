// Package gigpay is the GigPay family of the state machine: payment tokens that a payer creates
// and a payee claims or rejects, and the payments they make (seed 002). Its accounts are ledger
// wallets of one project, and money moves only through the accounting core (fsm/ledger): an
// active token is a hold on its source wallet, a claim captures the hold into a transfer, a
// reject or an expiry releases it, and a close after a claim is a compensating transfer back.
// Deposits and withdrawals are admin payments: a completed deposit issues into its wallet, a
// withdrawal holds its amount until it completes (redeemed) or fails (released).
//
// A token lives on the shard of its source wallet: its ID and its token string carry the
// wallet's slot, so a claim routes by the string the payee holds. The string is looked up by
// its SHA-256, never compared byte by byte against stored strings.
//
// A claim whose payee lives on another shard, and the close of such a claim, run as
// cross-shard transactions of the core with this family's hooks (claim.go, closeacross.go).
//
// Records and keys are in model.go, commands in ops.go, their apply in apply.go, reads in
// read.go.
package gigpay
