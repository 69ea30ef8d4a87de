package mode6

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The implementations these files had before the fast paths of issue 14,
// kept as references for FuzzParseVarsRef and FuzzSystemVarsRef.

// refParseVars is ParseVars as it was: clean always runs, and the parser
// compares octet by octet.
func refParseVars(data []byte) (Vars, ParseStats) {
	var st ParseStats
	var items int
	st.Dropped, items = clean(data, nil)
	var text string
	if st.Dropped == 0 {
		text = string(data)
	} else {
		var sb strings.Builder
		sb.Grow(len(data) - st.Dropped)
		clean(data, &sb)
		text = sb.String()
	}
	vs := Vars(nil)
	pos := 0
	for {
		for pos < len(text) && (text[pos] == ',' || isBlank(text[pos]) || text[pos] == '\r' || text[pos] == '\n') {
			pos++
		}
		if pos >= len(text) {
			break
		}
		if vs == nil {
			vs = make(Vars, 0, min(items, maxPrealloc))
		}
		start := pos
		for pos < len(text) && text[pos] != ',' && text[pos] != '=' && text[pos] != '\r' && text[pos] != '\n' {
			pos++
		}
		name := trimBlanks(text[start:pos])
		if name == "" {
			st.Skipped++
			for pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
				pos++
			}
			continue
		}
		if pos >= len(text) || text[pos] != '=' {
			vs = append(vs, Var{Name: name, Bare: true})
			continue
		}
		pos++ // '='
		q := pos
		for q < len(text) && isBlank(text[q]) {
			q++
		}
		if q < len(text) && text[q] == '"' {
			end := strings.IndexByte(text[q+1:], '"')
			if end < 0 {
				st.Unterminated++
				vs = append(vs, Var{Name: name, Value: text[q+1:], Quoted: true})
				break
			}
			vs = append(vs, Var{Name: name, Value: text[q+1 : q+1+end], Quoted: true})
			pos = q + end + 2
			for pos < len(text) && isBlank(text[pos]) {
				pos++
			}
			if pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
				st.Repaired++ // the next item follows the closing quote
			}
			continue
		}
		start = pos
		for pos < len(text) && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n' {
			if text[pos] == '=' {
				if n := nameBefore(text, start, pos); n > start {
					// The comma before the next item is missing.
					st.Repaired++
					pos = n
					break
				}
			}
			pos++
		}
		vs = append(vs, Var{Name: name, Value: trimBlanks(text[start:pos])})
	}
	return vs, st
}

// refParseSystemVars is ParseSystemVars as it was: the old ParseVars, a
// copy of the whole struct before each field, names found by a linear
// search, and netip.ParseAddr tried on every refid.
func refParseSystemVars(data []byte) (SystemVars, error) {
	vs, _ := refParseVars(data)
	var s SystemVars
	err := s.refUnmarshalVars(vs)
	return s, err
}

func refParseRefID(s string) RefID {
	r := RefID{Raw: s}
	switch a, err := netip.ParseAddr(s); {
	case s == "":
	case err == nil && a.Is4():
		r.Kind, r.Addr = RefIDIPv4, a
	case err == nil:
		r.Kind, r.Addr = RefIDIPv6, a
	default:
		r.Kind, r.Code = RefIDCode, s
	}
	return r
}

func refSysField(name string) int {
	for i, n := range sysFields {
		if n == name {
			return i
		}
	}
	return -1
}

func refSysGroup(i int) int {
	switch sysFields[i] {
	case "rootdispersion", "poll", "jitter", "noise", "stability":
		return i - 1 // listed right after its newer name
	}
	return i
}

func (s *SystemVars) refUnmarshalVars(vs Vars) error {
	*s = SystemVars{Vars: vs}
	var errs []error
	var seen uint64
	for _, v := range vs {
		f := refSysField(v.Name)
		if f < 0 {
			s.Unknown = append(s.Unknown, v)
			continue
		}
		g := refSysGroup(f)
		if seen&(1<<g) != 0 {
			continue // the first of a name and its aliases wins
		}
		seen |= 1 << g
		saved := *s
		if err := s.refSet(v); err != nil {
			*s = saved // leave the field zero, whatever strconv put there
			errs = append(errs, &FieldError{Name: v.Name, Value: v.Value, Err: err})
			continue
		}
		s.has |= 1 << f
	}
	return errors.Join(errs...)
}

func (s *SystemVars) refSet(v Var) (err error) {
	val := v.Value
	if !v.Quoted {
		val = strings.TrimSpace(val)
	}
	switch v.Name {
	case "version":
		s.Version, s.Banner = val, ParseBanner(val)
	case "processor":
		s.Processor = val
	case "system":
		s.System = val
	case "release":
		s.Release = val
	case "leap":
		s.Leap, err = parseLeap(val)
	case "stratum":
		s.Stratum, err = refParseUint8(val)
	case "precision":
		var n int64
		n, err = strconv.ParseInt(val, 10, 8)
		s.Precision = int8(n)
	case "rootdelay":
		s.RootDelay, err = refParseFloat(val)
	case "rootdisp", "rootdispersion":
		s.RootDisp, err = refParseFloat(val)
	case "rootdist":
		s.RootDist, err = refParseFloat(val)
	case "refid":
		s.RefID = refParseRefID(val)
	case "reftime":
		s.RefTime, err = refParseTimestamp(val)
	case "clock":
		s.Clock, err = refParseTimestamp(val)
	case "peer":
		var n uint64
		n, err = strconv.ParseUint(val, 10, 16)
		s.Peer = uint16(n)
	case "tc", "poll":
		s.TC, err = refParseUint8(val)
	case "mintc":
		s.MinTC, err = refParseUint8(val)
	case "offset":
		s.Offset, err = refParseFloat(val)
	case "frequency":
		s.Frequency, err = refParseFloat(val)
	case "sys_jitter", "jitter":
		s.SysJitter, err = refParseFloat(val)
	case "clk_jitter", "noise":
		s.ClkJitter, err = refParseFloat(val)
	case "clk_wander", "stability":
		s.ClkWander, err = refParseFloat(val)
	case "state":
		s.State, err = refParseUint8(val)
	case "tai":
		s.TAI, err = strconv.Atoi(val)
	case "leapsec":
		s.LeapSec, err = time.Parse("200601021504", val)
	case "expire":
		s.Expire, err = time.Parse("200601021504", val)
	case "leapsmearinterval":
		s.LeapSmearInterval, err = strconv.Atoi(val)
	case "leapsmearoffset":
		s.LeapSmearOffset, err = refParseFloat(val)
	}
	if err != nil && !errors.Is(err, ErrTimestamp) {
		err = fmt.Errorf("%w: %w", ErrValue, unwrapNum(err))
	}
	return err
}

func refParseUint8(s string) (uint8, error) {
	n, err := strconv.ParseUint(s, 10, 8)
	return uint8(n), err
}

func refParseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (f != f || f > 1e300 || f < -1e300) { // NaN, Inf
		return 0, errors.New("not a finite number")
	}
	return f, err
}

func refParseTimestamp(s string) (Timestamp, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	secs, frac, ok := strings.Cut(s, ".")
	if !ok || len(secs) == 0 || len(secs) > 8 || len(frac) == 0 || len(frac) > 8 {
		return 0, ErrTimestamp
	}
	hi, err1 := strconv.ParseUint(secs, 16, 32)
	lo, err2 := strconv.ParseUint(frac, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, ErrTimestamp
	}
	return Timestamp(hi<<32 | lo), nil
}

// refBannerDate is ParseBanner's date as it was: time.Parse, layout by
// layout.
func refBannerDate(s string) time.Time {
	for _, layout := range bannerDateLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if zone, off := t.Zone(); off == 0 && zone != "UTC" && zone != "GMT" && zone != "" {
			break
		}
		return t.UTC()
	}
	return time.Time{}
}
