package gigawallet

import (
	"encoding/binary"
	"fmt"

	"github.com/gigaledger/gigaledger/fsm"
)

// chainMemory is the chain side's share of the family's batch memory: the records a batch
// wrote, which the store shows only once the batch commits.
type chainMemory struct {
	chainBusy bool
	cursor    *ChainCursor
	owners    map[string]*AddressOwner
	recent    []string // addresses registered in this batch
	utxos     map[Outpoint]*UTXO
	deleted   map[Outpoint]bool
	pendings  map[Hash]bool
	payments  map[Hash]*Payment
	// trimFloor caches the stored recent-registration trim floor for the batch.
	trimFloor     uint64
	trimFloorRead bool
	// paymentCounts are the accounts' payout counts this batch wrote.
	paymentCounts map[string]uint64
}

func (m *chainMemory) reset() {
	m.chainBusy = false
	m.cursor = nil
	m.trimFloorRead = false
	m.recent = m.recent[:0]
	if m.owners == nil {
		m.owners, m.utxos, m.deleted, m.pendings = map[string]*AddressOwner{}, map[Outpoint]*UTXO{}, map[Outpoint]bool{}, map[Hash]bool{}
		m.payments, m.paymentCounts = map[Hash]*Payment{}, map[string]uint64{}
	}
	clear(m.payments)
	clear(m.paymentCounts)
	clear(m.owners)
	clear(m.utxos)
	clear(m.deleted)
	clear(m.pendings)
}

func (s *state) get(b *fsm.Batch, k []byte, what string) []byte {
	v, err := b.Get(k)
	if err != nil {
		panic(fmt.Sprintf("gigawallet: read %s: %v", what, err)) // the store failed
	}
	return v
}

func (s *state) chainCursor(b *fsm.Batch) *ChainCursor {
	if s.cursor == nil {
		s.cursor = &ChainCursor{}
		if v := s.get(b, chainCursorKey, "chain cursor"); v != nil {
			d := fsm.NewDecoder(v)
			s.cursor = ReadChainCursor(d)
			if err := d.Finish("chain cursor"); err != nil {
				panic(fmt.Sprintf("gigawallet: %v", err)) // corruption
			}
		}
	}
	return s.cursor
}

func (s *state) putChainCursor(b *fsm.Batch, c *ChainCursor) {
	e := fsm.Encoder{}
	c.Encode(&e)
	b.Set(chainCursorKey, e.Buf)
	s.cursor = c
}

func (s *state) addressOwner(b *fsm.Batch, address string) *AddressOwner {
	if o := s.owners[address]; o != nil {
		return o
	}
	v := s.get(b, addressKey(address), "address")
	if v == nil {
		return nil
	}
	d := fsm.NewDecoder(v)
	o := ReadAddressOwner(d)
	if err := d.Finish("address"); err != nil {
		panic(fmt.Sprintf("gigawallet: %v", err)) // corruption
	}
	return o
}

// watch registers an address the shard's follower looks for, and notes it as recent for the
// stale-filter check.
func (s *state) watch(b *fsm.Batch, address string, o *AddressOwner) {
	e := fsm.Encoder{}
	o.Encode(&e)
	b.Set(addressKey(address), e.Buf)
	b.Set(recentAddressKey(b.Index, address), nil)
	s.owners[address] = o
	s.recent = append(s.recent, address)
	s.trimRecentByAge(b)
}

// trimRecentByAge bounds the recent registrations when no follower trims them (a cluster with
// invoices and no node): those older than recentRegistrations log entries go, at most once per
// recentTrimStep entries; an observation filtered before them is stale.
func (s *state) trimRecentByAge(b *fsm.Batch) {
	floor := s.recentTrimFloor(b)
	if b.Index < floor+recentRegistrations+recentTrimStep {
		return
	}
	floor = b.Index - recentRegistrations
	b.DeleteRange([]byte{prefixRecentAddr}, binary.BigEndian.AppendUint64([]byte{prefixRecentAddr}, floor+1))
	b.Set(recentTrimFloorKey, binary.AppendUvarint(nil, floor))
	s.trimFloor, s.trimFloorRead = floor, true
}

// recentTrimFloor is the highest log index whose registrations were trimmed by age (0: none).
func (s *state) recentTrimFloor(b *fsm.Batch) uint64 {
	if !s.trimFloorRead {
		s.trimFloor, s.trimFloorRead = 0, true
		if v := s.get(b, recentTrimFloorKey, "recent trim floor"); v != nil {
			n, size := binary.Uvarint(v)
			if size <= 0 {
				panic(fmt.Sprintf("gigawallet: recent trim floor %x", v)) // corruption
			}
			s.trimFloor = n
		}
	}
	return s.trimFloor
}

func (s *state) utxo(b *fsm.Batch, op Outpoint) *UTXO {
	if s.deleted[op] {
		return nil
	}
	if u := s.utxos[op]; u != nil {
		return u
	}
	v := s.get(b, utxoKey(op), "utxo")
	if v == nil {
		return nil
	}
	d := fsm.NewDecoder(v)
	u := ReadUTXO(d)
	if err := d.Finish("utxo"); err != nil {
		panic(fmt.Sprintf("gigawallet: %v", err)) // corruption
	}
	s.utxos[op] = u
	return u
}

func (s *state) putUTXO(b *fsm.Batch, u *UTXO) {
	e := fsm.Encoder{}
	u.Encode(&e)
	b.Set(utxoKey(u.Outpoint), e.Buf)
	s.utxos[u.Outpoint] = u
	delete(s.deleted, u.Outpoint)
}

// deleteUTXO forgets an unmined output and its index keys.
func (s *state) deleteUTXO(b *fsm.Batch, op Outpoint) {
	u := s.utxo(b, op)
	if u == nil {
		return
	}
	if u.Spent() {
		b.Delete(spenderKey(u.Spender, op))
	}
	b.Delete(utxoKey(op))
	b.Delete(accountUTXOKey(u.ProjectID, u.ForeignID, op))
	delete(s.utxos, op)
	s.deleted[op] = true
}

func (s *state) pending(b *fsm.Batch, txid Hash) bool {
	if p, ok := s.pendings[txid]; ok {
		return p
	}
	p := s.get(b, pendingKey(txid), "pending transaction") != nil
	s.pendings[txid] = p
	return p
}

func (s *state) setPending(b *fsm.Batch, txid Hash, pending bool) {
	if s.pending(b, txid) == pending {
		return
	}
	if pending {
		b.Set(pendingKey(txid), []byte(pendingRecordValue))
	} else {
		b.Delete(pendingKey(txid))
	}
	s.pendings[txid] = pending
}

// batchOutputs and batchSpends are the outputs of txid, and the outputs txid spends, that this
// batch wrote (a store scan does not show them).
func (s *state) batchOutputs(txid Hash) []Outpoint {
	var out []Outpoint
	for op := range s.utxos {
		if op.TxID == txid {
			out = append(out, op)
		}
	}
	return out
}

func (s *state) batchSpends(txid Hash) []Outpoint {
	var out []Outpoint
	for op, u := range s.utxos {
		if u.Spender == txid {
			out = append(out, op)
		}
	}
	return out
}
