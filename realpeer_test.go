package ntpctl_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProberAgainstNTPsec probes Debian's ntpsec ntpd, started in a
// network namespace of the test's own, over IPv4 and IPv6: READVAR is
// answered, monlist is not (ntpsec ignores Mode 7).
func TestProberAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	cfg := fast()
	cfg.ListenUDP = func(network string, _ *net.UDPAddr) (*net.UDPConn, error) { return d.ListenUDP(network) }
	targets := []netip.AddrPort{d.Addr, d.Addr6}

	res, p := run(t, cfg, ntpctl.ReadVar(), targets)
	for _, tg := range targets {
		r := res[tg]
		require.Equal(t, ntpctl.StatusOK, r.Status, "%v: %v %+v attempts=%d", tg, r.Err, p.Stats(), r.Attempts)
		v, _ := r.Value.Vars.Lookup("version")
		assert.Contains(t, d.Version, v[len("ntpd "):])
		sv, err := mode6.ParseSystemVars(r.Value.Data)
		require.NoError(t, err)
		assert.Equal(t, "ntpsec", sv.Banner.Implementation())
		assert.Equal(t, 12, r.RequestBytes)
		assert.Greater(t, r.Amplification(), 20.0, "about 30 times the request")
		assert.Equal(t, r.Bytes, r.Value.Bytes)
	}
	assert.Zero(t, p.Stats().Unsolicited+p.Stats().Mismatched)

	res7, _ := run(t, cfg, ntpctl.MonList(), targets)
	for _, tg := range targets {
		assert.Equal(t, ntpctl.StatusNoAnswer, res7[tg].Status, "%v", tg)
	}
}
