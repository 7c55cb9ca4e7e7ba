// Package client is the Go client of GigaLedger's Cloud Wallet API (docs/cloudwallet-api.md):
// typed calls for every route, typed errors built from the API's one error envelope, and
// retries that never apply a write twice.
//
// It owns the API's shapes as a client sees them (its own types with the API's JSON names, and
// amounts kept as exact decimal text), the encoding of requests, the classification of every
// answer and transport failure into "done", "certainly not applied" and "outcome unknown", and
// the retry policy built on that classification. It must never import the server's packages
// (fsm, httpapi, cluster, shard): it speaks only the documented HTTP contract, exactly as an
// integrator's code would, so a change of the server's internals cannot silently change it.
//
// Retries. A request the server certainly did not apply (503 Unavailable or Overloaded, a
// connection that could not be opened) is retried for every call. A request whose outcome is
// unknown (the connection broke after it was sent, a timeout, 503 OutcomeUnknown, another 5xx)
// is retried only when a repeat cannot apply it twice:
//   - reads;
//   - transactions, which are resent with the same referenceId: the server applies a
//     referenceId at most once and answers a repeat with 409 DuplicateReferenceId and the
//     stored transaction, which the client returns as the call's outcome;
//   - writes that set a value (renames, descriptions, customer upserts);
//   - other writes (creating projects, assets and wallets, status changes, deletes) only with
//     the RetryUnknownWrites option: they carry an Idempotency-Key header, the same on every
//     attempt of one call, but the server does not honour it yet, so a repeat may apply twice.
package client
