package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
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
	rows[o.jsonPath] = o.jsonLines
	for _, f := range o.files {
		if n, ok := rows[f]; ok {
			unit := "rows"
			if f == o.jsonPath {
				unit = "lines"
			}
			fmt.Fprintf(w, "  %-48s %d %s\n", filepath.Base(f), n, unit)
		} else {
			fmt.Fprintf(w, "  %s\n", filepath.Base(f))
		}
	}
	if s.opts.split != "" {
		fmt.Fprintf(w, "  by-%s/ (one report per %s)\n", s.opts.split, s.opts.split)
	}
}

// labCheck compares the reports with what the lab's hosts are.
func (s *scan) labCheck(o *outputs) {
	var missMon, missVer, extraMon, extraVer int
	wantMon, wantVer := 0, 0
	for _, h := range s.lab.Hosts() {
		a := h.Addr.Addr()
		mon := h.Monlist.Status == ntpctl.StatusOK || h.Monlist.Status == ntpctl.StatusPartial
		ver := h.ReadVar.Status == ntpctl.StatusOK || h.ReadVar.Status == ntpctl.StatusPartial
		wantMon, wantVer = wantMon+b2i(mon), wantVer+b2i(ver)
		missMon += b2i(mon && !o.monAddrs[a])
		extraMon += b2i(!mon && o.monAddrs[a])
		missVer += b2i(ver && !o.verAddrs[a])
		extraVer += b2i(!ver && o.verAddrs[a])
	}
	fmt.Fprintf(s.stdout, "\nlab check: %d hosts answer monlist and %d answer READVAR; ", wantMon, wantVer)
	if missMon+extraMon+missVer+extraVer == 0 {
		fmt.Fprintln(s.stdout, "the reports list exactly those")
		return
	}
	fmt.Fprintf(s.stdout, "the reports miss %d and %d, and list %d and %d others\n", missMon, missVer, extraMon, extraVer)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (o *outputs) rowCount(monitor bool) int {
	n := 0
	if monitor {
		for _, c := range []*csvFile[report.MonitorRow]{o.mon4, o.mon6} {
			if c != nil {
				n += c.rows
			}
		}
		return n
	}
	for _, c := range []*csvFile[report.VersionRow]{o.ver4, o.ver6} {
		if c != nil {
			n += c.rows
		}
	}
	return n
}
