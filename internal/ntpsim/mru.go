package ntpsim

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
)

// The MRU list as ntpsec 1.2.2 serves it (REQ_NONCE, then READ_MRU);
// ntpd 4.2.8 the same way with six fields an entry (mode6.adoc and
// ntpq-subs.c describe the one protocol; no 4.2.8 server was at hand to
// check the details against).
// The rules were read off Debian's ntpsec 1.2.2 answering on loopback
// and from ntpsec's mode6.adoc: a nonce of 24 hex digits (the server's
// time and a keyed hash of it and the client's address and port), good
// for 16 seconds and only for that address and port; a READ_MRU without
// a good nonce, or with a parameter that does not parse, gets no answer
// at all; frags above 128, limit above 256, or neither gets
// CERR_BADVALUE; known entries none of which is still unchanged get
// CERR_UNKNOWNVAR; the reply's status word is 0; the entries go oldest
// first, each with its eight fields (addr, last, first, ct, mv, rs, sc,
// dr) in a random order, a random three-letter noise tag after the first
// entry and, when the list is done, after the last, then now= and
// last.newest=; a reply stops taking entries once it has frags
// fragments; an error reply's offset field repeats that of the last
// fragment the server sent (its static reply packet keeps it).

const (
	mruFragsLimit = 128 // ntpd's MRU_FRAGS_LIMIT
	mruRowLimit   = 256 // ntpd's MRU_ROW_LIMIT
	mruKnownSlots = 16  // last.0 … last.15 are read
)

// liveEntry is a client whose Mode 3 or Mode 6 requests the host has
// seen: ntpd puts every packet's sender at the head of its MRU list, the
// querier too.
type liveEntry struct {
	e mode6.MRUEntry
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// nonceTag is the keyed hash a nonce carries for src at time ts.
func (h *Host) nonceTag(src netip.AddrPort, ts mode6.Timestamp) uint32 {
	f := fnv.New64a()
	var b [8 + 16 + 2 + 8]byte
	binary.BigEndian.PutUint64(b[:], h.Hostile.Seed^0x6e6f6e6365)
	a := src.Addr().As16()
	copy(b[8:], a[:])
	binary.BigEndian.PutUint16(b[24:], src.Port())
	binary.BigEndian.PutUint64(b[26:], uint64(ts))
	_, _ = f.Write(b[:])
	return uint32(f.Sum64())
}

// nonce is what REQ_NONCE (and every READ_MRU reply) gives src now.
func (h *Host) nonce(src netip.AddrPort) string {
	ts := mode6.TimestampOf(h.now())
	b := make([]byte, 0, 24)
	for _, w := range [3]uint32{ts.Seconds(), ts.Fraction(), h.nonceTag(src, ts)} {
		s := strconv.FormatUint(uint64(w), 16)
		b = append(b, "00000000"[len(s):]...)
		b = append(b, s...)
	}
	return string(b)
}

// validNonce reports whether n is a nonce the host gave src less than
// 16 seconds ago.
func (h *Host) validNonce(n string, src netip.AddrPort) bool {
	if len(n) != 24 {
		return false
	}
	var w [3]uint64
	for i := range w {
		v, err := strconv.ParseUint(n[8*i:8*i+8], 16, 32)
		if err != nil {
			return false
		}
		w[i] = v
	}
	ts := mode6.Timestamp(w[0]<<32 | w[1])
	if uint32(w[2]) != h.nonceTag(src, ts) {
		return false
	}
	age := h.now().Sub(ts.TimeNear(h.now()))
	return age >= 0 && age < mode6.NonceLifetime*time.Second
}

// heard puts the sender of a request (Mode 3 or 6) at the head of the host's
// MRU list, as ntpd's monitor does for every packet it receives.
func (h *Host) heard(src netip.AddrPort, mode, version uint8) {
	now := mode6.TimestampOf(h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live == nil {
		h.live = map[netip.Addr]*liveEntry{}
	}
	le := h.live[src.Addr()]
	if le == nil {
		if len(h.live) >= 4096 {
			return // a bounded table: the oldest would be recycled
		}
		le = &liveEntry{e: mode6.MRUEntry{First: now}}
		h.live[src.Addr()] = le
	}
	le.e.Addr, le.e.Last, le.e.Mode, le.e.Version = src, now, mode, version
	le.e.Count++
	le.e.Score = min(le.e.Score*0.9+0.05, 9.999)
}

// mruList returns the host's MRU list, oldest first: its Clients (newest
// first in Clients, dated back from the host's first request) with the
// Mode 3 and Mode 6 clients it has heard after them.
func (h *Host) mruList() []mode6.MRUEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.epoch == 0 {
		h.epoch = mode6.TimestampOf(h.now())
	}
	out := make([]mode6.MRUEntry, 0, len(h.Clients)+len(h.live))
	// ntpd keeps one entry per address: the newest of Clients.
	seen := make(map[netip.Addr]int, len(h.Clients)) // address → its newest index
	for i := len(h.Clients) - 1; i >= 0; i-- {
		seen[h.Clients[i].Addr] = i
	}
	for i := len(h.Clients) - 1; i >= 0; i-- {
		c := &h.Clients[i]
		if _, ok := h.live[c.Addr]; ok || seen[c.Addr] != i {
			continue
		}
		// A fraction of a second that differs per entry, as real times do.
		frac := mode6.Timestamp(uint32(i)*0x9e3779b9) & 0xffffffff
		last := h.epoch - mode6.Timestamp(c.LastInt)<<32 - 1<<32 + frac
		first := last
		if c.Count > 1 {
			first -= mode6.Timestamp(uint64(c.AvgInt)*uint64(c.Count-1)) << 32
		}
		out = append(out, mode6.MRUEntry{Addr: netip.AddrPortFrom(c.Addr, c.Port), Last: last, First: first,
			Count: uint64(c.Count), Mode: c.Mode & 7, Version: c.Version & 7, Restrict: c.Restrict,
			Score: 0.05 * float64(c.Count) * math.Exp(-float64(c.LastInt)/64)})
	}
	live := make([]mode6.MRUEntry, 0, len(h.live))
	for _, le := range h.live {
		live = append(live, le.e)
	}
	slices.SortFunc(live, func(a, b mode6.MRUEntry) int {
		if a.Last != b.Last {
			if a.Last < b.Last {
				return -1
			}
			return 1
		}
		return a.Addr.Compare(b.Addr)
	})
	return append(out, live...)
}

// mruRequest is what read_mru_list takes from a request.
type mruRequest struct {
	nonce          string
	frags, limit   int
	mincount       int
	maxlstint      uint32
	resall, resany uint32
	laddr          netip.Addr
	recent         int
	known          [mruKnownSlots]mode6.MRUKey
	hasAddr        [mruKnownSlots]bool
	priors         int
}

// parseMRURequest reads a READ_MRU request's variables; ok is false
// where ntpd gives up without a word (a value that does not parse).
func parseMRURequest(data []byte) (q mruRequest, ok bool) {
	vs, _ := mode6.ParseVars(data)
	num := func(s string, bits int) (uint64, bool) {
		v, err := strconv.ParseUint(s, 10, bits)
		return v, err == nil
	}
	for _, v := range vs {
		name, idx, indexed := strings.Cut(v.Name, ".")
		switch {
		case v.Name == "nonce":
			q.nonce = v.Value
		case v.Name == "frags":
			n, ok := num(v.Value, 16)
			if !ok {
				return q, false
			}
			q.frags = int(n)
		case v.Name == "limit":
			n, ok := num(v.Value, 32)
			if !ok {
				return q, false
			}
			q.limit = int(n)
		case v.Name == "mincount":
			n, err := strconv.Atoi(v.Value)
			if err != nil {
				return q, false
			}
			q.mincount = max(n, 0)
		case v.Name == "maxlstint":
			n, ok := num(v.Value, 32)
			if !ok {
				return q, false
			}
			q.maxlstint = uint32(n)
		case v.Name == "recent":
			n, ok := num(v.Value, 32)
			if !ok {
				return q, false
			}
			q.recent = int(n)
		case v.Name == "resall" || v.Name == "resany":
			n, err := strconv.ParseUint(strings.TrimPrefix(v.Value, "0x"), 16, 16)
			if err != nil || !strings.HasPrefix(v.Value, "0x") {
				return q, false
			}
			if v.Name == "resall" {
				q.resall = uint32(n)
			} else {
				q.resany = uint32(n)
			}
		case v.Name == "laddr":
			a, err := netip.ParseAddr(v.Value)
			if err != nil {
				if ap, err2 := netip.ParseAddrPort(v.Value); err2 == nil {
					a = ap.Addr()
				} else {
					return q, false
				}
			}
			q.laddr = a
		case indexed && (name == "last" || name == "addr"):
			i, err := strconv.Atoi(idx)
			if err != nil || i < 0 || i >= mruKnownSlots {
				continue // not a parameter ntpd knows: ignored
			}
			if name == "last" {
				t, err := mode6.ParseTimestamp(v.Value)
				if err != nil {
					return q, false
				}
				q.known[i].Last = t
				if q.hasAddr[i] && i == q.priors {
					q.priors++
				}
			} else {
				a, err := netip.ParseAddrPort(v.Value)
				if err != nil {
					return q, false
				}
				q.known[i].Addr, q.hasAddr[i] = a, true
				if q.known[i].Last.Seconds() != 0 && q.known[i].Last.Fraction() != 0 && i == q.priors {
					q.priors++
				}
			}
		}
	}
	return q, true
}

// readMRU answers READ_MRU as ntpsec's read_mru_list does. It returns
// the error code to send, or 0 with the reply written into h.rb (under
// h.mu, which the caller holds) and answer true; answer false means
// silence.
func (h *Host) readMRU(rh mode6.Header, data []byte, src, dst netip.AddrPort, list []mode6.MRUEntry) (code mode6.ServerError, answer bool) {
	if h.NoMRUList {
		return mode6.CErrPermission, true
	}
	q, ok := parseMRURequest(data)
	if !ok || q.nonce == "" || !h.validNonce(q.nonce, src) {
		return 0, false
	}
	if (q.frags == 0 && !(0 < q.limit && q.limit <= mruRowLimit)) || q.frags > mruFragsLimit {
		return mode6.CErrBadValue, true
	}
	limit, frags := q.limit, q.frags
	if frags != 0 && limit == 0 {
		limit = math.MaxInt
	} else if limit != 0 && frags == 0 {
		frags = mruFragsLimit
	}
	find := func(a netip.AddrPort) int {
		return slices.IndexFunc(list, func(e mode6.MRUEntry) bool { return e.Addr.Addr() == a.Addr().Unmap() })
	}
	now := mode6.TimestampOf(h.now())
	rh.Status = 0
	h.rb.Reset(rh)
	if limit == 1 {
		for i := range q.known {
			if !q.hasAddr[i] {
				continue
			}
			if at := find(q.known[i].Addr); at >= 0 {
				h.putMRUEntry(&list[at], i)
			}
		}
		h.rb.PutVar(mode6.Var{Name: "nonce", Value: h.nonce(src)})
		h.rb.PutVar(mode6.Var{Name: "now", Value: now.String()})
		return 0, true
	}
	start := 0
	if q.priors > 0 {
		at := -1
		for i := range q.priors {
			if j := find(q.known[i].Addr); j >= 0 && list[j].Last == q.known[i].Last {
				at = j
				break
			}
		}
		if at < 0 {
			return mode6.CErrUnknownVar, true
		}
		h.rb.PutVar(mode6.Var{Name: "last.older", Value: list[at].Last.String()})
		h.rb.PutVar(mode6.Var{Name: "addr.older", Value: list[at].Addr.String()})
		start = at + 1
	}
	countdown := len(list) // the first request's: continuations skip recent=
	h.rb.PutVar(mode6.Var{Name: "nonce", Value: h.nonce(src)})
	count, i := 0, start
	var newest *mode6.MRUEntry
	for ; i < len(list) && h.rb.Fragments() < frags && count < limit; i++ {
		e := &list[i]
		switch {
		case e.Count < uint64(q.mincount),
			q.resall != 0 && q.resall&e.Restrict != q.resall,
			q.resany != 0 && q.resany&e.Restrict == 0,
			q.maxlstint > 0 && now.Seconds()-e.Last.Seconds() > q.maxlstint,
			q.laddr.IsValid() && q.laddr != dst.Addr():
			continue
		}
		if q.recent != 0 && q.priors == 0 {
			countdown--
			if countdown+1 > q.recent {
				continue
			}
		}
		h.putMRUEntry(e, count)
		if count == 0 {
			h.putNoise(0)
		}
		count++
		newest = e
	}
	if i == len(list) {
		if count > 1 {
			h.putNoise(count - 1)
		}
		h.rb.PutVar(mode6.Var{Name: "now", Value: now.String()})
		if newest != nil {
			h.rb.PutVar(mode6.Var{Name: "last.newest", Value: newest.Last.String()})
		}
	}
	return 0, true
}

// putMRUEntry writes one entry's eight variables in a random order, as
// send_mru_entry does: three bits of one random word pick each field, the
// next free one on a collision.
func (h *Host) putMRUEntry(e *mode6.MRUEntry, n int) {
	idx := strconv.Itoa(n)
	noise := h.rng.Uint32()
	var all [8]bool
	sent := all[:] // ntpsec: eight fields
	if h.Mode6 != Mode6NTPsec {
		sent = all[:6] // ntpd 4.2.8: no sc, no dr
	}
	for range sent {
		which := int(noise&7) % len(sent)
		noise >>= 3
		for sent[which] {
			which = (which + 1) % len(sent)
		}
		sent[which] = true
		var v mode6.Var
		switch which {
		case 0:
			v = mode6.Var{Name: "addr." + idx, Value: e.Addr.String()}
		case 1:
			v = mode6.Var{Name: "last." + idx, Value: e.Last.String()}
		case 2:
			v = mode6.Var{Name: "first." + idx, Value: e.First.String()}
		case 3:
			v = mode6.Var{Name: "ct." + idx, Value: strconv.FormatUint(e.Count, 10)}
		case 4:
			v = mode6.Var{Name: "mv." + idx, Value: strconv.Itoa(int(e.Version&7)<<3 | int(e.Mode&7))}
		case 5:
			v = mode6.Var{Name: "rs." + idx, Value: "0x" + strconv.FormatUint(uint64(e.Restrict), 16)}
		case 6:
			v = mode6.Var{Name: "sc." + idx, Value: strconv.FormatFloat(e.Score, 'f', 3, 64)}
		case 7:
			v = mode6.Var{Name: "dr." + idx, Value: strconv.FormatUint(e.Dropped, 10)}
		}
		h.rb.PutVar(v)
	}
}

// putNoise writes a random three-letter tag with index n and a random
// value, as send_random_tag_value does.
func (h *Host) putNoise(n int) {
	noise := h.rng.Uint32() >> 1 // random() is 31 bits
	var tag [3]byte
	for i := range tag {
		tag[i] = 'a' + byte(noise%26)
		noise >>= 5
	}
	h.rb.PutVar(mode6.Var{Name: string(tag[:]) + "." + strconv.Itoa(n), Value: strconv.FormatUint(uint64(noise), 10)})
}
