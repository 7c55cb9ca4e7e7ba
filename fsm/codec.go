package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A tiny binary codec shared by commands (in the log) and stored records (in Pebble): varints,
// length-prefixed strings, 128-bit amounts. Decoding is strict: a short or malformed input is an
// error, never a zero value.

// errShortInput reports a truncated encoding.
var errShortInput = errors.New("fsm: short input")

// stringMaxBytes bounds any decoded string, so a corrupt length cannot allocate gigabytes.
const stringMaxBytes = 1 << 20

type encoder struct{ buf []byte }

func (e *encoder) byte(v byte)      { e.buf = append(e.buf, v) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}
func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}
func (e *encoder) amount(a Amount) {
	e.uvarint(a.Hi)
	e.uvarint(a.Lo)
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.buf) < 1 {
		d.fail(errShortInput)
		return 0
	}
	v := d.buf[0]
	d.buf = d.buf[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errShortInput)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errShortInput)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(errors.New("fsm: bad bool"))
	return false
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > stringMaxBytes || n > uint64(len(d.buf)) {
		d.fail(errShortInput)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) amount() Amount {
	return Amount{Hi: d.uvarint(), Lo: d.uvarint()}
}

// finish reports the first error, or trailing bytes.
func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("fsm: %d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}
