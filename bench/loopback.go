package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrNotLoopback is returned for a target that may reach another machine.
var ErrNotLoopback = fmt.Errorf("target is not loopback (pass --allow-remote to load a host you own)")

// checkLoopbackHost returns nil when every address host resolves to is
// loopback (127.0.0.0/8 or ::1). An empty host or a Unix socket path (for
// PostgreSQL) counts as local.
func checkLoopbackHost(ctx context.Context, resolver *net.Resolver, host string) error {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.HasPrefix(host, "/") {
		return nil
	}
	if address, err := netip.ParseAddr(host); err == nil {
		if !address.Unmap().IsLoopback() {
			return fmt.Errorf("%s: %w", host, ErrNotLoopback)
		}
		return nil
	}
	addresses, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addresses) == 0 {
		return fmt.Errorf("resolve %s: no addresses", host)
	}
	for _, address := range addresses {
		if !address.Unmap().IsLoopback() {
			return fmt.Errorf("%s resolves to %s: %w", host, address, ErrNotLoopback)
		}
	}
	return nil
}

// checkLoopbackURL checks an http(s) base URL.
func checkLoopbackURL(ctx context.Context, resolver *net.Resolver, raw string) error {
	parsed, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("target %q: %w", raw, err)
	}
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return fmt.Errorf("target %q: scheme must be http or https", raw)
	}
	if parsed.Hostname() == "" {
		return fmt.Errorf("target %q: no host", raw)
	}
	return checkLoopbackHost(ctx, resolver, parsed.Hostname())
}
