package jsonstrict

import (
	"bytes"
	"reflect"
	"strconv"
)

// quickCheck is Check's fast path: one pass over the bytes of a body whose first value is an
// object or an array, with no tokens, paths or maps built. It answers true only when the walk
// (walker, over encoding/json's tokenizer) would accept the same body; on anything it is not
// sure of (any refusal, a key with an escape, a top-level scalar) it answers false, and Check
// runs the walk, which words the refusal. So the errors stay the walk's, and its rules stay the
// one definition of what passes: this only skips the walk's cost (tokens, interface values,
// member paths) for the bodies it accepts, nearly every one. The caller has checked UTF-8 and
// surrogate escapes.
func quickCheck(data []byte, target reflect.Type, rules Rules) bool {
	q := quick{data: data, rules: rules}
	q.space()
	if q.i >= len(q.data) || (q.data[q.i] != '{' && q.data[q.i] != '[') {
		return false
	}
	return q.value(target, 0)
}

// quickKeysLinearMax is how many keys of one object quick compares pairwise for duplicates;
// beyond it, a map.
const quickKeysLinearMax = 32

// quick is quickCheck's cursor over data.
type quick struct {
	data  []byte
	i     int
	rules Rules
	// keys holds the keys (as offsets into data) of the objects being read, shared down the
	// nesting: each object adds its keys after the first nkeys and cuts them off when done. An
	// array in the struct, not a slice, so that it stays on the stack.
	keys  [2 * quickKeysLinearMax]span
	nkeys int
}

// span is data[start:end].
type span struct{ start, end int }

// space skips JSON white space.
func (q *quick) space() { q.i = SkipSpace(q.data, q.i) }

// SkipSpace returns the index of the first byte of data at or after i that is not JSON white
// space (len(data) if there is none).
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipDigits returns the index of the first byte of data at or after i that is not an ASCII
// digit.
func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// value reads one value that decodes into target (nil: unknown), as walker.value does.
func (q *quick) value(target reflect.Type, depth int) bool {
	q.space()
	if q.i >= len(q.data) {
		return false
	}
	target = Deref(target)
	c := q.data[q.i]
	if c != '{' && c != '[' {
		return q.scalar(target)
	}
	if depth >= q.rules.DepthMax {
		return false
	}
	if q.rules.Shapes && target != nil && target != RawMessageType {
		kind := target.Kind()
		isObject, wantObject := c == '{', kind == reflect.Struct || kind == reflect.Map
		if isObject != wantObject || (!isObject && kind != reflect.Slice && kind != reflect.Array) {
			return false
		}
	}
	q.i++
	if c == '{' {
		return q.object(target, depth)
	}
	var element reflect.Type
	if target != nil && (target.Kind() == reflect.Slice || target.Kind() == reflect.Array) && target != RawMessageType {
		element = target.Elem()
	}
	q.space()
	if q.i < len(q.data) && q.data[q.i] == ']' {
		q.i++
		return true
	}
	for items := 0; ; items++ {
		if items == q.rules.ItemsMax || q.nullItem(element) || !q.value(element, depth+1) {
			return false
		}
		if done, ok := q.after(']'); done || !ok {
			return ok
		}
	}
}

// nullItem reports an array item that is null where the walk refuses it (an item of a known type).
func (q *quick) nullItem(element reflect.Type) bool {
	q.space()
	return q.rules.Shapes && element != nil && element != RawMessageType && bytes.HasPrefix(q.data[q.i:], []byte("null"))
}

// after reads what follows a member or element: ',' (another comes: not done) or the closing
// byte (done); anything else is not ok.
func (q *quick) after(closing byte) (done, ok bool) {
	q.space()
	if q.i >= len(q.data) {
		return false, false
	}
	switch q.data[q.i] {
	case ',':
		q.i++
		return false, true
	case closing:
		q.i++
		return true, true
	}
	return false, false
}

// object reads the members of an object whose '{' was just read, as walker.object does.
func (q *quick) object(target reflect.Type, depth int) bool {
	fields, element := memberTypes(target)
	q.space()
	if q.i < len(q.data) && q.data[q.i] == '}' {
		q.i++
		return true
	}
	first := q.nkeys
	ok := q.members(fields, element, depth, first)
	q.nkeys = first
	return ok
}

// members reads an object's members after its '{' (the object is not empty); its keys go to
// q.keys after first.
func (q *quick) members(fields map[string]reflect.Type, element reflect.Type, depth, first int) bool {
	var seen map[string]struct{}
	for {
		q.space()
		if q.i >= len(q.data) || q.data[q.i] != '"' {
			return false
		}
		start := q.i + 1
		escaped, ok := q.str()
		if !ok || escaped {
			return false // a key with an escape: the walk compares it unescaped
		}
		key := q.data[start : q.i-1]
		switch {
		case seen != nil:
			if _, dup := seen[string(key)]; dup {
				return false
			}
			seen[string(key)] = struct{}{}
		case q.nkeys-first < quickKeysLinearMax && q.nkeys < len(q.keys):
			for _, earlier := range q.keys[first:q.nkeys] {
				if bytes.Equal(q.data[earlier.start:earlier.end], key) {
					return false
				}
			}
			q.keys[q.nkeys] = span{start, q.i - 1}
			q.nkeys++
		default:
			seen = make(map[string]struct{}, 2*quickKeysLinearMax)
			for _, earlier := range q.keys[first:q.nkeys] {
				seen[string(q.data[earlier.start:earlier.end])] = struct{}{}
			}
			if _, dup := seen[string(key)]; dup {
				return false
			}
			seen[string(key)] = struct{}{}
		}
		memberType := element
		if fields != nil {
			fieldType, known := fields[string(key)]
			if !known {
				return false
			}
			memberType = fieldType
		}
		q.space()
		if q.i >= len(q.data) || q.data[q.i] != ':' {
			return false
		}
		q.i++
		if !q.value(memberType, depth+1) {
			return false
		}
		if done, ok := q.after('}'); done || !ok {
			return ok
		}
	}
}

// scalar reads a string, number, true, false or null at q.i and checks it against target as
// walker.scalar does.
func (q *quick) scalar(target reflect.Type) bool {
	start := q.i
	var kind byte // 's' string, 'n' number, 'l' literal (true, false), '0' null
	switch c := q.data[q.i]; {
	case c == '"':
		if _, ok := q.str(); !ok {
			return false
		}
		kind = 's'
	case c == '-' || c >= '0' && c <= '9':
		if !q.number() {
			return false
		}
		kind = 'n'
	case q.literal("true"), q.literal("false"):
		kind = 'l'
	case q.literal("null"):
		kind = '0'
	default:
		return false
	}
	if !q.rules.Shapes || target == nil || kind == '0' {
		return true
	}
	switch target.Kind() {
	case reflect.String:
		return kind == 's'
	case reflect.Int64:
		if kind != 'n' {
			return false
		}
		_, err := strconv.ParseInt(string(q.data[start:q.i]), 10, 64)
		return err == nil
	case reflect.Slice, reflect.Array, reflect.Struct, reflect.Map:
		return target == RawMessageType
	}
	return true
}

// literal reads word at q.i if it is there.
func (q *quick) literal(word string) bool {
	if !bytes.HasPrefix(q.data[q.i:], []byte(word)) {
		return false
	}
	q.i += len(word)
	return true
}

// str reads the string whose '"' is at q.i, leaving q.i after its closing quote; escaped
// reports whether it holds an escape. Raw control characters and unknown escapes are refused.
func (q *quick) str() (escaped, ok bool) {
	for i := q.i + 1; i < len(q.data); i++ {
		switch c := q.data[i]; {
		case c == '"':
			q.i = i + 1
			return escaped, true
		case c < 0x20:
			return false, false
		case c == '\\':
			escaped = true
			if i+1 >= len(q.data) {
				return false, false
			}
			switch q.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, hex := hex4(q.data, i+2); !hex {
					return false, false
				}
				i += 5
			default:
				return false, false
			}
		}
	}
	return false, false
}

// number reads a JSON number at q.i (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
func (q *quick) number() bool {
	data, i := q.data, q.i
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i)
	default:
		return false
	}
	if i < len(data) && data[i] == '.' {
		digits := i + 1
		if i = skipDigits(data, digits); i == digits {
			return false
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		digits := i
		if i = skipDigits(data, digits); i == digits {
			return false
		}
	}
	q.i = i
	return true
}
