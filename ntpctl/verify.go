package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

const verifyUsage = `Usage: ntpctl verify [flags] FILE.csv...

Asks again about every row of NTP reports received from Shadowserver or written by
the scanner, with the report's own query: monlist (Mode 7) for scan_ntpmonitor and
scan6_ntpmonitor, READVAR (Mode 6) for scan_ntp and scan6_ntp. Any layout the reports
have had is read (report.Reader); the report type comes from the file name, or else
from the columns, or from --probe. Each row's ip and port are asked once, however
many rows name them, at --rate requests per second in all.

Each row gets one of:
  open        still answers as reported: the monitor list came back, or READVAR
              answered (by the daemon version the row names, if it names one);
              today's packets, bytes and amplification are printed
  changed     still answers with more than the request, but not as reported: the
              monitor list in part or malformed, or READVAR from another version
  fixed       monlist disabled or the query refused (an error reply), no answer,
              or ICMP said nothing listens there
  unverified  could not be checked: a refused address, a failed send, or forged
              replies suspected (datagrams from the host answering other requests)
Malformed rows are reported on stderr and skipped.

--csv DIR writes, for each FILE, DIR/NAME-verified.csv: the same rows and columns
with verified, verified_time and verified_detail added (values a spreadsheet would
run as formulas prefixed with '; --csv-raw keeps them as they are). --json prints
one object: the files, the counts and every row with today's record, as the
scanner's JSON lines have it.
`

const verifyExitHelp = `Exit status:
  0    every row is fixed
  1    error: bad usage, a file that cannot be read or is not an NTP report
  5    some rows are still open or changed: those hosts can still be abused
  8    no row is open or changed, but some could not be verified
  130  interrupted (Ctrl-C)
`

// exitUnverified is verify's status when rows could not be checked and
// none is open.
const exitUnverified = 8

// verifyOptions are verify's own flags.
type verifyOptions struct {
	rate    int
	probe   string
	csvDir  string
	csvRaw  bool
	maxRows int
}

// verifyRow is one row of a report being verified.
type verifyRow struct {
	file     int // index into the files
	line     int
	fields   []string // as the file has them
	target   netip.AddrPort
	reported time.Time
	// What the row reported: monitor packets and size, the version.
	packets, size, version string

	state, detail string
	rec           *report.JSONRecord
}

// verifyFile is one report being verified.
type verifyFile struct {
	path    string
	monitor bool
	header  []string
	rows    int
	skipped int
}

func (e env) verify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c common
	var o verifyOptions
	fs := newFlags("verify", verifyUsage, verifyExitHelp, &c)
	fs.IntVar(&o.rate, "rate", 100, "at most this many `requests` per second in all (0: no limit)")
	fs.StringVar(&o.probe, "probe", "", "the `query` for files whose type neither name nor columns tell: monitor or version")
	fs.StringVar(&o.csvDir, "csv", "", "write each report with verified columns into `dir`")
	fs.BoolVar(&o.csvRaw, "csv-raw", false, "do not prefix ' to formula-like values in --csv files")
	fs.IntVar(&o.maxRows, "max-rows", 100_000, "refuse more than `n` rows in all")
	pos, code := parseArgs(fs, args, &c, stdout, stderr)
	if code >= 0 {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(stderr, fs, errors.New("want one or more report files"))
	case o.rate < 0:
		return usageError(stderr, fs, fmt.Errorf("--rate %d: want 0 (no limit) or more", o.rate))
	case o.probe != "" && o.probe != "monitor" && o.probe != "version":
		return usageError(stderr, fs, fmt.Errorf("--probe %q: want monitor or version", o.probe))
	case o.maxRows < 1:
		return usageError(stderr, fs, fmt.Errorf("--max-rows %d: want 1 or more", o.maxRows))
	}
	if o.csvDir != "" {
		if fi, err := os.Stat(o.csvDir); err != nil || !fi.IsDir() {
			return failure(stderr, "verify", fmt.Errorf("--csv %s: not a directory", o.csvDir))
		}
	}

	files := make([]verifyFile, len(pos))
	var rows []verifyRow
	kept := 0
	for i, path := range pos {
		f, got, err := readVerifyFile(path, i, o, len(rows), &kept, stderr)
		if err != nil {
			return failure(stderr, "verify", err)
		}
		files[i] = f
		rows = append(rows, got...)
	}

	// Each target once per query, in the order of the rows.
	var monT, rvT []netip.AddrPort
	seen := map[netip.AddrPort]uint8{}
	for i := range rows {
		r := &rows[i]
		if err := refuse(r.target.Addr()); err != nil {
			r.state, r.detail = report.VerifiedUnverified, "not asked: "+err.Error()
			continue
		}
		bit, list := uint8(1), &monT
		if !files[r.file].monitor {
			bit, list = 2, &rvT
		}
		if seen[r.target]&bit == 0 {
			seen[r.target] |= bit
			*list = append(*list, r.target)
		}
	}
	cfg := e.config(&c)
	cfg.Limiter = ntpctl.NewRateLimiter(float64(o.rate), 0)
	var (
		wg        sync.WaitGroup
		mon       map[netip.AddrPort]ntpctl.Result[mode7.Reply]
		rv        map[netip.AddrPort]ntpctl.Result[mode6.Reply]
		monE, rvE error
	)
	wg.Add(2)
	go func() { defer wg.Done(); mon, monE = probeMany(ctx, cfg, ntpctl.MonList(), monT) }()
	go func() { defer wg.Done(); rv, rvE = probeMany(ctx, cfg, ntpctl.ReadVar(), rvT) }()
	wg.Wait()
	for _, err := range []error{monE, rvE} {
		if err != nil {
			return failure(stderr, "verify", err)
		}
	}

	j := report.JSONVerify{Files: []report.JSONVerifyFile{}, Rows: make([]report.JSONVerifyRow, 0, len(rows))}
	var first []time.Time
	for i := range rows {
		r := &rows[i]
		if r.state == "" {
			if files[r.file].monitor {
				res := mon[r.target]
				judgeMonitor(r, &res)
				first = append(first, res.Time)
			} else {
				res := rv[r.target]
				judgeVersion(r, &res)
				first = append(first, res.Time)
			}
		}
		switch r.state {
		case report.VerifiedOpen:
			j.Counts.Open++
		case report.VerifiedChanged:
			j.Counts.Changed++
		case report.VerifiedFixed:
			j.Counts.Fixed++
		default:
			j.Counts.Unverified++
		}
	}
	j.Time = queryTime(first...)
	for _, f := range files {
		j.Counts.Skipped += f.skipped
		j.Files = append(j.Files, report.JSONVerifyFile{File: f.path, Report: fileType(f), Rows: f.rows, Skipped: f.skipped})
	}

	if o.csvDir != "" {
		for i := range files {
			if err := writeVerifiedCSV(o.csvDir, &files[i], i, rows, !o.csvRaw); err != nil {
				return failure(stderr, "verify", err)
			}
		}
	}
	if c.json {
		for i := range rows {
			r := &rows[i]
			jr := report.JSONVerifyRow{File: files[r.file].path, Line: r.line, IP: r.target.Addr(), Port: r.target.Port(),
				Verified: r.state, Detail: r.detail, Record: r.rec}
			if files[r.file].monitor {
				jr.Report = report.TypeOf[mode7.Reply](r.target.Addr())
			} else {
				jr.Report = report.TypeOf[mode6.Reply](r.target.Addr())
			}
			if !r.reported.IsZero() {
				jr.Reported = &r.reported
			}
			j.Rows = append(j.Rows, jr)
		}
		if err := writeJSON(stdout, &j); err != nil {
			return failure(stderr, "verify", err)
		}
	} else {
		printVerify(stdout, files, rows, &j.Counts)
	}
	switch {
	case j.Counts.Open+j.Counts.Changed > 0:
		return exitAmplifier
	case j.Counts.Unverified > 0:
		return exitUnverified
	}
	return exitOK
}

// fileType is the report type of a file, as its name says or, failing
// that, the IPv4 type of its query.
func fileType(f verifyFile) report.Type {
	if t, err := report.TypeFromFileName(f.path); err == nil && t.IsMonitor() == f.monitor {
		return t
	}
	if f.monitor {
		return report.ScanNTPMonitor
	}
	return report.ScanNTP
}

// readVerifyFile reads the rows of one report. have is the number of
// rows read from the files before it, for --max-rows.
func readVerifyFile(path string, index int, o verifyOptions, have int, kept *int, stderr io.Writer) (verifyFile, []verifyRow, error) {
	vf := verifyFile{path: path}
	fh, err := os.Open(path)
	if err != nil {
		return vf, nil, err
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.IsDir() {
		return vf, nil, fmt.Errorf("%s is a directory", path)
	}
	// The type: the file name, else the columns, else --probe.
	header, err := report.NewReader[report.MonitorRow](fh, report.ReaderOptions{}).Header()
	if err != nil {
		return vf, nil, fmt.Errorf("%s: %w", path, err)
	}
	switch t, err := report.TypeFromFileName(path); {
	case t.IsMRU() || t.IsAccessible():
		// ntpctl's own reports: nothing in them is an amplifier to ask
		// about again (a server's MRU list: ntpctl mrulist).
		return vf, nil, fmt.Errorf("%s: a %s report: verify asks again about the NTP Monitor and NTP Version reports only", path, t)
	case err == nil:
		vf.monitor = t.IsMonitor()
	case slices.Contains(header, "version") || slices.Contains(header, "stratum"):
	case slices.Contains(header, "packets"):
		vf.monitor = true
	case o.probe != "":
		vf.monitor = o.probe == "monitor"
	default:
		return vf, nil, fmt.Errorf("%s: neither its name nor its columns say which report it is: name it like 2026-11-30-scan_ntpmonitor-org.csv or give --probe monitor or version", path)
	}
	if o.probe != "" {
		vf.monitor = o.probe == "monitor"
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		return vf, nil, err
	}
	var rows []verifyRow
	if vf.monitor {
		rows, err = readVerifyRows[report.MonitorRow](fh, &vf, index, o.maxRows-have, kept, stderr)
	} else {
		rows, err = readVerifyRows[report.VersionRow](fh, &vf, index, o.maxRows-have, kept, stderr)
	}
	return vf, rows, err
}

// getter is what both row types have: a column by name.
type getter interface {
	Get(name string) (string, bool)
}

// maxVerifyBytes caps the bytes of the rows verify keeps until it writes
// them: a line may be up to a mebibyte long.
const maxVerifyBytes = 512 << 20

func readVerifyRows[T report.Row](r io.Reader, vf *verifyFile, index, room int, kept *int, stderr io.Writer) ([]verifyRow, error) {
	rd := report.NewReader[T](r, report.ReaderOptions{})
	var rows []verifyRow
	for {
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		var re *report.RowError
		if errors.As(err, &re) {
			vf.skipped++
			fmt.Fprintf(stderr, "ntpctl verify: %s: line %d skipped: %v\n", vf.path, re.Line, termSafe(errText(re.Err)))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", vf.path, err)
		}
		if vf.header == nil {
			vf.header, _ = rd.Header()
		}
		g := any(&row).(getter)
		get := func(name string) string { v, _ := g.Get(name); return v }
		vr := verifyRow{file: index, fields: slices.Clone(rd.Record()), packets: get("packets"),
			size: get("response_size"), version: get("version")}
		vr.line = rowLine(&row)
		ip, err := netip.ParseAddr(get("ip"))
		if err != nil {
			vf.skipped++
			fmt.Fprintf(stderr, "ntpctl verify: %s: line %d skipped: no ip\n", vf.path, vr.line)
			continue
		}
		port := uint16(123)
		if p := get("port"); p != "" {
			n, _ := strconv.ParseUint(p, 10, 16) // the Reader checked it
			port = uint16(n)
		}
		if port == 0 {
			vf.skipped++
			fmt.Fprintf(stderr, "ntpctl verify: %s: line %d skipped: port 0\n", vf.path, vr.line)
			continue
		}
		vr.target = netip.AddrPortFrom(ip.Unmap(), port)
		if ts := get("timestamp"); ts != "" {
			vr.reported, _ = time.Parse(report.TimeFormat, ts) // checked by the Reader
		}
		if len(rows) == room {
			return nil, fmt.Errorf("%s: more than --max-rows rows in all", vf.path)
		}
		for _, f := range vr.fields {
			*kept += len(f) + 16
		}
		if *kept > maxVerifyBytes {
			return nil, fmt.Errorf("%s: the rows come to more than %d MiB, more than verify keeps", vf.path, maxVerifyBytes>>20)
		}
		rows = append(rows, vr)
		vf.rows++
	}
	if vf.header == nil {
		vf.header, _ = rd.Header()
	}
	return rows, nil
}

// rowLine is the line a row starts on.
func rowLine[T report.Row](row *T) int {
	switch r := any(row).(type) {
	case *report.MonitorRow:
		return r.Line
	case *report.VersionRow:
		return r.Line
	}
	return 0
}

// judgeMonitor gives a monitor row its state from today's monlist.
func judgeMonitor(r *verifyRow, res *ntpctl.Result[mode7.Reply]) {
	if !res.Target.IsValid() {
		r.state, r.detail = report.VerifiedUnverified, "not asked"
		return
	}
	rec := report.NewRecord(res, enrich.Result{})
	r.rec = &rec
	r.detail = checkLine(monlistSummary(res), res.Target.String())
	was := ""
	if r.packets != "" || r.size != "" {
		was = fmt.Sprintf("; reported: %s packets, %s bytes.", termSafe(r.packets), termSafe(r.size))
	}
	switch res.Status {
	case ntpctl.StatusOK:
		if res.Bytes > res.RequestBytes {
			r.state = report.VerifiedOpen
			r.detail = strings.TrimSuffix(r.detail, ".") + was
		} else {
			r.state = report.VerifiedFixed // an empty list: nothing reflected
		}
	case ntpctl.StatusPartial, ntpctl.StatusProtocolError:
		r.state = report.VerifiedFixed
		if res.Bytes > res.RequestBytes {
			r.state = report.VerifiedChanged
			r.detail = strings.TrimSuffix(r.detail, ".") + was
		}
	case ntpctl.StatusServerError, ntpctl.StatusNoAnswer, ntpctl.StatusClosed, ntpctl.StatusUnreachable,
		ntpctl.StatusProhibited:
		r.state = report.VerifiedFixed
	default: // send error, spoofed
		r.state = report.VerifiedUnverified
		r.detail = errText(res.Err)
	}
}

// judgeVersion gives a version row its state from today's READVAR.
func judgeVersion(r *verifyRow, res *ntpctl.Result[mode6.Reply]) {
	if !res.Target.IsValid() {
		r.state, r.detail = report.VerifiedUnverified, "not asked"
		return
	}
	rec := report.NewRecord(res, enrich.Result{})
	r.rec = &rec
	r.detail = checkLine(rvSummary(res, "READVAR"), res.Target.String())
	now, _ := res.Value.Vars.Lookup("version")
	switch res.Status {
	case ntpctl.StatusOK, ntpctl.StatusPartial, ntpctl.StatusProtocolError:
		switch {
		case res.Bytes <= res.RequestBytes:
			r.state = report.VerifiedFixed
		case res.Status == ntpctl.StatusOK && (r.version == "" || sameVersion(r.version, now)):
			r.state = report.VerifiedOpen
			if now != "" {
				r.detail += " Version: " + termSafe(now)
			}
		default:
			r.state = report.VerifiedChanged
			if r.version != "" && !sameVersion(r.version, now) {
				r.detail += fmt.Sprintf(" Version now %q, reported %q.", termSafe(now), termSafe(r.version))
			}
		}
	case ntpctl.StatusServerError, ntpctl.StatusNoAnswer, ntpctl.StatusClosed, ntpctl.StatusUnreachable,
		ntpctl.StatusProhibited:
		r.state = report.VerifiedFixed
	default:
		r.state = report.VerifiedUnverified
		r.detail = errText(res.Err)
	}
}

// sameVersion compares a report's version column with a server's
// version variable: the report writer cleans values (line breaks and
// control characters replaced), so both are compared cleaned.
func sameVersion(reported, now string) bool {
	clean := func(s string) string {
		return strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f || r == '|' {
				return -1
			}
			return r
		}, s))
	}
	return clean(reported) == clean(now)
}

// printVerify prints the rows file by file, then the counts.
func printVerify(w io.Writer, files []verifyFile, rows []verifyRow, n *report.JSONVerifyCounts) {
	width := 0
	for i := range rows {
		width = max(width, len(rows[i].target.String()))
	}
	at := 0
	for fi, f := range files {
		what := "READVAR (Mode 6)"
		if f.monitor {
			what = "monlist (Mode 7)"
		}
		skipped := ""
		if f.skipped > 0 {
			skipped = fmt.Sprintf(", %s skipped", plural(f.skipped, "malformed row"))
		}
		fmt.Fprintf(w, "%s: %s%s, asked again with %s\n", termSafe(f.path), plural(f.rows, "row"), skipped, what)
		for ; at < len(rows) && rows[at].file == fi; at++ {
			r := &rows[at]
			fmt.Fprintf(w, "  line %-6d %-*s  %-10s  %s\n", r.line, width, r.target, r.state, r.detail)
		}
	}
	fmt.Fprintf(w, "\n%s: %d open, %d changed, %d fixed, %d unverified", plural(len(rows), "row"), n.Open, n.Changed,
		n.Fixed, n.Unverified)
	if n.Skipped > 0 {
		fmt.Fprintf(w, "; %s skipped", plural(n.Skipped, "malformed row"))
	}
	fmt.Fprintln(w, ".")
	if n.Open+n.Changed > 0 {
		fmt.Fprintln(w, "The open and changed hosts can still be abused for reflection: `ntpctl check HOST` says how to fix each.")
	}
}

// writeVerifiedCSV writes file i's rows with the verified columns into
// dir, under a temporary name renamed when whole.
func writeVerifiedCSV(dir string, f *verifyFile, i int, rows []verifyRow, neutralize bool) error {
	base := strings.TrimSuffix(filepath.Base(f.path), ".csv")
	name := filepath.Join(dir, base+"-verified.csv")
	header := f.header
	if header == nil {
		header = []string{}
	}
	b := report.AppendRecord(nil, append(slices.Clip(header), "verified", "verified_time", "verified_detail"), false)
	for k := range rows {
		r := &rows[k]
		if r.file != i {
			continue
		}
		when := ""
		if r.rec != nil {
			when = report.FormatTime(r.rec.Time)
		}
		b = report.AppendRecord(b, append(slices.Clip(r.fields), r.state, when, r.detail), neutralize)
	}
	tmp, err := os.CreateTemp(dir, "."+base+"-*.part")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
