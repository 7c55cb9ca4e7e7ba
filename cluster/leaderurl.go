package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Limits of the API URL directory.
const (
	// apiURLFetchTimeout bounds one node-info request for a peer's API URL.
	apiURLFetchTimeout = time.Second
	// apiURLRefreshInterval is how old a peer's known URL may grow before it is asked again
	// (in the background; the known URL is still used meanwhile): a node restarted with
	// another --api-url is named correctly again within this time.
	apiURLRefreshInterval = 30 * time.Second
	// apiURLRetryInterval is the pause after a failed fetch before that node is asked again.
	apiURLRetryInterval = time.Second
)

// apiURLDirectory maps node IDs to the admin API base URLs the nodes advertise themselves
// (Config.APIURL), learned by asking each node for its node info over the cluster port: a URL
// comes only from the node it names, never from a guess (an address bound to 0.0.0.0 is not
// one a client can dial). Lookups never block: an unknown node is fetched in the background,
// at most one fetch per node at a time, and answers "" until its node has said.
type apiURLDirectory struct {
	mu      sync.Mutex
	entries map[string]*apiURLEntry
}

// apiURLEntry is what one node said, at which raft address, and when.
type apiURLEntry struct {
	raftAddr  string // the address the answer came from; another address is another answer
	url       string // "" when the node advertises none
	known     bool   // the node answered at raftAddr
	fetchedAt time.Time
	fetching  bool
}

// LeaderAPIURL is the admin API base URL of shardID's leader as far as this node knows: its
// own when its replica leads, else the URL the leader (named by the local replica, else by
// gossip) advertised when asked over the cluster port. "" when the leader or its URL is not
// known (yet), or the leader advertises none: callers then name no leader rather than a
// guess. It never blocks on the network.
func (n *Node) LeaderAPIURL(shardID int) string {
	var leaderID, leaderAddr string
	if hs := n.hosted(shardID); hs != nil {
		if hs.shard.IsLeader() {
			return n.cfg.APIURL
		}
		leaderID, leaderAddr = hs.shard.Leader()
	} else if n.gossip != nil {
		if meta, ok := n.gossip.leaderOf(shardID); ok {
			leaderID, leaderAddr = meta.NodeID, meta.RaftAddr
		}
	}
	switch {
	case leaderID == "" || leaderAddr == "":
		return ""
	case leaderID == n.cfg.NodeID:
		return n.cfg.APIURL
	}
	return n.apiURLOf(leaderID, leaderAddr)
}

// apiURLOf returns the URL node nodeID advertised at raftAddr, and starts a fetch when none is
// known or the known one is due for a refresh.
func (n *Node) apiURLOf(nodeID, raftAddr string) string {
	d := &n.apiURLs
	now := time.Now()
	d.mu.Lock()
	if d.entries == nil {
		d.entries = make(map[string]*apiURLEntry)
	}
	entry := d.entries[nodeID]
	if entry == nil || entry.raftAddr != raftAddr {
		entry = &apiURLEntry{raftAddr: raftAddr}
		d.entries[nodeID] = entry
	}
	url := entry.url
	due := !entry.fetching && (!entry.known && now.Sub(entry.fetchedAt) >= apiURLRetryInterval ||
		entry.known && now.Sub(entry.fetchedAt) >= apiURLRefreshInterval)
	if due {
		entry.fetching = true
	}
	d.mu.Unlock()
	if due && !n.closed.Load() {
		go n.fetchAPIURL(nodeID, raftAddr, entry)
	} else if due {
		d.mu.Lock()
		entry.fetching = false
		d.mu.Unlock()
	}
	return url
}

// fetchAPIURL asks the node at raftAddr for its node info and records its API URL in entry
// (when entry is still the directory's entry for nodeID).
func (n *Node) fetchAPIURL(nodeID, raftAddr string, entry *apiURLEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), apiURLFetchTimeout)
	defer cancel() // a closing node fails the call at once (its RPC client is closed)
	payload, err := n.callAt(ctx, raftAddr, 0, rpcKindNodeInfo, nil)
	var info nodeInfo
	if err == nil {
		err = json.Unmarshal(payload, &info)
	}
	if err == nil && info.ID != nodeID {
		err = fmt.Errorf("answered as node %q", info.ID)
	}
	d := &n.apiURLs
	d.mu.Lock()
	defer d.mu.Unlock()
	entry.fetching, entry.fetchedAt = false, time.Now()
	if err != nil { // a URL known from before stays: it is still what the node said
		n.logger.Debug("ask a node for its API URL", "node", nodeID, "address", raftAddr, "error", err)
		return
	}
	entry.url, entry.known = info.APIURL, true
}
