package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/report"
)

// summary prints what the scan found and where the files are.
func (s *scan) summary(o *outputs, interrupted bool) {
	w := s.stdout
	st := o.stats()
	took := time.Since(s.started).Round(10 * time.Millisecond)
	if s.lab != nil {
		fmt.Fprintf(w, "ntpctl lab: %d simulated NTP servers on %s and [::1], UDP port %d\n",
			len(s.lab.Targets()), s.lab.Prefix(), s.lab.Port())
	}
	what := "scanned"
	if interrupted {
		what = "interrupted: scanned part of"
	}
	if !s.exact {
		what += " about"
	}
	fmt.Fprintf(w, "%s %d targets in %s (seed %d, shard %d/%d)\n", what, s.size, took, s.seed, s.opts.shard, s.opts.shards)
	if st.Monitor != nil {
		r := st.Monitor.Report
		fmt.Fprintf(w, "\nNTP Monitor (Mode 7 monlist): %d amplifiers", r.Rows)
		if a := r.Amplification; a.Count > 0 {
			fmt.Fprintf(w, ", amplification median %.2f, max %.2f", a.Median, a.Max)
		}
		fmt.Fprintf(w, "\n  %d more answered with an error (monlist disabled), %d sent nothing usable, %d were silent\n",
			o.disabled, o.monReplied-r.Rows-o.disabled, o.monResults[ntpctl.StatusNoAnswer])
	}
	if st.Version != nil {
		r := st.Version.Report
		fmt.Fprintf(w, "\nNTP Version (Mode 6 READVAR): %d servers answer", r.Rows)
		if a := r.Amplification; a.Count > 0 {
			fmt.Fprintf(w, ", amplification median %.2f, max %.2f", a.Median, a.Max)
		}
		fmt.Fprintln(w)
		var top []string
		for i, c := range r.Versions {
			if i == 5 {
				top = append(top, "…")
				break
			}
			top = append(top, fmt.Sprintf("%s (%d)", c.Key, c.Count))
		}
		if len(top) > 0 {
			fmt.Fprintf(w, "  daemons: %s\n", strings.Join(top, ", "))
		}
	}
	if n := s.enrichErrs.Load(); n > 0 {
		fmt.Fprintf(w, "\nenrichment failed for %d lookups (the rows are written without it)\n", n)
	}
	if s.lab != nil {
		s.labCheck(o)
	}
	fmt.Fprintf(w, "\nfiles in %s:\n", s.dir)
	rows := map[string]int{}
	for _, c := range []*csvFile[report.MonitorRow]{o.mon4, o.mon6} {
		if c != nil {
			rows[c.path] = c.rows
		}
	}
	for _, c := range []*csvFile[report.VersionRow]{o.ver4, o.ver6} {
		if c != nil {
			rows[c.path] = c.rows
		}
	}
	rows[o.jsonFile.path] = o.jsonLines
	for _, f := range o.files {
		if n, ok := rows[f]; ok {
			unit := "rows"
			if f == o.jsonFile.path {
				unit = "lines"
			}
			fmt.Fprintf(w, "  %-48s %d %s\n", filepath.Base(f), n, unit)
		} else {
			fmt.Fprintf(w, "  %s\n", filepath.Base(f))
		}
	}
	if s.opts.split != "" {
		if _, err := os.Stat(filepath.Join(s.dir, "by-"+s.opts.split)); err == nil {
			fmt.Fprintf(w, "  by-%s/ (one report per %s)\n", s.opts.split, s.opts.split)
		} else {
			fmt.Fprintf(w, "  (no rows to split by %s)\n", s.opts.split)
		}
	}
}

// labCheck compares the reports with what the lab's hosts are: each
// report must list exactly the hosts that answer its query, among those
// it has a result for (a shard, or an interrupted scan, covers part of
// the lab).
func (s *scan) labCheck(o *outputs) {
	type check struct {
		report, query     string
		done, listed      map[netip.Addr]bool
		answers           func(lab.Host) bool
		want, miss, extra int
		notScanned        int
	}
	ok := func(st ntpctl.Status) bool { return st == ntpctl.StatusOK || st == ntpctl.StatusPartial }
	var checks []*check
	if s.monitor != nil {
		checks = append(checks, &check{report: "NTP Monitor", query: "monlist", done: o.monDone, listed: o.monAddrs,
			answers: func(h lab.Host) bool { return ok(h.Monlist.Status) }})
	}
	if s.version != nil {
		checks = append(checks, &check{report: "NTP Version", query: "READVAR", done: o.verDone, listed: o.verAddrs,
			answers: func(h lab.Host) bool { return ok(h.ReadVar.Status) }})
	}
	var parts, problems []string
	notScanned := 0
	for _, c := range checks {
		for _, h := range s.lab.Hosts() {
			a := h.Addr.Addr()
			if !c.done[a] {
				c.notScanned++
				continue
			}
			answers := c.answers(h)
			c.want += b2i(answers)
			c.miss += b2i(answers && !c.listed[a])
			c.extra += b2i(!answers && c.listed[a])
		}
		notScanned = max(notScanned, c.notScanned)
		parts = append(parts, fmt.Sprintf("%d answer %s", c.want, c.query))
		if c.miss+c.extra > 0 {
			problems = append(problems, fmt.Sprintf("the %s report misses %d of them and lists %d others", c.report, c.miss, c.extra))
		}
	}
	scanned := len(s.lab.Hosts()) - notScanned
	fmt.Fprintf(s.stdout, "\nlab check: of the %d hosts scanned, %s; ", scanned, strings.Join(parts, " and "))
	if len(problems) == 0 {
		fmt.Fprint(s.stdout, "the reports list exactly those")
	} else {
		fmt.Fprint(s.stdout, "MISMATCH: "+strings.Join(problems, "; "))
	}
	if notScanned > 0 {
		why := "interrupted"
		if !o.interrupted {
			why = fmt.Sprintf("shard %d/%d", s.opts.shard, s.opts.shards)
		}
		fmt.Fprintf(s.stdout, " (%d of the lab's %d hosts not scanned: %s)", notScanned, len(s.lab.Hosts()), why)
	}
	fmt.Fprintln(s.stdout)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
