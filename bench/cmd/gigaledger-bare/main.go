// Command gigaledger-bare runs the bench's bare-HTTP ceiling (package bench/bare): GigaLedger's
// admin API handler over a backend that does no ledger work, on loopback. bench/compare.sh
// starts it for SYSTEMS=bare.
//
//	go run ./bench/cmd/gigaledger-bare --addr 127.0.0.1:8091
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gigaledger/gigaledger/bench/bare"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bare.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
