package ntpctl

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSteadyStateAllocs pins the per-datagram paths of the prober at zero
// allocations: building and sending a batch of requests, and handing
// reply datagrams to their targets' assemblers. (Reading them is pinned in
// internal/batchconn: on Linux recvmmsg is called directly, without
// x/net's per-message address allocations.)
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	port := uint16(sink.LocalAddr().(*net.UDPAddr).Port)

	p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}}, MonList())
	require.NoError(t, err)
	defer p.closeSockets(true)
	now := time.Now()
	var flights []*flight[mode7.Reply]
	p.mu.Lock()
	for i := range 64 {
		target := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i)}), port)
		f := p.newFlight(target, p.hash(target))
		require.NotNil(t, f)
		p.queue(f, now)
		flights = append(flights, f)
	}
	p.mu.Unlock()
	p.flushSync()

	send := testing.AllocsPerRun(50, func() {
		p.mu.Lock()
		for _, f := range flights {
			p.queue(f, now)
		}
		p.mu.Unlock()
		p.flushSync()
	})
	assert.Zero(t, send, "allocations per batch of 64 requests")

	reply := mode7.AppendErrorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), mode7.InfoErrNoData)
	recv := testing.AllocsPerRun(50, func() {
		p.mu.Lock()
		for _, f := range flights {
			f.done, f.packets, f.bytes = false, 0, 0
			f.asm.Reset(f.target, f.seq)
			p.deliver(f.sock, f.target, reply, len(reply), now)
		}
		p.mu.Unlock()
	})
	assert.Zero(t, recv, "allocations per 64 datagrams delivered")

	seq := testing.AllocsPerRun(100, func() { _ = p.Seq(flights[0].target) })
	assert.Zero(t, seq)
}

// BenchmarkBookkeeping measures the prober's work per target without the
// system calls: a new flight, its request, its timeout, its result.
func BenchmarkBookkeeping(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	port := uint16(sink.LocalAddr().(*net.UDPAddr).Port)
	p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}}, MonList())
	if err != nil {
		b.Fatal(err)
	}
	defer p.closeSockets(true)
	now := time.Now()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		t := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), port)
		i++
		p.mu.Lock()
		if p.cfg.Blocklist.Reason(t.Addr()) != "" {
			b.Fatal("blocked")
		}
		f := p.newFlight(t, p.hash(t))
		p.queue(f, now)
		if bt := p.socks[0][0].cur; bt != nil {
			clear(bt.flights[:bt.n])
			bt.n = 0 // no system call
		}
		p.finish(f, false)
		p.due = p.due[:0]
		p.timeouts.pop()
		p.mu.Unlock()
		_ = p.result(f)
		p.release([]*flight[mode7.Reply]{f})
	}
}

// TestFlightMap checks the open-addressing table against a Go map under
// random puts and removes, colliding hashes included.
func TestFlightMap(t *testing.T) {
	m := newFlightMap[int](4)
	ref := map[netip.AddrPort]*flight[int]{}
	var live []*flight[int]
	rng := uint64(1)
	next := func() uint64 { rng = rng*6364136223846793005 + 1442695040888963407; return rng >> 33 }
	for step := range 20000 {
		if len(live) > 0 && next()%3 == 0 {
			i := int(next() % uint64(len(live)))
			f := live[i]
			m.remove(f)
			delete(ref, f.target)
			live[i] = live[len(live)-1]
			live = live[:len(live)-1]
		} else {
			tg := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(step >> 16), byte(step >> 8), byte(step)}), 123)
			f := &flight[int]{target: tg, hash: next() % 64} // few distinct hashes: long probe runs
			m.put(f)
			ref[tg] = f
			live = append(live, f)
		}
		if step%500 == 0 {
			require.Equal(t, len(ref), m.len())
			for tg, f := range ref {
				require.Same(t, f, m.get(tg, f.hash), "step %d", step)
			}
			require.Nil(t, m.get(netip.MustParseAddrPort("192.0.2.1:1"), 5))
		}
	}
}

// TestRetriesWaitForTokensWithoutSpinning: retries waiting for the token
// bucket sleep until a token is due instead of spinning the run loop.
func TestRetriesWaitForTokensWithoutSpinning(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	port := uint16(sink.LocalAddr().(*net.UDPAddr).Port)
	cfg := Config{Blocklist: &Blocklist{AllowLoopback: true}, Rate: 50, Retries: 1,
		RetryInterval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond}
	p, err := NewProber(cfg, MonList())
	require.NoError(t, err)
	var set TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.1.2.0/28")) // silent: 16 requests, 16 retries
	n := 0
	require.NoError(t, p.Run(context.Background(), set.All(port), func(Result[mode7.Reply]) error { n++; return nil }))
	assert.Equal(t, 16, n)
	assert.Equal(t, uint64(32), p.Stats().Sent)
	// About 32 token waits and 32 deadlines in some 0.7 s; a spinning
	// loop goes round hundreds of thousands of times.
	assert.Less(t, p.rounds, 2000, "run loop rounds")
}

// TestFIFOCompaction: timers of recycled flights do not pile up with
// rate × timeout; live timers keep their order.
func TestFIFOCompaction(t *testing.T) {
	var q fifo[int]
	live := []*flight[int]{}
	for i := range 100000 {
		f := &flight[int]{gen: 1}
		q.push(timer[int]{f: f, gen: 1, at: time.Unix(int64(i), 0)}, 64)
		if i%1000 == 0 {
			live = append(live, f)
		} else {
			f.gen++ // recycled: the timer is stale
		}
	}
	assert.LessOrEqual(t, len(q.buf), 512, "buffer stays near the live count")
	got := []*flight[int]{}
	for {
		tm, ok := q.peek()
		if !ok {
			break
		}
		q.pop()
		if !tm.stale() {
			got = append(got, tm.f)
		}
	}
	assert.Equal(t, live, got)
}

// TestQuietHeap checks the hand-written heap against a sort.
func TestQuietHeap(t *testing.T) {
	var h quietHeap[int]
	rng := uint64(7)
	var want []int64
	for range 1000 {
		rng = rng*6364136223846793005 + 1442695040888963407
		at := int64(rng >> 40)
		want = append(want, at)
		h.push(timer[int]{at: time.Unix(at, 0)})
	}
	slices.Sort(want)
	for _, w := range want {
		require.Equal(t, w, h.pop().at.Unix())
	}
	assert.Empty(t, h)
}

// flushSync hands the batches to the sending goroutines and waits until
// they are back.
func (p *Prober[R]) flushSync() {
	p.flush()
	for _, fam := range p.socks {
		for _, s := range fam {
			for len(s.idle) < 2 {
				p.mu.Lock()
				p.reclaim()
				p.mu.Unlock()
				runtime.Gosched()
			}
		}
	}
}

// TestSendFailureSparesAnAnsweringFlight: a retry the kernel refuses does
// not cut short a reply to an earlier attempt that has started to arrive
// while the retry's batch was with the sending goroutine.
func TestSendFailureSparesAnAnsweringFlight(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	target := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}, Retries: 1}, MonList())
	require.NoError(t, err)
	defer p.closeSockets(true)
	entries := make([]mode7.MonitorEntry, 12)
	for i := range entries {
		entries[i] = mode7.MonitorEntry{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
			LocalAddr: netip.MustParseAddr("127.0.0.1"), Port: uint16(1024 + i), Mode: 3, Version: 4, Count: 1}
	}
	pkts, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), entries)
	require.NoError(t, err)
	require.Len(t, pkts, 2)

	now := time.Now()
	p.mu.Lock()
	f := p.newFlight(target, p.hash(target))
	require.NotNil(t, f)
	p.queue(f, now) // the first attempt
	p.mu.Unlock()
	p.flushSync()

	p.mu.Lock()
	p.queue(f, now) // the retry: its batch goes to the sender, which fails it
	s := f.sock
	bt := s.cur
	s.cur = nil
	bt.failed = append(bt.failed[:0], batchconn.Failure{Index: 0, Err: syscall.EPIPE})
	// Meanwhile the first part of the reply to the first attempt arrives.
	require.False(t, p.deliver(s, target, pkts[0], len(pkts[0]), now))
	require.Equal(t, 1, f.packets)
	s.done <- bt
	p.reclaim()
	assert.False(t, f.done, "an answering flight finishes by its quiet timer")
	assert.NoError(t, f.sendErr)
	p.mu.Unlock()
}

// TestClosedSocketIsNotASendError: a batch that meets a socket Run has
// closed (Run returning after Abort or an emit error while batches were
// with the sending goroutine) is not counted as refused by the kernel.
func TestClosedSocketIsNotASendError(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	port := uint16(sink.LocalAddr().(*net.UDPAddr).Port)
	p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}}, MonList())
	require.NoError(t, err)
	p.mu.Lock()
	for i := range 8 {
		target := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i)}), port)
		f := p.newFlight(target, p.hash(target))
		require.NotNil(t, f)
		p.queue(f, time.Now())
	}
	s := p.socks[0][0]
	p.mu.Unlock()
	_ = s.conn.Close() // as closeSockets does while the batch waits
	p.flush()
	p.closeSockets(true)
	assert.Zero(t, p.Stats().SendErrors)
}

// TestListenPanicClosesOpenedSockets: when ListenUDP panics while a
// family's sockets are being opened, the sockets already opened are
// closed with the others, and their goroutines end.
func TestListenPanicClosesOpenedSockets(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	var opened []*net.UDPConn
	cfg := Config{Blocklist: &Blocklist{AllowLoopback: true}, Senders: 3,
		ListenUDP: func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
			if len(opened) == 2 {
				panic("listen")
			}
			c, err := net.ListenUDP(network, laddr)
			if err == nil {
				opened = append(opened, c)
			}
			return c, err
		}}
	p, err := NewProber(cfg, MonList())
	require.NoError(t, err)
	func() {
		defer func() { assert.Equal(t, "listen", recover()) }()
		_ = p.Run(context.Background(), Addrs(0, sink.LocalAddr().(*net.UDPAddr).AddrPort().Addr()),
			func(Result[mode7.Reply]) error { return nil })
	}()
	require.Len(t, opened, 2)
	for _, c := range opened {
		assert.ErrorIs(t, c.SetReadDeadline(time.Now()), net.ErrClosed, "socket left open")
	}
}

// TestRateCapHoldsOneBatchOut: under a rate cap a socket takes no new
// requests while a batch is with its sending goroutine, so a batch held
// up behind another cannot go out together with the next one's tokens
// (TestRate with GOMAXPROCS=1 saw up to 2.5% over the rate that way).
func TestRateCapHoldsOneBatchOut(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	target := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, rate := range []int{0, 1000} {
		p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}, Rate: rate}, MonList())
		require.NoError(t, err)
		p.mu.Lock()
		f := p.newFlight(target, p.hash(target))
		require.NotNil(t, f)
		p.queue(f, time.Now())
		s := f.sock
		p.mu.Unlock()
		p.flush()
		assert.Equal(t, rate == 0, s.ready(), "rate %d: ready with a batch out", rate)
		p.flushSync()
		assert.True(t, s.ready(), "rate %d: ready once the batch is back", rate)
		p.closeSockets(true)
	}
}

// TestTransientSendErrorRetries: a request refused for want of buffer
// space is asked again when retries remain; on the last attempt, or for
// a lasting error, the flight finishes with the send error.
func TestTransientSendErrorRetries(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	target := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	p, err := NewProber(Config{Blocklist: &Blocklist{AllowLoopback: true}, Retries: 1}, MonList())
	require.NoError(t, err)
	defer p.closeSockets(true)
	now := time.Now()
	fail := func(f *flight[mode7.Reply], e error) {
		p.queue(f, now)
		s := f.sock
		bt := s.cur
		s.cur = nil
		bt.failed = append(bt.failed[:0], batchconn.Failure{Index: 0, Err: e})
		s.done <- bt
		p.reclaim()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.newFlight(target, p.hash(target))
	require.NotNil(t, f)
	fail(f, syscall.ENOBUFS)
	assert.False(t, f.done, "a retry remains: its timer asks again")
	fail(f, syscall.ENOBUFS)
	assert.True(t, f.done, "the last attempt failed")
	assert.ErrorIs(t, f.sendErr, syscall.ENOBUFS)

	target2 := netip.AddrPortFrom(target.Addr(), target.Port()+1)
	g := p.newFlight(target2, p.hash(target2))
	require.NotNil(t, g)
	fail(g, syscall.EPERM)
	assert.True(t, g.done, "a lasting error finishes at once")
}
