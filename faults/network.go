package faults

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// The test network. Every address here belongs to a host this package creates: three network
// namespaces joined by veth pairs to a bridge in the root namespace. 10.77.0.0/24 is reserved
// for it; the runner (in the root namespace) talks to the nodes through the bridge address.
const (
	subnetPrefix    = "10.77.0."
	subnetBits      = 24
	bridgeName      = "glfault0"
	bridgeAddress   = subnetPrefix + "1"
	nodeHostFirst   = 11 // node i (0-based) is 10.77.0.(11+i)
	namespacePrefix = "glfault-"
	vethPrefix      = "glfv-"
	// loopbackPrefix: without namespaces, node i listens on 127.0.0.(11+i).
	loopbackPrefix = "127.0.0."
)

// Network is where the nodes run: their addresses, how to start a command on a node's host,
// and (when it can) how to cut and heal the links between nodes.
type Network interface {
	// Kind is "netns" or "loopback".
	Kind() string
	// Host is node i's IP address.
	Host(i int) string
	// RunnerHost is the runner's address as the nodes reach it (the event webhook listens
	// there).
	RunnerHost() string
	// Command wraps argv so that it runs on node i's host.
	Command(i int, argv []string) []string
	// CanPartition reports whether Cut works.
	CanPartition() bool
	// Cut drops all traffic between nodes a and b, both ways. The runner still reaches both.
	Cut(a, b int) error
	// Heal removes every cut.
	Heal() error
	// Close removes everything the network created.
	Close() error
}

// loopbackNetwork runs nodes on 127.0.0.x: no partitions.
type loopbackNetwork struct{}

func (loopbackNetwork) Kind() string { return "loopback" }
func (loopbackNetwork) Host(i int) string {
	return fmt.Sprintf("%s%d", loopbackPrefix, nodeHostFirst+i)
}
func (loopbackNetwork) RunnerHost() string                    { return "127.0.0.1" }
func (loopbackNetwork) Command(_ int, argv []string) []string { return argv }
func (loopbackNetwork) CanPartition() bool                    { return false }
func (loopbackNetwork) Cut(int, int) error                    { return errors.New("loopback network cannot partition") }
func (loopbackNetwork) Heal() error                           { return nil }
func (loopbackNetwork) Close() error                          { return nil }

// namespaceNetwork is one namespace per node on a bridge. Cuts are iptables DROP rules inside
// the two nodes' namespaces (silent loss, as a real partition), or blackhole routes when
// iptables is missing.
type namespaceNetwork struct {
	nodes       int
	useIPTables bool
	// forwardRule is set when the root namespace's FORWARD chain needed an ACCEPT rule for
	// the bridge (br_netfilter with a DROP policy, as Docker leaves it); Close removes it.
	forwardRule bool
	log         func(string)
}

// run executes one command and returns its combined output in the error.
func run(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// NamespacesUsable says why namespaces cannot be used here, or nil when they can.
func NamespacesUsable() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("`ip` (iproute2) not found: apt-get install iproute2")
	}
	return nil
}

func namespaceName(i int) string { return fmt.Sprintf("%sn%d", namespacePrefix, i+1) }
func vethName(i int) string      { return fmt.Sprintf("%sn%d", vethPrefix, i+1) }
func vethPeerName(i int) string  { return fmt.Sprintf("%sn%dp", vethPrefix, i+1) }

// NewNamespaceNetwork creates the bridge, the namespaces and the veth pairs. Leftovers of an
// earlier run that died (same names) are removed first.
func NewNamespaceNetwork(nodes int, log func(string)) (Network, error) {
	if err := NamespacesUsable(); err != nil {
		return nil, err
	}
	n := &namespaceNetwork{nodes: nodes, log: log}
	n.removeLeftovers()
	_, iptablesErr := exec.LookPath("iptables")
	n.useIPTables = iptablesErr == nil
	steps := [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", bridgeAddress, subnetBits), "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
	}
	for i := 0; i < nodes; i++ {
		ns := namespaceName(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", vethName(i), "type", "veth", "peer", "name", vethPeerName(i)},
			[]string{"ip", "link", "set", vethPeerName(i), "netns", ns},
			[]string{"ip", "link", "set", vethName(i), "master", bridgeName},
			[]string{"ip", "link", "set", vethName(i), "up"},
			[]string{"ip", "-n", ns, "addr", "add", fmt.Sprintf("%s/%d", n.Host(i), subnetBits), "dev", vethPeerName(i)},
			[]string{"ip", "-n", ns, "link", "set", vethPeerName(i), "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, step := range steps {
		if err := run(step...); err != nil {
			n.Close()
			return nil, fmt.Errorf("create test network: %w", err)
		}
	}
	// With br_netfilter, bridged packets pass the root namespace's FORWARD chain; Docker sets
	// its policy to DROP. Accept our bridge's own traffic, and only that.
	if data, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil && strings.TrimSpace(string(data)) == "1" {
		if !n.useIPTables {
			n.Close()
			return nil, errors.New("br_netfilter is on but iptables is missing: bridged traffic may be dropped")
		}
		if err := run(forwardRule("-I")...); err != nil {
			n.Close()
			return nil, fmt.Errorf("accept bridge traffic: %w", err)
		}
		n.forwardRule = true
	}
	return n, nil
}

func forwardRule(action string) []string {
	return []string{"iptables", action, "FORWARD", "-i", bridgeName, "-o", bridgeName, "-j", "ACCEPT"}
}

func (n *namespaceNetwork) removeLeftovers() {
	for i := 0; i < n.nodes; i++ {
		if run("ip", "netns", "del", namespaceName(i)) == nil {
			n.log(fmt.Sprintf("removed leftover namespace %s", namespaceName(i)))
		}
		_ = run("ip", "link", "del", vethName(i))
	}
	if run("ip", "link", "del", bridgeName) == nil {
		n.log(fmt.Sprintf("removed leftover bridge %s", bridgeName))
	}
	for run(forwardRule("-D")...) == nil {
		// One leftover rule per dead run; -D fails once none is left.
	}
}

func (n *namespaceNetwork) Kind() string { return "netns" }

// RunnerHost implements Network: the bridge's address in the root namespace.
func (n *namespaceNetwork) RunnerHost() string { return bridgeAddress }

func (n *namespaceNetwork) Host(i int) string {
	return fmt.Sprintf("%s%d", subnetPrefix, nodeHostFirst+i)
}

func (n *namespaceNetwork) Command(i int, argv []string) []string {
	// `ip netns exec` execs argv after entering the namespace: the process keeps its PID, so
	// signals sent to it reach the node itself.
	return append([]string{"ip", "netns", "exec", namespaceName(i)}, argv...)
}

func (n *namespaceNetwork) CanPartition() bool { return true }

func (n *namespaceNetwork) Cut(a, b int) error {
	for _, pair := range [][2]int{{a, b}, {b, a}} {
		ns, peer := namespaceName(pair[0]), n.Host(pair[1])
		var steps [][]string
		if n.useIPTables {
			steps = [][]string{
				{"ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-s", peer, "-j", "DROP"},
				{"ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-d", peer, "-j", "DROP"},
			}
		} else {
			steps = [][]string{{"ip", "-n", ns, "route", "add", "blackhole", peer + "/32"}}
		}
		for _, step := range steps {
			if err := run(step...); err != nil {
				return fmt.Errorf("cut n%d-n%d: %w", a+1, b+1, err)
			}
		}
	}
	return nil
}

func (n *namespaceNetwork) Heal() error {
	var errs []error
	for i := 0; i < n.nodes; i++ {
		ns := namespaceName(i)
		if n.useIPTables {
			errs = append(errs, run("ip", "netns", "exec", ns, "iptables", "-F", "INPUT"),
				run("ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT"))
		} else {
			for j := 0; j < n.nodes; j++ {
				if j != i {
					_ = run("ip", "-n", ns, "route", "del", "blackhole", n.Host(j)+"/32")
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (n *namespaceNetwork) Close() error {
	var errs []error
	if n.forwardRule {
		errs = append(errs, run(forwardRule("-D")...))
		n.forwardRule = false
	}
	for i := 0; i < n.nodes; i++ {
		_ = run("ip", "netns", "del", namespaceName(i))
		_ = run("ip", "link", "del", vethName(i))
	}
	_ = run("ip", "link", "del", bridgeName)
	return errors.Join(errs...)
}
