package mode6

// reportColumns lists the variable columns of the NTP Version report, in
// its order, with the variables that fill each (see ReportValue).
var reportColumns = [...]struct {
	column string
	names  [2]string
}{
	{"version", [2]string{"version"}},
	{"clk_wander", [2]string{"clk_wander"}},
	{"clock", [2]string{"clock"}},
	{"error", [2]string{"error"}},
	{"frequency", [2]string{"frequency"}},
	{"jitter", [2]string{"jitter", "sys_jitter"}},
	{"leap", [2]string{"leap"}},
	{"mintc", [2]string{"mintc"}},
	{"noise", [2]string{"noise"}},
	{"offset", [2]string{"offset"}},
	{"peer", [2]string{"peer"}},
	{"phase", [2]string{"phase"}},
	{"poll", [2]string{"poll"}},
	{"precision", [2]string{"precision"}},
	{"processor", [2]string{"processor"}},
	{"refid", [2]string{"refid"}},
	{"reftime", [2]string{"reftime"}},
	{"rootdelay", [2]string{"rootdelay"}},
	{"rootdispersion", [2]string{"rootdispersion", "rootdisp"}},
	{"stability", [2]string{"stability"}},
	{"state", [2]string{"state"}},
	{"stratum", [2]string{"stratum"}},
	{"system", [2]string{"system"}},
	{"tai", [2]string{"tai"}},
	{"tc", [2]string{"tc"}},
}

// ReportColumns returns the NTP Version report's variable columns, in the
// report's order (version … tc, between sector and response_size).
func ReportColumns() []string {
	out := make([]string, len(reportColumns))
	for i, c := range reportColumns {
		out[i] = c.column
	}
	return out
}

// ReportVariables returns the variable names that fill column, the
// column's own name first; nil when column is not a variable column.
func ReportVariables(column string) []string {
	for _, c := range reportColumns {
		if c.column == column {
			if c.names[1] == "" {
				return []string{c.names[0]}
			}
			return []string{c.names[0], c.names[1]}
		}
	}
	return nil
}

// ReportValue returns the value of a column of the NTP Version report
// (Shadowserver scan_ntp / scan6_ntp), taken from the system variables vs.
//
// The report has one column per system variable (ReportColumns). A column
// takes the variable of the same name; two columns also take the name
// later ntpd versions gave the same quantity: rootdispersion takes
// rootdisp (4.2.6 and later, ntpsec) and jitter takes sys_jitter. Where
// the server sent both names, or a name twice, the first in wire order
// wins. Values are passed through as the server printed them (without
// the quotes of quoted strings): the report does not normalise numbers.
// ok is false when the server sent none of the names; the report then
// leaves the field empty, inventing nothing.
func ReportValue(vs Vars, column string) (value string, ok bool) {
	for _, c := range reportColumns {
		if c.column != column {
			continue
		}
		for _, v := range vs {
			if v.Name == c.names[0] || (c.names[1] != "" && v.Name == c.names[1]) {
				return v.Value, true
			}
		}
		return "", false
	}
	return "", false
}
