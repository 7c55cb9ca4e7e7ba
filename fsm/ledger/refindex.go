package ledger

import (
	"hash/maphash"
	"math/bits"
)

// The reference filter spares apply a store lookup that misses.
//
// Every transaction claims a reference ID, and apply first looks the ID up (transactionByReference):
// idempotency — a reference is never used twice — is a money-safety property. Nearly every ID is
// new, so the lookup is a miss, and a miss in Pebble searches every memtable and asks the bloom
// filter of every level and every L0 file: the profile of BenchmarkApplyTransfers put it at an
// eighth of apply's time (issue 15).
//
// referenceFilter is an in-memory Bloom filter over the keys of every stored reference (`r
// {project} 0 {referenceId}`). It has no false negatives: "absent" means the store holds no such
// key, and apply skips the store; "maybe" sends apply to the store, as before. So it can only
// make apply cheaper, never change what a replica computes (the filter is not replicated state,
// and a replica whose filter is not ready, or full of false positives, computes the same).
//
// Completeness is the whole point, and rests on two things:
//   - every reference key written through the ledger is added when it is written (Ledger.set
//     adds every key under the reference prefix, whichever op wrote it), before its batch
//     commits;
//   - the keys already in the store are added by a scan that the first use after a load (open,
//     restore) starts, which runs beside apply: until it is done, apply adds new keys to a
//     pending list and asks the store. When the scan hands over its filter, the pending keys
//     join it and the filter is used. The scan's iterator sees at least the store as of the
//     scan's start, and the pending list holds every key written since: together, every key.
//
// Reference keys are never deleted (a delete would leave a false positive, which is harmless).
//
// Memory: about 1.5 bytes per stored reference (12 bits per key, blocked). The filter grows by
// adding filters four times larger, so a lookup reads one cache line per filter: about
// log4(references / 65536) + 1 of them (5 at ten million). A restart rebuilds one filter per
// growth step from the scan.
type referenceFilter struct {
	seed maphash.Seed
	// filter is the apply goroutine's, nil until the load's scan has handed it over.
	filter *bloomChain
	// pending are the hashes of reference keys written since the load, while filter is nil.
	pending []uint64
	// built receives the scan's filter (buffered: the scan never waits for apply); nil until
	// the scan starts. Each scan has its own channel, so a scan of a store that a restore
	// replaced is never taken.
	built chan *bloomChain
	// scan reads the stored reference keys (Ledger.scanReferenceKeys).
	scan func(fn func(k []byte) error) error
}

// reset forgets everything (Load, after open and after a restore); scan reads the stored
// reference keys. The scan starts at the filter's first use, so that a machine that never
// applies (gigaledger verify's read-only one) never scans.
func (f *referenceFilter) reset(scan func(fn func(k []byte) error) error) {
	if f.seed == (maphash.Seed{}) {
		f.seed = maphash.MakeSeed()
	}
	f.filter, f.pending, f.built, f.scan = nil, f.pending[:0], nil, scan
}

// start runs the scan on a goroutine of its own. Every key written from now on is added to
// pending first, and the scan's iterator, made after this, sees every key written before.
func (f *referenceFilter) start() {
	built := make(chan *bloomChain, 1)
	f.built = built
	scan, seed := f.scan, f.seed
	go func() {
		c := newBloomChain()
		err := scan(func(k []byte) error {
			c.add(maphash.Bytes(seed, k))
			return nil
		})
		if err != nil {
			// The store closed or was replaced meanwhile (a restore loads anew), or failed
			// (apply's own reads will say so): the filter stays off until the next load, and
			// apply asks the store.
			c = nil
		}
		built <- c
	}()
}

// ready takes the scan's filter once it is done; it reports whether the filter is in use.
func (f *referenceFilter) ready() bool {
	if f.filter != nil {
		return true
	}
	if f.built == nil {
		if f.scan != nil {
			f.start()
		}
		return false
	}
	select {
	case c := <-f.built:
		if c == nil {
			f.scanFailed()
			return false
		}
		f.take(c)
		return true
	default:
		return false
	}
}

// scanFailed turns the filter off until the next load: pending stops growing.
func (f *referenceFilter) scanFailed() { f.scan, f.built, f.pending = nil, nil, nil }

// take starts using the scan's filter, with the keys written since the load.
func (f *referenceFilter) take(c *bloomChain) {
	for _, h := range f.pending {
		c.add(h)
	}
	f.filter, f.pending = c, nil
}

// add records a reference key written by the batch being applied.
func (f *referenceFilter) add(k []byte) {
	h := maphash.Bytes(f.seed, k)
	switch {
	case f.ready():
		f.filter.add(h)
	case f.scan != nil:
		f.pending = append(f.pending, h)
	}
}

// absent reports that the store certainly holds no key k; false means it may.
func (f *referenceFilter) absent(k []byte) bool {
	return f.ready() && !f.filter.mayContain(maphash.Bytes(f.seed, k))
}

// waitReady blocks until the load's scan has handed its filter over (tests).
func (f *referenceFilter) waitReady() {
	if f.filter == nil && f.scan != nil {
		if f.built == nil {
			f.start()
		}
		if c := <-f.built; c != nil {
			f.take(c)
		} else {
			f.scanFailed()
		}
	}
}

// bloomChain is a growing Bloom filter: a list of blocked filters, each four times the capacity
// of the one before; keys go into the newest until it holds its capacity.
type bloomChain struct {
	filters []*blockedBloom
}

const (
	bloomFirstCapacity = 1 << 16
	bloomGrowth        = 4
	bloomBitsPerKey    = 12
	bloomProbes        = 8
)

func newBloomChain() *bloomChain {
	return &bloomChain{filters: []*blockedBloom{newBlockedBloom(bloomFirstCapacity)}}
}

func (c *bloomChain) add(h uint64) {
	last := c.filters[len(c.filters)-1]
	if last.count >= last.capacity {
		last = newBlockedBloom(last.capacity * bloomGrowth)
		c.filters = append(c.filters, last)
	}
	last.add(h)
}

func (c *bloomChain) mayContain(h uint64) bool {
	for _, b := range c.filters {
		if b.mayContain(h) {
			return true
		}
	}
	return false
}

// blockedBloom is a Bloom filter whose probes for one key all fall into one 512-bit block: one
// cache line per lookup.
type blockedBloom struct {
	blocks   [][8]uint64
	count    uint64
	capacity uint64
}

func newBlockedBloom(capacity uint64) *blockedBloom {
	n := (capacity*bloomBitsPerKey + 511) / 512
	return &blockedBloom{blocks: make([][8]uint64, n), capacity: capacity}
}

// block picks the key's block from the hash's high bits.
func (b *blockedBloom) block(h uint64) *[8]uint64 {
	i, _ := bits.Mul64(h, uint64(len(b.blocks)))
	return &b.blocks[i]
}

// probes are the two halves of the double hashing that picks bits within the block: the low
// half of h, and a remix of all of it (the block took h's high bits).
func probes(h uint64) (h1, h2 uint32) {
	return uint32(h), uint32((h*0x9e3779b97f4a7c15)>>32) | 1
}

func (b *blockedBloom) add(h uint64) {
	blk := b.block(h)
	h1, h2 := probes(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) & 511
		blk[bit>>6] |= 1 << (bit & 63)
	}
	b.count++
}

func (b *blockedBloom) mayContain(h uint64) bool {
	blk := b.block(h)
	h1, h2 := probes(h)
	for i := uint32(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) & 511
		if blk[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}
