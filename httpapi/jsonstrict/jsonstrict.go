// Package jsonstrict is the strict JSON check the API families share (Check, in walk.go) and
// its pieces: the JSON field names of a request struct, key quoting for error messages, and the
// detection of escapes that name half a UTF-16 surrogate pair. Each family maps a Problem to
// its own error envelope. It imports only the standard library.
package jsonstrict

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// keyQuoteMaxBytes bounds how much of a client's key an error message quotes.
const keyQuoteMaxBytes = 64

// QuoteKey quotes a client's key for a message, cut to keyQuoteMaxBytes.
func QuoteKey(key string) string {
	if len(key) <= keyQuoteMaxBytes {
		return strconv.Quote(key)
	}
	cut := keyQuoteMaxBytes
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return strconv.Quote(key[:cut]) + "…"
}

// RawMessageType is json.RawMessage: a field of this type takes any JSON value.
var RawMessageType = reflect.TypeFor[json.RawMessage]()

// Deref strips pointers; nil stays nil.
func Deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonFieldsCache holds FieldsOf's answers by struct type.
var jsonFieldsCache sync.Map // reflect.Type → map[string]reflect.Type

// FieldsOf returns the JSON names of a struct's fields (as encoding/json names them: the tag
// name, else the Go name; "-" and unexported fields excluded; untagged embedded structs
// flattened) with their types.
func FieldsOf(t reflect.Type) map[string]reflect.Type {
	if cached, ok := jsonFieldsCache.Load(t); ok {
		return cached.(map[string]reflect.Type)
	}
	fields := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		field := t.Field(i)
		tag := field.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if field.Anonymous && name == "" {
			if embedded := Deref(field.Type); embedded.Kind() == reflect.Struct {
				for k, v := range FieldsOf(embedded) {
					if _, shadowed := fields[k]; !shadowed {
						fields[k] = v
					}
				}
				continue
			}
		}
		if !field.IsExported() {
			continue
		}
		if name == "" {
			name = field.Name
		}
		fields[name] = field.Type
	}
	jsonFieldsCache.Store(t, fields)
	return fields
}

// UnpairedSurrogateEscape reports the offset of the first \u escape inside a JSON string of data
// that names a UTF-16 surrogate without its pair (encoding/json would turn it into U+FFFD). data
// need not be valid JSON: this only tracks strings and escapes.
func UnpairedSurrogateEscape(data []byte) (int, bool) {
	inString := false
	for i := 0; i < len(data); i++ {
		b := data[i]
		if !inString {
			inString = b == '"'
			continue
		}
		switch b {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(data) {
				return 0, false
			}
			if data[i+1] != 'u' {
				i++ // skip the escaped character
				continue
			}
			unit, ok := hex4(data, i+2)
			if !ok {
				i++
				continue
			}
			switch {
			case unit >= 0xD800 && unit < 0xDC00:
				// A high surrogate must be followed at once by an escaped low surrogate.
				if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
					if low, ok := hex4(data, i+8); ok && low >= 0xDC00 && low < 0xE000 {
						i += 11
						continue
					}
				}
				return i, true
			case unit >= 0xDC00 && unit < 0xE000:
				return i, true
			}
			i += 5
		}
	}
	return 0, false
}

// hex4 reads four hex digits at data[at:].
func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
