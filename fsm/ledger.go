package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// Ledger is one shard's ledger state: the live model (projects, assets, customers, wallets) in
// memory for apply, and everything — live model and history — in a Pebble store that readers
// query concurrently.
//
// Lifecycle and threading: ApplyBatch, Snapshot and Restore run on one goroutine (the shard's
// apply loop) and alone touch the in-memory maps. Query methods read Pebble only, so they see
// exactly the state of the last committed batch, never a half-applied one. AppliedIndex is
// atomic.
//
// Durability: each batch is one Pebble batch, committed with the applied log index inside it,
// without fsync — the Raft log is the durable record. Snapshot forces an fsync of Pebble's WAL
// before Raft may compact its log, so after any crash Pebble holds at least the state as of the
// latest snapshot, and the shard replays only the log above Pebble's applied index.
type Ledger struct {
	dir    string
	logger *slog.Logger

	mu sync.RWMutex // guards db against Restore swapping it; readers take RLock
	db *pebble.DB

	applied atomic.Uint64
	clock   clock

	projects        map[string]*Project
	assets          map[string]*Asset    // project 0 asset
	customers       map[string]*Customer // project 0 customer
	wallets         map[string]*Wallet
	customerWallets map[string][]string // project 0 customer → wallet IDs in creation order

	// pendingReferences holds the transactions of the batch being applied, by project 0
	// referenceId, until the batch commits and Pebble can answer for them.
	pendingReferences map[string]*Transaction
}

const storeDirName = "ledger"

// Open opens (or creates) the ledger store under dir and loads the live model into memory.
func Open(dir string, logger *slog.Logger) (*Ledger, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Ledger{dir: dir, logger: logger}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if err := recoverInterruptedRestore(filepath.Join(dir, storeDirName)); err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	db, err := openPebble(filepath.Join(dir, storeDirName))
	if err != nil {
		return nil, err
	}
	l.db = db
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// Store tuning. Apply looks up keys that mostly do not exist (a new reference ID, a new
// transaction ID), so every level carries bloom filters; without them each miss reads index and
// data blocks from every level.
const (
	storeCacheBytes         = 512 << 20
	storeMemTableBytes      = 16 << 20
	storeBloomBitsPerKey    = 10
	storeLevelCount         = 7
	storeL0CompactionFiles  = 4
	storeL0StopWritesFiles  = 24
	storeLBaseMaxBytes      = 256 << 20
	storeTargetFileBytes    = 16 << 20
	storeMaxConcurrentFlush = 2
)

func openPebble(path string) (*pebble.DB, error) {
	cache := pebble.NewCache(storeCacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:                    cache,
		MemTableSize:             storeMemTableBytes,
		L0CompactionThreshold:    storeL0CompactionFiles,
		L0StopWritesThreshold:    storeL0StopWritesFiles,
		LBaseMaxBytes:            storeLBaseMaxBytes,
		MaxConcurrentCompactions: func() int { return storeMaxConcurrentFlush },
		Logger:                   quietPebbleLogger{},
		Levels:                   make([]pebble.LevelOptions, storeLevelCount),
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
			return os.Rename(candidate, livePath)
		}
	}
	return nil
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

// Close closes the store. The ledger must not be used afterwards.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db == nil {
		return nil
	}
	err := l.db.Close()
	l.db = nil
	return err
}

// AppliedIndex is the log index of the last batch committed to the store.
func (l *Ledger) AppliedIndex() uint64 { return l.applied.Load() }

// load rebuilds the in-memory live model from the store: memory grows with live records,
// never with history.
func (l *Ledger) load() error {
	l.projects = map[string]*Project{}
	l.assets = map[string]*Asset{}
	l.customers = map[string]*Customer{}
	l.wallets = map[string]*Wallet{}
	l.customerWallets = map[string][]string{}
	l.pendingReferences = map[string]*Transaction{}
	l.clock = clock{}
	l.applied.Store(0)

	if v, err := l.get(keyApplied); err != nil {
		return err
	} else if v != nil {
		l.applied.Store(binary.BigEndian.Uint64(v))
	}
	if v, err := l.get(keyClock); err != nil {
		return err
	} else if v != nil {
		if l.clock, err = decodeClock(v); err != nil {
			return err
		}
	}
	err := l.scan([]byte{prefixProject}, func(k, v []byte) error {
		p, err := decodeProject(v)
		l.projects[p.ID] = p
		return err
	})
	if err == nil {
		err = l.scan([]byte{prefixAsset}, func(k, v []byte) error {
			a, err := decodeAsset(v)
			l.assets[a.ProjectID+"\x00"+a.ID] = a
			return err
		})
	}
	if err == nil {
		err = l.scan([]byte{prefixCustomer}, func(k, v []byte) error {
			c, err := decodeCustomer(v)
			l.customers[c.ProjectID+"\x00"+c.ID] = c
			return err
		})
	}
	if err == nil {
		err = l.scan([]byte{prefixWallet}, func(k, v []byte) error {
			w, err := decodeWallet(v)
			l.wallets[w.ID] = w
			return err
		})
	}
	if err == nil {
		// Owner index keys end in the wallet sequence, so a scan yields creation order.
		err = l.scan([]byte{prefixOwnerWallet}, func(k, v []byte) error {
			if len(k) < 9 || l.wallets[string(v)] == nil {
				return fmt.Errorf("bad owner index entry %q → %q", k, v)
			}
			owner := string(k[1 : len(k)-9])
			l.customerWallets[owner] = append(l.customerWallets[owner], string(v))
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("load ledger: %w", err)
	}
	return nil
}

// get reads one key; a missing key is (nil, nil).
func (l *Ledger) get(k []byte) ([]byte, error) {
	v, closer, err := l.db.Get(k)
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

// scan calls fn for every key with the given prefix, in key order.
func (l *Ledger) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
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
