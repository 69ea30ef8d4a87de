package ntpctl

import (
	"context"
	"errors"
	"iter"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
)

// Prober sends one Probe to very many targets over batched UDP and turns
// what comes back into one Result per target. Create it with NewProber;
// a Prober runs once.
//
// Inside, an I/O-free engine keeps the targets in flight, their timers
// and the rules for retrying and finishing them; a transport moves the
// datagrams (sockets, batches, sending and receiving goroutines); Run is
// the loop between them.
type Prober[R any] struct {
	cfg Config

	mu sync.Mutex // guards engine and the transport's batches
	e  *engine[R]
	tr *transport[R]

	pend    pending[R] // requests waiting to go out together, per socket
	stall   stall      // why the last round sent no more
	more    bool       // the last round stopped taking targets before the window was full
	window  int        // how many new targets may wait in pend
	batch   []entry[R] // scratch of send
	skipped []Result[R]
	stats   counters
	rounds  int // loop iterations of Run, for tests of idle wakeups
	running atomic.Bool
	abort   chan struct{}
	aborted sync.Once
}

// NewProber returns a Prober that sends probe with cfg.
func NewProber[R any](cfg Config, probe Probe[R]) (*Prober[R], error) {
	if probe == nil {
		return nil, errors.New("ntpctl: nil probe")
	}
	p := &Prober[R]{cfg: cfg.withDefaults(), abort: make(chan struct{})}
	p.e = newEngine(&p.cfg, probe, &p.stats)
	p.tr = newTransport[R](&p.cfg, &p.stats)
	p.tr.deliver = p.deliver
	p.pend = newPending[R](p.cfg.Sockets)
	p.window = max(p.cfg.BatchSize, fill*p.cfg.Sockets)
	return p, nil
}

// Stats returns the counters so far; it is safe to call during Run.
func (p *Prober[R]) Stats() Stats { return p.stats.snapshot() }

// Abort makes a running Run finish every target in flight at once, with
// what it has, and return. It is for a second interrupt: the first one
// cancels Run's context, which stops sending and lets the targets in
// flight finish within their timeouts. Abort before Run makes Run return
// ErrAborted without taking a target.
func (p *Prober[R]) Abort() { p.aborted.Do(func() { close(p.abort) }) }

// deliver hands received datagrams to the engine: the transport's
// receive goroutines call it.
func (p *Prober[R]) deliver(v6 bool, msgs []batchconn.RecvMsg, slots []int, now time.Time) bool {
	wake := false
	p.mu.Lock()
	for i := range msgs {
		m := &msgs[i]
		if m.ICMP.Set {
			wake = p.e.deliverICMP(v6, slots[i], m.From, m.ICMP.Type, m.ICMP.Code, m.ICMP.V6, now) || wake
			continue
		}
		wake = p.e.deliver(v6, slots[i], m.From, m.Buf[:m.N], m.Size, now) || wake
	}
	p.mu.Unlock()
	return wake
}

// Run probes every target and calls emit exactly once for each, from the
// goroutine that called Run, in the order the targets finish. Targets are
// taken from the sequence only when there is room in flight. A target
// whose port is 0 gets Config.Port.
//
// When ctx is done Run stops taking targets and sending, lets the targets
// in flight finish within their timeouts (or at once after Abort), emits
// them, and returns ctx's error. When emit returns an error Run stops at
// once and returns it; the targets in flight are then not emitted. A
// Prober runs once: another call returns ErrRunOnce.
//
// Run pulls targets on its own goroutine, between deadlines: a sequence
// that blocks (a channel waiting for a producer, say) holds up timeouts,
// results and cancellation until it yields, so it should yield promptly
// or end.
func (p *Prober[R]) Run(ctx context.Context, targets iter.Seq[netip.AddrPort], emit func(Result[R]) error) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	next, stop := iter.Pull(targets)
	defer stop()
	return p.run(ctx, &source{next: next}, emit)
}

// RunFeed is Run over the targets a producer gives f while the probe
// runs: a probe that follows another, such as the control queries sent
// only to the servers a Mode 3 pass found. Unlike a sequence, a Feed
// that has nothing yet holds nothing up: the targets in flight time out,
// retry and finish while Run waits for the next one. Run returns when f
// is closed and every target taken has finished, or as Run does when ctx
// is done or emit fails; then f takes no more (Feed.Send returns false).
func (p *Prober[R]) RunFeed(ctx context.Context, f *Feed, emit func(Result[R]) error) error {
	defer f.stop() // on ErrRunOnce too: no producer waits for a run that will not come
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunOnce
	}
	src := &source{feed: f}
	src.next = src.fromFeed
	return p.run(ctx, src, emit)
}

// A Feed carries targets from a producer to a Prober's RunFeed, as they
// are found. Send blocks while the feed's buffer is full, so a fast
// producer waits for the prober. Create it with NewFeed; Send and Close
// may be called from other goroutines than RunFeed's. A Feed serves one
// RunFeed.
type Feed struct {
	ch        chan netip.AddrPort
	gone      chan struct{} // closed when RunFeed returns
	closeOnce sync.Once
	goneOnce  sync.Once
	sent      atomic.Uint64
}

// NewFeed returns a Feed that buffers up to buffer targets (at least 1).
func NewFeed(buffer int) *Feed {
	return &Feed{ch: make(chan netip.AddrPort, max(1, buffer)), gone: make(chan struct{})}
}

// Send gives the prober a target. It blocks while the buffer is full,
// until the prober takes one or ctx is done, and reports whether the
// target was taken into the feed, to be probed unless the run ends first
// (ctx, Abort, an emit error): false once RunFeed has returned (or ctx
// is done). Send must not be called after Close.
func (f *Feed) Send(ctx context.Context, t netip.AddrPort) bool {
	select {
	case <-f.gone:
		return false
	default:
	}
	select {
	case f.ch <- t:
		select {
		case <-f.gone:
			return false // the run ended as it was buffered: never read
		default:
		}
		f.sent.Add(1)
		return true
	case <-f.gone:
		return false
	case <-ctx.Done():
		return false
	}
}

// Close says no more targets will come: RunFeed returns once those given
// have finished. It may be called more than once.
func (f *Feed) Close() { f.closeOnce.Do(func() { close(f.ch) }) }

// Sent returns the targets the feed has taken so far; it is safe to call
// at any time.
func (f *Feed) Sent() uint64 { return f.sent.Load() }

func (f *Feed) stop() { f.goneOnce.Do(func() { close(f.gone) }) }

// source is where Run takes its targets: a pulled sequence (next blocks
// until it yields or ends), or a Feed (next never blocks; ready is the
// channel to wait on when it has nothing).
type source struct {
	next func() (netip.AddrPort, bool)
	feed *Feed
	// held is a target received from the feed while the loop waited,
	// for the next round.
	held    netip.AddrPort
	holding bool
	// empty is set by fromFeed when the feed had nothing and is not
	// closed: the round is not exhausted, only starved.
	empty  bool
	closed bool
}

// fromFeed takes a target from the feed without waiting.
func (s *source) fromFeed() (netip.AddrPort, bool) {
	f := s.feed
	if s.holding {
		s.holding = false
		return s.held, true
	}
	select {
	case t, ok := <-f.ch:
		if !ok {
			s.closed = true
			return netip.AddrPort{}, false
		}
		return t, true
	default:
		s.empty = true
		return netip.AddrPort{}, false
	}
}

// ready returns the channel to wait on for the next target of a feed
// that was empty, nil otherwise.
func (s *source) ready() <-chan netip.AddrPort {
	if s.feed == nil || !s.empty || s.closed {
		return nil
	}
	return s.feed.ch
}

// hold keeps a target (or the feed's end) received while waiting, for
// the next round.
func (s *source) hold(t netip.AddrPort, ok bool) {
	s.empty = false
	if !ok {
		s.closed = true
		return
	}
	s.held, s.holding = t, true
}

// run is Run's loop over a source of targets.
func (p *Prober[R]) run(ctx context.Context, src *source, emit func(Result[R]) error) error {
	defer func() {
		if r := recover(); r != nil {
			// A panic may have left p.mu held, with a receive loop
			// waiting for it: close the sockets without waiting.
			p.tr.close(false)
			panic(r)
		}
		p.tr.close(true)
	}()
	p.stats.started.Store(p.cfg.Now().UnixNano())
	exhausted := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rate := rateMeter{}
	for {
		p.rounds++
		src.empty = false // set again by a round that finds the feed empty
		stopping := ctx.Err() != nil
		aborting := false
		select {
		case <-p.abort:
			aborting = true
		default:
		}
		now := p.cfg.Now()
		if (stopping || aborting) && p.pend.count > 0 {
			p.dropPending() // never sent: not taken (retries finish)
		}

		// Finish what is due, and emit outside the lock.
		p.mu.Lock()
		p.e.collect(now, stopping, aborting)
		due := p.e.takeDue()
		p.mu.Unlock()
		var err error
		for _, f := range due {
			r := p.e.result(f) // counted even when emit has failed: Stats stay whole
			if err == nil {
				err = emit(r)
			}
		}
		p.mu.Lock()
		p.e.release(due)
		p.mu.Unlock()
		if err != nil {
			return err
		}

		// Send: retries first, then new targets, while there is room.
		if !stopping && !aborting {
			// Emitting may have taken a while: send with a fresh clock.
			if exhausted, err = p.send(p.cfg.Now(), src, exhausted, emit); err != nil {
				return err
			}
		}
		rate.observe(now, p.stats.sent.Load(), &p.stats.rate)

		p.mu.Lock()
		p.tr.reclaim(p.e.sent, p.e.sendFailed)
		inflight := p.e.inFlight()
		pending := p.e.pending()
		queued := p.pend.count
		now = p.cfg.Now()
		wait := p.e.nextWake(now)
		if queued > 0 && p.stall == stallYoung {
			wait = min(wait, max(0, p.pend.oldest().Add(linger).Sub(now)))
		}
		p.mu.Unlock()
		if inflight == 0 && !pending && queued == 0 && (exhausted || stopping || aborting) {
			switch {
			case stopping:
				return ctx.Err()
			case aborting:
				return ErrAborted
			}
			return nil
		}
		if stopping || aborting {
			p.more, p.stall = false, stallNone
		}
		// Nothing to do right now: sleep until a deadline, a token, a
		// socket's requests due, a batch back, a finished reply or
		// cancellation.
		if wait == 0 || p.more {
			continue
		}
		if p.stall == stallTokens {
			if w := p.cfg.Limiter.wait(now); w == 0 {
				continue
			} else if w < wait {
				wait = w
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.tr.wake:
		case <-seenOr(p.abort, aborting):
		case <-seenOr(ctx.Done(), stopping):
		case t, ok := <-src.ready():
			src.hold(t, ok) // taken in the next round
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// seenOr returns ch, or nil (never ready) once what it signals has been
// seen, so the loop does not spin on it.
func seenOr(ch <-chan struct{}, seen bool) <-chan struct{} {
	if seen {
		return nil
	}
	return ch
}

// send takes what there is room for, as one round of the run loop: the
// retries that are due and new targets from the sequence go into the
// pending queue, by socket; then, as far as there are tokens (at most a
// batch's worth a round, so that the loop collects due flights between
// rounds) and room in flight, the sockets whose requests are due go out,
// each as one batch. Targets that are not sent (blocked, repeated) are
// emitted after. It reports whether the targets are exhausted, and
// emit's error.
func (p *Prober[R]) send(now time.Time, src *source, exhausted bool,
	emit func(Result[R]) error) (bool, error) {
	p.mu.Lock()
	p.tr.reclaim(p.e.sent, p.e.sendFailed)
	for f := p.e.nextRetry(); f != nil; f = p.e.nextRetry() {
		p.e.popRetry()
		p.pend.add(f.v6(), f.slot, entry[R]{f: f, gen: f.gen}, now)
	}
	// New targets. Blocked ones take no token, but a round takes at most
	// maxSkipped of them, so a blocked /8 cannot pile up results while
	// deadlines wait.
	maxSkipped := 16 * p.cfg.BatchSize
	skipped := p.skipped[:0]
	for !exhausted && p.pend.fresh < p.window && len(skipped) < maxSkipped {
		p.mu.Unlock()
		t, ok := src.next()
		p.mu.Lock()
		if !ok {
			// A feed with nothing yet is not exhausted: the loop waits
			// for it (source.ready) as for a deadline.
			exhausted = !src.empty
			break
		}
		t, h, res, ok := p.e.admit(t, now)
		if !ok {
			skipped = append(skipped, res)
			continue
		}
		v6 := t.Addr().Is6()
		if err := p.tr.open(v6); err != nil {
			// No socket: the target ends at once with the error.
			if f, res := p.e.take(t, h, now); f == nil {
				skipped = append(skipped, res)
			} else {
				p.e.failed(f, err, now)
			}
			continue
		}
		p.pend.add(v6, p.e.slotOf(h), entry[R]{t: t, h: h}, now)
	}
	// Out, socket by socket.
	want := min(p.cfg.BatchSize, p.pend.count)
	n := p.cfg.Limiter.take(now, want)
	queued := 0
	p.stall = stallNone
	for p.pend.count > 0 {
		if queued == n {
			p.stall = stallTokens
			break
		}
		room := max(0, p.cfg.Concurrency-p.e.inFlight())
		v6, slot, ok := p.pend.pick(now, exhausted, room == 0, func(v6 bool, slot int) bool { return !p.tr.canSend(v6, slot) })
		if !ok {
			p.stall = stallYoung
			if _, _, ok := p.pend.pick(now, exhausted, room == 0, func(bool, int) bool { return false }); ok {
				p.stall = stallBusy // due, but its sender has batches out
			} else if room == 0 {
				p.stall = stallRoom
			}
			break
		}
		p.batch = p.pend.take(v6, slot, min(n-queued, p.cfg.BatchSize), room, p.batch[:0])
		if len(p.batch) == 0 {
			p.stall = stallRoom // no room in flight for its new targets
			break
		}
		b := p.tr.batchFor(v6, slot)
		for _, e := range p.batch {
			f := e.f
			if f == nil {
				var res Result[R]
				if f, res = p.e.take(e.t, e.h, now); f == nil {
					skipped = append(skipped, res)
					continue
				}
			} else if !p.e.current(f, e.gen) {
				continue // it answered, or finished, while it waited
			}
			if req, attempt, ok := p.e.request(f, b.slotIn(), now); ok {
				b.commit(f, req, attempt)
				queued++
			}
		}
		p.tr.hand(v6, b)
	}
	p.cfg.Limiter.refund(n - queued)
	p.more = !exhausted && !src.empty && p.pend.fresh < p.window
	p.mu.Unlock()
	p.skipped = skipped[:0]
	for _, r := range skipped {
		if err := emit(r); err != nil {
			return exhausted, err
		}
	}
	clear(skipped)
	return exhausted, nil
}

// stall says why a round of send stopped sending.
type stall uint8

const (
	stallNone   stall = iota // nothing waits to go out
	stallTokens              // the round used its tokens, more is due: wait for a token
	stallBusy                // what is due waits for a batch to come back from its sender
	stallRoom                // what is due waits for room in flight
	stallYoung               // nothing is due yet: wait until the oldest has waited linger
)

// dropPending forgets the requests waiting to go out: the new targets
// were never taken, the retries finish as they are.
func (p *Prober[R]) dropPending() {
	p.mu.Lock()
	p.pend.clearAll(p.e.drop)
	p.mu.Unlock()
}
