package ledger

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/gigaledger/gigaledger/fsm"
)

// shortWalletEpochs makes wallet epochs end after entries entries or logEntries log entries,
// for the test.
func shortWalletEpochs(t *testing.T, entries int, logEntries uint64) {
	savedEntries, savedLog := walletEpochEntriesMax, walletEpochLogEntriesMax
	walletEpochEntriesMax, walletEpochLogEntriesMax = entries, logEntries
	t.Cleanup(func() { walletEpochEntriesMax, walletEpochLogEntriesMax = savedEntries, savedLog })
}

// TestWalletEpochsKeepReplicasEqual applies the same random batches — transfers, issues,
// holds that expire, renames — to three stores: two with wallet epochs (short ones), one of
// which restarts every few dozen batches, and one whose rules stop before them, which writes
// every changed wallet at once. After every batch the two with epochs hold the same bytes
// (a restart in the middle of an epoch rebuilds exactly what the other kept in memory), and
// all three answer the same for every wallet and every result.
func TestWalletEpochsKeepReplicasEqual(t *testing.T) {
	shortWalletEpochs(t, 13, 17)
	replicas := [3]*testLedger{newTestLedger(t), newTestLedger(t), newTestLedger(t)}
	for i, tl := range replicas {
		tl.applyTyped(&fsm.StartHistoryChain{})
		rules := RulesWalletEpochs
		if i == 2 {
			rules = RulesWalletEpochs - 1
		}
		tl.applyTyped(&fsm.RaiseRules{Version: rules})
		tl.setup()
	}
	rng := rand.New(rand.NewPCG(7, 11))
	wallets := []string{"W1", "W2", "S1"}
	pick := func() string { return wallets[rng.IntN(len(wallets))] }
	behind, restarts, ref := 0, 0, 0
	for step := range 400 {
		cmds := make([][]byte, 1+rng.IntN(6))
		for i := range cmds {
			ref++
			reference := fmt.Sprintf("r%d", ref)
			var c *Command
			switch k := rng.IntN(12); {
			case k == 0:
				c = &Command{Op: OpRenameWallet, ProjectID: "p1", WalletID: pick(), Name: fmt.Sprint(step)}
			case k == 1:
				c = tx(reference, hold(pick(), 1+rng.Uint64N(3), replicas[0].nowMs+int64(1+rng.IntN(5))*1000))
			case k <= 3:
				c = tx(reference, issue(pick(), 1+rng.Uint64N(20)))
			default:
				c = tx(reference, transfer(pick(), pick(), 1+rng.Uint64N(10)))
			}
			cmds[i] = c.Encode(nil)
		}
		var results [3][]any
		for i, tl := range replicas {
			results[i] = tl.applyBatch(cmds)
		}
		for i := 1; i < 3; i++ {
			if !reflect.DeepEqual(results[0], results[i]) {
				t.Fatalf("step %d: replica %d answered %+v, replica 0 %+v", step, i, results[i], results[0])
			}
		}
		if step%37 == 36 {
			tl := replicas[1]
			if err := tl.ledger.Close(); err != nil {
				t.Fatal(err)
			}
			l, err := openTest(tl.dir, nil)
			if err != nil {
				t.Fatalf("step %d: reopen: %v", step, err)
			}
			tl.ledger = l
			restarts++
		}
		if d0, d1 := replicas[0].digest(), replicas[1].digest(); d0 != d1 {
			t.Fatalf("step %d: the restarted replica's store differs", step)
		}
		for _, id := range wallets {
			w0 := replicas[0].wallet("p1", id)
			for i := 1; i < 3; i++ {
				if w := replicas[i].wallet("p1", id); *w != *w0 {
					t.Fatalf("step %d: replica %d has %+v, replica 0 %+v", step, i, *w, *w0)
				}
			}
			v, err := replicas[0].ledger.store.Get(key(prefixWallet, id))
			if err != nil {
				t.Fatal(err)
			}
			stored, err := decodeWallet(v)
			if err != nil {
				t.Fatal(err)
			}
			if stored.EntryCount < w0.EntryCount {
				behind++
			}
		}
		for i := 1; i < 3; i++ {
			a, errA := replicas[0].ledger.ListCustomerWallets("p1", "c1")
			b, errB := replicas[i].ledger.ListCustomerWallets("p1", "c1")
			if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("step %d: customer wallets %+v (%v) on replica %d, %+v (%v) on replica 0", step, b, errB, i, a, errA)
			}
		}
	}
	// The store without epochs writes every change; with them, records lag inside an epoch.
	if behind == 0 || restarts == 0 {
		t.Fatalf("records behind their wallets %d times, restarts %d: the test proved nothing", behind, restarts)
	}
	t.Logf("a wallet record lagged its wallet %d times of %d; %d restarts", behind, 400*len(wallets), restarts)
}

// TestWalletReadsDuringEpochsSeeOnlyRealStates reads wallets on two goroutines while batches
// apply: transfers (deferred by the epoch), holds and renames (written at once), epochs
// ending. Every wallet a reader gets must be one the wallet really was after some batch — a
// record of one batch with the balance of another would be a state that never existed — and a
// reader must never see a wallet go back.
func TestWalletReadsDuringEpochsSeeOnlyRealStates(t *testing.T) {
	shortWalletEpochs(t, 11, 13)
	tl := newTestLedger(t)
	tl.applyTyped(&fsm.StartHistoryChain{})
	tl.applyTyped(&fsm.RaiseRules{Version: RulesWalletEpochs})
	tl.setup()
	tl.ok(tx("fund", issue("W1", 1000), issue("W2", 1000)))
	wallets := []string{"W1", "W2", "S1"}
	type state struct {
		id      string
		count   uint64
		balance Amount
		held    Amount
		name    string
		updated int64
	}
	stateOf := func(w *Wallet) state {
		return state{w.ID, w.EntryCount, w.Balance, w.Held, w.Name, w.UpdatedAt}
	}
	real := map[state]bool{}
	record := func() {
		for _, id := range wallets {
			real[stateOf(tl.ledger.peekWallet(id))] = true
		}
	}
	record()
	done := make(chan struct{})
	type observations struct {
		seen []state
		err  error
	}
	results := make(chan observations, 2)
	for range 2 {
		go func() {
			var o observations
			last := map[string]uint64{}
			for {
				select {
				case <-done:
					results <- o
					return
				default:
				}
				for _, id := range wallets {
					w, err := tl.ledger.GetWallet("p1", id)
					if err != nil {
						o.err = err
						results <- o
						return
					}
					if w.EntryCount < last[id] {
						o.err = fmt.Errorf("wallet %s went back from %d entries to %d", id, last[id], w.EntryCount)
						results <- o
						return
					}
					last[id] = w.EntryCount
					o.seen = append(o.seen, stateOf(w))
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(3, 5))
	pick := func() string { return wallets[rng.IntN(len(wallets))] }
	for step := range 600 {
		cmds := make([][]byte, 1+rng.IntN(4))
		for i := range cmds {
			reference := fmt.Sprintf("s%d-%d", step, i)
			var c *Command
			switch k := rng.IntN(10); {
			case k == 0:
				c = &Command{Op: OpRenameWallet, ProjectID: "p1", WalletID: pick(), Name: fmt.Sprint(step)}
			case k == 1:
				c = tx(reference, hold(pick(), 1, tl.nowMs+2000))
			default:
				c = tx(reference, transfer(pick(), pick(), 1+rng.Uint64N(5)))
			}
			cmds[i] = c.Encode(nil)
		}
		tl.applyBatch(cmds)
		record()
	}
	close(done)
	for range 2 {
		o := <-results
		if o.err != nil {
			t.Fatal(o.err)
		}
		for _, s := range o.seen {
			if !real[s] {
				t.Fatalf("a reader saw %+v, which the wallet never was", s)
			}
		}
		if len(o.seen) == 0 {
			t.Fatal("a reader saw nothing")
		}
	}
}
