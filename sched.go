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
//
// Picking the next socket is O(1) amortized: sockets that reach fill go
// on a stack, and every socket that gets its first entry goes on a queue
// in the order it did, which is the order of their oldest entries. Both
// are checked lazily: an entry whose socket has changed since is passed
// over. A third queue holds the sockets that have retries, in the order
// they got them: when the flights in the air leave no room for new
// targets, only retries may go, and they must be found however many
// sockets of new targets wait ahead of them (a retry that is never sent
// keeps its flight in the air, and the scan stalls).
type pending[R any] struct {
	q        [2][]slotQueue[R] // udp4, udp6: per socket
	full     []sockRef         // sockets that reached fill (some may have gone under since)
	aging    fifo2             // sockets in the order they got their oldest entry
	retrying fifo2             // sockets in the order they got a retry (some may have none since)
	count    int               // entries waiting
	fresh    int               // of those, new targets
	gen      uint32            // stamps queue entries; bumped when a socket empties
}

// sockRef names a socket; gen is its queue's gen when the reference was
// made (the aging queue's references go stale when the socket empties).
type sockRef struct {
	fam  uint8
	slot int32
	gen  uint32
}

type slotQueue[R any] struct {
	entries []entry[R]
	retries int       // of those, retries
	since   time.Time // when the oldest entry came
	gen     uint32    // set when the socket got its first entry
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

func (p *pending[R]) queue(r sockRef) *slotQueue[R] { return &p.q[r.fam][r.slot] }

// carve gives every socket of a family, on the family's first entry, a
// slice of one slab with room for 2 × fill entries, so that the queues do
// not each grow by allocation (a socket that needs more grows its own).
func (p *pending[R]) carve(fam int) {
	const per = 2 * fill
	slab := make([]entry[R], per*len(p.q[fam]))
	for i := range p.q[fam] {
		p.q[fam][i].entries = slab[i*per : i*per : (i+1)*per]
	}
}

func (p *pending[R]) add(v6 bool, slot int, e entry[R], now time.Time) {
	fam := family4or6(v6)
	sq := &p.q[fam][slot]
	if sq.entries == nil {
		p.carve(fam)
	}
	if len(sq.entries) == 0 {
		p.gen++
		if p.gen == 0 {
			p.gen = 1 // 0 marks an empty socket
		}
		sq.since, sq.gen = now, p.gen
		if p.aging.len() > 4*len(p.q[0]) {
			p.compact()
		}
		p.aging.push(sockRef{uint8(fam), int32(slot), sq.gen})
	}
	sq.entries = append(sq.entries, e)
	if len(sq.entries) == fill {
		p.markFull(sockRef{uint8(fam), int32(slot), sq.gen})
	}
	p.count++
	if e.f == nil {
		p.fresh++
		return
	}
	sq.retries++
	if sq.retries == 1 {
		if p.retrying.len() > 4*len(p.q[0]) {
			p.compact()
		}
		p.retrying.push(sockRef{uint8(fam), int32(slot), sq.gen})
	}
}

// oldest returns when the longest-waiting entry came (zero when none).
func (p *pending[R]) oldest() time.Time {
	for p.aging.len() > 0 {
		r := p.aging.peek()
		if sq := p.queue(r); len(sq.entries) > 0 && sq.gen == r.gen {
			return sq.since
		}
		p.aging.pop() // stale: the socket emptied since
	}
	return time.Time{}
}

// scanLimit bounds how far pick looks past sockets it may not use now.
const scanLimit = 64

// pick returns the socket whose entries should go out next, or false:
// the one waiting longest once it has waited linger, else one that has
// fill entries, else (drain) the one waiting longest of any. Sockets skip
// says cannot take a batch now are passed over (looking at most
// scanLimit further). With retriesOnly (no room in flight for new
// targets) it is the socket that has waited longest with a retry, at
// once.
func (p *pending[R]) pick(now time.Time, drain, retriesOnly bool, skip func(v6 bool, slot int) bool) (v6 bool, slot int, ok bool) {
	if retriesOnly {
		return p.pickRetry(skip)
	}
	usable := func(r sockRef) bool {
		return len(p.queue(r).entries) > 0 && !skip(r.fam == 1, int(r.slot))
	}
	// The longest waiting, once aged (or draining).
	p.oldest() // drops stale heads
	for i := 0; i < p.aging.len() && i < scanLimit; i++ {
		r := p.aging.at(i)
		sq := p.queue(r)
		if len(sq.entries) == 0 || sq.gen != r.gen {
			continue
		}
		if !drain && now.Sub(sq.since) < linger {
			break // the rest came later still
		}
		if usable(r) {
			return r.fam == 1, int(r.slot), true
		}
	}
	// Full ones, the most recent first.
	for i := len(p.full) - 1; i >= 0 && i >= len(p.full)-scanLimit; i-- {
		r := p.full[i]
		sq := p.queue(r)
		if len(sq.entries) < fill || sq.gen != r.gen {
			p.full = append(p.full[:i], p.full[i+1:]...) // stale
			continue
		}
		if usable(r) {
			return r.fam == 1, int(r.slot), true
		}
	}
	return false, 0, false
}

// pickRetry returns the socket that has had a retry longest, passing
// over those skip refuses (looking at most scanLimit further).
func (p *pending[R]) pickRetry(skip func(v6 bool, slot int) bool) (v6 bool, slot int, ok bool) {
	for p.retrying.len() > 0 && !p.hasRetry(p.retrying.peek()) {
		p.retrying.pop() // stale: its retries went out since
	}
	for i := 0; i < p.retrying.len() && i < scanLimit; i++ {
		if r := p.retrying.at(i); p.hasRetry(r) && !skip(r.fam == 1, int(r.slot)) {
			return r.fam == 1, int(r.slot), true
		}
	}
	return false, 0, false
}

// hasRetry reports whether the socket r names still has a retry, since
// the reference was made.
func (p *pending[R]) hasRetry(r sockRef) bool {
	sq := p.queue(r)
	return sq.retries > 0 && sq.gen == r.gen
}

// take removes up to n entries of a socket, in order, for sending; room
// bounds the new targets among them (retries are in flight already), and
// the new targets it leaves keep their places.
func (p *pending[R]) take(v6 bool, slot, n, room int, out []entry[R]) []entry[R] {
	fam := family4or6(v6)
	sq := &p.q[fam][slot]
	kept := 0
	i := 0
	for ; i < len(sq.entries); i++ {
		e := sq.entries[i]
		if len(out) == n {
			break
		}
		switch {
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
	kept += copy(sq.entries[kept:], sq.entries[i:])
	clear(sq.entries[kept:])
	sq.entries = sq.entries[:kept]
	switch {
	case kept == 0:
		sq.gen = 0 // its references are stale
	case kept >= fill:
		p.markFull(sockRef{uint8(fam), int32(slot), sq.gen})
	}
	return out
}

func (p *pending[R]) markFull(r sockRef) {
	if len(p.full) > 4*len(p.q[0]) {
		p.compact()
	}
	p.full = append(p.full, r)
}

// compact drops the stale references of full, aging and retrying (their
// sockets emptied, went under fill or sent their retries since), so that
// none grows beyond the sockets' number, whatever the order sockets are
// served in.
func (p *pending[R]) compact() {
	n := 0
	seen := map[sockRef]bool{}
	for _, r := range p.full {
		if sq := p.queue(r); len(sq.entries) >= fill && sq.gen == r.gen && !seen[r] {
			seen[r] = true
			p.full[n] = r
			n++
		}
	}
	p.full = p.full[:n]
	var q fifo2
	for i := range p.aging.len() {
		if r := p.aging.at(i); p.queue(r).gen == r.gen && len(p.queue(r).entries) > 0 {
			q.push(r)
		}
	}
	p.aging = q
	var rq fifo2
	clear(seen)
	for i := range p.retrying.len() {
		if r := p.retrying.at(i); p.hasRetry(r) && !seen[r] {
			seen[r] = true
			rq.push(r)
		}
	}
	p.retrying = rq
}

// clearAll empties the queue, calling dropped for each retry in it.
func (p *pending[R]) clearAll(dropped func(f *flight[R], gen uint32)) {
	for fam := range p.q {
		for slot := range p.q[fam] {
			sq := &p.q[fam][slot]
			if len(sq.entries) == 0 {
				continue
			}
			for _, e := range sq.entries {
				if e.f != nil {
					dropped(e.f, e.gen)
				}
			}
			clear(sq.entries)
			sq.entries, sq.retries, sq.gen = sq.entries[:0], 0, 0
		}
	}
	p.full = p.full[:0]
	p.aging, p.retrying = fifo2{}, fifo2{}
	p.count, p.fresh = 0, 0
}

// fifo2 is a FIFO of socket references on a ring buffer.
type fifo2 struct {
	buf        []sockRef
	head, size int
}

func (q *fifo2) len() int { return q.size }

func (q *fifo2) push(r sockRef) {
	if q.size == len(q.buf) {
		nb := make([]sockRef, max(64, 2*len(q.buf)))
		for i := range q.size {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = r
	q.size++
}

func (q *fifo2) peek() sockRef    { return q.buf[q.head] }
func (q *fifo2) at(i int) sockRef { return q.buf[(q.head+i)%len(q.buf)] }
func (q *fifo2) pop()             { q.head = (q.head + 1) % len(q.buf); q.size-- }
