package fsm

import (
	"log/slog"

	"github.com/cockroachdb/pebble"
)

// BlockCache is a block cache that the stores of several machines share (OpenWithCache). A node
// opens every shard replica it hosts with one, so that cached blocks are one memory budget for
// the node. Each Open without one makes a cache of storeCacheBytes for its replica alone: a
// node hosting N replicas could then hold N times that, which a memory limit sized for one
// would not survive once reads have filled them.
type BlockCache struct{ cache *pebble.Cache }

// DefaultBlockCacheBytes is what a node's shared block cache holds by default: what one
// replica's own cache holds.
const DefaultBlockCacheBytes = storeCacheBytes

// NewBlockCache makes a block cache of the given size.
func NewBlockCache(bytes int64) *BlockCache { return &BlockCache{cache: pebble.NewCache(bytes)} }

// Release drops the creator's hold on the cache; stores still open on it keep it until they
// close.
func (c *BlockCache) Release() { c.cache.Unref() }

// OpenWithCache is Open with the stores' blocks cached in cache, which other machines may
// share.
func OpenWithCache(dir string, logger *slog.Logger, reg *Registry, cache *BlockCache) (*Machine, error) {
	return open(dir, logger, reg, false, cache.cache)
}
