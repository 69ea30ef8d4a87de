package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run the scanner in the test process, on the lab (loopback
// only), to break the pipeline on purpose: a writer that fails, a probe
// that fails, enrichment that hangs. Each checks that run returns in
// time, that the files are valid, and that no goroutine is left behind.

// noLeaks fails the test if goroutines started after it was called are
// still running when the test ends.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		n := runtime.NumGoroutine()
		for n > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			n = runtime.NumGoroutine()
		}
		if n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

// labScan prepares a lab scan in the test process with the given flags
// (after -out DIR -id x -progress none).
func labScan(t *testing.T, args ...string) (s *scan, dir string, stdout, stderr *bytes.Buffer) {
	t.Helper()
	dir = t.TempDir()
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	opts, err := parseFlags(append([]string{"-out", dir, "-id", "x", "-progress", "none"}, args...), stderr)
	require.NoError(t, err)
	require.True(t, opts.lab)
	s, err = newLabScan(context.Background(), opts, stdout, stderr)
	require.NoError(t, err)
	t.Cleanup(s.close)
	return s, dir, stdout, stderr
}

// runFor runs s, failing the test if it takes longer than limit.
func runFor(t *testing.T, s *scan, interrupts <-chan struct{}, limit time.Duration) (interrupted bool, err error, took time.Duration) {
	t.Helper()
	type ret struct {
		interrupted bool
		err         error
	}
	done := make(chan ret, 1)
	start := time.Now()
	go func() {
		i, err := s.run(context.Background(), interrupts)
		done <- ret{i, err}
	}()
	select {
	case r := <-done:
		return r.interrupted, r.err, time.Since(start)
	case <-time.After(limit):
		buf := make([]byte, 1<<20)
		t.Fatalf("run still going after %s (deadlock?):\n%s", limit, buf[:runtime.Stack(buf, true)])
	}
	panic("unreachable")
}

// TestWriterFailure: a full disk stops the scan at once (it does not go
// on probing with nowhere to write), nothing deadlocks, the error is one
// line, and the other files are left whole, the statistics included.
func TestWriterFailure(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	noLeaks(t)
	// 600 hosts at 100 requests/s: the scan would take 6 s.
	s, dir, _, _ := labScan(t, "-rate", "100", "-lab-hosts", "600")
	s.create = func(name string) (*os.File, error) {
		if strings.Contains(name, ".jsonl") {
			return os.OpenFile("/dev/full", os.O_WRONLY, 0)
		}
		return os.Create(name)
	}
	_, err, took := runFor(t, s, nil, 10*time.Second)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.NotContains(t, err.Error(), "\n", "one line")
	assert.Less(t, took, 4*time.Second, "stopped at the first failed flush, not at the end of the scan")
	assert.Less(t, s.probes[0].proberStats().Targets, uint64(601), "probing stopped early")

	inFiles := map[string]int{}
	for _, suffix := range []string{"-scan_ntpmonitor-x.csv", "-scan_ntp-x.csv", "-scan6_ntpmonitor-x.csv", "-scan6_ntp-x.csv"} {
		path := files(t, dir)[suffix]
		require.NotEmpty(t, path, suffix)
		if strings.Contains(suffix, "monitor") {
			inFiles["monitor"] += len(readCSV[report.MonitorRow](t, path))
		} else {
			inFiles["version"] += len(readCSV[report.VersionRow](t, path))
		}
	}
	b, err := os.ReadFile(files(t, dir)["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	assert.True(t, json.Valid(b), "statistics written")
	schematest.Validate(t, "scan_stats", b)
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Contains(t, st.Failed, "no space left on device", "the statistics say the scan failed")
	assert.Equal(t, inFiles["monitor"], st.Monitor.Report.Rows, "the statistics count the rows the files hold")
	assert.Equal(t, inFiles["version"], st.Version.Report.Rows)
}

// TestCutToLastFlush: after a failed write a file is cut back to its last
// complete flush, so a CSV never ends in half a row.
func TestCutToLastFlush(t *testing.T) {
	s := &scan{dir: t.TempDir()}
	f, err := s.createFile("a.csv")
	require.NoError(t, err)
	fmt.Fprint(f.cw, "\"ip\"\n\"192.0.2.1\"\n")
	f.flushed()
	fmt.Fprint(f.cw, "\"192.0.2.2") // half a row, then the disk is full
	f.cut()
	b, err := os.ReadFile(f.path)
	require.NoError(t, err)
	assert.Equal(t, "\"ip\"\n\"192.0.2.1\"\n", string(b))
}

// TestProbeFailure: when one probe fails, the other stops sending too,
// run returns the error, and the files are complete.
func TestProbeFailure(t *testing.T) {
	noLeaks(t)
	s, dir, _, _ := labScan(t, "-rate", "100", "-lab-hosts", "600", "-json-all", "-probes", "both")
	// A Prober runs once: the scan's Run of the monitor probe fails.
	mon := s.probes[0].(*probeRun[mode7.Reply, report.MonitorRow])
	require.NoError(t, mon.prober.Run(context.Background(), func(func(netip.AddrPort) bool) {}, nil))
	_, err, took := runFor(t, s, nil, 10*time.Second)
	require.ErrorIs(t, err, ntpctl.ErrRunOnce)
	assert.Less(t, took, 4*time.Second, "the version probe stopped too")
	ver := s.probes[1]
	assert.Less(t, ver.proberStats().Targets, uint64(601))
	rows := checkValidPart(t, dir)
	assert.Equal(t, int(ver.proberStats().Finished), rows.versionLines, "every version result in the JSON lines")
}

// TestEnrichmentHangs: enrichment that never answers holds the results
// (the first Ctrl-C cannot finish the scan), and the second Ctrl-C cancels
// it: run returns at once with every result written, unenriched.
func TestEnrichmentHangs(t *testing.T) {
	noLeaks(t)
	s, dir, _, stderr := labScan(t)
	started := make(chan struct{}, 1)
	s.enricher = enrich.Func(func(ctx context.Context, _ netip.Addr, _ *enrich.Result) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	interrupts := make(chan struct{}, 2)
	go func() {
		<-started
		time.Sleep(300 * time.Millisecond)
		interrupts <- struct{}{}
		time.Sleep(1500 * time.Millisecond)
		interrupts <- struct{}{}
	}()
	interrupted, err, took := runFor(t, s, interrupts, 10*time.Second)
	require.NoError(t, err)
	assert.True(t, interrupted)
	assert.Less(t, took, 5*time.Second)
	assert.Contains(t, stderr.String(), "interrupted again")
	assert.NotContains(t, stderr.String(), "enrichment:", "cancelled lookups are not errors")
	rows := checkValidPart(t, dir)
	assert.Positive(t, rows.csv, "the results held in enrichment were written")
}

func isMonitor(rec report.JSONRecord) bool {
	return strings.HasSuffix(string(rec.Report), "ntpmonitor")
}

type partRows struct{ csv, versionLines int }

// checkValidPart is checkValid for a scan cut short: the files read back,
// and the JSON lines' reportable records match the CSV rows.
func checkValidPart(t *testing.T, dir string) partRows {
	t.Helper()
	rows := checkValid(t, dir)
	n := 0
	for _, rec := range readJSON(t, files(t, dir)["-ntpctl-x.jsonl"]) {
		if rec.Report.IsVersion() {
			n++
		}
	}
	return partRows{csv: rows, versionLines: n}
}

// TestShards: both probes scan the same targets; the shards of one seed
// are disjoint and cover the lab; the lab check and the statistics count
// the shard, not the whole lab.
func TestShards(t *testing.T) {
	all := map[netip.Addr]int{}
	l, err := lab.Start(context.Background(), lab.Config{})
	require.NoError(t, err)
	hosts := len(l.Hosts())
	l.Close()
	for i := range 3 {
		s, dir, stdout, _ := labScan(t, "-seed", "5", "-shard", fmt.Sprintf("%d/3", i), "-json-all")
		_, err, _ := runFor(t, s, nil, 20*time.Second)
		require.NoError(t, err)
		assert.Contains(t, stdout.String(), "the reports list exactly those", "shard %d", i)
		assert.Contains(t, stdout.String(), fmt.Sprintf("not scanned: shard %d/3", i))
		mon, ver := map[netip.Addr]bool{}, map[netip.Addr]bool{}
		for _, rec := range readJSON(t, files(t, dir)["-ntpctl-x.jsonl"]) {
			if isMonitor(rec) {
				mon[rec.IP] = true
			} else {
				ver[rec.IP] = true
			}
		}
		assert.Equal(t, keys(mon), keys(ver), "both probes scan the same shard")
		for a := range mon {
			all[a]++
		}
		var st report.JSONScanStats
		b, err := os.ReadFile(files(t, dir)["-ntpctl-x-stats.json"])
		require.NoError(t, err)
		schematest.Validate(t, "scan_stats", b)
		require.NoError(t, json.Unmarshal(b, &st))
		assert.Equal(t, uint64(len(mon)), st.Targets, "the shard's exact size")
		assert.False(t, st.TargetsEstimated)
		s.close()
	}
	assert.Len(t, all, hosts, "the shards cover the lab")
	for a, n := range all {
		assert.Equal(t, 1, n, "%s in one shard", a)
	}
}

func keys(m map[netip.Addr]bool) []string {
	var out []string
	for a := range m {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out
}

// TestShardSize: counted exactly when small, estimated otherwise.
func TestShardSize(t *testing.T) {
	total := uint64(0)
	for i := range 4 {
		n, exact := shardSize(1000, 9, i, 4)
		assert.True(t, exact)
		total += n
	}
	assert.Equal(t, uint64(1000), total)
	n, exact := shardSize(exactShardCount+1, 9, 0, 4)
	assert.False(t, exact)
	assert.Equal(t, uint64(exactShardCount/4+1), n)
}

// TestLabOneProbe: with -probes, the lab check checks that report only.
func TestLabOneProbe(t *testing.T) {
	s, dir, stdout, _ := labScan(t, "-probes", "version")
	_, err, _ := runFor(t, s, nil, 20*time.Second)
	require.NoError(t, err)
	assert.Contains(t, stdout.String(), "answer READVAR; the reports list exactly those")
	assert.NotContains(t, stdout.String(), "monlist")
	fs := files(t, dir)
	assert.NotContains(t, fs, "-scan_ntpmonitor-x.csv")
	assert.Contains(t, fs, "-scan_ntp-x.csv")
}

// TestScanOfLabAddresses scans the lab's addresses as a real scan would,
// with targets from a file, -allow-loopback, a blocklist, a static
// enrichment table, -split, -neutralize-formulas and an ID that file names
// cannot carry as it is.
func TestScanOfLabAddresses(t *testing.T) {
	noLeaks(t)
	l, err := lab.Start(context.Background(), lab.Config{Hosts: 64, Seed: 3})
	require.NoError(t, err)
	defer l.Close()
	dir := t.TempDir()
	var targets, blocked bytes.Buffer
	blockedAddrs := map[netip.Addr]bool{}
	for i, ap := range l.Targets() {
		fmt.Fprintln(&targets, ap.Addr())
		if i%4 == 0 && ap.Addr().Is4() {
			fmt.Fprintln(&blocked, ap.Addr(), "# opted out")
			blockedAddrs[ap.Addr()] = true
		}
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	out := filepath.Join(dir, "out")
	args := []string{"-i", write("targets.txt", targets.String()),
		"-allow-loopback", "-port", fmt.Sprint(l.Port()), "-blocklist", write("optout.txt", blocked.String()),
		"-static", write("static.csv", l.StaticCSV()), "-split", "asn", "-neutralize-formulas",
		"-timeout", "1s", "-quiet", "300ms", "-retries", "0", "-seed", "11",
		"-out", out, "-id", "my cert", "-progress", "none", "-json-all"}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, nil)
	require.Equal(t, exitOK, code, "stderr: %s", stderr.String())
	assert.Contains(t, stderr.String(), fmt.Sprintf("%d of %d target addresses are blocked", len(blockedAddrs), len(l.Targets())))

	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if !e.IsDir() {
			assert.Contains(t, e.Name(), "-my_cert", "every file carries the same ID")
		}
	}
	assert.Contains(t, names, "by-asn")
	jsonl, _ := filepath.Glob(filepath.Join(out, "*-ntpctl-my_cert.jsonl"))
	require.Len(t, jsonl, 1, "%v", names)
	seen, blockedSeen := map[netip.Addr]bool{}, map[netip.Addr]int{}
	for _, rec := range readJSON(t, jsonl[0]) {
		if blockedAddrs[rec.IP] {
			// -json-all writes the blocked too: never probed.
			assert.Equal(t, ntpctl.StatusBlocked, rec.Status, "%s", rec.IP)
			assert.Zero(t, rec.Attempts)
			assert.Contains(t, rec.Error, "blocklist")
			blockedSeen[rec.IP]++
			continue
		}
		seen[rec.IP] = true
	}
	assert.Len(t, seen, len(l.Targets())-len(blockedAddrs))
	assert.Len(t, blockedSeen, len(blockedAddrs), "every blocked target, with -json-all")
	for a, n := range blockedSeen {
		assert.Equal(t, 2, n, "%s: one record per probe", a)
	}
	statsFiles, _ := filepath.Glob(filepath.Join(out, "*-ntpctl-my_cert-stats.json"))
	require.Len(t, statsFiles, 1)
	b, err := os.ReadFile(statsFiles[0])
	require.NoError(t, err)
	var st report.JSONScanStats
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, uint64(len(blockedAddrs)), st.Blocked, "the statistics count the blocked")
	assert.Contains(t, stdout.String(), fmt.Sprintf("%d target addresses were blocked", len(blockedAddrs)))
	csvs, _ := filepath.Glob(filepath.Join(out, "*-scan_ntpmonitor-my_cert.csv"))
	require.Len(t, csvs, 1)
	rows := readCSV[report.MonitorRow](t, csvs[0])
	require.NotEmpty(t, rows)
	for _, r := range rows {
		assert.NotEmpty(t, r.ASN, "enriched from -static")
		h, ok := l.Host(netip.MustParseAddr(r.IP))
		require.True(t, ok)
		assert.True(t, h.Kind == lab.Amplifier || h.Kind == lab.Hostile, "%s is %s", r.IP, h.Kind)
	}
	assert.Contains(t, stdout.String(), "files in "+out)
}

// TestFlagsAfterTargets: flags may follow the targets, as with zmap.
func TestFlagsAfterTargets(t *testing.T) {
	o, err := parseFlags([]string{"198.51.100.0/24", "-rate", "5", "203.0.113.1", "-seed", "3"}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []string{"198.51.100.0/24", "203.0.113.1"}, o.targets)
	assert.Equal(t, 5, o.rate)
	assert.Equal(t, uint64(3), o.seed)
	assert.False(t, o.lab)
}

// TestUnwritableOut: an output directory that cannot be made is one line
// and exit 2 (what the user asked for), before anything is sent.
func TestUnwritableOut(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-out", filepath.Join(file, "sub"), "-progress", "none"}, &stdout, &stderr, nil)
	assert.Equal(t, exitUsage, code)
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "%q", stderr.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "scanner: "))
}

// TestBarAndNotes: with a bar, a note clears the bar's line first and
// ends its own, so the two never share a line.
func TestBarAndNotes(t *testing.T) {
	s, dir, _, stderr := labScan(t, "-progress", "bar", "-rate", "200", "-lab-hosts", "400")
	interrupts := make(chan struct{}, 1)
	go func() {
		time.Sleep(800 * time.Millisecond)
		interrupts <- struct{}{}
	}()
	interrupted, err, _ := runFor(t, s, interrupts, 20*time.Second)
	require.NoError(t, err)
	require.True(t, interrupted)
	out := stderr.String()
	i := strings.Index(out, "scanner: interrupted: collecting")
	require.GreaterOrEqual(t, i, 0, "%q", out)
	require.Positive(t, i, "the bar was drawn before")
	assert.Equal(t, byte('\r'), out[i-1], "the bar's line is cleared before the note: %q", out[max(0, i-80):i])
	assert.Contains(t, out, "replied", "the bar shows the replies")
	checkValid(t, dir)
}

// TestOutputsFail: when a file cannot be created, the ones already
// created are closed and the error returned, without a panic.
func TestOutputsFail(t *testing.T) {
	s, _, _, _ := labScan(t)
	s.create = func(name string) (*os.File, error) {
		if strings.Contains(name, "scan_ntp-") {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		}
		return os.Create(name)
	}
	_, err, _ := runFor(t, s, nil, 10*time.Second)
	assert.ErrorIs(t, err, syscall.EACCES)
	var ue usageError
	assert.ErrorAs(t, err, &ue, "the output directory's error, before anything is sent: exit status 2")
	assert.Contains(t, err.Error(), "-out ")
}

// TestProbeRate: -rate is the scan's rate: one limiter, shared by the
// probes, so that an odd rate is not rounded up per probe (-rate 1 sent
// 2 requests a second).
func TestProbeRate(t *testing.T) {
	s, _, _, _ := labScan(t, "-rate", "1", "-lab-hosts", "32")
	interrupts := make(chan struct{}, 1)
	time.AfterFunc(3*time.Second, func() { interrupts <- struct{}{} })
	_, err, took := runFor(t, s, interrupts, 10*time.Second)
	require.NoError(t, err)
	sent := uint64(0)
	for _, p := range s.probes {
		sent += p.proberStats().Sent
	}
	assert.LessOrEqual(t, float64(sent), took.Seconds()*1+1, "both probes together at 1 request a second (and one burst)")
	assert.Positive(t, sent)
}

func TestProbeRateFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"-rate", "1000"}, 1000},
		{[]string{"-rate", "1000", "-probes", "monitor"}, 1000},
		{[]string{"-rate", "0"}, 0},
		{[]string{"-rate", "1"}, 1},
	} {
		o, err := parseFlags(c.args, &bytes.Buffer{})
		require.NoError(t, err)
		if l := o.limiter(); c.want == 0 {
			assert.Nil(t, l, "%v", c.args)
		} else {
			assert.Equal(t, float64(c.want), l.Rate(), "%v", c.args)
		}
	}
}

// TestSplitStreams: with -split the rows go to their files as they come;
// the scan does not keep them. When a large lab scan has written every
// result, the live heap with -split asn exceeds that of the same scan
// without it by less than half the split rows' size (keeping the
// rows until the end, as the scanner did, costs more than their size).
func TestSplitStreams(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("a large lab scan: not under the race detector or -short")
	}
	live := func(args ...string) (uint64, string) {
		// Not labScan: its cleanup would keep this scan (and its lab)
		// alive while the next one is measured.
		dir := t.TempDir()
		opts, err := parseFlags(append([]string{"-out", dir, "-id", "x", "-progress", "none", "-lab-hosts", "16384",
			"-seed", "3", "-probes", "version"}, args...), io.Discard)
		require.NoError(t, err)
		s, err := newLabScan(context.Background(), opts, io.Discard, io.Discard)
		require.NoError(t, err)
		defer s.close()
		var heap uint64
		s.beforeFinish = func() {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heap = ms.HeapAlloc
		}
		_, err, _ = runFor(t, s, nil, 60*time.Second)
		require.NoError(t, err)
		return heap, dir
	}
	plain, _ := live()
	split, dir := live("-split", "asn")
	var rowBytes int64
	parts, err := filepath.Glob(filepath.Join(dir, "by-asn", "*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, parts)
	for _, p := range parts {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		rowBytes += fi.Size()
	}
	t.Logf("live heap at the end: %d KiB without -split, %d KiB with; split rows %d KiB in %d files",
		plain>>10, split>>10, rowBytes>>10, len(parts))
	require.Greater(t, rowBytes, int64(1<<20), "enough rows to tell")
	// Keeping the rows would cost more than rowBytes; streaming costs the
	// open files' buffers, and the heap of two scans differs by up to
	// about a megabyte of noise.
	assert.Less(t, float64(split)-float64(plain), float64(rowBytes)/2)
}

// TestFormulasPerOutput: the main reports are written as Shadowserver
// writes them, formulas and all (machines read them: IntelMQ and the
// like), while the -split files, which a CERT mails to people who open
// them in spreadsheets, have their formulas neutralised; each default can
// be turned around.
func TestFormulasPerOutput(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Hosts: 32, Seed: 2})
	require.NoError(t, err)
	defer l.Close()
	dir := t.TempDir()
	static := strings.ReplaceAll(l.StaticCSV(), "FRANKFURT AM MAIN", `"=HYPERLINK(""http://x.example/"")"`)
	require.Contains(t, static, "HYPERLINK")
	var targets strings.Builder
	for _, ap := range l.Targets() {
		if ap.Addr().Is4() {
			fmt.Fprintln(&targets, ap.Addr())
		}
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	args := []string{"-i", write("t.txt", targets.String()), "-allow-loopback", "-port", fmt.Sprint(l.Port()),
		"-static", write("s.csv", static), "-split", "country", "-timeout", "1s", "-retries", "0", "-progress", "none",
		"-probes", "version", "-id", "x"}
	cities := func(out string) (main, split []string) {
		for _, r := range readCSV[report.VersionRow](t, files(t, out)["-scan_ntp-x.csv"]) {
			main = append(main, r.City)
		}
		de, err := filepath.Glob(filepath.Join(out, "by-country", "*-scan_ntp-x-de.csv"))
		require.NoError(t, err)
		require.Len(t, de, 1)
		for _, r := range readCSV[report.VersionRow](t, de[0]) {
			split = append(split, r.City)
		}
		return main, split
	}
	for _, c := range []struct {
		flags       []string
		main, split string
	}{
		{nil, `=HYPERLINK("HTTP://X.EXAMPLE/")`, `'=HYPERLINK("HTTP://X.EXAMPLE/")`},
		{[]string{"-neutralize-formulas", "-split-raw"}, `'=HYPERLINK("HTTP://X.EXAMPLE/")`, `=HYPERLINK("HTTP://X.EXAMPLE/")`},
	} {
		out := filepath.Join(dir, fmt.Sprint("out", len(c.flags)))
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, run(context.Background(), append(append(args, c.flags...), "-out", out), &stdout, &stderr, nil),
			stderr.String())
		main, split := cities(out)
		assert.Contains(t, main, c.main, "%v: main report", c.flags)
		assert.Contains(t, split, c.split, "%v: split file", c.flags)
	}
}

// TestSummaryEscapesServerText: a daemon banner with a right-to-left
// override or a C1 CSI reaches the summary escaped, as ntpctl prints
// server text.
func TestSummaryEscapesServerText(t *testing.T) {
	s, _, _, _ := labScan(t, "-probes", "version")
	p := s.probes[0].(*probeRun[mode6.Reply, report.VersionRow])
	row := report.VersionRow{Version: "\u202eevil 1\u009b31m", Amplification: "2.00"}
	p.k.count(&p.sum, &row)
	var b strings.Builder
	p.summary(&b)
	assert.NotContains(t, b.String(), "\u202e")
	assert.NotContains(t, b.String(), "\u009b")
	assert.Contains(t, b.String(), "daemons: M-bM-^@M-.evil", "%s", b.String())
}

// TestReusedOut: a second scan into the same directory is refused (it
// would leave the first one's files beside its own); -force replaces this
// scan's files, by name, and leaves everything else.
func TestReusedOut(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-out", dir, "-id", "x", "-progress", "none", "-lab-hosts", "32", "-split", "asn"}
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), args, &stdout, &stderr, nil), stderr.String())
	first := files(t, dir)
	require.Len(t, first, 11)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	stale := filepath.Join(dir, "by-asn", filepath.Base(first["-scan6_ntp-x.csv"][:len(first["-scan6_ntp-x.csv"])-4])+"-as4242.csv")
	require.NoError(t, os.WriteFile(stale, []byte("old"), 0o644))

	stderr.Reset()
	assert.Equal(t, exitUsage, run(context.Background(), args, &stdout, &stderr, nil))
	assert.Contains(t, stderr.String(), "not empty")
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"))

	stderr.Reset()
	require.Equal(t, exitOK, run(context.Background(), append(args, "-force", "-probes", "monitor"), &stdout, &stderr, nil),
		stderr.String())
	now := files(t, dir)
	assert.NotContains(t, now, "-scan6_ntp-x.csv", "the first scan's version report is gone, not left beside")
	assert.NotContains(t, now, "-scan_ntpmru-x.csv", "and its MRU report")
	assert.NotContains(t, now, "-scan_ntpaccessible-x.csv", "and its Accessible NTP report")
	assert.Contains(t, now, "-scan6_ntpmonitor-x.csv")
	b, err := os.ReadFile(filepath.Join(dir, "notes.txt"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b), "nothing but this scan's files is touched")
	_, err = os.Stat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist, "this scan's split files of the day are replaced")
	parts, _ := filepath.Glob(filepath.Join(dir, ".*.part"))
	assert.Empty(t, parts, "no temporary file left")
}

// TestBarLine: the bar is redrawn in place on one line (a carriage
// return, blanks over a longer previous line), is cut to the terminal's
// width so that it never wraps, and is cleared without a trace.
func TestBarLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{s: &scan{stderr: &buf}, start: time.Now(), total: 400, width: 200}
	p.drawBar()
	first := buf.String()
	assert.True(t, strings.HasPrefix(first, "\rscanning   0% [------------------------] 0/400, 0 replied, 0 req/s ["), "%q", first)
	assert.NotContains(t, first, "\n")
	p.drawn += 10 // as if the previous line had been longer
	buf.Reset()
	p.drawBar()
	again := buf.String()
	assert.Equal(t, strings.Count(again, "\r"), 2, "blanks over the longer line, then back: %q", again)
	assert.Contains(t, again, strings.Repeat(" ", 10))

	p.width = 30
	p.drawn = 0
	buf.Reset()
	p.drawBar()
	assert.Len(t, strings.TrimPrefix(buf.String(), "\r"), 29, "cut to the width less one: %q", buf.String())

	buf.Reset()
	p.clearBar()
	assert.Equal(t, "\r"+strings.Repeat(" ", 29)+"\r", buf.String())
	assert.Zero(t, p.drawn)
	buf.Reset()
	p.clearBar()
	assert.Empty(t, buf.String(), "nothing to clear")
}

// TestOneTargetGrammar: a scan of one target that answers both queries
// (and one blocked) speaks in the singular everywhere: the start line, the
// summary, the file list and the statistics text.
func TestOneTargetGrammar(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{Hosts: 32, Seed: 3})
	require.NoError(t, err)
	defer l.Close()
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"::1", "2001:db8::1", "-allow-loopback", "-port", fmt.Sprint(l.Port()), "-out", out,
		"-id", "x", "-progress", "none", "-timeout", "1s", "-quiet", "300ms", "-retries", "0"}, &stdout, &stderr, nil)
	require.Equal(t, exitOK, code, stderr.String())
	stats, err := os.ReadFile(files(t, out)["-ntpctl-x-stats.txt"])
	require.NoError(t, err)
	text := stderr.String() + stdout.String() + string(stats)
	for _, want := range []string{"scanning 1 target (", "scanned 1 target in", "NTP Monitor (Mode 7 monlist): 1 amplifier,",
		"NTP Version (Mode 6 READVAR): 1 server answers", "0 were silent", " 1 row\n", "ntpctl scan: 1 target,",
		"scanner: 1 of 2 target addresses is blocked", "1 target address was blocked", "1 target address blocked"} {
		assert.Contains(t, text, want)
	}
	for _, wrong := range []string{"1 targets", "1 rows", "1 amplifiers", "1 lines", "1 servers", "1 were"} {
		assert.NotContains(t, text, wrong)
	}
}

// TestFedProbeFailure: with -discover, the Mode 3 probe feeds the
// control queries and READVAR feeds the MRU list. When the first fails,
// the probes it feeds get no more targets and finish; when a fed probe
// fails, the probe feeding it is not held up by a taker that is gone.
// Either way run returns in time, the files are valid and no goroutine
// is left.
func TestFedProbeFailure(t *testing.T) {
	for _, failing := range []string{timeKind.name, mruKind.name} {
		t.Run(failing, func(t *testing.T) {
			noLeaks(t)
			s, dir, _, _ := labScan(t, "-rate", "300", "-lab-hosts", "600", "-discover")
			for _, p := range s.probes {
				if p.name() != failing {
					continue
				}
				switch p := p.(type) {
				case *probeRun[ntpctl.TimePacket, report.AccessibleRow]:
					require.NoError(t, p.prober.Run(context.Background(), func(func(netip.AddrPort) bool) {}, nil))
				case *probeRun[ntpctl.MRUResult, report.MRURow]:
					require.NoError(t, p.prober.Run(context.Background(), func(func(netip.AddrPort) bool) {}, nil))
				}
			}
			_, err, took := runFor(t, s, nil, 15*time.Second)
			require.ErrorIs(t, err, ntpctl.ErrRunOnce)
			assert.Less(t, took, 6*time.Second, "the other probes stopped too")
			checkValid(t, dir)
		})
	}
}

// TestFedInterrupt: Ctrl-C during a -discover scan stops the Mode 3
// probe and the probes it feeds; the replies in flight are written.
func TestFedInterrupt(t *testing.T) {
	noLeaks(t)
	s, dir, _, stderr := labScan(t, "-rate", "200", "-lab-hosts", "600", "-discover")
	interrupts := make(chan struct{}, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		interrupts <- struct{}{}
	}()
	interrupted, err, took := runFor(t, s, interrupts, 15*time.Second)
	require.NoError(t, err)
	assert.True(t, interrupted)
	assert.Less(t, took, 5*time.Second)
	assert.Contains(t, stderr.String(), "interrupted")
	checkValid(t, dir)
	st := map[string]ntpctl.Stats{}
	for _, p := range s.probes {
		st[p.name()] = p.proberStats()
	}
	assert.Less(t, st[timeKind.name].Targets, uint64(601), "Mode 3 stopped early")
	assert.Positive(t, st[monitorKind.name].Targets, "monlist went out while Mode 3 ran, as its answers came")
	assert.Positive(t, st[mruKind.name].Targets, "and the MRU list as READVAR's did")
	assert.LessOrEqual(t, st[monitorKind.name].Targets, st[timeKind.name].Statuses.OK+st[timeKind.name].Statuses.ServerError+
		st[timeKind.name].Statuses.ProtocolError+st[timeKind.name].Statuses.Partial, "monlist only to those that answered Mode 3")
	assert.LessOrEqual(t, st[mruKind.name].Targets, st[versionKind.name].Finished)
}

// TestMRUClients: only -mru-clients puts the MRU lists' clients into the
// JSON lines, every one of them, newest first; the CSV never has them.
func TestMRUClients(t *testing.T) {
	s, dir, _, _ := labScan(t, "-probes", "version,mru", "-mru-clients", "-lab-hosts", "64")
	_, err, _ := runFor(t, s, nil, 20*time.Second)
	require.NoError(t, err)
	l := s.closers[0].(*lab.Lab)
	withClients := 0
	for _, rec := range readJSON(t, files(t, dir)["-ntpctl-x.jsonl"]) {
		if !rec.Report.IsMRU() || !rec.Reportable {
			continue
		}
		require.NotNil(t, rec.MRU)
		require.Len(t, rec.MRU.Clients, rec.MRU.Entries, "%s", rec.IP)
		h, ok := l.Host(rec.IP)
		require.True(t, ok)
		want := map[netip.Addr]bool{}
		for _, c := range h.Sim.Clients {
			want[c.Addr] = true
		}
		for i, c := range rec.MRU.Clients {
			a := netip.MustParseAddr(c.IP)
			assert.True(t, want[a] || a.IsLoopback(), "%s: %s is a client of the host's (or the scanner)", rec.IP, a)
			if i > 0 {
				assert.False(t, c.Last.After(rec.MRU.Clients[i-1].Last), "newest first")
			}
		}
		withClients++
	}
	assert.Positive(t, withClients)
	csv := append(readCSV[report.MRURow](t, files(t, dir)["-scan_ntpmru-x.csv"]),
		readCSV[report.MRURow](t, files(t, dir)["-scan6_ntpmru-x.csv"])...)
	assert.Len(t, csv, withClients, "every list is a row")
}

// TestMRUClientsWorker: -mru-clients is a worker's own flag, for the
// shards that ask for MRU lists, whatever the worker's own -probes.
func TestMRUClientsWorker(t *testing.T) {
	o, err := parseFlags([]string{"-worker", "nats://127.0.0.1:4222", "-mru-clients"}, io.Discard)
	require.NoError(t, err)
	assert.True(t, o.mruClients)
	_, err = parseFlags([]string{"-mru-clients", "-allow-loopback", "127.0.0.1"}, io.Discard)
	assert.ErrorContains(t, err, "-mru-clients needs mru")
}
