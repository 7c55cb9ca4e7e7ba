package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Reads of the cross-shard protocol's state (cross.go), for the router that waits on a
// coordinator's record and for the coordinator leader's driver. Like every query they see the
// last committed batch.

// CrossChanged returns a channel closed once a batch that began a cross-shard transaction on
// this shard has committed. Take it before reading PendingCross, then wait on it, and no begin
// is missed. Called from any goroutine.
func (l *Ledger) CrossChanged() <-chan struct{} {
	for {
		if p := l.crossChanged.Load(); p != nil {
			return *p
		}
		ch := make(chan struct{})
		if l.crossChanged.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

// Committed wakes the waiters of CrossChanged after a batch with a begin (fsm.Committer).
func (l *Ledger) Committed() {
	if !l.crossBegun {
		return
	}
	l.crossBegun = false
	if p := l.crossChanged.Swap(nil); p != nil {
		close(*p)
	}
}

// GetCrossTransaction returns a transaction of this shard with its cross-shard participants:
// none once it is done (or for a single-shard transaction).
func (l *Ledger) GetCrossTransaction(projectID, transactionID string) (*CrossTransaction, error) {
	t, err := l.GetTransaction(projectID, transactionID)
	if err != nil {
		return nil, err
	}
	x := &CrossTransaction{Transaction: t}
	err = l.read(func() error {
		v, err := l.get(crossKey(t.ProjectID, t.Sequence))
		if err != nil || v == nil {
			return err
		}
		x.Participants, err = decodeCrossRecord(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: cross-shard record of %s: %w", transactionID, err)
	}
	return x, nil
}

// PendingCross returns up to limit of the coordinator's transactions not done yet (the
// records under prefix d), oldest first within a project: what the driver still has to carry.
func (l *Ledger) PendingCross(limit int) ([]CrossTransaction, error) {
	var out []CrossTransaction
	errStop := fmt.Errorf("enough")
	err := l.read(func() error {
		err := l.store.Scan([]byte{prefixCrossCoordinator}, func(k, v []byte) error {
			if len(out) >= limit {
				return errStop
			}
			rest := k[1:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+1+8 {
				return fmt.Errorf("cross-shard record key %q", k)
			}
			projectID, sequence := string(rest[:i]), binary.BigEndian.Uint64(rest[i+1:])
			tv, err := l.get(transactionKey(projectID, sequence))
			if err != nil {
				return err
			}
			if tv == nil {
				return fmt.Errorf("cross-shard record %q without its transaction", k)
			}
			t, err := decodeTransaction(tv)
			if err != nil {
				return err
			}
			ps, err := decodeCrossRecord(v)
			if err != nil {
				return err
			}
			out = append(out, CrossTransaction{Transaction: t, Participants: ps})
			return nil
		})
		if err == errStop {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: pending cross-shard records: %w", err)
	}
	return out, nil
}
