package ntpctl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ntpctl/ntpctl/mode6"
)

// A Stepper is an Assembler whose exchange takes more than one request
// (the MRU list: a nonce, then pages of the list). When Add reports a
// reply done, the prober calls Next once: true sends the request
// AppendNext builds to the same target from the same socket, through
// the rate limiter, with the retries and timeouts of a first request,
// and the datagrams that follow go to Add again; false finishes the
// target. The prober's MaxPackets, MaxBytes and MaxDuration bound the
// whole exchange.
type Stepper interface {
	// Next reports whether another request follows the reply just done.
	Next() bool
	// AppendNext appends that request to b; each retry calls it again.
	AppendNext(b []byte) ([]byte, error)
	// Stale reports whether the datagram Add took last belongs to an
	// earlier request of the exchange (a repeat): it counts in the
	// result's Packets and the caps, but it does not answer the current
	// request.
	Stale() bool
}

// ErrMRUNoList is the error of an MRU list result whose server gave a
// nonce but sent no list: it ignored READ_MRU (ntpd does so for a nonce
// it does not accept: from another address or port, or too old).
var ErrMRUNoList = errors.New("ntpctl: a nonce, but no answer to READ_MRU")

// MRUListProbe fetches a server's MRU list as `ntpq -c mrulist` does,
// the query behind the MRU exposure report: REQ_NONCE, then READ_MRU
// requests of Frags fragments each, every one naming the newest entries
// it has, until the server says the list is done (now=) or a cap is
// reached. It sends only read-only requests, and walks each target's list
// once. Replies match when they carry the request's opcode and a
// sequence number the prober derived for the target (one per request of
// the walk, counting up from the nonce's); datagrams of an earlier
// request of the walk count as duplicates.
//
// The nonce round trip proves the source address, so the list cannot be
// sent to a spoofed victim: the MRU list is not an amplifier but an
// information leak, the addresses of the server's recent clients.
type MRUListProbe struct {
	// Frags is the fragments asked per READ_MRU reply (frags=); 0 means
	// 32, as ntpq asks, and more than 128 (ntpd's limit) is refused by
	// the server.
	Frags int
	// MaxEntries caps the distinct client addresses kept per target; 0
	// means 600, what monlist gave.
	MaxEntries int
	// MaxRequests caps the READ_MRU requests per target; 0 means 16, and
	// more than 65,535 means 65,535 (each request of a walk has its own
	// sequence number).
	MaxRequests int
	// MinCount, MaxLstInt, ResAll, ResAny and Recent are passed to the
	// server as mincount=, maxlstint=, resall=, resany= and recent= (0:
	// not sent).
	MinCount, MaxLstInt int
	ResAll, ResAny      uint32
	Recent              int
}

// MRUList returns the probe for `ntpq -c mrulist` with its defaults.
func MRUList() *MRUListProbe { return &MRUListProbe{} }

// MRUResult is what an MRU list probe found at one target.
type MRUResult struct {
	// Nonce reports that the server answered REQ_NONCE.
	Nonce bool
	// Entries are the clients listed, one per address (the newest entry
	// when the list named one twice), oldest first. They are third
	// parties' addresses: see the report's rules before writing them
	// anywhere.
	Entries []mode6.MRUEntry
	// Complete reports that the server ended the list (now=); otherwise
	// a cap, an error or silence cut it short.
	Complete bool
	// Truncated reports that MaxEntries cut the list short.
	Truncated bool
	// Pages is the READ_MRU replies taken.
	Pages int
	// Now is the server's time at the end of the list, when Complete.
	Now mode6.Timestamp
	// Err is what ended the walk early: a mode6.ServerError (the nonce or
	// a page refused), ErrMRUNoList, a decoding error.
	Err error
}

func (p *MRUListProbe) frags() int {
	if p.Frags <= 0 {
		return 32
	}
	return p.Frags
}

func (p *MRUListProbe) maxEntries() int {
	if p.MaxEntries <= 0 {
		return 600
	}
	return p.MaxEntries
}

func (p *MRUListProbe) maxRequests() int {
	if p.MaxRequests <= 0 {
		return 16
	}
	return min(p.MaxRequests, 65535)
}

// AppendRequest implements Probe: the walk's first request, REQ_NONCE.
func (p *MRUListProbe) AppendRequest(b []byte, _ netip.AddrPort, seq uint16) ([]byte, error) {
	return mode6.AppendReqNonce(b, seq), nil
}

// NewAssembler implements Probe.
func (p *MRUListProbe) NewAssembler() Assembler[MRUResult] {
	return &mruAssembler{p: p, index: map[netip.Addr]int{}}
}

// mruKnown is how many of the newest entries a request may name (ntpd
// reads last.0 to last.15).
const mruKnown = 16

type mruAssembler struct {
	p     *MRUListProbe
	base  uint16 // the nonce request's sequence number
	step  int    // 0: the nonce; k: the k-th READ_MRU
	r     mode6.Reassembler
	nonce string
	next  bool

	entries  []mode6.MRUEntry // distinct addresses, in the order first seen
	index    map[netip.Addr]int
	recent   []mode6.MRUKey // the newest entries of the last page, newest first
	res      MRUResult
	tally    Tally // of the steps done
	earlier  int   // datagrams of an earlier step
	stale    bool  // the last datagram was one of those
	finished bool
}

func (a *mruAssembler) Reset(_ netip.AddrPort, seq uint16) {
	a.base, a.step, a.nonce, a.next, a.finished = seq, 0, "", false, false
	a.r.Reset(seq, mode6.OpReqNonce)
	a.entries, a.recent = a.entries[:0], a.recent[:0]
	clear(a.index)
	a.res, a.tally, a.earlier = MRUResult{}, Tally{}, 0
}

// ofEarlierStep reports whether b is a response to an earlier request of
// the walk: a repeat, not part of the current reply.
func (a *mruAssembler) ofEarlierStep(b []byte) bool {
	var h mode6.Header
	if a.step == 0 || h.UnmarshalBinary(b) != nil || !h.Response {
		return false
	}
	k := int(h.Seq - a.base)
	switch {
	case k == 0:
		return h.Op == mode6.OpReqNonce
	case k > 0 && k < a.step:
		return h.Op == mode6.OpReadMRU
	}
	return false
}

func (a *mruAssembler) Stale() bool { return a.stale }

func (a *mruAssembler) Add(b []byte) (matched, done bool) {
	a.stale = false
	if a.finished || a.ofEarlierStep(b) {
		a.earlier++ // a repeat of a reply taken already
		a.stale = true
		return true, a.finished
	}
	before := a.r.Stats().Mismatched
	_ = a.r.Add(b) // the reassembler counts each outcome
	if a.r.Stats().Mismatched != before {
		return false, false
	}
	if !a.r.Done() {
		return true, false
	}
	a.stepDone()
	return true, true
}

// stepDone takes a finished reply and decides whether the walk goes on.
func (a *mruAssembler) stepDone() {
	a.next = false
	if err := a.r.Err(); err != nil || !a.r.Complete() {
		a.res.Err = err
		return
	}
	vs, _ := mode6.ParseVars(a.r.Data()) // what does not parse, ParseNonce and ParseMRU refuse
	if a.step == 0 {
		n, err := mode6.ParseNonce(vs)
		if err != nil {
			a.res.Err = err
			return
		}
		a.nonce, a.res.Nonce = n, true
		a.next = a.fits()
		return
	}
	page, err := mode6.ParseMRU(vs)
	if err != nil {
		a.res.Err = err
		return
	}
	a.res.Pages++
	if page.Nonce != "" {
		a.nonce = page.Nonce
	}
	if !a.fits() {
		return
	}
	for _, e := range page.Entries {
		addr := e.Addr.Addr()
		if i, ok := a.index[addr]; ok {
			if e.Last >= a.entries[i].Last {
				a.entries[i] = e
			}
			continue
		}
		if len(a.entries) == a.p.maxEntries() {
			a.res.Truncated = true
			return
		}
		a.index[addr] = len(a.entries)
		a.entries = append(a.entries, e)
	}
	// The newest entries of this page name the place to go on from.
	a.recent = a.recent[:0]
	for i := len(page.Entries) - 1; i >= 0 && len(a.recent) < mruKnown; i-- {
		a.recent = append(a.recent, mode6.MRUKey{Addr: page.Entries[i].Addr, Last: page.Entries[i].Last})
	}
	switch {
	case page.Complete:
		a.res.Complete, a.res.Now = true, page.Now
	case len(page.Entries) == 0:
		// Neither entries nor the end: going on would ask the same again.
	case a.step < a.p.maxRequests():
		a.next = true
	}
}

// fits reports whether a request can carry the server's nonce, and
// records an error when none can (a nonce longer than a request holds).
func (a *mruAssembler) fits() bool {
	q := mode6.MRURequest{Nonce: a.nonce, Frags: a.p.frags(), MinCount: a.p.MinCount, MaxLstInt: a.p.MaxLstInt,
		ResAll: a.p.ResAll, ResAny: a.p.ResAny, Recent: a.p.Recent}
	if q.DataLen() > mode6.MaxDataLen {
		a.res.Err = fmt.Errorf("%w: a nonce of %d octets, too long for a request", mode6.ErrMRUReply, len(a.nonce))
		return false
	}
	return true
}

func (a *mruAssembler) Next() bool {
	s := a.r.Stats()
	a.tally.Accepted += s.Fragments
	a.tally.Duplicates += s.Duplicates + s.Overlaps
	a.tally.Malformed += s.Malformed
	a.tally.Mismatched += s.Mismatched
	a.tally.Dropped += s.Conflicting + s.OverCap
	if !a.next {
		a.finished = true
		return false
	}
	a.step++
	a.r.Reset(a.base+uint16(a.step), mode6.OpReadMRU)
	return true
}

func (a *mruAssembler) AppendNext(b []byte) ([]byte, error) {
	q := mode6.MRURequest{Seq: a.base + uint16(a.step), Nonce: a.nonce, Frags: a.p.frags(),
		MinCount: a.p.MinCount, MaxLstInt: a.p.MaxLstInt, ResAll: a.p.ResAll, ResAny: a.p.ResAny}
	if a.step == 1 {
		q.Recent = a.p.Recent // the first request alone: it sets where the walk starts
	}
	for _, k := range a.recent {
		q.Known = append(q.Known, k)
		if q.DataLen() > mode6.MaxDataLen {
			q.Known = q.Known[:len(q.Known)-1] // as many as fit, as ntpq sends
			break
		}
	}
	return q.AppendBinary(b)
}

func (a *mruAssembler) Tally() Tally {
	t := a.tally
	if !a.finished {
		s := a.r.Stats()
		t.Accepted += s.Fragments
		t.Duplicates += s.Duplicates + s.Overlaps
		t.Malformed += s.Malformed
		t.Mismatched += s.Mismatched
		t.Dropped += s.Conflicting + s.OverCap
	}
	t.Duplicates += a.earlier
	return t
}

func (a *mruAssembler) Result() (MRUResult, Status, error) {
	res := a.res
	if !a.finished && a.res.Err == nil && !a.r.Done() {
		// Cut short inside a reply: silence, a cap or an abort.
		if a.step > 0 && a.r.Stats().Fragments == 0 && res.Pages == 0 {
			res.Err = ErrMRUNoList
		} else if err := a.r.Err(); err != nil && a.r.Stats().Packets > 0 {
			res.Err = err
		}
	}
	res.Entries = slices.Clone(a.entries)
	slices.SortStableFunc(res.Entries, func(x, y mode6.MRUEntry) int {
		switch {
		case x.Last < y.Last:
			return -1
		case x.Last > y.Last:
			return 1
		}
		return 0
	})
	_, isServer := res.Err.(mode6.ServerError)
	var st Status
	switch {
	case res.Complete:
		st = StatusOK
	case len(res.Entries) > 0:
		st = StatusPartial
	case isServer:
		st = StatusServerError
	case errors.Is(res.Err, ErrMRUNoList):
		st = StatusNoAnswer
	case res.Nonce && res.Pages > 0:
		st = StatusPartial // pages without entries, and no end
	default:
		st = StatusProtocolError
	}
	return res, st, res.Err
}
