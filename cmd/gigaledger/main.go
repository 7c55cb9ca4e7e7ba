// Command gigaledger is the GigaLedger binary: `serve` runs a node, `bench` drives load at a
// running cluster. This package holds flags, configuration and wiring only; behaviour lives in
// fsm, shard, cluster and httpapi.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/gigaledger/gigaledger/bench"
)

const usage = `gigaledger — a Raft-replicated ledger cluster for payment backends

usage:
  gigaledger serve [flags]   run a node (single-node cluster by default)
  gigaledger bench [flags]   drive load at a running cluster
  gigaledger cert ...        make a cluster CA and node certificates (node-to-node TLS)
  gigaledger healthcheck     exit 0 when the local node is ready (Docker HEALTHCHECK)
  gigaledger cluster ...     cluster operations through a node's admin API (status, move-replica, replace-node, balance-leaders, balance-replicas)
  gigaledger verify ...      check a stopped node's stores against their history chains, recompute balances
  gigaledger version         print the version and the source revision (also --version)

Run 'gigaledger serve --help', 'gigaledger bench --help', 'gigaledger cert help' or 'gigaledger cluster help' for their flags.
`

// version, when set at build time with -ldflags "-X main.version=...", names the release;
// otherwise the module version from the build information is printed.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench.Main(ctx, args[1:], stdout, stderr)
	case "cert":
		return certCommand(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stdout, stderr)
	case "cluster":
		return clusterCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyCommand(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprint(stdout, versionText())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "gigaledger: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// versionText is what `gigaledger version` prints: the release or module version ("(devel)"
// for a build from a work tree), and the source revision, its time and whether the tree had
// uncommitted changes, as the Go toolchain recorded them (absent with -buildvcs=false).
func versionText() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = &debug.BuildInfo{}
	}
	return formatVersion(version, info)
}

func formatVersion(release string, info *debug.BuildInfo) string {
	v := release
	if v == "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gigaledger %s\n", v)
	if info.Main.Path != "" {
		fmt.Fprintf(&b, "module:   %s\n", info.Main.Path)
	}
	revision := settings["vcs.revision"]
	if revision == "" {
		revision = "unknown (built without version control information)"
	}
	fmt.Fprintf(&b, "revision: %s\n", revision)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "time:     %s\n", t)
	}
	if settings["vcs.modified"] == "true" {
		fmt.Fprintf(&b, "modified: true (uncommitted changes in the build's work tree)\n")
	}
	if info.GoVersion != "" {
		fmt.Fprintf(&b, "go:       %s\n", info.GoVersion)
	}
	return b.String()
}
