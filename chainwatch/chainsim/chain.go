package chainsim

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
)

// Chain parameters and limits.
const (
	// DefaultBlockRewardKoinu is a block's subsidy when Options.BlockRewardKoinu is zero:
	// Dogecoin's 500,000 DOGE of its early blocks, which regtest keeps.
	DefaultBlockRewardKoinu int64 = 500_000 * KoinuPerCoin
	// DefaultFaucetFeeKoinu is the fee of each faucet payment when Options.FaucetFeeKoinu is
	// zero: 0.01 DOGE, Dogecoin Core 1.14's recommended fee for a small transaction.
	DefaultFaucetFeeKoinu int64 = KoinuPerCoin / 100
	// DefaultFeeRateKoinuPerKB is what estimatefee answers until SetFeeRate: 0.01 DOGE/kB.
	DefaultFeeRateKoinuPerKB int64 = KoinuPerCoin / 100
	// KoinuPerCoin is 1 DOGE in koinu.
	KoinuPerCoin int64 = 100_000_000
	// BlockIntervalSeconds is how far each block's time is after its parent's: Dogecoin's
	// one-minute target.
	BlockIntervalSeconds = 60
	// MineBlocksMax bounds one Mine or Reorg call.
	MineBlocksMax = 10_000
	// MempoolTransactionsMax bounds the mempool; sendrawtransaction refuses more.
	MempoolTransactionsMax = 100_000
	// BlockTransactionsMax bounds the transactions of one block, coinbase included, and
	// Options.BlockTransactionsMax.
	BlockTransactionsMax = 20_000
	// TransactionMaxBytes is the largest transaction sendrawtransaction accepts: Dogecoin
	// Core's MAX_STANDARD_TX_SIZE (100 kB).
	TransactionMaxBytes = 100_000
	// CoinbaseMaturityMax bounds Options.CoinbaseMaturityBlocks.
	CoinbaseMaturityMax = 1_000
	// koinuMaxMoney is Dogecoin Core's MAX_MONEY.
	koinuMaxMoney int64 = 10_000_000_000 * KoinuPerCoin
	// regtestBits is the compact target of every block: regtest's minimum difficulty.
	regtestBits = 0x207fffff
	// dogecoinChainID is Dogecoin's AuxPoW chain ID, which every block version carries in its
	// upper 16 bits since AuxPoW started.
	dogecoinChainID = 0x0062
	// blockVersionBase is the version of a block without AuxPoW: BIP65's 4 with Dogecoin's chain
	// ID. A merge-mined block adds dogecoin.VersionAuxPoWFlag (0x00620104, as on mainnet).
	blockVersionBase int32 = dogecoinChainID<<16 | 4
)

// Errors callers branch on.
var (
	// ErrInsufficientFunds: the faucet's spendable coins do not cover a payment and its fee.
	// Mine blocks to fund it.
	ErrInsufficientFunds = errors.New("chainsim: faucet has too few spendable coins")
	// ErrInvalidArgument: an argument the chain refuses (an address that is not P2PKH, a
	// negative amount, a depth beyond the chain).
	ErrInvalidArgument = errors.New("chainsim: invalid argument")
	// ErrUnknownBlock: no block has this hash.
	ErrUnknownBlock = errors.New("chainsim: unknown block")
	// ErrUnknownTransaction: neither the mempool nor the active chain holds this txid.
	ErrUnknownTransaction = errors.New("chainsim: unknown transaction")
)

// Options configures a Chain. The zero value is a regtest chain whose coinbases are
// spendable at once, without AuxPoW, whose blocks take the whole mempool.
type Options struct {
	// Network encodes the faucet's address and the addresses of decoded transactions; the
	// zero value means dogecoin.Regtest. The genesis block is regtest's whatever the network.
	Network dogecoin.Network
	// CoinbaseMaturityBlocks is how many blocks a coinbase output waits before it may be
	// spent (Dogecoin's is 60 on regtest, 240 on mainnet); 0 lets the faucet spend a block's
	// reward in the next transaction.
	CoinbaseMaturityBlocks int
	// BlockRewardKoinu is each block's subsidy, paid to the faucet with the block's fees;
	// 0 means DefaultBlockRewardKoinu.
	BlockRewardKoinu int64
	// FaucetFeeKoinu is the fee of each faucet payment; 0 means DefaultFaucetFeeKoinu.
	FaucetFeeKoinu int64
	// AuxPoW makes every block merge-mined (version bit 0x100 and an AuxPoW proof) unless a
	// MineOptions says otherwise.
	AuxPoW bool
	// BlockTransactionsMax caps the mempool transactions a mined block takes, in mempool
	// order; 0 means all of them (up to BlockTransactionsMax).
	BlockTransactionsMax int
}

// Chain is a simulated Dogecoin node's chain state: every block made (active or stale), the
// active chain, its UTXO set, the mempool and the faucet. All methods are safe for concurrent
// use.
type Chain struct {
	mu sync.Mutex

	options Options
	// faucetKey signs the faucet's payments; faucetScript is the P2PKH script of its
	// compressed public key, which every coinbase pays.
	faucetKey     *btcec.PrivateKey
	faucetScript  []byte
	faucetAddress string

	// blocks holds every block ever made, by hash; blocksMadeCount numbers them in the order
	// made (genesis 0), which breaks ties between chains of equal length like Core's arrival
	// order and keeps coinbases of rival blocks at one height distinct.
	blocks          map[chainhash.Hash]*block
	blocksMadeCount int64
	// active is the active chain: active[h] is the block at height h, active[0] genesis.
	active []*block
	// utxos is the active chain's unspent outputs (genesis's coinbase excluded, as in Core);
	// faucetUTXOs are those among them that pay the faucet.
	utxos       map[wire.OutPoint]*unspentOutput
	faucetUTXOs map[wire.OutPoint]struct{}
	// txLocations finds each transaction of the active chain (getrawtransaction as with
	// -txindex).
	txLocations map[chainhash.Hash]txLocation

	mempool mempool
	// faucetCoins caches the faucet's spendable coins in spending order; nil when something
	// other than a faucet payment changed the chain or mempool.
	faucetCoins []coin

	feeRateKoinuPerKB int64
	// initialBlockDownload is what getblockchaininfo reports (SetInitialBlockDownload).
	initialBlockDownload bool
	// rejections are the answers the next sendrawtransaction calls give, first first.
	rejections []*RejectError

	publisher *publisher
}

// block is one block, on the active chain or not.
type block struct {
	hash   chainhash.Hash
	header wire.BlockHeader
	// auxPoW is the serialized AuxPoW proof, nil for a block without one.
	auxPoW       []byte
	transactions []*wire.MsgTx
	txids        []chainhash.Hash
	height       int64
	parent       *block
	// sequence is the block's number in the order made.
	sequence int64
	// invalid is set by InvalidateBlock (on the block and its descendants) and cleared by
	// ReconsiderBlock; an invalid block never becomes active.
	invalid bool
	// undo holds the outputs the block's transactions spent, in spending order, while the
	// block is on the active chain, to restore them when it leaves.
	undo []spentOutput
}

// unspentOutput is an entry of the UTXO set.
type unspentOutput struct {
	output   *wire.TxOut
	height   int64
	coinbase bool
	// txIndex is the transaction's position in its block, for a deterministic coin order.
	txIndex int
}

type spentOutput struct {
	outpoint wire.OutPoint
	entry    *unspentOutput
}

// txLocation is where a transaction sits on the active chain.
type txLocation struct {
	block *block
	index int
}

// New returns a chain holding the regtest genesis block alone. Mine blocks to fund the
// faucet before paying from it.
func New(options Options) (*Chain, error) {
	if options.Network == (dogecoin.Network{}) {
		options.Network = dogecoin.Regtest
	}
	if options.BlockRewardKoinu == 0 {
		options.BlockRewardKoinu = DefaultBlockRewardKoinu
	}
	if options.FaucetFeeKoinu == 0 {
		options.FaucetFeeKoinu = DefaultFaucetFeeKoinu
	}
	switch {
	case options.CoinbaseMaturityBlocks < 0 || options.CoinbaseMaturityBlocks > CoinbaseMaturityMax:
		return nil, fmt.Errorf("%w: CoinbaseMaturityBlocks %d outside 0..%d", ErrInvalidArgument, options.CoinbaseMaturityBlocks, CoinbaseMaturityMax)
	case options.BlockRewardKoinu < 0 || options.BlockRewardKoinu > koinuMaxMoney:
		return nil, fmt.Errorf("%w: BlockRewardKoinu %d outside 0..%d", ErrInvalidArgument, options.BlockRewardKoinu, koinuMaxMoney)
	case options.FaucetFeeKoinu < 0 || options.FaucetFeeKoinu > KoinuPerCoin*1000:
		return nil, fmt.Errorf("%w: FaucetFeeKoinu %d outside 0..%d", ErrInvalidArgument, options.FaucetFeeKoinu, KoinuPerCoin*1000)
	case options.BlockTransactionsMax < 0 || options.BlockTransactionsMax > BlockTransactionsMax-1:
		return nil, fmt.Errorf("%w: BlockTransactionsMax %d outside 0..%d", ErrInvalidArgument, options.BlockTransactionsMax, BlockTransactionsMax-1)
	}
	faucetKey, _ := btcec.PrivKeyFromBytes(faucetSecret[:])
	faucetPublicKey := faucetKey.PubKey().SerializeCompressed()
	faucetAddress, err := dogecoin.P2PKHAddress(faucetPublicKey, options.Network)
	if err != nil {
		return nil, fmt.Errorf("chainsim: faucet address: %w", err)
	}
	chain := &Chain{
		options:           options,
		faucetKey:         faucetKey,
		faucetScript:      p2pkhScript(hash160(faucetPublicKey)),
		faucetAddress:     faucetAddress,
		blocks:            make(map[chainhash.Hash]*block),
		utxos:             make(map[wire.OutPoint]*unspentOutput),
		faucetUTXOs:       make(map[wire.OutPoint]struct{}),
		txLocations:       make(map[chainhash.Hash]txLocation),
		mempool:           newMempool(),
		feeRateKoinuPerKB: DefaultFeeRateKoinuPerKB,
	}
	genesis, err := parseGenesis()
	if err != nil {
		return nil, err
	}
	chain.blocks[genesis.hash] = genesis
	chain.blocksMadeCount = 1
	chain.active = []*block{genesis}
	// Genesis's coinbase is not spendable (Core never adds it to the UTXO set), but its txid
	// is known to getrawtransaction on a node with -txindex.
	chain.txLocations[genesis.txids[0]] = txLocation{block: genesis, index: 0}
	return chain, nil
}

// parseGenesis decodes the regtest genesis block and checks its hash.
func parseGenesis() (*block, error) {
	raw, err := hex.DecodeString(regtestGenesisBlockHex)
	if err != nil {
		return nil, fmt.Errorf("chainsim: genesis hex: %w", err)
	}
	parsed, err := dogecoin.ParseBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("chainsim: genesis: %w", err)
	}
	if parsed.Hash.String() != RegtestGenesisHash {
		return nil, fmt.Errorf("chainsim: genesis hashes to %s, want %s", parsed.Hash, RegtestGenesisHash)
	}
	genesis := &block{hash: parsed.Hash, header: parsed.Header, transactions: parsed.Transactions}
	for _, transaction := range parsed.Transactions {
		genesis.txids = append(genesis.txids, transaction.TxHash())
	}
	return genesis, nil
}

// Network returns the network the chain encodes addresses for.
func (c *Chain) Network() dogecoin.Network { return c.options.Network }

// GenesisHash returns the genesis block's hash (RegtestGenesisHash).
func (c *Chain) GenesisHash() chainhash.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[0].hash
}

// Height returns the active chain's tip height (0 with genesis alone).
func (c *Chain) Height() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tip().height
}

// TipHash returns the hash of the active chain's tip.
func (c *Chain) TipHash() chainhash.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tip().hash
}

// BlockHash returns the hash of the active chain's block at height.
func (c *Chain) BlockHash(height int64) (chainhash.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if height < 0 || height > c.tip().height {
		return chainhash.Hash{}, fmt.Errorf("%w: height %d outside 0..%d", ErrInvalidArgument, height, c.tip().height)
	}
	return c.active[height].hash, nil
}

// RawBlock returns the serialized block as Dogecoin Core's getblock <hash> false has it: the
// 80-byte header, the AuxPoW proof when the block has one, the transactions.
func (c *Chain) RawBlock(hash chainhash.Hash) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownBlock, hash)
	}
	return b.serialize(), nil
}

// IsActive reports whether the block hash is on the active chain.
func (c *Chain) IsActive(hash chainhash.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[hash]
	return ok && c.onActiveChain(b)
}

func (c *Chain) tip() *block { return c.active[len(c.active)-1] }

func (c *Chain) onActiveChain(b *block) bool {
	return b.height < int64(len(c.active)) && c.active[b.height] == b
}

// serializeHeader is the block's header with its AuxPoW proof when it has one: what Dogecoin
// Core's getblockheader <hash> false answers.
func (b *block) serializeHeader() []byte {
	var buffer bytes.Buffer
	buffer.Grow(dogecoin.BlockHeaderBytes + len(b.auxPoW))
	if err := b.header.Serialize(&buffer); err != nil {
		panic(fmt.Sprintf("chainsim: serialize header: %v", err))
	}
	buffer.Write(b.auxPoW)
	return buffer.Bytes()
}

// serialize is the whole block in Dogecoin's serialization.
func (b *block) serialize() []byte {
	var buffer bytes.Buffer
	buffer.Write(b.serializeHeader())
	if err := wire.WriteVarInt(&buffer, 0, uint64(len(b.transactions))); err != nil {
		panic(fmt.Sprintf("chainsim: serialize block: %v", err))
	}
	for _, transaction := range b.transactions {
		if err := transaction.SerializeNoWitness(&buffer); err != nil {
			panic(fmt.Sprintf("chainsim: serialize transaction: %v", err))
		}
	}
	return buffer.Bytes()
}

// blockTime is the time of a block whose parent has parentTime.
func blockTime(parentTime time.Time) time.Time {
	return parentTime.Add(BlockIntervalSeconds * time.Second)
}
