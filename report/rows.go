package report

// VersionRow is one row of the NTP Version report (scan_ntp, scan6_ntp):
// one server that answered a Mode 6 READVAR request. The fields are the
// current layout's 41 columns in order (report-schemas.md §3.1), as the
// strings written in the file; an empty string is an empty field.
type VersionRow struct {
	Timestamp      string `csv:"timestamp"`       // probe time, UTC, `YYYY-MM-DD HH:MM:SS`
	Severity       string `csv:"severity"`        // severity: critical, high, medium, low or info
	IP             string `csv:"ip"`              // address of the responding host
	Protocol       string `csv:"protocol"`        // transport of the response, `udp`
	Port           string `csv:"port"`            // source port of the response
	Hostname       string `csv:"hostname"`        // reverse DNS (PTR) name of IP
	Tag            string `csv:"tag"`             // `;`-separated tags
	ASN            string `csv:"asn"`             // origin AS of IP
	Geo            string `csv:"geo"`             // country, ISO 3166-1 alpha-2, upper case
	Region         string `csv:"region"`          // state or province, upper case
	City           string `csv:"city"`            // city, upper case
	NAICS          string `csv:"naics"`           // NAICS industry code of the IP owner
	HostnameSource string `csv:"hostname_source"` // where Hostname came from (`ptr`)
	Sector         string `csv:"sector"`          // sector of the IP owner
	Version        string `csv:"version"`         // ntpd `version`: software version and build time
	ClkWander      string `csv:"clk_wander"`      // clock frequency wander (PPM)
	Clock          string `csv:"clock"`           // date and time of day, NTP timestamp in hex
	Error          string `csv:"error"`           // frequency error (old ntpd)
	Frequency      string `csv:"frequency"`       // frequency offset (PPM)
	Jitter         string `csv:"jitter"`          // system jitter (ms), `jitter` or `sys_jitter`
	Leap           string `csv:"leap"`            // leap indicator
	MinTC          string `csv:"mintc"`           // minimum time constant
	Noise          string `csv:"noise"`           // legacy ntpd variable
	Offset         string `csv:"offset"`          // clock offset (ms)
	Peer           string `csv:"peer"`            // association id of the system peer
	Phase          string `csv:"phase"`           // legacy name of the offset
	Poll           string `csv:"poll"`            // poll interval exponent (legacy)
	Precision      string `csv:"precision"`       // clock precision, log2 seconds
	Processor      string `csv:"processor"`       // CPU type
	RefID          string `csv:"refid"`           // reference id
	RefTime        string `csv:"reftime"`         // reference time, NTP timestamp in hex
	RootDelay      string `csv:"rootdelay"`       // root delay (ms)
	RootDispersion string `csv:"rootdispersion"`  // root dispersion (ms), `rootdispersion` or `rootdisp`
	Stability      string `csv:"stability"`       // legacy name of the frequency wander
	State          string `csv:"state"`           // clock discipline state (legacy)
	Stratum        string `csv:"stratum"`         // stratum
	System         string `csv:"system"`          // operating system
	TAI            string `csv:"tai"`             // TAI−UTC offset
	TC             string `csv:"tc"`              // time constant (poll exponent)
	ResponseSize   string `csv:"response_size"`   // UDP payload octets received in answer to the probe
	Amplification  string `csv:"amplification"`   // ResponseSize ÷ request payload size, two decimals

	// Extra holds the columns of a read file that are not in the
	// current layout (such as sic), by header name. The writer uses them
	// for the columns of older layouts; the current layout ignores them.
	Extra map[string]string `csv:"-"`
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int `csv:"-"`
}

// field returns the field of column i of the current layout, or nil.
func (r *VersionRow) field(i int) *string {
	switch i {
	case 0:
		return &r.Timestamp
	case 1:
		return &r.Severity
	case 2:
		return &r.IP
	case 3:
		return &r.Protocol
	case 4:
		return &r.Port
	case 5:
		return &r.Hostname
	case 6:
		return &r.Tag
	case 7:
		return &r.ASN
	case 8:
		return &r.Geo
	case 9:
		return &r.Region
	case 10:
		return &r.City
	case 11:
		return &r.NAICS
	case 12:
		return &r.HostnameSource
	case 13:
		return &r.Sector
	case 14:
		return &r.Version
	case 15:
		return &r.ClkWander
	case 16:
		return &r.Clock
	case 17:
		return &r.Error
	case 18:
		return &r.Frequency
	case 19:
		return &r.Jitter
	case 20:
		return &r.Leap
	case 21:
		return &r.MinTC
	case 22:
		return &r.Noise
	case 23:
		return &r.Offset
	case 24:
		return &r.Peer
	case 25:
		return &r.Phase
	case 26:
		return &r.Poll
	case 27:
		return &r.Precision
	case 28:
		return &r.Processor
	case 29:
		return &r.RefID
	case 30:
		return &r.RefTime
	case 31:
		return &r.RootDelay
	case 32:
		return &r.RootDispersion
	case 33:
		return &r.Stability
	case 34:
		return &r.State
	case 35:
		return &r.Stratum
	case 36:
		return &r.System
	case 37:
		return &r.TAI
	case 38:
		return &r.TC
	case 39:
		return &r.ResponseSize
	case 40:
		return &r.Amplification
	}
	return nil
}

// MonitorRow is one row of the NTP Monitor report (scan_ntpmonitor,
// scan6_ntpmonitor): one server that answered a Mode 7 monlist request with
// its monitor list. The fields are the current layout's 17 columns in order
// (report-schemas.md §4.1), as the strings written in the file.
type MonitorRow struct {
	Timestamp      string `csv:"timestamp"`       // probe time, UTC, `YYYY-MM-DD HH:MM:SS`
	Severity       string `csv:"severity"`        // severity: critical, high, medium, low or info
	IP             string `csv:"ip"`              // address of the responding host
	Protocol       string `csv:"protocol"`        // transport of the response, `udp`
	Port           string `csv:"port"`            // source port of the response
	Hostname       string `csv:"hostname"`        // reverse DNS (PTR) name of IP
	Tag            string `csv:"tag"`             // `;`-separated tags
	ASN            string `csv:"asn"`             // origin AS of IP
	Geo            string `csv:"geo"`             // country, ISO 3166-1 alpha-2, upper case
	Region         string `csv:"region"`          // state or province, upper case
	City           string `csv:"city"`            // city, upper case
	NAICS          string `csv:"naics"`           // NAICS industry code of the IP owner
	HostnameSource string `csv:"hostname_source"` // where Hostname came from (`ptr`)
	Sector         string `csv:"sector"`          // sector of the IP owner
	Packets        string `csv:"packets"`         // reply datagrams received
	ResponseSize   string `csv:"response_size"`   // UDP payload octets received (named `size` before 2023-11-18)
	Amplification  string `csv:"amplification"`   // ResponseSize ÷ request payload size, two decimals

	// Extra holds the columns of a read file that are not in the
	// current layout (such as sic), by header name. The writer uses them
	// for the columns of older layouts; the current layout ignores them.
	Extra map[string]string `csv:"-"`
	// Line is the line number of the row in the file it was read from
	// (the header is line 1); 0 for rows built in memory.
	Line int `csv:"-"`
}

// field returns the field of column i of the current layout, or nil.
func (r *MonitorRow) field(i int) *string {
	switch i {
	case 0:
		return &r.Timestamp
	case 1:
		return &r.Severity
	case 2:
		return &r.IP
	case 3:
		return &r.Protocol
	case 4:
		return &r.Port
	case 5:
		return &r.Hostname
	case 6:
		return &r.Tag
	case 7:
		return &r.ASN
	case 8:
		return &r.Geo
	case 9:
		return &r.Region
	case 10:
		return &r.City
	case 11:
		return &r.NAICS
	case 12:
		return &r.HostnameSource
	case 13:
		return &r.Sector
	case 14:
		return &r.Packets
	case 15:
		return &r.ResponseSize
	case 16:
		return &r.Amplification
	}
	return nil
}

// Row is the set of row types: one per report.
type Row interface {
	VersionRow | MonitorRow
}

// rowPtr is what the package needs of a *VersionRow or *MonitorRow.
type rowPtr interface {
	field(i int) *string
	schema() *schema
	extra() *map[string]string
	line() *int
}

func (r *VersionRow) schema() *schema           { return &versionSchema }
func (r *VersionRow) extra() *map[string]string { return &r.Extra }
func (r *VersionRow) line() *int                { return &r.Line }
func (r *MonitorRow) schema() *schema           { return &monitorSchema }
func (r *MonitorRow) extra() *map[string]string { return &r.Extra }
func (r *MonitorRow) line() *int                { return &r.Line }
func access[T Row](r *T) rowPtr                 { return any(r).(rowPtr) }
func schemaOf[T Row]() *schema                  { var r T; return access(&r).schema() }

// schema describes one report's columns.
type schema struct {
	typ     Type // the IPv4 report type
	layouts *[numLayouts][]string
	index   map[string]int // current column name (and aliases) → field index
}

func (s *schema) current() []string { return s.layouts[LayoutCurrent] }

func newSchema(t Type, layouts *[numLayouts][]string) schema {
	s := schema{typ: t, layouts: layouts, index: make(map[string]int)}
	for i, c := range layouts[LayoutCurrent] {
		s.index[c] = i
	}
	for old, cur := range aliases {
		if i, ok := s.index[cur]; ok {
			s.index[old] = i
		}
	}
	return s
}

// These are read-only after initialisation.
var (
	versionSchema = newSchema(ScanNTP, &versionLayouts)
	monitorSchema = newSchema(ScanNTPMonitor, &monitorLayouts)
)

// Values returns the row's fields in the order of the current layout.
func (r *VersionRow) Values() []string { return values(r) }

// Values returns the row's fields in the order of the current layout.
func (r *MonitorRow) Values() []string { return values(r) }

func values(p rowPtr) []string {
	n := len(p.schema().current())
	out := make([]string, n)
	for i := range out {
		out[i] = *p.field(i)
	}
	return out
}

// Get returns the value of the column called name: a current column, an
// old name of one (size), or a column kept in Extra.
func (r *VersionRow) Get(name string) (string, bool) { return get(r, name) }

// Get returns the value of the column called name: a current column, an
// old name of one (size), or a column kept in Extra.
func (r *MonitorRow) Get(name string) (string, bool) { return get(r, name) }

func get(p rowPtr, name string) (string, bool) {
	if i, ok := p.schema().index[name]; ok {
		return *p.field(i), true
	}
	v, ok := (*p.extra())[name]
	return v, ok
}
