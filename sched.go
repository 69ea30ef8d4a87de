package ntpctl

import (
	"net/netip"
	"time"
)

// pending holds the requests waiting to go out, per socket. Targets are
// spread over a pool of sockets by their keyed hash, so consecutive
// targets rarely share one; sending each as it comes would cost a
// system call per request. Instead new targets (and retries) wait here
// until a socket has a few (fill) or has waited linger, and go out
// together in one sendmmsg call. The order within a window of the scan
// changes; the permutation's spread over networks does not.
type pending[R any] struct {
	q     [2][]slotQueue[R] // udp4, udp6: per socket
	live  [2][]int          // sockets with entries, in no order
	count int               // entries waiting
	fresh int               // of those, new targets
}

type slotQueue[R any] struct {
	entries []entry[R]
	retries int       // of those, retries
	since   time.Time // when the oldest entry came
	listed  bool      // in live
}

// entry is one request to send: a new target (f nil) or a retry of f on
// attempt gen.
type entry[R any] struct {
	f   *flight[R]
	gen uint32
	t   netip.AddrPort
	h   uint64
}

// How long a request may wait for others of its socket, and how many
// make a batch worth sending at once.
const (
	linger = 5 * time.Millisecond
	fill   = 16
)

func newPending[R any](sockets int) pending[R] {
	return pending[R]{q: [2][]slotQueue[R]{make([]slotQueue[R], sockets), make([]slotQueue[R], sockets)}}
}

func (p *pending[R]) add(v6 bool, slot int, e entry[R], now time.Time) {
	fam := family4or6(v6)
	sq := &p.q[fam][slot]
	if len(sq.entries) == 0 {
		sq.since = now
	}
	if !sq.listed {
		sq.listed = true
		p.live[fam] = append(p.live[fam], slot)
	}
	sq.entries = append(sq.entries, e)
	p.count++
	if e.f == nil {
		p.fresh++
	} else {
		sq.retries++
	}
}

// oldest returns when the longest-waiting entry came (zero when none).
func (p *pending[R]) oldest() time.Time {
	var t time.Time
	for fam := range p.live {
		for _, slot := range p.live[fam] {
			if s := p.q[fam][slot].since; t.IsZero() || s.Before(t) {
				t = s
			}
		}
	}
	return t
}

// pick returns the socket whose entries should go out next, or false:
// the one waiting longest once it has waited linger, else the fullest if
// it has fill entries, else (drain) the fullest of any. Sockets skip
// says cannot take a batch now are passed over, and with retriesOnly
// (no room in flight for new targets) those without a retry.
func (p *pending[R]) pick(now time.Time, drain, retriesOnly bool, skip func(v6 bool, slot int) bool) (v6 bool, slot int, ok bool) {
	bestFam, best, bestN := -1, -1, 0
	var bestSince time.Time
	aged := false
	for fam := range p.live {
		live := p.live[fam]
		for i := 0; i < len(live); i++ {
			s := live[i]
			sq := &p.q[fam][s]
			if len(sq.entries) == 0 { // emptied: unlist
				sq.listed = false
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				p.live[fam] = live
				i--
				continue
			}
			if (retriesOnly && sq.retries == 0) || skip(fam == 1, s) {
				continue
			}
			old := now.Sub(sq.since) >= linger
			switch {
			case old && (!aged || sq.since.Before(bestSince)):
				bestFam, best, bestSince, aged = fam, s, sq.since, true
			case !aged && len(sq.entries) > bestN:
				bestFam, best, bestN = fam, s, len(sq.entries)
			}
		}
	}
	if best < 0 || (!aged && !drain && bestN < fill) {
		return false, 0, false
	}
	return bestFam == 1, best, true
}

// take removes up to n entries of a socket, in order, for sending; room
// bounds the new targets among them (retries are in flight already), and
// the new targets it leaves keep their places.
func (p *pending[R]) take(v6 bool, slot, n, room int, out []entry[R]) []entry[R] {
	sq := &p.q[family4or6(v6)][slot]
	kept := 0
	for i, e := range sq.entries {
		switch {
		case len(out) == n:
			kept += copy(sq.entries[kept:], sq.entries[i:])
			clear(sq.entries[kept:])
			sq.entries = sq.entries[:kept]
			return out
		case e.f != nil:
			sq.retries--
		case room > 0:
			room--
			p.fresh--
		default:
			sq.entries[kept] = e // no room for it yet
			kept++
			continue
		}
		out = append(out, e)
		p.count--
	}
	clear(sq.entries[kept:])
	sq.entries = sq.entries[:kept]
	return out
}

// clear empties the queue, calling dropped for each retry in it.
func (p *pending[R]) clearAll(dropped func(f *flight[R], gen uint32)) {
	for fam := range p.q {
		for _, slot := range p.live[fam] {
			sq := &p.q[fam][slot]
			for _, e := range sq.entries {
				if e.f != nil {
					dropped(e.f, e.gen)
				}
			}
			clear(sq.entries)
			sq.entries, sq.listed, sq.retries = sq.entries[:0], false, 0
		}
		p.live[fam] = p.live[fam][:0]
	}
	p.count, p.fresh = 0, 0
}
