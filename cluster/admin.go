package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
	"github.com/gigaledger/gigaledger/shard"
)

// NodeStatus is one node as this node sees it.
type NodeStatus struct {
	NodeAddress
	// State is alive, dead or left from gossip (memberlist reports no suspicion through its
	// events). Without gossip (static --peers) this node asks each peer over the cluster
	// port: alive when it answered just now, unreachable (with Reason) when it did not.
	State string `json:"state"`
	// Reason says why the state is not alive, when known.
	Reason string `json:"reason,omitempty"`
	// Hosts and Leads are the shards the node holds replicas of and leads (gossiped hints,
	// or the node's own answer); empty lists, never null.
	Hosts []int `json:"hosts"`
	Leads []int `json:"leads"`
}

// nodeInfo is a node's answer to rpcKindNodeInfo: its addresses and shards, so that peers
// configured by --peers (which know only raft addresses) can show each node's APIs.
type nodeInfo struct {
	NodeAddress
	Hosts []int `json:"hosts"`
	Leads []int `json:"leads"`
}

// statusProbeTimeout bounds how long Status waits for each static peer's node info.
const statusProbeTimeout = time.Second

// localInfo is this node's own nodeInfo.
func (n *Node) localInfo() nodeInfo {
	info := nodeInfo{NodeAddress: NodeAddress{ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, APIAddr: n.cfg.APIAddr,
		PublicAddr: n.cfg.PublicAddr, APIURL: n.cfg.APIURL}, Hosts: n.HostedShards(), Leads: []int{}}
	for _, id := range info.Hosts {
		if hs := n.hosted(id); hs != nil && hs.shard.IsLeader() {
			info.Leads = append(info.Leads, id)
		}
	}
	return info
}

// probeNodes asks each of nodes (static peers) for its node info, concurrently and within
// statusProbeTimeout, and records the answer or why there was none.
func (n *Node) probeNodes(nodes []*NodeStatus) {
	ctx, cancel := context.WithTimeout(context.Background(), statusProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Go(func() {
			if node.RaftAddr == "" {
				node.State, node.Reason = NodeStateUnknown, "no address known"
				return
			}
			payload, err := n.callAt(ctx, node.RaftAddr, 0, rpcKindNodeInfo, nil)
			var info nodeInfo
			if err == nil {
				err = json.Unmarshal(payload, &info)
			}
			if err == nil && info.ID != node.ID {
				err = fmt.Errorf("answered as node %q", info.ID)
			}
			if err != nil {
				node.State, node.Reason = NodeStateUnreachable, strings.ReplaceAll(err.Error(), "\n", ": ")
				return
			}
			node.State = NodeStateAlive
			node.APIAddr, node.PublicAddr, node.APIURL = info.APIAddr, info.PublicAddr, info.APIURL
			node.Hosts, node.Leads = info.Hosts, info.Leads
		})
	}
	wg.Wait()
}

// ShardStatus is one shard as this node sees it.
type ShardStatus struct {
	ID int `json:"id"`
	// Replicas are the node IDs in the shard's Raft configuration: the local replica's when
	// hosted here, else the leader's (read by Status), else the last set this node knew.
	Replicas []string `json:"replicas"`
	// Nonvoters are the replicas among Replicas that do not vote yet (being added by a move,
	// until they have caught up).
	Nonvoters  []string `json:"nonvoters,omitempty"`
	LeaderID   string   `json:"leaderId"`
	LeaderAddr string   `json:"leaderAddr"`
	// LeaderAPIAddr is the leader's admin API address, when known.
	LeaderAPIAddr string `json:"leaderApiAddr,omitempty"`
	Hosted        bool   `json:"hosted"`
	// Local is the local replica's state when hosted.
	Local *shard.Stats `json:"local,omitempty"`
}

// Status is the cluster as this node sees it, for GET /cluster.
type Status struct {
	NodeID       string        `json:"nodeId"`
	SlotCount    int           `json:"slotCount"`
	ShardCount   int           `json:"shardCount"`
	ReplicaCount int           `json:"replicaCount"`
	Nodes        []NodeStatus  `json:"nodes"`
	Shards       []ShardStatus `json:"shards"`
}

// Status reports nodes (addresses, liveness, hosted and led shards) and shards (replicas,
// leader, local replica state). Raft configurations are read for hosted shards, so it may
// block briefly; it never fails.
func (n *Node) Status() Status {
	file := n.file.Load()
	status := Status{NodeID: n.cfg.NodeID, SlotCount: keyspace.SlotCount}
	if file == nil {
		return status
	}
	status.ShardCount, status.ReplicaCount = file.ShardCount, file.ReplicaCount

	nodes := make(map[string]*NodeStatus)
	for _, address := range file.Nodes {
		nodes[address.ID] = &NodeStatus{NodeAddress: address, State: NodeStateUnknown}
	}
	if n.gossip != nil {
		for id, m := range n.gossip.states() {
			nodes[id] = &NodeStatus{NodeAddress: NodeAddress{ID: id, RaftAddr: m.meta.RaftAddr, APIAddr: m.meta.APIAddr,
				PublicAddr: m.meta.PublicAddr}, State: m.state, Hosts: m.meta.Hosted, Leads: m.meta.Led}
		}
	}
	self := &NodeStatus{NodeAddress: NodeAddress{ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, APIAddr: n.cfg.APIAddr,
		PublicAddr: n.cfg.PublicAddr, APIURL: n.cfg.APIURL}, State: NodeStateAlive, Hosts: n.HostedShards()}
	nodes[n.cfg.NodeID] = self
	if n.gossip == nil {
		var peers []*NodeStatus
		for id, node := range nodes {
			if id != n.cfg.NodeID {
				peers = append(peers, node)
			}
		}
		n.probeNodes(peers)
	}

	n.refreshRemoteReplicas(file.ShardCount)
	for id := range file.ShardCount {
		s := ShardStatus{ID: id}
		if hs := n.hosted(id); hs != nil {
			s.Hosted = true
			stats := hs.shard.Stats()
			s.Local = &stats
			s.LeaderID, s.LeaderAddr = stats.LeaderID, stats.LeaderAddr
			if stats.LeaderID == n.cfg.NodeID {
				self.Leads = append(self.Leads, id)
			}
			if servers, err := hs.shard.Servers(); err == nil {
				n.recordReplicas(id, servers)
			}
		} else if n.gossip != nil {
			if leader, ok := n.gossip.leaderOf(id); ok {
				s.LeaderID, s.LeaderAddr = leader.NodeID, leader.RaftAddr
			}
		}
		s.Replicas, s.Nonvoters = n.replicas(id), n.nonvoters(id)
		if s.Replicas == nil {
			s.Replicas = []string{}
		}
		status.Shards = append(status.Shards, s)
	}
	for i, s := range status.Shards {
		if leader := nodes[s.LeaderID]; leader != nil {
			status.Shards[i].LeaderAPIAddr = leader.APIAddr
		}
	}
	for _, node := range nodes {
		if node.Hosts == nil {
			node.Hosts = []int{}
		}
		if node.Leads == nil {
			node.Leads = []int{}
		}
		status.Nodes = append(status.Nodes, *node)
	}
	if status.Shards == nil {
		status.Shards = []ShardStatus{}
	}
	slices.SortFunc(status.Nodes, func(a, b NodeStatus) int { return cmpString(a.ID, b.ID) })
	return status
}

// refreshRemoteReplicas reads, from each shard's leader, the configuration of every shard not
// hosted here (moves change it, and only hosting nodes see that in their own replica), all at
// once and within statusProbeTimeout; a shard that does not answer keeps its last known set.
func (n *Node) refreshRemoteReplicas(shardCount int) {
	ctx, cancel := context.WithTimeout(context.Background(), statusProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for id := range shardCount {
		if n.hosted(id) != nil {
			continue
		}
		wg.Go(func() {
			if servers, err := n.shardServers(ctx, id); err == nil {
				n.recordReplicas(id, servers)
			}
		})
	}
	wg.Wait()
}

func (n *Node) recordReplicas(shardID int, servers []shard.Peer) {
	ids := make([]string, len(servers))
	var nonvoters []string
	for i, server := range servers {
		ids[i] = server.ID
		if server.Nonvoter {
			nonvoters = append(nonvoters, server.ID)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.replicaSets[shardID] = ids
	n.nonvoterSets[shardID] = nonvoters
}

func (n *Node) nonvoters(shardID int) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Clone(n.nonvoterSets[shardID])
}

func (n *Node) replicas(shardID int) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Clone(n.replicaSets[shardID])
}

// raftAddrOf resolves a node ID to its port address: gossip metadata, then the bootstrap
// members.
func (n *Node) raftAddrOf(nodeID string) string {
	if nodeID == n.cfg.NodeID {
		return n.cfg.RaftAddr
	}
	if n.gossip != nil {
		if m, ok := n.gossip.states()[nodeID]; ok && m.meta.RaftAddr != "" {
			return m.meta.RaftAddr
		}
	}
	if file := n.file.Load(); file != nil {
		if address, ok := file.nodeAddress(nodeID); ok {
			return address.RaftAddr
		}
	}
	return ""
}

// nodeIDAt names the node whose port is address, for checking the certificate of a dialed
// peer: this node, else the one member that gossip or the bootstrap members place there. It is
// "" when none or several do (a reused address): any node certificate of the cluster CA is
// then accepted, as the CA is the authority on membership.
func (n *Node) nodeIDAt(address string) string {
	if address == n.cfg.RaftAddr {
		return n.cfg.NodeID
	}
	var alive, known []string
	if n.gossip != nil {
		for id, m := range n.gossip.states() {
			if m.meta.RaftAddr != address {
				continue
			}
			known = append(known, id)
			if m.state == NodeStateAlive {
				alive = append(alive, id)
			}
		}
	}
	if len(alive) == 1 {
		return alive[0]
	}
	if file := n.file.Load(); file != nil {
		for _, node := range file.Nodes {
			if node.RaftAddr == address && !slices.Contains(known, node.ID) {
				known = append(known, node.ID)
			}
		}
	}
	if len(known) == 1 {
		return known[0]
	}
	return ""
}

// shardServers reads shardID's Raft configuration from its leader (a follower may not have
// the latest entry yet: only the leader's answer says a removal is done).
func (n *Node) shardServers(ctx context.Context, shardID int) ([]shard.Peer, error) {
	return n.leaderServers(ctx, shardID, serversFromLeader)
}

// The payloads of rpcKindServers that ask the leader.
const (
	serversFromLeader byte = 1 // its latest configuration
	serversCommitted  byte = 2 // its latest configuration once committed
)

// committedServers is shardServers once the configuration is committed (a node deciding it
// was removed asks this).
func (n *Node) committedServers(ctx context.Context, shardID int) ([]shard.Peer, error) {
	return n.leaderServers(ctx, shardID, serversCommitted)
}

func (n *Node) leaderServers(ctx context.Context, shardID int, which byte) ([]shard.Peer, error) {
	payload, err := n.adminCall(ctx, shardID, rpcKindServers, []byte{which})
	if err != nil {
		return nil, err
	}
	var servers []shard.Peer
	if err := json.Unmarshal(payload, &servers); err != nil {
		return nil, fmt.Errorf("decode servers: %w", err)
	}
	return servers, nil
}

// callAt sends one admin request to address and maps a non-OK answer to its error.
func (n *Node) callAt(ctx context.Context, address string, shardID int, kind byte, payload []byte) ([]byte, error) {
	resp, err := n.client.call(ctx, address, uint16(shardID), kind, payload)
	if err != nil {
		return nil, err
	}
	if resp.code != codeOK {
		return nil, remoteError(address, resp)
	}
	return resp.payload, nil
}

// adminCall sends an idempotent admin request to shardID's leader through callLeader, over the
// RPC even when this node leads (handle serves it), with the patience of membership changes.
func (n *Node) adminCall(ctx context.Context, shardID int, kind byte, payload []byte) ([]byte, error) {
	var answer []byte
	err := n.callLeader(ctx, leaderCall{
		what: fmt.Sprintf("admin request %d", kind), shardID: shardID, kind: kind, payload: payload,
		resendable: true, patience: adminPatience,
		answer: func(payload []byte) error {
			answer = payload
			return nil
		},
	})
	return answer, err
}
