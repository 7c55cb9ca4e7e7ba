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
	"syscall"

	"github.com/gigaledger/gigaledger/bench"
)

const usage = `gigaledger — a Raft-replicated ledger cluster for payment backends

usage:
  gigaledger serve [flags]   run a node (single-node cluster by default)
  gigaledger bench [flags]   drive load at a running cluster
  gigaledger cert ...        make a cluster CA and node certificates (node-to-node TLS)
  gigaledger version         print the version

Run 'gigaledger serve --help', 'gigaledger bench --help' or 'gigaledger cert help' for their flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
	case "version":
		fmt.Fprintln(stdout, version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "gigaledger: unknown command %q\n\n%s", args[0], usage)
	return 2
}
