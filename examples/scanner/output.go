package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
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
// line, so a failed write (a full disk) can be cut back to it.
type outFile struct {
	path string
	f    *os.File
	cw   *countWriter
	good int64
}

func (s *scan) createFile(name string) (*outFile, error) {
	path := filepath.Join(s.dir, name)
	create := s.create
	if create == nil {
		create = os.Create
	}
	f, err := create(path)
	if err != nil {
		return nil, err
	}
	return &outFile{path: path, f: f, cw: &countWriter{w: f}}, nil
}

// flushed records a successful flush.
func (f *outFile) flushed() { f.good = f.cw.n }

// cut truncates the file to its last complete flush and closes it.
func (f *outFile) cut() {
	_ = f.f.Truncate(f.good)
	_ = f.f.Close()
}

// csvFile is one report file being written.
type csvFile[T report.Row] struct {
	*outFile
	w    *report.Writer[T]
	rows int
	all  []T // kept for -split
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

func (c *csvFile[T]) write(row T, keep bool) error {
	c.rows++
	if keep {
		c.all = append(c.all, row)
	}
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
	return nil
}

func (c *csvFile[T]) close() error {
	if c == nil {
		return nil
	}
	return errors.Join(c.flush(), c.f.Sync(), c.f.Close())
}

func (c *csvFile[T]) abandon() {
	if c != nil {
		c.cut()
	}
}

// outputs are the files of one scan and the statistics.
type outputs struct {
	s                  *scan
	mon4, mon6         *csvFile[report.MonitorRow]
	ver4, ver6         *csvFile[report.VersionRow]
	jsonFile           *outFile
	jsonBuf            *bufio.Writer
	json               *report.JSONWriter
	jsonLines          int
	monStats, verStats report.Stats
	monResults         map[ntpctl.Status]int
	verResults         map[ntpctl.Status]int
	monReplied         int // targets that sent monlist datagrams (any)
	verReplied         int
	disabled           int // monlist answered with an error (INFO_ERR_NODATA …)
	files              []string
	interrupted        bool
	monAddrs, verAddrs map[netip.Addr]bool // addresses with rows, kept for the lab's check
	monDone, verDone   map[netip.Addr]bool // addresses with results, kept for the lab's check
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

func newOutputs(s *scan) (_ *outputs, err error) {
	o := &outputs{s: s, monResults: map[ntpctl.Status]int{}, verResults: map[ntpctl.Status]int{}}
	if s.lab != nil {
		o.monAddrs, o.verAddrs = map[netip.Addr]bool{}, map[netip.Addr]bool{}
		o.monDone, o.verDone = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	}
	defer func() {
		if err != nil {
			o.abandon()
		}
	}()
	if s.opts.monitor() {
		if o.mon4, err = openCSV[report.MonitorRow](s, report.ScanNTPMonitor); err != nil {
			return nil, err
		}
		if s.has6 {
			if o.mon6, err = openCSV[report.MonitorRow](s, report.Scan6NTPMonitor); err != nil {
				return nil, err
			}
		}
	}
	if s.opts.version() {
		if o.ver4, err = openCSV[report.VersionRow](s, report.ScanNTP); err != nil {
			return nil, err
		}
		if s.has6 {
			if o.ver6, err = openCSV[report.VersionRow](s, report.Scan6NTP); err != nil {
				return nil, err
			}
		}
	}
	if o.jsonFile, err = s.createFile(s.baseName() + ".jsonl"); err != nil {
		return nil, err
	}
	o.jsonBuf = bufio.NewWriterSize(o.jsonFile.cw, 256<<10)
	o.json = report.NewJSONWriter(o.jsonBuf)
	return o, nil
}

// abandon cuts every file back to its last complete flush (whole rows and
// lines) and closes it, after a write error; it tries to write the
// statistics too.
func (o *outputs) abandon() {
	o.mon4.abandon()
	o.mon6.abandon()
	o.ver4.abandon()
	o.ver6.abandon()
	if o.jsonFile != nil {
		o.jsonFile.cut()
		_ = o.writeStats()
	}
}

// consume writes every item until the channel closes, flushing now and
// then so that the files are nearly complete should the process die. It
// returns at the first write error; the caller then drains items.
func (o *outputs) consume(items <-chan item) error {
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return nil
			}
			if err := o.write(&it); err != nil {
				return err
			}
		case <-flush.C:
			if err := o.flush(); err != nil {
				return err
			}
		}
	}
}

func (o *outputs) write(it *item) error {
	split := o.s.opts.split != ""
	if r := it.mon; r != nil {
		if o.monDone != nil {
			o.monDone[r.Target.Addr()] = true
		}
		o.monResults[r.Status]++
		o.monStats.AddStatus(r.Status)
		if r.Packets > 0 {
			o.monReplied++
		}
		if r.Status == ntpctl.StatusServerError {
			o.disabled++
		}
		if row, ok := report.NewMonitorRow(*r, it.e, report.BuildOptions{}); ok {
			o.monStats.AddMonitor(&row)
			if o.monAddrs != nil {
				o.monAddrs[r.Target.Addr()] = true
			}
			f := o.mon4
			if r.Target.Addr().Is6() {
				f = o.mon6
			}
			if err := f.write(row, split); err != nil {
				return err
			}
		}
		if o.s.opts.jsonAll || r.Packets > 0 || r.Status == ntpctl.StatusSendError {
			o.jsonLines++
			rec := report.NewRecord(r, it.e)
			return o.json.Write(&rec)
		}
		return nil
	}
	r := it.ver
	if o.verDone != nil {
		o.verDone[r.Target.Addr()] = true
	}
	o.verResults[r.Status]++
	o.verStats.AddStatus(r.Status)
	if r.Packets > 0 {
		o.verReplied++
	}
	if row, ok := report.NewVersionRow(*r, it.e, report.BuildOptions{}); ok {
		o.verStats.AddVersion(&row)
		if o.verAddrs != nil {
			o.verAddrs[r.Target.Addr()] = true
		}
		f := o.ver4
		if r.Target.Addr().Is6() {
			f = o.ver6
		}
		if err := f.write(row, split); err != nil {
			return err
		}
	}
	if o.s.opts.jsonAll || r.Packets > 0 || r.Status == ntpctl.StatusSendError {
		o.jsonLines++
		rec := report.NewRecord(r, it.e)
		return o.json.Write(&rec)
	}
	return nil
}

func (o *outputs) flush() error {
	err := errors.Join(o.mon4.flush(), o.mon6.flush(), o.ver4.flush(), o.ver6.flush(), o.jsonBuf.Flush())
	if err == nil {
		o.jsonFile.flushed()
	}
	return err
}

// finish closes the files, writes the splits and the statistics.
func (o *outputs) finish() error {
	var errs []error
	for _, c := range []*csvFile[report.MonitorRow]{o.mon4, o.mon6} {
		if c != nil {
			errs = append(errs, c.close())
			o.files = append(o.files, c.path)
		}
	}
	for _, c := range []*csvFile[report.VersionRow]{o.ver4, o.ver6} {
		if c != nil {
			errs = append(errs, c.close())
			o.files = append(o.files, c.path)
		}
	}
	errs = append(errs, o.jsonBuf.Flush(), o.jsonFile.f.Sync(), o.jsonFile.f.Close())
	o.files = append(o.files, o.jsonFile.path)
	if by := o.s.opts.split; by != "" {
		errs = append(errs, o.split(by))
	}
	errs = append(errs, o.writeStats())
	return errors.Join(errs...)
}

func (o *outputs) split(by string) error {
	how := report.SplitByASN
	if by == "country" {
		how = report.SplitByCountry
	}
	dir := filepath.Join(o.s.dir, "by-"+by)
	opt := report.SplitOptions{Date: o.s.date, IDPrefix: o.s.opts.id + "-",
		Writer: report.WriterOptions{NeutralizeFormulas: o.s.opts.neutralize}}
	var errs []error
	for _, pair := range []struct {
		c *csvFile[report.MonitorRow]
		t report.Type
	}{{o.mon4, report.ScanNTPMonitor}, {o.mon6, report.Scan6NTPMonitor}} {
		if pair.c != nil && len(pair.c.all) > 0 {
			opt.Type = pair.t
			_, err := report.Split(dir, pair.c.all, how, opt)
			errs = append(errs, err)
		}
	}
	for _, pair := range []struct {
		c *csvFile[report.VersionRow]
		t report.Type
	}{{o.ver4, report.ScanNTP}, {o.ver6, report.Scan6NTP}} {
		if pair.c != nil && len(pair.c.all) > 0 {
			opt.Type = pair.t
			_, err := report.Split(dir, pair.c.all, how, opt)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (o *outputs) stats() report.JSONScanStats {
	s := o.s
	st := report.JSONScanStats{Started: s.started.UTC(), Finished: time.Now().UTC(), Targets: s.size,
		TargetsEstimated: !s.exact, Interrupted: o.interrupted, Seed: s.seed,
		Shard:      fmt.Sprintf("%d/%d", s.opts.shard, s.opts.shards),
		Enrichment: report.JSONEnrichStats{Errors: s.enrichErrs.Load()}}
	if s.monitor != nil {
		st.Monitor = &report.JSONProbeStats{Report: o.monStats.Summary(), Prober: s.monitor.Stats(), Replied: o.monReplied}
	}
	if s.version != nil {
		st.Version = &report.JSONProbeStats{Report: o.verStats.Summary(), Prober: s.version.Stats(), Replied: o.verReplied}
	}
	return st
}

func (o *outputs) writeStats() error {
	st := o.stats()
	base := o.s.baseName() + "-stats"
	jf, err := o.s.createFile(base + ".json")
	if err != nil {
		return err
	}
	enc := jsonEncoder(jf.f)
	err = errors.Join(enc.Encode(st), jf.f.Close())
	if err != nil {
		return err
	}
	tf, err := o.s.createFile(base + ".txt")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tf.f)
	about, interrupted := "", ""
	if st.TargetsEstimated {
		about = "about "
	}
	if st.Interrupted {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(w, "ntpctl scan: %s%d targets, seed %d, shard %s, %s to %s%s\n", about, st.Targets, st.Seed, st.Shard,
		st.Started.Format(time.RFC3339), st.Finished.Format(time.RFC3339), interrupted)
	if st.Monitor != nil {
		fmt.Fprintf(w, "\nNTP Monitor (Mode 7 monlist): %d rows\n", st.Monitor.Report.Rows)
		_ = st.Monitor.Report.WriteText(w)
	}
	if st.Version != nil {
		fmt.Fprintf(w, "\nNTP Version (Mode 6 READVAR): %d rows\n", st.Version.Report.Rows)
		_ = st.Version.Report.WriteText(w)
	}
	o.files = append(o.files, jf.path, tf.path)
	return errors.Join(w.Flush(), tf.f.Close())
}

func jsonEncoder(w *os.File) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc
}
