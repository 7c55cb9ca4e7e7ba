package nodelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record layout in a segment (little endian):
//
//	u32 bodyBytes | u32 crc32c(bodyBytes ‖ seq ‖ body) | u64 seq | body
//	body = u8 kind | u16 keyBytes | key | payload
//	kindEntries payload = u32 count, then per entry:
//	    u64 index | u64 term | u8 type | i64 appendedAtUnixNs | u32 dataBytes | data | u32 extBytes | ext
//	kindDeleteRange payload = u64 min | u64 max
//
// Kinds are append-only: never renumber one that a segment on disk may hold.
const (
	kindEntries     = 1
	kindDeleteRange = 2
)

const (
	recordHeaderBytes = 4 + 4 + 8
	// recordBodyMaxBytes bounds one record: raft hands StoreLogs at most MaxAppendEntries (64)
	// entries of at most shard.BatchMaxBytesLimit (64 MiB) each in theory; group commit keeps
	// entries far below that, so 512 MiB is a sanity bound that a torn length field (random
	// bytes) fails rather than a limit a real record meets.
	recordBodyMaxBytes = 512 << 20
	// keyMaxBytes bounds a store's key (its shard ID).
	keyMaxBytes = 256
	// entryFixedBytes is the encoded size of one entry without its data and extensions.
	entryFixedBytes = 8 + 8 + 1 + 8 + 4 + 4
	// appendedAtZero encodes the zero time.Time (UnixNano of it overflows).
	appendedAtZero = int64(-1 << 63)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks bytes that are not a whole, valid record: the end of the valid log.
var errBadRecord = errors.New("bad record")

// record is one decoded record.
type record struct {
	seq        uint64
	kind       uint8
	key        string
	entries    []*raft.Log // kindEntries
	rangeFirst uint64      // kindDeleteRange
	rangeLast  uint64
}

// appendEntriesRecord appends the record of a StoreLogs call to dst.
func appendEntriesRecord(dst []byte, seq uint64, key string, logs []*raft.Log) []byte {
	bodyBytes := 1 + 2 + len(key) + 4
	for _, l := range logs {
		bodyBytes += entryFixedBytes + len(l.Data) + len(l.Extensions)
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyBytes))
	dst = append(dst, 0, 0, 0, 0) // crc, filled below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, kindEntries)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(logs)))
	for _, l := range logs {
		dst = binary.LittleEndian.AppendUint64(dst, l.Index)
		dst = binary.LittleEndian.AppendUint64(dst, l.Term)
		dst = append(dst, uint8(l.Type))
		appendedAt := appendedAtZero
		if !l.AppendedAt.IsZero() {
			appendedAt = l.AppendedAt.UnixNano()
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(appendedAt))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Data)))
		dst = append(dst, l.Data...)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Extensions)))
		dst = append(dst, l.Extensions...)
	}
	return sealRecord(dst, start)
}

// appendDeleteRangeRecord appends the record of a DeleteRange call to dst.
func appendDeleteRangeRecord(dst []byte, seq uint64, key string, first, last uint64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(1+2+len(key)+16))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, kindDeleteRange)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint64(dst, first)
	dst = binary.LittleEndian.AppendUint64(dst, last)
	return sealRecord(dst, start)
}

// sealRecord fills in the checksum of the record that starts at dst[start] and asserts its
// length field matches what was written.
func sealRecord(dst []byte, start int) []byte {
	bodyBytes := binary.LittleEndian.Uint32(dst[start:])
	if int(bodyBytes) != len(dst)-start-recordHeaderBytes {
		panic(fmt.Sprintf("nodelog: record body %d bytes, length field says %d", len(dst)-start-recordHeaderBytes, bodyBytes))
	}
	binary.LittleEndian.PutUint32(dst[start+4:], recordChecksum(dst[start:]))
	return dst
}

// recordChecksum covers the length field, the seq and the body of a whole record.
func recordChecksum(whole []byte) uint32 {
	return crc32.Update(crc32.Checksum(whole[:4], castagnoli), castagnoli, whole[8:])
}

// readRecordHeader validates the fixed header; it returns the body length.
func readRecordHeader(header []byte) (bodyBytes int, err error) {
	n := binary.LittleEndian.Uint32(header)
	if n < 3 || n > recordBodyMaxBytes {
		return 0, fmt.Errorf("%w: body length %d", errBadRecord, n)
	}
	return int(n), nil
}

// decodeRecord checks the checksum of a whole record (header and body) and decodes it. Every
// length is checked against the bytes present: a torn or corrupt record is errBadRecord,
// never a panic.
func decodeRecord(whole []byte) (record, error) {
	var r record
	if len(whole) < recordHeaderBytes {
		return r, errBadRecord
	}
	if int(binary.LittleEndian.Uint32(whole)) != len(whole)-recordHeaderBytes {
		return r, fmt.Errorf("%w: length field", errBadRecord)
	}
	if recordChecksum(whole) != binary.LittleEndian.Uint32(whole[4:]) {
		return r, fmt.Errorf("%w: checksum", errBadRecord)
	}
	r.seq = binary.LittleEndian.Uint64(whole[8:])
	d := decoder{buf: whole[recordHeaderBytes:]}
	r.kind = d.u8()
	keyBytes := int(d.u16())
	if keyBytes > keyMaxBytes {
		return r, fmt.Errorf("%w: key length %d", errBadRecord, keyBytes)
	}
	r.key = string(d.bytes(keyBytes))
	switch r.kind {
	case kindEntries:
		count := d.u32()
		if uint64(count)*entryFixedBytes > uint64(len(d.buf)) {
			return r, fmt.Errorf("%w: %d entries in %d bytes", errBadRecord, count, len(d.buf))
		}
		r.entries = make([]*raft.Log, 0, count)
		for range count {
			l := &raft.Log{Index: d.u64(), Term: d.u64(), Type: raft.LogType(d.u8())}
			if appendedAt := int64(d.u64()); appendedAt != appendedAtZero {
				l.AppendedAt = time.Unix(0, appendedAt)
			}
			l.Data = d.bytesCopy(int(d.u32()))
			l.Extensions = d.bytesCopy(int(d.u32()))
			r.entries = append(r.entries, l)
		}
	case kindDeleteRange:
		r.rangeFirst, r.rangeLast = d.u64(), d.u64()
	default:
		return r, fmt.Errorf("%w: kind %d", errBadRecord, r.kind)
	}
	if d.failed || len(d.buf) != 0 {
		return r, fmt.Errorf("%w: body does not match its kind", errBadRecord)
	}
	return r, nil
}

// decoder reads little-endian fields; reading past the end sets failed and yields zeros.
type decoder struct {
	buf    []byte
	failed bool
}

func (d *decoder) take(n int) []byte {
	if d.failed || n < 0 || n > len(d.buf) {
		d.failed = true
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) bytes(n int) []byte {
	return d.take(n)
}

// bytesCopy copies so that decoded entries do not pin the segment buffer; empty stays nil,
// as raft hands it in.
func (d *decoder) bytesCopy(n int) []byte {
	b := d.take(n)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
