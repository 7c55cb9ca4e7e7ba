package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Strict JSON: a request means exactly what it says. encoding/json, which does the typed
// decoding, lets the last of two equal keys win, matches keys case-insensitively and replaces
// invalid UTF-8 (and unpaired surrogate escapes) with U+FFFD, so {"amount":1,"amount":400}
// would move 400 and two different references could become the same. Check runs before it,
// over the whole body, and refuses all of that:
//
//   - the body must be valid UTF-8, and no \u escape may be an unpaired surrogate;
//   - no object, at any depth, may hold the same key twice;
//   - every key of an object that decodes into a struct must be one of its json names, spelled
//     exactly (a case variant is named as such), recursively through struct fields, maps and
//     slices;
//   - nesting is bounded by Rules.DepthMax, and every array by Rules.ItemsMax items (refused
//     before encoding/json builds the slice: a 1 MiB body of 350,000 empty objects took about
//     100 MB and 0.3 s to decode);
//   - with Rules.Shapes, every value's JSON type matches its field's, so that a type error
//     names the exact item ("items[3].quantity", where encoding/json says "items.quantity").
//
// Each API family maps a Problem to its own error envelope and codes.

// Rules are one API family's limits and wording for Check.
type Rules struct {
	// DepthMax bounds the nesting of objects and arrays.
	DepthMax int
	// ItemsMax bounds the items of any array.
	ItemsMax int
	// Shapes makes Check compare each value's JSON type with its field's Go type.
	Shapes bool
	// Noun names an object member in messages: "key" or "field".
	Noun string
	// TypeName names the JSON type a Go type decodes from, in the family's words.
	TypeName func(reflect.Type) string
}

// ProblemKind classifies what Check refused.
type ProblemKind int

// The kinds of Problem.
const (
	// Encoding: invalid UTF-8 or an escape of an unpaired surrogate.
	Encoding ProblemKind = iota + 1
	// Empty: Decode found nothing but white space (some routes take no body).
	Empty
	// NotObject: the body is not a JSON object.
	NotObject
	// Syntax: malformed JSON, or something after the one object.
	Syntax
	// TooDeep: nesting beyond Rules.DepthMax.
	TooDeep
	// TooManyItems: an array beyond Rules.ItemsMax.
	TooManyItems
	// Duplicate: an object holds a key twice.
	Duplicate
	// Schema: a key the target does not have, or a value of the wrong type.
	Schema
)

// Problem is why Check or Decode refused a body: its kind and a message for the client (never
// echoing more than a bounded quote of the client's keys).
type Problem struct {
	Kind    ProblemKind
	Message string
}

// whiteSpace is what JSON (RFC 8259) counts as white space between tokens.
const whiteSpace = " \t\r\n"

// Decode decodes data, which must hold exactly one JSON object that passes Check (white space
// around it aside), into dst, a pointer to a request struct, with encoding/json (unknown fields
// refused). The caller bounds data's size.
func Decode(data []byte, dst any, rules Rules) *Problem {
	trimmed := bytes.Trim(data, whiteSpace)
	if len(trimmed) == 0 {
		return problem(Empty, "the request body is empty")
	}
	if trimmed[0] != '{' {
		return problem(NotObject, "the request body must be a JSON object")
	}
	if p := Check(data, reflect.TypeOf(dst), rules); p != nil {
		return p
	}
	if fast, ok := dst.(CheckedDecoder); ok && fast.DecodeChecked(data) {
		return nil
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(dst); err != nil {
		var wrongType *json.UnmarshalTypeError
		switch {
		case errors.As(err, &wrongType) && wrongType.Field == "":
			return problem(NotObject, "the request body must be a JSON object")
		case errors.As(err, &wrongType):
			if !rules.Shapes {
				// encoding/json names the field without array indexes ("operations.expiresAt");
				// the walk with shape checks names the item ("operations[0].expiresAt").
				shaped := rules
				shaped.Shapes = true
				if p := walk(data, reflect.TypeOf(dst), shaped); p != nil && p.Kind == Schema {
					return p
				}
			}
			return problem(Schema, "%s must be %s", wrongType.Field, rules.TypeName(wrongType.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return problem(Schema, "unknown %s %s", rules.Noun, strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return syntaxProblem(err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return problem(Syntax, "the request body must hold exactly one JSON object")
	}
	return nil
}

// CheckedDecoder is a request struct with a decoder of its own for a hot route, which Decode
// tries after Check accepted data and before encoding/json. DecodeChecked must either fill the
// value exactly as encoding/json would from data (whole body, white space after the object
// only) and return true, or leave it as it was and return false, and then encoding/json
// decodes it (and words any refusal). It may keep references into data.
type CheckedDecoder interface {
	DecodeChecked(data []byte) bool
}

// syntaxProblem words a tokenizer's error without echoing internals.
func syntaxProblem(err error) *Problem {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return problem(Syntax, "malformed JSON: unexpected end of body")
	case errors.As(err, &syntax):
		return problem(Syntax, "malformed JSON at byte %d", syntax.Offset)
	}
	return problem(Syntax, "malformed JSON")
}

func problem(kind ProblemKind, format string, args ...any) *Problem {
	return &Problem{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Check checks data, the whole body (bounded by the caller), against the rules above for
// decoding into a value of type target (nil: no schema, only the generic rules). It checks the
// first JSON value only; what follows it is the caller's business.
func Check(data []byte, target reflect.Type, rules Rules) *Problem {
	if !utf8.Valid(data) {
		return problem(Encoding, "the request body must be valid UTF-8")
	}
	if offset, found := UnpairedSurrogateEscape(data); found {
		return problem(Encoding, "\\u escape of an unpaired UTF-16 surrogate at byte %d", offset)
	}
	if quickCheck(data, target, rules) {
		return nil
	}
	return walk(data, target, rules)
}

// walk is Check after the encoding checks: the first value of data, token by token.
func walk(data []byte, target reflect.Type, rules Rules) *Problem {
	walker := walker{decoder: json.NewDecoder(bytes.NewReader(data)), rules: rules}
	walker.decoder.UseNumber()
	return walker.value(target, "", 0, false)
}

// walker walks one JSON value token by token.
type walker struct {
	decoder *json.Decoder
	rules   Rules
}

// value reads the next value, which decodes into target (nil: unknown), found at path; item says
// it is an array's item.
func (w *walker) value(target reflect.Type, path string, depth int, item bool) *Problem {
	token, err := w.decoder.Token()
	if err != nil {
		return syntaxProblem(err)
	}
	target = Deref(target)
	delim, ok := token.(json.Delim)
	if !ok {
		return w.scalar(token, target, path, item)
	}
	if depth >= w.rules.DepthMax {
		return problem(TooDeep, "the request body nests deeper than %d levels", w.rules.DepthMax)
	}
	if w.rules.Shapes && target != nil && target != RawMessageType {
		kind := target.Kind()
		isObject, wantObject := delim == '{', kind == reflect.Struct || kind == reflect.Map
		if isObject != wantObject || (!isObject && kind != reflect.Slice && kind != reflect.Array) {
			return problem(Schema, "%s must be %s", nameOf(path), w.rules.TypeName(target))
		}
	}
	switch delim {
	case '{':
		return w.object(target, path, depth)
	case '[':
		var element reflect.Type
		if target != nil && (target.Kind() == reflect.Slice || target.Kind() == reflect.Array) && target != RawMessageType {
			element = target.Elem()
		}
		for i := 0; w.decoder.More(); i++ {
			if i == w.rules.ItemsMax {
				return problem(TooManyItems, "%s holds more than %d items", nameOf(path), w.rules.ItemsMax)
			}
			if p := w.value(element, path+"["+strconv.Itoa(i)+"]", depth+1, true); p != nil {
				return p
			}
		}
		return w.closing()
	}
	return problem(Syntax, "malformed JSON")
}

// memberTypes is what an object's members decode into: a struct's fields by key, or a map's
// element type for every key (both nil: unknown, any member goes).
func memberTypes(target reflect.Type) (fields map[string]reflect.Type, element reflect.Type) {
	switch {
	case target == nil:
	case target.Kind() == reflect.Struct:
		fields = FieldsOf(target)
	case target.Kind() == reflect.Map:
		element = target.Elem()
	}
	return fields, element
}

// object reads the members of an object whose '{' was just read.
func (w *walker) object(target reflect.Type, path string, depth int) *Problem {
	fields, element := memberTypes(target)
	seen := make(map[string]bool)
	for w.decoder.More() {
		token, err := w.decoder.Token()
		if err != nil {
			return syntaxProblem(err)
		}
		key, ok := token.(string)
		if !ok {
			return problem(Syntax, "malformed JSON: object key is not a string")
		}
		where := ""
		if path != "" {
			where = " in " + path
		}
		if seen[key] {
			return problem(Duplicate, "duplicate key %s%s", QuoteKey(key), where)
		}
		seen[key] = true
		memberType := element
		if fields != nil {
			fieldType, known := fields[key]
			if !known {
				noun := w.rules.Noun
				for name := range fields {
					if strings.EqualFold(name, key) {
						return problem(Schema, "unknown %s %s%s (keys are case-sensitive: the %s is %q)", noun, QuoteKey(key), where, noun, name)
					}
				}
				return problem(Schema, "unknown %s %s%s", noun, QuoteKey(key), where)
			}
			memberType = fieldType
		}
		memberPath := key
		if path != "" {
			memberPath = path + "." + key
		}
		if p := w.value(memberType, memberPath, depth+1, false); p != nil {
			return p
		}
	}
	return w.closing()
}

// scalar checks a scalar token against the kind of field it decodes into (with Rules.Shapes).
// A member's null is left to the field's own rules (a string field treats it as absent); an
// array's item cannot be absent, so a null one is refused as the wrong type (encoding/json
// would make a zero value of it: a null transaction of a batch would be checked as an empty one).
func (w *walker) scalar(token json.Token, target reflect.Type, path string, item bool) *Problem {
	if !w.rules.Shapes || target == nil || target == RawMessageType {
		return nil
	}
	if token == nil {
		if item {
			return problem(Schema, "%s must be %s", path, w.rules.TypeName(target))
		}
		return nil
	}
	switch target.Kind() {
	case reflect.String:
		if _, ok := token.(string); !ok {
			return problem(Schema, "%s must be %s", path, w.rules.TypeName(target))
		}
	case reflect.Int64:
		number, ok := token.(json.Number)
		if !ok {
			return problem(Schema, "%s must be %s", path, w.rules.TypeName(target))
		}
		if _, err := strconv.ParseInt(string(number), 10, 64); err != nil {
			return problem(Schema, "%s must be %s within 64 bits", path, w.rules.TypeName(target))
		}
	case reflect.Slice, reflect.Array, reflect.Struct, reflect.Map:
		if target != RawMessageType {
			return problem(Schema, "%s must be %s", path, w.rules.TypeName(target))
		}
	}
	return nil
}

// closing reads the '}' or ']' that ends the current object or array.
func (w *walker) closing() *Problem {
	if _, err := w.decoder.Token(); err != nil {
		return syntaxProblem(err)
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

// TypeName names the JSON type a Go type decodes from ("a JSON string", ...), for Rules.TypeName.
func TypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "a JSON boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a JSON integer"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "of another JSON type"
}
