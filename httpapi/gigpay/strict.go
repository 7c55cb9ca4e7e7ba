package gigpay

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// Strict decoding: jsonstrict's walk (shared with the Cloud Wallet and GigaWallet APIs) with
// GigPay's error envelope: valid UTF-8 without unpaired surrogate escapes, no key twice, every key
// one of the documented names spelled exactly (case-sensitive), bounded nesting and arrays,
// one JSON object and nothing after it.

const (
	// RequestBodyMaxBytes bounds every request body (the listener's own limit is the same).
	RequestBodyMaxBytes = 1 << 20
	// jsonDepthMax bounds nesting; the deepest body (a batch: object, items, item, value) has 3.
	jsonDepthMax = 8
	// arrayItemsMax bounds any array of a body: a batch's items.
	arrayItemsMax = fsmgigpay.BatchMaxItems
)

const jsonWhiteSpace = " \t\r\n"

// decodeBody decodes the one JSON object of body into dst (a pointer to a request struct). An
// empty body is {} when optional, else refused.
func decodeBody(body io.Reader, dst any, optional bool) *Error {
	var data []byte
	if body != nil {
		var err error
		data, err = io.ReadAll(io.LimitReader(body, RequestBodyMaxBytes+1))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeRequestTooLarge,
					Message: "request body exceeds " + strconv.Itoa(RequestBodyMaxBytes) + " bytes"}
			}
			return newError(CodeInvalidJSON, "reading the request body: %v", err)
		}
	}
	return decodeBytes(data, dst, optional)
}

func decodeBytes(data []byte, dst any, optional bool) *Error {
	if len(data) > RequestBodyMaxBytes {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeRequestTooLarge,
			Message: "request body exceeds " + strconv.Itoa(RequestBodyMaxBytes) + " bytes"}
	}
	p := jsonstrict.Decode(data, dst, strictRules)
	switch {
	case p == nil:
		return nil
	case p.Kind == jsonstrict.Empty && optional:
		return nil
	case p.Kind == jsonstrict.Empty:
		return newError(CodeInvalidJSON, "the request body is empty; a JSON object is required")
	case p.Kind == jsonstrict.Schema || p.Kind == jsonstrict.TooManyItems:
		return invalid("%s", p.Message)
	}
	return newError(CodeInvalidJSON, "%s", p.Message)
}

// strictRules are GigPay's: value types are checked in the walk, so a type error names the
// item.
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: arrayItemsMax, Shapes: true, Noun: "key", TypeName: jsonstrict.TypeName}
