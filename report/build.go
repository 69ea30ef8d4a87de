package report

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ntpctl/ntpctl"
	"github.com/ntpctl/ntpctl/enrich"
	"github.com/ntpctl/ntpctl/mode6"
	"github.com/ntpctl/ntpctl/mode7"
)

// BuildOptions configures the row builders. The zero value builds rows
// as Shadowserver fills them.
type BuildOptions struct {
	// Severity is the severity column; "" means "medium", the default of
	// both reports (report-schemas.md §2.1).
	Severity string
	// Tag is the tag column; "" means "ntpversion" for NTP Version (as
	// Shadowserver documents it) and an empty field for NTP Monitor,
	// whose tag value is not documented (report-schemas.md §4.3).
	Tag string
}

// The common columns, as indexes into both current layouts.
const (
	colTimestamp = iota
	colSeverity
	colIP
	colProtocol
	colPort
	colHostname
	colTag
	colASN
	colGeo
	colRegion
	colCity
	colNAICS
	colHostnameSource
	colSector
)

// NewMonitorRow builds the NTP Monitor row of a monlist result and what
// enrichment found about its address. ok is false, and the row empty,
// when the result is not reportable (Reportable).
func NewMonitorRow(res ntpctl.Result[mode7.Reply], e enrich.Result, opt BuildOptions) (row MonitorRow, ok bool) {
	if !Reportable(&res) {
		return row, false
	}
	fillCommon(&row, res.Target, res.Time, e, opt, "")
	row.Packets = positive(res.Packets)
	row.ResponseSize = positive(res.Bytes)
	row.Amplification = amplification(res.Bytes, res.RequestBytes)
	return row, true
}

// NewVersionRow builds the NTP Version row of a READVAR result and what
// enrichment found about its address. The variable columns take the
// server's variables through mode6.ReportValue, as printed. ok is false,
// and the row empty, when the result is not reportable
// (Reportable).
func NewVersionRow(res ntpctl.Result[mode6.Reply], e enrich.Result, opt BuildOptions) (row VersionRow, ok bool) {
	if !Reportable(&res) {
		return row, false
	}
	fillCommon(&row, res.Target, res.Time, e, opt, "ntpversion")
	for i, c := range ntpVars {
		if v, ok := mode6.ReportValue(res.Value.Vars, c); ok {
			*row.field(colSector + 1 + i) = v
		}
	}
	row.ResponseSize = positive(res.Bytes)
	row.Amplification = amplification(res.Bytes, res.RequestBytes)
	return row, true
}

func fillCommon(p rowPtr, target netip.AddrPort, t time.Time, e enrich.Result, opt BuildOptions, tag string) {
	set := func(i int, v string) { *p.field(i) = v }
	set(colTimestamp, FormatTime(t))
	sev := opt.Severity
	if sev == "" {
		sev = "medium"
	}
	set(colSeverity, sev)
	// An invalid target (never one the prober probed) leaves ip and port
	// empty rather than writing "invalid IP" and 0.
	if a := target.Addr(); a.IsValid() {
		set(colIP, a.Unmap().String())
		set(colPort, strconv.Itoa(int(target.Port())))
	}
	set(colProtocol, "udp")
	if len(e.Names) > 0 {
		if h := strings.TrimSuffix(e.Names[0], "."); h != "" {
			set(colHostname, h)
			set(colHostnameSource, "ptr")
		}
	}
	if opt.Tag != "" {
		tag = opt.Tag
	}
	set(colTag, tag)
	if e.ASN.Number != 0 {
		set(colASN, strconv.FormatUint(uint64(e.ASN.Number), 10))
	}
	set(colGeo, strings.ToUpper(e.Geo.Country))
	set(colRegion, strings.ToUpper(e.Geo.Region))
	set(colCity, strings.ToUpper(e.Geo.City))
	if e.NAICS > 0 {
		set(colNAICS, strconv.Itoa(e.NAICS))
	}
	set(colSector, e.Sector)
}

func positive(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// amplification is response ÷ request with two decimals, "" when either
// is unknown.
func amplification(response, request int) string {
	if response <= 0 || request <= 0 {
		return ""
	}
	return strconv.FormatFloat(float64(response)/float64(request), 'f', 2, 64)
}
