package ntpsim

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/ntpctl/ntpctl/mode6"
)

// Mode6Behavior is how a simulated host treats Mode 6 requests.
type Mode6Behavior int

const (
	// Mode6Silent ignores Mode 6, as a "restrict noquery" server does.
	Mode6Silent Mode6Behavior = iota
	// Mode6NTPsec answers as ntpsec 1.2.2 does: padding octets hold what
	// its static send buffer last held.
	Mode6NTPsec
	// Mode6Classic answers as ntp.org ntpd 4.2.x does (zero padding). With
	// LegacyVars it stands for 4.2.4, xntpd and router firmware too.
	Mode6Classic
)

// String names the behaviour.
func (b Mode6Behavior) String() string {
	switch b {
	case Mode6Silent:
		return "silent"
	case Mode6NTPsec:
		return "ntpsec"
	case Mode6Classic:
		return "classic"
	}
	return "unknown"
}

// Peer is one association of a simulated host.
type Peer struct {
	AssocID uint16
	Status  uint16     // peer status word
	Vars    mode6.Vars // peer variables, in the server's order
}

// mode6 answers a Mode 6 request as ntpd's process_control does.
func (h *Host) mode6(req []byte, src netip.AddrPort, dst netip.Addr, out *outbox) {
	if h.Mode6 == Mode6Silent {
		return
	}
	var hd mode6.Header
	if hd.UnmarshalBinary(req) != nil {
		return
	}
	// Dropped without a word: responses, errors, trains, offsets, bad
	// versions (docs/wire-spec.md §2.4). A reply never gets a reply.
	if hd.Response || hd.Error || hd.More || hd.Offset != 0 || hd.Version < 1 || hd.Version > 4 {
		return
	}
	h.init()
	if !h.NoMRU {
		h.heard(src, 6, hd.Version)
	}
	leap := uint8(h.Status >> 14)
	fail := func(code mode6.ServerError) {
		b := mode6.AppendErrorReply(nil, hd, leap, code)
		if h.Mode6 == Mode6NTPsec {
			// ctl_error leaves the offset of the static reply packet as
			// the last fragment sent set it.
			h.mu.Lock()
			binary.BigEndian.PutUint16(b[8:], h.lastOffset)
			h.mu.Unlock()
		}
		h.emit(h.Hostile.mangle([][]byte{b}), src, dst, out)
	}
	if int(hd.Count) > len(req)-mode6.HeaderLen || len(req)%4 != 0 ||
		(h.Mode6 == Mode6NTPsec && hd.Count > mode6.MaxDataLen) {
		fail(mode6.CErrBadFormat)
		return
	}
	data := req[mode6.HeaderLen : mode6.HeaderLen+int(hd.Count)]

	rh := mode6.Header{Leap: leap, Version: hd.Version, Response: true, Op: hd.Op, Seq: hd.Seq, AssocID: hd.AssocID}
	var vars mode6.Vars
	var bin []byte
	switch hd.Op {
	case mode6.OpUnspec, mode6.OpReadStat, mode6.OpReadVar:
		if hd.AssocID == 0 {
			rh.Status = h.Status
			switch hd.Op {
			case mode6.OpReadStat:
				bin = h.assocList()
			case mode6.OpReadVar:
				vars = h.System
			}
			break
		}
		p := h.peer(hd.AssocID)
		if p == nil {
			fail(mode6.CErrBadAssoc)
			return
		}
		rh.Status = p.Status
		if hd.Op != mode6.OpUnspec {
			vars = p.Vars
		}
	case mode6.OpReadClock:
		fail(mode6.CErrBadAssoc) // no reference clock is simulated
		return
	case mode6.OpReqNonce:
		if h.NoMRU {
			fail(mode6.CErrBadOp)
			return
		}
		vars = mode6.Vars{{Name: "nonce", Value: h.nonce(src)}} // status 0, as process_control leaves it
	case mode6.OpReadMRU:
		if h.NoMRU {
			fail(mode6.CErrBadOp)
			return
		}
		list := h.mruList()
		h.mu.Lock()
		code, answer := h.readMRU(rh, data, src, netip.AddrPortFrom(dst, 0), list)
		if !answer || code != 0 {
			h.mu.Unlock()
			if answer {
				fail(code)
			}
			return
		}
		h.send(src, dst, out)
		return
	case mode6.OpSetTrap, mode6.OpUnsetTrap, mode6.OpSaveConfig:
		if h.Mode6 == Mode6NTPsec {
			fail(mode6.CErrBadOp) // ntpsec has no handler for these
			return
		}
		fail(mode6.CErrPermission)
		return
	case mode6.OpWriteVar, mode6.OpWriteClock, mode6.OpConfigure, mode6.OpReadOrdlistA:
		fail(mode6.CErrPermission) // no key is configured; nothing changes
		return
	default:
		fail(mode6.CErrBadOp)
		return
	}
	if len(data) > 0 && hd.Op == mode6.OpReadVar {
		table := sysVarOrder
		if hd.AssocID != 0 {
			table = peerVarOrder
		}
		var code mode6.ServerError
		if vars, code = selectVars(vars, data, table); code != 0 {
			fail(code)
			return
		}
	}
	if h.Hostile.JunkValues {
		vars = junk(vars)
	}
	h.mu.Lock()
	h.rb.Reset(rh)
	h.rb.PutVars(vars)
	if bin != nil {
		h.rb.PutBinary(bin)
	}
	h.send(src, dst, out)
}

// send closes the reply in h.rb and sends it; the caller holds h.mu,
// which send releases.
func (h *Host) send(src netip.AddrPort, dst netip.Addr, out *outbox) {
	var stale []byte
	if h.Mode6 == Mode6NTPsec {
		if h.stale == nil {
			h.stale = make([]byte, mode6.MaxPacketLen)
		}
		stale = h.stale
	}
	pkts := h.rb.AppendPackets(out.scratch[:0], stale)
	h.lastOffset = binary.BigEndian.Uint16(pkts[len(pkts)-1][8:])
	h.mu.Unlock()
	out.scratch = pkts
	h.emit(h.Hostile.mangle(pkts), src, dst, out)
}

func (h *Host) peer(assoc uint16) *Peer {
	for i := range h.Peers {
		if h.Peers[i].AssocID == assoc {
			return &h.Peers[i]
		}
	}
	return nil
}

// assocList is the binary body of READSTAT for association 0.
func (h *Host) assocList() []byte {
	b := make([]byte, 0, 4*len(h.Peers))
	for _, p := range h.Peers {
		b = binary.BigEndian.AppendUint16(b, p.AssocID)
		b = binary.BigEndian.AppendUint16(b, p.Status)
	}
	return b
}

// sysVarOrder and peerVarOrder are the variable tables of ntpd
// (ntp_control.c sys_var and peer_var, with ntpsec's additions and the
// 4.2.4 names beside their successors), in code order: the order a
// server answers a list of names in, whatever order they were asked in,
// and the names it knows.
var (
	sysVarOrder = []string{"leap", "stratum", "precision", "rootdelay", "rootdisp", "rootdispersion",
		"rootdist", "refid", "reftime", "tc", "poll", "peer", "state", "offset", "frequency", "sys_jitter",
		"jitter", "clk_jitter", "noise", "error", "clock", "processor", "system", "release", "version",
		"clk_wander", "stability", "sys_var_list", "tai", "leapsec", "expire", "mintc", "leapsmearinterval",
		"leapsmearoffset"}
	peerVarOrder = []string{"config", "authenable", "authentic", "srcadr", "srcport", "dstadr", "dstport",
		"leap", "hmode", "stratum", "ppoll", "hpoll", "precision", "rootdelay", "rootdisp", "refid",
		"reftime", "org", "rec", "xmt", "reach", "unreach", "timer", "delay", "offset", "jitter",
		"dispersion", "keyid", "filtdelay", "filtoffset", "pmode", "received", "sent", "filtdisp",
		"flash", "ttl", "peer_var_list", "in", "out", "rate", "bias", "srchost", "timerec", "timereach",
		"badauth", "bogusorg", "oldpkt", "seldisp", "selbroken", "candidate", "mode", "headway", "ntscookies"}
)

// selectVars returns the variables named in a request in the order of
// the server's table (unknown extra variables after, in their own
// order). A name the server does not know gets CERR_UNKNOWNVAR; a name it
// knows but has no value for is left out, as ntpd does (tai before the
// leap file is read, say).
func selectVars(all mode6.Vars, request []byte, table []string) (mode6.Vars, mode6.ServerError) {
	asked, _ := mode6.ParseVars(request)
	want := map[string]bool{}
	for _, a := range asked {
		_, have := all.Lookup(a.Name)
		if !have && !slices.Contains(table, a.Name) {
			return nil, mode6.CErrUnknownVar
		}
		want[a.Name] = true
	}
	var out mode6.Vars
	for _, v := range all {
		if want[v.Name] {
			out = append(out, v)
			delete(want, v.Name)
		}
	}
	rank := func(name string) int {
		if i := slices.Index(table, name); i >= 0 {
			return i
		}
		return len(table)
	}
	slices.SortStableFunc(out, func(a, b mode6.Var) int { return rank(a.Name) - rank(b.Name) })
	return out, 0
}

// junk puts binary octets in the middle of every unquoted value, as
// ntpsec 1.2.2 does in its filt* peer variables.
func junk(vs mode6.Vars) mode6.Vars {
	out := slices.Clone(vs)
	for i := range out {
		if !out[i].Quoted && !out[i].Bare && len(out[i].Value) > 1 {
			v := out[i].Value
			out[i].Value = v[:len(v)/2] + "\x94\xba\xb2\xee" + v[len(v)/2:]
		}
	}
	return out
}
