package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble"
)

// The history store (design notes §3, "History in its own store", step 1). From rules version
// RulesHistoryStore on, a shard's history chain records (chain.go) go to a second Pebble store
// beside the state store, <state store>/history, instead of into the state store. Its only keys
// are `# {log index}`, which only grow, so its files never overlap and its compactions move
// files down without rewriting them; the state store's flushes and compactions no longer carry
// the chain's bytes. It is the base that the transactions, events and entries move onto next.
//
//   - Apply commits the batch's chain record to the history store before the state batch, and
//     writes the chain head (log index, hash) into the state batch (keyChainHead).
//   - Durability. Neither store has a write-ahead log: each is durable at its last flush. Every
//     flush of the state store flushes the history store first (flushHistory, called as the
//     state flush creates its first file, before the flush is recorded), so the history store
//     is always durable at least as far as the state store. At open, records above the state
//     store's applied index are deleted: Raft replays those entries and apply writes the same
//     records again. The stored head must then be the history store's newest record, or the
//     store refuses to open.
//   - Readers take the state store's chain records first (written before the rules version was
//     raised, or restored from a record stream), then the history store's, up to the state's
//     applied index: every record of the state store is older than every record of the history
//     store, so the two ranges together are in key order.
//   - The directory sits inside the state store's, which Pebble ignores (it is not a Pebble file
//     name), so a checkpoint, a restore's swap and its crash recovery move both stores as one.
//
// Why a rules version: a checkpoint stream that carries a history store (version 2) cannot be
// read by a release from before it; while any replica of a shard runs such a release the rules
// stay below RulesHistoryStore, the records stay in the state store and checkpoints stay
// version 1.
const RulesHistoryStore uint32 = 4

const historyDirName = "history"

// keyChainHead is the chain head as of the state store's batch, when its record is in the
// history store: log index (8 bytes, big-endian) and hash.
var keyChainHead = []byte("m\x00chainhead")

// historyMemTableBytes is the history store's memtable. It holds about what the state store's
// memtable spans (~35 MB of records per state flush at 512-transfer batches), so that the
// history store flushes about once per state flush, in files of several MiB. Pebble grows a
// new store's memtables from 256 KiB, so a quiet shard does not hold this much. The block
// cache is the state store's (openStores).
//
// Why no write-ahead log: with one, the history store wrote every record twice, and the state
// flush waited on its sync. Measured (BenchmarkApplyTransfers, 6M transfers, one core): 81.9k
// transfers/s with the log and a 4 MiB memtable, 84.4k with the log and this memtable, 105.3k
// without the log (bench/RESULTS.md, session 22).
const historyMemTableBytes = 32 << 20

// openHistory opens (or creates) the history store inside the state store's directory, with
// its merger running unless readOnly. readOnly opens an existing one and returns nil when there
// is none (a store written before).
func openHistory(statePath string, readOnly bool, logger *slog.Logger, cache *pebble.Cache) (*pebble.DB, *historyMerger, error) {
	path := filepath.Join(statePath, historyDirName)
	if readOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
	}
	merger := newHistoryMerger(logger)
	events := pebbleEvents(logger, "history store", nil)
	logFlush := events.FlushEnd
	events.FlushEnd = func(i pebble.FlushInfo) {
		if logFlush != nil {
			logFlush(i)
		}
		merger.flushed()
	}
	opts := &pebble.Options{
		Cache:        cache,
		MemTableSize: historyMemTableBytes,
		// Each flush makes one file of about a MiB whose keys overlap nothing. Pebble alone
		// would keep them in L0 up to its threshold of 500 files and then move them down one
		// by one, never merging them (bench/RESULTS.md, session 17): one file per 2–4 MB of
		// records for ever, and a checkpoint links every one. historyMerger merges them.
		Levels:              historyLevels(),
		MaxManifestFileSize: storeManifestMaxBytes,
		// The state store's flushes flush it first (flushHistory). Pebble still replays a log
		// that a release before this one left.
		DisableWAL:    true,
		Logger:        quietPebbleLogger{},
		ReadOnly:      readOnly,
		EventListener: events,
	}
	db, err := pebble.Open(path, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("open history store %s: %w", path, err)
	}
	if readOnly {
		return db, nil, nil
	}
	merger.start(db)
	return db, merger, nil
}

// historyTargetFileBytes is the size of the files a merge writes.
const historyTargetFileBytes = 64 << 20

// historyLevels are the history store's level options: merged files of historyTargetFileBytes
// at every level (Pebble's default starts at 2 MiB), and no filters (nothing looks a key up that
// may be absent).
func historyLevels() []pebble.LevelOptions {
	levels := make([]pebble.LevelOptions, storeLevelCount)
	for i := range levels {
		levels[i].TargetFileSize = historyTargetFileBytes
	}
	return levels
}

// historyMergeFiles is how many flushed files L0 of the history store gathers before the
// merger compacts them into one run of large files in the level below (a variable for tests).
var historyMergeFiles = 64

// historyMerger merges the history store's flushed files, which Pebble would only move: after
// a flush, once L0 holds historyMergeFiles files, one manual compaction of their key range
// rewrites them into the base level as files of the level's target size (tens of MiB). Their
// keys are newer than everything below L0, so nothing else is rewritten: each record is
// written twice in all (flush, merge). It runs only after flushes, never at open, so a restart
// does not carry a compaction's buffers, and at the lowest CPU priority (pebbleEvents).
type historyMerger struct {
	logger *slog.Logger
	db     *pebble.DB
	wake   chan struct{} // one pending wake-up at most
	quit   chan struct{}
	done   chan struct{}
}

func newHistoryMerger(logger *slog.Logger) *historyMerger {
	return &historyMerger{logger: logger, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// flushed wakes the merger (Pebble's FlushEnd; it never blocks).
func (h *historyMerger) flushed() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *historyMerger) start(db *pebble.DB) {
	h.db = db
	go h.run()
}

func (h *historyMerger) run() {
	defer close(h.done)
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		}
		select {
		case <-h.quit:
			return
		default:
		}
		if err := h.merge(); err != nil && h.logger != nil {
			// The files stay as they are and the next flush tries again.
			h.logger.Warn("history store: merging flushed files failed", "error", err)
		}
	}
}

// merge compacts L0's files when there are enough of them.
func (h *historyMerger) merge() error {
	tables, err := h.db.SSTables()
	if err != nil || len(tables) == 0 || len(tables[0]) < historyMergeFiles {
		return err
	}
	var lower, upper []byte
	for _, t := range tables[0] {
		if lower == nil || bytes.Compare(t.Smallest.UserKey, lower) < 0 {
			lower = t.Smallest.UserKey
		}
		if upper == nil || bytes.Compare(t.Largest.UserKey, upper) > 0 {
			upper = t.Largest.UserKey
		}
	}
	return h.db.Compact(lower, append(bytes.Clone(upper), 0), false)
}

// stop ends the merger, after the merge it may be running. A nil merger (a read-only store) has
// nothing to stop.
func (h *historyMerger) stop() {
	if h == nil {
		return
	}
	close(h.quit)
	<-h.done
}

// closeHistory closes the history store, its merger first (a flush would wake it), flushing its
// log into a table first when flush is set.
func closeHistory(history *pebble.DB, merger *historyMerger, flush bool) error {
	merger.stop()
	var err error
	if flush {
		err = history.Flush()
	}
	if closeErr := history.Close(); err == nil {
		err = closeErr
	}
	return err
}

// flushHistory makes the history store durable as far as apply has written it; the state
// store calls it as each of its flushes creates its first file, before the flush is recorded
// (so a state store is never durable past its history store). Every batch in the memtables
// being flushed committed its history records before its state writes. A failure would let the
// state store become durable past the history store, which the next open refuses, so the node
// stops instead (the disk is failing).
func flushHistory(history *pebble.DB) {
	if err := history.Flush(); err != nil {
		panic(fmt.Sprintf("fsm: flush the history store before a state flush: %v", err))
	}
}

// openStores opens the history store and then the state store, whose flushes flush the
// history store first. Their blocks are cached in shared, or in a cache of storeCacheBytes of
// their own when shared is nil.
func openStores(statePath string, readOnly bool, logger *slog.Logger, shared *pebble.Cache) (state, history *pebble.DB, merger *historyMerger, err error) {
	if !readOnly {
		if err := os.MkdirAll(statePath, 0o750); err != nil {
			return nil, nil, nil, fmt.Errorf("open state: %w", err)
		}
	}
	// One block cache for both: appended entries are read by point lookups (ledger's entries
	// pages), and the state store's cache bounds the shard's memory for both.
	cache := shared
	if cache == nil {
		cache = pebble.NewCache(storeCacheBytes)
		defer cache.Unref()
	}
	history, merger, err = openHistory(statePath, readOnly, logger, cache)
	if err != nil {
		return nil, nil, nil, err
	}
	var beforeFlush func()
	if history != nil && !readOnly {
		beforeFlush = func() { flushHistory(history) }
	}
	state, err = openPebbleCached(statePath, readOnly, logger, beforeFlush, cache)
	if err != nil {
		if history != nil {
			closeHistory(history, merger, false)
		}
		return nil, nil, nil, err
	}
	return state, history, merger, nil
}

// trimHistory deletes the history store's records above the state store's applied index:
// written before a crash that lost the state batches they belong to. Raft replays those
// entries, and apply writes the same records again.
func (s *Store) trimHistory(applied uint64) error {
	if s.history == nil || s.readOnly || applied == math.MaxUint64 {
		return nil
	}
	it, err := s.history.NewIter(&pebble.IterOptions{LowerBound: chainKey(applied + 1), UpperBound: []byte{prefixChain + 1}})
	if err != nil {
		return err
	}
	above := it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if !above {
		return nil
	}
	// Not flushed: until the next flush makes it durable, a crash leaves the records to the
	// next open's trim; and the records replay writes again come after the deletion.
	return s.history.DeleteRange(chainKey(applied+1), []byte{prefixChain + 1}, pebble.NoSync)
}

// historyHoldsRecords reports whether the history store holds any record.
func (s *Store) historyHoldsRecords() (bool, error) {
	if s.history == nil {
		return false, nil
	}
	k, _, err := firstChainRecord(s.history)
	return k != nil, err
}

// chainHeadUpTo is the newest chain record up to log index upTo as a head (ok false: none).
func chainHeadUpTo(state, history pebble.Reader, upTo uint64) (head ChainHead, ok bool, err error) {
	k, v, err := lastChainRecord(state, history, upTo)
	if err != nil || k == nil {
		return ChainHead{}, false, err
	}
	if len(k) != 9 {
		return ChainHead{}, false, fmt.Errorf("history chain: malformed key %x", k)
	}
	return ChainHead{Index: binary.BigEndian.Uint64(k[1:]), Hash: chainHash(k, v)}, true, nil
}

// chainUpper is the exclusive upper bound of chain keys up to log index upTo.
func chainUpper(upTo uint64) []byte {
	if upTo == math.MaxUint64 {
		return []byte{prefixChain + 1}
	}
	return chainKey(upTo + 1)
}

// scanChain calls fn with the chain records after log index after: the state store's (all of
// them: a record there past the applied index is for VerifyHistory to name), then the history
// store's up to log index upTo. history may be nil (no history store).
func scanChain(state, history pebble.Reader, after, upTo uint64, fn func(k, v []byte) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	ranges := []struct {
		r     pebble.Reader
		upper []byte
	}{{state, []byte{prefixChain + 1}}, {history, chainUpper(upTo)}}
	lower := chainKey(after + 1)
	if after == 0 {
		lower = []byte{prefixChain} // every key of the prefix, a malformed one too (VerifyHistory)
	}
	for _, rg := range ranges {
		if rg.r == nil {
			continue
		}
		if err := scanRange(rg.r, lower, rg.upper, skipAppended(fn)); err != nil {
			return err
		}
	}
	return nil
}

// skipAppended wraps a chain record callback to step over appended records (appended.go).
// Only the history store holds them, and a state store key of that shape is malformed for the
// chain anyway.
func skipAppended(fn func(k, v []byte) error) func(k, v []byte) error {
	return func(k, v []byte) error {
		if isAppendedKey(k) {
			return nil
		}
		return fn(k, v)
	}
}

// lastChainRecord returns the newest chain record up to log index upTo (nil key: none).
func lastChainRecord(state, history pebble.Reader, upTo uint64) (k, v []byte, err error) {
	for _, r := range []pebble.Reader{history, state} {
		if r == nil {
			continue
		}
		upper := []byte{prefixChain + 1}
		if r == history {
			upper = chainUpper(upTo)
		}
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChain}, UpperBound: upper})
		if err != nil {
			return nil, nil, err
		}
		valid := it.Last()
		if valid && isAppendedKey(it.Key()) {
			// The newest batch appended records: its own record sorts just before them.
			valid = it.SeekGE(it.Key()[:9])
		}
		if valid {
			k, v = append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)
		}
		if err := it.Close(); err != nil {
			return nil, nil, err
		}
		if k != nil {
			return k, v, nil
		}
	}
	return nil, nil, nil
}

// firstChainRecord returns the oldest chain record of a store (nil key: none).
func firstChainRecord(r pebble.Reader) (k, v []byte, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixChain}, UpperBound: []byte{prefixChain + 1}})
	if err != nil {
		return nil, nil, err
	}
	if it.First() {
		k, v = append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)
	}
	return k, v, it.Close()
}

// forEachRecord calls fn with every record of a view in key order: the state store's, with the
// history store's chain records (up to the view's applied index) where their keys sort.
func forEachRecord(view *View, fn func(k, v []byte) error) error {
	if err := view.err; err != nil {
		return err
	}
	// Every state key up to the end of the chain's prefix, then the history store's records
	// (newer than any chain record of the state store), then the rest of the state.
	end := []byte{prefixChain + 1}
	if err := scanRange(view.Snapshot, nil, end, fn); err != nil {
		return err
	}
	if h := view.historyReader(); h != nil {
		if err := scanRange(h, []byte{prefixChain}, chainUpper(view.applied), fn); err != nil {
			return err
		}
	}
	return scanRange(view.Snapshot, end, nil, fn)
}

// View is a consistent point-in-time view of a shard's stores for long reads (invariant
// checkers, verify, digests): the state store's snapshot, whose methods it has, and the history
// store's, taken after it and read up to the state's applied index, so that both show the same
// batch. The caller closes it.
type View struct {
	*pebble.Snapshot
	history *pebble.Snapshot // nil: no history store
	applied uint64
	err     error // reading the applied index failed
}

// View takes a view of the store.
func (s *Store) View() *View {
	v := &View{Snapshot: s.db.NewSnapshot()}
	// Apply commits a batch's chain record to the history store before its state batch, so a
	// history snapshot taken after the state's holds every record the state's batches wrote.
	if s.history != nil {
		v.history = s.history.NewSnapshot()
	}
	v.applied, v.err = appliedIndexOf(v.Snapshot)
	return v
}

// Close frees the view.
func (v *View) Close() error {
	err := v.Snapshot.Close()
	if v.history != nil {
		if herr := v.history.Close(); err == nil {
			err = herr
		}
	}
	return err
}

// historyReader is the history store as a reader, nil (untyped) when there is none.
func (s *Store) historyReader() pebble.Reader {
	if s.history == nil {
		return nil
	}
	return s.history
}

// historyReader is the view's history snapshot as a reader, nil (untyped) when there is none.
func (v *View) historyReader() pebble.Reader {
	if v.history == nil {
		return nil
	}
	return v.history
}

// encodeChainHead is keyChainHead's value.
func encodeChainHead(index uint64, hash [32]byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), index), hash[:]...)
}

func decodeChainHead(v []byte) (ChainHead, error) {
	if len(v) != 40 {
		return ChainHead{}, fmt.Errorf("chain head record of %d bytes", len(v))
	}
	var h ChainHead
	h.Index = binary.BigEndian.Uint64(v)
	copy(h.Hash[:], v[8:])
	return h, nil
}
