package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/buildtest"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the scanner once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scanner-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "scanner")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// files finds the scan's files by suffix.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		for _, suffix := range []string{"-scan_ntp-x.csv", "-scan6_ntp-x.csv", "-scan_ntpmonitor-x.csv",
			"-scan6_ntpmonitor-x.csv", "-scan_ntpmru-x.csv", "-scan6_ntpmru-x.csv", "-scan_ntpaccessible-x.csv",
			"-scan6_ntpaccessible-x.csv", "-ntpctl-x.jsonl", "-ntpctl-x-stats.json", "-ntpctl-x-stats.txt"} {
			if strings.HasSuffix(name, suffix) {
				out[suffix] = filepath.Join(dir, name)
			}
		}
	}
	return out
}

func readCSV[T report.Row](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rows, err := report.ReadAll[T](f, report.ReaderOptions{})
	require.NoError(t, err, path)
	return rows
}

func readJSON(t testing.TB, path string) []report.JSONRecord {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []report.JSONRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r report.JSONRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "every line is a whole JSON object")
		schematest.Validate(t, "record", sc.Bytes())
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

func header(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = strconv.Quote(c)
	}
	return strings.Join(q, ",") + "\n"
}

// TestLabEndToEnd runs the built scanner on the lab: the reports have the
// exact current headers, one row per host that answers with the right
// packets, bytes and amplification, they read back through the report
// package, and the JSON lines and statistics agree with them.
func TestLabEndToEnd(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "-out", dir, "-id", "x", "-seed", "7", "-progress", "none", "-split", "asn")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	assert.Contains(t, stdout.String(), "the reports list exactly those")

	// The same lab, to know what each host should give.
	l, err := lab.Start(context.Background(), lab.Config{})
	require.NoError(t, err)
	l.Close()
	hosts := map[netip.Addr]lab.Host{}
	for _, h := range l.Hosts() {
		hosts[h.Addr.Addr()] = h
	}

	fs := files(t, dir)
	require.Len(t, fs, 11, "%v", fs)
	for suffix, cols := range map[string][]string{
		"-scan_ntp-x.csv": report.VersionColumns(report.LayoutCurrent), "-scan6_ntp-x.csv": report.VersionColumns(report.LayoutCurrent),
		"-scan_ntpmonitor-x.csv": report.MonitorColumns(report.LayoutCurrent), "-scan6_ntpmonitor-x.csv": report.MonitorColumns(report.LayoutCurrent),
		"-scan_ntpmru-x.csv": report.MRUColumns(), "-scan6_ntpmru-x.csv": report.MRUColumns(),
		"-scan_ntpaccessible-x.csv": report.AccessibleColumns(), "-scan6_ntpaccessible-x.csv": report.AccessibleColumns(),
	} {
		b, err := os.ReadFile(fs[suffix])
		require.NoError(t, err)
		first, _, _ := strings.Cut(string(b), "\n")
		assert.Equal(t, header(cols), first+"\n", suffix)
		typ, err := report.TypeFromFileName(filepath.Base(fs[suffix]))
		if typ.IsMRU() || typ.IsAccessible() {
			require.ErrorIs(t, err, report.ErrUnknownType, "not one of Shadowserver's: IntelMQ has no parser for it")
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, strings.TrimSuffix(strings.TrimPrefix(suffix, "-"), "-x.csv"), string(typ))
	}

	mon := append(readCSV[report.MonitorRow](t, fs["-scan_ntpmonitor-x.csv"]), readCSV[report.MonitorRow](t, fs["-scan6_ntpmonitor-x.csv"])...)
	ver := append(readCSV[report.VersionRow](t, fs["-scan_ntp-x.csv"]), readCSV[report.VersionRow](t, fs["-scan6_ntp-x.csv"])...)
	monRows := map[netip.Addr]report.MonitorRow{}
	for _, r := range mon {
		a := netip.MustParseAddr(r.IP)
		h, ok := hosts[a]
		require.True(t, ok, "%s is a lab host", r.IP)
		monRows[a] = r
		assert.Equal(t, mon[0].Port, r.Port, "every host answers on the lab's one port")
		assert.Equal(t, "udp", r.Protocol)
		assert.NotEmpty(t, r.ASN, "enriched from the lab's table")
		assert.NotEmpty(t, r.Geo)
		if h.Kind != lab.Hostile {
			assert.Equal(t, strconv.Itoa(h.Monlist.Packets), r.Packets, "%s", r.IP)
			assert.Equal(t, strconv.Itoa(h.Monlist.Bytes), r.ResponseSize, "%s", r.IP)
			assert.Equal(t, fmt.Sprintf("%.2f", float64(h.Monlist.Bytes)/48), r.Amplification, "%s", r.IP)
		}
	}
	verRows := map[netip.Addr]report.VersionRow{}
	for _, r := range ver {
		a := netip.MustParseAddr(r.IP)
		h, ok := hosts[a]
		require.True(t, ok, "%s is a lab host", r.IP)
		verRows[a] = r
		assert.Equal(t, "ntpversion", r.Tag)
		if h.Kind != lab.Hostile {
			assert.Equal(t, strconv.Itoa(h.ReadVar.Bytes), r.ResponseSize, "%s", r.IP)
			assert.Equal(t, fmt.Sprintf("%.2f", float64(h.ReadVar.Bytes)/12), r.Amplification, "%s", r.IP)
			assert.NotEmpty(t, r.Version, "%s", r.IP)
		}
	}
	for a, h := range hosts {
		answers := h.Monlist.Status == ntpctl.StatusOK || h.Monlist.Status == ntpctl.StatusPartial
		_, row := monRows[a]
		assert.Equal(t, answers, row, "%s (%s): monitor row", a, h.Kind)
		answers = h.ReadVar.Status == ntpctl.StatusOK || h.ReadVar.Status == ntpctl.StatusPartial
		_, row = verRows[a]
		assert.Equal(t, answers, row, "%s (%s): version row", a, h.Kind)
	}
	require.NotEmpty(t, mon)
	require.NotEmpty(t, ver)

	// The MRU list: every host that gives it, with its clients counted
	// (never listed) and READVAR's version beside them.
	mru := append(readCSV[report.MRURow](t, fs["-scan_ntpmru-x.csv"]), readCSV[report.MRURow](t, fs["-scan6_ntpmru-x.csv"])...)
	mruRows := map[netip.Addr]report.MRURow{}
	for _, r := range mru {
		a := netip.MustParseAddr(r.IP)
		h, ok := hosts[a]
		require.True(t, ok, "%s is a lab host", r.IP)
		mruRows[a] = r
		assert.Equal(t, "ntpmru", r.Tag)
		assert.Equal(t, "low", r.Severity)
		assert.Equal(t, verRows[a].Version, r.Version, "%s: READVAR's version", r.IP)
		if h.Kind != lab.Hostile {
			assert.Equal(t, strconv.Itoa(h.MRU.Entries), r.Entries, "%s", r.IP)
			assert.Equal(t, "true", r.Complete, "%s", r.IP)
		}
	}
	// Accessible NTP: every host that serves time.
	acc := append(readCSV[report.AccessibleRow](t, fs["-scan_ntpaccessible-x.csv"]),
		readCSV[report.AccessibleRow](t, fs["-scan6_ntpaccessible-x.csv"])...)
	accRows := map[netip.Addr]report.AccessibleRow{}
	for _, r := range acc {
		a := netip.MustParseAddr(r.IP)
		h, ok := hosts[a]
		require.True(t, ok, "%s is a lab host", r.IP)
		accRows[a] = r
		assert.Equal(t, "info", r.Severity)
		assert.Equal(t, "4", r.NTPVersion)
		if h.Kind != lab.Hostile {
			assert.Equal(t, strconv.Itoa(h.Time.Stratum), r.Stratum, "%s", r.IP)
		}
	}
	for a, h := range hosts {
		if h.Kind == lab.Hostile {
			continue // not predicted
		}
		_, row := mruRows[a]
		assert.Equal(t, h.MRU.Status == ntpctl.StatusOK, row, "%s (%s %s): MRU row", a, h.Kind, h.Daemon)
		_, row = accRows[a]
		assert.Equal(t, h.Time.Status == ntpctl.StatusOK, row, "%s (%s): accessible row", a, h.Kind)
	}
	require.NotEmpty(t, mru)
	require.NotEmpty(t, acc)
	b, err := os.ReadFile(fs["-scan_ntpmru-x.csv"])
	require.NoError(t, err)
	for _, h := range hosts {
		if h.Sim != nil {
			for _, c := range h.Sim.Clients {
				require.NotContains(t, string(b), `"`+c.Addr.String()+`"`, "a client's address in the MRU report")
			}
		}
	}

	// JSON lines agree with the CSVs.
	reportable := 0
	for _, rec := range readJSON(t, fs["-ntpctl-x.jsonl"]) {
		if !rec.Reportable {
			continue
		}
		reportable++
		switch {
		case rec.Report.IsMonitor():
			row, ok := monRows[rec.IP]
			require.True(t, ok, "%s", rec.IP)
			assert.Equal(t, strconv.Itoa(rec.Packets), row.Packets)
			assert.Equal(t, strconv.Itoa(rec.Bytes), row.ResponseSize)
			require.NotNil(t, rec.Monitor)
			assert.NotEmpty(t, rec.Monitor.Entries)
		case rec.Report.IsVersion():
			row, ok := verRows[rec.IP]
			require.True(t, ok, "%s", rec.IP)
			assert.Equal(t, strconv.Itoa(rec.Bytes), row.ResponseSize)
		case rec.Report.IsMRU():
			row, ok := mruRows[rec.IP]
			require.True(t, ok, "%s", rec.IP)
			require.NotNil(t, rec.MRU)
			assert.Equal(t, row.Entries, strconv.Itoa(rec.MRU.Entries))
			assert.Empty(t, rec.MRU.Clients, "no clients without -mru-clients")
		case rec.Report.IsAccessible():
			row, ok := accRows[rec.IP]
			require.True(t, ok, "%s", rec.IP)
			require.NotNil(t, rec.Server)
			assert.Equal(t, row.Stratum, strconv.Itoa(int(rec.Server.Stratum)))
		default:
			t.Errorf("%s: report %q", rec.IP, rec.Report)
		}
	}
	assert.Equal(t, len(mon)+len(ver)+len(mru)+len(acc), reportable)

	// Statistics agree too.
	var st struct {
		Targets                           uint64
		Monitor, Version, MRU, Accessible struct {
			Report  report.Summary
			Prober  ntpctl.Stats
			Replied int
		}
	}
	b, err = os.ReadFile(fs["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	schematest.Validate(t, "scan_stats", b)
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, uint64(len(hosts)), st.Targets)
	assert.Equal(t, len(mon), st.Monitor.Report.Rows)
	assert.Equal(t, len(ver), st.Version.Report.Rows)
	assert.Equal(t, uint64(len(hosts)), st.Monitor.Prober.Finished)
	assert.Equal(t, len(mru), st.MRU.Report.Rows)
	assert.Equal(t, len(acc), st.Accessible.Report.Rows)
	assert.Equal(t, uint64(st.Version.Replied), st.MRU.Prober.Targets, "the MRU list asked of READVAR's responders")
	assert.Equal(t, uint64(len(hosts)), st.Accessible.Prober.Targets)
	txt, err := os.ReadFile(fs["-ntpctl-x-stats.txt"])
	require.NoError(t, err)
	assert.Contains(t, string(txt), fmt.Sprintf("NTP Monitor (Mode 7 monlist): %d rows", len(mon)))

	// The split: one file per AS, rows adding up.
	split, err := filepath.Glob(filepath.Join(dir, "by-asn", "*-scan_ntpmonitor-x-as*.csv"))
	require.NoError(t, err)
	require.NotEmpty(t, split)
	n := 0
	for _, f := range split {
		n += len(readCSV[report.MonitorRow](t, f))
	}
	assert.Equal(t, len(readCSV[report.MonitorRow](t, fs["-scan_ntpmonitor-x.csv"])), n)
}

// runScanner runs the built scanner on a slow lab scan and interrupts it
// once or twice.
func runScanner(t *testing.T, interrupts int, args ...string) (dir string, code int, took time.Duration, stderr string) {
	t.Helper()
	dir = t.TempDir()
	args = append([]string{"-out", dir, "-id", "x", "-progress", "lines", "-progress-every", "100ms"}, args...)
	cmd := exec.Command(binary(t), args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	require.NoError(t, cmd.Start())
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	for range interrupts {
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		time.Sleep(50 * time.Millisecond)
	}
	err := cmd.Wait()
	took = time.Since(start)
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return dir, code, took, errb.String()
}

// checkValid reads every file back: each is complete and agrees with the
// JSON lines, so no reply received before the interrupt was lost.
func checkValid(t *testing.T, dir string) (rows int) {
	t.Helper()
	fs := files(t, dir)
	require.Contains(t, []int{7, 11}, len(fs), "-probes both, or the lab's all: %v", fs)
	mon := readCSV[report.MonitorRow](t, fs["-scan_ntpmonitor-x.csv"])
	ver := readCSV[report.VersionRow](t, fs["-scan_ntp-x.csv"])
	mon6 := readCSV[report.MonitorRow](t, fs["-scan6_ntpmonitor-x.csv"])
	ver6 := readCSV[report.VersionRow](t, fs["-scan6_ntp-x.csv"])
	others := 0
	if len(fs) == 11 {
		others = len(readCSV[report.MRURow](t, fs["-scan_ntpmru-x.csv"])) + len(readCSV[report.MRURow](t, fs["-scan6_ntpmru-x.csv"])) +
			len(readCSV[report.AccessibleRow](t, fs["-scan_ntpaccessible-x.csv"])) +
			len(readCSV[report.AccessibleRow](t, fs["-scan6_ntpaccessible-x.csv"]))
	}
	reportable := 0
	for _, rec := range readJSON(t, fs["-ntpctl-x.jsonl"]) {
		if rec.Reportable {
			reportable++
		}
	}
	rows = len(mon) + len(ver) + len(mon6) + len(ver6)
	assert.Equal(t, rows+others, reportable, "every reply in the JSON lines is in the reports")
	b, err := os.ReadFile(fs["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	assert.True(t, json.Valid(b))
	schematest.Validate(t, "scan_stats", b)
	return rows
}

// TestInterrupt: the first Ctrl-C stops sending and collects the replies
// in flight; the files are complete and hold every reply received.
func TestInterrupt(t *testing.T) {
	dir, code, took, out := runScanner(t, 1, "-rate", "100", "-lab-hosts", "600")
	assert.Equal(t, exitInterrupted, code, out)
	assert.Less(t, took, 5*time.Second)
	assert.Contains(t, out, "interrupted: collecting the replies in flight")
	assert.Contains(t, out, "results (", "plain progress lines when stderr is not a terminal")
	rows := checkValid(t, dir)
	assert.Positive(t, rows)
	assert.Less(t, rows, 600, "cut short")
	b, err := os.ReadFile(files(t, dir)["-ntpctl-x-stats.json"])
	require.NoError(t, err)
	assert.Contains(t, string(b), `"interrupted": true`, "the statistics say the scan was cut short")
	assert.Contains(t, out, "not scanned: interrupted", "the lab check counts only what was scanned")
}

// TestSecondInterrupt: a second Ctrl-C finishes at once, without waiting
// for the timeouts, and the files are still valid.
func TestSecondInterrupt(t *testing.T) {
	dir, code, took, out := runScanner(t, 2, "-rate", "100", "-lab-hosts", "600", "-timeout", "20s")
	assert.Equal(t, exitInterrupted, code, out)
	assert.Less(t, took, 3*time.Second, "no waiting for the 20 s timeout")
	assert.Contains(t, out, "interrupted again")
	checkValid(t, dir)
}

// TestUsageErrors: bad flags, targets and files get one line and exit 2,
// before anything is sent (every target here is refused or never reached).
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-rate", "fast", "192.0.2.1"},
		{"-no-such-flag", "192.0.2.1"},
		{"192.0.2.1", "-rate"},
		{"-shard", "3/2", "8.8.8.8"},
		{"-shard", "1/2", "8.8.8.8"}, // no -seed: the shards would not fit together
		{"-probes", "every", "8.8.8.8"},
		{"-probes", "mru", "8.8.8.8"},               // the MRU list follows READVAR
		{"-probes", "time", "-discover", "8.8.8.8"}, // nothing to discover for
		{"-mru-clients", "8.8.8.8"},                 // no mru in -probes
		{"-out", dir, "not-an-address"},
		{"-out", dir, "127.0.0.1"},
		{"-out", dir, "::1"},
		{"-out", dir, "-i", filepath.Join(dir, "missing.txt")},
		{"-out", dir, "-i", dir},
		{"-out", dir, "-blocklist", filepath.Join(dir, "missing.txt"), "8.8.8.8"},
		{"-out", dir, "10.0.0.0/8"},
		{"-out", dir, "-mmdb", filepath.Join(dir, "missing.mmdb"), "8.8.8.8"},
		{"-out", dir, "-static", filepath.Join(dir, "missing.csv"), "8.8.8.8"},
		{"-out", dir, "-split", "asn", "8.8.8.8"}, // nothing gives ASNs
		{"-out", dir, "-cymru-server", "127.0.0.1:53", "8.8.8.8"},
		{"-out", dir, "-progress-every", "0", "8.8.8.8"},
		{"-out", dir, "-enrich-timeout", "-1s", "8.8.8.8"},
		{"-lab", "8.8.8.8"},                 // no host of the lab in it
		{"-db", filepath.Join(dir, "s.db")}, // a build without -tags store
		{"-constituencies", filepath.Join(dir, "c.yaml")},
		{"-lab-day", "-1"},
		{"-lab-hosts", "5"},
		{"-lab-seed", "2", "8.8.8.8"},
		{"-blocklist", filepath.Join(dir, "x")}, // no targets: the lab, which has its own
		{"-rdns"},
	} {
		if slices.Contains(args, "8.8.8.8") && !slices.Contains(args, "-lab") {
			// Every case must fail before anything is sent; should one
			// not, a loopback source address keeps its request on this
			// machine (the kernel does not route 127.0.0.1 outside).
			args = append(args, "-source-ip", "127.0.0.1")
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr, nil)
		t.Logf("%v: %s", args, strings.TrimSpace(stderr.String()))
		assert.Equal(t, exitUsage, code, "%v: %s", args, stderr.String())
		assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "%v: one line: %q", args, stderr.String())
		assert.True(t, strings.HasPrefix(stderr.String(), "scanner: "), "%v: %q", args, stderr.String())
		assert.Empty(t, stdout.String())
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run(context.Background(), []string{"-h"}, &stdout, &stderr, nil))
	assert.Contains(t, stderr.String(), "Usage:")
	assert.Contains(t, stderr.String(), "-shard i/n")
}

// TestErrorMessages: what the user got wrong is named in their terms,
// with the file and line for a file, and exits 2.
func TestErrorMessages(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	bad := filepath.Join(dir, "bad.txt")
	require.NoError(t, os.WriteFile(bad, []byte("# mine\n127.42.0.1/32\n127.42.0.1/33\n"), 0o644))
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-i", empty}, "scanner: no targets: the files given hold none"},
		{[]string{"-allow-loopback", "127.42.0.1/33"}, "scanner: 127.42.0.1/33: prefix length must be 0–32"},
		{[]string{"-allow-loopback", "-i", bad}, "scanner: " + bad + ": line 3: 127.42.0.1/33: prefix length must be 0–32"},
		{[]string{"ntp.example.net"}, "scanner: ntp.example.net: host names are not supported here: give addresses, prefixes or ranges"},
		{[]string{"[::1]:123"}, "scanner: [::1]:123: ports are not supported here: every target is probed on the same port"},
		{[]string{"-rate", "-5", "198.51.100.1"}, "scanner: -rate -5: cannot be negative"},
		{[]string{"-retries=-1", "198.51.100.1"}, "scanner: -retries -1: cannot be negative"},
		{[]string{"-timeout", "0", "198.51.100.1"}, "scanner: -timeout 0s: must be positive"},
		{[]string{"-quiet", "0s", "-lab-hosts", "32"}, "scanner: -quiet 0s: must be positive"},
		{[]string{"-out", out, "-allow-loopback", "-i", empty, "127.0.0.1/33"}, "scanner: 127.0.0.1/33: prefix length must be 0–32"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr, nil)
		assert.Equal(t, exitUsage, code, "%v", c.args)
		assert.Equal(t, c.want+"\n", stderr.String(), "%v", c.args)
		assert.NotContains(t, stderr.String(), "ntpctl: invalid target", "%v: no package prefix", c.args)
	}
}

// TestOutDirErrors: an output directory the scan cannot use exits 2, as
// documented, whichever step finds it: here -force cannot replace a file
// of this scan (a non-empty directory has its name).
func TestOutDirErrors(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	for _, day := range []time.Time{now, now.Add(time.Minute)} { // a scan started at midnight
		part := filepath.Join(dir, "."+report.FileName(day, report.ScanNTPMonitor, "x")+".part")
		require.NoError(t, os.MkdirAll(filepath.Join(part, "in-the-way"), 0o755))
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-out", dir, "-force", "-id", "x", "-progress", "none", "-lab-hosts", "32"},
		&stdout, &stderr, nil)
	assert.Equal(t, exitUsage, code, stderr.String())
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "%q", stderr.String())
	assert.Contains(t, stderr.String(), "scanner: -out "+dir+" -force: cannot replace")
	assert.Empty(t, stdout.String())
}

// TestVersion: -version prints the build and nothing else happens; a
// binary built from a git checkout carries its revision.
func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run(context.Background(), []string{"-version", "-lab-hosts", "5"}, &stdout, &stderr, nil))
	assert.Contains(t, stdout.String(), "scanner ")
	assert.Contains(t, stdout.String(), "module   github.com/ntpctl/ntpctl\n")
	assert.Empty(t, stderr.String())
	buildtest.CheckBinaryVersion(t, ".", "scanner", "-version")
}

// TestHelpAndID: the flags' placeholders name what they take (-rate
// requests, not "second"; -split key, not "asn"), -id takes any name as
// its help says (a/b becomes a_b in the file names), and -out - is
// refused without making a directory named "-".
func TestHelpAndID(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"-h"}, &stdout, &stderr, nil))
	help := stderr.String()
	for _, want := range []string{"\n  -rate requests\n", "\n  -split key\n", "\n  -id ID\n", "\n  -version\n"} {
		assert.Contains(t, help, want)
	}
	for _, wrong := range []string{"-rate second", "-split asn"} {
		assert.NotContains(t, help, wrong)
	}

	dir := t.TempDir()
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"-out", dir, "-id", "a/b", "-progress", "none", "-lab-hosts", "32",
		"-probes", "version"}, &stdout, &stderr, nil), stderr.String())
	var names []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		names = append(names, e.Name()[len("2006-01-02"):])
	}
	assert.ElementsMatch(t, []string{"-scan_ntp-a_b.csv", "-scan6_ntp-a_b.csv", "-ntpctl-a_b.jsonl", "-ntpctl-a_b-stats.json", "-ntpctl-a_b-stats.txt"}, names)

	t.Chdir(t.TempDir())
	stderr.Reset()
	assert.Equal(t, exitUsage, run(context.Background(), []string{"-out", "-", "-lab-hosts", "32"}, &stdout, &stderr, nil))
	assert.Contains(t, stderr.String(), "scanner: -out -: the scanner writes several files")
	_, err = os.Stat("-")
	assert.ErrorIs(t, err, os.ErrNotExist, "no directory named -")
}
