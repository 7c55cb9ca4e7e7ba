package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"

	"github.com/gigaledger/gigaledger/fsm"
)

// Transactions appended to the history store (design notes §3, "Where history can go", step 3
// on fsm.Batch.Append). A transaction record under t {project} 0 {sequence} in the state store
// was a third of what apply still paid after the entries left it (−30 % of apply's CPU without
// it, session 21). From rules version RulesTransactionsAppended on, once the history chain runs:
//
//   - A transaction's first write is appended to the history store under the same key,
//     t {project} 0 {sequence}, beside its batch's chain record.
//   - One state key per batch and project, T {project} 0 {the batch's first sequence of the
//     project} → (log index, batch time), finds the batch that holds any of the project's
//     sequences: the last such key at or below the sequence. A project's transactions in a
//     batch are those of its sequences from that key to the next one.
//   - A transaction written again later (a cross-shard transaction's status as its participants
//     vote) is written under its state key t … as before, which readers take first: rare, and
//     the newest version wins.
//
// Readers: transactionRecord (a point read of the state key, a seek of the batch index and a
// point read of the appended record) and ListTransactions (the state store's records from
// before the rules, then the appended ones batch by batch from the index, each batch one short
// scan of the history store). Transactions written before the rules version stay in the state
// store, all of them at sequences below the first appended one.
//
// Why a rules version: releases from before it would neither write nor read these keys.
const RulesTransactionsAppended uint32 = 8

// transactionsAppended reports whether the batch being applied appends transactions.
func (l *Ledger) transactionsAppended() bool {
	return l.b.Rules() >= RulesTransactionsAppended && l.b.HistoryChainStarted()
}

// transactionBatchKey is the state key that finds a batch's transactions of a project.
func transactionBatchKey(projectID string, sequence uint64) []byte {
	return idSequenceKey(prefixTransactionBatch, projectID, sequence)
}

// writeTransaction writes a transaction: appended when it is new and the rules append, under its
// state key otherwise (and always when it was written before: the newest version wins there).
func (l *Ledger) writeTransaction(t *Transaction, rewrite bool) {
	if rewrite || !l.transactionsAppended() {
		l.set(transactionKey(t.ProjectID, t.Sequence), record(t))
		return
	}
	// Append copies key and value: the ledger's scratch buffers serve every transaction.
	e := fsm.Encoder{Buf: l.recordScratch[:0]}
	t.Encode(&e)
	k := appendIDSequenceKey(l.keyScratch[:0], prefixTransaction, t.ProjectID, t.Sequence)
	l.b.Append(k, e.Buf)
	l.recordScratch, l.keyScratch = e.Buf, k
	if _, indexed := l.batchTransactionProjects[t.ProjectID]; !indexed {
		l.batchTransactionProjects[t.ProjectID] = struct{}{}
		l.set(transactionBatchKey(t.ProjectID, t.Sequence), appendPlace(make([]byte, 0, 20), l.b.Index, l.b.Now))
	}
}

// decodeTransactionBatch decodes a batch key's value: the log index and the batch time.
func decodeTransactionBatch(v []byte) (uint64, int64, error) {
	return decodePlace("transaction batch", v)
}

// transactionRecord reads a transaction's stored record (nil: none) as of the last committed
// batch: its state key (written before the rules, or written again since), else the record
// appended in the batch the index names.
func (l *Ledger) transactionRecord(projectID string, sequence uint64) ([]byte, error) {
	return l.storeSource().transactionRecord(projectID, sequence)
}

func (src readSource) transactionRecord(projectID string, sequence uint64) ([]byte, error) {
	v, err := src.get(transactionKey(projectID, sequence))
	if err != nil || v != nil {
		return v, err
	}
	if sequence == math.MaxUint64 {
		return nil, nil // never a transaction's: its sequence would be the counter's end
	}
	prefix := prefixOf(prefixTransactionBatch, projectID)
	it, err := src.iter(prefix, transactionBatchKey(projectID, sequence+1))
	if err != nil {
		return nil, err
	}
	var index uint64
	if it.Last() {
		index, _, err = decodeTransactionBatch(it.Value())
	}
	if closeErr := it.Close(); err == nil {
		err = closeErr
	}
	if err != nil || index == 0 {
		return nil, err
	}
	return src.appended(index, transactionKey(projectID, sequence))
}

// checkTransactions checks that every reference names a transaction that reads back with it
// (its state key, or its batch key and appended record), and that every batch key names a batch
// whose appended transactions of the project begin at the key's sequence, at its time.
func (src readSource) checkTransactions(scan func([]byte, func(k, v []byte) error) error) error {
	err := scan([]byte{prefixReference}, func(k, v []byte) error {
		i := bytes.IndexByte(k[1:], 0)
		if i < 0 || len(v) != 8 {
			return fmt.Errorf("malformed reference %q", k)
		}
		projectID, referenceID, sequence := string(k[1:1+i]), string(k[2+i:]), binary.BigEndian.Uint64(v)
		tv, err := src.transactionRecord(projectID, sequence)
		if err != nil {
			return err
		}
		if tv == nil {
			return fmt.Errorf("reference %q of project %s names transaction %d, which cannot be found", referenceID, projectID, sequence)
		}
		t, err := decodeTransaction(tv)
		if err == nil && (t.ReferenceID != referenceID || t.Sequence != sequence || t.ProjectID != projectID) {
			err = fmt.Errorf("reference %q of project %s names transaction %d, which is %s/%d under reference %q", referenceID, projectID, sequence, t.ProjectID, t.Sequence, t.ReferenceID)
		}
		return err
	})
	if err != nil {
		return err
	}
	return scan([]byte{prefixTransactionBatch}, func(k, v []byte) error {
		i := bytes.IndexByte(k[1:], 0)
		if i < 0 || len(k) != 1+i+1+8 {
			return fmt.Errorf("malformed transaction batch key %q", k)
		}
		projectID, start := string(k[1:1+i]), binary.BigEndian.Uint64(k[len(k)-8:])
		index, batchTime, err := decodeTransactionBatch(v)
		if err != nil {
			return err
		}
		first := true
		err = src.scanAppended(index, prefixOf(prefixTransaction, projectID), func(tk, tv []byte) error {
			if !first {
				return nil
			}
			first = false
			t, err := decodeTransaction(tv)
			if err == nil && (t.Sequence != start || t.CreatedAt != batchTime) {
				err = fmt.Errorf("transaction batch key %q: log index %d begins with transaction %d at %d, not %d at %d", k, index, t.Sequence, t.CreatedAt, start, batchTime)
			}
			return err
		})
		if err == nil && first {
			err = fmt.Errorf("transaction batch key %q names log index %d, which appended none of the project's", k, index)
		}
		return err
	})
}

// listTransactions answers ListTransactions within Read.
func (l *Ledger) listTransactions(projectID string, r TimeRange, skip, take int) ([]Transaction, bool, error) {
	src := l.storeSource()
	transactions := []Transaction{}
	if r.ToMs < 0 || r.FromMs > r.ToMs {
		return transactions, false, nil
	}
	// Where the appended transactions begin: the project's first batch key.
	batches := prefixOf(prefixTransactionBatch, projectID)
	bit, err := src.iter(batches, fsm.PrefixEnd(batches))
	if err != nil {
		return nil, false, err
	}
	defer bit.Close()
	boundary := uint64(math.MaxUint64)
	if bit.First() {
		boundary = binary.BigEndian.Uint64(bit.Key()[len(batches):])
	}
	if err := bit.Error(); err != nil {
		return nil, false, err
	}
	n := 0 // transactions in range so far
	full := false
	// take returns false when the page is full and one more is in range (hasMore).
	add := func(decode func() (*Transaction, error)) (bool, error) {
		if n >= skip+take {
			full = true
			return false, nil
		}
		if n >= skip {
			t, err := decode()
			if err != nil {
				return false, err
			}
			transactions = append(transactions, *t)
		}
		n++
		return true, nil
	}

	// The state store's transactions below the boundary (written before the rules), as before.
	prefix := prefixOf(prefixTransaction, projectID)
	it, err := src.iter(prefix, transactionKey(projectID, boundary))
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	first, err := firstSequenceAtOrAfter(it, prefix, r.FromMs)
	if err != nil {
		return nil, false, err
	}
	upper := transactionKey(projectID, boundary)
	if r.ToMs < math.MaxInt64 {
		end, err := firstSequenceAtOrAfter(it, prefix, r.ToMs+1)
		if err != nil {
			return nil, false, err
		}
		if end < boundary {
			upper = transactionKey(projectID, end)
		}
	}
	for valid := it.SeekGE(transactionKey(projectID, first)); valid && bytes.Compare(it.Key(), upper) < 0; valid = it.Next() {
		more, err := add(func() (*Transaction, error) { return decodeTransaction(it.Value()) })
		if err != nil || !more {
			return transactions, full, err
		}
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}

	// The appended ones, batch by batch from the first batch at or after FromMs.
	if boundary == math.MaxUint64 {
		return transactions, false, nil
	}
	valid, err := seekBatchAtOrAfter(bit, batches, r.FromMs)
	if err != nil {
		return nil, false, err
	}
	for ; valid; valid = bit.Next() {
		index, batchTime, err := decodeTransactionBatch(bit.Value())
		if err != nil {
			return nil, false, err
		}
		if batchTime > r.ToMs {
			break
		}
		stop := false
		// The project's transactions this batch appended, from the key's sequence on.
		err = src.scanAppended(index, prefix, func(k, v []byte) error {
			sequence := binary.BigEndian.Uint64(k[len(k)-8:])
			more, err := add(func() (*Transaction, error) {
				// Written again since (a cross-shard status): the state key holds the newest.
				if newer, err := l.get(transactionKey(projectID, sequence)); err != nil || newer != nil {
					if err != nil {
						return nil, err
					}
					return decodeTransaction(newer)
				}
				return decodeTransaction(v)
			})
			if err == nil && !more {
				stop = true
				return errStopScan
			}
			return err
		})
		if err == errStopScan || stop {
			return transactions, full, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return transactions, false, bit.Error()
}

var errStopScan = fmt.Errorf("stop")

// seekBatchAtOrAfter positions it at the project's first batch key whose batch time is at or
// after fromMs (false: none), by binary search over sequences: batch times grow with them.
func seekBatchAtOrAfter(it *pebble.Iterator, prefix []byte, fromMs int64) (bool, error) {
	if !it.Last() {
		return false, it.Error()
	}
	high := binary.BigEndian.Uint64(it.Key()[len(prefix):]) + 1
	if !it.First() {
		return false, it.Error()
	}
	low := binary.BigEndian.Uint64(it.Key()[len(prefix):])
	for low < high {
		mid := low + (high-low)/2
		if !it.SeekGE(appendSequence(append([]byte(nil), prefix...), mid)) {
			high = mid
			continue
		}
		sequence := binary.BigEndian.Uint64(it.Key()[len(prefix):])
		_, batchTime, err := decodeTransactionBatch(it.Value())
		if err != nil {
			return false, err
		}
		if batchTime < fromMs {
			low = sequence + 1
		} else {
			high = mid
		}
	}
	return it.SeekGE(appendSequence(append([]byte(nil), prefix...), low)), it.Error()
}
