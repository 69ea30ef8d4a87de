package ntpctl

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
)

// Errors of a Prober.
var (
	// ErrAborted marks the results of targets cut short by Abort.
	ErrAborted = errors.New("ntpctl: probing aborted")
	// ErrNoReply is the error of a StatusNoAnswer result.
	ErrNoReply = errors.New("ntpctl: no reply")
	// ErrBlocked is the error of a StatusBlocked result.
	ErrBlocked = errors.New("ntpctl: target blocked")
	// ErrDuplicateTarget is the error of a StatusDuplicate result.
	ErrDuplicateTarget = errors.New("ntpctl: target already in flight")
	// ErrRunning reports a second Run of a Prober.
	ErrRunning = errors.New("ntpctl: prober already running")
)

// Config configures a Prober. The zero value works; each field says what
// its zero value means.
type Config struct {
	// Rate caps the requests sent per second, retries included; tokens are
	// taken per batch, with bursts of at most 1% of a second's worth.
	// 0 means no cap.
	Rate int
	// BatchSize is the most datagrams per sendmmsg/recvmmsg call; 0 means
	// 64.
	BatchSize int
	// Concurrency caps the targets in flight (sent, not yet finished); it
	// bounds the prober's memory. 0 means 4096.
	Concurrency int
	// Timeout is how long to wait for a first reply after a request; 0
	// means 2 s.
	Timeout time.Duration
	// Quiet is how long to wait for more of a multi-datagram reply after
	// its last datagram; 0 means 500 ms.
	Quiet time.Duration
	// MaxDuration caps how long a target may keep sending once it has
	// answered, so a server that drips datagrams just inside Quiet cannot
	// hold a place in flight; a target cut off by it is finished with
	// what it sent and counted in Stats.OverCap. 0 means 10 s.
	MaxDuration time.Duration
	// Retries is the number of extra requests sent to a silent target;
	// 0 means none.
	Retries int
	// RetryInterval is the wait before a silent target is asked again;
	// 0 means Timeout.
	RetryInterval time.Duration
	// MaxPackets and MaxBytes cap the datagrams and UDP payload octets
	// taken from one target; a target that reaches a cap is finished at
	// once and the rest is dropped. 0 means 256 datagrams and 128 KiB.
	MaxPackets, MaxBytes int
	// Senders is the number of sockets, each with its own sending
	// goroutine, per address family: sendmmsg calls then run on that many
	// cores at once, while the run loop prepares the next batches (under
	// a Rate cap a socket has one batch out at a time, so that requests
	// leave when their tokens say). 0 means 1; about one per core is the
	// most that helps.
	Senders int
	// ReadBuffer and WriteBuffer size the sockets' kernel buffers; 0
	// means 4 MiB.
	ReadBuffer, WriteBuffer int
	// LocalAddr4 and LocalAddr6 are the local addresses to send from; the
	// zero Addr means any.
	LocalAddr4, LocalAddr6 netip.Addr
	// Port is used for targets whose port is 0; 0 means 123.
	Port uint16
	// Blocklist decides which targets may be probed; nil means the zero
	// Blocklist (IANA special-purpose ranges and loopback blocked).
	Blocklist *Blocklist
	// ListenUDP opens the sockets, Senders "udp4" and Senders "udp6"
	// ones per prober when targets of that family appear; nil means net.ListenUDP on the
	// local address. Tests use it to open sockets in a network namespace.
	ListenUDP func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)
	// Now is the clock for timeouts and RTTs; nil means time.Now.
	Now func() time.Time
	// Seed is secret material for the per-target Mode 6 sequence
	// numbers, so that stale or spoofed replies do not match: up to 16
	// octets are used (longer seeds are folded in). nil means 16 random
	// octets per Prober. The hash also takes a random per-Prober seed, so
	// equal Seeds do not give equal sequence numbers in two Probers.
	Seed []byte
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BatchSize, 64)
	def(&c.Senders, 1)
	def(&c.Concurrency, 4096)
	def(&c.MaxPackets, 256)
	def(&c.MaxBytes, 128<<10)
	def(&c.ReadBuffer, 4<<20)
	def(&c.WriteBuffer, 4<<20)
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Quiet <= 0 {
		c.Quiet = 500 * time.Millisecond
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = c.Timeout
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Port == 0 {
		c.Port = 123
	}
	if c.Blocklist == nil {
		c.Blocklist = &Blocklist{}
	}
	if c.ListenUDP == nil {
		c.ListenUDP = net.ListenUDP
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Stats are a Prober's counters. They may be read while it runs.
type Stats struct {
	Targets    uint64  // targets taken from the sequence
	Blocked    uint64  // targets the blocklist refused
	Repeated   uint64  // targets not sent because the same target was in flight
	Sent       uint64  // request datagrams sent
	SendErrors uint64  // requests the kernel refused
	Retried    uint64  // requests that were retries
	Received   uint64  // datagrams received
	Matched    uint64  // datagrams taken into a reply
	Duplicates uint64  // datagrams repeating part of a reply
	Unmatched  uint64  // datagrams from no target in flight, or answering another request
	Malformed  uint64  // datagrams from a target that did not decode
	Dropped    uint64  // datagrams that contradicted a reply or exceeded an assembler's caps
	Late       uint64  // datagrams from a target already finished
	RecvErrors uint64  // socket read errors (ICMP errors reported on the socket, say)
	OverCap    uint64  // targets finished because they reached MaxPackets or MaxBytes
	Answered   uint64  // targets finished with at least one reply datagram
	TimedOut   uint64  // targets finished without a reply
	Finished   uint64  // results emitted
	InFlight   uint64  // targets sent to and not yet finished
	SendRate   float64 // requests per second over the last second or so
}

type counters struct {
	targets, blocked, repeated, recvErrors, sent, sendErrors, retried, received, matched, duplicates,
	unmatched, malformed, dropped, late, overCap, answered, timedOut, finished, inFlight atomic.Uint64
	rate atomic.Uint64 // float64 bits
}

// flight is one target in flight.
type flight[R any] struct {
	target   netip.AddrPort
	hash     uint64 // keyed hash of target: its sequence number and its recent-set slot
	seq      uint16
	asm      Assembler[R]
	asmReset bool // reset for this target (on the first datagram: most never answer)
	sock     *socket[R]
	attempts int
	reqLen   int
	first    time.Time // first request
	sentAt   time.Time // last request
	answered time.Time // first reply datagram
	rtt      time.Duration
	deadline time.Time // when to look at the flight again
	gen      uint32    // timer entries carrying another gen are stale
	inHeap   bool      // a quiet timer is pending
	ready    bool      // queued in p.ready
	packets  int
	bytes    int
	done     bool // reply finished or capped: finish at once
	aborted  bool // cut short by Abort
	sendErr  error
}

// timer is a deadline for a flight; it is stale when the flight's gen has
// moved on (resent, or recycled).
type timer[R any] struct {
	f   *flight[R]
	gen uint32
	at  time.Time
}

func (t timer[R]) stale() bool { return t.f.gen != t.gen }

// fifo holds timers whose deadlines come in the order they were added
// (a fixed delay after a send): O(1) where a heap would be O(log n).
type fifo[R any] struct {
	buf        []timer[R]
	head, size int
}

func (q *fifo[R]) push(t timer[R], keep int) {
	if q.size == len(q.buf) && q.size >= keep {
		q.compact() // timers of recycled or answered flights pile up with rate × timeout
	}
	if q.size == len(q.buf) {
		nb := make([]timer[R], max(64, 2*len(q.buf)))
		for i := range q.size {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = t
	q.size++
}

// compact drops the timers that can no longer fire: stale ones and those
// of flights that have answered (their quiet timers rule). Order is kept.
func (q *fifo[R]) compact() {
	n := 0
	for i := range q.size {
		t := q.buf[(q.head+i)%len(q.buf)]
		if t.stale() || t.f.packets > 0 || t.f.done {
			continue
		}
		q.buf[(q.head+n)%len(q.buf)] = t
		n++
	}
	for i := n; i < q.size; i++ {
		q.buf[(q.head+i)%len(q.buf)] = timer[R]{}
	}
	q.size = n
}

func (q *fifo[R]) peek() (timer[R], bool) {
	if q.size == 0 {
		return timer[R]{}, false
	}
	return q.buf[q.head], true
}

func (q *fifo[R]) pop() {
	q.buf[q.head] = timer[R]{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
}

// quietHeap holds the quiet timers of flights that have answered, at most
// one per flight: a flight whose deadline moved on is pushed again when
// its old timer pops. It is a binary min-heap by deadline, written out so
// that pushes do not box timers in interfaces.
type quietHeap[R any] []timer[R]

func (h *quietHeap[R]) push(t timer[R]) {
	*h = append(*h, t)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q[i].at.Before(q[parent].at) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *quietHeap[R]) pop() timer[R] {
	q := *h
	t := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = timer[R]{}
	q = q[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(q) && q[l].at.Before(q[small].at) {
			small = l
		}
		if r := l + 1; r < len(q) && q[r].at.Before(q[small].at) {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return t
}

// batch is one sendmmsg call's worth of requests, with the flight (and
// its gen) of each.
type batch[R any] struct {
	msgs    []batchconn.Message
	addrs   []net.UDPAddr
	ips     [][16]byte
	bufs    [][]byte
	flights []*flight[R]
	gens    []uint32
	n       int
	failed  []batchconn.Failure
}

func newBatch[R any](size int) *batch[R] {
	b := &batch[R]{msgs: make([]batchconn.Message, size), addrs: make([]net.UDPAddr, size),
		ips: make([][16]byte, size), bufs: make([][]byte, size), flights: make([]*flight[R], size),
		gens: make([]uint32, size)}
	for j := range b.msgs {
		b.bufs[j] = make([]byte, 0, 512)
		b.msgs[j].Buffers = [][]byte{b.bufs[j]}
		b.msgs[j].Addr = &b.addrs[j]
	}
	return b
}

// socket is one UDP socket with its sending goroutine and receive loop.
// It has two batches: while the sending goroutine sends one, the run
// loop fills the other.
type socket[R any] struct {
	conn *batchconn.Conn
	v6   bool
	cur  *batch[R]   // being filled; nil when none is free
	idle []*batch[R] // free batches
	work chan *batch[R]
	done chan *batch[R]
	// maxOut is the most batches handed to the sending goroutine at once:
	// 2, or 1 under a rate cap, where a batch that waits behind another
	// would go out later than its tokens say and bunch up with the next.
	maxOut int
}

// ready reports whether a request can be queued on s this round.
func (s *socket[R]) ready() bool {
	held := len(s.idle) // batches the run loop holds; the others are out
	if s.cur != nil {
		held++
	}
	return 2-held < s.maxOut
}

// Prober sends one Probe to very many targets over batched UDP and turns
// what comes back into one Result per target. Create it with NewProber;
// a Prober runs once.
type Prober[R any] struct {
	cfg   Config
	probe Probe[R]
	seed  maphash.Seed
	key   [16]byte

	mu       sync.Mutex
	flights  flightMap[R]
	timeouts fifo[R] // after the last attempt
	retries  fifo[R] // after an attempt with retries left
	quiet    quietHeap[R]
	ready    []*flight[R] // finished replies and capped targets
	free     []*flight[R]
	retry    []timer[R] // silent flights to ask again; stale entries are skipped
	recent   recentSet
	due      []*flight[R]
	socks    [2][]*socket[R] // udp4, udp6: Senders each once opened
	next     [2]int          // round-robin among a family's sockets
	busy     bool            // the last round stopped for want of a free batch
	bucket   bucket

	stats   counters
	rounds  int // loop iterations of Run, for tests of idle wakeups
	running atomic.Bool
	abort   chan struct{}
	aborted sync.Once
	wake    chan struct{}
	wg      sync.WaitGroup
}

// NewProber returns a Prober that sends probe with cfg.
func NewProber[R any](cfg Config, probe Probe[R]) (*Prober[R], error) {
	if probe == nil {
		return nil, errors.New("ntpctl: nil probe")
	}
	p := &Prober[R]{
		cfg:     cfg.withDefaults(),
		probe:   probe,
		seed:    maphash.MakeSeed(),
		flights: newFlightMap[R](min(cfg.withDefaults().Concurrency, 1<<16)),
		recent:  newRecentSet(1 << 14),
		abort:   make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	if len(cfg.Seed) > 0 {
		for i := range p.key {
			p.key[i] = byte(i)
		}
		for i, c := range cfg.Seed {
			p.key[i%len(p.key)] ^= c
		}
	} else {
		_, _ = rand.Read(p.key[:])
	}
	p.bucket = newBucket(p.cfg.Rate, p.cfg.BatchSize)
	return p, nil
}

// Seq returns the sequence number the prober uses for target: a keyed
// hash, unpredictable without the prober's secret.
func (p *Prober[R]) Seq(target netip.AddrPort) uint16 { return uint16(p.hash(target) >> 48) }

// Stats returns the counters so far; it is safe to call during Run.
func (p *Prober[R]) Stats() Stats {
	c := &p.stats
	return Stats{
		Targets: c.targets.Load(), Blocked: c.blocked.Load(), Repeated: c.repeated.Load(),
		RecvErrors: c.recvErrors.Load(), Sent: c.sent.Load(),
		SendErrors: c.sendErrors.Load(), Retried: c.retried.Load(), Received: c.received.Load(),
		Matched: c.matched.Load(), Duplicates: c.duplicates.Load(), Unmatched: c.unmatched.Load(),
		Malformed: c.malformed.Load(), Dropped: c.dropped.Load(), Late: c.late.Load(),
		OverCap: c.overCap.Load(), Answered: c.answered.Load(), TimedOut: c.timedOut.Load(),
		Finished: c.finished.Load(), InFlight: c.inFlight.Load(),
		SendRate: mathFloat(c.rate.Load()),
	}
}

// Abort makes a running Run finish every target in flight at once, with
// what it has, and return. It is for a second interrupt: the first one
// cancels Run's context, which stops sending and lets the targets in
// flight finish within their timeouts. Abort before Run makes Run return
// ErrAborted without taking a target.
func (p *Prober[R]) Abort() { p.aborted.Do(func() { close(p.abort) }) }

// Run probes every target and calls emit exactly once for each, from the
// goroutine that called Run, in the order the targets finish. Targets are
// taken from the sequence only when there is room in flight. A target
// whose port is 0 gets Config.Port.
//
// When ctx is done Run stops taking targets and sending, lets the targets
// in flight finish within their timeouts (or at once after Abort), emits
// them, and returns ctx's error. When emit returns an error Run stops at
// once and returns it; the targets in flight are then not emitted. A
// Prober runs once.
//
// Run pulls targets on its own goroutine, between deadlines: a sequence
// that blocks (a channel waiting for a producer, say) holds up timeouts,
// results and cancellation until it yields, so it should yield promptly
// or end.
func (p *Prober[R]) Run(ctx context.Context, targets iter.Seq[netip.AddrPort], emit func(Result[R]) error) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer func() {
		if r := recover(); r != nil {
			// A panic may have left p.mu held, with a receive loop
			// waiting for it: close the sockets without waiting.
			p.closeSockets(false)
			panic(r)
		}
		p.closeSockets(true)
	}()
	next, stop := iter.Pull(targets)
	defer stop()

	exhausted := false
	var emitErr error
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
		p.collectDue(now, stopping, aborting)
		due := p.due
		p.due = nil
		p.mu.Unlock()
		for _, f := range due {
			if emitErr == nil {
				emitErr = emit(p.result(f))
			}
		}
		p.release(due)
		if emitErr != nil {
			return emitErr
		}

		// Send: retries first, then new targets, while there is room.
		if !stopping && !aborting {
			// Emitting may have taken a while: send with a fresh clock.
			exhausted = p.send(p.cfg.Now(), next, exhausted, emit, &emitErr)
			if emitErr != nil {
				return emitErr
			}
		}
		rate.observe(now, p.stats.sent.Load(), &p.stats.rate)

		p.mu.Lock()
		p.reclaim()
		inflight := p.flights.len() + len(p.due)
		wait := p.nextWake(p.cfg.Now())
		p.mu.Unlock()
		if inflight == 0 && (exhausted || stopping || aborting) {
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
		case <-p.wake:
		case <-abortChan(p.abort, aborting):
		case <-ctxDone(ctx, stopping):
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// ctxDone returns ctx.Done(), or nil (never ready) once cancellation has
// been seen, so the loop does not spin on it.
func ctxDone(ctx context.Context, seen bool) <-chan struct{} {
	if seen {
		return nil
	}
	return ctx.Done()
}

// abortChan is ctxDone for the abort channel.
func abortChan(ch chan struct{}, seen bool) <-chan struct{} {
	if seen {
		return nil
	}
	return ch
}

// nextWake returns how long until the earliest deadline (at most 250 ms),
// or until a token for a waiting retry.
func (p *Prober[R]) nextWake(now time.Time) time.Duration {
	if len(p.due) > 0 || len(p.ready) > 0 {
		return 0
	}
	wait := 250 * time.Millisecond
	if len(p.retry) > 0 && !p.busy {
		wait = min(wait, p.bucket.wait(now))
	}
	for _, q := range []*fifo[R]{&p.timeouts, &p.retries} {
		if t, ok := q.peek(); ok {
			wait = min(wait, t.at.Sub(now))
		}
	}
	if len(p.quiet) > 0 {
		wait = min(wait, p.quiet[0].at.Sub(now))
	}
	return max(wait, 0)
}

// collectDue moves finished flights to p.due and queues retries. With
// stopping set, no retry is queued; with aborting set, every flight is
// finished.
func (p *Prober[R]) collectDue(now time.Time, stopping, aborting bool) {
	if aborting {
		var all []*flight[R]
		p.flights.all(func(f *flight[R]) bool { all = append(all, f); return true })
		for _, f := range all {
			p.finish(f, !f.done) // a complete reply waiting in p.ready was not cut short
		}
		p.ready, p.retry, p.quiet = p.ready[:0], p.retry[:0], p.quiet[:0]
		p.timeouts, p.retries = fifo[R]{}, fifo[R]{}
		return
	}
	for _, f := range p.ready {
		f.ready = false
		if f.done {
			p.finish(f, false)
		}
	}
	p.ready = p.ready[:0]
	// Send timers: silent flights get another attempt or finish.
	for _, q := range []*fifo[R]{&p.timeouts, &p.retries} {
		for {
			t, ok := q.peek()
			if !ok || t.at.After(now) {
				break
			}
			q.pop()
			f := t.f
			if t.stale() || f.packets > 0 || f.done {
				continue // resent, recycled, or answering: another timer rules
			}
			if f.sendErr == nil && f.attempts <= p.cfg.Retries && !stopping {
				p.retry = append(p.retry, timer[R]{f: f, gen: f.gen}) // silent so far: ask again
				continue
			}
			p.finish(f, false)
		}
	}
	// Quiet timers: answered flights whose reply went quiet.
	for len(p.quiet) > 0 && !p.quiet[0].at.After(now) {
		t := p.quiet.pop()
		f := t.f
		if t.stale() {
			continue
		}
		f.inHeap = false
		if f.done {
			continue // finished through p.ready
		}
		if f.deadline.After(now) {
			f.inHeap = true // more arrived since: wait on
			p.quiet.push(timer[R]{f, f.gen, f.deadline})
			continue
		}
		if !f.answered.Add(p.cfg.MaxDuration).After(now) {
			p.stats.overCap.Add(1) // still dripping when MaxDuration ran out
		}
		p.finish(f, false)
	}
	if stopping {
		for _, t := range p.retry {
			if f := t.f; !t.stale() && !f.done && f.packets == 0 {
				p.finish(f, false) // answered ones finish by their quiet timers
			}
		}
		p.retry = p.retry[:0]
	}
}

// finish takes f out of flight; its result is emitted from p.due. Its
// timers become stale.
func (p *Prober[R]) finish(f *flight[R], aborted bool) {
	p.flights.remove(f)
	p.recent.add(f.target, f.hash)
	f.gen++
	f.done = true
	f.aborted = aborted
	p.due = append(p.due, f)
	p.stats.inFlight.Add(^uint64(0))
}

// result builds the Result of a finished flight.
func (p *Prober[R]) result(f *flight[R]) Result[R] {
	r := Result[R]{Target: f.target, Time: f.first, Attempts: f.attempts, RTT: f.rtt,
		Packets: f.packets, Bytes: f.bytes, RequestBytes: f.reqLen}
	switch {
	case f.packets > 0:
		r.Value, r.Status, r.Err = f.asm.Result()
		p.stats.answered.Add(1)
	case f.sendErr != nil:
		r.Status, r.Err = StatusSendError, f.sendErr
	default:
		r.Status, r.Err = StatusNoAnswer, ErrNoReply
		p.stats.timedOut.Add(1)
	}
	if f.aborted {
		r.Err = errors.Join(r.Err, ErrAborted)
	}
	p.stats.finished.Add(1)
	return r
}

// release returns finished flights to the pool, and the slice for reuse
// as p.due.
func (p *Prober[R]) release(fs []*flight[R]) {
	for _, f := range fs {
		asm, gen := f.asm, f.gen+1
		*f = flight[R]{asm: asm, gen: gen}
	}
	p.mu.Lock()
	p.free = append(p.free, fs...)
	if p.due == nil {
		clear(fs)
		p.due = fs[:0]
	}
	p.mu.Unlock()
}

// send fills and sends one batch, if there is room and there are tokens.
// It reports whether the targets are exhausted.
func (p *Prober[R]) send(now time.Time, next func() (netip.AddrPort, bool), exhausted bool,
	emit func(Result[R]) error, emitErr *error) bool {
	{
		p.mu.Lock()
		p.reclaim()
		if p.busy = !p.socketsReady(); p.busy {
			p.mu.Unlock()
			return exhausted // every batch of a socket is out: the sender wakes us
		}
		want := len(p.retry)
		if !exhausted {
			want += max(0, p.cfg.Concurrency-p.flights.len())
		}
		if want == 0 {
			p.mu.Unlock()
			return exhausted
		}
		n := p.bucket.take(now, min(p.cfg.BatchSize, want))
		if n == 0 {
			p.mu.Unlock()
			return exhausted
		}
		queued := 0
		// Retries first, of flights still silent: one that answered while
		// it waited here finishes by its quiet timer, one that finished
		// (and may have been recycled) has moved to another gen.
		for queued < n && len(p.retry) > 0 {
			t := p.retry[len(p.retry)-1]
			p.retry = p.retry[:len(p.retry)-1]
			if t.stale() || t.f.done || t.f.packets > 0 {
				continue
			}
			if !t.f.sock.ready() {
				p.retry = append(p.retry, t) // its socket's batches are out: next round
				break
			}
			p.queue(t.f, now)
			p.stats.retried.Add(1)
			queued++
		}
		// Blocked and repeated targets take no token, but a round takes at
		// most maxSkipped of them, so a blocked /8 cannot pile up results
		// while deadlines wait.
		maxSkipped := 16 * p.cfg.BatchSize
		var blocked []Result[R]
		for queued < n && len(blocked) < maxSkipped && !exhausted && p.flights.len() < p.cfg.Concurrency &&
			p.socketsReady() {
			p.mu.Unlock()
			t, ok := next()
			p.mu.Lock()
			if !ok {
				exhausted = true
				break
			}
			p.stats.targets.Add(1)
			if t.Port() == 0 {
				t = netip.AddrPortFrom(t.Addr(), p.cfg.Port)
			}
			t = netip.AddrPortFrom(t.Addr().Unmap(), t.Port())
			if why := p.cfg.Blocklist.Reason(t.Addr()); why != "" {
				p.stats.blocked.Add(1)
				blocked = append(blocked, Result[R]{Target: t, Status: StatusBlocked, Time: now,
					Err: fmt.Errorf("%w: %s", ErrBlocked, why)})
				continue
			}
			h := p.hash(t)
			if p.flights.get(t, h) != nil {
				// The same target twice in flight would share replies:
				// probe it once and report the repeat.
				p.stats.repeated.Add(1)
				blocked = append(blocked, Result[R]{Target: t, Status: StatusDuplicate, Time: now,
					Err: ErrDuplicateTarget})
				continue
			}
			f := p.newFlight(t, h)
			if f == nil {
				break // the socket could not be opened: already reported
			}
			p.queue(f, now)
			queued++
		}
		p.bucket.refund(n - queued)
		p.mu.Unlock()
		// Send before emitting the blocked: the requests' deadlines were
		// set by now, and emit may take a while.
		p.flush()
		for _, r := range blocked {
			if *emitErr == nil {
				*emitErr = emit(r)
			}
			p.stats.finished.Add(1)
		}
		// One batch a round: the run loop collects due flights between
		// batches, so flights do not outlive their deadlines while a long
		// burst goes out.
		return exhausted
	}
}

// newFlight registers a flight for t, opening its family's socket on
// first use. It returns nil when the socket cannot be opened, after
// queueing the target's send-error result.
func (p *Prober[R]) newFlight(t netip.AddrPort, h uint64) *flight[R] {
	var f *flight[R]
	if len(p.free) == 0 {
		// Allocate flights in slabs; they return to the free list.
		slab := make([]flight[R], 256)
		for i := range slab {
			p.free = append(p.free, &slab[i])
		}
	}
	f = p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	if f.asm == nil {
		f.asm = p.probe.NewAssembler()
	}
	f.target, f.hash = t, h
	f.seq = uint16(h >> 48)
	s, err := p.socketFor(t.Addr().Is6())
	p.flights.put(f)
	p.stats.inFlight.Add(1)
	if err != nil {
		f.sendErr = err
		f.first = p.cfg.Now()
		p.finish(f, false)
		return nil
	}
	f.sock = s
	return f
}

// queue builds f's request into its socket's batch and sets its
// deadline. The caller has checked that the socket has a batch; a round
// queues at most one batch in all, so a batch never runs out of room.
func (p *Prober[R]) queue(f *flight[R], now time.Time) {
	s := f.sock
	if s.cur == nil {
		s.cur = s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
	}
	bt := s.cur
	i := bt.n
	b, err := p.probe.AppendRequest(bt.bufs[i][:0], f.target, f.seq)
	f.attempts++
	if f.first.IsZero() {
		f.first = now
	}
	f.sentAt = now
	if err != nil {
		f.sendErr = fmt.Errorf("ntpctl: building the request: %w", err)
		p.markReady(f)
		return
	}
	f.reqLen = len(b)
	bt.bufs[i] = b
	bt.msgs[i].Buffers[0] = b
	bt.ips[i] = f.target.Addr().As16()
	if s.v6 {
		bt.addrs[i].IP = bt.ips[i][:]
	} else {
		bt.addrs[i].IP = bt.ips[i][12:16]
	}
	bt.addrs[i].Port = int(f.target.Port())
	f.gen++ // the timers of earlier attempts are stale
	f.inHeap = false
	bt.flights[i], bt.gens[i] = f, f.gen
	bt.n++
	if f.attempts <= p.cfg.Retries {
		f.deadline = now.Add(p.cfg.RetryInterval)
		p.retries.push(timer[R]{f, f.gen, f.deadline}, 4*p.cfg.Concurrency)
	} else {
		f.deadline = now.Add(p.cfg.Timeout)
		p.timeouts.push(timer[R]{f, f.gen, f.deadline}, 4*p.cfg.Concurrency)
	}
}

// markReady queues f to finish at the next collection.
func (p *Prober[R]) markReady(f *flight[R]) {
	f.done = true
	if !f.ready {
		f.ready = true
		p.ready = append(p.ready, f)
	}
}

// flush hands every socket's filled batch to its sending goroutine.
// Only the run loop touches batches it has not handed over.
func (p *Prober[R]) flush() {
	for _, fam := range p.socks {
		for _, s := range fam {
			if s.cur != nil && s.cur.n > 0 {
				s.work <- s.cur // room for both batches: never blocks
				s.cur = nil
			}
		}
	}
}

// reclaim takes back the batches the sending goroutines are done with. A
// request the kernel refused finishes its flight with a send error,
// unless the flight has moved on since or is answering.
func (p *Prober[R]) reclaim() {
	for _, fam := range p.socks {
		for _, s := range fam {
			for {
				var bt *batch[R]
				select {
				case bt = <-s.done:
				default:
				}
				if bt == nil {
					break
				}
				for _, fl := range bt.failed {
					// A flight that has started to answer (an earlier
					// attempt's reply) finishes by its quiet timer.
					f := bt.flights[fl.Index]
					if f.gen != bt.gens[fl.Index] || f.done || f.packets > 0 {
						continue
					}
					if transient(fl.Err) && f.attempts <= p.cfg.Retries {
						// A full queue now says nothing about the
						// target: its retry timer asks again.
						continue
					}
					f.sendErr = fmt.Errorf("ntpctl: sending the request: %w", fl.Err)
					p.markReady(f)
				}
				clear(bt.flights[:bt.n])
				bt.n, bt.failed = 0, bt.failed[:0]
				s.idle = append(s.idle, bt)
			}
		}
	}
}

// transient reports whether a send error says only that the host is busy
// (a full queue or socket buffer), so a later attempt may go out.
func transient(err error) bool {
	return errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOMEM)
}

// socketsReady reports whether every open socket can take a request.
func (p *Prober[R]) socketsReady() bool {
	for _, fam := range p.socks {
		for _, s := range fam {
			if !s.ready() {
				return false
			}
		}
	}
	return true
}

// sender sends the batches handed to s until its work channel closes.
func (p *Prober[R]) sender(s *socket[R]) {
	defer p.wg.Done()
	for bt := range s.work {
		n, failed, _ := s.conn.WriteBatchFailed(bt.msgs[:bt.n], bt.failed[:0])
		bt.failed = failed
		p.stats.sent.Add(uint64(n))
		for _, fl := range failed {
			// A batch that meets the socket closed by Run's end was
			// not refused by the kernel.
			if !errors.Is(fl.Err, net.ErrClosed) {
				p.stats.sendErrors.Add(1)
			}
		}
		s.done <- bt
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// socketFor returns the next socket of a family, round-robin, opening
// the family's Senders sockets with their goroutines on first use.
func (p *Prober[R]) socketFor(v6 bool) (*socket[R], error) {
	i := 0
	if v6 {
		i = 1
	}
	if p.socks[i] == nil {
		network, local := "udp4", p.cfg.LocalAddr4
		if v6 {
			network, local = "udp6", p.cfg.LocalAddr6
		}
		var la *net.UDPAddr
		if local.IsValid() {
			la = &net.UDPAddr{IP: local.AsSlice()}
		}
		// The sockets go into p.socks as they open, so that closeSockets
		// reaches them should ListenUDP panic halfway.
		p.socks[i] = make([]*socket[R], 0, p.cfg.Senders)
		for range p.cfg.Senders {
			c, err := p.cfg.ListenUDP(network, la)
			if err != nil {
				for _, s := range p.socks[i] {
					close(s.work)
					_ = s.conn.Close()
				}
				p.socks[i] = nil
				return nil, fmt.Errorf("ntpctl: opening the %s socket: %w", network, err)
			}
			_ = c.SetReadBuffer(p.cfg.ReadBuffer)
			_ = c.SetWriteBuffer(p.cfg.WriteBuffer)
			s := &socket[R]{conn: batchconn.New(c), v6: v6,
				idle: []*batch[R]{newBatch[R](p.cfg.BatchSize), newBatch[R](p.cfg.BatchSize)},
				work: make(chan *batch[R], 2), done: make(chan *batch[R], 2), maxOut: 2}
			if p.cfg.Rate > 0 {
				s.maxOut = 1
			}
			p.socks[i] = append(p.socks[i], s)
			p.wg.Add(2)
			go p.sender(s)
			go p.receive(s)
		}
	}
	s := p.socks[i][p.next[i]]
	p.next[i] = (p.next[i] + 1) % len(p.socks[i])
	return s, nil
}

// closeSockets closes the sockets, which ends the receive loops, and
// with wait set waits for them.
func (p *Prober[R]) closeSockets(wait bool) {
	for _, fam := range p.socks {
		for _, s := range fam {
			close(s.work)
			_ = s.conn.Close()
		}
	}
	if wait {
		p.wg.Wait()
	}
}

// receive reads datagrams until the socket closes, handing each to its
// target's assembler.
func (p *Prober[R]) receive(s *socket[R]) {
	defer p.wg.Done()
	rd := s.conn.NewReader(p.cfg.BatchSize)
	msgs := rd.Msgs()
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	backoff := time.Duration(0)
	for {
		n, err := rd.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP error reported on the socket, say: read on at once;
			// an error that persists backs off up to 100 ms a read.
			p.stats.recvErrors.Add(1)
			if backoff > 0 {
				time.Sleep(backoff)
			}
			backoff = min(max(2*backoff, 100*time.Microsecond), 100*time.Millisecond)
			continue
		}
		backoff = 0
		now := p.cfg.Now()
		wake := false
		p.mu.Lock()
		for i := range n {
			m := &msgs[i]
			p.stats.received.Add(1)
			wake = p.deliver(s, m.From, m.Buf[:m.N], m.Size, now) || wake
		}
		p.mu.Unlock()
		if wake {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
}

// deliver gives one datagram, read on socket s, to its flight; size is
// the datagram's full length (b may be cut short). It reports whether the
// flight became due.
func (p *Prober[R]) deliver(s *socket[R], src netip.AddrPort, b []byte, size int, now time.Time) bool {
	h := p.hash(src)
	f := p.flights.get(src, h)
	if f != nil && f.sock != s {
		f = nil // not where its request went from
	}
	if f == nil || f.done {
		if f != nil || p.recent.has(src, h) {
			p.stats.late.Add(1)
		} else {
			p.stats.unmatched.Add(1)
		}
		return false
	}
	if !f.asmReset {
		f.asm.Reset(f.target, f.seq)
		f.asmReset = true
	}
	class, done := f.asm.Add(b)
	switch class {
	case Unmatched:
		p.stats.unmatched.Add(1)
		return false
	case Accepted:
		p.stats.matched.Add(1)
	case Duplicate:
		p.stats.duplicates.Add(1)
	case Malformed:
		p.stats.malformed.Add(1)
	case Dropped:
		p.stats.dropped.Add(1)
	}
	if f.packets == 0 {
		f.rtt = now.Sub(f.sentAt)
		f.answered = now
	}
	f.packets++
	f.bytes += size
	switch {
	case f.packets >= p.cfg.MaxPackets || f.bytes >= p.cfg.MaxBytes:
		p.stats.overCap.Add(1)
		p.markReady(f)
		return true
	case done:
		p.markReady(f)
		return true
	}
	f.deadline = now.Add(p.cfg.Quiet)
	if limit := f.answered.Add(p.cfg.MaxDuration); limit.Before(now) {
		p.stats.overCap.Add(1) // dripping past MaxDuration: cut off
		p.markReady(f)
		return true
	} else if limit.Before(f.deadline) {
		f.deadline = limit
	}
	if !f.inHeap {
		f.inHeap = true
		p.quiet.push(timer[R]{f, f.gen, f.deadline})
	}
	return false
}

// hash is a keyed 64-bit hash of a target: the secret key, address and
// port.
func (p *Prober[R]) hash(t netip.AddrPort) uint64 {
	var h maphash.Hash
	h.SetSeed(p.seed)
	var buf [16 + 16 + 2]byte
	copy(buf[:16], p.key[:])
	a := t.Addr().As16()
	copy(buf[16:32], a[:])
	binary.BigEndian.PutUint16(buf[32:], t.Port())
	_, _ = h.Write(buf[:])
	return h.Sum64()
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
