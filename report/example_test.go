package report_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
	"github.com/ntpctl/ntpctl/report"
)

// Build an NTP Monitor row from a monlist result and write the report as
// Shadowserver does: digits bare, everything else quoted.
func ExampleWriter() {
	res := ntpctl.Result[mode7.Reply]{
		Outcome: ntpctl.Outcome{
			Target: netip.MustParseAddrPort("192.0.2.20:123"),
			Status: ntpctl.StatusOK,
			Time:   time.Date(2026, 3, 24, 2, 0, 0, 0, time.UTC),
			// The request was 48 octets, the two reply packets 520.
			Packets: 2, Bytes: 520, RequestBytes: 48,
		},
		Value: mode7.Reply{ReassemblyStats: mode7.ReassemblyStats{Packets: 2, Bytes: 520, Accepted: 2}, Complete: true},
	}
	e := enrich.Result{
		Names: []string{"gw.example.com"},
		ASN:   enrich.ASN{Number: 64496},
		Geo:   enrich.Geo{Country: "FR", Region: "Ile-de-France", City: "Paris"},
	}
	row, ok := report.NewMonitorRow(res, e, report.BuildOptions{})
	if !ok {
		return // not a finding: no monitor data
	}
	w := report.NewWriter[report.MonitorRow](os.Stdout, report.WriterOptions{})
	if err := w.Write(row); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	// Output:
	// "timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","packets","response_size","amplification"
	// "2026-03-24 02:00:00","medium","192.0.2.20","udp",123,"gw.example.com",,64496,"FR","ILE-DE-FRANCE","PARIS",,"ptr",,2,520,"10.83"
}

// Read a 2016-layout NTP Monitor file, in which response_size was still
// called size and sic still existed; a malformed row is reported with its
// line number and the rows around it are kept.
func ExampleReader() {
	file := `"timestamp","ip","protocol","port","hostname","packets","size","asn","geo","region","city","naics","sic","sector"
"2016-07-01 00:00:01","192.0.2.44","udp",123,"router.example.com",2,520,64496,"US","CALIFORNIA","LOS ANGELES",0,0,
"2016-07-01 00:00:02","192.0.2.45","udp",123
"2016-07-01 00:00:03","192.0.2.46","udp",123,,1,80,64497,"DE",,,0,0,
`
	r := report.NewReader[report.MonitorRow](strings.NewReader(file), report.ReaderOptions{})
	for row, err := range r.All() {
		var re *report.RowError
		if errors.As(err, &re) {
			fmt.Println("line", re.Line, "skipped:", errors.Is(err, report.ErrFieldCount))
			continue
		}
		fmt.Println("line", row.Line, row.IP, row.ResponseSize, "sic="+row.Extra["sic"])
	}
	// Output:
	// line 2 192.0.2.44 520 sic=0
	// line 3 skipped: true
	// line 4 192.0.2.46 80 sic=0
}

// Name report files so that IntelMQ recognises their type.
func ExampleFileName() {
	name := report.FileName(time.Date(2024, 7, 4, 0, 0, 0, 0, time.UTC), report.ScanNTP, "as64496")
	typ, err := report.TypeFromFileName(name)
	fmt.Println(name, typ, err)
	// Output: 2024-07-04-scan_ntp-as64496.csv scan_ntp <nil>
}

// Keep the rows of a constituency: its prefixes, or its AS.
func ExampleFilter() {
	rows := []report.VersionRow{
		{Common: report.Common{IP: "192.0.2.1", ASN: "64496", Geo: "DE"}},
		{Common: report.Common{IP: "198.51.100.7", ASN: "64497", Geo: "FR"}},
		{Common: report.Common{IP: "2001:db8::123", ASN: "64500", Geo: "NL"}},
	}
	mine := report.AnyOf(
		report.ByPrefix(netip.MustParsePrefix("2001:db8::/32")),
		report.ByASN(64496),
	)
	for _, r := range report.Filter(rows, mine) {
		fmt.Println(r.IP, r.ASN, r.Geo)
	}
	// Output:
	// 192.0.2.1 64496 DE
	// 2001:db8::123 64500 NL
}

// Count a scan as Shadowserver's daily scan pages do.
func ExampleStats() {
	var s report.Stats
	for _, r := range []report.MonitorRow{
		{Common: report.Common{Geo: "DE", ASN: "64496"}, Amplification: "10.83"},
		{Common: report.Common{Geo: "DE", ASN: "64497"}, Amplification: "916.67"},
		{Common: report.Common{Geo: "FR", ASN: "64496"}},
	} {
		s.AddMonitor(&r)
	}
	sum := s.Summary()
	fmt.Println(sum.Rows, sum.Countries[0], sum.ASNs[0], sum.Amplification.Count, sum.Amplification.Max)
	// Output: 3 {DE 2} {64496 2} 2 916.67
}

// Split a stream of rows into one file per AS as they arrive, as a scan
// produces them, without holding them in memory.
func ExampleSplitter() {
	dir, err := os.MkdirTemp("", "split")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := report.NewSplitter[report.MonitorRow](dir, report.SplitByASN, report.SplitOptions{IDPrefix: "cert-"})
	if err != nil {
		panic(err)
	}
	for _, r := range []report.MonitorRow{
		{Common: report.Common{Timestamp: "2026-03-24 02:00:00", IP: "192.0.2.20", ASN: "64496"}, Packets: "2"},
		{Common: report.Common{Timestamp: "2026-03-24 02:00:01", IP: "2001:db8::1", ASN: "64496"}, Packets: "1"},
		{Common: report.Common{Timestamp: "2026-03-24 02:00:02", IP: "198.51.100.7", ASN: "64497"}, Packets: "3"},
		{Common: report.Common{Timestamp: "2026-03-24 02:00:03", IP: "192.0.2.21", ASN: "64496"}, Packets: "1"},
	} {
		if err := s.Write(r); err != nil {
			fmt.Println(err) // this row's file failed; the others go on
		}
	}
	if err := s.Close(); err != nil {
		panic(err)
	}
	for _, p := range s.Files() {
		b, err := os.ReadFile(p)
		if err != nil {
			panic(err)
		}
		rows, _ := report.ReadAll[report.MonitorRow](bytes.NewReader(b), report.ReaderOptions{})
		fmt.Println(filepath.Base(p), len(rows))
	}
	// Output:
	// 2026-03-24-scan6_ntpmonitor-cert-as64496.csv 1
	// 2026-03-24-scan_ntpmonitor-cert-as64496.csv 2
	// 2026-03-24-scan_ntpmonitor-cert-as64497.csv 1
}

// Write the NTP MRU report row of a server that showed its clients: the
// count goes in, their addresses never do.
func ExampleNewMRURow() {
	res := ntpctl.Result[ntpctl.MRUResult]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.10:123"), Status: ntpctl.StatusOK,
			Time: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), Packets: 1, Bytes: 480},
		Value: ntpctl.MRUResult{Nonce: true, Complete: true, Entries: []mode6.MRUEntry{
			{Addr: netip.MustParseAddrPort("198.51.100.7:40000"), Count: 3, Mode: 3, Version: 4}}},
	}
	row, _ := report.NewMRURow(res, "ntpd ntpsec-1.2.2", enrich.Result{}, report.BuildOptions{})
	w := report.NewWriter[report.MRURow](os.Stdout, report.WriterOptions{})
	_ = w.Write(row)
	_ = w.Flush()
	// Output:
	// "timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","mru_entries","mru_complete","version","packets","response_size"
	// "2026-12-03 08:00:00","low","192.0.2.10","udp",123,,"ntpmru",,,,,,,,1,"true","ntpd ntpsec-1.2.2",1,480
}

// Write the Accessible NTP row of a server that answered a Mode 3
// client request: the header of its reply, as ntpq shows it.
func ExampleNewAccessibleRow() {
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	res := ntpctl.Result[ntpctl.TimePacket]{
		Outcome: ntpctl.Outcome{Target: netip.MustParseAddrPort("192.0.2.10:123"), Status: ntpctl.StatusOK,
			Time: t0, Packets: 1, Bytes: 48, RequestBytes: 48},
		Value: ntpctl.TimePacket{Version: 4, Mode: 4, Stratum: 1, Poll: 6, Precision: -20,
			RootDispersion: 0x0000_0666, RefID: [4]byte{'G', 'P', 'S', 0}, Reference: mode6.TimestampOf(t0.Add(-16 * time.Second))},
	}
	row, _ := report.NewAccessibleRow(res, enrich.Result{}, report.BuildOptions{})
	w := report.NewWriter[report.AccessibleRow](os.Stdout, report.WriterOptions{})
	_ = w.Write(row)
	_ = w.Flush()
	// Output:
	// "timestamp","severity","ip","protocol","port","hostname","tag","asn","geo","region","city","naics","hostname_source","sector","ntp_version","leap","stratum","poll","precision","rootdelay","rootdispersion","refid","reference_time","response_size"
	// "2026-12-03 08:00:00","info","192.0.2.10","udp",123,,"ntp",,,,,,,,4,0,1,6,"-20","0.000","24.994","GPS","2026-12-03 07:59:44",48
}
