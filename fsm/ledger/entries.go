package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"

	"github.com/gigaledger/gigaledger/fsm"
)

// Entries appended to the history store (design notes §3, "Where history can go", step 1).
// Entries were two random keys per transfer in the state store, e {wallet} 0 {time} {sequence},
// never rewritten, so every flush and compaction carried them down the levels: the dearest of
// apply's writes. From rules version RulesEntriesAppended on, once the history chain runs:
//
//   - An entry is appended to the history store (fsm.Batch.Append) under
//     % {wallet} 0 {sequence} beside its batch's chain record: a key that grows with the log
//     index, which the history store's compactions only move. Its value carries the log index
//     of the wallet's previous appended entry (0: none; the wallet's older entries, if any, are
//     in the state store as before) and its time.
//   - The wallet keeps the log index of its newest entry (Wallet.NewestEntryIndex: 8 bytes in
//     the live table, stored in its record, replayed by the wallet epoch like its balance).
//   - Every 16th entry of a wallet (sequence % 16 = 15) writes its place into the state store:
//     & {wallet} 0 {sequence / 16} → (log index, time). 1/16 of a key per entry.
//
// Reading entries s..e−1: each group of 16 is read from its last entry (the group's place, or
// the wallet's newest) back along the previous-entry pointers: at most 16 point reads per group,
// no range scan. A time bound finds its first entry by a binary search over the groups' times
// (a wallet's entries never go back in time: the batch clock does not), then within the group.
// Entries written before the rules version stay where they are and are read as before; a page
// that straddles reads both. CheckInvariants reads every entry the same way, so a wrong pointer,
// place or sequence is found.
//
// Why a rules version: releases from before it would neither write nor read these keys.
const RulesEntriesAppended uint32 = 7

// entryGroupLen is the number of entries per place written into the state store.
const entryGroupLen = 16

// entryRecordAppended is the value version of an appended entry: version | previous entry's
// log index | time | the compact record (records.go).
const entryRecordAppended byte = 3

// appendedEntryKey is an appended entry's key within the history store: % {wallet} 0 {sequence}.
func appendedEntryKey(walletID string, sequence uint64) []byte {
	return idSequenceKey(prefixEntryAppended, walletID, sequence)
}

// entryGroupKey is the state store key of a group's place: & {wallet} 0 {group}.
func entryGroupKey(walletID string, group uint64) []byte {
	return idSequenceKey(prefixEntryGroup, walletID, group)
}

// entriesAppended reports whether the batch being applied appends entries.
func (l *Ledger) entriesAppended() bool {
	return l.b.Rules() >= RulesEntriesAppended && l.b.HistoryChainStarted()
}

// appendEntry appends e for the wallet w (whose NewestEntryIndex it moves to this batch) and
// writes its group's place when it ends a group.
func (l *Ledger) appendEntry(w *Wallet, e *Entry) {
	// Append copies key and value: the ledger's scratch buffers serve every entry.
	v := append(l.recordScratch[:0], entryRecordAppended)
	v = binary.AppendUvarint(v, w.NewestEntryIndex)
	v = binary.AppendVarint(v, e.CreatedAt)
	v = appendEntryCompact(v, e)
	k := appendIDSequenceKey(l.keyScratch[:0], prefixEntryAppended, w.ID, e.Sequence)
	l.b.Append(k, v)
	l.recordScratch, l.keyScratch = v, k
	w.NewestEntryIndex = l.b.Index
	l.epochEntries++
	if e.Sequence%entryGroupLen == entryGroupLen-1 {
		l.set(entryGroupKey(w.ID, e.Sequence/entryGroupLen), appendPlace(make([]byte, 0, 20), l.b.Index, e.CreatedAt))
	}
}

// decodeAppendedEntry decodes an appended entry's key and value: its wallet, the entry, and the
// log index of the wallet's previous appended entry.
func decodeAppendedEntry(k, v []byte) (walletID string, e *Entry, prev uint64, err error) {
	// % {wallet} 0 {sequence}
	if len(k) < 1+1+8 || k[0] != prefixEntryAppended || k[len(k)-9] != 0 {
		return "", nil, 0, fmt.Errorf("malformed appended entry key %q", k)
	}
	walletID = string(k[1 : len(k)-9])
	e, prev, err = decodeAppendedEntryValue(walletID, binary.BigEndian.Uint64(k[len(k)-8:]), v)
	return walletID, e, prev, err
}

func decodeAppendedEntryValue(walletID string, sequence uint64, v []byte) (*Entry, uint64, error) {
	if len(v) == 0 || v[0] != entryRecordAppended {
		return nil, 0, fmt.Errorf("wallet %s: entry %d: unknown appended record version", walletID, sequence)
	}
	prev, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return nil, 0, fmt.Errorf("wallet %s: entry %d: malformed record", walletID, sequence)
	}
	rest := v[1+n:]
	createdAt, n := binary.Varint(rest)
	if n <= 0 {
		return nil, 0, fmt.Errorf("wallet %s: entry %d: malformed record", walletID, sequence)
	}
	// The compact record under a key of its time and sequence, as the state store keeps it.
	e, err := decodeStoredEntry(walletID, appendTimeSequence(nil, createdAt, sequence), rest[n:])
	return e, prev, err
}

// appendPlace encodes where appended history is: a log index and a time (a group of entries'
// place, a batch of transactions).
func appendPlace(dst []byte, index uint64, timeMs int64) []byte {
	return binary.AppendVarint(binary.AppendUvarint(dst, index), timeMs)
}

// decodePlace decodes appendPlace's value; what names the record in an error.
func decodePlace(what string, v []byte) (index uint64, timeMs int64, err error) {
	index, n := binary.Uvarint(v)
	if n <= 0 || index == 0 {
		return 0, 0, fmt.Errorf("malformed %s %x", what, v)
	}
	timeMs, m := binary.Varint(v[n:])
	if m <= 0 || n+m != len(v) {
		return 0, 0, fmt.Errorf("malformed %s %x", what, v)
	}
	return index, timeMs, nil
}

// decodeEntryGroup decodes a group's place: the log index and time of its last entry.
func decodeEntryGroup(v []byte) (uint64, int64, error) { return decodePlace("entry group", v) }

// readSource is where a reader finds entries and transactions: the store (queries, within
// Store.Read, and apply) or a view (checkers).
type readSource struct {
	get          func(k []byte) ([]byte, error)
	appended     func(index uint64, k []byte) ([]byte, error)
	scanAppended func(index uint64, prefix []byte, fn func(k, v []byte) error) error
	iter         func(lower, upper []byte) (*pebble.Iterator, error)
	// legacy says the state store may hold entries written before RulesEntriesAppended.
	legacy bool
}

// storeSource reads the store (queries within Store.Read, and apply).
func (l *Ledger) storeSource() readSource {
	return readSource{get: l.store.Get, appended: l.store.GetAppended, scanAppended: l.store.ScanAppended,
		iter: l.store.NewIter, legacy: l.legacyEntries.Load()}
}

// viewSource reads a view (checkers).
func viewSource(view *fsm.View) readSource {
	return readSource{
		get:      func(k []byte) ([]byte, error) { return fsm.GetView(view, k) },
		appended: func(index uint64, k []byte) ([]byte, error) { return fsm.GetViewAppended(view, index, k) },
		scanAppended: func(index uint64, prefix []byte, fn func(k, v []byte) error) error {
			return fsm.ScanViewAppended(view, index, prefix, fn)
		},
		iter: func(lower, upper []byte) (*pebble.Iterator, error) {
			return view.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		},
		legacy: true,
	}
}

// walletEntries reads one wallet's entries as of one state of the wallet (its entry count and
// newest entry's log index, which the caller read together).
type walletEntries struct {
	src   readSource
	w     *Wallet
	first uint64 // the first appended sequence: the wallet's entries below it are in the state store
}

// entriesOf prepares the reading of w's entries.
func (src readSource) entriesOf(w *Wallet) (*walletEntries, error) {
	we := &walletEntries{src: src, w: w}
	if w.NewestEntryIndex == 0 {
		we.first = w.EntryCount // nothing appended
		return we, nil
	}
	if !src.legacy {
		return we, nil
	}
	prefix := prefixOf(prefixEntry, w.ID)
	it, err := src.iter(prefix, fsm.PrefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) < len(prefix)+16 {
			return nil, fmt.Errorf("wallet %s: malformed entry key %q", w.ID, k)
		}
		we.first = binary.BigEndian.Uint64(k[len(k)-8:]) + 1
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if we.first >= w.EntryCount {
		return nil, fmt.Errorf("wallet %s: %d entries in the state store, %d in all, and an appended one", w.ID, we.first, w.EntryCount)
	}
	return we, nil
}

// anchor is the log index and time of the last entry of group g (or of the wallet's newest
// entry, when that comes first), and that entry's sequence.
func (we *walletEntries) anchor(g uint64) (index uint64, timeMs int64, sequence uint64, err error) {
	last := we.w.EntryCount - 1
	if end := g*entryGroupLen + entryGroupLen - 1; end < last {
		v, err := we.src.get(entryGroupKey(we.w.ID, g))
		if err != nil {
			return 0, 0, 0, err
		}
		if v == nil {
			return 0, 0, 0, fmt.Errorf("wallet %s: entry group %d has no place", we.w.ID, g)
		}
		index, timeMs, err = decodeEntryGroup(v)
		return index, timeMs, end, err
	}
	e, _, err := we.read(we.w.NewestEntryIndex, last)
	if err != nil {
		return 0, 0, 0, err
	}
	return we.w.NewestEntryIndex, e.CreatedAt, last, nil
}

// read reads the appended entry with the given sequence at log index index, and the log index
// of the entry before it.
func (we *walletEntries) read(index, sequence uint64) (*Entry, uint64, error) {
	v, err := we.src.appended(index, appendedEntryKey(we.w.ID, sequence))
	if err != nil {
		return nil, 0, err
	}
	if v == nil {
		return nil, 0, fmt.Errorf("wallet %s: entry %d is not at log index %d", we.w.ID, sequence, index)
	}
	e, prev, err := decodeAppendedEntryValue(we.w.ID, sequence, v)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case sequence == we.first && prev != 0:
		err = fmt.Errorf("wallet %s: entry %d, the first appended, points to log index %d", we.w.ID, sequence, prev)
	case sequence > we.first && (prev == 0 || prev > index):
		err = fmt.Errorf("wallet %s: entry %d at log index %d points to log index %d", we.w.ID, sequence, index, prev)
	}
	return e, prev, err
}

// each calls fn with the appended entries from..to−1 in order (we.first ≤ from).
func (we *walletEntries) each(from, to uint64, fn func(*Entry) error) error {
	buf := make([]*Entry, 0, entryGroupLen)
	for lo := from; lo < to; {
		g := lo / entryGroupLen
		hi := min(g*entryGroupLen+entryGroupLen, to)
		index, anchorTime, sequence, err := we.anchor(g)
		if err != nil {
			return err
		}
		buf = buf[:0]
		for anchor := true; ; anchor = false {
			e, prev, err := we.read(index, sequence)
			if err != nil {
				return err
			}
			// A place's time is its entry's (time-bounded pages search by it).
			if anchor && e.CreatedAt != anchorTime {
				return fmt.Errorf("wallet %s: entry group %d's place says time %d, its entry %d was created at %d", we.w.ID, g, anchorTime, sequence, e.CreatedAt)
			}
			if sequence < hi {
				buf = append(buf, e)
			}
			if sequence == lo {
				break
			}
			index, sequence = prev, sequence-1
		}
		slices.Reverse(buf)
		for _, e := range buf {
			if err := fn(e); err != nil {
				return err
			}
		}
		lo = hi
	}
	return nil
}

// firstAtOrAfter is the sequence of the first appended entry at or after timeMs, at or after
// sequence from (the entry count when there is none).
func (we *walletEntries) firstAtOrAfter(from uint64, timeMs int64) (uint64, error) {
	count := we.w.EntryCount
	if from >= count {
		return count, nil
	}
	// The first group whose last entry is at or after timeMs (times never decrease).
	lo, hi := from/entryGroupLen, (count-1)/entryGroupLen+1
	var failed error
	g := lo + uint64(searchUint(hi-lo, func(i uint64) bool {
		if failed != nil {
			return true
		}
		_, t, _, err := we.anchor(lo + i)
		if err != nil {
			failed = err
			return true
		}
		return t >= timeMs
	}))
	if failed != nil {
		return 0, failed
	}
	if g == hi {
		return count, nil
	}
	found := count
	start := max(from, g*entryGroupLen)
	err := we.each(start, min(g*entryGroupLen+entryGroupLen, count), func(e *Entry) error {
		if found == count && e.CreatedAt >= timeMs {
			found = e.Sequence
		}
		return nil
	})
	return found, err
}

// searchUint is sort.Search over uint64.
func searchUint(n uint64, f func(uint64) bool) uint64 {
	i, j := uint64(0), n
	for i < j {
		h := i + (j-i)/2
		if !f(h) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// page answers one page of the wallet's entries within r: the state store's entries first, as
// before, then the appended ones.
func (we *walletEntries) page(r TimeRange, skip, take int) ([]Entry, bool, error) {
	entries := []Entry{}
	w := we.w
	lower, upper := timeBounds(prefixOf(prefixEntry, w.ID), r)
	if bytes.Compare(lower, upper) >= 0 {
		return entries, false, nil // an empty time range
	}
	if we.first > 0 {
		// The state store's entries, by time: skip and take as far as they go.
		full, err := func() (bool, error) {
			it, err := we.src.iter(lower, upper)
			if err != nil {
				return false, err
			}
			defer it.Close()
			for valid := it.First(); valid; valid = it.Next() {
				if skip > 0 {
					skip--
					continue
				}
				if len(entries) == take {
					return true, nil
				}
				e, err := decodeStoredEntry(w.ID, it.Key(), it.Value())
				if err != nil {
					return false, err
				}
				entries = append(entries, *e)
			}
			return false, it.Error()
		}()
		if err != nil || full {
			return entries, full, err
		}
	}
	if we.first >= w.EntryCount {
		return entries, false, nil
	}
	start, end := we.first, w.EntryCount
	var err error
	// No search for a bound outside the wallet's life: its entries are between its creation
	// and its last update (the batch clock never goes back).
	if r.FromMs > w.CreatedAt {
		if start, err = we.firstAtOrAfter(start, r.FromMs); err != nil {
			return nil, false, err
		}
	}
	if r.ToMs < w.UpdatedAt {
		if end, err = we.firstAtOrAfter(start, r.ToMs+1); err != nil {
			return nil, false, err
		}
	}
	if uint64(skip) >= end-start {
		return entries, false, nil
	}
	from := start + uint64(skip)
	to := min(from+uint64(take-len(entries)), end)
	err = we.each(from, to, func(e *Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return entries, to < end, nil
}
