package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary codec of everything the kernel and the families put in the log, in the store and
// on the wire between nodes: varints, length-prefixed strings, 128-bit amounts. Decoding is
// strict: a short or malformed input is an error, never a zero value. A Decoder keeps its first
// error, so a family's decode function reads every field and checks once, at the end.

// errShortInput reports a truncated encoding.
var errShortInput = errors.New("fsm: short input")

// StringMaxBytes bounds any decoded string, so a corrupt length cannot allocate gigabytes.
const StringMaxBytes = 1 << 20

// ListMaxCount bounds decoded lists (operations, wallet IDs) against corrupt counts.
const ListMaxCount = 1 << 16

// Encoder appends binary fields to Buf.
type Encoder struct{ Buf []byte }

// Byte appends one byte.
func (e *Encoder) Byte(v byte) { e.Buf = append(e.Buf, v) }

// Uvarint appends an unsigned varint.
func (e *Encoder) Uvarint(v uint64) { e.Buf = binary.AppendUvarint(e.Buf, v) }

// Varint appends a signed varint.
func (e *Encoder) Varint(v int64) { e.Buf = binary.AppendVarint(e.Buf, v) }

// Bool appends 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Byte(1)
	} else {
		e.Byte(0)
	}
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.Buf = append(e.Buf, s...)
}

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(b []byte) {
	e.Uvarint(uint64(len(b)))
	e.Buf = append(e.Buf, b...)
}

// Amount appends a 128-bit amount.
func (e *Encoder) Amount(a Amount) {
	e.Uvarint(a.Hi)
	e.Uvarint(a.Lo)
}

// Strings appends a counted list of strings.
func (e *Encoder) Strings(list []string) {
	e.Uvarint(uint64(len(list)))
	for _, s := range list {
		e.String(s)
	}
}

// Decoder reads what an Encoder wrote. It keeps the first error; every read after it returns a
// zero value.
type Decoder struct {
	buf []byte
	err error
}

// NewDecoder returns a decoder over data.
func NewDecoder(data []byte) *Decoder { return &Decoder{buf: data} }

// Fail records err unless an earlier error is recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Err is the first error.
func (d *Decoder) Err() error { return d.err }

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil || len(d.buf) < 1 {
		d.Fail(errShortInput)
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.Fail(errShortInput)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.Fail(errShortInput)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail(errors.New("fsm: bad bool"))
	return false
}

// String reads a length-prefixed string of at most StringMaxBytes.
func (d *Decoder) String() string { return string(d.Bytes()) }

// Bytes reads a length-prefixed byte string of at most StringMaxBytes; the result aliases the
// input.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > StringMaxBytes || n > uint64(len(d.buf)) {
		d.Fail(errShortInput)
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// Amount reads a 128-bit amount.
func (d *Decoder) Amount() Amount {
	return Amount{Hi: d.Uvarint(), Lo: d.Uvarint()}
}

// Count reads a list length of at most ListMaxCount.
func (d *Decoder) Count(what string) int {
	n := d.Uvarint()
	if n > ListMaxCount {
		d.Fail(fmt.Errorf("fsm: %d %s", n, what))
		return 0
	}
	return int(n)
}

// Strings reads a counted list of strings.
func (d *Decoder) Strings(what string) []string {
	n := d.Count(what)
	var list []string
	for i := 0; i < n && d.err == nil; i++ {
		list = append(list, d.String())
	}
	return list
}

// Rest returns the unread input and consumes it.
func (d *Decoder) Rest() []byte {
	b := d.buf
	d.buf = nil
	return b
}

// Finish reports the first error, or trailing bytes.
func (d *Decoder) Finish(what string) error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("fsm: %d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

// Raw appends bytes as they are, for fixed-size fields (hashes) the decoder reads with RawN.
func (e *Encoder) Raw(b []byte) { e.Buf = append(e.Buf, b...) }

// RawN reads n bytes written by Raw; the result aliases the input. Short input fails the
// decoder and returns n zero bytes, so callers may copy from it unchecked.
func (d *Decoder) RawN(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if n > len(d.buf) {
		d.Fail(errShortInput)
		return make([]byte, n)
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}
