package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkLoad serves a store of NTPCTL_BENCH_ROWS rows (100,000 by
// default; the figure is for 1,000,000), two days of half of
// them each, to 200 concurrent clients on loopback for
// NTPCTL_BENCH_LOAD_SECONDS (10): each client alternates reports/list
// (signed, for a key of two constituencies) and a download of a
// 256-row report. It fails on any error, and reports the p50 and p99
// latencies of each and the calls per second. The key's rate and
// in-flight limits are lifted: this measures the server, not the limits.
func BenchmarkLoad(b *testing.B) {
	n := envInt("NTPCTL_BENCH_ROWS", 100000)
	secs := envInt("NTPCTL_BENCH_LOAD_SECONDS", 10)
	clients := envInt("NTPCTL_BENCH_CLIENTS", 200)
	ctx := context.Background()
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "load.db")
			if engine == "postgres" {
				dsn = pgDSN(b)
			}
			st, err := store.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cs, err := store.ParseConstituencies([]byte(`
constituencies:
  - name: big_as
    asns: [64496]
    api: {key: LOAD, secret: load}
  - name: small_net
    prefixes: [10.0.1.0/24]
    api: {key: LOAD, secret: load}
`))
			if err != nil {
				b.Fatal(err)
			}
			for day := range 2 {
				started := time.Date(2026, 11, 30+day, 6, 0, 0, 0, time.UTC)
				_, err := st.Import(ctx, store.Run{Source: "load", Started: started, Complete: true, Types: []report.Type{report.ScanNTP},
					Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("10.0.0.0/8"))}}, func(yield func(store.Row, error) bool) {
					for i := range n / 2 {
						v := report.VersionRow{Common: report.Common{Timestamp: started.Format(report.TimeFormat), Severity: "medium",
							IP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Protocol: "udp", Port: "123", Tag: "ntpversion",
							ASN: strconv.Itoa(64496 + i%50), Geo: "NL"}, Version: "ntpd 4.2.8p15", Stratum: "2", ResponseSize: "420", Amplification: "35.00"}
						if !yield(store.VersionRowOf(report.ScanNTP, &v), nil) {
							return
						}
					}
				}, store.ImportOptions{Constituencies: cs})
				if err != nil {
					b.Fatal(err)
				}
			}
			srv, err := api.NewServer(st, cs, api.ServerOptions{Rate: 1e9, Burst: 1 << 30, MaxInFlight: clients})
			if err != nil {
				b.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/api2/", srv.API())
			mux.Handle("/dl/", srv.Downloads())
			hs := httptest.NewServer(mux)
			defer hs.Close()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: time.Minute}
			c := &api.Client{BaseURL: hs.URL + "/api2/", DownloadURL: hs.URL + "/dl/", Key: "LOAD", Secret: "load", HTTP: hc}
			list, err := c.List(ctx, api.ListRequest{Date: "2026-11-30:2026-12-01"})
			if err != nil || len(list) != 4 {
				b.Fatalf("list: %v, %d files", err, len(list))
			}
			var small []string
			for _, e := range list {
				if e.Report == "small_net" {
					small = append(small, e.ID)
				}
			}
			b.ResetTimer()
			var mu sync.Mutex
			var listLat, dlLat []time.Duration
			var errs []error
			deadline := time.Now().Add(time.Duration(secs) * time.Second)
			var wg sync.WaitGroup
			for w := range clients {
				wg.Go(func() {
					var ll, dl []time.Duration
					var fail error
					for i := 0; time.Now().Before(deadline) && fail == nil; i++ {
						start := time.Now()
						if (w+i)%2 == 0 {
							got, err := c.List(ctx, api.ListRequest{Date: "2026-11-30:2026-12-01"})
							if err == nil && len(got) != 4 {
								err = fmt.Errorf("%d files listed", len(got))
							}
							fail = err
							ll = append(ll, time.Since(start))
						} else {
							var body strings.Builder
							_, err := c.Download(ctx, small[i%len(small)], &body)
							if err == nil && strings.Count(body.String(), "\n") != 257 {
								err = fmt.Errorf("download of %d lines", strings.Count(body.String(), "\n"))
							}
							fail = err
							dl = append(dl, time.Since(start))
						}
					}
					mu.Lock()
					listLat, dlLat = append(listLat, ll...), append(dlLat, dl...)
					if fail != nil {
						errs = append(errs, fail)
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			if len(errs) > 0 {
				b.Fatalf("%d clients failed, the first: %v", len(errs), errs[0])
			}
			q := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
			}
			b.ReportMetric(q(listLat, 0.50), "p50-list-ms")
			b.ReportMetric(q(listLat, 0.99), "p99-list-ms")
			b.ReportMetric(q(dlLat, 0.50), "p50-download-ms")
			b.ReportMetric(q(dlLat, 0.99), "p99-download-ms")
			b.ReportMetric(float64(len(listLat)+len(dlLat))/float64(secs), "calls/s")
			b.ReportMetric(0, "errors")
		})
	}
}
