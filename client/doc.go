// Package client is the Go client of GigaLedger's Cloud Wallet API (docs/cloudwallet-api.md)
// and of its GigaWallet-compatible API (gigawallet.go): typed calls for every route, typed
// errors built from the API's one error envelope, and retries that never apply a write twice.
//
// It owns the API's shapes as a client sees them (its own types with the API's JSON names, and
// amounts kept as exact decimal text), the encoding of requests, the classification of every
// answer and transport failure into "done", "certainly not applied" and "outcome unknown", and
// the retry policy built on that classification. It must never import the server's packages
// (fsm, httpapi, cluster, shard): it speaks only the documented HTTP contract, exactly as an
// integrator's code would, so a change of the server's internals cannot silently change it.
//
// Retries. A request the server certainly did not apply (503 Unavailable or Overloaded, a
// connection that could not be opened) is retried for every call. So is a request whose
// outcome is unknown (the connection broke after it was sent, a timeout, 503 OutcomeUnknown,
// another 5xx), because a repeat cannot apply twice:
//   - reads change nothing;
//   - every write but a transaction carries an Idempotency-Key header, fresh for each call and
//     the same on every attempt of it: the server applies a key once and answers a repeat with
//     the stored answer (header Idempotent-Replayed: true, see Attempt.Replayed), so a lost
//     answer to a wallet's creation still opens one wallet;
//   - a transaction's key is its referenceId: a repeat is answered 409 DuplicateReferenceId
//     with the stored transaction, which the client returns as the call's outcome.
//
// The GigaWallet calls send no Idempotency-Key by default (GigaWallet has none): an account
// upsert is idempotent by itself and is resent like the others, but an invoice create or a
// payout (Pay, PayTx, PayInvoiceFrom, RefundInvoice) is resent only when it certainly did not
// apply. Under WithIdempotencyKey those send the caller's key, which the server honours (one
// invoice or payout per key and account), and are resent after an unknown outcome too.
//
// A caller that wants one attempt per call (it classifies and resends itself) uses NoRetries.
//
// Leader routing. Every answer to a write that one shard served names the shard's leader
// (header GigaLedger-Shard-Leader). With WithLeaderRouting, a client of a one-shard cluster sends
// its later writes straight there, saving the follower's forwarding hop, and falls back to the
// configured node when the leader cannot be reached; the retry rules above stay as they are.
package client
