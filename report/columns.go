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

// column is one column of a report: its name in the current layout, the
// row field that holds it, the names it had before (size), and, for the
// NTP Version variable columns, the Mode 6 system variables that fill it.
type column[T any] struct {
	name  string
	field func(*T) *string
	old   []string
	vars  []string
}

// commonTable is the column table of Common: the 14 leading columns of
// both reports, in order.
var commonTable = []column[Common]{
	{name: "timestamp", field: func(c *Common) *string { return &c.Timestamp }},
	{name: "severity", field: func(c *Common) *string { return &c.Severity }},
	{name: "ip", field: func(c *Common) *string { return &c.IP }},
	{name: "protocol", field: func(c *Common) *string { return &c.Protocol }},
	{name: "port", field: func(c *Common) *string { return &c.Port }},
	{name: "hostname", field: func(c *Common) *string { return &c.Hostname }},
	{name: "tag", field: func(c *Common) *string { return &c.Tag }},
	{name: "asn", field: func(c *Common) *string { return &c.ASN }},
	{name: "geo", field: func(c *Common) *string { return &c.Geo }},
	{name: "region", field: func(c *Common) *string { return &c.Region }},
	{name: "city", field: func(c *Common) *string { return &c.City }},
	{name: "naics", field: func(c *Common) *string { return &c.NAICS }},
	{name: "hostname_source", field: func(c *Common) *string { return &c.HostnameSource }},
	{name: "sector", field: func(c *Common) *string { return &c.Sector }},
}

// ntpVar is a variable column of NTP Version: it takes the system
// variable of its own name and, for two columns, the name later ntpd
// versions gave the same quantity (also): rootdispersion takes rootdisp
// (4.2.6 and later, ntpsec) and jitter takes sys_jitter.
func ntpVar(name string, field func(*VersionRow) *string, also ...string) column[VersionRow] {
	return column[VersionRow]{name: name, field: field, vars: append([]string{name}, also...)}
}

// versionTable is the NTP Version report's column table, the current
// layout in order (report-schemas.md §3.1): Common's columns, the
// variable columns version … tc, response_size and amplification.
var versionTable = slices.Concat(
	lift(commonTable, func(r *VersionRow) *Common { return &r.Common }),
	[]column[VersionRow]{
		ntpVar("version", func(r *VersionRow) *string { return &r.Version }),
		ntpVar("clk_wander", func(r *VersionRow) *string { return &r.ClkWander }),
		ntpVar("clock", func(r *VersionRow) *string { return &r.Clock }),
		ntpVar("error", func(r *VersionRow) *string { return &r.Error }),
		ntpVar("frequency", func(r *VersionRow) *string { return &r.Frequency }),
		ntpVar("jitter", func(r *VersionRow) *string { return &r.Jitter }, "sys_jitter"),
		ntpVar("leap", func(r *VersionRow) *string { return &r.Leap }),
		ntpVar("mintc", func(r *VersionRow) *string { return &r.MinTC }),
		ntpVar("noise", func(r *VersionRow) *string { return &r.Noise }),
		ntpVar("offset", func(r *VersionRow) *string { return &r.Offset }),
		ntpVar("peer", func(r *VersionRow) *string { return &r.Peer }),
		ntpVar("phase", func(r *VersionRow) *string { return &r.Phase }),
		ntpVar("poll", func(r *VersionRow) *string { return &r.Poll }),
		ntpVar("precision", func(r *VersionRow) *string { return &r.Precision }),
		ntpVar("processor", func(r *VersionRow) *string { return &r.Processor }),
		ntpVar("refid", func(r *VersionRow) *string { return &r.RefID }),
		ntpVar("reftime", func(r *VersionRow) *string { return &r.RefTime }),
		ntpVar("rootdelay", func(r *VersionRow) *string { return &r.RootDelay }),
		ntpVar("rootdispersion", func(r *VersionRow) *string { return &r.RootDispersion }, "rootdisp"),
		ntpVar("stability", func(r *VersionRow) *string { return &r.Stability }),
		ntpVar("state", func(r *VersionRow) *string { return &r.State }),
		ntpVar("stratum", func(r *VersionRow) *string { return &r.Stratum }),
		ntpVar("system", func(r *VersionRow) *string { return &r.System }),
		ntpVar("tai", func(r *VersionRow) *string { return &r.TAI }),
		ntpVar("tc", func(r *VersionRow) *string { return &r.TC }),
		{name: "response_size", field: func(r *VersionRow) *string { return &r.ResponseSize }},
		{name: "amplification", field: func(r *VersionRow) *string { return &r.Amplification }},
	},
)

// monitorTable is the NTP Monitor report's column table, the current
// layout in order (report-schemas.md §4.1). response_size was called size
// until 2023-11-18 (§6).
var monitorTable = slices.Concat(
	lift(commonTable, func(r *MonitorRow) *Common { return &r.Common }),
	[]column[MonitorRow]{
		{name: "packets", field: func(r *MonitorRow) *string { return &r.Packets }},
		{name: "response_size", field: func(r *MonitorRow) *string { return &r.ResponseSize }, old: []string{"size"}},
		{name: "amplification", field: func(r *MonitorRow) *string { return &r.Amplification }},
	},
)

// lift turns Common's columns into columns of a row type that embeds it.
func lift[T any](cols []column[Common], common func(*T) *Common) []column[T] {
	out := make([]column[T], len(cols))
	for i, c := range cols {
		field := c.field
		out[i] = column[T]{name: c.name, field: func(r *T) *string { return field(common(r)) }, old: c.old, vars: c.vars}
	}
	return out
}

// retired are the columns of older layouts that no table has: sic,
// dropped on 2023-11-18 (report-schemas.md §6). Rows keep them in Extra.
var retired = []string{"sic"}

func names[T any](cols []column[T], keep func(column[T]) bool) []string {
	var out []string
	for _, c := range cols {
		if keep == nil || keep(c) {
			out = append(out, c.name)
		}
	}
	return out
}

// varNames are the NTP Version variable columns, version … tc, that every
// historical layout has in this order.
var varNames = names(versionTable, func(c column[VersionRow]) bool { return c.vars != nil })

// versionLayouts and monitorLayouts hold the column lists of
// report-schemas.md §6, indexed by Layout; the current one is the
// table's order. Every name is a name or an old name in the table, or a
// retired column (a test checks).
var versionLayouts = [numLayouts][]string{
	LayoutCurrent:  names(versionTable, nil),
	Layout20231125: slices.Concat([]string{"timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, varNames, []string{"naics", "hostname_source", "sector", "response_size", "amplification"}),
	Layout20231118: slices.Concat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, varNames, []string{"naics", "sector", "response_size", "amplification"}),
	Layout202208:   slices.Concat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, varNames, []string{"naics", "sic", "sector", "response_size", "amplification"}),
	Layout2022:     slices.Concat([]string{"timestamp", "ip", "protocol", "port", "hostname", "tag", "asn", "geo", "region", "city"}, varNames, []string{"naics", "sic", "sector"}),
	Layout2019:     slices.Concat([]string{"timestamp", "ip", "protocol", "port", "hostname", "asn", "geo", "region", "city"}, varNames, []string{"naics", "sic", "sector"}),
	Layout2014:     slices.Concat([]string{"timestamp", "ip", "protocol", "port", "hostname", "asn", "geo", "region", "city"}, varNames),
}

var monitorLayouts = [numLayouts][]string{
	LayoutCurrent:  names(monitorTable, nil),
	Layout20231125: {"timestamp", "severity", "ip", "protocol", "port", "hostname", "packets", "response_size", "asn", "geo", "region", "city", "naics", "hostname_source", "sector", "amplification"},
	Layout20231118: {"timestamp", "ip", "protocol", "port", "hostname", "packets", "response_size", "asn", "geo", "region", "city", "naics", "sector", "amplification"},
	Layout202208:   {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector", "amplification"},
	Layout2022:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector"},
	Layout2019:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic", "sector"},
	Layout2014:     {"timestamp", "ip", "protocol", "port", "hostname", "packets", "size", "asn", "geo", "region", "city", "naics", "sic"},
}

// schema is one report's column table with what the package derives
// from it. The two schemas are read-only after initialisation.
type schema[T any] struct {
	typ     Type // the IPv4 report type
	cols    []column[T]
	layouts *[numLayouts][]string
	plans   [numLayouts]layoutPlan[T]
	index   map[string]int // column names and old names → cols index
	byVar   map[string]int // Mode 6 variable names → cols index
	common  func(*T) *Common
	extra   func(*T) *map[string]string
	line    func(*T) *int
}

var (
	versionSchema = newSchema(ScanNTP, versionTable, &versionLayouts, func(r *VersionRow) *Common { return &r.Common },
		func(r *VersionRow) *map[string]string { return &r.Extra }, func(r *VersionRow) *int { return &r.Line })
	monitorSchema = newSchema(ScanNTPMonitor, monitorTable, &monitorLayouts, func(r *MonitorRow) *Common { return &r.Common },
		func(r *MonitorRow) *map[string]string { return &r.Extra }, func(r *MonitorRow) *int { return &r.Line })
)

func newSchema[T any](t Type, cols []column[T], layouts *[numLayouts][]string, common func(*T) *Common,
	extra func(*T) *map[string]string, line func(*T) *int) schema[T] {
	s := schema[T]{typ: t, cols: cols, layouts: layouts, index: map[string]int{}, byVar: map[string]int{},
		common: common, extra: extra, line: line}
	for i, c := range cols {
		s.index[c.name] = i
		for _, v := range c.vars {
			s.byVar[v] = i
		}
	}
	// Old names last: a current name always wins.
	for i, c := range cols {
		for _, o := range c.old {
			if _, ok := s.index[o]; !ok {
				s.index[o] = i
			}
		}
	}
	for l, names := range layouts {
		s.plans[l] = newPlan(&s, names)
	}
	return s
}

// schemaOf returns the schema of row type T.
func schemaOf[T Row]() *schema[T] {
	var s any
	switch any((*T)(nil)).(type) {
	case *VersionRow:
		s = &versionSchema
	case *MonitorRow:
		s = &monitorSchema
	case *MRURow:
		s = &mruSchema
	case *AccessibleRow:
		s = &accessibleSchema
	}
	return s.(*schema[T])
}

// current returns the names of the current layout, the table's order.
func (s *schema[T]) current() []string { return s.layouts[LayoutCurrent] }

// col returns the column called name (or an old name of it), or nil.
func (s *schema[T]) col(name string) *column[T] {
	if i, ok := s.index[name]; ok {
		return &s.cols[i]
	}
	return nil
}

func (s *schema[T]) values(r *T) []string {
	return s.appendValues(make([]string, 0, len(s.cols)), r)
}

func (s *schema[T]) appendValues(dst []string, r *T) []string {
	for i := range s.cols {
		dst = append(dst, *s.cols[i].field(r))
	}
	return dst
}

func (s *schema[T]) get(r *T, name string) (string, bool) {
	if c := s.col(name); c != nil {
		return *c.field(r), true
	}
	v, ok := (*s.extra(r))[name]
	return v, ok
}

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
