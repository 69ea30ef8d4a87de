package ntpctl_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lab starts a simulated server on every 127.x.y.z address (and ::1 when
// v6) with the given hosts.
func lab(t testing.TB, network string, hosts map[string]*ntpsim.Host) *ntpsim.Server {
	t.Helper()
	cfg := ntpsim.Config{Hosts: map[netip.Addr]*ntpsim.Host{}}
	for a, h := range hosts {
		cfg.Hosts[netip.MustParseAddr(a)] = h
	}
	bind := "0.0.0.0:0"
	if network == "udp6" {
		bind = "[::1]:0"
	}
	s, err := ntpsim.Start(context.Background(), network, bind, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func clients(n int) []mode7.MonitorEntry {
	out := make([]mode7.MonitorEntry, n)
	for i := range out {
		out[i] = mode7.MonitorEntry{Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}),
			LocalAddr: netip.MustParseAddr("127.0.0.1"), Port: uint16(1024 + i), Mode: 3, Version: 4, Count: 1}
	}
	return out
}

// fast is a configuration for loopback tests: loopback allowed, short
// timeouts.
func fast() ntpctl.Config {
	return ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true}, Timeout: 300 * time.Millisecond,
		Quiet: 150 * time.Millisecond}
}

// run probes targets and returns the results by target, failing on a
// target emitted twice.
func run[R any](t testing.TB, cfg ntpctl.Config, probe ntpctl.Probe[R], targets []netip.AddrPort) (map[netip.AddrPort]ntpctl.Result[R], *ntpctl.Prober[R]) {
	t.Helper()
	p, err := ntpctl.NewProber(cfg, probe)
	require.NoError(t, err)
	out := map[netip.AddrPort]ntpctl.Result[R]{}
	err = p.Run(context.Background(), func(yield func(netip.AddrPort) bool) {
		for _, tg := range targets {
			if !yield(tg) {
				return
			}
		}
	}, func(r ntpctl.Result[R]) error {
		if _, dup := out[r.Target]; dup {
			t.Errorf("%v emitted twice", r.Target)
		}
		out[r.Target] = r
		return nil
	})
	require.NoError(t, err)
	return out, p
}

func TestMonListAgainstSimulator(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.1.1":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(600)},
		"127.0.1.2":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(7)},
		"127.0.1.3":  {Mode7: ntpsim.Mode7NoData},
		"127.0.1.4":  {Mode7: ntpsim.Mode7Silent},
		"127.0.1.5":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(40), Hostile: ntpsim.Hostile{EndlessMore: true, StormPackets: 400}},
		"127.0.1.6":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{Duplicates: 20}},
		"127.0.1.7":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{OtherPort: true}},
		"127.0.1.8":  {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{OtherAddr: true}},
		"127.0.1.10": {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{CountOverflow: true}},
		"127.0.1.11": {Mode7: ntpsim.Mode7Monlist, Clients: clients(60), Hostile: ntpsim.Hostile{GapEvery: 4}},
		"127.0.1.12": {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{Garbage: 3, Seed: 9}},
		"127.0.1.13": {Mode7: ntpsim.Mode7Monlist, Clients: clients(30), Hostile: ntpsim.Hostile{Reverse: true}},
	})
	port := s.Port()
	at := func(a string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), port) }
	var targets []netip.AddrPort
	for i := 1; i <= 13; i++ {
		targets = append(targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}), port))
	}
	cfg := fast()
	cfg.MaxPackets = 300
	res, p := run(t, cfg, ntpctl.MonList(), targets)
	require.Len(t, res, len(targets))

	r := res[at("127.0.1.1")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.Len(t, r.Value.Entries, 600)
	assert.Equal(t, 100, r.Packets)
	assert.Equal(t, 44000, r.Bytes)
	assert.Equal(t, 48, r.RequestBytes)
	assert.InDelta(t, 916.67, r.Amplification(), 0.01)
	assert.Equal(t, 1, r.Attempts)
	assert.Positive(t, r.RTT)
	assert.False(t, r.Time.IsZero())

	assert.Equal(t, ntpctl.StatusOK, res[at("127.0.1.2")].Status)
	assert.Len(t, res[at("127.0.1.2")].Value.Entries, 7)

	r = res[at("127.0.1.3")]
	assert.Equal(t, ntpctl.StatusServerError, r.Status, "monlist disabled")
	assert.ErrorIs(t, r.Err, mode7.InfoErrNoData)
	assert.Equal(t, 8, r.Bytes)

	assert.Equal(t, ntpctl.StatusNoAnswer, res[at("127.0.1.4")].Status)
	assert.ErrorIs(t, res[at("127.0.1.4")].Err, ntpctl.ErrNoAnswer)

	r = res[at("127.0.1.5")]
	assert.Equal(t, ntpctl.StatusPartial, r.Status, "a more bit that never clears")
	assert.ErrorIs(t, r.Err, mode7.ErrNoEnd)
	assert.LessOrEqual(t, r.Packets, 300)
	assert.LessOrEqual(t, len(r.Value.Entries), mode7.DefaultMaxEntries)

	r = res[at("127.0.1.6")]
	assert.Equal(t, ntpctl.StatusOK, r.Status, "a duplicate storm still completes")
	assert.Len(t, r.Value.Entries, 12)

	for _, a := range []string{"127.0.1.7", "127.0.1.8"} {
		assert.Equal(t, ntpctl.StatusNoAnswer, res[at(a)].Status, "%s: replies from elsewhere do not count", a)
	}
	r = res[at("127.0.1.10")]
	assert.Equal(t, ntpctl.StatusProtocolError, r.Status, "item counts larger than the data")
	assert.ErrorIs(t, r.Err, mode7.ErrLength)
	r = res[at("127.0.1.11")]
	assert.Equal(t, ntpctl.StatusPartial, r.Status)
	assert.ErrorIs(t, r.Err, mode7.ErrIncomplete)
	r = res[at("127.0.1.12")]
	assert.Equal(t, ntpctl.StatusOK, r.Status, "garbage around a good reply")
	assert.Equal(t, ntpctl.StatusOK, res[at("127.0.1.13")].Status, "reversed packets")

	st := p.Stats()
	assert.Equal(t, uint64(13), st.Targets)
	assert.Equal(t, uint64(13), st.Sent)
	assert.Equal(t, uint64(13), st.Finished)
	assert.Zero(t, st.InFlight)
	assert.Positive(t, st.Unsolicited, "the other-port and other-address replies")
	assert.Positive(t, st.Duplicates)
	assert.Positive(t, st.Malformed)
	assert.GreaterOrEqual(t, st.Statuses.NoAnswer, uint64(3))
	assert.Equal(t, st.Matched, st.Accepted+st.Duplicates+st.Malformed+st.Dropped+1, "every reply datagram by kind (one error reply in none)")
}

func TestReadVarAgainstSimulator(t *testing.T) {
	t.Parallel()
	system := ntpsim.NTPsecVars(ntpsim.SystemInfo{Version: "ntpd ntpsec-1.2.2", Processor: "x86_64", System: "Linux/6.1",
		Stratum: 2, RefID: "192.0.2.1"})
	// With a 400-character extra variable the reply takes two fragments.
	long := append(append(mode6.Vars(nil), system...), mode6.Var{Name: "pad", Value: strings.Repeat("y", 400)})
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.2.1": {Mode6: ntpsim.Mode6NTPsec, Status: 0x0615, System: system},
		"127.0.2.2": {Mode6: ntpsim.Mode6Classic, Status: 0x0615, System: long},
		"127.0.2.3": {Mode6: ntpsim.Mode6Silent},
		"127.0.2.4": {Mode6: ntpsim.Mode6NTPsec, System: system, Hostile: ntpsim.Hostile{WrongSeq: true}},
		"127.0.2.5": {Mode6: ntpsim.Mode6NTPsec, System: system, Hostile: ntpsim.Hostile{JunkValues: true}},
		"127.0.2.6": {Mode6: ntpsim.Mode6NTPsec, System: long, Hostile: ntpsim.Hostile{EndlessMore: true, StormPackets: 100}},
		"127.0.2.7": {Mode6: ntpsim.Mode6NTPsec, System: long, Hostile: ntpsim.Hostile{Overlap: true, Duplicates: 3}},
		"127.0.2.8": {Mode6: ntpsim.Mode6NTPsec, System: system, Hostile: ntpsim.Hostile{CountOverflow: true}},
	})
	port := s.Port()
	at := func(a string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), port) }
	var targets []netip.AddrPort
	for i := 1; i <= 8; i++ {
		targets = append(targets, at("127.0.2."+string(rune('0'+i))))
	}
	res, p := run(t, fast(), ntpctl.ReadVar(), targets)
	require.Len(t, res, 8)

	r := res[at("127.0.2.1")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	v, _ := r.Value.Vars.Lookup("version")
	assert.Equal(t, "ntpd ntpsec-1.2.2", v)
	assert.Equal(t, uint16(0x0615), r.Value.Status)
	assert.Equal(t, 12, r.RequestBytes)
	assert.Greater(t, r.Amplification(), 20.0)

	r = res[at("127.0.2.2")]
	require.Equal(t, ntpctl.StatusOK, r.Status, "%v", r.Err)
	assert.Equal(t, 2, r.Value.Fragments)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[at("127.0.2.3")].Status)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[at("127.0.2.4")].Status, "wrong sequence numbers never match")
	r = res[at("127.0.2.5")]
	assert.Equal(t, ntpctl.StatusOK, r.Status)
	assert.Positive(t, r.Value.Parse.Dropped)
	r = res[at("127.0.2.6")]
	assert.Equal(t, ntpctl.StatusPartial, r.Status, "a more bit that never clears")
	assert.ErrorIs(t, r.Err, mode6.ErrTooManyFragments)
	r = res[at("127.0.2.7")]
	assert.Equal(t, ntpctl.StatusOK, r.Status, "overlaps and duplicates dropped")
	assert.Equal(t, ntpctl.StatusProtocolError, res[at("127.0.2.8")].Status)
	st := p.Stats()
	assert.Positive(t, st.Mismatched, "the wrong sequence numbers")
	assert.Equal(t, uint64(8), st.Finished)
}

func TestIPv6Loopback(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp6", map[string]*ntpsim.Host{"::1": {Mode7: ntpsim.Mode7Monlist, Clients: clients(9)}})
	target := netip.AddrPortFrom(netip.IPv6Loopback(), s.Port())
	res, _ := run(t, fast(), ntpctl.MonList(), []netip.AddrPort{target})
	assert.Equal(t, ntpctl.StatusOK, res[target].Status)
	assert.Len(t, res[target].Value.Entries, 9)
}

func TestMixedFamilies(t *testing.T) {
	t.Parallel()
	s4 := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.3.1": {Mode7: ntpsim.Mode7Monlist, Clients: clients(3)}})
	s6 := lab(t, "udp6", map[string]*ntpsim.Host{"::1": {Mode7: ntpsim.Mode7NoData}})
	t4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.3.1"), s4.Port())
	t6 := netip.AddrPortFrom(netip.IPv6Loopback(), s6.Port())
	res, _ := run(t, fast(), ntpctl.MonList(), []netip.AddrPort{t4, t6})
	assert.Equal(t, ntpctl.StatusOK, res[t4].Status)
	assert.Equal(t, ntpctl.StatusServerError, res[t6].Status)
}

func TestBlockedTargetsAreNeverSent(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.4.1": {Mode7: ntpsim.Mode7NoData}, "127.0.4.2": {Mode7: ntpsim.Mode7NoData}})
	cfg := fast()
	cfg.Blocklist = &ntpctl.Blocklist{AllowLoopback: true}
	cfg.Blocklist.Deny(ntpctl.Range{First: netip.MustParseAddr("127.0.4.2"), Last: netip.MustParseAddr("127.0.4.2")})
	port := s.Port()
	targets := []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.4.1"), port),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.4.2"), port),
		netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port),
		netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port),
		netip.AddrPortFrom(netip.MustParseAddr("::ffff:192.168.0.1"), port),
	}
	res, p := run(t, cfg, ntpctl.MonList(), targets)
	require.Len(t, res, 5)
	assert.Equal(t, ntpctl.StatusServerError, res[targets[0]].Status)
	for _, tg := range targets[1:4] {
		assert.Equal(t, ntpctl.StatusBlocked, res[tg].Status, "%v", tg)
		assert.ErrorIs(t, res[tg].Err, ntpctl.ErrBlocked)
	}
	assert.Equal(t, ntpctl.StatusBlocked, res[netip.AddrPortFrom(netip.MustParseAddr("192.168.0.1"), port)].Status)
	st := p.Stats()
	assert.Equal(t, uint64(1), st.Sent, "only the allowed target got a packet")
	assert.Equal(t, uint64(1), s.Stats().Requests)
	assert.Equal(t, uint64(4), st.Statuses.Blocked)

	// Without AllowLoopback, loopback is refused.
	res, p = run(t, ntpctl.Config{Timeout: 100 * time.Millisecond}, ntpctl.MonList(), targets[:1])
	assert.Equal(t, ntpctl.StatusBlocked, res[targets[0]].Status)
	assert.Zero(t, p.Stats().Sent)
}

func TestRetries(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.5.2": {Mode7: ntpsim.Mode7Silent}})
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.5.1"), s.Port())
	silent := netip.AddrPortFrom(netip.MustParseAddr("127.0.5.2"), s.Port())
	// The host appears after the first request, so the retry is answered.
	go func() {
		time.Sleep(150 * time.Millisecond)
		s.SetHost(target.Addr(), &ntpsim.Host{Mode7: ntpsim.Mode7NoData})
	}()
	cfg := fast()
	cfg.Retries = 2
	cfg.RetryInterval = 500 * time.Millisecond
	res, p := run(t, cfg, ntpctl.MonList(), []netip.AddrPort{target, silent})
	assert.Equal(t, ntpctl.StatusServerError, res[target].Status)
	assert.Equal(t, 2, res[target].Attempts)
	assert.Equal(t, ntpctl.StatusNoAnswer, res[silent].Status)
	assert.Equal(t, 3, res[silent].Attempts)
	assert.Equal(t, uint64(3), p.Stats().Retried)
}

func TestCaps(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.6.1": {Mode7: ntpsim.Mode7Monlist, Clients: clients(12), Hostile: ntpsim.Hostile{Duplicates: 500, StormPackets: 1000}},
		"127.0.6.2": {Mode7: ntpsim.Mode7Monlist, Clients: clients(12)},
	})
	cfg := fast()
	cfg.MaxPackets = 20
	t1 := netip.AddrPortFrom(netip.MustParseAddr("127.0.6.1"), s.Port())
	t2 := netip.AddrPortFrom(netip.MustParseAddr("127.0.6.2"), s.Port())
	res, p := run(t, cfg, ntpctl.MonList(), []netip.AddrPort{t1, t2})
	assert.Equal(t, 20, res[t1].Packets, "capped")
	assert.Equal(t, ntpctl.StatusOK, res[t2].Status, "the neighbour is unaffected")
	st := p.Stats()
	assert.Equal(t, uint64(1), st.OverCap)
	assert.Positive(t, st.Late, "the rest of the storm arrives late")
}

// TestCancel: after cancellation nothing more is sent, every target taken
// is emitted exactly once, and Run returns the context's error.
func TestCancel(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", nil) // every address silent
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.7.0.0/18"))
	cfg := fast()
	cfg.Rate = 20000
	cfg.Timeout = 400 * time.Millisecond
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[netip.AddrPort]int{}
	var sentAtCancel uint64
	go func() {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		sentAtCancel = p.Stats().Sent
		cancel()
		mu.Unlock()
	}()
	start := time.Now()
	err = p.Run(ctx, set.All(s.Port()), func(r ntpctl.Result[mode7.Reply]) error {
		mu.Lock()
		seen[r.Target]++
		mu.Unlock()
		return nil
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 2*time.Second)
	st := p.Stats()
	// What may still go out: the two batches already handed to the
	// sending goroutine (Stats.Sent counts a batch once it is sent) and
	// the round that was under way when the context was cancelled.
	assert.LessOrEqual(t, st.Sent, sentAtCancel+uint64(3*64), "sending stops at once")
	assert.Equal(t, st.Targets, uint64(len(seen)), "every target taken is emitted")
	for tg, n := range seen {
		require.Equal(t, 1, n, "%v", tg)
	}
	assert.Zero(t, st.InFlight)
}

func TestAbort(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", nil)
	var set ntpctl.TargetSet
	set.AddPrefix(netip.MustParsePrefix("127.8.0.0/20"))
	cfg := fast()
	cfg.Timeout = 5 * time.Second
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
		time.Sleep(100 * time.Millisecond)
		p.Abort()
	}()
	start := time.Now()
	n := 0
	err = p.Run(ctx, set.All(s.Port()), func(r ntpctl.Result[mode7.Reply]) error {
		n++
		assert.ErrorIs(t, r.Err, ntpctl.ErrAborted)
		return nil
	})
	assert.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "a second stop does not wait for the 5 s timeout")
	assert.Equal(t, int(p.Stats().Targets), n)
	assert.Error(t, p.Run(ctx, set.All(1), func(ntpctl.Result[mode7.Reply]) error { return nil }), "a prober runs once")
}

func TestEmitErrorStops(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{"127.0.9.1": {Mode7: ntpsim.Mode7NoData}})
	boom := errors.New("disk full")
	p, err := ntpctl.NewProber(fast(), ntpctl.MonList())
	require.NoError(t, err)
	err = p.Run(context.Background(), ntpctl.Addrs(s.Port(), netip.MustParseAddr("127.0.9.1")),
		func(ntpctl.Result[mode7.Reply]) error { return boom })
	assert.ErrorIs(t, err, boom)
}

// TestSendersMatchTheirSockets: with several sockets per family, every
// reply is matched on the socket its request left from, retries leave
// from the first request's socket, and each target is sent to once per
// attempt.
func TestSendersMatchTheirSockets(t *testing.T) {
	t.Parallel()
	hosts := map[string]*ntpsim.Host{}
	for i := 1; i <= 40; i++ {
		hosts[fmt.Sprintf("127.0.13.%d", i)] = &ntpsim.Host{Mode7: ntpsim.Mode7NoData}
	}
	s4 := lab(t, "udp4", hosts)
	s6 := lab(t, "udp6", map[string]*ntpsim.Host{"::1": {Mode7: ntpsim.Mode7NoData}})
	late := netip.AddrPortFrom(netip.MustParseAddr("127.0.13.200"), s4.Port())
	go func() {
		// It appears after its first request (ignored: no such host yet)
		// has come, in time for the retry.
		for s4.Stats().Ignored == 0 {
			time.Sleep(time.Millisecond)
		}
		s4.SetHost(late.Addr(), &ntpsim.Host{Mode7: ntpsim.Mode7NoData})
	}()
	var targets []netip.AddrPort
	for i := 1; i <= 40; i++ {
		targets = append(targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 13, byte(i)}), s4.Port()))
		if i == 20 {
			targets = append(targets, netip.AddrPortFrom(netip.IPv6Loopback(), s6.Port()), late)
		}
	}
	cfg := fast()
	cfg.Senders = 3
	cfg.BatchSize = 4
	cfg.Retries = 1
	cfg.RetryInterval = 250 * time.Millisecond
	cfg.Timeout = 250 * time.Millisecond
	res, p := run(t, cfg, ntpctl.MonList(), targets)
	require.Len(t, res, 42)
	for _, tg := range targets {
		assert.Equal(t, ntpctl.StatusServerError, res[tg].Status, "%v: %v", tg, res[tg].Err)
	}
	assert.Equal(t, 2, res[late].Attempts)
	st := p.Stats()
	attempts := 0
	for _, r := range res {
		attempts += r.Attempts
	}
	assert.Equal(t, uint64(attempts), st.Sent, "one datagram per attempt (43 but for retries a loaded machine causes)")
	assert.GreaterOrEqual(t, st.Sent, uint64(43))
	assert.Zero(t, st.Unsolicited+st.Mismatched+st.SendErrors)
}

// TestQuery: one host, as ntpq or ntpdc ask it; a context done before
// the query gives ctx's error and the zero result, one done after a
// complete reply does not spoil it.
func TestQuery(t *testing.T) {
	t.Parallel()
	s := lab(t, "udp4", map[string]*ntpsim.Host{
		"127.0.6.1": {Mode7: ntpsim.Mode7Monlist, Clients: clients(5)},
		"127.0.6.2": {Mode7: ntpsim.Mode7Silent},
	})
	target := netip.AddrPortFrom(netip.MustParseAddr("127.0.6.1"), s.Port())
	res, err := ntpctl.Query(context.Background(), fast(), ntpctl.MonList(), target)
	require.NoError(t, err)
	assert.Equal(t, ntpctl.StatusOK, res.Status)
	assert.Len(t, res.Value.Entries, 5)
	assert.Equal(t, target, res.Target)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err = ntpctl.Query(ctx, fast(), ntpctl.MonList(), target)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, res.Status, "never sent")

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res, err = ntpctl.Query(ctx, fast(), ntpctl.MonList(), netip.AddrPortFrom(netip.MustParseAddr("127.0.6.2"), s.Port()))
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, res.Err, ntpctl.ErrAborted, "cut short: what came back, aborted")
	assert.Less(t, time.Since(start), fast().Timeout, "no waiting for the timeout")
}

// TestSilentScanWithRetries: a scan of silent targets with a retry each,
// under a rate cap, with few flights in the air and the full pool of
// sockets, finishes every target after its two attempts. (Retries queued
// behind the sockets of new targets waiting for room were never sent:
// the flights waiting for them filled the air and the scan stalled.)
func TestSilentScanWithRetries(t *testing.T) {
	s := lab(t, "udp4", nil)
	cfg := fast()
	cfg.Retries, cfg.RetryInterval, cfg.Timeout = 1, 20*time.Millisecond, 30*time.Millisecond
	cfg.Concurrency = 64
	cfg.Limiter = ntpctl.NewRateLimiter(100_000, 0)
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 0
	err = p.Run(ctx, func(yield func(netip.AddrPort) bool) {
		for i := range 2048 {
			if !yield(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 50, byte(i >> 8), byte(i)}), s.Port())) {
				return
			}
		}
	}, func(r ntpctl.Result[mode7.Reply]) error {
		n++
		assert.Equal(t, ntpctl.StatusNoAnswer, r.Status)
		assert.Equal(t, 2, r.Attempts)
		return nil
	})
	require.NoError(t, err, "stalled: %d of 2048 finished; %+v", n, p.Stats())
	assert.Equal(t, 2048, n)
	assert.Equal(t, uint64(2*2048), p.Stats().Sent)
}
