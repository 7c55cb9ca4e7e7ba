package httpapi

import "github.com/gigaledger/gigaledger/httpapi/jsonstrict"

// Strict JSON (jsonstrict.Check says what it refuses and why): a request means exactly what it
// says, whatever encoding/json would let through.

// jsonDepthMax bounds the nesting of a request body (objects and arrays). The deepest documented
// body (a transaction: object, operations array, operation object, amount) has depth 3.
const jsonDepthMax = 16

// jsonArrayMaxCount bounds the items of any array in a request body: the longest documented
// lists (a resume's walletIds, a batch's transactions) hold 1000.
const jsonArrayMaxCount = max(resumeWalletIDsMaxCount, transactionsPerBatchMaxCount)

// strictRules are the Cloud Wallet API's: value types stay encoding/json's (and validation's)
// business, so a type error reads "operations.amount must be a JSON integer".
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: jsonArrayMaxCount, Noun: "field", TypeName: jsonstrict.TypeName}
