package ledger

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/gigaledger/gigaledger/fsm"
)

// Ledger is one shard's accounting core: the live model (projects, assets, customers, wallets)
// in memory for apply, and everything — live model, holds and history — in the shard's store,
// which the query methods read concurrently. It is the fsm.Module of this family.
//
// Apply methods (apply.go, transact.go, holds.go) run on the shard's apply goroutine between
// BeginBatch and EndBatch, with l.b the batch; query methods (query.go) read the store only.
type Ledger struct {
	store  *fsm.Store
	family *Family

	projects  map[string]*Project
	assets    map[string]*Asset    // project 0 asset
	customers map[string]*Customer // project 0 customer
	wallets   *walletTable         // wallets.go
	// The wallets this batch created, by project 0 customer, in creation order: the rest of a
	// customer's wallets are in the store's owner index (liveOwnerWalletsOf).
	batchOwnerWallets map[string][]string

	// The batch being applied, and what it wrote that the store cannot answer for until it
	// commits: transactions by project 0 referenceId, holds by project 0 hold ID.
	b                 *fsm.Batch
	dirtyWallets      []liveWallet // changed in this batch, in first-change order
	pendingReferences map[string]*Transaction
	pendingHolds      map[string]*Hold
	// Cross-shard records this batch wrote: coordinator's by project 0 transaction ID,
	// participant's likewise.
	pendingCross          map[string]*CrossTransaction
	pendingParticipations map[string]*Participation
	eventScratch          fsm.Encoder // reused to encode event data
	// recordScratch and keyScratch are reused for records and keys that Batch.Set, Append and
	// Get copy or only read (apply's goroutine; never kept past the call).
	recordScratch, keyScratch []byte
	// nextExpiryMs is the earliest expiry of an active hold (0: none), so that a batch looks
	// for due holds only when there are some; dueMs is its copy for other goroutines
	// (NextDueMs, the leader's tick).
	nextExpiryMs int64
	dueMs        atomic.Int64
	// nextTrimFinishMs is the earliest finish of an indexed participation (0: none), so that a
	// batch looks for participations to trim only when one is due (crosstrim.go).
	nextTrimFinishMs int64
	// crossBegun are the cross-shard transactions this batch began; once it commits they are
	// kept for TakeBegunCross and whoever waits on CrossChanged is woken (the coordinator's
	// driver).
	crossBegun     []CrossRef
	crossChanged   atomic.Pointer[chan struct{}]
	crossBegunMu   sync.Mutex
	crossBegunKept []CrossRef
	crossBegunLost bool
	// crossEnded are the transactions (project, NUL, transaction ID) this batch made done;
	// once it commits their waiters (CrossDoneOf: routers waiting for their answer) are woken.
	crossEnded   []string
	crossWaitMu  sync.Mutex
	crossWaiters map[string]*crossWaiter
	// refs says which reference IDs the store certainly lacks (refindex.go).
	refs referenceFilter

	// The open wallet epoch (epochs.go): where it started, its entries so far, the wallets it
	// has not written; whether this batch ended it, and the balances it deferred, which
	// Committed shows readers in overlay.
	epochStart   uint64
	epochEntries int
	// deferred are the slots of the wallets the epoch deferred: those whose record still
	// carries walletDeferred are not written yet (a slot may appear twice, once it was written
	// and deferred again).
	deferred   []uint32
	epochEnded bool
	published  []deferredWallet
	overlay    walletOverlay
	// legacyEntries says the state store may hold entries (e …): written before
	// RulesEntriesAppended (entries.go). Readers on any goroutine.
	legacyEntries atomic.Bool
	// batchTransactionProjects are the projects whose transactions this batch appended
	// (transactions.go): the first one writes the batch's index key.
	batchTransactionProjects map[string]struct{}
}

// NextDueMs is the earliest expiry of an active hold, 0 for none (fsm.Timed).
func (l *Ledger) NextDueMs() int64 { return l.dueMs.Load() }

// Family is the accounting core registered in one fsm.Registry: where its module and counters
// are, for the machines built from that registry.
type Family struct {
	module              fsm.ModuleID
	transactionSequence fsm.Counter
	walletSequence      fsm.Counter
	// hooks are the families' cross-shard hook handlers by name (RegisterCrossHook), fixed
	// before any machine opens.
	hooks map[string]CrossHookHandler
}

// Register adds the accounting core (the Cloud Wallet ops, holds) to reg. It must be the first
// family registered: its counters come first in the stored clock record, where the first
// release kept them.
func Register(reg *fsm.Registry) *Family {
	f := &Family{
		transactionSequence: reg.Counter("ledger: transactions"),
		walletSequence:      reg.Counter("ledger: wallets"),
	}
	if f.transactionSequence != 0 || f.walletSequence != 1 {
		panic("ledger: Register must come before any other family's counters")
	}
	for prefix, owner := range prefixOwners {
		reg.ClaimPrefix(prefix, "ledger: "+owner)
	}
	// The history chain covers entries (appended, never rewritten) and transactions (rewritten
	// only as a cross-shard transaction's status advances): the balances replay from them.
	reg.MarkHistory(prefixEntry)
	reg.MarkHistory(prefixTransaction)
	reg.MarkChainPosition(prefixWalletEpoch)
	f.module = reg.AddModule(func(s *fsm.Store) fsm.Module { return &Ledger{store: s, family: f} })
	for _, spec := range f.ops() {
		reg.Add(spec)
	}
	reg.SetLegacyDecoder(decodeLegacyCommand)
	return f
}

// Of returns the ledger of a machine built from the registry f was registered in.
func (f *Family) Of(m *fsm.Machine) *Ledger { return m.Module(f.module).(*Ledger) }

// in returns the ledger of the batch's machine, ready to apply.
func (f *Family) in(b *fsm.Batch) *Ledger { return b.Module(f.module).(*Ledger) }

// Open opens a machine with the accounting core as its only family: for tools and tests that
// need a ledger without the other families.
func Open(dir string, logger *slog.Logger) (*fsm.Machine, *Ledger, error) {
	reg := fsm.NewRegistry()
	f := Register(reg)
	m, err := fsm.Open(dir, logger, reg)
	if err != nil {
		return nil, nil, err
	}
	return m, f.Of(m), nil
}

// Load rebuilds the in-memory live model from the store (fsm.Module): memory grows with live
// records, never with history.
func (l *Ledger) Load() error {
	l.projects = map[string]*Project{}
	l.assets = map[string]*Asset{}
	l.customers = map[string]*Customer{}
	l.wallets = newWalletTable(0)
	l.batchOwnerWallets = map[string][]string{}
	l.pendingReferences = map[string]*Transaction{}
	l.pendingHolds = map[string]*Hold{}
	l.pendingCross = map[string]*CrossTransaction{}
	l.pendingParticipations = map[string]*Participation{}
	l.batchTransactionProjects = map[string]struct{}{}
	l.dirtyWallets = nil

	s := l.store
	err := s.Scan([]byte{prefixProject}, func(k, v []byte) error {
		p, err := decodeProject(v)
		l.projects[p.ID] = p
		return err
	})
	if err == nil {
		err = s.Scan([]byte{prefixAsset}, func(k, v []byte) error {
			a, err := decodeAsset(v)
			l.assets[a.ProjectID+"\x00"+a.ID] = a
			return err
		})
	}
	if err == nil {
		err = s.Scan([]byte{prefixCustomer}, func(k, v []byte) error {
			c, err := decodeCustomer(v)
			l.customers[c.ProjectID+"\x00"+c.ID] = c
			return err
		})
	}
	if err == nil {
		unique := true // every wallet under its own ID's key (always, but check)
		err = s.Scan([]byte{prefixWallet}, func(k, v []byte) error {
			own, err := l.wallets.load(k, v)
			unique = unique && own
			return err
		})
		if err == nil {
			err = l.wallets.buildIndex(unique)
		}
		if err == nil {
			err = l.loadEpoch()
		}
	}
	if err == nil {
		var legacy bool
		legacy, err = l.holdsLegacyEntries()
		l.legacyEntries.Store(legacy)
	}
	if err == nil {
		l.nextExpiryMs, err = l.earliestExpiry()
		l.dueMs.Store(l.nextExpiryMs)
	}
	if err == nil {
		l.nextTrimFinishMs, err = l.earliestTrim()
	}
	if err != nil {
		return fmt.Errorf("load ledger: %w", err)
	}
	l.refs.reset(l.scanReferenceKeys)
	return nil
}

// scanReferenceKeys calls fn with every stored reference key (the reference filter's scan, on
// its own goroutine; Machine.Close and a restore's swap wait for it).
func (l *Ledger) scanReferenceKeys(fn func(k []byte) error) error {
	return l.store.Read(func() error {
		return l.store.Scan([]byte{prefixReference}, func(k, _ []byte) error { return fn(k) })
	})
}

// BeginBatch starts applying a batch: holds whose time has come expire first, and finished
// cross-shard participations past their retention are trimmed (fsm.Module).
func (l *Ledger) BeginBatch(b *fsm.Batch) {
	l.b = b
	l.expireHolds()
	l.trimParticipations()
}

// EndBatch writes each wallet the batch changed, once (fsm.Module).
func (l *Ledger) EndBatch(b *fsm.Batch) {
	clear(l.batchTransactionProjects)
	l.dueMs.Store(l.nextExpiryMs)
	l.flushWallets()
	l.wallets.endBatch()
	clear(l.batchOwnerWallets)
	clear(l.pendingReferences)
	clear(l.pendingHolds)
	if len(l.pendingCross) > 0 || len(l.pendingParticipations) > 0 {
		clear(l.pendingCross)
		clear(l.pendingParticipations)
	}
	l.b = nil
}

// Store is the shard's store, for queries.
func (l *Ledger) Store() *fsm.Store { return l.store }

// set and delete write into the batch being applied. Every reference key written joins the
// reference filter, whichever op writes it; every entry counts towards the wallet epoch.
func (l *Ledger) set(k, v []byte) {
	switch k[0] {
	case prefixReference:
		l.refs.add(k)
	case prefixEntry:
		l.epochEntries++
	}
	l.b.Set(k, v)
}

func (l *Ledger) delete(k []byte) { l.b.Delete(k) }

// get reads the store as of the previous batch.
func (l *Ledger) get(k []byte) ([]byte, error) { return l.store.Get(k) }

// holdsLegacyEntries reports whether the state store holds an entry (e …).
func (l *Ledger) holdsLegacyEntries() (bool, error) {
	it, err := l.store.NewIter([]byte{prefixEntry}, []byte{prefixEntry + 1})
	if err != nil {
		return false, err
	}
	found := it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return found, nil
}

// earliestExpiry reads the earliest expiry of an active hold from the store (0: none).
func (l *Ledger) earliestExpiry() (int64, error) {
	it, err := l.store.NewIter([]byte{prefixHoldExpiry}, []byte{prefixHoldExpiry + 1})
	if err != nil {
		return 0, err
	}
	var earliest int64
	if it.First() {
		earliest = int64(binary.BigEndian.Uint64(it.Key()[1:9]))
	}
	return earliest, it.Close()
}
