//go:build unix

package ntpctl_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/batchconn"
	"github.com/ntpctl/ntpctl/internal/ntpsim"
	"github.com/ntpctl/ntpctl/mode7"
)

// sink is a UDP socket on every 127.x.y.z address that reads and drops
// what it gets, so that probes to it go unanswered without ICMP errors.
// With NTPCTL_BENCH_NOSINK set, the port is a closed one instead, so no
// reader competes for the CPU (the kernel answers with ICMP errors,
// which unconnected sockets ignore).
func sink(tb testing.TB) (port uint16, received *atomic.Uint64) {
	tb.Helper()
	if os.Getenv("NTPCTL_BENCH_NOSINK") != "" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
		if err != nil {
			tb.Fatal(err)
		}
		port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
		c.Close()
		return port, new(atomic.Uint64)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		tb.Fatal(err)
	}
	_ = c.SetReadBuffer(32 << 20)
	tb.Cleanup(func() { c.Close() })
	received = new(atomic.Uint64)
	rd := batchconn.New(c).NewReader(64)
	for i := range rd.Msgs() {
		rd.Msgs()[i].Buf = make([]byte, 600)
	}
	go func() {
		for {
			n, err := rd.Read()
			if err != nil {
				return
			}
			received.Add(uint64(n))
		}
	}()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port), received
}

func targets16(port uint16) []netip.AddrPort { return targetsIn("127.64.0.0/16", port) }

// targetsIn returns a prefix's addresses in permuted order.
func targetsIn(prefix string, port uint16) []netip.AddrPort {
	var s ntpctl.TargetSet
	s.AddPrefix(netip.MustParsePrefix(prefix))
	seq, _ := s.Permuted(ntpctl.PermuteOptions{Port: port, Seed: 1})
	var out []netip.AddrPort
	for t := range seq {
		out = append(out, t)
	}
	return out
}

func slice(ts []netip.AddrPort) func(func(netip.AddrPort) bool) {
	return func(yield func(netip.AddrPort) bool) {
		for _, t := range ts {
			if !yield(t) {
				return
			}
		}
	}
}

// BenchmarkSend compares the prober's send rate with the ceiling of the
// machine: each iteration sends 48-octet monlist probes to the same 2^18
// loopback targets (which never answer) twice, first with a bare sendmmsg
// loop (64 datagrams per call, nothing else) on one socket per thread,
// then with the prober (no rate cap, Config.Senders sockets and sending
// goroutines; flights recycle after the first 2^15). Interleaving the two
// keeps a noisy machine's drift out of the ratio. The sub-benchmarks run
// one and two sending threads.
func BenchmarkSend(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("senders=%d", threads), func(b *testing.B) {
			port, _ := sink(b)
			targets := targetsIn("127.64.0.0/14", port)
			var bareTime, proberTime time.Duration
			var bareSent, proberSent uint64
			var allocs uint64
			for b.Loop() {
				start := time.Now()
				bareSent += bareSendThreads(b, targets, threads)
				bareTime += time.Since(start)

				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				d, n := proberSend(b, targets, threads)
				runtime.ReadMemStats(&after)
				proberTime += d
				proberSent += n
				allocs += after.Mallocs - before.Mallocs
			}
			bare := float64(bareSent) / bareTime.Seconds()
			prober := float64(proberSent) / proberTime.Seconds()
			b.ReportMetric(bare, "bare-packets/s")
			b.ReportMetric(prober, "prober-packets/s")
			b.ReportMetric(prober/bare, "ratio")
			b.ReportMetric(float64(allocs)/float64(proberSent), "allocs/probe")
		})
	}
}

// bareSendThreads splits the targets among threads, each with its own
// socket, and sends them with bareSend.
func bareSendThreads(b *testing.B, targets []netip.AddrPort, threads int) uint64 {
	var wg sync.WaitGroup
	var sent atomic.Uint64
	per := (len(targets) + threads - 1) / threads
	for i := 0; i < len(targets); i += per {
		part := targets[i:min(i+per, len(targets))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent.Add(bareSend(b, part))
		}()
	}
	wg.Wait()
	return sent.Load()
}

// bareSend sends one request to each target with a plain sendmmsg loop.
func bareSend(b *testing.B, targets []netip.AddrPort) uint64 {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		b.Error(err)
		return 0
	}
	defer c.Close()
	_ = c.SetWriteBuffer(4 << 20)
	bc := batchconn.New(c)
	req, _ := mode7.NewRequest(mode7.ReqMonGetList1).MarshalBinary()
	msgs := make([]batchconn.Message, 64)
	addrs := make([]net.UDPAddr, 64)
	for i := range msgs {
		addrs[i].IP = make(net.IP, 4)
		msgs[i] = batchconn.Message{Buffers: [][]byte{req}, Addr: &addrs[i]}
	}
	var sent uint64
	for i := 0; i < len(targets); i += 64 {
		n := min(64, len(targets)-i)
		for j := range n {
			a := targets[i+j].Addr().As4()
			copy(addrs[j].IP, a[:])
			addrs[j].Port = int(targets[i+j].Port())
		}
		w, _ := bc.WriteBatch(msgs[:n])
		sent += uint64(w)
	}
	return sent
}

// proberSend scans the targets with the prober and returns how long it
// took to send them all (the timeouts after the last send excluded).
func proberSend(b *testing.B, targets []netip.AddrPort, senders int) (time.Duration, uint64) {
	cfg := ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true}, Concurrency: 1 << 15,
		Timeout: 50 * time.Millisecond, Senders: senders}
	p, err := ntpctl.NewProber(cfg, ntpctl.MonList())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var lastSend atomic.Int64
	stop := make(chan struct{})
	go func() { // note when the last request has gone out
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			if p.Stats().Sent >= uint64(len(targets)) {
				lastSend.Store(int64(time.Since(start)))
				return
			}
		}
	}()
	err = p.Run(context.Background(), slice(targets), func(ntpctl.Result[mode7.Reply]) error { return nil })
	close(stop)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(lastSend.Load()), p.Stats().Sent
}

// BenchmarkScan scans 2^16 loopback targets answered by the simulated
// server (each answers monlist with INFO_ERR_NODATA, as ntpd 4.2.8 does):
// probes sent and results per second, loss, allocations per probe (the
// simulator's work and the result values included: the prober's own
// receive path, a raw recvmmsg on 64-bit Linux, allocates nothing). It
// fails past the budgets of issue 14: 2 allocations per READVAR probe
// (one is the Reply, the rest the run's sockets and flights), 0.5 per
// monlist probe. The MRU list walk (a nonce and one page of one entry,
// two requests a target) parses its pages into new values and keeps
// its entries: 16 allocations per request (11.5 measured). The mode 3
// probe of the discovery pass has monlist's budget: its reply is a value.
func BenchmarkScan(b *testing.B) {
	for _, name := range []string{"monlist-nodata", "readvar", "mrulist", "client"} {
		b.Run(name, func(b *testing.B) {
			host := &ntpsim.Host{Mode7: ntpsim.Mode7NoData, Mode6: ntpsim.Mode6NTPsec, Status: 0x0615,
				System: ntpsim.NTPsecVars(ntpsim.SystemInfo{Version: "ntpd ntpsec-1.2.2", Stratum: 2, RefID: "192.0.2.1"})}
			s, err := ntpsim.Start(context.Background(), "udp4", "0.0.0.0:0", ntpsim.Config{Default: host})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			targets := targets16(s.Port())
			cfg := ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true}, Concurrency: 8192,
				Timeout: 500 * time.Millisecond, Quiet: 50 * time.Millisecond}
			var answered, total, sent uint64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for b.Loop() {
				switch name {
				case "readvar":
					answered += scanOnce(b, cfg, ntpctl.ReadVar(), targets, &sent)
				case "mrulist":
					answered += scanOnce(b, cfg, ntpctl.MRUList(), targets, &sent)
				case "client":
					answered += scanOnce(b, cfg, ntpctl.Client(), targets, &sent)
				default:
					answered += scanOnce(b, cfg, ntpctl.MonList(), targets, &sent)
				}
				total += uint64(len(targets))
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "probes/s")
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "results/s")
			b.ReportMetric(100*float64(total-answered)/float64(total), "loss%")
			perProbe := float64(after.Mallocs-before.Mallocs) / float64(sent)
			b.ReportMetric(perProbe, "allocs/probe")
			if budget := map[string]float64{"readvar": 2, "monlist-nodata": 0.5, "mrulist": 16, "client": 0.5}[name]; perProbe > budget {
				b.Errorf("%.2f allocations per probe, over the budget of %v", perProbe, budget)
			}
		})
	}
}

func scanOnce[R any](b *testing.B, cfg ntpctl.Config, probe ntpctl.Probe[R], targets []netip.AddrPort, sent *uint64) uint64 {
	p, err := ntpctl.NewProber(cfg, probe)
	if err != nil {
		b.Fatal(err)
	}
	var answered uint64
	err = p.Run(context.Background(), slice(targets), func(r ntpctl.Result[R]) error {
		if r.Packets > 0 {
			answered++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	*sent += p.Stats().Sent
	return answered
}

// BenchmarkNaive is the design the prober replaces (zgrab2's): one
// goroutine and one connected socket per target, 1024 at a time, against
// the same simulated servers.
func BenchmarkNaive(b *testing.B) {
	s, err := ntpsim.Start(context.Background(), "udp4", "0.0.0.0:0", ntpsim.Config{Default: &ntpsim.Host{Mode7: ntpsim.Mode7NoData}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	targets := targets16(s.Port())[:16384]
	req, _ := mode7.NewRequest(mode7.ReqMonGetList1).MarshalBinary()
	var done atomic.Uint64
	for b.Loop() {
		sem := make(chan struct{}, 1024)
		var wg sync.WaitGroup
		for _, t := range targets {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(t))
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = c.Write(req)
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				buf := make([]byte, 600)
				var r mode7.Reassembler
				for !r.Done() {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					_ = r.Add(buf[:n])
				}
				done.Add(1)
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "results/s")
}

// TestHelperScanRSS is a helper process for BenchmarkMemoryFlat: it scans
// NTPCTL_HELPER_TARGETS silent loopback targets and prints its peak RSS.
func TestHelperScanRSS(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("NTPCTL_HELPER_TARGETS"))
	if n == 0 {
		t.Skip("helper process for BenchmarkMemoryFlat")
	}
	port, _ := sink(t)
	var s ntpctl.TargetSet
	s.Add(ntpctl.Range{First: netip.MustParseAddr("127.16.0.0"), Last: netip.AddrFrom4([4]byte{127, 16 + byte(n>>16), byte(n >> 8), byte(n)}).Prev()})
	p, err := ntpctl.NewProber(ntpctl.Config{Blocklist: &ntpctl.Blocklist{AllowLoopback: true},
		Timeout: 100 * time.Millisecond}, ntpctl.MonList())
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	if err := p.Run(context.Background(), s.All(port), func(ntpctl.Result[mode7.Reply]) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("targets=%d results=%d maxrss_kb=%d\n", n, count, ru.Maxrss)
}

// BenchmarkMemoryFlat scans 2^16 and 2^20 targets in child processes and
// compares their peak RSS: the prober's memory is bounded by the targets
// in flight, not by the targets scanned.
func BenchmarkMemoryFlat(b *testing.B) {
	rss := func(n int) float64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperScanRSS$", "-test.v")
		cmd.Env = append(os.Environ(), "NTPCTL_HELPER_TARGETS="+strconv.Itoa(n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "maxrss_kb="); ok {
				kb, _ := strconv.Atoi(v)
				return float64(kb)
			}
		}
		b.Fatalf("no maxrss in %s", out)
		return 0
	}
	for b.Loop() {
		small, large := rss(1<<16), rss(1<<20)
		b.ReportMetric(small/1024, "MiB-2^16")
		b.ReportMetric(large/1024, "MiB-2^20")
		b.ReportMetric(large/small, "ratio")
	}
}
