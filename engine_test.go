package ntpctl

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bed drives an engine the way the run loop and the transport do, with
// a fake clock and datagrams made in the test: no socket, no goroutine.
type bed[R any] struct {
	t     testing.TB
	cfg   Config
	stats counters
	e     *engine[R]
	now   time.Time
	buf   []byte
	sent  map[*flight[R]][]byte // the last request built for each flight
}

func newBed[R any](t testing.TB, cfg Config, probe Probe[R]) *bed[R] {
	if cfg.Blocklist == nil {
		cfg.Blocklist = &Blocklist{AllowLoopback: true}
	}
	b := &bed[R]{t: t, cfg: cfg.withDefaults(), now: time.Unix(1_700_000_000, 0), sent: map[*flight[R]][]byte{}}
	b.e = newEngine(&b.cfg, probe, &b.stats)
	b.buf = make([]byte, 0, 512)
	return b
}

// admitTake admits t and puts it in flight, as a round of send does; a
// target that is not sent has its result instead.
func (b *bed[R]) admitTake(t netip.AddrPort) (*flight[R], Result[R]) {
	t, h, res, ok := b.e.admit(t, b.now)
	if !ok {
		return nil, res
	}
	return b.e.take(t, h, b.now)
}

// take admits t and builds its first request, as a round of send does.
// The flight is a handle to pass back to the engine.
func (b *bed[R]) take(t string) *flight[R] {
	b.t.Helper()
	f, res := b.admitTake(netip.MustParseAddrPort(t))
	require.NotNil(b.t, f, "not admitted: %v", res.Err)
	b.request(f)
	return f
}

// request builds f's next request, as enqueue does, and returns the
// attempt; the request leaves at once.
func (b *bed[R]) request(f *flight[R]) uint32 {
	b.t.Helper()
	attempt := b.build(f)
	b.e.sent(f, attempt, b.now)
	return attempt
}

// build builds f's next request and returns the attempt; it has not left
// until sent says so.
func (b *bed[R]) build(f *flight[R]) uint32 {
	b.t.Helper()
	req, attempt, ok := b.e.request(f, b.buf[:0], b.now)
	require.True(b.t, ok)
	b.sent[f] = append([]byte(nil), req...)
	return attempt
}

// advance moves the clock on by d and runs a round of the loop: collect,
// results, release, and the retries it queued are sent.
func (b *bed[R]) advance(d time.Duration) []Result[R] {
	b.now = b.now.Add(d)
	b.e.collect(b.now, false, false)
	for f := b.e.nextRetry(); f != nil; f = b.e.nextRetry() {
		b.e.popRetry()
		b.request(f)
	}
	return b.results()
}

func (b *bed[R]) results() []Result[R] {
	due := b.e.takeDue()
	var out []Result[R]
	for _, f := range due {
		out = append(out, b.e.result(f))
	}
	b.e.release(due)
	return out
}

// deliver hands datagram d from src to the engine on the socket src's
// flight was given (slot is -1) or on slot.
func (b *bed[R]) deliver(src string, slot int, d []byte) bool {
	ap := netip.MustParseAddrPort(src)
	if slot < 0 {
		slot = b.e.slot(ap)
	}
	return b.e.deliver(ap.Addr().Is6(), slot, ap, d, len(d), b.now)
}

func monlistReply(t testing.TB, n int) [][]byte {
	t.Helper()
	entries := make([]mode7.MonitorEntry, n)
	for i := range entries {
		entries[i] = mode7.MonitorEntry{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
			LocalAddr: netip.MustParseAddr("127.0.0.1"), Port: uint16(1024 + i), Mode: 3, Version: 4, Count: 1}
	}
	pkts, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), entries)
	require.NoError(t, err)
	return pkts
}

// TestEngineLife follows flights through every ending, on a fake clock.
func TestEngineLife(t *testing.T) {
	b := newBed(t, Config{Retries: 1, RetryInterval: time.Second, Timeout: 2 * time.Second,
		Quiet: 100 * time.Millisecond}, MonList())
	pkts := monlistReply(t, 12) // two packets
	require.Len(t, pkts, 2)

	b.take("127.0.0.1:123")
	b.take("127.0.0.2:123")
	b.take("127.0.0.3:123")
	b.now = b.now.Add(10 * time.Millisecond)
	assert.False(t, b.deliver("127.0.0.2:123", -1, pkts[0]))
	assert.True(t, b.deliver("127.0.0.2:123", -1, pkts[1]), "a complete reply finishes at once")
	assert.False(t, b.deliver("127.0.0.3:123", -1, pkts[0]))
	assert.True(t, b.e.pending())

	got := b.advance(0)
	require.Len(t, got, 1)
	r := got[0]
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.2:123"), r.Target)
	assert.Equal(t, StatusOK, r.Status)
	assert.NoError(t, r.Err)
	assert.Equal(t, 2, r.Packets)
	assert.Equal(t, len(pkts[0])+len(pkts[1]), r.Bytes)
	assert.Equal(t, r.Packets, r.Value.Packets, "one meaning of Packets")
	assert.Len(t, r.Value.Entries, 12)
	assert.Equal(t, 10*time.Millisecond, r.RTT)
	assert.Equal(t, 48, r.RequestBytes)

	// The partial reply goes quiet; the silent target is asked again.
	got = b.advance(time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.3:123"), got[0].Target)
	assert.Equal(t, StatusPartial, got[0].Status)
	assert.Equal(t, uint64(1), b.stats.snapshot().Retried, "the silent target was asked again")
	got = b.advance(2 * time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, StatusNoAnswer, got[0].Status)
	assert.ErrorIs(t, got[0].Err, ErrNoAnswer)
	assert.Equal(t, 2, got[0].Attempts)

	// A reply after the end is late; one from an address never probed,
	// or on another socket, is unsolicited.
	b.deliver("127.0.0.1:123", -1, pkts[0])
	b.deliver("127.0.0.9:123", -1, pkts[0])
	st := b.stats.snapshot()
	assert.Equal(t, uint64(1), st.Late)
	assert.Equal(t, uint64(1), st.Unsolicited)
	assert.Equal(t, uint64(3), st.Matched)
	assert.Equal(t, uint64(3), st.Accepted)
	assert.Equal(t, uint64(1), st.Retried)
	assert.Equal(t, StatusCounts{OK: 1, Partial: 1, NoAnswer: 1}, st.Statuses)
	assert.Equal(t, uint64(3), st.Finished)
	assert.Zero(t, st.InFlight)
	assert.Equal(t, 0, b.e.inFlight())
}

// TestEngineRTTNeverNegative: a reply to the first attempt, read before
// the retry went out and handed over after, gives RTT 0, not a negative
// time.
func TestEngineRTTNeverNegative(t *testing.T) {
	b := newBed(t, Config{Retries: 1, RetryInterval: time.Second}, MonList())
	pkts := monlistReply(t, 1)
	b.take("127.0.0.1:123")
	b.advance(time.Second) // the retry, sent at +1 s
	tg := netip.MustParseAddrPort("127.0.0.1:123")
	require.True(t, b.e.deliver(false, b.e.slot(tg), tg, pkts[0], len(pkts[0]), b.now.Add(-time.Millisecond)))
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, time.Duration(0), got[0].RTT)
	assert.Equal(t, 2, got[0].Attempts)
}

// TestEngineWaitsFromTheSend: a request that sat with its sender past
// the whole timeout (a starved goroutine, sockets opening) does not make
// its target silent; the wait counts from when the request left.
func TestEngineWaitsFromTheSend(t *testing.T) {
	b := newBed(t, Config{Retries: 1, RetryInterval: time.Second, Timeout: 2 * time.Second}, MonList())
	tg := netip.MustParseAddrPort("127.0.0.1:123")
	f, res := b.admitTake(tg)
	require.NotNil(t, f, "%v", res.Err)
	attempt := b.build(f) // handed over, not yet gone
	assert.Empty(t, b.advance(5*time.Second), "never sent: not silent")
	assert.Equal(t, 1, f.attempts, "and not asked again either")
	b.e.sent(f, attempt, b.now.Add(-time.Second)) // left 4 s late
	assert.Empty(t, b.advance(time.Second-time.Millisecond), "a second after it left, less a millisecond")
	assert.Equal(t, 1, f.attempts)
	assert.Empty(t, b.advance(time.Millisecond), "the retry interval from the send: asked again")
	assert.Equal(t, 2, f.attempts)
	// A reply to the first request, read before its late send was
	// reported, counts; the send report then changes nothing.
	g, _ := b.admitTake(netip.MustParseAddrPort("127.0.0.2:123"))
	ga := b.build(g)
	b.now = b.now.Add(time.Second)
	pkts := monlistReply(t, 1)
	require.True(t, b.deliver("127.0.0.2:123", -1, pkts[0]))
	b.e.sent(g, ga, b.now.Add(time.Second))
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, StatusOK, got[0].Status)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.2:123"), got[0].Target)
	got = b.advance(2 * time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, StatusNoAnswer, got[0].Status, "the first target, after its retry")
	assert.Equal(t, tg, got[0].Target)
}

// TestEngineSocketAndFamily: a reply counts only on the socket its
// target's request left from, in its family.
func TestEngineSocketAndFamily(t *testing.T) {
	b := newBed(t, Config{Sockets: 4}, MonList())
	pkts := monlistReply(t, 1)
	tg := netip.MustParseAddrPort("127.0.0.5:123")
	b.take(tg.String())
	slot := b.e.slot(tg)
	assert.False(t, b.deliver(tg.String(), (slot+1)%4, pkts[0]), "another socket")
	assert.False(t, b.e.deliver(true, slot, tg, pkts[0], len(pkts[0]), b.now), "the IPv6 socket")
	assert.Equal(t, uint64(2), b.stats.snapshot().Misdirected, "from the target, to other sockets: forged")
	assert.True(t, b.deliver(tg.String(), -1, pkts[0]))
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, 1, got[0].Packets, "only the datagram on its socket")
	// Targets spread over the sockets.
	seen := map[int]bool{}
	for i := range 64 {
		seen[b.e.slot(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i)}), 123))] = true
	}
	assert.Len(t, seen, 4)
}

// TestEngineMismatchedNotCounted: a datagram answering another request
// is counted as mismatched, not as the reply's packet.
func TestEngineMismatchedNotCounted(t *testing.T) {
	b := newBed(t, Config{Quiet: time.Second}, ReadVar())
	b.take("127.0.0.7:123")
	seq := b.e.seq(netip.MustParseAddrPort("127.0.0.7:123"))
	var rb mode6.ReplyBuilder
	rb.Reset(mode6.Header{Response: true, Op: mode6.OpReadVar, Seq: seq + 1, Version: 2})
	rb.PutVar(mode6.Var{Name: "version", Value: "ntpd 4.2.8p18", Quoted: true})
	wrong := rb.AppendPackets(nil, nil)
	rb.Reset(mode6.Header{Response: true, Op: mode6.OpReadVar, Seq: seq, Version: 2})
	rb.PutVar(mode6.Var{Name: "version", Value: "ntpd 4.2.8p18", Quoted: true})
	right := rb.AppendPackets(nil, nil)
	assert.False(t, b.deliver("127.0.0.7:123", -1, wrong[0]))
	assert.True(t, b.deliver("127.0.0.7:123", -1, right[0]))
	got := b.advance(0)
	require.Len(t, got, 1)
	assert.Equal(t, StatusOK, got[0].Status)
	assert.Equal(t, 1, got[0].Packets)
	assert.Equal(t, 1, got[0].Value.Packets)
	assert.Equal(t, 1, got[0].Value.Mismatched)
	v, ok := got[0].Value.Vars.Lookup("version")
	assert.True(t, ok)
	assert.Equal(t, "ntpd 4.2.8p18", v)
	assert.Equal(t, uint64(1), b.stats.snapshot().Mismatched)
	assert.Equal(t, uint64(1), b.stats.snapshot().Matched)
}

// TestEngineBlockedAndRepeated: targets that are not sent have results
// at once and take no flight.
func TestEngineBlockedAndRepeated(t *testing.T) {
	b := newBed(t, Config{Blocklist: &Blocklist{}}, MonList())
	f, res := b.admitTake(netip.MustParseAddrPort("127.0.0.1:123"))
	assert.Nil(t, f)
	assert.Equal(t, StatusBlocked, res.Status)
	assert.ErrorIs(t, res.Err, ErrBlocked)
	b.cfg.Blocklist = &Blocklist{AllowLoopback: true}
	f, _ = b.admitTake(netip.MustParseAddrPort("[::ffff:127.0.0.1]:0"))
	require.NotNil(t, f)
	g, res := b.admitTake(netip.MustParseAddrPort("127.0.0.1:123"))
	assert.Nil(t, g, "the same target, unmapped with the default port")
	assert.Equal(t, StatusRepeated, res.Status)
	assert.ErrorIs(t, res.Err, ErrRepeated)
	assert.Equal(t, 1, b.e.inFlight())
	st := b.stats.snapshot()
	assert.Equal(t, StatusCounts{Blocked: 1, Repeated: 1}, st.Statuses)
	assert.Equal(t, uint64(3), st.Targets)
}

// TestEngineCaps: MaxPackets, MaxBytes and MaxDuration end a target.
func TestEngineCaps(t *testing.T) {
	pkts := monlistReply(t, 200) // many packets, never complete without the last
	t.Run("packets", func(t *testing.T) {
		b := newBed(t, Config{MaxPackets: 3}, MonList())
		b.take("127.0.0.1:123")
		assert.False(t, b.deliver("127.0.0.1:123", -1, pkts[0]))
		assert.False(t, b.deliver("127.0.0.1:123", -1, pkts[1]))
		assert.True(t, b.deliver("127.0.0.1:123", -1, pkts[2]))
		got := b.advance(0)
		require.Len(t, got, 1)
		assert.Equal(t, 3, got[0].Packets)
		assert.Equal(t, uint64(1), b.stats.snapshot().OverCap)
	})
	t.Run("duration", func(t *testing.T) {
		b := newBed(t, Config{Quiet: time.Second, MaxDuration: 3500 * time.Millisecond}, MonList())
		b.take("127.0.0.1:123")
		for i := range 3 {
			b.deliver("127.0.0.1:123", -1, pkts[i])
			require.Empty(t, b.advance(900*time.Millisecond), "dripping just inside Quiet")
		}
		b.deliver("127.0.0.1:123", -1, pkts[3])
		got := b.advance(900 * time.Millisecond)
		require.Len(t, got, 1, "MaxDuration cut it off")
		assert.Equal(t, StatusPartial, got[0].Status)
		assert.Equal(t, uint64(1), b.stats.snapshot().OverCap)
	})
}

// TestEngineStopAndAbort: stopping finishes the silent flights waiting for
// a retry; aborting finishes every flight, marking those cut short.
func TestEngineStopAndAbort(t *testing.T) {
	b := newBed(t, Config{Retries: 3, RetryInterval: time.Second, Quiet: 10 * time.Second}, MonList())
	pkts := monlistReply(t, 12)
	b.take("127.0.0.1:123")
	b.take("127.0.0.2:123")
	b.deliver("127.0.0.2:123", -1, pkts[0])
	b.now = b.now.Add(time.Second)
	b.e.collect(b.now, false, false) // the silent one waits for a retry
	require.Equal(t, 1, b.e.retrying())
	b.e.collect(b.now, true, false)
	got := b.results()
	require.Len(t, got, 1)
	assert.Equal(t, StatusNoAnswer, got[0].Status)
	assert.NotErrorIs(t, got[0].Err, ErrAborted)
	b.e.collect(b.now, true, true)
	got = b.results()
	require.Len(t, got, 1)
	assert.Equal(t, StatusPartial, got[0].Status)
	assert.ErrorIs(t, got[0].Err, ErrAborted)
	assert.Equal(t, 0, b.e.inFlight())
}

// TestSendFailureSparesAnAnsweringFlight: a retry the kernel refuses does
// not cut short a reply to an earlier attempt that has started to arrive
// while the retry's batch was with the sending goroutine.
func TestSendFailureSparesAnAnsweringFlight(t *testing.T) {
	b := newBed(t, Config{Retries: 1, Quiet: time.Second}, MonList())
	pkts := monlistReply(t, 12)
	f := b.take("127.0.0.1:123")
	retry := b.request(f)
	require.False(t, b.deliver("127.0.0.1:123", -1, pkts[0]))
	b.e.sendFailed(f, retry, syscall.EPIPE)
	assert.Empty(t, b.advance(0), "an answering flight finishes by its quiet timer")
	got := b.advance(time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, StatusPartial, got[0].Status)
	assert.NotErrorIs(t, got[0].Err, syscall.EPIPE)
}

// TestTransientSendErrorRetries: a request refused for want of buffer
// space is asked again when retries remain; on the last attempt, or for
// a lasting error, the flight finishes with the send error. A failure
// reported for an attempt that was superseded changes nothing.
func TestTransientSendErrorRetries(t *testing.T) {
	b := newBed(t, Config{Retries: 1, RetryInterval: time.Second}, MonList())
	f, _ := b.admitTake(netip.MustParseAddrPort("127.0.0.1:123"))
	first := b.request(f)
	b.e.sendFailed(f, first, syscall.ENOBUFS)
	assert.Empty(t, b.advance(0), "a retry remains: its timer asks again")
	b.now = b.now.Add(time.Second)
	b.e.collect(b.now, false, false)
	require.Same(t, f, b.e.nextRetry())
	b.e.popRetry()
	last := b.request(f)
	b.e.sendFailed(f, first, syscall.EPERM)
	assert.Empty(t, b.advance(0), "a superseded attempt's failure")
	b.e.sendFailed(f, last, syscall.ENOBUFS)
	got := b.advance(0)
	require.Len(t, got, 1, "the last attempt failed")
	assert.Equal(t, StatusSendError, got[0].Status)
	assert.Equal(t, 2, got[0].Attempts)
	assert.ErrorIs(t, got[0].Err, syscall.ENOBUFS)

	g, _ := b.admitTake(netip.MustParseAddrPort("127.0.0.2:123"))
	b.e.sendFailed(g, b.request(g), syscall.EPERM)
	got = b.advance(0)
	require.Len(t, got, 1, "a lasting error finishes at once")
	assert.ErrorIs(t, got[0].Err, syscall.EPERM)
}

// TestEngineSeq: sequence numbers are keyed per engine and per target.
func TestEngineSeq(t *testing.T) {
	a, b := newBed(t, Config{}, ReadVar()), newBed(t, Config{}, ReadVar())
	same, differ := 0, 0
	for i := range 256 {
		tg := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 123)
		if a.e.seq(tg) == b.e.seq(tg) {
			same++
		}
		if a.e.seq(tg) != a.e.seq(netip.AddrPortFrom(tg.Addr(), 124)) {
			differ++
		}
	}
	assert.Less(t, same, 8)
	assert.Greater(t, differ, 248)
	f := a.take("127.0.0.1:123")
	var req mode6.Header
	require.NoError(t, req.UnmarshalBinary(a.sent[f]))
	assert.Equal(t, a.e.seq(netip.MustParseAddrPort("127.0.0.1:123")), req.Seq, "the request carries the keyed sequence number")
}

// TestEngineAllocs pins the engine's per-target and per-datagram work at
// zero allocations in steady state: taking a target, building its
// request, delivering a reply datagram, finishing it and recycling the
// flight. (The result's value allocates once per answering target, as it
// must: it is the caller's copy of the monitor list or the variables.)
func TestEngineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	b := newBed(t, Config{}, MonList())
	reply := mode7.AppendErrorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), mode7.InfoErrNoData)
	targets := make([]netip.AddrPort, 64)
	for i := range targets {
		targets[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i)}), 123)
	}
	round := func() {
		for _, tg := range targets {
			f, _ := b.admitTake(tg)
			_, attempt, ok := b.e.request(f, b.buf[:0], b.now)
			if !ok {
				t.Fatal("request")
			}
			b.e.sent(f, attempt, b.now)
		}
		for _, tg := range targets {
			b.e.deliver(false, b.e.slot(tg), tg, reply, len(reply), b.now)
		}
		b.e.collect(b.now, false, false)
		due := b.e.takeDue()
		for _, f := range due {
			_ = b.e.result(f)
		}
		b.e.release(due)
	}
	round() // the first round allocates the flights and assemblers
	round()
	before := b.stats.snapshot().Statuses.ServerError
	allocs := testing.AllocsPerRun(50, round)
	assert.Zero(t, allocs, "allocations per round of 64 targets")
	assert.Equal(t, uint64(64*51), b.stats.snapshot().Statuses.ServerError-before, "every round finished its targets")
}

// TestEngineAllocsReadVar pins what a READVAR target costs in steady
// state: one allocation per answering target, its Result's mode6.Reply
// (Data, the text its Vars slice, and Vars, in one block the caller
// owns); the engine, the assembler and the reassembly buffer add none.
func TestEngineAllocsReadVar(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	b := newBed(t, Config{}, ReadVar())
	targets := make([]netip.AddrPort, 64)
	replies := make([][]byte, len(targets))
	system := mode6.Vars{{Name: "version", Value: "ntpd ntpsec-1.2.2", Quoted: true}, {Name: "processor", Value: "x86_64", Quoted: true},
		{Name: "system", Value: "Linux/6.1.0", Quoted: true}, {Name: "leap", Value: "0"}, {Name: "stratum", Value: "2"},
		{Name: "precision", Value: "-24"}, {Name: "rootdelay", Value: "0.331"}, {Name: "rootdisp", Value: "1.225"},
		{Name: "refid", Value: "192.0.2.1"}, {Name: "reftime", Value: "0xeb1ac2d9.1c8f3d10"},
		{Name: "clock", Value: "0xeb1ac4b0.6e3f2a81"}, {Name: "peer", Value: "32471"}, {Name: "tc", Value: "10"},
		{Name: "mintc", Value: "0"}, {Name: "offset", Value: "-0.017"}, {Name: "frequency", Value: "-5.421"},
		{Name: "sys_jitter", Value: "0.053"}, {Name: "clk_jitter", Value: "0.021"}, {Name: "clk_wander", Value: "0.004"}}
	var rb mode6.ReplyBuilder
	for i := range targets {
		targets[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 0, byte(i)}), 123)
		rb.Reset(mode6.Header{Version: 2, Response: true, Op: mode6.OpReadVar, Seq: b.e.seq(targets[i])})
		rb.PutVars(system)
		pkts := rb.AppendPackets(nil, nil)
		require.Len(t, pkts, 1)
		replies[i] = pkts[0]
	}
	var results []Result[mode6.Reply]
	round := func() {
		for _, tg := range targets {
			f, _ := b.admitTake(tg)
			_, attempt, ok := b.e.request(f, b.buf[:0], b.now)
			if !ok {
				t.Fatal("request")
			}
			b.e.sent(f, attempt, b.now)
		}
		for i, tg := range targets {
			b.e.deliver(false, b.e.slot(tg), tg, replies[i], len(replies[i]), b.now)
		}
		b.e.collect(b.now, false, false)
		due := b.e.takeDue()
		results = results[:0]
		for _, f := range due {
			results = append(results, b.e.result(f))
		}
		b.e.release(due)
	}
	round() // the first round allocates the flights, assemblers and buffers
	round()
	allocs := testing.AllocsPerRun(50, round)
	assert.LessOrEqual(t, allocs, float64(len(targets)), "allocations per round of 64 answering targets")
	require.Len(t, results, len(targets))
	for _, r := range results {
		require.Equal(t, StatusOK, r.Status, "%v", r.Err)
		require.Equal(t, system, r.Value.Vars)
	}
}

// TestEngineAllocsClient pins the mode 3 probe of the discovery pass:
// a request, its reply matched by its origin timestamp and decoded into
// a value, its result: no allocation in steady state.
func TestEngineAllocsClient(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; .ci/run runs this test without it")
	}
	b := newBed(t, Config{}, Client())
	targets := make([]netip.AddrPort, 64)
	for i := range targets {
		targets[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, 1, byte(i)}), 123)
	}
	replies := make([][]byte, len(targets))
	ok := 0
	round := func() {
		for i, tg := range targets {
			f, _ := b.admitTake(tg)
			req, attempt, sent := b.e.request(f, b.buf[:0], b.now)
			if !sent {
				t.Fatal("request")
			}
			b.e.sent(f, attempt, b.now)
			// The server's answer: mode 4, the origin the request's
			// transmit time.
			r := replies[i][:0]
			r = append(r, 0x24, 2, 6, 0xe9)
			r = append(r, req[4:24]...)
			r = append(r, req[40:48]...)
			r = append(r, req[40:48]...)
			r = append(r, req[40:48]...)
			replies[i] = r
		}
		for i, tg := range targets {
			b.e.deliver(false, b.e.slot(tg), tg, replies[i], len(replies[i]), b.now)
		}
		b.e.collect(b.now, false, false)
		due := b.e.takeDue()
		for _, f := range due {
			if r := b.e.result(f); r.Status == StatusOK && r.Value.Mode == 4 {
				ok++
			}
		}
		b.e.release(due)
	}
	for i := range replies {
		replies[i] = make([]byte, 0, TimePacketLen)
	}
	round() // the first round allocates the flights and assemblers
	round()
	ok = 0
	allocs := testing.AllocsPerRun(50, round)
	assert.Zero(t, allocs, "allocations per round of 64 answering targets")
	assert.Equal(t, 64*51, ok, "every target answered")
}

// BenchmarkBookkeeping measures the engine's work per target without
// system calls: a new flight, its request, its timeout, its result.
func BenchmarkBookkeeping(bm *testing.B) {
	b := newBed(bm, Config{Timeout: time.Millisecond}, MonList())
	i := 0
	bm.ReportAllocs()
	for bm.Loop() {
		t := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 123)
		i++
		f, _ := b.admitTake(t)
		_, attempt, ok := b.e.request(f, b.buf[:0], b.now)
		if !ok {
			bm.Fatal("request")
		}
		b.e.sent(f, attempt, b.now)
		b.now = b.now.Add(time.Millisecond)
		b.e.collect(b.now, false, false)
		due := b.e.takeDue()
		for _, f := range due {
			_ = b.e.result(f)
		}
		b.e.release(due)
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

// TestEngineICMP: an ICMP error ends a silent flight with the status it
// means; one about an answering flight, another socket, or a kind that
// says nothing of reachability changes nothing.
func TestEngineICMP(t *testing.T) {
	b := newBed(t, Config{Retries: 2}, MonList())
	for i, c := range []struct {
		typ, code uint8
		v6        bool
		want      Status
		err       error
	}{
		{3, 3, false, StatusClosed, ErrClosed},
		{3, 1, false, StatusUnreachable, ErrUnreachable},
		{3, 13, false, StatusProhibited, ErrProhibited},
		{11, 0, false, StatusUnreachable, ErrUnreachable},
		{1, 4, true, StatusClosed, ErrClosed},
		{1, 1, true, StatusProhibited, ErrProhibited},
		{1, 3, true, StatusUnreachable, ErrUnreachable},
	} {
		tg := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 8, byte(i)}), 123)
		if c.v6 {
			tg = netip.AddrPortFrom(netip.AddrFrom16([16]byte{15: byte(i + 1)}), 123)
			b.cfg.Blocklist = &Blocklist{NoBuiltin: true, AllowLoopback: true}
		}
		b.take(tg.String())
		assert.False(t, b.e.deliverICMP(c.v6, (b.e.slot(tg)+1)%b.e.slots, tg, c.typ, c.code, c.v6, b.now), "another socket")
		assert.True(t, b.e.deliverICMP(c.v6, b.e.slot(tg), tg, c.typ, c.code, c.v6, b.now))
		got := b.advance(0)
		require.Len(t, got, 1)
		assert.Equal(t, c.want, got[0].Status, "type %d code %d", c.typ, c.code)
		assert.ErrorIs(t, got[0].Err, c.err)
		assert.Equal(t, 1, got[0].Attempts, "no retry after a definite answer")
	}
	tg := netip.MustParseAddrPort("127.0.9.1:123")
	b.take(tg.String())
	assert.False(t, b.e.deliverICMP(false, b.e.slot(tg), tg, 3, 4, false, b.now), "fragmentation needed")
	pkts := monlistReply(t, 12)
	b.deliver(tg.String(), -1, pkts[0])
	assert.False(t, b.e.deliverICMP(false, b.e.slot(tg), tg, 3, 3, false, b.now), "it answered")
	assert.Equal(t, uint64(16), b.stats.snapshot().ICMP, "every ICMP error counted")
}
