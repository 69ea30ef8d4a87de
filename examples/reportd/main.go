// Command reportd keeps the history of scans in a report store and
// answers what a CERT asks of it each day:
//
//	reportd import -db DSN [-constituencies FILE] DIR|FILE.csv…
//	reportd runs    -db DSN
//	reportd report  -db DSN -day YYYY-MM-DD -type scan_ntp [-constituency NAME [-constituencies FILE]] [-delta]
//	reportd diff    -db DSN -from RUN -to RUN [-constituency NAME]
//	reportd stats   -db DSN -run RUN [-constituency NAME]
//	reportd series  -db DSN [-constituency NAME] [-since DAY] [-until DAY]
//	reportd history -db DSN IP
//	reportd serve   [-config FILE] [-listen ADDR]
//	reportd pull    -db DSN -key KEY -secret SECRET [-api URL] [-dl URL] [-date D[:D]] [-reports A,B]
//	reportd mail    -db DSN -constituencies FILE -from ADDR (-relay HOST:PORT | -dry-run DIR) [-day D] …
//
// serve answers Shadowserver's Reports API and the downloads from a
// store (see package report/api); with no -config it serves a store
// filled with the lab's week and prints a key to try it with. pull is
// the other side: it lists a Reports API's files (Shadowserver's own by
// default), downloads them and imports each into a store. mail sends
// each constituency's reports of a day to its contacts as Shadowserver's
// report mails (see package report/mail), resumable through the store's
// delivery log.
//
// DSN is an SQLite path (the default engine) or a postgres:// URL. With no
// arguments, reportd builds a week of scans of a small lab in a temporary
// SQLite store and shows the cycle: import, per-constituency report, diff.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/buildinfo"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reportd:", report.TerminalSafe(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const usage = `usage: reportd [import|runs|report|diff|stats|series|history] -db DSN …
       reportd serve [-config FILE]   (without -config: the lab's week, served on 127.0.0.1)
       reportd pull -db DSN -key KEY -secret SECRET [-api URL] [-dl URL] [-date D[:D]]
       reportd mail -db DSN -constituencies FILE -from ADDR (-relay HOST:PORT | -dry-run DIR) [-day D] [-dl URL] [-dkim-key PEM -dkim-selector S]
       reportd            (a week of lab scans in a temporary store)
       reportd --version`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return lab(ctx, stdout)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(ctx, rest, stdout, stderr)
	case "pull":
		return pullCmd(ctx, rest, stdout, stderr)
	case "mail":
		return mailCmd(ctx, rest, stdout, stderr)
	}
	fs := flag.NewFlagSet("reportd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("db", "", "the store: an SQLite path or a postgres:// URL")
	csFile := fs.String("constituencies", "", "constituency file (YAML): for import, and for report, whose delivery options choose delta mode")
	day := fs.String("day", "", "day of the report, YYYY-MM-DD (UTC)")
	typ := fs.String("type", string(report.ScanNTP), "report type: scan_ntp, scan6_ntp, scan_ntpmonitor, scan6_ntpmonitor")
	cons := fs.String("constituency", "", "only the rows of this constituency")
	delta := fs.Bool("delta", false, "only the rows that changed since the previous run (Shadowserver's delta mode)")
	from := fs.Int64("from", 0, "run to diff from")
	to := fs.Int64("to", 0, "run to diff to")
	runID := fs.Int64("run", 0, "run")
	since := fs.String("since", "", "series: first day, YYYY-MM-DD")
	until := fs.String("until", "", "series: last day, YYYY-MM-DD")
	space := fs.String("space", "", "for a CSV import: the target space the scan covered, comma-separated (e.g. 0.0.0.0/0)")
	switch cmd {
	case "--version", "-version", "version":
		fmt.Fprint(stdout, buildinfo.Text("reportd"))
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	case "import", "runs", "report", "diff", "stats", "series", "history":
	default:
		return usagef("unknown command %q\n%s", cmd, usage)
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{err}
	}
	if *dsn == "" {
		return usagef("%s: -db is required", cmd)
	}
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	switch cmd {
	case "import":
		var cs *store.Constituencies
		if *csFile != "" {
			if cs, err = store.LoadConstituencies(*csFile); err != nil {
				return err
			}
		}
		sp, err := parseSpace(*space)
		if err != nil {
			return usageError{err}
		}
		if fs.NArg() == 0 {
			return usagef("import: name a scan directory or report files")
		}
		for _, p := range fs.Args() {
			if err := importOne(ctx, st, p, cs, sp, stdout); err != nil {
				return err
			}
		}
		return nil
	case "runs":
		runs, err := st.Runs(ctx)
		if err != nil {
			return err
		}
		printRuns(stdout, runs)
		return nil
	case "report":
		if *day == "" {
			return usagef("report: -day is required")
		}
		t := report.Type(*typ)
		if !t.Known() {
			return usagef("report: unknown type %q", *typ)
		}
		r, err := st.RunOf(ctx, *day, t)
		if err != nil {
			return fmt.Errorf("no %s run on %s: %w", t, *day, err)
		}
		d := *delta
		if *csFile != "" && *cons != "" && !d {
			// The constituency's delivery options decide: in delta mode,
			// a full report on its weekday, the changes on the others.
			cs, err := store.LoadConstituencies(*csFile)
			if err != nil {
				return err
			}
			c, ok := cs.ByName(*cons)
			if !ok {
				return usagef("report: no constituency %q in %s", *cons, *csFile)
			}
			d = c.DeltaOn(r.Started)
		}
		_, err = st.WriteReport(ctx, stdout, store.ReportQuery{RunID: r.ID, Type: t, Constituency: *cons, Delta: d})
		return err
	case "diff":
		if *from == 0 || *to == 0 {
			return usagef("diff: -from and -to are required (run numbers; see reportd runs)")
		}
		d, err := st.Diff(ctx, *from, *to, *cons)
		if err != nil {
			return err
		}
		printDiff(stdout, d, *cons)
		return nil
	case "stats":
		if *runID == 0 {
			return usagef("stats: -run is required")
		}
		s, err := st.Stats(ctx, *runID, *cons)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "series":
		ps, err := st.Series(ctx, *cons, *since, *until)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ps)
	case "history":
		if fs.NArg() != 1 {
			return usagef("history: name one address")
		}
		a, err := netip.ParseAddr(fs.Arg(0))
		if err != nil {
			return usageError{err}
		}
		h, err := st.History(ctx, a)
		if err != nil {
			return err
		}
		printHistory(stdout, h)
		return nil
	}
	return nil
}

// parseSpace parses a comma-separated list of ranges or prefixes.
func parseSpace(s string) ([]ntpctl.Range, error) {
	var sp []ntpctl.Range
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			r, err := ntpctl.ParseRange(part)
			if err != nil {
				return nil, err
			}
			sp = append(sp, r)
		}
	}
	return sp, nil
}

func importOne(ctx context.Context, st *store.Store, path string, cs *store.Constituencies, space []ntpctl.Range, w io.Writer) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var res store.ImportResult
	if fi.IsDir() {
		res, err = st.ImportDir(ctx, path, store.ImportOptions{Constituencies: cs})
	} else {
		f, err2 := os.Open(path)
		if err2 != nil {
			return err2
		}
		res, err = st.ImportCSV(ctx, f, filepath.Base(path), store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: cs}, Space: space})
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	state := "imported"
	if !res.Created {
		state = "already in the store"
	}
	fmt.Fprintf(w, "run %d (%s, %s): %s, %d rows", res.Run.ID, res.Run.Day(), report.TerminalSafe(path), state, res.Run.Rows)
	if res.Skipped > 0 {
		fmt.Fprintf(w, ", %d malformed rows skipped", res.Skipped)
	}
	fmt.Fprintln(w)
	for _, e := range res.RowErrors {
		fmt.Fprintf(w, "  %s\n", report.TerminalSafe(e.Error()))
	}
	return nil
}

func printRuns(w io.Writer, runs []store.Run) {
	fmt.Fprintf(w, "%5s  %-10s  %-8s  %8s  %-9s  %s\n", "run", "day", "time", "rows", "complete", "source")
	for _, r := range runs {
		c := "yes"
		if !r.Complete {
			c = "no"
		}
		fmt.Fprintf(w, "%5d  %-10s  %-8s  %8d  %-9s  %s\n", r.ID, r.Day(), r.Started.Format(time.TimeOnly), r.Rows, c, report.TerminalSafe(r.Source))
	}
}

func printDiff(w io.Writer, d store.Diff, cons string) {
	who := cons
	if who == "" {
		who = "all constituencies"
	}
	fmt.Fprintf(w, "%s, run %d (%s) → run %d (%s)\n", who, d.From.ID, d.From.Day(), d.To.ID, d.To.Day())
	for _, part := range []struct {
		name string
		fs   []store.Finding
	}{{"new", d.New}, {"fixed", d.Fixed}, {"persisting", d.Persisting}, {"absent once (not yet fixed)", d.Absent}, {"not covered by the later run", d.Unknown}} {
		fmt.Fprintf(w, "  %s: %d\n", part.name, len(part.fs))
		for _, f := range part.fs {
			since := ""
			if !f.OpenSince.IsZero() {
				since = "  open since " + f.OpenSince.Format(time.DateOnly)
			}
			fmt.Fprintf(w, "    %-16s %-40s %s/%d%s\n", f.Type, report.TerminalSafe(f.IP), report.TerminalSafe(f.Protocol), f.Port, since)
		}
	}
}

func printHistory(w io.Writer, h store.History) {
	fmt.Fprintf(w, "%s\n", h.IP)
	for _, f := range h.Findings {
		state := "open since " + f.OpenSince.Format(time.DateOnly)
		if !f.Open() {
			state = "fixed " + f.Fixed.Format(time.DateOnly)
		}
		fmt.Fprintf(w, "  %-16s %s/%d: first seen %s, last seen %s, %s\n", f.Type, f.Protocol, f.Port,
			f.FirstSeen.Format(time.DateOnly), f.LastSeen.Format(time.DateOnly), state)
	}
	for _, s := range h.Sightings {
		fmt.Fprintf(w, "  run %d %s %s %s\n", s.RunID, s.Day, s.Type, report.TerminalSafe(s.Timestamp))
	}
}
