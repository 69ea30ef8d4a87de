package enrich_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl/enrich"
)

// A lab table: documentation ASNs (RFC 5398) on loopback prefixes.
const lab = `# prefix,asn,as_name,country,region,city,naics,sector,abuse_email
127.0.0.0/8,64496,LAB-NET,ZZ,Lab,Loopback,,,abuse@lab.example
127.0.1.0/24,64497,LAB-EDGE,ZZ,Lab,Edge
`

func ExampleParseStatic() {
	table, err := enrich.ParseStatic(strings.NewReader(lab))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"127.0.0.1", "127.0.1.9", "192.0.2.1"} {
		r, err := enrich.Lookup(context.Background(), table, netip.MustParseAddr(s))
		switch {
		case errors.Is(err, enrich.ErrNotFound):
			fmt.Println(s, "not in the table")
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Printf("%s AS%d %s %v %s abuse=%q\n", s, r.ASN.Number, r.ASN.Name, r.ASN.Prefix, r.Geo.City, r.Abuse.Email)
		}
	}
	// Output:
	// 127.0.0.1 AS64496 LAB-NET 127.0.0.0/8 LOOPBACK abuse="abuse@lab.example"
	// 127.0.1.9 AS64497 LAB-EDGE 127.0.1.0/24 EDGE abuse=""
	// 192.0.2.1 not in the table
}

func ExampleParseStatic_lineNumbers() {
	_, err := enrich.ParseStatic(strings.NewReader("prefix,asn\n127.0.0.0/8,64496\n127.0.1.0/24,AS-LAB\n"))
	var pe *enrich.ParseError
	if errors.As(err, &pe) {
		fmt.Println("line", pe.Line, errors.Is(err, enrich.ErrMalformed))
	}
	// Output: line 3 true
}

func ExampleChain() {
	table, _ := enrich.ParseStatic(strings.NewReader(lab))
	// A stand-in for a PTR provider such as enrich.ReverseDNS.
	ptr := enrich.Func(func(_ context.Context, addr netip.Addr, r *enrich.Result) error {
		if addr == netip.MustParseAddr("127.0.0.1") {
			r.Merge(enrich.Result{Names: []string{"localhost"}})
			return nil
		}
		return fmt.Errorf("%w: no PTR for %v", enrich.ErrNotFound, addr)
	})
	chain := enrich.Chain{table, ptr}

	for _, s := range []string{"127.0.0.1", "127.0.1.9"} {
		r, err := enrich.Lookup(context.Background(), chain, netip.MustParseAddr(s))
		// Not-found is an outcome, not a failure.
		if err := enrich.IgnoreNotFound(err); err != nil {
			fmt.Println("failed:", err)
		}
		fmt.Println(s, r.Names, r.ASN.Number, r.Geo.Region, errors.Is(err, enrich.ErrNotFound))
	}
	// Output:
	// 127.0.0.1 [localhost] 64496 LAB false
	// 127.0.1.9 [] 64497 LAB true
}

func ExampleNewCache() {
	calls := 0
	slow := enrich.Func(func(_ context.Context, addr netip.Addr, r *enrich.Result) error {
		calls++
		r.Merge(enrich.Result{ASN: enrich.ASN{Number: 64496}})
		return nil
	})
	c := enrich.NewCache(slow, enrich.CacheOptions{Size: 1024, NegativeTTL: time.Minute})
	addr := netip.MustParseAddr("127.0.0.1")
	for range 3 {
		r, _ := enrich.Lookup(context.Background(), c, addr)
		fmt.Println(r.ASN.Number)
	}
	fmt.Println("calls:", calls, "hits:", c.Stats().Hits)
	// Output:
	// 64496
	// 64496
	// 64496
	// calls: 1 hits: 2
}

// ExampleLimit puts real providers together. It is compiled, not run: it
// would query the system's resolver and Team Cymru.
func ExampleLimit() {
	ctx := context.Background()
	e := enrich.NewCache(enrich.Chain{
		enrich.Limit(&enrich.ReverseDNS{}, enrich.LimitOptions{MaxConcurrent: 64, Timeout: 2 * time.Second}),
		enrich.Limit(&enrich.Cymru{}, enrich.LimitOptions{MaxConcurrent: 16, Timeout: 3 * time.Second}),
	}, enrich.CacheOptions{})
	r, err := enrich.Lookup(ctx, e, netip.MustParseAddr("192.0.2.1"))
	if err := enrich.IgnoreNotFound(err); err != nil {
		fmt.Println("lookup failed:", err)
	}
	fmt.Println(r.Names, r.ASN.Number, r.ASN.Name)
}

// ExampleOpenMMDB is compiled, not run: it needs a database file.
func ExampleOpenMMDB() {
	asn, err := enrich.OpenMMDB("GeoLite2-ASN.mmdb", enrich.LayoutAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer asn.Close()
	city, err := enrich.OpenMMDB("GeoLite2-City.mmdb", enrich.LayoutAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer city.Close()
	r, err := enrich.Lookup(context.Background(), enrich.Chain{asn, city}, netip.MustParseAddr("192.0.2.1"))
	fmt.Println(r.ASN.Number, r.Geo.Country, r.Geo.Region, r.Geo.City, err)
}
