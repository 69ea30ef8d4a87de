package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

// Two keys: KEY123 reads example_net (AS 64496), KEY456 reads other_org
// (Germany) and de_hosts (a prefix). Host 127.42.0.3 is in both.
const testConstituencies = `
constituencies:
  - name: example_net
    asns: [64496]
    api: {key: KEY123, secret: s3cr3t}
  - name: other_org
    countries: [DE]
    api: {key: KEY456, secret: other}
  - name: de_hosts
    prefixes: [127.42.1.0/24]
    api: {key: KEY456, secret: other}
`

type testHost struct {
	ip, asn, geo string
}

var testHosts = []testHost{
	{"127.42.0.1", "64496", "NL"},
	{"127.42.0.2", "64496", "NL"},
	{"127.42.0.3", "64496", "DE"},
	{"127.42.1.4", "64497", "DE"},
}

var testDays = []string{"2026-11-29", "2026-11-30", "2026-12-01"}

// newStore imports three days: every host answers READVAR each day, and
// 127.42.0.1 also answers monlist on the last day.
func newStore(t testing.TB) (*store.Store, *store.Constituencies, []int64) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cs, err := store.ParseConstituencies([]byte(testConstituencies))
	require.NoError(t, err)
	var ids []int64
	for i, day := range testDays {
		started, err := time.Parse(time.DateOnly, day)
		require.NoError(t, err)
		started = started.Add(6 * time.Hour)
		var rows []store.Row
		for _, h := range testHosts {
			v := report.VersionRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium", IP: h.ip,
				Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: h.asn, Geo: h.geo},
				Version: "ntpd 4.2.8p15", Stratum: "2", ResponseSize: "420", Amplification: "35.00"}
			rows = append(rows, store.VersionRowOf(report.ScanNTP, &v))
		}
		if i == 2 {
			m := report.MonitorRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium", IP: "127.42.0.1",
				Protocol: "udp", Port: "123", ASN: "64496", Geo: "NL"}, Packets: "100", ResponseSize: "44000", Amplification: "5500.00"}
			rows = append(rows, store.MonitorRowOf(report.ScanNTPMonitor, &m))
		}
		run := store.Run{Source: "test " + day, Started: started, Finished: started.Add(time.Minute), Complete: true,
			Types: store.TypesOf("monitor", "version"), Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("127.42.0.0/23"))}}
		res, err := st.Import(ctx, run, func(yield func(store.Row, error) bool) {
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
		}, store.ImportOptions{Constituencies: cs})
		require.NoError(t, err)
		ids = append(ids, res.Run.ID)
	}
	return st, cs, ids
}

type testServer struct {
	*httptest.Server
	st  *store.Store
	ids []int64
}

func newServer(t testing.TB, opt api.ServerOptions) *testServer {
	st, cs, ids := newStore(t)
	if opt.Now == nil {
		opt.Now = func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }
	}
	s, err := api.NewServer(st, cs, opt)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api2/", s.API())
	mux.Handle("/dl/", s.Downloads())
	mux.Handle("/stats/", s.Pages())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testServer{srv, st, ids}
}

// post sends body as it is, with the given HMAC2 header (none if "").
func (ts *testServer) post(t testing.TB, method, body, sig string) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api2/"+method, strings.NewReader(body))
	require.NoError(t, err)
	if sig != "" {
		req.Header.Set("HMAC2", sig)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func (ts *testServer) report(t testing.TB, run int64, typ report.Type, c string) string {
	var b bytes.Buffer
	_, err := ts.st.WriteReport(context.Background(), &b, store.ReportQuery{RunID: run, Type: typ, Constituency: c})
	require.NoError(t, err)
	return b.String()
}

// TestGoldenVector replays IntelMQ's collector: its exact bytes, no
// Content-Type, then one GET per file in list order, without a key.
func TestGoldenVector(t *testing.T) {
	ts := newServer(t, api.ServerOptions{})
	body := `{ "apikey": "KEY123" ,"date": "2026-11-29:2026-12-01" ,"reports": ["example_net"]}`
	require.Len(t, body, 82)
	status, b := ts.post(t, "reports/list", body, "c68d52f28e2591b83a9f7414532b19767eb2b92049db2ff8dc83d7d0a23af396")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var list []api.Entry
	require.NoError(t, json.Unmarshal(b, &list))
	var files []string
	for _, e := range list {
		files = append(files, e.File)
		assert.Equal(t, "example_net", e.Report)
		assert.Regexp(t, `^[0-9a-f]{32}$`, e.ID)
		assert.Equal(t, e.File[:10], e.Timestamp)
	}
	assert.Equal(t, []string{
		"2026-11-29-scan_ntp-example_net-asn.csv",
		"2026-11-30-scan_ntp-example_net-asn.csv",
		"2026-12-01-scan_ntp-example_net-asn.csv",
		"2026-12-01-scan_ntpmonitor-example_net-asn.csv",
	}, files)
	for i, e := range list {
		res, err := http.Get(ts.URL + "/dl/" + e.ID)
		require.NoError(t, err)
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "attachment; filename="+e.File, res.Header.Get("Content-Disposition"), "unquoted, nothing after it")
		run := ts.ids[min(i, 2)]
		assert.Equal(t, ts.report(t, run, report.Type(e.Type), "example_net"), string(got))
		lines := 1 + 3 // the header and the 3 hosts of AS 64496
		if e.Type == "scan_ntpmonitor" {
			lines = 1 + 1
		}
		assert.Equal(t, lines, strings.Count(string(got), "\n"))
	}
	// The same list again: the same ids.
	_, b2 := ts.post(t, "reports/list", body, "c68d52f28e2591b83a9f7414532b19767eb2b92049db2ff8dc83d7d0a23af396")
	assert.Equal(t, string(b), string(b2))
}

// TestErrors: every refusal is a status other than 200 with an error
// object, and a key never sees another key's reports.
func TestErrors(t *testing.T) {
	ts := newServer(t, api.ServerOptions{MaxBody: 1024})
	good := `{"apikey":"KEY123","date":"2026-11-29:2026-12-01"}`
	for _, tc := range []struct {
		name, method, body, sig string
		status                  int
		msg                     string
	}{
		{"bad HMAC", "reports/list", good, sign("wrong", good), 401, "access denied"},
		{"no HMAC", "reports/list", good, "", 401, "access denied"},
		{"HMAC not hex", "reports/list", good, "zz", 401, "access denied"},
		{"unknown key", "reports/list", `{"apikey":"NOPE"}`, sign("s3cr3t", `{"apikey":"NOPE"}`), 401, "access denied"},
		{"no key", "reports/list", `{}`, sign("s3cr3t", `{}`), 401, "missing apikey"},
		{"replayed with another key", "reports/list", strings.Replace(good, "KEY123", "KEY456", 1), sign("s3cr3t", good), 401, "access denied"},
		{"body over the limit", "reports/list", `{"apikey":"KEY123","x":"` + strings.Repeat("a", 2000) + `"}`, "00", 413, "request body over"},
		{"not JSON", "reports/list", `apikey=KEY123`, sign("s3cr3t", `apikey=KEY123`), 400, "JSON object"},
		{"not an object", "reports/list", `[1]`, sign("s3cr3t", `[1]`), 400, "JSON object"},
		{"unknown method", "reports/nope", good, sign("s3cr3t", good), 404, "no such method"},
		{"another key's report", "reports/list", `{"apikey":"KEY123","reports":["other_org"]}`, sign("s3cr3t", `{"apikey":"KEY123","reports":["other_org"]}`), 403, "not subscribed"},
		{"bad date", "reports/list", `{"apikey":"KEY123","date":"yesterday"}`, sign("s3cr3t", `{"apikey":"KEY123","date":"yesterday"}`), 400, "date"},
		{"bad type", "reports/list", `{"apikey":"KEY123","type":"scan_dns"}`, sign("s3cr3t", `{"apikey":"KEY123","type":"scan_dns"}`), 400, "unknown report type"},
		{"query without an attribute", "reports/query", `{"apikey":"KEY123","query":{}}`, sign("s3cr3t", `{"apikey":"KEY123","query":{}}`), 400, "No supported report filters found"},
		{"query of a date only", "reports/query", `{"apikey":"KEY123","query":{"date":"2026-11-29"}}`, sign("s3cr3t", `{"apikey":"KEY123","query":{"date":"2026-11-29"}}`), 400, "No supported report filters found"},
		{"query of an unknown attribute", "reports/query", `{"apikey":"KEY123","query":{"colour":"red"}}`, sign("s3cr3t", `{"apikey":"KEY123","query":{"colour":"red"}}`), 400, "no such attribute"},
		{"query of a bad address", "reports/query", `{"apikey":"KEY123","query":{"ip":"10.0.0.300"}}`, sign("s3cr3t", `{"apikey":"KEY123","query":{"ip":"10.0.0.300"}}`), 400, "no address"},
		{"schema of no type", "reports/schema", `{"apikey":"KEY123"}`, sign("s3cr3t", `{"apikey":"KEY123"}`), 400, "unknown report type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := ts.post(t, tc.method, tc.body, tc.sig)
			assert.Equal(t, tc.status, status, "%s", b)
			var e map[string]string
			require.NoError(t, json.Unmarshal(b, &e), "%s", b)
			assert.Contains(t, e["error"], tc.msg)
		})
	}
	res, err := http.Get(ts.URL + "/api2/reports/list")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	for _, id := range []string{"", "x", strings.Repeat("0", 32), "../../etc/passwd"} {
		res, err := http.Get(ts.URL + "/dl/" + id)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusNotFound, res.StatusCode, id)
	}
}

func TestRateLimit(t *testing.T) {
	ts := newServer(t, api.ServerOptions{Rate: 1, Burst: 2})
	body := `{"apikey":"KEY123"}`
	var statuses []int
	for range 3 {
		status, _ := ts.post(t, "test/ping", body, sign("s3cr3t", body))
		statuses = append(statuses, status)
	}
	assert.Equal(t, []int{200, 200, 429}, statuses)
	// Another key has its own budget.
	body = `{"apikey":"KEY456"}`
	status, _ := ts.post(t, "test/ping", body, sign("other", body))
	assert.Equal(t, 200, status)
}

// TestGuessing: failed attempts on a key are bounded; once spent, the
// key's requests are refused unverified, a right guess included.
func TestGuessing(t *testing.T) {
	ts := newServer(t, api.ServerOptions{Operator: operator})
	body := `{"apikey":"KEY456"}`
	statuses := map[int]int{}
	for range 12 {
		status, _ := ts.post(t, "test/ping", body, sign("guess", body))
		statuses[status]++
	}
	assert.Equal(t, map[int]int{401: 10, 429: 2}, statuses)
	status, _ := ts.post(t, "test/ping", body, sign("other", body))
	assert.Equal(t, 429, status, "a right guess after too many wrong ones")
	// An unknown key is treated alike: its answers do not tell it apart.
	body = `{"apikey":"NOBODY"}`
	statuses = map[int]int{}
	for range 12 {
		status, _ := ts.post(t, "test/ping", body, sign("guess", body))
		statuses[status]++
	}
	assert.Equal(t, map[int]int{401: 10, 429: 2}, statuses)
	// KEY123 is not locked, and logins count against the same budget.
	body = `{"apikey":"KEY123"}`
	status, _ = ts.post(t, "test/ping", body, sign("s3cr3t", body))
	assert.Equal(t, 200, status)
	logins := map[int]int{}
	for range 11 {
		res, err := http.PostForm(ts.URL+"/stats/login", url.Values{"key": {"operator"}, "secret": {"guess"}})
		require.NoError(t, err)
		res.Body.Close()
		logins[res.StatusCode]++
	}
	assert.Equal(t, map[int]int{401: 10, 429: 1}, logins)
	res, err := http.PostForm(ts.URL+"/stats/login", url.Values{"key": {"operator"}, "secret": {operator.Secret}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 429, res.StatusCode)
}

// TestClient: the package's client against its own server, every
// method, and a key seeing only its own constituencies.
func TestClient(t *testing.T) {
	ts := newServer(t, api.ServerOptions{})
	ctx := context.Background()
	c := &api.Client{BaseURL: ts.URL + "/api2/", DownloadURL: ts.URL + "/dl/", Key: "KEY456", Secret: "other"}
	pong, err := c.Ping(ctx)
	require.NoError(t, err)
	assert.Equal(t, "2026-12-01 12:00:00", pong)
	subs, err := c.Subscribed(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"other_org", "de_hosts"}, subs)
	var info []api.KeyInfo
	require.NoError(t, c.Call(ctx, "key/info", nil, &info))
	require.Len(t, info, 1)
	assert.Equal(t, "KEY456", info[0].Key)

	list, err := c.List(ctx, api.ListRequest{Date: "2026-12-01", Types: []string{"scan_ntp", "scan_ntpmonitor"}})
	require.NoError(t, err)
	var files []string
	for _, e := range list {
		files = append(files, e.File)
	}
	// Host 127.42.0.1 (monitor) is in AS 64496 only: no monitor report.
	assert.Equal(t, []string{"2026-12-01-scan_ntp-other_org-geo.csv", "2026-12-01-scan_ntp-de_hosts-ip.csv"}, files)
	for _, e := range list {
		var b bytes.Buffer
		name, err := c.Download(ctx, e.ID, &b)
		require.NoError(t, err)
		assert.Equal(t, e.File, name)
		assert.Equal(t, ts.report(t, ts.ids[2], report.ScanNTP, e.Report), b.String())
	}
	// "type" as a string, as older clients send it, and "report".
	var one []api.Entry
	require.NoError(t, c.Call(ctx, "reports/list", map[string]any{"date": "2026-11-29", "type": "scan_ntp", "report": "de_hosts"}, &one))
	require.Len(t, one, 1)
	assert.Equal(t, "2026-11-29-scan_ntp-de_hosts-ip.csv", one[0].File)

	var types []string
	require.NoError(t, c.Call(ctx, "reports/types", nil, &types))
	assert.Equal(t, []string{"scan_ntp"}, types, "KEY456 has no monitor rows")

	// Queries: only the key's constituencies' rows.
	rows, err := c.Query(ctx, api.QueryRequest{Query: map[string]any{"ip": "127.42.0.1"}})
	require.NoError(t, err)
	assert.Empty(t, rows, "127.42.0.1 belongs to example_net only")
	rows, err = c.Query(ctx, api.QueryRequest{Query: map[string]any{"ip": "127.42.0.0/16"}, Date: "2026-11-30:2026-12-01", Sort: "descending"})
	require.NoError(t, err)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprint(r["timestamp"], " ", r["ip"], " ", r["type"]))
	}
	assert.Equal(t, []string{
		"2026-12-01 06:00:00 127.42.0.3 scan_ntp", "2026-12-01 06:00:00 127.42.1.4 scan_ntp",
		"2026-11-30 06:00:00 127.42.0.3 scan_ntp", "2026-11-30 06:00:00 127.42.1.4 scan_ntp",
	}, got)
	rows, err = c.Query(ctx, api.QueryRequest{Query: map[string]any{"asn": 64497}, Limit: 1, Page: 2})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, "2026-11-30 06:00:00", rows[0]["timestamp"], "the second page of one row")
	rows, err = c.Query(ctx, api.QueryRequest{Query: map[string]any{"geo": "de", "version": "ntpd 4.2.8p15"}, Date: "2026-11-29"})
	require.NoError(t, err)
	assert.Len(t, rows, 2)
	var facet map[string]int
	require.NoError(t, c.Call(ctx, "reports/query", map[string]any{"query": map[string]any{"geo": "DE"}, "facet": "asn"}, &facet))
	assert.Equal(t, map[string]int{"64496": 3, "64497": 3}, facet)

	var table [][]any
	require.NoError(t, c.Call(ctx, "reports/stats", map[string]any{"date": "2026-11-29:2026-11-30", "report": "other_org"}, &table))
	assert.Equal(t, [][]any{{"date", "report", "type", "total"},
		{"2026-11-29", "other_org", "scan_ntp", 2.0}, {"2026-11-30", "other_org", "scan_ntp", 2.0}}, table)

	var sch map[string]any
	require.NoError(t, c.Call(ctx, "reports/schema", map[string]any{"type": "scan_ntpmonitor"}, &sch))
	assert.Contains(t, sch["required"], "packets")

	bad := *c
	bad.Secret = "wrong"
	_, err = bad.Ping(ctx)
	assert.ErrorIs(t, err, api.ErrAccessDenied)
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 401, ae.Status)
}

func TestRevoke(t *testing.T) {
	ts := newServer(t, api.ServerOptions{})
	ctx := context.Background()
	c := &api.Client{BaseURL: ts.URL + "/api2", DownloadURL: ts.URL + "/dl", Key: "KEY123", Secret: "s3cr3t"}
	list, err := c.List(ctx, api.ListRequest{Date: "2026-11-29"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NoError(t, ts.st.Revoke(ctx, list[0].ID))
	_, err = c.Download(ctx, list[0].ID, io.Discard)
	var ae *api.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusNotFound, ae.Status)
	list, err = c.List(ctx, api.ListRequest{Date: "2026-11-29"})
	require.NoError(t, err)
	assert.Empty(t, list, "a revoked file is not listed again")
}

func TestKeyConflict(t *testing.T) {
	st, _, _ := newStore(t)
	cs, err := store.ParseConstituencies([]byte(`
constituencies:
  - name: a
    asns: [1]
    api: {key: K, secret: one}
  - name: b
    asns: [2]
    api: {key: K, secret: two}
`))
	require.NoError(t, err)
	_, err = api.NewServer(st, cs, api.ServerOptions{})
	assert.ErrorIs(t, err, api.ErrKeyConflict)
}
