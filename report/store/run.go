package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/report"
)

// Run is one scan imported into the store.
type Run struct {
	// ID is the store's number of the run (set by the store).
	ID int64
	// UID identifies the run's content: importing the same content again
	// finds this run and changes nothing. Import derives it from the
	// rows and Stats when empty.
	UID string
	// Source says where the run came from: a directory, a file name, "scanner".
	Source string
	// Started and Finished bound the scan. The day of a run is Started's
	// UTC date, and runs are ordered by Started.
	Started, Finished time.Time
	// Types are the report types the run scanned for (scan_ntp and
	// scan6_ntp for the READVAR probe, …), rows or not: only these can
	// make its findings absent.
	Types []report.Type
	// Complete is false for an interrupted or failed scan, whose
	// absences prove nothing.
	Complete bool
	// Interrupted reports a scan cut short.
	Interrupted bool
	// Space is the target space the run covered completely; a finding
	// outside it is never called fixed by this run.
	Space []ntpctl.Range
	// Scanner names the program and its version.
	Scanner string
	// Stats is the scan's statistics object (…-stats.json), if any.
	Stats json.RawMessage
	// Rows is the number of rows stored for the run.
	Rows int64
}

// Day returns the run's UTC date, YYYY-MM-DD.
func (r *Run) Day() string { return r.Started.UTC().Format(time.DateOnly) }

// Row is one report row as the store keeps it: the CSV record in the
// current layout (as the scanner writes it), and what is looked up in it.
type Row struct {
	Type     report.Type
	Key      report.Key // ip, asn and geo
	IP       string     // the ip column as written
	Port     int
	Protocol string
	// Daemon is the daemon version of an NTP Version row ("ntpd 4.2.8p15").
	Daemon        string
	Amplification float64
	Timestamp     string
	// Line is the CSV record, without its line end, in the current
	// layout of Type's report.
	Line string
	// Hash identifies the row's values other than its timestamp and port,
	// for Shadowserver's delta mode.
	Hash [16]byte
	// Extra holds the columns of an older layout that the current one
	// lacks (sic, size, …), as the row's report had them, JSON-encoded;
	// "" when there are none.
	Extra string
}

// The column names of the current layouts, and where the columns a Row
// looks at are; never written after package initialisation.
var (
	versionAt = columnsAt(report.VersionColumns(report.LayoutCurrent))
	monitorAt = columnsAt(report.MonitorColumns(report.LayoutCurrent))
)

// at is where a layout has the columns a Row looks at.
type at struct{ timestamp, port, ip, protocol, amplification int }

func columnsAt(names []string) at {
	return at{slices.Index(names, "timestamp"), slices.Index(names, "port"), slices.Index(names, "ip"),
		slices.Index(names, "protocol"), slices.Index(names, "amplification")}
}

// VersionRowOf makes a Row of an NTP Version row; t is scan_ntp or
// scan6_ntp.
func VersionRowOf(t report.Type, r *report.VersionRow) Row {
	var b rowBuilder
	return b.version(t, r)
}

// MonitorRowOf makes a Row of an NTP Monitor row; t is scan_ntpmonitor or
// scan6_ntpmonitor.
func MonitorRowOf(t report.Type, r *report.MonitorRow) Row {
	var b rowBuilder
	return b.monitor(t, r)
}

// rowBuilder makes Rows with reused scratch space, and remembers the
// daemon versions of the banners it has seen (a scan has a few hundred
// distinct ones).
type rowBuilder struct {
	buf     []byte
	vals    []string
	daemons map[string]string
}

// maxDaemons bounds a rowBuilder's memory of banners.
const maxDaemons = 4096

func (b *rowBuilder) version(t report.Type, r *report.VersionRow) Row {
	b.vals = r.AppendValues(b.vals[:0])
	row := b.row(t, b.vals, &versionAt, report.KeyOf(r))
	d, ok := b.daemons[r.Version]
	if !ok {
		d = report.DaemonVersion(r.Version)
		if b.daemons == nil {
			b.daemons = map[string]string{}
		}
		if len(b.daemons) < maxDaemons {
			b.daemons[r.Version] = d
		}
	}
	row.Daemon = d
	row.Extra = extraJSON(r.Extra)
	return row
}

func (b *rowBuilder) monitor(t report.Type, r *report.MonitorRow) Row {
	b.vals = r.AppendValues(b.vals[:0])
	row := b.row(t, b.vals, &monitorAt, report.KeyOf(r))
	row.Extra = extraJSON(r.Extra)
	return row
}

// row fills the fields a Row shares between the reports. Its Hash covers
// the report type and every value but the timestamp and the port, each
// ended by a NUL (which no value holds: the writer drops control
// characters).
func (b *rowBuilder) row(t report.Type, values []string, a *at, k report.Key) Row {
	row := Row{Type: t, Key: k, Timestamp: values[a.timestamp], IP: values[a.ip], Protocol: values[a.protocol]}
	row.Port, _ = strconv.Atoi(values[a.port])
	row.Amplification, _ = strconv.ParseFloat(values[a.amplification], 64)
	buf := append(b.buf[:0], t...)
	buf = append(buf, 0)
	for i, v := range values {
		if i == a.timestamp || i == a.port {
			continue
		}
		buf = append(buf, v...)
		buf = append(buf, 0)
	}
	sum := sha256.Sum256(buf)
	copy(row.Hash[:], sum[:])
	buf = report.AppendRecord(buf[:0], values, false)
	row.Line = string(buf[:len(buf)-1]) // without its line end
	b.buf = buf
	return row
}

// extraJSON encodes a row's extra columns, "" for none.
func extraJSON(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, err := json.Marshal(m) // sorted keys; invalid UTF-8 becomes U+FFFD
	if err != nil {
		return ""
	}
	return string(b)
}

// ipBin is the 16-octet form of an address (IPv4 mapped), whose order is
// the address order; the zero address for an invalid one.
func ipBin(a netip.Addr) []byte {
	b := a.Unmap().As16()
	if !a.IsValid() {
		b = [16]byte{}
	}
	return b[:]
}

// rangeBins returns the ends of r as ipBin does.
func rangeBins(r ntpctl.Range) (first, last []byte) {
	return ipBin(r.First), ipBin(r.Last)
}

// TypesOf returns the report types of the probes named in a scan's
// statistics: "monitor" and "version".
func TypesOf(probes ...string) []report.Type {
	var ts []report.Type
	for _, p := range probes {
		switch p {
		case "monitor":
			ts = append(ts, report.ScanNTPMonitor, report.Scan6NTPMonitor)
		case "version":
			ts = append(ts, report.ScanNTP, report.Scan6NTP)
		}
	}
	return ts
}

// contentUID hashes the parts that make up a run's content.
func contentUID(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func typeNames(ts []report.Type) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}
