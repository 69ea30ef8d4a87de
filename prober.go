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

	bucket  bucket // the Rate cap; only the run loop uses it
	busy    bool   // the last round stopped for want of a free batch
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
	p.bucket = newBucket(p.cfg.Rate, p.cfg.BatchSize)
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
func (p *Prober[R]) deliver(v6 bool, slot int, msgs []batchconn.RecvMsg, now time.Time) bool {
	wake := false
	p.mu.Lock()
	for i := range msgs {
		m := &msgs[i]
		wake = p.e.deliver(v6, slot, m.From, m.Buf[:m.N], m.Size, now) || wake
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
	defer func() {
		if r := recover(); r != nil {
			// A panic may have left p.mu held, with a receive loop
			// waiting for it: close the sockets without waiting.
			p.tr.close(false)
			panic(r)
		}
		p.tr.close(true)
	}()
	next, stop := iter.Pull(targets)
	defer stop()

	exhausted := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rate := rateMeter{}
	for {
		p.rounds++
		stopping := ctx.Err() != nil
		aborting := false
		select {
		case <-p.abort:
			aborting = true
		default:
		}
		now := p.cfg.Now()

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
			if exhausted, err = p.send(p.cfg.Now(), next, exhausted, emit); err != nil {
				return err
			}
		}
		rate.observe(now, p.stats.sent.Load(), &p.stats.rate)

		p.mu.Lock()
		p.tr.reclaim(p.e.sendFailed)
		inflight := p.e.inFlight()
		pending := p.e.pending()
		wait := p.e.nextWake(p.cfg.Now())
		if p.e.retrying() > 0 && !p.busy {
			wait = min(wait, p.bucket.wait(p.cfg.Now()))
		}
		p.mu.Unlock()
		if inflight == 0 && !pending && (exhausted || stopping || aborting) {
			switch {
			case stopping:
				return ctx.Err()
			case aborting:
				return ErrAborted
			}
			return nil
		}
		// Nothing to send right now: sleep until a deadline, a token,
		// a finished reply or cancellation.
		if wait == 0 {
			continue
		}
		roomToSend := !exhausted && !stopping && !aborting && inflight < p.cfg.Concurrency && !p.busy
		if roomToSend {
			if w := p.bucket.wait(p.cfg.Now()); w == 0 {
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

// send fills one batch, if there is room and there are tokens, and hands
// it to the sending goroutines; then it emits the targets that were not
// sent (blocked, repeated). It reports whether the targets are
// exhausted, and emit's error.
func (p *Prober[R]) send(now time.Time, next func() (netip.AddrPort, bool), exhausted bool,
	emit func(Result[R]) error) (bool, error) {
	p.mu.Lock()
	p.tr.reclaim(p.e.sendFailed)
	if p.busy = !p.tr.ready(); p.busy {
		p.mu.Unlock()
		return exhausted, nil // every batch of a socket is out: the sender wakes us
	}
	want := p.e.retrying()
	if !exhausted {
		want += max(0, p.cfg.Concurrency-p.e.inFlight())
	}
	n := p.bucket.take(now, min(p.cfg.BatchSize, want))
	queued := 0
	// Retries first.
	for queued < n {
		f := p.e.nextRetry()
		if f == nil {
			break
		}
		if !p.tr.canSend(f) {
			break // its socket's batches are out: next round
		}
		p.e.popRetry()
		p.enqueue(f, now)
		queued++
	}
	// Blocked and repeated targets take no token, but a round takes at
	// most maxSkipped of them, so a blocked /8 cannot pile up results
	// while deadlines wait.
	maxSkipped := 16 * p.cfg.BatchSize
	var skipped []Result[R]
	for queued < n && len(skipped) < maxSkipped && !exhausted && p.e.inFlight() < p.cfg.Concurrency &&
		p.tr.ready() {
		p.mu.Unlock()
		t, ok := next()
		p.mu.Lock()
		if !ok {
			exhausted = true
			break
		}
		f, res := p.e.take(t, now)
		if f == nil {
			skipped = append(skipped, res)
			continue
		}
		if err := p.tr.open(f.v6()); err != nil {
			p.e.failed(f, err, now)
			break
		}
		p.enqueue(f, now)
		queued++
	}
	p.bucket.refund(n - queued)
	// Send before emitting the skipped: the requests' deadlines were set
	// by now, and emit may take a while. One batch a round: the run loop
	// collects due flights between batches, so flights do not outlive
	// their deadlines while a long burst goes out.
	p.tr.flush()
	p.mu.Unlock()
	for _, r := range skipped {
		if err := emit(r); err != nil {
			return exhausted, err
		}
	}
	return exhausted, nil
}

// enqueue builds f's next request into its socket's batch.
func (p *Prober[R]) enqueue(f *flight[R], now time.Time) {
	if b, attempt, ok := p.e.request(f, p.tr.slotFor(f), now); ok {
		p.tr.commit(f, b, attempt)
	}
}
