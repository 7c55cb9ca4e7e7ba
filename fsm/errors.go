package fsm

import "fmt"

// ErrorCode names a business rejection. The codes are part of the API contract
// (docs/cloudwallet-api.md): add new ones, never rename.
type ErrorCode string

// Business rejections computed identically by every replica.
const (
	CodeInvalidArgument         ErrorCode = "InvalidArgument"
	CodeProjectNotFound         ErrorCode = "ProjectNotFound"
	CodeAssetNotFound           ErrorCode = "AssetNotFound"
	CodeCustomerNotFound        ErrorCode = "CustomerNotFound"
	CodeWalletNotFound          ErrorCode = "WalletNotFound"
	CodeTransactionNotFound     ErrorCode = "TransactionNotFound"
	CodeProjectExists           ErrorCode = "ProjectExists"
	CodeAssetExists             ErrorCode = "AssetExists"
	CodeWalletExists            ErrorCode = "WalletExists"
	CodeAssetInUse              ErrorCode = "AssetInUse"
	CodeDuplicateReferenceID    ErrorCode = "DuplicateReferenceId"
	CodeReferenceIDMismatch     ErrorCode = "ReferenceIdMismatch"
	CodeInsufficientFunds       ErrorCode = "InsufficientFunds"
	CodeWalletSuspended         ErrorCode = "WalletSuspended"
	CodeWalletClosed            ErrorCode = "WalletClosed"
	CodeCustomerSuspended       ErrorCode = "CustomerSuspended"
	CodeAssetMismatch           ErrorCode = "AssetMismatch"
	CodeBalanceOverflow         ErrorCode = "BalanceOverflow"
	CodeWalletNotEmpty          ErrorCode = "WalletNotEmpty"
	CodeInvalidStatusTransition ErrorCode = "InvalidStatusTransition"
	CodeCustomerHasOpenWallets  ErrorCode = "CustomerHasOpenWallets"
	// CodeCrossShardTransaction is the router's: the transaction's wallets live in different
	// shards, which no single shard can apply atomically (yet). Nothing was proposed.
	CodeCrossShardTransaction ErrorCode = "CrossShardTransaction"
)

// Error is a business rejection: a result, not a failure of the replica.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func rejectf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
