// Package rdap looks up abuse contacts with the Registration Data Access
// Protocol (RFC 7480, RFC 9082, RFC 9083): a [Client] implements
// [enrich.AbuseLookup] and [enrich.Enricher], asking the servers of an IANA
// [Bootstrap] (RFC 9224) or a configured list, over HTTPS only and only to
// globally reachable addresses.
//
// It is a package of its own so that programs importing [enrich] do not
// link net/http, crypto/tls and crypto/x509 unless they ask registries.
// Client was enrich.RDAP, with the same fields and behaviour, except that
// the field for the HTTP client is HTTPClient (it was Client). The errors wrap
// enrich's shared ones ([enrich.ErrNotFound], [enrich.ErrNotConfigured],
// [enrich.ErrResponseTooLarge], [enrich.ErrMalformed]), so [errors.Is] and
// [enrich.IgnoreNotFound] treat them like every other provider's.
//
// A Client sends nothing until a caller asks it; nothing happens at import
// time, and the package keeps no mutable globals.
package rdap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ntpctl/ntpctl/enrich"
)

// Errors of RDAP queries.
var (
	// ErrTooManyRedirects reports an RDAP query redirected more often
	// than [Client.MaxRedirects] allows.
	ErrTooManyRedirects = errors.New("rdap: too many redirects")
	// ErrInsecureURL reports a server URL or a redirect that is not
	// HTTPS: RDAP answers decide where abuse reports go, so they are
	// only taken over TLS (RFC 7481 §3.2).
	ErrInsecureURL = errors.New("rdap: not an https URL")
	// ErrForbiddenAddress reports a connection refused at dial time:
	// the server's address (after name resolution) is loopback,
	// private, link-local or another special-purpose address, or one
	// [Client.AllowDial] refused.
	ErrForbiddenAddress = errors.New("rdap: address not allowed")
)

// HTTPError reports an HTTP answer with an unexpected status.
type HTTPError struct {
	// URL is the URL that answered, after redirects.
	URL string
	// StatusCode is the HTTP status.
	StatusCode int
}

// Error implements the error interface.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("rdap: %s: HTTP %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Client looks up abuse contacts with the Registration Data Access
// Protocol (RFC 7480, RFC 9082, RFC 9083). It implements
// [enrich.AbuseLookup] and [enrich.Enricher].
//
// For an address it asks {base}/ip/{addr} (RFC 9082 §3.1.1) of the
// servers [Bootstrap] names for the address, then of Servers, in order,
// until one answers; redirects are followed, as registries use them to
// point at the registry that holds the address (RFC 7480 §5.2). In the IP
// network object of the answer it looks for the entity with the "abuse"
// role, breadth first through nested entities (RFC 9083 §5.1, §5.4), and
// takes the first email of its jCard (RFC 7095). A 404 from every server,
// or an answer without an abuse email, is [enrich.ErrNotFound].
//
// A Client with no Servers and no Bootstrap is not configured, and sends
// nothing: its lookups return [enrich.ErrNotConfigured]. The other fields'
// zero values work. A Client is safe for concurrent use.
type Client struct {
	// Servers are base URLs of RDAP services, such as
	// "https://rdap.arin.net/registry", tried after Bootstrap's.
	Servers []string
	// Bootstrap, when set, names the servers for each address; see
	// [ParseBootstrap].
	Bootstrap Bootstrap
	// HTTPClient sends the requests; nil means a client of the Client's
	// own that connects only to addresses AllowDial allows, checked at
	// dial time, after name resolution (so a name that resolves to an
	// internal address, or rebinds to one, is refused too), and verifies
	// certificates with RootCAs. An HTTPClient set here is used as it
	// is: its transport decides where it may connect. Either way only
	// HTTPS URLs are asked and followed, and unless the client has its
	// own CheckRedirect, redirects are bounded by MaxRedirects.
	HTTPClient *http.Client
	// AllowDial decides which addresses the default client may connect
	// to; nil means only globally reachable unicast addresses: no
	// loopback, private, shared (CGNAT), link-local, documentation,
	// benchmarking, multicast or other IANA special-purpose address, and
	// no IPv4-mapped, 6to4 or NAT64 form of one.
	AllowDial func(netip.AddrPort) bool
	// RootCAs verifies the servers' certificates for the default client;
	// nil means the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds each request; 0 means 10 seconds.
	Timeout time.Duration
	// MaxBody is the largest response body read, in bytes; a longer one
	// is an error matching [enrich.ErrResponseTooLarge]. 0 means 1 MiB.
	MaxBody int64
	// MaxRedirects is how many redirects a request may follow; 0 means
	// 5, a negative value follows none.
	MaxRedirects int
	// UserAgent is sent when set.
	UserAgent string

	once sync.Once
	own  *http.Client
}

// LookupAbuse implements [enrich.AbuseLookup].
func (d *Client) LookupAbuse(ctx context.Context, addr netip.Addr) (enrich.Abuse, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return enrich.Abuse{}, notFound("rdap", addr)
	}
	bases := slices.Concat(d.Bootstrap.Servers(addr), d.Servers)
	if len(bases) == 0 {
		return enrich.Abuse{}, fmt.Errorf("rdap: no server for %v: %w", addr, enrich.ErrNotConfigured)
	}
	client := d.client()
	var errs []error
	seen := make(map[string]bool, len(bases))
	for _, base := range bases {
		base = strings.TrimRight(base, "/")
		if seen[base] {
			continue
		}
		seen[base] = true
		if !isHTTPS(base) {
			errs = append(errs, fmt.Errorf("%w: %s", ErrInsecureURL, base))
			continue
		}
		a, err := d.query(ctx, client, base+"/ip/"+addr.String())
		if err == nil {
			return a, nil
		}
		var he *HTTPError
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			errs = append(errs, notFound("rdap "+he.URL, addr))
			continue
		}
		if errors.Is(err, enrich.ErrNotFound) {
			// The registry answered, without a contact: asking
			// others would not help.
			return enrich.Abuse{}, err
		}
		if ctx.Err() != nil {
			return enrich.Abuse{}, errors.Join(append(errs, err)...)
		}
		errs = append(errs, err)
	}
	if enrich.IgnoreNotFound(errors.Join(errs...)) == nil {
		return enrich.Abuse{}, notFound("rdap", addr)
	}
	return enrich.Abuse{}, errors.Join(errs...)
}

func isHTTPS(u string) bool { return len(u) > 8 && strings.EqualFold(u[:8], "https://") }

// client returns the client for a lookup: HTTPClient, or the Client's own
// (made once), with redirects bounded and HTTPS only.
func (d *Client) client() *http.Client {
	c := d.HTTPClient
	if c == nil {
		d.once.Do(func() { d.own = d.defaultClient() })
		c = d.own
	}
	if c.CheckRedirect != nil {
		return c
	}
	max := d.MaxRedirects
	if max == 0 {
		max = 5
	}
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > max {
			return fmt.Errorf("%w: %d following %s", ErrTooManyRedirects, max, via[0].URL)
		}
		if req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirect to %s", ErrInsecureURL, req.URL.Redacted())
		}
		return nil
	}
	return &cc
}

// defaultClient is a client whose dialer refuses the addresses AllowDial
// does not allow, after resolution: the check runs on the socket's
// address, so DNS cannot point it elsewhere.
func (d *Client) defaultClient() *http.Client {
	allow := d.AllowDial
	if allow == nil {
		allow = func(ap netip.AddrPort) bool { return globallyReachable(ap.Addr()) }
	}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !allow(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the check
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: d.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}
}

// globallyReachable reports whether a is an address an RDAP server may
// have: unicast, and in no IANA special-purpose or private range (the
// forms that embed an IPv4 address are judged by it).
func globallyReachable(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || !a.IsGlobalUnicast() || a.IsPrivate() {
		return false // loopback, link-local, multicast, unspecified, RFC 1918, ULA
	}
	if a.Is6() {
		switch {
		case nat64Prefix.Contains(a):
			return globallyReachable(netip.AddrFrom4([4]byte(a.AsSlice()[12:16])))
		case sixToFour.Contains(a):
			return globallyReachable(netip.AddrFrom4([4]byte(a.AsSlice()[2:6])))
		case !global6.Contains(a):
			return false
		}
	}
	for _, p := range specialUse {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	global6     = netip.MustParsePrefix("2000::/3")
	// specialUse are the special-purpose ranges netip's predicates miss
	// (IANA special-purpose registries).
	specialUse = func() []netip.Prefix {
		var out []netip.Prefix
		for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
			"192.52.193.0/24", "192.88.99.0/24", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24",
			"203.0.113.0/24", "240.0.0.0/4", "2001::/23", "2001:db8::/32", "2620:4f:8000::/48", "3fff::/20"} {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}()
)

func (d *Client) query(ctx context.Context, client *http.Client, url string) (enrich.Abuse, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return enrich.Abuse{}, fmt.Errorf("rdap: %w", err)
	}
	// RFC 7480 §4.2: the RDAP media type, JSON as a fallback.
	req.Header.Set("Accept", "application/rdap+json, application/json;q=0.9")
	if d.UserAgent != "" {
		req.Header.Set("User-Agent", d.UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return enrich.Abuse{}, fmt.Errorf("rdap: %w", err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		io.CopyN(io.Discard, resp.Body, 4096)
		return enrich.Abuse{}, &HTTPError{URL: final, StatusCode: resp.StatusCode}
	}
	body, err := readCapped(resp.Body, d.MaxBody)
	if cerr := ctx.Err(); cerr != nil {
		// The time ran out while the body came: what came is cut short
		// (an HTTP/2 stream cancelled reads as an early end).
		return enrich.Abuse{}, fmt.Errorf("rdap %s: %w", final, cerr)
	}
	if err != nil {
		return enrich.Abuse{}, fmt.Errorf("rdap %s: %w", final, err)
	}
	a, err := parseAbuse(body, final)
	if err != nil {
		return enrich.Abuse{}, err
	}
	a.Source = final
	return a, nil
}

// readCapped reads all of r, or fails with enrich.ErrResponseTooLarge once more
// than max bytes (0: 1 MiB) arrive.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = 1 << 20
	}
	limit := max + 1 // one byte more, to tell "exactly max" from "more"
	if limit < 0 {
		limit = max // max is math.MaxInt64: nothing can be longer
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, limit))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("%w: more than %d bytes", enrich.ErrResponseTooLarge, max)
	}
	return buf.Bytes(), nil
}

// entity is the part of an RDAP entity object (RFC 9083 §5.1) used
// here; an IP network object (§5.4) has the same "entities" member.
type entity struct {
	Handle     string            `json:"handle"`
	Roles      []string          `json:"roles"`
	VCardArray []json.RawMessage `json:"vcardArray"`
	Entities   []entity          `json:"entities"`
}

// parseAbuse finds the abuse contact in an RDAP IP network object.
func parseAbuse(body []byte, source string) (enrich.Abuse, error) {
	var top struct {
		ObjectClassName string   `json:"objectClassName"`
		ErrorCode       int      `json:"errorCode"`
		Entities        []entity `json:"entities"`
	}
	if err := json.Unmarshal(body, &top); err != nil {
		return enrich.Abuse{}, parseErr("rdap "+source, 0, "", "bad JSON", err)
	}
	if top.ObjectClassName != "ip network" {
		return enrich.Abuse{}, parseErr("rdap "+source, 0, top.ObjectClassName, "not an ip network object", nil)
	}
	// Breadth first, so that the network's own abuse contact wins over
	// one nested deeper (ARIN, for one, nests it under the registrant).
	level := top.Entities
	for depth := 0; len(level) > 0 && depth < 8; depth++ {
		var next []entity
		for _, e := range level {
			if slices.ContainsFunc(e.Roles, func(r string) bool { return strings.EqualFold(r, "abuse") }) {
				if email := vcardEmail(e.VCardArray); email != "" {
					return enrich.Abuse{Email: email, Handle: e.Handle}, nil
				}
			}
			next = append(next, e.Entities...)
		}
		level = next
	}
	return enrich.Abuse{}, fmt.Errorf("%w: no abuse email in %s", enrich.ErrNotFound, source)
}

// vcardEmail returns the first email of a jCard (RFC 7095 §3.3:
// ["vcard", [[name, params, type, value], …]]), or "".
func vcardEmail(card []json.RawMessage) string {
	if len(card) != 2 {
		return ""
	}
	var kind string
	if json.Unmarshal(card[0], &kind) != nil || kind != "vcard" {
		return ""
	}
	var props [][]json.RawMessage
	if json.Unmarshal(card[1], &props) != nil {
		return ""
	}
	for _, p := range props {
		if len(p) < 4 {
			continue
		}
		var name, value string
		if json.Unmarshal(p[0], &name) != nil || !strings.EqualFold(name, "email") {
			continue
		}
		if json.Unmarshal(p[3], &value) == nil && strings.Contains(value, "@") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// Enrich implements [enrich.Enricher] by filling [enrich.Result.Abuse].
func (d *Client) Enrich(ctx context.Context, addr netip.Addr, r *enrich.Result) error {
	return enrich.FromAbuse(d).Enrich(ctx, addr, r)
}

// Bootstrap maps address prefixes to the base URLs of the RDAP services
// that hold them, as IANA's bootstrap registry does (RFC 9224). Build one
// by hand or with [ParseBootstrap]; do not modify it while it is in use.
type Bootstrap map[netip.Prefix][]string

// ParseBootstrap reads an IANA RDAP bootstrap file for IP addresses
// (https://data.iana.org/rdap/ipv4.json or ipv6.json; RFC 9224 §3, §5.1):
//
//	{"version": "1.0", "services": [[["192.0.2.0/24"], ["https://rdap.example/"]], …]}
//
// HTTPS URLs are listed before others, as RFC 9224 §3 asks. Reading both
// files into one Bootstrap (into) is allowed; into may be nil. A file
// without a "services" member, or with any malformed entry, is a
// [*enrich.ParseError] and leaves into unchanged.
func ParseBootstrap(r io.Reader, into Bootstrap) (Bootstrap, error) {
	var doc struct {
		// A pointer, to tell a missing member from an empty list.
		Services *[][][]string `json:"services"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, parseErr("rdap bootstrap", 0, "", "bad JSON", err)
	}
	if doc.Services == nil {
		return nil, parseErr("rdap bootstrap", 0, "", "no services member", nil)
	}
	// Parse everything before touching into, so that a bad file leaves
	// it as it was.
	parsed := make(Bootstrap)
	for _, svc := range *doc.Services {
		if len(svc) != 2 {
			return nil, parseErr("rdap bootstrap", 0, "", "service is not [prefixes, urls]", nil)
		}
		urls := slices.Clone(svc[1])
		slices.SortStableFunc(urls, func(a, b string) int {
			ha, hb := strings.HasPrefix(a, "https:"), strings.HasPrefix(b, "https:")
			switch {
			case ha && !hb:
				return -1
			case hb && !ha:
				return 1
			}
			return 0
		})
		for _, s := range svc[0] {
			// An IPv4-mapped prefix becomes the IPv4 prefix, since
			// Servers looks addresses up unmapped.
			if !strings.Contains(s, "/") {
				return nil, parseErr("rdap bootstrap", 0, s, "bad prefix", nil)
			}
			p, err := parsePrefix(s)
			if err != nil {
				return nil, parseErr("rdap bootstrap", 0, s, "bad prefix", err)
			}
			parsed[p] = urls
		}
	}
	if into == nil {
		return parsed, nil
	}
	maps.Copy(into, parsed)
	return into, nil
}

// Servers returns the base URLs for the longest prefix covering addr, or
// nil.
func (b Bootstrap) Servers(addr netip.Addr) []string {
	addr = addr.Unmap().WithZone("")
	best := -1
	var urls []string
	for p, u := range b {
		if p.Bits() > best && p.Contains(addr) {
			best, urls = p.Bits(), u
		}
	}
	return urls
}

// parsePrefix reads a prefix as enrich's tables do: masked, and an
// IPv4-mapped prefix as the IPv4 prefix it maps.
func parsePrefix(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", v)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", v)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// parseErr is an [enrich.ParseError], its input shortened as that type
// documents.
func parseErr(source string, line int, input, reason string, err error) *enrich.ParseError {
	const max = 128
	if len(input) > max {
		input = input[:max]
	}
	return &enrich.ParseError{Source: source, Line: line, Input: input, Reason: reason, Err: err}
}

// notFound wraps enrich.ErrNotFound with what was looked up and where.
func notFound(what string, addr netip.Addr) error {
	return fmt.Errorf("%w: %s %v", enrich.ErrNotFound, what, addr)
}
