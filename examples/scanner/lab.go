package main

// The lab: with no targets the scanner starts a few hundred simulated NTP
// servers on loopback (internal/lab), scans them and checks its reports
// against what each server is. Everything about the lab is in this file;
// it hooks into the scan only where a program built on the scanner
// would (scan.observers, scan.head and scan.foot), so a copy of the
// scanner outside this module, without this file, scans real targets
// unchanged.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/internal/lab"
)

func init() { startLab = newLabScan }

// labRun is a running lab and what the scan has observed of it.
type labRun struct {
	l  *lab.Lab
	mu sync.Mutex
	// done, answered and listed hold, per probe, the addresses with a
	// result, those that sent something back and those with a row.
	done, answered, listed map[string]map[netip.Addr]bool
}

// newLabScan starts the lab and prepares a scan of it.
func newLabScan(ctx context.Context, o *options, stdout, stderr io.Writer) (*scan, error) {
	// Targets after -lab restrict the scan to the part of the lab
	// inside them.
	var only ntpctl.TargetSet
	for _, spec := range o.targets {
		if err := only.AddString(spec); err != nil {
			return nil, usageError{err}
		}
	}
	cfg := lab.Config{Hosts: o.labHosts, Seed: o.labSeed, Day: o.labDay}
	if o.set["port"] {
		cfg.Port = uint16(o.port) // a fixed port: one host keeps its findings' key from run to run
	}
	l, err := lab.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &scan{opts: o, stdout: stdout, stderr: stderr, port: l.Port(), started: time.Now()}
	s.closers = append(s.closers, l)
	for _, t := range l.Targets() {
		if len(o.targets) == 0 || only.Contains(t.Addr()) {
			s.set.Add(ntpctl.Range{First: t.Addr(), Last: t.Addr()})
		}
	}
	if len(s.set.Ranges()) == 0 {
		s.close()
		return nil, usagef("no host of the lab is inside %s", strings.Join(o.targets, " "))
	}
	bl := &ntpctl.Blocklist{AllowLoopback: true}
	// The lab answers at once: short waits keep the run to a few seconds,
	// unless the flags ask for others.
	timeout, quiet, retries := time.Second, 300*time.Millisecond, 0
	if o.set["timeout"] {
		timeout = o.timeout
	}
	if o.set["quiet"] {
		quiet = o.quiet
	}
	if o.set["retries"] {
		retries = o.retries
	}
	// The rate, concurrency and source addresses: prepare (proberConfig).
	s.cfg = ntpctl.Config{Retries: retries, Timeout: timeout,
		Quiet: quiet, MaxDuration: 2 * time.Second,
		Senders: o.senders, Blocklist: bl, Port: s.port}
	static, err := enrich.ParseStatic(strings.NewReader(l.StaticCSV()))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("the lab's enrichment table: %w", err)
	}
	s.enricher = static
	if o.out == "" {
		dir, err := os.MkdirTemp("", "ntpctl-lab-")
		if err != nil {
			s.close()
			return nil, err
		}
		s.dir = dir
	}
	if err := s.prepare(); err != nil {
		s.close()
		return nil, err
	}
	lr := &labRun{l: l, done: map[string]map[netip.Addr]bool{}, answered: map[string]map[netip.Addr]bool{},
		listed: map[string]map[netip.Addr]bool{}}
	for _, p := range s.probes {
		lr.done[p.name()], lr.answered[p.name()], lr.listed[p.name()] = map[netip.Addr]bool{}, map[netip.Addr]bool{}, map[netip.Addr]bool{}
	}
	s.observers = append(s.observers, lr.observe)
	s.head = func(w io.Writer, _ bool) {
		fmt.Fprintf(w, "ntpctl lab: %d simulated NTP servers on %s and [::1], UDP port %d\n",
			len(l.Targets()), l.Prefix(), l.Port())
	}
	s.foot = func(w io.Writer, interrupted bool) { lr.check(s, w, interrupted) }
	return s, nil
}

// observe records one result.
func (lr *labRun) observe(probe string, o *ntpctl.Outcome, reportable bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	a := o.Target.Addr()
	lr.done[probe][a] = true
	if o.Answered() {
		lr.answered[probe][a] = true
	}
	if reportable {
		lr.listed[probe][a] = true
	}
}

// check compares the reports with what the lab's hosts are: each report
// must list exactly the hosts that answer its query, among those it has
// a result for (a shard, or an interrupted scan, covers part of the
// lab). A probe fed by another (-discover, the MRU list) is checked
// among the hosts it was sent to. A host that answered the feeding probe
// must have been asked (unless the scan was interrupted); one that
// answers the fed query although it was not asked is, with -discover,
// one that refuses Mode 3 (the lab has some), and is counted.
func (lr *labRun) check(s *scan, w io.Writer, interrupted bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	answers := func(st ntpctl.Status) bool { return st == ntpctl.StatusOK || st == ntpctl.StatusPartial }
	checks := map[string]struct {
		query, report string
		expect        func(h *lab.Host) ntpctl.Status
	}{
		timeKind.name:    {"Mode 3", "Accessible NTP", func(h *lab.Host) ntpctl.Status { return h.Time.Status }},
		monitorKind.name: {"monlist", "NTP Monitor", func(h *lab.Host) ntpctl.Status { return h.Monlist.Status }},
		versionKind.name: {"READVAR", "NTP Version", func(h *lab.Host) ntpctl.Status { return h.ReadVar.Status }},
		mruKind.name:     {"their MRU list", "NTP MRU", func(h *lab.Host) ntpctl.Status { return h.MRU.Status }},
	}
	hosts := lr.l.Hosts()
	scanned := map[netip.Addr]bool{}
	for _, p := range s.probes {
		if p.input() == nil {
			for a := range lr.done[p.name()] {
				scanned[a] = true
			}
		}
	}
	var parts, problems, unasked []string
	for _, p := range s.probes {
		name, c := p.name(), checks[p.name()]
		want, miss, extra, notAsked, lost := 0, 0, 0, 0, 0
		for i := range hosts {
			h := &hosts[i]
			a := h.Addr.Addr()
			expect := c.expect(h)
			if !scanned[a] || expect == 0 { // outside the scan, or not predicted (hostile)
				continue
			}
			ok := answers(expect)
			if !lr.done[name][a] {
				switch giver := s.opts.feeder(name); {
				case giver == "":
					// Not this probe's part of the scan (interrupted).
				case lr.answered[giver][a]:
					if !interrupted {
						lost++ // given, never probed
					}
				case s.opts.discover:
					notAsked += b2i(ok)
				}
				continue
			}
			listed := lr.listed[name][a]
			want += b2i(ok)
			miss += b2i(ok && !listed)
			extra += b2i(!ok && listed)
		}
		verb := "answer "
		if name == mruKind.name {
			verb = "give "
		}
		parts = append(parts, fmt.Sprintf("%d %s%s", want, verb, c.query))
		if miss+extra > 0 {
			problems = append(problems, fmt.Sprintf("the %s report misses %d of them and lists %d others", c.report, miss, extra))
		}
		if lost > 0 {
			problems = append(problems, fmt.Sprintf("%d hosts given to the %s probe were never asked", lost, c.report))
		}
		if notAsked > 0 {
			unasked = append(unasked, fmt.Sprintf("%d that %s%s", notAsked, verb, c.query))
		}
	}
	fmt.Fprintf(w, "\nlab check: of the %s, %s; ", plural(len(scanned), "host scanned", "hosts scanned"), joinComma(parts))
	if len(problems) == 0 {
		fmt.Fprint(w, "the reports list exactly those")
	} else {
		fmt.Fprint(w, "MISMATCH: "+strings.Join(problems, "; "))
	}
	if len(unasked) > 0 {
		fmt.Fprintf(w, "; -discover missed the hosts that refuse Mode 3 but answer the control queries: %s", joinComma(unasked))
	}
	if notScanned := len(hosts) - len(scanned); notScanned > 0 {
		why := "interrupted"
		switch {
		case interrupted:
		case len(s.opts.targets) > 0:
			why = "outside " + strings.Join(s.opts.targets, " ")
		default:
			why = fmt.Sprintf("shard %d/%d", s.opts.shard, s.opts.shards)
		}
		fmt.Fprintf(w, " (%d of the lab's %d hosts not scanned: %s)", notScanned, len(hosts), why)
	}
	fmt.Fprintln(w)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
