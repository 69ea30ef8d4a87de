package ntpctl

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
)

// transport moves a Prober's datagrams. Per address family it opens a pool
// of Config.Sockets UDP sockets, each on its own random port (the kernel's
// ephemeral port choice), so that a forged reply must also guess which
// port its target's request left from; Config.Senders goroutines send
// batches of requests with sendmmsg, each socket served by one of them;
// and one goroutine reads every socket of the family (an epoll-based
// Poller on Linux, a goroutine per socket elsewhere). It knows nothing
// of flights beyond carrying them in batches: what it receives goes to
// the deliver function, and what the kernel refused comes back through
// reclaim.
//
// The run loop calls every method but the goroutines' under the Prober's
// lock; deliver is called from the receive goroutines, which take the
// lock themselves.
type transport[R any] struct {
	cfg   *Config
	stats *counters
	fams  [2]*family[R] // udp4, udp6, once opened
	errs  [2]error      // why a family could not be opened: sticky
	wake  chan struct{} // a batch came back, or a flight finished
	wg    sync.WaitGroup
	shut  bool // closed
	// deliver hands received datagrams to the engine: msgs[i] arrived on
	// the socket slots[i] of the family v6 says. It reports whether the
	// run loop should wake.
	deliver func(v6 bool, msgs []batchconn.RecvMsg, slots []int, now time.Time) bool
}

// family is one address family's sockets, senders and batches.
type family[R any] struct {
	v6      bool
	socks   []*batchconn.Conn
	senders []*sender[R]
	free    []*batch[R] // batches the run loop may fill
	made    int         // batches made, free or out
	poller  *batchconn.Poller
}

// sender is one sending goroutine.
type sender[R any] struct {
	work chan *batch[R]
	done chan *batch[R]
	out  int // batches handed over and not back
}

// batch is one sendmmsg call's worth of requests to one socket, with the
// flight (and attempt) of each.
type batch[R any] struct {
	slot    int
	msgs    []batchconn.Message
	addrs   []net.UDPAddr
	ips     [][16]byte
	bufs    [][]byte
	flights []*flight[R]
	gens    []uint32
	n       int
	failed  []batchconn.Failure
	at      time.Time // when the sender's call returned
}

func newBatch[R any](size int) *batch[R] {
	b := &batch[R]{msgs: make([]batchconn.Message, size), addrs: make([]net.UDPAddr, size),
		ips: make([][16]byte, size), bufs: make([][]byte, size), flights: make([]*flight[R], size),
		gens: make([]uint32, size)}
	// One slab for the request buffers and one for the messages' buffer
	// lists: a batch costs a handful of allocations, not two per message.
	const reqCap = 128
	slab := make([]byte, size*reqCap)
	lists := make([][]byte, size)
	for j := range b.msgs {
		b.bufs[j] = slab[j*reqCap : j*reqCap : (j+1)*reqCap]
		lists[j] = b.bufs[j]
		b.msgs[j].Buffers = lists[j : j+1 : j+1]
		b.msgs[j].Addr = &b.addrs[j]
	}
	return b
}

// full reports whether the batch has no room left.
func (b *batch[R]) full() bool { return b.n == len(b.msgs) }

func newTransport[R any](cfg *Config, stats *counters) *transport[R] {
	return &transport[R]{cfg: cfg, stats: stats, wake: make(chan struct{}, 1)}
}

func family4or6(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// maxBatches bounds the batches of a family: two per sender in flight,
// and enough for a round's worth of sockets.
func (t *transport[R]) maxBatches() int { return 2*t.cfg.Senders + t.cfg.BatchSize }

// open opens a family's sockets and starts its goroutines, unless they
// are open; an error is kept, and returned again on every call.
func (t *transport[R]) open(v6 bool) error {
	i := family4or6(v6)
	if t.fams[i] != nil || t.errs[i] != nil {
		return t.errs[i]
	}
	network, local := "udp4", t.cfg.LocalAddr4
	if v6 {
		network, local = "udp6", t.cfg.LocalAddr6
	}
	var la *net.UDPAddr
	if local.IsValid() {
		la = &net.UDPAddr{IP: local.AsSlice()}
	}
	// The sockets go into t.fams as they open, so that close reaches
	// them should ListenUDP panic halfway.
	fam := &family[R]{v6: v6}
	t.fams[i] = fam
	fail := func(err error) error {
		for _, c := range fam.socks {
			_ = c.Close()
		}
		t.fams[i] = nil
		t.errs[i] = err
		return err
	}
	for range t.cfg.Sockets {
		c, err := t.cfg.ListenUDP(network, la)
		if err != nil {
			return fail(fmt.Errorf("ntpctl: opening %s socket %d of %d: %w", network, len(fam.socks)+1, t.cfg.Sockets, err))
		}
		_ = c.SetReadBuffer(t.cfg.ReadBuffer)
		_ = c.SetWriteBuffer(t.cfg.WriteBuffer)
		fam.socks = append(fam.socks, batchconn.New(c))
	}
	if batchconn.PollSupported {
		for _, c := range fam.socks {
			_ = c.EnableICMPErrors() // without it, silence stands for a closed port
		}
		p, err := batchconn.NewPoller(fam.socks, t.cfg.BatchSize)
		if err != nil {
			return fail(err)
		}
		fam.poller = p
		t.wg.Add(1)
		go t.poll(fam)
	} else {
		for slot, c := range fam.socks {
			t.wg.Add(1)
			go t.receive(fam, slot, c)
		}
	}
	for range t.cfg.Senders {
		s := &sender[R]{work: make(chan *batch[R], t.maxBatches()), done: make(chan *batch[R], t.maxBatches())}
		fam.senders = append(fam.senders, s)
		t.wg.Add(1)
		go t.send(fam, s)
	}
	return nil
}

// sender returns the goroutine that serves socket slot.
func (fam *family[R]) sender(slot int) *sender[R] { return fam.senders[slot%len(fam.senders)] }

// canSend reports whether a batch to socket slot of family v6 may be
// filled now: the family is open, a batch is free (or may be made), and,
// under a rate cap, the socket's sender has nothing out (a batch that
// waits behind another would go out later than its tokens say and bunch
// up with the next).
func (t *transport[R]) canSend(v6 bool, slot int) bool {
	fam := t.fams[family4or6(v6)]
	if fam == nil || (len(fam.free) == 0 && fam.made == t.maxBatches()) {
		return false
	}
	return !t.cfg.rateCapped() || fam.sender(slot).out == 0
}

// batchFor returns an empty batch for socket slot of family v6, which
// canSend allowed.
func (t *transport[R]) batchFor(v6 bool, slot int) *batch[R] {
	fam := t.fams[family4or6(v6)]
	var b *batch[R]
	if n := len(fam.free); n > 0 {
		b = fam.free[n-1]
		fam.free = fam.free[:n-1]
	} else {
		b = newBatch[R](t.cfg.BatchSize)
		fam.made++
	}
	b.slot = slot
	return b
}

// slotIn returns the buffer of the next place in b, for the request to
// be appended to; commit then takes it.
func (b *batch[R]) slotIn() []byte { return b.bufs[b.n][:0] }

// commit queues request req, built in the buffer slotIn returned, to f's
// target; attempt identifies it to the engine should the kernel refuse
// it.
func (b *batch[R]) commit(f *flight[R], req []byte, attempt uint32) {
	i := b.n
	b.bufs[i] = req
	b.msgs[i].Buffers[0] = req
	b.ips[i] = f.target.Addr().As16()
	if f.v6() {
		b.addrs[i].IP = b.ips[i][:]
	} else {
		b.addrs[i].IP = b.ips[i][12:16]
	}
	b.addrs[i].Port = int(f.target.Port())
	b.flights[i], b.gens[i] = f, attempt
	b.n++
}

// hand gives a filled batch to its socket's sender, or takes an empty
// one back.
func (t *transport[R]) hand(v6 bool, b *batch[R]) {
	fam := t.fams[family4or6(v6)]
	if b.n == 0 {
		fam.free = append(fam.free, b)
		return
	}
	s := fam.sender(b.slot)
	s.out++
	s.work <- b // room for every batch there is: never blocks
}

// idle reports whether every batch is back from the sending goroutines.
func (t *transport[R]) idle() bool {
	for _, fam := range t.fams {
		if fam != nil {
			for _, s := range fam.senders {
				if s.out > 0 {
					return false
				}
			}
		}
	}
	return true
}

// reclaim takes back the batches the sending goroutines are done with,
// reporting each request as sent (when it left) and each one the kernel
// refused to failed.
func (t *transport[R]) reclaim(sent func(f *flight[R], attempt uint32, at time.Time),
	failed func(f *flight[R], attempt uint32, err error)) {
	for _, fam := range t.fams {
		if fam == nil {
			continue
		}
		for _, s := range fam.senders {
			for s.out > 0 {
				var b *batch[R]
				select {
				case b = <-s.done:
				default:
				}
				if b == nil {
					break
				}
				s.out--
				for i, f := range b.flights[:b.n] {
					sent(f, b.gens[i], b.at)
				}
				for _, fl := range b.failed {
					failed(b.flights[fl.Index], b.gens[fl.Index], fl.Err)
				}
				clear(b.flights[:b.n])
				b.n, b.failed = 0, b.failed[:0]
				fam.free = append(fam.free, b)
			}
		}
	}
}

// signal wakes the run loop.
func (t *transport[R]) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// send sends the batches handed to s until its work channel closes.
func (t *transport[R]) send(fam *family[R], s *sender[R]) {
	defer t.wg.Done()
	for b := range s.work {
		n, failed, _ := fam.socks[b.slot].WriteBatchFailed(b.msgs[:b.n], b.failed[:0])
		b.failed = failed
		b.at = t.cfg.Now()
		t.stats.sent.Add(uint64(n))
		t.stats.markSent(n, b.at.UnixNano())
		for _, fl := range failed {
			// A batch that meets the socket closed by Run's end was not
			// refused by the kernel.
			if !errors.Is(fl.Err, net.ErrClosed) {
				t.stats.sendErrors.Add(1)
			}
		}
		s.done <- b
		t.signal()
	}
}

// poll reads the family's sockets with its Poller until it is closed.
func (t *transport[R]) poll(fam *family[R]) {
	defer t.wg.Done()
	msgs := t.recvMsgs()
	slots := make([]int, len(msgs))
	backoff := time.Duration(0)
	for {
		n, err := fam.poller.Read(msgs, slots)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.readError(&backoff)
			continue
		}
		backoff = 0
		if t.deliver(fam.v6, msgs[:n], slots[:n], t.cfg.Now()) {
			t.signal()
		}
	}
}

// receive reads one socket until it closes (where there is no Poller).
func (t *transport[R]) receive(fam *family[R], slot int, c *batchconn.Conn) {
	defer t.wg.Done()
	// A pool of many sockets shares the traffic: a few messages each is
	// plenty, and keeps a thousand readers' buffers small.
	n := t.cfg.BatchSize
	if len(fam.socks) > 16 {
		n = min(n, 4)
	}
	rd := c.NewReader(n)
	msgs := rd.Msgs()
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	slots := make([]int, len(msgs))
	for i := range slots {
		slots[i] = slot
	}
	backoff := time.Duration(0)
	for {
		n, err := rd.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.readError(&backoff)
			continue
		}
		backoff = 0
		if t.deliver(fam.v6, msgs[:n], slots[:n], t.cfg.Now()) {
			t.signal()
		}
	}
}

func (t *transport[R]) recvMsgs() []batchconn.RecvMsg {
	msgs := make([]batchconn.RecvMsg, t.cfg.BatchSize)
	for i := range msgs {
		msgs[i].Buf = make([]byte, 2048)
	}
	return msgs
}

// readError counts a failed read (an ICMP error reported on a socket,
// say) and, when errors persist, backs off up to 100 ms a read.
func (t *transport[R]) readError(backoff *time.Duration) {
	t.stats.recvErrors.Add(1)
	if *backoff > 0 {
		time.Sleep(*backoff)
	}
	*backoff = min(max(2**backoff, 100*time.Microsecond), 100*time.Millisecond)
}

// close closes the sockets, which ends the goroutines, and with wait set
// waits for them.
func (t *transport[R]) close(wait bool) {
	if !t.shut {
		t.shut = true
		for _, fam := range t.fams {
			if fam == nil {
				continue
			}
			if fam.poller != nil {
				_ = fam.poller.Close()
			}
			for _, s := range fam.senders {
				close(s.work)
			}
			for _, c := range fam.socks {
				_ = c.Close()
			}
		}
	}
	if wait {
		t.wg.Wait()
	}
}
