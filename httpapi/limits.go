package httpapi

import "github.com/gigaledger/gigaledger/fsm"

// Limits of the Cloud Wallet API (docs/cloudwallet-api.md, "Limits"). Lengths of IDs, names,
// codes, descriptions and reference IDs are the fsm's (fsm/limits.go), counted in bytes of
// UTF-8: this package checks them first so that a bad request never reaches the log, and names
// the field that broke them.
const (
	// requestBodyMaxBytes bounds every request body; more is 413 RequestTooLarge.
	requestBodyMaxBytes = 1 << 20
	// operationsPerTransactionMaxCount bounds a transaction's operations; 0 or more is 400
	// LimitExceeded.
	operationsPerTransactionMaxCount = fsm.OperationsMaxCount
	// transactionsPerBatchMaxCount bounds the transactions of one batch (POST
	// /projects/{projectId}/transactions/batch); more is 400 LimitExceeded. With the body limit
	// it keeps a batch's proposals within the shard's command limit: each shard's group is
	// encoded smaller than its JSON (cluster/routing/batch.go). TigerBeetle takes 8,189 per
	// request; 1,000 transfers already fill about an eighth of the 1 MiB body and amortise a
	// consensus round over 1,000 transactions.
	transactionsPerBatchMaxCount = 1000
	// resumeWalletIDsMaxCount bounds the walletIds of a resume request.
	resumeWalletIDsMaxCount = fsm.ResumeWalletIDsMaxCount
	// pageSizeMaxCount and pageSizeDefaultCount bound and default the pageSize query parameter.
	pageSizeMaxCount     = 1000
	pageSizeDefaultCount = 20
	// pageNumberMax bounds the page query parameter (the published API types it int32).
	pageNumberMax = 1<<31 - 1
	// amountMaxDigits is the number of decimal digits of the largest amount, 2^128−1.
	amountMaxDigits = 39
)
