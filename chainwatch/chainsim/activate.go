package chainsim

import (
	"bytes"
	"fmt"

	"github.com/btcsuite/btcd/wire"
)

// Moving the active chain: connecting and disconnecting blocks against the UTXO set, and the
// mempool's repair afterwards. Callers hold c.mu.

// connect appends b, a child of the tip, to the active chain and spends and creates its
// outputs. Its transactions leave the mempool, and so does anything they conflict with.
func (c *Chain) connect(b *block) {
	if b.parent != c.tip() {
		panic(fmt.Sprintf("chainsim: connect %s: parent is not the tip", b.hash))
	}
	b.undo = b.undo[:0]
	for index, transaction := range b.transactions {
		if index > 0 {
			for _, input := range transaction.TxIn {
				entry, ok := c.utxos[input.PreviousOutPoint]
				if !ok {
					panic(fmt.Sprintf("chainsim: connect %s: transaction %s spends %s, which is not unspent",
						b.hash, b.txids[index], input.PreviousOutPoint))
				}
				b.undo = append(b.undo, spentOutput{outpoint: input.PreviousOutPoint, entry: entry})
				c.removeUTXO(input.PreviousOutPoint)
			}
		}
		for vout, output := range transaction.TxOut {
			outpoint := wire.OutPoint{Hash: b.txids[index], Index: uint32(vout)}
			c.addUTXO(outpoint, &unspentOutput{output: output, height: b.height, coinbase: index == 0, txIndex: index})
		}
		c.txLocations[b.txids[index]] = txLocation{block: b, index: index}
	}
	c.active = append(c.active, b)
	c.faucetCoins = nil
	c.publishBlock(b)
}

// disconnect takes the tip off the active chain, restoring what it spent, and returns it.
func (c *Chain) disconnect() *block {
	b := c.tip()
	if b.height == 0 {
		panic("chainsim: disconnect genesis")
	}
	// Last transaction first, each undone whole (outputs removed, then its inputs restored),
	// so that an output spent within the block ends up removed.
	undo := b.undo
	for index := len(b.transactions) - 1; index >= 0; index-- {
		for vout := range b.transactions[index].TxOut {
			c.removeUTXO(wire.OutPoint{Hash: b.txids[index], Index: uint32(vout)})
		}
		delete(c.txLocations, b.txids[index])
		if index == 0 {
			break
		}
		for range b.transactions[index].TxIn {
			last := undo[len(undo)-1]
			undo = undo[:len(undo)-1]
			c.addUTXO(last.outpoint, last.entry)
		}
	}
	if len(undo) != 0 {
		panic(fmt.Sprintf("chainsim: disconnect %s: %d undo entries left", b.hash, len(undo)))
	}
	b.undo = nil
	c.active = c.active[:len(c.active)-1]
	c.faucetCoins = nil
	return b
}

func (c *Chain) addUTXO(outpoint wire.OutPoint, entry *unspentOutput) {
	c.utxos[outpoint] = entry
	if bytes.Equal(entry.output.PkScript, c.faucetScript) {
		c.faucetUTXOs[outpoint] = struct{}{}
	}
}

func (c *Chain) removeUTXO(outpoint wire.OutPoint) {
	delete(c.utxos, outpoint)
	delete(c.faucetUTXOs, outpoint)
}

// reorgTo makes target's chain active: it disconnects down to the fork point and connects up
// to target. The disconnected blocks' transactions (coinbases aside) go back to the mempool
// ahead of what it held, unless dropDisconnected; then the mempool is checked again against
// the new chain, and what no longer fits leaves it.
func (c *Chain) reorgTo(target *block, dropDisconnected bool) {
	var path []*block
	fork := target
	for !c.onActiveChain(fork) {
		path = append(path, fork)
		fork = fork.parent
	}
	var disconnected []*block
	for c.tip() != fork {
		disconnected = append(disconnected, c.disconnect())
	}
	for i := len(path) - 1; i >= 0; i-- {
		c.connect(path[i])
	}
	var returning []mempoolEntry
	if !dropDisconnected {
		for i := len(disconnected) - 1; i >= 0; i-- {
			b := disconnected[i]
			for index := 1; index < len(b.transactions); index++ {
				returning = append(returning, mempoolEntry{transaction: b.transactions[index], txid: b.txids[index]})
			}
		}
	}
	c.rebuildMempool(returning)
}

// rebuildMempool puts first and then the mempool's own transactions through acceptance again
// (scripts were verified on first acceptance and cannot change for the same inputs, so they
// are not run again), after the chain moved: transactions now in a block, spending outputs
// that are gone or conflicting with an earlier one leave, with their descendants.
func (c *Chain) rebuildMempool(first []mempoolEntry) {
	old := c.mempool
	c.mempool = newMempool()
	c.faucetCoins = nil
	candidates := append(first, old.entriesInOrder()...)
	for _, entry := range candidates {
		if _, inChain := c.txLocations[entry.txid]; inChain {
			continue
		}
		if _, already := c.mempool.entries[entry.txid]; already {
			continue
		}
		fee, rejection := c.checkTransaction(entry.transaction, entry.txid, false)
		if rejection != nil {
			continue
		}
		announce := old.entries[entry.txid] == nil
		c.mempool.add(mempoolEntry{transaction: entry.transaction, txid: entry.txid, feeKoinu: fee})
		if announce {
			c.publishTransaction(entry.transaction, entry.txid)
		}
	}
}

// bestValidTip is the tip of the longest chain of blocks none of which is invalid; among
// equals, the one made first (as Core prefers the block it received first).
func (c *Chain) bestValidTip() *block {
	best := c.active[0]
	for _, candidate := range c.blocks {
		if candidate.height < best.height || (candidate.height == best.height && candidate.sequence >= best.sequence) {
			continue
		}
		if c.chainValid(candidate) {
			best = candidate
		}
	}
	return best
}

// chainValid reports whether b and every ancestor are valid.
func (c *Chain) chainValid(b *block) bool {
	for ; b != nil; b = b.parent {
		if b.invalid {
			return false
		}
	}
	return true
}
