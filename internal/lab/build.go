package lab

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// daemon is one software generation the lab simulates.
type daemon struct {
	name    string // Host.Daemon
	banner  string // the version variable
	vars    func(ntpsim.SystemInfo) mode6.Vars
	mode6   ntpsim.Mode6Behavior
	systems []string
	procs   []string
	mru     bool // serves the MRU list (ntpd 4.2.8, ntpsec)
}

var (
	ntpd426 = []daemon{
		{"ntpd 4.2.6p5", "ntpd 4.2.6p5@1.2349-o Tue Jan  6 15:28:43 UTC 2015 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"Linux/2.6.32-573.el6.x86_64", "Linux/3.2.0-4-amd64", "FreeBSD/9.3-RELEASE"}, []string{"x86_64", "amd64"}, false},
		{"ntpd 4.2.6p2", "ntpd 4.2.6p2@1.2194 Sun Oct 17 13:35:13 UTC 2010 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"Linux/2.6.32-5-686", "Linux/2.6.35.14"}, []string{"i686", "armv5tel"}, false},
		{"ntpd 4.2.6p3", "ntpd 4.2.6p3@1.2290-o Tue Jun  5 20:12:11 UTC 2012 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"Linux/3.0.101", "NetBSD/6.1.5"}, []string{"mips", "armv7l", "amd64"}, false},
	}
	ntpd424 = []daemon{
		{"ntpd 4.2.4p8", "ntpd 4.2.4p8@1.1612-o Tue Nov 29 00:09:12 UTC 2011 (1)", ntpsim.LegacyVars, ntpsim.Mode6Classic,
			[]string{"Linux/2.6.18-308.el5", "Linux/2.6.18-419.el5PAE"}, []string{"x86_64", "i686"}, false},
		{"ntpd 4.2.4p5", "ntpd 4.2.4p5@1.1541-o Mon Aug 17 12:00:00 UTC 2009 (1)", ntpsim.LegacyVars, ntpsim.Mode6Classic,
			[]string{"Linux/2.6.26-2-686", "SunOS/5.10"}, []string{"i686", "sun4v"}, false},
	}
	ntpd428 = []daemon{
		{"ntpd 4.2.8p15", "ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"Linux/5.10.0-28-amd64", "Linux/4.19.0-26-amd64"}, []string{"x86_64"}, true},
		{"ntpd 4.2.8p18", "ntpd 4.2.8p18@1.4062-o Sun Jun  2 09:24:38 UTC 2024 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"FreeBSD/14.1-RELEASE", "Linux/6.1.0-18-amd64"}, []string{"amd64", "x86_64"}, true},
		{"ntpd 4.2.8p10", "ntpd 4.2.8p10@1.3728-o Thu Mar 30 09:00:00 UTC 2017 (1)", ntpsim.NTPdVars, ntpsim.Mode6Classic,
			[]string{"Linux/3.10.0-1160.el7.x86_64", "Linux/4.9.0-8-amd64"}, []string{"x86_64"}, true},
	}
	ntpsec = []daemon{
		{"ntpsec 1.2.2", "ntpd ntpsec-1.2.2", ntpsim.NTPsecVars, ntpsim.Mode6NTPsec,
			[]string{"Linux/6.1.0-21-amd64", "Linux/6.1.0-13-arm64"}, []string{"x86_64", "aarch64"}, true},
		{"ntpsec 1.2.3", "ntpd ntpsec-1.2.3", ntpsim.NTPsecVars, ntpsim.Mode6NTPsec,
			[]string{"Linux/6.8.0-45-generic", "FreeBSD/14.0-RELEASE"}, []string{"x86_64", "amd64"}, true},
	}
	xntpd = []daemon{
		{"xntpd 3-5.93e", "xntpd 3-5.93e Mon Sep 20 15:47:18 CEST 1999 (1)", ntpsim.LegacyVars, ntpsim.Mode6Classic,
			[]string{"UNIX", "cisco"}, []string{"mips", "unknown"}, false},
	}
)

// hostileSpec is one hostile host: its misbehaviour and what the
// project's prober observes with its default caps.
type hostileSpec struct {
	name            string
	h               ntpsim.Hostile
	clients         int
	monlist, rv     ntpctl.Status
	reserveNextAddr bool
}

var hostileSpecs = []hostileSpec{
	{name: "duplicates", h: ntpsim.Hostile{Duplicates: 2}, clients: 60, monlist: ntpctl.StatusOK, rv: ntpctl.StatusOK},
	{name: "gaps", h: ntpsim.Hostile{GapEvery: 3}, clients: 60, monlist: ntpctl.StatusPartial, rv: ntpctl.StatusOK},
	{name: "garbage", h: ntpsim.Hostile{Garbage: 4}, clients: 30, monlist: ntpctl.StatusOK, rv: ntpctl.StatusOK},
	{name: "endless-more", h: ntpsim.Hostile{EndlessMore: true, StormPackets: 300}, clients: 60, monlist: ntpctl.StatusPartial, rv: ntpctl.StatusPartial},
	{name: "other-port", h: ntpsim.Hostile{OtherPort: true}, clients: 60, monlist: ntpctl.StatusNoAnswer, rv: ntpctl.StatusNoAnswer},
	{name: "other-address", h: ntpsim.Hostile{OtherAddr: true}, clients: 60, monlist: ntpctl.StatusNoAnswer, rv: ntpctl.StatusNoAnswer, reserveNextAddr: true},
	{name: "count-overflow", h: ntpsim.Hostile{CountOverflow: true}, clients: 60, monlist: ntpctl.StatusProtocolError, rv: ntpctl.StatusProtocolError},
	{name: "reverse", h: ntpsim.Hostile{Reverse: true}, clients: 120, monlist: ntpctl.StatusOK, rv: ntpctl.StatusOK},
	{name: "wrong-seq", h: ntpsim.Hostile{WrongSeq: true}, clients: 24, monlist: ntpctl.StatusOK, rv: ntpctl.StatusNoAnswer},
	{name: "junk-values", h: ntpsim.Hostile{JunkValues: true, Overlap: true}, clients: 12, monlist: ntpctl.StatusOK, rv: ntpctl.StatusOK},
	{name: "padded", h: ntpsim.Hostile{PadTo: 1200}, clients: 18, monlist: ntpctl.StatusOK, rv: ntpctl.StatusOK},
	{name: "wrap-seq", h: ntpsim.Hostile{WrapSeq: true}, clients: 1000, monlist: ntpctl.StatusPartial, rv: ntpctl.StatusOK},
}

// builder draws the lab from a seeded generator.
type builder struct {
	seed uint64
	rng  *rand.Rand
	now  time.Time
	used map[netip.Addr]bool
	base [4]byte
}

// build lays out the lab's hosts (ports still 0).
func build(cfg Config, now time.Time) *Lab {
	b := &builder{
		seed: cfg.Seed,
		rng:  rand.New(rand.NewPCG(cfg.Seed, 0x6e7470636c616221)),
		now:  now.Truncate(time.Second),
		used: map[netip.Addr]bool{},
		base: cfg.Prefix.Addr().As4(),
	}
	var hosts []Host
	for _, hs := range hostileSpecs {
		h := b.host(Hostile, ntpd426[0], hs.clients)
		h.Hostile = hs.name
		h.Sim.Hostile = hs.h
		h.Sim.Hostile.Seed = b.rng.Uint64()
		h.Monlist = Expect{Status: hs.monlist}
		h.ReadVar = Expect{Status: hs.rv}
		h.MRU = Expect{}  // not predicted: a misbehaving ntpd 4.2.6 that has no MRU list
		h.Time = Expect{} // not predicted: the misbehaviour applies to mode 4 replies too
		if hs.reserveNextAddr {
			b.used[h.Addr.Addr().Next()] = true // the replies come from there; nothing else may
		}
		hosts = append(hosts, h)
	}

	rest := cfg.Hosts - len(hostileSpecs)
	share := func(pct int) int { return rest * pct / 100 }
	nAmp, nLegacy, nDisabled, nNTPd, nSec, nXntpd := share(14), share(6), share(10), share(14), share(14), share(2)
	// Monitor table sizes: the full 600, a table longer than ntpd returns,
	// a handful, then a spread from 1 to 600 (log-uniform, as real tables
	// are mostly small).
	sizes := []int{600, 1500, 3}
	for i := 0; i < nAmp+nLegacy; i++ {
		if i < len(sizes) {
			continue
		}
		sizes = append(sizes, int(math.Round(math.Exp(b.rng.Float64()*math.Log(600)))))
	}
	for i := range nAmp + nLegacy {
		gen := ntpd426
		if i%3 == 2 && nLegacy > 0 {
			gen = ntpd424
		}
		hosts = append(hosts, b.host(Amplifier, gen[b.rng.IntN(len(gen))], max(sizes[i], 1)))
	}
	for range nDisabled {
		hosts = append(hosts, b.host(MonlistDisabled, ntpd428[b.rng.IntN(len(ntpd428))], 0))
	}
	for range nNTPd {
		hosts = append(hosts, b.host(ReadVarOnly, ntpd428[b.rng.IntN(len(ntpd428))], 0))
	}
	for range nSec {
		hosts = append(hosts, b.host(ReadVarOnly, ntpsec[b.rng.IntN(len(ntpsec))], 0))
	}
	for range max(nXntpd, 1) {
		hosts = append(hosts, b.host(ReadVarOnly, xntpd[0], 0))
	}
	for len(hosts) < cfg.Hosts {
		hosts = append(hosts, Host{Addr: netip.AddrPortFrom(b.addr(), 0), Kind: Silent,
			Monlist: Expect{Status: ntpctl.StatusNoAnswer}, ReadVar: Expect{Status: ntpctl.StatusNoAnswer},
			MRU: Expect{Status: ntpctl.StatusNoAnswer}, Time: Expect{Status: ntpctl.StatusNoAnswer}})
	}
	slices.SortFunc(hosts, func(x, y Host) int { return x.Addr.Addr().Compare(y.Addr.Addr()) })
	if cfg.Day > 0 {
		n := 0
		for i := range hosts {
			h := &hosts[i]
			if h.Kind == Silent || h.Kind == Hostile {
				continue
			}
			h.Role = DayRole(n)
			n++
			if !h.Role.Answers(cfg.Day) {
				*h = Host{Addr: h.Addr, Kind: Silent, Role: h.Role, Daemon: "",
					Monlist: Expect{Status: ntpctl.StatusNoAnswer}, ReadVar: Expect{Status: ntpctl.StatusNoAnswer},
					MRU: Expect{Status: ntpctl.StatusNoAnswer}, Time: Expect{Status: ntpctl.StatusNoAnswer}}
			}
		}
	}
	if !cfg.NoIPv6 {
		hosts = append(hosts, b.hostAt(netip.IPv6Loopback(), Amplifier, ntpd426[0], 42))
	}

	l := &Lab{hosts: hosts, byAddr: map[netip.Addr]int{}, prefix: cfg.Prefix}
	for i, h := range hosts {
		l.byAddr[h.Addr.Addr()] = i
	}
	l.csv = l.buildCSV(!cfg.NoIPv6)
	return l
}

// addr draws an unused address of the prefix (host part 1..254 in the
// last octet).
func (b *builder) addr() netip.Addr {
	for {
		a := netip.AddrFrom4([4]byte{b.base[0], b.base[1], byte(b.rng.IntN(256)), byte(1 + b.rng.IntN(254))})
		if !b.used[a] && !b.used[a.Next()] {
			b.used[a] = true
			return a
		}
	}
}

func pick[T any](b *builder, xs []T) T { return xs[b.rng.IntN(len(xs))] }

// host builds one answering host of a daemon generation; clients is the
// monitor table size of an amplifier or hostile host.
func (b *builder) host(k Kind, d daemon, clients int) Host {
	return b.hostAt(b.addr(), k, d, clients)
}

// hostAt builds one answering host at addr.
func (b *builder) hostAt(addr netip.Addr, k Kind, d daemon, clients int) Host {
	sim := &ntpsim.Host{Mode6: d.mode6}
	switch k {
	case Amplifier, Hostile:
		sim.Mode7 = ntpsim.Mode7Monlist
		sim.Clients = b.clients(addr, clients)
	case MonlistDisabled:
		sim.Mode7 = ntpsim.Mode7NoData
	}
	sim.NoMRU = !d.mru
	a := addr.As16()
	if k != Hostile {
		// About one in ten refuse time service (a firewall that passes
		// only the control queries, "restrict … noserve") and still
		// answer Mode 6 and 7: drawn from a stream of its own, keyed by
		// the address, so that the rest of the lab stays as it was
		// before mode 3 and a server is the same on every day.
		tb := rand.New(rand.NewPCG(b.seed^binary.BigEndian.Uint64(a[8:]), 0x6e6f74696d65))
		sim.NoTime = tb.IntN(10) == 0
	}
	if d.mru {
		// Its MRU list, drawn from a stream of its own so that the rest
		// of the lab stays as it was before MRU lists: 1 to 300 clients,
		// log-uniform. (ntpd 4.2.8 keeps the list with mode 7 off.)
		mb := &builder{rng: rand.New(rand.NewPCG(b.seed^binary.BigEndian.Uint64(a[8:]), 0x6d72756c697374))}
		sim.Clients = mb.clients(addr, int(math.Round(math.Exp(mb.rng.Float64()*math.Log(300)))))
	}
	assoc := uint16(1 + b.rng.IntN(65535))
	if d.mode6 == ntpsim.Mode6NTPsec {
		assoc = uint16(1 + b.rng.IntN(64))
	}
	si := b.systemInfo(d, assoc)
	sim.System = d.vars(si)
	sim.Status = ntpsim.StatusOf(uint8(si.Leap), 6, pick(b, []uint8{5, 5, 5, 8, 6}))
	if si.Stratum == 1 {
		sim.Status = ntpsim.StatusOf(0, 1, 5) // sync_pps
	}
	sel := mode6.PeerStatus{Flags: mode6.PeerConfigured | mode6.PeerReachable, Select: 6, EventCount: 1, Event: 10}
	sim.Peers = []ntpsim.Peer{{AssocID: assoc, Status: sel.Word()}}
	sim.Peers[0].Vars = peerVars(b, addr, sim)
	h := Host{Addr: netip.AddrPortFrom(addr, 0), Kind: k, Daemon: d.name, PeerAssoc: assoc, Sim: sim}
	h.Monlist, h.ReadVar = expect(sim)
	h.MRU = Expect{Status: ntpctl.StatusServerError} // CERR_BADOP
	if d.mru {
		distinct := map[netip.Addr]bool{}
		for _, c := range sim.Clients {
			distinct[c.Addr] = true
		}
		h.MRU = Expect{Status: ntpctl.StatusOK, Entries: len(distinct) + 1} // one per address, and the asker
	}
	h.Time = Expect{Status: ntpctl.StatusNoAnswer}
	if !sim.NoTime {
		h.Time = Expect{Status: ntpctl.StatusOK, Packets: 1, Bytes: ntpctl.TimePacketLen, Stratum: si.Stratum}
	}
	return h
}

// systemInfo draws the system variables of a synchronised server.
func (b *builder) systemInfo(d daemon, assoc uint16) ntpsim.SystemInfo {
	stratum := 2 + b.rng.IntN(3)
	refid := netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + b.rng.IntN(254))}).String()
	if b.rng.IntN(8) == 0 {
		stratum, refid = 1, pick(b, []string{"GPS", "PPS", "DCF"})
	}
	poll := 6 + b.rng.IntN(5)
	clock := mode6.TimestampOf(b.now)
	ref := mode6.TimestampOf(b.now.Add(-time.Duration(b.rng.IntN(1<<poll)) * time.Second))
	return ntpsim.SystemInfo{
		Version: d.banner, Processor: pick(b, d.procs), System: pick(b, d.systems),
		Stratum: stratum, Precision: -18 - b.rng.IntN(7),
		RootDelay: b.rng.Float64() * 40, RootDisp: 1 + b.rng.Float64()*30, RefID: refid,
		RefTime: ref, Clock: clock, Peer: int(assoc), TC: poll, MinTC: 3,
		Offset: (b.rng.Float64() - 0.5) * 2, Frequency: (b.rng.Float64() - 0.5) * 40,
		SysJitter: b.rng.Float64(), ClkJitter: b.rng.Float64() / 2, ClkWander: b.rng.Float64() / 10, State: 4,
	}
}

// peerVars returns the variables of the host's one association: its
// upstream server (or reference clock).
func peerVars(b *builder, self netip.Addr, sim *ntpsim.Host) mode6.Vars {
	sv, _ := mode6.ParseSystemVars(mode6.AppendVars(nil, sim.System))
	src := sv.RefID.Raw
	if sv.RefID.Kind != mode6.RefIDIPv4 {
		src = "127.127.20.0" // a reference clock's pseudo-address
	}
	f := func(name string, v float64, places int) mode6.Var {
		return mode6.Var{Name: name, Value: fmt.Sprintf("%.*f", places, v)}
	}
	s := func(name, v string) mode6.Var { return mode6.Var{Name: name, Value: v} }
	filt := func() string {
		var out string
		for range 8 {
			out += fmt.Sprintf(" %.2f", b.rng.Float64()*30)
		}
		return out
	}
	return mode6.Vars{
		s("srcadr", src), s("srcport", "123"), s("dstadr", self.String()), s("dstport", "123"),
		s("leap", "0"), s("stratum", fmt.Sprint(max(int(sv.Stratum)-1, 0))), s("precision", "-20"),
		f("rootdelay", b.rng.Float64()*20, 3), f("rootdisp", b.rng.Float64()*20, 3), s("refid", "GPS"),
		s("reftime", sv.RefTime.String()), s("reach", "377"), s("unreach", "0"), s("hmode", "3"),
		s("pmode", "4"), s("hpoll", fmt.Sprint(sv.TC)), s("ppoll", fmt.Sprint(sv.TC)),
		f("delay", b.rng.Float64()*40, 3), f("offset", sv.Offset, 3), f("jitter", sv.SysJitter, 3),
		f("dispersion", b.rng.Float64()*5, 3), s("filtdelay", filt()), s("filtoffset", filt()),
	}
}

// Client populations seen in monitor tables: documentation addresses
// (RFC 5737, RFC 3849) stand for real clients.
var (
	clientNets4 = [][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}
	clientNet6  = netip.MustParseAddr("2001:db8::")
	serverAddr6 = netip.MustParseAddr("2001:db8:123::123")
)

// clients draws a monitor table of n entries, newest first. Some tables
// of IPv4 servers have IPv6 clients (about one in eight entries); an IPv6
// server's table has as many IPv6 clients as IPv4 ones.
func (b *builder) clients(self netip.Addr, n int) []mode7.MonitorEntry {
	v6, oneIn := b.rng.IntN(3) == 0, 8
	local4, local6 := self, serverAddr6
	if self.Is6() {
		v6, oneIn = true, 2
		local4, local6 = netip.AddrFrom4([4]byte{127, 0, 0, 1}), self
	}
	out := make([]mode7.MonitorEntry, n)
	last := uint32(0)
	for i := range out {
		e := &out[i]
		last += uint32(b.rng.IntN(30))
		e.LastInt = last
		e.Flags = 1 // MDF_UCAST
		switch r := b.rng.IntN(20); {
		case r < 13: // clients (mode 3), ephemeral ports
			e.Mode, e.Version, e.Port = 3, uint8(3+b.rng.IntN(2)), uint16(32768+b.rng.IntN(28232))
			e.Count = uint32(1 + b.rng.IntN(2000))
		case r < 16: // servers polling us (mode 4) on port 123
			e.Mode, e.Version, e.Port = 4, 4, 123
			e.Count = uint32(100 + b.rng.IntN(20000))
		case r < 19: // someone else's monlist scans (mode 7)
			e.Mode, e.Version, e.Port = 7, 2, uint16(1024+b.rng.IntN(64511))
			e.Count = uint32(1 + b.rng.IntN(5))
		default: // ntpq (mode 6)
			e.Mode, e.Version, e.Port = 6, 2, uint16(32768+b.rng.IntN(28232))
			e.Count = uint32(1 + b.rng.IntN(20))
		}
		if e.Count > 1 {
			e.AvgInt = uint32(16 + b.rng.IntN(1024))
		}
		if v6 && b.rng.IntN(oneIn) == 0 {
			a := clientNet6.As16()
			a[6], a[7] = byte(b.rng.IntN(256)), byte(b.rng.IntN(256))
			a[14], a[15] = byte(b.rng.IntN(256)), byte(1+b.rng.IntN(255))
			e.Addr, e.LocalAddr = netip.AddrFrom16(a), local6
		} else {
			n := clientNets4[b.rng.IntN(len(clientNets4))]
			e.Addr = netip.AddrFrom4([4]byte{n[0], n[1], n[2], byte(1 + b.rng.IntN(254))})
			e.LocalAddr = local4
		}
	}
	return out
}

// expect computes what a client sees from a well-behaved host: the reply
// the simulator sends is built with the same encoders.
func expect(h *ntpsim.Host) (monlist, rv Expect) {
	monlist.Status, rv.Status = ntpctl.StatusNoAnswer, ntpctl.StatusNoAnswer
	req7 := mode7.NewRequest(mode7.ReqMonGetList1)
	switch h.Mode7 {
	case ntpsim.Mode7Monlist:
		clients := h.Clients[:min(len(h.Clients), mode7.MaxMonitorEntries)]
		pkts, err := mode7.AppendMonitorReply(nil, req7.Header(), clients)
		if err != nil {
			panic("lab: " + err.Error()) // the lab's own tables always encode
		}
		monlist = Expect{Status: ntpctl.StatusOK, Packets: len(pkts), Entries: len(clients)}
		for _, p := range pkts {
			monlist.Bytes += len(p)
		}
	case ntpsim.Mode7NoData:
		monlist = Expect{Status: ntpctl.StatusServerError, Packets: 1, Bytes: mode7.HeaderLen}
	}
	if h.Mode6 != ntpsim.Mode6Silent {
		var rb mode6.ReplyBuilder
		rb.Reset(mode6.Header{Leap: uint8(h.Status >> 14), Version: 2, Response: true, Op: mode6.OpReadVar, Status: h.Status})
		rb.PutVars(h.System)
		pkts := rb.AppendPackets(nil, nil)
		rv = Expect{Status: ntpctl.StatusOK, Packets: len(pkts)}
		for _, p := range pkts {
			rv.Bytes += len(p)
		}
	}
	return monlist, rv
}
