package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/cluster/relay"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
	"github.com/gigaledger/gigaledger/fsm/gigpay"
	gw "github.com/gigaledger/gigaledger/httpapi/gigawallet"
	gp "github.com/gigaledger/gigaledger/httpapi/gigpay"
)

// The OpenAPI 3.0 document served at /openapi.json, built from the same route table that
// registers the gin routes (adminRoutes), so a route cannot be served without being described.

// object is a JSON object of the document.
type object = map[string]any

// openAPIVersion is the API version the document announces.
const openAPIVersion = "1.0.0"

// openAPIPath turns a gin path (/projects/:projectId) into an OpenAPI path (/projects/{projectId})
// and returns its parameter names in order.
func openAPIPath(ginPath string) (string, []string) {
	segments := strings.Split(ginPath, "/")
	var params []string
	for i, segment := range segments {
		if name, ok := strings.CutPrefix(segment, ":"); ok {
			segments[i] = "{" + name + "}"
			params = append(params, name)
		}
	}
	return strings.Join(segments, "/"), params
}

func openAPIDocument(routes []routeSpec) object {
	paths := object{}
	for _, route := range routes {
		path, params := openAPIPath(route.path)
		item, _ := paths[path].(object)
		if item == nil {
			item = object{}
			paths[path] = item
		}
		item[strings.ToLower(route.method)] = openAPIOperation(route, params)
	}
	return object{
		"openapi": "3.0.3",
		"info": object{
			"title":       "GigaLedger admin API",
			"version":     openAPIVersion,
			"description": "The Cloud Wallet API of GigaLedger (docs/cloudwallet-api.md) and the admin listener's operational routes. Amounts are whole numbers of an asset's smallest parts up to 2^128-1, written as exact JSON integers; inputs also accept a string of digits. Every error is {\"error\":{\"code\",\"message\"}}. Every POST, PUT and PATCH (and a DELETE with a body) must send Content-Type: application/json; JSON keys are case-sensitive and may not repeat.",
		},
		"tags": []object{
			{"name": tagProjects}, {"name": tagAssets}, {"name": tagCustomers}, {"name": tagWallets},
			{"name": tagTransactions}, {"name": tagHolds}, {"name": tagGigaWallet},
			{"name": tagGigPay, "description": "GigPay (docs/gigpay-api.md): payment tokens and payments. Admin token on the admin listener; " +
				"claim and reject are also served on the public listener without it, authorised by the token string in the path."},
			{"name": tagOperations},
		},
		"security": []object{{"bearerAuth": []string{}}},
		"paths":    paths,
		"components": object{
			"securitySchemes": object{"bearerAuth": object{"type": "http", "scheme": "bearer",
				"description": "The node's admin token; required on every route but /healthz, /readyz and /metrics when the node runs with one."}},
			"schemas": openAPISchemas(),
		},
	}
}

func openAPIOperation(route routeSpec, pathParams []string) object {
	operation := object{
		"operationId": route.operationID,
		"summary":     route.summary,
		"tags":        []string{route.tag},
	}
	var parameters []object
	for _, name := range pathParams {
		parameters = append(parameters, object{"name": name, "in": "path", "required": true, "schema": pathParamSchema(name)})
	}
	for _, name := range route.query {
		parameters = append(parameters, queryParam(route.path, name))
	}
	// writes: the route changes state through one shard (its answer names the leader);
	// idempotent: it takes an Idempotency-Key.
	writes := isMutating(route.method) && route.tag != tagOperations
	idempotent := writes && !route.keyless
	if idempotent {
		description := "Makes the request safe to retry: the same key with the same request returns the stored answer " +
			"(with Idempotent-Replayed: true) and changes nothing; with a different request, 409 IdempotencyKeyMismatch. " +
			"Scoped per project, kept 24 hours."
		if route.tag == tagGigaWallet {
			description = "Optional (GigaWallet has no such header; without it the route answers as GigaWallet does). Makes the request " +
				"safe to retry after a 503 or a lost connection: the same key with the same request (path and body) returns the stored " +
				"answer — the same payout or invoice, never a second one; a payout's transaction is not planned, signed or sent again — " +
				"with Idempotent-Replayed: true, and changes nothing; with a different request, 409 already-exists and nothing changes. " +
				"1..255 printable characters; scoped per account (foreign ID), kept 24 hours."
		}
		parameters = append(parameters, object{"name": headerIdempotencyKey, "in": "header", "required": false,
			"schema":      object{"type": "string", "minLength": 1, "maxLength": fsm.IdempotencyKeyMaxLength},
			"description": description})
	}
	if parameters != nil {
		operation["parameters"] = parameters
	}
	if route.request != "" {
		operation["requestBody"] = object{
			"required": !route.requestOptional,
			"content":  object{"application/json": object{"schema": schemaRef(route.request)}},
		}
	}
	if route.noAuth {
		operation["security"] = []object{}
	}

	responses := object{}
	success := object{"description": http.StatusText(route.success)}
	switch {
	case route.contentType != "":
		success["content"] = object{route.contentType: object{"schema": object{"type": "string"}}}
	case route.response != "":
		success["content"] = object{"application/json": object{"schema": schemaRef(route.response)}}
	}
	if writes {
		success["headers"] = shardLeaderHeaders
	}
	responses[strconv.Itoa(route.success)] = success

	statuses := append([]int(nil), route.errors...)
	if route.tag != tagOperations {
		// Every Cloud Wallet route may refuse bad input, fail inside, or find no leader.
		statuses = append(statuses, http.StatusBadRequest, http.StatusInternalServerError, http.StatusServiceUnavailable)
	}
	if route.request != "" {
		statuses = append(statuses, http.StatusRequestEntityTooLarge)
	}
	if !route.noAuth {
		statuses = append(statuses, http.StatusUnauthorized)
	}
	// The browser protections (browser.go) answer on every route.
	statuses = append(statuses, http.StatusMisdirectedRequest)
	if isMutating(route.method) {
		statuses = append(statuses, http.StatusForbidden)
	}
	if idempotent {
		statuses = append(statuses, http.StatusConflict)
	}
	if route.method == http.MethodPost || route.method == http.MethodPut || route.method == http.MethodPatch {
		statuses = append(statuses, http.StatusUnsupportedMediaType)
	}
	for _, status := range statuses {
		description := http.StatusText(status)
		switch status {
		case http.StatusServiceUnavailable:
			description += " (Unavailable, Overloaded or OutcomeUnknown; see Retry-After)"
		case http.StatusMisdirectedRequest:
			description += " (MisdirectedRequest: without an admin token the node answers only loopback Host names and --allowed-hosts)"
		case http.StatusConflict:
			switch {
			case idempotent && route.tag == tagGigaWallet:
				description += " (already-exists"
				if slices.Contains(route.errors, http.StatusConflict) {
					description += ": the route's own conflicts, or"
				} else {
					description += ":"
				}
				description += " the Idempotency-Key was used for a different request)"
			case idempotent && !slices.Contains(route.errors, http.StatusConflict):
				description += " (IdempotencyKeyMismatch: the Idempotency-Key was used for a different request)"
			}
		case http.StatusUnsupportedMediaType:
			description += " (UnsupportedMediaType: the Content-Type must be application/json, body or not)"
		case http.StatusForbidden:
			description += " (OriginNotAllowed: a browser Origin not in --cors-origins"
			if slices.Contains(route.errors, http.StatusForbidden) {
				description += "; or the business rule of this route"
			}
			description += ")"
		}
		responses[strconv.Itoa(status)] = object{
			"description": description,
			"content":     object{"application/json": object{"schema": schemaRef("Error")}},
		}
	}
	operation["responses"] = responses
	return operation
}

// shardLeaderHeaders are the headers a node sets on the answer to a write that one shard served
// (cmd/gigaledger's leaderheader.go sets them; docs/cloudwallet-api.md, "Finding the leader").
var shardLeaderHeaders = object{
	"GigaLedger-Shard": object{"description": "The shard that served the write (absent when several did, as in a cross-shard transaction).",
		"schema": object{"type": "integer", "minimum": 0}},
	"GigaLedger-Shard-Count": object{"description": "How many shards the cluster has (sent with GigaLedger-Shard).",
		"schema": object{"type": "integer", "minimum": 1}},
	"GigaLedger-Shard-Leader": object{"description": "The admin API base URL of that shard's leader as the answering node knows it, " +
		"absent when it does not know it or the leader advertises none (--api-url). Sending writes there saves the forwarding; " +
		"on a cluster of one shard (GigaLedger-Shard-Count: 1) it serves every write.",
		"schema": object{"type": "string", "format": "uri"}},
}

func schemaRef(name string) object { return object{"$ref": "#/components/schemas/" + name} }

func pathParamSchema(name string) object {
	switch name {
	case "projectId", "assetId":
		return simpleIDSchema(fsm.IDMaxLength)
	case "walletId", "txId", "holdId":
		return simpleIDSchema(fsm.GeneratedIDMaxLength)
	case "customerId", "foreignID":
		return object{"type": "string", "minLength": 1, "maxLength": fsm.CustomerIDMaxLength, "pattern": "^[^/]+$"}
	case "invoiceID":
		return object{"type": "string", "minLength": 1, "maxLength": gigawallet.InvoiceAddressMax, "pattern": "^[1-9A-HJ-NP-Za-km-z]+$",
			"description": "The invoice's pay-to address."}
	case "paymentID":
		return object{"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "The payout's txid."}
	case "height":
		return object{"type": "string", "pattern": "^[0-9]+$", "description": "A block height."}
	case "id":
		return object{"type": "string", "minLength": 1, "maxLength": fsm.GeneratedIDMaxLength, "pattern": "^[A-Za-z0-9_.-]+$",
			"description": "GigPay: the account, token or payment ID; for claim and reject, the token string (anything else is 404)."}
	}
	return object{"type": "string"}
}

func simpleIDSchema(maxLength int) object {
	return object{"type": "string", "minLength": 1, "maxLength": maxLength, "pattern": "^[A-Za-z0-9_.-]+$"}
}

func queryParam(path, name string) object {
	param := object{"name": name, "in": "query"}
	if path == pathEvents {
		return eventsQueryParam(param, name)
	}
	if path == pathGigPayPayments {
		return gigPayQueryParam(param, name)
	}
	if path == pathDeadLetters {
		switch name {
		case "shard":
			param["description"] = "Only this shard's dead letters."
			param["schema"] = object{"type": "integer", "minimum": 0}
		case "afterSequence":
			param["description"] = "With shard: only dead letters of events after this outbox sequence."
			param["schema"] = object{"type": "integer", "minimum": 0}
		case "limit":
			param["description"] = "Dead letters per shard."
			param["schema"] = object{"type": "integer", "minimum": 1, "maximum": deadLettersPageMax, "default": 100}
		}
		return param
	}
	switch name {
	case "page":
		param["required"] = true
		param["description"] = "Page number, from 1."
		param["schema"] = object{"type": "integer", "format": "int32", "minimum": 1}
	case "pageSize":
		param["description"] = "Items per page."
		param["schema"] = object{"type": "integer", "format": "int32", "minimum": 1, "maximum": pageSizeMaxCount, "default": pageSizeDefaultCount}
	case "fg", "bg":
		param["description"] = "GigaWallet: QR colour as hex RGB or RGBA (000000, ff000080); anything else takes the default (black, white)."
		param["schema"] = object{"type": "string"}
	case "cursor":
		param["description"] = "GigaWallet: the first HD key index to list; absent or empty = 0."
		param["schema"] = object{"type": "integer", "minimum": 0}
	case "limit":
		param["description"] = "GigaWallet: invoices per page; absent or empty = 10."
		param["schema"] = object{"type": "integer", "minimum": 1, "maximum": gw.InvoicePageSizeMax, "default": gw.InvoicePageSizeDefault}
	case "from", "to":
		param["description"] = "Creation time bound in Unix milliseconds, inclusive; from must not be after to; absent: no bound on that side."
		param["schema"] = object{"type": "integer", "format": "int64", "minimum": 0}
	}
	return param
}

// eventsQueryParam describes the query parameters of GET /events.
func eventsQueryParam(param object, name string) object {
	switch name {
	case "after":
		param["description"] = "The cursor of the previous answer (opaque); absent = from each shard's oldest kept event. " +
			"400 InvalidCursor when malformed, 400 CursorShardMismatch when written by a cluster of another shard count."
		param["schema"] = object{"type": "string", "maxLength": cursorMaxChars, "pattern": "^[A-Za-z0-9_-]+$"}
	case "limit":
		param["description"] = "Events per page."
		param["schema"] = object{"type": "integer", "minimum": 1, "maximum": eventsPageMaxCount, "default": eventsPageDefaultCount}
	case "types":
		param["description"] = "Comma list of categories (" + strings.Join(eventCategories, ", ") + ") and/or exact event types " +
			"(LEDGER_TX_COMPLETED); absent = all. An unknown category is 400. Events filtered out still advance the cursor."
		param["schema"] = object{"type": "string"}
	case "wait":
		param["description"] = "Long poll: seconds to wait for a matching event when there is none yet; 0 answers at once."
		param["schema"] = object{"type": "integer", "minimum": 0, "maximum": eventsWaitMaxSeconds, "default": 0}
	}
	return param
}

func text(maxLength int, description string) object {
	s := object{"type": "string", "maxLength": maxLength}
	if description != "" {
		s["description"] = description
	}
	return s
}

func timestamp() object {
	return object{"type": "integer", "format": "int64", "description": "Unix milliseconds."}
}

func enum(values ...string) object { return object{"type": "string", "enum": values} }

func arrayOf(items object) object { return object{"type": "array", "items": items} }

// closed is a request schema: unknown fields are refused.
func closed(required []string, properties object) object {
	s := object{"type": "object", "properties": properties, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func shape(properties object) object { return object{"type": "object", "properties": properties} }

func itemsOf(name string) object {
	return object{"type": "object", "required": []string{"items"}, "properties": object{"items": arrayOf(schemaRef(name))}}
}

func pageOf(name string) object {
	return object{"type": "object", "required": []string{"items", "page", "pageSize", "hasMore"}, "properties": object{
		"items":    arrayOf(schemaRef(name)),
		"page":     object{"type": "integer"},
		"pageSize": object{"type": "integer"},
		"hasMore":  object{"type": "boolean"},
	}}
}

// GigPay shapes shared by several schemas.
var (
	gigPayAmount      = object{"type": "number", "description": "Exact decimal of the asset (1.5 is 1.50 USD), written as a JSON number literal with trailing zeros trimmed; never rounded."}
	gigPayAmountInput = object{"description": "A positive decimal of the asset, a JSON number or string (1, 1.5, \"0.01\"); no sign or exponent; " +
		"more decimals than the asset has is 400 AmountTooPrecise.", "oneOf": []object{{"type": "number"}, {"type": "string"}}}
	utcTime            = object{"type": "string", "format": "date-time", "description": "RFC 3339 UTC with milliseconds: 2024-01-09T18:00:56.246Z."}
	gigPayTokenRequest = closed([]string{"assetType", "sourceAccountId", "amount", "expiresAtUtc"}, object{
		"assetType": simpleIDSchema(fsm.IDMaxLength), "sourceAccountId": simpleIDSchema(fsm.GeneratedIDMaxLength),
		"amount": gigPayAmountInput, "expiresAtUtc": object{"type": "string", "format": "date-time",
			"description": "RFC 3339; in the future, at most 366 days ahead (else 400 ExpiryInvalid)."},
		"memo": text(gigpay.MemoMaxLength, ""), "clientReference": text(gigpay.ClientReferenceMaxLength,
			"Per source account: a retry with the same reference and fields answers the same token; other fields are 409 ClientReferenceMismatch.")})
)

// pathGigPayPayments is the GigPay payments list.
const pathGigPayPayments = "/api/v1/payments"

// gigPayQueryParam describes the query parameters of GET /api/v1/payments.
func gigPayQueryParam(param object, name string) object {
	switch name {
	case "status":
		param["schema"] = enum("pending", "processing", "completed", "canceled", "failed")
	case "type":
		param["schema"] = enum("deposit", "transfer", "withdrawal")
	case "accountId":
		param["description"] = "Payments with this account on either side."
		param["schema"] = simpleIDSchema(fsm.GeneratedIDMaxLength)
	case "assetType":
		param["schema"] = simpleIDSchema(fsm.IDMaxLength)
	case "createdFromUtc":
		param["description"] = "Created at or after (RFC 3339)."
		param["schema"] = object{"type": "string", "format": "date-time"}
	case "createdToUtc":
		param["description"] = "Created before (RFC 3339, exclusive)."
		param["schema"] = object{"type": "string", "format": "date-time"}
	case "sort":
		param["schema"] = object{"type": "string", "enum": []string{gp.SortCreatedAtUtc, gp.SortAmount}, "default": gp.SortCreatedAtUtc}
	case "order":
		param["schema"] = object{"type": "string", "enum": []string{"asc", "desc"}, "default": "desc"}
	case "limit":
		param["schema"] = object{"type": "integer", "minimum": 1, "maximum": gp.PageLimitMax, "default": gp.PageLimitDefault}
	case "cursor":
		param["description"] = "nextCursor of the previous page, with the same sort and order (else 400 InvalidCursor)."
		param["schema"] = object{"type": "string", "maxLength": gp.CursorMaxChars}
	}
	return param
}

func openAPISchemas() object {
	amount := object{"type": "integer", "minimum": 0,
		"description": "Whole number of the asset's smallest parts, up to 2^128-1, as exact JSON digits (may exceed 64 bits)."}
	amountInput := object{
		"description": "A positive whole number of the asset's smallest parts up to 2^128-1: a JSON integer or a string of digits. Fractions, signs, exponents and zero are 400 InvalidAmount.",
		"oneOf": []object{
			{"type": "integer", "minimum": 1},
			{"type": "string", "pattern": "^[1-9][0-9]{0,38}$"},
		},
	}
	generatedID := simpleIDSchema(fsm.GeneratedIDMaxLength)
	return object{
		"Amount":      amount,
		"AmountInput": amountInput,
		"Error": object{"type": "object", "required": []string{"error"}, "properties": object{
			"error": object{"type": "object", "required": []string{"code", "message"}, "properties": object{
				"code":    object{"type": "string", "description": "Stable error code (docs/cloudwallet-api.md)."},
				"message": object{"type": "string"},
			}},
			"transaction": schemaRef("Transaction"),
			"hold":        schemaRef("Hold"),
		}},
		"Health":          shape(object{"status": object{"type": "string"}, "message": object{"type": "string"}}),
		"OpenAPIDocument": object{"type": "object"},

		"Project": shape(object{
			"id": simpleIDSchema(fsm.IDMaxLength), "name": text(fsm.NameMaxLength, ""), "createdAt": timestamp(),
			"assets": arrayOf(schemaRef("Asset")),
		}),
		"Asset": shape(object{
			"id": simpleIDSchema(fsm.IDMaxLength), "projectId": simpleIDSchema(fsm.IDMaxLength),
			"name": text(fsm.NameMaxLength, ""), "code": text(fsm.CodeMaxLength, ""),
			"fractions": object{"type": "integer", "minimum": 1, "description": "Smallest accountable parts in one unit."},
			"used":      object{"type": "boolean", "description": "Set once a wallet uses the asset; a used asset cannot be deleted."},
			"supply": object{"type": "integer", "minimum": 0, "description": "Issued - redeemed: the sum of the asset's wallets' balances over every shard, an exact integer. " +
				"Each shard's part is at most 2^128-1 (like every balance), so an asset whose wallets span shards may total more."},
			"createdAt": timestamp(),
		}),
		"Customer": shape(object{
			"id": pathParamSchema("customerId"), "projectId": simpleIDSchema(fsm.IDMaxLength),
			"name": text(fsm.NameMaxLength, ""), "description": text(fsm.DescriptionMaxLength, ""),
			"status": enum("active", "suspended"), "createdAt": timestamp(), "updatedAt": timestamp(),
		}),
		"Wallet": shape(object{
			"id": generatedID, "projectId": simpleIDSchema(fsm.IDMaxLength),
			"customerId": object{"type": "string", "description": "Absent for system wallets."},
			"system":     object{"type": "boolean"}, "assetId": simpleIDSchema(fsm.IDMaxLength),
			"name": text(fsm.NameMaxLength, ""), "description": text(fsm.DescriptionMaxLength, ""),
			"status":  enum("open", "suspended", "closed"),
			"balance": amount, "held": amount,
			"available": object{"allOf": []object{schemaRef("Amount")}, "description": "balance - held; never below zero."},
			"createdAt": timestamp(), "updatedAt": timestamp(),
		}),
		"Operation": shape(object{
			"type": enum("transfer", "issue", "redeem", "hold"), "from": generatedID, "to": generatedID, "amount": amount,
			"expiresAt": object{"type": "integer", "description": "Hold only: when it expires, Unix milliseconds of batch time; absent = never."},
			"holdId":    object{"allOf": []object{generatedID}, "description": "Hold only: the ID of the hold it placed."},
		}),
		"Hold": shape(object{
			"id": generatedID, "projectId": simpleIDSchema(fsm.IDMaxLength), "walletId": generatedID, "amount": amount,
			"status":         enum("active", "captured", "released", "expired"),
			"expiresAt":      object{"type": "integer", "description": "Unix milliseconds; absent = never."},
			"transactionId":  generatedID,
			"capturedAmount": amount, "captureTransactionId": generatedID,
			"createdAt": timestamp(), "resolvedAt": object{"type": "integer", "description": "Absent while active."},
		}),
		"HoldResolution": shape(object{"hold": schemaRef("Hold"), "transaction": schemaRef("Transaction")}),
		"GigaWalletAccount": shape(object{
			"id":               object{"type": "string", "description": "P2PKH address of the account key m/44'/3'/N'."},
			"foreign_id":       object{"type": "string"},
			"payout_address":   object{"type": "string"},
			"payout_threshold": object{"type": "string", "description": "DOGE, decimal string."},
			"payout_frequency": object{"type": "string", "description": "Whole seconds, or empty."}}),
		"GigaWalletAccountRequest": closed(nil, object{
			"payout_address":   object{"type": []string{"string", "null"}, "description": "A P2PKH address of the node's network, or empty/null."},
			"payout_threshold": object{"description": "DOGE as a string or number, at most 8 decimals."},
			"payout_frequency": object{"type": []string{"string", "null"}, "description": "Whole seconds as a string."}}),
		"GigaWalletInvoiceRequest": closed([]string{"items"}, object{
			"items": object{"type": "array", "minItems": 1, "maxItems": gw.InvoiceItemsMaxCount, "items": closed(nil, object{
				"type":        enum(gw.ItemTypeItem, gw.ItemTypeTax, gw.ItemTypeFee, gw.ItemTypeShipping, gw.ItemTypeDiscount, gw.ItemTypeDonation),
				"name":        object{"type": "string"},
				"sku":         object{"type": "string"},
				"description": object{"type": "string"},
				"value":       object{"description": "DOGE as a string or number, at most 8 decimals; below zero for a discount, above zero otherwise."},
				"quantity":    object{"type": "integer", "minimum": 1},
				"image_link":  object{"type": "string"}})},
			"required_confirmations": object{"type": "integer", "minimum": -1, "maximum": gw.RequiredConfirmationsMax,
				"description": "Blocks after the payment's (GigaWallet's N); absent or -1 = the node's --confirmations-needed."},
			"expire_minutes": object{"type": "integer", "minimum": 0, "maximum": gw.ExpireMinutesMax,
				"description": "Minutes until an unpaid invoice expires (status expired, event INV_EXPIRED); absent or 0 = never."}}),
		"GigaWalletInvoiceItem": shape(object{
			"type": object{"type": "string"}, "name": object{"type": "string"}, "sku": object{"type": "string"},
			"description": object{"type": "string"}, "value": object{"type": "string", "description": "DOGE, decimal string."},
			"quantity": object{"type": "integer"}, "image_link": object{"type": "string"}}),
		"GigaWalletPublicInvoice": shape(gigaWalletInvoiceProperties(false)),
		"GigaWalletInvoice":       shape(gigaWalletInvoiceProperties(true)),
		"GigaWalletInvoiceList": shape(object{"items": arrayOf(schemaRef("GigaWalletInvoice")),
			"cursor": object{"type": "integer", "description": "The next page's cursor; 0 after the last page."}}),
		"DogeConnectEnvelope": shape(object{
			"version": object{"type": "string", "enum": []string{"1.0"}},
			"payload": object{"type": "string", "description": "Base64 of the payment request JSON (DogeConnect 1.0)."},
			"pubkey":  object{"type": "string", "description": "The cluster's DogeConnect key, BIP-340 x-only, hex."},
			"sig":     object{"type": "string", "description": "BIP-340 Schnorr signature of SHA-256(SHA-256(payload bytes)), hex."}}),
		"DogeConnectPaymentResponse": shape(object{
			"id":          object{"type": "string", "description": "The payment's ID: the invoice (its address)."},
			"tx":          object{"type": "string", "description": "The signed transaction, hex, at most 100,000 bytes."},
			"refund":      object{"type": "string", "description": "Optional; not used."},
			"relay_token": object{"type": "string", "description": "Optional; not used."}}),
		"DogeConnectStatusQuery": shape(object{"id": object{"type": "string", "description": "The payment's ID: the invoice (its address)."}}),
		"DogeConnectRelayReply": shape(object{
			"id":        object{"type": "string"},
			"status":    object{"type": "string", "enum": []string{"unpaid", "accepted", "declined", "confirmed"}},
			"reason":    object{"type": "string", "description": "Why the node declined the transaction."},
			"txid":      object{"type": "string", "description": "The submitted transaction's ID (pay only)."},
			"required":  object{"type": "integer", "description": "Confirmations the invoice requires."},
			"confirmed": object{"type": "integer", "description": "Confirmations seen: 0 until the invoice is paid, then required."},
			"due_sec":   object{"type": "integer", "description": "Estimated seconds until confirmed (a minute per block)."}}),
		"GigaWalletBalance": shape(object{
			"IncomingBalance": object{"type": "string"}, "CurrentBalance": object{"type": "string"}, "OutgoingBalance": object{"type": "string"}}),
		"GigaWalletPayRequest": shape(object{
			"amount": object{"type": "string", "description": "DOGE, a decimal string or number (with to; or pay)."},
			"to":     object{"type": "string", "description": "A P2PKH address of the configured network."},
			"pay": arrayOf(object{"type": "object", "properties": object{
				"amount": object{"type": "string"}, "to": object{"type": "string"},
				"deduct_fee_percent": object{"type": "string", "description": "This output's share of the fee, in percent; all zero or summing to 100."}}}),
			"explicit_fee": object{"type": "string", "description": "A fee in DOGE that replaces the estimate (not capped by max_fee)."},
			"max_fee":      object{"type": "string", "description": "The highest estimated fee accepted (default 1 DOGE); above it the payout is refused."}}),
		"GigaWalletRefundRequest": shape(object{
			"to":     object{"type": "string", "description": "The address to pay back (the configured network's P2PKH)."},
			"amount": object{"type": "string", "description": "DOGE; default: what the invoice received, confirmed. The fee comes on top."}}),
		"GigaWalletSendFundsResult": shape(object{
			"hex": object{"type": "string", "description": "The txid."}, "total": object{"type": "string"}, "paid": object{"type": "string"},
			"fee": object{"type": "string"}, "tx": object{"type": "string", "description": "The signed transaction in hex (empty for payfrom)."}}),
		"GigaWalletPayment": shape(object{
			"payment_id": object{"type": "string"}, "account_id": object{"type": "string"}, "foreign_id": object{"type": "string"},
			"pay_to": arrayOf(object{"type": "object"}), "total": object{"type": "string", "description": "Paid, without the fee."},
			"txid": object{"type": "string"}, "fee": object{"type": "string"},
			"status": enum("reserved", "sent", "on_chain", "confirmed", "released"), "kind": enum("pay", "paytx", "payfrom"),
			"invoice_id": object{"type": "string"}, "height": object{"type": "integer"}, "reason": object{"type": "string"},
			"created": object{"type": "string", "format": "date-time"}, "cursor": object{"type": "integer"}}),
		"GigaWalletPaymentList": shape(object{"items": arrayOf(schemaRef("GigaWalletPayment")), "cursor": object{"type": "integer"}}),
		"GigaWalletSyncHeight": shape(object{
			"height": object{"type": "integer", "description": "The height every shard's chain cursor went back to."},
			"shards": object{"type": "integer", "description": "How many shards were rewound."}}),
		"Transaction": shape(object{
			"id": generatedID, "projectId": simpleIDSchema(fsm.IDMaxLength), "referenceId": text(fsm.ReferenceIDMaxLength, ""),
			"status":               enum("completed", "failed", "pending"),
			"operations":           arrayOf(schemaRef("Operation")),
			"failedOperationIndex": object{"type": "integer", "description": "Index of the operation that failed; -1 when completed."},
			"failureReason":        object{"type": "string", "description": "Error code of the failure."},
			"failureMessage":       object{"type": "string"},
			"createdAt":            timestamp(),
		}),
		"Entry": shape(object{
			"walletId": generatedID, "transactionId": generatedID, "operationIndex": object{"type": "integer"},
			"type": enum("issue", "redeem", "debit", "credit"), "amount": amount, "balanceAfter": amount,
			"createdAt": timestamp(),
		}),
		"ProjectList": itemsOf("Project"),
		"Event": object{"type": "object", "required": []string{"event_type", "message", "event_id", "shard", "sequence", "created_at"},
			"properties": object{
				"event_type": object{"type": "string", "description": "e.g. LEDGER_TX_COMPLETED; its category is the prefix before the first '_'."},
				"message": object{"description": "The subject in its product's JSON: Transaction, Wallet or Hold (LEDGER_*), " +
					"GigaWalletAccount (ACC_*), GigaWalletInvoice (INV_*), GigPayToken (GIGPAY_TOKEN_*), GigPayPayment (GIGPAY_PAYMENT_*); null for an event this node cannot render.",
					"oneOf": []object{schemaRef("Transaction"), schemaRef("Wallet"), schemaRef("Hold"),
						schemaRef("GigaWalletAccount"), schemaRef("GigaWalletInvoice"), schemaRef("GigPayToken"), schemaRef("GigPayPayment")}, "nullable": true},
				"event_id": object{"type": "string", "pattern": "^s[0-9]{3}-[0-9]{20}$",
					"description": "Stable: shard and outbox sequence, zero-padded so that IDs sort by (shard, sequence)."},
				"shard":      object{"type": "integer", "minimum": 0},
				"sequence":   object{"type": "integer", "minimum": 1, "description": "The shard's outbox sequence; contiguous per shard."},
				"created_at": object{"type": "string", "format": "date-time", "description": "RFC 3339 UTC with milliseconds: the time of the batch that emitted it."}}},
		"SubscriptionRequest": closed([]string{"name", "url", "types"}, object{
			"name":   object{"type": "string", "maxLength": fsm.SubscriberMaxLength},
			"kind":   enum("webhook"),
			"url":    object{"type": "string", "maxLength": relay.URLMaxLength, "description": "http(s); not one of the node's own listeners."},
			"secret": object{"type": "string", "maxLength": relay.SecretMaxBytes, "description": "Signs each POST: X-Giga-Signature: sha256=hex(HMAC-SHA256(secret, X-Giga-Timestamp + \".\" + body))."},
			"types":  arrayOf(object{"type": "string", "description": "A category (" + strings.Join(eventCategories, ", ") + ") or an exact event type."}),
			"from":   enum("now", "oldest")}),
		"Subscription": shape(object{
			"name": object{"type": "string"}, "kind": enum("webhook"), "url": object{"type": "string"},
			"types": arrayOf(object{"type": "string"}), "secretSet": object{"type": "boolean"}, "createdAt": timestamp()}),
		"SubscriptionList": itemsOf("Subscription"),
		"DeadLetter": shape(object{
			"subscriber": object{"type": "string"}, "eventId": object{"type": "string"}, "shard": object{"type": "integer"},
			"sequence": object{"type": "integer"}, "eventType": object{"type": "string"},
			"reason": object{"type": "string", "description": "The last attempt's error."}, "createdAt": timestamp()}),
		"DeadLetterList": itemsOf("DeadLetter"),
		"RedriveAnswer": shape(object{"subscriber": object{"type": "string"},
			"marked": object{"type": "integer", "description": "Dead letters marked for delivery (those marked before included)."}}),
		"EventPage": object{"type": "object", "required": []string{"items", "cursor", "more"}, "properties": object{
			"items":  arrayOf(schemaRef("Event")),
			"cursor": object{"type": "string", "description": "Pass as after= to continue; also when items is empty."},
			"more":   object{"type": "boolean", "description": "Some shard holds events past the cursor: ask again without waiting."},
			"gaps": arrayOf(object{"type": "object", "description": "Events retention dropped before this reader got them.",
				"properties": object{"shard": object{"type": "integer"}, "from": object{"type": "integer"}, "to": object{"type": "integer"}}})}},
		"ClusterStatus": object{"type": "object", "additionalProperties": true,
			"description": "node, shards (id, replicas, leader, state, applied and commit index) and health"},
		"ReplaceNodeRequest": closed([]string{"oldNodeId", "newNodeId", "newRaftAddr"}, object{
			"oldNodeId":   object{"type": "string"},
			"newNodeId":   object{"type": "string"},
			"newRaftAddr": object{"type": "string", "description": "host:port the new node's peers dial"}}),
		"ReplaceNodeResult": shape(object{"status": object{"type": "string"}, "oldNodeId": object{"type": "string"}, "newNodeId": object{"type": "string"}}),
		"MoveReplicaRequest": closed([]string{"shard", "fromNodeId", "toNodeId"}, object{
			"shard":      object{"type": "integer", "minimum": 0},
			"fromNodeId": object{"type": "string", "description": "a node holding a replica of the shard"},
			"toNodeId":   object{"type": "string", "description": "a running member (started with --join) without one"}}),
		"MoveReplicaResult": shape(object{
			"status": object{"type": "string", "description": "moved, or already moved (an earlier run finished it)"},
			"shard":  object{"type": "integer"}, "fromNodeId": object{"type": "string"}, "toNodeId": object{"type": "string"},
			"moved":         object{"type": "boolean"},
			"caughtUpIndex": object{"type": "integer", "description": "the leader's commit index when the new replica had caught up"},
			"catchUpMs":     object{"type": "integer", "description": "how long the new replica took to catch up as a non-voter"}}),
		"BalanceLeadersResult": shape(object{
			"transfers": arrayOf(shape(object{"shard": object{"type": "integer"}, "fromNodeId": object{"type": "string"}, "toNodeId": object{"type": "string"}})),
			"leads":     object{"type": "object", "additionalProperties": object{"type": "integer"}, "description": "shards each live node leads at the end"},
			"balanced":  object{"type": "boolean", "description": "the most and fewest shards led differ by at most one, or no transfer can narrow it"}}),
		"BalanceReplicasResult": shape(object{
			"moves": arrayOf(shape(object{"shard": object{"type": "integer"}, "fromNodeId": object{"type": "string"}, "toNodeId": object{"type": "string"},
				"moved": object{"type": "boolean"}, "caughtUpIndex": object{"type": "integer"}, "catchUpMs": object{"type": "integer"},
				"entries": object{"type": "integer", "description": "log entries the new replica applied while catching up"}})),
			"replicas": object{"type": "object", "additionalProperties": object{"type": "integer"}, "description": "shard replicas each live node holds at the end"},
			"balanced": object{"type": "boolean", "description": "the most and fewest replicas held differ by at most one, or no move can narrow it"}}),
		"StateDigest": closed([]string{"digest", "appliedIndex"}, object{
			"digest":       object{"type": "string", "description": "hex SHA-256 of the ledger state"},
			"appliedIndex": object{"type": "integer", "minimum": 0},
			"shards": arrayOf(closed([]string{"shard", "digest", "appliedIndex"}, object{
				"shard":        object{"type": "integer", "minimum": 0},
				"digest":       object{"type": "string", "description": "hex SHA-256 of this shard's ledger state"},
				"appliedIndex": object{"type": "integer", "minimum": 0},
				"historyChainIndex": object{"type": "integer", "minimum": 0,
					"description": "log index of the shard's newest history chain record (absent before the chain starts); replicas agree on the hash at every index"},
				"historyChainHead": object{"type": "string", "description": "hex SHA-256 of that record: write it down to detect a rewritten history later (gigaledger verify)"},
				"rulesVersion": object{"type": "integer", "minimum": 0,
					"description": "the shard's rules version: the leader raises it to the binaries' once every replica runs one that implements it (a rolling upgrade switches changed rules on then)"}}))}),
		"AssetList":       itemsOf("Asset"),
		"WalletList":      itemsOf("Wallet"),
		"CustomerPage":    pageOf("Customer"),
		"EntryPage":       pageOf("Entry"),
		"TransactionPage": pageOf("Transaction"),

		"CreateProjectRequest": closed([]string{"name"}, object{
			"id": simpleIDSchema(fsm.IDMaxLength), "name": text(fsm.NameMaxLength, "Required, not empty.")}),
		"NameRequest":        closed([]string{"name"}, object{"name": text(fsm.NameMaxLength, "Required, not empty.")}),
		"DescriptionRequest": closed([]string{"description"}, object{"description": text(fsm.DescriptionMaxLength, "Empty clears it.")}),
		"CreateAssetRequest": closed([]string{"name", "code", "fractions"}, object{
			"id": simpleIDSchema(fsm.IDMaxLength), "name": text(fsm.NameMaxLength, ""), "code": text(fsm.CodeMaxLength, ""),
			"fractions": object{"type": "integer", "minimum": 1}}),
		"CustomerRequest": closed([]string{"id"}, object{
			"id": pathParamSchema("customerId"), "name": text(fsm.NameMaxLength, ""), "description": text(fsm.DescriptionMaxLength, "")}),
		"CustomerUpdateRequest": closed(nil, object{
			"id":   object{"type": "string", "description": "Optional; must equal the path's customerId."},
			"name": text(fsm.NameMaxLength, "Left as it is when omitted."), "description": text(fsm.DescriptionMaxLength, "Left as it is when omitted.")}),
		"EmptyRequest":          closed(nil, object{}),
		"ResumeCustomerRequest": closed(nil, object{"walletIds": object{"type": "array", "maxItems": resumeWalletIDsMaxCount, "items": generatedID}}),
		"CreateWalletRequest": closed([]string{"customerId", "assetId"}, object{
			"customerId": pathParamSchema("customerId"), "assetId": simpleIDSchema(fsm.IDMaxLength),
			"name": text(fsm.NameMaxLength, ""), "description": text(fsm.DescriptionMaxLength, "")}),
		"CreateSystemWalletRequest": closed([]string{"assetId"}, object{
			"assetId": simpleIDSchema(fsm.IDMaxLength), "name": text(fsm.NameMaxLength, ""), "description": text(fsm.DescriptionMaxLength, "")}),
		"WalletStatusRequest": closed([]string{"status"}, object{"status": enum("open", "suspended", "closed")}),
		"TransactionRequest": closed([]string{"referenceId", "operations"}, object{
			"referenceId": object{"type": "string", "minLength": 1, "maxLength": fsm.ReferenceIDMaxLength,
				"description": "Unique per project; a retry with the same referenceId never applies twice."},
			"operations": object{"type": "array", "minItems": 1, "maxItems": operationsPerTransactionMaxCount,
				"items": schemaRef("OperationRequest")}}),
		"TransactionBatchRequest": closed([]string{"transactions"}, object{
			"transactions": object{"type": "array", "minItems": 1, "maxItems": transactionsPerBatchMaxCount,
				"items": schemaRef("TransactionRequest")}}),
		"TransactionBatchResult": shape(object{"results": arrayOf(shape(object{
			"status":      object{"type": "integer", "description": "The HTTP status the single route would have answered for this transaction."},
			"error":       shape(object{"code": object{"type": "string"}, "message": object{"type": "string"}}),
			"transaction": schemaRef("Transaction")}))}),
		"OperationRequest": closed([]string{"type", "amount"}, object{
			"type":   enum("transfer", "issue", "redeem", "hold"),
			"from":   object{"allOf": []object{generatedID}, "description": "Transfer, redeem and hold only."},
			"to":     object{"allOf": []object{generatedID}, "description": "Transfer and issue only."},
			"amount": schemaRef("AmountInput"),
			"expiresAt": object{"type": "integer", "minimum": 1,
				"description": "Hold only, optional: Unix milliseconds after which the hold is released (on the shard's batch time)."}}),
		"GigPayAccountRequest": closed([]string{"userIdentityId", "assetType"}, object{
			"userIdentityId": pathParamSchema("customerId"), "assetType": simpleIDSchema(fsm.IDMaxLength)}),
		"GigPayAccount": shape(object{
			"id": generatedID, "businessAccountId": object{"type": "string", "description": "The GigPay project."},
			"userIdentityId": object{"type": "string"}, "assetType": object{"type": "string"},
			"balance": gigPayAmount, "available": gigPayAmount, "held": gigPayAmount,
			"status": enum("open", "suspended", "closed"), "createdAtUtc": utcTime}),
		"GigPayTokenRequest": gigPayTokenRequest,
		"GigPayTokenBatchRequest": closed([]string{"items"}, object{
			"items": object{"type": "array", "minItems": 1, "maxItems": gigpay.BatchMaxItems, "items": gigPayTokenRequest}}),
		"GigPayTokenBatchAnswer": shape(object{"data": arrayOf(shape(object{
			"index":  object{"type": "integer"},
			"result": enum(gp.ResultCreated, gp.ResultReplayed, gp.ResultFailed),
			"token":  schemaRef("GigPayToken"),
			"error":  shape(object{"code": object{"type": "string"}, "message": object{"type": "string"}})}))}),
		"GigPayToken": shape(object{
			"id": generatedID, "token": object{"type": "string", "description": "The bearer string: g + 4 hex digits of slot + 22 base64url characters (132 random bits)."},
			"status":    enum("Active", "Succeeded", "Rejected", "Expired", "Closed"),
			"link":      object{"type": "string", "description": "https://wallet.{env}.gigpay.com/payment/{token}; https://wallet.gigpay.com/payment/{token} in production."},
			"assetType": object{"type": "string"}, "sourceAccountId": generatedID, "amount": gigPayAmount,
			"expiresAtUtc": utcTime, "memo": object{"type": "string"}, "clientReference": object{"type": "string"},
			"createdAtUtc": utcTime, "modifiedAtUtc": utcTime, "destinationAccountId": generatedID,
			"paymentId": generatedID, "reason": object{"type": "string"}}),
		"GigPayClaimRequest": closed([]string{"destinationAccountId"}, object{"destinationAccountId": generatedID}),
		"GigPayCloseRequest": closed(nil, object{"reason": text(gigpay.ReasonMaxLength, "Why the payment failed downstream.")}),
		"GigPayPaymentRequest": closed([]string{"type", "accountId", "assetType", "amount"}, object{
			"type": enum("deposit", "withdrawal"), "accountId": generatedID, "assetType": simpleIDSchema(fsm.IDMaxLength),
			"amount": gigPayAmountInput, "externalStorage": text(gigpay.ExternalStorageMaxLength, "The outside account: a deposit's source, a withdrawal's destination."),
			"clientReference": text(gigpay.ClientReferenceMaxLength, "Per account: a retry with the same reference and fields answers the same payment; other fields are 409 ClientReferenceMismatch.")}),
		"GigPayPaymentStatusRequest": closed([]string{"status"}, object{
			"status": enum("processing", "completed", "canceled", "failed"), "reason": text(gigpay.ReasonMaxLength, "")}),
		"GigPayParty": shape(object{"id": object{"type": "string", "description": "The account; empty for the outside party."},
			"businessAccountId": object{"type": "string"}, "userIdentityId": object{"type": "string"}, "externalStorage": object{"type": "string"}}),
		"GigPayPayment": shape(object{
			"paymentId": generatedID, "amount": gigPayAmount, "assetType": object{"type": "string"},
			"status": enum("pending", "processing", "completed", "canceled", "failed"), "type": enum("deposit", "transfer", "withdrawal"),
			"createdAtUtc": utcTime, "modifiedAtUtc": utcTime, "source": schemaRef("GigPayParty"), "destination": schemaRef("GigPayParty"),
			"paymentTokenId": object{"type": "string"}, "clientReference": object{"type": "string"}, "reason": object{"type": "string"}}),
		"GigPayPaymentList": object{"type": "object", "required": []string{"data", "hasMore"}, "properties": object{
			"data":       arrayOf(schemaRef("GigPayPayment")),
			"hasMore":    object{"type": "boolean", "description": "More may follow: ask again with nextCursor. A page may hold fewer than limit items (even none) while hasMore is true."},
			"nextCursor": object{"type": "string", "description": "Opaque; only with hasMore."}}},
		"CaptureRequest": closed([]string{"to"}, object{
			"to":          object{"allOf": []object{generatedID}, "description": "The wallet paid; same asset and shard as the hold's wallet."},
			"amount":      object{"allOf": []object{schemaRef("AmountInput")}, "description": "Optional; the whole hold when omitted."},
			"referenceId": object{"type": "string", "minLength": 1, "maxLength": fsm.ReferenceIDMaxLength, "description": "Optional; the capture transaction's own ID when omitted."}}),
	}
}

// gigaWalletInvoiceProperties are the keys of GigaWallet's invoice shapes: the public one, or
// the admin one with the account and the amounts received.
func gigaWalletInvoiceProperties(admin bool) object {
	properties := object{
		"id":                          object{"type": "string", "description": "The invoice's pay-to address m/44'/3'/N'/0/i."},
		"items":                       arrayOf(schemaRef("GigaWalletInvoiceItem")),
		"created":                     object{"type": "string", "format": "date-time"},
		"total":                       object{"type": "string", "description": "DOGE, decimal string: Σ quantity × value."},
		"pay_to_address":              object{"type": "string"},
		"required_confirmations":      object{"type": "integer"},
		"part_payment_detected":       object{"type": "boolean"},
		"total_payment_detected":      object{"type": "boolean"},
		"total_payment_confirmed":     object{"type": "boolean"},
		"payment_unconfirmed":         object{"type": "boolean"},
		"estimate_seconds_to_confirm": object{"type": "integer"},
		"status":                      enum("unpaid", "expired"),
		"expires_at":                  object{"type": []string{"string", "null"}, "format": "date-time", "description": "Null: never expires."},
	}
	if admin {
		properties["account"] = object{"type": "string", "description": "The account's id."}
		properties["total_incoming"] = object{"type": "string", "description": "DOGE seen on chain, decimal string."}
		properties["total_confirmed"] = object{"type": "string", "description": "DOGE confirmed, decimal string."}
	}
	return properties
}
