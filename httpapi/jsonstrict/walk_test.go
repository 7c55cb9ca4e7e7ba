package jsonstrict

import (
	"reflect"
	"strings"
	"testing"
)

type walkItem struct {
	Quantity int64  `json:"quantity"`
	Name     string `json:"name"`
}

type walkBody struct {
	Items []walkItem          `json:"items"`
	Tags  map[string]walkItem `json:"tags"`
}

func walkTypeName(t reflect.Type) string { return "a " + t.Kind().String() }

// TestCheck: each refusal kind, with and without shape checks, and what passes.
func TestCheck(t *testing.T) {
	loose := Rules{DepthMax: 4, ItemsMax: 2, Noun: "field", TypeName: walkTypeName}
	shapes := loose
	shapes.Shapes, shapes.Noun = true, "key"
	target := reflect.TypeFor[*walkBody]()
	cases := []struct {
		rules   Rules
		body    string
		kind    ProblemKind // 0: accepted
		message string
	}{
		{loose, `{"items":[{"quantity":1,"name":"a"}],"tags":{"x":{"name":"b"}}}`, 0, ""},
		{loose, "{\"items\":[{\"name\":\"\xff\"}]}", Encoding, "valid UTF-8"},
		{loose, `{"items":[{"name":"\ud800"}]}`, Encoding, "unpaired UTF-16 surrogate"},
		{loose, `{"items":[{"name":"a","name":"b"}]}`, Duplicate, `duplicate key "name" in items[0]`},
		{loose, `{"tags":{"x":{},"x":{}}}`, Duplicate, `duplicate key "x" in tags`},
		{loose, `{"items":[{"Name":"a"}]}`, Schema, `unknown field "Name" in items[0] (keys are case-sensitive: the field is "name")`},
		{loose, `{"tags":{"x":{"nme":"a"}}}`, Schema, `unknown field "nme" in tags.x`},
		{loose, `{"items":[{},{},{}]}`, TooManyItems, "items holds more than 2 items"},
		{loose, `{"items":[[[[[1]]]]]}`, TooDeep, "nests deeper than 4 levels"},
		{loose, `{"items":[{"quantity":"1"}]}`, 0, ""}, // types are encoding/json's business here
		{loose, `{"items":[1`, Syntax, "unexpected end of body"},
		{shapes, `{"items":[{"quantity":"1"}]}`, Schema, "items[0].quantity must be a int64"},
		{shapes, `{"items":[{"quantity":1.5}]}`, Schema, "items[0].quantity must be a int64 within 64 bits"},
		{shapes, `{"items":{}}`, Schema, "items must be a slice"},
		{shapes, `{"tags":[]}`, Schema, "tags must be a map"},
		{shapes, `{"items":[{"name":5}]}`, Schema, "items[0].name must be a string"},
		{shapes, `{"items":[{"nme":"a"}]}`, Schema, `unknown key "nme" in items[0]`},
		{shapes, `{"items":[{"quantity":7,"name":null}],"tags":{"x":{"quantity":1}}}`, 0, ""},
		// An array's item cannot be absent: a null one is the wrong type (a member's null is absent).
		{shapes, `{"items":[null]}`, Schema, "items[0] must be a struct"},
		{shapes, `{"items":[{"name":"a"}, null ]}`, Schema, "items[1] must be a struct"},
		{shapes, `{"items":null,"tags":{"x":null}}`, 0, ""},
		{loose, `{"items":[null]}`, 0, ""},
	}
	for _, c := range cases {
		p := Check([]byte(c.body), target, c.rules)
		if c.kind == 0 {
			if p != nil {
				t.Errorf("%s: refused (%d %q)", c.body, p.Kind, p.Message)
			}
			continue
		}
		if p == nil || p.Kind != c.kind || !strings.Contains(p.Message, c.message) {
			t.Errorf("%s: got %+v, want kind %d with %q", c.body, p, c.kind, c.message)
		}
	}
}

// TestDecode: what Decode adds to Check: one object, nothing after it, typed decoding.
func TestDecode(t *testing.T) {
	rules := Rules{DepthMax: 4, ItemsMax: 2, Noun: "field", TypeName: walkTypeName}
	cases := []struct {
		body    string
		kind    ProblemKind
		message string
	}{
		{` {"items":[{"quantity":3}]} `, 0, ""},
		{" \n\t", Empty, "empty"},
		{`null`, NotObject, "must be a JSON object"},
		{`[{}]`, NotObject, "must be a JSON object"},
		{`{"items":[]} {}`, Syntax, "exactly one JSON object"},
		{`{"items":[]} x`, Syntax, "exactly one JSON object"},
		{`{"items":[{"quantity":"3"}]}`, Schema, "items[0].quantity must be a int64"}, // the item named, which encoding/json does not
		{`{"items":[{"quantity":1e400}]}`, Schema, "must be a int64"},
		{`{"items":[{"quantity":3]}`, Syntax, "malformed JSON at byte"},
	}
	for _, c := range cases {
		var body walkBody
		p := Decode([]byte(c.body), &body, rules)
		if c.kind == 0 {
			if p != nil || len(body.Items) != 1 || body.Items[0].Quantity != 3 {
				t.Errorf("%q: got %+v, %+v", c.body, p, body)
			}
			continue
		}
		if p == nil || p.Kind != c.kind || !strings.Contains(p.Message, c.message) {
			t.Errorf("%q: got %+v, want kind %d with %q", c.body, p, c.kind, c.message)
		}
	}
}
