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

// mruResult is a whole MRU list of three clients, one of them IPv6.
func mruResult() ntpctl.Result[ntpctl.MRUResult] {
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	ts := mode6.TimestampOf(t0)
	return ntpctl.Result[ntpctl.MRUResult]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.10:123"), Status: ntpctl.StatusOK, Time: t0,
			Attempts: 2, Packets: 2, Bytes: 700, RequestBytes: 56},
		Value: ntpctl.MRUResult{Nonce: true, Complete: true, Pages: 1, Now: ts + 10<<32, Entries: []mode6.MRUEntry{
			{Addr: netip.MustParseAddrPort("198.51.100.7:40000"), Last: ts - 100<<32, First: ts - 200<<32, Count: 3, Mode: 3, Version: 4},
			{Addr: netip.MustParseAddrPort("[2001:db8::9]:123"), Last: ts, First: ts, Count: 1, Mode: 4, Version: 4, Score: 0.05},
			{Addr: netip.MustParseAddrPort("203.0.113.5:50000"), Last: ts + 5<<32, First: ts - 3600<<32, Count: 10, Mode: 3, Version: 3},
		}},
	}
}

// TestMRURow: a whole list is a row of the MRU report in Shadowserver's
// style, the common columns then its own, with the count of clients and
// never their addresses; a refusal or an empty list is not a row.
func TestMRURow(t *testing.T) {
	res := mruResult()
	row, ok := report.NewMRURow(res, "ntpd ntpsec-1.2.2", enrich.Result{}, report.BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "3", row.Entries)
	assert.Equal(t, "true", row.Complete)
	assert.Equal(t, "low", row.Severity)
	assert.Equal(t, "ntpmru", row.Tag)
	var b bytes.Buffer
	w := report.NewWriter[report.MRURow](&b, report.WriterOptions{})
	require.NoError(t, w.Write(row))
	require.NoError(t, w.Flush())
	assert.Equal(t, `"timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","mru_entries","mru_complete","version","packets","response_size"
"2026-12-03 08:00:00","low","192.0.2.10","udp",123,,"ntpmru",,,,,,,,3,"true","ntpd ntpsec-1.2.2",2,700
`, b.String())
	for _, e := range res.Value.Entries {
		assert.NotContains(t, b.String(), e.Addr.Addr().String(), "a client's address in the CSV")
	}
	back, err := report.NewReader[report.MRURow](strings.NewReader(b.String()), report.ReaderOptions{}).Next()
	require.NoError(t, err)
	assert.Equal(t, row.Values(), back.Values())
	assert.Equal(t, report.MRUColumns(), strings.Split(strings.ReplaceAll(strings.SplitN(b.String(), "\n", 2)[0], `"`, ""), ","))
	assert.Equal(t, report.Scan6NTPMRU, report.MRUTypeOf(netip.MustParseAddr("2001:db8::1")))
	assert.True(t, report.ScanNTPMRU.IsMRU())
	assert.False(t, report.ScanNTPMRU.Known(), "not one of Shadowserver's four")

	res.Value.Complete, res.Status = false, ntpctl.StatusPartial
	row, ok = report.NewMRURow(res, "", enrich.Result{}, report.BuildOptions{})
	require.True(t, ok)
	assert.Equal(t, "false", row.Complete)
	for _, r := range []ntpctl.Result[ntpctl.MRUResult]{
		{Outcome: ntpctl.Outcome{Status: ntpctl.StatusServerError}, Value: ntpctl.MRUResult{Nonce: true}},
		{Outcome: ntpctl.Outcome{Status: ntpctl.StatusOK}, Value: ntpctl.MRUResult{Nonce: true, Complete: true}},
		{Outcome: ntpctl.Outcome{Status: ntpctl.StatusNoAnswer}},
	} {
		_, ok := report.NewMRURow(r, "", enrich.Result{}, report.BuildOptions{})
		assert.False(t, ok, "%v", r.Status)
	}
}

// TestMRURecord: the JSON line counts the clients and never lists them;
// MRUEntries gives them newest first, with ntpq's lstint and avgint,
// for a caller that may keep them.
func TestMRURecord(t *testing.T) {
	res := mruResult()
	rec := report.NewRecord(&res, enrich.Result{})
	assert.Equal(t, report.ScanNTPMRU, rec.Report)
	assert.True(t, rec.Reportable)
	require.NotNil(t, rec.MRU)
	assert.Equal(t, 3, rec.MRU.Entries)
	assert.Empty(t, rec.MRU.Clients)
	var b bytes.Buffer
	require.NoError(t, report.NewJSONWriter(&b).Write(&rec))
	for _, e := range res.Value.Entries {
		assert.NotContains(t, b.String(), e.Addr.Addr().String(), "a client's address in the JSON line")
	}
	clients := report.MRUEntries(&res.Value, res.Time)
	require.Len(t, clients, 3)
	c := clients[0]
	assert.Equal(t, "203.0.113.5", c.IP)
	assert.Equal(t, int64(5), c.LstInt, "to now=, 10 s after t0")
	assert.InDelta(t, 3605.0/9, c.AvgInt, 1e-6)
	assert.Equal(t, "2001:db8::9", clients[1].IP)
	assert.Zero(t, clients[1].AvgInt)
	assert.Equal(t, int64(110), clients[2].LstInt)

	res.Status, res.Err = ntpctl.StatusServerError, mode6.ServerError(1)
	res.Value = ntpctl.MRUResult{Nonce: true, Err: mode6.ServerError(1)}
	rec = report.NewRecord(&res, enrich.Result{})
	require.NotNil(t, rec.MRU)
	require.NotNil(t, rec.MRU.ErrorCode)
	assert.Equal(t, 1, *rec.MRU.ErrorCode, "CERR_PERMISSION: restrict nomrulist")
	assert.False(t, rec.Reportable)
}
