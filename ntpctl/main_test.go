package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/buildtest"
	"github.com/ntpctl/ntpctl/internal/lab"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	labOnce sync.Once
	theLab  *lab.Lab
	labErr  error
)

// testLab is one lab shared by the tests of this package (it only
// answers; nothing changes it).
func testLab(t *testing.T) *lab.Lab {
	t.Helper()
	labOnce.Do(func() { theLab, labErr = lab.Start(context.Background(), lab.Config{}) })
	require.NoError(t, labErr)
	return theLab
}

// hostWhere returns the first lab host that satisfies ok.
func hostWhere(t *testing.T, ok func(lab.Host) bool) lab.Host {
	t.Helper()
	for _, h := range testLab(t).Hosts() {
		if ok(h) {
			return h
		}
	}
	t.Fatal("no such host in the lab")
	return lab.Host{}
}

func kind(k lab.Kind) func(lab.Host) bool { return func(h lab.Host) bool { return h.Kind == k } }

// runCmd runs the program with args and returns its output and status.
func runCmd(t *testing.T, e env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, x bytes.Buffer
	code = e.run(context.Background(), args, &o, &x)
	return o.String(), x.String(), code
}

// fastArgs are flags that keep silent hosts quick.
var fastArgs = []string{"--timeout", "300ms", "--retries", "0"}

func TestMonlistFullTable(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool { return h.Kind == lab.Amplifier && h.Monlist.Entries == 600 })
	out, errOut, code := runCmd(t, env{}, "monlist", h.Addr.String())
	require.Equal(t, exitOK, code, errOut)
	assert.Empty(t, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Greater(t, len(lines), 603)
	assert.Equal(t, "remote address          port local address      count m ver rstr avgint  lstint", lines[0])
	assert.Equal(t, strings.Repeat("=", 79), lines[1])
	row := regexp.MustCompile(`^\S+ +\d{1,5} \S+ +\d+ \d \d +[0-9a-f]+ +\d+ +\d+$`)
	for i, e := range h.Sim.Clients[:600] {
		l := lines[2+i]
		assert.Regexp(t, row, l)
		f := strings.Fields(l)
		assert.Equal(t, e.Addr.String(), f[0])
		assert.Equal(t, fmt.Sprint(e.Port), f[1])
		assert.Equal(t, e.LocalAddr.String(), f[2])
		assert.Equal(t, fmt.Sprint(e.Count), f[3])
		assert.Equal(t, fmt.Sprint(e.LastInt), f[8])
	}
	// ntpdc's columns for an IPv4 entry, to the character.
	e := h.Sim.Clients[0]
	if e.Addr.Is4() {
		assert.Equal(t, fmt.Sprintf("%-22s %5d %-15s %8d %d %d %6x %6d %7d", e.Addr, e.Port, e.LocalAddr, e.Count,
			e.Mode, e.Version, e.Restrict, e.AvgInt, e.LastInt), lines[2])
	}
	assert.Equal(t, "", lines[602])
	assert.Contains(t, lines[603], "600 entries, 100 packets, 44000 bytes in reply to a 48-byte request: amplification 916.7")
}

func TestMonlistIPv6(t *testing.T) {
	h, ok := testLab(t).Host(netip.IPv6Loopback())
	require.True(t, ok)
	out, errOut, code := runCmd(t, env{}, "monlist", h.Addr.String())
	require.Equal(t, exitOK, code, errOut)
	v6 := 0
	for _, e := range h.Sim.Clients {
		if e.IsIPv6() {
			v6++
			assert.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(e.Addr.String())+` +\d+ ::1 `), out)
		}
	}
	assert.Positive(t, v6)
	// A bare IPv6 address takes --port.
	_, _, code = runCmd(t, env{}, "monlist", "--port", fmt.Sprint(h.Addr.Port()), "::1")
	assert.Equal(t, exitOK, code)
}

func TestMonlistOutcomes(t *testing.T) {
	dis := hostWhere(t, kind(lab.MonlistDisabled))
	out, _, code := runCmd(t, env{}, "monlist", dis.Addr.String())
	assert.Equal(t, exitRefused, code)
	assert.Contains(t, out, "monlist disabled: the server answered with error 4 (INFO_ERR_NODATA)")

	for _, h := range []lab.Host{hostWhere(t, kind(lab.Silent)), hostWhere(t, kind(lab.ReadVarOnly))} {
		out, _, code = runCmd(t, env{}, append([]string{"monlist"}, append(fastArgs, h.Addr.String())...)...)
		assert.Equal(t, exitNoAnswer, code, "%v", h.Addr)
		assert.Contains(t, out, "no answer to monlist")
	}

	gaps := hostWhere(t, func(h lab.Host) bool { return h.Hostile == "gaps" })
	out, _, code = runCmd(t, env{}, "monlist", gaps.Addr.String())
	assert.Equal(t, exitBadReply, code, out)
	assert.Contains(t, out, "answered in part")
}

// parseRV splits rv's text output into the status line and the
// variables.
func parseRV(t *testing.T, out string) (string, mode6.Vars) {
	t.Helper()
	first, rest, ok := strings.Cut(out, "\n")
	require.True(t, ok)
	text, _, _ := strings.Cut(rest, "\n\n")
	vs, st := mode6.ParseVars([]byte(text))
	require.True(t, st.Clean(), "%+v", st)
	return first, vs
}

func TestRV(t *testing.T) {
	for _, h := range []lab.Host{
		hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpsec") }),
		hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") }),
		hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.4") }),
		hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "xntpd") }),
	} {
		t.Run(h.Daemon, func(t *testing.T) {
			out, errOut, code := runCmd(t, env{}, "rv", h.Addr.String())
			require.Equal(t, exitOK, code, errOut)
			first, vs := parseRV(t, out)
			assert.Equal(t, fmt.Sprintf("associd=0 status=%04x %s,", h.Sim.Status, mode6.SystemStatusOf(h.Sim.Status)), first)
			require.Len(t, vs, len(h.Sim.System))
			for i, v := range h.Sim.System {
				got := vs[i]
				assert.Equal(t, v.Name, got.Name)
				switch {
				case v.Name == "leap":
					assert.Equal(t, "00", got.Value)
				case strings.HasPrefix(v.Value, "0x"):
					assert.Equal(t, v.Value[2:], strings.Fields(got.Value)[0])
					ts, _ := mode6.ParseTimestamp(v.Value)
					assert.Equal(t, ts.Time().Format("2006-01-02T15:04:05"), strings.Fields(got.Value)[1][:19])
				case v.Name == "refid":
					assert.Equal(t, v.Value, got.Value)
				default: // ntpsec's ntpq prints numbers as Python does (0.030 is 0.03) and strings quoted
					if _, err := strconv.ParseFloat(v.Value, 64); err == nil {
						sameValue(t, v.Name, got.Value, v.Value)
						assert.False(t, got.Quoted, v.Name)
					} else {
						assert.Equal(t, v.Value, got.Value)
						assert.True(t, got.Quoted, v.Name)
					}
				}
			}
			vars, _, _ := strings.Cut(out, "\n\n")
			for _, l := range strings.Split(vars, "\n")[1:] {
				assert.LessOrEqual(t, len(l), 79, "ntpsec's ntpq folds at 78 columns: %q", l)
			}
			assert.Contains(t, out, fmt.Sprintf("\n\n%s: READVAR answered: 1 packet, %d bytes in reply to a 12-byte request: amplification %.1f.\n",
				h.Addr, h.ReadVar.Bytes, float64(h.ReadVar.Bytes)/12))
		})
	}
}

func TestRVNamesAndAssoc(t *testing.T) {
	h := hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") })
	out, errOut, code := runCmd(t, env{}, "rv", h.Addr.String(), "version,stratum", "refid")
	require.Equal(t, exitOK, code, errOut)
	_, vs := parseRV(t, "no status line, as ntpq when names are asked for\n"+out)
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"stratum", "refid", "version"}, names, "in the server's order")
	assert.Contains(t, out, "in reply to a 36-byte request")

	out, errOut, code = runCmd(t, env{}, "rv", h.Addr.String(), "--assoc", fmt.Sprint(h.PeerAssoc))
	require.Equal(t, exitOK, code, errOut)
	first, vs := parseRV(t, out)
	assert.Equal(t, fmt.Sprintf("associd=%d status=961a conf, reach, sel_sys.peer, 1 event, sys_peer,", h.PeerAssoc), first)
	src, _ := vs.Lookup("srcadr")
	assert.Equal(t, h.Sim.Peers[0].Vars[0].Value, src)

	out, _, code = runCmd(t, env{}, "rv", "--assoc", fmt.Sprint(h.PeerAssoc+1), h.Addr.String())
	assert.Equal(t, exitRefused, code)
	assert.Contains(t, out, "CERR_BADASSOC")
	out, _, code = runCmd(t, env{}, "rv", h.Addr.String(), "nosuchvar")
	assert.Equal(t, exitRefused, code)
	assert.Contains(t, out, "CERR_UNKNOWNVAR")
	_, _, code = runCmd(t, env{}, append([]string{"rv"}, append(fastArgs, hostWhere(t, kind(lab.Silent)).Addr.String())...)...)
	assert.Equal(t, exitNoAnswer, code)
}

func TestCheck(t *testing.T) {
	amp := hostWhere(t, func(h lab.Host) bool { return h.Kind == lab.Amplifier && h.Monlist.Entries == 600 })
	out, errOut, code := runCmd(t, env{}, "check", amp.Addr.String())
	require.Equal(t, exitAmplifier, code, errOut)
	assert.Contains(t, out, "Verdict: AMPLIFIER. monlist returns 916.7 times the bytes of the request (44000 bytes for 48).")
	assert.Contains(t, out, "disable monitor")
	assert.Contains(t, out, "noquery")
	assert.Contains(t, out, "4.2.7p26")

	cases := []struct {
		h       lab.Host
		code    int
		verdict string
		fix     string
	}{
		{hostWhere(t, kind(lab.ReadVarOnly)), exitMode6Only, report.VerdictMode6Amplifier, "noquery"},
		{hostWhere(t, kind(lab.MonlistDisabled)), exitMode6Only, report.VerdictMode6Amplifier, "enable mode7"},
		{hostWhere(t, kind(lab.Silent)), exitOK, report.VerdictNotAmplifier, ""},
		{amp, exitAmplifier, report.VerdictMonlistAmplifier, "disable monitor"},
	}
	for _, c := range cases {
		timeout := "2s"
		if c.h.Kind == lab.Silent {
			timeout = "300ms"
		}
		before := time.Now()
		out, errOut, code := runCmd(t, env{}, "check", "--json", "--timeout", timeout, c.h.Addr.String())
		require.Equal(t, c.code, code, "%v %s: %s", c.h.Addr, out, errOut)
		schematest.Validate(t, "ntpctl_check", []byte(out))
		var j report.JSONCheck
		require.NoError(t, json.Unmarshal([]byte(out), &j), out)
		assert.Equal(t, c.verdict, j.Verdict)
		assert.Equal(t, c.h.Addr.Addr(), j.IP)
		assert.Equal(t, c.h.Addr.Port(), j.Port)
		assert.WithinRange(t, j.Time, before.Add(-time.Second), time.Now(), "the time of the queries")
		assert.True(t, !j.Time.After(j.Monitor.Time) && !j.Time.After(j.Version.Time), "the first query's")
		assert.True(t, j.Time.Equal(j.Monitor.Time) || j.Time.Equal(j.Version.Time), "the first query's")
		assert.Equal(t, c.h.Monlist.Status, j.Monitor.Status)
		assert.Equal(t, c.h.ReadVar.Status, j.Version.Status)
		assert.Equal(t, c.h.Monlist.Bytes, j.Monitor.Bytes)
		assert.Equal(t, c.h.ReadVar.Bytes, j.Version.Bytes)
		switch c.verdict {
		case report.VerdictMonlistAmplifier:
			assert.Equal(t, j.Monitor.Amplification, j.Amplification)
			require.NotNil(t, j.Monitor.Monitor)
			assert.Len(t, j.Monitor.Monitor.Entries, c.h.Monlist.Entries, "the whole record")
		case report.VerdictMode6Amplifier:
			assert.Equal(t, j.Version.Amplification, j.Amplification)
		default:
			assert.Zero(t, j.Amplification)
		}
		if c.fix != "" {
			assert.Contains(t, strings.Join(j.Remediation, "\n"), c.fix)
		} else {
			assert.Empty(t, j.Remediation)
			assert.Contains(t, out, `"remediation": []`, "an empty list, not null")
		}
	}
}

// TestJSON: monlist --json and rv --json print the query's record, in
// the scanner's vocabulary, at the time of the query.
func TestJSON(t *testing.T) {
	amp := hostWhere(t, func(h lab.Host) bool { return h.Kind == lab.Amplifier && h.Monlist.Entries == 600 })
	before := time.Now()
	out, _, code := runCmd(t, env{}, "monlist", "--json", amp.Addr.String())
	require.Equal(t, exitOK, code)
	schematest.Validate(t, "ntpctl_monlist", []byte(out))
	var m report.JSONRecord
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Equal(t, report.ScanNTPMonitor, m.Report)
	assert.Equal(t, ntpctl.StatusOK, m.Status)
	assert.Equal(t, amp.Addr.Addr(), m.IP)
	assert.Equal(t, amp.Addr.Port(), m.Port)
	assert.WithinRange(t, m.Time, before.Add(-time.Second), time.Now())
	assert.Regexp(t, `"time": "[0-9-]+T[0-9:.]+Z"`, out, "UTC, RFC 3339")
	assert.Equal(t, 100, m.Packets)
	assert.Equal(t, 44000, m.Bytes)
	assert.Equal(t, 48, m.RequestBytes)
	assert.Equal(t, 44000.0/48, m.Amplification, "unrounded")
	assert.Positive(t, m.RTTms)
	assert.True(t, m.Reportable)
	require.NotNil(t, m.Monitor)
	assert.Nil(t, m.Variables)
	assert.Nil(t, m.Monitor.ErrorCode)
	require.Len(t, m.Monitor.Entries, 600)
	e := amp.Sim.Clients[0]
	assert.Equal(t, report.JSONEntry{Addr: e.Addr, LocalAddr: e.LocalAddr, Port: e.Port, Mode: e.Mode, Version: e.Version,
		Count: e.Count, AvgInt: e.AvgInt, LastInt: e.LastInt, FirstInt: e.FirstInt, Restrict: e.Restrict, Flags: e.Flags},
		m.Monitor.Entries[0])

	dis := hostWhere(t, kind(lab.MonlistDisabled))
	out, _, code = runCmd(t, env{}, "monlist", "--json", dis.Addr.String())
	require.Equal(t, exitRefused, code)
	schematest.Validate(t, "ntpctl_monlist", []byte(out))
	m = report.JSONRecord{}
	require.NoError(t, json.Unmarshal([]byte(out), &m))
	assert.Equal(t, ntpctl.StatusServerError, m.Status, "monlist disabled")
	assert.Contains(t, m.Error, "INFO_ERR_NODATA")
	require.NotNil(t, m.Monitor)
	require.NotNil(t, m.Monitor.ErrorCode)
	assert.Equal(t, 4, *m.Monitor.ErrorCode)

	// The missing sequence numbers of a partial reply, as numbers.
	gaps := hostWhere(t, func(h lab.Host) bool { return h.Hostile == "gaps" })
	out, _, code = runCmd(t, env{}, "monlist", "--json", gaps.Addr.String())
	require.Equal(t, exitBadReply, code)
	schematest.Validate(t, "ntpctl_monlist", []byte(out))
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	assert.Equal(t, []any{3.0, 6.0}, raw["monitor"].(map[string]any)["missing"], "sequence numbers, not base64")
	assert.Equal(t, "partial", raw["status"])

	out, _, code = runCmd(t, env{}, "rv", "--json", dis.Addr.String())
	require.Equal(t, exitOK, code)
	schematest.Validate(t, "ntpctl_rv", []byte(out))
	var r report.JSONRecord
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, report.ScanNTP, r.Report)
	require.NotNil(t, r.Variables)
	assert.Equal(t, dis.Sim.System[0].Name, r.Variables.Vars[0].Name)
	assert.Equal(t, dis.Sim.System[0].Value, r.Variables.Vars[0].Value)
	assert.Equal(t, dis.Sim.Status, r.Variables.StatusWord, "a number")
	assert.Equal(t, mode6.SystemStatusOf(dis.Sim.Status).String(), r.Variables.StatusText)
	assert.Equal(t, dis.ReadVar.Bytes, r.Bytes)

	out, _, code = runCmd(t, env{}, append([]string{"rv", "--json"}, append(fastArgs, hostWhere(t, kind(lab.Silent)).Addr.String())...)...)
	require.Equal(t, exitNoAnswer, code)
	schematest.Validate(t, "ntpctl_rv", []byte(out))
	r = report.JSONRecord{}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, ntpctl.StatusNoAnswer, r.Status)
	assert.Nil(t, r.Variables)
	assert.Equal(t, 1, r.Attempts)

	ntpd := hostWhere(t, func(h lab.Host) bool { return strings.HasPrefix(h.Daemon, "ntpd 4.2.8") })
	out, _, code = runCmd(t, env{}, "rv", "--json", "--assoc", fmt.Sprint(ntpd.PeerAssoc+1), ntpd.Addr.String())
	require.Equal(t, exitRefused, code)
	schematest.Validate(t, "ntpctl_rv", []byte(out))
	r = report.JSONRecord{}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.NotNil(t, r.Variables)
	require.NotNil(t, r.Variables.ErrorCode)
	assert.Equal(t, int(mode6.CErrBadAssoc), *r.Variables.ErrorCode)
	assert.Equal(t, ntpd.PeerAssoc+1, r.Variables.AssocID)
}

// TestJSONOutcomes: for one lab host of each kind and misbehaviour,
// monlist --json, rv --json and check --json print valid documents whose
// statuses are the ones the lab expects, and the exit status follows.
func TestJSONOutcomes(t *testing.T) {
	seen := map[string]bool{}
	statuses := map[string]bool{}
	for _, h := range testLab(t).Hosts() {
		key := fmt.Sprint(h.Kind, h.Hostile, h.Monlist.Status, h.ReadVar.Status, h.Addr.Addr().Is6())
		if seen[key] {
			continue
		}
		seen[key] = true
		statuses["monlist "+h.Monlist.Status.String()] = true
		statuses["rv "+h.ReadVar.Status.String()] = true
		t.Run(strings.TrimSpace(fmt.Sprint(h.Kind, " ", h.Hostile, " ", h.Addr)), func(t *testing.T) {
			t.Parallel()
			flags := func(s ntpctl.Status) []string {
				if s == ntpctl.StatusNoAnswer {
					return fastArgs
				}
				return []string{"--timeout", "1s"}
			}
			for _, c := range []struct {
				cmd, def string
				want     ntpctl.Status
			}{{"monlist", "ntpctl_monlist", h.Monlist.Status}, {"rv", "ntpctl_rv", h.ReadVar.Status}} {
				args := append(append([]string{c.cmd, "--json"}, flags(c.want)...), h.Addr.String())
				out, errOut, code := runCmd(t, env{}, args...)
				require.Empty(t, errOut)
				assert.Equal(t, statusExit(c.want), code, "%q", args)
				schematest.Validate(t, c.def, []byte(out))
				var rec report.JSONRecord
				require.NoError(t, json.Unmarshal([]byte(out), &rec))
				assert.Equal(t, c.want, rec.Status, "%q: %s", args, rec.Error)
			}
			timeout := []string{"--timeout", "1s"}
			if h.Monlist.Status == ntpctl.StatusNoAnswer && h.ReadVar.Status == ntpctl.StatusNoAnswer {
				timeout = fastArgs
			}
			out, errOut, _ := runCmd(t, env{}, append(append([]string{"check", "--json"}, timeout...), h.Addr.String())...)
			require.Empty(t, errOut)
			schematest.Validate(t, "ntpctl_check", []byte(out))
		})
	}
	t.Cleanup(func() {
		for _, s := range []string{"ok", "no_answer", "partial", "protocol_error", "server_error"} {
			assert.True(t, statuses["monlist "+s], "monlist %s: no lab host gives it", s)
		}
		for _, s := range []string{"ok", "no_answer", "partial", "protocol_error"} {
			assert.True(t, statuses["rv "+s], "rv %s: no lab host gives it", s)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	noLookup := env{lookup: func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
	}}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"monlist"}, "want one HOST[:PORT]"},
		{[]string{"monlist", "--bogus", "127.0.0.1"}, "flag provided but not defined: -bogus"},
		{[]string{"monlist", "--timeout", "soon", "127.0.0.1"}, "invalid value"},
		{[]string{"monlist", "--timeout", "-1s", "127.0.0.1"}, "must be positive"},
		{[]string{"rv", "--port", "70000", "127.0.0.1"}, "--port 70000"},
		{[]string{"rv", "--assoc", "70000", "127.0.0.1"}, "--assoc 70000"},
		{[]string{"rv", "127.0.0.1", "bad=name"}, "variable names"},
		{[]string{"rv"}, "want HOST"},
		{[]string{"check"}, "want one or more HOST[:PORT], or -i FILE"},
		{[]string{"check", "--rate", "-1", "127.0.0.1"}, "--rate -1"},
		{[]string{"check", "-i", "/nonexistent/hosts.txt"}, "no such file"},
		{[]string{"check", "-i", "/dev/null"}, "no hosts in the files"},
		{[]string{"verify"}, "want one or more report files"},
		{[]string{"verify", "--probe", "both", "x.csv"}, `--probe "both"`},
		{[]string{"verify", "--max-rows", "0", "x.csv"}, "--max-rows 0"},
		{[]string{"verify", "/nonexistent/2026-11-30-scan_ntp-x.csv"}, "no such file"},
		{[]string{"verify", "/dev/null"}, "no header"},
		{[]string{"monlist", "224.0.1.1"}, "multicast"},
		{[]string{"monlist", "ff02::101"}, "multicast"},
		{[]string{"monlist", "0.0.0.0"}, "unspecified"},
		{[]string{"monlist", "::"}, "unspecified"},
		{[]string{"monlist", "255.255.255.255"}, "broadcast"},
		{[]string{"monlist", "fe80::1%lo"}, "zone"},
		{[]string{"monlist", "127.0.0.1:0"}, "port 0"},
		{[]string{"monlist", "127.0.0.1:ntp"}, "bad port"},
		{[]string{"monlist", "ntp.invalid"}, `cannot resolve "ntp.invalid": no such host`},
		{[]string{"lab", "extra"}, "unexpected argument"},
		{[]string{"lab", "--hosts", "3"}, "--hosts 3"},
		{[]string{"help", "nope"}, "unknown command"},
	} {
		out, errOut, code := runCmd(t, noLookup, c.args...)
		assert.Equal(t, exitError, code, "%q", c.args)
		assert.Empty(t, out, "%q", c.args)
		assert.Contains(t, errOut, c.msg, "%q", c.args)
		if c.args != nil {
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line for %q: %q", c.args, errOut)
		}
		assert.NotContains(t, errOut, "goroutine")
	}
}

func TestResolveNames(t *testing.T) {
	h := hostWhere(t, kind(lab.MonlistDisabled))
	asked := ""
	e := env{lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
		asked = host
		return []netip.Addr{netip.MustParseAddr("::1"), h.Addr.Addr()}, nil
	}}
	out, _, code := runCmd(t, e, "monlist", fmt.Sprintf("ntp.example:%d", h.Addr.Port()))
	assert.Equal(t, exitRefused, code, out)
	assert.Equal(t, "ntp.example", asked)
	assert.Contains(t, out, h.Addr.String(), "IPv4 preferred")

	e.lookup = func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("resolver on fire") }
	_, errOut, code := runCmd(t, e, "rv", "ntp.example")
	assert.Equal(t, exitError, code)
	assert.Equal(t, "ntpctl rv: cannot resolve \"ntp.example\": resolver on fire\n", errOut)
	_, _, code = runCmd(t, e, "rv", "127.0.0.1", "--timeout", "1ms", "--retries", "0")
	assert.NotEqual(t, exitError, code, "addresses are not looked up")
}

func TestHelp(t *testing.T) {
	out, _, code := runCmd(t, env{}, "help")
	assert.Equal(t, exitOK, code)
	for _, c := range []string{"monlist", "rv", "check", "lab"} {
		assert.Contains(t, out, "ntpctl "+c)
	}
	for _, args := range [][]string{{"help", "monlist"}, {"monlist", "--help"}, {"rv", "-h"}, {"check", "--help"}, {"lab", "--help"}} {
		out, errOut, code := runCmd(t, env{}, args...)
		assert.Equal(t, exitOK, code, "%q", args)
		assert.Empty(t, errOut)
		assert.Contains(t, out, "Usage: ntpctl "+args[0+len(args)-2+boolInt(args[0] == "help")])
		assert.Contains(t, out, "Exit status:")
		assert.Contains(t, out, "--json")
		if args[len(args)-1] != "lab" && args[0] != "lab" {
			assert.Contains(t, out, "130  interrupted", "%q: every exit status is documented", args)
		}
	}
	out, _, _ = runCmd(t, env{}, "--help")
	assert.Contains(t, out, "Usage:")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestLabCommand runs `ntpctl lab` until it is interrupted, and checks a
// host of the running lab with `ntpctl check`.
func TestLabCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan []netip.AddrPort, 1)
	e := env{labReady: func(ts []netip.AddrPort) { ready <- ts }}
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- e.run(ctx, []string{"lab", "--port", "0", "--hosts", "40", "--seed", "7"}, &out, &errOut)
	}()
	var targets []netip.AddrPort
	select {
	case targets = <-ready:
	case code := <-done:
		t.Fatalf("lab exited with %d: %s", code, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("lab did not start")
	}
	assert.Len(t, targets, 41)
	text := out.String()
	assert.Contains(t, text, "41 simulated NTP servers on loopback")
	assert.Contains(t, text, "Try, in another terminal:")
	m := regexp.MustCompile(`ntpctl check (\S+) +# a full monitor table`).FindStringSubmatch(text)
	require.NotNil(t, m, text)
	o, _, code := runCmd(t, env{}, "check", m[1])
	assert.Equal(t, exitAmplifier, code, o)
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(5 * time.Second):
		t.Fatal("lab did not stop")
	}
	assert.Contains(t, out.String(), "ntpctl lab: stopped after")
	assert.Empty(t, errOut.String())
}

// TestInterrupt: Ctrl-C stops a query at once, without waiting for the
// timeout, with its own exit status.
func TestInterrupt(t *testing.T) {
	silent := hostWhere(t, kind(lab.Silent))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel) // as main does on SIGINT
	var out, errOut bytes.Buffer
	start := time.Now()
	code := env{}.run(ctx, []string{"check", "--timeout", "10s", silent.Addr.String()}, &out, &errOut)
	assert.Equal(t, exitInterrupt, code)
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, "ntpctl check: interrupted\n", errOut.String())
	assert.Empty(t, out.String())
}

func TestLabJSON(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := env{labReady: func([]netip.AddrPort) { cancel() }}
	var out, errOut bytes.Buffer
	before := time.Now()
	code := e.run(ctx, []string{"lab", "--json", "--port", "0", "--hosts", "32", "--seed", "3"}, &out, &errOut)
	require.Equal(t, exitOK, code, errOut.String())
	schematest.Validate(t, "ntpctl_lab", out.Bytes())
	var j labJSON
	require.NoError(t, json.Unmarshal(out.Bytes(), &j), out.String())
	assert.WithinRange(t, j.Time, before.Add(-time.Second), time.Now())
	assert.NotZero(t, j.Port)
	assert.Len(t, j.Hosts, 33)
	assert.Equal(t, netip.IPv6Loopback(), j.Hosts[32].IP)
	kinds := map[string]bool{}
	for _, h := range j.Hosts {
		kinds[h.Kind] = true
	}
	assert.True(t, kinds["monlist_disabled"], "snake_case: %v", kinds)
}

// TestJSONTypes: the Go types of ntpctl's own JSON have exactly the fields
// of their $defs entries, and the lab's kinds are the schema's.
func TestJSONTypes(t *testing.T) {
	schematest.CheckType(t, "ntpctl_lab", labJSON{})
	schematest.CheckType(t, "lab_host", labHostJSON{})
	var kinds []any
	for k := lab.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		kinds = append(kinds, kindName(k))
	}
	assert.Equal(t, kinds, schematest.Def(t, "lab_host")["properties"].(map[string]any)["kind"].(map[string]any)["enum"])
}

// TestClosedPort: a port nothing listens on answers with ICMP port
// unreachable: ntpctl says there is no NTP service and exits 7 at once,
// rather than "no answer" or "not an amplifier" after the timeouts.
func TestClosedPort(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 9, 9, 9)})
	require.NoError(t, err)
	target := c.LocalAddr().String()
	c.Close()
	for _, cmd := range []string{"monlist", "rv", "check"} {
		start := time.Now()
		out, _, code := runCmd(t, env{}, cmd, "--timeout", "3s", target)
		assert.Equal(t, exitNoService, code, "%s: %s", cmd, out)
		assert.Contains(t, out, "no NTP service", cmd)
		assert.Less(t, time.Since(start), 2*time.Second, "%s: no waiting for the timeout", cmd)
		assert.NotContains(t, out, "not an amplifier", cmd)
	}
	out, _, code := runCmd(t, env{}, "check", "--json", target)
	assert.Equal(t, exitNoService, code)
	var j report.JSONCheck
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, report.VerdictNoService, j.Verdict)
	assert.Equal(t, ntpctl.StatusClosed, j.Monitor.Status)
	schematest.Validate(t, "ntpctl_check", []byte(out))
}

// TestVersion: ntpctl --version and ntpctl version print the build; a
// binary built from a git checkout carries its revision.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		out, _, code := runCmd(t, env{}, args...)
		assert.Equal(t, exitOK, code, "%v", args)
		assert.Contains(t, out, "module   github.com/ntpctl/ntpctl\n", "%v", args)
		assert.Contains(t, out, "\ngo       go1.", "%v", args)
	}
	_, errOut, code := runCmd(t, env{}, "version", "extra")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "takes no arguments")
	buildtest.CheckBinaryVersion(t, ".", "ntpctl", "--version")
}

// TestHelpHelp: help describes itself and every command, version too.
func TestHelpHelp(t *testing.T) {
	for args, want := range map[[2]string]string{{"help", "help"}: "Usage: ntpctl help [COMMAND]",
		{"help", "--help"}: "Usage: ntpctl help [COMMAND]", {"help", "version"}: "Usage: ntpctl version"} {
		out, errOut, code := runCmd(t, env{}, args[:]...)
		assert.Equal(t, exitOK, code, "%v: %s", args, errOut)
		assert.Contains(t, out, want, "%v", args)
	}
	out, _, _ := runCmd(t, env{}, "help")
	assert.Contains(t, out, "ntpctl version")
}

// TestPlaceholders: --rate takes requests (per second), --probe a query.
func TestPlaceholders(t *testing.T) {
	for cmd, wants := range map[string][]string{"check": {"--rate requests "}, "verify": {"--rate requests ", "--probe query "}} {
		out, _, code := runCmd(t, env{}, cmd, "--help")
		require.Equal(t, exitOK, code)
		for _, want := range wants {
			assert.Contains(t, out, want, cmd)
		}
		assert.NotContains(t, out, "--rate second", cmd)
		assert.NotContains(t, out, "--probe monitor", cmd)
	}
}

// TestPortNeedsBrackets: "::1:123" is an address, but almost surely
// meant as port 123 of ::1: ntpctl asks for brackets instead of guessing;
// in brackets either reading is taken as written.
func TestPortNeedsBrackets(t *testing.T) {
	_, errOut, code := runCmd(t, env{}, "rv", "::1:123")
	assert.Equal(t, exitError, code)
	assert.Equal(t, "ntpctl rv: \"::1:123\": an IPv6 address with a port needs brackets: [::1]:123 (or [::1:123] for the address ::1:123)\n", errOut)
	_, errOut, code = runCmd(t, env{}, "check", "--port", "4123", "2001:db8::1:4123")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "[2001:db8::1]:4123")
	ctx := context.Background()
	for arg, want := range map[string]string{"[::1]:123": "[::1]:123", "[::1:123]": "[::1:123]:123",
		"2001:db8::5:1": "[2001:db8::5:1]:123", "::123": "[::123]:123"} {
		got, err := env{}.target(ctx, arg, 123)
		require.NoError(t, err, arg)
		assert.Equal(t, want, got.String(), arg)
	}
}
