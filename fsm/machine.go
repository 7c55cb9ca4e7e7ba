package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// Machine is one shard's state machine: the store, the apply loop, and the per-shard state of
// every family registered in its Registry. It implements shard.StateMachine.
//
// Lifecycle and threading: ApplyBatch, Snapshot and Restore run one at a time (the shard's
// apply loop, or a follower read applying committed entries ahead of it, in turn under the
// shard's apply lock) and alone touch the modules' memory. Queries read the store only (Store.Read), so
// they see exactly the state of the last committed batch, never a half-applied one.
// AppliedIndex is atomic.
//
// Durability: each batch is one Pebble batch, committed with the applied log index inside it,
// without fsync — the Raft log is the durable record. Checkpoint (raft's snapshot) forces an
// fsync of Pebble's WAL before Raft may compact its log, so after any crash the store holds at
// least the state as of the latest snapshot, and the shard replays only the log above its
// applied index.
type Machine struct {
	reg     *Registry
	logger  *slog.Logger
	store   *Store
	modules []Module
	applied atomic.Uint64
	clock   clock
	outbox  outboxState
	idem    idempotencyState
	chain   chainState
	// rules is the shard's rules version for apply (rules.go); rulesSeen is it as of the last
	// committed batch, for other goroutines.
	rules     uint32
	rulesSeen atomic.Uint32
	// legacyApplied says the store still has the first release's separate applied-index key,
	// which the next batch deletes (the clock record carries the index since).
	legacyApplied bool
	decoder       Decoder      // the apply loop's, reused for every command
	batch         Batch        // the apply loop's, reused for every batch
	writes        sortedWrites // the batch's point writes until its commit
	// eventsChanged is the channel EventsChanged handed out, closed when a batch with events
	// commits (or a restore replaces the outbox); nil while nobody waits, so that a batch
	// allocates nothing when no reader long-polls.
	eventsChanged atomic.Pointer[chan struct{}]
	// committers are the modules told when a batch has committed.
	committers []Committer
	// checkpointMu orders Checkpoint, OpenCheckpoint and RetainCheckpoints (checkpoint.go).
	checkpointMu sync.Mutex
}

// EventsChanged returns a channel that is closed once the outbox may hold events it did not
// hold when EventsChanged was called: after the next batch that emits events commits, or a
// restore. Take the channel before reading the outbox, then wait on it, and no event is missed.
// Called from any goroutine.
func (m *Machine) EventsChanged() <-chan struct{} {
	for {
		if p := m.eventsChanged.Load(); p != nil {
			return *p
		}
		ch := make(chan struct{})
		if m.eventsChanged.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// notifyEvents wakes whoever waits on EventsChanged.
func (m *Machine) notifyEvents() {
	if p := m.eventsChanged.Swap(nil); p != nil {
		close(*p)
	}
}

// Timed is a module with work due at a batch time (hold expiries): the shard's leader proposes
// a Tick when it is due, so that the work happens although nothing else is written.
type Timed interface {
	// NextDueMs is the earliest batch time at which the module has work (0: none). Called from
	// any goroutine.
	NextDueMs() int64
}

// NextDueMs is the earliest time any module has work due at (0: none).
func (m *Machine) NextDueMs() int64 {
	var due int64
	for _, mod := range m.modules {
		if t, ok := mod.(Timed); ok {
			if d := t.NextDueMs(); d != 0 && (due == 0 || d < due) {
				due = d
			}
		}
	}
	return due
}

// Committer is a module told, on the apply goroutine, that a batch has committed: a reader of
// the store sees it from now on (the ledger wakes its cross-shard driver with it).
type Committer interface {
	Committed()
}

// Module is a family's per-shard state (Registry.AddModule).
type Module interface {
	// Load rebuilds the module's memory from the store, at open and after a restore.
	Load() error
	// BeginBatch runs before the batch's first command (expiries on batch time).
	BeginBatch(b *Batch)
	// EndBatch writes what the batch left dirty, after its last command.
	EndBatch(b *Batch)
}

// Open opens (or creates) the store under dir and loads every module.
func Open(dir string, logger *slog.Logger, reg *Registry) (*Machine, error) {
	return open(dir, logger, reg, false, nil)
}

// OpenReadOnly opens an existing store under dir for reading only and loads every module, for
// offline tools (gigaledger verify): nothing under dir is written, not even a restore a crash
// interrupted (that store is refused; a node started on it finishes the restore). Pebble still
// locks the directory, so a node running on it makes this fail rather than read a moving store.
// Every write through the machine fails.
func OpenReadOnly(dir string, logger *slog.Logger, reg *Registry) (*Machine, error) {
	return open(dir, logger, reg, true, nil)
}

// open opens the machine's stores; cache nil gives them a block cache of their own.
func open(dir string, logger *slog.Logger, reg *Registry, readOnly bool, cache *pebble.Cache) (*Machine, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	livePath := filepath.Join(dir, storeDirName)
	if readOnly {
		for _, leftover := range []string{livePath + ".restore", livePath + ".old"} {
			if _, err := os.Stat(leftover); err == nil {
				return nil, fmt.Errorf("open state: %s is left by an interrupted restore; start the node once to finish it", leftover)
			}
		}
	} else {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open state: %w", err)
		}
		if err := recoverInterruptedRestore(livePath); err != nil {
			return nil, fmt.Errorf("open state: %w", err)
		}
	}
	// A store written before the history store has none, and opening makes an empty one; if
	// this open then refuses the store, the empty one goes again, so that the directory is left
	// as it was found (an operator restoring a lost history store finds nothing in the way).
	historyPath := filepath.Join(livePath, historyDirName)
	_, statErr := os.Stat(historyPath)
	historyIsNew := errors.Is(statErr, os.ErrNotExist)
	db, history, merger, err := openStores(livePath, readOnly, logger, cache)
	if err != nil {
		return nil, err
	}
	m := &Machine{reg: reg, logger: logger, store: &Store{dir: dir, db: db, history: history, merger: merger, readOnly: readOnly, logger: logger, cache: cache}}
	if !readOnly {
		m.store.flushPhaseLeft = 1 + rand.Int64N(storeMemTableBytes/2)
	}
	for _, newModule := range reg.modules {
		mod := newModule(m.store)
		m.modules = append(m.modules, mod)
		if c, ok := mod.(Committer); ok {
			m.committers = append(m.committers, c)
		}
	}
	if err := m.load(); err != nil {
		db.Close()
		if history != nil {
			closeHistory(history, merger, false)
		}
		if historyIsNew && !readOnly {
			if removeErr := os.RemoveAll(historyPath); removeErr != nil {
				return nil, errors.Join(err, fmt.Errorf("remove the history store this open made: %w", removeErr))
			}
		}
		return nil, err
	}
	return m, nil
}

// Registry is the machine's op table.
func (m *Machine) Registry() *Registry { return m.reg }

// Store is the machine's store, for queries.
func (m *Machine) Store() *Store { return m.store }

// Module returns a family's per-shard state.
func (m *Machine) Module(id ModuleID) Module { return m.modules[id] }

// Close closes the store. The machine must not be used afterwards.
func (m *Machine) Close() error {
	m.store.mu.Lock()
	defer m.store.mu.Unlock()
	if m.store.db == nil {
		return nil
	}
	var err error
	if !m.store.readOnly {
		// The store has no write-ahead log: flushing keeps a clean stop from replaying the
		// log above the last flush at the next start. The flush flushes the history store
		// first (history.go), so the history store is closed after it.
		err = m.store.db.Flush()
	}
	if closeErr := m.store.db.Close(); err == nil {
		err = closeErr
	}
	m.store.db = nil
	if m.store.history != nil {
		// Flushed too (it has no log): the state flush above did unless there was nothing
		// to flush.
		if closeErr := closeHistory(m.store.history, m.store.merger, !m.store.readOnly && err == nil); err == nil {
			err = closeErr
		}
		m.store.history, m.store.merger = nil, nil
	}
	return err
}

// AppliedIndex is the log index of the last batch committed to the store.
func (m *Machine) AppliedIndex() uint64 { return m.applied.Load() }

var (
	// keyApplied is the first release's applied-index key; the clock record carries the index
	// now, which saves a store write per batch.
	keyApplied = []byte("m\x00applied")
	keyClock   = []byte("m\x00clock")
)

// prefixMeta holds the kernel's bookkeeping: excluded from digests.
const prefixMeta = 'm'

// load reads the bookkeeping and loads every module: memory grows with live records, never
// with history.
func (m *Machine) load() error {
	m.applied.Store(0)
	m.clock = clock{counters: make([]uint64, len(m.reg.counters))}
	m.legacyApplied = false
	if v, err := m.store.Get(keyApplied); err != nil {
		return err
	} else if len(v) == 8 {
		m.applied.Store(binary.BigEndian.Uint64(v))
		m.legacyApplied = true
	}
	if v, err := m.store.Get(keyClock); err != nil {
		return err
	} else if v != nil {
		if err := m.clock.decode(v); err != nil {
			return err
		}
		if m.clock.version >= 2 {
			m.applied.Store(m.clock.applied)
		}
	}
	// The rules first: a store written under rules this binary does not implement (a
	// downgrade) is refused before anything reads or trims what those rules wrote.
	if err := m.loadRules(); err != nil {
		return fmt.Errorf("load rules version: %w", err)
	}
	if err := m.outbox.load(m.store); err != nil {
		return fmt.Errorf("load outbox: %w", err)
	}
	if err := m.idem.load(m.store); err != nil {
		return fmt.Errorf("load idempotency keys: %w", err)
	}
	if err := m.store.trimHistory(m.applied.Load()); err != nil {
		return fmt.Errorf("trim history store: %w", err)
	}
	if err := m.loadChain(); err != nil {
		return fmt.Errorf("load history chain: %w", err)
	}
	m.rulesSeen.Store(m.rules)
	for _, mod := range m.modules {
		if err := mod.Load(); err != nil {
			return err
		}
	}
	return nil
}

// ApplyBatch applies one log entry (shard.StateMachine). Every command gets a *Result; the
// batch's writes and the applied index commit to the store together, so a crash never leaves
// half a batch behind.
func (m *Machine) ApplyBatch(index uint64, timeUnixMs int64, commands [][]byte) []any {
	if index <= m.applied.Load() {
		return nil
	}
	if timeUnixMs > m.clock.lastTimeMs {
		m.clock.lastTimeMs = timeUnixMs
	}
	lastEvent := m.outbox.last // events emitted by this batch move it
	b := &m.batch
	*b = Batch{m: m, pb: m.store.db.NewBatch(), Index: index, Now: m.clock.lastTimeMs, writes: &m.writes}
	for _, mod := range m.modules {
		mod.BeginBatch(b)
	}
	results := make([]any, len(commands))
	for i, raw := range commands {
		m.decoder = Decoder{buf: raw}
		env, err := m.reg.decodeEnvelope(&m.decoder)
		if err != nil {
			// Divergence: the proposer encoded every command, within limits far below the
			// decoder's bounds (a request body is at most 1 MiB, a log entry at most 64 MiB;
			// a string or list may be 1 MiB or 65536 long), and a forwarded command is decoded
			// before it is proposed. A command that does not decode is a corrupt log or a bug,
			// and no replica may guess at it.
			panic(fmt.Sprintf("fsm: log entry %d command %d: %v", index, i, err))
		}
		results[i] = m.applyEnvelope(b, env)
	}
	for _, mod := range m.modules {
		mod.EndBatch(b)
	}
	m.outbox.endBatch(b)
	m.idem.endBatch(b)
	m.chain.endBatch(b)
	if m.legacyApplied {
		b.Delete(keyApplied)
		m.legacyApplied = false
	}
	m.clock.applied = index
	b.Set(keyClock, m.clock.encode(m.rules >= RulesHistoryStore))
	b.writes.flush(b.pb)
	// The chain record first: the history store must hold every record the state store's
	// batches name (history.go); one above the state's applied index is trimmed at open.
	m.chain.commitRecord(m.store.history, index)
	if err := b.pb.Commit(pebble.NoSync); err != nil {
		// The store failed (disk, corruption): this replica cannot go on, and must not
		// answer as if the batch were applied.
		panic(fmt.Sprintf("fsm: commit log entry %d: %v", index, err))
	}
	m.store.shiftFlushPhase(len(b.pb.Repr()))
	b.pb.Close()
	b.pb = nil
	m.applied.Store(index)
	m.rulesSeen.Store(m.rules)
	m.chain.committed()
	if m.outbox.last != lastEvent {
		m.notifyEvents()
	}
	for _, c := range m.committers {
		c.Committed()
	}
	return results
}

// applyCommand runs one command's apply and stamps its op on the result.
func (m *Machine) applyCommand(b *Batch, c Command) *Result {
	spec := m.reg.specOf(c.Op())
	if spec == nil {
		// A bug only: DecodeEnvelope refuses op codes that are not registered.
		panic(fmt.Sprintf("fsm: no apply for op %d", c.Op()))
	}
	r := spec.Apply(b, c)
	if r == nil {
		panic(fmt.Sprintf("fsm: op %s returned no result", spec.Name))
	}
	r.Op = c.Op()
	return r
}

// Batch is the context of one log entry's apply: the leader's time, replicated sequences, the
// writes that commit together, and the outbox.
type Batch struct {
	m     *Machine
	pb    *pebble.Batch
	Index uint64 // the log index
	Now   int64  // the batch time, Unix milliseconds: the leader's clock, never going backwards
	quiet bool   // Emit drops events (a first-release command; see Envelope)
	// writes holds the point writes until the commit sorts them (batchwrites.go); the
	// machine's, reused for every batch.
	writes *sortedWrites
}

// deleteRangeRaw deletes [start, end) in the batch, after the point writes made before it.
//
// When the range holds few keys (deleteRangePointsMax, counting the store's and the batch's
// own), it deletes them one by one and writes no range deletion: the store holds the same
// either way. A range deletion costs every later read of the memtable it lands in: Pebble
// rebuilds the memtable's fragmented range deletions at the first read after each one is
// added, and the outbox's trims (three a batch, nested: each starts at its prefix) fragment
// quadratically. Measured (BenchmarkApplyTransfers, 3M transfers): a reference lookup that the
// filter could not spare cost ~58 µs, 6.9 % of apply in that rebuild. CockroachDB's
// ClearRangeWithHeuristic makes the same choice.
func (b *Batch) deleteRangeRaw(start, end []byte) error {
	if b.pb.Empty() {
		// No range deletion came before in this batch: the batch's writes are all in b.writes.
		keys, err := b.keysInRange(start, end, deleteRangePointsMax)
		if err != nil {
			return err
		}
		if len(keys) <= deleteRangePointsMax {
			for _, k := range keys {
				b.writes.add(k, nil, true)
			}
			return nil
		}
	}
	b.writes.flush(b.pb)
	return b.pb.DeleteRange(start, end, nil)
}

// deleteRangePointsMax is the most keys deleteRangeRaw deletes one by one (a variable for tests).
var deleteRangePointsMax = 64

// keysInRange returns the keys in [start, end) that the store holds or the batch has set, stopping
// once it has more than limit (a key may appear twice).
func (b *Batch) keysInRange(start, end []byte, limit int) ([][]byte, error) {
	var keys [][]byte
	for _, op := range b.writes.ops {
		if k := b.writes.bytes(op.key); !op.del && bytes.Compare(k, start) >= 0 && bytes.Compare(k, end) < 0 {
			if keys = append(keys, bytes.Clone(k)); len(keys) > limit {
				return keys, nil
			}
		}
	}
	it, err := b.m.store.NewIter(start, end)
	if err != nil {
		return nil, err
	}
	for valid := it.First(); valid && len(keys) <= limit; valid = it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
	}
	return keys, it.Close()
}

// Set writes a key in the batch. It panics only on a store failure: a batch refuses writes when
// it is closed, or past Pebble's 4 GiB batch limit, which a 64 MiB log entry's writes stay far
// below.
func (b *Batch) Set(k, v []byte) {
	if b.m.chain.started && b.m.isHistory(k) {
		b.m.chain.recordHistory(chainSet, k, v)
	}
	b.setRaw(k, v)
}

// setRaw is Set without the history chain (the chain's own record).
func (b *Batch) setRaw(k, v []byte) {
	b.writes.add(k, v, false)
}

// Delete deletes a key in the batch (panics as Set).
func (b *Batch) Delete(k []byte) {
	if b.m.chain.started && b.m.isHistory(k) {
		b.m.chain.recordHistory(chainDelete, k, nil)
	}
	b.writes.add(k, nil, true)
}

// Get reads the store as of the previous batch: the batch's own writes are not visible, so a
// family keeps what it writes in a batch in memory until EndBatch.
func (b *Batch) Get(k []byte) ([]byte, error) { return b.m.store.Get(k) }

// Scan is Store.Scan as of the previous batch.
func (b *Batch) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return b.m.store.Scan(prefix, fn)
}

// Next advances a replicated counter and returns its new value (the first is 1). A uint64
// counter of log commands cannot wrap in practice: 2^64 at a billion a second take 584 years.
func (b *Batch) Next(c Counter) uint64 {
	b.m.clock.counters[c]++
	return b.m.clock.counters[c]
}

// Peek is the value the next Next(c) returns.
func (b *Batch) Peek(c Counter) uint64 { return b.m.clock.counters[c] + 1 }

// Module returns a family's per-shard state.
func (b *Batch) Module(id ModuleID) Module { return b.m.modules[id] }

// clock is the machine's own notion of time and order, and the applied log index: batch times
// never go backwards, even when a new leader's clock is behind the old one's. Its record keeps
// the families' counters in registration order; a record written with fewer counters (an older
// release) reads the missing ones as zero. Version 1 (the first release) had no applied index:
// that was a key of its own. Version 3 is version 2 written once the shard's rules reach
// RulesHistoryStore: releases from before it refuse a clock version they do not know, so they
// refuse such a store at open instead of running on it without its history store (they have no
// check of the rules version at open; loadRules has it since).
type clock struct {
	version    byte
	applied    uint64
	lastTimeMs int64
	counters   []uint64
}

const (
	clockVersion             = 2
	clockVersionHistoryStore = 3
)

// encode writes the record; historyStore says the shard's rules are at RulesHistoryStore or
// later (version 3).
func (c *clock) encode(historyStore bool) []byte {
	e := Encoder{Buf: make([]byte, 0, 32)}
	if historyStore {
		e.Byte(clockVersionHistoryStore)
	} else {
		e.Byte(clockVersion)
	}
	e.Uvarint(c.applied)
	e.Varint(c.lastTimeMs)
	for _, v := range c.counters {
		e.Uvarint(v)
	}
	return e.Buf
}

func (c *clock) decode(data []byte) error {
	d := NewDecoder(data)
	c.version = d.Byte()
	switch {
	case d.err != nil:
	case c.version == clockVersion || c.version == clockVersionHistoryStore:
		c.applied = d.Uvarint()
	case c.version != 1:
		return fmt.Errorf("decode clock: unknown version %d", c.version)
	}
	c.lastTimeMs = d.Varint()
	for i := range c.counters {
		if len(d.buf) == 0 {
			break
		}
		c.counters[i] = d.Uvarint()
	}
	return d.Finish("clock")
}

// DeleteRange deletes the keys of [start, end) in the batch (panics as Set).
func (b *Batch) DeleteRange(start, end []byte) {
	if b.m.chain.started && b.m.reg.rangeHasHistory(start, end) {
		b.m.chain.recordHistory(chainDeleteRange, start, end)
	}
	if err := b.deleteRangeRaw(start, end); err != nil {
		panic(fmt.Sprintf("fsm: batch delete range: %v", err))
	}
}
