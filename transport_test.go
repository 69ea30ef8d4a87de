package ntpctl

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rig is a transport with a sink on loopback, driven as the run loop
// drives it, with flights from an engine.
type rig struct {
	*bed[mode7.Reply]
	tr   *transport[mode7.Reply]
	sink *net.UDPConn
	port uint16
}

func newRig(t *testing.T, cfg Config) *rig {
	// Bound to the wildcard address, the sink receives what is sent to
	// any 127.x.y.z address at its port.
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	require.NoError(t, err)
	t.Cleanup(func() { sink.Close() })
	r := &rig{bed: newBed(t, cfg, MonList()), sink: sink, port: uint16(sink.LocalAddr().(*net.UDPAddr).Port)}
	r.tr = newTransport[mode7.Reply](&r.cfg, &r.stats)
	r.tr.deliver = func(bool, []batchconn.RecvMsg, []int, time.Time) bool { return false }
	t.Cleanup(func() { r.tr.close(true) })
	return r
}

// flight takes target i, 127.1.x.y at the sink's port, opening the
// family's sockets.
func (r *rig) flight(i int) *flight[mode7.Reply] {
	r.t.Helper()
	tg := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), r.port)
	f, _ := r.admitTake(tg)
	require.NotNil(r.t, f)
	require.NoError(r.t, r.tr.open(false))
	return f
}

// send queues one batch of the flights' next requests on their socket
// (they share one) and hands it over, as a round of send does.
func (r *rig) send(fs ...*flight[mode7.Reply]) {
	r.t.Helper()
	b := r.tr.batchFor(false, fs[0].slot)
	for _, f := range fs {
		req, attempt, ok := r.e.request(f, b.slotIn(), r.now)
		require.True(r.t, ok)
		b.commit(f, req, attempt)
	}
	r.tr.hand(false, b)
}

// wait takes back every batch from the sending goroutines.
func (r *rig) wait() {
	for !r.tr.idle() {
		r.tr.reclaim(r.e.sent, r.e.sendFailed)
		runtime.Gosched()
	}
}

// TestTransportAllocs pins the send path at zero allocations: building
// a batch of requests into the transport's buffers, sendmmsg, and taking
// the batch back. (Reading is pinned in internal/batchconn, the Poller
// and the Reader; delivering by TestEngineAllocs.)
func TestTransportAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	r := newRig(t, Config{Sockets: 1})
	var flights []*flight[mode7.Reply]
	for i := range 64 {
		flights = append(flights, r.flight(i))
	}
	r.send(flights...)
	r.wait()
	allocs := testing.AllocsPerRun(50, func() {
		r.send(flights...)
		r.wait()
	})
	assert.Zero(t, allocs, "allocations per batch of 64 requests")
	assert.Equal(t, uint64(64*52), r.stats.snapshot().Sent)
}

// TestSocketPool: a family's targets are sent from Sockets ports, each
// target always from the one its keyed hash picks, and its replies are
// accepted only there.
func TestSocketPool(t *testing.T) {
	r := newRig(t, Config{Sockets: 8, Senders: 3})
	var fs []*flight[mode7.Reply]
	for i := range 64 {
		fs = append(fs, r.flight(i))
	}
	// Each target's request, twice: the sink sees which port each left
	// from.
	for range 2 {
		for _, f := range fs {
			r.send(f)
		}
		r.wait()
	}
	ports := map[uint16]bool{}
	from := map[netip.Addr]uint16{}
	buf := make([]byte, 64)
	_ = r.sink.SetReadDeadline(time.Now().Add(2 * time.Second))
	for range 128 {
		_, src, dst, err := readDst(r.sink, buf)
		require.NoError(t, err)
		ports[src.Port()] = true
		if p, ok := from[dst]; ok {
			assert.Equal(t, p, src.Port(), "%s: both requests from one port", dst)
		}
		from[dst] = src.Port()
	}
	assert.Len(t, from, 64)
	assert.Len(t, ports, 8, "requests left from every socket of the pool")
	assert.Equal(t, uint64(128), r.stats.snapshot().Sent)
	opened := r.tr.fams[0]
	require.NotNil(t, opened)
	local := map[uint16]bool{}
	for _, c := range opened.socks {
		local[c.LocalAddrPort().Port()] = true
	}
	assert.Equal(t, ports, local, "one port per socket")
}

// TestClosedSocketIsNotASendError: a batch that meets a socket Run has
// closed (Run returning after Abort or an emit error while batches were
// with the sending goroutine) is not counted as refused by the kernel.
func TestClosedSocketIsNotASendError(t *testing.T) {
	var conn *net.UDPConn
	r := newRig(t, Config{Sockets: 1, ListenUDP: func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		c, err := net.ListenUDP(network, laddr)
		conn = c
		return c, err
	}})
	var fs []*flight[mode7.Reply]
	for i := range 8 {
		fs = append(fs, r.flight(i))
	}
	_ = conn.Close() // as close does while the batch waits
	r.send(fs...)
	r.tr.close(true)
	assert.Zero(t, r.stats.snapshot().SendErrors)
}

// TestRateCapHoldsOneBatchOut: under a rate cap a sender takes no new
// batch while one is with it, so a batch held up behind another cannot go
// out together with the next one's tokens (TestRate with GOMAXPROCS=1
// saw up to 2.5% over the rate that way).
func TestRateCapHoldsOneBatchOut(t *testing.T) {
	for _, rate := range []int{0, 1000} {
		r := newRig(t, Config{Rate: rate, Sockets: 1})
		f := r.flight(1)
		r.send(f)
		assert.Equal(t, rate == 0, r.tr.canSend(false, f.slot), "rate %d: a batch may be filled while one is out", rate)
		r.wait()
		assert.True(t, r.tr.canSend(false, f.slot), "rate %d: once the batch is back", rate)
	}
}

// TestListenPanicClosesOpenedSockets: when ListenUDP panics while a
// family's sockets are being opened, the sockets already opened are
// closed with the others, and their goroutines end.
func TestListenPanicClosesOpenedSockets(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer sink.Close()
	var opened []*net.UDPConn
	cfg := Config{Blocklist: &Blocklist{AllowLoopback: true}, Sockets: 3,
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

// TestRetriesWaitForTokensWithoutSpinning: retries waiting for the token
// bucket sleep until a token is due instead of spinning the run loop.
func TestRetriesWaitForTokensWithoutSpinning(t *testing.T) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero}) // wildcard: the targets' port is open, silent
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

// readDst reads one datagram with its source and the address it was sent
// to.
func readDst(c *net.UDPConn, buf []byte) (int, netip.AddrPort, netip.Addr, error) {
	bc := batchconn.New(c)
	if err := bc.EnableDst(); err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	rd := bc.NewReader(1)
	m := &rd.Msgs()[0]
	m.Buf, m.OOB = buf, make([]byte, bc.OOBSize())
	if _, err := rd.Read(); err != nil {
		return 0, netip.AddrPort{}, netip.Addr{}, err
	}
	return m.N, m.From, bc.Dst(m.OOB[:m.NN]), nil
}
