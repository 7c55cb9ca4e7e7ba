// Package rpc owns talking JSON-RPC to a Dogecoin-Core-family node (Dogecoin Core, or for tests
// Debian's litecoind in regtest): the request envelope GigaWallet's follower uses (JSON-RPC
// 1.0-style POST {"method","params","id"}, no "jsonrpc" field, HTTP basic auth), the checks on
// the answer (HTTP status, the echoed id, a bounded body, the result/error envelope) and typed
// calls for the methods the chain follower and the payout broadcaster need.
//
// A Client retries a call only after a transport error, only a bounded number of times, and
// only for methods that change nothing on the node (the read-only set in idempotentMethods). A
// transport error on any other method — sendrawtransaction above all — is returned at once
// wrapped in ErrOutcomeUnknown: the node may have acted on it, and the caller must find out
// (a transaction's id is known before it is sent) rather than send again blindly.
//
// It must never hold keys or decide business rules (which outputs count, how many
// confirmations pay an invoice, what fee to pay): it carries calls and decodes answers. It never
// logs, and the RPC password appears in no error and in no printed Config or Client.
package rpc
