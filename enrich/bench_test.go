package enrich

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func benchStatic(b *testing.B) *Static {
	var sb strings.Builder
	sb.WriteString("prefix,asn,as_name,country,region,city\n")
	for i := range 256 {
		for j := 0; j < 256; j += 16 {
			sb.WriteString(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(j), 0}), 20).Masked().String())
			sb.WriteString(",64496,LAB,ZZ,R,C\n")
		}
	}
	sb.WriteString("10.0.0.0/8,64497,LAB8,ZZ,R,C\n")
	s, err := ParseStatic(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStaticUncached is a lookup in a static table without a cache.
func BenchmarkStaticUncached(b *testing.B) {
	s := benchStatic(b)
	addr := netip.MustParseAddr("10.1.2.3")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		var r Result
		if err := s.Enrich(ctx, addr, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCymruUncached is a Team Cymru lookup (origin record, AS name
// remembered) against a loopback DNS server.
func BenchmarkCymruUncached(b *testing.B) {
	c := &Cymru{Server: startDNS(b, cymruZone()), Zone: "asn.test"}
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.LookupASN(ctx, addr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMMDBUncached is an ASN plus a city lookup in MMDB files.
func BenchmarkMMDBUncached(b *testing.B) {
	asn, err := OpenMMDB(writeMMDB(b, "GeoLite2-ASN", 6, map[string]mmdbtype.Map{
		"192.0.2.0/24": asnRecord(64496, "LAB-NET"),
	}), LayoutAuto)
	if err != nil {
		b.Fatal(err)
	}
	defer asn.Close()
	city, err := OpenMMDB(writeMMDB(b, "GeoLite2-City", 6, map[string]mmdbtype.Map{
		"192.0.2.0/24": cityRecord("NL", "North Holland", "NH", "Amsterdam", 52.37, 4.89),
	}), LayoutAuto)
	if err != nil {
		b.Fatal(err)
	}
	defer city.Close()
	chain := Chain{asn, city}
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		var r Result
		if err := chain.Enrich(ctx, addr, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHit is a Cache hit in front of a Cymru lookup.
func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(&Cymru{Server: startDNS(b, cymruZone()), Zone: "asn.test"}, CacheOptions{})
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := b.Context()
	var r Result
	if err := c.Enrich(ctx, addr, &r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var r Result
		if err := c.Enrich(ctx, addr, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHitParallel is Cache hits from all CPUs over 1024
// addresses. The cache is filled first, so that the misses (which
// allocate an entry each) are not counted as hits.
func BenchmarkCacheHitParallel(b *testing.B) {
	c := NewCache(benchStatic(b), CacheOptions{})
	ctx := b.Context()
	addrAt := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 8 & 3), byte(i), 1}) }
	for i := range 1024 {
		var r Result
		if err := c.Enrich(ctx, addrAt(i), &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			var r Result
			addr := addrAt(i)
			if err := c.Enrich(ctx, addr, &r); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func ptrZone() *zone {
	return &zone{ptr: map[string][]string{"1.2.0.192.in-addr.arpa.": {"ntp1.example.net."}}}
}

// BenchmarkReverseDNSUncached is a PTR lookup against a loopback DNS
// server.
func BenchmarkReverseDNSUncached(b *testing.B) {
	d := &ReverseDNS{Server: startDNS(b, ptrZone())}
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.LookupPTR(ctx, addr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReverseDNSCached is a Cache hit in front of a PTR lookup; the
// one allocation is the caller's copy of the names.
func BenchmarkReverseDNSCached(b *testing.B) {
	c := NewCache(&ReverseDNS{Server: startDNS(b, ptrZone())}, CacheOptions{})
	addr := netip.MustParseAddr("192.0.2.1")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		var r Result
		if err := c.Enrich(ctx, addr, &r); err != nil {
			b.Fatal(err)
		}
	}
}
