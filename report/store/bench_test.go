package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/store"
)

// benchRows is the size of BenchmarkImport's report: NTPCTL_BENCH_ROWS,
// or 100,000 (the figure is for 1,000,000).
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("NTPCTL_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// needPsql returns psql's path; without it a benchmark skips, or fails
// under NTPCTL_REAL_PEERS=1 (as CI runs).
func needPsql(b *testing.B) string {
	p, err := exec.LookPath("psql")
	if err != nil {
		if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
			b.Fatal("no psql (NTPCTL_REAL_PEERS=1 requires PostgreSQL)")
		}
		b.Skip("no psql")
	}
	return p
}

// BenchmarkImport imports an NTP Version report into a new SQLite store
// and loads the same file with the sqlite3 shell's .import into a table
// of text columns, timed in the same run: "x-sqlite3" is the store's time
// over the shell's, the median of at least three alternating rounds (the
// goal is at most 2). With PostgreSQL at hand, the same against psql's
// \copy ("x-psql"), and against \copy into a table with an index on
// the address ("x-psql-indexed": part of what a store must do).
func BenchmarkImport(b *testing.B) {
	n := benchRows()
	path := writeBenchRun(b, 1, n, 0)
	ctx := context.Background()
	importStore := func(dsn string) time.Duration {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		start := time.Now()
		res, err := st.ImportCSV(ctx, f, filepath.Base(path), store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: labCS(b)}})
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if res.Run.Rows != int64(n) {
			b.Fatalf("%d rows imported, want %d", res.Run.Rows, n)
		}
		return d
	}
	// Each round times one import of ours and one of the engine's own
	// loader, which goes first alternating; the ratio reported is the
	// median of the rounds' ratios (at least three rounds).
	measure := func(b *testing.B, ours, theirs func(i int) time.Duration, name string) {
		rounds := max(b.N, 3)
		var total time.Duration
		var ratios []float64
		for i := range rounds {
			var o, t time.Duration
			if i%2 == 0 {
				o, t = ours(i), theirs(i)
			} else {
				t, o = theirs(i), ours(i)
			}
			total += o
			if t > 0 {
				ratios = append(ratios, o.Seconds()/t.Seconds())
			}
		}
		b.ReportMetric(float64(n)*float64(rounds)/total.Seconds(), "rows/s")
		if len(ratios) > 0 {
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], name)
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		shell, err := exec.LookPath("sqlite3")
		measure(b, func(i int) time.Duration {
			return importStore(filepath.Join(b.TempDir(), fmt.Sprintf("s%d.db", i)))
		}, func(i int) time.Duration {
			if err != nil {
				return 0
			}
			db := filepath.Join(b.TempDir(), fmt.Sprintf("t%d.db", i))
			start := time.Now()
			out, err := exec.Command(shell, db, ".mode csv", ".import "+path+" rows").CombinedOutput()
			if err != nil {
				b.Fatalf("sqlite3: %v\n%s", err, out)
			}
			return time.Since(start)
		}, "x-sqlite3")
	})
	// psql's \copy into a table of text columns, with an index on the
	// address, port and protocol or without (a store finds a finding's
	// history by such an index; the bare table is the baseline).
	psqlCopy := func(b *testing.B, psql string, indexed bool) time.Duration {
		conn := strings.TrimPrefix(pgDSN(b), "postgres:")
		cols := report.VersionColumns(report.LayoutCurrent)
		ddl := `CREATE TABLE rows ("` + strings.Join(cols, `" text, "`) + `" text)`
		if indexed {
			ddl += `; CREATE INDEX rows_addr ON rows (ip, port, protocol)`
		}
		if out, err := exec.Command(psql, conn, "-qc", ddl).CombinedOutput(); err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		start := time.Now()
		out, err := exec.Command(psql, conn, "-qc", `\copy rows from '`+path+`' with (format csv, header true)`).CombinedOutput()
		if err != nil {
			b.Fatalf("psql: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	b.Run("postgres", func(b *testing.B) {
		psql := needPsql(b)
		measure(b, func(int) time.Duration { return importStore(pgDSN(b)) }, func(int) time.Duration { return psqlCopy(b, psql, false) }, "x-psql")
	})
	b.Run("postgres-indexed", func(b *testing.B) {
		psql := needPsql(b)
		measure(b, func(int) time.Duration { return importStore(pgDSN(b)) }, func(int) time.Duration { return psqlCopy(b, psql, true) }, "x-psql-indexed")
	})
}

// writeBenchRun writes an NTP Version report of n rows for a day, the
// addresses shifted by shift (so that two days overlap in n-shift rows).
func writeBenchRun(b *testing.B, day, n, shift int) string {
	path := filepath.Join(b.TempDir(), fmt.Sprintf("2026-11-%02d-scan_ntp-bench.csv", day))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := report.NewWriter[report.VersionRow](f, report.WriterOptions{})
	for i := range n {
		j := i + shift
		r := labRow("A", day)
		r.IP = fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)
		r.ASN = strconv.Itoa(64496 + j%50)
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkDiff imports two days of NTPCTL_BENCH_ROWS rows each (a tenth
// of the second day's addresses new) and diffs them for all rows and for
// each of the lab's constituencies: "x-import" is the time of those diffs
// together over the second import's (the goal is under 10).
func BenchmarkDiff(b *testing.B) {
	n := benchRows()
	day1, day2 := writeBenchRun(b, 1, n, 0), writeBenchRun(b, 2, n, n/10)
	ctx := context.Background()
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			var imp, diff time.Duration
			for range b.N {
				dsn := "sqlite:" + filepath.Join(b.TempDir(), "d.db")
				if engine == "postgres" {
					needPsql(b)
					dsn = pgDSN(b)
				}
				st, err := store.Open(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				cs := labCS(b)
				var ids []int64
				for i, path := range []string{day1, day2} {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					res, err := st.ImportCSV(ctx, f, filepath.Base(path), store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: cs},
						Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("10.0.0.0/8"))}})
					f.Close()
					if err != nil {
						b.Fatal(err)
					}
					if i == 1 {
						imp += time.Since(start)
					}
					ids = append(ids, res.Run.ID)
				}
				start := time.Now()
				for _, c := range append([]string{""}, "as64496", "nl", "lab_hi") {
					d, err := st.Diff(ctx, ids[0], ids[1], c)
					if err != nil {
						b.Fatal(err)
					}
					if c == "" && (len(d.New) != n/10 || len(d.Persisting) != n-n/10 || len(d.Absent) != n/10) {
						b.Fatalf("diff: %d new, %d persisting, %d absent", len(d.New), len(d.Persisting), len(d.Absent))
					}
				}
				diff += time.Since(start)
				st.Close()
			}
			b.ReportMetric(diff.Seconds()/imp.Seconds(), "x-import")
			b.ReportMetric(float64(n)*float64(b.N)/imp.Seconds(), "import-rows/s")
		})
	}
}
