package fsm

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"
)

// HistoryReport is what VerifyHistory found in a store whose history matches its chain.
type HistoryReport struct {
	// Started is false when the store has no chain yet (nothing else is then set).
	Started bool
	// GenesisIndex is the log index of the chain's first record, Head its newest.
	GenesisIndex uint64
	Head         ChainHead
	// Records counts chain records (the genesis included), Writes the history writes in them.
	Records, Writes uint64
	// HistoryKeys counts the store's history records (keys under history prefixes).
	HistoryKeys uint64
	// Fresh says the chain started on a store without history, so it covers every history
	// record. Otherwise Uncovered counts the records written before it: they are checked only
	// by the families' own invariants (balances replaying from entries), not by the chain.
	Fresh     bool
	Uncovered uint64
}

// HistoryMismatch names the first place where the store and its chain disagree.
type HistoryMismatch struct {
	Index  uint64 // the chain record's log index (0: found in the store, outside any record)
	Key    []byte // the history key, when one is involved
	Reason string
}

func (e *HistoryMismatch) Error() string {
	switch {
	case e.Index != 0 && e.Key != nil:
		return fmt.Sprintf("history chain record at log index %d, key %q: %s", e.Index, e.Key, e.Reason)
	case e.Index != 0:
		return fmt.Sprintf("history chain record at log index %d: %s", e.Index, e.Reason)
	default:
		return fmt.Sprintf("history record %q: %s", e.Key, e.Reason)
	}
}

// VerifyHistory checks a store against its history chain, on one consistent view:
//   - the chain: records in log-index order, the first a genesis with a zero previous hash,
//     each later one carrying the hash of the one before;
//   - every history write the chain recorded is in the store: a key's newest recorded value is
//     its stored value (a deleted key is absent);
//   - every history record of the store was written under the chain (when the chain is fresh;
//     otherwise those that were not are counted as Uncovered).
//
// It reads every chain record and every history key once, and keeps 8 bytes per history key in
// memory. A *HistoryMismatch error names the first disagreement; other errors are the store's.
// The balances are the families' to recompute from the verified history (ledger's
// CheckInvariants).
func (m *Machine) VerifyHistory() (*HistoryReport, error) {
	report := &HistoryReport{}
	err := m.store.Read(func() error {
		view := m.store.View()
		defer view.Close()
		if view.err != nil {
			return view.err
		}
		applied := view.applied
		covered, appended, pending, err := verifyChain(view, applied, report)
		if err != nil || !report.Started {
			return err
		}
		if err := verifyAppended(view, appended, report); err != nil {
			return err
		}
		if len(pending) > 0 {
			first := slices.MinFunc(pending, func(a, b pendingWrite) int { return cmp.Compare(a.index, b.index) })
			return &HistoryMismatch{Index: first.index, Key: []byte(first.key), Reason: first.reason}
		}
		slices.Sort(covered)
		covered = slices.Compact(covered)
		for p := range m.reg.history {
			if !m.reg.history[p] {
				continue
			}
			err := ScanView(view, []byte{byte(p)}, func(k, _ []byte) error {
				report.HistoryKeys++
				if _, found := slices.BinarySearch(covered, fingerprint(k)); found {
					return nil
				}
				if report.Fresh {
					return &HistoryMismatch{Key: append([]byte(nil), k...), Reason: "in the store but not in the history chain"}
				}
				report.Uncovered++
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return report, nil
}

// verifyAppended checks that every appended record (up to the view's applied index) was
// appended under the chain: appends exist only under it, fresh or not. They are in the history
// store, and in the state store for a store restored from a record stream.
func verifyAppended(view *View, appended []uint64, report *HistoryReport) error {
	slices.Sort(appended)
	check := func(k, _ []byte) error {
		if !isAppendedKey(k) {
			return nil
		}
		report.HistoryKeys++
		if _, found := slices.BinarySearch(appended, fingerprint(k)); !found {
			return &HistoryMismatch{Key: append([]byte(nil), k...), Reason: "appended in the store but not in the history chain"}
		}
		return nil
	}
	if err := scanRange(view.Snapshot, []byte{prefixChain}, []byte{prefixChain + 1}, check); err != nil {
		return err
	}
	if h := view.historyReader(); h != nil {
		return scanRange(h, []byte{prefixChain}, chainUpper(view.applied), check)
	}
	return nil
}

// pendingWrite is a recorded history write that the store does not (yet) agree with: a later
// record of the same key may still match.
type pendingWrite struct {
	key    string
	index  uint64
	reason string
}

// verifyChain walks the chain records; it returns the fingerprints of every key the chain set
// and the writes the store disagrees with.
func verifyChain(view *View, applied uint64, report *HistoryReport) (covered, appended []uint64, pendingList []pendingWrite, err error) {
	pending := map[string]pendingWrite{}
	var prevHash [32]byte
	var prevIndex uint64
	// Every chain record: the state store's, then the history store's up to the applied index
	// (a record above it there is the tail of a batch a crash lost, trimmed at the next open).
	err = scanChain(view.Snapshot, view.historyReader(), 0, applied, func(k, v []byte) error {
		if len(k) != 9 {
			return &HistoryMismatch{Key: append([]byte(nil), k...), Reason: "malformed chain key"}
		}
		index := binary.BigEndian.Uint64(k[1:])
		bad := func(reason string, args ...any) error {
			return &HistoryMismatch{Index: index, Reason: fmt.Sprintf(reason, args...)}
		}
		if len(v) < 2+32 || v[0] != chainRecordVersion {
			return bad("malformed record")
		}
		flags := v[1]
		genesis := flags&chainGenesis != 0
		switch {
		case report.Records == 0 && !genesis:
			return bad("the chain's first record is not a genesis (records before it are missing)")
		case report.Records > 0 && genesis:
			return bad("a second genesis")
		case index > applied:
			return bad("after the store's applied index %d", applied)
		case report.Records > 0 && index <= prevIndex:
			return bad("log index not after the previous record's %d", prevIndex)
		case !bytes.Equal(v[2:34], prevHash[:]):
			return bad("previous hash %x, the record before hashes to %x (a record was changed, removed or inserted)", v[2:34], prevHash[:])
		}
		d := NewDecoder(v[34:])
		d.Varint() // batch time
		count := d.Uvarint()
		if d.Err() != nil {
			return bad("malformed record: %v", d.Err())
		}
		rest := d.buf
		for i := uint64(0); i < count; i++ {
			var kind byte
			var key, value []byte
			var ok bool
			if kind, key, value, rest, ok = nextChainWrite(rest); !ok {
				return bad("malformed write %d", i)
			}
			report.Writes++
			if kind == chainAppend {
				// Only in the history store, beside this record; never rewritten.
				stored, err := GetViewAppended(view, index, key)
				if err != nil {
					return err
				}
				appended = append(appended, fingerprint(appendedKey(index, key)))
				// Named once the chain itself is found whole (a changed chain record is the
				// likelier cause, and the next record's previous hash names it first).
				switch {
				case stored == nil:
					pending[string(appendedKey(index, key))] = pendingWrite{key: string(key), index: index, reason: "appended in the chain, missing from the store"}
				case !bytes.Equal(stored, value):
					pending[string(appendedKey(index, key))] = pendingWrite{key: string(key), index: index, reason: "the stored appended value differs from the chain's"}
				}
				continue
			}
			stored, closer, err := view.Get(key)
			found := err == nil
			if err != nil && !errors.Is(err, pebble.ErrNotFound) {
				return err
			}
			var agree bool
			switch kind {
			case chainSet:
				covered = append(covered, fingerprint(key))
				agree = found && bytes.Equal(stored, value)
			case chainDelete:
				agree = !found
			default:
				if found {
					closer.Close()
				}
				return &HistoryMismatch{Index: index, Key: key, Reason: "the chain records a range deletion of history"}
			}
			if found {
				closer.Close()
			}
			if agree {
				delete(pending, string(key))
				continue
			}
			reason := "the store's value differs from the chain's newest"
			switch {
			case kind == chainDelete:
				reason = "deleted in the chain, present in the store"
			case !found:
				reason = "in the chain, missing from the store"
			}
			pending[string(key)] = pendingWrite{key: string(key), index: index, reason: reason}
		}
		if len(rest) != 0 {
			return bad("%d bytes after the last write", len(rest))
		}
		if genesis {
			report.Started, report.GenesisIndex, report.Fresh = true, index, flags&chainFresh != 0
		}
		prevHash, prevIndex = chainHash(k, v), index
		report.Records++
		report.Head = ChainHead{Index: index, Hash: prevHash}
		return nil
	})
	for _, p := range pending {
		pendingList = append(pendingList, p)
	}
	return covered, appended, pendingList, err
}

// nextChainWrite decodes one history write of a chain record.
func nextChainWrite(b []byte) (kind byte, key, value, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, nil, nil, nil, false
	}
	kind, b = b[0], b[1:]
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		f := b[w : w+int(n)]
		b = b[w+int(n):]
		return f, true
	}
	if key, ok = field(); !ok {
		return 0, nil, nil, nil, false
	}
	switch kind {
	case chainSet, chainDeleteRange, chainAppend:
		if value, ok = field(); !ok {
			return 0, nil, nil, nil, false
		}
	case chainDelete:
	default:
		return 0, nil, nil, nil, false
	}
	return kind, key, value, b, true
}

// fingerprint is a key's 64-bit SHA-256 prefix: a forged key that collides with a covered one
// takes about 2^64 tries.
func fingerprint(k []byte) uint64 {
	sum := sha256.Sum256(k)
	return binary.BigEndian.Uint64(sum[:8])
}

// appliedIndexOf reads the applied log index from a view's clock record (0: none yet; a
// first-release store that keeps it in its own key has no chain either).
func appliedIndexOf(view *pebble.Snapshot) (uint64, error) {
	v, closer, err := view.Get(keyClock)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	d := NewDecoder(v)
	version, index := d.Byte(), d.Uvarint()
	if d.err != nil || version < 2 {
		return 0, nil
	}
	return index, nil
}
