package chainsim

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// AuxPoWMode says whether mined blocks carry an AuxPoW proof. The zero value follows
// Options.AuxPoW.
type AuxPoWMode int

const (
	// AuxPoWOn makes merge-mined blocks: version bit 0x100 and an AuxPoW proof.
	AuxPoWOn AuxPoWMode = iota + 1
	// AuxPoWOff makes plain blocks.
	AuxPoWOff
)

// MineOptions shapes the blocks of one MineWith call.
type MineOptions struct {
	// AuxPoW overrides Options.AuxPoW for these blocks; zero keeps it.
	AuxPoW AuxPoWMode
	// TransactionsMax caps the mempool transactions each block takes, overriding
	// Options.BlockTransactionsMax when positive.
	TransactionsMax int
	// Empty makes blocks of their coinbase alone: the mempool waits.
	Empty bool
}

// Mine mines n blocks on the active chain's tip with Options' defaults and returns their
// hashes, lowest first. Each takes the mempool in acceptance order (all of it, or up to
// Options.BlockTransactionsMax) and pays the reward and the fees to the faucet; each is
// announced on ZMQ. n must be 0..MineBlocksMax.
func (c *Chain) Mine(n int) []chainhash.Hash {
	return c.MineWith(n, MineOptions{})
}

// MineWith is Mine with options for these blocks.
func (c *Chain) MineWith(n int, options MineOptions) []chainhash.Hash {
	if n < 0 || n > MineBlocksMax {
		panic(fmt.Sprintf("chainsim: Mine(%d): want 0..%d blocks", n, MineBlocksMax))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hashes := make([]chainhash.Hash, 0, n)
	for range n {
		hashes = append(hashes, c.mineOnTip(nil, options).hash)
	}
	return hashes
}

// mineOnTip makes a block on the tip holding first (transactions already checked against
// the chain, such as a double spend) and then the mempool's transactions as options allow,
// connects it and repairs the mempool.
func (c *Chain) mineOnTip(first []mempoolEntry, options MineOptions) *block {
	entries := first
	if !options.Empty {
		limit := c.options.BlockTransactionsMax
		if options.TransactionsMax > 0 {
			limit = options.TransactionsMax
		}
		if limit == 0 || limit > BlockTransactionsMax-1-len(first) {
			limit = BlockTransactionsMax - 1 - len(first)
		}
		for _, txid := range c.mempool.order {
			if len(entries)-len(first) >= limit {
				break
			}
			entries = append(entries, *c.mempool.entries[txid])
		}
	}
	auxPoW := c.options.AuxPoW
	switch options.AuxPoW {
	case AuxPoWOn:
		auxPoW = true
	case AuxPoWOff:
		auxPoW = false
	}
	b := c.makeBlock(entries, auxPoW)
	c.blocks[b.hash] = b
	c.connect(b)
	c.rebuildMempool(nil)
	return b
}

// makeBlock builds a block on the tip from entries, with a coinbase paying the faucet the
// reward and the entries' fees.
func (c *Chain) makeBlock(entries []mempoolEntry, auxPoW bool) *block {
	parent := c.tip()
	height := parent.height + 1
	sequence := c.blocksMadeCount
	c.blocksMadeCount++
	feesKoinu := int64(0)
	for _, entry := range entries {
		feesKoinu += entry.feeKoinu
	}
	b := &block{height: height, parent: parent, sequence: sequence}
	b.transactions = append(b.transactions, c.coinbase(height, sequence, c.options.BlockRewardKoinu+feesKoinu))
	for _, entry := range entries {
		b.transactions = append(b.transactions, entry.transaction)
	}
	for _, transaction := range b.transactions {
		b.txids = append(b.txids, transaction.TxHash())
	}
	version := blockVersionBase
	if auxPoW {
		version |= dogecoin.VersionAuxPoWFlag
	}
	b.header = wire.BlockHeader{
		Version:    version,
		PrevBlock:  parent.hash,
		MerkleRoot: merkleRoot(b.txids),
		Timestamp:  blockTime(parent.header.Timestamp),
		Bits:       regtestBits,
		// No proof of work: the nonce only keeps rival blocks' headers apart.
		Nonce: uint32(sequence),
	}
	b.hash = b.header.BlockHash()
	if auxPoW {
		b.auxPoW = buildAuxPoW(b.hash, height, b.header)
	}
	return b
}

// coinbase pays valueKoinu to the faucet. Its script starts with the height (BIP34) and holds
// the block's sequence number, so that rival blocks at one height have distinct coinbases.
func (c *Chain) coinbase(height, sequence, valueKoinu int64) *wire.MsgTx {
	script, err := txscript.NewScriptBuilder().AddInt64(height).AddInt64(sequence).AddData([]byte("chainsim")).Script()
	if err != nil {
		panic(fmt.Sprintf("chainsim: coinbase script: %v", err))
	}
	transaction := wire.NewMsgTx(1)
	transaction.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), script, nil))
	transaction.AddTxOut(wire.NewTxOut(valueKoinu, c.faucetScript))
	return transaction
}

// merkleRoot is Bitcoin's merkle root of txids: an odd level repeats its last hash.
func merkleRoot(txids []chainhash.Hash) chainhash.Hash {
	level := append([]chainhash.Hash(nil), txids...)
	var pair [2 * chainhash.HashSize]byte
	for len(level) > 1 {
		next := level[:0:0]
		for i := 0; i < len(level); i += 2 {
			right := level[min(i+1, len(level)-1)]
			copy(pair[:chainhash.HashSize], level[i][:])
			copy(pair[chainhash.HashSize:], right[:])
			next = append(next, chainhash.DoubleHashH(pair[:]))
		}
		level = next
	}
	return level[0]
}

// The AuxPoW proof. Dogecoin Core's CAuxPow::check accepts a proof when the parent coinbase
// is its block's first transaction (coinbase branch index 0), the coinbase branch leads from
// the coinbase's txid to the parent header's merkle root, and the coinbase's script holds the
// merged-mining magic followed at once by the chain merkle root (in display byte order), the
// chain tree's size (1 << chain branch length) and a nonce whose expected index (see
// expectedChainIndex) is the chain branch's index; the chain branch leads from this block's
// hash to that root. The parent's proof of work is not made.
var mergedMiningMagic = []byte{0xfa, 0xbe, 'm', 'm'}

// buildAuxPoW makes a proof for blockHash with one-hash branches on both sides, so that a
// reader's branch handling is exercised, and returns its serialization (CAuxPow's order:
// parent coinbase, parent hash, coinbase branch and index, chain branch and index, parent
// header).
func buildAuxPoW(blockHash chainhash.Hash, height int64, header wire.BlockHeader) []byte {
	chainSibling := chainhash.DoubleHashH(fmt.Appendf(nil, "chainsim chain sibling %d", height))
	nonce := uint32(height)
	chainIndex := expectedChainIndex(nonce, dogecoinChainID, 1)
	chainRoot := merkleBranchRoot(blockHash, []chainhash.Hash{chainSibling}, chainIndex)

	commitment := append([]byte(nil), mergedMiningMagic...)
	for i := chainhash.HashSize - 1; i >= 0; i-- {
		commitment = append(commitment, chainRoot[i])
	}
	commitment = binary.LittleEndian.AppendUint32(commitment, 1<<1)
	commitment = binary.LittleEndian.AppendUint32(commitment, nonce)
	script, err := txscript.NewScriptBuilder().AddInt64(height).AddData(commitment).Script()
	if err != nil {
		panic(fmt.Sprintf("chainsim: parent coinbase script: %v", err))
	}
	parentCoinbase := wire.NewMsgTx(1)
	parentCoinbase.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, wire.MaxPrevOutIndex), script, nil))
	parentCoinbase.AddTxOut(wire.NewTxOut(25*KoinuPerCoin, p2pkhScript(hash160([]byte("chainsim parent miner")))))

	coinbaseSibling := chainhash.DoubleHashH(fmt.Appendf(nil, "chainsim parent transaction %d", height))
	parentHeader := wire.BlockHeader{
		Version:    0x20000000,
		PrevBlock:  chainhash.DoubleHashH(fmt.Appendf(nil, "chainsim parent block %d", height-1)),
		MerkleRoot: merkleBranchRoot(parentCoinbase.TxHash(), []chainhash.Hash{coinbaseSibling}, 0),
		Timestamp:  header.Timestamp,
		Bits:       regtestBits,
	}
	parentHash := parentHeader.BlockHash()

	var buffer bytes.Buffer
	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("chainsim: serialize AuxPoW: %v", err))
		}
	}
	must(parentCoinbase.SerializeNoWitness(&buffer))
	buffer.Write(parentHash[:])
	writeBranch := func(hashes []chainhash.Hash, index uint32) {
		must(wire.WriteVarInt(&buffer, 0, uint64(len(hashes))))
		for _, hash := range hashes {
			buffer.Write(hash[:])
		}
		buffer.Write(binary.LittleEndian.AppendUint32(nil, index))
	}
	writeBranch([]chainhash.Hash{coinbaseSibling}, 0)
	writeBranch([]chainhash.Hash{chainSibling}, chainIndex)
	must(parentHeader.Serialize(&buffer))
	return buffer.Bytes()
}

// expectedChainIndex is Dogecoin Core's CAuxPow::getExpectedIndex: the slot of the chain
// merkle tree of height treeHeight that a chain's block must take for a nonce, so that one
// parent block cannot commit to two blocks of one chain.
func expectedChainIndex(nonce uint32, chainID uint32, treeHeight uint) uint32 {
	random := nonce
	random = random*1103515245 + 12345
	random += chainID
	random = random*1103515245 + 12345
	return random % (1 << treeHeight)
}

// merkleBranchRoot is Dogecoin Core's CAuxPow::CheckMerkleBranch: the root reached from hash
// by branch, index's bit i saying whether hash is on the right at level i.
func merkleBranchRoot(hash chainhash.Hash, branch []chainhash.Hash, index uint32) chainhash.Hash {
	var pair [2 * chainhash.HashSize]byte
	for _, sibling := range branch {
		if index&1 == 1 {
			copy(pair[:chainhash.HashSize], sibling[:])
			copy(pair[chainhash.HashSize:], hash[:])
		} else {
			copy(pair[:chainhash.HashSize], hash[:])
			copy(pair[chainhash.HashSize:], sibling[:])
		}
		hash = chainhash.DoubleHashH(pair[:])
		index >>= 1
	}
	return hash
}
