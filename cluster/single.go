package cluster

import (
	"context"
	"log/slog"

	"github.com/gigaledger/gigaledger/shard"
)

// Node is the single-shard node that cmd/gigaledger used before multi-shard support: shard 0
// of a MultiNode, configured entirely from Config.Shard, with the caller's state machine.
//
// Deprecated: use MultiNode (OpenMulti), which hosts several shards. Node stays only until
// cmd/gigaledger switches; then it is deleted and MultiNode is renamed Node.
type Node struct {
	multi *MultiNode
}

// Open starts a single-shard node from cfg.Shard (NodeID, RaftAddr, DataDir of the raft log,
// Peers, Bootstrap, limits), cfg.Listener and cfg.Codec. It writes no cluster.json; sm is not
// closed by the node.
//
// Deprecated: use OpenMulti.
func Open(cfg Config, sm shard.StateMachine, logger *slog.Logger) (*Node, error) {
	shardConfig := cfg.Shard
	cfg.NodeID = shardConfig.NodeID
	cfg.RaftAddr = shardConfig.RaftAddr
	replicas := []string{}
	nodes := []NodeAddress{}
	selfListed := false
	for _, peer := range shardConfig.Peers {
		replicas = append(replicas, peer.ID)
		nodes = append(nodes, NodeAddress{ID: peer.ID, RaftAddr: peer.Addr})
		selfListed = selfListed || peer.ID == shardConfig.NodeID
	}
	if !selfListed {
		replicas = append(replicas, shardConfig.NodeID)
		nodes = append(nodes, NodeAddress{ID: shardConfig.NodeID, RaftAddr: shardConfig.RaftAddr})
	}
	cfg.StaticNodes = nodes
	cfg.StaticPlacement = &Placement{SlotCount: SlotCount, Shards: []ShardReplicas{{ID: 0, Replicas: replicas}}}
	if err := shardConfig.Validate(); err != nil {
		return nil, err
	}
	multi, err := openNode(cfg, nodeOptions{stateMachine: sm, raftDir: shardConfig.DataDir, bootstrap: shardConfig.Bootstrap,
		peers: shardConfig.Peers, noClusterFile: true}, logger)
	if err != nil {
		return nil, err
	}
	return &Node{multi: multi}, nil
}

// Multi is the MultiNode behind n (shard 0 only).
func (n *Node) Multi() *MultiNode {
	return n.multi
}

// Shard is the local replica.
//
// Deprecated: use MultiNode.Shard.
func (n *Node) Shard() *shard.Shard {
	return n.multi.Shard(0)
}

// Addr is the node's port address as peers dial it.
func (n *Node) Addr() string {
	return n.multi.Addr()
}

// Propose applies command through the leader; see MultiNode.Propose.
//
// Deprecated: use MultiNode.Propose.
func (n *Node) Propose(ctx context.Context, command []byte) (any, error) {
	return n.multi.Propose(ctx, 0, command)
}

// LinearizableRead waits until local state is linearizable; see MultiNode.LinearizableRead.
//
// Deprecated: use MultiNode.LinearizableRead.
func (n *Node) LinearizableRead(ctx context.Context) error {
	return n.multi.LinearizableRead(ctx, 0)
}

// Close stops the node.
func (n *Node) Close() error {
	return n.multi.Close()
}
