package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "golden file %s (rerun with -update to rewrite)", path)
}

func writeRows[T Row](t testing.TB, rows []T, opt WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, WriteAll(&buf, rows, opt))
	return buf.Bytes()
}

// cleaned returns row as the writer writes it: every value through clean,
// Line and Extra cleared.
func cleaned[T Row](row T) T {
	s := schemaOf[T]()
	for _, c := range s.cols {
		*c.field(&row) = clean(*c.field(&row))
	}
	return bare(row)
}

// bare clears what reading adds (Line, Extra) for comparison.
func bare[T Row](row T) T {
	s := schemaOf[T]()
	*s.extra(&row) = nil
	*s.line(&row) = 0
	return row
}

// versionRows covers every column of NTP Version: a full ntpd 4.2.8 row, a
// row of hostile server strings, a sparse row and an IPv6 row.
func versionRows() []VersionRow {
	return []VersionRow{
		{
			Common: Common{
				Timestamp: "2026-03-24 01:02:03", Severity: "medium", IP: "192.0.2.10", Protocol: "udp",
				Port: "123", Hostname: "ntp1.example.net", Tag: "ntpversion", ASN: "64496", Geo: "DE",
				Region: "HESSEN", City: "FRANKFURT AM MAIN", NAICS: "517311", HostnameSource: "ptr",
				Sector: "Communications, Service Provider, and Hosting Service",
			},
			Version: "ntpd 4.2.8p10@1.3728-o Sun Sep 17 20:40:05 UTC 2017 (1)", ClkWander: "0.004",
			Clock: "0xE1198EEB.21E18AD4", Error: "0.000", Frequency: "-11.962", Jitter: "0.191", Leap: "0",
			MinTC: "3", Noise: "1.5", Offset: "-0.123", Peer: "18986", Phase: "+0.5", Poll: "10",
			Precision: "-22", Processor: "x86_64", RefID: "198.51.100.4", RefTime: "0xe1198a1c.5f3e1b2a",
			RootDelay: "153.780", RootDispersion: "2.24", Stability: "0.027", State: "4", Stratum: "2",
			System: "Linux/4.19.0-18-amd64", TAI: "37", TC: "10", ResponseSize: "468", Amplification: "39.00",
		},
		{
			Common: Common{
				Timestamp: "2026-03-24 01:02:04", Severity: "medium", IP: "198.51.100.7", Protocol: "udp",
				Port: "123", Tag: "ntpversion", ASN: "64497", Geo: "US",
			},
			Version: "ntpd \"evil\", version=4\r\nX-Injected: yes", System: "=HYPERLINK(\"http://x\")\x00",
			Processor: "mips\tbe\x1b[31m", RefID: "@SUM(1+1)", Clock: "-cmd", Noise: "+1",
			State: "caf\xe9 \u00e9\u2028\u0085", Leap: "3", Stratum: "16", Precision: "-6",
			ResponseSize: "1024", Amplification: "85.33",
		},
		{
			Common: Common{
				Timestamp: "2026-03-24 01:02:05", Severity: "medium", IP: "203.0.113.200", Protocol: "udp",
				Port: "123", Tag: "ntpversion",
			},
			Version: "4", Stratum: "1", RefID: "GPS", Amplification: "",
		},
		{
			Common: Common{
				Timestamp: "2026-03-24 01:02:06", Severity: "medium", IP: "2001:db8::123", Protocol: "udp",
				Port: "123", Hostname: "time.example.org", HostnameSource: "ptr", Tag: "ntpversion",
				ASN: "64500", Geo: "NL", Region: "NOORD-HOLLAND", City: "AMSTERDAM",
			},
			Version: "ntpd ntpsec-1.2.2 2023-05-04T12:00:00Z", Leap: "0", Stratum: "3", Precision: "-24",
			RootDelay: "0.5", RootDispersion: "1.25", TAI: "0", TC: "6", MinTC: "3", ResponseSize: "640",
			Amplification: "53.33",
		},
	}
}

// monitorRows covers every column of NTP Monitor.
func monitorRows() []MonitorRow {
	return []MonitorRow{
		{
			Common: Common{
				Timestamp: "2026-03-24 02:00:00", Severity: "medium", IP: "192.0.2.20", Protocol: "udp",
				Port: "123", Hostname: "gw.example.com", Tag: "", ASN: "64496", Geo: "FR",
				Region: "ILE-DE-FRANCE", City: "PARIS", NAICS: "518210", HostnameSource: "ptr",
				Sector: "Information, \"Data\" Processing",
			},
			Packets: "100", ResponseSize: "44000", Amplification: "916.67",
		},
		{
			Common: Common{
				Timestamp: "2026-03-24 02:00:01", Severity: "high", IP: "198.51.100.99", Protocol: "udp",
				Port: "10123", Hostname: "a,b\nc.example", HostnameSource: "ptr",
				Tag: "monlist;cve-2013-5211", ASN: "64511", Geo: "ZZ",
			},
			Packets: "1", ResponseSize: "80", Amplification: "1.67",
		},
		{
			Common: Common{
				Timestamp: "2026-03-24 02:00:02", Severity: "medium", IP: "2001:db8::1", Protocol: "udp",
				Port: "123",
			},
			Packets: "3", ResponseSize: "1184", Amplification: "24.67",
		},
	}
}
