package mode6

// The MRU list: CTL_OP_READ_MRU, the successor of Mode 7 monlist in ntpd
// 4.2.8 and ntpsec (`ntpq -c mrulist`), and CTL_OP_REQ_NONCE, the round
// trip that proves the client receives at its address before the list is
// sent. The variables, their order and the rules come from ntpsec's
// mode6.adoc (ntpsec/docs/mode6.adoc: "keep in sync with the big comment
// in ntpd/ntp_control.c") and ntp.org's ntpq/ntpq-subs.c collect_mru_list.

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Errors of the MRU codec.
var (
	// ErrMRURequest reports an MRU request that cannot be sent: no nonce
	// or a nonce a request cannot carry, neither frags nor limit, a
	// negative value, a known entry without an address.
	ErrMRURequest = errors.New("mode6: bad READ_MRU request")
	// ErrMRUReply reports a READ_MRU or REQ_NONCE reply that does not
	// decode: an entry's value that does not parse, an entry without an
	// address or last time, an index twice, too many entries.
	ErrMRUReply = errors.New("mode6: malformed MRU reply")
)

// NonceLifetime is how long ntpd keeps a nonce valid after the request
// for it: a client tracks the time itself and asks for a new one.
const NonceLifetime = 16 // seconds

// MaxMRUEntries bounds the entries ParseMRU takes from one reply. A
// reply holds at most MaxFragments fragments of MaxDataLen octets, and
// an entry takes well over 50 of them.
const MaxMRUEntries = MaxFragments * MaxDataLen / 50

// AppendReqNonce appends a REQ_NONCE request with sequence number seq:
// a header alone (version 2, LI 0, as ntp.org's ntpq sends it).
func AppendReqNonce(b []byte, seq uint16) []byte {
	h := Header{Version: 2, Op: OpReqNonce, Seq: seq}
	return h.appendUnchecked(b)
}

// ParseNonce returns the nonce of a REQ_NONCE reply's variables.
func ParseNonce(vs Vars) (string, error) {
	n, ok := vs.Lookup("nonce")
	if !ok || !validName(n) {
		return "", ErrMRUReply
	}
	return n, nil
}

// MRUKey names an MRU entry a client already has: its address and the
// time of its last packet.
type MRUKey struct {
	Addr netip.AddrPort
	Last Timestamp
}

// MRURequest is one READ_MRU request of a walk of the list.
type MRURequest struct {
	// Seq is the sequence number the reply must echo.
	Seq uint16
	// Nonce is the nonce of the last reply (REQ_NONCE's, then each
	// READ_MRU reply's own).
	Nonce string
	// Frags limits the reply's datagrams, or Limit its entries: one of
	// them is needed. Limit 1 fetches the entry of Known[0].
	Frags, Limit int
	// MinCount, MaxLstInt and Recent are sent when positive: entries
	// with at least MinCount packets, whose last packet is at most
	// MaxLstInt seconds old, starting about Recent entries back from the
	// newest.
	MinCount, MaxLstInt, Recent int
	// LocalAddr, when valid, asks only for entries of that local address.
	LocalAddr netip.Addr
	// ResAll and ResAny, when not zero, ask for entries whose restrict
	// mask has all, or any, of the bits.
	ResAll, ResAny uint32
	// Known are the newest entries the client has, newest first
	// (addr.0/last.0, addr.1/last.1, …): the server goes on after the
	// first of them that has not changed.
	Known []MRUKey
}

// appendText appends the request's variable list.
func (q *MRURequest) appendText(b []byte) ([]byte, error) {
	if !validName(q.Nonce) || q.Frags < 0 || q.Limit < 0 || q.Frags == 0 && q.Limit == 0 ||
		q.MinCount < 0 || q.MaxLstInt < 0 || q.Recent < 0 {
		return b, ErrMRURequest
	}
	b = append(b, "nonce="...)
	b = append(b, q.Nonce...)
	num := func(name string, v int) {
		if v > 0 {
			b = append(b, ", "...)
			b = append(b, name...)
			b = append(b, '=')
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	num("frags", q.Frags)
	num("limit", q.Limit)
	num("mincount", q.MinCount)
	num("maxlstint", q.MaxLstInt)
	if q.LocalAddr.IsValid() {
		b = append(b, ", laddr="...)
		b = q.LocalAddr.WithZone("").AppendTo(b)
	}
	num("recent", q.Recent)
	for _, f := range []struct {
		name string
		v    uint32
	}{{"resall", q.ResAll}, {"resany", q.ResAny}} {
		if f.v != 0 {
			b = append(b, ", "...)
			b = append(b, f.name...)
			b = append(b, "=0x"...)
			b = strconv.AppendUint(b, uint64(f.v), 16)
		}
	}
	for i, k := range q.Known {
		if !k.Addr.IsValid() {
			return b, ErrMRURequest
		}
		b = append(b, ", addr."...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '=')
		b = netip.AddrPortFrom(k.Addr.Addr().WithZone(""), k.Addr.Port()).AppendTo(b)
		b = append(b, ", last."...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '=')
		b = k.Last.AppendText(b)
	}
	return b, nil
}

// DataLen returns the length of the request's variable list, or -1 when
// it cannot be sent. A walk adds Known entries while it is at most
// MaxDataLen.
func (q *MRURequest) DataLen() int {
	var buf [MaxDataLen + 64]byte
	b, err := q.appendText(buf[:0])
	if err != nil {
		return -1
	}
	return len(b)
}

// AppendBinary appends the encoded request: the header (version 2, LI
// 0), the variable list, zeros to a multiple of 4 octets. It returns
// ErrMRURequest for a request that cannot be sent and ErrLength for a
// list longer than MaxDataLen.
func (q *MRURequest) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, HeaderLen)...)
	b, err := q.appendText(b)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - HeaderLen
	if n > MaxDataLen {
		return b[:start], ErrLength
	}
	h := Header{Version: 2, Op: OpReadMRU, Seq: q.Seq, Count: uint16(n)}
	h.appendUnchecked(b[start:start]) // over the HeaderLen octets reserved above
	return append(b, zeros[:(4-n&3)&3]...), nil
}

// MRUEntry is one entry of the MRU list: a recent client (or peer) of
// the server.
type MRUEntry struct {
	// Addr is the client's address and port.
	Addr netip.AddrPort
	// Last and First are the times of its last and first packets.
	Last, First Timestamp
	// Count is its packets.
	Count uint64
	// Mode and Version are those of its last packet (mv.#, the packet's
	// first octet).
	Mode, Version uint8
	// Restrict is the restrict mask that applied to it (rs.#).
	Restrict uint32
	// Score and Dropped are ntpsec's rate-limiting score of the client
	// and the packets dropped by it (sc.# and dr.#, which ntpsec's ntpq
	// shows as score and drop); ntp.org's ntpd sends neither, and they are
	// zero then.
	Score   float64
	Dropped uint64
}

// MRUPage is what one READ_MRU reply holds.
type MRUPage struct {
	// Nonce is the nonce for the next request.
	Nonce string
	// Entries are the reply's entries, oldest first.
	Entries []MRUEntry
	// Older, when HasOlder, is the entry just before the first one
	// (addr.older, last.older: from the second reply of a walk on).
	Older    MRUKey
	HasOlder bool
	// Now, when Complete, is the server's time at the end of the list:
	// ntpd sends it last, and only when the list is done.
	Now      Timestamp
	Complete bool
	// LastNewest is the last time of the newest entry, when there were
	// entries.
	LastNewest Timestamp
	// Ignored counts the variables ParseMRU skipped: the random noise
	// tags ntpd inserts to catch brittle clients, and variables it does
	// not know.
	Ignored int
}

// ParseMRU decodes the variables of a READ_MRU reply. Entries come in
// the order of their index, whatever the order of the variables; an
// entry needs its address and last time, the other fields are zero when
// missing.
func ParseMRU(vs Vars) (MRUPage, error) {
	var p MRUPage
	type slot struct {
		e       MRUEntry
		hasAddr bool
		hasLast bool
		seen    uint8 // fields present, by bit
	}
	slots := map[int]*slot{}
	var olderAddr, olderLast bool
	for i := range vs {
		v := &vs[i]
		name, idx, indexed := strings.Cut(v.Name, ".")
		if !indexed {
			switch name {
			case "nonce":
				if !validName(v.Value) {
					return p, ErrMRUReply
				}
				p.Nonce = v.Value
			case "now":
				t, err := ParseTimestamp(v.Value)
				if err != nil {
					return p, ErrMRUReply
				}
				p.Now, p.Complete = t, true
			default:
				p.Ignored++
			}
			continue
		}
		if idx == "older" || idx == "newest" {
			switch {
			case name == "last":
				t, err := ParseTimestamp(v.Value)
				if err != nil {
					return p, ErrMRUReply
				}
				if idx == "older" {
					p.Older.Last, olderLast = t, true
				} else {
					p.LastNewest = t
				}
			case name == "addr" && idx == "older":
				a, err := parseMRUAddr(v.Value)
				if err != nil {
					return p, ErrMRUReply
				}
				p.Older.Addr, olderAddr = a, true
			default:
				p.Ignored++
			}
			continue
		}
		field := slices.Index(mruFields[:], name)
		if field < 0 {
			p.Ignored++
			continue
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 || strconv.Itoa(n) != idx {
			return p, ErrMRUReply
		}
		s := slots[n]
		if s == nil {
			if len(slots) == MaxMRUEntries {
				return p, ErrMRUReply
			}
			s = &slot{}
			slots[n] = s
		}
		if s.seen&(1<<field) != 0 {
			return p, ErrMRUReply // an index's field twice
		}
		s.seen |= 1 << field
		if err := s.e.set(field, v.Value); err != nil {
			return p, err
		}
	}
	p.HasOlder = olderAddr && olderLast
	if olderAddr != olderLast {
		return p, ErrMRUReply
	}
	idxs := make([]int, 0, len(slots))
	for n, s := range slots {
		if s.seen&1 == 0 || s.seen&2 == 0 {
			return p, ErrMRUReply // no address or no last time
		}
		idxs = append(idxs, n)
	}
	slices.Sort(idxs)
	p.Entries = make([]MRUEntry, 0, len(idxs))
	for _, n := range idxs {
		p.Entries = append(p.Entries, slots[n].e)
	}
	return p, nil
}

// mruFields are the indexed variables of an entry, by bit: addr and last
// are needed.
var mruFields = [...]string{"addr", "last", "first", "ct", "mv", "rs", "sc", "dr"}

func (e *MRUEntry) set(field int, s string) error {
	var err error
	switch field {
	case 0:
		e.Addr, err = parseMRUAddr(s)
	case 1:
		e.Last, err = ParseTimestamp(s)
	case 2:
		e.First, err = ParseTimestamp(s)
	case 3:
		e.Count, err = strconv.ParseUint(s, 10, 64)
	case 4:
		var mv uint64
		mv, err = strconv.ParseUint(s, 10, 8)
		e.Mode, e.Version = uint8(mv&7), uint8(mv>>3&7)
	case 5:
		var rs uint64
		rs, err = strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), 16, 32)
		e.Restrict = uint32(rs)
	case 6:
		e.Score, err = strconv.ParseFloat(s, 64)
		if err == nil && !(e.Score >= 0 && e.Score <= math.MaxFloat64) {
			err = ErrMRUReply // NaN, infinite or negative
		}
	case 7:
		e.Dropped, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return ErrMRUReply
	}
	return nil
}

// parseMRUAddr parses "192.0.2.1:123" or "[2001:db8::1]:123".
func parseMRUAddr(s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(s)
	if err != nil || a.Addr().Zone() != "" {
		return netip.AddrPort{}, ErrMRUReply
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), nil
}

// AppendMRUVars appends p as the variables of a READ_MRU reply, in
// ntpsec's order: the nonce, addr.older and last.older, each entry's
// addr, last, first, ct, mv and rs (and sc and dr when not zero), then
// last.newest and now (when Complete). AppendVars writes them as the
// server does. ParseMRU gives p back (less Ignored), for entries with
// unmapped addresses and Mode and Version below 8.
func AppendMRUVars(vs Vars, p *MRUPage) Vars {
	if p.Nonce != "" {
		vs = append(vs, Var{Name: "nonce", Value: p.Nonce})
	}
	if p.HasOlder {
		vs = append(vs, Var{Name: "addr.older", Value: p.Older.Addr.String()}, Var{Name: "last.older", Value: p.Older.Last.String()})
	}
	for i, e := range p.Entries {
		n := strconv.Itoa(i)
		vs = append(vs,
			Var{Name: "addr." + n, Value: e.Addr.String()},
			Var{Name: "last." + n, Value: e.Last.String()},
			Var{Name: "first." + n, Value: e.First.String()},
			Var{Name: "ct." + n, Value: strconv.FormatUint(e.Count, 10)},
			Var{Name: "mv." + n, Value: strconv.Itoa(int(e.Version&7)<<3 | int(e.Mode&7))},
			Var{Name: "rs." + n, Value: "0x" + strconv.FormatUint(uint64(e.Restrict), 16)},
		)
		if e.Score != 0 {
			vs = append(vs, Var{Name: "sc." + n, Value: strconv.FormatFloat(e.Score, 'f', -1, 64)})
		}
		if e.Dropped != 0 {
			vs = append(vs, Var{Name: "dr." + n, Value: strconv.FormatUint(e.Dropped, 10)})
		}
	}
	if len(p.Entries) > 0 {
		vs = append(vs, Var{Name: "last.newest", Value: p.LastNewest.String()})
	}
	if p.Complete {
		vs = append(vs, Var{Name: "now", Value: p.Now.String()})
	}
	return vs
}
