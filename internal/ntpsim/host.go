package ntpsim

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// Mode7Behavior is how a simulated host treats Mode 7 requests.
type Mode7Behavior int

const (
	// Mode7Silent ignores every Mode 7 packet, as ntpsec, OpenNTPD, a
	// default ntpd ≥ 4.2.7 (mode 7 disabled) and any "restrict noquery"
	// server do.
	Mode7Silent Mode7Behavior = iota
	// Mode7Monlist answers as ntpd 4.2.6 does: monlist returns the newest
	// 600 entries of the client table.
	Mode7Monlist
	// Mode7NoData answers as ntpd ≥ 4.2.7p26 with "enable mode7" does:
	// monlist gets INFO_ERR_NODATA ("monlist disabled").
	Mode7NoData
)

// String names the behaviour.
func (b Mode7Behavior) String() string {
	switch b {
	case Mode7Silent:
		return "silent"
	case Mode7Monlist:
		return "monlist"
	case Mode7NoData:
		return "nodata"
	}
	return "unknown"
}

// Host is one simulated server. Its fields must not change while a
// Server uses it; build a new Host and call Server.SetHost instead.
type Host struct {
	// Mode7 selects the Mode 7 personality.
	Mode7 Mode7Behavior
	// Clients is the monitor (MRU) list, newest first, as monlist returns
	// it. Entries beyond MaxMonitorEntries are never sent.
	Clients []mode7.MonitorEntry
	// AcceptLowPorts makes a Mode7Monlist host answer Mode 7 requests
	// from UDP source ports below 123, which ntpd from 4.2.5 development
	// to the Bug 2174 fix (4.2.7) dropped as bogus. Mode7NoData hosts
	// (4.2.8) always answer them.
	AcceptLowPorts bool
	// Mode6 selects the Mode 6 personality.
	Mode6 Mode6Behavior
	// System is the default set of system variables (READVAR of
	// association 0), in the server's order; see NTPsecVars, NTPdVars
	// and LegacyVars.
	System mode6.Vars
	// Status is the system status word; its leap indicator is also the
	// LI of every Mode 6 reply.
	Status uint16
	// Peers are the associations READSTAT lists and READVAR reads.
	Peers []Peer

	// NoMRU makes the host a daemon without an MRU list (ntpd before
	// 4.2.7, xntpd): REQ_NONCE and READ_MRU get CERR_BADOP. Otherwise it
	// serves its MRU list as ntpsec 1.2.2 does (Mode6NTPsec) or as ntpd
	// 4.2.8 does (Mode6Classic: six fields an entry, no sc and dr):
	// Clients (oldest first, dated back from the host's first MRU
	// request), then the senders of the Mode 3 and Mode 6 requests it
	// has had, the querier itself among them, as ntpd's monitor keeps
	// them.
	NoMRU bool
	// NoMRUList refuses READ_MRU with CERR_PERMISSION, as a "restrict
	// … nomrulist" ntpsec does.
	NoMRUList bool
	// NoTime makes the host ignore client (mode 3) requests; otherwise
	// it answers them in mode 4 from its system variables (leap,
	// stratum, precision, root delay and dispersion, refid, reftime), a
	// host without those as an unsynchronised stratum 16.
	NoTime bool
	// Now is the host's clock for nonces, MRU times and time replies; nil
	// means time.Now.
	Now func() time.Time

	// Hostile makes the host misbehave; the zero value is well-behaved.
	Hostile Hostile

	once  sync.Once
	mu    sync.Mutex
	cache map[replyKey][][]byte
	rng   *rand.Rand
	rb    mode6.ReplyBuilder
	stale []byte // ntpsec's static send buffer
	live  map[netip.Addr]*liveEntry
	time  []byte // the mode 4 reply's fixed fields
	// lastOffset is the offset of the last fragment sent, which ntpsec's
	// error replies repeat.
	lastOffset uint16
	epoch      mode6.Timestamp // the MRU list's times count back from it
}

type replyKey struct {
	version uint8
	impl    mode7.Impl
	code    mode7.ReqCode
	err     mode7.InfoErr // InfoOK for the monitor list itself
}

// Hostile lists misbehaviours of broken and malicious servers. They apply
// to every reply the host sends, error replies included, except where a
// field names a mode: WrapSeq changes Mode 7 monitor lists only; Overlap,
// WrongSeq and JunkValues change Mode 6 replies only.
type Hostile struct {
	// EndlessMore sets the more bit on every packet and, after the list,
	// keeps sending its packets again with sequence numbers wrapping past
	// 127, StormPackets packets in all.
	EndlessMore bool
	// Duplicates sends every packet this many extra times (a duplicate
	// storm, bounded by StormPackets).
	Duplicates int
	// GapEvery leaves out every packet whose index is a multiple of
	// GapEvery, from the second packet on (sequence gaps).
	GapEvery int
	// WrapSeq packetises the whole client table, however long, numbering
	// packets past 127 from 0 again, where ntpd stops at 128 packets.
	WrapSeq bool
	// Reverse sends the packets last first.
	Reverse bool
	// CountOverflow claims more items in each packet than it carries.
	CountOverflow bool
	// Garbage sends this many datagrams of random octets before the reply.
	Garbage int
	// OtherPort sends the reply from another UDP port of the server.
	OtherPort bool
	// OtherAddr sends the reply from the next address up (127.0.0.9 for a
	// request to 127.0.0.8). IPv4 only: the next address up from ::1 is
	// not local, so on IPv6 the reply fails to send.
	OtherAddr bool
	// PadTo pads every datagram with zeros to this many octets.
	PadTo int
	// Overlap follows every Mode 6 fragment after the first with a copy
	// four octets further back, overlapping both of its neighbours.
	Overlap bool
	// WrongSeq answers Mode 6 requests with the next sequence number.
	WrongSeq bool
	// JunkValues puts binary octets inside every unquoted Mode 6 value.
	JunkValues bool
	// StormPackets bounds EndlessMore and Duplicates; 0 means 1000.
	StormPackets int
	// Seed seeds the random octets; the same seed gives the same garbage.
	Seed uint64
}

func (h *Hostile) storm() int {
	if h.StormPackets <= 0 {
		return 1000
	}
	return h.StormPackets
}

func (h *Host) init() {
	h.once.Do(func() {
		h.cache = map[replyKey][][]byte{}
		h.rng = rand.New(rand.NewPCG(h.Hostile.Seed, 0x6e747073696d))
	})
}

// handle answers one request datagram from src sent to dst.
func (h *Host) handle(req []byte, src netip.AddrPort, dst netip.Addr, out *outbox) {
	if len(req) == 0 {
		return
	}
	switch req[0] & 7 {
	case 3:
		h.mode3(req, src, dst, out)
	case 6:
		h.mode6(req, src, dst, out)
	case 7:
		h.mode7(req, src, dst, out)
	}
}

// mangle applies the hostile changes to the octets of a reply: the more
// bit on every packet, inflated counts, wrong sequence numbers,
// overlapping fragments, padding. It returns pkts unchanged when there
// are none, and new slices otherwise.
func (hb *Hostile) mangle(pkts [][]byte) [][]byte {
	if !hb.EndlessMore && !hb.CountOverflow && hb.PadTo == 0 && !hb.Overlap && !hb.WrongSeq {
		return pkts
	}
	out := make([][]byte, 0, len(pkts))
	for i, b := range pkts {
		b = append([]byte(nil), b...)
		switch {
		case len(b) >= mode7.HeaderLen && b[0]&7 == 7:
			if hb.EndlessMore {
				b[0] |= 0x40
			}
			if hb.CountOverflow {
				n := min(int(b[4]&0x0f)<<8|int(b[5])+3, 0xfff)
				b[4], b[5] = b[4]&0xf0|byte(n>>8), byte(n)
			}
		case len(b) >= mode6.HeaderLen && b[0]&7 == 6:
			if hb.EndlessMore {
				b[1] |= 0x20
			}
			if hb.CountOverflow {
				binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+64)
			}
			if hb.WrongSeq {
				binary.BigEndian.PutUint16(b[2:], binary.BigEndian.Uint16(b[2:])+1)
			}
		}
		if hb.PadTo > len(b) {
			b = append(b, make([]byte, hb.PadTo-len(b))...)
		}
		out = append(out, b)
		if hb.Overlap && i > 0 && len(b) >= mode6.HeaderLen && b[0]&7 == 6 {
			o := append([]byte(nil), b...)
			binary.BigEndian.PutUint16(o[8:], binary.BigEndian.Uint16(o[8:])-4)
			out = append(out, o)
		}
	}
	return out
}

// emit sends a reply train, applying the host's hostile ordering, gaps,
// duplicates, storms, garbage and source changes. pkts may be shared and
// is not modified.
func (h *Host) emit(pkts [][]byte, src netip.AddrPort, dst netip.Addr, out *outbox) {
	hb := &h.Hostile
	from := dst
	if hb.OtherAddr {
		from = dst.Next()
	}
	send := func(b []byte) { out.send(b, from, src, hb.OtherPort) }
	if hb.Garbage > 0 {
		h.mu.Lock()
		for range hb.Garbage {
			g := make([]byte, 8+h.rng.IntN(500))
			for i := range g {
				g[i] = byte(h.rng.Uint32())
			}
			send(g)
		}
		h.mu.Unlock()
	}
	if hb.GapEvery <= 0 && !hb.Reverse && hb.Duplicates <= 0 && !hb.EndlessMore {
		for _, b := range pkts {
			send(b)
		}
		return
	}
	train := make([][]byte, 0, len(pkts))
	for i, b := range pkts {
		if hb.GapEvery > 0 && i > 0 && i%hb.GapEvery == 0 {
			continue
		}
		train = append(train, b)
	}
	if hb.Reverse {
		slices.Reverse(train)
	}
	sent, limit := 0, hb.storm()
	for _, b := range train {
		for range 1 + max(hb.Duplicates, 0) {
			if sent >= limit {
				return
			}
			send(b)
			sent++
		}
	}
	// The more bit never clears: go on with the same packets, Mode 7
	// sequence numbers counting on and wrapping past 127, Mode 6 offsets
	// growing (and wrapping at 65536).
	end := 0
	for _, b := range train {
		if len(b) >= mode6.HeaderLen && b[0]&7 == 6 {
			end = max(end, int(binary.BigEndian.Uint16(b[8:]))+int(binary.BigEndian.Uint16(b[10:])))
		}
	}
	for i := 0; hb.EndlessMore && len(train) > 0 && sent < limit; i++ {
		b := append([]byte(nil), train[i%len(train)]...)
		switch {
		case len(b) >= mode7.HeaderLen && b[0]&7 == 7:
			b[1] = b[1]&0x80 | byte((len(train)+i)%128)
		case len(b) >= mode6.HeaderLen && b[0]&7 == 6:
			binary.BigEndian.PutUint16(b[8:], uint16(end))
			end += int(binary.BigEndian.Uint16(b[10:]))
		}
		send(b)
		sent++
	}
}
