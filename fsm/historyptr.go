package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble"
)

// History written once (issue 15, design note 3 step 1). Once a shard's chain has started and
// its rules are at RulesHistoryOnce, a history write (Batch.Set of a key under a history prefix)
// stores the record only in the batch's chain record; the key itself keeps a pointer to that
// write:
//
//	historyPointerTag, uvarint log index of the chain record, uvarint offset of the write
//	inside the record's writes (the write's kind byte)
//
// about 8 bytes instead of the record (an entry ~60, a transaction ~100+). Before the raise, or
// before the chain starts, or in a store of an older release, the key holds the record itself;
// both forms stay readable forever. Families' history records never start with the tag (their
// first byte is a small record version), so the first byte tells them apart.
//
// Readers resolve a pointer with a HistoryReader (or Store.GetHistory): it reads the chain
// record once and keeps it while the next pointers name the same record, so an entries page
// reads one chain record per batch it spans. Resolution checks that the named write sets the
// same key, so a pointer can never hand out another key's record.
//
// Apply reads the store as of the previous batch (Batch.Get), whose chain records are all
// committed; what a batch writes it keeps in memory (the ledger's pending maps), so a pointer
// into the chain record of the batch being applied is never read.
//
// Only the stored bytes change, never a result; but replicas on two binaries would hold
// different bytes (digests differ), hence the rules version.
const historyPointerTag byte = 0xC7

// RulesHistoryOnce is the rules version from which history writes store a pointer into the
// chain record instead of the record (see above).
const RulesHistoryOnce uint32 = 2

// IsHistoryPointer reports whether a stored history value is a pointer into a chain record.
func IsHistoryPointer(v []byte) bool { return len(v) > 0 && v[0] == historyPointerTag }

func appendHistoryPointer(buf []byte, index, offset uint64) []byte {
	buf = append(buf, historyPointerTag)
	buf = binary.AppendUvarint(buf, index)
	return binary.AppendUvarint(buf, offset)
}

// ParseHistoryPointer reads a pointer: the chain record's log index and the write's offset in
// it (ok false: not a pointer, or malformed).
func ParseHistoryPointer(v []byte) (index, offset uint64, ok bool) { return parseHistoryPointer(v) }

func parseHistoryPointer(v []byte) (index, offset uint64, ok bool) {
	if !IsHistoryPointer(v) {
		return 0, 0, false
	}
	index, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, 0, false
	}
	offset, m := binary.Uvarint(v[1+n:])
	if m <= 0 || 1+n+m != len(v) {
		return 0, 0, false
	}
	return index, offset, true
}

// chainRecordWrites returns the writes section of a chain record's value.
func chainRecordWrites(v []byte) ([]byte, bool) {
	if len(v) < 2+32 || v[0] != chainRecordVersion {
		return nil, false
	}
	b := v[34:]
	if _, n := binary.Varint(b); n <= 0 {
		return nil, false
	} else {
		b = b[n:]
	}
	if _, n := binary.Uvarint(b); n <= 0 {
		return nil, false
	} else {
		b = b[n:]
	}
	return b, true
}

// HistoryReader resolves stored history values. It keeps the last chain record it read (pinned
// in the store's cache, not copied) until the next pointer names another one or Close. Not for
// concurrent use; read through it inside Store.Read (or over a View the caller keeps open).
type HistoryReader struct {
	r      pebble.Reader
	index  uint64
	writes []byte // the kept record's writes section; nil when none is kept
	closer io.Closer
	// Reads counts the chain records read (tests check one read per batch spanned).
	Reads int
}

// HistoryReader returns a reader over the live store (use it inside Read; Close it).
func (s *Store) HistoryReader() *HistoryReader { return &HistoryReader{r: s.db} }

// ViewHistoryReader returns a reader over a View (Close it before the view).
func ViewHistoryReader(view *pebble.Snapshot) *HistoryReader { return &HistoryReader{r: view} }

// Resolve returns the record a history key holds: v itself when it is a record, else the write
// its pointer names. The result is valid until the next Resolve or Close; decode or copy it.
func (h *HistoryReader) Resolve(k, v []byte) ([]byte, error) {
	if !IsHistoryPointer(v) {
		return v, nil
	}
	index, offset, ok := parseHistoryPointer(v)
	if !ok {
		return nil, fmt.Errorf("history key %q: malformed pointer %x", k, v)
	}
	key, value, err := h.Write(index, offset)
	if err != nil {
		return nil, fmt.Errorf("history key %q: %w", k, err)
	}
	if !bytes.Equal(key, k) {
		return nil, fmt.Errorf("history key %q: chain record %d holds no write of it at offset %d", k, index, offset)
	}
	return value, nil
}

// Write returns the history write (a set) at offset in the chain record of log index index:
// its key and value, valid until the next call or Close.
func (h *HistoryReader) Write(index, offset uint64) (key, value []byte, err error) {
	if h.writes == nil || h.index != index {
		h.release()
		rec, closer, err := h.r.Get(chainKey(index))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil, fmt.Errorf("chain record %d is missing", index)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read chain record %d: %w", index, err)
		}
		writes, ok := chainRecordWrites(rec)
		if !ok {
			closer.Close()
			return nil, nil, fmt.Errorf("chain record %d is malformed", index)
		}
		h.index, h.writes, h.closer = index, writes, closer
		h.Reads++
	}
	if offset >= uint64(len(h.writes)) {
		return nil, nil, fmt.Errorf("pointer past the end of chain record %d", index)
	}
	kind, key, value, _, ok := nextChainWrite(h.writes[offset:])
	if !ok || kind != chainSet {
		return nil, nil, fmt.Errorf("chain record %d holds no history write at offset %d", index, offset)
	}
	return key, value, nil
}

func (h *HistoryReader) release() {
	if h.closer != nil {
		h.closer.Close()
	}
	h.writes, h.closer = nil, nil
}

// Close releases the kept chain record.
func (h *HistoryReader) Close() { h.release() }

// GetHistory reads one history key and resolves it (nil, nil when missing). It returns a copy.
func (s *Store) GetHistory(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", k, err)
	}
	defer closer.Close()
	if !IsHistoryPointer(v) {
		return append([]byte(nil), v...), nil
	}
	h := s.HistoryReader()
	defer h.Close()
	rec, err := h.Resolve(k, v)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), rec...), nil
}
