package report

import (
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
)

// The Accessible NTP report: servers that answer a client (Mode 3)
// request from anyone, as the scanner's discovery pass finds them.
// Shadowserver publishes no such NTP report (its "Accessible" reports
// are of other services); this one is in the style of its NTP reports:
// the same common columns and quoting, then the header of the server's
// reply. Time service open to the Internet is what an NTP server is
// for, so the severity is "info": the report is an inventory, for a
// network's owner to see which of its hosts are NTP servers at all.
const (
	// ScanNTPAccessible is the Accessible NTP report, IPv4 servers.
	ScanNTPAccessible Type = "scan_ntpaccessible"
	// Scan6NTPAccessible is the Accessible NTP report, IPv6 servers.
	Scan6NTPAccessible Type = "scan6_ntpaccessible"
)

// IsAccessible reports whether t is an Accessible NTP report type.
func (t Type) IsAccessible() bool { return t == ScanNTPAccessible || t == Scan6NTPAccessible }

// AccessibleTypeOf returns the Accessible NTP report type for a server's
// address.
func AccessibleTypeOf(addr netip.Addr) Type {
	if addr.Unmap().Is6() {
		return Scan6NTPAccessible
	}
	return ScanNTPAccessible
}

// AccessibleRow is one row of the Accessible NTP report: a server that
// answered a Mode 3 request in Mode 4. The values are the reply's header
// as ntpq and sntp show it.
type AccessibleRow struct {
	Common

	NTPVersion     string // ntp_version: the reply's version number, 1 to 7
	Leap           string // leap: the leap indicator, 0 to 3 (3: unsynchronised)
	Stratum        string // stratum: 1 to 15, 16 unsynchronised
	Poll           string // poll: log2 seconds
	Precision      string // precision: log2 seconds, as ntpq's precision variable
	RootDelay      string // rootdelay: milliseconds, as ntpq prints it
	RootDispersion string // rootdispersion: milliseconds
	RefID          string // refid: as ntpq prints it (a clock source, an IPv4 address, INIT)
	ReferenceTime  string // reference_time: when the server's clock was last set, "" when never
	ResponseSize   string // response_size: UDP payload octets received

	// Extra holds the columns of a read file that the layout lacks, by
	// header name.
	Extra map[string]string
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int
}

var accessibleTable = slices.Concat(
	lift(commonTable, func(r *AccessibleRow) *Common { return &r.Common }),
	[]column[AccessibleRow]{
		{name: "ntp_version", field: func(r *AccessibleRow) *string { return &r.NTPVersion }},
		{name: "leap", field: func(r *AccessibleRow) *string { return &r.Leap }},
		{name: "stratum", field: func(r *AccessibleRow) *string { return &r.Stratum }},
		{name: "poll", field: func(r *AccessibleRow) *string { return &r.Poll }},
		{name: "precision", field: func(r *AccessibleRow) *string { return &r.Precision }},
		{name: "rootdelay", field: func(r *AccessibleRow) *string { return &r.RootDelay }},
		{name: "rootdispersion", field: func(r *AccessibleRow) *string { return &r.RootDispersion }},
		{name: "refid", field: func(r *AccessibleRow) *string { return &r.RefID }},
		{name: "reference_time", field: func(r *AccessibleRow) *string { return &r.ReferenceTime }},
		{name: "response_size", field: func(r *AccessibleRow) *string { return &r.ResponseSize }},
	},
)

// accessibleLayouts: the report has one layout; every Layout writes it.
var accessibleLayouts = oneLayout(accessibleTable)

var accessibleSchema = newSchema(ScanNTPAccessible, accessibleTable, &accessibleLayouts,
	func(r *AccessibleRow) *Common { return &r.Common },
	func(r *AccessibleRow) *map[string]string { return &r.Extra }, func(r *AccessibleRow) *int { return &r.Line })

// AccessibleColumns returns the Accessible NTP report's column names.
func AccessibleColumns() []string { return slices.Clone(accessibleLayouts[LayoutCurrent]) }

// Values returns the row's fields in the order of the layout.
func (r *AccessibleRow) Values() []string { return accessibleSchema.values(r) }

// AppendValues appends the row's fields, in the order of the layout, to
// dst.
func (r *AccessibleRow) AppendValues(dst []string) []string {
	return accessibleSchema.appendValues(dst, r)
}

// Get returns the value of the column called name, or of a column kept
// in Extra.
func (r *AccessibleRow) Get(name string) (string, bool) { return accessibleSchema.get(r, name) }

// AccessibleReportable reports whether a Mode 3 result is a finding: the
// server answered in Mode 4 (status ok). A kiss-o'-death refusal
// (DENY, RSTR, RATE: a server error), silence and anything undecodable
// are not.
func AccessibleReportable(res *ntpctl.Result[ntpctl.TimePacket]) bool {
	return res.Status == ntpctl.StatusOK && res.Value.Mode == 4
}

// NewAccessibleRow builds the Accessible NTP row of a Mode 3 result and
// what enrichment found about its address. ok is false when the result
// is not a finding (AccessibleReportable). The severity is "info" and the
// tag "ntp" unless opt says otherwise.
func NewAccessibleRow(res ntpctl.Result[ntpctl.TimePacket], e enrich.Result, opt BuildOptions) (row AccessibleRow, ok bool) {
	if !AccessibleReportable(&res) {
		return row, false
	}
	if opt.Severity == "" {
		opt.Severity = "info"
	}
	fillCommon(&row.Common, res.Target, res.Time, e, opt, "ntp")
	p := &res.Value
	row.NTPVersion = strconv.Itoa(int(p.Version))
	row.Leap = strconv.Itoa(int(p.Leap))
	row.Stratum = strconv.Itoa(int(p.Stratum))
	row.Poll = strconv.Itoa(int(p.Poll))
	row.Precision = strconv.Itoa(int(p.Precision))
	row.RootDelay = shortMillis(p.RootDelay)
	row.RootDispersion = shortMillis(p.RootDispersion)
	// The refid of a stratum 0 or 1 server is text from the network:
	// only printable ASCII is kept (RefIDString), and the writer quotes.
	row.RefID = p.RefIDString()
	if p.Reference != 0 {
		row.ReferenceTime = FormatTime(p.Reference.TimeNear(res.Time))
	}
	row.ResponseSize = positive(res.Bytes)
	return row, true
}

// shortMillis formats an NTP short (16.16 seconds) as milliseconds with
// three decimals, as ntpq prints rootdelay and rootdisp.
func shortMillis(v uint32) string { return strconv.FormatFloat(shortMs(v), 'f', 3, 64) }

// shortMs is an NTP short (16.16 seconds) in milliseconds.
func shortMs(v uint32) float64 { return float64(v) * 1000 / 65536 }

// JSONServer is the Mode 4 reply of a JSONRecord (see ntpctl.TimePacket):
// the server's header, for an Accessible NTP result whose target sent
// one.
type JSONServer struct {
	// Leap is the leap indicator (3: unsynchronised).
	Leap uint8 `json:"leap"`
	// Version is the reply's NTP version.
	Version uint8 `json:"version"`
	// Mode is the reply's mode (4, server).
	Mode uint8 `json:"mode"`
	// Stratum is the server's stratum (0 with a kiss code).
	Stratum uint8 `json:"stratum"`
	// Poll is the poll exponent (log2 seconds).
	Poll int8 `json:"poll"`
	// Precision is the precision exponent (log2 seconds).
	Precision int8 `json:"precision"`
	// RootDelayMs and RootDispersionMs are the root delay and dispersion
	// in milliseconds.
	RootDelayMs      float64 `json:"root_delay_ms"`
	RootDispersionMs float64 `json:"root_dispersion_ms"`
	// RefID is the reference identifier as ntpq prints it.
	RefID string `json:"refid"`
	// Kiss is the kiss code of a stratum 0 reply ("DENY", "RATE", "INIT"),
	// "" otherwise.
	Kiss string `json:"kiss,omitempty"`
	// Reference is the reference timestamp, as a time near the query's;
	// absent when the server's clock was never set.
	Reference *time.Time `json:"reference,omitempty"`
	// Transmit is the server's transmit timestamp, as a time near the
	// query's.
	Transmit time.Time `json:"transmit"`
}

func newJSONServer(p *ntpctl.TimePacket, res *ntpctl.Outcome) *JSONServer {
	s := &JSONServer{Leap: p.Leap, Version: p.Version, Mode: p.Mode, Stratum: p.Stratum, Poll: p.Poll,
		Precision: p.Precision, RootDelayMs: shortMs(p.RootDelay), RootDispersionMs: shortMs(p.RootDispersion),
		RefID:    p.RefIDString(),
		Transmit: p.Transmit.TimeNear(res.Time).UTC()}
	if k, ok := p.KissCode(); ok {
		s.Kiss = k
	}
	if p.Reference != 0 {
		r := p.Reference.TimeNear(res.Time).UTC()
		s.Reference = &r
	}
	return s
}
