package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// closedPort returns a loopback address and port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 9, 9, 10)})
	require.NoError(t, err)
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// writeReport writes rows as a report file in the current layout.
func writeReport[T report.Row](t *testing.T, path string, rows []T) {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, report.WriteAll(&b, rows, report.WriterOptions{}))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func rowCommon(ap netip.AddrPort) report.Common {
	return report.Common{Timestamp: "2026-11-30 01:02:03", Severity: "medium", IP: ap.Addr().String(), Protocol: "udp",
		Port: strconv.Itoa(int(ap.Port()))}
}

// verifyLine finds the line of a row in verify's text output.
func verifyLine(t *testing.T, out string, ap netip.AddrPort, line int) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^  line ` + strconv.Itoa(line) + ` +` + regexp.QuoteMeta(ap.String()) + ` .*$`)
	m := re.FindString(out)
	require.NotEmpty(t, m, "no line %d for %s in:\n%s", line, ap, out)
	return m
}

// TestVerify asks again about the rows of a monitor and a version report
// of lab hosts, each in every state: open, changed, fixed (monlist
// disabled, silent, a closed port) and unverified (a refused address),
// with a malformed row skipped; in text, JSON and CSV.
func TestVerify(t *testing.T) {
	amp := hostWhere(t, func(h lab.Host) bool { return h.Kind == lab.Amplifier && h.Monlist.Entries == 600 })
	disabled := hostWhere(t, kind(lab.MonlistDisabled))
	silent := hostWhere(t, kind(lab.Silent))
	gaps := hostWhere(t, func(h lab.Host) bool { return h.Hostile == "gaps" })
	closed := closedPort(t)
	rvOnly := hostWhere(t, kind(lab.ReadVarOnly))
	version, ok := rvOnly.Sim.System.Lookup("version")
	require.True(t, ok)

	dir := t.TempDir()
	monPath := filepath.Join(dir, "2026-11-30-scan_ntpmonitor-org.csv")
	mon := func(ap netip.AddrPort) report.MonitorRow {
		return report.MonitorRow{Common: rowCommon(ap), Packets: "100", ResponseSize: "44000", Amplification: "916.67"}
	}
	multicast := netip.MustParseAddrPort("224.0.1.1:123")
	writeReport(t, monPath, []report.MonitorRow{mon(amp.Addr), mon(disabled.Addr), mon(silent.Addr), mon(gaps.Addr),
		mon(closed), mon(multicast), mon(amp.Addr)})
	// A malformed row at the end: line 9.
	f, err := os.OpenFile(monPath, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\"2026-11-30 01:02:03\",\"not an address\"\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	verPath := filepath.Join(dir, "2026-11-30-scan_ntp-org.csv")
	ver := func(ap netip.AddrPort, v string) report.VersionRow {
		return report.VersionRow{Common: rowCommon(ap), Version: v, ResponseSize: "400", Amplification: "33.33"}
	}
	writeReport(t, verPath, []report.VersionRow{ver(rvOnly.Addr, version), ver(rvOnly.Addr, "ntpd 4.2.4p8@1.1612-o"),
		ver(silent.Addr, "ntpd 4.2.6p5")})

	// One retry: a CI run once saw the closed port silent while other
	// packages' tests ran (the kernel's ICMP budget, most likely); a
	// second request gets its port unreachable.
	args := []string{"verify", "--timeout", "500ms", "--retries", "1", "--rate", "0", monPath, verPath}
	out, errOut, code := runCmd(t, env{}, args...)
	require.Equal(t, exitAmplifier, code, "%s\n%s", out, errOut)
	assert.Contains(t, errOut, "line 9 skipped", "the malformed row")
	assert.Contains(t, out, monPath+": 7 rows, 1 malformed row skipped, asked again with monlist (Mode 7)")
	assert.Contains(t, out, verPath+": 3 rows, asked again with READVAR (Mode 6)")
	for _, c := range []struct {
		ap    netip.AddrPort
		line  int
		state string
		words string
	}{
		{amp.Addr, 2, "open", "amplification 916.7; reported: 100 packets, 44000 bytes."},
		{disabled.Addr, 3, "fixed", "monlist disabled"},
		{silent.Addr, 4, "fixed", "no answer"},
		{gaps.Addr, 5, "changed", "in part"},
		{closed, 6, "fixed", "the port is closed"},
		{multicast, 7, "unverified", "multicast"},
		{amp.Addr, 8, "open", "916.7"},
	} {
		l := verifyLine(t, out, c.ap, c.line)
		assert.Regexp(t, ` `+c.state+` `, l)
		assert.Contains(t, l, c.words)
	}
	l := verifyLine(t, out, rvOnly.Addr, 2)
	assert.Contains(t, l, " open ")
	assert.Contains(t, l, "Version: "+version)
	l = verifyLine(t, out, rvOnly.Addr, 3)
	assert.Contains(t, l, " changed ")
	assert.Contains(t, l, `reported "ntpd 4.2.4p8@1.1612-o"`)
	assert.Contains(t, verifyLine(t, out, silent.Addr, 4), " fixed ")
	assert.Contains(t, out, "10 rows: 3 open, 2 changed, 4 fixed, 1 unverified; 1 malformed row skipped.")

	// --json: the same, in the vocabulary.
	out, _, code = runCmd(t, env{}, append([]string{"verify", "--json"}, args[1:]...)...)
	require.Equal(t, exitAmplifier, code)
	schematest.Validate(t, "ntpctl_verify", []byte(out))
	var j report.JSONVerify
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, report.JSONVerifyCounts{Open: 3, Changed: 2, Fixed: 4, Unverified: 1, Skipped: 1}, j.Counts)
	require.Len(t, j.Files, 2)
	assert.Equal(t, report.JSONVerifyFile{File: monPath, Report: report.ScanNTPMonitor, Rows: 7, Skipped: 1}, j.Files[0])
	assert.Equal(t, report.ScanNTP, j.Files[1].Report)
	require.Len(t, j.Rows, 10)
	r := j.Rows[0]
	assert.Equal(t, report.VerifiedOpen, r.Verified)
	assert.Equal(t, amp.Addr.Addr(), r.IP)
	assert.Equal(t, 2, r.Line)
	require.NotNil(t, r.Reported)
	assert.Equal(t, "2026-11-30T01:02:03Z", r.Reported.Format("2006-01-02T15:04:05Z07:00"))
	require.NotNil(t, r.Record)
	assert.Equal(t, 44000, r.Record.Bytes)
	assert.Equal(t, ntpctl.StatusOK, r.Record.Status)
	assert.Nil(t, j.Rows[5].Record, "the refused address was not asked")
	assert.Equal(t, ntpctl.StatusClosed, j.Rows[4].Record.Status)

	// --csv: each file again, with the verified columns.
	csvDir := t.TempDir()
	_, errOut, code = runCmd(t, env{}, append([]string{"verify", "--csv", csvDir}, args[1:]...)...)
	require.Equal(t, exitAmplifier, code, errOut)
	b, err := os.ReadFile(filepath.Join(csvDir, "2026-11-30-scan_ntpmonitor-org-verified.csv"))
	require.NoError(t, err)
	rd := report.NewReader[report.MonitorRow](bytes.NewReader(b), report.ReaderOptions{})
	h, err := rd.Header()
	require.NoError(t, err)
	assert.Equal(t, append(report.MonitorColumns(report.LayoutCurrent), "verified", "verified_time", "verified_detail"), h)
	var states []string
	for row, err := range rd.All() {
		require.NoError(t, err)
		states = append(states, row.Extra["verified"])
		assert.NotEmpty(t, row.Extra["verified_detail"])
	}
	assert.Equal(t, []string{"open", "fixed", "fixed", "changed", "fixed", "unverified", "open"}, states)
	entries, _ := os.ReadDir(csvDir)
	assert.Len(t, entries, 2, "two files, no temporary ones left")
}

// TestVerifyAllFixed: when no row is open or changed the status is 0;
// the report type comes from the columns when the name does not say it,
// and --probe decides when neither does.
func TestVerifyAllFixed(t *testing.T) {
	disabled := hostWhere(t, kind(lab.MonlistDisabled))
	dir := t.TempDir()
	path := filepath.Join(dir, "from-a-colleague.csv")
	writeReport(t, path, []report.MonitorRow{{Common: rowCommon(disabled.Addr), Packets: "1", ResponseSize: "468"}})
	out, errOut, code := runCmd(t, env{}, "verify", path)
	require.Equal(t, exitOK, code, "%s %s", out, errOut)
	assert.Contains(t, out, "asked again with monlist (Mode 7)", "the packets column says monitor")
	assert.Contains(t, out, "1 row: 0 open, 0 changed, 1 fixed, 0 unverified.")

	bare := filepath.Join(dir, "bare.csv")
	require.NoError(t, os.WriteFile(bare, []byte("timestamp,ip,port\n2026-11-30 01:02:03,"+disabled.Addr.Addr().String()+","+
		strconv.Itoa(int(disabled.Addr.Port()))+"\n"), 0o644))
	_, errOut, code = runCmd(t, env{}, "verify", bare)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "--probe monitor or version")
	out, errOut, code = runCmd(t, env{}, "verify", "--probe", "version", bare)
	assert.Equal(t, exitAmplifier, code, "%s %s", out, errOut)
	assert.Contains(t, out, "asked again with READVAR (Mode 6)")
	assert.Contains(t, out, " open ", "READVAR is answered: open")

	// Only unverified rows: status 8.
	mc := filepath.Join(dir, "2026-11-30-scan_ntpmonitor-x.csv")
	writeReport(t, mc, []report.MonitorRow{{Common: rowCommon(netip.MustParseAddrPort("224.0.1.1:123"))}})
	_, _, code = runCmd(t, env{}, "verify", mc)
	assert.Equal(t, exitUnverified, code)
}

// TestVerifyMaxRows: --max-rows bounds the rows kept in memory.
func TestVerifyMaxRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2026-11-30-scan_ntpmonitor-x.csv")
	var rows []report.MonitorRow
	for i := range 5 {
		rows = append(rows, report.MonitorRow{Common: rowCommon(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 9, 8, byte(i)}), 123))})
	}
	writeReport(t, path, rows)
	_, errOut, code := runCmd(t, env{}, "verify", "--max-rows", "4", path)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "more than --max-rows")
}

// TestVerifyOwnReports: the NTP MRU and Accessible NTP reports are
// refused by name, even though their columns (version, stratum) look
// like an NTP Version report's: nothing is sent.
func TestVerifyOwnReports(t *testing.T) {
	for _, name := range []string{"2026-12-03-scan_ntpmru-x.csv", "2026-12-03-scan_ntpaccessible-x.csv"} {
		path := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(path, []byte(`"timestamp","ip","port","version","stratum"`+"\n"+
			`"2026-12-03 08:00:00","127.9.8.7",123,"ntpd 4.2.8p15",2`+"\n"), 0o644))
		_, errOut, code := runCmd(t, env{}, "verify", path)
		assert.Equal(t, exitError, code, name)
		assert.Contains(t, errOut, "verify asks again about the NTP Monitor and NTP Version reports only", name)
	}
}

// TestCheckMany: several hosts, as arguments and from -i files (with a
// byte order mark, comments, a repeated host and one that cannot be
// resolved): each is reported, a line counts the verdicts, the status is
// the worst verdict's; --json gives one object per line.
func TestCheckMany(t *testing.T) {
	amp := hostWhere(t, func(h lab.Host) bool { return h.Kind == lab.Amplifier })
	rvOnly := hostWhere(t, kind(lab.ReadVarOnly))
	silent := hostWhere(t, kind(lab.Silent))
	closed := closedPort(t)
	file := filepath.Join(t.TempDir(), "hosts.txt")
	require.NoError(t, os.WriteFile(file, []byte("\ufeff"+rvOnly.Addr.String()+"  # the Mode 6 one\n\n# silent:\n"+
		silent.Addr.String()+"\n"+amp.Addr.String()+"\nno-such-host.invalid\n"), 0o644))
	noLookup := env{lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}}
	out, errOut, code := runCmd(t, noLookup, "check", "--timeout", "500ms", "--retries", "0", amp.Addr.String(), closed.String(), "-i", file)
	assert.Equal(t, exitAmplifier, code, "%s\n%s", out, errOut)
	assert.Contains(t, errOut, `cannot resolve "no-such-host.invalid"`)
	for _, h := range []netip.AddrPort{amp.Addr, rvOnly.Addr, silent.Addr, closed} {
		assert.Equal(t, 1, strings.Count(out, "\n"+h.String()+"\n")+boolInt(strings.HasPrefix(out, h.String()+"\n")), "%s once", h)
	}
	assert.Contains(t, out, "5 hosts checked: 1 monlist amplifier, 1 Mode 6 only, 1 not an amplifier, 1 without NTP service, 1 not checked (errors above).")

	out, _, code = runCmd(t, noLookup, "check", "--json", "--timeout", "500ms", "--retries", "0", amp.Addr.String(), "-i", file)
	assert.Equal(t, exitAmplifier, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	verdicts := map[netip.Addr]string{}
	for _, l := range lines {
		if strings.Contains(l, `"command":`) {
			schematest.Validate(t, "ntpctl_error", []byte(l))
			var je report.JSONError
			require.NoError(t, json.Unmarshal([]byte(l), &je))
			assert.Equal(t, report.JSONError{Command: "check", Host: "no-such-host.invalid",
				Error: `cannot resolve "no-such-host.invalid": no such host`}, je)
			continue
		}
		schematest.Validate(t, "ntpctl_check", []byte(l))
		var j report.JSONCheck
		require.NoError(t, json.Unmarshal([]byte(l), &j))
		verdicts[j.IP] = j.Verdict
	}
	assert.Equal(t, map[netip.Addr]string{amp.Addr.Addr(): report.VerdictMonlistAmplifier,
		rvOnly.Addr.Addr(): report.VerdictMode6Amplifier, silent.Addr.Addr(): report.VerdictNotAmplifier}, verdicts)

	// stdin, and errors alone: status 1.
	e := noLookup
	e.stdin = strings.NewReader("no-such-host.invalid\n")
	_, _, code = runCmd(t, e, "check", "-i", "-")
	assert.Equal(t, exitError, code)
}

// TestJSONErrors: with --json, a command that fails before it has
// anything to print prints the error as JSON on stdout too, with the
// same exit status and the same line on stderr.
func TestJSONErrors(t *testing.T) {
	noLookup := env{lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}}
	for _, args := range [][]string{
		{"monlist", "--json", "--bogus", "127.0.0.1"},
		{"rv", "--json", "ntp.invalid"},
		{"rv", "--json=true", "--port", "0", "127.0.0.1"},
		{"check", "--json"},
		{"check", "--json", "-i", "/nonexistent/hosts.txt"},
		{"verify", "--json", "/nonexistent/2026-11-30-scan_ntp-x.csv"},
		{"lab", "--json", "--hosts", "3"},
	} {
		_, plainErr, plainCode := runCmd(t, noLookup, slices.DeleteFunc(slices.Clone(args), func(a string) bool {
			return strings.HasPrefix(a, "--json")
		})...)
		out, errOut, code := runCmd(t, noLookup, args...)
		assert.Equal(t, plainCode, code, "%q", args)
		assert.Equal(t, plainErr, errOut, "%q: stderr as without --json", args)
		schematest.Validate(t, "ntpctl_error", []byte(out))
		var je report.JSONError
		require.NoError(t, json.Unmarshal([]byte(out), &je), "%q: %s", args, out)
		assert.Equal(t, args[0], je.Command)
		assert.Equal(t, code, je.ExitStatus)
		assert.Contains(t, errOut, je.Error, "%q: the message of stderr", args)
		assert.NotContains(t, je.Error, "ntpctl "+args[0]+":", "without the prefix")
	}
	// --json=false, and a --json after "--", ask for nothing.
	out, _, _ := runCmd(t, noLookup, "rv", "--json=false", "ntp.invalid")
	assert.Empty(t, out)
}
