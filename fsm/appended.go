package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Appended history (design notes §3, "Where history can go": step 1). A family may write a
// history record that lives only in the history store, beside its batch's chain record:
//
//	# {log index} 0x01 {key}  →  value
//
// Batch.Append records the write in the batch's chain record (kind chainAppend, hashed with the
// rest) and commitRecord stores it with the record, in one history store batch. The keys only
// grow with the log index, like the records themselves, so the history store's files still never
// overlap and its compactions stay moves; the state store's flushes and compactions never see
// these bytes. An appended record is never rewritten or deleted (but by trimHistory, above the
// applied index, after a crash): a family that needs to find one keeps its log index (and the
// key is exact from the log index and the family's key, so a read is one point lookup).
//
// Readers: Store.GetAppended and ScanAppended (queries, under Store.Read; apply), and
// GetViewAppended and ScanViewAppended (checkers on a view). The chain's readers (scanChain and
// those on it) step over appended keys; VerifyHistory checks every appended write against the
// store, and every appended key there against the chain; the digest covers them as the records
// they sit beside. A store restored from a record stream (one store) keeps the records appended
// before the restore in the state store, where every reader looks too.

// chainAppendMark follows a chain key in an appended record's key.
const chainAppendMark byte = 0x01

// appendedKey is the history store key of an appended record.
func appendedKey(index uint64, k []byte) []byte {
	out := make([]byte, 10+len(k))
	putAppendedKey(out, index, k)
	return out
}

// putAppendedKey writes appendedKey(index, k) into out, which has its length.
func putAppendedKey(out []byte, index uint64, k []byte) {
	out[0] = prefixChain
	binary.BigEndian.PutUint64(out[1:9], index)
	out[9] = chainAppendMark
	copy(out[10:], k)
}

// isAppendedKey reports whether a history store key is an appended record's (not a chain
// record's).
func isAppendedKey(k []byte) bool {
	return len(k) > 9 && k[0] == prefixChain && k[9] == chainAppendMark
}

// Append records a history write that lives only in the history store, under the batch's log
// index and k (see above). Families call it only once the history chain has started
// (HistoryChainStarted) and the shard's rules are at RulesHistoryStore or later; a call without
// them is a bug in the family, and panics. It panics on a store failure as Set.
func (b *Batch) Append(k, v []byte) {
	if !b.m.chain.started || b.m.rules < RulesHistoryStore {
		panic(fmt.Sprintf("fsm: log entry %d: Append before the history chain and store", b.Index))
	}
	b.m.chain.recordHistory(chainAppend, k, v)
	b.m.chain.appends = true
}

// commitWithAppends commits a chain record (key, value) and the writes it appended to the
// history store in one batch, in key order. The batch is sized for all of it up front and each
// appended key is built in the batch's own memory: a log entry of batched requests appends
// thousands of records, and building its batch (growing by doubling past Pebble's 1 MiB pooled
// size, each key made and then copied) was 8 % of a follower's CPU in a batched run
// (bench/RESULTS.md, session 22). The appended writes go in key order (keyOrder), as the state
// store's do (batchwrites.go): in apply order, each of them searched Pebble's memtable from the
// top, which was 14 % of apply's CPU (bench/RESULTS.md, session 23). Writes of one key keep
// their order (keyOrder breaks ties by arrival), so what the batch stores is unchanged.
func (c *chainState) commitWithAppends(history *pebble.DB, index uint64, key, record []byte) error {
	rest, count, err := chainWrites(record)
	if err != nil {
		return err
	}
	writesBytes := len(rest)
	appended := c.appended[:0]
	defer func() {
		clear(appended) // they point into the record
		c.appended = appended[:0]
		if cap(appended) > sortedWritesKeptOps {
			c.appended, c.appendOrder = nil, nil
		}
	}()
	for ; count > 0; count-- {
		kind, k, v, next, ok := nextChainWrite(rest)
		if !ok {
			return fmt.Errorf("malformed write")
		}
		if kind == chainAppend {
			appended = append(appended, [2][]byte{k, v})
		}
		rest = next
	}
	var mask uint64
	c.appendOrder, mask = keyOrder(len(appended), func(i int) []byte { return appended[i][0] }, c.appendOrder)

	// A batch entry: kind, two varints, the key and the value; an appended key adds 10 bytes to
	// the record's, whose own entry in the record has a kind and two varints too.
	const entryOverhead = 1 + 2*binary.MaxVarintLen32
	hb := history.NewBatchWithSize(batchHeaderBytes + entryOverhead + len(key) + len(record) + writesBytes + len(appended)*(entryOverhead+10))
	defer hb.Close()
	if err := hb.Set(key, record, nil); err != nil {
		return err
	}
	for _, o := range c.appendOrder {
		k, v := appended[o&mask][0], appended[o&mask][1]
		op := hb.SetDeferred(10+len(k), len(v))
		putAppendedKey(op.Key, index, k)
		copy(op.Value, v)
		if err := op.Finish(); err != nil {
			return err
		}
	}
	return hb.Commit(pebble.NoSync)
}

// batchHeaderBytes is a Pebble batch's header (sequence number and count).
const batchHeaderBytes = 12

// chainWrites returns a chain record value's writes and their count.
func chainWrites(v []byte) (writes []byte, count uint64, err error) {
	if len(v) < 2+32 || v[0] != chainRecordVersion {
		return nil, 0, fmt.Errorf("malformed chain record")
	}
	rest := v[2+32:]
	_, n := binary.Varint(rest)
	if n <= 0 {
		return nil, 0, fmt.Errorf("chain record without a time")
	}
	rest = rest[n:]
	count, n = binary.Uvarint(rest)
	if n <= 0 {
		return nil, 0, fmt.Errorf("chain record without a write count")
	}
	return rest[n:], count, nil
}

// GetAppended reads a record appended at log index under k (nil, nil: none). Call it within
// Read. A record a batch appended is in the history store before the batch is in the state
// store, so a log index read from the state store (or from what apply published after its
// commit) always finds its records.
//
// A store restored from a record stream (Snapshot: one store) holds the records appended
// before it in the state store, with the chain records (writeSnapshot): a record the history
// store lacks is looked for there.
func (s *Store) GetAppended(index uint64, k []byte) ([]byte, error) {
	return getAppended(s.db, s.historyReader(), index, k)
}

// GetViewAppended is GetAppended on a view.
func GetViewAppended(view *View, index uint64, k []byte) ([]byte, error) {
	if view.err != nil {
		return nil, view.err
	}
	if index > view.applied {
		return nil, nil
	}
	return getAppended(view.Snapshot, view.historyReader(), index, k)
}

func getAppended(state, history pebble.Reader, index uint64, k []byte) ([]byte, error) {
	key := appendedKey(index, k)
	if history != nil {
		if v, err := getFrom(history, key); v != nil || err != nil {
			return v, err
		}
	}
	return getFrom(state, key)
}

// getFrom reads one key of a store or a snapshot: a copy of its value, or nil when it is missing.
func getFrom(r pebble.Reader, k []byte) ([]byte, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", k, err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// ScanAppended calls fn, in key order, with the records appended at log index index under keys
// that start with prefix (keys without the index). Call it within Read. Like GetAppended, it
// reads the state store for a store restored from a record stream.
func (s *Store) ScanAppended(index uint64, prefix []byte, fn func(k, v []byte) error) error {
	return scanAppended(s.db, s.historyReader(), index, prefix, fn)
}

// ScanViewAppended is ScanAppended on a view.
func ScanViewAppended(view *View, index uint64, prefix []byte, fn func(k, v []byte) error) error {
	if view.err != nil {
		return view.err
	}
	if index > view.applied {
		return nil
	}
	return scanAppended(view.Snapshot, view.historyReader(), index, prefix, fn)
}

func scanAppended(state, history pebble.Reader, index uint64, prefix []byte, fn func(k, v []byte) error) error {
	lower, upper := appendedKey(index, prefix), appendedKey(index, PrefixEnd(prefix))
	found := false
	each := func(k, v []byte) error {
		found = true
		return fn(k[10:], v)
	}
	if history != nil {
		if err := scanRange(history, lower, upper, each); err != nil || found {
			return err
		}
	}
	return scanRange(state, lower, upper, each)
}
