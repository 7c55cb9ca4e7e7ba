package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The envelope is the shard's own log entry format. It is versioned by its first byte so that a
// later format can be added while old entries stay readable ("only add versions, never change
// one").
//
// Version 1 layout:
//
//	byte    version (envelopeVersion1 = 1)
//	varint  leader time, Unix milliseconds (zig-zag, encoding/binary.AppendVarint)
//	uvarint command count (1..BatchMaxCountLimit)
//	count × (uvarint length, length bytes)
//
// Varints must be minimal and nothing may follow the last command, so every batch has exactly
// one encoding.
const (
	envelopeVersion1 byte = 1
)

// errEnvelope marks an entry that cannot be decoded; applying it would diverge, so the adapter
// panics with it.
var errEnvelope = errors.New("bad log entry envelope")

// envelopeSizeBytes returns the encoded size of a version 1 envelope for commands.
func envelopeSizeBytes(timeUnixMs int64, commands [][]byte) int {
	size := 1 + varintSizeBytes(timeUnixMs) + uvarintSizeBytes(uint64(len(commands)))
	for _, command := range commands {
		size += uvarintSizeBytes(uint64(len(command))) + len(command)
	}
	return size
}

// encodeEnvelope appends a version 1 envelope to dst.
func encodeEnvelope(dst []byte, timeUnixMs int64, commands [][]byte) []byte {
	dst = append(dst, envelopeVersion1)
	dst = binary.AppendVarint(dst, timeUnixMs)
	dst = binary.AppendUvarint(dst, uint64(len(commands)))
	for _, command := range commands {
		dst = binary.AppendUvarint(dst, uint64(len(command)))
		dst = append(dst, command...)
	}
	return dst
}

// decodeEnvelope decodes an envelope. The returned commands alias data.
func decodeEnvelope(data []byte) (timeUnixMs int64, commands [][]byte, err error) {
	if len(data) == 0 {
		return 0, nil, fmt.Errorf("%w: empty", errEnvelope)
	}
	if data[0] != envelopeVersion1 {
		return 0, nil, fmt.Errorf("%w: unknown version %d", errEnvelope, data[0])
	}
	rest := data[1:]
	timeUnixMs, n := binary.Varint(rest)
	if n <= 0 || n != varintSizeBytes(timeUnixMs) {
		return 0, nil, fmt.Errorf("%w: bad time", errEnvelope)
	}
	rest = rest[n:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || n != uvarintSizeBytes(count) {
		return 0, nil, fmt.Errorf("%w: bad command count", errEnvelope)
	}
	rest = rest[n:]
	if count == 0 || count > BatchMaxCountLimit {
		return 0, nil, fmt.Errorf("%w: command count %d outside [1, %d]", errEnvelope, count, BatchMaxCountLimit)
	}
	// Each command needs at least its one-byte length, so a count larger than the remaining
	// bytes is corrupt; checking it first keeps a hostile count from allocating.
	if count > uint64(len(rest)) {
		return 0, nil, fmt.Errorf("%w: command count %d exceeds %d remaining bytes", errEnvelope, count, len(rest))
	}
	commands = make([][]byte, count)
	for i := range commands {
		length, n := binary.Uvarint(rest)
		if n <= 0 || n != uvarintSizeBytes(length) {
			return 0, nil, fmt.Errorf("%w: command %d: bad length", errEnvelope, i)
		}
		rest = rest[n:]
		if length > uint64(len(rest)) {
			return 0, nil, fmt.Errorf("%w: command %d: length %d exceeds %d remaining bytes", errEnvelope, i, length, len(rest))
		}
		commands[i] = rest[:length:length]
		rest = rest[length:]
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("%w: %d trailing bytes", errEnvelope, len(rest))
	}
	return timeUnixMs, commands, nil
}

func uvarintSizeBytes(v uint64) int {
	size := 1
	for v >= 0x80 {
		v >>= 7
		size++
	}
	return size
}

func varintSizeBytes(v int64) int {
	zigzag := uint64(v) << 1
	if v < 0 {
		zigzag = ^zigzag
	}
	return uvarintSizeBytes(zigzag)
}
