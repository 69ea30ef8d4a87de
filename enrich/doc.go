// Package enrich looks up what a report needs to know about an address:
// reverse DNS names, the originating AS, geolocation and the network's abuse
// contact, as Shadowserver's reports carry them (hostname, asn, geo, region,
// city, naics, sector) and as a CERT acting on a finding needs them.
//
// # Lookups and enrichers
//
// Each kind of fact has a one-method interface taking a [context.Context]
// and a [netip.Addr]: [PTRLookup], [ASNLookup], [GeoLookup] and
// [AbuseLookup]. An [Enricher] fills the fields of a [Result] it knows;
// [FromPTR], [FromASN], [FromGeo] and [FromAbuse] turn lookups into
// enrichers, and [Func] turns a function into one. Every implementation in
// this package is safe for concurrent use.
//
// "Not found" is an ordinary outcome: it is an error matching [ErrNotFound]
// with [errors.Is], and [IgnoreNotFound] removes it from an error to leave
// the real failures (timeouts, SERVFAIL, broken files).
//
// # Composition
//
// A [Chain] runs enrichers in order on one Result, the first to know a
// field winning (see [Result.Merge]), and joins their errors: a missing AS
// never suppresses the PTR names. [Limit] bounds the concurrency of an
// enricher and the time each call may take. A [Cache] memoises an enricher
// per address, with a size bound, negative caching with its own TTL, and
// one lookup for all concurrent callers of the same address:
//
//	e := enrich.NewCache(enrich.Chain{
//		lab, // a *Static: the operator's own table first
//		enrich.Limit(&enrich.ReverseDNS{}, enrich.LimitOptions{MaxConcurrent: 64, Timeout: 2 * time.Second}),
//		asnFile, // an *MMDB
//		enrich.Limit(&enrich.Cymru{}, enrich.LimitOptions{MaxConcurrent: 16, Timeout: 3 * time.Second}),
//	}, enrich.CacheOptions{})
//	r, err := enrich.Lookup(ctx, e, addr)
//
// # Providers
//
//   - [ReverseDNS]: PTR names through a [net.Resolver], the system's or
//     one that sends every query to a given server.
//   - [MMDB]: ASN and geolocation from MaxMind DB files, through
//     github.com/oschwald/maxminddb-golang/v2: MaxMind GeoLite2/GeoIP2 ASN
//     and City, DB-IP lite, IPinfo Lite; see [Layout].
//   - [Cymru]: Team Cymru's IP-to-ASN mapping over DNS, IPv4 and IPv6.
//   - [Static]: a CSV table of prefixes, for labs, tests and operators'
//     own inventories.
//
// Abuse contacts from the regional registries over RDAP, with a
// configurable server list or an IANA bootstrap file, are in the
// sub-package github.com/ntpctl/ntpctl/enrich/rdap: its Client implements
// [AbuseLookup] and [Enricher] and returns this package's errors. It is
// separate so that this package, and every program importing it, does not
// link net/http, crypto/tls and crypto/x509; a test keeps it so.
//
// No provider sends anything anywhere until a caller makes one and asks
// it: there is no default registry, and nothing happens at import time.
// The package keeps no mutable globals and does not log.
package enrich
