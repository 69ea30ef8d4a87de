package report_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/report"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccessibleRow: a Mode 4 reply is a row of the Accessible NTP
// report, the common columns then the reply's header as ntpq shows it;
// a kiss-o'-death, a reply of another mode and silence are not rows, and
// a stratum 1 refid from the network keeps only printable ASCII.
func TestAccessibleRow(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	ts := mode6.TimestampOf(t0)
	res := ntpctl.Result[ntpctl.TimePacket]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.10:123"), Status: ntpctl.StatusOK, Time: t0,
			Attempts: 1, Packets: 1, Bytes: 48, RequestBytes: 48},
		Value: ntpctl.TimePacket{Version: 4, Mode: 4, Stratum: 2, Poll: 6, Precision: -23, RootDelay: 0x0000_8000,
			RootDispersion: 0x0001_0000, RefID: [4]byte{203, 0, 113, 9}, Reference: ts - 30<<32, Transmit: ts},
	}
	row, ok := report.NewAccessibleRow(res, enrich.Result{ASN: enrich.ASN{Number: 64500}}, report.BuildOptions{})
	require.True(t, ok)
	var b bytes.Buffer
	w := report.NewWriter[report.AccessibleRow](&b, report.WriterOptions{})
	require.NoError(t, w.Write(row))
	require.NoError(t, w.Flush())
	assert.Equal(t, `"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","ntp_version","leap","stratum","poll","precision","rootdelay","rootdispersion","refid","reference_time","response_size"
"2026-12-03 08:00:00","info","192.0.2.10","udp",123,,"ntp",64500,,,,,,,4,0,2,6,"-23","500.000","1000.000","203.0.113.9","2026-12-03 07:59:30",48
`, b.String())
	back, err := report.NewReader[report.AccessibleRow](strings.NewReader(b.String()), report.ReaderOptions{}).Next()
	require.NoError(t, err)
	assert.Equal(t, row.Values(), back.Values())
	assert.Equal(t, report.AccessibleColumns(), strings.Split(strings.ReplaceAll(strings.SplitN(b.String(), "\n", 2)[0], `"`, ""), ","))
	assert.Equal(t, report.Scan6NTPAccessible, report.AccessibleTypeOf(netip.MustParseAddr("2001:db8::1")))
	assert.Equal(t, report.ScanNTPAccessible, report.TypeOf[ntpctl.TimePacket](netip.MustParseAddr("::ffff:192.0.2.1")))
	assert.True(t, report.ScanNTPAccessible.IsAccessible())
	assert.False(t, report.ScanNTPAccessible.Known(), "not one of Shadowserver's four")

	gps := res
	gps.Value.Stratum, gps.Value.RefID, gps.Value.Reference = 1, [4]byte{'G', 0x1b, '"', 0xff}, 0
	row, ok = report.NewAccessibleRow(gps, enrich.Result{}, report.BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, `G?"?`, row.RefID, "a terminal escape and a high octet from the network")
	assert.Empty(t, row.ReferenceTime, "never set")

	for name, r := range map[string]ntpctl.Result[ntpctl.TimePacket]{
		"kiss":      {Outcome: ntpctl.Outcome{Status: ntpctl.StatusServerError, Err: ntpctl.KissError("RATE")}, Value: ntpctl.TimePacket{Mode: 4}},
		"mode 5":    {Outcome: ntpctl.Outcome{Status: ntpctl.StatusOK}, Value: ntpctl.TimePacket{Mode: 5}},
		"no_answer": {Outcome: ntpctl.Outcome{Status: ntpctl.StatusNoAnswer}},
	} {
		_, ok := report.NewAccessibleRow(r, enrich.Result{}, report.BuildOptions{})
		assert.False(t, ok, name)
		assert.False(t, report.Reportable(&r), name)
	}

	rec := report.NewRecord(&res, enrich.Result{})
	require.NotNil(t, rec.Server)
	assert.Equal(t, "203.0.113.9", rec.Server.RefID)
	assert.InDelta(t, 500.0, rec.Server.RootDelayMs, 1e-9)
	require.NotNil(t, rec.Server.Reference)
	assert.Equal(t, t0.Add(-30*time.Second), *rec.Server.Reference)
	assert.True(t, rec.Reportable)
}

// TestSplitAccessible: the splitter names IPv6 rows of the new reports
// with their scan6_ type.
func TestSplitAccessible(t *testing.T) {
	dir := t.TempDir()
	sp, err := report.NewSplitter[report.AccessibleRow](dir, report.SplitByASN, report.SplitOptions{Date: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.NoError(t, sp.Write(report.AccessibleRow{Common: report.Common{IP: "2001:db8::1", ASN: "64500"}}))
	require.NoError(t, sp.Close())
	files := sp.Files()
	require.Len(t, files, 1)
	assert.Contains(t, files[0], "-scan6_ntpaccessible-")
}
