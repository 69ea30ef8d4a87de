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
	port uint16
	got  int // datagrams delivered back
}

func newRig(t *testing.T, cfg Config) *rig {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { sink.Close() })
	r := &rig{bed: newBed(t, cfg, MonList()), port: uint16(sink.LocalAddr().(*net.UDPAddr).Port)}
	r.tr = newTransport[mode7.Reply](&r.cfg, &r.stats)
	r.tr.deliver = func(bool, int, []batchconn.RecvMsg, time.Time) bool { return false }
	t.Cleanup(func() { r.tr.close(true) })
	return r
}

// queue takes target i and queues its request, as send does.
func (r *rig) queue(i int) *flight[mode7.Reply] {
	r.t.Helper()
	f, _ := r.e.take(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), r.port), r.now)
	require.NotNil(r.t, f)
	require.NoError(r.t, r.tr.open(false))
	r.enqueue(f)
	return f
}

func (r *rig) enqueue(f *flight[mode7.Reply]) {
	b, attempt, ok := r.e.request(f, r.tr.slotFor(f), r.now)
	require.True(r.t, ok)
	r.tr.commit(f, b, attempt)
}

// flushSync hands the batches to the sending goroutines and waits until
// they are back.
func (r *rig) flushSync() {
	r.tr.flush()
	for !r.tr.idle() {
		r.tr.reclaim(r.e.sendFailed)
		runtime.Gosched()
	}
}

// TestTransportAllocs pins the send path at zero allocations: building
// a batch of requests into the transport's buffers, sendmmsg, and taking
// the batch back. (Reading is pinned in internal/batchconn: on Linux
// recvmmsg is called directly, without x/net's per-message address
// allocations; delivering is pinned by TestEngineAllocs.)
func TestTransportAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	r := newRig(t, Config{})
	var flights []*flight[mode7.Reply]
	for i := range 64 {
		flights = append(flights, r.queue(i))
	}
	r.flushSync()
	send := testing.AllocsPerRun(50, func() {
		for _, f := range flights {
			r.enqueue(f)
		}
		r.flushSync()
	})
	assert.Zero(t, send, "allocations per batch of 64 requests")
	assert.Equal(t, uint64(64*52), r.stats.snapshot().Sent)
}

// TestClosedSocketIsNotASendError: a batch that meets a socket Run has
// closed (Run returning after Abort or an emit error while batches were
// with the sending goroutine) is not counted as refused by the kernel.
func TestClosedSocketIsNotASendError(t *testing.T) {
	var conn *net.UDPConn
	r := newRig(t, Config{ListenUDP: func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		c, err := net.ListenUDP(network, laddr)
		conn = c
		return c, err
	}})
	for i := range 8 {
		r.queue(i)
	}
	_ = conn.Close() // as close does while the batch waits
	r.tr.flush()
	r.tr.close(true)
	assert.Zero(t, r.stats.snapshot().SendErrors)
}

// TestRateCapHoldsOneBatchOut: under a rate cap a socket takes no new
// requests while a batch is with its sending goroutine, so a batch held
// up behind another cannot go out together with the next one's tokens
// (TestRate with GOMAXPROCS=1 saw up to 2.5% over the rate that way).
func TestRateCapHoldsOneBatchOut(t *testing.T) {
	for _, rate := range []int{0, 1000} {
		r := newRig(t, Config{Rate: rate})
		f := r.queue(1)
		s := r.tr.socket(f)
		r.tr.flush()
		assert.Equal(t, rate == 0, s.ready(), "rate %d: ready with a batch out", rate)
		r.flushSync()
		assert.True(t, s.ready(), "rate %d: ready once the batch is back", rate)
	}
}

// TestSendersSpreadTargets: with several sockets a family's targets are
// sent from all of them, each from the one its hash picks.
func TestSendersSpreadTargets(t *testing.T) {
	r := newRig(t, Config{Senders: 3})
	used := map[*socket[mode7.Reply]]int{}
	for i := range 60 {
		used[r.tr.socket(r.queue(i))]++
		r.flushSync()
	}
	assert.Len(t, used, 3)
	assert.Equal(t, uint64(60), r.stats.snapshot().Sent)
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
