// Package chainwatch follows a Dogecoin node for the shards this node leads: it reads blocks and
// the mempool over JSON-RPC (woken by ZMQ when the node publishes, polling otherwise), keeps
// what touches each shard's addresses and outputs, and proposes it to the shard as
// fsm/gigawallet chain commands. Everything the replicas apply comes from those commands; the
// follower only decides what to propose, so a new leader resumes from the replicated cursor.
package chainwatch

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/gigaledger/gigaledger/chainwatch/dogecoin"
	"github.com/gigaledger/gigaledger/chainwatch/rpc"
	"github.com/gigaledger/gigaledger/fsm"
	"github.com/gigaledger/gigaledger/fsm/gigawallet"
)

// Node is the part of the node's JSON-RPC the follower uses (chainwatch/rpc.Client).
type Node interface {
	GetBlockHash(ctx context.Context, height int64) (string, error)
	GetBestBlockHash(ctx context.Context) (string, error)
	GetBlockHeader(ctx context.Context, hash string) (rpc.BlockHeader, error)
	GetBlockHex(ctx context.Context, hash string) (string, error)
	GetBlockchainInfo(ctx context.Context) (rpc.BlockchainInfo, error)
	GetRawMempool(ctx context.Context) ([]string, error)
	GetRawTransactionHex(ctx context.Context, txid string) (string, error)
	SendRawTransaction(ctx context.Context, rawHex string) (string, error)
	EstimateFee(ctx context.Context, blocks int) (rpc.Amount, error)
}

// Shard is one shard as the follower sees it: the local replica's reads and the shard's log.
type Shard interface {
	// Reader reads the local replica (the follower runs on the leader, whose replica has
	// applied everything the follower proposed before).
	Reader() *gigawallet.Reader
	// AppliedIndex is the local replica's last applied log index.
	AppliedIndex() uint64
	// Propose proposes a chain command to the shard and returns its result.
	Propose(ctx context.Context, cmd fsm.Command) (*fsm.Result, error)
}

// Config is what a follower needs besides the node and the shard.
type Config struct {
	Network dogecoin.Network
	// StartHeight is the first block a shard that has observed nothing reads; negative means
	// GigaWallet's default, 100 blocks below the node's tip.
	StartHeight int64
	// PollInterval is how often the follower asks the node for news when no notification
	// woke it (ZMQ absent or silent); zero means DefaultPollInterval.
	PollInterval time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics
	// Keys signs auto-payouts (the cluster's wallet seed, in memory); nil: no auto-payouts.
	Keys *dogecoin.Keychain
	// PayoutConfirmations is the N of auto-payouts (the configured confirmations-needed).
	PayoutConfirmations int32
	// PaytxUnseenMax is how long a paytx payout may stay unseen before it is voided; zero
	// means DefaultPaytxUnseenMax.
	PaytxUnseenMax time.Duration
	// RequestSendGrace is how long a payout an API request reserved is left to that request to
	// send before the follower sends it; zero means DefaultRequestSendGrace, negative none.
	RequestSendGrace time.Duration
}

// DefaultPollInterval is the polling period without ZMQ.
const DefaultPollInterval = time.Second

// defaultStartDepth is how far below the tip a shard's first block is (GigaWallet's).
const defaultStartDepth = 100

// proposeRetries bounds the retries of one observation refused for a reason that another read
// cures (StaleFilter, ChainBusy).
const proposeRetries = 20

// mempoolBatchMax bounds the transactions of one mempool observation.
const mempoolBatchMax = 1000

// Follower follows the node for one shard while this node leads it.
type Follower struct {
	cfg     Config
	node    Node
	shard   Shard
	shardID int
	cache   *blockCache
	// seen holds the mempool transactions already proposed (or found not to touch the shard)
	// since this follower started: a new leader looks at the whole mempool once.
	seen map[string]bool
	// refusedAt holds when this follower's send of a payout was first refused, by txid: a
	// payout is released only when the node still refuses it a send grace later (broadcastUnmined).
	refusedAt map[string]time.Time
}

// NewFollower returns a follower of one shard.
func NewFollower(cfg Config, node Node, shardID int, shard Shard, cache *blockCache) *Follower {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cache == nil {
		cache = newBlockCache(blockCacheSize)
	}
	return &Follower{cfg: cfg, node: node, shard: shard, shardID: shardID, cache: cache, seen: map[string]bool{},
		refusedAt: map[string]time.Time{}}
}

// ErrWrongChain: the node follows another network or chain than the shard recorded, or than
// the configured network. The follower stops: a misconfiguration, not a transient failure.
var ErrWrongChain = errors.New("chainwatch: the node follows another chain")

// Run follows until ctx ends or the chain is wrong. wake delivers the node's notifications
// (nil: poll only).
func (f *Follower) Run(ctx context.Context, wake <-chan struct{}) error {
	for {
		err := f.Sync(ctx)
		switch {
		case errors.Is(err, ErrWrongChain):
			f.cfg.Logger.Error("chain follower stopped", "shard", f.shardID, "err", err)
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			f.cfg.Metrics.error(f.shardID)
			f.cfg.Logger.Warn("chain follower: sync failed; trying again", "shard", f.shardID, "err", err)
		}
		timer := time.NewTimer(f.cfg.PollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Sync brings the shard up to the node's tip: reorgs walked back, blocks observed one by one,
// then the mempool's new transactions, then the unmined transactions the node dropped, then the
// auto-payouts due, then the payouts the node does not have (sent, sent again, or released when
// it refuses them).
func (f *Follower) Sync(ctx context.Context) error {
	genesis, err := f.checkChain(ctx)
	if err != nil {
		return err
	}
	for {
		advanced, err := f.step(ctx, genesis)
		if err != nil {
			return err
		}
		if !advanced {
			break
		}
	}
	if err := f.syncMempool(ctx, genesis); err != nil {
		return err
	}
	if err := f.dropGone(ctx); err != nil {
		return err
	}
	if err := f.autoPayouts(ctx); err != nil {
		return err
	}
	return f.broadcastUnmined(ctx, f.node)
}

// checkChain compares the node's network and genesis with the configuration and the shard's
// cursor.
func (f *Follower) checkChain(ctx context.Context) (gigawallet.Hash, error) {
	info, err := f.node.GetBlockchainInfo(ctx)
	if err != nil {
		return gigawallet.Hash{}, err
	}
	if want := nodeChainName(f.cfg.Network); info.Chain != want {
		return gigawallet.Hash{}, fmt.Errorf("%w: the node is on %q, the configuration says %s", ErrWrongChain, info.Chain, f.cfg.Network.Name)
	}
	if info.InitialBlockDownload {
		return gigawallet.Hash{}, fmt.Errorf("chainwatch: the node is still in its initial block download")
	}
	text, err := f.node.GetBlockHash(ctx, 0)
	if err != nil {
		return gigawallet.Hash{}, err
	}
	genesis, err := gigawallet.ParseHash(text)
	if err != nil {
		return gigawallet.Hash{}, err
	}
	cursor, err := f.shard.Reader().ChainCursor()
	if err != nil {
		return gigawallet.Hash{}, err
	}
	if cursor.Network != "" && (cursor.Network != f.cfg.Network.Name || cursor.Genesis != genesis) {
		return gigawallet.Hash{}, fmt.Errorf("%w: the shard followed %s (genesis %s); the node is on %s (genesis %s)",
			ErrWrongChain, cursor.Network, cursor.Genesis, f.cfg.Network.Name, genesis)
	}
	return genesis, nil
}

// nodeChainName is getblockchaininfo's name of a network.
func nodeChainName(n dogecoin.Network) string {
	switch n {
	case dogecoin.Mainnet:
		return "main"
	case dogecoin.Testnet:
		return "test"
	}
	return "regtest"
}

// step observes the next block, or walks a reorg back; false when the shard is at the tip.
func (f *Follower) step(ctx context.Context, genesis gigawallet.Hash) (bool, error) {
	cursor, err := f.shard.Reader().ChainCursor()
	if err != nil {
		return false, err
	}
	var next string
	if cursor.Hash == (gigawallet.Hash{}) {
		next, err = f.startHash(ctx)
		if err != nil {
			return false, err
		}
	} else {
		header, err := f.node.GetBlockHeader(ctx, cursor.Hash.String())
		if err != nil {
			return false, err
		}
		if header.Confirmations < 0 {
			return true, f.rewind(ctx, header)
		}
		if header.NextBlockHash == "" {
			f.cfg.Metrics.setHeight(f.shardID, cursor.Height)
			return false, nil
		}
		next = header.NextBlockHash
	}
	block, height, err := f.block(ctx, next)
	if err != nil {
		return false, err
	}
	hash, _ := gigawallet.ParseHash(next)
	prev := gigawallet.Hash(block.Header.PrevBlock)
	err = f.propose(ctx, func() (fsm.Command, error) {
		c := &gigawallet.ObserveChain{Network: f.cfg.Network.Name, Genesis: genesis, Height: height, Hash: hash, PrevHash: prev}
		return c, f.filter(c, block.Transactions)
	})
	if err != nil {
		return false, err
	}
	f.cfg.Metrics.observed(f.shardID, "block", height)
	return true, nil
}

// startHash is the first block of a shard that observed nothing.
func (f *Follower) startHash(ctx context.Context) (string, error) {
	start := f.cfg.StartHeight
	if start < 0 {
		tip, err := f.node.GetBlockchainInfo(ctx)
		if err != nil {
			return "", err
		}
		start = max(tip.Blocks-defaultStartDepth, 1)
	}
	return f.node.GetBlockHash(ctx, max(start, 1))
}

// rewind walks back from a block the node no longer has on its active chain to the first one it
// has, and rewinds the shard to it.
func (f *Follower) rewind(ctx context.Context, header rpc.BlockHeader) error {
	for header.Confirmations < 0 {
		if header.PreviousBlockHash == "" {
			return fmt.Errorf("%w: walked back to a genesis the node does not have", ErrWrongChain)
		}
		var err error
		if header, err = f.node.GetBlockHeader(ctx, header.PreviousBlockHash); err != nil {
			return err
		}
	}
	hash, err := gigawallet.ParseHash(header.Hash)
	if err != nil {
		return err
	}
	f.cfg.Logger.Info("chain reorg: rewinding", "shard", f.shardID, "to_height", header.Height, "to_hash", header.Hash)
	err = f.propose(ctx, func() (fsm.Command, error) {
		return &gigawallet.RewindChain{Height: header.Height, Hash: hash}, nil
	})
	if err == nil {
		f.cfg.Metrics.reorg(f.shardID)
	}
	return err
}

// ErrStaleCursor: the shard's cursor is on a block the node has left (a reorg its follower has
// not walked back yet). A rescan must wait: the active chain's block at the rescan height may
// not be an ancestor of the cursor, and rewinding to it would keep the stale blocks between the
// fork and that height as if mined.
var ErrStaleCursor = errors.New("chainwatch: the shard's cursor is on a block the node has left; its follower rewinds it first")

// CheckCursorActive returns ErrStaleCursor when the cursor of the shard that reader reads is on
// a block that is not on the node's active chain. (A reorg between this check and a rewind's
// apply is not caught: only the state machine could, by checking the cursor the rewind expects.)
func CheckCursorActive(ctx context.Context, node Node, reader *gigawallet.Reader) error {
	cursor, err := reader.ChainCursor()
	if err != nil || cursor.Hash == (gigawallet.Hash{}) {
		return err
	}
	header, err := node.GetBlockHeader(ctx, cursor.Hash.String())
	if err != nil {
		return err
	}
	if header.Confirmations < 0 {
		return fmt.Errorf("%w (block %d, %s)", ErrStaleCursor, cursor.Height, cursor.Hash)
	}
	return nil
}

// RewindTo rewinds the shard to the active chain's block at height (a rescan: blocks above it
// are observed again). It refuses with ErrStaleCursor while the shard is on a stale fork.
func (f *Follower) RewindTo(ctx context.Context, height int64) error {
	if err := CheckCursorActive(ctx, f.node, f.shard.Reader()); err != nil {
		return err
	}
	text, err := f.node.GetBlockHash(ctx, height)
	if err != nil {
		return err
	}
	hash, err := gigawallet.ParseHash(text)
	if err != nil {
		return err
	}
	return f.propose(ctx, func() (fsm.Command, error) {
		return &gigawallet.RewindChain{Height: height, Hash: hash}, nil
	})
}

// block fetches and parses a block (shared between the shards' followers), with its height.
func (f *Follower) block(ctx context.Context, hash string) (*dogecoin.Block, int64, error) {
	if b, height, ok := f.cache.get(hash); ok {
		return b, height, nil
	}
	header, err := f.node.GetBlockHeader(ctx, hash)
	if err != nil {
		return nil, 0, err
	}
	text, err := f.node.GetBlockHex(ctx, hash)
	if err != nil {
		return nil, 0, err
	}
	raw, err := hex.DecodeString(text)
	if err != nil {
		return nil, 0, fmt.Errorf("chainwatch: block %s is not hex: %w", hash, err)
	}
	b, err := dogecoin.ParseBlock(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("chainwatch: block %s: %w", hash, err)
	}
	if b.Hash.String() != hash {
		return nil, 0, fmt.Errorf("chainwatch: the node answered block %s for %s", b.Hash, hash)
	}
	f.cache.put(hash, b, header.Height)
	return b, header.Height, nil
}

// filter fills an observation with the transactions that touch the shard, filtered against the
// local replica at its applied index, and the tags of every P2PKH output.
func (f *Follower) filter(c *gigawallet.ObserveChain, txs []*wire.MsgTx) error {
	c.FilterIndex = f.shard.AppliedIndex()
	c.Tags, c.Txs = c.Tags[:0], c.Txs[:0]
	reader := f.shard.Reader()
	// created holds the shard's outputs made by the transactions before this one: a
	// transaction that spends one (a chain of unmined transactions in one mempool read, or a
	// payment and its spend in one block) spends the shard's output although the store has
	// not recorded that output yet. Parents come first: a block's order is topological, and
	// getrawmempool lists by ancestor count (Core's depth-and-score order).
	created := map[gigawallet.Outpoint]bool{}
	for _, tx := range txs {
		observed := gigawallet.ObservedTx{TxID: gigawallet.Hash(tx.TxHash())}
		for _, out := range dogecoin.P2PKHOutputs(tx, f.cfg.Network) {
			if out.ValueKoinu <= 0 {
				continue
			}
			c.Tags = append(c.Tags, gigawallet.AddressTag(out.Address))
			watched, err := reader.Watches(out.Address)
			if err != nil {
				return err
			}
			if watched {
				observed.Outputs = append(observed.Outputs, gigawallet.ObservedOutput{Vout: out.Index, Address: out.Address, Koinu: uint64(out.ValueKoinu)})
				created[gigawallet.Outpoint{TxID: observed.TxID, Vout: out.Index}] = true
			}
		}
		for _, in := range tx.TxIn {
			prev := in.PreviousOutPoint
			if prev.Index == wire.MaxPrevOutIndex && prev.Hash == (wire.OutPoint{}).Hash {
				continue // coinbase
			}
			op := gigawallet.Outpoint{TxID: gigawallet.Hash(prev.Hash), Vout: prev.Index}
			if created[op] {
				observed.Spends = append(observed.Spends, op)
				continue
			}
			u, err := reader.UTXO(op)
			if err != nil {
				return err
			}
			if u != nil {
				observed.Spends = append(observed.Spends, op)
			}
		}
		if len(observed.Outputs) > 0 || len(observed.Spends) > 0 {
			c.Txs = append(c.Txs, observed)
		}
	}
	slices.Sort(c.Tags)
	c.Tags = slices.Compact(c.Tags)
	return nil
}

// propose proposes the command build makes, building it again after a refusal that a fresh read
// cures.
func (f *Follower) propose(ctx context.Context, build func() (fsm.Command, error)) error {
	for attempt := 0; ; attempt++ {
		cmd, err := build()
		if err != nil {
			return err
		}
		result, err := f.shard.Propose(ctx, cmd)
		if err != nil {
			return err
		}
		if result.Err == nil {
			return nil
		}
		switch result.Err.Code {
		case gigawallet.CodeStaleFilter, gigawallet.CodeChainBusy:
			if attempt < proposeRetries {
				continue
			}
		case gigawallet.CodeWrongChain:
			return fmt.Errorf("%w: %v", ErrWrongChain, result.Err)
		}
		return fmt.Errorf("chainwatch: shard %d refused %T: %w", f.shardID, cmd, result.Err)
	}
}

// syncMempool observes the mempool's transactions this follower has not looked at yet. A
// transaction the node evicts before it is looked at is never proposed: a mempool observation is
// the early notice, the block the exact one.
func (f *Follower) syncMempool(ctx context.Context, genesis gigawallet.Hash) error {
	cursor, err := f.shard.Reader().ChainCursor()
	if err != nil || cursor.Hash == (gigawallet.Hash{}) {
		return err
	}
	txids, err := f.node.GetRawMempool(ctx)
	if err != nil {
		return err
	}
	inPool := make(map[string]bool, len(txids))
	var fresh []*wire.MsgTx
	var freshIDs []string
	for _, id := range txids {
		inPool[id] = true
		if f.seen[id] {
			continue
		}
		text, err := f.node.GetRawTransactionHex(ctx, id)
		if err != nil {
			var nodeErr *rpc.Error
			if errors.As(err, &nodeErr) {
				f.seen[id] = true // left the mempool meanwhile: its block will tell
				continue
			}
			return err
		}
		raw, err := hex.DecodeString(text)
		if err != nil {
			return fmt.Errorf("chainwatch: transaction %s is not hex", id)
		}
		tx := wire.NewMsgTx(wire.TxVersion)
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			f.seen[id] = true
			f.cfg.Logger.Warn("chainwatch: mempool transaction does not decode; its block will tell", "txid", id, "err", err)
			continue
		}
		fresh, freshIDs = append(fresh, tx), append(freshIDs, id)
		if len(fresh) == mempoolBatchMax {
			if err := f.observeMempool(ctx, genesis, fresh, freshIDs); err != nil {
				return err
			}
			fresh, freshIDs = fresh[:0], freshIDs[:0]
		}
	}
	if len(fresh) > 0 {
		if err := f.observeMempool(ctx, genesis, fresh, freshIDs); err != nil {
			return err
		}
	}
	for id := range f.seen {
		if !inPool[id] {
			delete(f.seen, id)
		}
	}
	return nil
}

func (f *Follower) observeMempool(ctx context.Context, genesis gigawallet.Hash, txs []*wire.MsgTx, ids []string) error {
	build := func() (fsm.Command, error) {
		c := &gigawallet.ObserveChain{Network: f.cfg.Network.Name, Genesis: genesis}
		return c, f.filter(c, txs)
	}
	first, err := build()
	if err != nil {
		return err
	}
	// Nothing for this shard: no command. A payment to an address registered while filtering
	// is found in its block, where the tags catch the race.
	if len(first.(*gigawallet.ObserveChain).Txs) > 0 {
		if err := f.propose(ctx, build); err != nil {
			return err
		}
		f.cfg.Metrics.observed(f.shardID, "mempool", 0)
	}
	for _, id := range ids {
		f.seen[id] = true
	}
	return nil
}

// dropGone drops the shard's unmined transactions the node no longer has in its mempool, once
// the shard is at the node's tip (a transaction missing from the mempool but in a block the
// shard has not observed yet is not dropped).
func (f *Follower) dropGone(ctx context.Context) error {
	pending, err := f.shard.Reader().PendingTransactions(gigawallet.Hash{}, mempoolBatchMax)
	if err != nil || len(pending) == 0 {
		return err
	}
	pool, err := f.node.GetRawMempool(ctx)
	if err != nil {
		return err
	}
	inPool := make(map[string]bool, len(pool))
	for _, id := range pool {
		inPool[id] = true
	}
	var gone []gigawallet.Hash
	for _, h := range pending {
		if !inPool[h.String()] {
			gone = append(gone, h)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	cursor, err := f.shard.Reader().ChainCursor()
	if err != nil {
		return err
	}
	best, err := f.node.GetBestBlockHash(ctx)
	if err != nil || best != cursor.Hash.String() {
		return err // a block arrived meanwhile: the next sync sees it first
	}
	f.cfg.Logger.Info("chainwatch: dropping transactions the node no longer has", "shard", f.shardID, "count", len(gone))
	return f.propose(ctx, func() (fsm.Command, error) {
		return &gigawallet.DropTransactions{TxIDs: gone}, nil
	})
}

// blockCache keeps recently parsed blocks, so the followers of several shards fetch a block
// from the node once.
type blockCache struct {
	mu      sync.Mutex
	size    int
	order   []string
	entries map[string]cachedBlock
}

type cachedBlock struct {
	block  *dogecoin.Block
	height int64
}

const blockCacheSize = 16

func newBlockCache(size int) *blockCache {
	return &blockCache{size: size, entries: map[string]cachedBlock{}}
}

func (c *blockCache) get(hash string) (*dogecoin.Block, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	return e.block, e.height, ok
}

func (c *blockCache) put(hash string, b *dogecoin.Block, height int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[hash]; ok {
		return
	}
	if len(c.order) == c.size {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, hash)
	c.entries[hash] = cachedBlock{b, height}
}
