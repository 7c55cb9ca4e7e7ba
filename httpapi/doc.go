// Package httpapi owns GigaLedger's HTTP surface: the gin routers of the admin and public
// listeners, the request and response shapes of the Cloud Wallet API (docs/cloudwallet-api.md),
// input validation and limits, bearer-token auth, the one JSON error envelope with its mapping
// from fsm error codes to HTTP statuses, the OpenAPI document, request metrics, health and
// readiness.
//
// It turns a valid request into an fsm.Command (choosing the IDs the command creates, so the FSM
// stays deterministic) or a read, and hands it to a Backend. It must never talk to Raft, route
// between nodes or shards, or hold business rules: whether a wallet may be debited, a reference
// ID reused or an asset deleted is decided by the fsm, and this package only reports the answer.
// Validation here rejects malformed input early with a clear 4xx; the FSM validates again.
//
// Every read goes through Backend.Read, whichever node holds the data: this package never
// forwards a request to another node (cluster/routing reads a shard hosted elsewhere with a
// query over the cluster's RPC), so bearer tokens never leave the node that received them.
package httpapi
