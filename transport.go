package ntpctl

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
)

// transport moves a Prober's datagrams: per address family Senders UDP
// sockets, each with a sending goroutine fed two batches (the run loop
// fills one while the other is sent) and a receive goroutine. It knows
// nothing of flights beyond carrying them in batches; what it receives
// goes to the deliver function, and what the kernel refused comes back
// through reclaim.
//
// The run loop calls every method but the goroutines' under the Prober's
// lock; deliver is called from the receive goroutines, which take the
// lock themselves.
type transport[R any] struct {
	cfg   *Config
	stats *counters
	socks [2][]*socket[R] // udp4, udp6: Senders each once opened
	wake  chan struct{}   // a batch came back, or a flight finished
	wg    sync.WaitGroup
	shut  bool // closed
	// deliver hands a batch of received datagrams to the engine; it
	// reports whether the run loop should wake.
	deliver func(v6 bool, slot int, msgs []batchconn.RecvMsg, now time.Time) bool
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
	slot int
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

func newTransport[R any](cfg *Config, stats *counters) *transport[R] {
	return &transport[R]{cfg: cfg, stats: stats, wake: make(chan struct{}, 1)}
}

func family(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// open opens a family's sockets and starts their goroutines, unless they
// are open.
func (t *transport[R]) open(v6 bool) error {
	i := family(v6)
	if t.socks[i] != nil {
		return nil
	}
	network, local := "udp4", t.cfg.LocalAddr4
	if v6 {
		network, local = "udp6", t.cfg.LocalAddr6
	}
	var la *net.UDPAddr
	if local.IsValid() {
		la = &net.UDPAddr{IP: local.AsSlice()}
	}
	// The sockets go into t.socks as they open, so that close reaches
	// them should ListenUDP panic halfway.
	t.socks[i] = make([]*socket[R], 0, t.cfg.Senders)
	for slot := range t.cfg.Senders {
		c, err := t.cfg.ListenUDP(network, la)
		if err != nil {
			for _, s := range t.socks[i] {
				close(s.work)
				_ = s.conn.Close()
			}
			t.socks[i] = nil
			return fmt.Errorf("ntpctl: opening the %s socket: %w", network, err)
		}
		_ = c.SetReadBuffer(t.cfg.ReadBuffer)
		_ = c.SetWriteBuffer(t.cfg.WriteBuffer)
		s := &socket[R]{conn: batchconn.New(c), v6: v6, slot: slot,
			idle: []*batch[R]{newBatch[R](t.cfg.BatchSize), newBatch[R](t.cfg.BatchSize)},
			work: make(chan *batch[R], 2), done: make(chan *batch[R], 2), maxOut: 2}
		if t.cfg.Rate > 0 {
			s.maxOut = 1
		}
		t.socks[i] = append(t.socks[i], s)
		t.wg.Add(2)
		go t.sender(s)
		go t.receive(s)
	}
	return nil
}

// socket returns the socket of f, whose family is open.
func (t *transport[R]) socket(f *flight[R]) *socket[R] { return t.socks[family(f.v6())][f.slot] }

// ready reports whether every open socket can take a request, and so
// whether a round may queue requests (a round queues at most one batch
// in all, so a batch never runs out of room).
func (t *transport[R]) ready() bool {
	for _, fam := range t.socks {
		for _, s := range fam {
			if !s.ready() {
				return false
			}
		}
	}
	return true
}

// canSend reports whether f's socket can take a request now (its family
// open and a batch free).
func (t *transport[R]) canSend(f *flight[R]) bool {
	fam := t.socks[family(f.v6())]
	return fam != nil && fam[f.slot].ready()
}

// slotFor returns the buffer of the next place in f's socket's batch, for
// the request to be appended to; commit then takes it.
func (t *transport[R]) slotFor(f *flight[R]) []byte {
	s := t.socket(f)
	if s.cur == nil {
		s.cur = s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
	}
	return s.cur.bufs[s.cur.n][:0]
}

// commit queues request b, built in the buffer slotFor returned, to f's
// target; attempt identifies it to the engine should the kernel refuse it.
func (t *transport[R]) commit(f *flight[R], b []byte, attempt uint32) {
	s := t.socket(f)
	bt := s.cur
	i := bt.n
	bt.bufs[i] = b
	bt.msgs[i].Buffers[0] = b
	bt.ips[i] = f.target.Addr().As16()
	if s.v6 {
		bt.addrs[i].IP = bt.ips[i][:]
	} else {
		bt.addrs[i].IP = bt.ips[i][12:16]
	}
	bt.addrs[i].Port = int(f.target.Port())
	bt.flights[i], bt.gens[i] = f, attempt
	bt.n++
}

// idle reports whether every batch is back from the sending goroutines.
func (t *transport[R]) idle() bool {
	for _, fam := range t.socks {
		for _, s := range fam {
			if len(s.idle) < 2 {
				return false
			}
		}
	}
	return true
}

// flush hands every socket's filled batch to its sending goroutine.
func (t *transport[R]) flush() {
	for _, fam := range t.socks {
		for _, s := range fam {
			if s.cur != nil && s.cur.n > 0 {
				s.work <- s.cur // room for both batches: never blocks
				s.cur = nil
			}
		}
	}
}

// reclaim takes back the batches the sending goroutines are done with,
// reporting each request the kernel refused to failed.
func (t *transport[R]) reclaim(failed func(f *flight[R], attempt uint32, err error)) {
	for _, fam := range t.socks {
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
					failed(bt.flights[fl.Index], bt.gens[fl.Index], fl.Err)
				}
				clear(bt.flights[:bt.n])
				bt.n, bt.failed = 0, bt.failed[:0]
				s.idle = append(s.idle, bt)
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

// sender sends the batches handed to s until its work channel closes.
func (t *transport[R]) sender(s *socket[R]) {
	defer t.wg.Done()
	for bt := range s.work {
		n, failed, _ := s.conn.WriteBatchFailed(bt.msgs[:bt.n], bt.failed[:0])
		bt.failed = failed
		t.stats.sent.Add(uint64(n))
		for _, fl := range failed {
			// A batch that meets the socket closed by Run's end was not
			// refused by the kernel.
			if !errors.Is(fl.Err, net.ErrClosed) {
				t.stats.sendErrors.Add(1)
			}
		}
		s.done <- bt
		t.signal()
	}
}

// receive reads datagrams until the socket closes, handing each batch to
// deliver.
func (t *transport[R]) receive(s *socket[R]) {
	defer t.wg.Done()
	rd := s.conn.NewReader(t.cfg.BatchSize)
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
			t.stats.recvErrors.Add(1)
			if backoff > 0 {
				time.Sleep(backoff)
			}
			backoff = min(max(2*backoff, 100*time.Microsecond), 100*time.Millisecond)
			continue
		}
		backoff = 0
		if t.deliver(s.v6, s.slot, msgs[:n], t.cfg.Now()) {
			t.signal()
		}
	}
}

// close closes the sockets, which ends the goroutines, and with wait set
// waits for them.
func (t *transport[R]) close(wait bool) {
	if !t.shut {
		t.shut = true
		t.closeSockets()
	}
	if wait {
		t.wg.Wait()
	}
}

func (t *transport[R]) closeSockets() {
	for _, fam := range t.socks {
		for _, s := range fam {
			close(s.work)
			_ = s.conn.Close()
		}
	}
}
