package mode6

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrValue reports a variable whose value does not have the form its
// name calls for; it is wrapped in a [*FieldError].
var ErrValue = errors.New("mode6: malformed value")

// FieldError reports one variable whose value could not be typed. The
// field it would have filled is left zero.
type FieldError struct {
	Name  string // variable name
	Value string // value as received
	Err   error  // what is wrong with it
}

// Error describes the field.
func (e *FieldError) Error() string {
	return "mode6: variable " + e.Name + "=" + strconv.Quote(e.Value) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// RefIDKind says how a refid was printed.
type RefIDKind uint8

const (
	// RefIDNone is an empty or absent refid.
	RefIDNone RefIDKind = iota
	// RefIDCode is up to four ASCII characters: a reference clock or kiss
	// code (GPS, PPS, LOCL, INIT, RATE) at stratum 0, 1 or 16.
	RefIDCode
	// RefIDIPv4 is a dotted quad: the upstream server's IPv4 address, or,
	// for an IPv6 upstream, the first four octets of a hash of its
	// address, which ntpd prints the same way (the two cannot be told
	// apart on the wire).
	RefIDIPv4
	// RefIDIPv6 is an IPv6 address, which some servers print in full.
	RefIDIPv6
)

// RefID is the reference identifier of the server's time source.
type RefID struct {
	Kind RefIDKind
	Addr netip.Addr // for RefIDIPv4 and RefIDIPv6
	Code string     // for RefIDCode
	Raw  string     // as printed
}

// ParseRefID types a refid as ntpd prints it.
func ParseRefID(s string) RefID {
	r := RefID{Raw: s}
	if s == "" {
		return r
	}
	// Only a text with '.' or ':' can be an address: skip ParseAddr (and
	// the error it allocates) for the codes.
	if strings.IndexByte(s, '.') >= 0 || strings.IndexByte(s, ':') >= 0 {
		if a, err := netip.ParseAddr(s); err == nil {
			r.Kind, r.Addr = RefIDIPv6, a
			if a.Is4() {
				r.Kind = RefIDIPv4
			}
			return r
		}
	}
	r.Kind, r.Code = RefIDCode, s
	return r
}

// String returns the refid as printed.
func (r RefID) String() string { return r.Raw }

// Banner is the daemon banner of the "version" variable split into its
// parts, for example "ntpd 4.2.8p15@1.3728-o Wed Sep 23 11:46:38 UTC 2020
// (1)": program "ntpd", version "4.2.8p15", build "1.3728-o", date.
type Banner struct {
	Raw     string    // the whole banner
	Program string    // "ntpd", "xntpd"; empty for bare versions such as "4"
	Version string    // "4.2.8p15", "ntpsec-1.2.2", "3-5.93e", "4"
	Build   string    // the part after '@', "1.3728-o"
	Date    time.Time // build date, when printed in UTC (other zone abbreviations are ambiguous)
	// DateText is the build date as printed, when there is one.
	DateText string
}

// Implementation names the software: "ntpsec", "ntp.org" (ntpd 4.x),
// "xntpd" (ntpd 3.x), or "" when the banner does not say.
func (b Banner) Implementation() string {
	switch {
	case strings.HasPrefix(b.Version, "ntpsec"):
		return "ntpsec"
	case b.Program == "xntpd" || strings.HasPrefix(b.Version, "3"):
		return "xntpd"
	case b.Program == "ntpd" && b.Version != "":
		return "ntp.org"
	}
	return ""
}

var bannerDateLayouts = []string{
	"Mon Jan _2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan _2 15:04:05 2006",
	"2006-01-02T15:04:05Z",
	time.RFC3339,
}

// bannerDate parses the build date of a banner, or returns the zero time.
func bannerDate(s string) time.Time {
	if t, ok := utcDate(s); ok {
		return t
	}
	for _, layout := range bannerDateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		// time.Parse gives an unknown zone abbreviation ("CEST") a
		// zero offset; only UTC/GMT (or a numeric offset) is an instant.
		if zone, off := t.Zone(); off == 0 && zone != "UTC" && zone != "GMT" && zone != "" {
			break
		}
		return t.UTC()
	}
	return time.Time{}
}

// utcDate parses the date ntpd's banner carries, "Thu Nov 26 14:04:21 UTC
// 2026" (day blank-padded), as time.Parse does with the first of
// bannerDateLayouts, without its generality; it reports false for any
// other text, which bannerDate then gives to time.Parse.
func utcDate(s string) (time.Time, bool) {
	if len(s) != 28 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
		s[19] != ' ' || s[20:24] != "UTC " {
		return time.Time{}, false
	}
	switch s[:3] {
	case "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat":
	default:
		return time.Time{}, false
	}
	var month time.Month
	switch s[4:7] {
	case "Jan":
		month = time.January
	case "Feb":
		month = time.February
	case "Mar":
		month = time.March
	case "Apr":
		month = time.April
	case "May":
		month = time.May
	case "Jun":
		month = time.June
	case "Jul":
		month = time.July
	case "Aug":
		month = time.August
	case "Sep":
		month = time.September
	case "Oct":
		month = time.October
	case "Nov":
		month = time.November
	case "Dec":
		month = time.December
	default:
		return time.Time{}, false
	}
	num := func(s string) int {
		v := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			v = v*10 + int(s[i]-'0')
		}
		return v
	}
	day := num(s[9:10])
	if s[8] != ' ' {
		day = num(s[8:10])
	}
	hour, minute, sec, year := num(s[11:13]), num(s[14:16]), num(s[17:19]), num(s[24:28])
	if day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 || year < 0 {
		return time.Time{}, false
	}
	if day > 28 && time.Date(year, month, day, 0, 0, 0, 0, time.UTC).Day() != day {
		return time.Time{}, false // beyond the month's last day
	}
	return time.Date(year, month, day, hour, minute, sec, 0, time.UTC), true
}

// ParseBanner splits a daemon banner. It never fails: what it cannot
// place stays in Raw (and DateText).
func ParseBanner(s string) Banner {
	b := Banner{Raw: s}
	rest := strings.TrimSpace(s)
	// A trailing "(1)" is the build count.
	if i := strings.LastIndexByte(rest, '('); i > 0 && strings.HasSuffix(rest, ")") {
		rest = strings.TrimSpace(rest[:i])
	}
	first, tail, _ := strings.Cut(rest, " ")
	if first == "" {
		return b
	}
	if c := first[0]; c >= '0' && c <= '9' {
		b.Version, tail = first, strings.TrimSpace(tail)
	} else {
		b.Program = first
		b.Version, tail, _ = strings.Cut(strings.TrimSpace(tail), " ")
		tail = strings.TrimSpace(tail)
	}
	b.Version, b.Build, _ = strings.Cut(b.Version, "@")
	if tail != "" {
		b.DateText = tail
		b.Date = bannerDate(tail)
	}
	return b
}

// SystemVars is the typed view of a READVAR reply for association 0, for
// ntp.org ntpd 4.2.x, ntpsec and 4.2.4/xntpd-era names. Units follow
// ntpd: milliseconds for delays, offsets and jitter, ppm for frequencies.
// A field whose variable is absent or malformed is zero; Has tells which.
type SystemVars struct {
	Version   string // daemon banner (version)
	Banner    Banner // Version split into its parts
	Processor string // processor (uname -m)
	System    string // system (uname -s/-r)
	Release   string // release (newer ntpsec)
	Leap      uint8  // leap: 0..3, 3 = unsynchronised
	Stratum   uint8  // stratum: 16 = unsynchronised
	Precision int8   // precision: log2 seconds
	RootDelay float64
	RootDisp  float64 // rootdisp; 4.2.4: rootdispersion
	RootDist  float64 // rootdist (ntpsec)
	RefID     RefID
	RefTime   Timestamp // reftime: last update
	Clock     Timestamp // clock: the server's time when it answered
	Peer      uint16    // peer: association of the system peer
	TC        uint8     // tc: poll exponent; 4.2.4: poll
	MinTC     uint8     // mintc
	Offset    float64   // offset, ms
	Frequency float64   // frequency, ppm
	SysJitter float64   // sys_jitter, ms; 4.2.4: jitter
	ClkJitter float64   // clk_jitter, ms; 4.2.4: noise
	ClkWander float64   // clk_wander, ppm; 4.2.4: stability
	State     uint8     // state: clock discipline state (4.2.4 and older)
	TAI       int       // tai: TAI−UTC in seconds, when known
	LeapSec   time.Time // leapsec: last leap second of the loaded table
	Expire    time.Time // expire: expiry of the leap table
	// LeapSmearInterval and LeapSmearOffset are leapsmearinterval (s) and
	// leapsmearoffset (ms), with leap smearing only.
	LeapSmearInterval int
	LeapSmearOffset   float64

	// Vars is every variable received, in wire order.
	Vars Vars
	// Unknown holds the variables no field takes, in wire order.
	Unknown Vars

	has uint64 // bit i: field i (sysFields) was set
}

// sysFields lists the variable names SystemVars types, each with its bit.
var sysFields = [...]string{"version", "processor", "system", "release", "leap", "stratum",
	"precision", "rootdelay", "rootdisp", "rootdispersion", "rootdist", "refid", "reftime",
	"clock", "peer", "tc", "poll", "mintc", "offset", "frequency", "sys_jitter", "jitter",
	"clk_jitter", "noise", "clk_wander", "stability", "state", "tai", "leapsec", "expire",
	"leapsmearinterval", "leapsmearoffset"}

func sysField(name string) int {
	switch name {
	case "version":
		return fVersion
	case "processor":
		return fProcessor
	case "system":
		return fSystem
	case "release":
		return fRelease
	case "leap":
		return fLeap
	case "stratum":
		return fStratum
	case "precision":
		return fPrecision
	case "rootdelay":
		return fRootdelay
	case "rootdisp":
		return fRootdisp
	case "rootdispersion":
		return fRootdispersion
	case "rootdist":
		return fRootdist
	case "refid":
		return fRefid
	case "reftime":
		return fReftime
	case "clock":
		return fClock
	case "peer":
		return fPeer
	case "tc":
		return fTc
	case "poll":
		return fPoll
	case "mintc":
		return fMintc
	case "offset":
		return fOffset
	case "frequency":
		return fFrequency
	case "sys_jitter":
		return fSysJitter
	case "jitter":
		return fJitter
	case "clk_jitter":
		return fClkJitter
	case "noise":
		return fNoise
	case "clk_wander":
		return fClkWander
	case "stability":
		return fStability
	case "state":
		return fState
	case "tai":
		return fTai
	case "leapsec":
		return fLeapsec
	case "expire":
		return fExpire
	case "leapsmearinterval":
		return fLeapsmearinterval
	case "leapsmearoffset":
		return fLeapsmearoffset
	}
	return -1
}

// The indices of sysFields.
const (
	fVersion = iota
	fProcessor
	fSystem
	fRelease
	fLeap
	fStratum
	fPrecision
	fRootdelay
	fRootdisp
	fRootdispersion
	fRootdist
	fRefid
	fReftime
	fClock
	fPeer
	fTc
	fPoll
	fMintc
	fOffset
	fFrequency
	fSysJitter
	fJitter
	fClkJitter
	fNoise
	fClkWander
	fStability
	fState
	fTai
	fLeapsec
	fExpire
	fLeapsmearinterval
	fLeapsmearoffset
)

// sysGroup maps a field to the first of the names that fill the same
// SystemVars field (rootdispersion to rootdisp, poll to tc, …).
func sysGroup(i int) int {
	switch i {
	case fRootdispersion, fPoll, fJitter, fNoise, fStability:
		return i - 1 // listed right after its newer name
	}
	return i
}

// Has reports whether the reply carried the variable name with a value
// that could be typed. Each name counts on its own: Has("rootdisp") is
// false for a 4.2.4 server that sent rootdispersion.
func (s *SystemVars) Has(name string) bool {
	i := sysField(name)
	return i >= 0 && s.has&(1<<i) != 0
}

// ParseSystemVars parses a READVAR reply's data and types it; see
// [SystemVars.UnmarshalVars]. It costs the two allocations of
// [ParseVars]; typing adds none unless there are unknown variables or
// malformed values.
func ParseSystemVars(data []byte) (SystemVars, error) {
	vs, _ := ParseVars(data)
	var s SystemVars
	err := s.UnmarshalVars(vs)
	return s, err
}

// UnmarshalVars fills s from vs. Unknown variables are kept in Unknown; a
// malformed value leaves its field zero and is reported as a
// [*FieldError] wrapping [ErrValue] (or [ErrTimestamp]); all such errors
// are joined with [errors.Join]. Where a variable appears twice, or under
// two names for one field (rootdisp and rootdispersion, tc and poll,
// sys_jitter and jitter, clk_jitter and noise, clk_wander and stability),
// the first in wire order wins. It never panics.
func (s *SystemVars) UnmarshalVars(vs Vars) error {
	*s = SystemVars{Vars: vs}
	var errs []error
	var seen uint64
	for i := range vs {
		v := &vs[i]
		f := sysField(v.Name)
		if f < 0 {
			s.Unknown = append(s.Unknown, *v)
			continue
		}
		g := sysGroup(f)
		if seen&(1<<g) != 0 {
			continue // the first of a name and its aliases wins
		}
		seen |= 1 << g
		if err := s.set(f, v); err != nil {
			errs = append(errs, &FieldError{Name: v.Name, Value: v.Value, Err: err})
			continue
		}
		s.has |= 1 << f
	}
	if errs == nil {
		return nil
	}
	return errors.Join(errs...)
}

// set types one variable of sysFields.
func (s *SystemVars) set(f int, v *Var) (err error) {
	val := v.Value
	if !v.Quoted && val != "" && (val[0] <= ' ' || val[len(val)-1] <= ' ' || val[0] >= utf8.RuneSelf || val[len(val)-1] >= utf8.RuneSelf) {
		val = strings.TrimSpace(val)
	}
	// Each case sets its field only when the value parses, so a malformed
	// one leaves it zero (it is set once: the first in wire order wins).
	switch f {
	case fVersion:
		s.Version, s.Banner = val, ParseBanner(val)
	case fProcessor:
		s.Processor = val
	case fSystem:
		s.System = val
	case fRelease:
		s.Release = val
	case fLeap:
		err = setOK(&s.Leap)(parseLeap(val))
	case fStratum:
		err = setOK(&s.Stratum)(parseUint8(val))
	case fPrecision:
		err = setOK(&s.Precision)(parseInt8(val))
	case fRootdelay:
		err = setOK(&s.RootDelay)(parseFloat(val))
	case fRootdisp, fRootdispersion:
		err = setOK(&s.RootDisp)(parseFloat(val))
	case fRootdist:
		err = setOK(&s.RootDist)(parseFloat(val))
	case fRefid:
		s.RefID = ParseRefID(val)
	case fReftime:
		err = setOK(&s.RefTime)(ParseTimestamp(val))
	case fClock:
		err = setOK(&s.Clock)(ParseTimestamp(val))
	case fPeer:
		var n uint64
		if n, err = strconv.ParseUint(val, 10, 16); err == nil {
			s.Peer = uint16(n)
		}
	case fTc, fPoll:
		err = setOK(&s.TC)(parseUint8(val))
	case fMintc:
		err = setOK(&s.MinTC)(parseUint8(val))
	case fOffset:
		err = setOK(&s.Offset)(parseFloat(val))
	case fFrequency:
		err = setOK(&s.Frequency)(parseFloat(val))
	case fSysJitter, fJitter:
		err = setOK(&s.SysJitter)(parseFloat(val))
	case fClkJitter, fNoise:
		err = setOK(&s.ClkJitter)(parseFloat(val))
	case fClkWander, fStability:
		err = setOK(&s.ClkWander)(parseFloat(val))
	case fState:
		err = setOK(&s.State)(parseUint8(val))
	case fTai:
		err = setOK(&s.TAI)(strconv.Atoi(val))
	case fLeapsec:
		err = setOK(&s.LeapSec)(parseFileStamp(val))
	case fExpire:
		err = setOK(&s.Expire)(parseFileStamp(val))
	case fLeapsmearinterval:
		err = setOK(&s.LeapSmearInterval)(strconv.Atoi(val))
	case fLeapsmearoffset:
		err = setOK(&s.LeapSmearOffset)(parseFloat(val))
	}
	if err != nil && !errors.Is(err, ErrTimestamp) {
		err = fmt.Errorf("%w: %w", ErrValue, unwrapNum(err))
	}
	return err
}

// setOK returns a function that stores a parsed value in *p unless
// parsing failed, and returns the error.
func setOK[T any](p *T) func(T, error) error {
	return func(v T, err error) error {
		if err == nil {
			*p = v
		}
		return err
	}
}

// unwrapNum strips strconv's wrapper, whose message repeats the input.
func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// parseInt8 parses a precision ("-24"): a sign and one to three digits
// here, strconv for the rest (and for its errors).
func parseInt8(s string) (int8, error) {
	if len(s) > 1 && len(s) <= 4 && s[0] == '-' {
		if u, err := parseUint8(s[1:]); err == nil && u <= 128 && s[1] != '+' && s[1] != '-' {
			return int8(-int(u)), nil
		}
	} else if u, err := parseUint8(s); err == nil && u <= 127 && len(s) <= 3 {
		return int8(u), nil
	}
	n, err := strconv.ParseInt(s, 10, 8)
	return int8(n), err
}

func parseUint8(s string) (uint8, error) {
	// One to three digits, as ntpd prints them; strconv for the rest
	// (and for its errors).
	if n := len(s); n > 0 && n <= 3 {
		v := 0
		for i := 0; i < n; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				v = -1
				break
			}
			v = v*10 + int(c-'0')
		}
		if v >= 0 && v <= 255 {
			return uint8(v), nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 8)
	return uint8(n), err
}

// parseLeap takes "3" as on the wire, and "11" as ntpq's cooked display
// prints it (two binary digits).
func parseLeap(s string) (uint8, error) {
	switch s {
	case "0", "1", "2", "3":
		return s[0] - '0', nil
	case "00", "01", "10", "11":
		return (s[0]-'0')<<1 | (s[1] - '0'), nil
	}
	return 0, errors.New("not a leap indicator")
}

func parseFloat(s string) (float64, error) {
	if f, ok := parseDecimal(s); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (f != f || f > 1e300 || f < -1e300) { // NaN, Inf
		return 0, errors.New("not a finite number")
	}
	return f, err
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseDecimal parses what ntpd prints with %f ("-0.123456"): an optional
// sign, digits and an optional fraction, 15 digits at most, so that the
// digits are an exact float64 and one division by an exact power of ten
// rounds correctly (strconv's own exact case). It reports false for
// anything else, which strconv.ParseFloat then takes.
func parseDecimal(s string) (float64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var mant uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		mant = mant*10 + uint64(s[i]-'0')
	}
	digits, scale := i, 0
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			mant = mant*10 + uint64(s[i]-'0')
		}
		scale = i - digits - 1
		digits += scale
	}
	if i != len(s) || digits == 0 || digits > 15 {
		return 0, false
	}
	f := float64(mant)
	if scale > 0 {
		f /= pow10[scale]
	}
	if neg {
		f = -f
	}
	return f, true
}

// parseFileStamp parses ntpd's yyyymmddhhmm file stamps: twelve digits
// of a valid date and time here, time.Parse for anything else (and for its
// errors).
func parseFileStamp(s string) (time.Time, error) {
	if len(s) == 12 {
		var d [12]int
		ok := true
		for i := range 12 {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
				break
			}
			d[i] = int(c - '0')
		}
		if ok {
			year := d[0]*1000 + d[1]*100 + d[2]*10 + d[3]
			month, day := d[4]*10+d[5], d[6]*10+d[7]
			hour, minute := d[8]*10+d[9], d[10]*10+d[11]
			if month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) && hour < 24 && minute < 60 {
				return time.Date(year, time.Month(month), day, hour, minute, 0, 0, time.UTC), nil
			}
		}
	}
	return time.Parse("200601021504", s)
}

// daysIn returns the number of days of a month of the proleptic
// Gregorian calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
