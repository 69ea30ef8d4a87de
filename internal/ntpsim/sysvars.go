package ntpsim

import (
	"strconv"

	"github.com/ntpctl/ntpctl/mode6"
)

// SystemInfo holds the values a simulated server reports as its system
// variables. NTPsecVars, NTPdVars and LegacyVars print them with each
// daemon's names, order and number formats.
type SystemInfo struct {
	Version   string // daemon banner, e.g. "ntpd ntpsec-1.2.2"
	Processor string // e.g. "x86_64"
	System    string // e.g. "Linux/6.1.0", "UNIX", "cisco"
	Leap      int    // 0..3
	Stratum   int
	Precision int
	RootDelay float64 // ms
	RootDisp  float64 // ms
	RefID     string
	RefTime   mode6.Timestamp
	Clock     mode6.Timestamp
	Peer      int
	TC        int // poll exponent
	MinTC     int
	Offset    float64 // ms
	Frequency float64 // ppm
	SysJitter float64 // ms
	ClkJitter float64 // ms
	ClkWander float64 // ppm
	State     int     // clock discipline state (4.2.4 and older)
	// Extra variables follow the default set, as "setvar … default"
	// variables do.
	Extra mode6.Vars
}

func num(name string, v int) mode6.Var { return mode6.Var{Name: name, Value: strconv.Itoa(v)} }

func fixed(name string, v float64, places int) mode6.Var {
	return mode6.Var{Name: name, Value: strconv.FormatFloat(v, 'f', places, 64)}
}

func quoted(name, v string) mode6.Var { return mode6.Var{Name: name, Value: v, Quoted: true} }

func plain(name, v string) mode6.Var { return mode6.Var{Name: name, Value: v} }

// NTPsecVars returns the system variables as ntpsec 1.2.2 sends them for
// `ntpq -c rv`: its order, six decimals for offsets, jitter and frequency.
func NTPsecVars(si SystemInfo) mode6.Vars {
	return append(mode6.Vars{
		num("leap", si.Leap), num("stratum", si.Stratum), num("precision", si.Precision),
		fixed("rootdelay", si.RootDelay, 3), fixed("rootdisp", si.RootDisp, 3), plain("refid", si.RefID),
		plain("reftime", si.RefTime.String()), num("tc", si.TC), num("peer", si.Peer),
		fixed("offset", si.Offset, 6), fixed("frequency", si.Frequency, 6), fixed("sys_jitter", si.SysJitter, 6),
		fixed("clk_jitter", si.ClkJitter, 6), plain("clock", si.Clock.String()), quoted("processor", si.Processor),
		quoted("system", si.System), quoted("version", si.Version), fixed("clk_wander", si.ClkWander, 6),
		num("mintc", si.MinTC),
	}, si.Extra...)
}

// NTPdVars returns the system variables as ntp.org ntpd 4.2.8 sends them
// (def_sys_var order; the leap-second variables are left out, as for a
// server without a leap file).
func NTPdVars(si SystemInfo) mode6.Vars {
	return append(mode6.Vars{
		quoted("version", si.Version), quoted("processor", si.Processor), quoted("system", si.System),
		num("leap", si.Leap), num("stratum", si.Stratum), num("precision", si.Precision),
		fixed("rootdelay", si.RootDelay, 3), fixed("rootdisp", si.RootDisp, 3), plain("refid", si.RefID),
		plain("reftime", si.RefTime.String()), plain("clock", si.Clock.String()), num("peer", si.Peer),
		num("tc", si.TC), num("mintc", si.MinTC), fixed("offset", si.Offset, 6),
		fixed("frequency", si.Frequency, 3), fixed("sys_jitter", si.SysJitter, 6),
		fixed("clk_jitter", si.ClkJitter, 3), fixed("clk_wander", si.ClkWander, 3),
	}, si.Extra...)
}

// LegacyVars returns the system variables with the names and order of
// ntpd 4.2.4 and older (rootdispersion, poll, state, jitter, noise,
// stability), which xntpd-derived firmware such as routers' still sends.
func LegacyVars(si SystemInfo) mode6.Vars {
	return append(mode6.Vars{
		quoted("version", si.Version), quoted("processor", si.Processor), quoted("system", si.System),
		num("leap", si.Leap), num("stratum", si.Stratum), num("precision", si.Precision),
		fixed("rootdelay", si.RootDelay, 3), fixed("rootdispersion", si.RootDisp, 3), num("peer", si.Peer),
		plain("refid", si.RefID), plain("reftime", si.RefTime.String()), num("poll", si.TC),
		plain("clock", si.Clock.String()), num("state", si.State), fixed("offset", si.Offset, 3),
		fixed("frequency", si.Frequency, 3), fixed("jitter", si.SysJitter, 3), fixed("noise", si.ClkJitter, 3),
		fixed("stability", si.ClkWander, 3),
	}, si.Extra...)
}

// StatusOf returns the system status word of a server with this leap
// indicator, clock source (6 = NTP, 5 = local clock, 0 = none) and last
// event, with one event counted.
func StatusOf(leap, source, event uint8) uint16 {
	return mode6.SystemStatus{Leap: leap, Source: source, EventCount: 1, Event: event}.Word()
}
