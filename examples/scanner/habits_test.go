package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"

	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the flags and statistics zmap and zgrab2 users expect:
// -dryrun, -max-targets, -source-ip and -interface, -bandwidth, the send
// rate over the whole scan and the concurrency the rate needs.

// TestSendRateInStats: after a scan at -rate 1000 of about 1.5 s the
// statistics file and the summary give the rate over the sending time:
// the requests sent over the time from the first to the last, as the
// test sees them, and within the rate; not that of the last second (the
// scan waits a second for its silent hosts after the last request, and
// that rate is about 0 by then).
func TestSendRateInStats(t *testing.T) {
	s, dir, stdout, _ := labScan(t, "-rate", "1000", "-lab-hosts", "1500", "-probes", "monitor")
	// Watch the counter: when the first request went out and when the
	// last did.
	var first, last time.Time
	var sent uint64
	quit, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := s.probes[0].proberStats().Sent
			if n > 0 && first.IsZero() {
				first = time.Now()
			}
			if n > sent {
				sent, last = n, time.Now()
			}
		}
	}()
	_, err, _ := runFor(t, s, nil, 30*time.Second)
	close(quit)
	<-watched
	require.NoError(t, err)
	b, err := os.ReadFile(files(t, dir)["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	schematest.Validate(t, "scan_stats", b)
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	require.GreaterOrEqual(t, st.Sent, uint64(1500))
	seen := float64(sent) / last.Sub(first).Seconds()
	t.Logf("send rate %.0f/s, %.0f/s as watched", st.SendRate, seen)
	assert.InEpsilon(t, seen, st.SendRate, 0.25, "the scan's requests per second (loose: a loaded machine stalls)")
	assert.Greater(t, st.SendRate, 500.0, "the rate over the scan, not the last second's")
	assert.LessOrEqual(t, st.SendRate, 1000*1.05, "within -rate")
	assert.Equal(t, st.SendRate, st.Monitor.Prober.SendRate, "one probe: the prober's")
	assert.Contains(t, stdout.String(), fmt.Sprintf("%d requests sent, %.0f requests/s over the sending time", st.Sent, st.SendRate))
}

// dryLines runs a dry lab scan with args and returns its targets'
// addresses, in order, checking the probes on each line.
func dryLines(t *testing.T, probes string, args ...string) []netip.Addr {
	t.Helper()
	s, dir, stdout, stderr := labScan(t, append([]string{"-dryrun"}, args...)...)
	require.Empty(t, s.probes, "no prober: no socket")
	_, err := os.Stat(dir)
	require.NoError(t, err)
	require.NoError(t, s.dryRun(stdout))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
	assert.Contains(t, stderr.String(), "nothing was sent")
	var addrs []netip.Addr
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		target, what, ok := strings.Cut(line, " ")
		require.True(t, ok, "%q", line)
		assert.Equal(t, probes, what)
		ap, err := netip.ParseAddrPort(target)
		require.NoError(t, err, "%q", line)
		assert.Equal(t, s.port, ap.Port())
		addrs = append(addrs, ap.Addr())
	}
	return addrs
}

// TestDryRun: -dryrun lists the targets a scan with the same -seed,
// -shard and -max-targets probes, in the order it takes them, and opens
// no socket (there is no prober; and through run, a source address that
// cannot be bound does not matter, and -out is not even created).
func TestDryRun(t *testing.T) {
	args := []string{"-seed", "7", "-shard", "1/3", "-max-targets", "50", "-probes", "monitor"}
	dry := dryLines(t, "monitor", args...)
	require.Len(t, dry, 50)

	s, dir, _, _ := labScan(t, append(args, "-json-all")...)
	var mu sync.Mutex
	var taken []netip.Addr
	seq := s.seq
	s.seq = func(yield func(netip.AddrPort) bool) {
		for t := range seq {
			mu.Lock()
			taken = append(taken, t.Addr())
			mu.Unlock()
			if !yield(t) {
				return
			}
		}
	}
	_, err, _ := runFor(t, s, nil, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, dry, taken, "the real scan's targets, in its order")
	got := map[netip.Addr]bool{}
	for _, rec := range readJSON(t, files(t, dir)["-ntpctl-x.jsonl"]) {
		got[rec.IP] = true
	}
	want := map[netip.Addr]bool{}
	for _, a := range dry {
		want[a] = true
	}
	assert.Equal(t, keys(want), keys(got), "the results are those targets'")

	both := dryLines(t, "monitor,version", "-probes", "both", "-seed", "7", "-max-targets", "3")
	assert.Len(t, both, 3)
	// The lab's default is every probe; the MRU list follows READVAR's
	// answers and, with -discover, the control queries Mode 3's: the
	// targets get only the others.
	assert.Equal(t, both, dryLines(t, "time,monitor,version", "-seed", "7", "-max-targets", "3"))
	assert.Equal(t, both, dryLines(t, "time", "-seed", "7", "-max-targets", "3", "-discover"))

	// A real target list through run: 127.0.0.1-200 cannot be sent to
	// from 192.0.2.1 (no such local address), yet the dry run lists them.
	out := filepath.Join(t.TempDir(), "never")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-dryrun", "-allow-loopback", "-source-ip", "192.0.2.1", "-out", out, "-seed", "2", "127.0.0.1-127.0.0.200"}, &stdout, &stderr, nil)
	require.Equal(t, exitOK, code, stderr.String())
	assert.Equal(t, 200, strings.Count(stdout.String(), " monitor,version\n"))
	assert.Contains(t, stdout.String(), "127.0.0.200:123 monitor,version\n")
	_, err = os.Stat(out)
	assert.ErrorIs(t, err, os.ErrNotExist, "-out not created")
}

// TestMaxTargets: -max-targets N takes the first N targets of the
// permutation, so a larger N with the same seed is a superset (here, an
// extension of the same order); N% is that share of the shard.
func TestMaxTargets(t *testing.T) {
	all := dryLines(t, "monitor,version", "-probes", "both", "-seed", "11", "-lab-hosts", "200")
	small := dryLines(t, "monitor,version", "-probes", "both", "-seed", "11", "-lab-hosts", "200", "-max-targets", "20")
	large := dryLines(t, "monitor,version", "-probes", "both", "-seed", "11", "-lab-hosts", "200", "-max-targets", "40")
	require.Len(t, small, 20)
	require.Len(t, large, 40)
	assert.Equal(t, small, large[:20])
	assert.Equal(t, large, all[:40])
	pct := dryLines(t, "monitor,version", "-probes", "both", "-seed", "11", "-lab-hosts", "200", "-max-targets", "10%")
	assert.Len(t, pct, len(all)/10)
	assert.Equal(t, all[:len(all)/10], pct)
	assert.Len(t, dryLines(t, "monitor,version", "-probes", "both", "-seed", "11", "-lab-hosts", "200", "-max-targets", "100000"), len(all))

	for _, bad := range []string{"0", "-3", "x", "0%", "101%", "%"} {
		_, err := parseFlags([]string{"-max-targets", bad}, &bytes.Buffer{})
		assert.ErrorContains(t, err, "-max-targets", bad)
	}
}

// TestSourceIP: -source-ip 127.0.0.2 binds the prober's IPv4 sockets to
// it, and the lab's servers, which answer the address a request came
// from, answer there.
func TestSourceIP(t *testing.T) {
	s, _, _, _ := labScan(t, "-source-ip", "127.0.0.2", "-probes", "monitor", "-lab-hosts", "64")
	assert.Equal(t, netip.MustParseAddr("127.0.0.2"), s.cfg.LocalAddr4)
	assert.False(t, s.cfg.LocalAddr6.IsValid())
	var mu sync.Mutex
	bound := map[string]int{}
	s.cfg.ListenUDP = func(network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
		c, err := net.ListenUDP(network, laddr)
		if err == nil && network == "udp4" {
			mu.Lock()
			bound[c.LocalAddr().(*net.UDPAddr).IP.String()]++
			mu.Unlock()
		}
		return c, err
	}
	m, err := newProbeRun(s, &monitorKind)
	require.NoError(t, err)
	s.probes = []side{m}
	_, err, _ = runFor(t, s, nil, 20*time.Second)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.2"}, func() (ips []string) {
		for ip := range bound {
			ips = append(ips, ip)
		}
		return ips
	}(), "every IPv4 socket on 127.0.0.2")
	st := m.proberStats()
	assert.Positive(t, st.Statuses.OK, "the servers answered 127.0.0.2")
	assert.Zero(t, st.SendErrors)
}

// TestSourceIPAndInterfaceFlags: one address per family, repeated or
// comma-separated; -interface takes an interface's addresses, and an
// unknown one is an error that names it.
func TestSourceIPAndInterfaceFlags(t *testing.T) {
	o, err := parseFlags([]string{"-source-ip", "127.0.0.2,::1"}, &bytes.Buffer{})
	require.NoError(t, err)
	v4, v6, err := o.habits.localAddrs()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2", v4.String())
	assert.Equal(t, "::1", v6.String())
	o, err = parseFlags([]string{"-source-ip", "::1", "-source-ip", "127.0.0.3"}, &bytes.Buffer{})
	require.NoError(t, err)
	v4, v6, _ = o.habits.localAddrs()
	assert.Equal(t, "127.0.0.3", v4.String())
	assert.Equal(t, "::1", v6.String())
	for _, bad := range [][]string{
		{"-source-ip", "127.0.0.2,127.0.0.3", "-source-ip: 127.0.0.2 and 127.0.0.3: one address per family"},
		{"-source-ip", "nowhere", `-source-ip "nowhere"`},
		{"-interface", "no-such-if0", `-interface "no-such-if0": no such network interface`},
	} {
		_, err := parseFlags(bad[:2], &bytes.Buffer{})
		assert.ErrorContains(t, err, bad[2], "%v", bad)
	}
	lo := ""
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			lo = ifi.Name
		}
	}
	if lo == "" {
		t.Skip("no loopback interface")
	}
	o, err = parseFlags([]string{"-interface", lo}, &bytes.Buffer{})
	require.NoError(t, err)
	v4, _, err = o.habits.localAddrs()
	require.NoError(t, err)
	assert.True(t, v4.IsLoopback(), "%s", v4)
	o, err = parseFlags([]string{"-interface", lo, "-source-ip", "127.0.0.9"}, &bytes.Buffer{})
	require.NoError(t, err)
	v4, _, _ = o.habits.localAddrs()
	assert.Equal(t, "127.0.0.9", v4.String(), "-source-ip wins for its family")
}

// TestBandwidth: -bandwidth is bits per second with zmap's decimal
// suffixes, converted to requests per second over the requests' size
// on the wire (Mode 7 monlist: 48 octets of payload, Mode 6 READVAR:
// 12; IPv4 and UDP headers 28, IPv6 and UDP 48), and it excludes -rate.
func TestBandwidth(t *testing.T) {
	for in, want := range map[string]float64{"10M": 10e6, "500k": 500e3, "1G": 1e9, "1.5M": 1.5e6, "64000": 64000} {
		got, err := parseBandwidth(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "M", "-1M", "0", "10T", "fast", "1e16G", "1e300G", "NaN", "Inf"} {
		_, err := parseBandwidth(bad)
		assert.Error(t, err, bad)
	}
	got, err := parseBandwidth("1000G")
	require.NoError(t, err)
	assert.Equal(t, math.Floor(1e12/8/76), float64(bandwidthRate(got, 76)), "the largest bandwidth converts without overflow")
	assert.Equal(t, math.MaxInt32, bandwidthRate(1e300, 40), "a rate too large for an int is clamped, not 1")
	assert.Equal(t, 1, bandwidthRate(1, 40), "at least one request per second")
	_, err = parseFlags([]string{"-bandwidth", "10M", "-rate", "100"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "-bandwidth")
	assert.ErrorContains(t, err, "-rate")

	for _, c := range []struct {
		probes string
		has6   bool
		size   int
	}{
		{"monitor", false, 20 + 8 + 48},
		{"version", false, 20 + 8 + 12},
		{"both", false, (76 + 40) / 2},
		{"monitor", true, 40 + 8 + 48},
		{"both", true, (96 + 60) / 2},
		{"time", false, 20 + 8 + 48},
		// The MRU list goes only to READVAR's responders: not counted.
		{"all", false, (76 + 76 + 40) / 3},
	} {
		o, err := parseFlags([]string{"-probes", c.probes, "-bandwidth", "10M"}, &bytes.Buffer{})
		require.NoError(t, err)
		s := &scan{opts: o, has6: c.has6}
		assert.Equal(t, c.size, s.wireSize(), "%+v", c)
		assert.Equal(t, int(10e6/float64(8*c.size)), bandwidthRate(o.habits.bps, s.wireSize()), "%+v", c)
	}
	o, err := parseFlags([]string{"-probes", "all", "-discover", "-bandwidth", "10M"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 76, (&scan{opts: o}).wireSize(), "with -discover nearly every request is Mode 3's")
	// The lab has IPv6 hosts: 10M over both probes' 78 octets.
	s, _, _, _ := labScan(t, "-bandwidth", "10M", "-probes", "both")
	assert.Equal(t, 10_000_000/(8*78), s.opts.rate)
	assert.Equal(t, float64(10_000_000/(8*78)), s.cfg.Limiter.Rate())
}

// TestConcurrencyFromRate: without -concurrency the targets in flight
// follow the rate (silent targets hold their place for retries ×
// timeout + timeout: 4096 in flight capped scans at about 5000
// requests/s whatever -rate said); an explicit lower one is warned
// about.
func TestConcurrencyFromRate(t *testing.T) {
	for _, c := range []struct {
		rate, retries     int
		interval, timeout time.Duration
		want              int
	}{
		{10000, 1, 2 * time.Second, 2 * time.Second, 50000},
		{50000, 1, 2 * time.Second, 2 * time.Second, 250000},
		{100000, 1, 2 * time.Second, 2 * time.Second, 262144},
		{1000, 0, time.Second, time.Second, 4096},
		{5000, 0, time.Second, time.Second, 6250},
		{0, 1, time.Second, time.Second, 65536},
	} {
		assert.Equal(t, c.want, defaultConcurrency(c.rate, c.retries, c.interval, c.timeout), "%+v", c)
	}
	o, err := parseFlags([]string{"-allow-loopback", "127.0.0.1"}, &bytes.Buffer{})
	require.NoError(t, err)
	s := &scan{opts: o, stderr: &bytes.Buffer{}}
	cfg, err := s.proberConfig(ntpctl.Config{Retries: o.retries, Timeout: o.timeout})
	require.NoError(t, err)
	assert.Equal(t, 50000, cfg.Concurrency, "the defaults: -rate 10000, -retries 1, -timeout 2s")

	s, _, _, stderr := labScan(t, "-rate", "20000")
	assert.Equal(t, 25000, s.cfg.Concurrency, "the lab: 1 s, no retries")
	assert.NotContains(t, stderr.String(), "-concurrency")
	s, _, _, stderr = labScan(t, "-rate", "20000", "-concurrency", "5000")
	assert.Equal(t, 5000, s.cfg.Concurrency)
	assert.Contains(t, stderr.String(), "-concurrency 5000 cannot reach -rate 20000")
	assert.Contains(t, stderr.String(), "about 5000 requests/s")
	_, _, _, stderr = labScan(t, "-rate", "20000", "-concurrency", "30000")
	assert.NotContains(t, stderr.String(), "cannot reach")
	s, _, _, stderr = labScan(t, "-rate", "300000")
	assert.Equal(t, 262144, s.cfg.Concurrency, "the most by default")
	assert.Contains(t, stderr.String(), "the default stops at 262144")
}
