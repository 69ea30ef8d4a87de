package main

// The flags zmap and zgrab2 users reach for: -dryrun, -max-targets,
// -source-ip and -interface, -bandwidth, and the concurrency a rate
// needs. They live here, beside the other flags, so that the scan reads
// them in one place (proberConfig, limitTargets, dryRun).

import (
	"flag"
	"fmt"
	"io"
	"iter"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
)

// habits are the options of these flags.
type habits struct {
	dryrun     bool
	maxTargets string // N or P%
	sourceIPs  list
	iface      string
	bandwidth  string

	maxN   uint64  // parsed -max-targets; 0: none
	maxPct float64 // or its percentage; 0: none
	bps    float64 // parsed -bandwidth, bits per second; 0: none
}

func (h *habits) register(fs *flag.FlagSet) {
	fs.BoolVar(&h.dryrun, "dryrun", false, "print the targets that would be probed, in scan order, one per line with the probes, and exit: no probing socket is opened, nothing is sent (without targets the lab still starts its simulated servers, to list them)")
	fs.StringVar(&h.maxTargets, "max-targets", "", "stop after `N` targets of the shard, in scan order (a scan with a larger N and the same -seed is a superset); N% is that share of the shard's targets")
	fs.Var(&h.sourceIPs, "source-ip", "send from local `address` (one IPv4 and one IPv6 at most; repeatable or comma-separated)")
	fs.StringVar(&h.iface, "interface", "", "send from the addresses of network interface `name` (its first IPv4 and global IPv6 address; -source-ip wins for its family)")
	fs.StringVar(&h.bandwidth, "bandwidth", "", "cap the requests' `bits` per second instead of -rate: 10M is 10,000,000 bit/s (suffixes K, M, G); the rate is that over the requests' size on the wire (IP and UDP headers and payload)")
}

// check parses the flags' values; set holds the flags given.
func (h *habits) check(set map[string]bool) error {
	if h.maxTargets != "" {
		var err error
		if h.maxN, h.maxPct, err = parseMaxTargets(h.maxTargets); err != nil {
			return usagef("-max-targets %q: %v", h.maxTargets, err)
		}
	}
	if h.bandwidth != "" {
		if set["rate"] {
			return usagef("-bandwidth and -rate both set the send rate: give one of them")
		}
		var err error
		if h.bps, err = parseBandwidth(h.bandwidth); err != nil {
			return usagef("-bandwidth %q: %v", h.bandwidth, err)
		}
	}
	_, _, err := h.localAddrs()
	return err
}

// parseMaxTargets parses N or P% (0 < P ≤ 100).
func parseMaxTargets(s string) (n uint64, pct float64, err error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		pct, err = strconv.ParseFloat(p, 64)
		if err != nil || !(pct > 0 && pct <= 100) {
			return 0, 0, fmt.Errorf("want a percentage above 0 and at most 100")
		}
		return 0, pct, nil
	}
	n, err = strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, 0, fmt.Errorf("want a positive number of targets, or a percentage like 10%%")
	}
	return n, 0, nil
}

// parseBandwidth parses bits per second with zmap's decimal suffixes:
// K (10³), M (10⁶), G (10⁹); "10M" is 10,000,000.
func parseBandwidth(s string) (float64, error) {
	mult := 1.0
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, num = 1e3, s[:n-1]
		case 'm', 'M':
			mult, num = 1e6, s[:n-1]
		case 'g', 'G':
			mult, num = 1e9, s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) || !(v*mult <= maxBandwidth) {
		return 0, fmt.Errorf("want bits per second above 0 and at most 1000G, like 500K, 10M or 1G")
	}
	return v * mult, nil
}

// localAddrs returns the addresses to send from: -source-ip's, and for
// a family it leaves open, -interface's.
func (h *habits) localAddrs() (v4, v6 netip.Addr, err error) {
	for _, arg := range h.sourceIPs {
		for _, f := range strings.Split(arg, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil || a.Zone() != "" {
				return v4, v6, usagef("-source-ip %q: want an IPv4 or IPv6 address", f)
			}
			a = a.Unmap()
			p := &v6
			if a.Is4() {
				p = &v4
			}
			if p.IsValid() && *p != a {
				return v4, v6, usagef("-source-ip: %s and %s: one address per family", *p, a)
			}
			*p = a
		}
	}
	if h.iface == "" {
		return v4, v6, nil
	}
	ifi, err := net.InterfaceByName(h.iface)
	if err != nil {
		return v4, v6, usagef("-interface %q: no such network interface", h.iface)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return v4, v6, usagef("-interface %s: %v", h.iface, err)
	}
	var i4, i6 netip.Addr
	for _, a := range addrs {
		pfx, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(pfx.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && !i4.IsValid():
			i4 = ip
		case ip.Is6() && !ip.IsLinkLocalUnicast() && !i6.IsValid():
			i6 = ip // link-local ones need a zone and reach no target
		}
	}
	if !i4.IsValid() && !i6.IsValid() {
		return v4, v6, usagef("-interface %s has no IPv4 or global IPv6 address", h.iface)
	}
	if !v4.IsValid() {
		v4 = i4
	}
	if !v6.IsValid() {
		v6 = i6
	}
	return v4, v6, nil
}

// Request sizes on the wire, for -bandwidth: the IP header (IPv4 without
// options, IPv6 without extension headers) and the UDP header.
const (
	ip4Header = 20
	ip6Header = 40
	udpHeader = 8
)

// wireSize returns the mean size in octets of the requests the scan's
// probes send, with their IP and UDP headers: each probe sends one
// request per target, so under the shared rate they alternate. With
// IPv6 targets it counts IPv6's larger header, so that the bandwidth is
// not exceeded.
func (s *scan) wireSize() int {
	header := ip4Header + udpHeader
	if s.has6 {
		header = ip6Header + udpHeader
	}
	// The probes that take every target send nearly all the requests: a
	// fed probe (-discover's control queries, the MRU list) sends to the
	// few that answered, so the mean is over the others.
	o := s.opts
	var sizes []int
	if o.monitor() && !o.fed(monitorKind.name) {
		b, _ := ntpctl.MonList().AppendRequest(nil, netip.AddrPort{}, 0)
		sizes = append(sizes, header+len(b))
	}
	if o.version() && !o.fed(versionKind.name) {
		b, _ := ntpctl.ReadVar().AppendRequest(nil, netip.AddrPort{}, 0)
		sizes = append(sizes, header+len(b))
	}
	if o.probeSet[timeKind.name] {
		b, _ := ntpctl.Client().AppendRequest(nil, netip.AddrPort{}, 0)
		sizes = append(sizes, header+len(b))
	}
	sum := 0
	for _, n := range sizes {
		sum += n
	}
	return (sum + len(sizes) - 1) / len(sizes)
}

// bandwidthRate converts -bandwidth to requests per second (at least 1).
func bandwidthRate(bps float64, wireSize int) int {
	r := bps / float64(8*wireSize)
	if !(r < math.MaxInt32) { // a float too large for an int converts to anything
		return math.MaxInt32
	}
	return max(1, int(r))
}

// maxBandwidth is the largest -bandwidth taken, in bits per second:
// 1000G, beyond any interface a scanner sends from.
const maxBandwidth = 1e12

// The bounds of the derived -concurrency, per probe. A silent target in
// flight costs the prober about 1.3 KiB (its flight, assembler, timer
// entries and place in the flight map; measured with 65,536 and 262,144
// in flight), so maxConcurrency is about 330 MiB per probe; one that
// answers holds its reply, up to Config.MaxBytes, for a moment only.
// Without a rate limit there is no rate to size from: unlimitedConcurrency.
const (
	minConcurrency       = 4096
	maxConcurrency       = 1 << 18 // 262144
	unlimitedConcurrency = 1 << 16 // 65536
)

// neededConcurrency is the targets in flight per probe that a rate of
// requests per second needs when the targets are silent: each holds its
// place for retries × interval + timeout, with a quarter more for
// slack. 0 when rate is 0 (no limit).
func neededConcurrency(rate int, retries int, interval, timeout time.Duration) float64 {
	hold := time.Duration(retries)*interval + timeout
	return float64(rate) * hold.Seconds() * 1.25
}

// defaultConcurrency is neededConcurrency within [minConcurrency,
// maxConcurrency]; without a rate limit, unlimitedConcurrency.
func defaultConcurrency(rate int, retries int, interval, timeout time.Duration) int {
	if rate <= 0 {
		return unlimitedConcurrency
	}
	n := math.Ceil(neededConcurrency(rate, retries, interval, timeout))
	return int(min(max(n, minConcurrency), maxConcurrency))
}

// proberConfig completes cfg (its waits, retries, blocklist, port and
// senders set) with what the flags say of rate, concurrency and source
// addresses, and warns when -concurrency is too low for the rate.
func (s *scan) proberConfig(cfg ntpctl.Config) (ntpctl.Config, error) {
	o := s.opts
	if o.habits.bps > 0 {
		o.rate = bandwidthRate(o.habits.bps, s.wireSize())
	}
	cfg.Limiter = o.limiter()
	interval := cfg.RetryInterval
	if interval <= 0 {
		interval = cfg.Timeout
	}
	cfg.Concurrency = o.concurrency
	need := neededConcurrency(o.rate, cfg.Retries, interval, cfg.Timeout)
	hold := time.Duration(cfg.Retries)*interval + cfg.Timeout
	switch {
	case cfg.Concurrency == 0:
		cfg.Concurrency = defaultConcurrency(o.rate, cfg.Retries, interval, cfg.Timeout)
		if need > maxConcurrency {
			fmt.Fprintf(s.stderr, "scanner: -rate %d needs about %.0f targets in flight per probe when they are silent; the default stops at %d (about %d MiB per probe), about %.0f requests/s: give -concurrency to go higher\n",
				o.rate, need, maxConcurrency, maxConcurrency*13/10>>10, maxConcurrency/hold.Seconds())
		}
	case o.rate > 0 && float64(cfg.Concurrency) < need:
		fmt.Fprintf(s.stderr, "scanner: -concurrency %d cannot reach -rate %d when targets are silent: each holds its place %s (-retries × -timeout + -timeout), so about %.0f requests/s; leave -concurrency out to size it from the rate\n",
			cfg.Concurrency, o.rate, hold, float64(cfg.Concurrency)/hold.Seconds())
	}
	var err error
	cfg.LocalAddr4, cfg.LocalAddr6, err = o.habits.localAddrs()
	return cfg, err
}

// limitTargets applies -max-targets to the shard's sequence. A
// percentage is of the shard's size, which for a large sharded scan is
// an estimate: 100% is then no limit at all, so that no target is lost
// to the estimate.
func (s *scan) limitTargets() {
	h := &s.opts.habits
	limit := h.maxN
	if h.maxPct >= 100 {
		return
	}
	if h.maxPct > 0 {
		limit = max(1, uint64(float64(s.size)*h.maxPct/100))
	}
	if limit == 0 || limit >= s.size && s.exact {
		return
	}
	if limit < s.size {
		s.size = limit
	}
	s.limited = true
	seq := s.seq
	s.seq = func(yield func(netip.AddrPort) bool) {
		n := uint64(0)
		for t := range seq {
			if n == limit || !yield(t) {
				return
			}
			n++
		}
	}
}

// dryRun writes the targets the scan would probe, in its order, one per
// line with its probes, to w, and what it would do to stderr.
func (s *scan) dryRun(w io.Writer) error {
	var probes, fed []string
	for _, name := range probeNames {
		switch {
		case !s.opts.probeSet[name]:
		case s.opts.fed(name):
			fed = append(fed, name)
		default:
			probes = append(probes, name)
		}
	}
	if len(fed) > 0 {
		fmt.Fprintf(s.stderr, "scanner: -dryrun: every target gets %s; %s only the targets that answer\n",
			strings.Join(probes, ","), strings.Join(fed, ","))
	}
	what := " " + strings.Join(probes, ",") + "\n"
	n := 0
	var err error
	next, stop := iter.Pull(s.seq)
	defer stop()
	buf := make([]byte, 0, 64<<10)
	for t, ok := next(); ok && err == nil; t, ok = next() {
		buf = append(t.AppendTo(buf), what...)
		n++
		if len(buf) > 60<<10 {
			_, err = w.Write(buf)
			buf = buf[:0]
		}
	}
	if err == nil {
		_, err = w.Write(buf)
	}
	if err != nil {
		return err
	}
	rate := "without a rate limit"
	if s.opts.rate > 0 {
		rate = fmt.Sprintf("at up to %d requests/s", s.opts.rate)
	}
	fmt.Fprintf(s.stderr, "scanner: -dryrun: %s (seed %d, shard %d/%d) would be probed %s, %d in flight per probe at most; nothing was sent\n",
		plural(n, "target"), s.seed, s.opts.shard, s.opts.shards, rate, s.cfg.Concurrency)
	return nil
}
