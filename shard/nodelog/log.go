// Package nodelog owns a node's shared write-ahead log for the raft logs of every shard replica
// the node hosts, and the per-replica stores (raft.LogStore and raft.StableStore) that put it
// in front of each replica's raft-boltdb file.
//
// Why: with one fsync'd bolt file per replica, a node with N replicas pays N sync rounds per
// batch and more shards made the cluster slower. Here StoreLogs of every replica appends one
// record to the node's log and one group commit (one write, one fdatasync) makes every record
// written meanwhile durable. Entries wait in memory and reach the replica's bolt file in large
// batches written with bolt's own sync, off the commit path; once every bolt file holds the
// records of a log segment, the segment is deleted. Bolt is never written without sync, so it
// is never torn (see cluster/DESIGN.md, "Throughput that grows with shards").
//
// It must not interpret entries: it stores what raft hands it and hands it back.
package nodelog

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options.
const (
	// DefaultSegmentMaxBytes is the size after which the log starts a new segment file.
	DefaultSegmentMaxBytes = 64 << 20
	// DefaultFlushBytes is how many entry bytes a store keeps in memory before it writes them
	// to its bolt file.
	DefaultFlushBytes = 8 << 20
	// DefaultFlushInterval is how often stores with entries in memory write them to bolt, so
	// that old segments can be deleted even when a shard is quiet.
	DefaultFlushInterval = time.Second
	// DefaultMemoryMaxBytes bounds the entry bytes all of a node's stores hold in memory; a
	// store also flushes inline at 4 × FlushBytes of its own.
	DefaultMemoryMaxBytes = 256 << 20
)

// slowCommit is the commit (write and fdatasync) or bolt flush time from which the log says so
// at levelStorageEvents, to line up with request latency.
const slowCommit = 5 * time.Millisecond

// levelStorageEvents is fsm.LevelStorageEvents (debug+2: below info, above the access log).
const levelStorageEvents = slog.LevelDebug + 2

// Mode says how a node's replicas make their raft log durable.
type Mode int

const (
	// ModeShared appends every replica's entries to the node's shared log (group commit).
	ModeShared Mode = iota + 1
	// ModePerShardSync writes straight to each replica's bolt file with its own fsync (the
	// behaviour before the shared log; kept as a fallback).
	ModePerShardSync
)

func (m Mode) String() string {
	switch m {
	case ModeShared:
		return "shared"
	case ModePerShardSync:
		return "per-shard-sync"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads the names String gives.
func ParseMode(name string) (Mode, error) {
	switch name {
	case "shared":
		return ModeShared, nil
	case "per-shard-sync":
		return ModePerShardSync, nil
	}
	return 0, fmt.Errorf("raft log mode %q: want shared or per-shard-sync", name)
}

// Options configures a node's log. Zero values take the defaults.
type Options struct {
	// Dir holds the segment files (ModeShared only).
	Dir  string
	Mode Mode
	// SegmentMaxBytes, FlushBytes, FlushInterval and MemoryMaxBytes: see the defaults.
	SegmentMaxBytes int64
	FlushBytes      int
	FlushInterval   time.Duration
	MemoryMaxBytes  int64
	// Registerer receives gigaledger_raftlog_fsyncs_total and gigaledger_raftlog_commit_seconds;
	// nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// ErrClosed is returned by a log or store used after Close.
var ErrClosed = errors.New("node log closed")

const (
	segmentPrefix = "wal-"
	segmentSuffix = ".log"
	segmentMagic  = "GLNODLG1"
	// segmentHeaderBytes = magic | u64 logID | u64 segment number | u64 seq of its first record
	// | u32 crc32c of the 32 bytes before it. The first seq keeps seqs rising across restarts
	// even when every older segment was deleted.
	segmentHeaderBytes = 8 + 8 + 8 + 8 + 4
)

// Log is one node's shared write-ahead log and the registry of the stores in front of it.
// All methods are safe for concurrent use.
//
// Threading: any number of stores append concurrently; one commit goroutine writes and syncs
// what they appended (group commit) and wakes them; one flush goroutine writes stores' memory
// to their bolt files and deletes segments no store needs.
type Log struct {
	opts    Options
	logger  *slog.Logger
	metrics *logMetrics

	// logID names this log; a store records it with its flushed position so that a store is
	// never replayed from a different log.
	logID uint64

	// mu guards the fields below it.
	mu sync.Mutex
	// current collects records until the commit goroutine takes it.
	current *commitBatch
	nextSeq uint64
	failed  error // sticky: after a failed write or sync nothing more is acknowledged
	closed  bool
	stores  map[string]*Store
	// segments are the files on disk, oldest first; the last is the one being written.
	segments []*segment
	// unresolved are keys that have records in segments found at open whose store has not
	// opened (and replayed them) yet: their segments stay.
	unresolved map[string]bool

	// file is the last segment, written only by the commit goroutine.
	file             *os.File
	fileBytes        int64
	nextSegmentIndex uint64

	// memBytes is the entry bytes every store holds in memory (Store.addMemBytes).
	memBytes atomic.Int64
	// flushPaused stops the flush goroutine's rounds (tests that flush by hand).
	flushPaused atomic.Bool

	commitSignal chan struct{}
	flushSignal  chan struct{}
	closing      chan struct{}
	commitDone   chan struct{}
	flushDone    chan struct{}
	closeOnce    sync.Once
	closeErr     error
}

// segment is one file of the log.
type segment struct {
	index    uint64
	path     string
	firstSeq uint64 // 0 while empty
	lastSeq  uint64
	// keys with records in this segment, known only for segments found at open.
	keys map[string]bool
}

// commitBatch is what one group commit writes: records in seq order and whoever waits.
type commitBatch struct {
	buf      []byte
	firstSeq uint64
	lastSeq  uint64
	done     chan struct{}
	err      error
}

type logMetrics struct {
	collectors []prometheus.Collector
	registerer prometheus.Registerer
	fsyncs     *prometheus.CounterVec
	walFsyncs  prometheus.Counter
	boltFsyncs prometheus.Counter
	// commitSeconds is how long each group commit took to write and fdatasync its batch: the
	// disk's share of a proposal's latency (tail latency is told from the CPU's by it).
	commitSeconds prometheus.Histogram
	// fsyncCount mirrors the counter for tests and benchmarks.
	fsyncCount atomic.Uint64
}

func newLogMetrics(registerer prometheus.Registerer) (*logMetrics, error) {
	m := &logMetrics{registerer: registerer}
	m.fsyncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gigaledger", Subsystem: "raftlog", Name: "fsyncs_total",
		Help: "fsync/fdatasync calls made for the raft logs of this node's replicas, by file kind " +
			"(wal: the shared log; bolt: replica bolt files, counted 2 per synced bolt commit).",
	}, []string{"kind"})
	m.walFsyncs = m.fsyncs.WithLabelValues("wal")
	m.boltFsyncs = m.fsyncs.WithLabelValues("bolt")
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "gigaledger", Subsystem: "raftlog", Name: "commit_seconds",
		Help: "Time one group commit of the node's shared raft log took to write its batch and " +
			"fdatasync it (every replica's entries of that round).",
		// 50 µs to about 1.6 s.
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
	})
	m.collectors = []prometheus.Collector{m.fsyncs, m.commitSeconds}
	if registerer != nil {
		for _, c := range m.collectors {
			if err := registerer.Register(c); err != nil {
				return m, fmt.Errorf("node log metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *logMetrics) countWAL() {
	m.walFsyncs.Inc()
	m.fsyncCount.Add(1)
}

// countBoltCommit counts a synced bolt commit: bbolt fdatasyncs the data pages, then the meta.
func (m *logMetrics) countBoltCommit() {
	m.boltFsyncs.Add(2)
	m.fsyncCount.Add(2)
}

func (m *logMetrics) unregister() {
	if m.registerer != nil {
		for _, c := range m.collectors {
			m.registerer.Unregister(c)
		}
	}
}

// Open opens (or creates) the node's log. In ModeShared it scans the segments in opts.Dir,
// truncates a torn tail of the last one at its last valid record, and starts a new segment;
// the records found wait for their stores to open (OpenStore replays them).
func Open(opts Options) (*Log, error) {
	if opts.Mode == 0 {
		opts.Mode = ModeShared
	}
	if opts.SegmentMaxBytes <= 0 {
		opts.SegmentMaxBytes = DefaultSegmentMaxBytes
	}
	if opts.FlushBytes <= 0 {
		opts.FlushBytes = DefaultFlushBytes
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.MemoryMaxBytes <= 0 {
		opts.MemoryMaxBytes = DefaultMemoryMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	metrics, err := newLogMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Log{
		opts: opts, logger: opts.Logger, metrics: metrics,
		nextSeq: 1, stores: make(map[string]*Store), unresolved: make(map[string]bool),
		commitSignal: make(chan struct{}, 1), flushSignal: make(chan struct{}, 1),
		closing: make(chan struct{}), commitDone: make(chan struct{}), flushDone: make(chan struct{}),
	}
	if opts.Mode == ModePerShardSync {
		close(l.commitDone)
		close(l.flushDone)
		return l, nil
	}
	if opts.Mode != ModeShared {
		metrics.unregister()
		return nil, fmt.Errorf("node log: unknown mode %d", opts.Mode)
	}
	if err := l.recover(); err != nil {
		metrics.unregister()
		return nil, err
	}
	if err := l.startSegment(); err != nil {
		metrics.unregister()
		return nil, err
	}
	l.current = &commitBatch{done: make(chan struct{})}
	go l.runCommits()
	go l.runFlushes()
	l.logger.Info("node log opened", "dir", opts.Dir, "segments", len(l.segments), "next_seq", l.nextSeq,
		"unreplayed_stores", len(l.unresolved))
	return l, nil
}

// Mode is the log's mode.
func (l *Log) Mode() Mode {
	return l.opts.Mode
}

// FsyncCount is how many fsyncs the log and its stores made (as gigaledger_raftlog_fsyncs_total).
func (l *Log) FsyncCount() uint64 {
	return l.metrics.fsyncCount.Load()
}

// recover scans the segments on disk: it learns the log ID, the next seq and which keys each
// segment holds, and truncates a torn tail of the last segment. A bad record anywhere but at
// the end of the last segment is corruption of data that was synced: Open fails.
func (l *Log) recover() error {
	if err := os.MkdirAll(l.opts.Dir, 0o750); err != nil {
		return fmt.Errorf("node log: create dir: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(l.opts.Dir, segmentPrefix+"*"+segmentSuffix))
	if err != nil {
		return fmt.Errorf("node log: list segments: %w", err)
	}
	slices.Sort(names) // fixed-width numbers sort in order
	for i, path := range names {
		last := i == len(names)-1
		seg, err := l.scanSegment(path, last)
		if err != nil {
			return err
		}
		if seg != nil {
			l.segments = append(l.segments, seg)
		}
	}
	if l.logID == 0 {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return fmt.Errorf("node log: log id: %w", err)
		}
		l.logID = binary.LittleEndian.Uint64(id[:]) | 1
	}
	return nil
}

// scanSegment reads one segment; it returns nil for a last segment whose header never became
// durable (removed: nothing was written after it).
func (l *Log) scanSegment(path string, last bool) (*segment, error) {
	var index uint64
	if _, err := fmt.Sscanf(filepath.Base(path), segmentPrefix+"%020d"+segmentSuffix, &index); err != nil {
		return nil, fmt.Errorf("node log: segment name %s: %w", path, err)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("node log: open segment: %w", err)
	}
	defer file.Close()
	reader := bufio.NewReaderSize(file, 1<<20)
	header := make([]byte, segmentHeaderBytes)
	h, headerErr := readSegmentHeader(reader, header)
	if headerErr == nil && h.index != index {
		headerErr = fmt.Errorf("header says segment %d", h.index)
	}
	if headerErr == nil && l.logID != 0 && h.logID != l.logID {
		return nil, fmt.Errorf("node log: segment %s belongs to log %x, not %x", path, h.logID, l.logID)
	}
	if headerErr == nil && h.firstSeq < l.nextSeq {
		return nil, fmt.Errorf("node log: segment %s starts at seq %d, below %d", path, h.firstSeq, l.nextSeq)
	}
	if headerErr != nil {
		if !last {
			return nil, fmt.Errorf("node log: segment %s: bad header: %w", path, headerErr)
		}
		l.logger.Warn("node log: removing last segment with a torn header", "segment", path, "error", headerErr)
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("node log: remove torn segment: %w", err)
		}
		return nil, syncDir(l.opts.Dir)
	}
	l.logID = h.logID
	l.nextSegmentIndex = max(l.nextSegmentIndex, index+1)
	l.nextSeq = h.firstSeq
	seg := &segment{index: index, path: path, keys: make(map[string]bool)}
	offset := int64(segmentHeaderBytes)
	buf := make([]byte, 0, 64<<10)
	for {
		r, recordBytes, err := readRecord(reader, buf)
		if err == io.EOF {
			break
		}
		if err == nil && r.seq != l.nextSeq {
			err = fmt.Errorf("%w: seq %d, want %d", errBadRecord, r.seq, l.nextSeq)
		}
		if err != nil {
			if !last {
				return nil, fmt.Errorf("node log: segment %s at offset %d: %w", path, offset, err)
			}
			l.logger.Warn("node log: truncating the last segment at its last valid record",
				"segment", path, "offset", offset, "error", err)
			if err := file.Truncate(offset); err != nil {
				return nil, fmt.Errorf("node log: truncate torn tail: %w", err)
			}
			if err := file.Sync(); err != nil {
				return nil, fmt.Errorf("node log: sync truncated segment: %w", err)
			}
			break
		}
		if seg.firstSeq == 0 {
			seg.firstSeq = r.seq
		}
		seg.lastSeq = r.seq
		seg.keys[r.key] = true
		l.unresolved[r.key] = true
		l.nextSeq = r.seq + 1
		offset += int64(recordBytes)
	}
	return seg, nil
}

// segmentHeader is the decoded header of a segment.
type segmentHeader struct {
	logID    uint64
	index    uint64
	firstSeq uint64
}

// readSegmentHeader reads and checks a segment header.
func readSegmentHeader(reader io.Reader, header []byte) (segmentHeader, error) {
	if _, err := io.ReadFull(reader, header); err != nil {
		return segmentHeader{}, err
	}
	if string(header[:8]) != segmentMagic {
		return segmentHeader{}, errors.New("bad magic")
	}
	if crc32Castagnoli(header[:32]) != binary.LittleEndian.Uint32(header[32:]) {
		return segmentHeader{}, errors.New("bad header checksum")
	}
	return segmentHeader{
		logID:    binary.LittleEndian.Uint64(header[8:]),
		index:    binary.LittleEndian.Uint64(header[16:]),
		firstSeq: binary.LittleEndian.Uint64(header[24:]),
	}, nil
}

// readRecord reads the next record; io.EOF at a clean end, errBadRecord (wrapped) at a torn or
// corrupt one.
func readRecord(reader io.Reader, buf []byte) (record, int, error) {
	header := make([]byte, recordHeaderBytes)
	n, err := io.ReadFull(reader, header)
	if err == io.EOF {
		return record{}, 0, io.EOF
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("%w: %d header bytes", errBadRecord, n)
	}
	bodyBytes, err := readRecordHeader(header)
	if err != nil {
		return record{}, 0, err
	}
	whole := append(buf[:0], header...)
	whole = slices.Grow(whole, bodyBytes)[:recordHeaderBytes+bodyBytes]
	if _, err := io.ReadFull(reader, whole[recordHeaderBytes:]); err != nil {
		return record{}, 0, fmt.Errorf("%w: body cut short", errBadRecord)
	}
	r, err := decodeRecord(whole)
	return r, len(whole), err
}

func crc32Castagnoli(b []byte) uint32 {
	return crc32.Checksum(b, castagnoli)
}

// startSegment creates the next segment file and makes its header and directory entry
// durable before any record goes into it (commit goroutine, or Open).
func (l *Log) startSegment() error {
	index := l.nextSegmentIndex
	l.nextSegmentIndex++
	path := filepath.Join(l.opts.Dir, fmt.Sprintf("%s%020d%s", segmentPrefix, index, segmentSuffix))
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("node log: create segment: %w", err)
	}
	l.mu.Lock()
	firstSeq := l.nextSeq // the next round's records go here
	if l.current != nil && l.current.firstSeq != 0 {
		firstSeq = l.current.firstSeq
	}
	l.mu.Unlock()
	header := make([]byte, 0, segmentHeaderBytes)
	header = append(header, segmentMagic...)
	header = binary.LittleEndian.AppendUint64(header, l.logID)
	header = binary.LittleEndian.AppendUint64(header, index)
	header = binary.LittleEndian.AppendUint64(header, firstSeq)
	header = binary.LittleEndian.AppendUint32(header, crc32Castagnoli(header))
	if _, err := file.Write(header); err != nil {
		_ = file.Close()
		return fmt.Errorf("node log: write segment header: %w", err)
	}
	if err := fdatasync(file); err != nil {
		_ = file.Close()
		return fmt.Errorf("node log: sync segment header: %w", err)
	}
	l.metrics.countWAL()
	if err := syncDir(l.opts.Dir); err != nil {
		_ = file.Close()
		return err
	}
	l.metrics.countWAL()
	if l.file != nil {
		_ = l.file.Close() // synced by the last commit before the switch
	}
	l.file = file
	l.fileBytes = segmentHeaderBytes
	l.mu.Lock()
	l.segments = append(l.segments, &segment{index: index, path: path})
	l.mu.Unlock()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("node log: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("node log: sync dir: %w", err)
	}
	return nil
}

// appendRecord adds a record (encoded by encode at the seq it is given) to the next group
// commit and waits until it is durable. pin is the store's oldest record not yet in its bolt
// file, updated under l.mu so that segment deletion never misses a record in flight.
func (l *Log) appendRecord(store *Store, encode func(dst []byte, seq uint64) []byte) (uint64, error) {
	l.mu.Lock()
	if l.failed != nil {
		l.mu.Unlock()
		return 0, l.failed
	}
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	seq := l.nextSeq
	l.nextSeq++
	batch := l.current
	batch.buf = encode(batch.buf, seq)
	if batch.firstSeq == 0 {
		batch.firstSeq = seq
	}
	batch.lastSeq = seq
	if store.unflushedFirstSeq == 0 {
		store.unflushedFirstSeq = seq
	}
	store.lastAssignedSeq = seq
	l.mu.Unlock()
	select {
	case l.commitSignal <- struct{}{}:
	default:
	}
	<-batch.done
	return seq, batch.err
}

// runCommits is the group commit goroutine: it takes everything appended since its last
// round, writes it with one write and one fdatasync, and wakes the appenders. While it syncs,
// the next round's records collect.
func (l *Log) runCommits() {
	defer close(l.commitDone)
	for {
		select {
		case <-l.commitSignal:
		case <-l.closing:
			// Appenders stop before Close (stores close first); commit what is left.
			l.commitRound()
			return
		}
		l.commitRound()
	}
}

func (l *Log) commitRound() {
	l.mu.Lock()
	batch := l.current
	if len(batch.buf) == 0 {
		l.mu.Unlock()
		return
	}
	l.current = &commitBatch{buf: make([]byte, 0, cap(batch.buf)), done: make(chan struct{})}
	failed := l.failed
	l.mu.Unlock()
	if failed == nil {
		failed = l.writeBatch(batch)
	}
	batch.err = failed
	close(batch.done)
	if failed != nil {
		l.mu.Lock()
		if l.failed == nil {
			// A failed fsync may have dropped dirty pages: nothing after it can be trusted
			// (no retry), so every later append fails until the node restarts and recovers.
			l.failed = fmt.Errorf("node log: %w", failed)
			l.logger.Error("node log failed; raft log writes fail until restart", "error", failed)
		}
		l.mu.Unlock()
	}
}

func (l *Log) writeBatch(batch *commitBatch) error {
	start := time.Now()
	if _, err := l.file.Write(batch.buf); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := fdatasync(l.file); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	took := time.Since(start)
	l.metrics.commitSeconds.Observe(took.Seconds())
	if took >= slowCommit {
		l.logger.Log(context.Background(), levelStorageEvents, "node log: slow commit", "ms", took.Milliseconds(), "bytes", len(batch.buf))
	}
	l.metrics.countWAL()
	l.fileBytes += int64(len(batch.buf))
	l.mu.Lock()
	seg := l.segments[len(l.segments)-1]
	if seg.firstSeq == 0 {
		seg.firstSeq = batch.firstSeq
	}
	seg.lastSeq = batch.lastSeq
	l.mu.Unlock()
	if l.fileBytes >= l.opts.SegmentMaxBytes {
		if err := l.startSegment(); err != nil {
			// This round is durable; the next ones have nowhere to go.
			l.mu.Lock()
			if l.failed == nil {
				l.failed = fmt.Errorf("node log: %w", err)
				l.logger.Error("node log failed; raft log writes fail until restart", "error", err)
			}
			l.mu.Unlock()
			return nil
		}
		l.signalFlush()
	}
	return nil
}

func (l *Log) signalFlush() {
	select {
	case l.flushSignal <- struct{}{}:
	default:
	}
}

// runFlushes writes stores' memory to bolt about every FlushInterval (and when a store or a
// new segment asks), then deletes the segments no store needs. Each wait is drawn between
// half and one and a half FlushInterval: the nodes of a cluster started together would
// otherwise write their bolt files (10–50 ms of a core and the disk) at the same instants,
// a latency episode of its own on a shared machine (bench/RESULTS.md, 2026-12-06).
func (l *Log) runFlushes() {
	defer close(l.flushDone)
	interval := int64(l.opts.FlushInterval)
	timer := time.NewTimer(time.Duration(interval/2 + mrand.Int64N(interval)))
	defer timer.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-timer.C:
			timer.Reset(time.Duration(interval/2 + mrand.Int64N(interval)))
		case <-l.flushSignal:
		}
		if l.flushPaused.Load() {
			continue
		}
		l.mu.Lock()
		stores := make([]*Store, 0, len(l.stores))
		for _, s := range l.stores {
			if s.ready {
				stores = append(stores, s)
			}
		}
		l.mu.Unlock()
		for _, s := range stores {
			start := time.Now()
			if err := s.flush(); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("node log: flush to bolt failed", "store", s.key, "error", err)
			} else if took := time.Since(start); took >= slowCommit {
				l.logger.Log(context.Background(), levelStorageEvents, "node log: flush to bolt", "store", s.key, "ms", took.Milliseconds())
			}
		}
		if err := l.deleteFlushedSegments(); err != nil {
			l.logger.Error("node log: delete segments", "error", err)
		}
	}
}

// deleteFlushedSegments removes the oldest segments whose every record is in a synced bolt
// file: older than every open store's oldest unflushed record and holding no record of a store
// that has not opened since the log did. The segment being written stays.
func (l *Log) deleteFlushedSegments() error {
	l.mu.Lock()
	pinnedSeq := uint64(0) // the lowest seq some store still needs; 0 = none
	for _, s := range l.stores {
		if s.unflushedFirstSeq != 0 && (pinnedSeq == 0 || s.unflushedFirstSeq < pinnedSeq) {
			pinnedSeq = s.unflushedFirstSeq
		}
	}
	var doomed []*segment
	for len(l.segments) > 1 {
		seg := l.segments[0]
		if pinnedSeq != 0 && seg.firstSeq != 0 && seg.lastSeq >= pinnedSeq {
			break
		}
		if slices.ContainsFunc(mapKeys(seg.keys), func(key string) bool { return l.unresolved[key] }) {
			break
		}
		doomed = append(doomed, seg)
		l.segments = l.segments[1:]
	}
	l.mu.Unlock()
	for _, seg := range doomed {
		if err := os.Remove(seg.path); err != nil {
			return fmt.Errorf("remove %s: %w", seg.path, err)
		}
	}
	if len(doomed) > 0 {
		return syncDir(l.opts.Dir)
	}
	return nil
}

func mapKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// Close stops the log. Close every store first: a store still open is closed here (flushed),
// after which it answers ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		stores := make([]*Store, 0, len(l.stores))
		for _, s := range l.stores {
			stores = append(stores, s)
		}
		l.mu.Unlock()
		var errs []error
		for _, s := range stores {
			l.logger.Warn("node log closed before its store", "store", s.key)
			errs = append(errs, s.Close())
		}
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.closing)
		<-l.commitDone
		<-l.flushDone
		if l.file != nil {
			if err := l.file.Close(); err != nil {
				errs = append(errs, fmt.Errorf("node log: close segment: %w", err))
			}
		}
		l.metrics.unregister()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// replay reads the records of key with seq above afterSeq from the segments found at open,
// in order, and hands them to apply. Only segments found at open can hold them: a store's
// records are written only while it is open.
func (l *Log) replay(key string, afterSeq uint64, apply func(record) error) error {
	l.mu.Lock()
	var paths []string
	for _, seg := range l.segments {
		if seg.keys[key] && seg.lastSeq > afterSeq {
			paths = append(paths, seg.path)
		}
	}
	l.mu.Unlock()
	buf := make([]byte, 0, 64<<10)
	for _, path := range paths {
		if err := replaySegment(path, key, afterSeq, buf, apply); err != nil {
			return fmt.Errorf("node log: replay %s for %s: %w", path, key, err)
		}
	}
	return nil
}

func replaySegment(path, key string, afterSeq uint64, buf []byte, apply func(record) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	reader := bufio.NewReaderSize(file, 1<<20)
	if _, err := readSegmentHeader(reader, make([]byte, segmentHeaderBytes)); err != nil {
		return err
	}
	for {
		r, _, err := readRecord(reader, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// Open validated and truncated these segments; a bad record now is new corruption.
			return err
		}
		if r.key != key || r.seq <= afterSeq {
			continue
		}
		if err := apply(r); err != nil {
			return err
		}
	}
}

// segmentNames lists the segment files (tests).
func (l *Log) segmentNames() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.segments))
	for _, seg := range l.segments {
		names = append(names, strings.TrimPrefix(seg.path, l.opts.Dir+string(filepath.Separator)))
	}
	return names
}
