package httpapi

import (
	"bytes"
	"strconv"

	"github.com/gigaledger/gigaledger/httpapi/jsonstrict"
)

// The transfer and batch routes' bodies decoded without encoding/json
// (jsonstrict.CheckedDecoder): a hand cursor for the documented shape as clients send it. It
// gives up (and encoding/json decodes the body as before) on anything else: a string with an
// escape, a null, an amount that is not a number or a plain string, an expiresAt that is not an
// integer, an unknown key. Check has already refused duplicate, unknown and case-variant keys,
// bad UTF-8 and malformed JSON (and, for a batch, values of the wrong type, by item).

var (
	_ jsonstrict.CheckedDecoder = (*transactionRequest)(nil)
	_ jsonstrict.CheckedDecoder = (*transactionBatchRequest)(nil)
)

// DecodeChecked implements jsonstrict.CheckedDecoder.
func (r *transactionRequest) DecodeChecked(data []byte) bool {
	c := fastCursor{data: data}
	var out transactionRequest
	if !c.transaction(&out) || !c.end() {
		return false
	}
	*r = out
	return true
}

// DecodeChecked implements jsonstrict.CheckedDecoder: the batch route's body, where
// encoding/json spent about a fifth of the leader's CPU in batched runs (bench/RESULTS.md).
func (r *transactionBatchRequest) DecodeChecked(data []byte) bool {
	c := fastCursor{data: data}
	var out transactionBatchRequest
	ok := c.object(func(key []byte) bool {
		if string(key) != "transactions" {
			return false
		}
		transactions := make([]transactionRequest, 0, 16)
		if !c.array(func() bool {
			transactions = append(transactions, transactionRequest{})
			return c.transaction(&transactions[len(transactions)-1])
		}) {
			return false
		}
		out.Transactions = transactions
		return true
	})
	if !ok || !c.end() {
		return false
	}
	*r = out
	return true
}

// fastCursor reads JSON that Check accepted.
type fastCursor struct {
	data []byte
	i    int
}

func (c *fastCursor) space() { c.i = jsonstrict.SkipSpace(c.data, c.i) }

// next skips white space and reports whether the next byte is b, consuming it if so.
func (c *fastCursor) next(b byte) bool {
	c.space()
	if c.i < len(c.data) && c.data[c.i] == b {
		c.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (c *fastCursor) end() bool {
	c.space()
	return c.i == len(c.data)
}

// object reads an object, calling member with each key (no escapes) with the cursor before
// its value; member reads the value.
func (c *fastCursor) object(member func(key []byte) bool) bool {
	if !c.next('{') {
		return false
	}
	if c.next('}') {
		return true
	}
	for {
		c.space()
		key, ok := c.rawString()
		if !ok || !c.next(':') || !member(key) {
			return false
		}
		if c.next(',') {
			continue
		}
		return c.next('}')
	}
}

// rawString reads a string without escapes and returns its content.
func (c *fastCursor) rawString() ([]byte, bool) {
	if c.i >= len(c.data) || c.data[c.i] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(c.data[c.i+1:], '"')
	if end < 0 {
		return nil, false
	}
	content := c.data[c.i+1 : c.i+1+end]
	if bytes.IndexByte(content, '\\') >= 0 {
		return nil, false
	}
	for _, b := range content {
		if b < 0x20 {
			return nil, false
		}
	}
	c.i += end + 2
	return content, true
}

// plainString reads a string value without escapes.
func (c *fastCursor) plainString() (string, bool) {
	c.space()
	content, ok := c.rawString()
	return string(content), ok
}

// array reads an array (not null: encoding/json's nil slice is left to it), calling item with
// the cursor before each element; item reads the element.
func (c *fastCursor) array(item func() bool) bool {
	if !c.next('[') {
		return false
	}
	if c.next(']') {
		return true
	}
	for {
		if !item() {
			return false
		}
		if c.next(',') {
			continue
		}
		return c.next(']')
	}
}

// transaction reads one transaction object.
func (c *fastCursor) transaction(out *transactionRequest) bool {
	c.space()
	return c.object(func(key []byte) bool {
		switch string(key) {
		case "referenceId":
			value, ok := c.plainString()
			out.ReferenceID = value
			return ok
		case "operations":
			return c.operations(&out.Operations)
		}
		return false
	})
}

// operations reads the operations array.
func (c *fastCursor) operations(dst *[]operationRequest) bool {
	operations := make([]operationRequest, 0, 1)
	if !c.array(func() bool {
		operations = append(operations, operationRequest{})
		return c.operation(&operations[len(operations)-1])
	}) {
		return false
	}
	*dst = operations
	return true
}

// operation reads one operation object.
func (c *fastCursor) operation(op *operationRequest) bool {
	c.space()
	return c.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "type":
			op.Type, ok = c.plainString()
		case "from":
			op.From, ok = c.plainString()
		case "to":
			op.To, ok = c.plainString()
		case "amount":
			op.Amount, ok = c.amount()
		case "expiresAt":
			op.ExpiresAt, ok = c.int64Pointer()
		}
		return ok
	})
}

// amount reads an amount as the raw JSON that encoding/json keeps in a json.RawMessage: a
// string without escapes or a number of digits (parseAmount judges both).
func (c *fastCursor) amount() ([]byte, bool) {
	c.space()
	start := c.i
	if c.i < len(c.data) && c.data[c.i] == '"' {
		if _, ok := c.rawString(); !ok {
			return nil, false
		}
		return c.data[start:c.i], true
	}
	for c.i < len(c.data) && c.data[c.i] >= '0' && c.data[c.i] <= '9' {
		c.i++
	}
	if c.i == start || c.i < len(c.data) && !isValueEnd(c.data[c.i]) {
		return nil, false // empty, or a sign, fraction or exponent: encoding/json's business
	}
	return c.data[start:c.i], true
}

// int64Pointer reads an integer that fits 64 bits.
func (c *fastCursor) int64Pointer() (*int64, bool) {
	c.space()
	start := c.i
	if c.i < len(c.data) && c.data[c.i] == '-' {
		c.i++
	}
	for c.i < len(c.data) && c.data[c.i] >= '0' && c.data[c.i] <= '9' {
		c.i++
	}
	if c.i < len(c.data) && !isValueEnd(c.data[c.i]) {
		return nil, false
	}
	value, err := strconv.ParseInt(string(c.data[start:c.i]), 10, 64)
	if err != nil {
		return nil, false
	}
	return &value, true
}

// isValueEnd reports whether b may follow a number inside an object.
func isValueEnd(b byte) bool {
	return b == ',' || b == '}' || b == ' ' || b == '\t' || b == '\r' || b == '\n'
}
