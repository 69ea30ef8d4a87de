package enrich

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// resolver returns the resolver to use: one that sends every query to
// server (host:port) when server is set, r when it is not nil, and the
// system's otherwise.
func resolver(r *net.Resolver, server string) *net.Resolver {
	if server != "" {
		var d net.Dialer
		server = serverAddr(server)
		return &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, server)
			},
		}
	}
	if r != nil {
		return r
	}
	return net.DefaultResolver
}

// serverAddr returns server as host:port, port 53 when server names only a
// host ("192.0.2.53", "2001:db8::53", "[2001:db8::53]").
func serverAddr(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(server, "["), "]"), "53")
}

// dnsError classifies a resolver error: NXDOMAIN and NODATA become
// ErrNotFound; anything else is returned wrapped with what was asked.
func dnsError(what string, addr netip.Addr, err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		// Keep a single %w so that IgnoreNotFound sees a plain not-found.
		return fmt.Errorf("%w: %s %v: %v", ErrNotFound, what, addr, err)
	}
	return fmt.Errorf("enrich: %s %v: %w", what, addr, err)
}

// ReverseDNS looks up PTR names through a [net.Resolver]. It implements
// [PTRLookup]. The zero value uses the system's resolver; set Server to
// send the queries to one DNS server instead. It is safe for concurrent
// use; timeouts and concurrency limits come from the caller's ctx or from
// [Limit].
//
// Like the system's, Go's resolver answers from /etc/hosts before it asks
// DNS (when nsswitch.conf says "files dns", the usual order), even with
// Server set: an address that /etc/hosts names gets those names and no
// query is sent, so 127.0.0.1 is typically "localhost" whatever the server
// says. net.Resolver offers no way around this; scanned addresses are
// rarely in /etc/hosts, but a lab on loopback is.
type ReverseDNS struct {
	// Server, when set, is the host:port of the DNS server every query
	// goes to (port 53 when only a host is given), over Go's own
	// resolver (UDP, then TCP for truncated answers), after /etc/hosts
	// as said above. It takes precedence over Resolver.
	Server string
	// Resolver is used when Server is empty; nil means
	// [net.DefaultResolver].
	Resolver *net.Resolver
}

// LookupPTR implements [PTRLookup]: the names for addr without their
// trailing dots, in the resolver's order. NXDOMAIN or an answer without
// PTR records is [ErrNotFound].
func (d *ReverseDNS) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	if !addr.IsValid() {
		return nil, notFound("ptr", addr)
	}
	names, err := resolver(d.Resolver, d.Server).LookupAddr(ctx, addr.Unmap().WithZone("").String())
	// Go's resolver drops names that are not valid host names and
	// returns the rest with an error; keep the rest.
	if err != nil && len(names) == 0 {
		return nil, dnsError("ptr", addr, err)
	}
	out := names[:0]
	for _, n := range names {
		if n = strings.TrimSuffix(n, "."); n != "" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, notFound("ptr", addr)
	}
	return out, nil
}

// Enrich implements [Enricher] by filling [Result.Names].
func (d *ReverseDNS) Enrich(ctx context.Context, addr netip.Addr, r *Result) error {
	return FromPTR(d).Enrich(ctx, addr, r)
}
