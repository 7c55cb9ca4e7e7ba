package dogecoin

// Raw blocks as dogecoind's `getblock <hash> false` returns them: an 80-byte header, the AuxPoW
// proof when the block was merge-mined, then the transactions. The chain follower decodes every
// block it follows with ParseBlock; nothing here checks proof of work or scripts, because the
// follower trusts its own node for consensus and only needs to read what the block contains.

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Block decoding limits and constants.
const (
	// BlockHeaderBytes is the size of a serialized block header, Dogecoin's and its parent's.
	BlockHeaderBytes = 80
	// VersionAuxPoWFlag is the bit of a header's version that says an AuxPoW proof follows the
	// header (Dogecoin Core's CPureBlockHeader::VERSION_AUXPOW, 1 << 8).
	VersionAuxPoWFlag int32 = 1 << 8
	// MerkleBranchMaxHashes bounds each merkle branch of an AuxPoW proof. Dogecoin Core refuses a
	// chain merkle branch longer than 30 hashes; a coinbase branch of 32 hashes proves a parent
	// block of 2^32 transactions, more than any block can hold.
	MerkleBranchMaxHashes = 32
	// BlockMaxBytes bounds the raw block ParseBlock decodes. Dogecoin's consensus limit is 1 MB
	// (litecoind's regtest blocks with witness data stay within 4 MB); 32 MB is btcd's whole
	// message limit and keeps any allocation bounded.
	BlockMaxBytes = wire.MaxMessagePayload
	// transactionMinBytes is the smallest serialized transaction: version, one-byte input and
	// output counts, lock time. It bounds the transaction count a block's bytes can hold.
	transactionMinBytes = 4 + 1 + 1 + 4
	// koinuMaxMoney is Dogecoin Core's MAX_MONEY (10 billion DOGE in koinu): no output can carry
	// more, and one that claims to is corruption, not a payment.
	koinuMaxMoney int64 = 10_000_000_000 * 100_000_000
)

// ErrInvalidBlock: bytes that are not a block ParseBlock can read. The wrapping error says
// which part failed and at which byte offset.
var ErrInvalidBlock = errors.New("invalid Dogecoin block")

// Block is a decoded block.
type Block struct {
	// Hash is the block's hash: double SHA-256 of the 80-byte header alone (the AuxPoW proof is
	// not hashed; scrypt is Dogecoin's proof-of-work hash, not its block hash).
	Hash chainhash.Hash
	// Header is the block's own 80-byte header.
	Header wire.BlockHeader
	// AuxPoW is the merged-mining proof, nil when the header's version lacks VersionAuxPoWFlag.
	AuxPoW *AuxPoW
	// Transactions are the block's transactions, the coinbase first. A transaction with witness
	// data (BIP144, as litecoind's regtest blocks carry) keeps it in its TxIn.Witness.
	Transactions []*wire.MsgTx
}

// AuxPoW is the proof that a parent chain's block (Litecoin's, for Dogecoin) committed to this
// block's hash: Dogecoin Core's CAuxPow, in its serialization order.
type AuxPoW struct {
	// CoinbaseTransaction is the parent block's coinbase, whose script carries the commitment.
	CoinbaseTransaction *wire.MsgTx
	// ParentHash is the serialized hashBlock field. Dogecoin Core does not check it; miners
	// usually put the parent's hash there, but it is only data.
	ParentHash chainhash.Hash
	// CoinbaseBranch links the coinbase to the parent header's merkle root.
	CoinbaseBranch MerkleBranch
	// ChainBranch links this block's hash to the merged-mining root in the coinbase.
	ChainBranch MerkleBranch
	// ParentHeader is the parent chain's 80-byte header, whose scrypt hash is the proof of work.
	ParentHeader wire.BlockHeader
}

// MerkleBranch is a merkle path: the sibling hashes from a leaf up to the root, and the leaf's
// index, whose bit i says whether the leaf's side at level i is the right one.
type MerkleBranch struct {
	Hashes []chainhash.Hash
	Index  int32
}

// HasAuxPoW reports whether a header's version announces an AuxPoW proof after the header.
func HasAuxPoW(version int32) bool {
	return version&VersionAuxPoWFlag != 0
}

// ParseBlock decodes a raw block: the header, the AuxPoW proof when the version announces one,
// then the transactions (legacy or BIP144 witness serialization). It is strict: counts must fit
// the bytes that remain, merkle branches hold at most MerkleBranchMaxHashes hashes, the
// transactions' merkle root must be the header's, no output may carry a negative value or more
// than Dogecoin's MAX_MONEY, and no byte may follow the last transaction. Every failure wraps
// ErrInvalidBlock; no input makes it panic.
func ParseBlock(raw []byte) (*Block, error) {
	if len(raw) > BlockMaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidBlock, len(raw), BlockMaxBytes)
	}
	reader := bytes.NewReader(raw)
	at := func() int { return len(raw) - reader.Len() }

	block := &Block{}
	if err := readHeader(reader, &block.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidBlock, err)
	}
	block.Hash = block.Header.BlockHash()

	if HasAuxPoW(block.Header.Version) {
		auxPoW, err := readAuxPoW(reader)
		if err != nil {
			return nil, fmt.Errorf("%w: AuxPoW (read up to byte %d): %v", ErrInvalidBlock, at(), err)
		}
		block.AuxPoW = auxPoW
	}

	transactions, err := readTransactions(reader)
	if err != nil {
		return nil, fmt.Errorf("%w: transactions (read up to byte %d): %v", ErrInvalidBlock, at(), err)
	}
	block.Transactions = transactions
	if reader.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last transaction", ErrInvalidBlock, reader.Len())
	}
	if root := merkleRoot(transactions); root != block.Header.MerkleRoot {
		return nil, fmt.Errorf("%w: transactions' merkle root %s, header says %s",
			ErrInvalidBlock, root, block.Header.MerkleRoot)
	}
	return block, nil
}

// readHeader reads an 80-byte header, refusing a short one.
func readHeader(reader *bytes.Reader, header *wire.BlockHeader) error {
	if reader.Len() < BlockHeaderBytes {
		return fmt.Errorf("%d bytes left, want %d", reader.Len(), BlockHeaderBytes)
	}
	return header.Deserialize(reader)
}

// readAuxPoW reads a CAuxPow: the parent coinbase, hashBlock, the coinbase branch, the chain
// branch and the parent header.
func readAuxPoW(reader *bytes.Reader) (*AuxPoW, error) {
	auxPoW := &AuxPoW{}
	coinbase, err := readTransaction(reader)
	if err != nil {
		return nil, fmt.Errorf("parent coinbase: %w", err)
	}
	auxPoW.CoinbaseTransaction = coinbase
	if _, err := io.ReadFull(reader, auxPoW.ParentHash[:]); err != nil {
		return nil, fmt.Errorf("parent hash: %w", err)
	}
	if auxPoW.CoinbaseBranch, err = readMerkleBranch(reader); err != nil {
		return nil, fmt.Errorf("coinbase merkle branch: %w", err)
	}
	if auxPoW.ChainBranch, err = readMerkleBranch(reader); err != nil {
		return nil, fmt.Errorf("chain merkle branch: %w", err)
	}
	if err := readHeader(reader, &auxPoW.ParentHeader); err != nil {
		return nil, fmt.Errorf("parent header: %w", err)
	}
	return auxPoW, nil
}

// readMerkleBranch reads a compact-size count, that many 32-byte hashes and a little-endian
// int32 index.
func readMerkleBranch(reader *bytes.Reader) (MerkleBranch, error) {
	count, err := wire.ReadVarInt(reader, wire.ProtocolVersion)
	if err != nil {
		return MerkleBranch{}, fmt.Errorf("hash count: %w", err)
	}
	if count > MerkleBranchMaxHashes {
		return MerkleBranch{}, fmt.Errorf("%d hashes, at most %d", count, MerkleBranchMaxHashes)
	}
	branch := MerkleBranch{Hashes: make([]chainhash.Hash, count)}
	for i := range branch.Hashes {
		if _, err := io.ReadFull(reader, branch.Hashes[i][:]); err != nil {
			return MerkleBranch{}, fmt.Errorf("hash %d: %w", i, err)
		}
	}
	var index [4]byte
	if _, err := io.ReadFull(reader, index[:]); err != nil {
		return MerkleBranch{}, fmt.Errorf("index: %w", err)
	}
	branch.Index = int32(uint32(index[0]) | uint32(index[1])<<8 | uint32(index[2])<<16 | uint32(index[3])<<24)
	return branch, nil
}

// readTransactions reads the transaction count and the transactions. A block holds at least its
// coinbase, and no more transactions than its remaining bytes can hold.
func readTransactions(reader *bytes.Reader) ([]*wire.MsgTx, error) {
	count, err := wire.ReadVarInt(reader, wire.ProtocolVersion)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	if count == 0 {
		return nil, errors.New("no transactions; a block holds at least its coinbase")
	}
	if maxCount := uint64(reader.Len() / transactionMinBytes); count > maxCount {
		return nil, fmt.Errorf("%d transactions, but %d bytes hold at most %d", count, reader.Len(), maxCount)
	}
	transactions := make([]*wire.MsgTx, count)
	for i := range transactions {
		if transactions[i], err = readTransaction(reader); err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
	}
	return transactions, nil
}

// readTransaction reads one transaction, legacy or BIP144, and refuses output values outside
// [0, MAX_MONEY].
func readTransaction(reader *bytes.Reader) (*wire.MsgTx, error) {
	transaction := &wire.MsgTx{}
	if err := transaction.BtcDecode(reader, wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
		return nil, err
	}
	for i, output := range transaction.TxOut {
		if output.Value < 0 || output.Value > koinuMaxMoney {
			return nil, fmt.Errorf("output %d: value %d koinu outside [0, %d]", i, output.Value, koinuMaxMoney)
		}
	}
	return transaction, nil
}

// merkleRoot is the merkle root of the transactions' IDs (witness data excluded, as BIP141
// keeps it), Bitcoin's tree: an odd level repeats its last hash.
func merkleRoot(transactions []*wire.MsgTx) chainhash.Hash {
	if len(transactions) == 0 {
		return chainhash.Hash{}
	}
	level := make([]chainhash.Hash, len(transactions))
	for i, transaction := range transactions {
		level[i] = transaction.TxHash()
	}
	var pair [2 * chainhash.HashSize]byte
	for len(level) > 1 {
		next := make([]chainhash.Hash, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			right := level[i]
			if i+1 < len(level) {
				right = level[i+1]
			}
			copy(pair[:chainhash.HashSize], level[i][:])
			copy(pair[chainhash.HashSize:], right[:])
			next = append(next, chainhash.DoubleHashH(pair[:]))
		}
		level = next
	}
	return level[0]
}
