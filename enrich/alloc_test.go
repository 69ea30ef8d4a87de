package enrich

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllocs pins the allocation budget of the hot paths: a scan looks up
// every monitor-list client, and most lookups are static-table or cache
// hits.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s, err := ParseStatic(strings.NewReader(labTable))
	require.NoError(t, err)
	ctx := context.Background()
	addr := netip.MustParseAddr("127.0.1.9")
	named := Func(func(_ context.Context, a netip.Addr, r *Result) error {
		r.Merge(Result{Names: []string{"host.example"}})
		return nil
	})
	cached := NewCache(s, CacheOptions{})
	cachedNames := NewCache(named, CacheOptions{})
	var r Result
	require.NoError(t, cached.Enrich(ctx, addr, &r))
	require.NoError(t, cachedNames.Enrich(ctx, addr, &r))

	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Static.Enrich", 0, func() { var r Result; _ = s.Enrich(ctx, addr, &r) }},
		{"Static.LookupASN", 0, func() { _, _ = s.LookupASN(ctx, addr) }},
		{"Cache hit", 0, func() { var r Result; _ = cached.Enrich(ctx, addr, &r) }},
		{"Cache hit with names (the copy)", 1, func() { var r Result; _ = cachedNames.Enrich(ctx, addr, &r) }},
	} {
		assert.LessOrEqual(t, testing.AllocsPerRun(100, tc.f), tc.max, tc.name)
	}
}
