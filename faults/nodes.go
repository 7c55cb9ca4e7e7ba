package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gigaledger/gigaledger/cluster/tlsconfig"
)

// Node ports: every node has its own host, so all use the same ones.
const (
	raftPort   = 7001
	adminPort  = 8081
	publicPort = 8082
	gossipPort = 7946
)

// Process limits.
const (
	// killWaitMax bounds the wait for a SIGKILLed process to be reaped.
	killWaitMax = 10 * time.Second
	// stopWaitMax bounds a graceful stop (the node's own shutdown bound is 15 s).
	stopWaitMax = 20 * time.Second
	// readyPollInterval is how often readiness and leadership are polled.
	readyPollInterval = 100 * time.Millisecond
)

// Node is one gigaledger process of the cluster under test and how to reach it. Its process
// may be started, killed and restarted many times; DataDir survives.
type Node struct {
	Index    int
	ID       string
	RaftAddr string
	// GossipAddr is the node's memberlist address: the cluster forms by gossip, so that a
	// spare node can join it later (a --peers cluster cannot grow).
	GossipAddr string
	// Spare: started after the others with --join and no --bootstrap-expect, it hosts nothing
	// until a move gives it a replica.
	Spare    bool
	AdminURL string
	DataDir  string
	LogPath  string
	// TLSDir holds the node's certificate: node-to-node traffic runs mutual TLS.
	TLSDir    string
	adminAddr string
	publicAdr string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process exits
	paused  bool
	starts  int
	lastErr error
	// expectExit is set when the runner signalled the process to end; an exit without it is
	// a crash the summary reports.
	expectExit bool
}

// Cluster is the three (or more) nodes, the network they live on, and the binary they run.
type Cluster struct {
	Nodes   []*Node
	Network Network
	binary  string
	token   string
	// bootstrapCount is how many nodes (the first ones) bootstrap the cluster; the others
	// are spares.
	bootstrapCount int
	client         *Client
	// shards is the shard count every node bootstraps with (--shards).
	shards int
	// OnExit, when set, hears of every process exit: whether the runner caused it, and how it
	// ended.
	OnExit func(node *Node, expected bool, err error)
}

// NewCluster lays out nodes under dir, with a cluster CA in dir/certs and a certificate per
// node (node-to-node traffic runs mutual TLS, as in production); nothing starts yet. The first
// nodeCount nodes bootstrap the cluster by gossip; spareCount more join it as spares.
func NewCluster(network Network, binary, dir, token string, nodeCount, spareCount, shards int, client *Client) (*Cluster, error) {
	c := &Cluster{Network: network, binary: binary, token: token, client: client, shards: max(shards, 1), bootstrapCount: nodeCount}
	certs := filepath.Join(dir, "certs")
	if err := tlsconfig.CreateCA(certs, true); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	for i := 0; i < nodeCount+spareCount; i++ {
		host := network.Host(i)
		n := &Node{
			Index:      i,
			ID:         fmt.Sprintf("n%d", i+1),
			RaftAddr:   fmt.Sprintf("%s:%d", host, raftPort),
			GossipAddr: fmt.Sprintf("%s:%d", host, gossipPort),
			Spare:      i >= nodeCount,
			adminAddr:  fmt.Sprintf("%s:%d", host, adminPort),
			publicAdr:  fmt.Sprintf("%s:%d", host, publicPort),
			DataDir:    filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			LogPath:    filepath.Join(dir, fmt.Sprintf("n%d.log", i+1)),
			TLSDir:     filepath.Join(certs, fmt.Sprintf("n%d", i+1)),
		}
		if err := tlsconfig.CreateNode(tlsconfig.NodeRequest{CADir: certs, OutDir: n.TLSDir, NodeID: n.ID,
			Hosts: []string{host}, Overwrite: true}); err != nil {
			return nil, fmt.Errorf("certificate of %s: %w", n.ID, err)
		}
		n.AdminURL = "http://" + n.adminAddr
		if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// Start starts node i's process (it must not be running).
func (c *Cluster) Start(i int) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s already running", n.ID)
	}
	// Every node joins the bootstrap members (but itself); those wait for each other.
	var join []string
	for _, other := range c.Nodes[:c.bootstrapCount] {
		if other != n {
			join = append(join, other.GossipAddr)
		}
	}
	args := []string{c.binary, "serve",
		"--node-id", n.ID, "--data-dir", n.DataDir,
		"--admin-addr", n.adminAddr, "--public-addr", n.publicAdr, "--raft-addr", n.RaftAddr,
		"--gossip-addr", n.GossipAddr, "--join", strings.Join(join, ","),
		"--admin-token", c.token, "--tls-dir", n.TLSDir, "--shards", strconv.Itoa(c.shards)}
	if !n.Spare {
		args = append(args, "--bootstrap-expect", strconv.Itoa(c.bootstrapCount))
	}
	argv := c.Network.Command(i, args)
	logFile, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "--- faults: start %d at %s\n", n.starts+1, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a Ctrl-C at the terminal reaches the runner, which stops the nodes
	// itself. Pdeathsig: if the runner dies hard, the kernel kills the node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.paused, n.expectExit = cmd, done, false, false
	n.starts++
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logFile, "--- faults: exit: %v\n", err)
		logFile.Close()
		n.mu.Lock()
		n.lastErr = err
		expected := n.expectExit
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		if c.OnExit != nil {
			c.OnExit(n, expected, err)
		}
		close(done)
	}()
	return nil
}

// Running reports whether node i has a live process (paused counts as live).
func (c *Cluster) Running(i int) bool {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Paused reports whether node i is stopped with SIGSTOP.
func (c *Cluster) Paused(i int) bool {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && n.paused
}

// signal sends sig to node i's process; it returns the channel closed at its exit.
func (c *Cluster) signal(i int, sig syscall.Signal) (<-chan struct{}, error) {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil, fmt.Errorf("%s is not running", n.ID)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		n.expectExit = true
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("signal %v to %s: %w", sig, n.ID, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return n.done, nil
}

// Kill sends SIGKILL to node i and waits until the process is gone.
func (c *Cluster) Kill(i int) error {
	done, err := c.signal(i, syscall.SIGKILL)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(killWaitMax):
		return fmt.Errorf("%s did not exit %v after SIGKILL", c.Nodes[i].ID, killWaitMax)
	}
}

// Stop asks node i to shut down (SIGTERM, after SIGCONT if paused) and kills it if it has not
// exited by stopWaitMax.
func (c *Cluster) Stop(i int) error {
	if !c.Running(i) {
		return nil
	}
	if c.Paused(i) {
		if _, err := c.signal(i, syscall.SIGCONT); err != nil {
			return err
		}
	}
	done, err := c.signal(i, syscall.SIGTERM)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(stopWaitMax):
		// SIGQUIT first: the Go runtime writes every goroutine's stack to the node's log and
		// exits, so a hung shutdown says where it hangs.
		stuck := fmt.Errorf("%s ignored SIGTERM for %v (goroutine dump in its log)", c.Nodes[i].ID, stopWaitMax)
		if _, err := c.signal(i, syscall.SIGQUIT); err == nil {
			select {
			case <-done:
				return stuck
			case <-time.After(killWaitMax):
			}
		}
		return errors.Join(stuck, c.Kill(i))
	}
}

// Pause sends SIGSTOP to node i.
func (c *Cluster) Pause(i int) error { _, err := c.signal(i, syscall.SIGSTOP); return err }

// Resume sends SIGCONT to node i.
func (c *Cluster) Resume(i int) error { _, err := c.signal(i, syscall.SIGCONT); return err }

// StopAll stops every running node: the leader first (a leader whose followers are already
// gone was seen to hang in shutdown past stopWaitMax), then the others in parallel.
func (c *Cluster) StopAll() error {
	var errs []error
	probe, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	leader, _ := c.Leader(probe)
	cancel()
	if leader != LeaderUnknown {
		errs = append(errs, c.Stop(leader))
	}
	results := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = c.Stop(i) }()
	}
	wg.Wait()
	return errors.Join(append(errs, results...)...)
}

// WaitReady polls GET /readyz on every node in want until all answer 200 or ctx ends. Its
// error names the nodes the last complete round of probes found not ready, with their
// answers: a round cut short by the deadline says nothing about the nodes.
func (c *Cluster) WaitReady(ctx context.Context, want []int) error {
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	var notReady []string // the last complete round's
	for {
		var round []string
		complete := true
		for _, i := range want {
			if !c.Running(i) {
				return fmt.Errorf("%s is not running", c.Nodes[i].ID)
			}
			probe, cancel := context.WithTimeout(ctx, time.Second)
			err := c.client.Ready(probe, c.Nodes[i].AdminURL)
			cancel()
			if ctx.Err() != nil {
				complete = false
				break
			}
			if err != nil {
				round = append(round, fmt.Sprintf("%s: %v", c.Nodes[i].ID, err))
			}
		}
		if complete {
			if len(round) == 0 {
				return nil
			}
			notReady = round
		}
		select {
		case <-ctx.Done():
			if notReady == nil {
				return fmt.Errorf("no round of probes finished: %w", ctx.Err())
			}
			return fmt.Errorf("%d of %d nodes not ready (%s): %w", len(notReady), len(want), strings.Join(notReady, "; "), ctx.Err())
		case <-ticker.C:
		}
	}
}

// LeaderUnknown is what Leader returns when no node names a leader.
const LeaderUnknown = -1

// Leader asks every live node (GET /cluster) who leads and returns the index named by the
// most nodes, LeaderUnknown if none names one, and whether the endpoint exists at all.
func (c *Cluster) Leader(ctx context.Context) (leader int, endpoint bool) {
	votes := make(map[string]int)
	for i, n := range c.Nodes {
		if !c.Running(i) || c.Paused(i) {
			continue
		}
		probe, cancel := context.WithTimeout(ctx, time.Second)
		view, err := c.client.Cluster(probe, n.AdminURL)
		cancel()
		if errors.Is(err, errNoEndpoint) {
			continue
		}
		endpoint = endpoint || err == nil
		if err == nil && len(view.ShardLeaders) > 0 {
			// Several shards: the node leading the most of them, as the nodes see it.
			for _, id := range view.ShardLeaders {
				votes[id]++
			}
			continue
		}
		if err == nil && view.LeaderID != "" {
			votes[view.LeaderID]++
		}
		if err == nil && strings.EqualFold(view.State, "leader") {
			votes[n.ID] += 2 // a node's word about itself outweighs hearsay
		}
	}
	best, bestVotes := LeaderUnknown, 0
	for i, n := range c.Nodes {
		if v := votes[n.ID]; v > bestVotes || (v == bestVotes && v > 0 && i < best) {
			best, bestVotes = i, v
		}
	}
	return best, endpoint
}

// WaitLeader polls Leader until a leader is named or ctx ends.
func (c *Cluster) WaitLeader(ctx context.Context) (int, bool) {
	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	for {
		leader, endpoint := c.Leader(ctx)
		if leader != LeaderUnknown || !endpoint {
			return leader, endpoint
		}
		select {
		case <-ctx.Done():
			return LeaderUnknown, endpoint
		case <-ticker.C:
		}
	}
}
