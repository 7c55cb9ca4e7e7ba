package gigawallet

import (
	"bytes"
	"encoding/json"
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

// decodeBody decodes the one JSON object of body into dst (a pointer to a request struct),
// refusing an empty body as GigaWallet does ("POST /account/x" needs at least `{}`), a body over
// RequestBodyMaxBytes, and anything checkStrictJSON refuses.
func decodeBody(body io.Reader, dst any) *Error {
	data, err := io.ReadAll(io.LimitReader(body, RequestBodyMaxBytes+1))
	if err != nil {
		return badRequest("reading the request body: %v", err)
	}
	if len(data) > RequestBodyMaxBytes {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBadRequest,
			Message: "request body exceeds " + strconv.Itoa(RequestBodyMaxBytes) + " bytes"}
	}
	trimmed := bytes.Trim(data, jsonWhiteSpace)
	if len(trimmed) == 0 {
		return badRequest("bad request body (expecting JSON): the body is empty; send {} for an empty request")
	}
	if trimmed[0] != '{' {
		// encoding/json would take null as "nothing to set".
		return badRequest("bad request body (expecting JSON): the body must be a JSON object")
	}
	if apiErr := checkStrictJSON(data, reflect.TypeOf(dst)); apiErr != nil {
		return apiErr
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return badRequest("bad request body (expecting JSON): the body must hold exactly one JSON object")
	}
	return nil
}

// jsonWhiteSpace is what JSON (RFC 8259) counts as white space between tokens.
const jsonWhiteSpace = " \t\r\n"

// jsonError turns a decoding error into a 400 without echoing internals.
func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("bad request body (expecting JSON): unexpected end of body")
	case errors.As(err, &syntax):
		return badRequest("bad request body (expecting JSON): malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &wrongType):
		if wrongType.Field == "" {
			return badRequest("bad request body (expecting JSON): the body must be a JSON object")
		}
		return badRequest("%s must be %s", wrongType.Field, jsonTypeName(wrongType.Type))
	}
	return badRequest("bad request body (expecting JSON): malformed JSON")
}

// jsonTypeName names the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a JSON integer (not a string or a fraction)"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "of another JSON type"
}

// strictRules are GigaWallet's: value types are checked in the walk, so a type error names
// the item.
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: InvoiceItemsMaxCount, Shapes: true, Noun: "key", TypeName: jsonTypeName}

// checkStrictJSON checks data against jsonstrict's rules for decoding into target.
func checkStrictJSON(data []byte, target reflect.Type) *Error {
	p := jsonstrict.Check(data, target, strictRules)
	switch {
	case p == nil:
		return nil
	case p.Err != nil:
		return jsonError(p.Err)
	case p.Kind == jsonstrict.Schema || p.Kind == jsonstrict.Duplicate || p.Kind == jsonstrict.TooManyItems:
		return badRequest("%s", p.Message)
	}
	return badRequest("bad request body (expecting JSON): %s", p.Message)
}
