package ntpsim_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ask sends req to to over c and collects the datagrams that come back.
func ask(t *testing.T, c *net.UDPConn, to netip.AddrPort, req []byte) [][]byte {
	t.Helper()
	_, err := c.WriteToUDPAddrPort(req, to)
	require.NoError(t, err)
	var out [][]byte
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
}

// TestSimulatorMatchesRealNTPsec gives the simulator the variables a live
// ntpsec ntpd reports, then asks both the same questions: the replies
// agree octet for octet up to the end of their data (padding aside: the
// real server's holds whatever its earlier replies left).
func TestSimulatorMatchesRealNTPsec(t *testing.T) {
	t.Parallel()
	d := realpeer.StartNTPsec(t)
	c, err := d.ListenUDP("udp4")
	require.NoError(t, err)
	defer c.Close()

	rv := func(seq, assoc uint16, names ...string) []byte {
		b, err := mode6.Request{Op: mode6.OpReadVar, Seq: seq, AssocID: assoc, Leap: 3, Names: names}.MarshalBinary()
		require.NoError(t, err)
		return b
	}
	sysReply := ask(t, c, d.Addr, rv(1, 0))
	require.Len(t, sysReply, 1)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(sysReply[0]))
	sys, _ := mode6.ParseVars(p.Data)
	status := p.Status

	host := &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: status, System: sys}
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	sc := newClient(t, "udp4", "127.0.0.1:0")
	simAsk := func(req []byte) [][]byte {
		return payloads(sc.exchange(at(s, "127.0.0.1"), req, 200*time.Millisecond, 10))
	}

	same := func(name string, real, sim [][]byte) {
		t.Helper()
		require.Len(t, sim, len(real), name)
		for i := range real {
			var a, b mode6.Packet
			errA, errB := a.DecodeFromBytes(real[i]), b.DecodeFromBytes(sim[i])
			require.Equal(t, errA, errB, name)
			if _, ok := errA.(mode6.ServerError); errA != nil && !ok {
				t.Fatalf("%s: %v", name, errA)
			}
			n := mode6.HeaderLen + int(a.Count)
			assert.Equal(t, real[i][:n], sim[i][:n], "%s, datagram %d", name, i)
			assert.Len(t, sim[i], len(real[i]), name)
		}
	}
	// The same request again: the real server's clock has moved on, so
	// compare with the variables of this very reply.
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"rv", rv(2, 0)},
		{"rv of two names", rv(3, 0, "version", "stratum")},
		{"unknown variable", rv(4, 0, "nosuchvar")},
		{"unknown association", rv(5, 4242)},
	} {
		real := ask(t, c, d.Addr, tc.req)
		if tc.name == "rv" {
			require.Len(t, real, 1)
			require.NoError(t, p.DecodeFromBytes(real[0]))
			now, _ := mode6.ParseVars(p.Data)
			s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: p.Status, System: now})
		}
		same(tc.name, real, simAsk(tc.req))
	}

	// The peer association (the local clock), two fragments with ntpsec's
	// junk in the filt* values: given the very variables of a reply, the
	// simulator sends that reply.
	stat, err := mode6.Request{Op: mode6.OpReadStat, Seq: 20, Leap: 3}.MarshalBinary()
	require.NoError(t, err)
	realStat := ask(t, c, d.Addr, stat)
	require.Len(t, realStat, 1)
	require.NoError(t, p.DecodeFromBytes(realStat[0]))
	assocs := mode6.AppendAssocStatuses(nil, p.Data)
	require.Len(t, assocs, 1)
	id := assocs[0].AssocID
	realPeer := ask(t, c, d.Addr, rv(21, id))
	require.Len(t, realPeer, 2)
	var r mode6.Reassembler
	for _, b := range realPeer {
		require.NoError(t, r.Add(b))
	}
	require.True(t, r.Complete())
	s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: status,
		Peers: []ntpsim.Peer{{AssocID: id, Status: r.Status(), Vars: rawSplit(r.Data())}}})
	same("peer READVAR", realPeer, simAsk(rv(21, id)))
	same("READSTAT", realStat, simAsk(stat))
}
