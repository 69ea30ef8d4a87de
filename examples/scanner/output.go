package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ntpctl/ntpctl/internal/buildinfo"
	"github.com/ntpctl/ntpctl/report"
)

// countWriter counts the octets written through it, so that a file can
// be cut back to its last complete flush after a write error.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// outFile is an output file whose complete part is known: good is its
// size after the last successful flush, which ends with a whole row or
// line, so a failed write (a full disk) can be cut back to it. It is
// written under a hidden temporary name (.NAME.part) and gets its name
// when it is closed, whole: a crash never leaves a half file that looks
// like a report.
type outFile struct {
	path string // the final name
	tmp  string
	f    *os.File
	cw   *countWriter
	good int64
}

func (s *scan) createFile(name string) (*outFile, error) {
	path := filepath.Join(s.dir, name)
	tmp := filepath.Join(s.dir, "."+name+".part")
	create := s.create
	if create == nil {
		create = os.Create
	}
	f, err := create(tmp)
	if err != nil {
		return nil, err
	}
	return &outFile{path: path, tmp: tmp, f: f, cw: &countWriter{w: f}}, nil
}

// flushed records a successful flush.
func (f *outFile) flushed() { f.good = f.cw.n }

// close syncs and closes the file and gives it its name.
func (f *outFile) close() error {
	err := errors.Join(f.f.Sync(), f.f.Close())
	if err == nil {
		err = os.Rename(f.tmp, f.path)
	}
	return err
}

// cut truncates the file to its last complete flush, closes it and gives
// it its name: what it holds is whole.
func (f *outFile) cut() {
	_ = f.f.Truncate(f.good)
	_ = f.f.Close()
	_ = os.Rename(f.tmp, f.path)
}

// csvFile is one report file being written.
type csvFile[T report.Row] struct {
	*outFile
	w           *report.Writer[T]
	rows        int // written, some maybe still buffered
	flushedRows int // in the file: after the last successful flush
}

func openCSV[T report.Row](s *scan, t report.Type) (*csvFile[T], error) {
	f, err := s.createFile(report.FileName(s.date, t, s.opts.id))
	if err != nil {
		return nil, err
	}
	c := &csvFile[T]{outFile: f,
		w: report.NewWriter[T](f.cw, report.WriterOptions{NeutralizeFormulas: s.opts.neutralize})}
	if err := c.flush(); err != nil {
		f.f.Close()
		return nil, err
	}
	return c, nil
}

func (c *csvFile[T]) write(row T) error {
	c.rows++
	return c.w.Write(row)
}

// flush writes the header if no row did yet, and what is buffered.
func (c *csvFile[T]) flush() error {
	if c == nil {
		return nil
	}
	if c.rows == 0 && c.cw.n == 0 {
		if err := c.w.WriteHeader(); err != nil {
			return err
		}
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	c.flushed()
	c.flushedRows = c.rows
	return nil
}

func (c *csvFile[T]) close() error {
	if c == nil {
		return nil
	}
	if err := c.flush(); err != nil {
		_ = c.f.Close()
		return err
	}
	return c.outFile.close()
}

func (c *csvFile[T]) abandon() {
	if c != nil {
		c.cut()
	}
}

// splitFile streams one probe's rows into one report per AS or country,
// in by-asn/ or by-country/, as -split asks: rows are written as they
// come, not kept (report.Splitter holds a bounded number of files open).
// A split file is what a CERT mails to a network's owner, who opens it
// in a spreadsheet: values a spreadsheet would run as formulas are
// neutralised unless -split-raw asks for Shadowserver's bytes (the main
// reports, fed to IntelMQ and the like, keep them unless
// -neutralize-formulas).
// A file that fails is given up while the others go on; the first such
// failure is shown at once, and close reports them all.
type splitFile[T report.Row] struct {
	sp    *report.Splitter[T]
	note  func(string)
	noted bool
}

func newSplitFile[T report.Row](s *scan) (*splitFile[T], error) {
	by := report.SplitByASN
	if s.opts.split == "country" {
		by = report.SplitByCountry
	}
	sp, err := report.NewSplitter[T](filepath.Join(s.dir, "by-"+s.opts.split), by,
		report.SplitOptions{Date: s.date, IDPrefix: s.opts.id + "-",
			Writer: report.WriterOptions{NeutralizeFormulas: !s.opts.splitRaw}})
	if err != nil {
		return nil, err
	}
	return &splitFile[T]{sp: sp, note: func(m string) { s.prog.note(m) }}, nil
}

func (sp *splitFile[T]) write(row T) {
	if sp == nil {
		return
	}
	if err := sp.sp.Write(row); err != nil && !sp.noted {
		sp.noted = true
		sp.note("-split: " + err.Error() + " (the other files go on)")
	}
}

func (sp *splitFile[T]) flush() {
	if sp == nil {
		return
	}
	if err := sp.sp.Flush(); err != nil && !sp.noted {
		sp.noted = true
		sp.note("-split: " + err.Error() + " (the other files go on)")
	}
}

func (sp *splitFile[T]) close() error {
	if sp == nil {
		return nil
	}
	return sp.sp.Close()
}

// outputs are the files the probes share: the JSON lines, and at the end
// the statistics.
type outputs struct {
	s         *scan
	mu        sync.Mutex // the JSON lines are written by every probe's writer
	jsonFile  *outFile
	jsonBuf   *bufio.Writer
	json      *report.JSONWriter
	jsonLines int
	files     []string
	failed    error // why the scan stopped, for the statistics
}

// fileID is the report ID as the CSV file names carry it (report.FileName
// replaces the characters IntelMQ would not take), for the names of the
// other files to match.
func (s *scan) fileID() string {
	prefix := s.date.Format("2006-01-02") + "-" + string(report.ScanNTP) + "-"
	return strings.TrimSuffix(strings.TrimPrefix(report.FileName(s.date, report.ScanNTP, s.opts.id), prefix), ".csv")
}

// baseName is the start of the names of the JSON lines and statistics.
func (s *scan) baseName() string {
	return s.date.Format("2006-01-02") + "-ntpctl-" + s.fileID()
}

// newOutputs creates every file of the scan: each probe's reports, then
// the JSON lines. On an error the files created are closed.
func newOutputs(s *scan) (_ *outputs, err error) {
	o := &outputs{s: s}
	defer func() {
		if err != nil {
			o.abandon(err)
		}
	}()
	for _, p := range s.probes {
		if err := p.open(o); err != nil {
			return nil, err
		}
	}
	if o.jsonFile, err = s.createFile(s.baseName() + ".jsonl"); err != nil {
		return nil, err
	}
	o.jsonBuf = bufio.NewWriterSize(o.jsonFile.cw, 256<<10)
	o.json = report.NewJSONWriter(o.jsonBuf)
	return o, nil
}

// writeRecord writes one line of the JSON lines.
func (o *outputs) writeRecord(rec *report.JSONRecord) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.jsonLines++
	return o.json.Write(rec)
}

// flushRecords writes out the JSON lines buffered.
func (o *outputs) flushRecords() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.jsonBuf.Flush(); err != nil {
		return err
	}
	o.jsonFile.flushed()
	return nil
}

// abandon cuts every file back to its last complete flush (whole rows and
// lines) and closes it, after the write error err; it tries to write the
// statistics too, which say the scan failed.
func (o *outputs) abandon(err error) {
	for _, p := range o.s.probes {
		p.abandon()
	}
	if o.jsonFile != nil {
		o.jsonFile.cut()
		o.failed = err
		_ = o.writeStats(false)
	}
}

// finish closes the files, the splits included, and writes the
// statistics.
func (o *outputs) finish(interrupted bool) error {
	var errs []error
	for _, p := range o.s.probes {
		files, err := p.close()
		o.files = append(o.files, files...)
		errs = append(errs, err)
	}
	errs = append(errs, o.jsonBuf.Flush(), o.jsonFile.close())
	o.files = append(o.files, o.jsonFile.path)
	errs = append(errs, o.writeStats(interrupted))
	return errors.Join(errs...)
}

// stats is the statistics file's object.
func (o *outputs) stats(interrupted bool) report.JSONScanStats {
	s := o.s
	st := report.JSONScanStats{Started: s.started.UTC(), Finished: time.Now().UTC(), Targets: s.size, Blocked: s.blocked,
		TargetsEstimated: !s.exact, Interrupted: interrupted, Seed: s.seed, Failed: errString(o.failed),
		Shard:      fmt.Sprintf("%d/%d", s.opts.shard, s.opts.shards),
		Enrichment: report.JSONEnrichStats{Errors: s.enrichErrs.Load()}}
	slots := probeStats(&st)
	for _, p := range s.probes {
		*slots[p.name()] = p.stats()
	}
	st.Discover = s.opts.discover
	st.Sent, st.SendRate = s.sendRate()
	st.Scanner = buildinfo.Line("ntpctl-scanner")
	// The space the scan covered, for the store to close the findings it
	// no longer lists: not after -max-targets (part of it), nor after
	// -discover (the control queries skipped what refused Mode 3).
	if s.opts.shards <= 1 && !s.limited && !s.opts.discover {
		for _, r := range s.set.Ranges() {
			st.Space = append(st.Space, r.String())
		}
	}
	if s.opts.onSpace != nil && !s.opts.discover {
		// A shard of a scan on many machines: the merge says the whole
		// space was covered once every shard is in.
		var space []string
		for _, r := range s.set.Ranges() {
			space = append(space, r.String())
		}
		s.opts.onSpace(space)
	}
	return st
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (o *outputs) writeStats(interrupted bool) error {
	st := o.stats(interrupted)
	base := o.s.baseName() + "-stats"
	jf, err := o.s.createFile(base + ".json")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	err = enc.Encode(st)
	if err == nil {
		_, err = jf.f.Write(report.EscapeJSON(buf.Bytes())) // daemon banners are server text
	}
	err = errors.Join(err, jf.close())
	if err != nil {
		return err
	}
	tf, err := o.s.createFile(base + ".txt")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tf.f)
	writeStatsText(w, &st)
	o.files = append(o.files, jf.path, tf.path)
	if err := w.Flush(); err != nil {
		_ = tf.f.Close()
		return err
	}
	return tf.close()
}

// writeStatsText writes the statistics as the -stats.txt file has them.
func writeStatsText(w io.Writer, st *report.JSONScanStats) {
	about, cut := "", ""
	if st.TargetsEstimated {
		about = "about "
	}
	if st.Interrupted {
		cut = " (interrupted)"
	}
	fmt.Fprintf(w, "ntpctl scan: %s%s, seed %d, shard %s, %s to %s%s\n", about, plural(int(st.Targets), "target"), st.Seed, st.Shard,
		st.Started.Format(time.RFC3339), st.Finished.Format(time.RFC3339), cut)
	if st.Blocked > 0 {
		fmt.Fprintf(w, "%s blocked (special-purpose ranges, loopback, -blocklist, -allowlist): never sent to\n",
			plural(int(st.Blocked), "target address", "target addresses"))
	}
	if st.Sent > 0 {
		fmt.Fprintf(w, "%s sent, %.0f requests/s over the sending time\n", plural(int(st.Sent), "request"), st.SendRate)
	}
	if st.Discover && st.Accessible != nil {
		fmt.Fprintf(w, "-discover: the control queries went only to the %s that answered Mode 3\n",
			plural(st.Accessible.Replied, "target"))
	}
	for _, part := range []struct {
		title string
		p     *report.JSONProbeStats
	}{{timeKind.title, st.Accessible}, {monitorKind.title, st.Monitor}, {versionKind.title, st.Version}, {mruKind.title, st.MRU}} {
		if part.p != nil {
			fmt.Fprintf(w, "\n%s: %s\n", part.title, plural(part.p.Report.Rows, "row"))
			_ = part.p.Report.WriteText(w)
		}
	}
}

// reportType is the report type of a shard's CSV file: one of
// Shadowserver's four or of ntpctl's own (MRU, Accessible NTP).
func reportType(name string) (report.Type, error) {
	t, err := report.TypeFromFileName(name)
	if errors.Is(err, report.ErrUnknownType) && (t.IsMRU() || t.IsAccessible()) {
		err = nil
	}
	return t, err
}

// probeOfType is the probe whose report t is.
func probeOfType(t report.Type) string {
	switch {
	case t.IsMonitor():
		return monitorKind.name
	case t.IsMRU():
		return mruKind.name
	case t.IsAccessible():
		return timeKind.name
	}
	return versionKind.name
}

// probeStats are the places of the statistics' probes, by probe name
// (each holds nil for a probe that did not run).
func probeStats(st *report.JSONScanStats) map[string]**report.JSONProbeStats {
	return map[string]**report.JSONProbeStats{monitorKind.name: &st.Monitor, versionKind.name: &st.Version,
		mruKind.name: &st.MRU, timeKind.name: &st.Accessible}
}
