package ledger

import "github.com/gigaledger/gigaledger/fsm"

// Business rejections of the accounting core, computed identically by every replica. The codes
// are part of the Cloud Wallet API's contract (docs/cloudwallet-api.md): add new ones, never
// rename.
const (
	CodeInvalidArgument                       = fsm.CodeInvalidArgument
	CodeProjectNotFound         fsm.ErrorCode = "ProjectNotFound"
	CodeAssetNotFound           fsm.ErrorCode = "AssetNotFound"
	CodeCustomerNotFound        fsm.ErrorCode = "CustomerNotFound"
	CodeWalletNotFound          fsm.ErrorCode = "WalletNotFound"
	CodeTransactionNotFound     fsm.ErrorCode = "TransactionNotFound"
	CodeProjectExists           fsm.ErrorCode = "ProjectExists"
	CodeAssetExists             fsm.ErrorCode = "AssetExists"
	CodeWalletExists            fsm.ErrorCode = "WalletExists"
	CodeAssetInUse              fsm.ErrorCode = "AssetInUse"
	CodeDuplicateReferenceID    fsm.ErrorCode = "DuplicateReferenceId"
	CodeReferenceIDMismatch     fsm.ErrorCode = "ReferenceIdMismatch"
	CodeInsufficientFunds       fsm.ErrorCode = "InsufficientFunds"
	CodeWalletSuspended         fsm.ErrorCode = "WalletSuspended"
	CodeWalletClosed            fsm.ErrorCode = "WalletClosed"
	CodeCustomerSuspended       fsm.ErrorCode = "CustomerSuspended"
	CodeAssetMismatch           fsm.ErrorCode = "AssetMismatch"
	CodeBalanceOverflow         fsm.ErrorCode = "BalanceOverflow"
	CodeWalletNotEmpty          fsm.ErrorCode = "WalletNotEmpty"
	CodeInvalidStatusTransition fsm.ErrorCode = "InvalidStatusTransition"
	CodeCustomerHasOpenWallets  fsm.ErrorCode = "CustomerHasOpenWallets"
	// CodeCrossShardTransaction is the router's: the transaction's wallets live in different
	// shards, which no single shard can apply atomically (yet). Nothing was proposed.
	CodeCrossShardTransaction fsm.ErrorCode = "CrossShardTransaction"
	// Holds.
	CodeHoldNotFound fsm.ErrorCode = "HoldNotFound"
	CodeHoldExists   fsm.ErrorCode = "HoldExists"
	CodeHoldResolved fsm.ErrorCode = "HoldResolved"
	// Cross-shard transactions: a prepare that arrives after its participant finished (or
	// recorded a tombstone); a transaction failed because a participant did not vote in time.
	CodeCrossShardFinished     fsm.ErrorCode = "CrossShardTransactionFinished"
	CodeParticipantUnavailable fsm.ErrorCode = "ParticipantUnavailable"
	// CodeCrossShardHold: a hold placed by a cross-shard prepare is resolved by its
	// transaction's decision only.
	CodeCrossShardHold fsm.ErrorCode = "CrossShardHold"
)

func rejectf(code fsm.ErrorCode, format string, args ...any) *fsm.Error {
	return fsm.Rejectf(code, format, args...)
}

func fail(err *fsm.Error) *fsm.Result { return fsm.Fail(err) }

func invalid(format string, args ...any) *fsm.Result { return fsm.Invalid(format, args...) }
