package ledger

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/gigaledger/gigaledger/fsm"
)

// Wallets at epoch ends (docs/design-notes.md §3). A wallet record written for every batch
// that moved its balance was a quarter of apply's cost (+27 % transfers/s without it), and
// everything in it but the balance, entry count and update time was unchanged. From rules
// version RulesWalletEpochs on, once the history chain runs:
//
//   - A wallet that only transactions changed in a batch (entries posted, nothing held or
//     released, no other field) is not written: its balance, entry count and update time are
//     its newest entry's balance after, sequence + 1 and batch time, which the batch's chain
//     record holds. Any other change writes the whole record, as before.
//   - An epoch is a run of batches that ends at the first batch end where its entries reach
//     walletEpochEntriesMax or its log entries walletEpochLogEntriesMax: a function of the log,
//     so every replica (and a replica after a restart) ends it at the same batch. The epoch's
//     last batch writes every wallet the epoch left unwritten, and keyWalletEpoch → its index.
//   - Load replays the chain records after that index into the wallet table (the chain
//     records are in the same store batches as the rest of the apply state, so they are
//     durable exactly as far as the store is). Readers of wallet records lay the balances of
//     the open epoch over them (walletOverlay), and checkers of a view replay the view's chain
//     the same way (viewEpochBalances).
//
// A store keeps the same content on every replica: the deferral is decided by the log alone.
const RulesWalletEpochs uint32 = 2

// Variables only for the tests, which make epochs short; every replica must use the same.
var (
	// walletEpochEntriesMax bounds the entries a restart replays from the chain (~100 B each).
	walletEpochEntriesMax = 1 << 16
	// walletEpochLogEntriesMax ends an epoch of few entries too, so that a quiet shard's
	// records catch up within that many log entries.
	walletEpochLogEntriesMax uint64 = 4096
)

// keyWalletEpoch holds the log index at which the last epoch ended.
var keyWalletEpoch = []byte{prefixWalletEpoch}

// walletBalance is what an epoch defers of a wallet: what its newest entry decides.
type walletBalance struct {
	balance    Amount
	entryCount uint64
	updatedAt  int64
	newest     uint64 // the log index of the newest entry, when appended (entries.go)
}

// walletOverlay holds the balances of the wallets the open epoch has not written, as of the
// last committed batch, for readers on any goroutine. A reader holds mu (read) from before it
// reads a wallet record until it has laid the overlay over it: the apply goroutine publishes a
// batch's balances (Committed) only after the batch is in the store, so the overlay a reader
// sees is never newer than the record it reads, and of the two the one with more entries is
// the wallet's newest state (a record written later carries at least the overlay's entries).
type walletOverlay struct {
	mu sync.RWMutex
	m  map[string]walletBalance
}

// lay puts the overlay's balance on w when the overlay is newer. Callers hold mu (read).
func (o *walletOverlay) lay(w *Wallet) {
	if b, ok := o.m[w.ID]; ok {
		b.layOn(w)
	}
}

func (b walletBalance) layOn(w *Wallet) {
	if b.entryCount > w.EntryCount {
		w.Balance, w.EntryCount, w.UpdatedAt = b.balance, b.entryCount, b.updatedAt
		if b.newest != 0 {
			w.NewestEntryIndex = b.newest
		}
	}
}

// epochsOn reports whether the batch being applied defers wallet writes.
func (l *Ledger) epochsOn() bool {
	return l.b.Rules() >= RulesWalletEpochs && l.b.HistoryChainStarted()
}

// flushWallets writes the wallets the batch changed, but for those an epoch defers, and ends
// the epoch when its time has come.
func (l *Ledger) flushWallets() {
	epochs := l.epochsOn()
	end := epochs && (l.epochStart == 0 || l.epochEntries >= walletEpochEntriesMax ||
		l.b.Index-l.epochStart >= walletEpochLogEntriesMax)
	t := l.wallets
	if end {
		// The deferred wallets this batch did not change; those it did are written below.
		for _, slot := range l.deferred {
			r := t.rec(slot)
			if r.flags&walletDeferred == 0 {
				continue // written since it was deferred, or listed twice
			}
			r.flags &^= walletDeferred
			id := t.idString(slot)
			if lw, live := t.live[id]; !live || !lw.w.dirty {
				l.set(key(prefixWallet, id), walletRecord(l.peekWallet(id)))
			}
		}
		l.deferred = l.deferred[:0]
		l.epochStart, l.epochEntries, l.epochEnded = l.b.Index, 0, true
		l.set(keyWalletEpoch, binary.BigEndian.AppendUint64(nil, l.b.Index))
	}
	for _, lw := range l.dirtyWallets {
		w := lw.w
		if epochs && !end && !w.fullChange {
			if r := t.rec(lw.slot); r.flags&walletDeferred == 0 {
				r.flags |= walletDeferred
				l.deferred = append(l.deferred, lw.slot)
			}
			l.published = append(l.published, deferredWallet{w.ID, walletBalance{w.Balance, w.EntryCount, w.UpdatedAt, w.NewestEntryIndex}})
		} else {
			l.set(key(prefixWallet, w.ID), walletRecord(w))
			if lw.slot != noSlot {
				t.rec(lw.slot).flags &^= walletDeferred
			}
		}
		w.dirty, w.fullChange = false, false
	}
	l.dirtyWallets = l.dirtyWallets[:0]
}

type deferredWallet struct {
	id string
	walletBalance
}

// publishWallets shows the committed batch's deferred balances to readers (Committed).
func (l *Ledger) publishWallets() {
	if !l.epochEnded && len(l.published) == 0 {
		return
	}
	l.overlay.mu.Lock()
	if l.epochEnded {
		// Every record is current: the epoch's last batch wrote them.
		clear(l.overlay.m)
	}
	for _, d := range l.published {
		l.overlay.m[d.id] = d.walletBalance
	}
	l.overlay.mu.Unlock()
	l.epochEnded = false
	clear(l.published)
	l.published = l.published[:0]
}

// loadEpoch rebuilds the open epoch after the wallet records are loaded: the balances the
// chain recorded after the epoch's start go into the wallet table, the deferred set and the
// overlay.
func (l *Ledger) loadEpoch() error {
	l.deferred = nil
	l.published = nil
	l.epochEnded = false
	l.epochStart, l.epochEntries = 0, 0
	overlay := map[string]walletBalance{}
	defer func() {
		l.overlay.mu.Lock()
		l.overlay.m = overlay
		l.overlay.mu.Unlock()
	}()
	v, err := l.store.Get(keyWalletEpoch)
	if err != nil || v == nil {
		return err
	}
	if l.epochStart, err = decodeEpochStart(v); err != nil {
		return err
	}
	balances, entries, err := epochBalances(l.store.HistorySetsAfter, l.epochStart)
	if err != nil {
		return err
	}
	l.epochEntries = entries
	t := l.wallets
	for id, b := range balances {
		slot, ok := t.findString(id)
		if !ok {
			return fmt.Errorf("wallet epoch: entries of wallet %q, which is not stored", id)
		}
		w := t.wallet(slot, id)
		if b.entryCount <= w.EntryCount {
			continue // written since
		}
		b.layOn(w)
		t.set(slot, w)
		t.rec(slot).flags |= walletDeferred
		l.deferred = append(l.deferred, slot)
		overlay[id] = b
	}
	return nil
}

// epochBalances replays the entries the chain recorded after index start: each wallet's
// newest, and how many there were.
func epochBalances(scan func(after uint64, fn func(index uint64, now int64, k, v []byte) error) error, start uint64) (map[string]walletBalance, int, error) {
	balances := map[string]walletBalance{}
	entries := 0
	err := scan(start, func(index uint64, now int64, k, v []byte) error {
		if len(k) > 0 && k[0] == prefixEntryAppended {
			entries++
			id, e, _, err := decodeAppendedEntry(k, v)
			if err != nil {
				return err
			}
			if b, ok := balances[id]; !ok || b.entryCount <= e.Sequence+1 {
				balances[id] = walletBalance{balance: e.BalanceAfter, entryCount: e.Sequence + 1, updatedAt: now, newest: index}
			}
			return nil
		}
		if len(k) == 0 || k[0] != prefixEntry {
			return nil
		}
		entries++
		// e {wallet} 0 {time} {sequence}
		if len(k) < 1+1+16 || k[len(k)-17] != 0 {
			return fmt.Errorf("wallet epoch: malformed entry key %q", k)
		}
		id := string(k[1 : len(k)-17])
		e, err := decodeStoredEntry(id, k, v)
		if err != nil {
			return err
		}
		if b, ok := balances[id]; !ok || b.entryCount <= e.Sequence+1 {
			balances[id] = walletBalance{balance: e.BalanceAfter, entryCount: e.Sequence + 1, updatedAt: now}
		}
		return nil
	})
	return balances, entries, err
}

// viewEpochBalances is the open epoch's balances as a view of the store holds them, for
// checkers that read wallet records from the view.
func viewEpochBalances(view *fsm.View) (map[string]walletBalance, error) {
	v, err := fsm.GetView(view, keyWalletEpoch)
	if err != nil || v == nil {
		return nil, err
	}
	start, err := decodeEpochStart(v)
	if err != nil {
		return nil, err
	}
	scan := func(after uint64, fn func(index uint64, now int64, k, v []byte) error) error {
		return fsm.ViewHistorySetsAfter(view, after, fn)
	}
	balances, _, err := epochBalances(scan, start)
	return balances, err
}

// decodeEpochStart reads keyWalletEpoch's value: the log index where the last epoch ended.
func decodeEpochStart(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("wallet epoch record %x is malformed", v)
	}
	return binary.BigEndian.Uint64(v), nil
}
