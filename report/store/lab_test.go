package store_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// engines runs f on a fresh SQLite file and a fresh PostgreSQL database.
func engines(t *testing.T, f func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		st := open(t, "sqlite:"+filepath.Join(t.TempDir(), "store.db"))
		f(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		st := open(t, pgDSN(t))
		f(t, st)
	})
}

func open(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

const labConstituencies = `
constituencies:
  - name: as64496
    asns: [64496]
    contacts: [noc@as64496.example]
  - name: nl
    countries: [nl]
    contacts: ["abuse@nl.example"]
  - name: lab_hi
    prefixes: [127.42.1.0/24]
    contacts: [cert@lab.example]
`

// The lab's hosts: name → address, AS and country. Their constituencies
// are labMembers.
var labHosts = map[string]struct {
	ip  string
	asn string
	geo string
}{
	"A": {"127.42.0.1", "64496", "NL"},
	"B": {"127.42.0.2", "64496", "NL"},
	"C": {"127.42.0.3", "64496", "DE"},
	"F": {"127.42.1.4", "64497", "NL"}, // flaps
	"E": {"127.42.1.5", "64497", "DE"}, // answers every other day
	"N": {"127.42.1.6", "64497", "DE"}, // new on day 2
}

var labMembers = map[string][]string{
	"as64496": {"A", "B", "C"},
	"nl":      {"A", "B", "F"},
	"lab_hi":  {"F", "E", "N"},
}

// labDay is one day's scan: the hosts that answer READVAR, whether the
// run completed, and the space it covered.
type labDay struct {
	hosts    string
	complete bool
	space    string
}

var labDays = []labDay{
	1: {"ABCFE", true, "127.42.0.0/23"},
	2: {"ABCN", true, "127.42.0.0/23"},
	3: {"ABFEN", true, "127.42.0.0/23"},
	4: {"A", false, "127.42.0.0/23"}, // interrupted
	5: {"AC", true, "127.42.0.0/24"}, // half the space
	6: {"ACN", true, "127.42.0.0/23"},
	7: {"ANE", true, "127.42.0.0/23"},
	8: {"ABNE", true, "127.42.0.0/23"},
}

// labDiffs are the expected diffs of each day against the day before,
// for all rows: new, persisting, fixed, absent, unknown.
var labDiffs = [][5]string{
	2: {"N", "ABC", "", "EF", ""},
	3: {"EF", "ABN", "", "C", ""},
	4: {"", "A", "", "", "BEFN"},
	5: {"C", "A", "", "", ""},
	6: {"N", "AC", "B", "", ""},
	7: {"E", "AN", "F", "C", ""},
	8: {"B", "AEN", "C", "", ""},
}

func labDate(day int) time.Time { return time.Date(2026, 11, day, 6, 0, 0, 0, time.UTC) }

func labRow(host string, day int) report.VersionRow {
	h := labHosts[host]
	return report.VersionRow{
		Common: report.Common{Timestamp: labDate(day).Add(time.Second).Format(report.TimeFormat), Severity: "medium",
			IP: h.ip, Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: h.asn, Geo: h.geo},
		Version: "ntpd 4.2.8p15@1.3728-o", Stratum: "2", ResponseSize: "420", Amplification: "35.00",
	}
}

func labMonitorRow(day int) report.MonitorRow {
	h := labHosts["A"]
	return report.MonitorRow{Common: report.Common{Timestamp: labDate(day).Format(report.TimeFormat), Severity: "medium",
		IP: h.ip, Protocol: "udp", Port: "123", ASN: h.asn, Geo: h.geo}, Packets: "100", ResponseSize: "44000", Amplification: "5500.00"}
}

// labRun returns day's run and its rows: host A also answers monlist.
func labRun(t testing.TB, day int) (store.Run, []store.Row) {
	d := labDays[day]
	p, err := ntpctl.ParseRange(d.space)
	require.NoError(t, err)
	run := store.Run{Source: fmt.Sprintf("lab day %d", day), Started: labDate(day), Finished: labDate(day).Add(time.Minute),
		Types: store.TypesOf("monitor", "version"), Complete: d.complete, Interrupted: !d.complete,
		Space: []ntpctl.Range{p}, Scanner: "lab"}
	var rows []store.Row
	m := labMonitorRow(day)
	rows = append(rows, store.MonitorRowOf(report.ScanNTPMonitor, &m))
	for _, h := range d.hosts {
		v := labRow(string(h), day)
		rows = append(rows, store.VersionRowOf(report.ScanNTP, &v))
	}
	return run, rows
}

func seq(rows []store.Row) iter.Seq2[store.Row, error] {
	return func(yield func(store.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func labCS(t testing.TB) *store.Constituencies {
	cs, err := store.ParseConstituencies([]byte(labConstituencies))
	require.NoError(t, err)
	return cs
}

// importLab imports the given days and returns the run IDs by day.
func importLab(t *testing.T, st *store.Store, days []int) map[int]int64 {
	ids := map[int]int64{}
	cs := labCS(t)
	for _, day := range days {
		run, rows := labRun(t, day)
		res, err := st.Import(context.Background(), run, seq(rows), store.ImportOptions{Constituencies: cs})
		require.NoError(t, err, "day %d", day)
		require.True(t, res.Created, "day %d", day)
		ids[day] = res.Run.ID
	}
	return ids
}

// names turns findings of version rows into host names, sorted.
func names(t *testing.T, fs []store.Finding) string {
	var out []string
	for _, f := range fs {
		if f.Type != report.ScanNTP {
			continue
		}
		found := false
		for n, h := range labHosts {
			if h.ip == f.IP {
				out = append(out, n)
				found = true
			}
		}
		require.True(t, found, "unknown finding %v", f)
	}
	slices.Sort(out)
	return strings.Join(out, "")
}

// only keeps the hosts of set that are members of constituency c.
func only(set, c string) string {
	if c == "" {
		return set
	}
	var out []byte
	for _, h := range set {
		if slices.Contains(labMembers[c], string(h)) {
			out = append(out, byte(h))
		}
	}
	return string(out)
}

func checkLab(t *testing.T, st *store.Store, ids map[int]int64) {
	ctx := context.Background()
	for day := 2; day < len(labDays); day++ {
		for _, c := range []string{"", "as64496", "nl", "lab_hi"} {
			d, err := st.Diff(ctx, ids[day-1], ids[day], c)
			require.NoError(t, err)
			want := labDiffs[day]
			got := [5]string{names(t, d.New), names(t, d.Persisting), names(t, d.Fixed), names(t, d.Absent), names(t, d.Unknown)}
			for i := range want {
				want[i] = only(want[i], c)
			}
			assert.Equal(t, want, got, "day %d, constituency %q: new, persisting, fixed, absent, unknown", day, c)
		}
	}
	// Day 8: how long the persisting ones have been open.
	d, err := st.Diff(ctx, ids[7], ids[8], "")
	require.NoError(t, err)
	open := map[string]int{}
	for _, f := range append(d.Persisting, d.New...) {
		if f.Type == report.ScanNTP {
			open[names(t, []store.Finding{f})] = f.OpenSince.Day()
		}
	}
	assert.Equal(t, map[string]int{"A": 1, "E": 1, "N": 2, "B": 8}, open, "open since (day of November)")
	for _, f := range d.Fixed {
		assert.Equal(t, 1, f.OpenSince.Day(), "C was open since day 1 when it was fixed")
	}

	// The findings now.
	states, err := st.OpenFindings(ctx, "")
	require.NoError(t, err)
	var fs []store.Finding
	for _, s := range states {
		fs = append(fs, s.Finding)
	}
	assert.Equal(t, "ABEN", names(t, fs))
	for _, host := range []string{"C", "F"} {
		h, err := st.History(ctx, netip.MustParseAddr(labHosts[host].ip))
		require.NoError(t, err)
		require.Len(t, h.Findings, 1)
		assert.False(t, h.Findings[0].Open(), host)
		assert.Equal(t, map[string]int{"C": 8, "F": 7}[host], h.Findings[0].Fixed.Day(), "%s fixed on", host)
	}
	h, err := st.History(ctx, netip.MustParseAddr(labHosts["A"].ip))
	require.NoError(t, err)
	assert.Len(t, h.Findings, 2, "A: monitor and version")
	assert.Len(t, h.Sightings, 16, "A: two rows a day for eight days")
}

// TestLab runs the multi-day lab on both engines: hosts fixed, new,
// flapping and answering every other day, an interrupted run and a run
// over half the space, with the exact new / persisting / fixed / absent /
// unknown sets per constituency and day.
func TestLab(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ids := importLab(t, st, []int{1, 2, 3, 4, 5, 6, 7, 8})
		checkLab(t, st, ids)
	})
}

// TestLabOutOfOrder imports the same days shuffled: the store replays
// them in time order and ends the same.
func TestLabOutOfOrder(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		days := []int{1, 2, 3, 4, 5, 6, 7, 8}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(days), func(i, j int) { days[i], days[j] = days[j], days[i] })
		if days[len(days)-1] == 8 {
			days[0], days[len(days)-1] = days[len(days)-1], days[0]
		}
		ids := importLab(t, st, days)
		checkLab(t, st, ids)
	})
}

// TestImportIdempotent: the same run twice changes nothing.
func TestImportIdempotent(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ids := importLab(t, st, []int{1, 2, 3})
		run, rows := labRun(t, 2)
		res, err := st.Import(ctx, run, seq(rows), store.ImportOptions{Constituencies: labCS(t)})
		require.NoError(t, err)
		assert.False(t, res.Created)
		assert.Equal(t, ids[2], res.Run.ID)
		runs, err := st.Runs(ctx)
		require.NoError(t, err)
		assert.Len(t, runs, 3)
	})
}

var errDisk = errors.New("disk on fire")

// TestImportAtomic: an import that fails half-way leaves the store as it
// was, and so does a cancelled one.
func TestImportAtomic(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		importLab(t, st, []int{1})
		before, err := st.OpenFindings(ctx, "")
		require.NoError(t, err)
		run, rows := labRun(t, 2)
		broken := func(yield func(store.Row, error) bool) {
			for i, r := range rows {
				if i == 2 {
					yield(store.Row{}, errDisk)
					return
				}
				if !yield(r, nil) {
					return
				}
			}
		}
		_, err = st.Import(ctx, run, broken, store.ImportOptions{})
		require.ErrorIs(t, err, errDisk)
		cctx, cancel := context.WithCancel(ctx)
		cancelling := func(yield func(store.Row, error) bool) {
			for i, r := range rows {
				if i == 2 {
					cancel()
				}
				if !yield(r, nil) {
					return
				}
			}
		}
		_, err = st.Import(cctx, run, cancelling, store.ImportOptions{})
		require.Error(t, err)
		runs, err := st.Runs(ctx)
		require.NoError(t, err)
		assert.Len(t, runs, 1)
		after, err := st.OpenFindings(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, before, after)
		var n int
		require.NoError(t, st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM rows`).Scan(&n))
		assert.Equal(t, 6, n)
	})
}

// TestConcurrentImports: two importers at once lose nothing.
func TestConcurrentImports(t *testing.T) {
	engines(t, func(t *testing.T, st *store.Store) {
		var wg sync.WaitGroup
		ids := map[int]int64{}
		var mu sync.Mutex
		errs := make(chan error, 8)
		for _, half := range [][]int{{1, 3, 5, 7}, {2, 4, 6, 8}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, day := range half {
					run, rows := labRun(t, day)
					res, err := st.Import(context.Background(), run, seq(rows), store.ImportOptions{Constituencies: labCS(t)})
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ids[day] = res.Run.ID
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		checkLab(t, st, ids)
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
