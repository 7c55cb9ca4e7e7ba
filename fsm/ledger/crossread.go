package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Reads of the cross-shard protocol's state (cross.go), for the router that waits on a
// coordinator's record and for the coordinator leader's driver. Like every query they see the
// last committed batch.

// CrossChanged returns a channel closed once a batch that began a cross-shard transaction on
// this shard has committed. Take it before reading PendingCross or TakeBegunCross, then wait on
// it, and no begin is missed. Called from any goroutine.
func (l *Ledger) CrossChanged() <-chan struct{} { return waitChannel(&l.crossChanged) }

// CrossRef names a coordinator's record: its project and its transaction's sequence.
type CrossRef struct {
	ProjectID string
	Sequence  uint64
}

// crossBegunMax bounds the begun records kept between two TakeBegunCross (a replica whose
// driver does not take them, a follower's, keeps no more than this).
var crossBegunMax = 4096

// TakeBegunCross returns the records of the cross-shard transactions begun on this shard by the
// batches committed since the last take, oldest first, and whether some were not kept (more
// than crossBegunMax between two takes): then only a scan (PendingCross) finds them all. The
// coordinator's driver takes them when CrossChanged wakes it, and drives them without scanning
// every pending record: a scan walks the deletions of every record done since the last flush,
// and one scan per begin was 7 % of a 3-node cluster's CPU under cross-shard load (bench/
// RESULTS.md, session 26). Called from any goroutine.
func (l *Ledger) TakeBegunCross() (refs []CrossRef, lost bool) {
	l.crossBegunMu.Lock()
	defer l.crossBegunMu.Unlock()
	refs, lost = l.crossBegunKept, l.crossBegunLost
	l.crossBegunKept, l.crossBegunLost = nil, false
	return refs, lost
}

// PendingCrossOf returns the coordinator's record ref with its transaction while it is not
// done, and nil once it is (or when there is none).
func (l *Ledger) PendingCrossOf(ref CrossRef) (*CrossTransaction, error) {
	var x *CrossTransaction
	err := l.read(func() error {
		v, err := l.get(crossKey(ref.ProjectID, ref.Sequence))
		if err != nil || v == nil {
			return err
		}
		x, err = l.crossRecord(ref, v)
		return err
	})
	return x, err
}

// crossRecord decodes the coordinator's record ref (its participants, v) with its transaction.
// Inside a read.
func (l *Ledger) crossRecord(ref CrossRef, v []byte) (*CrossTransaction, error) {
	ps, err := decodeCrossRecord(v)
	if err != nil {
		return nil, err
	}
	tv, err := l.transactionRecord(ref.ProjectID, ref.Sequence)
	if err != nil {
		return nil, err
	}
	if tv == nil {
		return nil, fmt.Errorf("cross-shard record %s/%d without its transaction", ref.ProjectID, ref.Sequence)
	}
	t, err := decodeTransaction(tv)
	if err != nil {
		return nil, err
	}
	return &CrossTransaction{Transaction: t, Participants: ps}, nil
}

// publishBegunCross keeps the records the committed batch began for TakeBegunCross.
func (l *Ledger) publishBegunCross() {
	l.crossBegunMu.Lock()
	defer l.crossBegunMu.Unlock()
	if len(l.crossBegunKept)+len(l.crossBegun) > crossBegunMax {
		l.crossBegunLost = true
		return
	}
	l.crossBegunKept = append(l.crossBegunKept, l.crossBegun...)
}

// CrossDoneOf returns a channel closed once a batch that made the cross-shard transaction
// transactionID of projectID done has committed on this replica, and a release to call when
// the caller stops waiting: a router waiting for its answer reads the record again then. Take
// it before the read. Only that transaction's done wakes it: with one channel for every done,
// each done woke every waiting router to read its record again (64 concurrent cross-shard
// transfers: ~30,000 record reads a second, bench/RESULTS.md, session 26). Called from any
// goroutine.
func (l *Ledger) CrossDoneOf(projectID, transactionID string) (<-chan struct{}, func()) {
	k := projectID + "\x00" + transactionID
	l.crossWaitMu.Lock()
	defer l.crossWaitMu.Unlock()
	if l.crossWaiters == nil {
		l.crossWaiters = map[string]*crossWaiter{}
	}
	w := l.crossWaiters[k]
	if w == nil {
		w = &crossWaiter{ended: make(chan struct{})}
		l.crossWaiters[k] = w
	}
	w.count++
	return w.ended, func() {
		l.crossWaitMu.Lock()
		defer l.crossWaitMu.Unlock()
		if w.count--; w.count == 0 && l.crossWaiters[k] == w {
			delete(l.crossWaiters, k)
		}
	}
}

// crossWaiter is the channel the waiters of one transaction's done share.
type crossWaiter struct {
	ended chan struct{}
	count int // waiters holding it
}

// wakeCrossWaiters closes the channels of the transactions the committed batch made done.
func (l *Ledger) wakeCrossWaiters() {
	l.crossWaitMu.Lock()
	defer l.crossWaitMu.Unlock()
	for _, k := range l.crossEnded {
		if w := l.crossWaiters[k]; w != nil {
			close(w.ended)
			delete(l.crossWaiters, k)
		}
	}
}

func waitChannel(p *atomic.Pointer[chan struct{}]) <-chan struct{} {
	for {
		if ch := p.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if p.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
}

func wake(p *atomic.Pointer[chan struct{}]) {
	if ch := p.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Committed shows readers the balances the batch deferred (epochs.go), and wakes the waiters
// of CrossChanged after a batch with a begin, and those of CrossDoneOf for each transaction
// the batch made done (fsm.Committer).
func (l *Ledger) Committed() {
	l.publishWallets()
	if len(l.crossBegun) > 0 {
		l.publishBegunCross()
		clear(l.crossBegun)
		l.crossBegun = l.crossBegun[:0]
		wake(&l.crossChanged)
	}
	if len(l.crossEnded) > 0 {
		l.wakeCrossWaiters()
		clear(l.crossEnded)
		l.crossEnded = l.crossEnded[:0]
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
	return l.PendingCrossExcept(limit, nil)
}

// PendingCrossExcept is PendingCross without the records skip names (by project and the
// transaction's sequence), which it neither decodes nor counts: the driver's scan passes the
// ones it carries already, so that a scan costs little more than a walk over the keys.
func (l *Ledger) PendingCrossExcept(limit int, skip func(projectID string, sequence uint64) bool) ([]CrossTransaction, error) {
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
			if skip != nil && skip(projectID, sequence) {
				return nil
			}
			x, err := l.crossRecord(CrossRef{ProjectID: projectID, Sequence: sequence}, v)
			if err != nil {
				return err
			}
			out = append(out, *x)
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
