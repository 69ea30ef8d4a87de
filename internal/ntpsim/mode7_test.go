package ntpsim_test

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type datagram struct {
	from    netip.AddrPort
	payload []byte
}

// client is a UDP socket on loopback that talks to the simulator.
type client struct {
	t    testing.TB
	conn *net.UDPConn
}

func newClient(t testing.TB, network, laddr string) *client {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, laddr)
	require.NoError(t, err)
	c, err := net.ListenUDP(network, ua)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadBuffer(4 << 20)
	return &client{t: t, conn: c}
}

// exchange sends req to to and collects datagrams until none arrives for
// quiet (or max have arrived).
func (c *client) exchange(to netip.AddrPort, req []byte, quiet time.Duration, max int) []datagram {
	c.t.Helper()
	_, err := c.conn.WriteToUDPAddrPort(req, to)
	require.NoError(c.t, err)
	var out []datagram
	buf := make([]byte, 4096)
	for len(out) < max {
		_ = c.conn.SetReadDeadline(time.Now().Add(quiet))
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		out = append(out, datagram{netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), append([]byte(nil), buf[:n]...)})
	}
	return out
}

func payloads(ds []datagram) [][]byte {
	var out [][]byte
	for _, d := range ds {
		out = append(out, d.payload)
	}
	return out
}

func load(t testing.TB, name string) []hexcap.Packet {
	t.Helper()
	p, err := hexcap.Load(filepath.Join("testdata", name+".hex.txt"))
	require.NoError(t, err)
	return p
}

// tableOf decodes the client table of a captured monlist reply.
func tableOf(t testing.TB, pkts []hexcap.Packet) []mode7.MonitorEntry {
	t.Helper()
	var r mode7.Reassembler
	for _, p := range pkts[1:] {
		require.NoError(t, r.Add(p.Payload))
	}
	rep := r.Reply()
	require.NoError(t, rep.Err)
	return rep.Entries
}

func start(t testing.TB, network, addr string, cfg ntpsim.Config) *ntpsim.Server {
	t.Helper()
	s, err := ntpsim.Start(context.Background(), network, addr, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func at(s *ntpsim.Server, addr string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(addr), s.Port())
}

// TestMonlistLikeCaptures: given a capture's client table, the simulator's
// reply to the captured request is the captured reply, octet for octet.
func TestMonlistLikeCaptures(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"legacy-monlist-small", "legacy-monlist-40"} {
		t.Run(name, func(t *testing.T) {
			pkts := load(t, name)
			host := &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: tableOf(t, pkts)}
			s := start(t, "udp4", "0.0.0.0:0", ntpsim.Config{Default: host})
			got := newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.1"), pkts[0].Payload, 300*time.Millisecond, 1000)
			var want [][]byte
			for _, p := range pkts[1:] {
				want = append(want, p.Payload)
			}
			assert.Equal(t, want, payloads(got))
		})
	}
	t.Run("classic-monlist-nodata", func(t *testing.T) {
		pkts := load(t, "classic-monlist-nodata")
		s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7NoData, Clients: tableOf(t, load(t, "legacy-monlist-small"))}})
		got := newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.1"), pkts[0].Payload, 300*time.Millisecond, 10)
		assert.Equal(t, [][]byte{pkts[1].Payload}, payloads(got))
	})
	t.Run("ntpsec-mode7-monlist", func(t *testing.T) {
		pkts := load(t, "ntpsec-mode7-monlist")
		s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Silent}})
		got := newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.1"), pkts[0].Payload, 200*time.Millisecond, 10)
		assert.Empty(t, got)
		assert.Equal(t, uint64(1), s.Stats().Ignored)
	})
}

func clients(n int) []mode7.MonitorEntry {
	out := make([]mode7.MonitorEntry, n)
	for i := range out {
		out[i] = mode7.MonitorEntry{
			Addr:      netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}),
			LocalAddr: netip.AddrFrom4([4]byte{127, 0, 0, 1}),
			Port:      uint16(30000 + i), Mode: 3, Version: 4, Count: uint32(i + 1), Flags: 1,
		}
	}
	return out
}

func monlist(t testing.TB, req mode7.Request) []byte {
	t.Helper()
	b, err := req.MarshalBinary()
	require.NoError(t, err)
	return b
}

// reassemble feeds datagrams to a mode7 reassembler for req.
func reassemble(req mode7.Request, ds []datagram) mode7.Reply {
	var r mode7.Reassembler
	r.ResetFor(req)
	for _, d := range ds {
		_ = r.Add(d.payload)
	}
	return r.Reply()
}

// TestWildcardAnswersFromEachAddress: one server bound to 0.0.0.0 stands
// for many 127.x.y.z hosts and answers from the address each request went to.
func TestWildcardAnswersFromEachAddress(t *testing.T) {
	t.Parallel()
	hosts := map[netip.Addr]*ntpsim.Host{}
	addrs := []string{"127.0.0.2", "127.1.2.3", "127.200.0.1", "127.255.255.254"}
	for i, a := range addrs {
		hosts[netip.MustParseAddr(a)] = &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients(i*7 + 1)}
	}
	s := start(t, "udp4", "0.0.0.0:0", ntpsim.Config{Hosts: hosts})
	c := newClient(t, "udp4", "127.0.0.1:0")
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	for i, a := range addrs {
		got := c.exchange(at(s, a), monlist(t, req), 200*time.Millisecond, 100)
		require.NotEmpty(t, got, a)
		for _, d := range got {
			assert.Equal(t, at(s, a), d.from, "reply leaves from the address asked")
		}
		rep := reassemble(req, got)
		require.NoError(t, rep.Err)
		assert.Equal(t, clients(i*7+1), rep.Entries)
	}
	// An address with no host and no default is silent.
	assert.Empty(t, c.exchange(at(s, "127.9.9.9"), monlist(t, req), 150*time.Millisecond, 10))
}

func TestIPv6Loopback(t *testing.T) {
	t.Parallel()
	table := append(clients(5), mode7.MonitorEntry{Addr: netip.MustParseAddr("2001:db8::7"), LocalAddr: netip.MustParseAddr("::1"), Port: 123, Mode: 4, Version: 4, Count: 9})
	s := start(t, "udp6", "[::1]:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: table}})
	c := newClient(t, "udp6", "[::1]:0")
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	got := c.exchange(at(s, "::1"), monlist(t, req), 200*time.Millisecond, 10)
	require.Len(t, got, 1)
	assert.Equal(t, at(s, "::1"), got[0].from)
	rep := reassemble(req, got)
	require.NoError(t, rep.Err)
	assert.Equal(t, table, rep.Entries)
	// The v6_flag is written as an x86 ntpd writes it.
	assert.Equal(t, []byte{1, 0, 0, 0}, got[0].payload[8+5*72+32:8+5*72+36])
}

// TestProcessPrivateRules checks what ntpd 4.2.6 answers, or drops, for
// requests of every shape.
func TestProcessPrivateRules(t *testing.T) {
	t.Parallel()
	host := &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients(1000)}
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	c := newClient(t, "udp4", "127.0.0.1:0")
	to := at(s, "127.0.0.1")
	hdr := func(h mode7.Header, size int) []byte {
		b, err := h.AppendBinary(nil)
		require.NoError(t, err)
		return append(b, make([]byte, size-8)...)
	}
	base := mode7.Header{Version: 2, Impl: 3, Code: 42}
	silent := map[string]mode7.Header{
		"response bit":   {Response: true, Version: 2, Impl: 3, Code: 42},
		"more bit":       {More: true, Version: 2, Impl: 3, Code: 42},
		"version 0":      {Version: 0, Impl: 3, Code: 42},
		"version 5":      {Version: 5, Impl: 3, Code: 42},
		"sequence 1":     {Seq: 1, Version: 2, Impl: 3, Code: 42},
		"error nibble":   {Err: 4, Version: 2, Impl: 3, Code: 42},
		"MBZ":            {MBZ: 1, Version: 2, Impl: 3, Code: 42},
		"a mode 7 reply": {Response: true, Version: 2, Impl: 3, Code: 42, Err: 4},
	}
	for name, h := range silent {
		assert.Empty(t, c.exchange(to, hdr(h, 48), 100*time.Millisecond, 5), name)
	}
	assert.Empty(t, c.exchange(to, []byte{0x17, 0, 3}, 100*time.Millisecond, 5), "shorter than a header")

	errs := map[string]struct {
		h    mode7.Header
		want mode7.InfoErr
	}{
		"implementation 0":              {mode7.Header{Version: 2, Impl: 0, Code: 42}, mode7.InfoErrReq},
		"implementation 1":              {mode7.Header{Version: 2, Impl: 1, Code: 42}, mode7.InfoErrImpl},
		"item size set":                 {mode7.Header{Version: 2, Impl: 3, Code: 42, ItemSize: 72}, mode7.InfoErrFmt},
		"REQ_CONFIG without items":      {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqConfig}, mode7.InfoErrFmt},
		"REQ_CONFIG with an item":       {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqConfig, NItems: 1, ItemSize: 40}, mode7.InfoErrAuth},
		"REQ_CONFIG, item missing":      {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqConfig, NItems: 2, ItemSize: 40}, mode7.InfoErrFmt},
		"REQ_TRAPS (real capture R7-8)": {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqTraps}, mode7.InfoErrNoData},
		"REQ_IF_STATS needs auth":       {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqIfStats}, mode7.InfoErrAuth},
		"REQ_PEER_LIST with items":      {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqPeerList, ItemSize: 72}, mode7.InfoErrFmt},
		"REQ_PEER_INFO without items":   {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqPeerInfo}, mode7.InfoErrFmt},
		"unknown code 99":               {mode7.Header{Version: 2, Impl: 3, Code: 99}, mode7.InfoErrReq},
		"REQ_PEER_LIST":                 {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqPeerList}, mode7.InfoErrNoData},
		"REQ_DO_DIRTY_HACK":             {mode7.Header{Version: 2, Impl: 3, Code: mode7.ReqDoDirtyHack}, mode7.InfoErrReq},
	}
	for name, tc := range errs {
		got := c.exchange(to, hdr(tc.h, 48), 150*time.Millisecond, 5)
		require.Len(t, got, 1, name)
		req := tc.h
		req.NItems, req.ItemSize = 0, 0
		assert.Equal(t, mode7.AppendErrorReply(nil, req, tc.want), got[0].payload, name)
	}

	// The bare 8-octet header is enough; the reply echoes the version.
	for v := uint8(1); v <= 4; v++ {
		h := base
		h.Version = v
		got := c.exchange(to, hdr(h, 8), 150*time.Millisecond, 200)
		require.Len(t, got, 100, "600-entry cap: 100 packets")
		for _, d := range got {
			assert.Equal(t, v, d.payload[0]>>3&7)
		}
		rep := reassemble(mode7.NewRequest(42), got)
		require.NoError(t, rep.Err)
		assert.Equal(t, clients(600), rep.Entries, "the newest 600")
	}

	// Layouts by code and implementation.
	for _, req := range []mode7.Request{{Code: 20, Impl: 3}, {Code: 42, Impl: 2}, {Code: 20, Impl: 2}} {
		got := c.exchange(to, monlist(t, req), 150*time.Millisecond, 200)
		rep := reassemble(req, got)
		require.NoError(t, rep.Err, "%+v", req)
		assert.Equal(t, mode7.MonitorItemSize(req.Code, req.Impl), rep.ItemSize)
		assert.Len(t, rep.Entries, 600)
	}
}

// TestLowSourcePortDropped: ntpd 4.2.6 drops Mode 7 requests from ports
// below 123. Binding such a port needs privileges; skip without them.
func TestLowSourcePortDropped(t *testing.T) {
	t.Parallel()
	ua := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 100}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		t.Skipf("cannot bind a port below 123: %v", err)
	}
	conn.Close()
	for _, accept := range []bool{false, true} {
		s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients(3), AcceptLowPorts: accept}})
		c := newClient(t, "udp4", "127.0.0.1:100")
		got := c.exchange(at(s, "127.0.0.1"), monlist(t, mode7.NewRequest(42)), 150*time.Millisecond, 5)
		assert.Equal(t, accept, len(got) == 1, "AcceptLowPorts=%v", accept)
		c.conn.Close()
	}
}

func TestHostile(t *testing.T) {
	t.Parallel()
	req := mode7.NewRequest(mode7.ReqMonGetList1)
	run := func(t *testing.T, hb ntpsim.Hostile, n int) (*ntpsim.Server, []datagram) {
		t.Helper()
		s := start(t, "udp4", "0.0.0.0:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients(n), Hostile: hb}})
		return s, newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.7"), monlist(t, req), 200*time.Millisecond, 5000)
	}
	t.Run("endless more bit", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{EndlessMore: true, StormPackets: 300}, 40)
		require.Len(t, got, 300)
		for i, d := range got {
			assert.NotZero(t, d.payload[0]&0x40, "more bit on packet %d", i)
			assert.Equal(t, byte(i%128), d.payload[1]&0x7f, "sequence wraps")
		}
		rep := reassemble(req, got)
		assert.ErrorIs(t, rep.Err, mode7.ErrNoEnd)
		assert.Equal(t, 300, rep.Packets)
	})
	t.Run("duplicate storm", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{Duplicates: 9}, 12)
		assert.Len(t, got, 20)
		rep := reassemble(req, got)
		require.NoError(t, rep.Err)
		assert.Equal(t, 18, rep.Duplicates)
		assert.Equal(t, clients(12), rep.Entries)
	})
	t.Run("sequence gaps", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{GapEvery: 3}, 60) // 10 packets, 3 6 9 missing
		assert.Len(t, got, 7)
		rep := reassemble(req, got)
		assert.ErrorIs(t, rep.Err, mode7.ErrIncomplete)
		assert.Equal(t, []uint8{3, 6}, rep.Missing)
		assert.Equal(t, -1, rep.LastSeq)
	})
	t.Run("reversed", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{Reverse: true}, 60)
		require.Len(t, got, 10)
		assert.Equal(t, byte(9), got[0].payload[1])
		rep := reassemble(req, got)
		require.NoError(t, rep.Err)
		assert.Equal(t, clients(60), rep.Entries)
	})
	t.Run("sequence wraps past 127", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{WrapSeq: true}, 1000) // 167 packets
		require.Len(t, got, 167)
		assert.Equal(t, byte(0), got[128].payload[1])
		assert.NotZero(t, got[127].payload[0]&0x40)
		rep := reassemble(req, got)
		assert.Equal(t, 128, rep.Accepted)
		assert.Equal(t, 39, rep.Duplicates, "sequence numbers seen in the first 128")
		assert.ErrorIs(t, rep.Err, mode7.ErrNoEnd)
	})
	t.Run("item count larger than the data", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{CountOverflow: true}, 8)
		require.Len(t, got, 2)
		rep := reassemble(req, got)
		assert.Equal(t, 2, rep.Malformed)
		assert.ErrorIs(t, rep.Err, mode7.ErrLength)
	})
	t.Run("garbage", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{Garbage: 5, Seed: 1}, 8)
		require.Len(t, got, 7)
		rep := reassemble(req, got)
		require.NoError(t, rep.Err)
		assert.Equal(t, 5, rep.Malformed+rep.Mismatched)
		assert.Len(t, rep.Entries, 8)
	})
	t.Run("other port", func(t *testing.T) {
		s, got := run(t, ntpsim.Hostile{OtherPort: true}, 3)
		require.Len(t, got, 1)
		assert.Equal(t, netip.MustParseAddr("127.0.0.7"), got[0].from.Addr())
		assert.NotEqual(t, s.Port(), got[0].from.Port())
	})
	t.Run("other address", func(t *testing.T) {
		s, got := run(t, ntpsim.Hostile{OtherAddr: true}, 3)
		require.Len(t, got, 1)
		assert.Equal(t, at(s, "127.0.0.8"), got[0].from)
	})
	t.Run("oversized datagrams", func(t *testing.T) {
		_, got := run(t, ntpsim.Hostile{PadTo: 1400}, 10)
		require.Len(t, got, 2)
		assert.Len(t, got[0].payload, 1400)
		rep := reassemble(req, got)
		require.NoError(t, rep.Err, "padding after the items is ignored")
		assert.Equal(t, 2800, rep.Bytes)
	})
}

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ntpsim.Start(ctx, "udp4", "127.0.0.1:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7Monlist, Clients: clients(1)}})
	require.NoError(t, err)
	c := newClient(t, "udp4", "127.0.0.1:0")
	require.Len(t, c.exchange(at(s, "127.0.0.1"), monlist(t, mode7.NewRequest(42)), 150*time.Millisecond, 5), 1)
	st := s.Stats()
	assert.Equal(t, uint64(1), st.Requests)
	assert.Equal(t, uint64(1), st.Replies)

	s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode7: ntpsim.Mode7NoData})
	got := c.exchange(at(s, "127.0.0.1"), monlist(t, mode7.NewRequest(42)), 150*time.Millisecond, 5)
	require.Len(t, got, 1)
	assert.Equal(t, byte(0x40), got[0].payload[4])

	cancel()
	require.Eventually(t, func() bool {
		return len(c.exchange(at(s, "127.0.0.1"), monlist(t, mode7.NewRequest(42)), 50*time.Millisecond, 5)) == 0
	}, 2*time.Second, 60*time.Millisecond)
	assert.NoError(t, s.Close())

	_, err = ntpsim.Listen("tcp", "127.0.0.1:0", ntpsim.Config{})
	assert.Error(t, err)
}

// TestFailedSendSparesOthers: a reply the kernel refuses (from a source
// address that is not local) does not stop the replies queued after it.
func TestFailedSendSparesOthers(t *testing.T) {
	t.Parallel()
	s := start(t, "udp4", "0.0.0.0:0", ntpsim.Config{Hosts: map[netip.Addr]*ntpsim.Host{
		netip.MustParseAddr("127.255.255.255"): {Mode7: ntpsim.Mode7Monlist, Clients: clients(1), Hostile: ntpsim.Hostile{OtherAddr: true}},
		netip.MustParseAddr("127.0.0.2"):       {Mode7: ntpsim.Mode7Monlist, Clients: clients(2)},
	}})
	c := newClient(t, "udp4", "127.0.0.1:0")
	req := monlist(t, mode7.NewRequest(42))
	for range 20 { // both requests in one read batch, most of the time
		_, err := c.conn.WriteToUDPAddrPort(req, at(s, "127.255.255.255"))
		require.NoError(t, err)
		got := c.exchange(at(s, "127.0.0.2"), req, 150*time.Millisecond, 5)
		require.Len(t, got, 1)
		assert.Equal(t, at(s, "127.0.0.2"), got[0].from)
	}
	st := s.Stats()
	assert.Equal(t, uint64(20), st.Replies)
	assert.Equal(t, uint64(20), st.Errors)
}

func TestStartCloseRaces(t *testing.T) {
	t.Parallel()
	for range 50 {
		s, err := ntpsim.Start(context.Background(), "udp4", "127.0.0.1:0", ntpsim.Config{})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "a second Close does nothing")
		require.NoError(t, s.Err())

		ctx, cancel := context.WithCancel(context.Background())
		s, err = ntpsim.Start(ctx, "udp4", "127.0.0.1:0", ntpsim.Config{})
		require.NoError(t, err)
		cancel()
		require.NoError(t, s.Close(), "Close after the context stopped it")
	}
	s, err := ntpsim.Start(context.Background(), "udp4", "127.0.0.1:0", ntpsim.Config{})
	require.NoError(t, err)
	assert.Error(t, s.Serve(context.Background()), "Serve on a started server is refused")
	require.NoError(t, s.Close())

	// Listen, then Serve by hand.
	s, err = ntpsim.Listen("udp4", "127.0.0.1:0", ntpsim.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, s.Close())
}
