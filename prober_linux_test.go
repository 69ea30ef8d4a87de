//go:build linux

package ntpctl_test

import (
	"context"
	"github.com/ntpctl/ntpctl/mode6"
	"net"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRate: at a set rate the requests that reach the server never exceed
// it by more than 2% in any one-second window.
// rateSink receives datagrams on a wildcard port, stamped by the kernel
// as they arrive (SO_TIMESTAMPNS), so the reader's own scheduling delays
// do not bunch the times up; stop returns the times.
func rateSink(t *testing.T) (port uint16, stop func() []time.Time) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	require.NoError(t, err)
	_ = conn.SetReadBuffer(8 << 20)
	rc, err := conn.SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) {
		require.NoError(t, syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1))
	}))
	var times []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 512), make([]byte, 128)
		for {
			_, oobn, _, _, err := conn.ReadMsgUDP(buf, oob) // until closed
			if err != nil {
				return
			}
			stamp := time.Now()
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
					stamp = time.Unix(ts.Unix())
				}
			}
			times = append(times, stamp)
		}
	}()
	return uint16(conn.LocalAddr().(*net.UDPAddr).Port), func() []time.Time {
		time.Sleep(100 * time.Millisecond) // the last datagrams in the socket's queue
		conn.Close()
		<-done
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
		return times
	}
}

// busiestSecond returns the most datagrams in any one-second window.
func busiestSecond(times []time.Time) int {
	worst, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		worst = max(worst, i-j+1)
	}
	return worst
}

func TestRate(t *testing.T) {
	t.Parallel()
	port, stop := rateSink(t)
	const rate = 2000
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.9.0.0/21")) // 2048 targets, asked twice: about 2 s
	cfg := fast()
	cfg.Rate = rate
	cfg.Timeout = 50 * time.Millisecond
	cfg.Retries = 1 // retries take tokens too
	cfg.RetryInterval = 20 * time.Millisecond
	cfg.Senders = 2
	res := 0
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	require.NoError(t, p.Run(context.Background(), set.All(port), func(ntpctl.Result[mode7.Reply]) error { res++; return nil }))
	times := stop()
	require.Equal(t, 2048, res)
	require.Equal(t, uint64(4096), p.Stats().Sent)
	require.GreaterOrEqual(t, len(times), 4000, "loopback loses little")
	worst := busiestSecond(times)
	assert.LessOrEqual(t, float64(worst), rate*1.02, "requests in the busiest second")
	assert.Greater(t, float64(worst), rate*0.9, "the rate is reached")
}

// TestRateShared: two probers that share a RateLimiter stay within its
// rate together.
func TestRateShared(t *testing.T) {
	t.Parallel()
	port, stop := rateSink(t)
	const rate = 1500
	limiter := ntpctl.NewRateLimiter(rate, 0)
	cfg := fast()
	cfg.Limiter = limiter
	cfg.Timeout = 50 * time.Millisecond
	var a, b ntpctl.TargetSet
	a.AddPrefix(netip.MustParsePrefix("127.10.0.0/21"))
	b.AddPrefix(netip.MustParsePrefix("127.11.0.0/21"))
	pm, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	pv, err := ntpctl.NewProber(cfg, ntpctl.ReadVar())
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		assert.NoError(t, pm.Run(context.Background(), a.All(port), func(ntpctl.Result[mode7.Reply]) error { return nil }))
	}()
	go func() {
		defer wg.Done()
		assert.NoError(t, pv.Run(context.Background(), b.All(port), func(ntpctl.Result[mode6.Reply]) error { return nil }))
	}()
	wg.Wait()
	times := stop()
	require.GreaterOrEqual(t, len(times), 4000)
	worst := busiestSecond(times)
	assert.LessOrEqual(t, float64(worst), rate*1.02, "both probers' requests in the busiest second")
	assert.Greater(t, float64(worst), rate*0.9)
}

// TestSendErrors: requests the kernel refuses end as StatusSendError with
// the kernel's reason, at once, not as timeouts.
func TestSendErrors(t *testing.T) {
	t.Parallel()
	cfg := fast()
	cfg.Timeout = 5 * time.Second
	cfg.Retries = 3
	cfg.ListenUDP = func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		c, err := net.ListenUDP(network, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		rc, err := c.SyscallConn()
		require.NoError(t, err)
		// Shut the sending side: every send fails with EPIPE and no
		// packet leaves.
		require.NoError(t, rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_WR) }))
		return c, nil
	}
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.0.12.0/26"))
	start := time.Now()
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	n := 0
	require.NoError(t, p.Run(context.Background(), set.All(9), func(r ntpctl.Result[mode7.Reply]) error {
		n++
		assert.Equal(t, ntpctl.StatusSendError, r.Status)
		assert.ErrorIs(t, r.Err, syscall.EPIPE)
		return nil
	}))
	assert.Equal(t, 64, n)
	assert.Less(t, time.Since(start), 2*time.Second, "no waiting for the 5 s timeout")
	assert.Equal(t, uint64(64), p.Stats().SendErrors)
	assert.Zero(t, p.Stats().Sent)
}

// TestClosedPort: a request to a port nothing listens on gets an ICMP
// port unreachable back, which ends the target as closed at once, not
// as silent after the timeouts (nmap's closed against open|filtered).
func TestClosedPort(t *testing.T) {
	t.Parallel()
	for _, network := range []string{"udp4", "udp6"} {
		ip := net.IPv4(127, 0, 0, 1)
		if network == "udp6" {
			ip = net.IPv6loopback
		}
		c, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
		require.NoError(t, err)
		target := c.LocalAddr().(*net.UDPAddr).AddrPort()
		c.Close() // closed now
		cfg := fast()
		cfg.Timeout, cfg.Retries = 2*time.Second, 2
		start := time.Now()
		res, err := ntpctl.Query(context.Background(), cfg, ntpctl.MonList(), netip.AddrPortFrom(target.Addr().Unmap(), target.Port()))
		require.NoError(t, err)
		assert.Equal(t, ntpctl.StatusClosed, res.Status, "%s: %v", network, res.Err)
		assert.ErrorIs(t, res.Err, ntpctl.ErrClosed)
		assert.Equal(t, 1, res.Attempts)
		assert.Less(t, time.Since(start), time.Second, "%s: no waiting for the timeout", network)
	}
}

// TestSendRateOverTheScan: Stats.SendRate is the rate over the whole
// sending time, not the last second: after 1536 requests at up to 1000/s
// and a second of waiting for silent targets it is the rate at which the
// requests reached the server (the last-second meter said 0 by then),
// while CurrentSendRate, the last second's, has fallen.
func TestSendRateOverTheScan(t *testing.T) {
	port, stop := rateSink(t)
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.12.0.0/22")) // 1024 targets…
	set.AddPrefix(netip.MustParsePrefix("127.12.4.0/23")) // …and 512: 1.5 s at 1000/s
	cfg := fast()
	cfg.Rate = 1000
	cfg.Timeout = time.Second
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	require.NoError(t, p.Run(context.Background(), set.All(port), func(ntpctl.Result[mode7.Reply]) error { return nil }))
	times := stop()
	st := p.Stats()
	require.Equal(t, uint64(1536), st.Sent)
	require.GreaterOrEqual(t, len(times), 1500, "loopback loses little")
	seen := float64(len(times)-1) / times[len(times)-1].Sub(times[0]).Seconds()
	t.Logf("send rate %.0f/s, %.0f/s as received, current %.0f/s", st.SendRate, seen, st.CurrentSendRate)
	// A stall of a loaded machine at either end of the 1.5 s moves the two
	// measures apart; the last second's rate would be far off (0 or ~200).
	assert.InEpsilon(t, seen, st.SendRate, 0.25, "requests per second over the scan, as the server saw them")
	assert.Greater(t, st.SendRate, 500.0, "the rate over the scan, not the last second's")
	assert.LessOrEqual(t, st.SendRate, 1000*1.05, "within the rate")
	assert.Less(t, st.CurrentSendRate, st.SendRate/2, "the last second's rate, a second after the last request")
}
