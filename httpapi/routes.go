package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// routeSpec is one route: how gin registers it and how the OpenAPI document describes it. The
// engine and the document are both built from the same table, and a test checks them against
// each other.
type routeSpec struct {
	method, path string // path in gin syntax: /projects/:projectId
	operationID  string
	summary      string
	tag          string
	handler      gin.HandlerFunc
	// request names the body schema; requestOptional allows no body at all.
	request         string
	requestOptional bool
	// query lists the query parameters; "page", "from" and "to" are required.
	query []string
	// success is the success status; response names its schema ("" for no body).
	success  int
	response string
	// errors lists the route's error statuses beyond those every API route may answer.
	errors []int
	// noAuth marks routes served without the bearer token.
	noAuth bool
	// public marks routes the public listener serves too.
	public bool
	// contentType of a success body other than JSON.
	contentType string
	// keyless marks a mutating route that takes no Idempotency-Key: it is idempotent already or
	// operational (GigaWallet's account upsert, void and setsyncheight) and ignores one, or it
	// refuses one (the batch of transactions: its referenceIds make a retry safe).
	keyless bool
}

// OpenAPI tags.
const (
	tagProjects     = "projects"
	tagAssets       = "assets"
	tagCustomers    = "customers"
	tagWallets      = "wallets"
	tagTransactions = "transactions"
	tagHolds        = "holds"
	tagOperations   = "operations"
	tagEvents       = "events"
)

// Status lists shared by the route table.
var (
	notFound     = []int{http.StatusNotFound}
	businessRule = []int{http.StatusNotFound, http.StatusUnprocessableEntity}
)

// adminRoutes is the admin listener's route table: the Cloud Wallet API at exactly the paths of
// docs/cloudwallet-api.md, then the operational routes. The /openapi.json handler is filled in
// by newAdminEngine once the document is built.
func (s *server) adminRoutes(registry *prometheus.Registry) []routeSpec {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		created, ok, empty  = http.StatusCreated, http.StatusOK, http.StatusNoContent
		conflict            = http.StatusConflict
		forbidden           = http.StatusForbidden
		unprocessable       = http.StatusUnprocessableEntity
		missing             = http.StatusNotFound
	)
	pageQuery := []string{"page", "pageSize"}
	timePageQuery := []string{"page", "pageSize", "from", "to"}
	routes := []routeSpec{
		{method: post, path: "/projects", operationID: "createProject", tag: tagProjects, handler: s.createProject,
			summary: "Create a project (the id is generated when omitted).", request: "CreateProjectRequest",
			success: created, response: "Project", errors: []int{conflict}},
		{method: get, path: "/projects", operationID: "listProjects", tag: tagProjects, handler: s.listProjects,
			summary: "List projects.", success: ok, response: "ProjectList"},
		{method: get, path: "/projects/:projectId", operationID: "getProject", tag: tagProjects, handler: s.getProject,
			summary: "Get a project with its assets.", success: ok, response: "Project", errors: notFound},
		{method: put, path: "/projects/:projectId/name", operationID: "renameProject", tag: tagProjects, handler: s.renameProject,
			summary: "Rename a project.", request: "NameRequest", success: ok, response: "Project", errors: notFound},

		{method: post, path: "/projects/:projectId/assets", operationID: "createAsset", tag: tagAssets, handler: s.createAsset,
			summary: "Create an asset (the id is generated when omitted).", request: "CreateAssetRequest",
			success: created, response: "Asset", errors: []int{missing, conflict}},
		{method: get, path: "/projects/:projectId/assets", operationID: "listAssets", tag: tagAssets, handler: s.listAssets,
			summary: "List a project's assets.", success: ok, response: "AssetList", errors: notFound},
		{method: get, path: "/projects/:projectId/assets/:assetId", operationID: "getAsset", tag: tagAssets, handler: s.getAsset,
			summary: "Get an asset.", success: ok, response: "Asset", errors: notFound},
		{method: put, path: "/projects/:projectId/assets/:assetId/name", operationID: "renameAsset", tag: tagAssets, handler: s.renameAsset,
			summary: "Rename an asset.", request: "NameRequest", success: ok, response: "Asset", errors: notFound},
		{method: del, path: "/projects/:projectId/assets/:assetId", operationID: "deleteAsset", tag: tagAssets, handler: s.deleteAsset,
			summary: "Delete an asset no wallet uses (403 AssetInUse once one does).", success: empty,
			errors: []int{missing, forbidden}},

		{method: post, path: "/projects/:projectId/customers", operationID: "upsertCustomer", tag: tagCustomers, handler: s.upsertCustomer,
			summary: "Create or update a customer by id.", request: "CustomerRequest", success: ok, response: "Customer", errors: notFound},
		{method: get, path: "/projects/:projectId/customers", operationID: "listCustomers", tag: tagCustomers, handler: s.listCustomers,
			summary: "List customers, one page at a time.", query: pageQuery, success: ok, response: "CustomerPage", errors: notFound},
		{method: get, path: "/projects/:projectId/customers/:customerId", operationID: "getCustomer", tag: tagCustomers, handler: s.getCustomer,
			summary: "Get a customer.", success: ok, response: "Customer", errors: notFound},
		{method: put, path: "/projects/:projectId/customers/:customerId", operationID: "updateCustomer", tag: tagCustomers, handler: s.updateCustomer,
			summary: "Create or update the customer with this id; omitted fields stay as they are.", request: "CustomerUpdateRequest",
			requestOptional: true, success: ok, response: "Customer", errors: notFound},
		{method: del, path: "/projects/:projectId/customers/:customerId", operationID: "deleteCustomer", tag: tagCustomers, handler: s.deleteCustomer,
			summary: "Delete a customer whose wallets are all closed (closed wallets are kept).", success: empty, errors: businessRule},
		{method: post, path: "/projects/:projectId/customers/:customerId/suspend", operationID: "suspendCustomer", tag: tagCustomers, handler: s.suspendCustomer,
			summary: "Suspend a customer and all their wallets.", request: "EmptyRequest", requestOptional: true,
			success: ok, response: "Customer", errors: notFound},
		{method: post, path: "/projects/:projectId/customers/:customerId/resume", operationID: "resumeCustomer", tag: tagCustomers, handler: s.resumeCustomer,
			summary: "Resume a customer; only the listed wallets are reopened.", request: "ResumeCustomerRequest", requestOptional: true,
			success: ok, response: "Customer", errors: businessRule},
		{method: get, path: "/projects/:projectId/customers/:customerId/wallets", operationID: "listCustomerWallets", tag: tagWallets, handler: s.listCustomerWallets,
			summary: "List a customer's wallets.", success: ok, response: "WalletList", errors: notFound},

		{method: post, path: "/projects/:projectId/wallets", operationID: "createWallet", tag: tagWallets, handler: s.createWallet,
			summary: "Open a wallet for a customer.", request: "CreateWalletRequest", success: created, response: "Wallet",
			errors: []int{missing, conflict, unprocessable}},
		{method: post, path: "/projects/:projectId/system-wallets", operationID: "createSystemWallet", tag: tagWallets, handler: s.createSystemWallet,
			summary: "Open a system wallet (owned by the project).", request: "CreateSystemWalletRequest", success: created,
			response: "Wallet", errors: []int{missing, conflict}},
		{method: get, path: "/projects/:projectId/system-wallets", operationID: "listSystemWallets", tag: tagWallets, handler: s.listSystemWallets,
			summary: "List the project's system wallets.", success: ok, response: "WalletList", errors: notFound},
		{method: get, path: "/projects/:projectId/wallets/:walletId", operationID: "getWallet", tag: tagWallets, handler: s.getWallet,
			summary: "Get a wallet with its balance.", success: ok, response: "Wallet", errors: notFound},
		{method: put, path: "/projects/:projectId/wallets/:walletId/name", operationID: "renameWallet", tag: tagWallets, handler: s.renameWallet,
			summary: "Rename a wallet.", request: "NameRequest", success: ok, response: "Wallet", errors: notFound},
		{method: put, path: "/projects/:projectId/wallets/:walletId/description", operationID: "describeWallet", tag: tagWallets, handler: s.describeWallet,
			summary: "Set a wallet's description.", request: "DescriptionRequest", success: ok, response: "Wallet", errors: notFound},
		{method: put, path: "/projects/:projectId/wallets/:walletId/status", operationID: "setWalletStatus", tag: tagWallets, handler: s.setWalletStatus,
			summary: "Open, suspend or close a wallet (closed is final and needs a zero balance).", request: "WalletStatusRequest",
			success: ok, response: "Wallet", errors: businessRule},
		{method: get, path: "/projects/:projectId/wallets/:walletId/entries", operationID: "listEntries", tag: tagWallets, handler: s.listEntries,
			summary: "List a wallet's entries created within [from, to], oldest first.", query: timePageQuery,
			success: ok, response: "EntryPage", errors: notFound},

		{method: post, path: "/projects/:projectId/transactions", operationID: "createTransaction", tag: tagTransactions, handler: s.createTransaction,
			summary: "Run a transaction: its operations in order, all or nothing. 422 with the failed transaction; 409 with the stored one on a reused referenceId.",
			request: "TransactionRequest", success: created, response: "Transaction", errors: []int{missing, conflict, unprocessable}},
		{method: post, path: "/projects/:projectId/transactions/batch", operationID: "createTransactionBatch", tag: tagTransactions, handler: s.createTransactionBatch, keyless: true,
			summary: "Run up to 1000 transactions, each atomic on its own (not the batch), in request order where they share wallets. 200 with one result per transaction in request order: the status and body the single route would have answered (201 with the transaction; 409 DuplicateReferenceId or ReferenceIdMismatch, 422 with the failed transaction, 404, 503 OutcomeUnknown, 503 Unavailable when not sent before the request's time ran out, ...). A malformed transaction refuses the whole batch (400 naming transactions[i]); Idempotency-Key is refused (referenceIds make a retry safe).",
			request: "TransactionBatchRequest", success: ok, response: "TransactionBatchResult", errors: notFound},
		{method: get, path: "/projects/:projectId/transactions", operationID: "listTransactions", tag: tagTransactions, handler: s.listTransactions,
			summary: "List transactions created within [from, to], oldest first.", query: timePageQuery,
			success: ok, response: "TransactionPage", errors: notFound},
		{method: get, path: "/projects/:projectId/transactions/:txId", operationID: "getTransaction", tag: tagTransactions, handler: s.getTransaction,
			summary: "Get a transaction.", success: ok, response: "Transaction", errors: notFound},

		{method: get, path: "/projects/:projectId/holds/:holdId", operationID: "getHold", tag: tagHolds, handler: s.getHold,
			summary: "Get a hold (placed by a hold operation of a transaction).", success: ok, response: "Hold", errors: notFound},
		{method: post, path: "/projects/:projectId/holds/:holdId/capture", operationID: "captureHold", tag: tagHolds, handler: s.captureHold,
			summary: "Capture all or part of an active hold into a transfer to another wallet; the rest is released. 409 HoldResolved with the hold when it is no longer active; 422 with the failed transaction when the transfer fails (the hold stays active). A wallet on another shard than the hold's is paid atomically across shards (several consensus rounds); meanwhile the hold is the capture's: another capture or a release is 409 CrossShardHold, and it does not expire until the outcome.",
			request: "CaptureRequest", success: ok, response: "HoldResolution", errors: []int{missing, conflict, unprocessable}},
		{method: post, path: "/projects/:projectId/holds/:holdId/release", operationID: "releaseHold", tag: tagHolds, handler: s.releaseHold,
			summary: "Release an active hold: its amount is available again. 409 HoldResolved with the hold when it is no longer active.",
			request: "EmptyRequest", requestOptional: true, success: ok, response: "HoldResolution", errors: []int{missing, conflict}},

		{method: get, path: pathEvents, operationID: "listEvents", tag: tagEvents, handler: s.listEvents,
			summary: "Replay and poll events across shards, oldest first per shard, from an opaque cursor (docs/events.md). With wait, a long poll: answers as soon as an event matches, or empty when the time is up.",
			query:   []string{"after", "limit", "types", "wait"}, success: ok, response: "EventPage",
			errors: []int{http.StatusServiceUnavailable}},
		{method: post, path: "/subscriptions", operationID: "createSubscription", tag: tagEvents, handler: s.createSubscription,
			summary: "Subscribe a webhook to events (HMAC-signed when a secret is set; from \"now\" by default, or \"oldest\").",
			request: "SubscriptionRequest", success: created, response: "Subscription", errors: []int{conflict, unprocessable}},
		{method: get, path: "/subscriptions", operationID: "listSubscriptions", tag: tagEvents, handler: s.listSubscriptions,
			summary: "List the event subscriptions (secrets are never shown).", success: ok, response: "SubscriptionList"},
		{method: get, path: "/subscriptions/:name", operationID: "getSubscription", tag: tagEvents, handler: s.getSubscription,
			summary: "Get an event subscription.", success: ok, response: "Subscription", errors: []int{missing}},
		{method: del, path: "/subscriptions/:name", operationID: "deleteSubscription", tag: tagEvents, handler: s.deleteSubscription,
			summary: "Delete an event subscription: its deliveries stop within about a second.", success: empty, errors: []int{missing}},
		{method: get, path: pathDeadLetters, operationID: "listDeadLetters", tag: tagEvents, handler: s.listDeadLetters,
			summary: "The events the subscriber's delivery gave up on after its retries, oldest first: of one shard from a sequence, or the first limit of every shard.",
			query:   []string{"shard", "afterSequence", "limit"}, success: ok, response: "DeadLetterList"},
		{method: post, path: pathDeadLetters + "/redrive", operationID: "redriveDeadLetters", tag: tagEvents, handler: s.redriveDeadLetters,
			summary: "Deliver the subscriber's dead letters again (each shard's leader, within the retry budget, out of sequence order): those that arrive leave the list, the others stay with the new reason. Safe to repeat.",
			request: "EmptyRequest", requestOptional: true, success: ok, response: "RedriveAnswer", errors: []int{missing, http.StatusServiceUnavailable}},

		{method: get, path: pathOpenAPI, operationID: "openapi", tag: tagOperations,
			summary: "This OpenAPI document.", success: ok, response: "OpenAPIDocument"},
		{method: get, path: pathMetrics, operationID: "metrics", tag: tagOperations, noAuth: true, handler: metricsHandler(registry),
			summary: "Prometheus metrics.", success: ok, contentType: "text/plain"},
		{method: get, path: pathCluster, operationID: "clusterStatus", tag: tagOperations, handler: s.clusterStatus,
			summary: "This node, its shard replicas, their leader and health.", success: ok, response: "ClusterStatus",
			errors: []int{http.StatusServiceUnavailable}},
		{method: get, path: pathDigest, operationID: "stateDigest", tag: tagOperations, handler: s.stateDigest,
			summary: "This node's ledger state digest and applied log index over every shard it hosts, or of one shard's replica with shard=, to compare replicas (no read fence).",
			query:   []string{"shard"}, success: ok, response: "StateDigest", errors: []int{missing, http.StatusServiceUnavailable}},
		{method: post, path: pathReplace, operationID: "replaceNode", tag: tagOperations, handler: s.replaceNode,
			summary: "Move every shard replica of a dead node to a new, running node: each added as a non-voter, promoted once caught up, then the old one removed. Safe to repeat.",
			request: "ReplaceNodeRequest", success: ok, response: "ReplaceNodeResult", errors: []int{http.StatusServiceUnavailable}},
		{method: post, path: pathMove, operationID: "moveReplica", tag: tagOperations, handler: s.moveReplica,
			summary: "Move one replica of a shard from one node to another running member (rebalancing onto a node that joined by gossip): added as a non-voter, promoted once caught up, the old one removed and its data deleted. Waits until done; safe to repeat.",
			request: "MoveReplicaRequest", success: ok, response: "MoveReplicaResult", errors: []int{http.StatusServiceUnavailable}},
		{method: post, path: pathBalance, operationID: "balanceLeaders", tag: tagOperations, handler: s.balanceLeaders,
			summary: "Spread shard leadership: one shard at a time, from the node leading the most shards to an up-to-date voter leading at least two fewer, each transfer seen before the next, until the most and fewest led differ by at most one. Refused (503) while a replica move runs; safe to repeat.",
			success: ok, response: "BalanceLeadersResult", errors: []int{http.StatusServiceUnavailable}},
		{method: post, path: pathSpread, operationID: "balanceReplicas", tag: tagOperations, handler: s.balanceReplicas,
			summary: "Spread shard replicas over the live nodes (after a node joined): one move at a time, as move-replica does, from the node holding the most replicas to a live node holding at least two fewer and no replica of that shard, until the most and fewest held differ by at most one. Refused (503) while another move runs or a node holding replicas is down; waits until done; safe to repeat.",
			success: ok, response: "BalanceReplicasResult", errors: []int{http.StatusServiceUnavailable}},
	}
	return append(routes, s.healthRoutes()...)
}
