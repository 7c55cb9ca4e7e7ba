package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gigaledger/gigaledger/client"
	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// Where the run's wallets live on a sharded GigaLedger (issue 14): every wallet ID carries its
// slot (keyspace.SlotOfID) and the cluster's shard count maps the slot to a shard
// (keyspace.ShardOfSlot), so the harness knows each wallet's shard without asking the cluster.
// The transfer scenario uses it to make a chosen share of its transfers cross-shard (--cross),
// and funding issues to the wallets of one shard per transaction.

// WalletPlacement says which shard each wallet index lives on. It is built once after setup
// and read-only afterwards: every client's generator shares it.
type WalletPlacement struct {
	// ShardCount is the cluster's shard count (GET /cluster).
	ShardCount int
	// shardOf is each wallet index's shard.
	shardOf []int
	// byShard lists the wallet indexes of each shard, ascending.
	byShard [][]int
}

// newWalletPlacement places walletIDs (index order) on shardCount shards by the slot each ID
// carries; an ID without a slot is an error (the cluster did not make it).
func newWalletPlacement(walletIDs []string, shardCount int) (*WalletPlacement, error) {
	if shardCount < 1 || shardCount > keyspace.ShardCountMax {
		return nil, fmt.Errorf("shard count %d outside [1, %d]", shardCount, keyspace.ShardCountMax)
	}
	p := &WalletPlacement{ShardCount: shardCount, shardOf: make([]int, len(walletIDs)), byShard: make([][]int, shardCount)}
	for index, id := range walletIDs {
		slot, ok := keyspace.SlotOfID(id)
		if !ok {
			return nil, fmt.Errorf("wallet %q carries no slot", id)
		}
		shard := int(keyspace.ShardOfSlot(slot, shardCount))
		p.shardOf[index] = shard
		p.byShard[shard] = append(p.byShard[shard], index)
	}
	return p, nil
}

// Wallets returns how many wallets are placed.
func (p *WalletPlacement) Wallets() int { return len(p.shardOf) }

// ShardOf returns wallet index's shard.
func (p *WalletPlacement) ShardOf(wallet int) int { return p.shardOf[wallet] }

// canCross reports whether some transfer can cross shards: two shards hold wallets.
func (p *WalletPlacement) canCross() bool {
	populated := 0
	for _, wallets := range p.byShard {
		if len(wallets) > 0 {
			populated++
		}
	}
	return populated >= 2
}

// otherWallet returns a wallet index of from's shard other than from (sameShard), or of any
// other shard (!sameShard), uniformly among them; draw(n) is a uniform draw in [0, n). ok is
// false when there is none.
func (p *WalletPlacement) otherWallet(from int, sameShard bool, draw func(int) int) (int, bool) {
	home := p.shardOf[from]
	if sameShard {
		peers := p.byShard[home]
		if len(peers) < 2 {
			return 0, false
		}
		// A draw over the peers but one, shifted past from's own position.
		k := draw(len(peers) - 1)
		if position, _ := slices.BinarySearch(peers, from); k >= position {
			k++
		}
		return peers[k], true
	}
	others := len(p.shardOf) - len(p.byShard[home])
	if others == 0 {
		return 0, false
	}
	k := draw(others)
	for shard, wallets := range p.byShard {
		if shard == home {
			continue
		}
		if k < len(wallets) {
			return wallets[k], true
		}
		k -= len(wallets)
	}
	return 0, false // unreachable: k < others
}

// fundingOrder lists every wallet index grouped by shard (shards in order, indexes ascending),
// so that funding transactions cut from it stay on one shard each.
func (p *WalletPlacement) fundingOrder() []int {
	order := make([]int, 0, len(p.shardOf))
	for _, wallets := range p.byShard {
		order = append(order, wallets...)
	}
	return order
}

// clusterShardCount reads the shard count from a node's GET /cluster answer.
func clusterShardCount(status json.RawMessage) (int, error) {
	var shape struct {
		ShardCount int `json:"shardCount"`
	}
	if err := json.Unmarshal(status, &shape); err != nil {
		return 0, fmt.Errorf("GET /cluster: %w", err)
	}
	if shape.ShardCount < 1 {
		return 0, fmt.Errorf("GET /cluster: no shardCount")
	}
	return shape.ShardCount, nil
}

// discoverPlacement asks the cluster its shard count and places the run's wallets. A node
// without GET /cluster (404: an old build, a stand-in for the API) leaves the placement
// unknown (nil): transfers then pick uniform pairs and --cross is refused.
func (d *httpDriver) discoverPlacement(ctx context.Context) (*WalletPlacement, error) {
	status, err := d.pick(d.setupClients).ClusterStatus(ctx)
	var answer *client.Error
	if errors.As(err, &answer) && answer.StatusCode == http.StatusNotFound {
		return nil, nil // an unknown placement is an answer, see above
	}
	if err != nil {
		return nil, fmt.Errorf("read the shard count: %w", err)
	}
	shardCount, err := clusterShardCount(status)
	if err != nil {
		return nil, err
	}
	return newWalletPlacement(d.walletIDs, shardCount)
}

// formatShare prints a cross-shard share as a percentage ("10%"), nil as "uniform".
func formatShare(share *float64) string {
	if share == nil {
		return "uniform"
	}
	return strconv.FormatFloat(*share*100, 'f', -1, 64) + "%"
}
