// Package payout owns turning a payout request into a signed Dogecoin transaction: choosing
// which of an account's unspent outputs to spend (NewPlan), computing the fee, splitting it among
// the outputs that pay it, deciding the change, and building, signing and verifying the
// transaction (Sign). It implements GigaWallet's /pay rules (contract gigawallet.md §5) with
// GigaWallet's bugs fixed; every amount is an integer count of koinu (1 DOGE = 100,000,000
// koinu), never a float.
//
// # Rules
//
//   - Outputs: 1 to OutputsMaxCount, each a P2PKH address of the request's network
//     (ErrInvalidAddress, also for another network's address) paying at least DustKoinu
//     (0.01 DOGE, ErrDust), at most MoneyMaxKoinu in all (ErrAmountOutOfRange).
//   - Deduct mode: each output's DeductFeeShare is in hundred-millionths of a percent
//     (FeeShareAll = 100%). Shares are all zero (the payer adds the fee on top) or sum to
//     exactly FeeShareAll (the outputs pay the fee between them), else ErrDeductShares.
//   - Spending order: confirmed outputs of external (invoice) addresses, oldest (lowest height)
//     first; then outputs of our own change addresses, confirmed (oldest first) before
//     unconfirmed; ties by txid, then vout. Unconfirmed outputs of external addresses are never
//     spent: their sender can still double-spend them. Inputs are added in that order until they
//     cover the outputs plus the fee (in deduct mode the outputs alone: the fee comes out of
//     them), the fee being re-estimated for each added input.
//   - Fee: the size estimate is GigaWallet's, 10 + 148·inputs + 34·(outputs+1) bytes (always
//     counting a change output). The fee is the largest of ⌈size·FeeRateKoinuPerKB/1000⌉ (the
//     node's estimatefee, rounded up so the node's rate is met), size·FeeRateMinKoinuPerByte
//     (0.00001 DOGE per byte) and FeeMinKoinu (0.01 DOGE). A computed fee above MaxFeeKoinu
//     (default MaxFeeDefaultKoinu, 1 DOGE) is an error (ErrFeeAboveMax) rather than capped as
//     GigaWallet caps it: a capped fee can make a transaction the network never relays.
//     ExplicitFeeKoinu > 0 replaces the computed fee and is not limited by MaxFeeKoinu.
//   - Deduct split: output i pays ⌊fee·share_i/FeeShareAll⌋; the koinu left over (fewer than
//     the number of outputs) go one each to the outputs with the largest remainders of that
//     division, ties to the lower output index (the largest-remainder method), so the parts sum
//     to the fee exactly and the same request always splits the same way. An output left below
//     DustKoinu is ErrDust.
//   - Change: inputs − outputs − fee. Change below DustKoinu is added to the fee instead of
//     failing the request (GigaWallet fails it). When that would take a computed fee above
//     MaxFeeKoinu, one more input is added to make change large enough to keep; with none left,
//     ErrFeeAboveMax. Change of DustKoinu or more becomes the last output, paid to the change
//     address Sign is given (the caller allocates it when it commits the payout).
//   - Size: a plan whose estimate exceeds TransactionMaxBytes (Dogecoin Core's largest
//     standard transaction) is ErrTransactionTooLarge.
//
// Errors a client caused (HTTP 400: ErrNoOutputs, ErrTooManyOutputs, ErrInvalidAddress,
// ErrDust, ErrDeductShares, ErrAmountOutOfRange; HTTP 422, the account's state:
// ErrInsufficientFunds, ErrFeeAboveMax, ErrTransactionTooLarge) are told apart with errors.Is
// from the caller's own mistakes (ErrInvalidUTXO, ErrInvalidPlan, ErrNetworkMismatch,
// ErrKeyMismatch, ErrSignatureInvalid), which are internal errors.
//
// It is pure: no I/O, no clock, no randomness (signatures are RFC 6979 deterministic, so the
// same plan signs to the same transaction id), no logging. It must not reserve outputs,
// allocate addresses, broadcast, or know of Raft, the ledger or HTTP; those belong to its
// callers. It never stores a private key, nor puts one (or anything derived from one but the
// public key) into an error or a result.
package payout
