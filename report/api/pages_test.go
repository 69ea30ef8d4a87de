package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

var operator = api.Credentials{ID: "operator", Secret: "op-secret"}

// chromium returns the path of Debian's chromium; without it the test
// skips, or fails under NTPCTL_REAL_PEERS=1 (as CI runs).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("NTPCTL_REAL_PEERS") == "1" {
		t.Fatal("no chromium (NTPCTL_REAL_PEERS=1 requires it: apt-get install chromium)")
	}
	t.Skip("no chromium (apt-get install chromium)")
	return ""
}

// TestPagesInChromium: a real browser signs in with a key, and the
// page's numbers are the store's, for each of the key's constituencies;
// another key's constituency is refused; the operator sees every row.
// Screenshots are kept as test artifacts (go test -artifacts).
func TestPagesInChromium(t *testing.T) {
	exe := chromium(t)
	ts := newServer(t, api.ServerOptions{Operator: operator})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true), chromedp.NoSandbox, chromedp.WindowSize(1200, 1600))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	browse := func(t *testing.T, who api.Credentials) (context.Context, func()) {
		ctx, cancel := chromedp.NewContext(actx)
		ctx, cancel2 := context.WithTimeout(ctx, 60*time.Second)
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/stats/login"),
			chromedp.WaitVisible("#key"),
			chromedp.SendKeys("#key", who.ID),
			chromedp.SendKeys("#secret", who.Secret),
			chromedp.Click("#signin"),
		))
		return ctx, func() { cancel2(); cancel() }
	}
	// table reads a table of the page as rows of cells.
	table := func(t *testing.T, ctx context.Context, sel string) [][]string {
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll(`+jsString(sel+" tr")+`)).map(r => Array.from(r.cells).map(c => c.textContent))`))
		require.NoError(t, err)
		return rows
	}
	shot := func(t *testing.T, ctx context.Context, name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NotEmpty(t, png)
		require.NoError(t, os.WriteFile(filepath.Join(t.ArtifactDir(), name), png, 0o644))
	}
	last := ts.ids[len(ts.ids)-1]
	want := func(t *testing.T, c string, typ report.Type) store.RunStats {
		s, err := ts.st.TypeStats(context.Background(), last, typ, c)
		require.NoError(t, err)
		return s
	}
	counts := func(cs []store.Count, prefix, suffix string) [][]string {
		var out [][]string
		for _, c := range cs {
			out = append(out, []string{prefix + c.Key + suffix, itoa(c.Count)})
		}
		return out
	}

	t.Run("key", func(t *testing.T) {
		ctx, done := browse(t, api.Credentials{ID: "KEY456", Secret: "other"})
		defer done()
		for _, c := range []string{"other_org", "de_hosts"} {
			if c != "other_org" {
				require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/stats/?c="+c)))
			}
			require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible("#type-scan_ntp")))
			name, rows, day := text(t, ctx, "#constituency"), text(t, ctx, `#type-scan_ntp [data-stat="rows"]`), text(t, ctx, `#type-scan_ntp [data-stat="day"]`)
			s := want(t, c, report.ScanNTP)
			assert.Equal(t, c, name)
			assert.Equal(t, "2026-12-01", day)
			assert.Equal(t, itoa(s.Rows[0].Count), rows)
			assert.Equal(t, counts(s.Countries, "", ""), table(t, ctx, `#type-scan_ntp [data-table="countries"]`))
			assert.Equal(t, counts(s.ASNs, "AS", ""), table(t, ctx, `#type-scan_ntp [data-table="asns"]`))
			assert.Equal(t, counts(s.Daemons, "", ""), table(t, ctx, `#type-scan_ntp [data-table="daemons"]`))
			assert.Equal(t, counts(s.Amplification, "", "×"), table(t, ctx, `#type-scan_ntp [data-table="amplification"]`))
			monitor, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#type-scan_ntpmonitor").length`))
			require.NoError(t, err)
			assert.Zero(t, monitor, "KEY456's constituencies have no monitor rows")
			charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg").length`))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, charts, 5)
			shot(t, ctx, c+".png")
		}
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/stats/?c=example_net")))
		assert.Contains(t, text(t, ctx, "body"), "not this key's")
	})
	t.Run("operator", func(t *testing.T) {
		ctx, done := browse(t, operator)
		defer done()
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible("#type-scan_ntpmonitor")))
		name, rows, mon := text(t, ctx, "#constituency"), text(t, ctx, `#type-scan_ntp [data-stat="rows"]`), text(t, ctx, `#type-scan_ntpmonitor [data-stat="rows"]`)
		assert.Equal(t, "all constituencies", name)
		assert.Equal(t, itoa(want(t, "", report.ScanNTP).Rows[0].Count), rows)
		assert.Equal(t, "1", mon)
		nf := table(t, ctx, `[data-table="newfixed"]`)
		assert.Equal(t, [][]string{{"day", "new", "fixed"}, {"2026-11-29", "4", "0"}, {"2026-11-30", "0", "0"}, {"2026-12-01", "1", "0"}}, nf)
		shot(t, ctx, "operator.png")
	})
	t.Run("wrong secret", func(t *testing.T) {
		ctx, done := browse(t, api.Credentials{ID: "KEY456", Secret: "nope"})
		defer done()
		require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible("#error")))
		assert.Contains(t, text(t, ctx, "#error"), "wrong secret")
	})
}

// text is the visible text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	require.NoError(t, err, sel)
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func jsString(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// TestPagesHTTP: the pages without a browser: sign-in required, a
// forged or expired cookie refused, cross-origin sign-in refused, and
// hostile values escaped.
func TestPagesHTTP(t *testing.T) {
	ts := newServer(t, api.ServerOptions{Operator: operator})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.Get(ts.URL + "/stats/")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, ts.URL+"/stats/login", res.Request.URL.String(), "sent to sign in")

	res, err = c.PostForm(ts.URL+"/stats/login", url.Values{"key": {"KEY123"}, "secret": {"s3cr3t"}})
	require.NoError(t, err)
	b := readAll(t, res)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, b, `id="constituency">example_net<`)
	assert.Contains(t, b, `id="type-scan_ntpmonitor"`)
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")

	// A cookie of one's own making is refused.
	u, _ := url.Parse(ts.URL + "/stats/")
	for _, v := range []string{"x", "S0VZNDU2.99999999999.00", jar.Cookies(u)[0].Value + "0"} {
		j2, _ := cookiejar.New(nil)
		j2.SetCookies(u, []*http.Cookie{{Name: "ntpctl_session", Value: v}})
		res, err := (&http.Client{Jar: j2}).Get(ts.URL + "/stats/")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, ts.URL+"/stats/login", res.Request.URL.String(), v)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/stats/login", strings.NewReader("key=KEY123&secret=s3cr3t"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// A hostile banner in the store is text on the page.
	ctx := context.Background()
	started := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	v := report.VersionRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), IP: "127.42.0.1", Protocol: "udp", Port: "123", ASN: "64496", Geo: "NL"},
		Version: `ntpd 4.2.8<script>alert(1)</script><svg onload=alert(2)>`, Amplification: "35.00"}
	cs, err := store.ParseConstituencies([]byte(testConstituencies))
	require.NoError(t, err)
	_, err = ts.st.Import(ctx, store.Run{Started: started, Types: []report.Type{report.ScanNTP}, Complete: true},
		func(yield func(store.Row, error) bool) { yield(store.VersionRowOf(report.ScanNTP, &v), nil) }, store.ImportOptions{Constituencies: cs})
	require.NoError(t, err)
	res, err = c.Get(ts.URL + "/stats/")
	require.NoError(t, err)
	b = readAll(t, res)
	assert.NotContains(t, b, "<script")
	assert.NotContains(t, b, "<svg onload")
	assert.Contains(t, b, "&lt;script&gt;")
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	var b strings.Builder
	_, err := io.Copy(&b, res.Body)
	require.NoError(t, err)
	return b.String()
}
