// Package gigawallet owns the HTTP shapes of the GigaWallet-compatible Dogecoin API
// (../shared/contracts/gigawallet.md, issue 10): DOGE amounts in and out, the request bodies of
// the admin routes that take one, the response bodies, the error envelope and its statuses, the
// invoice QR code (qr.go) and signed DogeConnect 1.0 payment envelopes and URIs (connect.go).
// Signing goes through the small EnvelopeSigner interface: the key stays in chainwatch/dogecoin.
//
// Everything here is a pure function of its input: no routes, no backend, no I/O beyond reading a
// request body. It must not import fsm/ledger, cluster or the Raft machinery; handlers that mount
// these shapes on routes live beside the rest of the HTTP API and call the backend themselves.
//
// What GigaWallet's clients depend on is kept exactly: JSON field names and order, amounts that
// come in as strings or numbers and go out as decimal strings with trailing zeros trimmed, the
// PascalCase balance keys, `{"error":{"code","message"}}` with GigaWallet's codes. What is a bug
// there is fixed: validation failures are 400 instead of 500, already-exists is 409, amounts with
// more than 8 decimal places are refused instead of silently stored, and request bodies are
// decoded strictly.
//
// Strict means: valid UTF-8, no key twice, no unknown or case-variant key, one JSON object and
// nothing after it, bounded size, nesting and item count. GigaWallet (plain encoding/json)
// ignores unknown keys and matches keys case-insensitively, but no real client depends on that:
// the WooCommerce plugin sends exactly the documented keys in lower case, while GigaWallet's own
// test sends "confirmations" and silently gets the default instead. What clients do depend on
// is kept: amounts as strings or numbers, null read as the empty value, `{}` as an empty upsert.
package gigawallet
