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

// NewMonitorRow builds the NTP Monitor row of a monlist result and what
// enrichment found about its address. ok is false, and the row empty,
// when the result is not reportable (Reportable).
func NewMonitorRow(res ntpctl.Result[mode7.Reply], e enrich.Result, opt BuildOptions) (row MonitorRow, ok bool) {
	if !Reportable(&res) {
		return row, false
	}
	fillCommon(&row.Common, res.Target, res.Time, e, opt, "")
	row.Packets = positive(res.Packets)
	row.ResponseSize = positive(res.Bytes)
	row.Amplification = amplification(res.Bytes, res.RequestBytes)
	return row, true
}

// NewVersionRow builds the NTP Version row of a READVAR result and what
// enrichment found about its address. ok is false, and the row empty,
// when the result is not reportable (Reportable).
//
// Each variable column (version … tc) takes the system variable of the
// same name; two also take the name later ntpd versions gave the same
// quantity: rootdispersion takes rootdisp (4.2.6 and later, ntpsec) and
// jitter takes sys_jitter. Where the server sent both names, or a name
// twice, the first in wire order wins. Values are passed through as the
// server printed them (mode6.Var.Value: without the quotes of quoted
// strings); the report does not normalise numbers. A column none of whose
// variables the server sent stays empty: nothing is invented.
func NewVersionRow(res ntpctl.Result[mode6.Reply], e enrich.Result, opt BuildOptions) (row VersionRow, ok bool) {
	if !Reportable(&res) {
		return row, false
	}
	fillCommon(&row.Common, res.Target, res.Time, e, opt, "ntpversion")
	fillVars(&row, res.Value.Vars)
	row.ResponseSize = positive(res.Bytes)
	row.Amplification = amplification(res.Bytes, res.RequestBytes)
	return row, true
}

// fillVars sets the variable columns of row from vs, the first variable
// of a column's names in wire order winning.
func fillVars(row *VersionRow, vs mode6.Vars) {
	s := &versionSchema
	var set uint64 // by column index; the table has fewer than 64
	for _, v := range vs {
		i, ok := s.byVar[v.Name]
		if !ok || set&(1<<i) != 0 {
			continue
		}
		set |= 1 << i
		*s.cols[i].field(row) = v.Value
	}
}

func fillCommon(c *Common, target netip.AddrPort, t time.Time, e enrich.Result, opt BuildOptions, tag string) {
	c.Timestamp = FormatTime(t)
	c.Severity = opt.Severity
	if c.Severity == "" {
		c.Severity = "medium"
	}
	// An invalid target (never one the prober probed) leaves ip and port
	// empty rather than writing "invalid IP" and 0.
	if a := target.Addr(); a.IsValid() {
		c.IP = a.Unmap().String()
		c.Port = strconv.Itoa(int(target.Port()))
	}
	c.Protocol = "udp"
	if len(e.Names) > 0 {
		if h := strings.TrimSuffix(e.Names[0], "."); h != "" {
			c.Hostname = h
			c.HostnameSource = "ptr"
		}
	}
	c.Tag = tag
	if opt.Tag != "" {
		c.Tag = opt.Tag
	}
	if e.ASN.Number != 0 {
		c.ASN = strconv.FormatUint(uint64(e.ASN.Number), 10)
	}
	c.Geo = strings.ToUpper(e.Geo.Country)
	c.Region = strings.ToUpper(e.Geo.Region)
	c.City = strings.ToUpper(e.Geo.City)
	if e.NAICS > 0 {
		c.NAICS = strconv.Itoa(e.NAICS)
	}
	c.Sector = e.Sector
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
