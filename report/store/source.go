package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

// MaxStatsFile caps the size of a scan's statistics file.
const MaxStatsFile = 64 << 20

// ErrNoScan: a directory holds no scan (no …-stats.json file).
var ErrNoScan = errors.New("store: no scan statistics in directory")

// dirTypes are the report files of a scan directory, in import order.
var dirTypes = []report.Type{report.ScanNTPMonitor, report.Scan6NTPMonitor, report.ScanNTP, report.Scan6NTP}

// ImportDir imports a scanner's output directory: its statistics file
// (…-stats.json) and its four report files; split files in
// subdirectories are not read. The run is complete unless the scan was
// interrupted or failed, and covers the space its statistics name.
func (s *Store) ImportDir(ctx context.Context, dir string, opt ImportOptions) (ImportResult, error) {
	run, files, err := ReadDir(dir)
	if err != nil {
		return ImportResult{}, err
	}
	return s.Import(ctx, run, filesRows(files), opt)
}

// ReadDir reads the statistics of a scan directory into a Run and lists
// its report files by type.
func ReadDir(dir string) (Run, map[report.Type]string, error) {
	var run Run
	stats, err := filepath.Glob(filepath.Join(dir, "*-stats.json"))
	if err != nil {
		return run, nil, err
	}
	if len(stats) != 1 {
		return run, nil, fmt.Errorf("%w: %s (%d statistics files)", ErrNoScan, dir, len(stats))
	}
	raw, err := readCapped(stats[0], MaxStatsFile)
	if err != nil {
		return run, nil, err
	}
	var st report.JSONScanStats
	if err := json.Unmarshal(raw, &st); err != nil {
		return run, nil, fmt.Errorf("store: %s: %w", stats[0], err)
	}
	run = Run{Source: dir, Started: st.Started.UTC(), Finished: st.Finished.UTC(),
		Complete: !st.Interrupted && st.Failed == "", Interrupted: st.Interrupted, Scanner: st.Scanner, Stats: raw}
	if st.Monitor != nil {
		run.Types = append(run.Types, TypesOf("monitor")...)
	}
	if st.Version != nil {
		run.Types = append(run.Types, TypesOf("version")...)
	}
	for _, sp := range st.Space {
		r, err := ntpctl.ParseRange(sp)
		if err != nil {
			return run, nil, fmt.Errorf("store: %s: space: %w", stats[0], err)
		}
		run.Space = append(run.Space, r)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return run, nil, err
	}
	files := map[report.Type]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".csv") {
			continue
		}
		t, err := report.TypeFromFileName(e.Name())
		if err != nil || !contains(run.Types, t) {
			continue
		}
		if _, dup := files[t]; dup {
			return run, nil, fmt.Errorf("store: %s: two %s reports", dir, t)
		}
		files[t] = filepath.Join(dir, e.Name())
	}
	return run, files, nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("store: %s: larger than %d octets", path, limit)
	}
	return b, err
}

// filesRows yields the rows of a directory's report files in order.
func filesRows(files map[report.Type]string) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		for _, t := range dirTypes {
			path, ok := files[t]
			if !ok {
				continue
			}
			f, err := os.Open(path)
			if err != nil {
				yield(Row{}, err)
				return
			}
			ok = true
			for row, err := range CSVRows(f, t) {
				if !yield(row, err) {
					ok = false
					break
				}
			}
			f.Close()
			if !ok {
				return
			}
		}
	}
}

// CSVRows reads a report of type t, of any layout, as Rows; a malformed
// row is yielded as its *report.RowError.
func CSVRows(r io.Reader, t report.Type) iter.Seq2[Row, error] {
	return func(yield func(Row, error) bool) {
		var b rowBuilder
		if t.IsVersion() {
			for v, err := range report.NewReader[report.VersionRow](r, report.ReaderOptions{}).All() {
				if err != nil {
					if !yield(Row{}, err) {
						return
					}
					continue
				}
				if !yield(b.version(t, &v), nil) {
					return
				}
			}
			return
		}
		for m, err := range report.NewReader[report.MonitorRow](r, report.ReaderOptions{}).All() {
			if err != nil {
				if !yield(Row{}, err) {
					return
				}
				continue
			}
			if !yield(b.monitor(t, &m), nil) {
				return
			}
		}
	}
}

// CSVOptions describes a report file imported on its own (one received
// from Shadowserver, say), which carries no statistics.
type CSVOptions struct {
	ImportOptions
	// Type is the report type; "" takes it from the file name.
	Type report.Type
	// Date is when the scan ran; zero takes the date from the file name
	// (YYYY-MM-DD-…, midnight UTC).
	Date time.Time
	// Space is the target space the scan covered completely; empty means
	// unknown, and the run then fixes nothing (Shadowserver scans the
	// whole IPv4 space: pass 0.0.0.0/0 to say so).
	Space []ntpctl.Range
	// Incomplete marks the scan as not complete.
	Incomplete bool
}

// ImportCSV imports one report file of any historical layout as a run of
// its own. name is the file's name (for its type and date).
func (s *Store) ImportCSV(ctx context.Context, r io.Reader, name string, opt CSVOptions) (ImportResult, error) {
	t := opt.Type
	if t == "" {
		var err error
		if t, err = report.TypeFromFileName(filepath.Base(name)); err != nil {
			return ImportResult{}, err
		}
	}
	date := opt.Date
	if date.IsZero() {
		base := filepath.Base(name)
		if len(base) < 10 {
			return ImportResult{}, fmt.Errorf("%w: %s: no date", report.ErrFileName, name)
		}
		d, err := time.Parse(time.DateOnly, base[:10])
		if err != nil {
			return ImportResult{}, fmt.Errorf("%w: %s: no date", report.ErrFileName, name)
		}
		date = d
	}
	run := Run{Source: name, Started: date.UTC(), Finished: date.UTC(), Types: []report.Type{t},
		Complete: !opt.Incomplete, Space: opt.Space, Scanner: "import"}
	return s.Import(ctx, run, CSVRows(r, t), opt.ImportOptions)
}
