package httpapi

import "github.com/gigaledger/gigaledger/backend"

// The contract with the cluster lives in package backend, which cluster/routing implements
// without importing this package. These aliases keep the names handlers and tests use.
type (
	// Backend is backend.Backend: what the handlers need from the cluster.
	Backend = backend.Backend
	// Reader is backend.Reader: the query side of the ledger.
	Reader = backend.Reader
)

// Sentinel errors a Backend wraps (the same values as package backend's; match with errors.Is).
var (
	// ErrUnavailable: 503 Unavailable with Retry-After; the request certainly did not apply.
	ErrUnavailable = backend.ErrUnavailable
	// ErrOutcomeUnknown: 503 OutcomeUnknown; the proposal may or may not have applied.
	ErrOutcomeUnknown = backend.ErrOutcomeUnknown
	// ErrOverloaded: 503 Overloaded with Retry-After; the request did not apply.
	ErrOverloaded = backend.ErrOverloaded
)
