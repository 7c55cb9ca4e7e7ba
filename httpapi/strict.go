package httpapi

import (
	"fmt"
	"math"
	"reflect"

	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// Strict JSON (jsonstrict.Check says what it refuses and why): a request means exactly what it
// says, whatever encoding/json would let through.

// jsonDepthMax bounds the nesting of a request body (objects and arrays). The deepest documented
// body (a transaction: object, operations array, operation object, amount) has depth 3.
const jsonDepthMax = 16

// jsonArrayMaxCount bounds the items of any array in a request body: the longest documented
// lists (a resume's walletIds, a batch's transactions) hold 1000.
const jsonArrayMaxCount = max(resumeWalletIDsMaxCount, transactionsPerBatchMaxCount)

// strictRules are the Cloud Wallet API's: value types stay encoding/json's (and validation's)
// business, so a type error reads "name must be a JSON string", and for an integer field
// "fractions must be a JSON integer from 0 to 18446744073709551615" (integerTypeName).
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: jsonArrayMaxCount, Noun: "field", TypeName: integerTypeName}

// integerTypeName is jsonstrict.TypeName with an integer's range, so that -1 or a number past
// the field's type says why it is refused.
func integerTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a JSON integer from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("a JSON integer from %d to %d", int64(-1)<<(t.Bits()-1), int64(math.MaxInt64)>>(64-t.Bits()))
	}
	return jsonstrict.TypeName(t)
}
