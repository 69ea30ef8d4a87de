package ntpsim_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/hexcap"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// varsOf parses the variables of the replies to a capture's last request.
func varsOf(t testing.TB, pkts []hexcap.Packet) mode6.Vars {
	t.Helper()
	var r mode6.Reassembler
	for _, p := range pkts[len(pkts)-1:] {
		_ = p
	}
	start := 0
	for i, p := range pkts {
		if p.Dst.Port() == 123 {
			start = i
		}
	}
	for _, p := range pkts[start+1:] {
		require.NoError(t, r.Add(p.Payload))
	}
	require.True(t, r.Complete())
	vs, _ := mode6.ParseVars(r.Data())
	return vs
}

// replay sends every request of a capture, in order, to the simulator
// and returns the replies to each.
func replay(t *testing.T, s *ntpsim.Server, pkts []hexcap.Packet, at netip.AddrPort) (got, want [][]byte) {
	t.Helper()
	network, laddr := "udp4", "127.0.0.1:0"
	if at.Addr().Is6() {
		network, laddr = "udp6", "[::1]:0"
	}
	c := newClient(t, network, laddr)
	for i, p := range pkts {
		if p.Dst.Port() != 123 {
			continue
		}
		for _, q := range pkts[i+1:] {
			if q.Dst.Port() == 123 {
				break
			}
			want = append(want, q.Payload)
		}
		got = append(got, payloads(c.exchange(at, p.Payload, 200*time.Millisecond, 50))...)
	}
	return got, want
}

// rawVars splits variable text into items without cleaning anything, so
// values keep the binary junk some servers print (ParseVars drops it).
func rawVars(t testing.TB, pkts []hexcap.Packet) mode6.Vars {
	t.Helper()
	var r mode6.Reassembler
	start := 0
	for i, p := range pkts {
		if p.Dst.Port() == 123 {
			start = i
		}
	}
	for _, p := range pkts[start+1:] {
		require.NoError(t, r.Add(p.Payload))
	}
	return rawSplit(r.Data())
}

// rawSplit splits variable text at the item separators outside quotes
// (", " and ",\r\n", as ntpd writes them), keeping
// every octet of every value.
func rawSplit(data []byte) mode6.Vars {
	text := strings.TrimSuffix(string(data), "\r\n")
	var vs mode6.Vars
	item, quoted := 0, false
	for i := 0; i <= len(text); i++ {
		if i < len(text) && text[i] == '"' {
			quoted = !quoted
		}
		// Items end at ", " or ",\r\n" as ntpd writes them: ntpsec's
		// junk in the filt* values may hold a bare comma.
		if i < len(text) && (quoted || text[i] != ',' || (i+1 < len(text) && text[i+1] != ' ' && text[i+1] != '\r')) {
			continue
		}
		name, value, _ := strings.Cut(text[item:i], "=")
		v := mode6.Var{Name: name, Value: value}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			v.Value, v.Quoted = value[1:len(value)-1], true
		}
		vs = append(vs, v)
		item = i + 1
		for item < len(text) && (text[item] == ' ' || text[item] == '\r' || text[item] == '\n') {
			item++
		}
		i = item - 1
	}
	return vs
}

func TestMode6LikeCaptures(t *testing.T) {
	t.Parallel()
	ntpsecPeer := []ntpsim.Peer{{AssocID: 0x4567, Status: 0x9014}}
	tests := []struct {
		name  string
		host  func(pkts []hexcap.Packet) *ntpsim.Host
		where string
	}{
		{"ntpsec-rv-v4", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, System: varsOf(t, p)}
		}, "127.0.0.1"},
		{"ntpsec-rv-v6", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, System: varsOf(t, p)}
		}, "::1"},
		{"ntpsec-rv-multifrag", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, System: varsOf(t, p)}
		}, "127.0.0.1"},
		{"ntpsec-rv-badassoc-raw", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, Peers: ntpsecPeer}
		}, "127.0.0.1"},
		{"ntpsec-rv-unknownvar", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, Peers: ntpsecPeer,
				System: mode6.Vars{{Name: "version", Value: "ntpd ntpsec-1.2.2", Quoted: true}}}
		}, "127.0.0.1"},
		{"ntpsec-rv-peer", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016,
				Peers: []ntpsim.Peer{{AssocID: 0x4567, Status: 0x9014, Vars: rawVars(t, p)}}}
		}, "127.0.0.1"},
		{"classic-rv-v4", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6Classic, Status: 0xc016, System: varsOf(t, p)}
		}, "127.0.0.1"},
		{"classic-rv-peer", func(p []hexcap.Packet) *ntpsim.Host {
			return &ntpsim.Host{Mode6: ntpsim.Mode6Classic, Status: 0xc016,
				Peers: []ntpsim.Peer{{AssocID: 0x60c5, Status: 0x9014, Vars: varsOf(t, p)}}}
		}, "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkts := load(t, tc.name)
			network, bind := "udp4", "0.0.0.0:0"
			if tc.where == "::1" {
				network, bind = "udp6", "[::1]:0"
			}
			s := start(t, network, bind, ntpsim.Config{Default: tc.host(pkts)})
			got, want := replay(t, s, pkts, at(s, tc.where))
			assert.Equal(t, want, got)
		})
	}
}

// TestVariableSets: the constructors print values as each daemon does.
func TestVariableSets(t *testing.T) {
	t.Parallel()
	for name, build := range map[string]func(ntpsim.SystemInfo) mode6.Vars{
		"ntpsec-rv-v4": ntpsim.NTPsecVars, "classic-rv-v4": ntpsim.NTPdVars,
	} {
		want := varsOf(t, load(t, name))
		var sv mode6.SystemVars
		require.NoError(t, sv.UnmarshalVars(want))
		info := ntpsim.SystemInfo{Version: sv.Version, Processor: sv.Processor, System: sv.System, Leap: int(sv.Leap),
			Stratum: int(sv.Stratum), Precision: int(sv.Precision), RootDelay: sv.RootDelay, RootDisp: sv.RootDisp,
			RefID: sv.RefID.Raw, RefTime: sv.RefTime, Clock: sv.Clock, Peer: int(sv.Peer), TC: int(sv.TC),
			MinTC: int(sv.MinTC), Offset: sv.Offset, Frequency: sv.Frequency, SysJitter: sv.SysJitter,
			ClkJitter: sv.ClkJitter, ClkWander: sv.ClkWander}
		assert.Equal(t, want, build(info), name)
	}
	legacy := ntpsim.LegacyVars(ntpsim.SystemInfo{Version: "4", System: "cisco", Stratum: 3, TC: 10, State: 4, SysJitter: 1.5})
	// Served over UDP, as a router would answer.
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: &ntpsim.Host{Mode6: ntpsim.Mode6Classic,
		Status: ntpsim.StatusOf(0, 6, 5), System: legacy}})
	got := newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.1"), readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 1}), 200*time.Millisecond, 5)
	require.Len(t, got, 1)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	var sv mode6.SystemVars
	require.NoError(t, sv.UnmarshalVars(func() mode6.Vars { vs, _ := mode6.ParseVars(p.Data); return vs }()))
	assert.Equal(t, "cisco", sv.System)
	assert.Equal(t, uint8(10), sv.TC)
	assert.Equal(t, 1.5, sv.SysJitter)
	assert.True(t, sv.Has("rootdispersion"))
	v, _ := legacy.Lookup("poll")
	assert.Equal(t, "10", v)
}

func readvar(t testing.TB, r mode6.Request) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	require.NoError(t, err)
	return b
}

func TestProcessControlRules(t *testing.T) {
	t.Parallel()
	info := ntpsim.SystemInfo{Version: "ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)", Processor: "x86_64",
		System: "Linux/5.10.0", Stratum: 2, RefID: "192.0.2.1", TC: 6, MinTC: 3}
	host := &ntpsim.Host{Mode6: ntpsim.Mode6Classic, Status: ntpsim.StatusOf(0, 6, 5), System: ntpsim.NTPdVars(info),
		Peers: []ntpsim.Peer{{AssocID: 7, Status: 0x9614, Vars: mode6.Vars{{Name: "srcadr", Value: "192.0.2.1"}}}}}
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Default: host})
	c := newClient(t, "udp4", "127.0.0.1:0")
	to := at(s, "127.0.0.1")
	ask := func(req []byte) []datagram { return c.exchange(to, req, 150*time.Millisecond, 10) }
	errOf := func(ds []datagram) error {
		require.Len(t, ds, 1)
		var p mode6.Packet
		return p.DecodeFromBytes(ds[0].payload)
	}

	// Named variables come back in the server's order.
	got := ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 3, Names: []string{"stratum", "version"}}))
	require.Len(t, got, 1)
	var p mode6.Packet
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.Equal(t, `stratum=2,`+"\r\n"+`version="ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)"`+"\r\n", string(p.Data),
		"in ntpd's table order, folded where the line would reach 72 characters")
	// A known variable the server has no value for is left out; an
	// unknown one is an error.
	got = ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 3, Names: []string{"tai", "stratum"}}))
	require.Len(t, got, 1)
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.Equal(t, "stratum=2\r\n", string(p.Data))
	assert.Equal(t, "leap_none, sync_ntp, 1 event, clock_sync", mode6.SystemStatusOf(p.Status).String())

	assert.ErrorIs(t, errOf(ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 4, Names: []string{"nosuchvar"}}))), mode6.CErrUnknownVar)
	assert.ErrorIs(t, errOf(ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 5, AssocID: 99}))), mode6.CErrBadAssoc)
	assert.ErrorIs(t, errOf(ask(readvar(t, mode6.Request{Op: mode6.OpReadClock, Seq: 5}))), mode6.CErrBadAssoc)
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x14, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrBadOp)
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x02, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0x78})), mode6.CErrBadFormat, "13 octets")
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x02, 0, 9, 0, 0, 0, 0, 0, 0, 0, 9, 0x78, 0, 0, 0})), mode6.CErrBadFormat, "count past the data")
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x03, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrPermission, "WRITEVAR")
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x08, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrPermission, "CONFIGURE")
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x06, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrPermission, "SETTRAP, ntpd 4.2.8")
	assert.Empty(t, ask([]byte{0x16, 0x0a, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0}), "READ_MRU without a nonce: nothing")

	// Peer association: READSTAT lists it, READVAR reads it.
	got = ask(readvar(t, mode6.Request{Op: mode6.OpReadStat, Seq: 6}))
	require.Len(t, got, 1)
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.Equal(t, []mode6.AssocStatus{{AssocID: 7, Status: mode6.PeerStatusOf(0x9614)}}, mode6.AppendAssocStatuses(nil, p.Data))
	got = ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 7, AssocID: 7}))
	require.Len(t, got, 1)
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.Equal(t, uint16(0x9614), p.Status)
	assert.Equal(t, "srcadr=192.0.2.1\r\n", string(p.Data))

	// REQ_NONCE answers; UNSPEC returns the status only.
	got = ask([]byte{0x16, 0x0c, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	require.Len(t, got, 1)
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.True(t, strings.HasPrefix(string(p.Data), "nonce="))
	got = ask([]byte{0x16, 0x00, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0})
	require.Len(t, got, 1)
	require.NoError(t, p.DecodeFromBytes(got[0].payload))
	assert.Empty(t, p.Data)

	// Silently dropped.
	for name, req := range map[string][]byte{
		"response bit": {0x16, 0x82, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"error bit":    {0x16, 0x42, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"more bit":     {0x16, 0x22, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"offset":       {0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0},
		"version 5":    {0x2e, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"version 0":    {0x06, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"short":        {0x16, 0x02, 0, 1, 0, 0, 0, 0},
	} {
		assert.Empty(t, ask(req), name)
	}
	// ntpsec has no trap or saveconfig handlers.
	s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, System: host.System})
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x06, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrBadOp, "SETTRAP, ntpsec")
	assert.ErrorIs(t, errOf(ask([]byte{0x16, 0x09, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0})), mode6.CErrBadOp, "SAVECONFIG, ntpsec")
	// A silent host.
	s.SetHost(netip.MustParseAddr("127.0.0.1"), &ntpsim.Host{Mode6: ntpsim.Mode6Silent, System: host.System})
	assert.Empty(t, ask(readvar(t, mode6.Request{Op: mode6.OpReadVar, Seq: 1})))
}

func TestMode6Hostile(t *testing.T) {
	t.Parallel()
	long := ntpsim.NTPsecVars(ntpsim.SystemInfo{Version: "ntpd ntpsec-1.2.2", Extra: mode6.Vars{
		{Name: "big1", Value: strings.Repeat("x", 400)}, {Name: "big2", Value: strings.Repeat("y", 400)}}})
	req := mode6.Request{Op: mode6.OpReadVar, Seq: 42}
	run := func(t *testing.T, hb ntpsim.Hostile) mode6.Reply {
		t.Helper()
		s := start(t, "udp4", "0.0.0.0:0", ntpsim.Config{Default: &ntpsim.Host{Mode6: ntpsim.Mode6NTPsec, Status: 0xc016, System: long, Hostile: hb}})
		got := newClient(t, "udp4", "127.0.0.1:0").exchange(at(s, "127.0.0.9"), readvar(t, req), 200*time.Millisecond, 2000)
		var r mode6.Reassembler
		r.ResetFor(req)
		for _, d := range got {
			_ = r.Add(d.payload)
		}
		return r.Reply()
	}
	plain := run(t, ntpsim.Hostile{})
	require.NoError(t, plain.Err)
	require.Equal(t, 3, plain.Fragments)

	t.Run("overlapping fragments", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{Overlap: true})
		assert.Equal(t, 1, rep.Overlaps)
		assert.Equal(t, 1, rep.Conflicting, "the copy after the last fragment comes after completion")
		require.NoError(t, rep.Err)
		assert.Equal(t, plain.Data, rep.Data)
	})
	t.Run("duplicates", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{Duplicates: 4})
		require.NoError(t, rep.Err)
		assert.Equal(t, 12, rep.Duplicates, "copies after completion still count as duplicates")
	})
	t.Run("more bit never clears", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{EndlessMore: true, StormPackets: 200})
		assert.Equal(t, 200, rep.Packets)
		assert.ErrorIs(t, rep.Err, mode6.ErrTooManyFragments)
		assert.LessOrEqual(t, len(rep.Data), mode6.MaxReplyLen)
	})
	t.Run("wrong sequence number", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{WrongSeq: true})
		assert.Equal(t, 3, rep.Mismatched)
		assert.ErrorIs(t, rep.Err, mode6.ErrIncomplete)
	})
	t.Run("count larger than the datagram", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{CountOverflow: true})
		assert.Equal(t, 3, rep.Malformed)
		assert.True(t, errors.Is(rep.Err, mode6.ErrTruncated) || errors.Is(rep.Err, mode6.ErrLength), "%v", rep.Err)
	})
	t.Run("junk in values", func(t *testing.T) {
		rep := run(t, ntpsim.Hostile{JunkValues: true})
		require.NoError(t, rep.Err)
		vs, st := mode6.ParseVars(rep.Data)
		assert.Positive(t, st.Dropped)
		v, _ := vs.Lookup("version")
		assert.Equal(t, "ntpd ntpsec-1.2.2", v, "quoted values stay clean")
	})
}

// TestMode3: a client request gets the server reply ntpd's fast_xmit
// sends: mode 4, the request's version, the origin its transmit time,
// the system's stratum, precision and refid; NoTime hosts ignore it.
func TestMode3(t *testing.T) {
	t.Parallel()
	sys := ntpsim.NTPsecVars(ntpsim.SystemInfo{Version: "ntpd ntpsec-1.2.2", Stratum: 2, RefID: "192.0.2.1"})
	s := start(t, "udp4", "127.0.0.1:0", ntpsim.Config{Hosts: map[netip.Addr]*ntpsim.Host{
		netip.MustParseAddr("127.0.0.1"): {Mode6: ntpsim.Mode6NTPsec, Status: 0x0615, System: sys},
	}})
	c := newClient(t, "udp4", "127.0.0.1:0")
	req := make([]byte, 48)
	req[0] = 3<<3 | 3 // version 3, client
	copy(req[40:], []byte{0xee, 0xbb, 0x91, 0x85, 1, 2, 3, 4})
	got := payloads(c.exchange(at(s, "127.0.0.1"), req, 200*time.Millisecond, 4))
	require.Len(t, got, 1)
	b := got[0]
	require.Len(t, b, 48)
	assert.Equal(t, byte(0<<6|3<<3|4), b[0], "LI 0, version 3, mode 4")
	assert.Equal(t, byte(2), b[1], "stratum")
	assert.Equal(t, []byte{192, 0, 2, 1}, b[12:16], "refid")
	assert.Equal(t, req[40:48], b[24:32], "origin")
	assert.NotZero(t, b[32:40], "receive")
}
