package report

import (
	"errors"
	"fmt"
	"slices"
)

// Type is a Shadowserver report type, the token IntelMQ reads from a file
// name to choose the schema (report-schemas.md §2.1, §5.1).
type Type string

// The report types of the two NTP reports, IPv4 and IPv6.
const (
	// ScanNTP is the NTP Version report (Mode 6 READVAR), IPv4.
	ScanNTP Type = "scan_ntp"
	// Scan6NTP is the NTP Version report, IPv6.
	Scan6NTP Type = "scan6_ntp"
	// ScanNTPMonitor is the NTP Monitor report (Mode 7 monlist), IPv4.
	ScanNTPMonitor Type = "scan_ntpmonitor"
	// Scan6NTPMonitor is the NTP Monitor report, IPv6.
	Scan6NTPMonitor Type = "scan6_ntpmonitor"
)

// IsVersion reports whether t is an NTP Version report type.
func (t Type) IsVersion() bool { return t == ScanNTP || t == Scan6NTP }

// IsMonitor reports whether t is an NTP Monitor report type.
func (t Type) IsMonitor() bool { return t == ScanNTPMonitor || t == Scan6NTPMonitor }

// Known reports whether t is one of the four NTP report types.
func (t Type) Known() bool { return t.IsVersion() || t.IsMonitor() }

// Layout selects a column list: the current one (the zero value) or one
// that Shadowserver used before, for consumers pinned to it. The names are
// the dates the layouts took effect (report-schemas.md §6).
type Layout uint8

// The layouts of report-schemas.md §6, newest first.
const (
	// LayoutCurrent is the layout in force since the 2024-07-29 schema
	// revision: 41 columns (Version), 17 (Monitor).
	LayoutCurrent Layout = iota
	// Layout20231125 added severity and hostname_source: 41 / 16 columns.
	Layout20231125
	// Layout20231118 removed sic and renamed Monitor's size to
	// response_size: 39 / 14 columns.
	Layout20231118
	// Layout202208 (2022-08-25) added response_size and amplification to
	// Version and amplification to Monitor: 40 / 15 columns.
	Layout202208
	// Layout2022 is the early-2022 Version layout with tag: 38 columns.
	// Monitor had no such revision; it writes Layout2019's 14 columns.
	Layout2022
	// Layout2019 is the Version layout of 2019 (37 columns: naics, sic,
	// sector added) and the Monitor layout of 2016 (14 columns).
	Layout2019
	// Layout2014 is the oldest known layout: Version 34 columns (2014/15),
	// Monitor 13 columns (2015).
	Layout2014
	numLayouts
)

var layoutNames = [numLayouts]string{"current", "2023-11-25", "2023-11-18", "2022-08", "2022", "2019", "2014"}

// String returns the layout's name, such as "2022-08".
func (l Layout) String() string {
	if l < numLayouts {
		return layoutNames[l]
	}
	return fmt.Sprintf("Layout(%d)", uint8(l))
}

// Layouts returns every layout, newest first.
func Layouts() []Layout {
	out := make([]Layout, numLayouts)
	for i := range out {
		out[i] = Layout(i)
	}
	return out
}

// common are the leading columns both reports share in the current
// layout (report-schemas.md §0).
var common = []string{"timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city", "naics", "hostname_source", "sector"}

// ntpVars are the NTP Version variable columns, version … tc; the test
// checks them against mode6.ReportColumns.
var ntpVars = []string{"version", "clk_wander", "clock", "error", "frequency", "jitter", "leap", "mintc", "noise", "offset", "peer", "phase", "poll", "precision", "processor", "refid", "reftime", "rootdelay", "rootdispersion", "stability", "state", "stratum", "system", "tai", "tc"}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// versionLayouts and monitorLayouts hold the column lists of
// report-schemas.md §6, indexed by Layout.
var versionLayouts = [numLayouts][]string{
	LayoutCurrent:  cat(common, ntpVars, []string{"response_size", "amplification"}),
	Layout20231125: cat([]string{"timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, ntpVars, []string{"naics", "hostname_source", "sector", "response_size", "amplification"}),
	Layout20231118: cat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, ntpVars, []string{"naics", "sector", "response_size", "amplification"}),
	Layout202208:   cat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, ntpVars, []string{"naics", "sic", "sector", "response_size", "amplification"}),
	Layout2022:     cat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, ntpVars, []string{"naics", "sic", "sector"}),
	Layout2019:     cat([]string{"timestamp", "ip", "protocol", "port", "hostname", "asn", "geo", "region", "city"}, ntpVars, []string{"naics", "sic", "sector"}),
	Layout2014:     cat([]string{"timestamp", "ip", "protocol", "port", "hostname", "asn", "geo", "region", "city"}, ntpVars),
}

var monitorLayouts = [numLayouts][]string{
	LayoutCurrent:  cat(common, []string{"packets", "response_size", "amplification"}),
	Layout20231125: {"timestamp", "severity", "ip", "protocol", "port", "hostname", "packets", "response_size", "asn", "geo", "region", "city", "naics", "hostname_source", "sector", "amplification"},
	Layout20231118: {"timestamp", "ip", "protocol", "port", "hostname", "packets", "response_size", "asn", "geo", "region", "city", "naics", "sector", "amplification"},
	Layout202208:   {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector", "amplification"},
	Layout2022:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector"},
	Layout2019:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector"},
	Layout2014:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic"},
}

// aliases maps old column names to the current ones they were renamed to
// (report-schemas.md §6: Monitor's size became response_size on
// 2023-11-18).
var aliases = map[string]string{"size": "response_size"}

// VersionColumns returns the NTP Version column names of layout l, or nil
// for an unknown layout.
func VersionColumns(l Layout) []string {
	if l >= numLayouts {
		return nil
	}
	return slices.Clone(versionLayouts[l])
}

// MonitorColumns returns the NTP Monitor column names of layout l, or nil
// for an unknown layout.
func MonitorColumns(l Layout) []string {
	if l >= numLayouts {
		return nil
	}
	return slices.Clone(monitorLayouts[l])
}

// DetectLayout returns the layout of report type t whose column list
// equals header exactly (names as in the file, in order), the oldest when
// two layouts share a list (Monitor's 2019 and 2022); ok is false when
// none does, as for a file whose columns were reordered or extended (the
// Reader reads such files all the same), or when t is not one of the four
// NTP report types.
func DetectLayout(t Type, header []string) (l Layout, ok bool) {
	if !t.Known() {
		return 0, false
	}
	layouts := &versionLayouts
	if t.IsMonitor() {
		layouts = &monitorLayouts
	}
	for i := int(numLayouts) - 1; i >= 0; i-- {
		if slices.Equal(layouts[i], header) {
			return Layout(i), true
		}
	}
	return 0, false
}

// ErrLayoutName is returned by ParseLayout for an unknown name.
var ErrLayoutName = errors.New("report: unknown layout name")

// ParseLayout returns the layout called name, as Layout.String writes it
// ("current", "2023-11-25", "2023-11-18", "2022-08", "2022", "2019",
// "2014"), for command-line flags.
func ParseLayout(name string) (Layout, error) {
	for i, n := range layoutNames {
		if n == name {
			return Layout(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrLayoutName, name)
}
