package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ntpctl/ntpctl/report"
	"github.com/ntpctl/ntpctl/report/api"
	"github.com/ntpctl/ntpctl/report/store"
)

// A store served as Shadowserver's Reports API, and the package's client
// listing and downloading a constituency's reports from it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "api-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, filepath.Join(dir, "reports.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	cs, _ := store.ParseConstituencies([]byte(`
constituencies:
  - name: example_net
    asns: [64496]
    api: {key: KEY123, secret: s3cr3t}
`))
	// A report received for 2026-11-30 (or a scanner's output directory,
	// with st.ImportDir).
	var csv bytes.Buffer
	w := report.NewWriter[report.VersionRow](&csv, report.WriterOptions{})
	w.Write(report.VersionRow{Common: report.Common{Timestamp: "2026-11-30 06:00:00", Severity: "medium", IP: "192.0.2.1",
		Protocol: "udp", Port: "123", Tag: "ntpversion", ASN: "64496", Geo: "NL"}, Version: "ntpd 4.2.8p15", Amplification: "35.00"})
	w.Flush()
	if _, err := st.ImportCSV(ctx, &csv, "2026-11-30-scan_ntp-received.csv", store.CSVOptions{ImportOptions: store.ImportOptions{Constituencies: cs}}); err != nil {
		fmt.Println(err)
		return
	}
	srv, err := api.NewServer(st, cs, api.ServerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/api2/", srv.API())
	mux.Handle("/dl/", srv.Downloads())
	hs := httptest.NewServer(mux)
	defer hs.Close()

	c := &api.Client{BaseURL: hs.URL + "/api2/", DownloadURL: hs.URL + "/dl/", Key: "KEY123", Secret: "s3cr3t"}
	subs, err := c.Subscribed(ctx)
	fmt.Println(subs, err)
	list, err := c.List(ctx, api.ListRequest{Date: "2026-11-29:2026-12-01"})
	fmt.Println(len(list), err)
	for _, e := range list {
		var b bytes.Buffer
		name, err := c.Download(ctx, e.ID, &b)
		fmt.Println(name, bytes.Count(b.Bytes(), []byte("\n")), err)
	}
	// Output:
	// [example_net] <nil>
	// 1 <nil>
	// 2026-11-30-scan_ntp-example_net-asn.csv 2 <nil>
}
