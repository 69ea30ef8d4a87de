package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	labsim "github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// The multi-day lab with real scans: the scanner (built with -tags store)
// scans the lab of simulated servers as it is on each of seven days
// (lab.Config.Day: servers fixed, appearing, flapping, answering on odd
// days), writing each run into an SQLite store with -db; day 4's scan is
// interrupted, day 5's covers half the lab's /16. The same directories
// are then imported into PostgreSQL with reportd import. On both, each
// day's diff per constituency must be exactly what the lab's servers
// were, with a finding fixed only after two complete covering runs missed
// it.

const multiDayConstituencies = `
constituencies:
  - name: as64496
    asns: [64496]
  - name: nl
    countries: [NL]
  - name: low
    prefixes: [127.42.0.0/17]
`

const halfSpace = "127.42.0.0/17"

// key is a finding as the test tracks it.
type key struct {
	typ report.Type
	ip  netip.Addr
}

// freePort returns a UDP port that was free a moment ago on loopback.
func freePort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// expected returns the findings the lab's servers make on day: each
// host that answers a query, among those inside the space scanned.
func expected(t *testing.T, day int, inside func(netip.Addr) bool) (map[key]bool, *enrich.Static) {
	l, err := labsim.Start(context.Background(), labsim.Config{Day: day})
	require.NoError(t, err)
	defer l.Close()
	static, err := enrich.ParseStatic(strings.NewReader(l.StaticCSV()))
	require.NoError(t, err)
	answers := func(st ntpctl.Status) bool { return st == ntpctl.StatusOK || st == ntpctl.StatusPartial }
	out := map[key]bool{}
	for _, h := range l.Hosts() {
		a := h.Addr.Addr()
		if !inside(a) {
			continue
		}
		if answers(h.ReadVar.Status) {
			out[key{report.TypeOf[mode6.Reply](a), a}] = true
		}
		if answers(h.Monlist.Status) {
			out[key{report.TypeOf[mode7.Reply](a), a}] = true
		}
	}
	return out, static
}

func TestMultiDayLab(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the scanner and runs seven scans")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "scanner")
	out, err := exec.Command("go", "build", "-tags", "store", "-o", bin, "../scanner").CombinedOutput()
	require.NoError(t, err, "%s", out)
	csPath := filepath.Join(tmp, "cs.yaml")
	require.NoError(t, os.WriteFile(csPath, []byte(multiDayConstituencies), 0o644))
	db := filepath.Join(tmp, "store.db")
	port := fmt.Sprint(freePort(t))

	const days = 7
	var dirs []string
	for day := 1; day <= days; day++ {
		dir := filepath.Join(tmp, fmt.Sprintf("day%d", day))
		dirs = append(dirs, dir)
		args := []string{"-lab", "-lab-day", fmt.Sprint(day), "-port", port, "-db", db, "-constituencies", csPath, "-out", dir}
		switch day {
		case 4:
			args = append(args, "-rate", "40") // slow enough to be cut short
		case 5:
			args = append(args, halfSpace)
		}
		cmd := exec.Command(bin, args...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		require.NoError(t, cmd.Start())
		if day == 4 {
			time.Sleep(1500 * time.Millisecond)
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		}
		err := cmd.Wait()
		if day == 4 {
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", buf.String())
			require.Equal(t, 130, ee.ExitCode(), "%s", buf.String())
		} else {
			require.NoError(t, err, "day %d: %s", day, buf.String())
		}
		require.Contains(t, buf.String(), "imported into the store", "day %d", day)
	}

	cs, err := store.LoadConstituencies(csPath)
	require.NoError(t, err)
	check := func(t *testing.T, st *store.Store) {
		runs, err := st.Runs(context.Background())
		require.NoError(t, err)
		require.Len(t, runs, days)
		checkMultiDay(t, st, runs, cs)
	}
	t.Run("sqlite", func(t *testing.T) {
		st, err := store.Open(context.Background(), db)
		require.NoError(t, err)
		defer st.Close()
		check(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgDSN(t)
		var buf bytes.Buffer
		require.NoError(t, run(context.Background(), append([]string{"import", "-db", dsn, "-constituencies", csPath}, dirs...), &buf, &buf), buf.String())
		st, err := store.Open(context.Background(), dsn)
		require.NoError(t, err)
		defer st.Close()
		check(t, st)
	})
}

// checkMultiDay compares the store's diffs with the lab.
func checkMultiDay(t *testing.T, st *store.Store, runs []store.Run, cs *store.Constituencies) {
	ctx := context.Background()
	half := netip.MustParsePrefix(halfSpace)
	misses := map[key]int{}
	fixed := map[key]bool{}
	var prev map[key]bool
	var static *enrich.Static
	for i, run := range runs {
		day := i + 1
		inside := func(netip.Addr) bool { return true }
		if day == 5 {
			inside = half.Contains
		}
		want, s := expected(t, day, inside)
		static = s
		require.Equal(t, day != 4, run.Complete, "day %d complete", day)
		seen := want
		if day == 4 {
			// Cut short: the rows are those of the hosts it reached.
			seen = rowsOf(t, st, run)
			for k := range seen {
				require.True(t, want[k], "day 4 lists %v, which does not answer", k)
			}
		} else {
			assert.Equal(t, want, rowsOf(t, st, run), "day %d: the rows are the hosts that answer", day)
		}
		// The life of each finding, by the rule: a complete run that
		// covered it and missed it counts a miss, two fix it.
		fixedToday := map[key]bool{}
		for k := range seen {
			misses[k], fixed[k] = 0, false
		}
		if run.Complete {
			for k := range misses {
				if !seen[k] && !fixed[k] && inside(k.ip) {
					misses[k]++
					if misses[k] == store.FixAfter {
						fixed[k], fixedToday[k] = true, true
					}
				}
			}
		}
		if prev != nil {
			for _, c := range []string{"", "as64496", "nl", "low"} {
				member := func(k key) bool {
					if c == "" {
						return true
					}
					r, _ := static.Lookup(k.ip)
					rk := report.Key{IP: k.ip, ASN: r.ASN.Number, Country: r.Geo.Country}
					return slices.Contains(cs.Names(rk), c)
				}
				var wantNew, wantPersist, wantFixed, wantAbsent, wantUnknown []key
				for k := range seen {
					if !member(k) {
						continue
					}
					if prev[k] {
						wantPersist = append(wantPersist, k)
					} else {
						wantNew = append(wantNew, k)
					}
				}
				for k := range fixedToday {
					if member(k) {
						wantFixed = append(wantFixed, k)
					}
				}
				for k := range prev {
					if seen[k] || fixedToday[k] || !member(k) {
						continue
					}
					if run.Complete && inside(k.ip) {
						wantAbsent = append(wantAbsent, k)
					} else {
						wantUnknown = append(wantUnknown, k)
					}
				}
				d, err := st.Diff(ctx, runs[i-1].ID, run.ID, c)
				require.NoError(t, err)
				if c == "" {
					t.Logf("day %d: %d rows; new %d, persisting %d, fixed %d, absent %d, not covered %d", day, len(seen),
						len(d.New), len(d.Persisting), len(d.Fixed), len(d.Absent), len(d.Unknown))
				}
				for _, part := range []struct {
					name string
					want []key
					got  []store.Finding
				}{{"new", wantNew, d.New}, {"persisting", wantPersist, d.Persisting}, {"fixed", wantFixed, d.Fixed},
					{"absent", wantAbsent, d.Absent}, {"unknown", wantUnknown, d.Unknown}} {
					assert.Equal(t, sortKeys(part.want), keysOf(part.got), "day %d, %q, %s", day, c, part.name)
				}
			}
		}
		prev = seen
	}
	// Every role shows up: something was fixed, something appeared.
	assert.NotEmpty(t, fixed)
}

func rowsOf(t *testing.T, st *store.Store, run store.Run) map[key]bool {
	out := map[key]bool{}
	for _, typ := range run.Types {
		var buf bytes.Buffer
		_, err := st.WriteReport(context.Background(), &buf, store.ReportQuery{RunID: run.ID, Type: typ})
		require.NoError(t, err)
		if typ.IsVersion() {
			rows, err := report.ReadAll[report.VersionRow](&buf, report.ReaderOptions{})
			require.NoError(t, err)
			for i := range rows {
				out[key{typ, report.KeyOf(&rows[i]).IP}] = true
			}
		} else {
			rows, err := report.ReadAll[report.MonitorRow](&buf, report.ReaderOptions{})
			require.NoError(t, err)
			for i := range rows {
				out[key{typ, report.KeyOf(&rows[i]).IP}] = true
			}
		}
	}
	return out
}

func keysOf(fs []store.Finding) []key {
	out := []key{}
	for _, f := range fs {
		out = append(out, key{f.Type, netip.MustParseAddr(f.IP)})
	}
	return sortKeys(out)
}

func sortKeys(ks []key) []key {
	if ks == nil {
		ks = []key{}
	}
	slices.SortFunc(ks, func(a, b key) int {
		if c := strings.Compare(string(a.typ), string(b.typ)); c != 0 {
			return c
		}
		return a.ip.Compare(b.ip)
	})
	return ks
}
