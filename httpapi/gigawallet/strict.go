package gigawallet

import (
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"

	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// Strict decoding: jsonstrict's walk (shared with the Cloud Wallet and GigPay APIs) with
// GigaWallet's error envelope. GigaWallet decodes
// with plain encoding/json: the last of two equal keys wins, keys match case-insensitively,
// unknown keys are ignored and invalid UTF-8 becomes U+FFFD. No real client depends on any of
// that: the WooCommerce plugin (contract §11) sends exactly the documented keys in lower case,
// and GigaWallet's own test sends "confirmations", which it silently ignores, so the invoice
// got the default confirmations instead of the ones meant. Here a body must mean exactly what
// it says: valid UTF-8 without unpaired surrogate escapes, no key twice, every key one of the
// documented names spelled exactly, bounded nesting and arrays, one JSON object and nothing
// after it. What clients do depend on is kept: amounts as strings or numbers, null where
// GigaWallet reads null (as the empty value), and `{}` as an empty request.

// jsonDepthMax bounds the nesting of a request body; the deepest documented body (an invoice:
// object, items array, item object, value) has depth 3.
const jsonDepthMax = 8

// decodeBody decodes the one JSON object of body into dst (a pointer to a request struct) with
// jsonstrict.Decode, refusing an empty body as GigaWallet does ("POST /account/x" needs at
// least `{}`; encoding/json would take null as "nothing to set") and a body over
// RequestBodyMaxBytes.
func decodeBody(body io.Reader, dst any) *Error {
	data, err := io.ReadAll(io.LimitReader(body, RequestBodyMaxBytes+1))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// The listener's own bound (a body sent without Content-Length): 413 as below.
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBadRequest,
			Message: "request body exceeds " + strconv.FormatInt(tooLarge.Limit, 10) + " bytes"}
	}
	if err != nil {
		return badRequest("reading the request body: %v", err)
	}
	if len(data) > RequestBodyMaxBytes {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBadRequest,
			Message: "request body exceeds " + strconv.Itoa(RequestBodyMaxBytes) + " bytes"}
	}
	p := jsonstrict.Decode(data, dst, strictRules)
	switch {
	case p == nil:
		return nil
	case p.Kind == jsonstrict.Empty:
		return badRequest("bad request body (expecting JSON): the body is empty; send {} for an empty request")
	case p.Kind == jsonstrict.Schema || p.Kind == jsonstrict.Duplicate || p.Kind == jsonstrict.TooManyItems:
		return badRequest("%s", p.Message)
	}
	return badRequest("bad request body (expecting JSON): %s", p.Message)
}

// jsonTypeName names the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	if t.Kind() == reflect.Int64 {
		return "a JSON integer (not a string or a fraction)"
	}
	return jsonstrict.TypeName(t)
}

// strictRules are GigaWallet's: value types are checked in the walk, so a type error names
// the item.
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: InvoiceItemsMaxCount, Shapes: true, Noun: "key", TypeName: jsonTypeName}
