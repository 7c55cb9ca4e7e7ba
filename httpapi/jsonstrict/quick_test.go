package jsonstrict

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// quickBodies are bodies for the fast path: the ones marked plain must take it, and none of
// them may pass it unless the walk accepts them too.
var quickBodies = []struct {
	body  string
	plain bool // quickCheck must accept it (with both rule sets of the tests)
}{
	{`{"items":[{"quantity":1,"name":"a"}],"tags":{"x":{"name":"b"}}}`, true},
	{` {"items":[],"tags":{}} `, true},
	{"{\n\t\"items\" : [ { \"quantity\" : -7 , \"name\" : \"caf\u00e9 \\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9\" } ] }", true},
	{`{"items":[{"quantity":0,"name":null}]}`, true},
	{`{"items":null,"tags":null}`, true},
	{`{"items":[{"quantity":9223372036854775807},{"quantity":-9223372036854775808}]}`, true},
	{`{"tags":{"a":{},"b":{},"c":{}}} trailing is the caller's business`, true},
	{`{"items":[{"quantity":1.5}]}`, false},
	{`{"items":[{"quantity":1e3}]}`, false},
	{`{"items":[{"quantity":9223372036854775808}]}`, false},
	{`{"items":[{"quantity":"1"}]}`, false},
	{`{"items":[{"quantity":01}]}`, false},
	{`{"items":[{"quantity":-}]}`, false},
	{`{"items":[{"quantity":1.}]}`, false},
	{`{"items":[{"quantity":1e}]}`, false},
	{`{"items":[{"quantity":tru}]}`, false},
	{`{"items":[{"quantity":truex}]}`, false},
	{`{"items":[{"quantity":1 2}]}`, false},
	{`{"items":[{"name":"a","name":"b"}]}`, false},
	{`{"items":[{"na\u006de":"a"}]}`, false},
	{`{"items":[{"Name":"a"}]}`, false},
	{`{"items":[{},{},{}]}`, false},
	{`{"items":[[[[[1]]]]]}`, false},
	{`{"items":[1,]}`, false},
	{`{"items":[,1]}`, false},
	{`{"items":[1}`, false},
	{`{"items":{}}`, false},
	{`{"tags":[]}`, false},
	{`{"tags":{"x":{},"x":{}}}`, false},
	{`{"tags":{"x":{"nme":"a"}}}`, false},
	{`{"tags":{"x":{}},}`, false},
	{`{"tags":{"x":{}}`, false},
	{`{"tags" {"x":{}}}`, false},
	{`{"tags":{"x":{}} "items":[]}`, false},
	{`{"items":[{"name":"a\x"}]}`, false},
	{`{"items":[{"name":"a\u12"}]}`, false},
	{"{\"items\":[{\"name\":\"a\tb\"}]}", false},
	{`{"items":[{"name":"a}]}`, false},
	{`{"items":[{"name":5}]}`, false},
	{`{'items':[]}`, false},
	{`{items:[]}`, false},
	{`"a string"`, false},
	{`12`, false},
	{``, false},
	{`   `, false},
	{`[{"x":1},{"x":2}]`, false},
}

func quickRules() []Rules {
	loose := Rules{DepthMax: 4, ItemsMax: 2, Noun: "field", TypeName: walkTypeName}
	shapes := loose
	shapes.Shapes, shapes.Noun = true, "key"
	return []Rules{loose, shapes}
}

// TestQuickCheck: the fast path takes the plain bodies and passes nothing the walk refuses.
func TestQuickCheck(t *testing.T) {
	target := reflect.TypeFor[*walkBody]()
	for _, c := range quickBodies {
		for _, rules := range quickRules() {
			quick := quickCheck([]byte(c.body), target, rules)
			if c.plain && !quick {
				t.Errorf("%s (shapes %v): not taken by the fast path", c.body, rules.Shapes)
			}
			if p := walk([]byte(c.body), target, rules); quick && p != nil {
				t.Errorf("%s (shapes %v): fast path accepts what the walk refuses: %+v", c.body, rules.Shapes, p)
			}
		}
	}
	// Many keys: pairwise up to quickKeysLinearMax, then a map; a duplicate found either way.
	for _, keys := range []int{quickKeysLinearMax - 1, quickKeysLinearMax, quickKeysLinearMax + 1, 3 * quickKeysLinearMax} {
		var b strings.Builder
		b.WriteString(`{"tags":{`)
		for i := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + strings.Repeat("x", i) + `":{}`)
		}
		for _, dup := range []string{"", `,"k":{}`, `,"k` + strings.Repeat("x", keys-1) + `":{}`} {
			body := b.String() + dup + "}}"
			if got, want := quickCheck([]byte(body), target, quickRules()[0]), dup == ""; got != want {
				t.Errorf("%d keys, duplicate %q: fast path %v", keys, dup, got)
			}
		}
	}
}

// FuzzQuickCheck: whatever the body, the fast path never accepts what the walk refuses.
func FuzzQuickCheck(f *testing.F) {
	for _, c := range quickBodies {
		f.Add([]byte(c.body))
	}
	target := reflect.TypeFor[*walkBody]()
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // Check refuses it before either path
		}
		if _, found := UnpairedSurrogateEscape(data); found {
			return
		}
		for _, rules := range quickRules() {
			if quickCheck(data, target, rules) {
				if p := walk(data, target, rules); p != nil {
					t.Fatalf("%q (shapes %v): fast path accepts what the walk refuses: %+v", data, rules.Shapes, p)
				}
			}
		}
	})
}
