package enrich

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllProvidersTogether runs every provider of this package, each
// against its loopback fake, in one cached chain from many goroutines.
func TestAllProvidersTogether(t *testing.T) {
	z := cymruZone()
	z.ptr = map[string][]string{"1.2.0.192.in-addr.arpa.": {"ntp1.example.net."}}
	server := startDNS(t, z)
	city, err := OpenMMDB(writeMMDB(t, "GeoLite2-City", 6, map[string]mmdbtype.Map{
		"192.0.2.0/24": cityRecord("US", "California", "CA", "Los Angeles", 34.05, -118.24),
	}), LayoutAuto)
	require.NoError(t, err)
	defer city.Close()
	// The RDAP client is in package enrich/rdap, which has its own test
	// of it in a cached chain; here an abuse source that knows .1 only.
	abuse := Func(func(_ context.Context, addr netip.Addr, r *Result) error {
		if addr != netip.MustParseAddr("192.0.2.1") {
			return notFound("abuse", addr)
		}
		r.Merge(Result{Abuse: Abuse{Email: "abuse@example.net", Handle: "ABUSE-EXAMPLE", Source: "test"}})
		return nil
	})
	table, err := ParseStatic(strings.NewReader("prefix,asn,as_name,naics,sector\n192.0.2.0/24,,,517311,Communications\n"))
	require.NoError(t, err)

	limit := LimitOptions{MaxConcurrent: 4, Timeout: 2 * time.Second}
	e := NewCache(Chain{
		table,
		Limit(&ReverseDNS{Server: server}, limit),
		Limit(&Cymru{Server: server, Zone: "asn.test"}, limit),
		city,
		Limit(abuse, limit),
	}, CacheOptions{Size: 16})

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%2*4)}) // .1 and .5
				r, err := Lookup(t.Context(), e, addr)
				assert.NoError(t, IgnoreNotFound(err))
				assert.Equal(t, 517311, r.NAICS)
				assert.Equal(t, "LOS ANGELES", r.Geo.City)
				if addr.As4()[3] == 1 {
					assert.NoError(t, err)
					assert.Equal(t, []string{"ntp1.example.net"}, r.Names)
					assert.Equal(t, ASN{Number: 64497, Name: "EXAMPLE-NET, US",
						Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "US", Registry: "arin"}, r.ASN)
					assert.Equal(t, "abuse@example.net", r.Abuse.Email)
				} else {
					assert.ErrorIs(t, err, ErrNotFound, "no PTR, no abuse contact")
					assert.Empty(t, r.Names)
					assert.Equal(t, uint32(64500), r.ASN.Number)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(2), e.Stats().Misses)
}
