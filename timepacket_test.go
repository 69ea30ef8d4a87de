package ntpctl_test

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server's reply, octet by octet after RFC 5905 figure 8: LI 0, version
// 4, mode 4, stratum 2, poll 6, precision -23, root delay 0x0000_1000
// (1/16 s), root dispersion 0x0000_0800, refid 192.0.2.1, then the four
// timestamps.
var mode4Vector = []byte{
	0x24, 2, 6, 0xe9,
	0, 0, 0x10, 0, 0, 0, 8, 0,
	192, 0, 2, 1,
	0xee, 0xbb, 0x91, 0x80, 0, 0, 0, 0,
	0xee, 0xbb, 0x91, 0x85, 0x12, 0x34, 0xed, 0xcb,
	0xee, 0xbb, 0x91, 0x85, 0x40, 0, 0, 0,
	0xee, 0xbb, 0x91, 0x85, 0x40, 0x10, 0, 0,
}

func TestTimePacket(t *testing.T) {
	p, err := ntpctl.DecodeTimePacket(mode4Vector)
	require.NoError(t, err)
	assert.Equal(t, ntpctl.TimePacket{Leap: 0, Version: 4, Mode: 4, Stratum: 2, Poll: 6, Precision: -23,
		RootDelay: 0x1000, RootDispersion: 0x800, RefID: [4]byte{192, 0, 2, 1},
		Reference: 0xeebb918000000000, Origin: 0xeebb91851234edcb, Receive: 0xeebb918540000000, Transmit: 0xeebb918540100000}, p)
	assert.Equal(t, "192.0.2.1", p.RefIDString())
	assert.Equal(t, time.Second/16, p.RootDelayDuration())
	assert.Equal(t, time.Second/32, p.RootDispersionDuration())
	_, kod := p.KissCode()
	assert.False(t, kod)
	b, err := p.AppendBinary(nil)
	require.NoError(t, err)
	assert.Equal(t, mode4Vector, b)

	p.Stratum, p.RefID = 0, [4]byte{'R', 'A', 'T', 'E'}
	code, kod := p.KissCode()
	assert.True(t, kod)
	assert.Equal(t, "RATE", code)
	p.Stratum, p.RefID = 1, [4]byte{'G', 'P', 'S', 0}
	assert.Equal(t, "GPS", p.RefIDString())
	p.RefID = [4]byte{'\x1b', '[', '2', 'J'}
	assert.Equal(t, "?[2J", p.RefIDString(), "no terminal escapes")

	for _, bad := range [][]byte{mode4Vector[:47], append([]byte{0x26}, mode4Vector[1:]...), append([]byte{0x27}, mode4Vector[1:]...),
		append([]byte{0x20}, mode4Vector[1:]...)} {
		_, err := ntpctl.DecodeTimePacket(bad)
		assert.ErrorIs(t, err, ntpctl.ErrTimePacket)
	}
	long, err := ntpctl.DecodeTimePacket(append(append([]byte(nil), mode4Vector...), make([]byte, 20)...))
	require.NoError(t, err, "a MAC after the header is ignored")
	assert.Equal(t, uint8(4), long.Mode)
}

// FuzzDecodeTimePacket: any datagram decodes or is refused with
// ErrTimePacket, and what decodes encodes back to its first 48 octets.
func FuzzDecodeTimePacket(f *testing.F) {
	f.Add(mode4Vector)
	f.Add(mode4Vector[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ntpctl.DecodeTimePacket(b)
		if err != nil {
			if !errors.Is(err, ntpctl.ErrTimePacket) {
				t.Fatal(err)
			}
			return
		}
		out, _ := p.AppendBinary(nil)
		if !reflect.DeepEqual(out, b[:ntpctl.TimePacketLen]) {
			t.Fatalf("% x encoded back as % x", b[:48], out)
		}
		_ = p.RefIDString()
	})
}

// timeServer answers mode 3 requests on loopback as a server does, and,
// for the forger's address, with a wrong origin first.
func timeServer(t *testing.T, reply func(req ntpctl.TimePacket) [][]byte) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req, err := ntpctl.DecodeTimePacket(buf[:n])
			if err != nil || req.Mode != 3 {
				continue
			}
			for _, b := range reply(req) {
				_, _ = c.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestClientProbe(t *testing.T) {
	t.Parallel()
	answer := func(req ntpctl.TimePacket, stratum uint8, origin mode6.Timestamp) []byte {
		p := ntpctl.TimePacket{Version: req.Version, Mode: 4, Stratum: stratum, Poll: 6, Precision: -20,
			RefID: [4]byte{'L', 'O', 'C', 'L'}, Origin: origin, Receive: req.Transmit + 1, Transmit: req.Transmit + 2}
		b, _ := p.AppendBinary(nil)
		return b
	}
	good := timeServer(t, func(req ntpctl.TimePacket) [][]byte { return [][]byte{answer(req, 1, req.Transmit)} })
	forged := timeServer(t, func(req ntpctl.TimePacket) [][]byte {
		return [][]byte{answer(req, 1, req.Transmit^0x10000), answer(req, 1, req.Transmit)}
	})
	kod := timeServer(t, func(req ntpctl.TimePacket) [][]byte {
		p := ntpctl.TimePacket{Leap: 3, Version: 4, Mode: 4, RefID: [4]byte{'D', 'E', 'N', 'Y'}, Origin: req.Transmit}
		b, _ := p.AppendBinary(nil)
		return [][]byte{b}
	})
	control := timeServer(t, func(ntpctl.TimePacket) [][]byte { return [][]byte{{0x16, 0x81, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}} })

	res, p := run(t, fast(), ntpctl.Client(), []netip.AddrPort{good, forged, kod, control})
	r := res[good]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.Equal(t, "LOCL", r.Value.RefIDString())
	assert.Equal(t, 48, r.RequestBytes)
	assert.Equal(t, ntpctl.StatusOK, res[forged].Status, "the forged origin skipped, the true reply taken")
	r = res[kod]
	assert.Equal(t, ntpctl.StatusServerError, r.Status)
	var ke ntpctl.KissError
	require.ErrorAs(t, r.Err, &ke)
	assert.Equal(t, ntpctl.KissError("DENY"), ke)
	assert.ErrorIs(t, r.Err, ntpctl.ErrKissOfDeath)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[control].Status, "a Mode 6 reply answers nothing of mode 3")
	assert.Equal(t, uint64(2), p.Stats().Mismatched)
}

// TestClientProbeAgainstNTPsec asks Debian's ntpsec in mode 3 over IPv4
// and IPv6: a mode 4 reply whose origin is the request's transmit time.
func TestClientProbeAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	cfg := fast()
	cfg.ListenUDP = func(network string, _ *net.UDPAddr) (*net.UDPConn, error) { return d.ListenUDP(network) }
	res, _ := run(t, cfg, ntpctl.Client(), []netip.AddrPort{d.Addr, d.Addr6})
	for _, tg := range []netip.AddrPort{d.Addr, d.Addr6} {
		r := res[tg]
		require.Equal(t, ntpctl.StatusOK, r.Status, "%v: %v", tg, r.Err)
		assert.Equal(t, uint8(4), r.Value.Mode)
		assert.Equal(t, uint8(4), r.Value.Version)
		assert.NotZero(t, r.Value.Receive)
		assert.Equal(t, 48, r.Bytes)
		t.Logf("%v: stratum %d, refid %s", tg, r.Value.Stratum, r.Value.RefIDString()) // INIT until it syncs
	}
}
