package chainsim

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// ReorgOptions shapes a Reorg.
type ReorgOptions struct {
	// DropTransactions drops the taken-off blocks' transactions instead of returning them to
	// the mempool (as if every node had forgotten them).
	DropTransactions bool
	// DoubleSpend lists transactions (in the taken-off blocks or in the mempool) to replace by
	// a conflict: a faucet-signed transaction spending the same inputs, paying their value
	// less the faucet fee to DoubleSpendTo, mined in the first replacement block. The original
	// and its descendants become invalid and leave the mempool. Every input must be a faucet
	// output confirmed below the fork.
	DoubleSpend []chainhash.Hash
	// DoubleSpendTo is the address the conflicts pay; empty means the faucet's.
	DoubleSpendTo string
	// EmptyBlocks makes the replacement blocks of their coinbase (and the conflicts) alone, so
	// the transactions that returned to the mempool wait there; otherwise the replacement
	// blocks take the mempool as Mine does and the returned transactions confirm again.
	EmptyBlocks bool
	// Mine shapes the replacement blocks (AuxPoW, transactions per block).
	Mine MineOptions
}

// Reorg takes the top depth blocks off the active chain and mines replacementBlocks new ones
// on the block below them, which become the active chain even when shorter than the old one
// (as if the node had received a chain with more work). The old blocks stay known as stale:
// getblockheader answers confirmations -1 and no nextblockhash for them. It returns the new
// blocks' hashes. depth must be 1..Height(); replacementBlocks 0..MineBlocksMax, and at least
// 1 with DoubleSpend.
func (c *Chain) Reorg(depth, replacementBlocks int, options ReorgOptions) ([]chainhash.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tipHeight := c.tip().height
	switch {
	case depth < 1 || int64(depth) > tipHeight:
		return nil, fmt.Errorf("%w: depth %d outside 1..%d (genesis stays)", ErrInvalidArgument, depth, tipHeight)
	case replacementBlocks < 0 || replacementBlocks > MineBlocksMax:
		return nil, fmt.Errorf("%w: %d replacement blocks outside 0..%d", ErrInvalidArgument, replacementBlocks, MineBlocksMax)
	case len(options.DoubleSpend) > 0 && replacementBlocks == 0:
		return nil, fmt.Errorf("%w: a double spend needs a replacement block to be mined in", ErrInvalidArgument)
	}
	conflictScript := c.faucetScript
	if options.DoubleSpendTo != "" {
		script, err := AddressScript(options.DoubleSpendTo)
		if err != nil {
			return nil, err
		}
		conflictScript = script
	}
	forkHeight := tipHeight - int64(depth)
	originals := make([]*wire.MsgTx, 0, len(options.DoubleSpend))
	for _, txid := range options.DoubleSpend {
		original, err := c.doubleSpendable(txid, forkHeight)
		if err != nil {
			return nil, err
		}
		originals = append(originals, original)
	}

	var disconnected []*block
	for c.tip().height > forkHeight {
		disconnected = append(disconnected, c.disconnect())
	}
	var returning []mempoolEntry
	if !options.DropTransactions {
		for i := len(disconnected) - 1; i >= 0; i-- {
			b := disconnected[i]
			for index := 1; index < len(b.transactions); index++ {
				returning = append(returning, mempoolEntry{transaction: b.transactions[index], txid: b.txids[index]})
			}
		}
	}
	// The originals must not come back: leave them out, and their descendants fall out of
	// the mempool for want of inputs.
	returning = slices.DeleteFunc(returning, func(entry mempoolEntry) bool {
		return slices.Contains(options.DoubleSpend, entry.txid)
	})
	for _, txid := range options.DoubleSpend {
		c.mempool.remove(txid)
	}
	c.rebuildMempool(returning)

	var conflicts []mempoolEntry
	for _, original := range originals {
		conflict, err := c.conflictOf(original, conflictScript)
		if err != nil {
			// doubleSpendable checked every input; failing now is a bug of this package.
			panic(fmt.Sprintf("chainsim: double spend of %s: %v", original.TxHash(), err))
		}
		conflicts = append(conflicts, conflict)
	}
	mineOptions := options.Mine
	mineOptions.Empty = options.EmptyBlocks
	hashes := make([]chainhash.Hash, 0, replacementBlocks)
	for i := range replacementBlocks {
		first := conflicts
		if i > 0 {
			first = nil
		}
		hashes = append(hashes, c.mineOnTip(first, mineOptions).hash)
	}
	return hashes, nil
}

// doubleSpendable finds the transaction txid above forkHeight or in the mempool and checks
// that the faucet can sign a conflict: every input a faucet output confirmed at or below
// forkHeight.
func (c *Chain) doubleSpendable(txid chainhash.Hash, forkHeight int64) (*wire.MsgTx, error) {
	var original *wire.MsgTx
	if location, ok := c.txLocations[txid]; ok {
		if location.block.height <= forkHeight {
			return nil, fmt.Errorf("%w: %s is confirmed at height %d, below the reorg", ErrInvalidArgument, txid, location.block.height)
		}
		if location.index == 0 {
			return nil, fmt.Errorf("%w: %s is a coinbase", ErrInvalidArgument, txid)
		}
		original = location.block.transactions[location.index]
	} else if entry, ok := c.mempool.entries[txid]; ok {
		original = entry.transaction
	} else {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTransaction, txid)
	}
	for _, input := range original.TxIn {
		location, ok := c.txLocations[input.PreviousOutPoint.Hash]
		if !ok || location.block.height > forkHeight {
			return nil, fmt.Errorf("%w: %s spends %s, which is not confirmed below the reorg", ErrInvalidArgument, txid, input.PreviousOutPoint)
		}
		previous := location.block.transactions[location.index]
		if input.PreviousOutPoint.Index >= uint32(len(previous.TxOut)) ||
			!bytes.Equal(previous.TxOut[input.PreviousOutPoint.Index].PkScript, c.faucetScript) {
			return nil, fmt.Errorf("%w: %s spends %s, which the faucet cannot sign for", ErrInvalidArgument, txid, input.PreviousOutPoint)
		}
	}
	return original, nil
}

// conflictOf signs a transaction spending original's inputs to script.
func (c *Chain) conflictOf(original *wire.MsgTx, script []byte) (mempoolEntry, error) {
	conflict := wire.NewMsgTx(1)
	var inKoinu int64
	for _, input := range original.TxIn {
		entry, ok := c.utxos[input.PreviousOutPoint]
		if !ok {
			return mempoolEntry{}, fmt.Errorf("input %s is not unspent", input.PreviousOutPoint)
		}
		conflict.AddTxIn(wire.NewTxIn(&input.PreviousOutPoint, nil, nil))
		inKoinu += entry.output.Value
	}
	valueKoinu := inKoinu - c.options.FaucetFeeKoinu
	if valueKoinu <= 0 {
		return mempoolEntry{}, fmt.Errorf("inputs of %d koinu do not cover the fee", inKoinu)
	}
	conflict.AddTxOut(wire.NewTxOut(valueKoinu, script))
	if err := c.signFaucetInputs(conflict); err != nil {
		return mempoolEntry{}, err
	}
	txid := conflict.TxHash()
	fee, rejection := c.checkTransaction(conflict, txid, true)
	if rejection != nil {
		return mempoolEntry{}, rejection
	}
	return mempoolEntry{transaction: conflict, txid: txid, feeKoinu: fee}, nil
}

// InvalidateBlock marks the block hash and its descendants invalid, like Dogecoin Core's
// invalidateblock: if it is on the active chain, the chain steps back below it (its
// transactions return to the mempool) and then follows the longest chain of valid blocks
// known, which may be a stale branch.
func (c *Chain) InvalidateBlock(hash chainhash.Hash) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	if b.height == 0 {
		return fmt.Errorf("%w: genesis cannot be invalidated", ErrInvalidArgument)
	}
	b.invalid = true
	if c.onActiveChain(b) {
		// Step below the block first, so that its transactions return to the mempool even if
		// the best valid chain is a rival branch.
		c.reorgTo(b.parent, false)
	}
	c.reorgTo(c.bestValidTip(), false)
	return nil
}

// ReconsiderBlock clears the invalid mark of the block hash, its ancestors and descendants,
// like Dogecoin Core's reconsiderblock, and then follows the longest valid chain.
func (c *Chain) ReconsiderBlock(hash chainhash.Hash) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	for ancestor := b; ancestor != nil; ancestor = ancestor.parent {
		ancestor.invalid = false
	}
	for _, candidate := range c.blocks {
		for up := candidate; up != nil && up.height >= b.height; up = up.parent {
			if up == b {
				candidate.invalid = false
				break
			}
		}
	}
	c.reorgTo(c.bestValidTip(), false)
	return nil
}

// remove takes txid out of the mempool (not its descendants: rebuildMempool drops them).
func (m *mempool) remove(txid chainhash.Hash) {
	entry, ok := m.entries[txid]
	if !ok {
		return
	}
	delete(m.entries, txid)
	for _, input := range entry.transaction.TxIn {
		if m.spentBy[input.PreviousOutPoint] == txid {
			delete(m.spentBy, input.PreviousOutPoint)
		}
	}
	m.order = slices.DeleteFunc(m.order, func(other chainhash.Hash) bool { return other == txid })
}
