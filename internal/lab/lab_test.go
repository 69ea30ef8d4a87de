package lab_test

import (
	"context"
	"encoding/csv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func start(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func probe[R any](t *testing.T, p ntpctl.Probe[R], targets []netip.AddrPort) map[netip.AddrPort]ntpctl.Result[R] {
	t.Helper()
	pr, err := ntpctl.NewProber(ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true},
		Timeout: time.Second, Retries: 1, Quiet: 300 * time.Millisecond}, p)
	require.NoError(t, err)
	out := map[netip.AddrPort]ntpctl.Result[R]{}
	require.NoError(t, pr.Run(context.Background(), slices.Values(targets), func(r ntpctl.Result[R]) error {
		out[r.Target] = r
		return nil
	}))
	require.Len(t, out, len(targets))
	return out
}

// TestLabMix: the default lab has the promised mix, is the same for the
// same seed, and every address is loopback.
func TestLabMix(t *testing.T) {
	l := start(t, lab.Config{})
	hosts := l.Hosts()
	require.Len(t, hosts, 301)
	count := map[lab.Kind]int{}
	seen := map[netip.Addr]bool{}
	sizes := map[int]bool{}
	v6entries := 0
	for _, h := range hosts {
		count[h.Kind]++
		assert.True(t, h.Addr.Addr().IsLoopback(), "%v", h.Addr)
		assert.Equal(t, l.Port(), h.Addr.Port())
		assert.False(t, seen[h.Addr.Addr()], "duplicate %v", h.Addr)
		seen[h.Addr.Addr()] = true
		if h.Kind == lab.Amplifier {
			sizes[h.Monlist.Entries] = true
			for _, e := range h.Sim.Clients {
				if e.IsIPv6() {
					v6entries++
				}
			}
		}
	}
	assert.Greater(t, count[lab.Amplifier], 40)
	assert.Greater(t, count[lab.MonlistDisabled], 20)
	assert.Greater(t, count[lab.ReadVarOnly], 60)
	assert.Greater(t, count[lab.Silent], 80)
	assert.GreaterOrEqual(t, count[lab.Hostile], 10)
	assert.True(t, sizes[600] && sizes[3], "table sizes %v", sizes)
	assert.Greater(t, v6entries, 0)
	generations := map[string]bool{}
	for _, h := range hosts {
		if h.Kind != lab.Silent {
			generations[h.Daemon[:min(len(h.Daemon), len("ntpd 4.2.x"))]] = true
		}
	}
	for _, g := range []string{"ntpd 4.2.4", "ntpd 4.2.6", "ntpd 4.2.8", "ntpsec 1.2", "xntpd 3-5."} {
		assert.True(t, generations[g], "no %s in %v", g, generations)
	}
	assert.Equal(t, l.Targets()[0], hosts[0].Addr)
	h6, ok := l.Host(netip.IPv6Loopback())
	require.True(t, ok)
	assert.Equal(t, lab.Amplifier, h6.Kind)

	again := start(t, lab.Config{})
	for i, h := range again.Hosts() {
		assert.Equal(t, hosts[i].Addr.Addr(), h.Addr.Addr())
		assert.Equal(t, hosts[i].Kind, h.Kind)
		assert.Equal(t, hosts[i].Monlist, h.Monlist)
	}
	other := start(t, lab.Config{Seed: 2, Hosts: 64, NoIPv6: true})
	assert.Len(t, other.Hosts(), 64)
	assert.NotEqual(t, hosts[0].Addr.Addr(), other.Hosts()[0].Addr.Addr())
}

// TestLabAnswersAsExpected probes every host of a lab with the project's
// prober: statuses, packets, bytes and entries are what Host promises.
func TestLabAnswersAsExpected(t *testing.T) {
	l := start(t, lab.Config{})
	targets := l.Targets()
	mon := probe(t, ntpctl.MonList(), targets)
	rv := probe(t, ntpctl.ReadVar(), targets)
	mru := probe(t, ntpctl.MRUList(), targets)
	exposing := 0
	for _, h := range l.Hosts() {
		m, r, u := mon[h.Addr], rv[h.Addr], mru[h.Addr]
		if h.MRU.Status != 0 {
			assert.Equal(t, h.MRU.Status, u.Status, "MRU list %v %s %s: %v", h.Addr, h.Kind, h.Daemon, u.Err)
			assert.Equal(t, h.MRU.Entries, len(u.Value.Entries), "MRU entries %v", h.Addr)
		}
		if u.Status == ntpctl.StatusOK {
			exposing++
		}
		assert.Equal(t, h.Monlist.Status, m.Status, "monlist %v %s %s: %v", h.Addr, h.Kind, h.Hostile, m.Err)
		assert.Equal(t, h.ReadVar.Status, r.Status, "rv %v %s %s: %v", h.Addr, h.Kind, h.Hostile, r.Err)
		if h.Kind == lab.Hostile {
			continue
		}
		assert.Equal(t, h.Monlist.Packets, m.Packets, "monlist packets %v", h.Addr)
		assert.Equal(t, h.Monlist.Bytes, m.Bytes, "monlist bytes %v", h.Addr)
		assert.Equal(t, h.Monlist.Entries, len(m.Value.Entries), "entries %v", h.Addr)
		assert.Equal(t, h.ReadVar.Packets, r.Packets, "rv packets %v", h.Addr)
		assert.Equal(t, h.ReadVar.Bytes, r.Bytes, "rv bytes %v", h.Addr)
		if h.ReadVar.Status == ntpctl.StatusOK {
			v, _ := r.Value.Vars.Lookup("version")
			assert.Contains(t, v, strings.Fields(h.Daemon)[1][:3], "%v", h.Addr)
		}
	}
	assert.Greater(t, exposing, 40, "MRU-exposing hosts: ntpd 4.2.8 and ntpsec")
	for _, h := range l.OfKind(lab.Amplifier) {
		if h.Monlist.Entries == 600 {
			assert.Equal(t, 100, mon[h.Addr].Packets, "a full table is 100 packets")
			assert.Equal(t, 100*8+600*72, mon[h.Addr].Bytes)
		}
	}
}

// TestLabTime probes every host of a lab with the mode 3 client probe:
// the hosts that serve time answer with their stratum, silent ones and
// those that refuse time service (Sim.NoTime) do not, and the latter
// still answer monlist or READVAR.
func TestLabTime(t *testing.T) {
	l := start(t, lab.Config{})
	res := probe(t, ntpctl.Client(), l.Targets())
	answering, serving, noTimeMonlist, noTimeReadVarOnly := 0, 0, 0, 0
	for _, h := range l.Hosts() {
		r := res[h.Addr]
		if h.Kind == lab.Hostile {
			assert.Zero(t, h.Time, "%v: hostile hosts are not predicted", h.Addr)
			continue
		}
		require.NotZero(t, h.Time.Status, "%v %s", h.Addr, h.Kind)
		assert.Equal(t, h.Time.Status, r.Status, "mode 3 %v %s %s: %v", h.Addr, h.Kind, h.Daemon, r.Err)
		assert.Equal(t, h.Time.Packets, r.Packets, "mode 3 packets %v", h.Addr)
		assert.Equal(t, h.Time.Bytes, r.Bytes, "mode 3 bytes %v", h.Addr)
		if h.Kind == lab.Silent {
			assert.Equal(t, ntpctl.StatusNoAnswer, h.Time.Status, "%v", h.Addr)
			continue
		}
		answering++
		if h.Sim.NoTime {
			assert.Equal(t, ntpctl.StatusNoAnswer, h.Time.Status, "%v refuses time service", h.Addr)
			assert.Equal(t, ntpctl.StatusOK, h.ReadVar.Status, "%v answers ntpq all the same", h.Addr)
			if h.Monlist.Status == ntpctl.StatusOK {
				noTimeMonlist++
			}
			if h.Kind == lab.ReadVarOnly {
				noTimeReadVarOnly++
			}
			continue
		}
		serving++
		assert.Equal(t, ntpctl.StatusOK, h.Time.Status, "%v", h.Addr)
		assert.Equal(t, uint8(4), r.Value.Mode, "%v", h.Addr)
		assert.Equal(t, h.Time.Stratum, int(r.Value.Stratum), "stratum %v", h.Addr)
		assert.True(t, h.Time.Stratum >= 1 && h.Time.Stratum <= 4, "stratum %v: %d", h.Addr, h.Time.Stratum)
		if h.ReadVar.Status == ntpctl.StatusOK {
			v, _ := h.Sim.System.Lookup("stratum")
			assert.Equal(t, strconv.Itoa(h.Time.Stratum), v, "READVAR's stratum %v", h.Addr)
		}
	}
	t.Logf("%d answering hosts, %d serve time; of the %d refusing it (all answer READVAR), %d answer monlist, %d only READVAR",
		answering, serving, answering-serving, noTimeMonlist, noTimeReadVarOnly)
	assert.Greater(t, noTimeMonlist, 0, "NoTime hosts that answer monlist")
	assert.Greater(t, noTimeReadVarOnly, 0, "NoTime hosts that answer only READVAR")
	assert.Greater(t, serving, answering*3/4, "most answering hosts serve time")
	assert.Less(t, serving, answering, "some refuse time service")
}

// TestStaticCSV: the enrichment table covers every lab address with a
// documentation AS number and upper-case places.
func TestStaticCSV(t *testing.T) {
	l := start(t, lab.Config{})
	r := csv.NewReader(strings.NewReader(l.StaticCSV()))
	r.Comment = '#'
	rows, err := r.ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"prefix", "asn", "as_name", "country", "region", "city", "naics", "sector", "abuse_email"}, rows[0])
	var prefixes []netip.Prefix
	for _, row := range rows[1:] {
		p, err := netip.ParsePrefix(row[0])
		require.NoError(t, err)
		prefixes = append(prefixes, p)
		asn, err := strconv.Atoi(row[1])
		require.NoError(t, err)
		assert.True(t, asn >= 64496 && asn <= 64511, "%d", asn)
		assert.Len(t, row[3], 2)
		for _, f := range row[3:6] {
			assert.Equal(t, strings.ToUpper(f), f)
		}
		assert.Contains(t, row[8], "@")
	}
	for _, h := range l.Hosts() {
		assert.True(t, slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(h.Addr.Addr()) }), "%v", h.Addr)
	}

	// The enrichment package reads it.
	st, err := enrich.ParseStatic(strings.NewReader(l.StaticCSV()))
	require.NoError(t, err)
	assert.Equal(t, len(rows)-1, st.Len())
	for _, h := range l.Hosts() {
		r, ok := st.Lookup(h.Addr.Addr())
		require.True(t, ok, "%v", h.Addr)
		assert.True(t, r.ASN.Number >= 64496 && r.ASN.Number <= 64511)
		assert.NotEmpty(t, r.Geo.City)
		assert.NotEmpty(t, r.Abuse.Email)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	_, err := lab.Start(context.Background(), lab.Config{Prefix: netip.MustParsePrefix("10.0.0.0/16")})
	assert.Error(t, err)
	_, err = lab.Start(context.Background(), lab.Config{Hosts: 5})
	assert.Error(t, err)
}
