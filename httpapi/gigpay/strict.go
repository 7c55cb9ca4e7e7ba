package gigpay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
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
	trimmed := bytes.Trim(data, jsonWhiteSpace)
	if len(trimmed) == 0 {
		if optional {
			return nil
		}
		return newError(CodeInvalidJSON, "the request body is empty; a JSON object is required")
	}
	if trimmed[0] != '{' {
		return newError(CodeInvalidJSON, "the request body must be a JSON object")
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
		return newError(CodeInvalidJSON, "the request body must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return newError(CodeInvalidJSON, "malformed JSON: unexpected end of body")
	case errors.As(err, &syntax):
		return newError(CodeInvalidJSON, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &wrongType):
		if wrongType.Field == "" {
			return newError(CodeInvalidJSON, "the request body must be a JSON object")
		}
		return invalid("%s must be %s", wrongType.Field, jsonTypeName(wrongType.Type))
	}
	return newError(CodeInvalidJSON, "malformed JSON")
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a JSON integer"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "of another JSON type"
}

// strictRules are GigPay's: value types are checked in the walk, so a type error names the
// item.
var strictRules = jsonstrict.Rules{DepthMax: jsonDepthMax, ItemsMax: arrayItemsMax, Shapes: true, Noun: "key", TypeName: jsonTypeName}

// checkStrictJSON checks data against jsonstrict's rules for decoding into target.
func checkStrictJSON(data []byte, target reflect.Type) *Error {
	p := jsonstrict.Check(data, target, strictRules)
	switch {
	case p == nil:
		return nil
	case p.Err != nil:
		return jsonError(p.Err)
	case p.Kind == jsonstrict.Schema || p.Kind == jsonstrict.TooManyItems:
		return invalid("%s", p.Message)
	}
	return newError(CodeInvalidJSON, "%s", p.Message)
}
