package ntpctl_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// responders opens n UDP sockets on 127.0.0.1, each answering requests
// through behave from its own goroutine, and returns their addresses.
// behave gets the socket's index, the request, and a function that sends
// a datagram back after a delay.
func responders(t testing.TB, n int, behave func(i int, req []byte, reply func(d time.Duration, b []byte))) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, n)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the sockets' cleanups close them
	for i := range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		out[i] = c.LocalAddr().(*net.UDPAddr).AddrPort()
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			for {
				k, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				req := append([]byte(nil), buf[:k]...)
				behave(i, req, func(d time.Duration, b []byte) {
					time.AfterFunc(d, func() { _, _ = c.WriteToUDPAddrPort(b, from) })
				})
			}
		}()
		t.Cleanup(func() { c.Close() })
	}
	return out
}

// monlistPackets returns a two-packet monlist reply.
func monlistPackets(t testing.TB) [][]byte {
	t.Helper()
	pkts, err := mode7.AppendMonitorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), clients(12))
	require.NoError(t, err)
	require.Len(t, pkts, 2)
	return pkts
}

// TestExactlyOnceUnderChaos: with retries, replies that come late, partly,
// twice or after the target was recycled, a slow consumer, repeated
// targets, cancellation and abort, every target taken is emitted exactly
// once, nothing stays in flight, and Run returns.
func TestExactlyOnceUnderChaos(t *testing.T) {
	t.Parallel()
	pkts := monlistPackets(t)
	nodata := mode7.AppendErrorReply(nil, mode7.NewRequest(mode7.ReqMonGetList1).Header(), mode7.InfoErrNoData)
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	jitter := func(max time.Duration) time.Duration {
		rmu.Lock()
		defer rmu.Unlock()
		return time.Duration(rng.Int64N(int64(max)))
	}
	targets := responders(t, 120, func(i int, _ []byte, reply func(time.Duration, []byte)) {
		switch i % 6 {
		case 0: // silent
		case 1:
			reply(0, nodata)
		case 2: // late: often after a retry was sent or the target finished
			reply(jitter(200*time.Millisecond), nodata)
		case 3: // the first packet only, sometimes late
			reply(jitter(120*time.Millisecond), pkts[0])
		case 4: // the whole reply, three times over
			for k := range 3 {
				d := jitter(150 * time.Millisecond)
				reply(d, pkts[0])
				reply(d+time.Duration(k)*time.Millisecond, pkts[1])
			}
		case 5: // a drip of first packets
			for k := range 8 {
				reply(time.Duration(k)*25*time.Millisecond, pkts[0])
			}
		}
	})
	// Every target twice in a row, some three times: repeats in flight.
	var seq []netip.AddrPort
	occurs := map[netip.AddrPort]int{}
	for i, tg := range targets {
		seq = append(seq, tg, tg)
		if i%7 == 0 {
			seq = append(seq, tg)
		}
		occurs[tg] = 2
		if i%7 == 0 {
			occurs[tg] = 3
		}
	}
	for round, mode := range []string{"complete", "cancel", "cancel+abort", "complete"} {
		cfg := fast()
		cfg.Retries = 2
		cfg.RetryInterval = 30 * time.Millisecond
		cfg.Timeout = 60 * time.Millisecond
		cfg.Quiet = 40 * time.Millisecond
		cfg.MaxDuration = 120 * time.Millisecond
		cfg.Rate = 3000
		cfg.BatchSize = 8
		cfg.Concurrency = 16 // flights are recycled while late replies arrive
		cfg.Senders = 1 + round%2
		p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		switch mode {
		case "cancel":
			time.AfterFunc(time.Duration(100+50*round)*time.Millisecond, cancel)
		case "cancel+abort":
			time.AfterFunc(120*time.Millisecond, cancel)
			time.AfterFunc(150*time.Millisecond, p.Abort)
		}
		seen := map[netip.AddrPort]int{}
		statuses := map[ntpctl.Status]int{}
		emitted := 0
		err = p.Run(ctx, func(yield func(netip.AddrPort) bool) {
			for _, tg := range seq {
				if !yield(tg) {
					return
				}
			}
		}, func(r ntpctl.Result[mode7.Reply]) error {
			seen[r.Target]++
			emitted++
			statuses[r.Status]++
			if jitter(4) == 0 {
				time.Sleep(jitter(3 * time.Millisecond)) // a slow consumer now and then
			}
			return nil
		})
		cancel()
		if mode == "complete" {
			require.NoError(t, err)
		}
		st := p.Stats()
		// Each target taken from the sequence (a repeat is taken anew
		// once the first has finished) is emitted once.
		for tg, n := range seen {
			require.LessOrEqual(t, n, occurs[tg], "%s: %v emitted %d times", mode, tg, n)
		}
		assert.Equal(t, st.Targets, st.Finished, mode)
		assert.Equal(t, st.Targets, uint64(emitted), mode)
		assert.Zero(t, st.InFlight, mode)
		if mode == "complete" {
			assert.Equal(t, len(seq), emitted, mode)
			assert.Positive(t, statuses[ntpctl.StatusRepeated], "repeats in flight are reported")
			assert.Positive(t, statuses[ntpctl.StatusOK], mode)
			assert.Positive(t, statuses[ntpctl.StatusNoAnswer], mode)
			assert.Positive(t, st.Late+st.Duplicates, mode)
		}
	}
}

// TestBlockedRangeStaysSmall: a blocked /14 in the targets is reported in
// bounded rounds, not gathered in memory first.
func TestBlockedRangeStaysSmall(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.10.1": {Mode7: ntpsim.Mode7NoData}})
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("10.0.0.0/14"))
	live := netip.AddrPortFrom(netip.MustParseAddr("127.0.10.1"), s.Port())
	p, err := ntpctl.NewProber(fast(), ntpctl.MonList())
	require.NoError(t, err)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	n, blocked := 0, 0
	var liveRes ntpctl.Result[mode7.Reply]
	require.NoError(t, p.Run(context.Background(), func(yield func(netip.AddrPort) bool) {
		if !yield(live) {
			return
		}
		for tg := range set.All(123) {
			if !yield(tg) {
				return
			}
		}
	}, func(r ntpctl.Result[mode7.Reply]) error {
		n++
		if r.Status == ntpctl.StatusBlocked {
			blocked++
		} else {
			liveRes = r
		}
		if n%8192 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	}))
	assert.Equal(t, 1<<18, blocked)
	assert.Equal(t, ntpctl.StatusServerError, liveRes.Status)
	assert.Less(t, peak-min(peak, base), uint64(64<<20), "heap growth while 2^18 blocked targets pass")
	assert.Equal(t, uint64(1), p.Stats().Sent)
}

// TestSlowEmitKeepsDeadlines: a consumer that takes longer than the
// timeout does not turn prompt answers into timeouts or inflate RTTs.
func TestSlowEmitKeepsDeadlines(t *testing.T) {
	t.Parallel()
	var targets []netip.AddrPort
	s := lab(t, "udp4", nil)
	for i := range 5 {
		a := netip.AddrFrom4([4]byte{127, 0, 11, byte(i + 1)})
		s.SetHost(a, &ntpsim.Host{Mode7: ntpsim.Mode7NoData})
		targets = append(targets, netip.AddrPortFrom(a, s.Port()))
	}
	cfg := fast()
	cfg.Timeout = 600 * time.Millisecond
	cfg.Rate = 20 // one target a round, each after a slow emit
	cfg.BatchSize = 1
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	var seq []netip.AddrPort
	for _, tg := range targets {
		seq = append(seq, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 123), tg)
	}
	res := map[netip.AddrPort]ntpctl.Result[mode7.Reply]{}
	require.NoError(t, p.Run(context.Background(), func(yield func(netip.AddrPort) bool) {
		for _, tg := range seq {
			if !yield(tg) {
				return
			}
		}
	}, func(r ntpctl.Result[mode7.Reply]) error {
		if r.Status == ntpctl.StatusBlocked {
			time.Sleep(time.Second)
			return nil
		}
		res[r.Target] = r
		return nil
	}))
	for _, tg := range targets {
		assert.Equal(t, ntpctl.StatusServerError, res[tg].Status, "%v", tg)
		assert.Less(t, res[tg].RTT, 900*time.Millisecond, "%v: not counted from before the 1 s emit", tg)
	}
}

// TestMaxDuration: a server that drips datagrams just inside Quiet is
// cut off after MaxDuration, with what it sent.
func TestMaxDuration(t *testing.T) {
	t.Parallel()
	pkts := monlistPackets(t)
	targets := responders(t, 1, func(_ int, _ []byte, reply func(time.Duration, []byte)) {
		for k := range 100 {
			reply(time.Duration(k)*20*time.Millisecond, pkts[0])
		}
	})
	cfg := fast()
	cfg.Quiet = 100 * time.Millisecond
	cfg.MaxDuration = 300 * time.Millisecond
	res, p := run(t, cfg, ntpctl.MonList(), targets)
	r := res[targets[0]]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.InDelta(t, 16, r.Packets, 4, "about MaxDuration ÷ 20 ms datagrams")
	assert.Equal(t, uint64(1), p.Stats().OverCap)
}

// TestOversizedDatagramsCountInFull: a datagram larger than the receive
// buffer is counted at its real size: it is amplification evidence.
func TestOversizedDatagramsCountInFull(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.13.1": {Mode7: ntpsim.Mode7NoData, Hostile: ntpsim.Hostile{PadTo: 6000}},
	})
	tg := netip.AddrPortFrom(netip.MustParseAddr("127.0.13.1"), s.Port())
	res, _ := run(t, fast(), ntpctl.MonList(), []netip.AddrPort{tg})
	assert.Equal(t, 1, res[tg].Packets)
	if runtime.GOOS == "linux" {
		assert.Equal(t, 6000, res[tg].Bytes)
	}
}
