package report

// Common holds the 14 leading columns both reports share in the current
// layout, timestamp … sector (report-schemas.md §0), as the strings
// written in the file; an empty string is an empty field. VersionRow and
// MonitorRow embed it.
type Common struct {
	Timestamp      string // probe time, UTC, `YYYY-MM-DD HH:MM:SS`
	Severity       string // severity: critical, high, medium, low or info
	IP             string // address of the responding host
	Protocol       string // transport of the response, `udp`
	Port           string // source port of the response
	Hostname       string // reverse DNS (PTR) name of IP
	Tag            string // `;`-separated tags
	ASN            string // origin AS of IP
	Geo            string // country, ISO 3166-1 alpha-2, upper case
	Region         string // state or province, upper case
	City           string // city, upper case
	NAICS          string // NAICS industry code of the IP owner
	HostnameSource string // where Hostname came from (`ptr`)
	Sector         string // sector of the IP owner
}

// VersionRow is one row of the NTP Version report (scan_ntp, scan6_ntp):
// one server that answered a Mode 6 READVAR request. Common and the
// fields after it are the current layout's 41 columns in order
// (report-schemas.md §3.1), named by VersionColumns(LayoutCurrent).
type VersionRow struct {
	Common

	// The variable columns, version … tc, as the server printed them.
	Version        string // ntpd `version`: software version and build time
	ClkWander      string // clock frequency wander (PPM)
	Clock          string // date and time of day, NTP timestamp in hex
	Error          string // frequency error (old ntpd)
	Frequency      string // frequency offset (PPM)
	Jitter         string // system jitter (ms), `jitter` or `sys_jitter`
	Leap           string // leap indicator
	MinTC          string // minimum time constant
	Noise          string // legacy ntpd variable
	Offset         string // clock offset (ms)
	Peer           string // association id of the system peer
	Phase          string // legacy name of the offset
	Poll           string // poll interval exponent (legacy)
	Precision      string // clock precision, log2 seconds
	Processor      string // CPU type
	RefID          string // reference id
	RefTime        string // reference time, NTP timestamp in hex
	RootDelay      string // root delay (ms)
	RootDispersion string // root dispersion (ms), `rootdispersion` or `rootdisp`
	Stability      string // legacy name of the frequency wander
	State          string // clock discipline state (legacy)
	Stratum        string // stratum
	System         string // operating system
	TAI            string // TAI−UTC offset
	TC             string // time constant (poll exponent)

	ResponseSize  string // UDP payload octets received in answer to the probe
	Amplification string // ResponseSize ÷ request payload size, two decimals

	// Extra holds the columns of a read file that are not in the
	// current layout (such as sic), by header name. The writer uses them
	// for the columns of older layouts; the current layout ignores them.
	Extra map[string]string
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int
}

// MonitorRow is one row of the NTP Monitor report (scan_ntpmonitor,
// scan6_ntpmonitor): one server that answered a Mode 7 monlist request with
// its monitor list. Common and the fields after it are the current
// layout's 17 columns in order (report-schemas.md §4.1), named by
// MonitorColumns(LayoutCurrent).
type MonitorRow struct {
	Common

	Packets       string // reply datagrams received
	ResponseSize  string // UDP payload octets received (named `size` before 2023-11-18)
	Amplification string // ResponseSize ÷ request payload size, two decimals

	// Extra holds the columns of a read file that are not in the
	// current layout (such as sic), by header name. The writer uses them
	// for the columns of older layouts; the current layout ignores them.
	Extra map[string]string
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int
}

// Row is the set of row types: one per report.
type Row interface {
	VersionRow | MonitorRow | MRURow | AccessibleRow
}

// Values returns the row's fields in the order of the current layout.
func (r *VersionRow) Values() []string { return versionSchema.values(r) }

// Values returns the row's fields in the order of the current layout.
func (r *MonitorRow) Values() []string { return monitorSchema.values(r) }

// AppendValues appends the row's fields, in the order of the current
// layout, to dst: Values without an allocation when dst has room.
func (r *VersionRow) AppendValues(dst []string) []string { return versionSchema.appendValues(dst, r) }

// AppendValues appends the row's fields, in the order of the current
// layout, to dst: Values without an allocation when dst has room.
func (r *MonitorRow) AppendValues(dst []string) []string { return monitorSchema.appendValues(dst, r) }

// Get returns the value of the column called name: a current column, an
// old name of one (size), or a column kept in Extra.
func (r *VersionRow) Get(name string) (string, bool) { return versionSchema.get(r, name) }

// Get returns the value of the column called name: a current column, an
// old name of one (size), or a column kept in Extra.
func (r *MonitorRow) Get(name string) (string, bool) { return monitorSchema.get(r, name) }
