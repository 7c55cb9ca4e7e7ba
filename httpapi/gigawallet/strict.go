package gigawallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Strict decoding, after the Cloud Wallet API's (httpapi/strict.go, whose helpers are
// unexported there; this is the same walk with GigaWallet's error envelope). GigaWallet decodes
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

// checkStrictJSON checks data against the rules above for decoding into target.
func checkStrictJSON(data []byte, target reflect.Type) *Error {
	if !utf8.Valid(data) {
		return badRequest("bad request body (expecting JSON): the body must be valid UTF-8")
	}
	if offset, found := jsonstrict.UnpairedSurrogateEscape(data); found {
		return badRequest("bad request body (expecting JSON): \\u escape of an unpaired UTF-16 surrogate at byte %d", offset)
	}
	walker := strictWalker{decoder: json.NewDecoder(bytes.NewReader(data))}
	walker.decoder.UseNumber()
	return walker.value(target, "", 0)
}

// strictWalker walks one JSON value token by token.
type strictWalker struct {
	decoder *json.Decoder
}

// value reads the next value, which decodes into target (nil: unknown), found at path.
func (w *strictWalker) value(target reflect.Type, path string, depth int) *Error {
	token, err := w.decoder.Token()
	if err != nil {
		return jsonError(err)
	}
	delim, ok := token.(json.Delim)
	if !ok {
		return checkScalar(token, jsonstrict.Deref(target), path)
	}
	if depth >= jsonDepthMax {
		return badRequest("bad request body (expecting JSON): nested deeper than %d levels", jsonDepthMax)
	}
	target = jsonstrict.Deref(target)
	if target != nil && target != jsonstrict.RawMessageType {
		isObject, wantObject := delim == '{', target.Kind() == reflect.Struct
		if isObject != wantObject || (!isObject && target.Kind() != reflect.Slice) {
			return badRequest("%s must be %s", nameOf(path), jsonTypeName(target))
		}
	}
	switch delim {
	case '{':
		return w.object(target, path, depth)
	case '[':
		var element reflect.Type
		if target != nil && target != jsonstrict.RawMessageType {
			element = target.Elem()
		}
		for i := 0; w.decoder.More(); i++ {
			// Refused before encoding/json builds the slice: 10,000 items are a 400 at the
			// cost of reading them, not of decoding them.
			if i == InvoiceItemsMaxCount {
				return badRequest("%s holds more than %d items", nameOf(path), InvoiceItemsMaxCount)
			}
			if apiErr := w.value(element, path+"["+strconv.Itoa(i)+"]", depth+1); apiErr != nil {
				return apiErr
			}
		}
		return w.closing()
	}
	return badRequest("bad request body (expecting JSON): malformed JSON")
}

// object reads the members of an object whose '{' was just read.
func (w *strictWalker) object(target reflect.Type, path string, depth int) *Error {
	var fields map[string]reflect.Type
	if target != nil && target.Kind() == reflect.Struct {
		fields = jsonstrict.FieldsOf(target)
	}
	seen := make(map[string]bool)
	for w.decoder.More() {
		token, err := w.decoder.Token()
		if err != nil {
			return jsonError(err)
		}
		key, ok := token.(string)
		if !ok {
			return badRequest("bad request body (expecting JSON): object key is not a string")
		}
		where := ""
		if path != "" {
			where = " in " + path
		}
		if seen[key] {
			return badRequest("duplicate key %s%s", jsonstrict.QuoteKey(key), where)
		}
		seen[key] = true
		var memberType reflect.Type
		if fields != nil {
			fieldType, known := fields[key]
			if !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return badRequest("unknown key %s%s (keys are case-sensitive: the key is %q)", jsonstrict.QuoteKey(key), where, name)
					}
				}
				return badRequest("unknown key %s%s", jsonstrict.QuoteKey(key), where)
			}
			memberType = fieldType
		}
		memberPath := key
		if path != "" {
			memberPath = path + "." + key
		}
		if apiErr := w.value(memberType, memberPath, depth+1); apiErr != nil {
			return apiErr
		}
	}
	return w.closing()
}

// checkScalar checks a scalar token against the kind of field it decodes into, so that a type
// error names the item ("items[3].quantity", where encoding/json says "items.quantity"). Only
// the kinds of this package's requests are checked; null is left to the field's own rules.
func checkScalar(token json.Token, target reflect.Type, path string) *Error {
	if target == nil || token == nil {
		return nil
	}
	switch target.Kind() {
	case reflect.String:
		if _, ok := token.(string); !ok {
			return badRequest("%s must be a JSON string", path)
		}
	case reflect.Int64:
		number, ok := token.(json.Number)
		if !ok {
			return badRequest("%s must be a JSON integer (not a string or a fraction)", path)
		}
		if _, err := strconv.ParseInt(string(number), 10, 64); err != nil {
			return badRequest("%s must be a JSON integer (not a string or a fraction) within 64 bits", path)
		}
	case reflect.Slice, reflect.Struct:
		if target != jsonstrict.RawMessageType {
			return badRequest("%s must be %s", path, jsonTypeName(target))
		}
	}
	return nil
}

// closing reads the '}' or ']' that ends the current object or array.
func (w *strictWalker) closing() *Error {
	if _, err := w.decoder.Token(); err != nil {
		return jsonError(err)
	}
	return nil
}

// nameOf names the value at path for a message.
func nameOf(path string) string {
	if path == "" {
		return "the request body"
	}
	return path
}
