package ledger

import (
	"fmt"
	"hash/maphash"

	"github.com/gigaledger/gigaledger/fsm"
)

// The live wallets, compactly (design note 3, step 4: memory per live wallet at a million
// wallets). Every wallet is one fixed-size record in chunks of walletChunkLen (no pointer per
// wallet, no copy when the table grows); its ID and customer ID are bytes in an append-only
// arena, its project and asset one interned pair; a hash table of slots finds a wallet by ID.
// Name and description (rarely set) and a held amount other than zero live in side maps. The
// owners' wallet lists are not kept: the store's owner index answers them (liveOwnerWalletsOf).
//
// Apply code keeps working with *Wallet: the first time a batch names a wallet it is
// materialized from its record and kept until the batch ends, when every materialized wallet
// is written back to its record (walletTable.endBatch). Within a batch a wallet is therefore
// one pointer, as when the ledger kept a map of pointers, and what the batch did to it is in
// the record once the batch ends, whether or not it was marked dirty. Outside a batch (another
// family's Load, say), and always through the read-only accessors other families call
// (Wallet, Available: peekWallet), a lookup answers a copy and keeps nothing.
//
// Nothing here is stored: the store's wallet records are unchanged, and the table holds no
// order that apply could observe (no iteration), so every replica computes the same state.

const (
	walletChunkShift = 12
	walletChunkLen   = 1 << walletChunkShift
	arenaChunkBytes  = 1 << 20
	// Strings longer than this (never for IDs and customer IDs the ledger accepts today) live
	// in the side map instead of the arena.
	arenaStringMax = 1<<16 - 1
)

// walletRec is one live wallet: 72 bytes, no pointers. What it holds under active holds is
// in walletTable.held when not zero (most wallets hold nothing).
type walletRec struct {
	balance              Amount
	entryCount           uint64
	newestEntry          uint64 // Wallet.NewestEntryIndex
	createdAt, updatedAt int64
	id, customer         uint32 // arena references
	kind                 uint32 // index of (project, asset) in walletTable.kinds
	idLen, customerLen   uint16
	status               WalletStatus
	flags                uint8
}

const (
	walletHasText      = 1 << iota // name or description in walletTable.extra
	walletLongID                   // the ID is in walletTable.extra
	walletLongCustomer             // the customer ID is in walletTable.extra
	// walletDeferred: the open wallet epoch has not written the wallet's record since its
	// balance changed (epochs.go; Ledger.deferred lists the slots). Memory only, like the rest.
	walletDeferred
)

// walletExtra is what a wallet record does not hold inline.
type walletExtra struct {
	name, description string
	id, customer      string // only when too long for the arena
}

type walletKind struct{ projectID, assetID string }

// walletTable is the ledger's live wallets.
type walletTable struct {
	chunks []*[walletChunkLen]walletRec
	count  uint32
	// index is open addressing with linear probing: the high 32 bits of the ID's hash above
	// slot+1 of each wallet, 0 = free; its length is a power of two, at most 3/4 full. A
	// wallet's place is those hash bits modulo the length, and probing compares the stored bits
	// before it reads a record.
	index []uint64
	seed  maphash.Seed

	arena     [][]byte // chunks of arenaChunkBytes, appended to within their capacity only
	kinds     []walletKind
	kindIndex map[walletKind]uint32
	lastKind  uint32
	extra     map[uint32]*walletExtra
	held      map[uint32]Amount // by slot, only when not zero

	// The wallets materialized in the batch being applied, by ID, and the slab they come from.
	live map[string]liveWallet
	slab []Wallet
}

type liveWallet struct {
	w    *Wallet
	slot uint32
}

// noSlot is no wallet table slot.
const noSlot = ^uint32(0)

func newWalletTable(sizeHint int) *walletTable {
	t := &walletTable{seed: maphash.MakeSeed(), kindIndex: map[walletKind]uint32{},
		extra: map[uint32]*walletExtra{}, held: map[uint32]Amount{}, live: map[string]liveWallet{}}
	n := 16
	for n*3/4 < sizeHint {
		n *= 2
	}
	t.index = make([]uint64, n)
	return t
}

// Len is the number of wallets.
func (t *walletTable) Len() int { return int(t.count) }

func (t *walletTable) rec(slot uint32) *walletRec {
	return &t.chunks[slot>>walletChunkShift][slot&(walletChunkLen-1)]
}

// intern copies s into the arena and answers its reference; ok is false when s is too long.
func (t *walletTable) intern(s []byte) (ref uint32, n uint16, ok bool) {
	if len(s) > arenaStringMax {
		return 0, 0, false
	}
	last := len(t.arena) - 1
	if last < 0 || len(t.arena[last])+len(s) > arenaChunkBytes {
		if len(t.arena) >= 1<<(32-20) {
			panic("ledger: wallet ID arena full") // 4 GiB of IDs
		}
		t.arena = append(t.arena, make([]byte, 0, arenaChunkBytes))
		last++
	}
	ref = uint32(last)<<20 | uint32(len(t.arena[last]))
	t.arena[last] = append(t.arena[last], s...)
	return ref, uint16(len(s)), true
}

func (t *walletTable) bytes(ref uint32, n uint16) []byte {
	chunk := t.arena[ref>>20]
	off := ref & (1<<20 - 1)
	return chunk[off : off+uint32(n)]
}

// idString is the ID of the wallet in slot.
func (t *walletTable) idString(slot uint32) string {
	r := t.rec(slot)
	if r.flags&walletLongID != 0 {
		return t.extra[slot].id
	}
	return string(t.bytes(r.id, r.idLen))
}

// find answers the slot of the wallet with ID id.
func (t *walletTable) find(id []byte) (uint32, bool) {
	return t.lookup(uint32(maphash.Bytes(t.seed, id)>>32), id, "")
}

func (t *walletTable) findString(id string) (uint32, bool) {
	return t.lookup(uint32(maphash.String(t.seed, id)>>32), nil, id)
}

// lookup finds the wallet whose ID hashes to h and is id (or, when id is nil, ids).
func (t *walletTable) lookup(h uint32, id []byte, ids string) (uint32, bool) {
	mask := uint32(len(t.index) - 1)
	n := len(id) + len(ids)
	for i := h & mask; ; i = (i + 1) & mask {
		e := t.index[i]
		if e == 0 {
			return 0, false
		}
		if uint32(e>>32) != h {
			continue
		}
		slot := uint32(e) - 1
		r := t.rec(slot)
		if r.flags&walletLongID != 0 {
			if long := t.extra[slot].id; (id != nil && long == string(id)) || (id == nil && long == ids) {
				return slot, true
			}
			continue
		}
		if int(r.idLen) != n {
			continue
		}
		if b := t.bytes(r.id, r.idLen); (id != nil && string(b) == string(id)) || (id == nil && string(b) == ids) {
			return slot, true
		}
	}
}

func (t *walletTable) indexSlot(slot uint32, id []byte) {
	if (t.count+1)*4 > uint32(len(t.index))*3 {
		old := t.index
		t.index = make([]uint64, 2*len(old))
		for _, e := range old {
			if e != 0 {
				t.place(e)
			}
		}
	}
	t.place(maphash.Bytes(t.seed, id)>>32<<32 | uint64(slot+1))
}

func (t *walletTable) place(e uint64) {
	mask := uint32(len(t.index) - 1)
	i := uint32(e>>32) & mask
	for t.index[i] != 0 {
		i = (i + 1) & mask
	}
	t.index[i] = e
}

// insert adds a wallet (its ID not in the table) and answers its slot.
func (t *walletTable) insert(id, projectID, customerID, assetID []byte) uint32 {
	slot := t.append(id, projectID, customerID, assetID)
	t.indexSlot(slot, id)
	return slot
}

// append adds a wallet's record without indexing it (load, then buildIndex).
func (t *walletTable) append(id, projectID, customerID, assetID []byte) uint32 {
	if t.count == 1<<32-2 {
		panic("ledger: too many wallets")
	}
	slot := t.count
	if slot>>walletChunkShift == uint32(len(t.chunks)) {
		t.chunks = append(t.chunks, new([walletChunkLen]walletRec))
	}
	r := t.rec(slot)
	*r = walletRec{}
	if ref, n, ok := t.intern(id); ok {
		r.id, r.idLen = ref, n
	} else {
		r.flags |= walletLongID
		t.extraOf(slot).id = string(id)
	}
	if len(customerID) > 0 {
		if ref, n, ok := t.intern(customerID); ok {
			r.customer, r.customerLen = ref, n
		} else {
			r.flags |= walletLongCustomer
			t.extraOf(slot).customer = string(customerID)
		}
	}
	r.kind = t.kindOf(projectID, assetID)
	t.count++
	return slot
}

// buildIndex indexes every record, once the load appended them all: sized once, and each
// wallet placed once, where indexing one by one would grow the index (and place every wallet
// again) twenty times on the way to a million. With unique set the IDs are known to be
// unique, else a duplicate is an error.
func (t *walletTable) buildIndex(unique bool) error {
	n := 16
	for n*3/4 < int(t.count) {
		n *= 2
	}
	t.index = make([]uint64, n)
	for slot := range t.count {
		id := t.idString(slot)
		h := maphash.String(t.seed, id)
		if !unique {
			if _, dup := t.lookup(uint32(h>>32), nil, id); dup {
				return fmt.Errorf("wallet %q stored twice", id)
			}
		}
		t.place(h>>32<<32 | uint64(slot+1))
	}
	return nil
}

// kindOf interns (project, asset). Wallets mostly come in runs of one kind (a load scans
// them in ID order), so the last one answered is tried first, without allocating.
func (t *walletTable) kindOf(projectID, assetID []byte) uint32 {
	if n := len(t.kinds); n > 0 {
		if last := t.kinds[t.lastKind]; last.projectID == string(projectID) && last.assetID == string(assetID) {
			return t.lastKind
		}
	}
	kind := walletKind{string(projectID), string(assetID)}
	k, ok := t.kindIndex[kind]
	if !ok {
		k = uint32(len(t.kinds))
		t.kinds = append(t.kinds, kind)
		t.kindIndex[kind] = k
	}
	t.lastKind = k
	return k
}

func (t *walletTable) extraOf(slot uint32) *walletExtra {
	x := t.extra[slot]
	if x == nil {
		x = &walletExtra{}
		t.extra[slot] = x
	}
	return x
}

// set writes w's changeable fields into its record.
func (t *walletTable) set(slot uint32, w *Wallet) {
	r := t.rec(slot)
	r.balance, r.entryCount, r.newestEntry = w.Balance, w.EntryCount, w.NewestEntryIndex
	if w.Held.IsZero() {
		delete(t.held, slot)
	} else {
		t.held[slot] = w.Held
	}
	r.createdAt, r.updatedAt, r.status = w.CreatedAt, w.UpdatedAt, w.Status
	if w.Name != "" || w.Description != "" {
		x := t.extraOf(slot)
		x.name, x.description = w.Name, w.Description
		r.flags |= walletHasText
	} else if r.flags&walletHasText != 0 {
		r.flags &^= walletHasText
		if x := t.extra[slot]; x.id == "" && x.customer == "" {
			delete(t.extra, slot)
		} else {
			x.name, x.description = "", ""
		}
	}
}

// wallet materializes the wallet in slot, whose ID is id.
func (t *walletTable) wallet(slot uint32, id string) *Wallet {
	w := new(Wallet)
	t.fill(w, slot, id)
	return w
}

// batchWallet materializes the wallet in slot for the batch, in the batch slab: a slab of
// walletSlabLen wallets is one allocation, where a wallet each was two per transfer. An
// element is handed out once and never reused, so a pointer that outlives its batch (none
// should) still sees only its own wallet. Apply goroutine only.
func (t *walletTable) batchWallet(slot uint32, id string) *Wallet {
	if len(t.slab) == cap(t.slab) {
		t.slab = make([]Wallet, 0, walletSlabLen)
	}
	t.slab = t.slab[:len(t.slab)+1]
	w := &t.slab[len(t.slab)-1]
	t.fill(w, slot, id)
	return w
}

const walletSlabLen = 64

func (t *walletTable) fill(w *Wallet, slot uint32, id string) {
	r := t.rec(slot)
	k := t.kinds[r.kind]
	*w = Wallet{ID: id, ProjectID: k.projectID, AssetID: k.assetID, Status: r.status,
		Balance: r.balance, Held: t.held[slot], EntryCount: r.entryCount, CreatedAt: r.createdAt, UpdatedAt: r.updatedAt,
		NewestEntryIndex: r.newestEntry}
	switch {
	case r.flags&walletLongCustomer != 0:
		w.CustomerID = t.extra[slot].customer
	case r.customerLen > 0:
		w.CustomerID = string(t.bytes(r.customer, r.customerLen))
	}
	if r.flags&walletHasText != 0 {
		x := t.extra[slot]
		w.Name, w.Description = x.name, x.description
	}
}

// endBatch writes every wallet the batch materialized back to its record.
func (t *walletTable) endBatch() {
	for _, lw := range t.live {
		t.set(lw.slot, lw.w)
	}
	clear(t.live)
}

// load adds a stored wallet record without allocating per wallet (but for a name or a
// description) and without indexing it: buildIndex does, after the last. It answers whether
// the record's ID is its key's, which makes it unique.
func (t *walletTable) load(k, data []byte) (unique bool, err error) {
	d := fsm.NewDecoder(data)
	version := d.Byte()
	if d.Err() == nil && version != recordVersion && version != walletRecordNewest {
		d.Fail(fmt.Errorf("unknown wallet record version %d", version))
	}
	id, projectID, customerID, assetID := d.Bytes(), d.Bytes(), d.Bytes(), d.Bytes()
	name, description := d.Bytes(), d.Bytes()
	w := Wallet{Status: WalletStatus(d.Byte()), Balance: d.Amount(), Held: d.Amount(),
		EntryCount: d.Uvarint(), CreatedAt: d.Varint(), UpdatedAt: d.Varint()}
	if version == walletRecordNewest {
		w.NewestEntryIndex = d.Uvarint()
	}
	if err := d.Finish("wallet"); err != nil {
		return false, err
	}
	if len(name) > 0 || len(description) > 0 {
		w.Name, w.Description = string(name), string(description)
	}
	slot := t.append(id, projectID, customerID, assetID)
	t.set(slot, &w)
	return string(k[1:]) == string(id), nil
}

// wallet returns the live wallet with ID id, or nil: within a batch the batch's own pointer
// (changes to it are kept), outside a batch a copy.
func (l *Ledger) wallet(id string) *Wallet {
	t := l.wallets
	if lw, ok := t.live[id]; ok {
		return lw.w
	}
	slot, ok := t.findString(id)
	if !ok {
		return nil
	}
	if l.b == nil {
		return t.wallet(slot, id)
	}
	w := t.batchWallet(slot, id)
	t.live[id] = liveWallet{w: w, slot: slot}
	return w
}

// peekWallet returns a copy of the live wallet with ID id as the batch left it, or nil,
// without keeping it in the batch: for the read-only accessors other families call (Wallet,
// Available), which must not write the ledger's batch state.
func (l *Ledger) peekWallet(id string) *Wallet {
	t := l.wallets
	if lw, ok := t.live[id]; ok {
		out := *lw.w
		return &out
	}
	slot, ok := t.findString(id)
	if !ok {
		return nil
	}
	return t.wallet(slot, id)
}

// liveOwnerWalletsOf returns the wallets of a customer ("" = the project's system wallets) in
// creation order, as wallet does: those in the store's owner index (whose keys end in the
// wallet sequence), which the previous batch left, then those this batch created. The load
// does not index owners in memory: only suspending and resuming a customer needs them.
func (l *Ledger) liveOwnerWalletsOf(projectID, customerID string) []*Wallet {
	var ws []*Wallet
	err := l.store.Scan(prefixOf(prefixOwnerWallet, projectID, customerID), func(k, v []byte) error {
		w := l.wallet(string(v))
		if w == nil || len(k) < 9 {
			return fmt.Errorf("bad owner index entry %q → %q", k, v)
		}
		ws = append(ws, w)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("ledger: wallets of customer %q: %v", customerID, err)) // corruption
	}
	for _, id := range l.batchOwnerWallets[customerKey(projectID, customerID)] {
		ws = append(ws, l.wallet(id))
	}
	return ws
}

// hasWallet reports whether a wallet with ID id exists.
func (l *Ledger) hasWallet(id string) bool {
	if _, ok := l.wallets.live[id]; ok {
		return true
	}
	_, ok := l.wallets.findString(id)
	return ok
}

// addWallet adds a new wallet (its ID free) created by the batch being applied, and answers
// its slot.
func (l *Ledger) addWallet(w *Wallet) uint32 {
	t := l.wallets
	slot := t.insert([]byte(w.ID), []byte(w.ProjectID), []byte(w.CustomerID), []byte(w.AssetID))
	t.set(slot, w)
	t.live[w.ID] = liveWallet{w: w, slot: slot}
	return slot
}
