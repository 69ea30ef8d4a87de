package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

var probeTime = time.Date(2026, 3, 24, 1, 2, 3, 456e6, time.FixedZone("CET", 3600))

func monitorResult() ntpctl.Result[mode7.Reply] {
	return ntpctl.Result[mode7.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.20:123"), Status: ntpctl.StatusOK,
			Time: probeTime, Attempts: 1, RTT: 1500 * time.Microsecond, Packets: 2, Bytes: 520, RequestBytes: 48},
		Value: mode7.Reply{
			ReassemblyStats: mode7.ReassemblyStats{Packets: 2, Bytes: 520, Accepted: 2},
			Impl:            3, Code: 42, Version: 2, ItemSize: 72, LastSeq: 1, Complete: true,
			Entries: []mode7.MonitorEntry{
				{Addr: netip.MustParseAddr("198.51.100.1"), LocalAddr: netip.MustParseAddr("192.0.2.20"), Port: 40000, Mode: 3, Version: 4, Count: 12},
				{Addr: netip.MustParseAddr("2001:db8::5"), Port: 123, Mode: 7, Version: 2, Count: 1},
			},
		},
	}
}

func versionResult() ntpctl.Result[mode6.Reply] {
	text := []byte(`version="ntpd 4.2.8p15@1.3728-o", processor="x86_64", system="Linux", leap=0, stratum=2, precision=-23, rootdelay=1.234, rootdisp=5.678, refid=192.0.2.1, reftime=0xe1198a1c.5f3e1b2a, clock=0xe1198eeb.21e18ad4, peer=1234, tc=10, mintc=3, offset=-0.012, frequency=-11.962, sys_jitter=0.191, clk_jitter=0.2, clk_wander=0.004, tai=37, leapsec=201701010000, expire=202706280000`)
	vars, ps := mode6.ParseVars(text)
	return ntpctl.Result[mode6.Reply]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("[::ffff:198.51.100.7]:123"), Status: ntpctl.StatusOK,
			Time: probeTime, Attempts: 1, Packets: 1, Bytes: 468, RequestBytes: 12},
		Value: mode6.Reply{ReassemblyStats: mode6.ReassemblyStats{Packets: 1, Bytes: 468, Fragments: 1},
			Op: mode6.OpReadVar, Data: text, Complete: true, Version: 2, Vars: vars, Parse: ps},
	}
}

var fullEnrich = enrich.Result{
	Names: []string{"ntp1.example.net", "alias.example.net"},
	ASN:   enrich.ASN{Number: 64496, Name: "EXAMPLE-AS", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE"},
	Geo:   enrich.Geo{Country: "de", Region: "Hessen", City: "Frankfurt am Main", Latitude: 50.1, Longitude: 8.7, HasCoordinates: true},
	Abuse: enrich.Abuse{Email: "abuse@example.net"}, NAICS: 517311, Sector: "Communications, Service Provider, and Hosting Service",
}

func TestNewMonitorRow(t *testing.T) {
	row, ok := NewMonitorRow(monitorResult(), fullEnrich, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, MonitorRow{
		Common: Common{
			Timestamp: "2026-03-24 00:02:03", Severity: "medium", IP: "192.0.2.20", Protocol: "udp",
			Port: "123", Hostname: "ntp1.example.net", ASN: "64496", Geo: "DE", Region: "HESSEN",
			City: "FRANKFURT AM MAIN", NAICS: "517311", HostnameSource: "ptr",
			Sector: "Communications, Service Provider, and Hosting Service",
		},
		Packets: "2", ResponseSize: "520", Amplification: "10.83",
	}, row)

	// Nothing is invented.
	res := monitorResult()
	res.RequestBytes = 0
	row, ok = NewMonitorRow(res, enrich.Result{}, BuildOptions{Severity: "high", Tag: "monlist"})
	require.True(t, ok)
	assert.Equal(t, MonitorRow{
		Common: Common{
			Timestamp: "2026-03-24 00:02:03", Severity: "high", IP: "192.0.2.20", Protocol: "udp",
			Port: "123", Tag: "monlist",
		},
		Packets: "2", ResponseSize: "520",
	}, row)

	for _, st := range []ntpctl.Status{ntpctl.StatusNoAnswer, ntpctl.StatusServerError, ntpctl.StatusProtocolError, ntpctl.StatusSendError, ntpctl.StatusBlocked} {
		res := monitorResult()
		res.Status = st
		_, ok := NewMonitorRow(res, fullEnrich, BuildOptions{})
		assert.False(t, ok, "%v", st)
	}
	res = monitorResult()
	res.Status, res.Value.Accepted = ntpctl.StatusPartial, 1
	_, ok = NewMonitorRow(res, fullEnrich, BuildOptions{})
	assert.True(t, ok, "partial")
	res.Value.Accepted = 0
	_, ok = NewMonitorRow(res, fullEnrich, BuildOptions{})
	assert.False(t, ok, "partial without a packet kept")
}

func TestNewVersionRow(t *testing.T) {
	row, ok := NewVersionRow(versionResult(), enrich.Result{}, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, VersionRow{
		Common: Common{
			Timestamp: "2026-03-24 00:02:03", Severity: "medium", IP: "198.51.100.7", Protocol: "udp",
			Port: "123", Tag: "ntpversion",
		},
		Version: "ntpd 4.2.8p15@1.3728-o", ClkWander: "0.004", Clock: "0xe1198eeb.21e18ad4",
		Frequency: "-11.962", Jitter: "0.191", Leap: "0", MinTC: "3", Offset: "-0.012", Peer: "1234",
		Precision: "-23", Processor: "x86_64", RefID: "192.0.2.1", RefTime: "0xe1198a1c.5f3e1b2a",
		RootDelay: "1.234", RootDispersion: "5.678", Stratum: "2", System: "Linux", TAI: "37", TC: "10",
		ResponseSize: "468", Amplification: "39.00",
	}, row)

	for _, st := range []ntpctl.Status{ntpctl.StatusNoAnswer, ntpctl.StatusServerError, ntpctl.StatusProtocolError} {
		res := versionResult()
		res.Status = st
		_, ok := NewVersionRow(res, enrich.Result{}, BuildOptions{})
		assert.False(t, ok, "%v", st)
	}
	res := versionResult()
	res.Value.Vars = nil
	_, ok = NewVersionRow(res, enrich.Result{}, BuildOptions{})
	assert.False(t, ok, "no variables")
	res.Value = mode6.Reply{}
	_, ok = NewVersionRow(res, enrich.Result{}, BuildOptions{})
	assert.False(t, ok, "no reply")
	res = versionResult()
	res.Value.AssocID = 4711
	_, ok = NewVersionRow(res, enrich.Result{}, BuildOptions{})
	assert.False(t, ok, "a peer's variables are not the server's")
}

func TestJSONWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONWriter(&buf)
	mr := monitorResult()
	rec := NewRecord(&mr, fullEnrich)
	require.NoError(t, w.Write(&rec))
	vr := versionResult()
	vr.Status, vr.Err = ntpctl.StatusPartial, errors.New("reply incomplete")
	rec = NewRecord(&vr, enrich.Result{})
	require.NoError(t, w.Write(&rec))
	nr := ntpctl.Result[mode6.Reply]{Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("[2001:db8::9]:123"), Status: ntpctl.StatusNoAnswer, Attempts: 3, RequestBytes: 12}}
	rec = NewRecord(&nr, enrich.Result{})
	require.NoError(t, w.Write(&rec))

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	var m, v, n JSONRecord
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &m))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &v))
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &n))

	assert.Equal(t, ScanNTPMonitor, m.Report)
	assert.Equal(t, ntpctl.StatusOK, m.Status)
	assert.True(t, m.Reportable)
	assert.Equal(t, 1.5, m.RTTms)
	assert.InDelta(t, 520.0/48, m.Amplification, 1e-9)
	require.NotNil(t, m.Monitor)
	require.Len(t, m.Monitor.Entries, 2)
	assert.Equal(t, netip.MustParseAddr("2001:db8::5"), m.Monitor.Entries[1].Addr)
	assert.Equal(t, uint32(12), m.Monitor.Entries[0].Count)
	assert.Equal(t, "abuse@example.net", m.Enrichment.AbuseEmail)
	assert.Equal(t, "192.0.2.0/24", m.Enrichment.ASPrefix)
	require.NotNil(t, m.Enrichment.Latitude)
	assert.True(t, probeTime.Equal(m.Time))

	assert.Equal(t, ScanNTP, v.Report, "an IPv4-mapped target is IPv4")
	assert.Equal(t, netip.MustParseAddr("198.51.100.7"), v.IP)
	assert.Equal(t, ntpctl.StatusPartial, v.Status)
	assert.Equal(t, "reply incomplete", v.Error)
	require.NotNil(t, v.Variables)
	want := versionResult().Value.Vars
	require.Len(t, v.Variables.Vars, len(want))
	for i := range want {
		assert.Equal(t, want[i].Name, v.Variables.Vars[i].Name, "wire order")
		assert.Equal(t, want[i].Value, v.Variables.Vars[i].Value)
	}

	assert.Equal(t, Scan6NTP, n.Report)
	assert.Equal(t, ntpctl.StatusNoAnswer, n.Status)
	assert.Contains(t, lines[2], `"status":"no_answer"`)
	assert.Contains(t, lines[0], `"time":"2026-03-24T00:02:03.456Z"`, "UTC, RFC 3339")
	assert.False(t, n.Reportable)
	assert.Nil(t, n.Variables)
	assert.Equal(t, 3, n.Attempts)
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Type
		err  error
	}{
		{"2024-07-04-scan_ntp-123-sample-asn.csv", ScanNTP, nil},
		{"/var/spool/2019-01-01-scan_ntp-test-geo.csv", ScanNTP, nil},
		{"scan_ntpmonitor.csv", ScanNTPMonitor, nil},
		{"2024-07-04-scan6_ntpmonitor-x.csv", Scan6NTPMonitor, nil},
		{"2024-07-04-scan6_ntp.csv", Scan6NTP, nil},
		{"2024-07-04-dns_openresolver-1.csv", "dns_openresolver", ErrUnknownType},
		{"2024-07-04-scan_ntp-a.b.csv", "", ErrFileName},
		{"2024-07-04-scan_ntp--x.csv", "", ErrFileName},
		{"scan_ntp.txt", "", ErrFileName},
		{"", "", ErrFileName},
	} {
		got, err := TypeFromFileName(tc.name)
		assert.Equal(t, tc.want, got, tc.name)
		if tc.err == nil {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, tc.err, tc.name)
		}
	}
	d := time.Date(2024, 7, 4, 23, 30, 0, 0, time.FixedZone("", -3600))
	assert.Equal(t, "2024-07-05-scan_ntp-as64496.csv", FileName(d, ScanNTP, "as64496"))
	// An empty id would give a name outside the convention: Shadowserver's
	// expression (report-schemas.md §2.2) wants an id after the type.
	assert.Equal(t, "2024-07-05-scan6_ntpmonitor-ntpctl.csv", FileName(d, Scan6NTPMonitor, ""))
	assert.Equal(t, "2024-07-05-scan_ntp-ntpctl.csv", FileName(d, ScanNTP, "--"))
	assert.Equal(t, "2024-07-05-scan_ntp-my_org-de.csv", FileName(d, ScanNTP, "my org--de"))
	shadowserverRE := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}-([^-]+)-.+\.csv$`)
	for _, typ := range []Type{ScanNTP, Scan6NTP, ScanNTPMonitor, Scan6NTPMonitor} {
		for _, id := range []string{"", "x", "a.b/c", "--", "é-ü", "cert-as1", "-"} {
			name := FileName(d, typ, id)
			got, err := TypeFromFileName(name)
			require.NoError(t, err, name)
			assert.Equal(t, typ, got, name)
			m := shadowserverRE.FindStringSubmatch(name)
			require.NotNil(t, m, name)
			assert.Equal(t, string(typ), m[1], name)
		}
	}
}

func TestFilterAndSplit(t *testing.T) {
	rows := versionRows()
	assert.Len(t, Filter(rows, ByPrefix(netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"))), 2)
	assert.Len(t, Filter(rows, ByASN(64496, 64497)), 2)
	assert.Len(t, Filter(rows, ByCountry("de", "NL")), 2)
	assert.Len(t, Filter(rows, AnyOf(ByCountry("US"), ByASN(64500))), 2)
	assert.Empty(t, Filter(rows, ByASN(1)))

	n := 0
	seq := FilterSeq(NewReader[VersionRow](bytes.NewReader(writeRows(t, rows, WriterOptions{})), ReaderOptions{}).All(), ByCountry("DE"))
	for row, err := range seq {
		require.NoError(t, err)
		assert.Equal(t, "DE", row.Geo)
		n++
	}
	assert.Equal(t, 1, n)

	dir := filepath.Join(t.TempDir(), "out")
	paths, err := Split(dir, rows, SplitByASN, SplitOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	assert.Equal(t, []string{
		"2026-03-24-scan6_ntp-as64500.csv", "2026-03-24-scan_ntp-as64496.csv",
		"2026-03-24-scan_ntp-as64497.csv", "2026-03-24-scan_ntp-asunknown.csv",
	}, names)
	for _, p := range paths {
		typ, err := TypeFromFileName(p)
		require.NoError(t, err)
		assert.True(t, typ.IsVersion())
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got, err := ReadAll[VersionRow](bytes.NewReader(b), ReaderOptions{})
		require.NoError(t, err)
		assert.Len(t, got, 1)
	}

	mpaths, err := Split(dir, monitorRows(), SplitByCountry, SplitOptions{Date: probeTime, IDPrefix: "cert-", Type: ScanNTPMonitor})
	require.NoError(t, err)
	names = names[:0]
	for _, p := range mpaths {
		names = append(names, filepath.Base(p))
	}
	assert.Equal(t, []string{"2026-03-24-scan_ntpmonitor-cert-fr.csv", "2026-03-24-scan_ntpmonitor-cert-unknown.csv", "2026-03-24-scan_ntpmonitor-cert-zz.csv"}, names)

	_, err = Split(dir, rows, 0, SplitOptions{})
	assert.ErrorIs(t, err, ErrSplitBy)
	paths, err = Split[VersionRow](dir, nil, SplitByASN, SplitOptions{})
	assert.NoError(t, err)
	assert.Empty(t, paths)
}

func TestStats(t *testing.T) {
	var s Stats
	for _, r := range versionRows() {
		s.AddVersion(&r)
	}
	for _, r := range monitorRows() {
		s.AddMonitor(&r)
	}
	for _, st := range []ntpctl.Status{ntpctl.StatusOK, ntpctl.StatusOK, ntpctl.StatusNoAnswer} {
		s.AddStatus(st)
	}
	sum := s.Summary()
	assert.Equal(t, 7, sum.Rows)
	assert.Equal(t, []Count{{"ok", 2}, {"no_answer", 1}}, sum.Statuses)
	assert.Equal(t, Count{"unknown", 2}, sum.Countries[0])
	assert.Contains(t, sum.Versions, Count{"ntpd 4.2.8p10", 1})
	assert.Contains(t, sum.Versions, Count{"ntpsec 1.2.2", 1})
	assert.Contains(t, sum.Versions, Count{"4", 1})
	d := sum.Amplification
	assert.Equal(t, 6, d.Count)
	assert.Equal(t, 1.67, d.Min)
	assert.Equal(t, 916.67, d.Max)
	assert.Equal(t, 39.00, d.Median)
	assert.Equal(t, 916.67, d.P99)
	total := 0
	for _, b := range d.Buckets {
		total += b.Count
	}
	assert.Equal(t, 6, total)

	var js bytes.Buffer
	require.NoError(t, sum.WriteJSON(&js))
	var back Summary
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, sum, back)

	var txt bytes.Buffer
	require.NoError(t, sum.WriteTextTop(&txt, 2))
	out := txt.String()
	assert.Contains(t, out, "rows")
	assert.Contains(t, out, "more)")
	assert.Contains(t, out, "median")
	require.NoError(t, sum.WriteText(&txt))

	var empty Stats
	require.NoError(t, empty.Summary().WriteText(&txt))
	assert.Equal(t, "unknown", DaemonVersion(""))
	for banner, want := range map[string]string{
		"ntpd 4.2.8p10@1.3728-o Sun Sep 17 20:40:05 UTC 2017 (1)": "ntpd 4.2.8p10",
		"ntpd ntpsec-1.2.2 2023-05-04T09:08:28Z":                  "ntpsec 1.2.2",
		"xntpd 3-5.93e Wed Apr 14 20:23:03 EDT 1999 (1)":          "xntpd 3-5.93e",
		"4":                   "4",
		"something else here": "something else",
	} {
		assert.Equal(t, want, DaemonVersion(banner), banner)
	}
}

// Without SplitOptions.Type, a group of IPv4 and IPv6 rows went into one
// scan_ntp file; Shadowserver reports the families apart (scan6_ntp).
// Two ids FileName makes alike (a hostile geo) overwrote each other.
func TestSplitFamiliesAndCollisions(t *testing.T) {
	rows := monitorRows() // 192.0.2.20 FR AS64496, 198.51.100.99 ZZ, 2001:db8::1 -
	rows[2].ASN, rows[2].Geo = "64496", "FR"
	dir := t.TempDir()
	paths, err := Split(dir, rows, SplitByASN, SplitOptions{})
	require.NoError(t, err)
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	assert.Equal(t, []string{
		"2026-03-24-scan6_ntpmonitor-as64496.csv", "2026-03-24-scan_ntpmonitor-as64496.csv",
		"2026-03-24-scan_ntpmonitor-as64511.csv",
	}, names)
	for _, p := range paths {
		typ, err := TypeFromFileName(p)
		require.NoError(t, err)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got, err := ReadAll[MonitorRow](bytes.NewReader(b), ReaderOptions{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, typ == Scan6NTPMonitor, netip.MustParseAddr(got[0].IP).Is6(), p)
	}

	rows = monitorRows()[:2]
	rows[0].Geo, rows[1].Geo = "D E", "D_E"
	paths, err = Split(t.TempDir(), rows, SplitByCountry, SplitOptions{Type: ScanNTPMonitor})
	require.NoError(t, err)
	require.Len(t, paths, 1)
	assert.Equal(t, "2026-03-24-scan_ntpmonitor-d_e.csv", filepath.Base(paths[0]))
	b, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	got, err := ReadAll[MonitorRow](bytes.NewReader(b), ReaderOptions{})
	require.NoError(t, err)
	require.Len(t, got, 2, "both rows kept, in order")
	assert.Equal(t, "192.0.2.20", got[0].IP)
}

// A PTR name of just "." made an empty hostname with hostname_source
// "ptr": a source for nothing.
func TestBuildRootPTRName(t *testing.T) {
	row, ok := NewMonitorRow(monitorResult(), enrich.Result{Names: []string{"."}}, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "", row.Hostname)
	assert.Equal(t, "", row.HostnameSource)
	row, ok = NewMonitorRow(monitorResult(), enrich.Result{Names: []string{"ntp.example.net."}}, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "ntp.example.net", row.Hostname)
	assert.Equal(t, "ptr", row.HostnameSource)
}

// A result without a valid target made a row with ip "invalid IP" and
// port 0.
func TestBuildInvalidTarget(t *testing.T) {
	res := monitorResult()
	res.Target = netip.AddrPort{}
	row, ok := NewMonitorRow(res, enrich.Result{}, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "", row.IP)
	assert.Equal(t, "", row.Port)
	vres := versionResult()
	vres.Target = netip.AddrPort{}
	vrow, ok := NewVersionRow(vres, enrich.Result{}, BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "", vrow.IP)
	assert.Equal(t, "", vrow.Port)
}

// A monlist target that sent nothing was written with a zero monitor
// reply ("last_seq":0, "complete":false, no entries), which reads as an
// empty reply; the READVAR records leave it out, and so do these now.
// READVAR records carry the reply's text, which the variables alone may
// not reproduce (octets that are not UTF-8, or that parsing dropped).
func TestJSONNoReplyAndData(t *testing.T) {
	res := ntpctl.Result[mode7.Reply]{Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.1:123"),
		Status: ntpctl.StatusNoAnswer, Attempts: 2, RequestBytes: 48}}
	rec := NewRecord(&res, enrich.Result{})
	assert.Nil(t, rec.Monitor)
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"monitor"`)
	mr := monitorResult()
	assert.NotNil(t, NewRecord(&mr, enrich.Result{}).Monitor)

	vr := versionResult()
	vr.Value.Data = append(vr.Value.Data, []byte(`, x="caf`+"\xe9\x00"+`"`)...)
	vr.Value.Vars, vr.Value.Parse = mode6.ParseVars(vr.Value.Data)
	var buf bytes.Buffer
	vrec := NewRecord(&vr, enrich.Result{})
	require.NoError(t, NewJSONWriter(&buf).Write(&vrec))
	var back JSONRecord
	require.NoError(t, json.Unmarshal(buf.Bytes(), &back))
	require.NotNil(t, back.Variables)
	assert.Equal(t, vr.Value.Data, back.Variables.Data)
}

// TestJSONOneBadValue: a value JSON has no form for spoils its record's
// value, not the file: the line is written without it, its error says
// so, the lines around it are whole; and characters a terminal would act
// on are escaped.
func TestJSONOneBadValue(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONWriter(&buf)
	mr := monitorResult()
	good := NewRecord(&mr, fullEnrich)
	nan := math.NaN()
	bad := good
	bad.Amplification = math.Inf(1)
	bad.Enrichment.Latitude, bad.Enrichment.Longitude = &nan, &nan
	bad.Enrichment.City = "A\u009b31m\u202eB"
	for _, rec := range []*JSONRecord{&good, &bad, &good} {
		require.NoError(t, w.Write(rec))
	}
	assert.Equal(t, 1, w.Degraded())
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	var back JSONRecord
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &back))
	assert.Zero(t, back.Amplification)
	assert.Nil(t, back.Enrichment.Latitude)
	assert.Contains(t, back.Error, "could not encode the record in full")
	assert.Equal(t, "A\u009b31m\u202eB", back.Enrichment.City, "decodes to the same string")
	assert.Contains(t, lines[1], `A\u009b31m\u202eB`, "written escaped")
	assert.Equal(t, lines[0], lines[2])
}
