package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

// csvFile is one report file being written.
type csvFile[T report.Row] struct {
	path string
	f    *os.File
	w    *report.Writer[T]
	rows int
	all  []T // kept for -split
}

func openCSV[T report.Row](s *scan, t report.Type) (*csvFile[T], error) {
	path := filepath.Join(s.dir, report.FileName(s.date, t, s.opts.id))
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	c := &csvFile[T]{path: path, f: f,
		w: report.NewWriter[T](f, report.WriterOptions{NeutralizeFormulas: s.opts.neutralize})}
	if err := c.w.WriteHeader(); err != nil {
		f.Close()
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

func (c *csvFile[T]) close() error {
	if c == nil {
		return nil
	}
	return errors.Join(c.w.Flush(), c.f.Sync(), c.f.Close())
}

// outputs are the files of one scan and the statistics.
type outputs struct {
	s                  *scan
	mon4, mon6         *csvFile[report.MonitorRow]
	ver4, ver6         *csvFile[report.VersionRow]
	jsonPath           string
	jsonFile           *os.File
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
	monAddrs, verAddrs map[netip.Addr]bool // addresses with rows, kept for the lab's check
}

func newOutputs(s *scan) (*outputs, error) {
	o := &outputs{s: s, monResults: map[ntpctl.Status]int{}, verResults: map[ntpctl.Status]int{}}
	if s.lab != nil {
		o.monAddrs, o.verAddrs = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	}
	var err error
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
	o.jsonPath = filepath.Join(s.dir, s.date.Format("2006-01-02")+"-ntpctl-"+s.opts.id+".jsonl")
	if o.jsonFile, err = os.Create(o.jsonPath); err != nil {
		return nil, err
	}
	o.jsonBuf = bufio.NewWriterSize(o.jsonFile, 256<<10)
	o.json = report.NewJSONWriter(o.jsonBuf)
	return o, nil
}

// consume writes every item until the channel closes, flushing now and
// then so that the files are nearly complete should the process die.
func (o *outputs) consume(items <-chan item) error {
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	var err error
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return err
			}
			if err == nil {
				err = o.write(&it)
			}
		case <-flush.C:
			if err == nil {
				err = o.flush()
			}
		}
	}
}

func (o *outputs) write(it *item) error {
	split := o.s.opts.split != ""
	if r := it.mon; r != nil {
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
			return o.json.WriteMonitor(*r, it.e)
		}
		return nil
	}
	r := it.ver
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
		return o.json.WriteVersion(*r, it.e)
	}
	return nil
}

func (o *outputs) flush() error {
	var errs []error
	for _, f := range []interface{ flush() error }{flusher[report.MonitorRow]{o.mon4}, flusher[report.MonitorRow]{o.mon6},
		flusher[report.VersionRow]{o.ver4}, flusher[report.VersionRow]{o.ver6}} {
		errs = append(errs, f.flush())
	}
	errs = append(errs, o.jsonBuf.Flush())
	return errors.Join(errs...)
}

type flusher[T report.Row] struct{ c *csvFile[T] }

func (f flusher[T]) flush() error {
	if f.c == nil {
		return nil
	}
	return f.c.w.Flush()
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
	errs = append(errs, o.jsonBuf.Flush(), o.jsonFile.Sync(), o.jsonFile.Close())
	o.files = append(o.files, o.jsonPath)
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

// scanStats is the statistics file: both reports' summaries and the
// probers' counters.
type scanStats struct {
	Started   time.Time       `json:"started"`
	Finished  time.Time       `json:"finished"`
	Targets   uint64          `json:"targets"`
	Seed      uint64          `json:"seed"`
	Shard     string          `json:"shard"`
	Monitor   *probeStats     `json:"monitor,omitempty"`
	Version   *probeStats     `json:"version,omitempty"`
	Enrichers enrichmentStats `json:"enrichment"`
}

type probeStats struct {
	Report  report.Summary `json:"report"`
	Prober  ntpctl.Stats   `json:"prober"`
	Replied int            `json:"replied"`
}

type enrichmentStats struct {
	Errors uint64 `json:"errors"`
}

func (o *outputs) stats() scanStats {
	s := o.s
	st := scanStats{Started: s.started.UTC(), Finished: time.Now().UTC(), Targets: s.size, Seed: s.seed,
		Shard: fmt.Sprintf("%d/%d", s.opts.shard, s.opts.shards), Enrichers: enrichmentStats{s.enrichErrs.Load()}}
	if s.monitor != nil {
		st.Monitor = &probeStats{Report: o.monStats.Summary(), Prober: s.monitor.Stats(), Replied: o.monReplied}
	}
	if s.version != nil {
		st.Version = &probeStats{Report: o.verStats.Summary(), Prober: s.version.Stats(), Replied: o.verReplied}
	}
	return st
}

func (o *outputs) writeStats() error {
	st := o.stats()
	base := filepath.Join(o.s.dir, o.s.date.Format("2006-01-02")+"-ntpctl-"+o.s.opts.id+"-stats")
	jf, err := os.Create(base + ".json")
	if err != nil {
		return err
	}
	enc := jsonEncoder(jf)
	err = errors.Join(enc.Encode(st), jf.Close())
	if err != nil {
		return err
	}
	tf, err := os.Create(base + ".txt")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tf)
	fmt.Fprintf(w, "ntpctl scan: %d targets, seed %d, shard %s, %s to %s\n", st.Targets, st.Seed, st.Shard,
		st.Started.Format(time.RFC3339), st.Finished.Format(time.RFC3339))
	if st.Monitor != nil {
		fmt.Fprintf(w, "\nNTP Monitor (Mode 7 monlist): %d rows\n", st.Monitor.Report.Rows)
		_ = st.Monitor.Report.WriteText(w)
	}
	if st.Version != nil {
		fmt.Fprintf(w, "\nNTP Version (Mode 6 READVAR): %d rows\n", st.Version.Report.Rows)
		_ = st.Version.Report.WriteText(w)
	}
	o.files = append(o.files, base+".json", base+".txt")
	return errors.Join(w.Flush(), tf.Close())
}

func jsonEncoder(w *os.File) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc
}
