package fsm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// Snapshot stream format: a magic line, then records of (uvarint key length, key, uvarint value
// length, value) in key order, then a zero key length, the record count and the SHA-256 of
// everything before it. Restore verifies the trailer before it replaces anything.
var snapshotMagic = []byte("GIGALEDGER-SNAPSHOT-1\n")

// snapshotRecordMaxBytes bounds one key or value in a snapshot stream.
const snapshotRecordMaxBytes = 64 << 20

// Snapshot is a point-in-time view of the store that Persist writes as a snapshot stream. It
// spells the same interface literal as shard.Snapshot (an alias, so the types are identical):
// *Machine implements shard.StateMachine without this package importing shard or Raft.
type Snapshot = interface {
	// Persist writes the snapshot stream to w; it runs concurrently with later applies.
	Persist(w io.Writer) error
	// Release frees the view.
	Release()
}

// Snapshot takes a point-in-time view of the store that Persist writes as a record stream
// (shard.StateMachine). The shard snapshots a Machine by Checkpoint instead (checkpoint.go);
// Snapshot stays for tools and tests, and its stream is what the first release sent. It first
// makes Pebble's write-ahead log durable, because Raft may compact its log once the snapshot
// exists.
func (m *Machine) Snapshot() (Snapshot, error) {
	if err := m.store.db.Flush(); err != nil {
		return nil, fmt.Errorf("snapshot: flush store: %w", err)
	}
	return &ledgerSnapshot{view: m.store.View()}, nil
}

type ledgerSnapshot struct{ view *View }

// Persist streams the view into w; it runs concurrently with later applies. The caller owns
// w (the shard closes or cancels Raft's sink by the result).
func (s *ledgerSnapshot) Persist(w io.Writer) error {
	if err := writeSnapshot(s.view, w); err != nil {
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return nil
}

// Release frees the view.
func (s *ledgerSnapshot) Release() { s.view.Close() }

// writeSnapshot writes every record of the view, the history store's chain records included
// (a record stream has one store: Restore puts them into the state store, where readers find
// them before the history store's).
func writeSnapshot(view *View, w io.Writer) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<20)
	if _, err := bw.Write(snapshotMagic); err != nil {
		return err
	}
	var count uint64
	var lengths [binary.MaxVarintLen64]byte
	writeField := func(b []byte) error {
		n := binary.PutUvarint(lengths[:], uint64(len(b)))
		if _, err := bw.Write(lengths[:n]); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	err := forEachRecord(view, func(k, v []byte) error {
		if err := writeField(k); err != nil {
			return err
		}
		if err := writeField(v); err != nil {
			return err
		}
		count++
		return nil
	})
	if err != nil {
		return err
	}
	trailer := binary.AppendUvarint([]byte{0}, count)
	if _, err := bw.Write(trailer); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

// Restore replaces the whole state with a snapshot stream: a checkpoint stream
// (OpenCheckpoint) or a record stream (Snapshot, and every snapshot of the first release). It
// builds the new store beside the live one and verifies the stream's checksums and the new
// store's applied index before it touches the live store, then swaps the directories (a crash
// in between is mended by recoverInterruptedRestore on the next Open) and reloads memory.
//
// The store never goes back: a verified stream whose applied index is not above the store's is
// dropped and the live store kept. Both are states of the same committed log, and apply skips
// the entries the store already holds.
func (m *Machine) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	l := m.store
	livePath := filepath.Join(l.dir, storeDirName)
	nextPath := livePath + ".restore"
	oldPath := livePath + ".old"
	if err := os.RemoveAll(nextPath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	applied, err := buildRestoredStore(bufio.NewReaderSize(snapshot, 1<<20), nextPath)
	if err != nil {
		os.RemoveAll(nextPath)
		return fmt.Errorf("restore: %w", err)
	}
	if current := m.applied.Load(); applied <= current {
		m.logger.Warn("restore: snapshot is not ahead of the store; keeping the store",
			"snapshot_applied_index", applied, "applied_index", current)
		os.RemoveAll(nextPath)
		return nil
	}
	if err := crashPoint("built"); err != nil {
		return err
	}

	if err := l.swap(livePath, nextPath, oldPath); err != nil {
		return err
	}
	// Loading reads the store through Store.Read (a family's Load does), so it runs after the
	// swap has released the store: under the write lock, that read lock never came, and the
	// raft FSM goroutine of a follower installing a snapshot hung for good (seen in the fault
	// suite after a move: "snapshot restore progress 100%" every 10 s, no apply after). Apply
	// cannot run meanwhile (the shard calls Restore and ApplyBatch in turn).
	if err := m.load(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if m.applied.Load() != applied {
		panic(fmt.Sprintf("fsm: restored store at applied index %d, verified at %d", m.applied.Load(), applied))
	}
	m.notifyEvents()
	return nil
}

// swap replaces the live store by the one restored at nextPath, under the store's write lock
// (no query reads meanwhile); a crash between its renames is mended by
// recoverInterruptedRestore on the next Open.
func (s *Store) swap(livePath, nextPath, oldPath string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("restore: close live store: %w", err)
	}
	s.db = nil
	if s.history != nil {
		err := closeHistory(s.history, s.merger, false)
		s.merger = nil // stopped either way
		if err != nil {
			return fmt.Errorf("restore: close live history store: %w", err)
		}
		s.history = nil
	}
	if err := os.RemoveAll(oldPath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(livePath, oldPath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := crashPoint("live moved aside"); err != nil {
		return err
	}
	if err := os.Rename(nextPath, livePath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := crashPoint("swapped"); err != nil {
		return err
	}
	db, history, merger, err := openStores(livePath, false, s.logger, s.cache)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.db, s.history, s.merger = db, history, merger
	os.RemoveAll(oldPath)
	return nil
}

// crashPoint lets a test stop a restore at a step, as a crash would.
func crashPoint(step string) error {
	if restoreCrashHook == nil {
		return nil
	}
	return restoreCrashHook(step)
}

// buildRestoredStore writes the store a snapshot stream holds into path, verified and synced,
// and returns its applied index.
func buildRestoredStore(r *bufio.Reader, path string) (uint64, error) {
	head, _ := r.Peek(len(checkpointMagic)) // a short stream fails in the readers below
	var claimed uint64
	isCheckpoint := bytes.HasPrefix(head, checkpointMagic) || bytes.HasPrefix(head, checkpointMagicV2)
	if isCheckpoint {
		var err error
		if claimed, err = readCheckpointStream(r, path); err != nil {
			return 0, err
		}
	}
	db, err := openPebble(path, false, nil, nil) // only read here, and by a record stream written
	if err != nil {
		return 0, err
	}
	if !isCheckpoint {
		if err := readSnapshot(r, db); err != nil {
			db.Close()
			return 0, err
		}
	}
	applied, err := storedAppliedIndex(db)
	if closeErr := db.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, err
	}
	if isCheckpoint && applied != claimed {
		return 0, fmt.Errorf("checkpoint stream claims applied index %d, its store holds %d", claimed, applied)
	}
	return applied, nil
}

// storedAppliedIndex reads the applied index a store holds (the clock record, or the first
// release's key of its own).
func storedAppliedIndex(db *pebble.DB) (uint64, error) {
	var applied uint64
	for _, key := range [][]byte{keyApplied, keyClock} {
		v, closer, err := db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if index, ok := appliedFromMeta(key, v); ok {
			applied = index
		}
		closer.Close()
	}
	return applied, nil
}

// appliedFromMeta reads the applied index from a bookkeeping record that carries one.
func appliedFromMeta(key, value []byte) (uint64, bool) {
	switch string(key) {
	case string(keyApplied):
		if len(value) == 8 {
			return binary.BigEndian.Uint64(value), true
		}
	case string(keyClock):
		d := NewDecoder(value)
		if version, index := d.Byte(), d.Uvarint(); d.err == nil && version >= 2 {
			return index, true
		}
	}
	return 0, false
}

// restoreBatchMaxBytes bounds the memory one restore batch holds.
const restoreBatchMaxBytes = 16 << 20

func readSnapshot(br *bufio.Reader, db *pebble.DB) error {
	h := sha256.New()
	tr := &hashingReader{r: br, h: h}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != string(snapshotMagic) {
		return fmt.Errorf("not a ledger snapshot")
	}
	batch := db.NewBatch()
	var count uint64
	readField := func() ([]byte, error) {
		n, err := binary.ReadUvarint(tr)
		if err != nil {
			return nil, err
		}
		if n > snapshotRecordMaxBytes {
			return nil, fmt.Errorf("record of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(tr, b)
		return b, err
	}
	for {
		k, err := readField()
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		if len(k) == 0 {
			break
		}
		v, err := readField()
		if err != nil {
			return fmt.Errorf("read value: %w", err)
		}
		if err := batch.Set(k, v, nil); err != nil {
			return err
		}
		count++
		if batch.Len() > restoreBatchMaxBytes {
			if err := batch.Commit(pebble.NoSync); err != nil {
				return err
			}
			batch = db.NewBatch()
		}
	}
	wantCount, err := binary.ReadUvarint(tr)
	if err != nil {
		return fmt.Errorf("read trailer: %w", err)
	}
	sum := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, got); err != nil {
		return fmt.Errorf("read checksum: %w", err)
	}
	if wantCount != count || string(got) != string(sum) {
		return errors.New("snapshot checksum or count mismatch")
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return err
	}
	return db.Flush() // the store has no write-ahead log: what is not flushed is not stored
}

// hashingReader hashes what it reads.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	return n, err
}

func (r *hashingReader) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil {
		r.h.Write([]byte{b})
	}
	return b, err
}

// Digest hashes the whole stored state, history included, except the bookkeeping records
// (applied log index, batch clock and sequences — every one of them shows in the records it
// stamped). Equal digests on two replicas mean equal states.
func (m *Machine) Digest() ([32]byte, error) {
	sum, _, err := m.DigestAt()
	return sum, err
}

// DigestAt is Digest together with the applied log index of the same consistent view, so that
// replicas can be compared at equal indexes while they keep applying.
func (m *Machine) DigestAt() ([32]byte, uint64, error) { return m.digestAt(false) }

// DigestWithoutHistoryChain is Digest leaving out the history chain's records (and the records
// of prefixes marked as chain positions, Registry.MarkChainPosition). Two stores
// that replayed the same log in different clusters (a compatibility test) agree on it, although
// each cluster's leader started its chain in a batch of its own time.
func (m *Machine) DigestWithoutHistoryChain() ([32]byte, error) {
	sum, _, err := m.digestAt(true)
	return sum, err
}

// DigestAndHead is DigestAt together with the history chain's head as of the same view (ok
// false: no chain yet), so that the three can be compared across replicas while they apply
// (GET /debug/digest).
func (m *Machine) DigestAndHead() (sum [32]byte, applied uint64, head ChainHead, ok bool, err error) {
	sum, applied, err = m.digestView(false, func(view *View) error {
		var err error
		head, ok, err = chainHeadUpTo(view.Snapshot, view.historyReader(), view.applied)
		return err
	})
	return sum, applied, head, ok, err
}

func (m *Machine) digestAt(skipChain bool) ([32]byte, uint64, error) {
	return m.digestView(skipChain, nil)
}

// digestView hashes a view of the store; also, when set, runs on the same view.
func (m *Machine) digestView(skipChain bool, also func(*View) error) ([32]byte, uint64, error) {
	var sum [32]byte
	var applied uint64
	l := m.store
	err := l.Read(func() error {
		h := sha256.New()
		view := l.View()
		defer view.Close()
		if also != nil {
			if err := also(view); err != nil {
				return err
			}
		}
		var lengths [binary.MaxVarintLen64]byte
		err := forEachRecord(view, func(k, v []byte) error {
			if k[0] == prefixMeta {
				// The applied index is in the clock record, or (a first-release store not yet
				// written to) in its own key, which sorts before it.
				if index, ok := appliedFromMeta(k, v); ok {
					applied = index
				}
				return nil
			}
			// Appended records are history like any other (only their keys name a log index).
			if skipChain && (k[0] == prefixChain && !isAppendedKey(k) || m.reg.chainPosition[k[0]]) {
				return nil
			}
			h.Write(lengths[:binary.PutUvarint(lengths[:], uint64(len(k)))])
			h.Write(k)
			h.Write(lengths[:binary.PutUvarint(lengths[:], uint64(len(v)))])
			h.Write(v)
			return nil
		})
		copy(sum[:], h.Sum(nil))
		return err
	})
	return sum, applied, err
}

// Store is a shard's Pebble stores: the state store (every family's live records and history,
// and the kernel's bookkeeping) and the history store (the history chain's records from rules
// version RulesHistoryStore on; history.go). Apply writes them through a Batch; readers query
// them concurrently through Read, and see exactly the state of the last committed batch.
type Store struct {
	dir      string
	mu       sync.RWMutex // guards db and history against Restore swapping them; readers take RLock
	db       *pebble.DB
	history  *pebble.DB     // nil only in a read-only store written before the history store
	merger   *historyMerger // history's; nil when read-only
	readOnly bool
	logger   *slog.Logger  // Pebble's events (openPebble); nil in tools
	cache    *pebble.Cache // shared with other machines' stores (OpenWithCache); nil: a cache per open
	// flushPhaseLeft counts down the bytes apply commits until the one flush that sets this
	// replica's flush phase (shiftFlushPhase); apply's goroutine only.
	flushPhaseLeft int64
}

// shiftFlushPhase flushes the memtable once, after a random share of a memtable's bytes
// since the store opened. Pebble grows a new store's memtables by doubling from 256 KiB, the
// same on every replica whatever jitteredMemTableBytes drew, so replicas started together (a
// new cluster) would flush their first memtables at the same log position — the largest
// latency episode left after the jitter (bench/RESULTS.md, 2026-12-06). One early flush at a
// random point shifts every later flush of this replica by that much. It writes nothing but
// moves the durable apply point, as any flush does.
func (s *Store) shiftFlushPhase(committed int) {
	if s.flushPhaseLeft <= 0 {
		return
	}
	if s.flushPhaseLeft -= int64(committed); s.flushPhaseLeft <= 0 {
		if _, err := s.db.AsyncFlush(); err != nil && s.logger != nil {
			s.logger.Warn("state store: early flush", "error", err)
		}
	}
}

const storeDirName = "ledger"

// Store tuning. Apply looks up keys that mostly do not exist (a new reference ID, a new
// transaction ID), so every level carries bloom filters; without them each miss reads index and
// data blocks from every level.
const (
	storeCacheBytes        = 512 << 20
	storeMemTableBytes     = 16 << 20
	storeBloomBitsPerKey   = 10
	storeLevelCount        = 7
	storeL0CompactionFiles = 4
	storeL0StopWritesFiles = 24
	storeLBaseMaxBytes     = 256 << 20
	storeTargetFileBytes   = 16 << 20
	// storeManifestMaxBytes is the MANIFEST size at which Pebble starts a new one; a checkpoint
	// copies the MANIFEST, so this bounds what a snapshot copies (Pebble's default is 128 MiB).
	storeManifestMaxBytes = 8 << 20
)

// LevelStorageEvents is the log level of the state store's flushes and compactions and of the
// node log's slow commits: between debug (every HTTP request) and info, so that
// `--log-level debug+2` shows them, with their wall times, without the access log.
const LevelStorageEvents = slog.LevelDebug + 2

// jitteredMemTableBytes draws this open's memtable size, from half storeMemTableBytes up to it. The
// replicas of a shard apply the same log, so with equal memtables each fills, flushes and then
// compacts at the same log position — at the same moment on every replica. Measured on one
// 2-core box at half the peak rate (bench/RESULTS.md, 2026-12-06), every latency episode above
// 25 ms lined up with those simultaneous flushes (70–170 ms) and compactions (200–450 ms); and
// on separate machines it is the quorum that waits when leader and followers stall together.
// A different size per replica spreads that work in time. The draw stays below the full size
// because Pebble grows a new store's memtables by doubling from 256 KiB: a larger draw would
// keep the first flushes (the first ~16 MiB) in step. The content stored does not change.
func jitteredMemTableBytes() uint64 {
	return storeMemTableBytes/2 + rand.Uint64N(storeMemTableBytes/2)
}

// compactionConcurrency bounds Pebble's concurrent compactions to half the cores (at least
// one). Compaction comes in bursts (200–450 ms of a core each at half the peak rate, bench/
// RESULTS.md 2026-12-06); two at once on a 2-core box took every core from the request path.
// With the jitter above it is part of what cut the open-loop p99 there (alternated runs: 31–56
// ms before, 16–30 ms after). More cores leave compaction more room.
func compactionConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// openPebble opens the store at path; readOnly opens an existing one without writing to it.
// Flushes and compactions are logged at debug level with their durations, write stalls and
// slow disk operations as warnings (logger nil: not logged).
//
// beforeFlush, when set, runs as each flush creates its first file, before the flush is
// recorded (the history store's flush: history.go).
func openPebble(path string, readOnly bool, logger *slog.Logger, beforeFlush func()) (*pebble.DB, error) {
	cache := pebble.NewCache(storeCacheBytes)
	defer cache.Unref()
	return openPebbleCached(path, readOnly, logger, beforeFlush, cache)
}

// openPebbleCached is openPebble with a block cache of the caller's.
func openPebbleCached(path string, readOnly bool, logger *slog.Logger, beforeFlush func(), cache *pebble.Cache) (*pebble.DB, error) {
	opts := &pebble.Options{
		Cache:                    cache,
		MemTableSize:             jitteredMemTableBytes(),
		L0CompactionThreshold:    storeL0CompactionFiles,
		L0StopWritesThreshold:    storeL0StopWritesFiles,
		LBaseMaxBytes:            storeLBaseMaxBytes,
		MaxManifestFileSize:      storeManifestMaxBytes,
		MaxConcurrentCompactions: compactionConcurrency,
		Logger:                   quietPebbleLogger{},
		Levels:                   make([]pebble.LevelOptions, storeLevelCount),
		ReadOnly:                 readOnly,
		// No write-ahead log: the Raft log is the state machine's. A crash loses the memtables,
		// and the store reopens at its last flush, a whole batch (the applied index, the clock
		// and every write of a batch go in one Pebble batch, and a flush holds whole batches);
		// the shard replays the log above that applied index. Raft compacts its log only after
		// a snapshot, and Checkpoint flushes first, so the entries above the store's durable
		// index are always still in the log.
		DisableWAL:    true,
		EventListener: pebbleEvents(logger, "pebble", beforeFlush),
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(storeBloomBitsPerKey)
		opts.Levels[i].FilterType = pebble.TableFilter
		opts.Levels[i].TargetFileSize = storeTargetFileBytes << i
	}
	db, err := pebble.Open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", path, err)
	}
	return db, nil
}

// recoverInterruptedRestore finishes or undoes a Restore that a crash cut between its
// renames. Restore verifies the new store completely before the first rename, so a new store
// left beside a missing live one is whole and wins; otherwise the old one comes back.
func recoverInterruptedRestore(livePath string) error {
	if _, err := os.Stat(livePath); err == nil {
		os.RemoveAll(livePath + ".restore")
		os.RemoveAll(livePath + ".old")
		return nil
	}
	for _, candidate := range []string{livePath + ".restore", livePath + ".old"} {
		if _, err := os.Stat(candidate); err == nil {
			if err := os.Rename(candidate, livePath); err != nil {
				return err
			}
			if err := syncDir(filepath.Dir(livePath)); err != nil {
				return err
			}
			return os.RemoveAll(livePath + ".old") // the store the restore replaced
		}
	}
	return nil
}

// pebbleEvents puts every flush and compaction below the request path (lowerBackgroundPriority)
// and logs what can stall apply: a flush or compaction (at LevelStorageEvents, with its wall
// time, to line up with latency), a write stall and a slow disk operation (warnings: an
// operator's business); logger nil: nothing is logged. name starts each message. beforeFlush
// (nil: none) runs once per flush, as the flush creates its first file: after the flush's
// memtables are chosen and before anything it writes is recorded, and not under the store's
// mutex (FlushBegin runs under it, so waiting there held up every commit). It is the history
// store's flush.
func pebbleEvents(logger *slog.Logger, name string, beforeFlush func()) *pebble.EventListener {
	// flushJob is the job ID of the flush in progress (Pebble runs one flush at a time), zero
	// once beforeFlush ran for it.
	var flushJob atomic.Int64
	events := &pebble.EventListener{
		FlushBegin: func(i pebble.FlushInfo) {
			flushJob.Store(int64(i.JobID))
			lowerBackgroundPriority()
		},
		TableCreated: func(i pebble.TableCreateInfo) {
			if beforeFlush != nil && i.JobID != 0 && flushJob.CompareAndSwap(int64(i.JobID), 0) {
				beforeFlush()
			}
		},
		CompactionBegin: func(pebble.CompactionInfo) { lowerBackgroundPriority() },
	}
	if logger == nil {
		return events
	}
	events.FlushEnd = func(i pebble.FlushInfo) {
		logger.Log(context.Background(), LevelStorageEvents, name+" flush", "memtables", i.Input, "bytes", i.InputBytes,
			"ms", i.TotalDuration.Milliseconds(), "error", i.Err)
	}
	events.CompactionEnd = func(i pebble.CompactionInfo) {
		var in uint64
		for _, level := range i.Input {
			for _, t := range level.Tables {
				in += t.Size
			}
		}
		logger.Log(context.Background(), LevelStorageEvents, name+" compaction", "reason", i.Reason, "to_level", i.Output.Level,
			"input_bytes", in, "ms", i.TotalDuration.Milliseconds(), "error", i.Err)
	}
	events.WriteStallBegin = func(i pebble.WriteStallBeginInfo) {
		logger.Warn(name+" write stall: apply waits for flushes or compactions", "reason", i.Reason)
	}
	events.WriteStallEnd = func() { logger.Warn(name + " write stall ended") }
	events.DiskSlow = func(i pebble.DiskSlowInfo) {
		logger.Warn(name+": slow disk operation", "path", i.Path, "op", i.OpType.String(), "ms", i.Duration.Milliseconds())
	}
	return events
}

// quietPebbleLogger drops Pebble's informational chatter and keeps fatal errors fatal.
type quietPebbleLogger struct{}

func (quietPebbleLogger) Infof(string, ...interface{}) {}
func (quietPebbleLogger) Errorf(format string, args ...interface{}) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (quietPebbleLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Read runs fn with the store held against Restore swapping it. Queries call Get, Scan and
// NewIter inside it.
func (s *Store) Read(fn func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return fmt.Errorf("fsm: store closed")
	}
	return fn()
}

// Get reads one key; a missing key is (nil, nil).
func (s *Store) Get(k []byte) ([]byte, error) { return getFrom(s.db, k) }

// Scan calls fn for every key with the given prefix, in key order.
func (s *Store) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return scanReader(s.db, prefix, fn)
}

// NewIter opens an iterator over [lower, upper).
func (s *Store) NewIter(lower, upper []byte) (*pebble.Iterator, error) {
	return s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
}

// GetView is Get over a View.
func GetView(view *View, k []byte) ([]byte, error) { return getFrom(view, k) }

// ScanView is Scan over a View.
func ScanView(view *View, prefix []byte, fn func(k, v []byte) error) error {
	return scanReader(view, prefix, fn)
}

func scanReader(r pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	return scanRange(r, prefix, PrefixEnd(prefix), fn)
}

// scanRange calls fn for every key of [lower, upper) (nil: unbounded), in key order.
func scanRange(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// Key joins a prefix byte and parts with 0x00, which IDs may not contain.
func Key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+16)
	k = append(k, prefix)
	for i, p := range parts {
		if i > 0 {
			k = append(k, keySeparator)
		}
		k = append(k, p...)
	}
	return k
}

// KeyPrefix returns the prefix that every key under parts starts with (parts + separator).
func KeyPrefix(prefix byte, parts ...string) []byte {
	return append(Key(prefix, parts...), keySeparator)
}

// PrefixEnd returns the smallest key greater than every key starting with p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

const keySeparator = 0
