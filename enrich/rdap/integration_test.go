package rdap

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/enrich"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInCachedChain runs a Client against its loopback fake, limited, in
// one cached enrich chain with a static table, from many goroutines (the
// RDAP part of enrich's TestAllProvidersTogether).
func TestInCachedChain(t *testing.T) {
	srv := rdapServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/ip/192.0.2.1") {
			rdapJSON(w, arinStyle)
			return
		}
		http.NotFound(w, r)
	})
	table, err := enrich.ParseStatic(strings.NewReader("prefix,asn,as_name,naics,sector\n192.0.2.0/24,,,517311,Communications\n"))
	require.NoError(t, err)

	limit := enrich.LimitOptions{MaxConcurrent: 4, Timeout: 2 * time.Second}
	e := enrich.NewCache(enrich.Chain{
		table,
		enrich.Limit(trusted(&Client{Servers: []string{srv.URL}}), limit),
	}, enrich.CacheOptions{Size: 16})

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%2*4)}) // .1 and .5
				r, err := enrich.Lookup(t.Context(), e, addr)
				assert.NoError(t, enrich.IgnoreNotFound(err))
				assert.Equal(t, 517311, r.NAICS)
				if addr.As4()[3] == 1 {
					assert.NoError(t, err)
					assert.Equal(t, enrich.Abuse{Email: "abuse@example.net", Handle: "ABUSE-EXAMPLE",
						Source: srv.URL + "/ip/192.0.2.1"}, r.Abuse)
				} else {
					assert.ErrorIs(t, err, enrich.ErrNotFound, "no abuse contact")
					assert.Empty(t, r.Abuse)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, uint64(2), e.Stats().Misses)
}

// TestImplementsEnrich: a *Client is both of enrich's interfaces.
func TestImplementsEnrich(t *testing.T) {
	var _ enrich.AbuseLookup = (*Client)(nil)
	var _ enrich.Enricher = (*Client)(nil)
}
