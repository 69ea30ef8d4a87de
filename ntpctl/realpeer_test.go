package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/internal/realpeer"
	"github.com/ntpctl/ntpctl/internal/schematest"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// timeVarying are the system variables that change between two queries
// of a running server.
var timeVarying = map[string]bool{"clock": true, "rootdisp": true, "rootdist": true}

// ntpqVars parses ntpq's rv output: the status line and the variables.
func ntpqVars(t *testing.T, out string) (string, mode6.Vars) {
	t.Helper()
	first, rest, ok := strings.Cut(out, "\n")
	require.True(t, ok, "ntpq printed %q", out)
	vs, _ := mode6.ParseVars([]byte(rest))
	require.NotEmpty(t, vs, "ntpq printed %q", out)
	return first, vs
}

// sameValue compares a value as ntpctl printed it with ntpq's: numbers by
// value (ntpsec's ntpq reformats them: 0.000 → 0.0, 0.000060 → 6e-05),
// timestamps by their hexadecimal part, everything else as text.
func sameValue(t *testing.T, name, ours, theirs string) {
	t.Helper()
	a, errA := strconv.ParseFloat(ours, 64)
	b, errB := strconv.ParseFloat(theirs, 64)
	if errA == nil && errB == nil {
		assert.InDelta(t, b, a, 1e-9+1e-6*max(a, -a), "%s: %q vs ntpq %q", name, ours, theirs)
		return
	}
	assert.Equal(t, theirs, ours, name)
}

func ntpsecEnv(d *realpeer.NTPd) env {
	return env{listenUDP: func(network string, _ *net.UDPAddr) (*net.UDPConn, error) { return d.ListenUDP(network) }}
}

// TestRVAgainstNTPsec reads Debian's ntpsec ntpd with `ntpctl rv` and with
// its own ntpq, on the same server: the same status and variables, in the
// same order, with the same values (time-varying ones aside); --json
// carries the values as ntpq's raw mode prints them.
func TestRVAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	e := ntpsecEnv(d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			out, errOut, code := runCmd(t, e, "rv", host)
			require.Equal(t, exitOK, code, "%s%s", out, errOut)
			ref, err := d.NTPQ(ctx, host, "rv")
			require.NoError(t, err, ref)

			t.Logf("ntpctl rv %s:\n%s\nntpq -c rv %s:\n%s", host, out, host, ref)
			first, ours := parseRV(t, out)
			refFirst, theirs := ntpqVars(t, ref)
			// The status word's event counter may move between the queries.
			re := regexp.MustCompile(`^associd=0 status=[0-9a-f]{4} leap_\w+, sync_\w+, (no events|\d+ events?), \w+,$`)
			assert.Regexp(t, re, first)
			assert.Regexp(t, re, refFirst)
			assert.Equal(t, first[:len("associd=0 status=")+2], refFirst[:len("associd=0 status=")+2], "leap and source")

			require.Equal(t, names(theirs), names(ours))
			for i, v := range ours {
				if timeVarying[v.Name] {
					continue
				}
				sameValue(t, v.Name, v.Value, theirs[i].Value)
				assert.Equal(t, theirs[i].Quoted, v.Quoted, v.Name)
			}
			assert.Contains(t, out, "READVAR answered: 1 packet,")
			sameFormat(t, out, ref)

			// --json gives the values as the server sent them: ntpq's raw mode.
			out, _, code = runCmd(t, e, "rv", "--json", host)
			require.Equal(t, exitOK, code)
			schematest.Validate(t, "ntpctl_rv", []byte(out))
			var j report.JSONRecord
			require.NoError(t, json.Unmarshal([]byte(out), &j))
			require.NotNil(t, j.Variables)
			raw, err := d.NTPQ(ctx, host, "raw", "rv")
			require.NoError(t, err, raw)
			_, rest, _ := strings.Cut(raw, "\n") // "Output set to raw"
			_, rawVars := ntpqVars(t, rest)
			require.Len(t, j.Variables.Vars, len(rawVars))
			for i, v := range j.Variables.Vars {
				assert.Equal(t, rawVars[i].Name, v.Name)
				if !timeVarying[v.Name] {
					assert.Equal(t, rawVars[i].Value, v.Value, v.Name)
				}
			}
			assert.Equal(t, 12, j.RequestBytes)
			assert.Greater(t, j.Amplification, 20.0)
			version := ""
			for _, v := range j.Variables.Vars {
				if v.Name == "version" {
					version = v.Value
				}
			}
			assert.Contains(t, d.Version, strings.TrimPrefix(version, "ntpd "))

			// Names, as ntpq -c 'rv 0 stratum,version' asks for them: ntpq
			// prints no status line then.
			gotText, wantText := samePair(t, func() (string, string) {
				out, _, code := runCmd(t, e, "rv", host, "stratum,version")
				require.Equal(t, exitOK, code, out)
				ref, err := d.NTPQ(ctx, host, "rv 0 stratum,version")
				require.NoError(t, err)
				ourText, _, _ := strings.Cut(out, "\n\n")
				return ourText + "\n", ref
			})
			assert.Equal(t, wantText, gotText)
		})
	}
}

// TestCommandsAgainstNTPsec: ntpsec ignores Mode 7, so monlist gets no
// answer and check finds Mode 6 amplification only; a peer association
// reads as ntpq reads it.
func TestCommandsAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	e := ntpsecEnv(d)
	out, _, code := runCmd(t, e, "monlist", "--timeout", "500ms", "127.0.0.1")
	assert.Equal(t, exitNoAnswer, code, out)

	out, _, code = runCmd(t, e, "check", "--timeout", "500ms", "--json", "::1")
	require.Equal(t, exitMode6Only, code, out)
	schematest.Validate(t, "ntpctl_check", []byte(out))
	var j report.JSONCheck
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, report.VerdictMode6Amplifier, j.Verdict)
	assert.Equal(t, ntpctl.StatusNoAnswer, j.Monitor.Status)
	assert.Equal(t, ntpctl.StatusOK, j.Version.Status)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	as, err := d.NTPQ(ctx, "127.0.0.1", "as")
	require.NoError(t, err, as)
	m := regexp.MustCompile(`(?m)^\s+1\s+(\d+)\s`).FindStringSubmatch(as)
	require.NotNil(t, m, as)
	out, errOut, code := runCmd(t, e, "rv", "--assoc", m[1], "127.0.0.1")
	require.Equal(t, exitOK, code, errOut)
	first, ours := parseRVLoose(t, out)
	ref, err := d.NTPQ(ctx, "127.0.0.1", "rv "+m[1])
	require.NoError(t, err, ref)
	refFirst, theirs := ntpqVars(t, ref)
	assert.Equal(t, strings.Fields(refFirst)[0], strings.Fields(first)[0], "associd")
	for _, name := range []string{"srcadr", "srcport", "dstadr", "dstport", "stratum", "refid", "hmode"} {
		a, _ := ours.Lookup(name)
		b, _ := theirs.Lookup(name)
		assert.Equal(t, b, a, name)
	}
}

// parseRVLoose is parseRV for peer variables, whose filt* values carry
// ntpsec's binary junk (dropped by the parser).
func parseRVLoose(t *testing.T, out string) (string, mode6.Vars) {
	t.Helper()
	first, rest, _ := strings.Cut(out, "\n")
	text, _, _ := strings.Cut(rest, "\n\n")
	vs, _ := mode6.ParseVars([]byte(text))
	return first, vs
}

func names(vs mode6.Vars) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

// TestVerifyAgainstNTPsec: rows of Debian's ntpsec in a version report
// and a monitor report, verified against the running server: READVAR is
// open (the version the row names), monlist fixed (ntpsec has no Mode 7),
// and a row naming another version is changed.
func TestVerifyAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	e := ntpsecEnv(d)
	out, _, code := runCmd(t, e, "rv", "--json", "127.0.0.1", "version")
	require.Equal(t, exitOK, code, out)
	var j report.JSONRecord
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	require.NotNil(t, j.Variables)
	require.Len(t, j.Variables.Vars, 1)
	version := j.Variables.Vars[0].Value

	dir := t.TempDir()
	ver := filepath.Join(dir, "2026-11-30-scan_ntp-org.csv")
	writeReport(t, ver, []report.VersionRow{
		{Common: rowCommon(d.Addr), Version: version},
		{Common: rowCommon(d.Addr6), Version: version},
		{Common: rowCommon(d.Addr), Version: "ntpd 4.2.6p5@1.2349-o"},
	})
	mon := filepath.Join(dir, "2026-11-30-scan_ntpmonitor-org.csv")
	writeReport(t, mon, []report.MonitorRow{{Common: rowCommon(d.Addr), Packets: "100", ResponseSize: "44000"}})
	out, errOut, code := runCmd(t, e, "verify", "--json", "--timeout", "500ms", "--retries", "0", ver, mon)
	require.Equal(t, exitAmplifier, code, "%s %s", out, errOut)
	schematest.Validate(t, "ntpctl_verify", []byte(out))
	var v report.JSONVerify
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	require.Len(t, v.Rows, 4)
	for i, want := range []string{report.VerifiedOpen, report.VerifiedOpen, report.VerifiedChanged, report.VerifiedFixed} {
		assert.Equal(t, want, v.Rows[i].Verified, "row %d: %s", i, v.Rows[i].Detail)
	}
	assert.Equal(t, ntpctl.StatusNoAnswer, v.Rows[3].Record.Status)
	assert.Equal(t, report.Scan6NTP, v.Rows[1].Report)
}

// cookedItems splits ntpq's cooked variable text (after the status line)
// into its items; the values of the variables that change between two
// queries become their shape (digits as 9, hexadecimal as f).
func cookedItems(text string) (items, masked []string) {
	digits := regexp.MustCompile(`[0-9]`)
	hexes := regexp.MustCompile(`[0-9a-f]`)
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), ",\n") {
		for item := range strings.SplitSeq(line, ", ") {
			items = append(items, item)
			name, val, _ := strings.Cut(item, "=")
			switch {
			case name == "clock":
				ts, date, _ := strings.Cut(val, " ")
				val = hexes.ReplaceAllString(ts, "f") + " " + digits.ReplaceAllString(date, "9")
			case timeVarying[name] || name == "offset" || name == "sys_jitter" || name == "clk_jitter":
				val = "number"
			}
			masked = append(masked, name+"="+val)
		}
	}
	return items, masked
}

// sameFormat compares ntpctl's rv text with ntpq's, item by item (the
// changing values by their shape), and checks that ntpq's own items,
// folded by ntpctl's rule, give ntpq's text line for line.
func sameFormat(t *testing.T, ours, ntpq string) {
	t.Helper()
	ourFirst, ourRest, _ := strings.Cut(ours, "\n")
	ourRest, _, _ = strings.Cut(ourRest, "\n\n")
	refFirst, refRest, _ := strings.Cut(ntpq, "\n")
	assert.Equal(t, len(refFirst), len(ourFirst), "status line %q vs ntpq %q", ourFirst, refFirst)
	_, a := cookedItems(ourRest + "\n")
	refItems, b := cookedItems(refRest)
	assert.Equal(t, b, a, "items as ntpq prints them")
	assert.Equal(t, refRest, foldItems(refItems), "folding at ntpq's width")
}

// TestPeersAgainstNTPsec: ntpctl peers prints the association list of
// ntpsec's ntpd exactly as its ntpq -c as does, and rv --assoc &1 reads
// the association ntpq's "rv &1" reads, its variables printed as ntpq
// prints them (reach=001, flash=00 ok or 1400 peer_dist peer_unreach; the changing ones by shape; filt*,
// which carry ntpsec's binary junk, aside) with a note of the junk.
func TestPeersAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	e := ntpsecEnv(d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ours, theirs := samePair(t, func() (string, string) {
		out, errOut, code := runCmd(t, e, "as", "127.0.0.1")
		require.Equal(t, exitOK, code, errOut)
		ref, err := d.NTPQ(ctx, "127.0.0.1", "as")
		require.NoError(t, err, ref)
		table, _, _ := strings.Cut(out, "\n\n127.0.0.1:123:")
		return table + "\n", ref
	})
	assert.Equal(t, theirs, ours)

	var out, ref string
	samePair(t, func() (string, string) {
		var errOut string
		var code int
		var err error
		out, errOut, code = runCmd(t, e, "rv", "--assoc", "&1", "127.0.0.1")
		require.Equal(t, exitOK, code, errOut)
		ref, err = d.NTPQ(ctx, "127.0.0.1", "rv &1")
		require.NoError(t, err, ref)
		vars, _, _ := strings.Cut(out, "\n\n")
		_, a := peerItems(vars)
		_, b := peerItems(ref)
		return fmt.Sprint(a), fmt.Sprint(b)
	})
	t.Logf("ntpctl rv --assoc &1:\n%s\nntpq -c 'rv &1':\n%s", out, ref)
	assert.Equal(t, strings.Fields(ref)[0], strings.Fields(out)[0], "associd")
	assert.Regexp(t, `[ \n]reach=[0-7]{3},[ \n]`, out) // 000 at first, 001 once polled
	assert.Regexp(t, `[ \n]flash=[0-9a-f]{2,}( ok| [a-z_]+)*,[ \n]`, out)
	if strings.Contains(ref, "filtdelay =") && strings.Contains(out, "note:") { // the junk is ntpd's memory: it varies
		assert.Regexp(t, `\nnote: \d+ junk octets? dropped from the reply`, out)
	}
	vars, _, _ := strings.Cut(out, "\n\n")
	_, a := peerItems(vars)
	_, b := peerItems(ref)
	assert.Equal(t, b, a)
}

// peerItems are the items of rv text of a peer, filt* left out, the
// timestamps and the time-varying values by their shape.
//
// ntpsec's peer variables carry stale octets of its own memory, mostly
// in filt*, but they can land in the item before or after them; ntpq
// prints them, ntpctl drops them (and says so in its note). So both
// sides lose their control characters and octets that are not UTF-8
// before the comparison, as ntpctl's parser drops them.
func peerItems(text string) (items, masked []string) {
	text = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(text, ""))
	_, rest, _ := strings.Cut(text, "\n")
	var kept []string
	for _, l := range strings.Split(strings.TrimSuffix(rest, "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "filt") {
			continue
		}
		if strings.HasPrefix(l, "note: ") {
			continue
		}
		kept = append(kept, l)
	}
	joined := strings.ReplaceAll(strings.Join(kept, "\n"), ",\n", ", ")
	hexes := regexp.MustCompile(`[0-9a-f]{8}\.[0-9a-f]{8} [0-9T:.Z-]+`)
	for item := range strings.SplitSeq(strings.TrimSuffix(joined, ","), ", ") {
		items = append(items, item)
		name, val, _ := strings.Cut(item, "=")
		switch name {
		case "rec", "xmt", "org", "reftime":
			val = hexes.ReplaceAllString(val, "TIMESTAMP")
		case "offset", "delay", "jitter", "dispersion", "rootdisp", "headway", "unreach":
			val = "number"
		}
		masked = append(masked, name+"="+val)
	}
	return items, masked
}

// samePair asks ntpctl and ntpq (query returns both outputs) up to three
// times until the two agree: the server's state (its status word, reach,
// stratum once it selects its clock) may change between the two queries,
// which cannot be sent at the same instant. It returns the last pair.
func samePair(t *testing.T, query func() (ours, theirs string)) (string, string) {
	t.Helper()
	var a, b string
	for try := 0; try < 3; try++ {
		if a, b = query(); a == b {
			break
		}
		t.Logf("ntpctl and ntpq differ (the server may have changed between them); asking again:\n%s\n%s", a, b)
		time.Sleep(time.Second)
	}
	return a, b
}

// TestMRUListAgainstNTPsec feeds Debian's ntpsec the packets of 120
// clients from loopback addresses of its own namespace, then fetches its
// MRU list with `ntpctl mrulist` and with its own `ntpq -c mrulist`: the
// same clients, with the same ports, counts, modes, versions and
// restrictions, and lstint within a second or two (the asker's own entry
// aside: each asks from its own port and adds its own packets).
func TestMRUListAgainstNTPsec(t *testing.T) {
	d := realpeer.StartNTPsec(t)
	const n = 120
	d.FeedClients(t, n, func(i int) ([]byte, int) {
		pkt := make([]byte, 48)
		pkt[0] = byte(3+i%2)<<3 | 3 // version 3 or 4, client
		return pkt, 1 + i%4
	})
	e := ntpsecEnv(d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Small pages: a walk of many requests.
	out, errOut, code := runCmd(t, e, "mrulist", "--frags", "3", "127.0.0.1")
	require.Equal(t, exitOK, code, "%s%s", out, errOut)
	ref, err := d.NTPQ(ctx, "127.0.0.1", "mrulist")
	require.NoError(t, err, ref)
	key := func(rows [][]string) map[string][]string {
		m := map[string][]string{}
		for _, r := range rows {
			if r[10] == "127.0.0.1" {
				continue
			}
			m[r[10]] = r
		}
		return m
	}
	ours, theirs := key(mruRows(t, out)), key(mruRows(t, ref))
	require.Len(t, theirs, n, "ntpq printed:\n%s", ref)
	require.Len(t, ours, n)
	for addr, th := range theirs {
		o, ok := ours[addr]
		if !assert.True(t, ok, "ntpctl lacks %s", addr) {
			continue
		}
		// rstr, r, m, v, count, drop, rport
		for _, col := range []int{2, 3, 4, 5, 6, 8, 9} {
			assert.Equal(t, th[col], o[col], "%s column %d: ntpctl %v, ntpq %v", addr, col, o, th)
		}
		a, _ := strconv.Atoi(o[0])
		b, _ := strconv.Atoi(th[0])
		assert.InDelta(t, b, a, 2, "%s lstint", addr)
	}
	assert.Contains(t, out, "the whole list")

	out, errOut, code = runCmd(t, e, "mrulist", "--json", "127.0.0.1")
	require.Equal(t, exitOK, code, errOut)
	schematest.Validate(t, "ntpctl_mrulist", []byte(out))
	var j report.JSONMRUList
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.True(t, j.Complete)
	assert.Len(t, j.Entries, n+1)
}
