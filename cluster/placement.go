package cluster

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gigaledger/gigaledger/cluster/keyspace"
)

// DefaultReplicaCount is the replication factor of a shard unless the bootstrap settings say
// otherwise.
const DefaultReplicaCount = 3

// clusterFileName is the file in the node's data directory that records the bootstrap
// settings and the placement. It is written once, when the placement is computed or learned,
// and only its BootstrapDone flag changes afterwards.
const clusterFileName = "cluster.json"

// clusterFileVersion is the format version of cluster.json; only ever add versions.
const clusterFileVersion = 1

// clusterFileMaxBytes bounds what loading cluster.json (or a peer's copy of it, over gossip)
// will accept.
const clusterFileMaxBytes = 256 << 10

// ShardReplicas lists the node IDs holding replicas of one shard, best rendezvous score first.
type ShardReplicas struct {
	ID       int      `json:"id"`
	Replicas []string `json:"replicas"`
}

// Placement says which nodes hold replicas of which shard, as computed at bootstrap. It is
// never recomputed once stored: afterwards each shard's Raft configuration is the truth for
// its replicas (ReplaceNode and MoveReplica change that, not the Placement).
type Placement struct {
	SlotCount int             `json:"slotCount"`
	Shards    []ShardReplicas `json:"shards"`
}

// ComputePlacement places shardCount shards with min(replicaCount, distinct nodes) replicas
// each by rendezvous hashing: the replicas of shard k are the nodes with the highest
// score(k, nodeID). It depends only on the set of node IDs, never on their order.
func ComputePlacement(nodeIDs []string, shardCount, replicaCount int) Placement {
	ids := slices.Clone(nodeIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	replicaCount = min(replicaCount, len(ids))
	placement := Placement{SlotCount: keyspace.SlotCount, Shards: make([]ShardReplicas, shardCount)}
	type scored struct {
		id    string
		score uint64
	}
	candidates := make([]scored, len(ids))
	for k := range shardCount {
		for i, id := range ids {
			candidates[i] = scored{id: id, score: rendezvousScore(k, id)}
		}
		slices.SortFunc(candidates, func(a, b scored) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		replicas := make([]string, replicaCount)
		for i := range replicaCount {
			replicas[i] = candidates[i].id
		}
		placement.Shards[k] = ShardReplicas{ID: k, Replicas: replicas}
	}
	return placement
}

// rendezvousScore is the first 8 bytes of SHA-256(shard ID as 2 big-endian bytes | node ID).
func rendezvousScore(shardID int, nodeID string) uint64 {
	h := sha256.New()
	var prefix [2]byte
	binary.BigEndian.PutUint16(prefix[:], uint16(shardID))
	h.Write(prefix[:])
	h.Write([]byte(nodeID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return binary.BigEndian.Uint64(sum[:8])
}

// ShardCount is the number of shards placed.
func (p Placement) ShardCount() int {
	return len(p.Shards)
}

// Replicas returns the node IDs placed for shardID (nil when out of range).
func (p Placement) Replicas(shardID int) []string {
	if shardID < 0 || shardID >= len(p.Shards) {
		return nil
	}
	return p.Shards[shardID].Replicas
}

// ShardsOf returns the shards with a replica placed on nodeID, ascending.
func (p Placement) ShardsOf(nodeID string) []int {
	var shards []int
	for _, s := range p.Shards {
		if slices.Contains(s.Replicas, nodeID) {
			shards = append(shards, s.ID)
		}
	}
	return shards
}

// Validate reports the first structural problem: wrong slot count, shard IDs not 0..n-1 in
// order, a shard count outside 1..ShardCountMax, or a shard without replicas or with one
// listed twice.
func (p Placement) Validate() error {
	if p.SlotCount != keyspace.SlotCount {
		return fmt.Errorf("placement: slot count %d, want %d", p.SlotCount, keyspace.SlotCount)
	}
	if len(p.Shards) < 1 || len(p.Shards) > keyspace.ShardCountMax {
		return fmt.Errorf("placement: %d shards outside [1, %d]", len(p.Shards), keyspace.ShardCountMax)
	}
	for i, s := range p.Shards {
		if s.ID != i {
			return fmt.Errorf("placement: shard at position %d has ID %d", i, s.ID)
		}
		if len(s.Replicas) == 0 {
			return fmt.Errorf("placement: shard %d has no replicas", i)
		}
		seen := make(map[string]bool, len(s.Replicas))
		for _, id := range s.Replicas {
			if id == "" || seen[id] {
				return fmt.Errorf("placement: shard %d lists replica %q twice or empty", i, id)
			}
			seen[id] = true
		}
	}
	return nil
}

// NodeAddress is how to reach one node.
type NodeAddress struct {
	// ID is the node's ID, also its raft server ID in every shard.
	ID string `json:"id"`
	// RaftAddr is the node's one port (raft of every shard it hosts, and forwarding).
	RaftAddr string `json:"raftAddr"`
	// APIAddr is the node's admin HTTP API address (for proxying requests it must serve).
	APIAddr string `json:"apiAddr,omitempty"`
	// PublicAddr is the node's public HTTP address.
	PublicAddr string `json:"publicAddr,omitempty"`
	// APIURL is the admin API's base URL as clients dial it (scheme, host, port, optional
	// path); empty when the node advertises none (its API binds every interface and no URL was
	// given). Responses name the shard leader's (Node.LeaderAPIURL).
	APIURL string `json:"apiUrl,omitempty"`
}

// clusterFile is cluster.json: the bootstrap settings, the members placement was computed
// from (with their addresses, which seed each shard's initial Raft configuration), and the
// placement.
type clusterFile struct {
	Version      int           `json:"version"`
	ShardCount   int           `json:"shardCount"`
	ReplicaCount int           `json:"replicaCount"`
	Nodes        []NodeAddress `json:"nodes"`
	Placement    Placement     `json:"placement"`
	// BootstrapDone is set (locally, by each node) once this node bootstrapped every shard it
	// was placed on; until then a restart bootstraps them again (which raft makes idempotent).
	// It is not part of what nodes compare.
	BootstrapDone bool `json:"bootstrapDone"`
}

func (f *clusterFile) validate() error {
	if f.Version != clusterFileVersion {
		return fmt.Errorf("cluster file: version %d, want %d", f.Version, clusterFileVersion)
	}
	if err := f.Placement.Validate(); err != nil {
		return fmt.Errorf("cluster file: %w", err)
	}
	if f.ShardCount != f.Placement.ShardCount() {
		return fmt.Errorf("cluster file: shard count %d but %d shards placed", f.ShardCount, f.Placement.ShardCount())
	}
	addresses := make(map[string]bool, len(f.Nodes))
	for _, n := range f.Nodes {
		if n.ID == "" || n.RaftAddr == "" {
			return fmt.Errorf("cluster file: node %+v lacks an ID or raft address", n)
		}
		addresses[n.ID] = true
	}
	for _, s := range f.Placement.Shards {
		for _, id := range s.Replicas {
			if !addresses[id] {
				return fmt.Errorf("cluster file: shard %d replica %q is not among the nodes", s.ID, id)
			}
		}
	}
	return nil
}

// nodeAddress returns the bootstrap address record of id.
func (f *clusterFile) nodeAddress(id string) (NodeAddress, bool) {
	for _, n := range f.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return NodeAddress{}, false
}

func (f *clusterFile) encode() []byte {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("cluster: encode cluster file: %v", err))
	}
	return append(data, '\n')
}

func decodeClusterFile(data []byte) (*clusterFile, error) {
	if len(data) > clusterFileMaxBytes {
		return nil, fmt.Errorf("cluster file of %d bytes exceeds %d", len(data), clusterFileMaxBytes)
	}
	var f clusterFile
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode cluster file: %w", err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// loadClusterFile reads dataDir/cluster.json; (nil, nil) when it does not exist.
func loadClusterFile(dataDir string) (*clusterFile, error) {
	data, err := os.ReadFile(filepath.Join(dataDir, clusterFileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	return decodeClusterFile(data)
}

// storeClusterFile writes dataDir/cluster.json atomically and durably (temp file, fsync,
// rename, fsync of the directory), then reads it back to check it.
func storeClusterFile(dataDir string, f *clusterFile) error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("store cluster file: %w", err)
	}
	final := filepath.Join(dataDir, clusterFileName)
	temp := final + ".tmp"
	data := f.encode()
	file, err := os.OpenFile(temp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("store cluster file: %w", err)
	}
	_, writeErr := file.Write(data)
	syncErr := file.Sync()
	closeErr := file.Close()
	if err := errors.Join(writeErr, syncErr, closeErr); err != nil {
		return fmt.Errorf("store cluster file: %w", err)
	}
	if err := os.Rename(temp, final); err != nil {
		return fmt.Errorf("store cluster file: %w", err)
	}
	if dir, err := os.Open(dataDir); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	back, err := loadClusterFile(dataDir)
	if err != nil {
		return fmt.Errorf("store cluster file: read back: %w", err)
	}
	if !bytes.Equal(back.encode(), data) {
		return errors.New("store cluster file: read back differs from what was written")
	}
	return nil
}
