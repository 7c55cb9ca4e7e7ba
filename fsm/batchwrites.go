package fsm

import (
	"fmt"

	"github.com/cockroachdb/pebble"
)

// sortedWrites holds a batch's point writes until its commit, then hands them to Pebble's batch
// in key order.
//
// Committing a batch inserts each of its keys into Pebble's memtable, a skiplist, in the batch's
// order; each insert searches the skiplist from the top, which the profile of
// BenchmarkApplyTransfers put at a third of apply's CPU (about seven keys per transfer, most in
// random places). Pebble's inserter starts a search from the previous insert's position when the
// new key lies beside it, so keys in order cost less: the transactions' and events' keys (which
// only grow) become runs, and a batch's entries, references and wallets land close to each other.
//
// The history store's batches go in key order too (commitWithAppends), and both sort with
// keyOrder. What the store holds is unchanged: writes of the same key keep their order (the
// sort breaks ties by arrival), and a range deletion first writes everything before it, so
// that it deletes exactly the point writes that came before it. The history chain records the
// writes in apply order when they are made (Batch.Set), not from here.
type sortedWrites struct {
	arena []byte        // keys and values, in arrival order
	ops   []sortedWrite // in arrival order
	order []uint64      // keyOrder's, reused
}

type sortedWrite struct {
	key, value span
	del        bool
}

type span struct{ start, end uint32 }

// sortedWritesKeptBytes and sortedWritesKeptOps bound what a machine keeps between batches: a
// rare huge batch (a log entry may hold 64 MiB) does not pin its size for good.
const (
	sortedWritesKeptBytes = 4 << 20
	sortedWritesKeptOps   = 1 << 16
)

func (w *sortedWrites) add(k, v []byte, del bool) {
	if len(w.arena)+len(k)+len(v) > 1<<32-1 || len(w.ops) == 1<<32-1 {
		// Far above what a 64 MiB log entry writes; the offsets are 32-bit.
		panic("fsm: batch writes over 4 GiB")
	}
	op := sortedWrite{del: del}
	op.key.start = uint32(len(w.arena))
	w.arena = append(w.arena, k...)
	op.key.end = uint32(len(w.arena))
	w.arena = append(w.arena, v...)
	op.value = span{op.key.end, uint32(len(w.arena))}
	w.ops = append(w.ops, op)
}

func (w *sortedWrites) bytes(s span) []byte { return w.arena[s.start:s.end] }

// flush writes the held writes into pb in key order and forgets them.
func (w *sortedWrites) flush(pb *pebble.Batch) {
	if len(w.ops) == 0 {
		return
	}
	var mask uint64
	w.order, mask = keyOrder(len(w.ops), func(i int) []byte { return w.bytes(w.ops[i].key) }, w.order)
	for _, o := range w.order {
		op := w.ops[o&mask]
		var err error
		if op.del {
			err = pb.Delete(w.bytes(op.key), nil)
		} else {
			err = pb.Set(w.bytes(op.key), w.bytes(op.value), nil)
		}
		if err != nil {
			panic(fmt.Sprintf("fsm: batch write: %v", err))
		}
	}
	w.ops, w.arena, w.order = w.ops[:0], w.arena[:0], w.order[:0]
	if cap(w.arena) > sortedWritesKeptBytes || cap(w.ops) > sortedWritesKeptOps {
		w.ops, w.arena, w.order = nil, nil, nil
	}
}
