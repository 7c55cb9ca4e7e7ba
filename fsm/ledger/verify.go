package ledger

import (
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/gigaledger/gigaledger/fsm"
)

// CheckInvariants recomputes the ledger's invariants from its history, on one consistent view
// of the store:
//   - every wallet's entries replay from zero to its balance, each entry's balanceAfter
//     matching, and their count is the wallet's entry count;
//   - held never exceeds balance (available ≥ 0);
//   - per asset, issued − redeemed over all entries, plus what committed cross-shard
//     transactions moved into the shard and minus what they moved out, = the asset's supply
//     (per shard) = the sum of its wallets' balances;
//   - a prepared cross-shard participation's holds are active, a finished one's are not.
//
// Apply asserts the same rules for each transaction as it runs; this is the second, independent
// check (tests run it after every scenario; operators may run it on a live node).
func (l *Ledger) CheckInvariants() error {
	return l.read(func() error {
		view := l.store.View()
		defer view.Close()
		scan := func(prefix []byte, fn func(k, v []byte) error) error { return fsm.ScanView(view, prefix, fn) }
		held, crossHolds, captured, err := activeHolds(scan)
		if err != nil {
			return err
		}
		// The open wallet epoch's balances are in the view's chain records, not its wallet
		// records (epochs.go); the replay below checks them against the entries all the same.
		epochBalances, err := viewEpochBalances(view)
		if err != nil {
			return err
		}
		entries := viewSource(view)
		if err := entries.checkTransactions(scan); err != nil {
			return err
		}
		type assetTotals struct {
			supply                                  Amount
			balances, issued, redeemed, moveIn, out wideSum
		}
		totals := map[string]*assetTotals{}
		err = scan([]byte{prefixAsset}, func(k, v []byte) error {
			a, err := decodeAsset(v)
			if err == nil {
				totals[a.ProjectID+"\x00"+a.ID] = &assetTotals{supply: a.Supply}
			}
			return err
		})
		if err != nil {
			return err
		}
		inFlight := map[string]bool{}   // wallet 0 transaction marks
		trimIndex := map[string]int64{} // project 0 transaction → finish time, from the trim index
		// Cross-shard moves: what stored committed participations say moved (project 0
		// transaction 0 operation index), and the transfer entries whose other side is not on
		// this shard. Every expected move must be one of those entries; the other such entries
		// belong to participations trimmed since (crosstrim.go).
		expected := map[string]crossMove{}
		committed := map[string]bool{} // project 0 transaction of a stored committed participation
		err = scan([]byte{prefixCrossParticipant}, func(k, v []byte) error {
			if len(k) > 1 && k[1] == 1 {
				inFlight[string(k[2:])] = true
				return nil
			}
			if len(k) > 1 && k[1] == 2 {
				finishedAt, projectID, transactionID, ok := parseParticipationTrimKey(k)
				if !ok {
					return fmt.Errorf("malformed participation trim key %q", k)
				}
				if _, dup := trimIndex[projectID+"\x00"+transactionID]; dup {
					return fmt.Errorf("participation %s indexed twice for trimming", transactionID)
				}
				trimIndex[projectID+"\x00"+transactionID] = finishedAt
				return nil
			}
			p, err := decodeParticipation(v)
			if err != nil {
				return err
			}
			// A finished participation is indexed at its finish time (one finished before the
			// index existed is not, and stays); an unfinished one is not indexed.
			if finishedAt, ok := trimIndex[p.ProjectID+"\x00"+p.TransactionID]; ok {
				if !p.finished() || finishedAt != p.FinishedAt {
					return fmt.Errorf("participation %s is %s, finished at %d, indexed for trimming at %d",
						p.TransactionID, p.Status, p.FinishedAt, finishedAt)
				}
				delete(trimIndex, p.ProjectID+"\x00"+p.TransactionID)
			}
			if p.Status == ParticipationCommitted {
				committed[p.ProjectID+"\x00"+p.TransactionID] = true
			}
			if p.Status == ParticipationPrepared {
				for _, c := range p.Captures {
					k := p.ProjectID + "\x00" + c.HoldID
					if captured[k] != p.TransactionID {
						return fmt.Errorf("prepared participation %s: hold %s is not its capture", p.TransactionID, c.HoldID)
					}
					delete(captured, k)
				}
				for _, id := range p.Wallets {
					mark := id + "\x00" + p.TransactionID
					if !inFlight[mark] {
						return fmt.Errorf("prepared participation %s: wallet %s not marked in flight", p.TransactionID, id)
					}
					delete(inFlight, mark)
				}
			}
			return checkParticipation(p, crossHolds, func(index int, walletID, assetID string, in bool, a Amount) error {
				if totals[p.ProjectID+"\x00"+assetID] == nil {
					return fmt.Errorf("participation %s: wallet %s's asset %s missing", p.TransactionID, walletID, assetID)
				}
				expected[moveKey(p.ProjectID, p.TransactionID, index)] = crossMove{walletID: walletID, in: in, amount: a}
				return nil
			})
		})
		if err != nil {
			return err
		}
		for k := range trimIndex {
			return fmt.Errorf("trim index names participation %q, which does not exist", k)
		}
		unpaired := map[string]crossMove{}
		for id := range crossHolds {
			return fmt.Errorf("active cross-shard hold %s belongs to no prepared participation", id)
		}
		for mark := range inFlight {
			return fmt.Errorf("in-flight mark %q belongs to no prepared participation", mark)
		}
		for k, tx := range captured {
			return fmt.Errorf("hold %q is captured by cross-shard transaction %s, which did not prepare it", k, tx)
		}
		return scanWallets(scan, epochBalances, func(w *Wallet) error {
			if w.Held.Cmp(w.Balance) > 0 {
				return fmt.Errorf("wallet %s: held %s > balance %s", w.ID, w.Held, w.Balance)
			}
			if sum := held[w.ID]; sum != wideOf(w.Held) {
				return fmt.Errorf("wallet %s: held %s, its active holds sum to %s", w.ID, w.Held, sum)
			}
			delete(held, w.ID)
			at := totals[w.ProjectID+"\x00"+w.AssetID]
			if at == nil {
				return fmt.Errorf("wallet %s: asset %s missing", w.ID, w.AssetID)
			}
			var balance Amount
			var count uint64
			visit := func(e *Entry) error {
				var err error
				if e.Sequence != count {
					return fmt.Errorf("wallet %s: entry %d has sequence %d", w.ID, count, e.Sequence)
				}
				switch e.Type {
				case EntryIssue:
					at.issued.add(e.Amount)
					balance, err = balance.Add(e.Amount)
				case EntryCredit:
					balance, err = balance.Add(e.Amount)
					if perr := pairEntry(unpaired, w, e); perr != nil {
						return perr
					}
				case EntryRedeem:
					at.redeemed.add(e.Amount)
					balance, err = balance.Sub(e.Amount)
				case EntryDebit:
					balance, err = balance.Sub(e.Amount)
					if perr := pairEntry(unpaired, w, e); perr != nil {
						return perr
					}
				default:
					return fmt.Errorf("wallet %s: entry %d has type %d", w.ID, count, e.Type)
				}
				if err != nil {
					return fmt.Errorf("wallet %s: entry %d: %w", w.ID, count, err)
				}
				if balance != e.BalanceAfter {
					return fmt.Errorf("wallet %s: entry %d says balance %s, replay gives %s", w.ID, count, e.BalanceAfter, balance)
				}
				count++
				return nil
			}
			// The state store's entries, then the appended ones (entries.go).
			err := scan(prefixOf(prefixEntry, w.ID), func(k, v []byte) error {
				e, err := decodeStoredEntry(w.ID, k, v)
				if err != nil {
					return err
				}
				return visit(e)
			})
			if err != nil {
				return err
			}
			if w.NewestEntryIndex != 0 {
				we, err := entries.entriesOf(w)
				if err != nil {
					return err
				}
				if we.first != count {
					return fmt.Errorf("wallet %s: %d entries in the state store, the first appended is %d", w.ID, count, we.first)
				}
				if err := we.each(we.first, w.EntryCount, visit); err != nil {
					return err
				}
			}
			if balance != w.Balance || count != w.EntryCount {
				return fmt.Errorf("wallet %s: balance %s/%d entries, replay gives %s/%d", w.ID, w.Balance, w.EntryCount, balance, count)
			}
			at.balances.add(w.Balance)
			return nil
		}, func() error {
			for walletID := range held {
				return fmt.Errorf("active holds name wallet %s, which does not exist", walletID)
			}
			for k, m := range expected {
				u, ok := unpaired[k]
				if !ok || u.walletID != m.walletID || u.in != m.in || u.amount != m.amount {
					return fmt.Errorf("cross-shard move %q of a committed participation has no matching entry", k)
				}
			}
			for k, u := range unpaired {
				if _, ok := expected[k]; !ok && committed[transactionOfMove(k)] {
					return fmt.Errorf("transfer entry %q has no other side on this shard and is not its participation's", k)
				}
				at := totals[u.projectID+"\x00"+u.assetID]
				if u.in {
					at.moveIn.add(u.amount)
				} else {
					at.out.add(u.amount)
				}
			}
			for k, at := range totals {
				if at.balances != wideOf(at.supply) {
					return fmt.Errorf("asset %q: supply %s, wallets hold %s", k, at.supply, at.balances)
				}
				supplyAndRedeemed := at.redeemed
				supplyAndRedeemed.add(at.supply)
				supplyAndRedeemed.addWide(at.out)
				issuedAndIn := at.issued
				issuedAndIn.addWide(at.moveIn)
				if supplyAndRedeemed != issuedAndIn {
					return fmt.Errorf("asset %q: issued %s + moved in %s − redeemed %s − moved out %s ≠ supply %s",
						k, at.issued, at.moveIn, at.redeemed, at.out, at.supply)
				}
			}
			return nil
		})
	})
}

func scanWallets(scan func([]byte, func(k, v []byte) error) error, epochBalances map[string]walletBalance, each func(*Wallet) error, done func() error) error {
	err := scan([]byte{prefixWallet}, func(k, v []byte) error {
		w, err := decodeWallet(v)
		if err != nil {
			return err
		}
		epochBalances[w.ID].layOn(w)
		return each(w)
	})
	if err != nil {
		return err
	}
	return done()
}

// wideSum is a 192-bit total of Amounts. A history may issue and redeem far more than 2^128−1
// in all (issue the maximum, redeem it, issue it again), and a corrupt store may hold balances
// that sum past it: the checker reports either, it must not overflow or panic on them. 192
// bits hold 2^64 maximal amounts, more entries than a store can have.
type wideSum struct {
	top uint64
	low Amount
}

func wideOf(a Amount) wideSum { return wideSum{low: a} }

func (s *wideSum) add(a Amount) {
	var carry uint64
	s.low.Lo, carry = bits.Add64(s.low.Lo, a.Lo, 0)
	s.low.Hi, carry = bits.Add64(s.low.Hi, a.Hi, carry)
	s.top += carry
}

func (s *wideSum) addWide(w wideSum) {
	s.add(w.low)
	s.top += w.top
}

// String formats s in decimal, for error messages.
func (s wideSum) String() string {
	if s.top == 0 {
		return s.low.String()
	}
	v := new(big.Int).SetUint64(s.top)
	v.Lsh(v, 128)
	return v.Or(v, s.low.Big()).String()
}

// activeHolds sums the active holds per wallet, and checks that the expiry index lists exactly
// the active holds that expire and are not being captured across shards (those wait for their
// transaction's finish). captured maps project 0 hold to its cross-shard capture's transaction.
func activeHolds(scan func([]byte, func(k, v []byte) error) error) (held map[string]wideSum, crossHolds map[string]bool, captured map[string]string, err error) {
	held = map[string]wideSum{}
	crossHolds = map[string]bool{} // active holds of cross-shard prepares, by project 0 hold
	captured = map[string]string{}
	expiring := map[string]bool{}
	err = scan([]byte{prefixHold}, func(k, v []byte) error {
		h, err := decodeHold(v)
		if err != nil {
			return err
		}
		switch {
		case h.Status == HoldActive:
			sum := held[h.WalletID]
			sum.add(h.Amount)
			held[h.WalletID] = sum
			if h.ExpiresAt != 0 && h.CrossTransactionID == "" {
				expiring[string(holdExpiryKey(h))] = true
			}
			if h.CrossTransactionID != "" {
				captured[h.ProjectID+"\x00"+h.ID] = h.CrossTransactionID
			}
			if isCrossHold(h.ID) {
				crossHolds[h.ProjectID+"\x00"+h.ID] = true
			}
		case h.Status == HoldCaptured && h.CapturedAmount.Cmp(h.Amount) > 0:
			return fmt.Errorf("hold %s captured %s of %s", h.ID, h.CapturedAmount, h.Amount)
		case h.Status < HoldActive || h.Status > HoldExpired:
			return fmt.Errorf("hold %s has status %d", h.ID, h.Status)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	err = scan([]byte{prefixHoldExpiry}, func(k, v []byte) error {
		if !expiring[string(k)] {
			return fmt.Errorf("expiry index entry %q names no active expiring hold", k)
		}
		delete(expiring, string(k))
		return nil
	})
	if err == nil && len(expiring) > 0 {
		err = fmt.Errorf("%d active expiring holds are missing from the expiry index", len(expiring))
	}
	return held, crossHolds, captured, err
}

// checkParticipation checks a participation's holds against the active cross-shard holds
// (removing its own from the set), and reports what a committed one moved into or out of the
// shard per wallet: a leg whose other side lives on another shard.
func checkParticipation(p *Participation, crossHolds map[string]bool, moved func(index int, walletID, assetID string, in bool, a Amount) error) error {
	for _, id := range p.HoldIDs {
		if id == "" {
			continue
		}
		k := p.ProjectID + "\x00" + id
		if crossHolds[k] != (p.Status == ParticipationPrepared) {
			return fmt.Errorf("participation %s is %s, its hold %s active: %v", p.TransactionID, p.Status, id, crossHolds[k])
		}
		delete(crossHolds, k)
	}
	if p.Status != ParticipationCommitted {
		return nil
	}
	assetOf := map[string]string{}
	for _, a := range p.Vote.Assets {
		assetOf[a.WalletID] = a.AssetID
	}
	for _, leg := range p.Legs {
		op := leg.Operation
		if op.Type != OperationTransfer {
			continue
		}
		fromLocal, toLocal := slices.Contains(p.Wallets, op.From), slices.Contains(p.Wallets, op.To)
		var err error
		switch {
		case fromLocal && !toLocal:
			err = moved(leg.Index, op.From, assetOf[op.From], false, op.Amount)
		case toLocal && !fromLocal:
			err = moved(leg.Index, op.To, assetOf[op.To], true, op.Amount)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// crossMove is one side of a transfer: a debit (in false) or a credit of a wallet.
type crossMove struct {
	projectID, assetID, walletID string
	in                           bool
	amount                       Amount
}

func moveKey(projectID, transactionID string, index int) string {
	return projectID + "\x00" + transactionID + "\x00" + strconv.Itoa(index)
}

// transactionOfMove is the project 0 transaction of a moveKey.
func transactionOfMove(k string) string { return k[:strings.LastIndexByte(k, 0)] }

// pairEntry matches a transfer's debit with its credit (same transaction and operation, the
// other direction, the same amount): both on this shard, the transfer moved nothing across.
// What stays in unpaired is the transfers whose other side lives on another shard.
func pairEntry(unpaired map[string]crossMove, w *Wallet, e *Entry) error {
	k := moveKey(w.ProjectID, e.TransactionID, e.OperationIndex)
	in := e.Type == EntryCredit
	if other, ok := unpaired[k]; ok {
		if other.in == in || other.amount != e.Amount {
			return fmt.Errorf("wallet %s: entry %d of transaction %s operation %d does not pair with wallet %s's",
				w.ID, e.Sequence, e.TransactionID, e.OperationIndex, other.walletID)
		}
		delete(unpaired, k)
		return nil
	}
	unpaired[k] = crossMove{projectID: w.ProjectID, assetID: w.AssetID, walletID: w.ID, in: in, amount: e.Amount}
	return nil
}
