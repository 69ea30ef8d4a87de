package rdap

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/enrich"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// arinStyle is an IP network object shaped like ARIN's answers (RFC 9083
// §5.4): the abuse contact is nested under the registrant organisation.
const arinStyle = `{
  "rdapConformance": ["nro_rdap_profile_0", "rdap_level_0"],
  "notices": [{"title": "Terms of Service", "description": ["By using the ARIN RDAP/Whois service, you are agreeing to the RDAP/Whois Terms of Use"]}],
  "handle": "NET-192-0-2-0-1",
  "startAddress": "192.0.2.0",
  "endAddress": "192.0.2.255",
  "ipVersion": "v4",
  "name": "TEST-NET-1",
  "type": "ASSIGNMENT",
  "parentHandle": "NET-192-0-0-0-0",
  "cidr0_cidrs": [{"v4prefix": "192.0.2.0", "length": 24}],
  "objectClassName": "ip network",
  "events": [{"eventAction": "registration", "eventDate": "2010-01-01T00:00:00-05:00"}],
  "entities": [
    {
      "handle": "EXAMPLE-ORG",
      "objectClassName": "entity",
      "roles": ["registrant"],
      "vcardArray": ["vcard", [
        ["version", {}, "text", "4.0"],
        ["fn", {}, "text", "Example Org"],
        ["adr", {"label": "1 Example Way\nExample City\n"}, "text", ["", "", "", "", "", "", ""]],
        ["kind", {}, "text", "org"]
      ]],
      "entities": [
        {
          "handle": "TECH-EXAMPLE",
          "objectClassName": "entity",
          "roles": ["technical"],
          "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["email", {}, "text", "noc@example.net"]]]
        },
        {
          "handle": "ABUSE-EXAMPLE",
          "objectClassName": "entity",
          "roles": ["abuse"],
          "vcardArray": ["vcard", [
            ["version", {}, "text", "4.0"],
            ["fn", {}, "text", "Abuse Desk"],
            ["kind", {}, "text", "group"],
            ["tel", {"type": ["work", "voice"]}, "text", "+1-555-0100"],
            ["email", {}, "text", "abuse@example.net"]
          ]]
        }
      ]
    }
  ]
}`

// ripeStyle has the abuse contact at the top level, next to a nested one
// that must lose.
const ripeStyle = `{
  "objectClassName": "ip network", "handle": "2001:db8::/32", "ipVersion": "v6",
  "entities": [
    {"objectClassName": "entity", "handle": "ORG-X", "roles": ["registrant"],
     "entities": [{"objectClassName": "entity", "handle": "DEEP", "roles": ["abuse"],
       "vcardArray": ["vcard", [["email", {}, "text", "deep@example.org"]]]}]},
    {"objectClassName": "entity", "handle": "AR-EX", "roles": ["ABUSE", "technical"],
     "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["email", {"pref": "1"}, "text", "abuse@example.org"]]]}
  ]
}`

const noAbuse = `{"objectClassName": "ip network", "handle": "X", "entities": [
  {"objectClassName": "entity", "handle": "A", "roles": ["abuse"], "vcardArray": ["vcard", [["fn", {}, "text", "no email"]]]},
  {"objectClassName": "entity", "handle": "B", "roles": ["technical"], "vcardArray": ["vcard", [["email", {}, "text", "noc@example.net"]]]}
]}`

// rdapServer starts an RDAP server for a test: HTTPS on loopback, which
// trusted Clients reach.
func rdapServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// trusted makes d a test's Client: the default client, trusting the test
// servers' certificate, allowed to connect to loopback (and nothing
// else).
func trusted(d *Client) *Client {
	d.RootCAs = testRoots()
	d.AllowDial = func(ap netip.AddrPort) bool { return ap.Addr().IsLoopback() }
	return d
}

var (
	rootsOnce sync.Once
	roots     *x509.CertPool
)

// testRoots trusts the certificate every httptest TLS server presents.
func testRoots() *x509.CertPool {
	rootsOnce.Do(func() {
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		defer srv.Close()
		roots = x509.NewCertPool()
		roots.AddCert(srv.Certificate())
	})
	return roots
}

func rdapJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/rdap+json")
	fmt.Fprint(w, body)
}

func TestRDAPNestedAbuse(t *testing.T) {
	var gotAccept, gotUA, gotPath atomic.Value
	srv := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotAccept.Store(r.Header.Get("Accept"))
		gotUA.Store(r.Header.Get("User-Agent"))
		gotPath.Store(r.URL.Path)
		rdapJSON(w, arinStyle)
	})
	d := trusted(&Client{Servers: []string{srv.URL + "/registry/"}, UserAgent: "ntpctl-test"})
	a, err := d.LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, enrich.Abuse{Email: "abuse@example.net", Handle: "ABUSE-EXAMPLE", Source: srv.URL + "/registry/ip/192.0.2.1"}, a)
	assert.Equal(t, "/registry/ip/192.0.2.1", gotPath.Load())
	assert.Contains(t, gotAccept.Load(), "application/rdap+json")
	assert.Equal(t, "ntpctl-test", gotUA.Load())

	r, err := enrich.Lookup(t.Context(), d, netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "abuse@example.net", r.Abuse.Email)
}

func TestRDAPShallowestAbuseWins(t *testing.T) {
	srv := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, ripeStyle) })
	a, err := trusted(&Client{Servers: []string{srv.URL}}).LookupAbuse(t.Context(), netip.MustParseAddr("2001:db8::1"))
	require.NoError(t, err)
	assert.Equal(t, "abuse@example.org", a.Email)
	assert.Equal(t, "AR-EX", a.Handle)
}

func TestRDAPRedirect(t *testing.T) {
	target := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/rdap/ip/192.0.2.1", r.URL.Path)
		rdapJSON(w, arinStyle)
	})
	var hops atomic.Int32
	first := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, target.URL+"/rdap"+r.URL.Path, http.StatusMovedPermanently)
	})
	a, err := trusted(&Client{Servers: []string{first.URL}}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, target.URL+"/rdap/ip/192.0.2.1", a.Source, "the source is the URL that answered")
	assert.Equal(t, int32(1), hops.Load())

	var loop *httptest.Server
	loop = rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+r.URL.Path, http.StatusFound)
	})
	_, err = trusted(&Client{Servers: []string{loop.URL}, MaxRedirects: 3}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, ErrTooManyRedirects)
	assert.NotErrorIs(t, err, enrich.ErrNotFound)

	_, err = trusted(&Client{Servers: []string{first.URL}, MaxRedirects: -1}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, ErrTooManyRedirects)
}

func TestRDAPServerOrderAndErrors(t *testing.T) {
	notFoundSrv := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	failing := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusInternalServerError)
	})
	good := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, arinStyle) })
	empty := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, noAbuse) })
	garbage := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, `{"objectClassName": `) })
	domain := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, `{"objectClassName": "domain"}`) })
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := t.Context()

	a, err := trusted(&Client{Servers: []string{notFoundSrv.URL, failing.URL, good.URL}}).LookupAbuse(ctx, addr)
	require.NoError(t, err)
	assert.Equal(t, "abuse@example.net", a.Email)

	_, err = trusted(&Client{Servers: []string{notFoundSrv.URL, notFoundSrv.URL + "/"}}).LookupAbuse(ctx, addr)
	assert.ErrorIs(t, err, enrich.ErrNotFound)
	assert.NoError(t, enrich.IgnoreNotFound(err))

	_, err = trusted(&Client{Servers: []string{failing.URL}}).LookupAbuse(ctx, addr)
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusInternalServerError, he.StatusCode)
	assert.NotErrorIs(t, err, enrich.ErrNotFound)

	_, err = trusted(&Client{Servers: []string{notFoundSrv.URL, failing.URL}}).LookupAbuse(ctx, addr)
	assert.Error(t, enrich.IgnoreNotFound(err), "a failure among not-founds is a failure")

	_, err = trusted(&Client{Servers: []string{empty.URL, good.URL}}).LookupAbuse(ctx, addr)
	assert.ErrorIs(t, err, enrich.ErrNotFound, "an answer without an abuse email ends the search")

	_, err = trusted(&Client{Servers: []string{garbage.URL}}).LookupAbuse(ctx, addr)
	assert.ErrorIs(t, err, enrich.ErrMalformed)
	_, err = trusted(&Client{Servers: []string{domain.URL}}).LookupAbuse(ctx, addr)
	assert.ErrorIs(t, err, enrich.ErrMalformed)

	_, err = trusted(&Client{}).LookupAbuse(ctx, addr)
	assert.ErrorIs(t, err, enrich.ErrNotConfigured)
}

func TestRDAPOversizedBody(t *testing.T) {
	big := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rdap+json")
		fmt.Fprint(w, `{"objectClassName": "ip network", "remarks": [{"description": ["`)
		fmt.Fprint(w, strings.Repeat("x", 2<<20))
		fmt.Fprint(w, `"]}]}`)
	})
	_, err := trusted(&Client{Servers: []string{big.URL}}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, enrich.ErrResponseTooLarge)

	small := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, arinStyle) })
	_, err = trusted(&Client{Servers: []string{small.URL}, MaxBody: 100}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, enrich.ErrResponseTooLarge)
}

// TestReadCappedBoundary: a body of exactly the cap is read, one byte more
// is too large. Regression: with the cap at math.MaxInt64, cap+1
// overflowed and every body read as empty.
func TestReadCappedBoundary(t *testing.T) {
	b, err := readCapped(strings.NewReader("12345"), 5)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))
	_, err = readCapped(strings.NewReader("123456"), 5)
	assert.ErrorIs(t, err, enrich.ErrResponseTooLarge)
	b, err = readCapped(strings.NewReader("12345"), math.MaxInt64)
	require.NoError(t, err)
	assert.Equal(t, "12345", string(b))

	srv := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, arinStyle) })
	for _, max := range []int64{int64(len(arinStyle)), math.MaxInt64} {
		a, err := trusted(&Client{Servers: []string{srv.URL}, MaxBody: max}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
		require.NoError(t, err, max)
		assert.Equal(t, "abuse@example.net", a.Email)
	}
	_, err = trusted(&Client{Servers: []string{srv.URL}, MaxBody: int64(len(arinStyle)) - 1}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, enrich.ErrResponseTooLarge)
}

// FuzzParseRDAPAbuse: any body is an abuse contact with an address, a
// not-found, or malformed; never a panic or another kind of error.
func FuzzParseRDAPAbuse(f *testing.F) {
	for _, s := range []string{arinStyle, ripeStyle, noAbuse, `{"objectClassName": "domain"}`, `{"objectClassName": `,
		`{"objectClassName": "ip network", "entities": [{"roles": ["abuse"], "vcardArray": ["vcard", [["email", {}, "text", 7]]]}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := parseAbuse(body, "fuzz")
		switch {
		case err == nil:
			if !strings.Contains(a.Email, "@") || strings.TrimSpace(a.Email) != a.Email {
				t.Fatalf("bad email %q", a.Email)
			}
		case errors.Is(err, enrich.ErrNotFound) == errors.Is(err, enrich.ErrMalformed):
			t.Fatalf("error %v is not exactly one of not-found and malformed", err)
		case a != (enrich.Abuse{}):
			t.Fatalf("partial result %+v with %v", a, err)
		}
	})
}

// FuzzParseBootstrap: a bootstrap that parses maps masked prefixes to
// server lists, HTTPS first, and each prefix finds a list for its own
// first address; one that does not parse is malformed.
func FuzzParseBootstrap(f *testing.F) {
	f.Add(`{"version": "1.0", "services": [[["192.0.2.0/24", "2001:db8::/32"], ["http://a/", "https://b/"]]]}`)
	f.Add(`{"services": [[["192.0.0.0/8"], []], [["192.0.2.0/24"], ["https://x/"]]]}`)
	f.Add(`{"services": []}`)
	f.Add(`{"services": [[["::ffff:192.0.2.0/120"], ["https://x/"]]]}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, doc string) {
		b, err := ParseBootstrap(strings.NewReader(doc), nil)
		if err != nil {
			if !errors.Is(err, enrich.ErrMalformed) {
				t.Fatalf("error %v does not match enrich.ErrMalformed", err)
			}
			return
		}
		for p, urls := range b {
			if p != p.Masked() {
				t.Fatalf("prefix %v not masked", p)
			}
			// The answer for p's first address comes from p or from a
			// longer prefix that covers it.
			a := p.Addr()
			got := b.Servers(a)
			found := false
			for q, u := range b {
				if q.Contains(a) && q.Bits() >= p.Bits() && slices.Equal(u, got) {
					found = true
				}
			}
			if !found {
				t.Fatalf("servers for %v: %v, prefix %v has %v", a, got, p, urls)
			}
			seenHTTP := false
			for _, u := range urls {
				https := strings.HasPrefix(u, "https:")
				if https && seenHTTP {
					t.Fatalf("https after another scheme in %v", urls)
				}
				seenHTTP = seenHTTP || !https
			}
		}
	})
}

func TestRDAPTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	start := time.Now()
	_, err := trusted(&Client{Servers: []string{slow.URL}, Timeout: 100 * time.Millisecond}).LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestRDAPBootstrap(t *testing.T) {
	v4 := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, arinStyle) })
	v6 := rdapServer(t, func(w http.ResponseWriter, r *http.Request) { rdapJSON(w, ripeStyle) })
	// Shaped like IANA's https://data.iana.org/rdap/ipv4.json (RFC 9224).
	ipv4 := fmt.Sprintf(`{
	  "description": "RDAP bootstrap file for IPv4 address allocations",
	  "publication": "2024-01-01T00:00:00Z",
	  "services": [
	    [["192.0.0.0/8"], ["http://192.0.2.255:1/", "%s/"]],
	    [["192.0.2.0/24", "198.51.100.0/24"], ["%s/rdap/"]]
	  ],
	  "version": "1.0"
	}`, "https://unused.invalid", v4.URL)
	b, err := ParseBootstrap(strings.NewReader(ipv4), nil)
	require.NoError(t, err)
	b, err = ParseBootstrap(strings.NewReader(fmt.Sprintf(`{"services": [[["2001:db8::/32"], ["%s"]]], "version": "1.0"}`, v6.URL)), b)
	require.NoError(t, err)
	assert.Equal(t, []string{v4.URL + "/rdap/"}, b.Servers(netip.MustParseAddr("192.0.2.1")), "longest prefix")
	assert.Equal(t, []string{"https://unused.invalid/", "http://192.0.2.255:1/"}, b.Servers(netip.MustParseAddr("192.1.1.1")), "https first")
	assert.Nil(t, b.Servers(netip.MustParseAddr("10.0.0.1")))

	d := trusted(&Client{Bootstrap: b})
	a, err := d.LookupAbuse(t.Context(), netip.MustParseAddr("192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, "abuse@example.net", a.Email)
	a, err = d.LookupAbuse(t.Context(), netip.MustParseAddr("2001:db8::1"))
	require.NoError(t, err)
	assert.Equal(t, "abuse@example.org", a.Email)
	_, err = d.LookupAbuse(t.Context(), netip.MustParseAddr("10.0.0.1"))
	assert.ErrorIs(t, err, enrich.ErrNotConfigured)

	for _, bad := range []string{
		`{`, `{"services": [[["192.0.2.0/24"]]]}`, `{"services": [[["192.0.2.0"], ["http://x/"]]]}`,
		// Regression: a document without services (another registry's
		// file, an error page in JSON) was an empty bootstrap, no error.
		`{}`, `{"version": "1.0", "services": null}`, `{"version": "1.0", "service": []}`,
	} {
		_, err := ParseBootstrap(strings.NewReader(bad), nil)
		assert.ErrorIs(t, err, enrich.ErrMalformed, bad)
	}
	// Regression: an IPv4-mapped prefix was kept as IPv6, where Servers,
	// which unmaps addresses, never looked.
	mapped, err := ParseBootstrap(strings.NewReader(`{"services": [[["::ffff:203.0.113.0/120"], ["https://rdap.example/"]]]}`), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://rdap.example/"}, mapped.Servers(netip.MustParseAddr("203.0.113.9")))
	assert.Equal(t, []string{"https://rdap.example/"}, mapped.Servers(netip.MustParseAddr("::ffff:203.0.113.9")))

	empty, err := ParseBootstrap(strings.NewReader(`{"version": "1.0", "services": []}`), nil)
	require.NoError(t, err)
	assert.Empty(t, empty)

	// Regression: a file that failed halfway had already added its first
	// services to into.
	before := len(b)
	_, err = ParseBootstrap(strings.NewReader(
		`{"services": [[["203.0.113.0/24"], ["https://rdap.example/"]], [["not a prefix"], ["https://rdap.example/"]]]}`), b)
	assert.ErrorIs(t, err, enrich.ErrMalformed)
	assert.Len(t, b, before)
	assert.Nil(t, b.Servers(netip.MustParseAddr("203.0.113.1")))
}

// TestRDAPRefusesInternalTargets: a registry cannot make the client
// fetch an internal page and report its contents as the abuse contact:
// plain-HTTP redirects and URLs are refused, and so are connections to
// loopback, private and other special-purpose addresses, checked at dial
// time (a host name that resolves to one is refused too).
func TestRDAPRefusesInternalTargets(t *testing.T) {
	hits := 0
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		rdapJSON(w, arinStyle)
	}))
	defer internal.Close()
	internalTLS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		rdapJSON(w, arinStyle)
	}))
	defer internalTLS.Close()
	to := ""
	registry := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, to+"/admin/ip/192.0.2.1", http.StatusFound)
	})
	regPort := netip.MustParseAddrPort(registry.Listener.Addr().String()).Port()
	onlyRegistry := func(d *Client) *Client {
		d.RootCAs = testRoots()
		d.AllowDial = func(ap netip.AddrPort) bool { return ap.Addr().IsLoopback() && ap.Port() == regPort }
		return d
	}
	addr := netip.MustParseAddr("192.0.2.1")

	to = internal.URL // 302 to http://127.0.0.1:PORT/admin/…
	_, err := onlyRegistry(&Client{Servers: []string{registry.URL}}).LookupAbuse(t.Context(), addr)
	assert.ErrorIs(t, err, ErrInsecureURL)
	to = internalTLS.URL // 302 to https://127.0.0.1:OTHER/admin/…
	_, err = onlyRegistry(&Client{Servers: []string{registry.URL}}).LookupAbuse(t.Context(), addr)
	assert.ErrorIs(t, err, ErrForbiddenAddress)
	assert.Zero(t, hits, "the internal servers were never asked")

	// The default rule: only globally reachable addresses.
	for _, base := range []string{internalTLS.URL, strings.Replace(internalTLS.URL, "127.0.0.1", "localhost", 1)} {
		_, err = (&Client{Servers: []string{base}, RootCAs: testRoots()}).LookupAbuse(t.Context(), addr)
		assert.ErrorIs(t, err, ErrForbiddenAddress, base)
	}
	_, err = trusted(&Client{Servers: []string{internal.URL}}).LookupAbuse(t.Context(), addr)
	assert.ErrorIs(t, err, ErrInsecureURL, "plain HTTP servers are not asked")
	assert.Zero(t, hits)
}

func TestGloballyReachable(t *testing.T) {
	for a, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "199.5.26.46": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "100.64.0.1": false,
		"169.254.169.254": false, "0.0.0.0": false, "255.255.255.255": false, "224.0.0.1": false, "198.18.0.1": false,
		"192.0.2.1": false, "::1": false, "::": false, "fe80::1": false, "fc00::1": false, "fd00:ec2::254": false,
		"::ffff:127.0.0.1": false, "::ffff:8.8.8.8": true, "64:ff9b::a00:1": false, "64:ff9b::808:808": true,
		"2002:7f00:1::": false, "2002:808:808::": true, "2001:db8::1": false, "3fff::1": false, "4000::1": false,
		"2620:4f:8000::1": false,
	} {
		assert.Equal(t, want, globallyReachable(netip.MustParseAddr(a)), a)
	}
}
