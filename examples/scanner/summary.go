package main

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// summary prints what the scan found and where the files are.
func (s *scan) summary(o *outputs, interrupted bool) {
	w := s.stdout
	took := time.Since(s.started).Round(10 * time.Millisecond)
	if s.head != nil {
		s.head(w, interrupted)
	}
	what := "scanned"
	if interrupted {
		what = "interrupted: scanned part of"
	}
	if !s.exact {
		what += " about"
	}
	fmt.Fprintf(w, "%s %s in %s (seed %d, shard %d/%d)\n", what, plural(int(s.size), "target"), took, s.seed, s.opts.shard, s.opts.shards)
	if sent, rate := s.sendRate(); sent > 0 {
		fmt.Fprintf(w, "%s sent, %.0f requests/s over the sending time\n", plural(int(sent), "request"), rate)
	}
	if s.blocked > 0 {
		fmt.Fprintf(w, "%s blocked (special-purpose ranges, loopback, -blocklist, -allowlist) and not scanned\n",
			plural(int(s.blocked), "target address was", "target addresses were"))
	}
	rows := map[string]int{o.jsonFile.path: o.jsonLines}
	for _, p := range s.probes {
		p.summary(w)
		for path, n := range p.rows() {
			rows[path] = n
		}
	}
	if n := s.enrichErrs.Load(); n > 0 {
		fmt.Fprintf(w, "\nenrichment failed for %s (the rows are written without it)\n", plural(int(n), "lookup"))
	}
	if s.foot != nil {
		s.foot(w, interrupted)
	}
	fmt.Fprintf(w, "\nfiles in %s:\n", s.dir)
	for _, f := range o.files {
		if n, ok := rows[f]; ok {
			unit := "row"
			if f == o.jsonFile.path {
				unit = "line"
			}
			fmt.Fprintf(w, "  %-48s %s\n", filepath.Base(f), plural(n, unit))
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

// bigPlural is plural for a count that may pass int: "1 target",
// "4294967296 targets".
func bigPlural(n *big.Int, one, many string) string {
	if n.IsInt64() && n.Int64() == 1 {
		return "1 " + one
	}
	return n.String() + " " + many
}

// sendRate returns the requests the probes sent together and their rate
// over the sending time (see ntpctl.Stats.SendRate).
func (s *scan) sendRate() (sent uint64, rate float64) {
	for _, p := range s.probes {
		st := p.proberStats()
		sent += st.Sent
		rate += st.SendRate
	}
	return sent, rate
}

func joinComma(parts []string) string { return strings.Join(parts, ", ") }

// plural returns "1 target", "2 targets"; many, when given, is the plural
// ("1 server answers", "2 servers answer").
func plural(n int, one string, many ...string) string {
	if n == 1 {
		return "1 " + one
	}
	if len(many) > 0 {
		return fmt.Sprint(n) + " " + many[0]
	}
	return fmt.Sprint(n) + " " + one + "s"
}
