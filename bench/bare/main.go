package bare

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The node's HTTP server limits (cmd/gigaledger's newHTTPServer), so that connections are
// served alike.
const (
	readHeaderMax = 10 * time.Second
	readMax       = 30 * time.Second
	idleMax       = 2 * time.Minute
	// shutdownMax bounds the wait for requests in flight when ctx ends.
	shutdownMax = 5 * time.Second
)

// Main runs the bare-HTTP server with args (flags: --addr, --log-level) until ctx ends, and
// returns the process exit code. It listens on loopback only: it has no token and answers every
// write as committed. Ready is the line "listening on ADDR" on stderr (and /readyz).
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("gigaledger-bare", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:8091", "listen address (loopback only)")
	level := flags.String("log-level", "warn", "log level: debug (the access log, as a node's), info, warn, error")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "gigaledger-bare: unexpected arguments %q\n", flags.Args())
		return 2
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "gigaledger-bare: --log-level %q: %v\n", *level, err)
		return 2
	}
	if err := checkLoopback(*addr); err != nil {
		fmt.Fprintf(stderr, "gigaledger-bare: --addr: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "gigaledger-bare: %v\n", err)
		return 1
	}
	if err := serve(ctx, listener, logger); err != nil {
		fmt.Fprintf(stderr, "gigaledger-bare: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the handler on listener until ctx ends, then shuts down (bounded).
func serve(ctx context.Context, listener net.Listener, logger *slog.Logger) error {
	// The node's collectors: the harness reads process_cpu_seconds_total from /metrics.
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	server := &http.Server{Handler: NewHandler(logger, registry), ReadHeaderTimeout: readHeaderMax,
		ReadTimeout: readMax, IdleTimeout: idleMax}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	logger.Warn("listening on " + listener.Addr().String() + " (bare HTTP: no ledger work, every write answered as committed)")
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownMax)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		_ = server.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// checkLoopback accepts host:port whose host is a loopback IP address or "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (the bare server has no auth)", addr)
}
