package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ntpctl/ntpctl/report/store"
)

// TestImportChild is BenchmarkImportMemory's child process: it imports
// the file NTPCTL_IMPORT_CHILD names into the store NTPCTL_IMPORT_DSN
// names, and nothing else.
func TestImportChild(t *testing.T) {
	path := os.Getenv("NTPCTL_IMPORT_CHILD")
	if path == "" {
		t.Skip("BenchmarkImportMemory's child process")
	}
	st, err := store.Open(context.Background(), os.Getenv("NTPCTL_IMPORT_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := st.ImportCSV(context.Background(), f, filepath.Base(path), store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: labCS(t)}}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkImportMemory imports NTPCTL_BENCH_ROWS rows and a tenth of
// them, each in a process of its own, and reports the peak resident set
// of each (getrusage's ru_maxrss): memory stays flat in the number of
// rows when "x-rss", the large import's peak over the small one's, is
// near 1 (the goal is at most 1.2).
func BenchmarkImportMemory(b *testing.B) {
	n := benchRows()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			if engine == "postgres" {
				needPsql(b)
			}
			var rss [2]int64
			for range b.N {
				for i, rows := range []int{n / 10, n} {
					path := writeBenchRun(b, 1, rows, 0)
					dsn := "sqlite:" + filepath.Join(b.TempDir(), "m.db")
					if engine == "postgres" {
						dsn = pgDSN(b)
					}
					cmd := exec.Command(exe, "-test.run=^TestImportChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), "NTPCTL_IMPORT_CHILD="+path, "NTPCTL_IMPORT_DSN="+dsn)
					if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "PASS") {
						b.Fatalf("child: %v\n%s", err, out)
					}
					ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
					rss[i] = max(rss[i], ru.Maxrss) // KiB on Linux
				}
			}
			b.ReportMetric(float64(rss[0])/1024, fmt.Sprintf("MiB-%drows", n/10))
			b.ReportMetric(float64(rss[1])/1024, fmt.Sprintf("MiB-%drows", n))
			b.ReportMetric(float64(rss[1])/float64(rss[0]), "x-rss")
		})
	}
}
