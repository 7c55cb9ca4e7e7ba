package gigawallet

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/ledger"
)

// The chain side's reads: what a shard's follower filters blocks with, and the custody check.

// ChainCursor returns the shard's chain cursor (zero when nothing was observed).
func (r *Reader) ChainCursor() (*ChainCursor, error) {
	c := &ChainCursor{}
	err := r.store.Read(func() error {
		v, err := r.store.Get(chainCursorKey)
		if err != nil || v == nil {
			return err
		}
		d := fsm.NewDecoder(v)
		c = ReadChainCursor(d)
		return d.Finish("chain cursor")
	})
	return c, err
}

// Watches reports whether the shard watches an address.
func (r *Reader) Watches(address string) (bool, error) {
	var found bool
	err := r.store.Read(func() error {
		v, err := r.store.Get(addressKey(address))
		found = v != nil
		return err
	})
	return found, err
}

// UTXO returns an output paid to the shard, or nil.
func (r *Reader) UTXO(op Outpoint) (*UTXO, error) {
	var u *UTXO
	err := r.store.Read(func() error {
		v, err := r.store.Get(utxoKey(op))
		if err != nil || v == nil {
			return err
		}
		d := fsm.NewDecoder(v)
		u = ReadUTXO(d)
		return d.Finish("utxo")
	})
	return u, err
}

// PendingTransactions lists up to limit unmined transactions that touch the shard, after the
// given one (zero: from the first), in txid order.
func (r *Reader) PendingTransactions(after Hash, limit int) ([]Hash, error) {
	var out []Hash
	err := r.store.Read(func() error {
		lower := pendingKey(after)
		if after != (Hash{}) {
			lower = append(lower, 0)
		}
		it, err := r.store.NewIter(lower, []byte{prefixPendingTx + 1})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
			var h Hash
			if len(it.Key()) != 33 {
				return fmt.Errorf("gigawallet: pending key %x", it.Key())
			}
			copy(h[:], it.Key()[1:])
			out = append(out, h)
		}
		return it.Error()
	})
	return out, err
}

// SpendableUTXOs lists an account's outputs a payout may spend: credited (confirmed), unspent
// and not reserved, in outpoint order, at most limit.
func (r *Reader) SpendableUTXOs(projectID, foreignID string, limit int) ([]UTXO, error) {
	var out []UTXO
	err := r.store.Read(func() error {
		return r.store.Scan(fsm.KeyPrefix(prefixAccountUTXO, projectID, foreignID), func(k, _ []byte) error {
			if len(out) == limit {
				return nil
			}
			op, ok := outpointOf(k)
			if !ok {
				return fmt.Errorf("gigawallet: account output key %x", k)
			}
			v, err := r.store.Get(utxoKey(op))
			if err != nil || v == nil {
				return err
			}
			d := fsm.NewDecoder(v)
			u := ReadUTXO(d)
			if err := d.Finish("utxo"); err != nil {
				return err
			}
			if u.Credited && !u.Spent() && u.Reservation == (Hash{}) {
				out = append(out, *u)
			}
			return nil
		})
	})
	return out, err
}

// GetPayment returns a payout of an account by its txid.
func (r *Reader) GetPayment(projectID, foreignID string, txid Hash) (*Payment, error) {
	var p *Payment
	err := r.store.Read(func() error {
		v, err := r.store.Get(paymentKey(txid))
		if err != nil {
			return err
		}
		if v != nil {
			d := fsm.NewDecoder(v)
			p = ReadPayment(d)
			if err := d.Finish("payout"); err != nil {
				return err
			}
		}
		if p == nil || p.ProjectID != projectID || p.ForeignID != foreignID {
			return fsm.Rejectf(CodePaymentNotFound, "payout not found: %s", txid)
		}
		return nil
	})
	return p, err
}

// GetPayFrom returns the payfrom of an invoice reserved on this shard (by any of its accounts)
// and not released: the one a second payfrom of the invoice would be refused for.
func (r *Reader) GetPayFrom(projectID, invoiceID string) (*Payment, error) {
	var p *Payment
	err := r.store.Read(func() error {
		v, err := r.store.Get(payFromKey(projectID, invoiceID))
		if err != nil || len(v) != len(Hash{}) {
			return err
		}
		if v, err = r.store.Get(paymentKey(Hash(v))); err != nil || v == nil {
			return err
		}
		d := fsm.NewDecoder(v)
		p = ReadPayment(d)
		return d.Finish("payout")
	})
	if err == nil && (p == nil || p.Status == PaymentReleased) {
		return nil, fsm.Rejectf(CodePaymentNotFound, "no payfrom of invoice %s", invoiceID)
	}
	return p, err
}

// ListPayments returns up to limit payouts of an account with sequence ≥ cursor, oldest first.
func (r *Reader) ListPayments(projectID, foreignID string, cursor uint64, limit int) ([]Payment, error) {
	var out []Payment
	err := r.store.Read(func() error {
		prefix := fsm.KeyPrefix(prefixAccountPayment, projectID, foreignID)
		it, err := r.store.NewIter(accountPaymentKey(projectID, foreignID, cursor), fsm.PrefixEnd(prefix))
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
			var txid Hash
			if len(it.Value()) != 32 {
				return fmt.Errorf("gigawallet: payout index value %x", it.Value())
			}
			copy(txid[:], it.Value())
			v, err := r.store.Get(paymentKey(txid))
			if err != nil {
				return err
			}
			if v == nil {
				return fmt.Errorf("gigawallet: index names missing payout %s", txid)
			}
			d := fsm.NewDecoder(v)
			p := ReadPayment(d)
			if err := d.Finish("payout"); err != nil {
				return err
			}
			out = append(out, *p)
		}
		return it.Error()
	})
	return out, err
}

// UnminedPayments lists up to limit payouts not mined yet (reserved or sent), in txid order:
// what the broadcaster sends (again).
func (r *Reader) UnminedPayments(limit int) ([]Payment, error) {
	var out []Payment
	err := r.store.Read(func() error {
		return r.store.Scan([]byte{prefixUnmined}, func(k, _ []byte) error {
			if len(out) == limit {
				return nil
			}
			var txid Hash
			copy(txid[:], k[1:])
			v, err := r.store.Get(paymentKey(txid))
			if err != nil || v == nil {
				return err
			}
			d := fsm.NewDecoder(v)
			p := ReadPayment(d)
			if err := d.Finish("payout"); err != nil {
				return err
			}
			out = append(out, *p)
			return nil
		})
	})
	return out, err
}

// CheckCustody recomputes the custody invariant from the store: per project, the DOGE wallets'
// balances equal Σ the credited outputs that no confirmed transaction spent, plus the
// accounts' shortfalls (what the wallets still show of deposits a reorg took back); every
// account's Incoming equals Σ its external outputs seen but not credited; and every invoice's
// Incoming and Confirmed equal Σ its outputs seen and credited. It reads one
// point-in-time view of the store, so it may run beside apply: every record it compares is of
// the same applied index.
func (f *Family) CheckCustody(m *fsm.Machine) error {
	r, core := f.Of(m), f.ledger.Of(m)
	return r.store.Read(func() error {
		view := r.store.View()
		defer view.Close()
		return f.checkCustody(view, core)
	})
}

func (f *Family) checkCustody(view *fsm.View, core *ledger.Ledger) error {
	type sums struct{ custody, incoming, outgoing fsm.Amount }
	accounts := map[string]*sums{}
	account := func(projectID, foreignID string) *sums {
		k := projectID + "\x00" + foreignID
		if accounts[k] == nil {
			accounts[k] = &sums{}
		}
		return accounts[k]
	}
	type invoiceSums struct{ incoming, confirmed fsm.Amount }
	invoices := map[string]*invoiceSums{}
	err := fsm.ScanView(view, []byte{prefixUTXO}, func(_, v []byte) error {
		d := fsm.NewDecoder(v)
		u := ReadUTXO(d)
		if err := d.Finish("utxo"); err != nil {
			return err
		}
		s := account(u.ProjectID, u.ForeignID)
		amount := fsm.AmountFromUint64(u.Koinu)
		if u.Credited && !(u.Spent() && u.SpentHeight > 0) {
			s.custody = mustAdd(s.custody, amount)
		}
		if u.Branch == BranchExternal && !u.Credited {
			s.incoming = mustAdd(s.incoming, amount)
		}
		if u.Invoice {
			ik := u.ProjectID + "\x00" + u.Address
			if invoices[ik] == nil {
				invoices[ik] = &invoiceSums{}
			}
			invoices[ik].incoming = mustAdd(invoices[ik].incoming, amount)
			if u.Credited {
				invoices[ik].confirmed = mustAdd(invoices[ik].confirmed, amount)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Outgoing: the totals of the payouts that are not confirmed or released.
	err = fsm.ScanView(view, []byte{prefixPayment}, func(_, v []byte) error {
		d := fsm.NewDecoder(v)
		p := ReadPayment(d)
		if err := d.Finish("payout"); err != nil {
			return err
		}
		if p.Status != PaymentConfirmed && p.Status != PaymentReleased {
			s := account(p.ProjectID, p.ForeignID)
			s.outgoing = mustAdd(s.outgoing, fsm.AmountFromUint64(p.TotalKoinu()))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var accountList []*Account
	err = fsm.ScanView(view, []byte{prefixAccount}, func(_, v []byte) error {
		a, err := decodeAccount(v)
		accountList = append(accountList, a)
		return err
	})
	if err != nil {
		return err
	}
	// Per project: money moves between accounts' wallets through the core, so custody holds for
	// their sum, while Incoming and Outgoing are each account's own.
	type projectSums struct{ balances, custody, shortfall fsm.Amount }
	walletInView, err := core.WalletsInView(view)
	if err != nil {
		return err
	}
	projects := map[string]*projectSums{}
	var projectOrder []string
	for _, a := range accountList {
		s := account(a.ProjectID, a.ForeignID)
		if a.Outgoing != s.outgoing {
			return fmt.Errorf("custody: account %s/%s outgoing %s, unconfirmed payouts %s", a.ProjectID, a.ForeignID, a.Outgoing, s.outgoing)
		}
		if a.Incoming != s.incoming {
			return fmt.Errorf("custody: account %s/%s incoming %s, outputs seen and not credited %s", a.ProjectID, a.ForeignID, a.Incoming, s.incoming)
		}
		p := projects[a.ProjectID]
		if p == nil {
			p = &projectSums{}
			projects[a.ProjectID] = p
			projectOrder = append(projectOrder, a.ProjectID)
		}
		w, err := walletInView(a.ProjectID, a.WalletID)
		if err != nil {
			return fmt.Errorf("custody: account %s/%s: %w", a.ProjectID, a.ForeignID, err)
		}
		if w != nil {
			p.balances = mustAdd(p.balances, w.Balance)
		}
		p.custody = mustAdd(p.custody, s.custody)
		p.shortfall = mustAdd(p.shortfall, a.Shortfall)
	}
	for _, project := range projectOrder {
		p := projects[project]
		// The shortfall is what the wallets still show of deposits a reorg took back: the
		// wallets hold the custody plus it (until later deposits pay it).
		if custodyAndShortfall := mustAdd(p.custody, p.shortfall); p.balances != custodyAndShortfall {
			return fmt.Errorf("custody: project %s: wallets hold %s, credited unspent outputs %s + shortfall %s", project, p.balances, p.custody, p.shortfall)
		}
	}
	for k, s := range invoices {
		project, address, _ := strings.Cut(k, "\x00")
		data, err := fsm.GetView(view, invoiceKey(project, address))
		if err != nil {
			return err
		}
		if data == nil {
			return fmt.Errorf("custody: outputs pay invoice %s, which is not stored", address)
		}
		d := fsm.NewDecoder(data)
		v := ReadInvoice(d)
		if err := d.Finish("invoice"); err != nil {
			return err
		}
		if v.Incoming != s.incoming || v.Confirmed != s.confirmed {
			return fmt.Errorf("custody: invoice %s incoming %s confirmed %s, outputs say %s and %s", address, v.Incoming, v.Confirmed, s.incoming, s.confirmed)
		}
	}
	return nil
}

// AutoPayoutAccounts lists up to limit accounts with auto-payouts configured, in key order.
func (r *Reader) AutoPayoutAccounts(limit int) ([]Account, error) {
	var out []Account
	err := r.store.Read(func() error {
		return r.store.Scan([]byte{prefixAutoPayout}, func(k, _ []byte) error {
			if len(out) == limit {
				return nil
			}
			project, foreign, ok := bytes.Cut(k[1:], []byte{0})
			if !ok {
				return fmt.Errorf("gigawallet: auto-payout key %x", k)
			}
			v, err := r.store.Get(accountKey(string(project), string(foreign)))
			if err != nil || v == nil {
				return err
			}
			a, err := decodeAccount(v)
			if err != nil {
				return err
			}
			out = append(out, *a)
			return nil
		})
	})
	return out, err
}
