package ntpctl

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"syscall"
	"time"
)

// engine is the I/O-free core of a Prober: the targets in flight, their
// timers, the rules for retrying and finishing them, matching datagrams
// to them, and the counters. It is driven by values and a clock: the run
// loop takes targets and asks for their requests, the transport hands in
// datagrams and send failures, and the loop collects what is due. It
// starts no goroutine and touches no socket; it is not safe for
// concurrent use (the Prober holds its lock around every call).
//
// A flight's life: take registers it; request builds each attempt and
// arms its timer; deliver feeds its datagrams to its assembler; collect
// finishes it (reply done, caps, timers, abort) into the due list, whose
// results the loop builds with result and then hands back with release.
type engine[R any] struct {
	cfg   *Config // defaults applied
	probe Probe[R]
	stats *counters
	seed  maphash.Seed
	key   [16]byte
	// slots is the number of sockets per family: each flight is sent
	// from, and accepted on, the one its hash picks.
	slots int

	flights  flightMap[R]
	timeouts fifo[R] // after the last attempt
	retries  fifo[R] // after an attempt with retries left
	quiet    quietHeap[R]
	ready    []*flight[R] // finished replies and capped or failed targets
	free     []*flight[R]
	retry    []timer[R] // silent flights to ask again; stale entries are skipped
	recent   recentSet
	due      []*flight[R]
}

// flight is one target in flight.
type flight[R any] struct {
	target   netip.AddrPort
	hash     uint64 // keyed hash of target: its sequence number, socket and recent-set slot
	seq      uint16
	slot     int // the socket of its family it is sent from and accepted on
	asm      Assembler[R]
	asmReset bool // reset for this target (on the first datagram: most never answer)
	attempts int  // requests sent, every step's
	reqLen   int  // octets of the requests of every step, the last attempt of each
	// A Stepper's exchange goes on after a reply with another request:
	// steps counts those steps, and stepAttempts and stepPackets the
	// current step's requests and datagrams (the rules of retries and
	// silence apply to each step afresh).
	steps        int
	stepAttempts int
	stepPackets  int
	first        time.Time // first request
	sentAt       time.Time // last request
	answered     time.Time // first reply datagram
	rtt          time.Duration
	deadline     time.Time // when to look at the flight again
	gen          uint32    // timer entries and batch slots carrying another gen are stale
	inHeap       bool      // a quiet timer is pending
	unsent       bool      // the last request is with a sender, not yet gone
	ready        bool      // queued in engine.ready
	stepLen      int       // octets of the current step's request
	packets      int
	bytes        int
	icmp         Status // closed, unreachable or prohibited: an ICMP error came before any reply
	icmpErr      error
	foreign      int  // datagrams from the target that answered another request or came to another socket
	spoofed      bool // foreign passed MaxMismatched
	done         bool // reply finished, capped or failed: finish at the next collect
	aborted      bool // cut short by Abort
	sendErr      error
}

// v6 reports whether the flight's target is IPv6.
func (f *flight[R]) v6() bool { return f.target.Addr().Is6() }

func newEngine[R any](cfg *Config, probe Probe[R], stats *counters) *engine[R] {
	e := &engine[R]{
		cfg: cfg, probe: probe, stats: stats, seed: maphash.MakeSeed(), slots: cfg.Sockets,
		flights: newFlightMap[R](min(cfg.Concurrency, 1<<16)),
		recent:  newRecentSet(1 << 14),
	}
	_, _ = rand.Read(e.key[:])
	return e
}

// hash is a keyed 64-bit hash of a target: the secret key, address and
// port. Its top 16 bits are the target's sequence number, bits 16 to 47
// pick its socket, and the low bits index the flight map and recent set.
func (e *engine[R]) hash(t netip.AddrPort) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	var buf [16 + 16 + 2]byte
	copy(buf[:16], e.key[:])
	a := t.Addr().As16()
	copy(buf[16:32], a[:])
	binary.BigEndian.PutUint16(buf[32:], t.Port())
	_, _ = h.Write(buf[:])
	return h.Sum64()
}

// seq returns the sequence number of target: a keyed hash, unpredictable
// without the engine's secret.
func (e *engine[R]) seq(t netip.AddrPort) uint16 { return uint16(e.hash(t) >> 48) }

// slot returns the socket of its family that target t is sent from and
// accepted on.
func (e *engine[R]) slot(t netip.AddrPort) int { return e.slotOf(e.hash(t)) }

func (e *engine[R]) slotOf(h uint64) int { return int(uint32(h>>16) % uint32(e.slots)) }

// inFlight returns the number of targets in flight.
func (e *engine[R]) inFlight() int { return e.flights.len() }

// admit judges target t, taken from the sequence at now: it gives it
// the default port and unmaps it, and checks the blocklist. It returns
// the target as it will be probed and its keyed hash; or, for a blocked
// one, ok false and its result.
func (e *engine[R]) admit(t netip.AddrPort, now time.Time) (_ netip.AddrPort, h uint64, res Result[R], ok bool) {
	if t.Port() == 0 {
		t = netip.AddrPortFrom(t.Addr(), e.cfg.Port)
	}
	t = netip.AddrPortFrom(t.Addr().Unmap(), t.Port())
	if why := e.cfg.Blocklist.Reason(t.Addr()); why != "" {
		e.stats.targets.Add(1)
		e.stats.finished(StatusBlocked)
		return t, 0, Result[R]{Outcome: Outcome{Target: t, Status: StatusBlocked, Time: now,
			Err: fmt.Errorf("%w: %s", ErrBlocked, why)}}, false
	}
	return t, e.hash(t), Result[R]{}, true
}

// take puts an admitted target t, whose hash is h, in flight at now. It
// returns the new flight, whose first request the caller builds with
// request; or, for a target that repeats one in flight, nil and its
// result.
func (e *engine[R]) take(t netip.AddrPort, h uint64, now time.Time) (*flight[R], Result[R]) {
	e.stats.targets.Add(1)
	if e.flights.get(t, h) != nil {
		// The same target twice in flight would share replies: probe it
		// once and report the repeat.
		e.stats.finished(StatusRepeated)
		return nil, Result[R]{Outcome: Outcome{Target: t, Status: StatusRepeated, Time: now, Err: ErrRepeated}}
	}
	if len(e.free) == 0 {
		// Flights are allocated in slabs; they return to the free list.
		slab := make([]flight[R], 256)
		for i := range slab {
			e.free = append(e.free, &slab[i])
		}
	}
	f := e.free[len(e.free)-1]
	e.free = e.free[:len(e.free)-1]
	if f.asm == nil {
		f.asm = e.probe.NewAssembler()
	}
	f.target, f.hash, f.seq = t, h, uint16(h>>48)
	f.slot = e.slotOf(h)
	e.flights.put(f)
	e.stats.inFlight.Add(1)
	return f, Result[R]{}
}

// failed finishes f, taken but never sent, with err: its socket could
// not be opened.
func (e *engine[R]) failed(f *flight[R], err error, now time.Time) {
	f.sendErr = err
	if f.first.IsZero() {
		f.first = now
	}
	e.markReady(f)
}

// nextRetry returns the next silent flight waiting to be asked again, or
// nil; it stays queued until popRetry.
func (e *engine[R]) nextRetry() *flight[R] {
	for len(e.retry) > 0 {
		t := e.retry[len(e.retry)-1]
		// One that answered while it waited finishes by its quiet timer;
		// one that finished (and may have been recycled) has moved to
		// another gen.
		if t.stale() || t.f.done || t.f.stepPackets > 0 {
			e.retry = e.retry[:len(e.retry)-1]
			continue
		}
		return t.f
	}
	return nil
}

// popRetry removes the flight nextRetry returned.
func (e *engine[R]) popRetry() { e.retry = e.retry[:len(e.retry)-1] }

// retrying returns the number of flights waiting to be asked again (some
// may be stale).
func (e *engine[R]) retrying() int { return len(e.retry) }

// current reports whether f is still on the attempt gen and silent: a
// retry queued then may still be sent.
func (e *engine[R]) current(f *flight[R], gen uint32) bool {
	return f.gen == gen && !f.done && f.stepPackets == 0
}

// drop finishes f, a silent flight whose retry (queued on attempt gen)
// will not be sent, unless it has moved on since.
func (e *engine[R]) drop(f *flight[R], gen uint32) {
	if e.current(f, gen) {
		e.finish(f, false)
	}
}

// request appends f's next request to b and arms its timer: another
// attempt after RetryInterval while retries remain, the end after
// Timeout on the last. ok is false when the request could not be built;
// f then finishes with the error at the next collect. A request that is
// built is to be sent; attempt identifies it to sendFailed.
func (e *engine[R]) request(f *flight[R], b []byte, now time.Time) (_ []byte, attempt uint32, ok bool) {
	var err error
	start := len(b)
	if f.steps > 0 {
		b, err = f.asm.(Stepper).AppendNext(b)
	} else {
		b, err = e.probe.AppendRequest(b, f.target, f.seq)
	}
	f.attempts++
	f.stepAttempts++
	if f.stepAttempts > 1 {
		e.stats.retried.Add(1)
	} else if f.steps > 0 {
		e.stats.steps.Add(1)
	}
	if f.first.IsZero() {
		f.first = now
	}
	f.sentAt = now
	if err != nil {
		f.sendErr = fmt.Errorf("ntpctl: building the request: %w", err)
		e.markReady(f)
		return nil, 0, false
	}
	if f.stepAttempts == 1 {
		f.stepLen = len(b) - start
		f.reqLen += f.stepLen
	} else {
		f.reqLen += len(b) - start - f.stepLen // a retry: the same request, or nearly
		f.stepLen = len(b) - start
	}
	f.gen++ // the timers of earlier attempts are stale
	f.inHeap = false
	f.unsent = true
	f.deadline = now.Add(e.wait(f))
	if f.stepAttempts <= e.cfg.Retries {
		e.retries.push(timer[R]{f, f.gen, f.deadline}, 4*e.cfg.Concurrency)
	} else {
		e.timeouts.push(timer[R]{f, f.gen, f.deadline}, 4*e.cfg.Concurrency)
	}
	return b, f.gen, true
}

// wait is how long f's last request waits for an answer: the retry
// interval while retries are left, then the timeout.
func (e *engine[R]) wait(f *flight[R]) time.Duration {
	if f.stepAttempts <= e.cfg.Retries {
		return e.cfg.RetryInterval
	}
	return e.cfg.Timeout
}

// sent reports that attempt of f left at at (the sending call returned
// then). The wait for an answer counts from then: a request that sat
// with a starved sender past its deadline must not make its target
// silent. Once f answers, its quiet timer rules and only unsent is
// cleared.
func (e *engine[R]) sent(f *flight[R], attempt uint32, at time.Time) {
	if f.gen != attempt {
		return
	}
	f.unsent = false
	if f.stepPackets > 0 || f.done || !at.After(f.sentAt) {
		return
	}
	f.deadline = at.Add(e.wait(f)) // collect pushes its timer again
	if f.first.Equal(f.sentAt) {
		f.first = at
	}
	f.sentAt = at
}

// sendFailed reports that the kernel refused attempt of f (as request
// returned it). Unless f has moved on since or is answering (an earlier
// attempt's reply is arriving: it finishes by its quiet timer), f
// finishes with the error; a transient error (a full queue) with
// retries left is left to the retry timer instead.
func (e *engine[R]) sendFailed(f *flight[R], attempt uint32, err error) {
	if f.gen != attempt || f.done || f.stepPackets > 0 {
		return
	}
	if transient(err) && f.stepAttempts <= e.cfg.Retries {
		return // a full queue says nothing about the target: ask again
	}
	f.sendErr = fmt.Errorf("ntpctl: sending the request: %w", err)
	e.markReady(f)
}

// transient reports whether a send error says only that the host is busy
// (a full queue or socket buffer), so a later attempt may go out.
func transient(err error) bool {
	return errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOMEM)
}

// markReady queues f to finish at the next collect.
func (e *engine[R]) markReady(f *flight[R]) {
	f.done = true
	if !f.ready {
		f.ready = true
		e.ready = append(e.ready, f)
	}
}

// deliver gives one datagram from src, read at now on socket slot of
// the family v6 says, to its flight; size is the datagram's full length (b may
// be cut short). It reports whether the flight finished, so that the run
// loop should collect now.
func (e *engine[R]) deliver(v6 bool, slot int, src netip.AddrPort, b []byte, size int, now time.Time) bool {
	e.stats.received.Add(1)
	h := e.hash(src)
	f := e.flights.get(src, h)
	if f != nil && !f.done && (f.slot != slot || f.v6() != v6) {
		// From a target in flight, but not where its request left from:
		// only a forger who does not know the port sends that.
		e.stats.misdirected.Add(1)
		return e.foreign(f)
	}
	if f == nil || f.done {
		if f != nil || e.recent.has(src, h) {
			e.stats.late.Add(1)
		} else {
			e.stats.unsolicited.Add(1)
		}
		return false
	}
	if !f.asmReset {
		f.asm.Reset(f.target, f.seq)
		f.asmReset = true
	}
	matched, done := f.asm.Add(b)
	if !matched {
		return e.foreign(f) // counted in the assembler's Tally
	}
	stale := false
	if st, ok := f.asm.(Stepper); ok {
		stale = st.Stale()
	}
	if f.packets == 0 {
		// A reply to an earlier attempt, read before the run loop sent a
		// retry and handed over after, would give a negative time.
		f.rtt = max(0, now.Sub(f.sentAt))
		f.answered = now
	}
	f.packets++
	f.bytes += size
	if !stale {
		f.stepPackets++
	}
	switch {
	case f.packets >= e.cfg.MaxPackets || f.bytes >= e.cfg.MaxBytes:
		e.stats.overCap.Add(1)
		e.markReady(f)
		return true
	case stale:
		return false // a repeat of an earlier step's reply: the timers of this one rule
	case done:
		if st, ok := f.asm.(Stepper); ok && st.Next() {
			if f.answered.Add(e.cfg.MaxDuration).Before(now) {
				e.stats.overCap.Add(1) // the whole exchange is bounded by MaxDuration
				e.markReady(f)
				return true
			}
			e.step(f)
			return true
		}
		e.markReady(f)
		return true
	}
	f.deadline = now.Add(e.cfg.Quiet)
	if limit := f.answered.Add(e.cfg.MaxDuration); limit.Before(now) {
		e.stats.overCap.Add(1) // dripping past MaxDuration: cut off
		e.markReady(f)
		return true
	} else if limit.Before(f.deadline) {
		f.deadline = limit
	}
	if !f.inHeap {
		f.inHeap = true
		e.quiet.push(timer[R]{f, f.gen, f.deadline})
	}
	return false
}

// deliverICMP takes an ICMP error about a request to target, read at
// now on socket slot of the family v6 says: a flight that has not
// answered finishes with the status it means (a port unreachable ends
// it as closed; no retry would fare better). It reports whether a flight
// finished. An ICMP error can be forged as easily as a reply, but it can
// only hide a finding, never make one.
func (e *engine[R]) deliverICMP(v6 bool, slot int, target netip.AddrPort, typ, code uint8, icmp6 bool, now time.Time) bool {
	e.stats.icmp.Add(1)
	st := icmpStatus(typ, code, icmp6)
	if st == 0 {
		return false // not about reachability (fragmentation needed, …)
	}
	f := e.flights.get(target, e.hash(target))
	if f == nil || f.done || f.slot != slot || f.v6() != v6 || f.packets > 0 {
		return false
	}
	f.icmp = st
	base := ErrClosed
	switch st {
	case StatusUnreachable:
		base = ErrUnreachable
	case StatusProhibited:
		base = ErrProhibited
	}
	proto := "ICMP"
	if icmp6 {
		proto = "ICMPv6"
	}
	f.icmpErr = fmt.Errorf("%w (%s type %d code %d)", base, proto, typ, code)
	e.markReady(f)
	return true
}

// icmpStatus maps an ICMP error to the status it means for the target, or
// 0 for one that says nothing about it (RFC 792, RFC 1812 §5.2.7.1, RFC
// 4443 §3.1).
func icmpStatus(typ, code uint8, v6 bool) Status {
	if v6 {
		switch {
		case typ == 1 && code == 4:
			return StatusClosed // port unreachable
		case typ == 1 && (code == 1 || code == 5 || code == 6):
			return StatusProhibited // administratively prohibited, failed policy, reject route
		case typ == 1, typ == 3:
			return StatusUnreachable // no route, beyond scope, address unreachable; time exceeded
		}
		return 0
	}
	switch {
	case typ == 3 && code == 3:
		return StatusClosed
	case typ == 3 && (code == 9 || code == 10 || code == 13):
		return StatusProhibited
	case typ == 3 && code != 4, typ == 11: // not "fragmentation needed"
		return StatusUnreachable
	}
	return 0
}

// foreign counts a datagram from f's target that answered another
// request or came to another socket, and ends f as spoofed past the cap.
// It reports whether f finished.
func (e *engine[R]) foreign(f *flight[R]) bool {
	f.foreign++
	if f.foreign <= e.cfg.MaxMismatched {
		return false
	}
	f.spoofed = true
	e.markReady(f)
	return true
}

// step moves f, whose reply is done and whose Stepper asks for more, to
// its next request: it waits with the retries to go out (and through the
// rate limiter) like a first request, from the same socket.
func (e *engine[R]) step(f *flight[R]) {
	f.steps++
	f.stepAttempts, f.stepPackets = 0, 0
	f.gen++ // the quiet timer of the reply before is stale
	f.inHeap = false
	e.retry = append(e.retry, timer[R]{f: f, gen: f.gen})
}

// collect finishes the flights that are due at now into the due list and
// queues the silent ones with retries left to be asked again. With
// stopping set no retry is queued and those waiting finish; with
// aborting set every flight finishes at once, and those cut short are
// marked aborted.
func (e *engine[R]) collect(now time.Time, stopping, aborting bool) {
	if aborting {
		var all []*flight[R]
		e.flights.all(func(f *flight[R]) bool { all = append(all, f); return true })
		for _, f := range all {
			e.finish(f, !f.done) // a reply waiting in ready was not cut short
		}
		e.ready, e.retry, e.quiet = e.ready[:0], e.retry[:0], e.quiet[:0]
		e.timeouts, e.retries = fifo[R]{}, fifo[R]{}
		return
	}
	for _, f := range e.ready {
		f.ready = false
		if f.done {
			e.finish(f, false)
		}
	}
	e.ready = e.ready[:0]
	// Send timers: silent flights get another attempt or finish.
	for _, q := range [2]*fifo[R]{&e.timeouts, &e.retries} {
		for {
			t, ok := q.peek()
			if !ok || t.at.After(now) {
				break
			}
			q.pop()
			f := t.f
			if t.stale() || f.stepPackets > 0 || f.done {
				continue // resent, recycled, or answering: another timer rules
			}
			if f.unsent || f.deadline.After(now) {
				// The request has not left yet, or left later than it
				// was built: wait a whole delay from now, or from when
				// it left. (Behind later deadlines in the FIFO, it fires
				// late, never early.)
				if f.unsent {
					f.deadline = now.Add(e.wait(f))
				}
				q.push(timer[R]{f, f.gen, f.deadline}, 4*e.cfg.Concurrency)
				continue
			}
			if f.steps > 0 && !f.answered.Add(e.cfg.MaxDuration).After(now) {
				e.stats.overCap.Add(1) // a silent step past the exchange's MaxDuration
				e.finish(f, false)
				continue
			}
			if f.sendErr == nil && f.stepAttempts <= e.cfg.Retries && !stopping {
				e.retry = append(e.retry, timer[R]{f: f, gen: f.gen}) // silent so far: ask again
				continue
			}
			e.finish(f, false)
		}
	}
	// Quiet timers: answered flights whose reply went quiet.
	for len(e.quiet) > 0 && !e.quiet[0].at.After(now) {
		t := e.quiet.pop()
		f := t.f
		if t.stale() {
			continue
		}
		f.inHeap = false
		if f.done {
			continue // finishes through ready
		}
		if f.deadline.After(now) {
			f.inHeap = true // more arrived since: wait on
			e.quiet.push(timer[R]{f, f.gen, f.deadline})
			continue
		}
		if !f.answered.Add(e.cfg.MaxDuration).After(now) {
			e.stats.overCap.Add(1) // still dripping when MaxDuration ran out
		}
		e.finish(f, false)
	}
	if stopping {
		for _, t := range e.retry {
			if f := t.f; !t.stale() && !f.done && f.stepPackets == 0 {
				e.finish(f, false) // answered ones finish by their quiet timers
			}
		}
		e.retry = e.retry[:0]
	}
}

// finish takes f out of flight into the due list; its timers become
// stale.
func (e *engine[R]) finish(f *flight[R], aborted bool) {
	e.flights.remove(f)
	e.recent.add(f.target, f.hash)
	f.gen++
	f.done = true
	f.aborted = aborted
	e.due = append(e.due, f)
	e.stats.inFlight.Add(^uint64(0))
}

// takeDue returns the flights finished since the last call, for result
// and then release.
func (e *engine[R]) takeDue() []*flight[R] {
	due := e.due
	e.due = nil
	return due
}

// result builds the Result of a finished flight and counts it. It only
// reads f, so the run loop may call it without the lock between takeDue
// and release.
func (e *engine[R]) result(f *flight[R]) Result[R] {
	r := Result[R]{Outcome: Outcome{Target: f.target, Time: f.first, Attempts: f.attempts, RTT: f.rtt,
		Packets: f.packets, Bytes: f.bytes, RequestBytes: f.reqLen}}
	switch {
	case f.icmp != 0:
		r.Status, r.Err = f.icmp, f.icmpErr
	case f.spoofed:
		if f.asmReset {
			r.Value, _, _ = f.asm.Result() // the evidence
		}
		r.Status, r.Err = StatusSpoofed, ErrSpoofed
	case f.packets > 0:
		r.Value, r.Status, r.Err = f.asm.Result()
		if f.steps > 0 && f.stepPackets == 0 && (f.sendErr != nil || f.stepAttempts == 0) {
			// The exchange's last request never got out: say so rather
			// than let the target seem silent.
			why := f.sendErr
			if why == nil {
				why = ErrStepNotSent
			}
			if r.Status == StatusNoAnswer {
				r.Status, r.Err = StatusSendError, why
				if f.sendErr == nil {
					r.Status = StatusPartial
				}
			} else {
				r.Err = errors.Join(r.Err, why)
			}
		}
	case f.sendErr != nil:
		r.Status, r.Err = StatusSendError, f.sendErr
	default:
		r.Status, r.Err = StatusNoAnswer, ErrNoAnswer
	}
	if f.asmReset {
		e.stats.tally(f.packets, f.asm.Tally())
	}
	if f.aborted {
		r.Err = errors.Join(r.Err, ErrAborted)
	}
	e.stats.finished(r.Status)
	return r
}

// release returns finished flights to the pool, and the slice for reuse
// as the due list.
func (e *engine[R]) release(fs []*flight[R]) {
	for _, f := range fs {
		asm, gen := f.asm, f.gen+1
		*f = flight[R]{asm: asm, gen: gen}
	}
	e.free = append(e.free, fs...)
	if e.due == nil {
		clear(fs)
		e.due = fs[:0]
	}
}

// pending reports whether flights are ready to finish or finished and
// not yet taken: the run loop should collect without waiting.
func (e *engine[R]) pending() bool { return len(e.due) > 0 || len(e.ready) > 0 }

// nextWake returns how long until the earliest deadline, at most 250 ms
// (0 when something is pending already).
func (e *engine[R]) nextWake(now time.Time) time.Duration {
	if e.pending() {
		return 0
	}
	wait := 250 * time.Millisecond
	for _, q := range [2]*fifo[R]{&e.timeouts, &e.retries} {
		if t, ok := q.peek(); ok {
			wait = min(wait, t.at.Sub(now))
		}
	}
	if len(e.quiet) > 0 {
		wait = min(wait, e.quiet[0].at.Sub(now))
	}
	return max(wait, 0)
}

// recentSet remembers targets finished lately, to tell late replies from
// unsolicited ones, in a fixed table indexed by hash: a newer target may
// take an older one's slot, which then counts as unsolicited.
type recentSet struct{ slots []netip.AddrPort }

func newRecentSet(n int) recentSet { return recentSet{slots: make([]netip.AddrPort, n)} }

func (r *recentSet) add(t netip.AddrPort, h uint64) { r.slots[h%uint64(len(r.slots))] = t }

func (r *recentSet) has(t netip.AddrPort, h uint64) bool {
	return r.slots[h%uint64(len(r.slots))] == t
}
