package mail_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/mail"
	"github.com/ntpctl/ntpctl/report/store"
)

// sink keeps the baseline's result.
var sink string

// BenchmarkBuild: one mail with a 20,000-row report zipped, against the
// work no mail of it can skip (deflating the CSV and base64 of the
// result) timed in the same rounds: x-baseline is what building the
// message adds.
func BenchmarkBuild(b *testing.B) {
	var csv bytes.Buffer
	w := report.NewWriter[report.VersionRow](&csv, report.WriterOptions{})
	ip := netip.MustParseAddr("127.60.0.1")
	for i := range 20000 {
		v := report.VersionRow{Common: report.Common{Timestamp: "2026-11-29 06:00:00", Severity: "medium", IP: ip.String(), Protocol: "udp",
			Port: "123", Tag: "ntpversion", ASN: "64500", Geo: "NL", Hostname: fmt.Sprintf("host%d.example.net", i)},
			Version: "ntpd 4.2.8p15@1.3728-o", Amplification: "35.00", System: "Linux/5.10", Stratum: "2"}
		require.NoError(b, w.Write(v))
		ip = ip.Next()
	}
	require.NoError(b, w.Flush())
	opt := mail.MessageOptions{From: "autoreports@reports.example"}
	var build, base time.Duration
	size := 0
	for b.Loop() {
		t0 := time.Now()
		r := &mail.Report{List: "big_net", Type: report.ScanNTP, Day: "2026-11-29", FileName: "2026-11-29-scan_ntp-big_net-asn.csv",
			CSV: csv.Bytes(), Rows: 20000, URL: "https://reports.example/dl/x"}
		msg, _, err := mail.Build([]*mail.Report{r}, []string{"noc@example.net"}, opt)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		f, _ := zw.Create("x.csv")
		f.Write(csv.Bytes())
		zw.Close()
		sink = base64.StdEncoding.EncodeToString(zb.Bytes())
		t2 := time.Now()
		build, base, size = build+t1.Sub(t0), base+t2.Sub(t1), len(msg)
	}
	b.ReportMetric(build.Seconds()/base.Seconds(), "x-baseline")
	b.ReportMetric(float64(csv.Len())*float64(b.N)/build.Seconds()/1e6, "csv-MB/s")
	b.ReportMetric(float64(size), "mail-bytes")
	b.ReportMetric(float64(csv.Len()), "csv-bytes")
}

// BenchmarkDeliver: a day's reports of 200 constituencies, one mail
// each, through a go-smtp relay on loopback, against sending the same
// mails, built beforehand, with Relay.Send alone in the same rounds:
// x-send is what the report queries, the delivery log and the claims
// add to the SMTP exchanges.
func BenchmarkDeliver(b *testing.B) {
	const lists = 200
	var yml strings.Builder
	yml.WriteString("constituencies:\n")
	for i := range lists {
		fmt.Fprintf(&yml, "  - name: c%d\n    asns: [%d]\n    contacts: [noc@c%d.example]\n", i, 64000+i, i)
	}
	cs, err := store.ParseConstituencies([]byte(yml.String()))
	require.NoError(b, err)
	var rows []store.Row
	ip := netip.MustParseAddr("127.61.0.1")
	for i := range lists * 5 {
		v := report.VersionRow{Common: report.Common{Timestamp: "2026-11-29 06:00:00", Severity: "medium", IP: ip.String(), Protocol: "udp",
			Port: "123", Tag: "ntpversion", ASN: fmt.Sprint(64000 + i%lists), Geo: "NL"}, Version: "ntpd 4.2.8p15", Amplification: "35.00"}
		rows = append(rows, store.VersionRowOf(report.ScanNTP, &v))
		ip = ip.Next()
	}
	r := newRelay(b)
	ctx := context.Background()
	var deliver, send time.Duration
	round := 0
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("b%d.db", round)))
		require.NoError(b, err)
		round++
		_, err = st.Import(ctx, store.Run{Source: "bench", Started: time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC), Complete: true,
			Types: store.TypesOf("version"), Space: []ntpctl.Range{ntpctl.RangeOf(netip.MustParsePrefix("127.61.0.0/16"))}},
			func(yield func(store.Row, error) bool) {
				for _, row := range rows {
					if !yield(row, nil) {
						return
					}
				}
			}, store.ImportOptions{Constituencies: cs})
		require.NoError(b, err)
		before := len(r.mails())
		b.StartTimer()
		t0 := time.Now()
		res, err := mail.Deliver(ctx, st, cs, "2026-11-29", mail.Options{MessageOptions: mail.MessageOptions{From: "autoreports@reports.example"},
			Relay: &mail.Relay{Addr: r.addr}, DownloadURL: "https://reports.example/dl/"})
		deliver += time.Since(t0)
		if err != nil || res.Sent != lists {
			b.Fatalf("%d sent, %v", res.Sent, err)
		}
		b.StopTimer()
		got := r.mails()[before:]
		b.StartTimer()
		t1 := time.Now()
		relay := &mail.Relay{Addr: r.addr}
		sem := make(chan struct{}, 4) // Deliver's concurrency
		errs := make(chan error, len(got))
		for _, m := range got {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				_, err := relay.Send(ctx, m.from, m.to, m.data)
				errs <- err
			}()
		}
		for range got {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		send += time.Since(t1)
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(lists)*float64(b.N)/deliver.Seconds(), "mails/s")
	b.ReportMetric(deliver.Seconds()/send.Seconds(), "x-send")
}
