package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
)

// The history chain makes a shard's history tamper-evident (Formance's hash-chained logs, Blnk's
// hash chain). Families mark the key prefixes of their history (Registry.MarkHistory: the
// ledger's entries and transactions). From the batch that applies StartHistoryChain on, every
// batch that writes history also writes one chain record under
//
//	# {log index, big-endian}  →  version, flags, the previous record's hash, the batch time,
//	                              and the batch's history writes in apply order
//
// whose hash is SHA-256 over its key and value. The previous hash links the records into a
// chain that is equal on every replica (apply is deterministic), so a replica's head (log index,
// hash) can be compared with another's or written down elsewhere; `gigaledger verify` walks the
// chain offline, checks that the store's history is exactly what the chain recorded, and
// recomputes the balances from it (VerifyHistory, ledger.CheckInvariants).
//
// The chain starts by a command in the log, never by the binary alone: replicas of one shard
// then start it at the same batch whichever release wrote their earlier history, and a replica
// too old to know the command stops at it instead of diverging silently. The shard's leader
// proposes it (cmd/gigaledger duties) when HistoryChainStarted is false.
//
// Cost per batch: copying the history bytes once more into one record with a key that only
// grows (an append for the store), and one SHA-256 over them.
const prefixChain = '#'

// OpStartHistoryChain starts the shard's history chain; a repeat changes nothing.
const OpStartHistoryChain Op = 107

// StartHistoryChain is the command of OpStartHistoryChain.
type StartHistoryChain struct{}

// Op implements Command.
func (StartHistoryChain) Op() Op { return OpStartHistoryChain }

// Encode implements Command.
func (*StartHistoryChain) Encode(*Encoder) {}

// Route implements Command: the leader proposes it to the shard it leads.
func (*StartHistoryChain) Route() Route { return Route{Pinned: true} }

func registerHistoryChain(r *Registry) {
	r.ClaimPrefix(prefixChain, "kernel: history chain")
	r.Add(OpSpec{Op: OpStartHistoryChain, Name: "StartHistoryChain", Example: &StartHistoryChain{},
		Decode: func(*Decoder) Command { return &StartHistoryChain{} },
		Apply: func(b *Batch, _ Command) *Result {
			if !b.m.chain.started {
				b.m.chain.startNow = true
			}
			return &Result{}
		}})
}

// Chain record layout.
const (
	chainRecordVersion byte = 1
	// chainGenesis marks the first record: its previous hash is zero and it carries no writes.
	chainGenesis byte = 1 << 0
	// chainFresh marks a genesis written while the store held no history: every history
	// record of the store is then covered by the chain.
	chainFresh byte = 1 << 1
)

// Kinds of history writes in a chain record.
const (
	chainSet         byte = 1
	chainDelete      byte = 2
	chainDeleteRange byte = 3
	// chainAppend is a write that lives only in the history store (appended.go).
	chainAppend byte = 4
)

// ChainHead is the newest chain record of a shard: its log index and hash.
type ChainHead struct {
	Index uint64
	Hash  [32]byte
}

// chainState is the machine's side of the chain: the head, and the history writes of the batch
// being applied.
type chainState struct {
	started  bool
	startNow bool // StartHistoryChain applied in this batch
	index    uint64
	hash     [32]byte
	writes   []byte // this batch's history writes, encoded
	count    uint64
	// record is this batch's chain record (key, value) for the history store, committed before
	// the state batch (commitRecord); nil when the record went into the state batch or there
	// is none.
	record [2][]byte
	// appends says the batch's writes include appended ones (Batch.Append); recordAppends that
	// the record being committed does.
	appends, recordAppends bool
	// recordBuf, appended and appendOrder are scratch for endBatch's record and
	// commitWithAppends, reused from batch to batch.
	recordBuf   []byte
	appended    [][2][]byte
	appendOrder []uint64
	// head is what ChainHead returns: the committed head, for any goroutine.
	head atomic.Pointer[ChainHead]
}

// isHistory reports whether a key belongs to a prefix some family marked as history.
func (m *Machine) isHistory(k []byte) bool { return len(k) > 0 && m.reg.history[k[0]] }

// recordHistory adds one history write to the batch's chain record.
func (c *chainState) recordHistory(kind byte, k, v []byte) {
	c.writes = append(c.writes, kind)
	c.writes = binary.AppendUvarint(c.writes, uint64(len(k)))
	c.writes = append(c.writes, k...)
	if kind != chainDelete {
		c.writes = binary.AppendUvarint(c.writes, uint64(len(v)))
		c.writes = append(c.writes, v...)
	}
	c.count++
}

// endBatch writes the batch's chain record, if the batch started the chain or wrote history.
func (c *chainState) endBatch(b *Batch) {
	defer func() { c.writes, c.count, c.startNow, c.appends = c.writes[:0], 0, false, false }()
	var flags byte
	switch {
	case c.startNow:
		flags = chainGenesis
		fresh, err := b.m.storeHoldsNoHistory()
		if err != nil {
			panic(fmt.Sprintf("fsm: read store for the history chain's genesis: %v", err))
		}
		if fresh {
			flags |= chainFresh
		}
		c.started, c.hash = true, [32]byte{}
	case !c.started || c.count == 0:
		return
	}
	k := chainKey(b.Index)
	// The record's buffer is reused from batch to batch: the state batch copies what it is
	// given (setRaw), and the history store's batch copies it at commitRecord, which runs
	// before the next batch.
	v := c.recordBuf[:0]
	v = append(v, chainRecordVersion, flags)
	v = append(v, c.hash[:]...)
	v = binary.AppendVarint(v, b.Now)
	v = binary.AppendUvarint(v, c.count)
	v = append(v, c.writes...)
	c.index, c.hash = b.Index, chainHash(k, v)
	if c.recordBuf = v[:0]; cap(v) > sortedWritesKeptBytes {
		c.recordBuf = nil // a rare huge batch does not pin its size
	}
	if b.Rules() >= RulesHistoryStore {
		c.record, c.recordAppends = [2][]byte{k, v}, c.appends
		b.setRaw(keyChainHead, encodeChainHead(c.index, c.hash))
		return
	}
	b.setRaw(k, v)
}

// commitRecord commits the batch's chain record to the history store, if it goes there.
func (c *chainState) commitRecord(history *pebble.DB, index uint64) {
	if c.record[0] == nil {
		return
	}
	defer func() { c.record, c.recordAppends = [2][]byte{}, false }()
	if history == nil {
		panic(fmt.Sprintf("fsm: log entry %d: a chain record for the history store, and no history store", index))
	}
	var err error
	if c.recordAppends {
		// The record and the records appended beside it, in one batch.
		err = c.commitWithAppends(history, index, c.record[0], c.record[1])
	} else {
		err = history.Set(c.record[0], c.record[1], pebble.NoSync)
	}
	if err != nil {
		// The disk failed: this replica cannot go on (as a failed state commit).
		panic(fmt.Sprintf("fsm: commit log entry %d's chain record to the history store: %v", index, err))
	}
}

// committed publishes the head once the batch is in the store.
func (c *chainState) committed() {
	if c.started {
		if h := c.head.Load(); h == nil || h.Index != c.index {
			c.head.Store(&ChainHead{Index: c.index, Hash: c.hash})
		}
	}
}

func chainKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixChain}, index)
}

func chainHash(k, v []byte) [32]byte {
	h := sha256.New()
	h.Write(k)
	h.Write(v)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// storeHoldsNoHistory reports whether no history prefix has a key yet (as of the last batch).
func (m *Machine) storeHoldsNoHistory() (bool, error) {
	for p := range m.reg.history {
		if !m.reg.history[p] {
			continue
		}
		it, err := m.store.NewIter([]byte{byte(p)}, []byte{byte(p) + 1})
		if err != nil {
			return false, err
		}
		found := it.First()
		if err := it.Close(); err != nil {
			return false, err
		}
		if found {
			return false, nil
		}
	}
	return true, nil
}

// loadChain reads the head from the newest chain record, which must be the head the state
// store recorded when the record is in the history store (history.go).
func (m *Machine) loadChain() error {
	c := &m.chain
	c.started, c.startNow, c.index, c.hash, c.writes, c.count = false, false, 0, [32]byte{}, c.writes[:0], 0
	c.record = [2][]byte{}
	c.head.Store(nil)
	applied := m.applied.Load()
	head, ok, err := chainHeadUpTo(m.store.db, m.store.historyReader(), applied)
	if err != nil {
		return err
	}
	if ok {
		c.started, c.index, c.hash = true, head.Index, head.Hash
		c.head.Store(&head)
	}
	if err := m.checkChainStores(); err != nil {
		return fmt.Errorf("history chain: %w; restore this replica from another (remove its data directory and add it again)", err)
	}
	stored, err := m.store.Get(keyChainHead)
	if err != nil || stored == nil {
		return err
	}
	want, err := decodeChainHead(stored)
	if err != nil {
		return err
	}
	if !c.started || c.index != want.Index || c.hash != want.Hash {
		return fmt.Errorf("history chain: the state store (applied index %d) names the head at log index %d, "+
			"and the history store's newest record up to it is %s: the history store lost records; "+
			"restore this replica from another (remove its data directory and add it again)",
			applied, want.Index, m.describeHistoryHead())
	}
	return nil
}

// checkChainStores checks that every chain record of the state store is older than every one
// of the history store, as apply writes them (history.go). A state-store record after the
// history store's first is what a release from before the history store writes when it runs
// on such a store: it sees only the state store's records, so it went on from an old head.
func (m *Machine) checkChainStores() error {
	if m.store.history == nil {
		return nil
	}
	first, _, err := firstChainRecord(m.store.history)
	if err != nil || first == nil {
		return err
	}
	last, _, err := lastChainRecord(m.store.db, nil, 0)
	if err != nil || last == nil {
		return err
	}
	if len(first) != 9 || len(last) != 9 {
		return fmt.Errorf("malformed chain key %x or %x", first, last)
	}
	if stateLast, historyFirst := binary.BigEndian.Uint64(last[1:]), binary.BigEndian.Uint64(first[1:]); stateLast >= historyFirst {
		return fmt.Errorf("the state store holds a chain record at log index %d, after the history store's first at %d "+
			"(a release from before the history store ran on this store, and its chain forked from the other replicas')",
			stateLast, historyFirst)
	}
	return nil
}

// describeHistoryHead names the history store's newest record for an error.
func (m *Machine) describeHistoryHead() string {
	if m.store.history == nil {
		return "missing (there is no history store)"
	}
	k, _, err := lastChainRecord(nil, m.store.history, m.applied.Load())
	switch {
	case err != nil:
		return fmt.Sprintf("unreadable (%v)", err)
	case k == nil:
		return "missing (the history store holds no record)"
	case len(k) != 9:
		return fmt.Sprintf("malformed (key %x)", k)
	}
	return fmt.Sprintf("at log index %d with another hash", binary.BigEndian.Uint64(k[1:]))
}

// HistoryChainStarted reports whether the shard's history chain has started (any goroutine).
func (m *Machine) HistoryChainStarted() bool { return m.chain.head.Load() != nil }

// HistoryChainHead is the shard's newest chain record (ok false before the chain starts). Any
// goroutine may call it; it is the head as of a committed batch.
func (m *Machine) HistoryChainHead() (ChainHead, bool) {
	if h := m.chain.head.Load(); h != nil {
		return *h, true
	}
	return ChainHead{}, false
}

// HistorySetsAfter calls fn with every history write of kind set or append (Batch.Append) that
// the chain recorded after log index after, in apply order, with its record's log index and
// batch time: what a family that keeps part of its live state in memory between checkpoints
// replays to rebuild it (ledger's wallet epochs). It reads the store as it is now.
func (s *Store) HistorySetsAfter(after uint64, fn func(index uint64, now int64, k, v []byte) error) error {
	// The history store holds nothing above the applied index once the store is loaded
	// (trimHistory), and its callers run on the apply goroutine.
	return historySetsAfter(s.db, s.historyReader(), after, math.MaxUint64, fn)
}

// ViewHistorySetsAfter is HistorySetsAfter on a view of the store.
func ViewHistorySetsAfter(view *View, after uint64, fn func(index uint64, now int64, k, v []byte) error) error {
	if view.err != nil {
		return view.err
	}
	return historySetsAfter(view.Snapshot, view.historyReader(), after, view.applied, fn)
}

func historySetsAfter(state, history pebble.Reader, after, upTo uint64, fn func(index uint64, now int64, k, v []byte) error) error {
	return scanChain(state, history, after, upTo, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("history chain: malformed key %x", k)
		}
		index := binary.BigEndian.Uint64(k[1:])
		// version, flags, the previous hash, the batch time, the write count, the writes
		if len(v) < 2+32 || v[0] != chainRecordVersion {
			return fmt.Errorf("history chain: record %d is malformed", index)
		}
		rest := v[2+32:]
		now, n := binary.Varint(rest)
		if n <= 0 {
			return fmt.Errorf("history chain: record %d has no time", index)
		}
		rest = rest[n:]
		count, n := binary.Uvarint(rest)
		if n <= 0 {
			return fmt.Errorf("history chain: record %d has no write count", index)
		}
		rest = rest[n:]
		for ; count > 0; count-- {
			kind, wk, wv, next, ok := nextChainWrite(rest)
			if !ok {
				return fmt.Errorf("history chain: record %d has a malformed write", index)
			}
			if kind == chainSet || kind == chainAppend {
				if err := fn(index, now, wk, wv); err != nil {
					return err
				}
			}
			rest = next
		}
		if len(rest) != 0 {
			return fmt.Errorf("history chain: record %d has %d bytes after its writes", index, len(rest))
		}
		return nil
	})
}

// HistoryChainStarted reports whether the shard's history chain records this batch's history
// writes (it started in an earlier batch).
func (b *Batch) HistoryChainStarted() bool { return b.m.chain.started }
