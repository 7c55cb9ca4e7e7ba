package gigpay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	fsmgigpay "github.com/gigaledger/gigaledger/fsm/gigpay"
	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// Strict decoding, the same walk as the Cloud Wallet and GigaWallet decoders (their helpers are
// unexported there): valid UTF-8 without unpaired surrogate escapes, no key twice, every key
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

func checkStrictJSON(data []byte, target reflect.Type) *Error {
	if !utf8.Valid(data) {
		return newError(CodeInvalidJSON, "the request body must be valid UTF-8")
	}
	if offset, found := jsonstrict.UnpairedSurrogateEscape(data); found {
		return newError(CodeInvalidJSON, "\\u escape of an unpaired UTF-16 surrogate at byte %d", offset)
	}
	walker := strictWalker{decoder: json.NewDecoder(bytes.NewReader(data))}
	walker.decoder.UseNumber()
	return walker.value(target, "", 0)
}

type strictWalker struct{ decoder *json.Decoder }

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
		return newError(CodeInvalidJSON, "nested deeper than %d levels", jsonDepthMax)
	}
	target = jsonstrict.Deref(target)
	if target != nil && target != jsonstrict.RawMessageType {
		isObject, wantObject := delim == '{', target.Kind() == reflect.Struct
		if isObject != wantObject || (!isObject && target.Kind() != reflect.Slice) {
			return invalid("%s must be %s", nameOf(path), jsonTypeName(target))
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
			if i == arrayItemsMax {
				return invalid("%s holds more than %d items", nameOf(path), arrayItemsMax)
			}
			if apiErr := w.value(element, path+"["+strconv.Itoa(i)+"]", depth+1); apiErr != nil {
				return apiErr
			}
		}
		return w.closing()
	}
	return newError(CodeInvalidJSON, "malformed JSON")
}

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
			return newError(CodeInvalidJSON, "object key is not a string")
		}
		where := ""
		if path != "" {
			where = " in " + path
		}
		if seen[key] {
			return newError(CodeInvalidJSON, "duplicate key %s%s", jsonstrict.QuoteKey(key), where)
		}
		seen[key] = true
		var memberType reflect.Type
		if fields != nil {
			fieldType, known := fields[key]
			if !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return invalid("unknown key %s%s (keys are case-sensitive: the key is %q)", jsonstrict.QuoteKey(key), where, name)
					}
				}
				return invalid("unknown key %s%s", jsonstrict.QuoteKey(key), where)
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

// checkScalar checks a scalar against the kind of field it decodes into, so that a type error
// names the field. null is left to the field's own rules (a string field treats it as absent).
func checkScalar(token json.Token, target reflect.Type, path string) *Error {
	if target == nil || token == nil {
		return nil
	}
	switch target.Kind() {
	case reflect.String:
		if _, ok := token.(string); !ok {
			return invalid("%s must be a JSON string", path)
		}
	case reflect.Slice, reflect.Struct:
		if target != jsonstrict.RawMessageType {
			return invalid("%s must be %s", path, jsonTypeName(target))
		}
	}
	return nil
}

func (w *strictWalker) closing() *Error {
	if _, err := w.decoder.Token(); err != nil {
		return jsonError(err)
	}
	return nil
}

func nameOf(path string) string {
	if path == "" {
		return "the request body"
	}
	return path
}
