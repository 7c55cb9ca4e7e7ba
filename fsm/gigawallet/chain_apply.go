package gigawallet

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// Events of payments to invoices (GigaWallet's names), with the invoice record as payload.
const (
	EventInvoiceBalanceChanged                      = "INV_BALANCE_CHANGED"
	EventInvoicePartPaymentDetected                 = "INV_PART_PAYMENT_DETECTED"
	EventInvoiceTotalPaymentDetected                = "INV_TOTAL_PAYMENT_DETECTED"
	EventInvoiceOverPaymentDetected                 = "INV_OVER_PAYMENT_DETECTED"
	EventInvoiceTotalPaymentConfirmed               = "INV_TOTAL_PAYMENT_CONFIRMED"
	EventInvoiceOverPaymentConfirmed                = "INV_OVER_PAYMENT_CONFIRMED"
	EventInvoicePaymentUnconfirmed                  = "INV_PAYMENT_UNCONFIRMED"
	EventAccountBalanceChanged                      = "ACC_BALANCE_CHANGE"
	CodeChainBusy                     fsm.ErrorCode = "ChainBusy"
)

// chainApply is one chain command's work: the records it read and changed are cached in the
// family's batch memory (state), and the invoices and accounts it touched are compared with
// how they were before it, to emit events once per command.
type chainApply struct {
	f        *Family
	b        *fsm.Batch
	s        *state
	core     *ledger.Ledger
	cursor   *ChainCursor
	invoices map[string]*Invoice // key: invoiceKey; value: the invoice before the command
	accounts map[string]*Account // key: accountKey; value: the account before the command
	balances map[string]fsm.Amount
	order    []string
}

func (f *Family) chainApply(b *fsm.Batch) (*chainApply, *fsm.Error) {
	s := b.Module(f.module).(*state)
	if s.chainBusy {
		// One chain command per batch: the rewind and confirmation scans read the store as of
		// the previous batch, so a second chain command in the batch would not see the first's
		// index changes. The follower proposes one at a time; it tries again.
		return nil, fsm.Rejectf(CodeChainBusy, "another chain command is in this batch")
	}
	s.chainBusy = true
	return &chainApply{f: f, b: b, s: s, core: f.ledger.In(b), cursor: s.chainCursor(b),
		invoices: map[string]*Invoice{}, accounts: map[string]*Account{}, balances: map[string]fsm.Amount{}}, nil
}

func (f *Family) observeChain(b *fsm.Batch, c *ObserveChain) *fsm.Result {
	if r := c.validate(); r != nil {
		return fsm.Fail(r)
	}
	x, busy := f.chainApply(b)
	if busy != nil {
		return fsm.Fail(busy)
	}
	cur := x.cursor
	switch {
	case cur.Network != "" && (cur.Network != c.Network || cur.Genesis != c.Genesis):
		return fsm.Fail(fsm.Rejectf(CodeWrongChain, "the shard follows %s (genesis %s), not %s (genesis %s)", cur.Network, cur.Genesis, c.Network, c.Genesis))
	case c.Height > 0 && cur.Hash != (Hash{}) && (c.PrevHash != cur.Hash || c.Height != cur.Height+1):
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "block %d %s does not extend the cursor %d %s", c.Height, c.Hash, cur.Height, cur.Hash))
	case c.Height == 0 && cur.Hash == (Hash{}):
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "mempool transactions before the first block"))
	}
	if r := x.checkFilter(c); r != nil {
		return fsm.Fail(r)
	}
	// Every output the command names must be an address the shard watches.
	for _, tx := range c.Txs {
		for _, o := range tx.Outputs {
			if x.s.addressOwner(b, o.Address) == nil {
				return fsm.Fail(fsm.Rejectf(CodeStaleFilter, "address %s is not watched by this shard", o.Address))
			}
		}
	}
	// Checked: from here on the command applies.
	if cur.Network == "" {
		cur.Network, cur.Genesis = c.Network, c.Genesis
	}
	if c.Height > 0 {
		cur.Height, cur.Hash = c.Height, c.Hash
		b.Set(blockHashKey(c.Height), c.Hash[:])
	}
	cur.UpdatedAt = b.Now
	cur.RecentFloor = max(cur.RecentFloor, c.FilterIndex)
	x.trimRecent(cur.RecentFloor)
	for _, tx := range c.Txs {
		x.observeTx(tx, c.Height)
	}
	if c.Height > 0 {
		x.creditDue(c.Height)
		x.confirmPaymentsDue(c.Height)
	}
	x.s.putChainCursor(b, cur)
	x.finish()
	out := *cur
	return &fsm.Result{Value: &out}
}

// checkFilter refuses an observation filtered against a state that lacks an address registered
// since, when one of the observed transactions may pay it (its tag is among the command's).
func (x *chainApply) checkFilter(c *ObserveChain) *fsm.Error {
	if floor := max(x.cursor.RecentFloor, x.s.recentTrimFloor(x.b)); c.FilterIndex < floor {
		return fsm.Rejectf(CodeStaleFilter, "filtered at %d, before the recent registrations kept (%d)", c.FilterIndex, floor)
	}
	if c.FilterIndex >= x.b.Index {
		return fsm.Rejectf(fsm.CodeInvalidArgument, "filtered at %d, not before the command's own index %d", c.FilterIndex, x.b.Index)
	}
	named := map[string]bool{}
	for _, tx := range c.Txs {
		for _, o := range tx.Outputs {
			named[o.Address] = true
		}
	}
	stale := func(address string) bool {
		_, tagged := slices.BinarySearch(c.Tags, AddressTag(address))
		return tagged && !named[address]
	}
	for _, r := range x.s.recent {
		if stale(r) {
			return fsm.Rejectf(CodeStaleFilter, "address %s was registered after the filter's state", r)
		}
	}
	lower := binary.BigEndian.AppendUint64([]byte{prefixRecentAddr}, c.FilterIndex+1)
	var found string
	err := x.scan(lower, []byte{prefixRecentAddr + 1}, func(k []byte) bool {
		if a := string(k[heightKeyPrefixLen:]); stale(a) {
			found = a
			return false
		}
		return true
	})
	if err != nil {
		panic(fmt.Sprintf("gigawallet: recent addresses: %v", err)) // the store failed
	}
	if found != "" {
		return fsm.Rejectf(CodeStaleFilter, "address %s was registered after the filter's state", found)
	}
	return nil
}

// trimRecent forgets the registrations at or below floor: no later observation may be
// filtered before it.
func (x *chainApply) trimRecent(floor uint64) {
	end := binary.BigEndian.AppendUint64([]byte{prefixRecentAddr}, floor+1)
	x.b.DeleteRange([]byte{prefixRecentAddr}, end)
}

// scan iterates keys of [lower, upper) as of the previous batch until fn returns false.
func (x *chainApply) scan(lower, upper []byte, fn func(k []byte) bool) error {
	it, err := x.s.store.NewIter(lower, upper)
	if err != nil {
		return err
	}
	for valid := it.First(); valid; valid = it.Next() {
		if !fn(slices.Clone(it.Key())) {
			break
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return err
	}
	return it.Close()
}

func (x *chainApply) mustScan(lower, upper []byte, fn func(k []byte) bool) {
	if err := x.scan(lower, upper, fn); err != nil {
		panic(fmt.Sprintf("gigawallet: chain index: %v", err)) // the store failed
	}
}

// observeTx applies one transaction seen in a block at height (0: in the mempool).
func (x *chainApply) observeTx(tx ObservedTx, height int64) {
	b, s := x.b, x.s
	payout := s.payment(b, tx.TxID) != nil
	for _, op := range tx.Spends {
		u := s.utxo(b, op)
		if u == nil {
			continue // spent and forgotten, or never ours: nothing to mark
		}
		if u.Spent() && u.Spender != tx.TxID {
			if height == 0 {
				continue // a conflicting mempool spend: the first one seen stands until mined or dropped
			}
			// A mined double spend: the transaction that spent it first is gone for good.
			x.drop(u.Spender)
			u = s.utxo(b, op)
		}
		if u.Spender == tx.TxID && u.SpentHeight == height {
			continue
		}
		if u.SpentHeight > 0 {
			b.Delete(heightKey(prefixSpentAt, u.SpentHeight, op))
		}
		next := *u
		next.Spender, next.SpentHeight = tx.TxID, height
		b.Set(spenderKey(tx.TxID, op), nil)
		if height > 0 {
			b.Set(heightKey(prefixSpentAt, height, op), nil)
		}
		s.putUTXO(b, &next)
		if height > 0 && !payout {
			x.spentElsewhere(&next)
		}
	}
	if payout {
		x.paymentSeen(tx.TxID, height)
	}
	for _, o := range tx.Outputs {
		op := Outpoint{TxID: tx.TxID, Vout: o.Vout}
		u := s.utxo(b, op)
		if u == nil {
			u = x.newUTXO(op, o)
		}
		if height > 0 && u.Height == 0 {
			next := *u
			next.Height = height
			next.ConfirmAt = height + int64(x.confirmations(&next))
			b.Set(heightKey(prefixMinedAt, height, op), nil)
			s.putUTXO(b, &next)
			if next.ConfirmAt <= height {
				x.credit(&next)
			} else {
				b.Set(heightKey(prefixConfirmAt, next.ConfirmAt, op), nil)
			}
		}
	}
	if height > 0 {
		s.setPending(b, tx.TxID, false)
	} else if !x.mined(tx) {
		s.setPending(b, tx.TxID, true)
	}
}

// mined reports whether a mempool notification is late: the transaction is already in a block.
func (x *chainApply) mined(tx ObservedTx) bool {
	for _, o := range tx.Outputs {
		if u := x.s.utxo(x.b, Outpoint{TxID: tx.TxID, Vout: o.Vout}); u != nil && u.Height > 0 {
			return true
		}
	}
	for _, op := range tx.Spends {
		if u := x.s.utxo(x.b, op); u != nil && u.Spender == tx.TxID && u.SpentHeight > 0 {
			return true
		}
	}
	return false
}

// newUTXO records an output first seen (mempool or block) and counts it as incoming.
func (x *chainApply) newUTXO(op Outpoint, o ObservedOutput) *UTXO {
	owner := x.s.addressOwner(x.b, o.Address) // checked before anything applied
	u := &UTXO{Outpoint: op, ProjectID: owner.ProjectID, ForeignID: owner.ForeignID, Address: o.Address,
		Branch: owner.Branch, KeyIndex: owner.KeyIndex, Invoice: owner.Invoice, Koinu: o.Koinu, SeenAt: x.b.Now}
	x.s.putUTXO(x.b, u)
	x.b.Set(accountUTXOKey(u.ProjectID, u.ForeignID, op), nil)
	amount := fsm.AmountFromUint64(o.Koinu)
	if u.Branch == BranchExternal {
		a := x.account(u.ProjectID, u.ForeignID)
		a.Incoming = mustAdd(a.Incoming, amount)
		x.s.put(x.b, a)
	}
	if u.Invoice {
		if v := x.invoice(u.ProjectID, u.Address); v != nil {
			v.Incoming = mustAdd(v.Incoming, amount)
			x.s.putInvoice(x.b, v)
		}
	}
	return u
}

// confirmations is N for an output: its invoice's required_confirmations (GigaWallet's meaning:
// confirmed when tip ≥ height + N); change is confirmed in its block.
func (x *chainApply) confirmations(u *UTXO) int32 {
	if !u.Invoice {
		return 0
	}
	if v := x.invoice(u.ProjectID, u.Address); v != nil {
		return max(v.RequiredConfirmations, 0)
	}
	return 0
}

// creditDue credits the mined outputs whose confirmation height the tip reached.
func (x *chainApply) creditDue(tip int64) {
	var due []Outpoint
	upper := binary.BigEndian.AppendUint64([]byte{prefixConfirmAt}, uint64(tip)+1)
	x.mustScan([]byte{prefixConfirmAt}, upper, func(k []byte) bool {
		op, ok := outpointOf(k)
		if !ok {
			panic(fmt.Sprintf("gigawallet: confirmation key %x", k)) // corruption
		}
		due = append(due, op)
		return true
	})
	for _, op := range due {
		u := x.s.utxo(x.b, op)
		if u == nil || u.Height == 0 || u.Credited {
			continue // unmined or dropped by this command; its key went with it
		}
		next := *u
		x.credit(&next)
	}
}

// credit puts a confirmed output's amount in the account's wallet (an issue of the DOGE asset
// through the accounting core). A change output's amount never left the wallet: it is only
// marked. A wallet that refuses the credit (suspended, closed) leaves the output due: the next
// block tries again.
func (x *chainApply) credit(u *UTXO) {
	b := x.b
	confirmKey := heightKey(prefixConfirmAt, u.ConfirmAt, u.Outpoint)
	if u.Branch == BranchExternal {
		a := x.account(u.ProjectID, u.ForeignID)
		x.noteBalance(a)
		amount := fsm.AmountFromUint64(u.Koinu)
		ref := fmt.Sprintf("%s%s:%d:%d", creditReferencePrefix, u.TxID, u.Vout, u.Credits+1)
		if _, rejected := x.core.Issue(u.ProjectID, a.WalletID, ref, amount); rejected != nil {
			b.Set(confirmKey, nil)
			return
		}
		u.Credits++
		a.Incoming = mustSub(a.Incoming, amount)
		if !a.Shortfall.IsZero() {
			settleShortfall(x.core, a, fmt.Sprintf("chain-settle:%s:%d:%d", u.TxID, u.Vout, u.Credits))
		}
		x.s.put(b, a)
		if u.Invoice {
			if v := x.invoice(u.ProjectID, u.Address); v != nil {
				v.Confirmed = mustAdd(v.Confirmed, amount)
				x.s.putInvoice(b, v)
			}
		}
	}
	u.Credited = true
	b.Delete(confirmKey)
	x.s.putUTXO(b, u)
}

// uncredit takes a confirmed output's amount back out of the wallet after a reorg took its
// confirmations away: what the wallet can no longer give back (spent or held meanwhile) becomes
// the account's shortfall.
func (x *chainApply) uncredit(u *UTXO) {
	u.Credited = false
	if u.Branch != BranchExternal {
		return
	}
	a := x.account(u.ProjectID, u.ForeignID)
	x.noteBalance(a)
	amount := fsm.AmountFromUint64(u.Koinu)
	takeOrOwe(x.core, a, fmt.Sprintf("%s%s:%d:%d", reversalReferencePrefix, u.TxID, u.Vout, u.Credits), amount)
	a.Incoming = mustAdd(a.Incoming, amount)
	x.s.put(x.b, a)
	if u.Invoice {
		if v := x.invoice(u.ProjectID, u.Address); v != nil {
			v.Confirmed = mustSub(v.Confirmed, amount)
			x.s.putInvoice(x.b, v)
		}
	}
}

// drop forgets an unmined transaction: its outputs (and, first, any unmined transaction that
// spends them), and its spends.
func (x *chainApply) drop(txid Hash) {
	b, s := x.b, x.s
	if !s.pending(b, txid) {
		return
	}
	s.setPending(b, txid, false)
	var outputs, spends []Outpoint
	outputsOf := append([]byte{prefixUTXO}, txid[:]...)
	x.mustScan(outputsOf, fsm.PrefixEnd(outputsOf), func(k []byte) bool {
		op, _ := outpointOf(k)
		outputs = append(outputs, op)
		return true
	})
	spentBy := append([]byte{prefixSpender}, txid[:]...)
	x.mustScan(spentBy, fsm.PrefixEnd(spentBy), func(k []byte) bool {
		op, _ := outpointOf(k)
		spends = append(spends, op)
		return true
	})
	outputs = sortedUnique(append(outputs, s.batchOutputs(txid)...))
	spends = sortedUnique(append(spends, s.batchSpends(txid)...))
	for _, op := range outputs {
		u := s.utxo(b, op)
		if u == nil {
			continue
		}
		if u.Height > 0 {
			panic(fmt.Sprintf("gigawallet: pending transaction %s has a mined output", txid)) // corruption
		}
		if u.Spent() {
			x.drop(u.Spender)
		}
		amount := fsm.AmountFromUint64(u.Koinu)
		if u.Branch == BranchExternal {
			a := x.account(u.ProjectID, u.ForeignID)
			a.Incoming = mustSub(a.Incoming, amount)
			s.put(b, a)
		}
		if u.Invoice {
			if v := x.invoice(u.ProjectID, u.Address); v != nil {
				v.Incoming = mustSub(v.Incoming, amount)
				s.putInvoice(b, v)
			}
		}
		s.deleteUTXO(b, op)
	}
	for _, op := range spends {
		u := s.utxo(b, op)
		if u == nil || u.Spender != txid {
			continue
		}
		next := *u
		next.Spender, next.SpentHeight = Hash{}, 0
		b.Delete(spenderKey(txid, op))
		s.putUTXO(b, &next)
	}
}

// sortedUnique orders outpoints by transaction and index, without repeats: what a batch does
// must not depend on map order.
func sortedUnique(ops []Outpoint) []Outpoint {
	slices.SortFunc(ops, func(a, b Outpoint) int {
		if c := bytes.Compare(a.TxID[:], b.TxID[:]); c != 0 {
			return c
		}
		return int(int64(a.Vout) - int64(b.Vout))
	})
	return slices.Compact(ops)
}

func (f *Family) dropTransactions(b *fsm.Batch, c *DropTransactions) *fsm.Result {
	if len(c.TxIDs) == 0 || len(c.TxIDs) > observedTxsMax {
		return fsm.Invalid("a drop names 1..%d transactions", observedTxsMax)
	}
	x, busy := f.chainApply(b)
	if busy != nil {
		return fsm.Fail(busy)
	}
	for _, txid := range c.TxIDs {
		x.drop(txid)
	}
	x.finish()
	out := *x.cursor
	return &fsm.Result{Value: &out}
}

func (f *Family) rewindChain(b *fsm.Batch, c *RewindChain) *fsm.Result {
	x, busy := f.chainApply(b)
	if busy != nil {
		return fsm.Fail(busy)
	}
	cur := x.cursor
	switch {
	case cur.Hash == (Hash{}):
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "the shard has observed no block"))
	case c.Height < 0 || c.Height > cur.Height:
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "cannot rewind to %d from %d", c.Height, cur.Height))
	case c.Hash == (Hash{}):
		return fsm.Invalid("a rewind names the block it keeps")
	case c.Height == cur.Height && c.Hash != cur.Hash:
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "block %d is %s here, not %s", c.Height, cur.Hash, c.Hash))
	}
	// The block kept must be the one the shard observed at that height (when it observed one):
	// a shard on a fork the node left is walked back to the fork point first, else blocks of
	// the old fork at or below the height would stay counted.
	if v := x.s.get(b, blockHashKey(c.Height), "block hash"); v != nil && !bytes.Equal(v, c.Hash[:]) {
		var here Hash
		copy(here[:], v)
		return fsm.Fail(fsm.Rejectf(CodeChainMismatch, "the shard's block at %d is %s, not %s: its follower walks back to the fork first", c.Height, here, c.Hash))
	}
	b.DeleteRange(blockHashKey(c.Height+1), []byte{prefixBlockHash + 1})
	b, s := x.b, x.s
	// Spends in the blocks taken off are unmined again; payouts mined there wait to be mined
	// again, and those confirmed by blocks taken off are unconfirmed. A payout's confirmation
	// height is at most ConfirmationsMax above its block, so the scan starts there.
	var spent []Outpoint
	from := max(c.Height-ConfirmationsMax+1, 0)
	x.mustScan(binary.BigEndian.AppendUint64([]byte{prefixSpentAt}, uint64(from)), []byte{prefixSpentAt + 1}, func(k []byte) bool {
		op, _ := outpointOf(k)
		spent = append(spent, op)
		return true
	})
	spenders := map[Hash]bool{}
	var spenderOrder []Hash
	for _, op := range spent {
		u := s.utxo(b, op)
		if u == nil || !u.Spent() {
			continue
		}
		if !spenders[u.Spender] {
			spenders[u.Spender] = true
			spenderOrder = append(spenderOrder, u.Spender)
		}
		if u.SpentHeight <= c.Height {
			continue
		}
		b.Delete(heightKey(prefixSpentAt, u.SpentHeight, op))
		next := *u
		next.SpentHeight = 0
		s.putUTXO(b, &next)
		s.setPending(b, next.Spender, true)
		if s.payment(b, next.Spender) == nil {
			x.restoreSpent(&next)
		}
	}
	for _, txid := range spenderOrder {
		x.unminePayment(txid, c.Height)
		x.unconfirmPayment(txid, c.Height)
	}
	// Outputs mined above the new tip are unmined; outputs below it whose confirmation height
	// is above it are unconfirmed (the same bound on the scan).
	var mined []Outpoint
	x.mustScan(binary.BigEndian.AppendUint64([]byte{prefixMinedAt}, uint64(from)), []byte{prefixMinedAt + 1}, func(k []byte) bool {
		op, _ := outpointOf(k)
		mined = append(mined, op)
		return true
	})
	for _, op := range mined {
		u := s.utxo(b, op)
		if u == nil {
			continue
		}
		next := *u
		if next.Credited && next.ConfirmAt > c.Height {
			x.uncredit(&next)
		}
		if next.Height > c.Height {
			b.Delete(heightKey(prefixMinedAt, next.Height, op))
			b.Delete(heightKey(prefixConfirmAt, next.ConfirmAt, op))
			s.setPending(b, op.TxID, true)
			next.Height, next.ConfirmAt = 0, 0
		} else if !next.Credited {
			b.Set(heightKey(prefixConfirmAt, next.ConfirmAt, op), nil)
		}
		s.putUTXO(b, &next)
	}
	cur.Height, cur.Hash, cur.UpdatedAt = c.Height, c.Hash, b.Now
	s.putChainCursor(b, cur)
	x.finish()
	out := *cur
	return &fsm.Result{Value: &out}
}

// account returns the account as the command goes, remembering how it was before.
func (x *chainApply) account(projectID, foreignID string) *Account {
	a := x.s.account(x.b, projectID, foreignID)
	if a == nil {
		// Corruption only: an address is registered for an existing account, and accounts are
		// never deleted.
		panic(fmt.Sprintf("gigawallet: watched address of missing account %s/%s", projectID, foreignID))
	}
	k := string(accountKey(projectID, foreignID))
	if _, seen := x.accounts[k]; !seen {
		before := *a
		x.accounts[k] = &before
		x.order = append(x.order, k)
	}
	out := *a
	return &out
}

// noteBalance remembers the wallet's balance before the command changes it.
func (x *chainApply) noteBalance(a *Account) {
	k := string(accountKey(a.ProjectID, a.ForeignID))
	if _, seen := x.balances[k]; !seen {
		x.balances[k] = x.currentBalance(a)
	}
}

func (x *chainApply) currentBalance(a *Account) fsm.Amount {
	return x.core.Available(a.ProjectID, a.WalletID)
}

func (x *chainApply) invoice(projectID, address string) *Invoice {
	v, found := x.s.invoice(x.b, projectID, address)
	if !found {
		return nil
	}
	k := string(invoiceKey(projectID, address))
	if _, seen := x.invoices[k]; !seen {
		before := *v
		x.invoices[k] = &before
		x.order = append(x.order, k)
	}
	out := *v
	return &out
}

// finish settles the touched invoices' paid state and emits the events of what changed: the
// invoices', then the accounts', each in the order they were first touched.
func (x *chainApply) finish() {
	for _, k := range x.order {
		if before := x.invoices[k]; before != nil {
			x.finishInvoice(before)
		}
	}
	for _, k := range x.order {
		if before := x.accounts[k]; before != nil {
			a := x.s.account(x.b, before.ProjectID, before.ForeignID)
			old, noted := x.balances[k]
			if a.Incoming != before.Incoming || (noted && old != x.currentBalance(a)) || a.Shortfall != before.Shortfall || a.Outgoing != before.Outgoing {
				e := fsm.Encoder{}
				balance := &AccountBalance{Account: *a, Current: x.currentBalance(a), Outgoing: a.Outgoing}
				if x.b.Rules() < RulesSettleShortfallOnRelease {
					// Before, the event said the wallet's held amount: a log written then
					// replays as it applied.
					balance.Outgoing = fsm.Amount{}
					if w := x.core.Wallet(a.ProjectID, a.WalletID); w != nil {
						balance.Outgoing = w.Held
					}
				}
				balance.Encode(&e)
				x.b.Emit(EventAccountBalanceChanged, e.Buf)
			}
		}
	}
}

func (x *chainApply) finishInvoice(before *Invoice) {
	v, _ := x.s.invoice(x.b, before.ProjectID, before.Address)
	next := *v
	paid := next.Confirmed.Cmp(next.Total) >= 0
	switch {
	case paid && next.PaidHeight == 0:
		next.PaidHeight = x.cursor.Height
		if next.Status == InvoiceUnpaid && next.ExpiresAt != 0 {
			x.b.Delete(invoiceExpiryKey(next.ExpiresAt, next.ProjectID, next.Address))
		}
		next.Status = InvoicePaid
	case !paid && next.PaidHeight != 0:
		next.PaidHeight = 0
		next.Status = InvoiceUnpaid
		if next.ExpiresAt != 0 && next.ExpiresAt <= x.b.Now {
			next.Status = InvoiceExpired
		}
	}
	if next.Incoming == before.Incoming && next.Confirmed == before.Confirmed && next.PaidHeight == before.PaidHeight {
		return
	}
	next.UpdatedAt = x.b.Now
	x.s.putInvoice(x.b, &next)
	rose := next.Incoming.Cmp(before.Incoming) > 0
	below := func(a fsm.Amount) bool { return a.Cmp(next.Total) < 0 }
	events := []string{EventInvoiceBalanceChanged}
	if rose && below(next.Incoming) {
		events = append(events, EventInvoicePartPaymentDetected)
	}
	if below(before.Incoming) && !below(next.Incoming) {
		events = append(events, EventInvoiceTotalPaymentDetected)
	}
	if rose && next.Incoming.Cmp(next.Total) > 0 {
		events = append(events, EventInvoiceOverPaymentDetected)
	}
	if before.PaidHeight == 0 && next.PaidHeight != 0 {
		events = append(events, EventInvoiceTotalPaymentConfirmed)
	}
	if next.Confirmed.Cmp(before.Confirmed) > 0 && next.Confirmed.Cmp(next.Total) > 0 {
		events = append(events, EventInvoiceOverPaymentConfirmed)
	}
	if (before.PaidHeight != 0 && next.PaidHeight == 0) || (!below(before.Incoming) && below(next.Incoming)) {
		events = append(events, EventInvoicePaymentUnconfirmed)
	}
	for _, t := range events {
		emitInvoice(x.b, t, &next)
	}
}

// settleShortfall pays what the account owes (its shortfall, which a reorg or a spend outside
// the wallet left) from what its wallet has available, by a redeem under ref, as far as that
// goes: a confirmed deposit and a released payout's hold settle it first.
func settleShortfall(core *ledger.Ledger, a *Account, ref string) {
	take := minAmount(a.Shortfall, core.Available(a.ProjectID, a.WalletID))
	if take.IsZero() {
		return
	}
	if _, rejected := core.Redeem(a.ProjectID, a.WalletID, ref, take); rejected == nil {
		a.Shortfall = mustSub(a.Shortfall, take)
	}
}

// takeOrOwe takes amount, which left custody, out of the account's wallet by a redeem under
// ref, as far as its available balance goes; what it cannot give becomes the account's
// shortfall.
func takeOrOwe(core *ledger.Ledger, a *Account, ref string, amount fsm.Amount) {
	take := minAmount(amount, core.Available(a.ProjectID, a.WalletID))
	if !take.IsZero() {
		if _, rejected := core.Redeem(a.ProjectID, a.WalletID, ref, take); rejected != nil {
			take = fsm.Amount{}
		}
	}
	a.Shortfall = mustAdd(a.Shortfall, mustSub(amount, take))
}

func minAmount(a, b fsm.Amount) fsm.Amount {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func mustAdd(a, b fsm.Amount) fsm.Amount {
	s, err := a.Add(b)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: %s + %s: %v", a, b, err)) // koinu sums stay far below 2^128
	}
	return s
}

func mustSub(a, b fsm.Amount) fsm.Amount {
	s, err := a.Sub(b)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: %s - %s: %v", a, b, err)) // corruption: a sum lost a part
	}
	return s
}
