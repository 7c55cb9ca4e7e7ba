package ledger

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/gigaledger/gigaledger/fsm"
)

// liveWalletsMatchStore checks the in-memory wallets against the store's wallet records: the
// same set, field for field, and every owner index entry naming a live wallet in order. Call
// it between batches.
func liveWalletsMatchStore(l *Ledger) error {
	n := 0
	err := l.store.Scan([]byte{prefixWallet}, func(k, v []byte) error {
		stored, err := decodeWallet(v)
		if err != nil {
			return err
		}
		n++
		// A wallet epoch leaves the record behind the wallet; readers lay its balance over
		// (epochs.go).
		l.overlay.mu.RLock()
		l.overlay.lay(stored)
		l.overlay.mu.RUnlock()
		live := l.wallet(stored.ID)
		if live == nil {
			return fmt.Errorf("wallet %s stored, not live", stored.ID)
		}
		stored.dirty = false
		if *live != *stored {
			return fmt.Errorf("wallet %s live %+v, stored %+v", stored.ID, *live, *stored)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n != l.wallets.Len() {
		return fmt.Errorf("%d wallets stored, %d live", n, l.wallets.Len())
	}
	owned := 0
	err = l.store.Scan([]byte{prefixOwnerWallet}, func(k, v []byte) error {
		w := l.wallet(string(v))
		if w == nil || string(k[1:len(k)-9]) != customerKey(w.ProjectID, w.CustomerID) {
			return fmt.Errorf("owner index entry %q names wallet %q: %+v", k, v, w)
		}
		owned++
		return nil
	})
	if err == nil && owned != n {
		err = fmt.Errorf("%d wallets in the owner index, %d stored", owned, n)
	}
	if err == nil && len(l.batchOwnerWallets) != 0 {
		err = fmt.Errorf("wallets created by a batch that ended: %v", l.batchOwnerWallets)
	}
	return err
}

// TestWalletTable exercises the compact table alone: growth, IDs and customer IDs too long for
// the arena, names and descriptions set and cleared, lookups of missing IDs.
func TestWalletTable(t *testing.T) {
	tab := newWalletTable(0)
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]*Wallet{}
	slots := map[string]uint32{}
	var ids []string
	long := 0
	for i := range 20_000 {
		id := fmt.Sprintf("w%d", i)
		w := &Wallet{ID: id, ProjectID: fmt.Sprintf("p%d", i%3), AssetID: fmt.Sprintf("a%d", i%5), Status: WalletOpen,
			Balance: Amount{Hi: rng.Uint64(), Lo: rng.Uint64()}, Held: Amount{Lo: rng.Uint64()},
			EntryCount: rng.Uint64(), CreatedAt: rng.Int64(), UpdatedAt: -rng.Int64()}
		switch i % 7 {
		case 1:
			w.CustomerID = "c" + id
		case 2:
			w.Name, w.Description = "name "+id, "description"
		case 3:
			if i%700 != 3 {
				break
			}
			long++
			w.ID = strings.Repeat("x", arenaStringMax+1) + id // too long for the arena
			w.CustomerID = strings.Repeat("y", arenaStringMax+1)
			id = w.ID
		case 4:
			w.Description = "only a description"
		}
		if _, ok := tab.findString(id); ok {
			t.Fatalf("%.20s found before it was added", id)
		}
		slot := tab.insert([]byte(w.ID), []byte(w.ProjectID), []byte(w.CustomerID), []byte(w.AssetID))
		tab.set(slot, w)
		want[id], slots[id] = w, slot
		ids = append(ids, id)
	}
	check := func() {
		t.Helper()
		if tab.Len() != len(want) {
			t.Fatalf("%d wallets, want %d", tab.Len(), len(want))
		}
		for _, id := range ids {
			slot, ok := tab.findString(id)
			if bslot, bok := tab.find([]byte(id)); !ok || !bok || slot != slots[id] || bslot != slot {
				t.Fatalf("%.20s: slot %d %v / %d %v, want %d", id, slot, ok, bslot, bok, slots[id])
			}
			if got := tab.wallet(slot, id); *got != *want[id] {
				t.Fatalf("%.20s: %+v, want %+v", id, *got, *want[id])
			}
		}
		for _, id := range []string{"", "w", "w20000", "x", strings.Repeat("x", arenaStringMax+1)} {
			if _, ok := tab.findString(id); ok {
				t.Fatalf("%.20s found", id)
			}
		}
	}
	check()
	// Change every wallet: names come and go, amounts and times move.
	for i, id := range ids {
		w := want[id]
		w.Name, w.Description = "", ""
		if i%2 == 0 {
			w.Name = "renamed"
		}
		w.Balance, w.Held, w.Status = Amount{Lo: uint64(i)}, Amount{}, WalletSuspendedStatus
		tab.set(slots[id], w)
	}
	check()
	for _, id := range ids {
		want[id].Name = ""
		tab.set(slots[id], want[id])
	}
	check()
	if len(tab.held) != 0 {
		t.Fatalf("%d held amounts kept, all are zero", len(tab.held))
	}
	if size := unsafe.Sizeof(walletRec{}); size != 72 {
		t.Fatalf("a wallet record is %d bytes", size)
	}
	if len(tab.extra) != long { // only the long IDs keep a side record
		t.Fatalf("%d side records, want %d", len(tab.extra), long)
	}
	// The load's way: records appended, then indexed at once.
	if err := tab.buildIndex(false); err != nil {
		t.Fatal(err)
	}
	check()
	w := want[ids[0]]
	tab.append([]byte(w.ID), []byte(w.ProjectID), []byte(w.CustomerID), []byte(w.AssetID))
	if err := tab.buildIndex(false); err == nil {
		t.Fatal("a wallet stored twice was indexed")
	}
}

// TestLiveWalletsMatchStoreAfterEveryBatch applies wallet changes of every kind, some
// rejected half way, and checks the in-memory wallets against the store after each batch and
// after a restart.
func TestLiveWalletsMatchStoreAfterEveryBatch(t *testing.T) {
	tl := newTestLedger(t)
	tl.mustApply(&Command{Op: OpCreateProject, ProjectID: "p", Name: "P"})
	tl.mustApply(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "usd", Name: "USD", Code: "USD", Fractions: 100})
	tl.mustApply(&Command{Op: OpCreateAsset, ProjectID: "p", AssetID: "eur", Name: "EUR", Code: "EUR", Fractions: 100})
	tl.mustApply(&Command{Op: OpUpsertCustomer, ProjectID: "p", CustomerID: "alice", Name: "Alice"})
	check := func() {
		t.Helper()
		if err := liveWalletsMatchStore(tl.ledger.Ledger); err != nil {
			t.Fatal(err)
		}
	}
	var batch [][]byte
	for i := range 50 {
		c := &Command{Op: OpCreateWallet, ProjectID: "p", WalletID: fmt.Sprintf("w%02d", i), AssetID: "usd"}
		if i%2 == 1 {
			c.CustomerID, c.AssetID, c.Name = "alice", "eur", "named"
		}
		batch = append(batch, c.Encode(nil))
	}
	tl.applyBatch(batch)
	check()
	rng := rand.New(rand.NewPCG(3, 4))
	for step := range 40 {
		batch = batch[:0]
		for i := range 20 {
			a, b := rng.IntN(50), rng.IntN(50)
			var c *Command
			switch rng.IntN(6) {
			case 0:
				c = &Command{Op: OpRenameWallet, ProjectID: "p", WalletID: fmt.Sprintf("w%02d", a), Name: fmt.Sprint(step)}
			case 1:
				c = &Command{Op: OpDescribeWallet, ProjectID: "p", WalletID: fmt.Sprintf("w%02d", a)}
				if step%2 == 0 {
					c.Description = "d" + fmt.Sprint(i)
				}
			default:
				c = &Command{Op: OpTransact, ProjectID: "p", ReferenceID: fmt.Sprintf("r%d.%d", step, i), Operations: []Operation{
					{Type: OperationIssue, To: fmt.Sprintf("w%02d", a), Amount: AmountFromUint64(uint64(rng.IntN(100)))},
					{Type: OperationTransfer, From: fmt.Sprintf("w%02d", a), To: fmt.Sprintf("w%02d", b), Amount: AmountFromUint64(uint64(rng.IntN(150)))}}}
			}
			batch = append(batch, c.Encode(nil))
		}
		if step == 20 {
			// A wallet created in the batch that suspends its customer is suspended with the
			// others (it is not in the store's owner index yet).
			batch = append(batch, (&Command{Op: OpCreateWallet, ProjectID: "p", CustomerID: "alice", WalletID: "new", AssetID: "usd"}).Encode(nil),
				(&Command{Op: OpSuspendCustomer, ProjectID: "p", CustomerID: "alice"}).Encode(nil))
		}
		tl.applyBatch(batch)
		check()
		if step == 20 {
			for _, id := range []string{"new", "w01", "w49"} {
				if w := tl.ledger.Ledger.Wallet("p", id); w == nil || w.Status != WalletSuspendedStatus {
					t.Fatalf("wallet %s of the suspended customer: %+v", id, w)
				}
			}
			if w := tl.ledger.Ledger.Wallet("p", "w00"); w.Status != WalletOpen {
				t.Fatalf("system wallet w00 after suspending alice: %+v", w)
			}
		}
		if w := tl.ledger.Ledger.Wallet("p", "w00"); w == nil || w.ID != "w00" {
			t.Fatalf("Wallet outside a batch: %+v", w)
		} else {
			w.Balance = Amount{Hi: 1} // a copy: the live wallet must not change
		}
		check()
	}
	if err := tl.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := openTest(tl.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl.ledger = l
	check()
}

// mustApply applies one command as its own log entry and fails on a rejection.
func (tl *testLedger) mustApply(c *Command) {
	tl.t.Helper()
	if r := tl.applyBatch([][]byte{c.Encode(nil)}); r[0].(*fsm.Result).Err != nil {
		tl.t.Fatal(r[0].(*fsm.Result).Err)
	}
}

// applyBatch applies commands as one log entry.
func (tl *testLedger) applyBatch(cmds [][]byte) []any {
	tl.index++
	tl.nowMs += 1000
	return tl.ledger.ApplyBatch(tl.index, tl.nowMs, cmds)
}
