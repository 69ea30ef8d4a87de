package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

func TestConstituencies(t *testing.T) {
	cs := labCS(t)
	require.Len(t, cs.List, 3)
	assert.Equal(t, []string{"NL"}, cs.List[1].Countries)
	k := report.Key{IP: mustAddr("127.42.1.4"), ASN: 64497, Country: "NL"}
	assert.Equal(t, []string{"nl", "lab_hi"}, cs.Names(k))
	assert.Equal(t, []string{"as64496"}, cs.Names(report.Key{IP: mustAddr("192.0.2.1"), ASN: 64496}))
	assert.Empty(t, cs.Names(report.Key{IP: mustAddr("::1")}))

	v6, err := store.ParseConstituencies([]byte("constituencies:\n  - name: six\n    prefixes: [\"2001:db8::/32\", 192.0.2.7, \"::ffff:198.51.100.0/120\"]\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"six"}, v6.Names(report.Key{IP: mustAddr("2001:db8::5")}))
	assert.Equal(t, []string{"six"}, v6.Names(report.Key{IP: mustAddr("192.0.2.7")}))
	assert.Equal(t, []string{"six"}, v6.Names(report.Key{IP: mustAddr("198.51.100.9")}))
	assert.Empty(t, v6.Names(report.Key{IP: mustAddr("192.0.2.8")}))
}

func TestConstituencyErrors(t *testing.T) {
	for _, c := range []struct {
		file string
		line int
		msg  string
	}{
		{"constituencies:\n  - name: a-b\n    asns: [1]\n", 2, "name"},
		{"constituencies:\n  - name: ok\n    prefixes: [192.0.2.1/24]\n", 3, "host bits"},
		{"constituencies:\n  - name: ok\n    prefixes:\n      - 10.0.0.0/8\n      - nonsense\n", 5, "prefix"},
		{"constituencies:\n  - name: ok\n    asns: [0]\n", 3, "AS number"},
		{"constituencies:\n  - name: ok\n    countries: [NLD]\n", 3, "country"},
		{"constituencies:\n  - name: ok\n    asns: [1]\n    contacts: [\"Eve <eve@example.net>\"]\n", 4, "contact"},
		{"constituencies:\n  - name: ok\n    asns: [1]\n    colour: red\n", 4, "unknown key"},
		{"constituencies:\n  - name: ok\n    asns: [1]\n    delivery: {attach: fax}\n", 4, "attach"},
		{"constituencies:\n  - name: ok\n", 2, "no prefixes"},
		{"constituencies:\n  - name: ok\n    asns: [1]\n  - name: OK\n    asns: [2]\n", 4, "already defined"},
		{"constituencies:\n  - name: ok\n    asns: [1\n", 0, ""},
	} {
		_, err := store.ParseConstituencies([]byte(c.file))
		require.Error(t, err, c.file)
		assert.ErrorIs(t, err, store.ErrConstituency)
		var ce *store.ConstituencyError
		require.True(t, errors.As(err, &ce))
		if c.line > 0 {
			assert.Equal(t, c.line, ce.Line, "%q: %v", c.file, err)
		} else {
			assert.Positive(t, ce.Line, "%q: %v", c.file, err)
		}
		assert.Contains(t, err.Error(), c.msg)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("constituencies:\n  - name: x\n"), 0o600))
	_, err := store.LoadConstituencies(path)
	assert.ErrorContains(t, err, path+":2:")
}

// TestLayoutsImport: every historical layout in report/testdata imports
// with no row lost, and the store writes its rows back as the current
// layout's Writer does.
func TestLayoutsImport(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "layouts", "*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		sawExtra := false
		defer func() { assert.True(t, sawExtra, "no layout has extra columns") }()
		for i, f := range files {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			typ := report.Type(strings.SplitN(filepath.Base(f), "-", 2)[0])
			name := fmt.Sprintf("2026-11-%02d-%s", i+1, filepath.Base(f))
			res, err := st.ImportCSV(ctx, bytes.NewReader(data), name, store.CSVOptions{Type: typ})
			require.NoError(t, err, f)
			require.True(t, res.Created, f)
			assert.Zero(t, res.Skipped, f)

			var want bytes.Buffer
			if typ.IsVersion() {
				rows, err := report.ReadAll[report.VersionRow](bytes.NewReader(data), report.ReaderOptions{})
				require.NoError(t, err)
				require.NoError(t, report.WriteAll(&want, rows, report.WriterOptions{}))
				// The old layout's own columns are kept with the row.
				if len(rows[0].Extra) > 0 {
					h, err := st.History(ctx, report.KeyOf(&rows[0]).IP)
					require.NoError(t, err)
					var found bool
					for _, sg := range h.Sightings {
						var extra map[string]string
						if sg.RunID == res.Run.ID && json.Unmarshal([]byte(sg.Extra), &extra) == nil {
							found = assert.Equal(t, rows[0].Extra, extra, f)
						}
					}
					assert.True(t, found, "%s: extra columns kept", f)
					sawExtra = true
				}
			} else {
				rows, err := report.ReadAll[report.MonitorRow](bytes.NewReader(data), report.ReaderOptions{})
				require.NoError(t, err)
				require.NoError(t, report.WriteAll(&want, rows, report.WriterOptions{}))
			}
			var got bytes.Buffer
			n, err := st.WriteReport(ctx, &got, store.ReportQuery{RunID: res.Run.ID, Type: typ})
			require.NoError(t, err)
			assert.EqualValues(t, res.Run.Rows, n)
			assert.Equal(t, want.String(), got.String(), f)
		}
	})
}

// TestMalformedRows: a bad row is reported with its line, the others are
// kept.
func TestMalformedRows(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		var b bytes.Buffer
		v1, v2 := labRow("A", 1), labRow("B", 1)
		require.NoError(t, report.WriteAll(&b, []report.VersionRow{v1, v2}, report.WriterOptions{}))
		lines := strings.SplitAfter(b.String(), "\n")
		bad := lines[0] + lines[1] + "\"2026-11-01 06:00:01\",\"medium\",\"not an address\"\n" + lines[2]
		res, err := st.ImportCSV(context.Background(), strings.NewReader(bad), "2026-11-01-scan_ntp-lab.csv", store.CSVOptions{})
		require.NoError(t, err)
		assert.Equal(t, 1, res.Skipped)
		require.Len(t, res.RowErrors, 1)
		var re *report.RowError
		require.ErrorAs(t, res.RowErrors[0], &re)
		assert.Equal(t, 3, re.Line)
		assert.EqualValues(t, 2, res.Run.Rows)
	})
}

// TestReportAndDelta: a day's report per constituency is the scanner's
// CSV of its rows; delta mode leaves out rows that did not change.
func TestReportAndDelta(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ids := importLab(t, st, []int{1, 2, 3})
		run, err := st.RunOf(ctx, "2026-11-03", report.ScanNTP)
		require.NoError(t, err)
		assert.Equal(t, ids[3], run.ID)

		var want bytes.Buffer
		var rows []report.VersionRow
		for _, h := range "AB" { // nl's hosts on day 3: A and B (F too)
			rows = append(rows, labRow(string(h), 3))
		}
		rows = append(rows, labRow("F", 3))
		require.NoError(t, report.WriteAll(&want, rows, report.WriterOptions{}))
		var got bytes.Buffer
		n, err := st.WriteReport(ctx, &got, store.ReportQuery{RunID: run.ID, Type: report.ScanNTP, Constituency: "nl"})
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		assert.Equal(t, want.String(), got.String())

		// Delta on day 3: only F and E came back (their values are as
		// on day 1; A, B and N are as on day 2, timestamps aside).
		got.Reset()
		n, err = st.WriteReport(ctx, &got, store.ReportQuery{RunID: run.ID, Type: report.ScanNTP, Delta: true})
		require.NoError(t, err)
		assert.Equal(t, 2, n, got.String())
		assert.Contains(t, got.String(), labHosts["F"].ip)
		assert.Contains(t, got.String(), labHosts["E"].ip)
	})
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", ":memory:", "file:x?mode=memory"} {
		_, err := store.Open(context.Background(), dsn)
		assert.ErrorIs(t, err, store.ErrDSN, dsn)
	}
	// Reopening applies nothing twice.
	path := filepath.Join(t.TempDir(), "s.db")
	for range 2 {
		st, err := store.Open(context.Background(), path)
		require.NoError(t, err)
		v, err := st.SchemaVersion(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 6, v)
		st.Close()
	}
}

func TestStats(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ids := importLab(t, st, []int{1})
		s, err := st.Stats(context.Background(), ids[1], "nl")
		require.NoError(t, err)
		assert.Equal(t, []store.Count{{Key: "scan_ntp", Count: 3}, {Key: "scan_ntpmonitor", Count: 1}}, s.Rows)
		assert.Equal(t, []store.Count{{Key: "NL", Count: 4}}, s.Countries)
		assert.Equal(t, []store.Count{{Key: "64496", Count: 3}, {Key: "64497", Count: 1}}, s.ASNs)
		assert.Equal(t, []store.Count{{Key: "ntpd 4.2.8p15", Count: 3}}, s.Daemons)
		assert.Equal(t, []store.Count{{Key: "10-100", Count: 3}, {Key: "1000+", Count: 1}}, s.Amplification)
	})
}

// TestSeries: the lab's week as a time series.
func TestSeries(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		importLab(t, st, []int{1, 2, 3, 4, 5, 6, 7, 8})
		ps, err := st.Series(context.Background(), "", "2026-11-02", "2026-11-08")
		require.NoError(t, err)
		require.Len(t, ps, 7)
		var got []string
		for _, p := range ps {
			got = append(got, fmt.Sprintf("%s %v new %d fixed %d", p.Day[8:], p.Rows, p.New, p.Fixed))
		}
		// New: rows whose finding opened that day (the monitor row of A
		// only on day 1); Fixed: as in labDiffs.
		assert.Equal(t, []string{
			"02 [{scan_ntp 4} {scan_ntpmonitor 1}] new 1 fixed 0",
			"03 [{scan_ntp 5} {scan_ntpmonitor 1}] new 0 fixed 0",
			"04 [{scan_ntp 1} {scan_ntpmonitor 1}] new 0 fixed 0",
			"05 [{scan_ntp 2} {scan_ntpmonitor 1}] new 0 fixed 0",
			"06 [{scan_ntp 3} {scan_ntpmonitor 1}] new 0 fixed 1",
			"07 [{scan_ntp 3} {scan_ntpmonitor 1}] new 0 fixed 1",
			"08 [{scan_ntp 4} {scan_ntpmonitor 1}] new 1 fixed 1",
		}, got)
		ps, err = st.Series(context.Background(), "nl", "", "2026-11-01")
		require.NoError(t, err)
		require.Len(t, ps, 1)
		assert.EqualValues(t, 4, ps[0].New) // A, B, F and A's monitor row
	})
}

func TestDeltaOn(t *testing.T) {
	cs, err := store.ParseConstituencies([]byte("constituencies:\n  - name: a\n    asns: [1]\n    delivery: {delta: true, full_weekday: wednesday}\n  - name: b\n    asns: [2]\n    delivery: {delta: true}\n  - name: c\n    asns: [3]\n"))
	require.NoError(t, err)
	wed, mon := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	assert.False(t, cs.List[0].DeltaOn(wed))
	assert.True(t, cs.List[0].DeltaOn(mon))
	assert.True(t, cs.List[1].DeltaOn(wed))
	assert.False(t, cs.List[1].DeltaOn(mon))
	assert.False(t, cs.List[2].DeltaOn(wed))
}

// TestOneFindingPerAddress: an address written two ways (IPv4-mapped and
// not) is one finding.
func TestOneFindingPerAddress(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		run, _ := labRun(t, 1)
		a, b := labRow("A", 1), labRow("A", 1)
		b.IP = "::ffff:" + a.IP
		rows := []store.Row{store.VersionRowOf(report.ScanNTP, &a), store.VersionRowOf(report.ScanNTP, &b)}
		_, err := st.Import(context.Background(), run, seq(rows), store.ImportOptions{})
		require.NoError(t, err)
		open, err := st.OpenFindings(context.Background(), "")
		require.NoError(t, err)
		require.Len(t, open, 1)
		h, err := st.History(context.Background(), mustAddr(a.IP))
		require.NoError(t, err)
		assert.Len(t, h.Findings, 1)
		assert.Len(t, h.Sightings, 2)
	})
}
