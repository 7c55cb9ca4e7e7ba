package nodelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// BindingKey is the stable-store key under which a replica's bolt file records the node log it
// is bound to and the last record of it the bolt file holds: u64 logID | u64 seq. Empty (or
// absent) means the bolt file holds everything: it was closed cleanly, or never written through
// a node log. Raft's own keys (CurrentTerm, LastVoteTerm, LastVoteCand) do not collide.
var BindingKey = []byte("gigaledger.nodelog.binding")

// ErrBoundToNodeLog is returned when a replica's bolt file was last written through a node log
// and not closed cleanly, and it is opened without that log: its newest entries are only in
// the log, so opening it alone would lose them.
var ErrBoundToNodeLog = errors.New("raft log was written through the node log and not closed cleanly; open it with the node log (mode shared) to replay it")

// Store is one replica's raft.LogStore and raft.StableStore. In ModeShared, StoreLogs and
// DeleteRange append a record to the node's log and return once it is durable; entries wait in
// memory until a flush writes them to bolt with bolt's own sync. The stable store (term, vote)
// is written straight to bolt with sync: it changes on elections only.
//
// Threading: raft calls StoreLogs and DeleteRange from its main goroutine and DeleteRange also
// from its snapshot goroutine; reads come from anywhere. writeMu keeps the order of records in
// the node log the order in which they change the store; flushMu keeps a flush and a bolt-side
// delete apart (a flush writing entries a delete just removed would bring them back).
type Store struct {
	log  *Log
	key  string
	bolt *raftboltdb.BoltStore

	writeMu sync.Mutex
	flushMu sync.Mutex

	// mu guards mem, memFirst, memLast, memBytes, appliedSeq and closed.
	mu sync.RWMutex
	// mem holds entries durable in the node log and not yet in bolt, by index.
	mem      map[uint64]*raft.Log
	memFirst uint64 // 0 when mem is empty
	memLast  uint64
	memBytes int
	// appliedSeq is the last record of this store whose change mem and bolt show.
	appliedSeq uint64
	closed     bool

	// Guarded by log.mu: the oldest record of this store not yet in bolt (0: none) and the
	// last seq handed to this store (segment deletion reads them), and whether OpenStore is
	// done (the flusher leaves a store alone until then).
	unflushedFirstSeq uint64
	lastAssignedSeq   uint64
	ready             bool
}

// OpenStore opens the bolt file at boltPath behind the log, under key (unique on the node:
// the shard ID). In ModeShared it first replays the records of key that the bolt file does not
// hold and writes them to it. Close the store before the log.
func (l *Log) OpenStore(key, boltPath string) (*Store, error) {
	if key == "" || len(key) > keyMaxBytes {
		return nil, fmt.Errorf("node log: store key %q empty or longer than %d bytes", key, keyMaxBytes)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if l.stores[key] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("node log: store %q is already open", key)
	}
	s := &Store{log: l, key: key, mem: make(map[uint64]*raft.Log)}
	l.stores[key] = s // reserves the key; unflushedFirstSeq 0 pins nothing yet
	l.mu.Unlock()
	if err := s.open(boltPath); err != nil {
		l.mu.Lock()
		delete(l.stores, key)
		l.mu.Unlock()
		if s.bolt != nil {
			_ = s.bolt.Close()
		}
		return nil, fmt.Errorf("node log: open store %s: %w", key, err)
	}
	return s, nil
}

func (s *Store) open(boltPath string) error {
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, NoSync: false})
	if err != nil {
		return err
	}
	s.bolt = bolt
	binding, err := s.bolt.Get(BindingKey)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return fmt.Errorf("read binding: %w", err)
	}
	if s.log.opts.Mode == ModePerShardSync {
		if len(binding) != 0 {
			return ErrBoundToNodeLog
		}
		return nil
	}
	s.log.mu.Lock()
	unresolved := s.log.unresolved[s.key]
	bindSeq := s.log.nextSeq - 1
	s.log.mu.Unlock()
	if len(binding) == 0 {
		// Fresh, or closed cleanly: bolt holds everything; older records of key (if any) are
		// a previous life's, already in bolt or deleted with it.
		if err := s.setBinding(bindSeq); err != nil {
			return err
		}
	} else {
		if len(binding) != 16 {
			return fmt.Errorf("binding of %d bytes", len(binding))
		}
		logID, flushedSeq := binary.LittleEndian.Uint64(binding), binary.LittleEndian.Uint64(binding[8:])
		if logID != s.log.logID {
			return fmt.Errorf("bolt file is bound to node log %x, this is %x: the log holding its newest entries is gone", logID, s.log.logID)
		}
		if unresolved {
			if err := s.replay(flushedSeq); err != nil {
				return err
			}
		}
	}
	s.log.mu.Lock()
	delete(s.log.unresolved, s.key)
	s.ready = true
	s.log.mu.Unlock()
	return nil
}

// replay applies the log's records of this store above flushedSeq to mem (deletes also to
// bolt) in order, then flushes: by the end bolt holds them all. Replaying a record bolt
// already shows is harmless: puts and deletes of whole keys, applied in log order, end in the
// same state from any earlier starting point.
func (s *Store) replay(flushedSeq uint64) error {
	replayed := 0
	err := s.log.replay(s.key, flushedSeq, func(r record) error {
		replayed++
		s.log.mu.Lock()
		if s.unflushedFirstSeq == 0 {
			s.unflushedFirstSeq = r.seq
		}
		s.lastAssignedSeq = r.seq
		s.log.mu.Unlock()
		switch r.kind {
		case kindEntries:
			s.applyEntries(r.seq, r.entries)
			return nil
		case kindDeleteRange:
			return s.applyDeleteRange(r.seq, r.rangeFirst, r.rangeLast)
		}
		return fmt.Errorf("record kind %d", r.kind)
	})
	if err != nil {
		return err
	}
	if replayed > 0 {
		s.log.logger.Info("node log: replayed records into bolt", "store", s.key, "records", replayed,
			"entries_in_memory", len(s.mem))
	}
	return s.flush()
}

// setBinding records in bolt (synced) that it holds every record of this store up to seq.
func (s *Store) setBinding(seq uint64) error {
	binding := binary.LittleEndian.AppendUint64(nil, s.log.logID)
	binding = binary.LittleEndian.AppendUint64(binding, seq)
	if err := s.bolt.Set(BindingKey, binding); err != nil {
		return fmt.Errorf("write binding: %w", err)
	}
	s.log.metrics.countBoltCommit()
	return nil
}

// FirstIndex implements raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	first, err := s.bolt.FirstIndex()
	if err != nil {
		return 0, err
	}
	if first == 0 || (s.memFirst != 0 && s.memFirst < first) {
		first = s.memFirst
	}
	return first, nil
}

// LastIndex implements raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	last, err := s.bolt.LastIndex()
	if err != nil {
		return 0, err
	}
	return max(last, s.memLast), nil
}

// GetLog implements raft.LogStore.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if entry, ok := s.mem[index]; ok {
		*log = *entry
		return nil
	}
	return s.bolt.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore: it returns once the entries are durable.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	if s.log.opts.Mode == ModePerShardSync {
		if err := s.bolt.StoreLogs(logs); err != nil {
			return err
		}
		s.log.metrics.countBoltCommit()
		return nil
	}
	seq, err := s.log.appendRecord(s, func(dst []byte, seq uint64) []byte {
		return appendEntriesRecord(dst, seq, s.key, logs)
	})
	if err != nil {
		return fmt.Errorf("store logs %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	memBytes := s.applyEntries(seq, logs)
	if memBytes >= s.log.opts.FlushBytes {
		s.log.signalFlush()
	}
	if memBytes >= 4*s.log.opts.FlushBytes || s.log.memBytes.Load() >= s.log.opts.MemoryMaxBytes {
		// The flusher is behind: bound memory by writing to bolt here (backpressure). Over the
		// node's bound, every store that writes flushes itself first.
		return s.flush()
	}
	return nil
}

// applyEntries puts entries into mem; it returns the bytes mem holds now.
func (s *Store) applyEntries(seq uint64, logs []*raft.Log) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		if old, ok := s.mem[l.Index]; ok {
			s.addMemBytes(-entryBytes(old))
		}
		s.mem[l.Index] = l
		s.addMemBytes(entryBytes(l))
		if s.memFirst == 0 || l.Index < s.memFirst {
			s.memFirst = l.Index
		}
		s.memLast = max(s.memLast, l.Index)
	}
	s.appliedSeq = seq
	return s.memBytes
}

// addMemBytes counts entry bytes in mem, the store's and the node's (mu held).
func (s *Store) addMemBytes(delta int) {
	s.memBytes += delta
	s.log.memBytes.Add(int64(delta))
}

func entryBytes(l *raft.Log) int {
	return entryFixedBytes + len(l.Data) + len(l.Extensions)
}

// DeleteRange implements raft.LogStore: it returns once the deletion is durable.
func (s *Store) DeleteRange(first, last uint64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return ErrClosed
	}
	if s.log.opts.Mode == ModePerShardSync {
		if err := s.bolt.DeleteRange(first, last); err != nil {
			return err
		}
		s.log.metrics.countBoltCommit()
		return nil
	}
	seq, err := s.log.appendRecord(s, func(dst []byte, seq uint64) []byte {
		return appendDeleteRangeRecord(dst, seq, s.key, first, last)
	})
	if err != nil {
		return fmt.Errorf("delete range %d-%d: %w", first, last, err)
	}
	return s.applyDeleteRange(seq, first, last)
}

// applyDeleteRange removes [first, last] from mem and from bolt (synced), under mu so that
// no reader sees an entry gone from mem and still in bolt.
func (s *Store) applyDeleteRange(seq, first, last uint64) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for index, entry := range s.mem {
		if index >= first && index <= last {
			delete(s.mem, index)
			s.addMemBytes(-entryBytes(entry))
		}
	}
	s.recomputeMemBounds()
	s.appliedSeq = seq
	if err := s.bolt.DeleteRange(first, last); err != nil {
		return fmt.Errorf("delete range %d-%d from bolt: %w", first, last, err)
	}
	s.log.metrics.countBoltCommit()
	return nil
}

func (s *Store) recomputeMemBounds() {
	s.memFirst, s.memLast = 0, 0
	for index := range s.mem {
		if s.memFirst == 0 || index < s.memFirst {
			s.memFirst = index
		}
		s.memLast = max(s.memLast, index)
	}
}

// flush writes mem to bolt in one synced commit, then records the position in the binding
// (synced): bolt then holds every record of this store up to it.
func (s *Store) flush() error {
	if s.log.opts.Mode == ModePerShardSync {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	seq := s.appliedSeq
	entries := make([]*raft.Log, 0, len(s.mem))
	for _, entry := range s.mem {
		entries = append(entries, entry)
	}
	s.mu.RUnlock()
	s.log.mu.Lock()
	nothingNew := s.unflushedFirstSeq == 0 || s.unflushedFirstSeq > seq
	s.log.mu.Unlock()
	if nothingNew {
		return nil
	}
	if len(entries) > 0 {
		if err := s.bolt.StoreLogs(entries); err != nil {
			return fmt.Errorf("flush %d entries to bolt: %w", len(entries), err)
		}
		s.log.metrics.countBoltCommit()
	}
	if err := s.setBinding(seq); err != nil {
		return err
	}
	s.mu.Lock()
	for _, entry := range entries {
		if s.mem[entry.Index] == entry { // not replaced while we wrote
			delete(s.mem, entry.Index)
			s.addMemBytes(-entryBytes(entry))
		}
	}
	s.recomputeMemBounds()
	s.mu.Unlock()
	s.log.mu.Lock()
	if s.lastAssignedSeq <= seq {
		s.unflushedFirstSeq = 0
	} else {
		s.unflushedFirstSeq = seq + 1 // a lower bound of the oldest record still in mem
	}
	s.log.mu.Unlock()
	return nil
}

// Set implements raft.StableStore (synced to bolt before it returns).
func (s *Store) Set(key, value []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.bolt.Set(key, value); err != nil {
		return err
	}
	s.log.metrics.countBoltCommit()
	return nil
}

// Get implements raft.StableStore.
func (s *Store) Get(key []byte) ([]byte, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	return s.bolt.Get(key)
}

// SetUint64 implements raft.StableStore (synced to bolt before it returns).
func (s *Store) SetUint64(key []byte, value uint64) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.bolt.SetUint64(key, value); err != nil {
		return err
	}
	s.log.metrics.countBoltCommit()
	return nil
}

// GetUint64 implements raft.StableStore.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	return s.bolt.GetUint64(key)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Close writes what mem holds to bolt, marks the bolt file as holding everything (an empty
// binding, so that it may be opened without the node log) and closes it. Raft must be shut
// down first. It is safe to call more than once.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.isClosed() {
		return nil
	}
	var errs []error
	flushed := true
	if s.log.opts.Mode == ModeShared {
		if err := s.flush(); err != nil {
			errs = append(errs, err)
			flushed = false
		} else if err := s.bolt.Set(BindingKey, nil); err != nil {
			errs = append(errs, fmt.Errorf("clear binding: %w", err))
		} else {
			s.log.metrics.countBoltCommit()
		}
	}
	s.flushMu.Lock()
	s.mu.Lock()
	s.closed = true
	s.addMemBytes(-s.memBytes) // empty unless the flush failed
	s.mem = nil
	s.mu.Unlock()
	s.flushMu.Unlock()
	s.log.mu.Lock()
	if s.log.stores[s.key] == s && flushed {
		// A store whose memory did not reach bolt stays registered, closed: its pin keeps
		// the segments holding its records for the replay at the next open.
		delete(s.log.stores, s.key)
	}
	s.log.mu.Unlock()
	if err := s.bolt.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
