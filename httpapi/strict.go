package httpapi

import (
	"bytes"
	"encoding/json"
	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Strict JSON: a request means exactly what it says. encoding/json, which does the typed decoding,
// lets the last of two equal keys win, matches keys case-insensitively and replaces invalid UTF-8
// (and unpaired surrogate escapes) with U+FFFD, so {"amount":1,"amount":400} would move 400 and
// two different references could become the same. checkStrictJSON runs before it, over the whole
// body, and refuses all of that:
//
//   - the body must be valid UTF-8, and no \u escape may be an unpaired surrogate;
//   - no object, at any depth, may hold the same key twice;
//   - every key of an object that decodes into a struct must be one of its json names, spelled
//     exactly (a case variant is named as such), recursively through struct fields and slices;
//   - nesting is bounded by jsonDepthMax, and every array by jsonArrayMaxCount items.
//
// Values are not checked here: types, unknown fields and trailing data stay encoding/json's (with
// DisallowUnknownFields) and validation's business.

// jsonDepthMax bounds the nesting of a request body (objects and arrays). The deepest documented
// body (a transaction: object, operations array, operation object, amount) has depth 3.
const jsonDepthMax = 16

// jsonArrayMaxCount bounds the items of any array in a request body: the longest documented
// list (a resume's walletIds) holds 1000. Checked here, before encoding/json builds the Go
// slice: a 1 MiB body of 350,000 empty objects in "operations" took about 100 MB and 0.3 s to
// decode before the handler's own limit (100 operations) refused it.
const jsonArrayMaxCount = resumeWalletIDsMaxCount

// checkStrictJSON checks data, the whole body (already bounded by requestBodyMaxBytes), against
// the rules above for decoding into a value of type target (nil: no schema, only the generic
// rules). It checks the first JSON value only; what follows it is the caller's business.
func checkStrictJSON(data []byte, target reflect.Type) *apiError {
	if !utf8.Valid(data) {
		return badRequest(CodeInvalidJSON, "request body must be valid UTF-8")
	}
	if offset, found := jsonstrict.UnpairedSurrogateEscape(data); found {
		return badRequest(CodeInvalidJSON, "malformed JSON at byte %d: \\u escape of an unpaired UTF-16 surrogate", offset)
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
func (w *strictWalker) value(target reflect.Type, path string, depth int) *apiError {
	token, err := w.decoder.Token()
	if err != nil {
		return jsonError(err)
	}
	delim, ok := token.(json.Delim)
	if !ok {
		return nil // a scalar: its type is encoding/json's business
	}
	if depth >= jsonDepthMax {
		return badRequest(CodeInvalidJSON, "request body nests deeper than %d levels", jsonDepthMax)
	}
	target = jsonstrict.Deref(target)
	switch delim {
	case '{':
		return w.object(target, path, depth)
	case '[':
		var element reflect.Type
		if target != nil && (target.Kind() == reflect.Slice || target.Kind() == reflect.Array) && target != jsonstrict.RawMessageType {
			element = target.Elem()
		}
		for i := 0; w.decoder.More(); i++ {
			if i == jsonArrayMaxCount {
				name := path
				if name == "" {
					name = "the request body"
				}
				return badRequest(CodeLimitExceeded, "%s holds more than %d items", name, jsonArrayMaxCount)
			}
			if apiErr := w.value(element, path+"["+strconv.Itoa(i)+"]", depth+1); apiErr != nil {
				return apiErr
			}
		}
		return w.closing()
	}
	return badRequest(CodeInvalidJSON, "malformed JSON")
}

// object reads the members of an object whose '{' was just read.
func (w *strictWalker) object(target reflect.Type, path string, depth int) *apiError {
	var fields map[string]reflect.Type
	var element reflect.Type
	switch {
	case target == nil:
	case target.Kind() == reflect.Struct:
		fields = jsonstrict.FieldsOf(target)
	case target.Kind() == reflect.Map:
		element = target.Elem()
	}
	seen := make(map[string]bool)
	for w.decoder.More() {
		token, err := w.decoder.Token()
		if err != nil {
			return jsonError(err)
		}
		key, ok := token.(string)
		if !ok {
			return badRequest(CodeInvalidJSON, "malformed JSON: object key is not a string")
		}
		where := ""
		if path != "" {
			where = " in " + path
		}
		if seen[key] {
			return badRequest(CodeInvalidJSON, "duplicate key %s%s", jsonstrict.QuoteKey(key), where)
		}
		seen[key] = true
		memberType := element
		if fields != nil {
			fieldType, known := fields[key]
			if !known {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return badRequest(CodeInvalidJSON, "unknown field %s%s (keys are case-sensitive: the field is %q)", jsonstrict.QuoteKey(key), where, name)
					}
				}
				return badRequest(CodeInvalidJSON, "unknown field %s%s", jsonstrict.QuoteKey(key), where)
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

// closing reads the '}' or ']' that ends the current object or array.
func (w *strictWalker) closing() *apiError {
	if _, err := w.decoder.Token(); err != nil {
		return jsonError(err)
	}
	return nil
}
